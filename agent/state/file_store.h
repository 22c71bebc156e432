// StateStore on a local directory: one file per key (<dir>/<key>.json),
// written atomically (temp file, fsync, rename). The directory is 0700.
// Also holds the agent's single-instance lock.
#pragma once

#include <memory>

#include "common/fd.h"
#include "state/store.h"

namespace sluice {

class FileStore : public StateStore {
 public:
  static Result<std::unique_ptr<FileStore>> open(const std::string& dir);

  Result<std::optional<std::string>> get(const std::string& key) override;
  Status put(const std::string& key, const std::string& value) override;
  Status remove(const std::string& key) override;
  Result<std::vector<std::string>> list(const std::string& prefix) override;

  // Takes an exclusive lock on <dir>/agent.lock for the life of the store,
  // so two agents never drive the same state and pins.
  Status lock();

  explicit FileStore(std::string dir) : dir_(std::move(dir)) {}

 private:
  std::string path(const std::string& key) const;
  std::string dir_;
  UniqueFd lock_;
};

}  // namespace sluice

// Where desired state comes from. Standalone, the agent keeps applied state
// in its state directory (FileStore); cluster mode will put an etcd-backed
// store behind the same interface. Keys are slash-separated paths such as
// "prefilter" or "pods/x/a"; values are opaque JSON documents.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace sluice {

class StateStore {
 public:
  virtual ~StateStore() = default;
  virtual Result<std::optional<std::string>> get(const std::string& key) = 0;
  // Durable once it returns: a crash after put() never loses the value.
  virtual Status put(const std::string& key, const std::string& value) = 0;
  virtual Status remove(const std::string& key) = 0;
  virtual Result<std::vector<std::string>> list(const std::string& prefix) = 0;
};

}  // namespace sluice

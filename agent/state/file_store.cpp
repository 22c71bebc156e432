#include "state/file_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "datapath/bpffs.h"

namespace sluice {

Result<std::unique_ptr<FileStore>> FileStore::open(const std::string& dir) {
  if (auto s = mkdir_p(dir, 0700); !s) return Error{s.error()};
  return std::make_unique<FileStore>(dir);
}

std::string FileStore::path(const std::string& key) const {
  return dir_ + "/" + key + ".json";
}

Result<std::optional<std::string>> FileStore::get(const std::string& key) {
  std::ifstream in(path(key));
  if (!in) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return err("state " + path(key) + ": " + errno_str(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return std::optional<std::string>{ss.str()};
}

Status FileStore::put(const std::string& key, const std::string& value) {
  const std::string p = path(key);
  if (auto s = mkdir_p(std::filesystem::path(p).parent_path(), 0700); !s)
    return s;
  const std::string tmp = p + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                     0600));
  if (!fd.valid()) return err("state " + tmp + ": " + errno_str(errno));
  size_t off = 0;
  while (off < value.size()) {
    ssize_t n = ::write(fd.get(), value.data() + off, value.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return err("state " + tmp + ": write: " + errno_str(errno));
    }
    off += size_t(n);
  }
  if (::fsync(fd.get())) return err("state " + tmp + ": fsync: " + errno_str(errno));
  fd.reset();
  if (::rename(tmp.c_str(), p.c_str()))
    return err("state " + p + ": rename: " + errno_str(errno));
  return {};
}

Status FileStore::remove(const std::string& key) {
  if (::unlink(path(key).c_str()) && errno != ENOENT)
    return err("state " + path(key) + ": " + errno_str(errno));
  return {};
}

Result<std::vector<std::string>> FileStore::list(const std::string& prefix) {
  std::vector<std::string> keys;
  std::error_code ec;
  const std::filesystem::path base(dir_);
  for (auto it = std::filesystem::recursive_directory_iterator(base, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return err("state " + dir_ + ": " + ec.message());
    if (!it->is_regular_file() || it->path().extension() != ".json") continue;
    std::string rel = std::filesystem::relative(it->path(), base).string();
    rel.resize(rel.size() - 5);
    if (rel.rfind(prefix, 0) == 0) keys.push_back(rel);
  }
  return keys;
}

Status FileStore::lock() {
  const std::string p = dir_ + "/agent.lock";
  lock_.reset(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_.valid()) return err("lock " + p + ": " + errno_str(errno));
  if (::flock(lock_.get(), LOCK_EX | LOCK_NB))
    return err("another sluice-agent already runs with state directory " +
               dir_ + " (" + p + " is locked)");
  return {};
}

}  // namespace sluice

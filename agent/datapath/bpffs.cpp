#include "datapath/bpffs.h"

#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "common/fd.h"

namespace sluice {
namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;

std::string nearest_existing(std::string p) {
  while (!p.empty() && ::access(p.c_str(), F_OK) != 0) {
    auto pos = p.find_last_of('/');
    p = pos == 0 ? "/" : p.substr(0, pos);
    if (pos == std::string::npos) return "/";
  }
  return p.empty() ? "/" : p;
}

// Inode identity of a process's mount namespace; false if unreadable.
bool mnt_ns_of(const std::string& pid, struct stat* st) {
  return ::stat(("/proc/" + pid + "/ns/mnt").c_str(), st) == 0;
}

// `ip netns exec` runs its command in a fresh mount namespace whose new
// /sys hides the bpffs of the namespace it was started from, and that
// namespace dies with the agent, taking every pin (and so every attached
// program) with it. Join the mount namespace of the parent instead (the
// shell or test runner that started us), falling back to PID 1's.
void join_parent_mount_ns() {
  struct stat self{};
  if (!mnt_ns_of("self", &self)) return;
  for (const std::string pid : {std::to_string(::getppid()), std::string("1")}) {
    struct stat other{};
    if (!mnt_ns_of(pid, &other)) continue;
    if (other.st_ino == self.st_ino && other.st_dev == self.st_dev) return;
    UniqueFd ns(::open(("/proc/" + pid + "/ns/mnt").c_str(),
                       O_RDONLY | O_CLOEXEC));
    if (ns.valid() && ::setns(ns.get(), CLONE_NEWNS) == 0) {
      spdlog::info("bpffs: joined the mount namespace of pid {} so pins "
                   "outlive the agent", pid);
      return;
    }
    spdlog::warn("bpffs: cannot join the mount namespace of pid {}: {}", pid,
                 errno_str(errno));
  }
}

}  // namespace

bool on_bpffs(const std::string& path) {
  struct statfs st{};
  if (::statfs(nearest_existing(path).c_str(), &st)) return false;
  return st.f_type == kBpfFsMagic;
}

Status mkdir_p(const std::string& path, unsigned mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return err("mkdir " + path + ": " + ec.message());
  ::chmod(path.c_str(), mode);
  return {};
}

Status ensure_bpffs(const BpffsLayout& layout) {
  const std::string& root = layout.root;
  if (!on_bpffs(root)) join_parent_mount_ns();
  if (!on_bpffs(root)) {
    const bool under_sys =
        root.rfind("/sys/fs/bpf/", 0) == 0 || root == "/sys/fs/bpf";
    const std::string mnt = under_sys ? "/sys/fs/bpf" : root;
    if (auto s = mkdir_p(mnt, 0700); !s) return s;
    if (::mount("bpf", mnt.c_str(), "bpf", 0, "mode=0700") != 0)
      return err("mount bpffs at " + mnt + ": " + errno_str(errno));
    spdlog::info("bpffs: mounted a BPF filesystem at {}", mnt);
  }
  for (const auto& d : {root, layout.maps(), layout.links()})
    if (auto s = mkdir_p(d, 0700); !s) return s;
  return {};
}

}  // namespace sluice

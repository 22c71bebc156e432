#include "datapath/bpffs.h"

#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

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

pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  auto rp = line.rfind(')');  // comm may contain spaces and parens
  if (rp == std::string::npos) return 0;
  std::istringstream rest(line.substr(rp + 2));
  char state;
  pid_t ppid = 0;
  rest >> state >> ppid;
  return ppid;
}

bool setns_to(const std::string& pid) {
  UniqueFd ns(::open(("/proc/" + pid + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC));
  return ns.valid() && ::setns(ns.get(), CLONE_NEWNS) == 0;
}

// `ip netns exec` runs its command in a fresh mount namespace whose new
// /sys hides the bpffs of the namespace it was started from, and that
// namespace dies with the agent, taking every pin (and so every attached
// program) with it. Join the mount namespace the agent was started from
// instead: the nearest ancestor in another mount namespace that has a
// bpffs at `path`; if the agent was orphaned at start (double fork), any
// process that has one; else the nearest ancestor's (bpffs is then mounted
// there).
void join_origin_mount_ns(const std::string& path) {
  struct stat self{};
  if (!mnt_ns_of("self", &self)) return;
  auto other_ns = [&](const std::string& pid) {
    struct stat st{};
    return mnt_ns_of(pid, &st) &&
           !(st.st_ino == self.st_ino && st.st_dev == self.st_dev);
  };
  auto has_bpffs = [&](const std::string& pid) {
    struct statfs st{};
    const std::string p = "/proc/" + pid + "/root" + path;
    return ::statfs(nearest_existing(p).c_str(), &st) == 0 &&
           st.f_type == kBpfFsMagic;
  };
  std::vector<std::string> ancestors;
  for (pid_t p = ::getppid(); p > 0 && ancestors.size() < 64; p = parent_of(p))
    ancestors.push_back(std::to_string(p));
  std::vector<std::string> others;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string n = e.path().filename();
    if (!n.empty() && std::isdigit(static_cast<unsigned char>(n[0])))
      others.push_back(n);
  }
  for (const auto* list : {&ancestors, &others})
    for (const auto& pid : *list)
      if (other_ns(pid) && has_bpffs(pid) && setns_to(pid)) {
        spdlog::info("bpffs: joined the mount namespace of pid {} (has the "
                     "shared bpffs) so pins outlive the agent", pid);
        return;
      }
  for (const auto& pid : ancestors)
    if (other_ns(pid) && setns_to(pid)) {
      spdlog::info("bpffs: joined the mount namespace of pid {} so pins "
                   "outlive the agent", pid);
      return;
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
  if (!on_bpffs(root)) join_origin_mount_ns(root);
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

#include "datapath/sock_datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "datapath/link_pin.h"
#include "datapath/map_pins.h"
#include "sluice_sock.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace sluice {
namespace {

constexpr const char* kProgPrefix = "sluice_sock_";
constexpr const char* kPinPrefix = "sock_";
constexpr long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC

Result<uint64_t> own_netns_cookie() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) s.reset(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return err("socket: " + errno_str(errno));
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (::getsockopt(s.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
    return err("getsockopt(SO_NETNS_COOKIE): " + errno_str(errno));
  return cookie;
}

bool same_value(const sluice_sock_netns& a, const sluice_sock_netns& b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

sluice_sock_netns value_of(const EndpointRecord& r) {
  sluice_sock_netns v{};
  v.ep_id = r.ep_id;
  v.ifindex = r.host_ifindex;
  for (const auto& ip : r.ips) {
    if (ip.family == AF_INET) std::memcpy(v.ipv4, ip.bytes.data(), 4);
    if (ip.family == AF_INET6) std::memcpy(v.ipv6, ip.bytes.data(), 16);
  }
  return v;
}

}  // namespace

std::string cgroup2_mount() {
  std::ifstream in("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (in >> dev >> dir >> type && std::getline(in, rest))
    if (type == "cgroup2") return dir;
  return "";
}

Result<uint64_t> netns_cookie(const std::string& netns_path) {
  if (netns_path.empty()) return own_netns_cookie();
  UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return err("netns " + netns_path + ": " + errno_str(errno));
  // setns() moves only the calling thread: a short-lived helper thread
  // enters the namespace, so no agent thread ever has to find its way back.
  Result<uint64_t> out = err("netns " + netns_path + ": helper did not run");
  std::thread t([&] {
    if (::setns(ns.get(), CLONE_NEWNET)) {
      out = err("netns " + netns_path + ": setns: " + errno_str(errno));
      return;
    }
    out = own_netns_cookie();
    if (!out) out = err("netns " + netns_path + ": " + out.error());
  });
  t.join();
  return out;
}

Result<std::unique_ptr<SockDatapath>> SockDatapath::load(
    const BpffsLayout& layout, uint32_t ct_max) {
  auto dp = std::make_unique<SockDatapath>(Token{});
  dp->layout_ = layout;
  dp->skel_ = sluice_sock__open();
  if (!dp->skel_) return err("open sluice_sock object: " + errno_str(errno));
  if (auto s = load_pinned(dp->skel_->obj, dp->skel_->maps.sluice_ct, ct_max,
                           layout, "sluice_sock",
                           [&] { return sluice_sock__load(dp->skel_); });
      !s)
    return Error{s.error()};
  return dp;
}

SockDatapath::~SockDatapath() {
  links_.clear();
  if (skel_) sluice_sock__destroy(skel_);
}

Status SockDatapath::attach(const std::string& cgroup) {
  struct statfs fs {};
  if (::statfs(cgroup.c_str(), &fs))
    return err("lb.socketLBCgroup " + cgroup + ": " + errno_str(errno));
  if (fs.f_type != kCgroup2Magic) {
    const std::string at = cgroup2_mount();
    return err("lb.socketLBCgroup " + cgroup +
               ": not a cgroup v2 directory (socket LB needs cgroup2" +
               (at.empty() ? std::string(", and none is mounted)")
                           : "; it is mounted at " + at + ")"));
  }
  UniqueFd cg(::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct stat st {};
  if (!cg.valid() || ::fstat(cg.get(), &st))
    return err("lb.socketLBCgroup " + cgroup + ": " + errno_str(errno));
  // On cgroup2 a directory's inode number is the cgroup id links report.
  const uint64_t cgroup_id = st.st_ino;

  std::vector<UniqueFd> links;
  bpf_program* p;
  bpf_object__for_each_program(p, skel_->obj) {
    const std::string name = bpf_program__name(p);
    const std::string pin = layout_.links() + "/" + kPinPrefix +
                            name.substr(std::strlen(kProgPrefix));
    const bpf_attach_type type = bpf_program__expected_attach_type(p);
    const std::string what = "socket LB " + name + " on " + cgroup;
    auto reused = reuse_pinned_link(
        pin,
        [&](const bpf_link_info& li) {
          return li.type == BPF_LINK_TYPE_CGROUP &&
                 li.cgroup.cgroup_id == cgroup_id &&
                 li.cgroup.attach_type == uint32_t(type);
        },
        bpf_program__fd(p), what);
    if (!reused) return Error{reused.error()};
    if (reused->valid()) {
      links.push_back(std::move(*reused));
      continue;
    }
    UniqueFd fd(bpf_link_create(bpf_program__fd(p), cg.get(), type, nullptr));
    if (!fd.valid())
      return err(what + ": attach: " + errno_str(errno));
    if (bpf_obj_pin(fd.get(), pin.c_str()))
      return err(what + ": pin link at " + pin + ": " + errno_str(errno));
    spdlog::debug("{}: attached", what);
    links.push_back(std::move(fd));
  }
  links_ = std::move(links);
  return {};
}

Status SockDatapath::detach(const BpffsLayout& layout) {
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(layout.links(), ec)) {
    if (e.path().filename().string().rfind(kPinPrefix, 0) != 0) continue;
    spdlog::info("link {}: lb.socketLB is off, detaching", e.path().string());
    if (auto s = detach_pinned_link(e.path().string()); !s) return s;
  }
  return {};
}

int SockDatapath::map_fd(const std::string& name) const {
  bpf_map* m = bpf_object__find_map_by_name(skel_->obj, name.c_str());
  return m ? bpf_map__fd(m) : -1;
}

std::vector<uint32_t> SockDatapath::link_ids() const {
  std::vector<uint32_t> ids;
  for (const auto& l : links_) {
    bpf_link_info li{};
    uint32_t len = sizeof(li);
    if (bpf_obj_get_info_by_fd(l.get(), &li, &len) == 0) ids.push_back(li.id);
  }
  return ids;
}

Status SockNetns::sync(const std::vector<EndpointRecord>& endpoints) {
  std::lock_guard g(mu_);
  if (!self_) {
    auto c = netns_cookie("");
    if (!c) return err("socket LB: the agent's own netns: " + c.error());
    self_ = *c;
  }
  if (!adopted_) {
    // Whatever a previous agent left pinned: compared below, so entries of
    // pods deleted meanwhile go and unchanged ones are not rewritten.
    uint64_t key = 0, next = 0;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd_, prev, &next) == 0) {
      key = next;
      prev = &key;
      sluice_sock_netns v{};
      if (bpf_map_lookup_elem(fd_, &key, &v) == 0) written_[key] = v;
    }
    adopted_ = true;
  }

  std::map<uint64_t, sluice_sock_netns> want;
  want[self_] = sluice_sock_netns{};  // ep_id 0: the host
  std::map<std::string, std::pair<std::string, uint64_t>> cookies;
  for (const auto& r : endpoints) {
    const std::string k = r.container_id + "/" + r.ifname;
    uint64_t cookie = 0;
    if (auto it = cookies_.find(k);
        it != cookies_.end() && it->second.first == r.netns) {
      cookie = it->second.second;
    } else {
      auto c = netns_cookie(r.netns);
      if (!c) {
        // The pod's namespace is gone (it is being deleted): nothing of it
        // can open a socket any more.
        spdlog::warn("socket LB: endpoint {}/{}: {}; not translated",
                     r.pod_namespace, r.pod_name, c.error());
        continue;
      }
      cookie = *c;
    }
    cookies[k] = {r.netns, cookie};
    // A pod with several interfaces: the first one's addresses are its
    // client address (sluice_lxc sees the one the route picks; the first
    // interface carries the default route).
    want.emplace(cookie, value_of(r));
  }
  cookies_ = std::move(cookies);

  for (const auto& [cookie, v] : want) {
    auto it = written_.find(cookie);
    if (it != written_.end() && same_value(it->second, v)) continue;
    if (bpf_map_update_elem(fd_, &cookie, &v, BPF_ANY))
      return err("map " SLUICE_MAP_SOCK_NETNS ": netns cookie " +
                 std::to_string(cookie) + " (endpoint id " +
                 std::to_string(v.ep_id) + "): " + errno_str(errno));
    written_[cookie] = v;
  }
  for (auto it = written_.begin(); it != written_.end();) {
    if (want.count(it->first)) {
      ++it;
      continue;
    }
    if (bpf_map_delete_elem(fd_, &it->first) && errno != ENOENT)
      return err("map " SLUICE_MAP_SOCK_NETNS ": delete netns cookie " +
                 std::to_string(it->first) + ": " + errno_str(errno));
    it = written_.erase(it);
  }
  return {};
}

}  // namespace sluice

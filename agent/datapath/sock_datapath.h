// The socket-level load balancer (sluice_sock, lb.socketLB): its object
// loaded over sluice_lxc's pinned maps (the frontends, backends, affinity,
// events and counters are the same maps), its eight cgroup programs
// attached to lb.socketLBCgroup by links pinned as
// <bpffs>/links/sock_<hook>, and the list of network namespaces it may
// translate (sluice_sock_netns): the agent's own and its pods'.
//
// Links, not BPF_PROG_ATTACH: a cgroup link always coexists with other
// links at the same cgroup (multi-attach), so several agents on one machine
// (one per node namespace in tests) each keep their own programs, which
// only act for the namespaces in their own allow list. Pinned, they stay
// attached while the agent restarts; `sluice-agent --cleanup` removes them
// with every other link under the bpffs root.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "datapath/bpffs.h"
#include "endpoint/record.h"
#include "sluice/abi.h"

struct sluice_sock;  // generated skeleton

namespace sluice {

// The cookie (SO_NETNS_COOKIE) of the network namespace at `netns_path`, or
// of the caller's own with "". A socket created on a helper thread that
// entered the namespace: the caller's thread never moves.
Result<uint64_t> netns_cookie(const std::string& netns_path);

// Where cgroup2 is mounted in this mount namespace ("" if nowhere): hosts
// with systemd's hybrid layout have it at /sys/fs/cgroup/unified, not at
// lb.socketLBCgroup's default.
std::string cgroup2_mount();

class SockDatapath {
 public:
  // Load after sluice_lxc: the shared maps are reused through their pins,
  // so sluice_ct must be declared with conntrack.max as there.
  static Result<std::unique_ptr<SockDatapath>> load(const BpffsLayout& layout,
                                                    uint32_t ct_max);
  ~SockDatapath();  // closes fds only: pins and links stay
  SockDatapath(const SockDatapath&) = delete;
  SockDatapath& operator=(const SockDatapath&) = delete;

  // Attaches every program to the cgroup v2 directory `cgroup` (reusing
  // and updating links pinned for the same cgroup; links pinned for
  // another cgroup are replaced).
  Status attach(const std::string& cgroup);
  // Detaches and unpins the socket links of a previous run (lb.socketLB
  // turned off). Works without a loaded object.
  static Status detach(const BpffsLayout& layout);

  int map_fd(const std::string& name) const;
  std::vector<uint32_t> link_ids() const;

  struct Token {
   private:
    Token() = default;
    friend class SockDatapath;
  };
  explicit SockDatapath(Token) {}

 private:
  BpffsLayout layout_;
  sluice_sock* skel_ = nullptr;
  std::vector<UniqueFd> links_;
};

// Keeps sluice_sock_netns equal to {the agent's namespace} + {each local
// endpoint's}. Cookies are looked up once per endpoint (entering its
// namespace costs a thread); the first sync adopts what is pinned and
// removes entries of endpoints that went away while no agent ran.
class SockNetns {
 public:
  explicit SockNetns(int map_fd) : fd_(map_fd) {}
  // Called from every reconcile (API threads): serialised.
  Status sync(const std::vector<EndpointRecord>& endpoints);

 private:
  std::mutex mu_;
  int fd_;
  uint64_t self_ = 0;
  bool adopted_ = false;
  // container id + "/" + ifname -> (netns path, its cookie)
  std::map<std::string, std::pair<std::string, uint64_t>> cookies_;
  std::map<uint64_t, sluice_sock_netns> written_;
};

}  // namespace sluice

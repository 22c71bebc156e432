// Netlink operations the endpoint manager needs (veth pairs, addresses,
// routes, permanent neighbours), through libnl-route-3. Operations on a pod
// run in the pod's network namespace on a short-lived thread (setns is
// per-thread), so the agent's own threads never change namespace.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "common/cidr.h"
#include "common/result.h"

struct nl_sock;

namespace sluice {

using Mac = std::array<uint8_t, 6>;
std::string mac_str(const Mac& m);

class Netlink {
 public:
  static Result<Netlink> open();  // in the calling thread's netns
  ~Netlink();
  Netlink(Netlink&& o) noexcept;
  Netlink& operator=(Netlink&&) = delete;
  Netlink(const Netlink&) = delete;

  // Creates `host` here and its peer `peer` directly inside the namespace
  // given by `netns_fd`. Fails if `host` exists.
  Status create_veth(const std::string& host, const std::string& peer,
                     int netns_fd);
  Status delete_link(const std::string& name);  // missing is not an error
  Result<unsigned> ifindex(const std::string& name);
  Result<Mac> mac(const std::string& name);
  Status set_up(const std::string& name);
  Status add_address(const std::string& dev, const Cidr& addr);
  // A route to `dst` out of `dev`, via `gateway` (onlink) if given.
  Status add_route(const std::string& dev, const Cidr& dst,
                   const IpAddr* gateway);
  Status add_permanent_neighbour(const std::string& dev, const IpAddr& ip,
                                 const Mac& mac);
  // A neighbour the kernel resolves and keeps resolved by itself
  // (NTF_EXT_MANAGED, Linux 5.16): for next hops only XDP uses, which
  // never trigger resolution on their own.
  Status add_managed_neighbour(unsigned ifindex, const IpAddr& ip);

 private:
  explicit Netlink(nl_sock* s) : sk_(s) {}
  nl_sock* sk_ = nullptr;
};

// Runs `fn` with a Netlink socket inside the network namespace at
// `netns_path` (e.g. /var/run/netns/x or /proc/<pid>/ns/net).
Status in_netns(const std::string& netns_path,
                const std::function<Status(Netlink&)>& fn);

}  // namespace sluice

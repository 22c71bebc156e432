#include "fwd_netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "endpoint/netlink.h"

namespace sluice::test {
namespace {

void write_sysctl(const std::string& path, const char* v) { std::ofstream(path) << v; }

}  // namespace

int current_netns_fd() { return ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC); }

int leave_netns(int fd) {
  int rc = setns(fd, CLONE_NEWNET) ? -errno : 0;
  ::close(fd);
  return rc;
}

std::string enter_fwd_netns(FwdNetns* out) {
  if (unshare(CLONE_NEWNET)) return std::string("unshare: ") + std::strerror(errno);
  auto nl = Netlink::open();
  if (!nl) return nl.error();
  int self = current_netns_fd();
  if (self < 0) return std::string("open netns: ") + std::strerror(errno);
  auto v = nl->create_veth("np0", "np1", self);
  ::close(self);
  if (!v) return v.error();
  // Addresses usable at once (no DAD), and forwarding: bpf_fib_lookup's
  // input lookups need it, as the stack's forwarding does.
  write_sysctl("/proc/sys/net/ipv6/conf/np0/accept_dad", "0");
  write_sysctl("/proc/sys/net/ipv4/conf/all/forwarding", "1");
  write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1");
  for (const char* d : {"np0", "np1", "lo"})
    if (auto s = nl->set_up(d); !s) return s.error();
  for (auto [a, len] : {std::pair{"198.18.0.2", 24}, {"2001:db8::2", 64}})
    if (auto s = nl->add_address("np0", Cidr{*IpAddr::parse(a), uint8_t(len)}); !s)
      return s.error();
  auto gw = *IpAddr::parse("198.18.0.3"), gw6 = *IpAddr::parse("2001:db8::3");
  for (auto [dst, via] : {std::pair{"10.201.0.0/16", &gw}, {"fd10:201::/64", &gw6}})
    if (auto s = nl->add_route("np0", *Cidr::parse(dst), via); !s) return s.error();
  for (auto [ip, mac] : {std::pair{"198.18.0.3", FwdNetns::kPeerMac},
                         {"2001:db8::3", FwdNetns::kPeerMac},
                         {"198.18.0.1", FwdNetns::kClientMac},
                         {"2001:db8::1", FwdNetns::kClientMac}})
    if (auto s = nl->add_permanent_neighbour("np0", *IpAddr::parse(ip), mac); !s)
      return s.error();
  auto idx = nl->ifindex("np0");
  if (!idx) return idx.error();
  auto mac = nl->mac("np0");
  if (!mac) return mac.error();
  out->ifindex = *idx;
  out->mac = *mac;
  return "";
}

}  // namespace sluice::test

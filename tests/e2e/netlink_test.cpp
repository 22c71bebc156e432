// The endpoint plumbing through libnl against real namespaces: a veth pair
// created across namespaces, /32 and /128 addresses, onlink default routes
// via a permanent neighbour, host routes back, and a ping both ways.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>

#include "e2e_util.h"
#include "endpoint/netlink.h"

namespace sluice::e2e {
namespace {

struct UniqueFdLike {  // an open namespace file, closed on scope exit
  explicit UniqueFdLike(const std::string& p) : fd(::open(p.c_str(), O_RDONLY)) {}
  ~UniqueFdLike() { if (fd >= 0) ::close(fd); }
  int fd;
};

class NetlinkE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_blackhole_routes();
    sfx_ = unique_suffix();
    node_ = std::make_unique<Netns>("sl-nn" + sfx_);
    pod_ = std::make_unique<Netns>("sl-np" + sfx_);
  }
  std::string path(const Netns& n) { return "/var/run/netns/" + n.name(); }
  std::string sfx_;
  std::unique_ptr<Netns> node_, pod_;
};

TEST_F(NetlinkE2E, VethAcrossNamespacesWithRoutesAndNeighbours) {
  const std::string host = "slh" + sfx_;
  const auto pod4 = *Cidr::parse("10.200.0.5/32");
  const auto pod6 = *Cidr::parse("fd10:200::5/128");
  const auto gw4 = *IpAddr::parse("169.254.1.1");
  const auto gw6 = *IpAddr::parse("fe80::1");
  Mac host_mac{};

  auto s = in_netns(path(*node_), [&](Netlink& nl) -> Status {
    UniqueFdLike podfd(path(*pod_));
    if (auto r = nl.create_veth(host, "eth0", podfd.fd); !r) return r;
    // A second create of the same name must fail, not clobber.
    if (nl.create_veth(host, "eth1", podfd.fd))
      return err("duplicate veth create succeeded");
    auto m = nl.mac(host);
    if (!m) return Error{m.error()};
    host_mac = *m;
    if (auto r = nl.set_up(host); !r) return r;
    if (auto r = nl.add_address("lo", *Cidr::parse("198.18.30.1/32")); !r)
      return r;
    if (auto r = nl.add_address("lo", *Cidr::parse("fd10:200::ff/128")); !r)
      return r;
    if (auto r = nl.add_route(host, pod4, nullptr); !r) return r;
    return nl.add_route(host, pod6, nullptr);
  });
  ASSERT_TRUE(s) << s.error();

  s = in_netns(path(*pod_), [&](Netlink& nl) -> Status {
    for (const auto& c : {pod4, pod6})
      if (auto r = nl.add_address("eth0", c); !r) return r;
    if (auto r = nl.set_up("eth0"); !r) return r;
    for (const auto* gw : {&gw4, &gw6}) {
      if (auto r = nl.add_permanent_neighbour("eth0", *gw, host_mac); !r)
        return r;
      const auto dflt = *Cidr::parse(gw->family == AF_INET ? "0.0.0.0/0" : "::/0");
      if (auto r = nl.add_route("eth0", dflt, gw); !r) return r;
    }
    return {};
  });
  ASSERT_TRUE(s) << s.error();

  auto r = pod_->exec("ip route show default");
  EXPECT_NE(r.out.find("via 169.254.1.1 dev eth0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("onlink"), std::string::npos) << r.out;
  r = pod_->exec("ip neigh show 169.254.1.1");
  EXPECT_NE(r.out.find(mac_str(host_mac)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PERMANENT"), std::string::npos) << r.out;
  EXPECT_EQ(node_->exec("ping -n -c 1 -W 2 10.200.0.5").rc, 0);
  EXPECT_EQ(pod_->exec("ping -n -c 1 -W 2 198.18.30.1").rc, 0);
  // Up to 3 tries: the host veth link-local address is still in DAD for
  // about a second, and neighbour discovery waits for it. (The endpoint
  // manager will set accept_dad=0 on both ends.)
  auto r6 = node_->exec("ping -6 -n -c 3 -W 2 fd10:200::5");
  EXPECT_EQ(r6.rc, 0) << r6.out << node_->exec("sh -c 'ip -6 addr; ip -6 route; ip -6 neigh'").out
                      << pod_->exec("sh -c 'ip -6 addr; ip -6 route; ip -6 neigh'").out;

  s = in_netns(path(*node_), [&](Netlink& nl) -> Status {
    if (auto r = nl.delete_link(host); !r) return r;
    return nl.delete_link(host);  // twice is fine
  });
  ASSERT_TRUE(s) << s.error();
  EXPECT_NE(pod_->exec("ip link show eth0").rc, 0) << "peer must go too";
}

}  // namespace
}  // namespace sluice::e2e

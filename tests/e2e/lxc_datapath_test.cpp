// sluice_lxc on real veths: two pod namespaces behind a node namespace, the
// program attached with tcx links on both host-side veths, maps filled the
// way the agent fills them. Real pings and TCP connects go pod to pod
// through bpf_redirect_peer.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

#include "datapath/policy_maps.h"
#include "datapath/tcx_link.h"
#include "e2e_util.h"
#include "endpoint/netlink.h"
#include "sluice/abi.h"
#include "sluice_lxc.skel.h"

namespace sluice::e2e {
namespace {

struct Pod {
  std::unique_ptr<Netns> ns;
  std::string host_dev;
  std::string v4;
  sluice_endpoint ep{};
};

class LxcDatapathE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_blackhole_routes();
    sfx_ = unique_suffix();
    node_ = std::make_unique<Netns>("sl-ln" + sfx_);
    skel_ = sluice_lxc__open();
    ASSERT_NE(skel_, nullptr);
    bpf_map* m;
    bpf_object__for_each_map(m, skel_->obj) bpf_map__set_pin_path(m, nullptr);
    ASSERT_EQ(sluice_lxc__load(skel_), 0);
    pol_ = std::make_unique<PolicyMaps>(bpf_map__fd(skel_->maps.sluice_policy),
                                        bpf_map__fd(skel_->maps.sluice_pol_tmpl));
    ASSERT_NO_FATAL_FAILURE(add_pod(a_, "a", 1, kIdA, "10.200.0.1"));
    ASSERT_NO_FATAL_FAILURE(add_pod(b_, "b", 2, kIdB, "10.200.0.2"));
  }
  void TearDown() override {
    links_.clear();  // detach before the namespaces go
    if (skel_) sluice_lxc__destroy(skel_);
    a_.ns.reset();
    b_.ns.reset();
    node_.reset();
  }

  static constexpr uint32_t kIdA = 1000, kIdB = 2000;

  void add_pod(Pod& p, const std::string& name, uint32_t ep_id, uint32_t id,
               const std::string& v4) {
    p.ns = std::make_unique<Netns>("sl-l" + name + sfx_);
    p.host_dev = "sl" + name + sfx_;
    p.v4 = v4;
    Mac host_mac{}, pod_mac{};
    unsigned ifindex = 0;
    auto s = in_netns("/var/run/netns/" + node_->name(), [&](Netlink& nl) -> Status {
      UniqueFd podns(::open(("/var/run/netns/" + p.ns->name()).c_str(), O_RDONLY));
      if (auto r = nl.create_veth(p.host_dev, "eth0", podns.get()); !r) return r;
      if (auto r = nl.set_up(p.host_dev); !r) return r;
      auto m = nl.mac(p.host_dev);
      if (!m) return Error{m.error()};
      host_mac = *m;
      auto idx = nl.ifindex(p.host_dev);
      if (!idx) return Error{idx.error()};
      ifindex = *idx;
      for (auto dir : {TcxDir::Ingress, TcxDir::Egress}) {
        int prog = bpf_program__fd(dir == TcxDir::Ingress ? skel_->progs.sluice_lxc_out
                                                          : skel_->progs.sluice_lxc_in);
        auto l = TcxLink::attach(ifindex, dir, prog, "", p.host_dev);
        if (!l) return Error{l.error()};
        links_.push_back(std::move(*l));
      }
      return {};
    });
    ASSERT_TRUE(s) << s.error();
    const auto gw = *IpAddr::parse("169.254.1.1");
    s = in_netns("/var/run/netns/" + p.ns->name(), [&](Netlink& nl) -> Status {
      if (auto r = nl.add_address("eth0", *Cidr::parse(v4 + "/32")); !r) return r;
      if (auto r = nl.set_up("eth0"); !r) return r;
      auto m = nl.mac("eth0");
      if (!m) return Error{m.error()};
      pod_mac = *m;
      if (auto r = nl.add_permanent_neighbour("eth0", gw, host_mac); !r) return r;
      return nl.add_route("eth0", *Cidr::parse("0.0.0.0/0"), &gw);
    });
    ASSERT_TRUE(s) << s.error();

    p.ep.ep_id = ep_id;
    p.ep.identity = id;
    p.ep.ifindex = ifindex;
    inet_pton(AF_INET, v4.c_str(), p.ep.ipv4);
    std::memcpy(p.ep.pod_mac, pod_mac.data(), 6);
    std::memcpy(p.ep.host_mac, host_mac.data(), 6);
    ASSERT_NO_FATAL_FAILURE(publish(p));
    sluice_ipcache_key k{};
    k.prefixlen = 64;
    k.family = AF_INET;
    std::memcpy(k.addr, p.ep.ipv4, 4);
    sluice_ipcache_value v{id, id, 0, 0};
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.sluice_ipcache, &k, sizeof(k), &v,
                                   sizeof(v), 0), 0);
  }
  void publish(const Pod& p) {
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.sluice_ep_if, &p.ep.ifindex, 4, &p.ep,
                                   sizeof(p.ep), 0), 0);
    sluice_addr_key k{};
    k.family = AF_INET;
    std::memcpy(k.addr, p.ep.ipv4, 4);
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.sluice_ep_ip, &k, sizeof(k), &p.ep,
                                   sizeof(p.ep), 0), 0);
  }
  uint64_t drops(uint32_t dir, uint32_t reason) {
    uint32_t idx = SLUICE_COUNTER_IDX(dir, reason);
    std::vector<sluice_counter> v(libbpf_num_possible_cpus());
    if (bpf_map__lookup_elem(skel_->maps.sluice_counters, &idx, 4, v.data(),
                             v.size() * sizeof(sluice_counter), 0))
      return 0;
    uint64_t n = 0;
    for (auto& c : v) n += c.packets;
    return n;
  }
  bool ping(const Pod& from, const std::string& dst, const std::string& src = "") {
    return from.ns->exec("ping -n -c 1 -W 1 " + (src.empty() ? "" : "-I " + src + " ") + dst)
               .rc == 0;
  }
  // A bounded TCP connect from `from` to dst:port, against a one-shot
  // listener in `to`.
  bool connect(const Pod& from, const Pod& to, int port) {
    auto srv = "timeout 3 nc -l -p " + std::to_string(port) + " >/dev/null 2>&1 &";
    to.ns->exec("sh -c '" + srv + "'");
    ::usleep(200 * 1000);
    return from.ns->exec("nc -z -w 1 " + to.v4 + " " + std::to_string(port)).rc == 0;
  }

  std::string sfx_;
  std::unique_ptr<Netns> node_;
  Pod a_, b_;
  sluice_lxc* skel_ = nullptr;
  std::unique_ptr<PolicyMaps> pol_;
  std::vector<TcxLink> links_;
};

TEST_F(LxcDatapathE2E, PodsReachEachOtherThroughRedirect) {
  EXPECT_TRUE(ping(a_, b_.v4));
  EXPECT_TRUE(ping(b_, a_.v4));
  EXPECT_TRUE(connect(a_, b_, 80));
  // No bridge and no routes in the node namespace: only the program
  // delivers. Without the endpoint entry for B, A's packets go to the node
  // stack, which has no route to B.
  EXPECT_NE(node_->exec("ip route show 10.200.0.2").out.find("10.200"), 0u);
}

TEST_F(LxcDatapathE2E, SpoofedSourceIsDropped) {
  ASSERT_EQ(a_.ns->exec("ip addr add 10.200.0.99/32 dev eth0").rc, 0);
  EXPECT_FALSE(ping(a_, b_.v4, "10.200.0.99"));
  EXPECT_GE(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_SPOOFED_SOURCE), 1u);
  EXPECT_TRUE(ping(a_, b_.v4));
}

TEST_F(LxcDatapathE2E, IngressPolicyAllowsOnlyTheRule) {
  b_.ep.flags = SLUICE_EP_INGRESS_ENFORCED;
  auto s = pol_->install(b_.ep.ep_id, {{kIdA, SLUICE_DIR_INGRESS, IPPROTO_TCP, false, 80, 80, 1}});
  ASSERT_TRUE(s) << s.error();
  ASSERT_NO_FATAL_FAILURE(publish(b_));
  EXPECT_TRUE(connect(a_, b_, 80));
  EXPECT_FALSE(connect(a_, b_, 81));
  EXPECT_FALSE(ping(a_, b_.v4)) << "ICMP needs a rule without ports";
  EXPECT_GE(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_POLICY_DENY_INGRESS), 2u);
  // B's own connections out are not restricted, and replies flow back.
  EXPECT_TRUE(ping(b_, a_.v4));
}

}  // namespace
}  // namespace sluice::e2e

// The sluice_lxc test fixture shared by the pod datapath and load-balancer
// tests: the program runs "on" ifindex 1 (lo): the test run needs a real
// device, and the endpoint table says which pod that device belongs to.
// The fixture's endpoints name other host veths (11, 12), so the fast
// path's "arrives on the veth of the source's endpoint" check fails for
// them and every packet takes the slow path (full checks); tests of the
// fast path put the acting endpoint on kDev, as in production.
#pragma once

#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <cstring>
#include <memory>

#include "common/cidr.h"
#include "datapath/conntrack.h"
#include "datapath/policy_maps.h"
#include "harness.h"
#include "sluice_lxc.skel.h"

namespace sluice::test {

inline constexpr uint32_t kDev = 1;
inline constexpr uint32_t kIdA = 1000, kIdB = 2000, kIdC = 3000, kCidr = (1u << 24) + 1;

inline sluice_endpoint make_ep(uint32_t id, uint32_t identity, const char* v4,
                        const char* v6, uint32_t ifindex, uint8_t tag) {
  sluice_endpoint e{};
  e.ep_id = id;
  e.identity = identity;
  e.ifindex = ifindex;
  inet_pton(AF_INET, v4, e.ipv4);
  inet_pton(AF_INET6, v6, e.ipv6);
  for (int i = 0; i < 6; i++) {
    e.pod_mac[i] = i == 5 ? tag : 0x02;
    e.host_mac[i] = i == 5 ? uint8_t(tag + 0x80) : 0x02;
  }
  return e;
}

class LxcTest : public SkeletonFixture<sluice_lxc> {
 protected:
  void SetUp() override {
    SkeletonFixture::SetUp();
    if (HasFatalFailure()) return;
    a_ = make_ep(1, kIdA, "10.200.0.1", "fd10:200::1", 11, 0x01);
    b_ = make_ep(2, kIdB, "10.200.0.2", "fd10:200::2", 12, 0x02);
    add_local(b_);
    add_local(a_);
    act_as(a_);
    pol_ = std::make_unique<PolicyMaps>(bpf_map__fd(skel_->maps.sluice_policy),
                                        bpf_map__fd(skel_->maps.sluice_pol_tmpl));
  }

  void add_local(const sluice_endpoint& e) {
    sluice_addr_key k4{}, k6{};
    k4.family = AF_INET;
    std::memcpy(k4.addr, e.ipv4, 4);
    k6.family = AF_INET6;
    std::memcpy(k6.addr, e.ipv6, 16);
    ASSERT_EQ(map_update(skel_->maps.sluice_ep_ip, k4, e), 0);
    ASSERT_EQ(map_update(skel_->maps.sluice_ep_ip, k6, e), 0);
    ipcache(e.identity, 0, AF_INET, e.ipv4, 32);
    ipcache(e.identity, 0, AF_INET6, e.ipv6, 128);
  }
  // The endpoint whose host veth the program runs on.
  void act_as(const sluice_endpoint& e) {
    ASSERT_EQ(map_update(skel_->maps.sluice_ep_if, kDev, e), 0);
  }
  void ipcache(uint32_t id, uint32_t cidr_id, int family, const uint8_t* addr,
               int plen) {
    sluice_ipcache_key k{};
    k.prefixlen = 32 + plen;
    k.family = uint8_t(family);
    std::memcpy(k.addr, addr, family == AF_INET ? 4 : 16);
    sluice_ipcache_value v{id, cidr_id ? cidr_id : id, 0, 0};
    ASSERT_EQ(map_update(skel_->maps.sluice_ipcache, k, v), 0);
  }
  void ipcache(uint32_t id, uint32_t cidr_id, const char* cidr) {
    auto c = *sluice::Cidr::parse(cidr);
    ipcache(id, cidr_id, c.addr.family, c.addr.bytes.data(), c.prefixlen);
  }
  void enforce(sluice_endpoint& e, uint32_t flags, std::vector<PolicyEntry> rules) {
    e.flags = flags;
    auto s = pol_->install(e.ep_id, rules);
    ASSERT_TRUE(s) << s.error();
    add_local(e);
    auto on_dev = map_lookup<sluice_endpoint>(skel_->maps.sluice_ep_if, kDev);
    if (on_dev && on_dev->ep_id == e.ep_id) act_as(e);
  }

  RunResult out(const Bytes& f) { return run(skel_->progs.sluice_lxc_out, f); }
  RunResult in(const Bytes& f) { return run(skel_->progs.sluice_lxc_in, f); }
  RunResult run(const bpf_program* p, const Bytes& f) {
    __sk_buff ctx{};
    ctx.ifindex = kDev;
    RunResult r = BpfProgRun(p).ctx_struct(ctx).run(f);
    EXPECT_EQ(r.err, 0) << std::strerror(-r.err);
    return r;
  }
  uint64_t drops(uint32_t dir, uint32_t reason) {
    return read_counter(skel_->maps.sluice_counters, dir, reason).packets;
  }
  // The agent's hook after it deleted or re-plumbed an endpoint.
  void bump_epoch() {
    auto s = ct_endpoints_changed(bpf_map__fd(skel_->maps.sluice_ep_epoch));
    ASSERT_TRUE(s) << s.error();
  }
  void remove_local(const sluice_endpoint& e) {
    sluice_addr_key k4{}, k6{};
    k4.family = AF_INET;
    std::memcpy(k4.addr, e.ipv4, 4);
    k6.family = AF_INET6;
    std::memcpy(k6.addr, e.ipv6, 16);
    ASSERT_EQ(map_delete(skel_->maps.sluice_ep_ip, k4), 0);
    ASSERT_EQ(map_delete(skel_->maps.sluice_ep_ip, k6), 0);
  }
  // Every entry, as `sluicectl ct list` sees them (initiator-oriented).
  std::vector<CtRow> ct_rows() {
    uint64_t total = 0;
    auto rows = ct_dump(bpf_map__fd(skel_->maps.sluice_ct), 1000, &total);
    EXPECT_TRUE(rows) << rows.error();
    return rows ? *rows : std::vector<CtRow>{};
  }
  size_t ct_entries() {
    size_t n = 0;
    sluice_ct_key k{}, next{};
    const void* prev = nullptr;
    while (bpf_map__get_next_key(skel_->maps.sluice_ct, prev, &next, sizeof(next)) == 0) {
      k = next;
      prev = &k;
      n++;
    }
    return n;
  }

  static PolicyEntry allow(uint32_t id, uint8_t dir, uint8_t proto, uint16_t lo,
                           uint16_t hi, uint32_t rule = 7) {
    return {id, dir, proto, false, lo, hi, rule};
  }
  static PolicyEntry allow_all_ports(uint32_t id, uint8_t dir, uint8_t proto) {
    return {id, dir, proto, true, 0, 0, 9};
  }

  sluice_endpoint a_{}, b_{};
  std::unique_ptr<PolicyMaps> pol_;
};

inline Bytes tcp(const char* s, const char* d, uint16_t sp, uint16_t dp, uint8_t flags = TCP_SYN) {
  return PacketBuilder().ipv4(s, d).tcp(sp, dp, flags).build();
}
inline Bytes tcp6(const char* s, const char* d, uint16_t sp, uint16_t dp, uint8_t flags = TCP_SYN) {
  return PacketBuilder().ipv6(s, d).tcp(sp, dp, flags).build();
}

}  // namespace sluice::test

// The ClusterIP load balancer in sluice_lxc through BPF_PROG_TEST_RUN:
// translation to the backend and back, byte-exact with correct checksums
// (the expected frames are built independently by the packet builder),
// service and connection entries, hairpin, affinity, Maglev, connection
// caps, the no-backend drop and policy on the translated packet. The maps
// are written directly here; the agent's LbEngine is tested elsewhere.
#include <cstring>
#include <set>

#include "lxc_fixture.h"

namespace sluice::test {
namespace {

constexpr const char* kVip = "10.96.0.10";
constexpr const char* kVip6 = "fd10:96::10";

class LbTest : public LxcTest {
 protected:
  // A frontend {vip, port, proto} over backends {ip, port} (random slots).
  sluice_lb_svc service(const char* vip, uint16_t port, uint32_t svc_id,
                        std::vector<std::pair<const char*, uint16_t>> backends,
                        uint8_t proto = IPPROTO_TCP, uint16_t flags = 0) {
    sluice_lb_svc_key k{};
    sluice::IpAddr a = *sluice::IpAddr::parse(vip);
    std::memcpy(k.addr, a.bytes.data(), a.family == AF_INET ? 4 : 16);
    k.family = uint8_t(a.family);
    k.port = htons(port);
    k.proto = proto;
    k.scope = SLUICE_LB_SCOPE_INTERNAL;
    sluice_lb_svc v{};
    v.svc_id = svc_id;
    v.count = uint16_t(backends.size());
    v.flags = flags;
    uint32_t slot = 0;
    for (const auto& [ip, p] : backends) {
      const uint32_t id = backend(ip, p);
      sluice_lb_slot_key sk{svc_id, slot++};
      EXPECT_EQ(map_update(skel_->maps.sluice_lb_slots, sk, id), 0);
    }
    EXPECT_EQ(map_update(skel_->maps.sluice_lb_svc, k, v), 0);
    key_ = k;
    return v;
  }
  void update(const sluice_lb_svc& v) {
    ASSERT_EQ(map_update(skel_->maps.sluice_lb_svc, key_, v), 0);
  }
  // Backend ids by address, as the agent hands them out.
  uint32_t backend(const char* ip, uint16_t port) {
    std::string k = std::string(ip) + ":" + std::to_string(port);
    auto it = ids_.find(k);
    if (it != ids_.end()) return it->second;
    const uint32_t id = uint32_t(ids_.size() + 1);
    sluice::IpAddr a = *sluice::IpAddr::parse(ip);
    sluice_lb_backend b{};
    std::memcpy(b.addr, a.bytes.data(), a.family == AF_INET ? 4 : 16);
    b.family = uint8_t(a.family);
    b.port = htons(port);
    EXPECT_EQ(map_update(skel_->maps.sluice_lb_be, id, b), 0);
    ids_[k] = id;
    return id;
  }
  // The frame as delivered into endpoint `to`'s netns.
  static Bytes delivered(PacketBuilder b, const sluice_endpoint& to) {
    Mac src{}, dst{};
    std::memcpy(src.data(), to.host_mac, 6);
    std::memcpy(dst.data(), to.pod_mac, 6);
    return b.eth(src, dst).build();
  }
  std::vector<CtRow> rows_with(uint32_t flag) {
    std::vector<CtRow> out;
    for (const auto& r : ct_rows())
      if (r.value.flags & flag) out.push_back(r);
    return out;
  }

  sluice_lb_svc_key key_{};
  std::map<std::string, uint32_t> ids_;
};

TEST_F(LbTest, ClusterIpIsTranslatedToTheBackendByteExact) {
  service(kVip, 80, 1, {{"10.200.0.2", 8080}});
  RunResult r = out(PacketBuilder().ipv4("10.200.0.1", kVip)
                        .tcp(1000, 80, TCP_SYN, 77).payload("hi").build());
  ASSERT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(r.data, delivered(PacketBuilder().ipv4("10.200.0.1", "10.200.0.2")
                                  .tcp(1000, 8080, TCP_SYN, 77).payload("hi"),
                              b_));
  // One service entry (client -> frontend) and one connection entry
  // (client -> backend) that remembers the frontend for replies.
  auto svc = rows_with(SLUICE_CT_SVC);
  auto conn = rows_with(SLUICE_CT_REVNAT);
  ASSERT_EQ(svc.size(), 1u);
  ASSERT_EQ(conn.size(), 1u);
  EXPECT_EQ(ct_entries(), 2u);
  EXPECT_EQ(svc[0].value.backend_id, ids_["10.200.0.2:8080"]);
  EXPECT_EQ(ntohs(svc[0].value.nat_port), 8080);
  EXPECT_EQ(ntohs(conn[0].value.nat_port), 80);
  EXPECT_EQ(ntohs(conn[0].key.dport), 8080);
  EXPECT_EQ(conn[0].value.ends[1].ifindex, b_.ifindex);
}

TEST_F(LbTest, RepliesAreReverseTranslatedByteExact) {
  service(kVip, 80, 1, {{"10.200.0.2", 8080}});
  ASSERT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_REDIRECT);
  act_as(b_);  // the backend answers from its own veth
  RunResult r = out(PacketBuilder().ipv4("10.200.0.2", "10.200.0.1")
                        .tcp(8080, 1000, TCP_SYN | TCP_ACK, 5, 1).build());
  ASSERT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(r.data, delivered(PacketBuilder().ipv4(kVip, "10.200.0.1")
                                  .tcp(80, 1000, TCP_SYN | TCP_ACK, 5, 1),
                              a_));
  // A reply that reached the client through the host stack (a backend
  // elsewhere) is reverse-translated on the client's veth.
  act_as(a_);
  r = in(PacketBuilder().ipv4("10.200.0.2", "10.200.0.1")
             .tcp(8080, 1000, TCP_ACK, 6, 1).payload("ok").build());
  ASSERT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.data, PacketBuilder().ipv4(kVip, "10.200.0.1")
                        .tcp(80, 1000, TCP_ACK, 6, 1).payload("ok").build());
}

TEST_F(LbTest, EstablishedFlowKeepsItsBackendAcrossBackendChanges) {
  auto v = service(kVip, 80, 1, {{"10.200.0.2", 8080}});
  ASSERT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_REDIRECT);
  // The only backend is replaced: the open connection stays where it was,
  // a new one goes to the new backend.
  const uint32_t other = backend("192.0.2.50", 9090);
  sluice_lb_slot_key sk{1, 0};
  ASSERT_EQ(map_update(skel_->maps.sluice_lb_slots, sk, other), 0);
  update(v);
  RunResult r = out(tcp("10.200.0.1", kVip, 1000, 80, TCP_ACK));
  ASSERT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(r.data, delivered(PacketBuilder().ipv4("10.200.0.1", "10.200.0.2")
                                  .tcp(1000, 8080, TCP_ACK), b_));
  r = out(tcp("10.200.0.1", kVip, 1001, 80));
  EXPECT_EQ(r.retval, TC_ACT_OK);  // not local: to the host stack
  EXPECT_EQ(r.data, PacketBuilder().ipv4("10.200.0.1", "192.0.2.50")
                        .tcp(1001, 9090, TCP_SYN).build());
}

TEST_F(LbTest, Ipv6AndUdpAreTranslated) {
  service(kVip6, 53, 2, {{"fd10:200::2", 5353}}, IPPROTO_UDP);
  RunResult r = out(PacketBuilder().ipv6("fd10:200::1", kVip6).udp(4000, 53)
                        .payload("query").build());
  ASSERT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(r.data, delivered(PacketBuilder().ipv6("fd10:200::1", "fd10:200::2")
                                  .udp(4000, 5353).payload("query"), b_));
  act_as(b_);
  r = out(PacketBuilder().ipv6("fd10:200::2", "fd10:200::1").udp(5353, 4000)
              .payload("answer").build());
  ASSERT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(r.data, delivered(PacketBuilder().ipv6(kVip6, "fd10:200::1")
                                  .udp(53, 4000).payload("answer"), a_));
}

TEST_F(LbTest, PodReachingItselfThroughItsServiceIsHairpinned) {
  service(kVip, 80, 1, {{"10.200.0.1", 8080}});
  RunResult r = out(tcp("10.200.0.1", kVip, 1000, 80));
  ASSERT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(r.data, delivered(PacketBuilder().ipv4("169.254.42.1", "10.200.0.1")
                                  .tcp(1000, 8080, TCP_SYN), a_));
  RunResult back = out(PacketBuilder().ipv4("10.200.0.1", "169.254.42.1")
                           .tcp(8080, 1000, TCP_SYN | TCP_ACK).build());
  ASSERT_EQ(back.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(back.data, delivered(PacketBuilder().ipv4(kVip, "10.200.0.1")
                                     .tcp(80, 1000, TCP_SYN | TCP_ACK), a_));
  // Nobody else may claim the hairpin tuple.
  act_as(b_);
  EXPECT_EQ(out(PacketBuilder().ipv4("10.200.0.1", "169.254.42.1")
                    .tcp(8080, 1000, TCP_ACK).build()).retval, TC_ACT_SHOT);
}

TEST_F(LbTest, ServiceWithoutBackendsRejectsWithRstOrIcmpAndADropReason) {
  service(kVip, 80, 1, {});
  service(kVip, 53, 2, {}, IPPROTO_UDP);
  // TCP: a RST from the service address, back into the client's netns.
  RunResult r = out(tcp("10.200.0.1", kVip, 1000, 80));
  ASSERT_EQ(r.retval, TC_ACT_REDIRECT);
  ASSERT_GE(r.data.size(), 54u);
  EXPECT_EQ(r.data[14 + 20 + 13], TCP_RST | TCP_ACK);
  EXPECT_EQ(0, std::memcmp(r.data.data() + 14 + 12, "\x0a\x60\x00\x0a", 4));
  // UDP: ICMP port unreachable.
  r = out(PacketBuilder().ipv4("10.200.0.1", kVip).udp(4000, 53).build());
  ASSERT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(r.data[14 + 9], PROTO_ICMP);
  EXPECT_EQ(r.data[14 + 20], 3);
  EXPECT_EQ(r.data[14 + 21], 3);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_LB_NO_BACKEND), 2u);
  EXPECT_EQ(ct_entries(), 0u);
}

TEST_F(LbTest, RandomSelectionReachesEveryBackend) {
  service(kVip, 80, 1, {{"192.0.2.1", 80}, {"192.0.2.2", 80}, {"192.0.2.3", 80}});
  std::set<std::string> hit;
  for (uint16_t sp = 2000; sp < 2060; sp++) {
    RunResult r = out(tcp("10.200.0.1", kVip, sp, 80));
    ASSERT_EQ(r.retval, TC_ACT_OK);
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, r.data.data() + 14 + 16, buf, sizeof(buf));
    hit.insert(buf);
  }
  EXPECT_EQ(hit.size(), 3u);
}

TEST_F(LbTest, ClientIpAffinityKeepsAClientOnOneBackend) {
  auto v = service(kVip, 80, 1, {{"192.0.2.1", 80}, {"192.0.2.2", 80}});
  v.flags = SLUICE_LB_AFFINITY;
  v.affinity_s = 60;
  update(v);
  std::set<std::string> hit;
  for (uint16_t sp = 2000; sp < 2030; sp++) {
    RunResult r = out(tcp("10.200.0.1", kVip, sp, 80));
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, r.data.data() + 14 + 16, buf, sizeof(buf));
    hit.insert(buf);
  }
  EXPECT_EQ(hit.size(), 1u);
}

TEST_F(LbTest, MaglevPicksTheTableEntryOfTheFlowHash) {
  auto v = service(kVip, 80, 1, {});
  const uint32_t m = 251, b1 = backend("192.0.2.1", 80), b2 = backend("192.0.2.2", 80);
  LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_INNER_MAP);
  int inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t", 4, 64, (m + 15) / 16, &o);
  ASSERT_GE(inner, 0);
  for (uint32_t blk = 0; blk < (m + 15) / 16; blk++) {
    sluice_lb_maglev_block b{};
    for (int i = 0; i < 16; i++) b.ids[i] = (blk * 16 + i) % 2 ? b2 : b1;
    ASSERT_EQ(bpf_map_update_elem(inner, &blk, &b, 0), 0);
  }
  const uint32_t id = 1;
  ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.sluice_lb_maglev), &id, &inner, 0), 0);
  close(inner);
  v.flags = SLUICE_LB_MAGLEV;
  v.maglev_m = m;
  v.count = 2;
  update(v);
  for (uint16_t sp = 3000; sp < 3020; sp++) {
    uint32_t s[4] = {}, d[4] = {};
    inet_pton(AF_INET, "10.200.0.1", s);
    inet_pton(AF_INET, kVip, d);
    const uint32_t slot = sluice_lb_flow_hash(s, d, htons(sp), htons(80), IPPROTO_TCP) % m;
    RunResult r = out(tcp("10.200.0.1", kVip, sp, 80));
    ASSERT_EQ(r.retval, TC_ACT_OK);
    EXPECT_EQ(r.data[14 + 19], slot % 2 ? 2 : 1) << "sport " << sp;
  }
}

TEST_F(LbTest, ConnectionCapHoldsUntilAConnectionCloses) {
  auto v = service(kVip, 80, 1, {{"192.0.2.1", 80}});
  v.conn_cap = 2;
  update(v);
  const uint32_t id = ids_["192.0.2.1:80"], zero = 0;
  ASSERT_EQ(map_update(skel_->maps.sluice_lb_conns, id, zero), 0);
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_OK);
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1001, 80)).retval, TC_ACT_OK);
  EXPECT_EQ(map_lookup<uint32_t>(skel_->maps.sluice_lb_conns, id), 2u);
  EXPECT_NE(out(tcp("10.200.0.1", kVip, 1002, 80)).retval, TC_ACT_OK);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_LB_BACKENDS_AT_CAP), 1u);
  // The first connection's FIN frees its place.
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80, TCP_FIN | TCP_ACK)).retval, TC_ACT_OK);
  EXPECT_EQ(map_lookup<uint32_t>(skel_->maps.sluice_lb_conns, id), 1u);
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1002, 80)).retval, TC_ACT_OK);
}

TEST_F(LbTest, PolicyAppliesToTheBackendAndItsPort) {
  service(kVip, 80, 1, {{"10.200.0.2", 8080}});
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED,
          {allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, 80, 80)});
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_POLICY_DENY_EGRESS), 1u);
  EXPECT_EQ(ct_entries(), 0u);  // no service entry for a denied connection
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED,
          {allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, 8080, 8080)});
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_REDIRECT);
}

TEST_F(LbTest, GcKeepsServiceEntriesExactlyAsLongAsTheirConnection) {
  // GC drops entries whose veth is gone: the client's is a real device
  // here (lo), the backend is not local.
  a_.ifindex = kDev;
  add_local(a_);
  act_as(a_);
  service(kVip, 80, 1, {{"192.0.2.1", 8080}});
  ASSERT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_OK);
  auto svc = rows_with(SLUICE_CT_SVC);
  ASSERT_EQ(svc.size(), 1u);
  sluice_ct_key raw = ct_map_key(svc[0].key);
  sluice_ct_key conn = ct_svc_connection_key(raw, svc[0].value);
  EXPECT_TRUE(map_lookup<sluice_ct_value>(skel_->maps.sluice_ct, conn).has_value());
  const int fd = bpf_map__fd(skel_->maps.sluice_ct);
  // Within its timeout nothing goes (the service entry never sees a reply
  // of its own, yet outlives the unreplied timeout with its connection).
  auto n = ct_gc(fd, ct_now_jiffies(), ct_hz());
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(*n, 0u);
  // A connection entry gone for another reason (LRU): the service entry
  // stays while its client is active (the datapath makes the connection
  // entry again), and goes once idle past the unreplied timeout.
  ASSERT_EQ(map_delete(skel_->maps.sluice_ct, conn), 0);
  const CtTimeouts t{};
  n = ct_gc(fd, ct_now_jiffies(), ct_hz(), t);
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(*n, 0u);
  n = ct_gc(fd, ct_now_jiffies() + (t.unreplied + 2) * ct_hz(), ct_hz(), t);
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(ct_entries(), 0u);
  // A connection that expires takes its service entry in the same pass.
  ASSERT_EQ(out(tcp("10.200.0.1", kVip, 1001, 80)).retval, TC_ACT_OK);
  EXPECT_EQ(ct_entries(), 2u);
  n = ct_gc(fd, ct_now_jiffies() + (t.unreplied + 2) * ct_hz(), ct_hz(), t);
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(ct_entries(), 0u);
}

TEST_F(LbTest, TranslatedTupleOfAnotherConnectionIsAClash) {
  service(kVip, 80, 1, {{"10.200.0.2", 8080}});
  // The client first talks to the backend directly, from port 1000 ...
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 8080)).retval, TC_ACT_REDIRECT);
  // ... then to the service from the same port: translated, it would be
  // that connection, whose replies are not reverse-translated.
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_LB_TUPLE_CLASH), 1u);
  EXPECT_TRUE(rows_with(SLUICE_CT_SVC).empty());
  // The direct connection is untouched; another port works.
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 8080, TCP_ACK)).retval,
            TC_ACT_REDIRECT);
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1001, 80)).retval, TC_ACT_REDIRECT);
}

TEST_F(LbTest, LostServiceEntryIsMadeAgain) {
  service(kVip, 80, 1, {{"10.200.0.2", 8080}});
  ASSERT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_REDIRECT);
  auto svc = rows_with(SLUICE_CT_SVC);
  ASSERT_EQ(svc.size(), 1u);
  ASSERT_EQ(map_delete(skel_->maps.sluice_ct, ct_map_key(svc[0].key)), 0);
  // The next packet picks again, finds its own connection, and delivers.
  RunResult r = out(tcp("10.200.0.1", kVip, 1000, 80, TCP_ACK));
  ASSERT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(r.data, delivered(PacketBuilder().ipv4("10.200.0.1", "10.200.0.2")
                                  .tcp(1000, 8080, TCP_ACK), b_));
  EXPECT_EQ(rows_with(SLUICE_CT_SVC).size(), 1u);
  EXPECT_EQ(ct_entries(), 2u);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_LB_TUPLE_CLASH), 0u);
}

TEST_F(LbTest, ReplyOfAConnectionWhoseClientWasReplacedIsDropped) {
  service(kVip, 80, 1, {{"10.200.0.2", 8080}});
  ASSERT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_REDIRECT);
  // The client pod is replaced: same address, another veth.
  sluice_endpoint a2 = make_ep(3, kIdA, "10.200.0.1", "fd10:200::1", 13, 0x03);
  add_local(a2);
  bump_epoch();
  act_as(b_);
  EXPECT_EQ(out(PacketBuilder().ipv4("10.200.0.2", "10.200.0.1")
                    .tcp(8080, 1000, TCP_SYN | TCP_ACK).build()).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_LB_STALE_CONN), 1u);
  EXPECT_TRUE(rows_with(SLUICE_CT_REVNAT).empty());
  // Never a plain entry keyed by the reverse-translated tuple.
  for (const auto& row : ct_rows()) EXPECT_TRUE(row.value.flags & SLUICE_CT_SVC);
}

TEST_F(LbTest, PacketsFromTheServiceAddressLeaveServiceEntriesAlone) {
  service(kVip, 80, 1, {{"192.0.2.1", 8080}});
  ASSERT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_OK);
  ASSERT_EQ(rows_with(SLUICE_CT_SVC).size(), 1u);
  // Something routed to the client with the service address as source:
  // not a reply the service entry describes.
  RunResult r = in(PacketBuilder().ipv4(kVip, "10.200.0.1").tcp(80, 1000, TCP_ACK).build());
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.data, PacketBuilder().ipv4(kVip, "10.200.0.1").tcp(80, 1000, TCP_ACK).build());
  EXPECT_EQ(rows_with(SLUICE_CT_SVC).size(), 1u);
  // The client's connection still goes to its backend.
  r = out(tcp("10.200.0.1", kVip, 1000, 80, TCP_ACK));
  ASSERT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.data, PacketBuilder().ipv4("10.200.0.1", "192.0.2.1").tcp(1000, 8080, TCP_ACK).build());
}

// SCTP: the common header (ports, verification tag, CRC32c). The CRC
// covers the ports, not the addresses.
Bytes sctp(const char* s, const char* d, uint16_t sp, uint16_t dp) {
  Bytes h = {uint8_t(sp >> 8), uint8_t(sp), uint8_t(dp >> 8), uint8_t(dp),
             0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef};
  return PacketBuilder().ipv4(s, d).l4_proto(IPPROTO_SCTP).payload(h).build();
}

TEST_F(LbTest, SctpIsTranslatedWhenThePortStaysAndRefusedWhenItChanges) {
  service(kVip, 9000, 1, {{"192.0.2.1", 9000}}, IPPROTO_SCTP);
  RunResult r = out(sctp("10.200.0.1", kVip, 5000, 9000));
  ASSERT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.data, sctp("10.200.0.1", "192.0.2.1", 5000, 9000));
  service(kVip, 9001, 2, {{"192.0.2.1", 9999}}, IPPROTO_SCTP);
  EXPECT_EQ(out(sctp("10.200.0.1", kVip, 5000, 9001)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_LB_NAT_FAILED), 1u);
}

TEST_F(LbTest, AffinityIsNotSetByADroppedPacket) {
  auto v = service(kVip, 80, 1, {{"192.0.2.1", 80}, {"192.0.2.2", 80}});
  v.flags = SLUICE_LB_AFFINITY;
  v.affinity_s = 60;
  update(v);
  // Pod a sends with b's address: dropped as spoofed, and b gets no
  // affinity it never asked for.
  EXPECT_EQ(out(tcp("10.200.0.2", kVip, 1000, 80)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_SPOOFED_SOURCE), 1u);
  sluice_lb_affinity_key k{};
  k.svc_id = 1;
  k.family = AF_INET;
  inet_pton(AF_INET, "10.200.0.2", k.addr);
  EXPECT_FALSE(map_lookup<sluice_lb_affinity>(skel_->maps.sluice_lb_aff, k).has_value());
  // An allowed connection sets it.
  ASSERT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_OK);
  inet_pton(AF_INET, "10.200.0.1", k.addr);
  EXPECT_TRUE(map_lookup<sluice_lb_affinity>(skel_->maps.sluice_lb_aff, k).has_value());
}

TEST_F(LbTest, ConnectionCountSurvivesRacesAndTupleReuse) {
  auto v = service(kVip, 80, 1, {{"192.0.2.1", 80}});
  v.conn_cap = 1;
  update(v);
  const uint32_t id = ids_["192.0.2.1:80"];
  // Racing closes took the count below zero: that is room, not 2^32.
  const uint32_t minus_one = 0xffffffffu;
  ASSERT_EQ(map_update(skel_->maps.sluice_lb_conns, id, minus_one), 0);
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1000, 80)).retval, TC_ACT_OK);
  EXPECT_EQ(map_lookup<uint32_t>(skel_->maps.sluice_lb_conns, id), 0u);
  const uint32_t zero = 0;
  ASSERT_EQ(map_update(skel_->maps.sluice_lb_conns, id, zero), 0);
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1001, 80)).retval, TC_ACT_OK);
  EXPECT_EQ(map_lookup<uint32_t>(skel_->maps.sluice_lb_conns, id), 1u);
  // It closes (FIN), and a SYN reuses its tuple: open again, counted again.
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1001, 80, TCP_FIN | TCP_ACK)).retval, TC_ACT_OK);
  EXPECT_EQ(map_lookup<uint32_t>(skel_->maps.sluice_lb_conns, id), 0u);
  EXPECT_EQ(out(tcp("10.200.0.1", kVip, 1001, 80, TCP_SYN)).retval, TC_ACT_OK);
  EXPECT_EQ(map_lookup<uint32_t>(skel_->maps.sluice_lb_conns, id), 1u);
  for (const auto& row : rows_with(SLUICE_CT_REVNAT))
    EXPECT_FALSE(row.value.flags & SLUICE_CT_CLOSING);
}

}  // namespace
}  // namespace sluice::test

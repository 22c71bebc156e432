// North-south load balancing in sluice_xdp through BPF_PROG_TEST_RUN:
// NodePort translation to a backend on this node, byte-exact with correct
// checksums, the conntrack entries it shares with sluice_lxc (both
// programs are loaded over the same maps, as the agent pins them), the
// backend's ingress policy, and the reply reverse-translated by
// sluice_lxc_out back to the node address and node port.
#include <cstring>

#include "common/cidr.h"
#include "endpoint/netlink.h"
#include "fwd_netns.h"
#include "lxc_fixture.h"
#include "prefilter/deny_maps.h"
#include "sluice_xdp.skel.h"

namespace sluice::test {
namespace {

constexpr const char* kNode = "198.18.0.2";
constexpr const char* kClient = "198.18.0.1";
constexpr const char* kNode6 = "2001:db8::2";
constexpr const char* kClient6 = "2001:db8::1";
constexpr uint16_t kNodePort = 30080;
constexpr uint32_t kWorld = 2;

class NodePortTest : public LxcTest {
 protected:
  void SetUp() override {
    LxcTest::SetUp();
    if (HasFatalFailure()) return;
    xdp_ = sluice_xdp::open();
    ASSERT_NE(xdp_, nullptr);
    detail::disable_pinning(xdp_->obj);
    // Every map both programs have is the lxc skeleton's, as with pins.
    bpf_map* m;
    bpf_object__for_each_map(m, xdp_->obj) {
      bpf_map* twin = bpf_object__find_map_by_name(skel_->obj, bpf_map__name(m));
      if (twin && !std::strchr(bpf_map__name(m), '.')) {
        ASSERT_EQ(bpf_map__reuse_fd(m, bpf_map__fd(twin)), 0) << bpf_map__name(m);
      }
    }
    ASSERT_EQ(sluice_xdp::load(xdp_), 0);
    ipcache(kWorld, 0, "0.0.0.0/0");
    ipcache(kWorld, 0, "::/0");
  }
  void TearDown() override {
    sluice_xdp::destroy(xdp_);
    LxcTest::TearDown();
  }
  // An external frontend {addr, port} over backends.
  void nodeport(const char* addr, uint16_t port, uint32_t svc_id,
                std::vector<std::pair<const char*, uint16_t>> backends,
                uint8_t proto = IPPROTO_TCP) {
    sluice_lb_svc_key k{};
    sluice::IpAddr a = *sluice::IpAddr::parse(addr);
    std::memcpy(k.addr, a.bytes.data(), a.family == AF_INET ? 4 : 16);
    k.family = uint8_t(a.family);
    k.port = htons(port);
    k.proto = proto;
    k.scope = SLUICE_LB_SCOPE_EXTERNAL;
    sluice_lb_svc v{};
    v.svc_id = svc_id;
    v.count = uint16_t(backends.size());
    uint32_t slot = 0;
    for (const auto& [ip, p] : backends) {
      const uint32_t id = svc_id * 100 + slot;
      sluice::IpAddr ba = *sluice::IpAddr::parse(ip);
      sluice_lb_backend b{};
      std::memcpy(b.addr, ba.bytes.data(), ba.family == AF_INET ? 4 : 16);
      b.family = uint8_t(ba.family);
      b.port = htons(p);
      ASSERT_EQ(map_update(skel_->maps.sluice_lb_be, id, b), 0);
      sluice_lb_slot_key sk{svc_id, slot++};
      ASSERT_EQ(map_update(skel_->maps.sluice_lb_slots, sk, id), 0);
    }
    ASSERT_EQ(map_update(skel_->maps.sluice_lb_svc, k, v), 0);
    gate(k.addr);
  }
  // The frontend passes the north-south gate (the agent's LbMaps does this).
  void gate(const uint8_t* addr) {
    uint32_t a[4];
    std::memcpy(a, addr, 16);
    const uint32_t bit = sluice_lb_gate_bit(a), word = bit / 64;
    uint64_t w = 0;
    ASSERT_EQ(bpf_map__lookup_elem(skel_->maps.sluice_lb_gate, &word, 4, &w, 8, 0), 0);
    w |= 1ull << (bit % 64);
    ASSERT_EQ(map_update(skel_->maps.sluice_lb_gate, word, w), 0);
  }
  RunResult xdp(const Bytes& f) { return BpfProgRun(xdp_->progs.sluice_xdp).run(f); }
  size_t rows_with(uint32_t flag) {
    size_t n = 0;
    for (const auto& r : ct_rows()) n += (r.value.flags & flag) != 0;
    return n;
  }

  sluice_xdp* xdp_ = nullptr;
};

TEST_F(NodePortTest, NewConnectionIsTranslatedToALocalBackendByteExact) {
  nodeport(kNode, kNodePort, 1, {{"10.200.0.2", 8080}});
  RunResult r = xdp(PacketBuilder().ipv4(kClient, kNode)
                        .tcp(40000, kNodePort, TCP_SYN, 9).payload("hi").build());
  ASSERT_EQ(r.retval, XDP_PASS);
  EXPECT_EQ(r.data, PacketBuilder().ipv4(kClient, "10.200.0.2")
                        .tcp(40000, 8080, TCP_SYN, 9).payload("hi").build());
  EXPECT_EQ(rows_with(SLUICE_CT_SVC), 1u);
  EXPECT_EQ(rows_with(SLUICE_CT_REVNAT), 1u);
  // The stack routes it to the backend's veth: delivered as established.
  act_as(b_);
  RunResult in_r = in(r.data);
  EXPECT_EQ(in_r.retval, TC_ACT_OK);
  EXPECT_EQ(in_r.data, r.data);
  // The backend answers: from the node address and node port again.
  RunResult rep = out(PacketBuilder().ipv4("10.200.0.2", kClient)
                          .tcp(8080, 40000, TCP_SYN | TCP_ACK, 3, 10).build());
  // Straight to the device the route to the client names; this test's
  // namespace has none: dropped with its reason (the stack would drop a
  // node-address source from a pod veth as martian).
  EXPECT_EQ(rep.retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_LB_NO_ROUTE), 1u);
  EXPECT_EQ(rep.data, PacketBuilder().ipv4(kNode, kClient)
                          .tcp(kNodePort, 40000, TCP_SYN | TCP_ACK, 3, 10).build());
  // The client's next packet takes the service entry.
  r = xdp(PacketBuilder().ipv4(kClient, kNode).tcp(40000, kNodePort, TCP_ACK, 10, 4)
              .payload("more").build());
  ASSERT_EQ(r.retval, XDP_PASS);
  EXPECT_EQ(r.data, PacketBuilder().ipv4(kClient, "10.200.0.2")
                        .tcp(40000, 8080, TCP_ACK, 10, 4).payload("more").build());
  EXPECT_EQ(ct_entries(), 2u);
}

TEST_F(NodePortTest, Ipv6AndUdpIncludingZeroChecksums) {
  nodeport(kNode6, kNodePort, 1, {{"fd10:200::2", 5353}}, IPPROTO_UDP);
  RunResult r = xdp(PacketBuilder().ipv6(kClient6, kNode6).udp(4000, kNodePort)
                        .payload("q").build());
  ASSERT_EQ(r.retval, XDP_PASS);
  EXPECT_EQ(r.data, PacketBuilder().ipv6(kClient6, "fd10:200::2").udp(4000, 5353)
                        .payload("q").build());
  nodeport(kNode, kNodePort, 2, {{"10.200.0.2", 5353}}, IPPROTO_UDP);
  Bytes f = PacketBuilder().ipv4(kClient, kNode).udp(4000, kNodePort).payload("q").build();
  f[14 + 20 + 6] = f[14 + 20 + 7] = 0;  // no UDP checksum (IPv4 allows it)
  r = xdp(f);
  ASSERT_EQ(r.retval, XDP_PASS);
  Bytes want = PacketBuilder().ipv4(kClient, "10.200.0.2").udp(4000, 5353).payload("q").build();
  want[14 + 20 + 6] = want[14 + 20 + 7] = 0;
  EXPECT_EQ(r.data, want);
}

TEST_F(NodePortTest, BackendIngressPolicyAppliesToTheClient) {
  nodeport(kNode, kNodePort, 1, {{"10.200.0.2", 8080}});
  enforce(b_, SLUICE_EP_INGRESS_ENFORCED,
          {allow(kIdA, SLUICE_DIR_INGRESS, IPPROTO_TCP, 8080, 8080)});
  RunResult r = xdp(tcp(kClient, kNode, 40000, kNodePort));
  EXPECT_EQ(r.retval, XDP_DROP);
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_POLICY_DENY_INGRESS), 1u);
  EXPECT_EQ(ct_entries(), 0u);
  enforce(b_, SLUICE_EP_INGRESS_ENFORCED,
          {allow(kWorld, SLUICE_DIR_INGRESS, IPPROTO_TCP, 8080, 8080)});
  ASSERT_EQ(set_event_level(skel_->maps.sluice_config, SLUICE_EVENTS_FLOWS), 0);
  drain_ringbuf(skel_->maps.sluice_events);
  EXPECT_EQ(xdp(tcp(kClient, kNode, 40001, kNodePort)).retval, XDP_PASS);
  // The new connection's events: its translation, then the backend's
  // policy verdict for the client (world), made at XDP.
  auto ev = drain_ringbuf_as<sluice_event>(skel_->maps.sluice_events);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].type, SLUICE_EVENT_SERVICE_XLATE);
  EXPECT_EQ(ev[1].type, SLUICE_EVENT_POLICY_VERDICT);
  EXPECT_EQ(ev[1].verdict, SLUICE_VERDICT_ALLOWED);
  EXPECT_EQ(ev[1].src_identity, kWorld);
  EXPECT_EQ(ev[1].dst_identity, b_.identity);
  EXPECT_EQ(ev[1].dir, SLUICE_DIR_INGRESS);
}

TEST_F(NodePortTest, LostConnectionEntryIsMadeAgainAndClashesAreDropped) {
  nodeport(kNode, kNodePort, 1, {{"10.200.0.2", 8080}});
  ASSERT_EQ(xdp(tcp(kClient, kNode, 40000, kNodePort)).retval, XDP_PASS);
  // The connection entry is lost (LRU): the client's next packet makes it
  // again, still reverse-NATed, so the pod's replies keep the node address.
  for (const auto& r : ct_rows()) {
    if (r.value.flags & SLUICE_CT_REVNAT) {
      ASSERT_EQ(map_delete(skel_->maps.sluice_ct, ct_map_key(r.key)), 0);
    }
  }
  ASSERT_EQ(rows_with(SLUICE_CT_REVNAT), 0u);
  ASSERT_EQ(xdp(tcp(kClient, kNode, 40000, kNodePort, TCP_ACK)).retval, XDP_PASS);
  EXPECT_EQ(rows_with(SLUICE_CT_REVNAT), 1u);
  EXPECT_EQ(rows_with(SLUICE_CT_NODEPORT), 2u);
  // A direct connection from the outside to the pod on the same client
  // port holds the tuple a node-port connection would translate to.
  act_as(b_);
  ASSERT_EQ(in(tcp(kClient, "10.200.0.2", 41000, 8080)).retval, TC_ACT_OK);
  EXPECT_EQ(xdp(tcp(kClient, kNode, 41000, kNodePort)).retval, XDP_DROP);
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_LB_TUPLE_CLASH), 1u);
}

TEST_F(NodePortTest, OtherTrafficPassesUntouchedAndNoBackendIsRejected) {
  nodeport(kNode, kNodePort, 1, {});
  Bytes other = tcp(kClient, kNode, 40000, 22);
  RunResult r = xdp(other);
  EXPECT_EQ(r.retval, XDP_PASS);
  EXPECT_EQ(r.data, other);
  // A NodePort without a ready backend answers at once, back out of the
  // device it came in on: a RST for TCP (as tcp_v4_send_reset), with the
  // drop counted under its reason.
  const Mac cmac = mac_addr("02:00:00:00:00:0a"), nmac = mac_addr("02:00:00:00:00:0b");
  r = xdp(PacketBuilder().eth(cmac, nmac).ipv4(kClient, kNode).ip_frag(0, false, true)
              .tcp(40000, kNodePort, TCP_SYN, 1000, 0, 64240).build());
  EXPECT_EQ(r.retval, XDP_TX);
  EXPECT_EQ(r.data, PacketBuilder().eth(nmac, cmac).ipv4(kNode, kClient).ip_frag(0, false, true)
                        .ttl(64).tcp(kNodePort, 40000, TCP_RST | TCP_ACK, 0, 1001, 0).build());
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_LB_NO_BACKEND), 1u);
  // UDP gets ICMP port unreachable quoting the datagram's headers.
  nodeport(kNode, kNodePort, 2, {}, IPPROTO_UDP);
  Bytes dgram = PacketBuilder().eth(cmac, nmac).ipv4(kClient, kNode).udp(4000, kNodePort)
                    .payload("query").build();
  r = xdp(dgram);
  EXPECT_EQ(r.retval, XDP_TX);
  Bytes quote(dgram.begin() + 14, dgram.begin() + 14 + 20 + 8);
  Bytes want = PacketBuilder().eth(nmac, cmac).ipv4(kNode, kClient).tos(0xc0).ttl(64)
                   .icmp(3, 3).payload(quote).build();
  EXPECT_EQ(r.data, want);
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_LB_NO_BACKEND), 2u);
  EXPECT_EQ(ct_entries(), 0u);
}

// ---- to backends on other nodes: SNAT and DSR --------------------------

constexpr const char* kPeer = "198.18.0.3";  // the other node (next hop)
constexpr const char* kPeer6 = "2001:db8::3";
constexpr const char* kRemote = "10.201.0.5";  // a pod on the other node
constexpr const char* kRemote6 = "fd10:201::5";
const Mac kPeerMac = FwdNetns::kPeerMac;
const Mac kClientMac = FwdNetns::kClientMac;

// The test thread moves into a network namespace of its own with a node
// device np0 (tests/lib/fwd_netns.h): bpf_fib_lookup in the program sees
// exactly that. The namespace dies when TearDown returns the thread home,
// failed test or not.
class NodePortFwdTest : public NodePortTest {
 protected:
  void SetUp() override {
    NodePortTest::SetUp();
    if (HasFatalFailure()) return;
    home_ = current_netns_fd();
    ASSERT_GE(home_, 0);
    FwdNetns ns;
    std::string e = enter_fwd_netns(&ns);
    ASSERT_EQ(e, "");
    ifindex_ = ns.ifindex;
    node_mac_ = ns.mac;
  }
  void TearDown() override {
    if (home_ >= 0) EXPECT_EQ(leave_netns(home_), 0);
    NodePortTest::TearDown();
  }
  RunResult fwd(const Bytes& f) {
    return BpfProgRun(xdp_->progs.sluice_xdp).xdp_ingress_ifindex(ifindex_).run(f);
  }
  void dsr(bool on) {
    sluice_config c{};
    c.flags = on ? SLUICE_CFG_LB_DSR : 0;
    ASSERT_EQ(map_update(skel_->maps.sluice_config, 0u, c), 0);
  }
  static uint16_t sport_of(const Bytes& f, size_t l4) {
    return uint16_t(f[l4] << 8 | f[l4 + 1]);
  }

  int home_ = -1;
  uint32_t ifindex_ = 0;
  Mac node_mac_{};
};

TEST_F(NodePortFwdTest, SnatSendsToTheOtherNodeAndReversesTheReply) {
  nodeport(kNode, kNodePort, 1, {{kRemote, 8080}});
  RunResult r = fwd(PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
                        .tcp(40000, kNodePort, TCP_SYN, 9).payload("hi").build());
  ASSERT_EQ(r.retval, XDP_TX);
  const uint16_t sp = sport_of(r.data, 34);
  EXPECT_GE(sp, SLUICE_NP_SNAT_PORT_MIN);
  EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, kRemote)
                        .tcp(sp, 8080, TCP_SYN, 9).payload("hi").build());
  // The next packet takes the same port, and the same backend.
  r = fwd(PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
              .tcp(40000, kNodePort, TCP_ACK, 10, 4).build());
  ASSERT_EQ(r.retval, XDP_TX);
  EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, kRemote)
                        .tcp(sp, 8080, TCP_ACK, 10, 4).build());
  // The backend's reply comes back to the node: from the frontend again.
  r = fwd(PacketBuilder().eth(kPeerMac, node_mac_).ipv4(kRemote, kNode)
              .tcp(8080, sp, TCP_SYN | TCP_ACK, 3, 10).payload("yo").build());
  ASSERT_EQ(r.retval, XDP_TX);
  EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kClientMac).ipv4(kNode, kClient)
                        .tcp(kNodePort, 40000, TCP_SYN | TCP_ACK, 3, 10).payload("yo").build());
  // No conntrack entry: this node applies no policy to it.
  EXPECT_EQ(ct_entries(), 0u);
}

// Once a second an established entry checks that its backend is still
// that backend: one whose address changed (a removed pod's id reused) is
// picked again instead of being sent to the old address.
TEST_F(NodePortFwdTest, AnEntryWhoseBackendChangedPicksAgain) {
  nodeport(kNode, kNodePort, 1, {{kRemote, 8080}});
  Bytes syn = PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
                  .tcp(40000, kNodePort, TCP_SYN, 9).build();
  ASSERT_EQ(fwd(syn).retval, XDP_TX);
  nodeport(kNode, kNodePort, 1, {{"10.201.0.6", 8080}});  // same id, new address
  sluice_ct_key k{};
  sluice_np_fwd v{};
  ASSERT_EQ(bpf_map__get_next_key(xdp_->maps.sluice_np_fwd, nullptr, &k, sizeof(k)), 0);
  ASSERT_EQ(bpf_map__lookup_elem(xdp_->maps.sluice_np_fwd, &k, sizeof(k), &v, sizeof(v), 0), 0);
  v.last_seen -= 2000000000ull;  // due for its once-a-second check
  ASSERT_EQ(bpf_map__update_elem(xdp_->maps.sluice_np_fwd, &k, sizeof(k), &v, sizeof(v), 0), 0);
  RunResult r = fwd(PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
                        .tcp(40000, kNodePort, TCP_ACK, 10, 4).build());
  ASSERT_EQ(r.retval, XDP_TX);
  EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, "10.201.0.6")
                        .tcp(sport_of(r.data, 34), 8080, TCP_ACK, 10, 4).build());
}

TEST_F(NodePortFwdTest, SnatIpv6UdpAndDistinctPortsPerClient) {
  nodeport(kNode6, kNodePort, 1, {{kRemote6, 5353}}, IPPROTO_UDP);
  RunResult a = fwd(PacketBuilder().eth(kClientMac, node_mac_).ipv6(kClient6, kNode6)
                        .udp(4000, kNodePort).payload("q").build());
  RunResult b = fwd(PacketBuilder().eth(kClientMac, node_mac_).ipv6(kClient6, kNode6)
                        .udp(4001, kNodePort).payload("q").build());
  ASSERT_EQ(a.retval, XDP_TX);
  ASSERT_EQ(b.retval, XDP_TX);
  const uint16_t pa = sport_of(a.data, 54), pb = sport_of(b.data, 54);
  EXPECT_NE(pa, pb);
  EXPECT_EQ(a.data, PacketBuilder().eth(node_mac_, kPeerMac).ipv6(kNode6, kRemote6)
                        .udp(pa, 5353).payload("q").build());
  RunResult rep = fwd(PacketBuilder().eth(kPeerMac, node_mac_).ipv6(kRemote6, kNode6)
                          .udp(5353, pb).payload("a").build());
  ASSERT_EQ(rep.retval, XDP_TX);
  EXPECT_EQ(rep.data, PacketBuilder().eth(node_mac_, kClientMac).ipv6(kNode6, kClient6)
                          .udp(kNodePort, 4001).payload("a").build());
}

TEST_F(NodePortFwdTest, DsrEncapsulatesWithTheFrontendInTheOuterHeader) {
  dsr(true);
  nodeport(kNode, kNodePort, 1, {{kRemote, 8080}});
  RunResult r = fwd(PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
                        .tcp(40000, kNodePort, TCP_SYN, 9).payload("hi").build());
  ASSERT_EQ(r.retval, XDP_TX);
  Bytes inner = PacketBuilder().ipv4(kClient, kRemote).tcp(40000, 8080, TCP_SYN, 9)
                    .payload("hi").build();
  inner.erase(inner.begin(), inner.begin() + 14);
  EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, kRemote)
                        .ip_id(kNodePort).ip_frag(0, false, true).l4_proto(IPPROTO_IPIP)
                        .payload(inner).build());
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_LB_MTU_EXCEEDED), 0u);
}

TEST_F(NodePortFwdTest, DsrIpv6UsesTheFlowLabel) {
  dsr(true);
  nodeport(kNode6, kNodePort, 1, {{kRemote6, 8080}});
  RunResult r = fwd(PacketBuilder().eth(kClientMac, node_mac_).ipv6(kClient6, kNode6)
                        .tcp(40000, kNodePort, TCP_SYN, 9).build());
  ASSERT_EQ(r.retval, XDP_TX);
  Bytes inner = PacketBuilder().ipv6(kClient6, kRemote6).tcp(40000, 8080, TCP_SYN, 9).build();
  inner.erase(inner.begin(), inner.begin() + 14);
  Bytes want = PacketBuilder().eth(node_mac_, kPeerMac).ipv6(kNode6, kRemote6)
                   .l4_proto(IPPROTO_IPV6).payload(inner).build();
  want[16] = kNodePort >> 8;
  want[17] = kNodePort & 0xff;
  EXPECT_EQ(r.data, want);
}

// The backend's node: the encapsulated packet to its local pod is
// unwrapped, admitted with the frontend from the outer header, and the
// pod's reply is reverse-translated to that frontend.
TEST_F(NodePortFwdTest, DsrBackendNodeUnwrapsAndRepliesAsTheFrontend) {
  Bytes inner = PacketBuilder().ipv4(kClient, "10.200.0.2").tcp(40000, 8080, TCP_SYN, 9)
                    .payload("hi").build();
  inner.erase(inner.begin(), inner.begin() + 14);
  RunResult r = fwd(PacketBuilder().eth(kPeerMac, node_mac_).ipv4(kPeer, "10.200.0.2")
                        .ip_id(kNodePort).l4_proto(IPPROTO_IPIP).payload(inner).build());
  ASSERT_EQ(r.retval, XDP_PASS);
  EXPECT_EQ(r.data, PacketBuilder().eth(kPeerMac, node_mac_).ipv4(kClient, "10.200.0.2")
                        .tcp(40000, 8080, TCP_SYN, 9).payload("hi").build());
  EXPECT_EQ(rows_with(SLUICE_CT_REVNAT), 1u);
  EXPECT_EQ(rows_with(SLUICE_CT_SVC), 0u);
  act_as(b_);
  RunResult rep = out(PacketBuilder().ipv4("10.200.0.2", kClient)
                          .tcp(8080, 40000, TCP_SYN | TCP_ACK, 3, 10).build());
  // To the client from the frontend (the other node's address), through
  // the route this namespace has.
  EXPECT_EQ(rep.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(rep.data, PacketBuilder().ipv4(kPeer, kClient)
                          .tcp(kNodePort, 40000, TCP_SYN | TCP_ACK, 3, 10).build());
}

// SCTP's CRC32c covers its ports and no helper redoes it: to a remote
// backend it goes only by DSR with the port kept; otherwise it is refused
// with its reason before any state is made.
TEST_F(NodePortFwdTest, SctpToAnotherNodeOnlyByDsrWithItsPort) {
  auto sctp = [&](uint16_t dp) {
    Bytes h = {0x13, 0x88, uint8_t(dp >> 8), uint8_t(dp), 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef};
    return PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
        .l4_proto(IPPROTO_SCTP).payload(h).build();
  };
  nodeport(kNode, kNodePort, 1, {{kRemote, kNodePort}}, IPPROTO_SCTP);
  nodeport(kNode, kNodePort + 1, 2, {{kRemote, 9999}}, IPPROTO_SCTP);
  EXPECT_EQ(fwd(sctp(kNodePort)).retval, XDP_DROP);  // SNAT mode
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_LB_NAT_FAILED), 1u);
  dsr(true);
  EXPECT_EQ(fwd(sctp(kNodePort + 1)).retval, XDP_DROP);  // DSR, port changes
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_LB_NAT_FAILED), 2u);
  uint32_t n = 0;
  sluice_ct_key k{};
  for (const void* cur = nullptr;
       !bpf_map__get_next_key(xdp_->maps.sluice_np_fwd, cur, &k, sizeof(k)); cur = &k)
    n++;
  EXPECT_EQ(n, 0u);
  RunResult r = fwd(sctp(kNodePort));  // DSR, port kept: wrapped, bytes intact
  ASSERT_EQ(r.retval, XDP_TX);
  Bytes inner = sctp(kNodePort);
  inner.erase(inner.begin(), inner.begin() + 14);
  Bytes want_inner = PacketBuilder().ipv4(kClient, kRemote).l4_proto(IPPROTO_SCTP)
                         .payload(Bytes(inner.begin() + 20, inner.end())).build();
  want_inner.erase(want_inner.begin(), want_inner.begin() + 14);
  EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, kRemote)
                        .ip_id(kNodePort).ip_frag(0, false, true).l4_proto(IPPROTO_IPIP)
                        .payload(want_inner).build());
}

// The backend's node unwraps DSR packets; its XDP prefilter saw only the
// outer source (the balancing node), so the inner client is checked
// after the unwrap: a denied client is dropped under the prefilter's
// reason with no connection entry.
TEST_F(NodePortFwdTest, DsrUnwrapAppliesThePrefilterToTheInnerClient) {
  auto maps = sluice::DenyMaps::open({bpf_map__fd(xdp_->maps.sluice_pf_v4),
                                      bpf_map__fd(xdp_->maps.sluice_pf_v6),
                                      bpf_map__fd(xdp_->maps.sluice_pf_v4_bm),
                                      bpf_map__fd(xdp_->maps.sluice_pf_v6_bm)});
  ASSERT_TRUE(maps) << maps.error();
  ASSERT_TRUE((*maps)->insert({*sluice::Cidr::parse("198.18.0.1/32")}));  // kClient
  Bytes inner = PacketBuilder().ipv4(kClient, "10.200.0.2").tcp(40000, 8080, TCP_SYN, 9).build();
  inner.erase(inner.begin(), inner.begin() + 14);
  RunResult r = fwd(PacketBuilder().eth(kPeerMac, node_mac_).ipv4(kPeer, "10.200.0.2")
                        .ip_id(kNodePort).l4_proto(IPPROTO_IPIP).payload(inner).build());
  EXPECT_EQ(r.retval, XDP_DROP);
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_PREFILTER_DENY), 1u);
  EXPECT_EQ(ct_entries(), 0u);
}

// SNAT ports toward one backend are 28,976; when all are taken, a port
// whose reply never came may be taken over after 60 s (a SYN flood from
// spoofed sources cannot hold them), an answered one only when its
// connection is dead.
TEST_F(NodePortFwdTest, AllSnatPortsTakenOnlyUnansweredOnesAreTakenOver) {
  nodeport(kNode, kNodePort, 1, {{kRemote, 8080}});
  // The node's clock, as the program reads it (coarse monotonic).
  timespec ts{};
  ASSERT_EQ(clock_gettime(CLOCK_MONOTONIC_COARSE, &ts), 0);
  const uint64_t now = uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
  auto fill = [&](bool replied, uint64_t age) {
    std::vector<sluice_ct_key> keys;
    std::vector<sluice_np_rev> vals;
    for (uint32_t p = SLUICE_NP_SNAT_PORT_MIN; p <= SLUICE_NP_SNAT_PORT_MAX; p++) {
      sluice_ct_key k{};
      auto b = *sluice::IpAddr::parse(kRemote), n = *sluice::IpAddr::parse(kNode);
      std::memcpy(k.saddr, b.bytes.data(), 4);
      std::memcpy(k.daddr, n.bytes.data(), 4);
      k.sport = htons(8080);
      k.dport = htons(uint16_t(p));
      k.proto = IPPROTO_TCP;
      k.family = AF_INET;
      sluice_np_rev v{};
      auto c = *sluice::IpAddr::parse("198.18.0.77");
      std::memcpy(v.client, c.bytes.data(), 4);
      std::memcpy(v.front, n.bytes.data(), 4);
      v.client_port = htons(uint16_t(p));
      v.front_port = htons(kNodePort);
      v.replied = replied;
      v.last_seen = now - age;
      keys.push_back(k);
      vals.push_back(v);
    }
    uint32_t count = uint32_t(keys.size());
    ASSERT_EQ(bpf_map_update_batch(bpf_map__fd(xdp_->maps.sluice_np_rev), keys.data(),
                                   vals.data(), &count, nullptr), 0);
    ASSERT_EQ(count, keys.size());
  };
  // Answered and 2 minutes idle (TCP's idle time is hours): none free.
  fill(true, 120ull * 1000000000ull);
  EXPECT_EQ(fwd(PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
                    .tcp(40000, kNodePort, TCP_SYN, 9).build()).retval, XDP_DROP);
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_LB_SNAT_NO_PORT), 1u);
  // Never answered, 61 s old: one is taken over, for this client.
  fill(false, 61ull * 1000000000ull);
  RunResult r = fwd(PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
                        .tcp(40001, kNodePort, TCP_SYN, 9).build());
  ASSERT_EQ(r.retval, XDP_TX);
  const uint16_t sp = sport_of(r.data, 34);
  r = fwd(PacketBuilder().eth(kPeerMac, node_mac_).ipv4(kRemote, kNode)
              .tcp(8080, sp, TCP_SYN | TCP_ACK, 3, 10).build());
  ASSERT_EQ(r.retval, XDP_TX);
  EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kClientMac).ipv4(kNode, kClient)
                        .tcp(kNodePort, 40001, TCP_SYN | TCP_ACK, 3, 10).build());
}

// ---- the flow cache (bpf/lib/np_fast.h) --------------------------------

class NodePortFastTest : public NodePortFwdTest {
 protected:
  // The cache's filled slots, over every CPU's copy: (slot, values of all
  // CPUs) of each slot filled on some CPU.
  std::vector<std::pair<uint32_t, std::vector<sluice_np_fast>>> fast_slots() {
    const int ncpu = libbpf_num_possible_cpus();
    std::vector<std::pair<uint32_t, std::vector<sluice_np_fast>>> out;
    std::vector<sluice_np_fast> vals{size_t(ncpu), sluice_np_fast{}};
    for (uint32_t slot = 0; slot < SLUICE_NP_FAST_SLOTS; slot++) {
      EXPECT_EQ(bpf_map__lookup_elem(xdp_->maps.sluice_np_fast, &slot, sizeof(slot), vals.data(),
                                     vals.size() * sizeof(vals[0]), 0), 0);
      for (const auto& v : vals)
        if (v.key.proto) {
          out.emplace_back(slot, vals);
          break;
        }
    }
    return out;
  }
  size_t fast_entries() {
    size_t n = 0;
    for (const auto& [slot, vals] : fast_slots())
      for (const auto& v : vals) n += v.key.proto != 0;
    return n;
  }
  // Empties the slow path's state: whatever is forwarded after this came
  // from the cache alone.
  void forget_slow_state() {
    for (bpf_map* m : {xdp_->maps.sluice_np_fwd, xdp_->maps.sluice_np_rev}) {
      sluice_ct_key k{};
      while (!bpf_map__get_next_key(m, nullptr, &k, sizeof(k)))
        ASSERT_EQ(bpf_map__delete_elem(m, &k, sizeof(k), 0), 0);
    }
  }
  Bytes client(uint8_t flags, uint32_t seq, const std::string& payload = "") {
    return PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
        .tcp(40000, kNodePort, flags, seq, 4).payload(payload).build();
  }
};

// The third packet of a connection onward (the second one fills the cache)
// is rewritten from the cache, byte for byte as the slow path would; the
// backend's replies too, from their second one; checksums from scratch in
// the expected packets.
TEST_F(NodePortFastTest, SnatBothWaysFromTheCacheByteExact) {
  nodeport(kNode, kNodePort, 1, {{kRemote, 8080}});
  RunResult r = fwd(client(TCP_SYN, 9));
  ASSERT_EQ(r.retval, XDP_TX);
  const uint16_t sp = sport_of(r.data, 34);
  EXPECT_EQ(fast_entries(), 0u);  // a first packet does not fill it
  auto to_backend = [&](uint8_t flags, uint32_t seq, const std::string& pl) {
    return PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, kRemote)
        .tcp(sp, 8080, flags, seq, 4).payload(pl).build();
  };
  auto reply = [&](uint32_t seq, const std::string& pl) {
    return PacketBuilder().eth(kPeerMac, node_mac_).ipv4(kRemote, kNode)
        .tcp(8080, sp, TCP_ACK, seq, 10).payload(pl).build();
  };
  auto to_client = [&](uint32_t seq, const std::string& pl) {
    return PacketBuilder().eth(node_mac_, kClientMac).ipv4(kNode, kClient)
        .tcp(kNodePort, 40000, TCP_ACK, seq, 10).payload(pl).build();
  };
  r = fwd(client(TCP_ACK, 10));
  EXPECT_EQ(r.data, to_backend(TCP_ACK, 10, ""));
  EXPECT_EQ(fast_entries(), 1u);
  r = fwd(reply(3, "one"));
  EXPECT_EQ(r.data, to_client(3, "one"));
  EXPECT_EQ(fast_entries(), 2u);
  forget_slow_state();
  for (uint32_t i = 0; i < 3; i++) {
    r = fwd(client(TCP_ACK | 0x08, 11 + i, "payload " + std::to_string(i)));
    ASSERT_EQ(r.retval, XDP_TX);
    EXPECT_EQ(r.data, to_backend(TCP_ACK | 0x08, 11 + i, "payload " + std::to_string(i)));
    r = fwd(reply(4 + i, std::string(100 + i, 'x')));
    ASSERT_EQ(r.retval, XDP_TX);
    EXPECT_EQ(r.data, to_client(4 + i, std::string(100 + i, 'x')));
  }
}

// A reply slot is bound to its SNAT port's generation: when the port is
// given to another connection (its reverse entry evicted, say), the slot
// of the previous owner stops matching on every CPU and the reply goes to
// the slow path, which knows the new owner.
TEST_F(NodePortFastTest, AReplySlotEndsWhenItsPortIsGivenAgain) {
  nodeport(kNode, kNodePort, 1, {{kRemote, 8080}});
  RunResult r = fwd(client(TCP_SYN, 9));
  ASSERT_EQ(r.retval, XDP_TX);
  const uint16_t sp = sport_of(r.data, 34);
  uint32_t port = sp, gen = 0;
  ASSERT_EQ(bpf_map__lookup_elem(xdp_->maps.sluice_np_port_gen, &port, 4, &gen, 4, 0), 0);
  EXPECT_EQ(gen, 1u);  // bumped when the connection took it
  Bytes reply = PacketBuilder().eth(kPeerMac, node_mac_).ipv4(kRemote, kNode)
                    .tcp(8080, sp, TCP_ACK, 3, 10).build();
  ASSERT_EQ(fwd(reply).retval, XDP_TX);  // fills the reply slot
  forget_slow_state();
  ASSERT_EQ(fwd(reply).retval, XDP_TX);  // from the slot alone
  gen++;
  ASSERT_EQ(bpf_map__update_elem(xdp_->maps.sluice_np_port_gen, &port, 4, &gen, 4, 0), 0);
  // No reverse entry and a stale slot: not forwarded anywhere.
  EXPECT_EQ(fwd(reply).retval, XDP_PASS);
}

// The gate's hash may change between versions: a pinned gate then lacks
// the bits of SNAT addresses in use. An established connection's
// slow-path packet sets its SNAT address's bit again, so its replies are
// not passed to the stack. (The frontend here is a load-balancer IP, not
// the SNAT address, so the two bits differ.)
TEST_F(NodePortFastTest, AnEstablishedSnatConnectionSetsItsGateBitAgain) {
  const char* vip = "198.18.0.50";
  nodeport(vip, kNodePort, 1, {{kRemote, 8080}});
  auto to_vip = [&](uint8_t flags, uint32_t seq) {
    return PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, vip)
        .tcp(40000, kNodePort, flags, seq, 4).build();
  };
  RunResult r = fwd(to_vip(TCP_SYN, 9));
  ASSERT_EQ(r.retval, XDP_TX);
  const uint16_t sp = sport_of(r.data, 34);
  // A gate from another version: only the frontend's bit (the agent sets
  // those when it adopts pinned frontends).
  for (uint32_t word = 0; word < SLUICE_LB_GATE_BITS / 64; word++)
    ASSERT_EQ(map_update(skel_->maps.sluice_lb_gate, word, uint64_t(0)), 0);
  gate(sluice::IpAddr::parse(vip)->bytes.data());
  ASSERT_EQ(fwd(to_vip(TCP_ACK, 10)).retval, XDP_TX);
  r = fwd(PacketBuilder().eth(kPeerMac, node_mac_).ipv4(kRemote, kNode)
              .tcp(8080, sp, TCP_ACK, 3, 10).build());
  ASSERT_EQ(r.retval, XDP_TX);
  EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kClientMac).ipv4(vip, kClient)
                        .tcp(kNodePort, 40000, TCP_ACK, 3, 10).build());
}

// FIN and RST are the slow path's: it marks the connection closing and
// drops both cached directions, so the closing timeouts apply again.
TEST_F(NodePortFastTest, FinGoesToTheSlowPathAndEmptiesTheCache) {
  nodeport(kNode, kNodePort, 1, {{kRemote, 8080}});
  ASSERT_EQ(fwd(client(TCP_SYN, 9)).retval, XDP_TX);
  RunResult r = fwd(client(TCP_ACK, 10));
  const uint16_t sp = sport_of(r.data, 34);
  ASSERT_EQ(fwd(PacketBuilder().eth(kPeerMac, node_mac_).ipv4(kRemote, kNode)
                    .tcp(8080, sp, TCP_ACK, 3, 10).build()).retval, XDP_TX);
  ASSERT_EQ(fast_entries(), 2u);
  r = fwd(client(TCP_FIN | TCP_ACK, 11));
  ASSERT_EQ(r.retval, XDP_TX);
  EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, kRemote)
                        .tcp(sp, 8080, TCP_FIN | TCP_ACK, 11, 4).build());
  EXPECT_EQ(fast_entries(), 0u);
  // Later packets of the closing connection stay on the slow path.
  ASSERT_EQ(fwd(client(TCP_ACK, 12)).retval, XDP_TX);
  EXPECT_EQ(fast_entries(), 0u);
}

// UDP: checksums updated (a computed 0 would be sent as 0xffff), and a
// datagram sent without one keeps none.
TEST_F(NodePortFastTest, UdpWithAndWithoutChecksum) {
  nodeport(kNode, kNodePort, 1, {{kRemote, 5353}}, IPPROTO_UDP);
  auto dgram = [&](const std::string& pl) {
    return PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
        .udp(4000, kNodePort).payload(pl).build();
  };
  RunResult r = fwd(dgram("a"));
  ASSERT_EQ(r.retval, XDP_TX);
  const uint16_t sp = sport_of(r.data, 34);
  ASSERT_EQ(fwd(dgram("b")).retval, XDP_TX);
  ASSERT_EQ(fast_entries(), 1u);
  forget_slow_state();
  for (const std::string& pl : {std::string("query"), std::string(), std::string(300, 'q')}) {
    r = fwd(dgram(pl));
    ASSERT_EQ(r.retval, XDP_TX);
    EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, kRemote)
                          .udp(sp, 5353).payload(pl).build());
  }
  Bytes nosum = dgram("nosum");
  nosum[14 + 20 + 6] = nosum[14 + 20 + 7] = 0;
  r = fwd(nosum);
  ASSERT_EQ(r.retval, XDP_TX);
  Bytes want = PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, kRemote)
                   .udp(sp, 5353).payload("nosum").build();
  want[14 + 20 + 6] = want[14 + 20 + 7] = 0;
  EXPECT_EQ(r.data, want);
}

// DSR from the cache: the inner rewrite and the outer header as the slow
// path builds them; a packet that would pass the device's MTU once
// wrapped is the slow path's, which drops it under its reason (XDP cannot
// fragment).
TEST_F(NodePortFastTest, DsrFromTheCacheAndItsMtuCheck) {
  dsr(true);
  nodeport(kNode, kNodePort, 1, {{kRemote, 8080}});
  ASSERT_EQ(fwd(client(TCP_SYN, 9)).retval, XDP_TX);
  ASSERT_EQ(fwd(client(TCP_ACK, 10)).retval, XDP_TX);
  ASSERT_EQ(fast_entries(), 1u);
  forget_slow_state();
  auto wrapped = [&](uint32_t seq, const std::string& pl) {
    Bytes inner = PacketBuilder().ipv4(kClient, kRemote).tos(0x10)
                      .tcp(40000, 8080, TCP_ACK, seq, 4).payload(pl).build();
    inner.erase(inner.begin(), inner.begin() + 14);
    return PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, kRemote).tos(0x10)
        .ip_id(kNodePort).ip_frag(0, false, true).l4_proto(IPPROTO_IPIP)
        .payload(inner).build();
  };
  for (uint32_t i = 0; i < 2; i++) {
    const std::string pl(10 + 500 * i, 'd');
    RunResult r = fwd(PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
                          .tos(0x10).tcp(40000, kNodePort, TCP_ACK, 11 + i, 4).payload(pl)
                          .build());
    ASSERT_EQ(r.retval, XDP_TX);
    EXPECT_EQ(r.data, wrapped(11 + i, pl));
  }
  // 1500 bytes of IP: 1520 once wrapped, over np0's 1500.
  RunResult r = fwd(client(TCP_ACK, 20, std::string(1500 - 40, 'm')));
  EXPECT_EQ(r.retval, XDP_DROP);
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_LB_MTU_EXCEEDED), 1u);
  // The same frame claiming an IP length of 100: the frame is what
  // leaves, so the cache still does not wrap it.
  Bytes liar = client(TCP_ACK, 21, std::string(1500 - 40, 'm'));
  liar[14 + 2] = 0;
  liar[14 + 3] = 100;
  liar[14 + 10] = liar[14 + 11] = 0;
  uint32_t sum = 0;
  for (size_t i = 0; i < 20; i += 2) sum += uint32_t(liar[14 + i] << 8 | liar[14 + i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  liar[14 + 10] = uint8_t(~sum >> 8);
  liar[14 + 11] = uint8_t(~sum);
  EXPECT_NE(fwd(liar).retval, XDP_TX);
}

// An entry past its time goes back to the slow path, which revalidates
// the connection (here: finds its backend gone) and does not refill it.
TEST_F(NodePortFastTest, AStaleEntryIsRevalidatedByTheSlowPath) {
  nodeport(kNode, kNodePort, 1, {{kRemote, 8080}});
  ASSERT_EQ(fwd(client(TCP_SYN, 9)).retval, XDP_TX);
  ASSERT_EQ(fwd(client(TCP_ACK, 10)).retval, XDP_TX);
  auto slots = fast_slots();
  ASSERT_EQ(slots.size(), 1u);
  auto [slot, vals] = slots[0];
  sluice_np_fast* v = nullptr;
  for (auto& x : vals)
    if (x.key.proto) v = &x;
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->key.proto, IPPROTO_TCP);
  EXPECT_EQ(ntohs(v->key.dport), kNodePort);
  EXPECT_EQ(v->kind, SLUICE_NP_FAST_NAT);
  EXPECT_EQ(v->ifindex, ifindex_);
  nodeport(kNode, kNodePort, 1, {{"10.201.0.6", 8080}});  // same id, new address
  sluice_ct_key fk{};
  sluice_np_fwd fv{};
  ASSERT_EQ(bpf_map__get_next_key(xdp_->maps.sluice_np_fwd, nullptr, &fk, sizeof(fk)), 0);
  ASSERT_EQ(bpf_map__lookup_elem(xdp_->maps.sluice_np_fwd, &fk, sizeof(fk), &fv, sizeof(fv), 0), 0);
  fv.last_seen -= 2000000000ull;
  ASSERT_EQ(bpf_map__update_elem(xdp_->maps.sluice_np_fwd, &fk, sizeof(fk), &fv, sizeof(fv), 0), 0);
  // Still within its time: the cache forwards to the old address.
  RunResult r = fwd(client(TCP_ACK, 11));
  EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, kRemote)
                        .tcp(sport_of(r.data, 34), 8080, TCP_ACK, 11, 4).build());
  v->until = 0;
  ASSERT_EQ(bpf_map__update_elem(xdp_->maps.sluice_np_fast, &slot, sizeof(slot), vals.data(),
                                 vals.size() * sizeof(vals[0]), 0), 0);
  r = fwd(client(TCP_ACK, 12));
  ASSERT_EQ(r.retval, XDP_TX);
  EXPECT_EQ(r.data, PacketBuilder().eth(node_mac_, kPeerMac).ipv4(kNode, "10.201.0.6")
                        .tcp(sport_of(r.data, 34), 8080, TCP_ACK, 12, 4).build());
}

TEST_F(NodePortFwdTest, UnresolvedNextHopIsRequestedAndDropped) {
  auto nl = sluice::Netlink::open();
  ASSERT_TRUE(nl);
  auto far = *sluice::IpAddr::parse("198.18.0.9");
  ASSERT_TRUE(nl->add_route("np0", *sluice::Cidr::parse("10.202.0.0/16"), &far));
  nodeport(kNode, kNodePort, 1, {{"10.202.0.7", 8080}});
  RunResult r = fwd(PacketBuilder().eth(kClientMac, node_mac_).ipv4(kClient, kNode)
                        .tcp(40000, kNodePort, TCP_SYN, 9).build());
  EXPECT_EQ(r.retval, XDP_DROP);
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_LB_NO_NEIGH), 1u);
  sluice_np_neigh_key k{};
  k.ifindex = ifindex_;
  k.family = AF_INET;
  std::memcpy(k.addr, far.bytes.data(), 4);
  uint64_t at = 0;
  EXPECT_EQ(bpf_map__lookup_elem(xdp_->maps.sluice_np_neigh, &k, sizeof(k), &at,
                                 sizeof(at), 0), 0);
}

}  // namespace
}  // namespace sluice::test

// sluice_lxc through BPF_PROG_TEST_RUN: anti-spoofing, conntrack, policy
// (identity, any-peer, CIDR identity, port ranges), local delivery,
// fragments, IPv4 options and IPv6 extension headers, and the established
// fast path (delivery from the conntrack entry, endpoint epoch). The
// fixture is in lxc_fixture.h.
#include "lxc_fixture.h"

namespace sluice::test {
namespace {

TEST_F(LxcTest, UnknownDeviceIsDropped) {
  ASSERT_EQ(map_delete(skel_->maps.sluice_ep_if, kDev), 0);
  EXPECT_EQ(out(tcp("10.200.0.1", "192.0.2.1", 1000, 80)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_UNKNOWN_ENDPOINT), 1u);
}

TEST_F(LxcTest, SpoofedSourceIsDropped) {
  EXPECT_EQ(out(tcp("10.200.0.2", "192.0.2.1", 1000, 80)).retval, TC_ACT_SHOT);
  EXPECT_EQ(out(tcp6("fd10:200::99", "2001:db8::1", 1000, 80)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_SPOOFED_SOURCE), 2u);
  EXPECT_EQ(ct_entries(), 0u);
  EXPECT_EQ(out(tcp("10.200.0.1", "192.0.2.1", 1000, 80)).retval, TC_ACT_OK);
}

TEST_F(LxcTest, RemoteDestinationGoesToHostStackWithConntrack) {
  Bytes f = tcp("10.200.0.1", "192.0.2.1", 1000, 80);
  RunResult r = out(f);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.data, f);
  EXPECT_EQ(ct_entries(), 1u);
  // The reply comes back through the host stack to the pod.
  EXPECT_EQ(in(tcp("192.0.2.1", "10.200.0.1", 80, 1000, TCP_SYN | TCP_ACK)).retval, TC_ACT_OK);
}

TEST_F(LxcTest, LocalDestinationIsRedirectedWithMacsRewritten) {
  Bytes f = tcp("10.200.0.1", "10.200.0.2", 1000, 80);
  RunResult r = out(f);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  ASSERT_GE(r.data.size(), 12u);
  EXPECT_EQ(0, std::memcmp(r.data.data(), b_.pod_mac, 6));
  EXPECT_EQ(0, std::memcmp(r.data.data() + 6, b_.host_mac, 6));
  EXPECT_TRUE(std::equal(f.begin() + 12, f.end(), r.data.begin() + 12));
}

TEST_F(LxcTest, EgressPolicyPortsAndRanges) {
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED,
          {allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, 80, 80),
           allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, 8080, 8090)});
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1001, 8085)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1002, 81)).retval, TC_ACT_SHOT);
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1003, 8091)).retval, TC_ACT_SHOT);
  EXPECT_EQ(out(PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").udp(1004, 80).build()).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(out(tcp("10.200.0.1", "192.0.2.1", 1005, 80)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_POLICY_DENY_EGRESS), 4u);
  EXPECT_EQ(ct_entries(), 2u) << "a denied connection is never half-open";
}

TEST_F(LxcTest, IngressPolicyOfLocalDestinationAppliedAtSource) {
  enforce(b_, SLUICE_EP_INGRESS_ENFORCED,
          {allow(kIdC, SLUICE_DIR_INGRESS, IPPROTO_TCP, 80, 80)});
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_POLICY_DENY_INGRESS), 1u);
  enforce(b_, SLUICE_EP_INGRESS_ENFORCED,
          {allow(SLUICE_ID_ANY, SLUICE_DIR_INGRESS, IPPROTO_TCP, 80, 80)});
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
}

TEST_F(LxcTest, RepliesPassWithoutReverseRule) {
  enforce(b_, SLUICE_EP_EGRESS_ENFORCED | SLUICE_EP_INGRESS_ENFORCED,
          {allow(kIdA, SLUICE_DIR_INGRESS, IPPROTO_TCP, 80, 80)});
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  act_as(b_);
  // B may not open anything, but its reply flows back to A.
  EXPECT_EQ(out(tcp("10.200.0.2", "10.200.0.1", 80, 1000, TCP_SYN | TCP_ACK)).retval,
            TC_ACT_REDIRECT);
  EXPECT_EQ(out(tcp("10.200.0.2", "10.200.0.1", 81, 1000)).retval, TC_ACT_SHOT);
}

TEST_F(LxcTest, EstablishedSurvivesPolicyThatWouldDenyANewOne) {
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED, {});
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80, TCP_ACK)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1001, 80)).retval, TC_ACT_SHOT);
}

TEST_F(LxcTest, CidrIdentityCoversIpBlockRules) {
  // 192.0.2.0/24 is an ipBlock in some policy: world addresses in it carry
  // its CIDR identity, and so does a pod address inside it.
  ipcache(SLUICE_ID_WORLD, kCidr, "192.0.2.0/24");
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED,
          {allow(kCidr, SLUICE_DIR_EGRESS, IPPROTO_TCP, 443, 443)});
  EXPECT_EQ(out(tcp("10.200.0.1", "192.0.2.9", 1000, 443)).retval, TC_ACT_OK);
  EXPECT_EQ(out(tcp("10.200.0.1", "198.51.100.9", 1001, 443)).retval, TC_ACT_SHOT);
  // The pod B: label identity kIdB, CIDR identity kCidr.
  ipcache(kIdB, kCidr, AF_INET, b_.ipv4, 32);
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1002, 443)).retval, TC_ACT_REDIRECT);
}

TEST_F(LxcTest, IcmpOnlyByRulesWithoutPorts) {
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED,
          {allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, 1, 65535)});
  Bytes ping = PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").icmp_echo(7, 1).build();
  EXPECT_EQ(out(ping).retval, TC_ACT_SHOT);
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED, {allow_all_ports(kIdB, SLUICE_DIR_EGRESS, 0)});
  EXPECT_EQ(out(ping).retval, TC_ACT_REDIRECT);
}

TEST_F(LxcTest, Ipv4OptionsDoNotHideThePort) {
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED,
          {allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, 80, 80)});
  Bytes opts = {0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00};  // router alert + NOPs
  auto f81 = PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").ip_options(opts).tcp(1000, 81, TCP_SYN).build();
  auto f80 = PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").ip_options(opts).tcp(1000, 80, TCP_SYN).build();
  EXPECT_EQ(out(f81).retval, TC_ACT_SHOT);
  EXPECT_EQ(out(f80).retval, TC_ACT_REDIRECT);
}

TEST_F(LxcTest, Ipv6ExtensionHeadersAreWalked) {
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED,
          {allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, 80, 80)});
  auto mk = [](uint16_t port) {
    return PacketBuilder().ipv6("fd10:200::1", "fd10:200::2").ext_hop_by_hop().ext_dest_opts()
        .ext_routing().tcp(1000, port, TCP_SYN).build();
  };
  EXPECT_EQ(out(mk(81)).retval, TC_ACT_SHOT);
  EXPECT_EQ(out(mk(80)).retval, TC_ACT_REDIRECT);
  PacketBuilder deep;
  deep.ipv6("fd10:200::1", "fd10:200::2");
  for (int i = 0; i < 9; i++) deep.ext_dest_opts();
  EXPECT_EQ(out(deep.tcp(1000, 80, TCP_SYN).build()).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_IPV6_EXT_UNSUPPORTED), 1u);
}

TEST_F(LxcTest, FragmentsFollowTheirFirstFragment) {
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED,
          {allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_UDP, 53, 53)});
  auto first = [](uint16_t id, uint16_t port) {
    return PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").ip_id(id).ip_frag(0, true)
        .udp(1000, port).payload(std::string(64, 'x')).build();
  };
  auto later = [](uint16_t id) {
    return PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").ip_id(id).ip_frag(72, false)
        .l4_proto(IPPROTO_UDP).payload(std::string(32, 'y')).build();
  };
  EXPECT_EQ(out(later(5)).retval, TC_ACT_SHOT) << "no first fragment seen";
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_FRAG_NO_STATE), 1u);
  EXPECT_EQ(out(first(6, 5353)).retval, TC_ACT_SHOT);  // denied port
  EXPECT_EQ(out(later(6)).retval, TC_ACT_SHOT) << "its first fragment was denied";
  EXPECT_EQ(out(first(7, 53)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(out(later(7)).retval, TC_ACT_REDIRECT);
  // IPv6: the fragment extension header.
  auto first6 = PacketBuilder().ipv6("fd10:200::1", "fd10:200::2").ext_fragment(0, true, 99)
                    .udp(1000, 5353).payload(std::string(64, 'x')).build();
  auto later6 = PacketBuilder().ipv6("fd10:200::1", "fd10:200::2").ext_fragment(72, false, 99)
                    .l4_proto(IPPROTO_UDP).payload(std::string(32, 'y')).build();
  EXPECT_EQ(out(first6).retval, TC_ACT_SHOT);
  EXPECT_EQ(out(later6).retval, TC_ACT_SHOT);
}

TEST_F(LxcTest, NeighbourDiscoveryIsNotPodTraffic) {
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED, {});
  // A neighbour solicitation from the link-local address.
  Bytes ns = PacketBuilder().ipv6("fe80::1", "ff02::1:ff00:2").l4_proto(58)
                 .payload(Bytes{135, 0, 0, 0, 0, 0, 0, 0}).build();
  EXPECT_EQ(out(ns).retval, TC_ACT_OK);
  Bytes echo = PacketBuilder().ipv6("fe80::1", "fd10:200::2").icmp_echo(1, 1).build();
  EXPECT_EQ(out(echo).retval, TC_ACT_SHOT) << "other link-local traffic is spoofed";
}

TEST_F(LxcTest, FromHostStackIngressPolicyAndHostExemption) {
  ipcache(SLUICE_ID_HOST, 0, "198.18.0.1/32");
  enforce(a_, SLUICE_EP_INGRESS_ENFORCED,
          {allow(kIdC, SLUICE_DIR_INGRESS, IPPROTO_TCP, 80, 80)});
  EXPECT_EQ(in(tcp("192.0.2.1", "10.200.0.1", 1000, 80)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_POLICY_DENY_INGRESS), 1u);
  EXPECT_EQ(in(tcp("198.18.0.1", "10.200.0.1", 1000, 80)).retval, TC_ACT_OK);  // the node
  ipcache(kIdC, 0, "10.9.0.0/16");  // a remote pod range of identity C
  EXPECT_EQ(in(tcp("10.9.1.1", "10.200.0.1", 1000, 80)).retval, TC_ACT_OK);
}

TEST_F(LxcTest, PolicyMapsRefuseTooManyRangesAndChangeNothing) {
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED, {allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, 80, 80)});
  std::vector<PolicyEntry> many;
  for (uint16_t p = 1; p <= SLUICE_POLICY_RANGES + 1; p++)
    many.push_back(allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, p * 10, p * 10));
  auto s = pol_->install(a_.ep_id, many);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("port ranges"), std::string::npos) << s.error();
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
}

// ---- conntrack entry: one per connection, delivery target inside --------

void expect_end(const sluice_ct_end& end, const sluice_endpoint& ep) {
  EXPECT_EQ(end.ifindex, ep.ifindex);
  EXPECT_EQ(end.ep_id, ep.ep_id);
  EXPECT_EQ(0, std::memcmp(end.pod_mac, ep.pod_mac, 6));
  EXPECT_EQ(0, std::memcmp(end.host_mac, ep.host_mac, 6));
}

TEST_F(LxcTest, CtEntryHoldsBothEndsDeliveryTargets) {
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  auto rows = ct_rows();
  ASSERT_EQ(rows.size(), 1u);
  const CtRow& r = rows[0];
  // Listed as the initiator sent it, whatever the map key's orientation.
  EXPECT_EQ(ct_endpoint_str(r.key, true), "10.200.0.1:1000");
  EXPECT_EQ(ct_endpoint_str(r.key, false), "10.200.0.2:80");
  EXPECT_EQ(r.value.src_identity, kIdA);
  EXPECT_EQ(r.value.dst_identity, kIdB);
  expect_end(r.value.ends[0], a_);  // initiator: where its packets come from
  expect_end(r.value.ends[1], b_);  // responder: where they are delivered
  // The map key is canonical: the agent's ct_map_key() finds it.
  bool swapped = false;
  auto k = ct_map_key(r.key, &swapped);
  EXPECT_EQ(swapped, (r.value.flags & SLUICE_CT_KEY_SWAPPED) != 0);
  EXPECT_TRUE(map_lookup<sluice_ct_value>(skel_->maps.sluice_ct, k).has_value());
}

TEST_F(LxcTest, CtKeyIsCanonicalInBothOrientations) {
  // 10.200.0.2 -> 10.200.0.1 sorts the other way round than A -> B: both
  // orientations of the key are exercised, each listed initiator-first.
  act_as(b_);
  ASSERT_EQ(out(tcp("10.200.0.2", "10.200.0.1", 2000, 443)).retval, TC_ACT_REDIRECT);
  act_as(a_);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  auto rows = ct_rows();
  ASSERT_EQ(rows.size(), 2u);
  int swapped = 0;
  for (const auto& r : rows) {
    swapped += (r.value.flags & SLUICE_CT_KEY_SWAPPED) != 0;
    if (ct_endpoint_str(r.key, true) == "10.200.0.2:2000") {
      EXPECT_EQ(ct_endpoint_str(r.key, false), "10.200.0.1:443");
      expect_end(r.value.ends[0], b_);
      expect_end(r.value.ends[1], a_);
    } else {
      EXPECT_EQ(ct_endpoint_str(r.key, true), "10.200.0.1:1000");
      expect_end(r.value.ends[0], a_);
      expect_end(r.value.ends[1], b_);
    }
  }
  EXPECT_EQ(swapped, 1);
}

TEST_F(LxcTest, ReplyUsesTheSameEntryAndMarksIt) {
  // Both pods "on" kDev (the device plays A's veth, then B's), so both
  // directions take the fast path.
  a_.ifindex = b_.ifindex = kDev;
  add_local(a_);
  add_local(b_);
  act_as(a_);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  act_as(b_);
  RunResult r = out(tcp("10.200.0.2", "10.200.0.1", 80, 1000, TCP_SYN | TCP_ACK));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  ASSERT_GE(r.data.size(), 12u);
  EXPECT_EQ(0, std::memcmp(r.data.data(), a_.pod_mac, 6));
  EXPECT_EQ(0, std::memcmp(r.data.data() + 6, a_.host_mac, 6));
  auto rows = ct_rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].value.flags & SLUICE_CT_SEEN_REPLY);
}

TEST_F(LxcTest, EstablishedPacketsAreDeliveredFromTheEntryAlone) {
  a_.ifindex = kDev;
  add_local(a_);
  act_as(a_);
  Bytes ack = tcp("10.200.0.1", "10.200.0.2", 1000, 80, TCP_ACK);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  // Without any endpoint table behind it (the agent is mid-change and has
  // not moved the epoch yet), an established packet still reaches B: the
  // fast path reads neither sluice_ep_if nor sluice_ep_ip.
  remove_local(b_);
  ASSERT_EQ(map_delete(skel_->maps.sluice_ep_if, kDev), 0);
  RunResult r = out(ack);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(0, std::memcmp(r.data.data(), b_.pod_mac, 6));
  // Once the epoch moves, the entry is checked again and the device is
  // no endpoint any more.
  bump_epoch();
  EXPECT_EQ(out(ack).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_UNKNOWN_ENDPOINT), 1u);
}

TEST_F(LxcTest, EpochChangeWithSameEndpointsKeepsTheConnection) {
  a_.ifindex = kDev;
  add_local(a_);
  act_as(a_);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  // Some other endpoint changed; this connection's ends did not, and a
  // policy that would deny a new connection does not cut it.
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED, {});
  bump_epoch();
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80, TCP_ACK)).retval, TC_ACT_REDIRECT);
  auto rows = ct_rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].value.ep_epoch, 1u) << "re-resolved at the new epoch";
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_POLICY_DENY_EGRESS), 0u);
}

TEST_F(LxcTest, StaleTargetIsNeverDeliveredToTheNextPod) {
  a_.ifindex = kDev;
  add_local(a_);
  act_as(a_);
  Bytes ack = tcp("10.200.0.1", "10.200.0.2", 1000, 80, TCP_ACK);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  // B is deleted; pod E gets B's address AND B's host-veth ifindex (12),
  // with its own endpoint id, MACs and identity, and an ingress policy that
  // does not admit A.
  remove_local(b_);
  bump_epoch();
  sluice_endpoint e = make_ep(5, kIdC, "10.200.0.2", "fd10:200::2", 12, 0x05);
  enforce(e, SLUICE_EP_INGRESS_ENFORCED, {allow(kIdB, SLUICE_DIR_INGRESS, IPPROTO_TCP, 80, 80)});
  // A's old connection is not E's: decided by E's policy as a new one.
  EXPECT_EQ(out(ack).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_INGRESS, SLUICE_DROP_POLICY_DENY_INGRESS), 1u);
  EXPECT_EQ(ct_entries(), 0u) << "the stale entry is gone";
  // Allowed by E's policy, it is a connection to E, with E's MACs.
  enforce(e, SLUICE_EP_INGRESS_ENFORCED, {allow(kIdA, SLUICE_DIR_INGRESS, IPPROTO_TCP, 80, 80)});
  RunResult r = out(ack);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(0, std::memcmp(r.data.data(), e.pod_mac, 6));
  auto rows = ct_rows();
  ASSERT_EQ(rows.size(), 1u);
  expect_end(rows[0].value.ends[1], e);
}

TEST_F(LxcTest, DeletedDestinationIsNotReachedThroughItsEntry) {
  a_.ifindex = kDev;
  add_local(a_);
  act_as(a_);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  remove_local(b_);
  bump_epoch();
  // B is gone: the address is not local any more, the packet goes to the
  // host stack (routing decides), never to B's old veth.
  Bytes ack = tcp("10.200.0.1", "10.200.0.2", 1000, 80, TCP_ACK);
  RunResult r = out(ack);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.data, ack);
}

TEST_F(LxcTest, AnotherPodCannotReuseAnEstablishedTuple) {
  // A (host veth 11) has a connection to B. Pod C, on this device, sends
  // packets of that connection with A's source address: the entry says
  // they must come from A's veth, so the fast path refuses and
  // anti-spoofing drops them.
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  sluice_endpoint c = make_ep(3, kIdC, "10.200.0.3", "fd10:200::3", kDev, 0x03);
  add_local(c);
  act_as(c);
  EXPECT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80, TCP_ACK)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_SPOOFED_SOURCE), 1u);
  // ... and so are forged replies from B's address.
  EXPECT_EQ(out(tcp("10.200.0.2", "10.200.0.1", 80, 1000, TCP_ACK)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_SPOOFED_SOURCE), 2u);
}

TEST_F(LxcTest, HostStackConnectionIntoPodAndItsReplies) {
  a_.ifindex = kDev;
  add_local(a_);
  act_as(a_);
  ASSERT_EQ(in(tcp("192.0.2.1", "10.200.0.1", 5000, 80)).retval, TC_ACT_OK);
  auto rows = ct_rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].value.ends[0].ifindex, 0u) << "remote initiator";
  expect_end(rows[0].value.ends[1], a_);
  EXPECT_EQ(in(tcp("192.0.2.1", "10.200.0.1", 5000, 80, TCP_ACK)).retval, TC_ACT_OK);
  // A's reply leaves through the host stack (not a local destination).
  Bytes reply = tcp("10.200.0.1", "192.0.2.1", 80, 5000, TCP_SYN | TCP_ACK);
  RunResult r = out(reply);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.data, reply);
  EXPECT_EQ(ct_entries(), 1u);
}

TEST_F(LxcTest, GcRemovesEntriesOfVanishedVeths) {
  // A on lo (exists); B's host veth is an ifindex no device has.
  a_.ifindex = kDev;
  add_local(a_);
  act_as(a_);
  b_.ifindex = 0x7ffffff0;
  add_local(b_);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(out(tcp("10.200.0.1", "192.0.2.1", 1001, 80)).retval, TC_ACT_OK);
  ASSERT_EQ(ct_entries(), 2u);
  auto n = ct_gc(bpf_map__fd(skel_->maps.sluice_ct), ct_now_jiffies(), 1000);
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(*n, 1u);
  auto rows = ct_rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(ct_endpoint_str(rows[0].key, false), "192.0.2.1:80");
}

}  // namespace
}  // namespace sluice::test

// The established flow cache of sluice_lxc (bpf/lib/flowcache.h) through
// BPF_PROG_TEST_RUN: a hit delivers exactly what the conntrack path
// delivers and counts it the same; a slot is never used after an endpoint
// epoch change, from another veth, after FIN/RST, after the agent deleted
// conntrack entries (it moves sluice_ep_epoch), for fragments, or for service
// connections (translated and reverse-translated by conntrack only).
//
// The cache is per CPU: the fixture pins the test thread to one CPU so
// that the slot a packet fills is the one the next packet finds. A slot is
// trusted only for the jiffy it was checked in; tests "freeze" a slot
// (until = max) to make the next packet's hit independent of timing, and
// tell a hit from a conntrack pass by what only the conntrack path does
// (re-create a deleted entry, rewrite the slot).
#include "flowcache_fixture.h"

namespace sluice::test {
namespace {

// SYN (new: slow path), ACK (conntrack fast path: fills the slot), ACK
// (cache hit): the hit's frame and verdict are the conntrack path's, byte
// for byte, and the slot holds the delivery conntrack chose.
TEST_F(FlowCacheTest, HitDeliversTheSameBytesAsConntrackIPv4AndIPv6) {
  a_on_dev();
  struct Flow {
    Bytes syn, ack;
  };
  const Flow flows[] = {
      {tcp("10.200.0.1", "10.200.0.2", 1000, 80),
       PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").tcp(1000, 80, TCP_ACK, 9, 3)
           .payload("data").build()},
      {tcp6("fd10:200::1", "fd10:200::2", 1000, 80),
       PacketBuilder().ipv6("fd10:200::1", "fd10:200::2").tcp(1000, 80, TCP_ACK, 9, 3)
           .payload("data").build()},
      {PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").udp(5353, 53).payload("q").build(),
       PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").udp(5353, 53).payload("q2").build()},
      {PacketBuilder().ipv6("fd10:200::1", "fd10:200::2").udp(5353, 53).payload("q").build(),
       PacketBuilder().ipv6("fd10:200::1", "fd10:200::2").udp(5353, 53).payload("q2").build()},
  };
  for (const auto& f : flows) {
    SCOPED_TRACE(f.ack.size());
    ASSERT_EQ(out(f.syn).retval, TC_ACT_REDIRECT);
    EXPECT_FALSE(cached(fc_out(), f.ack)) << "a new connection fills nothing";
    fill(false, f.ack);
    RunResult via_ct = last_;
    ASSERT_EQ(via_ct.retval, TC_ACT_REDIRECT);
    const sluice_fc_entry e = slot(fc_out(), f.ack);
    ASSERT_TRUE(holds(e, fc_key(f.ack)));
    EXPECT_EQ(e.ifindex, kDev);
    EXPECT_EQ(e.redirect, b_.ifindex);
    EXPECT_EQ(0, std::memcmp(e.eth, b_.pod_mac, 6));
    EXPECT_EQ(0, std::memcmp(reinterpret_cast<const uint8_t*>(e.eth) + 6, b_.host_mac, 6));
    // The entry goes (no generation bump: as the kernel's LRU would evict
    // it): a packet that is not a hit would re-create it.
    freeze(fc_out(), f.ack);
    uint64_t total = 0;
    auto rows = ct_dump(ct_fd(), 100, &total);
    ASSERT_TRUE(rows);
    for (const auto& r : *rows) ASSERT_EQ(map_delete(skel_->maps.sluice_ct, ct_map_key(r.key)), 0);
    RunResult via_cache = out(f.ack);
    EXPECT_EQ(via_cache.retval, via_ct.retval);
    EXPECT_EQ(via_cache.data, via_ct.data);
    EXPECT_EQ(ct_entries(), 0u) << "delivered by the cache alone";
    EXPECT_EQ(slot(fc_out(), f.ack).until, ~0ull) << "a hit writes nothing";
    // The jiffy is over: the next packet checks conntrack again (finds
    // nothing: decided by policy, a new entry), the one after refills.
    sluice_fc_entry stale = slot(fc_out(), f.ack);
    stale.until = 0;
    write_slot(fc_out(), f.ack, stale);
    EXPECT_EQ(out(f.ack).retval, TC_ACT_REDIRECT);
    EXPECT_EQ(ct_entries(), 1u);
    fill(false, f.ack);
    EXPECT_EQ(last_.retval, TC_ACT_REDIRECT);
    EXPECT_NE(slot(fc_out(), f.ack).until, 0u);
  }
}

TEST_F(FlowCacheTest, HitsAreCountedExactly) {
  a_on_dev();
  const Bytes syn = tcp("10.200.0.1", "10.200.0.2", 1000, 80);
  const Bytes ack = PacketBuilder().ipv4("10.200.0.1", "10.200.0.2")
                        .tcp(1000, 80, TCP_ACK).payload("12345").build();
  ASSERT_EQ(out(syn).retval, TC_ACT_REDIRECT);
  const uint64_t acks = fill(false, ack);
  ASSERT_EQ(last_.retval, TC_ACT_REDIRECT);
  freeze(fc_out(), ack);
  for (int i = 0; i < 10; i++) ASSERT_EQ(out(ack).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(slot(fc_out(), ack).until, ~0ull) << "all ten were hits";
  sluice_counter c = forwarded(SLUICE_DIR_EGRESS);
  EXPECT_EQ(c.packets, 1 + acks + 10);
  EXPECT_EQ(c.bytes, syn.size() + (acks + 10) * ack.size());

  // Towards the pod (sluice_lxc_in): the same, from the host stack.
  const Bytes in_syn = tcp("192.0.2.1", "10.200.0.1", 5000, 80);
  const Bytes in_ack = PacketBuilder().ipv4("192.0.2.1", "10.200.0.1")
                           .tcp(5000, 80, TCP_ACK).payload("abc").build();
  ASSERT_EQ(in(in_syn).retval, TC_ACT_OK);
  const uint64_t in_acks = fill(true, in_ack);
  ASSERT_EQ(last_.retval, TC_ACT_OK);
  EXPECT_EQ(slot(fc_in(), in_ack).redirect, 0u);
  freeze(fc_in(), in_ack);
  for (int i = 0; i < 5; i++) {
    RunResult r = in(in_ack);
    ASSERT_EQ(r.retval, TC_ACT_OK);
    EXPECT_EQ(r.data, in_ack) << "untouched";
  }
  c = forwarded(SLUICE_DIR_INGRESS);
  EXPECT_EQ(c.packets, 1 + in_acks + 5);
  EXPECT_EQ(c.bytes, in_syn.size() + (in_acks + 5) * in_ack.size());
}

TEST_F(FlowCacheTest, OnlyHotFlowsFillASlot) {
  // A flow whose previous packet is more than a jiffy old would not use a
  // slot (it lives one jiffy): its packets take conntrack, write nothing.
  a_on_dev();
  const Bytes ack = tcp("10.200.0.1", "10.200.0.2", 1000, 80, TCP_ACK);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  for (int i = 0; i < 3; i++) {
    auto rows = ct_rows();
    ASSERT_EQ(rows.size(), 1u);
    const sluice_ct_key k = ct_map_key(rows[0].key);
    sluice_ct_value v = rows[0].value;
    v.last_seen = 1;  // long ago
    ASSERT_EQ(map_update(skel_->maps.sluice_ct, k, v), 0);
    ASSERT_EQ(out(ack).retval, TC_ACT_REDIRECT);
    EXPECT_FALSE(cached(fc_out(), ack));
    EXPECT_GT(ct_rows()[0].value.last_seen, 1u) << "refreshed by conntrack";
  }
  fill(false, ack);  // packets in quick succession: hot
}

TEST_F(FlowCacheTest, EpochChangeInvalidatesSlots) {
  a_on_dev();
  const Bytes ack = tcp("10.200.0.1", "10.200.0.2", 1000, 80, TCP_ACK);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  fill(false, ack);
  freeze(fc_out(), ack);
  // The device is no endpoint any more, and the agent moved the epoch:
  // the slot is not trusted, conntrack's slow path decides (and drops).
  ASSERT_EQ(map_delete(skel_->maps.sluice_ep_if, kDev), 0);
  bump_epoch();
  EXPECT_EQ(out(ack).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_UNKNOWN_ENDPOINT), 1u);
}

TEST_F(FlowCacheTest, EpochChangeWithSameEndpointsRefillsAtTheNewEpoch) {
  a_on_dev();
  const Bytes ack = tcp("10.200.0.1", "10.200.0.2", 1000, 80, TCP_ACK);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  fill(false, ack);
  EXPECT_EQ(slot(fc_out(), ack).ep_epoch, 0u);
  bump_epoch();
  ASSERT_EQ(out(ack).retval, TC_ACT_REDIRECT);  // slow path: ends re-resolved
  for (int i = 0; i < 20 && slot(fc_out(), ack).ep_epoch != 1; i++)
    ASSERT_EQ(out(ack).retval, TC_ACT_REDIRECT);  // fast path: refilled
  EXPECT_EQ(slot(fc_out(), ack).ep_epoch, 1u);
}

TEST_F(FlowCacheTest, SlotOfAnotherVethIsNotUsed) {
  // A (host veth 11) has a connection to B; the slot for its tuple says
  // "arrives on veth 11", valid in every other respect. Pod C, on this
  // device, replays the tuple with A's address: no hit, and anti-spoofing
  // drops it.
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  const Bytes ack = tcp("10.200.0.1", "10.200.0.2", 1000, 80, TCP_ACK);
  const FcKey k = fc_key(ack);
  sluice_fc_entry e{};
  std::memcpy(e.addr, k.addr, sizeof(e.addr));
  e.ports = k.ports;
  e.meta = k.meta;
  e.ifindex = a_.ifindex;
  e.until = ~0ull;
  e.redirect = b_.ifindex;
  write_slot(fc_out(), ack, e);
  sluice_endpoint c = make_ep(3, kIdC, "10.200.0.3", "fd10:200::3", kDev, 0x03);
  add_local(c);
  act_as(c);
  EXPECT_EQ(out(ack).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_SPOOFED_SOURCE), 1u);
  // The same slot on this device's ifindex would have been a hit: the
  // compare above is what refused it.
  e.ifindex = kDev;
  write_slot(fc_out(), ack, e);
  EXPECT_EQ(out(ack).retval, TC_ACT_REDIRECT);
}

TEST_F(FlowCacheTest, FinAndRstGoToConntrackAndClearTheSlots) {
  // Both pods on this device: A's packets, then B's replies.
  a_.ifindex = b_.ifindex = kDev;
  add_local(a_);
  add_local(b_);
  for (uint8_t closing : {uint8_t(TCP_FIN | TCP_ACK), uint8_t(TCP_RST)}) {
    SCOPED_TRACE(int(closing));
    const uint16_t sp = closing == TCP_RST ? 2000 : 1000;
    const Bytes fwd = tcp("10.200.0.1", "10.200.0.2", sp, 80, TCP_ACK);
    const Bytes rev = tcp("10.200.0.2", "10.200.0.1", 80, sp, TCP_ACK);
    act_as(a_);
    ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", sp, 80)).retval, TC_ACT_REDIRECT);
    fill(false, fwd);
    freeze(fc_out(), fwd);
    act_as(b_);
    fill(false, rev);
    freeze(fc_out(), rev);
    // A closes: conntrack sees it (never the cache) and A's slot goes.
    act_as(a_);
    ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", sp, 80, closing)).retval, TC_ACT_REDIRECT);
    EXPECT_FALSE(cached(fc_out(), fwd));
    bool closing_seen = false;
    for (const auto& r : ct_rows())
      if (ntohs(r.key.sport) == sp) closing_seen = r.value.flags & SLUICE_CT_CLOSING;
    EXPECT_TRUE(closing_seen);
    // A's next packets take conntrack (refreshing the closing entry) and
    // are not cached again.
    ASSERT_EQ(out(fwd).retval, TC_ACT_REDIRECT);
    EXPECT_FALSE(cached(fc_out(), fwd));
    // B's slot ends with its jiffy; its re-check sees the closing entry
    // and clears it instead of refilling.
    sluice_fc_entry e = slot(fc_out(), rev);
    e.until = 0;
    write_slot(fc_out(), rev, e);
    act_as(b_);
    ASSERT_EQ(out(rev).retval, TC_ACT_REDIRECT);
    EXPECT_FALSE(cached(fc_out(), rev));
  }
}

TEST_F(FlowCacheTest, FlushInvalidatesEverySlotThroughTheEpoch) {
  // A may reach B:80 when the connection opens; then the policy changes
  // to deny it. The established connection survives (conntrack, and its
  // slot), until conntrack is flushed: then its next packet is a new
  // connection, and denied.
  a_on_dev();
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED, {allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, 80, 80)});
  const Bytes ack = tcp("10.200.0.1", "10.200.0.2", 1000, 80, TCP_ACK);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  fill(false, ack);
  ASSERT_EQ(last_.retval, TC_ACT_REDIRECT);
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED, {});
  freeze(fc_out(), ack);
  ASSERT_EQ(out(ack).retval, TC_ACT_REDIRECT);

  // Without the epoch bump the slot would outlive the flush (for the rest
  // of its jiffy; frozen here): that is what the bump is for.
  auto n = ct_flush(ct_fd());
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(out(ack).retval, TC_ACT_REDIRECT) << "frozen slot, no bump";

  // The agent's flush: entries deleted, then sluice_ep_epoch moves. (The
  // connection is opened again first: the slot is still the frozen one.)
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED, {allow(kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, 80, 80)});
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED, {});
  n = ct_flush(ct_fd(), epoch_fd());
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(epoch(), 1u);
  const uint64_t denied = drops(SLUICE_DIR_EGRESS, SLUICE_DROP_POLICY_DENY_EGRESS);
  EXPECT_EQ(out(ack).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_POLICY_DENY_EGRESS), denied + 1);
  // Nothing flushed: nothing to invalidate, the generation stays.
  n = ct_flush(ct_fd(), epoch_fd());
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(epoch(), 1u);
}

TEST_F(FlowCacheTest, GcDeletionMovesTheEpoch) {
  a_on_dev();
  b_.ifindex = 0x7ffffff0;  // a host veth no device has: GC deletes
  add_local(b_);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_REDIRECT);
  auto n = ct_gc(ct_fd(), ct_now_jiffies(), 1000, {}, -1, epoch_fd());
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(epoch(), 1u);
  n = ct_gc(ct_fd(), ct_now_jiffies(), 1000, {}, -1, epoch_fd());
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(epoch(), 1u) << "nothing deleted";
}

TEST_F(FlowCacheTest, FragmentsOptionsAndOtherProtocolsAreNotCached) {
  a_on_dev();
  // UDP fragments of an established flow.
  ASSERT_EQ(out(PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").udp(5353, 53).build()).retval,
            TC_ACT_REDIRECT);
  const Bytes first = PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").ip_id(7)
                          .ip_frag(0, true).udp(5353, 53).payload(Bytes(16, 1)).build();
  const Bytes later = PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").ip_id(7)
                          .ip_frag(24, false).udp(5353, 53).payload(Bytes(8, 2)).build();
  EXPECT_EQ(out(first).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(out(later).retval, TC_ACT_REDIRECT);
  // IPv4 options, ICMP echo.
  EXPECT_EQ(out(PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").ip_options(Bytes{1, 1, 1, 0})
                    .udp(5353, 53).build()).retval,
            TC_ACT_REDIRECT);
  EXPECT_EQ(out(PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").icmp_echo(3, 1).build()).retval,
            TC_ACT_REDIRECT);
  EXPECT_EQ(out(PacketBuilder().ipv4("10.200.0.1", "10.200.0.2").icmp_echo(3, 2).build()).retval,
            TC_ACT_REDIRECT);
  // IPv6 with a destination-options header.
  ASSERT_EQ(out(tcp6("fd10:200::1", "fd10:200::2", 1000, 80)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(out(PacketBuilder().ipv6("fd10:200::1", "fd10:200::2").ext_dest_opts()
                    .tcp(1000, 80, TCP_ACK).build()).retval,
            TC_ACT_REDIRECT);
  EXPECT_TRUE(cache_empty(fc_out()));
}

TEST_F(FlowCacheTest, ServiceConnectionsAreTranslatedByConntrackOnly) {
  // ClusterIP 10.96.0.10:80 -> B:8080; A and B on this device.
  a_.ifindex = b_.ifindex = kDev;
  add_local(a_);
  add_local(b_);
  act_as(a_);
  sluice_lb_svc_key k{};
  inet_pton(AF_INET, "10.96.0.10", k.addr);
  k.family = AF_INET;
  k.port = htons(80);
  k.proto = IPPROTO_TCP;
  k.scope = SLUICE_LB_SCOPE_INTERNAL;
  sluice_lb_svc v{};
  v.svc_id = 1;
  v.count = 1;
  sluice_lb_backend be{};
  inet_pton(AF_INET, "10.200.0.2", be.addr);
  be.family = AF_INET;
  be.port = htons(8080);
  ASSERT_EQ(map_update(skel_->maps.sluice_lb_be, 1u, be), 0);
  ASSERT_EQ(map_update(skel_->maps.sluice_lb_slots, sluice_lb_slot_key{1, 0}, 1u), 0);
  ASSERT_EQ(map_update(skel_->maps.sluice_lb_svc, k, v), 0);

  auto to_b = [&](uint8_t flags) {
    return PacketBuilder().ipv4("10.200.0.1", "10.96.0.10").tcp(1000, 80, flags).build();
  };
  auto from_b = [&](uint8_t flags) {
    return PacketBuilder().ipv4("10.200.0.2", "10.200.0.1").tcp(8080, 1000, flags).build();
  };
  ASSERT_EQ(out(to_b(TCP_SYN)).retval, TC_ACT_REDIRECT);
  act_as(b_);
  ASSERT_EQ(out(from_b(TCP_SYN | TCP_ACK)).retval, TC_ACT_REDIRECT);
  Bytes first_reply;
  for (int i = 0; i < 3; i++) {
    act_as(a_);
    RunResult r = out(to_b(TCP_ACK));
    ASSERT_EQ(r.retval, TC_ACT_REDIRECT);
    // Translated to the backend every time (destination port 8080).
    EXPECT_EQ(r.data[36], 8080 >> 8);
    EXPECT_EQ(r.data[37], 8080 & 0xff);
    act_as(b_);
    r = out(from_b(TCP_ACK));
    ASSERT_EQ(r.retval, TC_ACT_REDIRECT);
    // Reverse-translated every time: from the service address and port.
    EXPECT_EQ(r.data[34], 80 >> 8);
    EXPECT_EQ(r.data[35], 80 & 0xff);
    EXPECT_EQ(0, std::memcmp(&r.data[26], &k.addr[0], 4));
    if (i == 0) first_reply = r.data;
    EXPECT_EQ(r.data, first_reply);
  }
  // A reply reaching A through the host stack (sluice_lxc_in).
  act_as(a_);
  for (int i = 0; i < 2; i++) {
    RunResult r = in(from_b(TCP_ACK));
    ASSERT_EQ(r.retval, TC_ACT_OK);
    EXPECT_EQ(r.data[34], 80 >> 8);
    EXPECT_EQ(r.data[35], 80 & 0xff);
  }
  EXPECT_TRUE(cache_empty(fc_out()));
  EXPECT_TRUE(cache_empty(fc_in()));
}

}  // namespace
}  // namespace sluice::test

// Per-packet trace and per-endpoint event levels in sluice_lxc
// (bpf/lib/ep_events.h) through BPF_PROG_TEST_RUN: at level trace every
// forwarded packet of an established connection emits exactly one TRACE
// event, whether conntrack or the flow cache delivered it; at the default
// level (flows) none does; an endpoint's override (Pod annotation
// sluice.io/events-level) raises or lowers the level of its hook.
#include <arpa/inet.h>

#include "flowcache_fixture.h"

namespace sluice::test {
namespace {

class TraceTest : public FlowCacheTest {
 protected:
  void SetUp() override {
    FlowCacheTest::SetUp();
    if (HasFatalFailure()) return;
    a_on_dev();
  }
  // sluice_config as the agent writes it: global level + override flags.
  void config(uint32_t level, uint32_t flags = 0) {
    sluice_config c{};
    c.event_level = level;
    c.flags = flags;
    ASSERT_EQ(map_update(skel_->maps.sluice_config, 0u, c), 0);
  }
  // A on kDev with an event level override (as the endpoint manager).
  void override_a(uint32_t level) {
    a_.flags = (a_.flags & ~SLUICE_EP_EVENTS_MASK) | SLUICE_EP_EVENTS(level);
    add_local(a_);
    act_as(a_);
  }
  std::vector<sluice_event> events() {
    return drain_ringbuf_as<sluice_event>(skel_->maps.sluice_events);
  }
  static size_t count(const std::vector<sluice_event>& ev, uint16_t type) {
    size_t n = 0;
    for (const auto& e : ev) n += e.type == type;
    return n;
  }
  // Opens A -> B and makes the ACK's slot (sluice_fc_out) valid for good:
  // the next ACK is a cache hit. Returns the ACK. Events are drained.
  Bytes established_cached() {
    const Bytes syn = tcp("10.200.0.1", "10.200.0.2", 1000, 80);
    const Bytes ack = PacketBuilder().ipv4("10.200.0.1", "10.200.0.2")
                          .tcp(1000, 80, TCP_ACK, 9, 3).payload("data").build();
    EXPECT_EQ(out(syn).retval, TC_ACT_REDIRECT);
    fill(false, ack);
    freeze(fc_out(), ack);
    events();
    return ack;
  }
  // Deletes every conntrack entry: a packet delivered now came from the
  // flow cache (conntrack would re-create its entry).
  void forget_connections() {
    uint64_t total = 0;
    auto rows = ct_dump(ct_fd(), 100, &total);
    ASSERT_TRUE(rows) << rows.error();
    for (const auto& r : *rows)
      ASSERT_EQ(map_delete(skel_->maps.sluice_ct, ct_map_key(r.key)), 0);
  }
};

TEST_F(TraceTest, TraceLevelEmitsOneEventPerEstablishedPacketOfConntrack) {
  config(SLUICE_EVENTS_TRACE);
  const Bytes syn = tcp("10.200.0.1", "10.200.0.2", 1000, 80);
  const Bytes ack = PacketBuilder().ipv4("10.200.0.1", "10.200.0.2")
                        .tcp(1000, 80, TCP_ACK, 9, 3).payload("data").build();
  ASSERT_EQ(out(syn).retval, TC_ACT_REDIRECT);
  auto ev = events();
  EXPECT_EQ(count(ev, SLUICE_EVENT_POLICY_VERDICT), 1u);
  EXPECT_EQ(count(ev, SLUICE_EVENT_TRACE), 1u) << "the new connection's packet";
  // The first three after an endpoint change (the slow path's re-check of
  // a known connection), then conntrack's fast path and, once the flow is
  // hot, the flow cache: one event each.
  for (int i = 0; i < 10; i++) {
    if (i < 3) bump_epoch();
    ASSERT_EQ(out(ack).retval, TC_ACT_REDIRECT);
    ev = events();
    ASSERT_EQ(ev.size(), 1u) << "packet " << i;
    const auto& e = ev[0];
    EXPECT_EQ(e.type, SLUICE_EVENT_TRACE);
    EXPECT_EQ(e.verdict, SLUICE_VERDICT_FORWARDED);
    EXPECT_EQ(e.reason, SLUICE_TRACE_TO_ENDPOINT);
    EXPECT_EQ(e.dir, SLUICE_DIR_EGRESS);
    EXPECT_EQ(e.ifindex, kDev);
    if (i < 3) {  // conntrack knows them; a cache hit does not
      EXPECT_EQ(e.ep_id, a_.ep_id);
      EXPECT_EQ(e.src_identity, kIdA);
      EXPECT_EQ(e.dst_identity, kIdB);
    }
    EXPECT_EQ(ntohs(e.sport), 1000);
    EXPECT_EQ(ntohs(e.dport), 80);
    EXPECT_EQ(e.pkt_len, ack.size());
  }
  // Conntrack's fast path proper (no epoch change): the reply to A, at
  // A's ingress hook.
  const Bytes reply = PacketBuilder().ipv4("10.200.0.2", "10.200.0.1")
                          .tcp(80, 1000, TCP_ACK, 3, 10).build();
  ASSERT_EQ(in(reply).retval, TC_ACT_OK);
  ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, SLUICE_EVENT_TRACE);
  EXPECT_EQ(ev[0].dir, SLUICE_DIR_INGRESS);
  EXPECT_EQ(ev[0].reason, SLUICE_TRACE_TO_ENDPOINT);
  EXPECT_EQ(ev[0].src_identity, kIdB) << "in packet order: the reply's";
  EXPECT_EQ(ev[0].dst_identity, kIdA);
  EXPECT_EQ(ev[0].ep_id, a_.ep_id);
}

TEST_F(TraceTest, TraceLevelEmitsOneEventPerFlowCacheHit) {
  config(SLUICE_EVENTS_TRACE);
  const Bytes ack = established_cached();
  EXPECT_EQ(slot(fc_out(), ack).trace, 1u);
  forget_connections();
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(out(ack).retval, TC_ACT_REDIRECT);
    auto ev = events();
    ASSERT_EQ(ev.size(), 1u) << "hit " << i;
    EXPECT_EQ(ev[0].type, SLUICE_EVENT_TRACE);
    EXPECT_EQ(ev[0].reason, SLUICE_TRACE_TO_ENDPOINT);
    EXPECT_EQ(ev[0].ifindex, kDev);
    EXPECT_EQ(ev[0].family, AF_INET);
    EXPECT_EQ(ntohs(ev[0].sport), 1000);
    EXPECT_EQ(ntohs(ev[0].dport), 80);
  }
  EXPECT_EQ(ct_entries(), 0u) << "the hits were the cache's";
}

TEST_F(TraceTest, FlowsLevelEmitsNothingForEstablishedPackets) {
  config(SLUICE_EVENTS_FLOWS);
  const Bytes ack = established_cached();
  EXPECT_EQ(slot(fc_out(), ack).trace, 0u);
  for (int i = 0; i < 3; i++) ASSERT_EQ(out(ack).retval, TC_ACT_REDIRECT);
  bump_epoch();
  ASSERT_EQ(out(ack).retval, TC_ACT_REDIRECT);  // conntrack again
  const Bytes reply = PacketBuilder().ipv4("10.200.0.2", "10.200.0.1")
                          .tcp(80, 1000, TCP_ACK, 3, 10).build();
  ASSERT_EQ(in(reply).retval, TC_ACT_OK);
  EXPECT_TRUE(events().empty());
}

TEST_F(TraceTest, EndpointOverrideTraceTracesWhileTheGlobalLevelIsFlows) {
  config(SLUICE_EVENTS_FLOWS, SLUICE_CFG_EP_EVENTS | SLUICE_CFG_EP_TRACE);
  override_a(SLUICE_EVENTS_TRACE);
  const Bytes ack = established_cached();
  EXPECT_EQ(slot(fc_out(), ack).trace, 1u);
  ASSERT_EQ(out(ack).retval, TC_ACT_REDIRECT);
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, SLUICE_EVENT_TRACE);
  // Another endpoint's veth (B on kDev, no override) keeps the global
  // level: B's reply is not traced.
  b_.ifindex = kDev;
  a_.ifindex = 11;
  add_local(a_);
  add_local(b_);
  act_as(b_);
  ASSERT_EQ(map_update(skel_->maps.sluice_ep_if, 11u, a_), 0);
  bump_epoch();
  ASSERT_EQ(out(tcp("10.200.0.2", "10.200.0.1", 2000, 80)).retval,
            TC_ACT_REDIRECT);
  ev = events();
  EXPECT_EQ(count(ev, SLUICE_EVENT_POLICY_VERDICT), 1u);
  EXPECT_EQ(count(ev, SLUICE_EVENT_TRACE), 1u)
      << "delivered straight into A (trace): A's own hook is skipped";
  // To a pod elsewhere (no local peer): B's level alone, flows.
  const Bytes away = tcp("10.200.0.2", "10.9.9.9", 2001, 80);
  const Bytes away_ack = PacketBuilder().ipv4("10.200.0.2", "10.9.9.9")
                             .tcp(2001, 80, TCP_ACK, 9, 3).build();
  ASSERT_EQ(out(away).retval, TC_ACT_OK);
  events();
  ASSERT_EQ(out(away_ack).retval, TC_ACT_OK);
  EXPECT_TRUE(events().empty());
}

TEST_F(TraceTest, EndpointOverrideOffEmitsNoVerdictOrDropButCounts) {
  config(SLUICE_EVENTS_TRACE, SLUICE_CFG_EP_EVENTS);
  override_a(SLUICE_EVENTS_OFF);
  // To a pod elsewhere (no local peer whose level could trace it).
  const Bytes syn = tcp("10.200.0.1", "10.9.9.9", 1000, 80);
  const Bytes ack = PacketBuilder().ipv4("10.200.0.1", "10.9.9.9")
                        .tcp(1000, 80, TCP_ACK, 9, 3).build();
  ASSERT_EQ(out(syn).retval, TC_ACT_OK);
  ASSERT_EQ(out(ack).retval, TC_ACT_OK);
  EXPECT_TRUE(events().empty()) << "allowed: no verdict, no trace";
  // Denied by A's egress policy: counted, not reported.
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED | SLUICE_EP_EVENTS(SLUICE_EVENTS_OFF), {});
  const Bytes syn2 = tcp("10.200.0.1", "10.200.0.2", 1001, 80);
  ASSERT_EQ(out(syn2).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_POLICY_DENY_EGRESS), 1u);
  EXPECT_TRUE(events().empty());
  // The same endpoint without the override: the global level reports it.
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED, {});
  ASSERT_EQ(out(syn2).retval, TC_ACT_SHOT);
  auto ev = events();
  EXPECT_EQ(count(ev, SLUICE_EVENT_POLICY_VERDICT), 1u);
  EXPECT_EQ(count(ev, SLUICE_EVENT_DROP), 1u);
}

TEST_F(TraceTest, EndpointOverrideDropsRaisesTheGlobalOff) {
  config(SLUICE_EVENTS_OFF, SLUICE_CFG_EP_EVENTS);
  enforce(a_, SLUICE_EP_EGRESS_ENFORCED | SLUICE_EP_EVENTS(SLUICE_EVENTS_DROPS), {});
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1000, 80)).retval, TC_ACT_SHOT);
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u) << "the drop; a verdict needs flows";
  EXPECT_EQ(ev[0].type, SLUICE_EVENT_DROP);
  EXPECT_EQ(ev[0].reason, SLUICE_DROP_POLICY_DENY_EGRESS);
  // An unknown veth has no endpoint: the global level (off) applies.
  ASSERT_EQ(map_delete(skel_->maps.sluice_ep_if, kDev), 0);
  ASSERT_EQ(out(tcp("10.200.0.1", "10.200.0.2", 1001, 80)).retval, TC_ACT_SHOT);
  EXPECT_EQ(drops(SLUICE_DIR_EGRESS, SLUICE_DROP_UNKNOWN_ENDPOINT), 1u);
  EXPECT_TRUE(events().empty());
}

}  // namespace
}  // namespace sluice::test

// bpf/lib/events.h through BPF_PROG_TEST_RUN: the record layout every
// helper fills, the event levels that gate them, and loss accounting when
// the ring buffer is full (the program still returns its verdict).
#include <arpa/inet.h>

#include <cstring>

#include "harness.h"
#include "packet.h"
#include "sluice_events_test.skel.h"

namespace sluice::test {
namespace {

class EventsTest : public SkeletonFixture<sluice_events_test> {
 protected:
  RunResult run(const bpf_program* p, const Bytes& f, int repeat = 0) {
    __sk_buff ctx{};
    ctx.ifindex = 1;  // lo: test runs need a real device
    BpfProgRun r(p);
    if (repeat) r.repeat(repeat);
    RunResult res = r.ctx_struct(ctx).run(f);
    EXPECT_EQ(res.err, 0) << std::strerror(-res.err);
    return res;
  }
  std::vector<sluice_event> events() {
    return drain_ringbuf_as<sluice_event>(skel_->maps.sluice_events);
  }
  static Bytes tcp4() {
    return PacketBuilder().ipv4("10.200.0.5", "10.96.0.10")
        .tcp(40000, 80, TCP_SYN).build();
  }
};

TEST_F(EventsTest, EveryHelperFillsTheFlowEventAtTraceLevel) {
  ASSERT_EQ(set_event_level(skel_->maps.sluice_config, SLUICE_EVENTS_TRACE), 0);
  const Bytes f = tcp4();
  auto r = run(skel_->progs.test_events, f);
  ASSERT_EQ(r.retval, 0u);
  auto ev = events();
  ASSERT_EQ(ev.size(), 4u);
  const auto src = ipv4_addr("10.200.0.5"), dst = ipv4_addr("10.96.0.10");
  for (const auto& e : ev) {
    EXPECT_EQ(e.ifindex, 1u);
    EXPECT_EQ(e.family, AF_INET);
    EXPECT_EQ(e.proto, IPPROTO_TCP);
    EXPECT_EQ(ntohs(e.sport), 40000);
    EXPECT_EQ(ntohs(e.dport), 80);
    EXPECT_EQ(std::memcmp(e.saddr, src.data(), 4), 0);
    EXPECT_EQ(std::memcmp(e.daddr, dst.data(), 4), 0);
    EXPECT_EQ(e.src_identity, 256u);
    EXPECT_EQ(e.dst_identity, 257u);
    EXPECT_EQ(e.ep_id, 3u);
    EXPECT_EQ(e.pkt_len, f.size());
    EXPECT_GT(e.ts_ns, 0u);
  }
  EXPECT_EQ(ev[0].type, SLUICE_EVENT_DROP);
  EXPECT_EQ(ev[0].reason, SLUICE_DROP_POLICY_DENY_INGRESS);
  EXPECT_EQ(ev[0].dir, SLUICE_DIR_INGRESS);
  EXPECT_EQ(ev[0].verdict, SLUICE_VERDICT_DROPPED);
  EXPECT_EQ(ev[1].type, SLUICE_EVENT_POLICY_VERDICT);
  EXPECT_EQ(ev[1].verdict, SLUICE_VERDICT_DENIED);
  EXPECT_EQ(ev[1].rule_id, 7u);
  EXPECT_EQ(ev[1].reason, 0);
  EXPECT_EQ(ev[2].type, SLUICE_EVENT_SERVICE_XLATE);
  EXPECT_EQ(ev[2].verdict, SLUICE_VERDICT_TRANSLATED);
  EXPECT_EQ(ev[2].dir, SLUICE_DIR_EGRESS);
  EXPECT_EQ(std::memcmp(ev[2].fe_addr, dst.data(), 4), 0);
  EXPECT_EQ(ntohs(ev[2].fe_port), 80);
  const auto be = ipv4_addr("10.200.9.9");
  EXPECT_EQ(std::memcmp(ev[2].be_addr, be.data(), 4), 0);
  EXPECT_EQ(ntohs(ev[2].be_port), 8080);
  EXPECT_EQ(ev[3].type, SLUICE_EVENT_TRACE);
  EXPECT_EQ(ev[3].verdict, SLUICE_VERDICT_FORWARDED);
  // The drop was counted; the verdict/xlate/trace helpers count nothing.
  EXPECT_EQ(read_counter(skel_->maps.sluice_counters, SLUICE_DIR_INGRESS,
                         SLUICE_DROP_POLICY_DENY_INGRESS).packets, 1u);
}

TEST_F(EventsTest, Ipv6AddressesAreWhole) {
  ASSERT_EQ(set_event_level(skel_->maps.sluice_config, SLUICE_EVENTS_FLOWS), 0);
  run(skel_->progs.test_events,
      PacketBuilder().ipv6("fd10:200::5", "fd10:96::a").udp(5353, 53).build());
  auto ev = events();
  ASSERT_EQ(ev.size(), 3u);
  const auto src = ipv6_addr("fd10:200::5"), be = ipv6_addr("fd10::9");
  EXPECT_EQ(ev[0].family, AF_INET6);
  EXPECT_EQ(ev[0].proto, IPPROTO_UDP);
  EXPECT_EQ(std::memcmp(ev[0].saddr, src.data(), 16), 0);
  EXPECT_EQ(std::memcmp(ev[2].be_addr, be.data(), 16), 0);
  EXPECT_EQ(ntohs(ev[2].fe_port), 53);
}

TEST_F(EventsTest, LevelsGateEachKind) {
  const Bytes f = tcp4();
  struct Want {
    uint32_t level;
    std::vector<uint16_t> types;
  };
  for (const auto& w : std::vector<Want>{
           {SLUICE_EVENTS_OFF, {}},
           {SLUICE_EVENTS_DROPS, {SLUICE_EVENT_DROP}},
           {SLUICE_EVENTS_FLOWS,
            {SLUICE_EVENT_DROP, SLUICE_EVENT_POLICY_VERDICT,
             SLUICE_EVENT_SERVICE_XLATE}},
           {SLUICE_EVENTS_TRACE,
            {SLUICE_EVENT_DROP, SLUICE_EVENT_POLICY_VERDICT,
             SLUICE_EVENT_SERVICE_XLATE, SLUICE_EVENT_TRACE}}}) {
    ASSERT_EQ(set_event_level(skel_->maps.sluice_config, w.level), 0);
    run(skel_->progs.test_events, f);
    std::vector<uint16_t> got;
    for (const auto& e : events()) got.push_back(e.type);
    EXPECT_EQ(got, w.types) << "level " << w.level;
  }
  // Drops are counted at every level, events or not.
  EXPECT_EQ(read_counter(skel_->maps.sluice_counters, SLUICE_DIR_INGRESS,
                         SLUICE_DROP_POLICY_DENY_INGRESS).packets, 4u);
}

TEST_F(EventsTest, DropWithL3OnlyHasAddressesButNoPorts) {
  ASSERT_EQ(set_event_level(skel_->maps.sluice_config, SLUICE_EVENTS_DROPS), 0);
  run(skel_->progs.test_drop_l3, tcp4());
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].reason, SLUICE_DROP_PREFILTER_DENY);
  EXPECT_EQ(ev[0].family, AF_INET);
  EXPECT_EQ(ev[0].sport, 0);
  const auto src = ipv4_addr("10.200.0.5");
  EXPECT_EQ(std::memcmp(ev[0].saddr, src.data(), 4), 0);
}

TEST_F(EventsTest, AFullRingBufferCountsLostEventsAndNeverBlocks) {
  ASSERT_EQ(set_event_level(skel_->maps.sluice_config, SLUICE_EVENTS_DROPS), 0);
  // The ring holds SLUICE_EVENTS_BYTES / (112 + 8 header) records; run far
  // more than that
  // without draining.
  const uint32_t cap = SLUICE_EVENTS_BYTES / (sizeof(sluice_event) + 8);
  const int runs = 3 * cap;
  auto r = run(skel_->progs.test_drop_l3, tcp4(), runs);
  EXPECT_EQ(r.retval, 0u) << "the program's verdict does not depend on room";
  const auto lost = read_counter(skel_->maps.sluice_counters,
                                 SLUICE_COUNTER_EVENTS_LOST);
  auto ev = events();
  EXPECT_EQ(ev.size(), cap);
  EXPECT_EQ(ev.size() + lost.packets, uint64_t(runs));
  EXPECT_EQ(lost.bytes, lost.packets * sizeof(sluice_event));
  EXPECT_EQ(read_counter(skel_->maps.sluice_counters, SLUICE_DIR_INGRESS,
                         SLUICE_DROP_PREFILTER_DENY).packets, uint64_t(runs));
  // Drained, there is room again.
  run(skel_->progs.test_drop_l3, tcp4());
  EXPECT_EQ(events().size(), 1u);
}

}  // namespace
}  // namespace sluice::test

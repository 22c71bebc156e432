// The observer's history and subscriber fan-out, and flow decoding and
// filters, driven with synthetic events (no ring buffer: Observer::ingest
// is what the reader thread calls).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "observe/flow.h"
#include "observe/observer.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

sluice_event ev_of(uint32_t n) {
  sluice_event e{};
  e.type = SLUICE_EVENT_DROP;
  e.pkt_len = n;  // a sequence number for the tests
  return e;
}

std::vector<sluice_event> seq(uint32_t from, uint32_t to) {
  std::vector<sluice_event> v;
  for (uint32_t i = from; i < to; i++) v.push_back(ev_of(i));
  return v;
}

std::vector<uint32_t> ids(const std::vector<sluice_event>& v) {
  std::vector<uint32_t> out;
  for (const auto& e : v) out.push_back(e.pkt_len);
  return out;
}

TEST(Observer, HistoryKeepsTheNewestInOrder) {
  Observer o(-1, -1, {5, 16});
  auto a = seq(0, 3);
  o.ingest(a.data(), a.size());
  EXPECT_EQ(ids(o.recent(10)), (std::vector<uint32_t>{0, 1, 2}));
  auto b = seq(3, 9);
  o.ingest(b.data(), b.size());
  EXPECT_EQ(ids(o.recent(10)), (std::vector<uint32_t>{4, 5, 6, 7, 8}));
  EXPECT_EQ(ids(o.recent(2)), (std::vector<uint32_t>{7, 8}));
  auto c = seq(9, 30);  // a batch larger than the history
  o.ingest(c.data(), c.size());
  EXPECT_EQ(ids(o.recent(5)), (std::vector<uint32_t>{25, 26, 27, 28, 29}));
  EXPECT_EQ(o.received(), 30u);
  EXPECT_EQ(o.received(SLUICE_EVENT_DROP), 30u);
  Observer none(-1, -1, {0, 16});
  none.ingest(c.data(), c.size());
  EXPECT_TRUE(none.recent(5).empty());
}

TEST(Observer, SubscribeSeesHistoryThenEveryLaterEventOnce) {
  Observer o(-1, -1, {100, 1000});
  auto a = seq(0, 10);
  o.ingest(a.data(), a.size());
  std::vector<sluice_event> hist;
  auto sub = o.subscribe(&hist);
  EXPECT_EQ(hist.size(), 10u);
  auto b = seq(10, 20);
  o.ingest(b.data(), b.size());
  std::vector<sluice_event> got;
  EXPECT_EQ(sub->next(got, 0ms), 0u);
  EXPECT_EQ(ids(got), ids(b));
  o.unsubscribe(sub);
  EXPECT_EQ(o.subscribers(), 0u);
}

TEST(Observer, ASlowSubscriberLosesEventsAndIsToldHowManyOthersDoNot) {
  Observer o(-1, -1, {16, 100});
  auto slow = o.subscribe(nullptr);
  auto fast = o.subscribe(nullptr);
  std::vector<sluice_event> got;
  for (uint32_t round = 0; round < 5; round++) {
    auto b = seq(round * 60, round * 60 + 60);
    o.ingest(b.data(), b.size());
    got.clear();
    EXPECT_EQ(fast->next(got, 0ms), 0u);  // the fast one keeps up
    EXPECT_EQ(got.size(), 60u);
  }
  got.clear();
  EXPECT_EQ(slow->next(got, 0ms), 200u);  // 300 sent, 100 fit
  EXPECT_EQ(ids(got).front(), 0u);
  EXPECT_EQ(got.size(), 100u);
  EXPECT_EQ(o.lost_by_subscribers(), 200u);
  got.clear();
  EXPECT_EQ(slow->next(got, 0ms), 0u) << "a loss is reported once";
}

TEST(Observer, NextWakesWhenEventsArrive) {
  Observer o(-1, -1, {16, 100});
  auto sub = o.subscribe(nullptr);
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    auto b = seq(0, 1);
    o.ingest(b.data(), b.size());
  });
  std::vector<sluice_event> got;
  const auto t0 = std::chrono::steady_clock::now();
  sub->next(got, 5000ms);
  t.join();
  EXPECT_EQ(got.size(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2000ms);
}

// ---- decoding and filters ------------------------------------------------

sluice_event tcp4(const char* s, uint16_t sp, const char* d, uint16_t dp) {
  sluice_event e{};
  e.family = AF_INET;
  e.proto = IPPROTO_TCP;
  inet_pton(AF_INET, s, e.saddr);
  inet_pton(AF_INET, d, e.daddr);
  e.sport = htons(sp);
  e.dport = htons(dp);
  e.ifindex = 7;
  return e;
}

FlowContext context() {
  FlowContext c;
  c.by_ifindex[7] = {"x/a", "lxc0a", 1, 300};
  c.by_ip[*IpAddr::parse("10.200.0.1")] = {"x/a", "lxc0a", 1, 300};
  c.by_ip[*IpAddr::parse("10.200.0.2")] = {"y/b", "lxc0b", 2, 301};
  c.labels[300] = {"app=a"};
  c.labels[301] = {"app=b"};
  c.services[{*IpAddr::parse("10.96.0.10"), 80, IPPROTO_TCP}] = "y/web:http";
  c.rule_name = [](uint32_t id) { return id == 7 ? "y/allow ingress[0]" : ""; };
  return c;
}

struct Flows {
  std::vector<v1::FlowEvent> all;
  Flows() {
    const auto c = context();
    auto deny = tcp4("10.200.0.1", 40000, "10.200.0.2", 80);
    deny.type = SLUICE_EVENT_DROP;
    deny.verdict = SLUICE_VERDICT_DROPPED;
    deny.reason = SLUICE_DROP_POLICY_DENY_INGRESS;
    deny.dir = SLUICE_DIR_INGRESS;
    all.push_back(decode_flow(deny, c));  // 0
    auto allow = tcp4("10.200.0.2", 41000, "10.200.0.1", 53);
    allow.proto = IPPROTO_UDP;
    allow.type = SLUICE_EVENT_POLICY_VERDICT;
    allow.verdict = SLUICE_VERDICT_ALLOWED;
    allow.rule_id = 7;
    allow.dir = SLUICE_DIR_EGRESS;
    all.push_back(decode_flow(allow, c));  // 1
    auto x = tcp4("10.200.0.1", 42000, "10.96.0.10", 80);
    x.type = SLUICE_EVENT_SERVICE_XLATE;
    x.verdict = SLUICE_VERDICT_TRANSLATED;
    std::memcpy(x.fe_addr, x.daddr, 16);
    x.fe_port = htons(80);
    inet_pton(AF_INET, "10.200.0.2", x.be_addr);
    x.be_port = htons(8080);
    all.push_back(decode_flow(x, c));  // 2
    sluice_event spoof{};  // a drop before parsing: only the interface
    spoof.type = SLUICE_EVENT_DROP;
    spoof.verdict = SLUICE_VERDICT_DROPPED;
    spoof.reason = SLUICE_DROP_SPOOFED_SOURCE;
    spoof.dir = SLUICE_DIR_EGRESS;
    spoof.ifindex = 7;
    all.push_back(decode_flow(spoof, c));  // 3
  }
  std::vector<int> select(const v1::ObserveRequest& q) const {
    auto f = FlowFilter::from(q);
    EXPECT_TRUE(f) << f.error();
    std::vector<int> out;
    for (size_t i = 0; f && i < all.size(); i++)
      if (f->match(all[i])) out.push_back(int(i));
    return out;
  }
};

TEST(Flow, DecodeEnrichesPodsLabelsServicesAndRules) {
  Flows fl;
  const auto& d = fl.all[0];
  EXPECT_EQ(d.type(), "drop");
  EXPECT_EQ(d.drop_reason(), "policy-deny-ingress");
  EXPECT_EQ(d.direction(), "ingress");
  EXPECT_EQ(d.src_pod(), "x/a");
  EXPECT_EQ(d.dst_pod(), "y/b");
  EXPECT_EQ(d.src_identity(), 300u);  // from the endpoint when 0 in the event
  ASSERT_EQ(d.dst_labels_size(), 1);
  EXPECT_EQ(d.dst_labels(0), "app=b");
  EXPECT_EQ(d.src_port(), 40000u);
  EXPECT_EQ(d.interface(), "lxc0a");
  EXPECT_EQ(d.protocol(), "TCP");
  EXPECT_EQ(fl.all[1].rule(), "y/allow ingress[0]");
  EXPECT_EQ(fl.all[2].service(), "y/web:http");
  EXPECT_EQ(fl.all[2].frontend(), "10.96.0.10:80");
  EXPECT_EQ(fl.all[2].backend(), "10.200.0.2:8080");
  EXPECT_EQ(fl.all[3].src_ip(), "");
  EXPECT_EQ(fl.all[3].interface_pod(), "x/a");
}

TEST(Flow, FiltersSelectTheRightFlows) {
  Flows fl;
  v1::ObserveRequest q;
  EXPECT_EQ(fl.select(q), (std::vector<int>{0, 1, 2, 3}));
  auto with = [](auto set) {
    v1::ObserveRequest r;
    set(r);
    return r;
  };
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_type("drop"); })),
            (std::vector<int>{0, 3}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_drop_reason("spoofed-source"); })),
            (std::vector<int>{3}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_verdict("denied"); })),
            (std::vector<int>{0}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_verdict("dropped"); })),
            (std::vector<int>{0, 3}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_verdict("forwarded"); })),
            (std::vector<int>{1, 2}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_verdict("allowed"); })),
            (std::vector<int>{1}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_namespace_("y"); })),
            (std::vector<int>{0, 1}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_namespace_("x"); })),
            (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_from_pod("x/a"); })),
            (std::vector<int>{0, 2}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_to_pod("y/b"); })),
            (std::vector<int>{0}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_pod("y/b"); })),
            (std::vector<int>{0, 1}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_ip("10.96.0.10"); })),
            (std::vector<int>{2}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_ip("10.200.0.2"); })),
            (std::vector<int>{0, 1, 2}));  // the backend of 2 too
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_port(53); })),
            (std::vector<int>{1}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_port(8080); })),
            (std::vector<int>{2}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_protocol("udp"); })),
            (std::vector<int>{1}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_identity(301); })),
            (std::vector<int>{0, 1}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_service("y/web"); })),
            (std::vector<int>{2}));
  EXPECT_EQ(fl.select(with([](auto& r) { r.set_service("y/we"); })),
            (std::vector<int>{}));
  EXPECT_EQ(fl.select(with([](auto& r) {
              r.set_type("drop");
              r.set_pod("y/b");
            })),
            (std::vector<int>{0}));
}

TEST(Flow, BadFilterValuesAreRefusedNamingTheField) {
  auto bad = [](auto set, const std::string& field) {
    v1::ObserveRequest r;
    set(r);
    auto f = FlowFilter::from(r);
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().rfind(field, 0), 0u) << f.error();
  };
  bad([](auto& r) { r.set_protocol("tcpp"); }, "protocol");
  bad([](auto& r) { r.set_verdict("maybe"); }, "verdict");
  bad([](auto& r) { r.set_type("drops"); }, "type");
  bad([](auto& r) { r.set_drop_reason("policy-deny"); }, "drop-reason");
  bad([](auto& r) { r.set_pod("nopod"); }, "pod");
  bad([](auto& r) { r.set_ip("10.1"); }, "ip");
}

}  // namespace
}  // namespace sluice

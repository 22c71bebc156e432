// Flow observability end to end: `sluicectl drop-reasons`, `sluicectl
// observe` against a real agent with CNI pods and a NetworkPolicy deny, and
// the Prometheus endpoint moving by exactly the traffic sent.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include "cni_fixture.h"
#include "e2e_util.h"
#include "sluice/abi.h"

namespace sluice::e2e {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TEST(DropReasons, TextAndJsonListEveryCodeOfTheXMacro) {
  auto text = sh(bin("sluicectl") + " drop-reasons");
  ASSERT_EQ(text.rc, 0) << text.out;
  auto js = sh(bin("sluicectl") + " drop-reasons -o json");
  ASSERT_EQ(js.rc, 0) << js.out;
  const json j = json::parse(js.out);
  ASSERT_TRUE(j.is_array());
  std::set<int> codes;
  for (const auto& r : j) codes.insert(r["code"].get<int>());
  int n = 0;
#define CHECK_REASON(e, code, name, help)                                    \
  n++;                                                                      \
  EXPECT_TRUE(codes.count(code)) << name;                                   \
  EXPECT_NE(text.out.find(std::string(name) + " "), std::string::npos)      \
      << name;                                                              \
  EXPECT_NE(text.out.find(help), std::string::npos) << name;                \
  for (const auto& r : j)                                                   \
    if (r["code"] == code) {                                                \
      EXPECT_EQ(r["name"], name);                                           \
      EXPECT_EQ(r["explanation"], help);                                    \
    }
  SLUICE_DROP_REASONS(CHECK_REASON)
#undef CHECK_REASON
  EXPECT_EQ(int(j.size()), n);
  // One header line plus one line per reason, each starting with its code.
  std::istringstream in(text.out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("CODE", 0), 0u) << line;
  int rows = 0;
  while (std::getline(in, line)) rows++;
  EXPECT_EQ(rows, n);
  auto bad = sh(bin("sluicectl") + " drop-reasons -o yaml");
  EXPECT_NE(bad.rc, 0);
}

// Pods a, b, c in namespace x (CNI ADD through a real agent); b listens on
// TCP 80 and UDP 9999.
class ObserveE2E : public CniE2E {
 protected:
  void SetUp() override {
    CniE2E::SetUp();
    if (HasFatalFailure()) return;
    auto r = apply(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {pod: a}}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {pod: b}}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: x, labels: {pod: c}}\n");
    ASSERT_EQ(r.rc, 0) << r.out;
    a_ = add_pod("a");
    b_ = add_pod("b");
    c_ = add_pod("c");
    pods_["b"]->exec("sh -c 'timeout 30 nc -4 -lk -p 80 >/dev/null 2>&1 &'");
    pods_["b"]->exec("sh -c 'timeout 30 nc -4 -u -lk -p 9999 >/dev/null 2>&1 &'");
    std::this_thread::sleep_for(200ms);
  }
  CmdResult apply(const std::string& yaml) {
    return ctl("apply -f - <<'EOF'\n" + yaml + "EOF");
  }
  bool tcp(const std::string& from, const std::string& dst, int port) {
    return pods_[from]->exec("nc -z -w 1 " + dst + " " + std::to_string(port)).rc == 0;
  }
  // Exactly n UDP datagrams of `payload` bytes (one sendto each).
  void udp(const std::string& from, const std::string& dst, int port, int n,
           int payload = 100) {
    auto r = pods_[from]->exec(
        "python3 -c \"import socket; s = socket.socket(socket.AF_INET, "
        "socket.SOCK_DGRAM)\nfor _ in range(" + std::to_string(n) +
        "): s.sendto(b'x' * " + std::to_string(payload) + ", ('" + dst + "', " +
        std::to_string(port) + "))\"");
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  // `sluicectl observe ARGS -o json`, one object per line.
  std::vector<json> observe(const std::string& args) {
    auto r = ctl("observe " + args + " -o json");
    EXPECT_EQ(r.rc, 0) << r.out;
    return lines(r.out);
  }
  static std::vector<json> lines(const std::string& out) {
    std::vector<json> v;
    std::istringstream in(out);
    std::string l;
    while (std::getline(in, l))
      if (!l.empty()) v.push_back(json::parse(l));
    return v;
  }
  void deny_ingress_to_b() {
    auto r = apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                   "metadata: {name: deny-b, namespace: x}\n"
                   "spec: {podSelector: {matchLabels: {pod: b}}, policyTypes: [Ingress]}\n");
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  json a_, b_, c_;
};

// The event of a drop: reason, direction, the pod of the interface, and
// (when the datapath passed the flow) the 5-tuple.
void expect_deny(const json& e, const std::string& reason, const std::string& dir,
                 const std::string& src_ip, const std::string& dst_ip, int dport) {
  EXPECT_EQ(e["type"], "drop") << e.dump();
  EXPECT_EQ(e["verdict"], "dropped") << e.dump();
  EXPECT_EQ(e["drop_reason"], reason) << e.dump();
  EXPECT_EQ(e["direction"], dir) << e.dump();
  EXPECT_TRUE(e.contains("interface_pod")) << e.dump();
  if (e.contains("src_ip")) {  // sluice_lxc passes the flow to its drops
    EXPECT_EQ(e["src_ip"], src_ip) << e.dump();
    EXPECT_EQ(e["dst_ip"], dst_ip) << e.dump();
    EXPECT_EQ(e["dst_port"], dport) << e.dump();
    EXPECT_EQ(e["protocol"], "TCP") << e.dump();
    EXPECT_EQ(e["src_pod"], "x/a") << e.dump();
    EXPECT_EQ(e["dst_pod"], "x/b") << e.dump();
  }
}

TEST_F(ObserveE2E, DeniedConnectionShowsUpWithReasonAndDirection) {
  ASSERT_TRUE(tcp("a", v4_of(b_), 80));
  deny_ingress_to_b();
  EXPECT_FALSE(tcp("a", v4_of(b_), 80));
  auto ev = observe("--last 100 --drop-reason policy-deny-ingress");
  ASSERT_FALSE(ev.empty()) << "no policy-deny-ingress event";
  for (const auto& e : ev)
    expect_deny(e, "policy-deny-ingress", "ingress", v4_of(a_), v4_of(b_), 80);
  // Egress: a may not send at all.
  auto r = apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                 "metadata: {name: a-no-egress, namespace: x}\n"
                 "spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress]}\n");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_FALSE(tcp("a", v4_of(c_), 80));
  ev = observe("--last 100 --drop-reason policy-deny-egress");
  ASSERT_FALSE(ev.empty()) << "no policy-deny-egress event";
  for (const auto& e : ev) {
    EXPECT_EQ(e["direction"], "egress") << e.dump();
    EXPECT_EQ(e["interface_pod"], "x/a") << "the egress hook is a's";
    if (e.contains("src_ip")) {
      EXPECT_EQ(e["dst_ip"], v4_of(c_));
    }
  }
  // The aligned text form names the reason and direction under a header.
  auto t = ctl("observe --last 5 --type drop");
  ASSERT_EQ(t.rc, 0) << t.out;
  EXPECT_EQ(t.out.rfind("TIME", 0), 0u) << t.out;
  EXPECT_NE(t.out.find("policy-deny-egress"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("egress"), std::string::npos) << t.out;
  // status counts the events it received.
  auto st = json::parse(ctl("status -o json").out);
  EXPECT_GE(st["events_received"].get<uint64_t>(), 2u);
}

TEST_F(ObserveE2E, FiltersSelectTheRightFlows) {
  deny_ingress_to_b();
  EXPECT_FALSE(tcp("a", v4_of(b_), 80));  // policy-deny-ingress
  // spoofed-source: a sends from an address that is not its own.
  ASSERT_EQ(pods_["a"]->exec("ip addr add 10.200.77.250/32 dev eth0").rc, 0);
  EXPECT_FALSE(ping("a", v4_of(c_), "10.200.77.250"));
  // Pods make traffic of their own (IPv6 neighbour and multicast
  // listener messages), so each filter is checked against the same events
  // filtered here: everything up to the newest event of this first answer.
  const auto all = observe("--last 1000");
  ASSERT_FALSE(all.empty());
  const std::string upto = all.back()["time"];
  auto count = [&](const std::function<bool(const json&)>& pred) {
    return std::count_if(all.begin(), all.end(), pred);
  };
  auto reason_is = [](const std::string& r) {
    return [r](const json& e) { return e.value("drop_reason", "") == r; };
  };
  auto on_pod = [](const std::string& p) {
    return [p](const json& e) {
      return e.value("src_pod", "") == p || e.value("dst_pod", "") == p ||
             e.value("interface_pod", "") == p;
    };
  };
  ASSERT_GT(count(reason_is("policy-deny-ingress")), 0);
  ASSERT_GT(count([&](const json& e) {
              return reason_is("spoofed-source")(e) && on_pod("x/a")(e);
            }),
            0);
  auto expect_selects = [&](const std::string& args,
                            const std::function<bool(const json&)>& pred) {
    std::vector<json> want, got;
    for (const auto& e : all)
      if (pred(e)) want.push_back(e);
    for (const auto& e : observe("--last 1000 " + args))
      if (e["time"].get<std::string>() <= upto) got.push_back(e);
    EXPECT_EQ(got, want) << args;
  };
  expect_selects("--drop-reason spoofed-source", reason_is("spoofed-source"));
  expect_selects("--drop-reason policy-deny-ingress",
                 reason_is("policy-deny-ingress"));
  expect_selects("--verdict denied", [](const json& e) {
    const std::string r = e.value("drop_reason", "");
    return r == "policy-deny-ingress" || r == "policy-deny-egress" ||
           e.value("verdict", "") == "denied";
  });
  expect_selects("--pod x/a", on_pod("x/a"));
  expect_selects("--pod x/c --drop-reason spoofed-source", [&](const json& e) {
    return on_pod("x/c")(e) && reason_is("spoofed-source")(e);
  });
  expect_selects("--type drop --namespace x",
                 [](const json& e) { return e["type"] == "drop"; });
  expect_selects("--namespace y", [](const json&) { return false; });
  expect_selects("--type service-xlate", [](const json&) { return false; });
  expect_selects("--drop-reason ct-full", [](const json&) { return false; });
  // --last N gives the newest N, oldest first.
  auto two = observe("--last 2");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_LE(two[0]["time"].get<std::string>(), two[1]["time"].get<std::string>());
  EXPECT_GE(two[1]["time"].get<std::string>(), upto);
  // Bad values are refused (exit 2) naming the field.
  auto bad = ctl("observe --drop-reason no-such-reason");
  EXPECT_EQ(bad.rc, 2) << bad.out;
  EXPECT_NE(bad.out.find("drop-reason"), std::string::npos) << bad.out;
  EXPECT_EQ(ctl("observe --verdict maybe").rc, 2);
}

TEST_F(ObserveE2E, FollowStreamsLiveEventsThroughItsFilter) {
  deny_ingress_to_b();
  const std::string out = tmp_ + "/follow.json";
  // In the background for 4 s: only a's policy-deny-ingress drops from now
  // on (b's own interface sees denials of the node's traffic to b too).
  sh("(timeout 4 " + bin("sluicectl") + " --socket " + tmp_ +
     "/a.sock observe -f -o json --drop-reason policy-deny-ingress --pod x/a > " +
     out + " 2>&1 &)");
  std::this_thread::sleep_for(700ms);
  ASSERT_EQ(pods_["a"]->exec("ip addr add 10.200.77.251/32 dev eth0").rc, 0);
  EXPECT_FALSE(ping("a", v4_of(c_), "10.200.77.251"));  // spoofed: filtered out
  udp("a", v4_of(b_), 9999, 5);                         // 5 denied datagrams
  std::this_thread::sleep_for(4s);
  auto ev = lines(read_file(out));
  EXPECT_EQ(ev.size(), 5u) << read_file(out);
  for (const auto& e : ev) {
    EXPECT_EQ(e["drop_reason"], "policy-deny-ingress") << e.dump();
    EXPECT_EQ(e["direction"], "ingress");
  }
}

TEST_F(ObserveE2E, TopShowsTheBusiestFlowsAndEndpointsWithRates) {
  deny_ingress_to_b();
  const std::string out = tmp_ + "/top.txt";
  sh("(timeout 20 " + bin("sluicectl") + " --socket " + tmp_ +
     "/a.sock top --interval 1.5 --iterations 2 > " + out + " 2>&1 &)");
  std::this_thread::sleep_for(1800ms);  // in the second interval
  udp("a", v4_of(b_), 9999, 30);
  std::this_thread::sleep_for(2500ms);
  const std::string t = read_file(out);
  EXPECT_NE(t.find("BUSIEST FLOWS"), std::string::npos) << t;
  EXPECT_NE(t.find("BUSIEST ENDPOINTS"), std::string::npos) << t;
  // The second frame ranks the denied datagrams' flow, with its reason,
  // and a's endpoint; the counters show the drop rate.
  const auto second = t.rfind("sluice top:");
  ASSERT_NE(second, std::string::npos) << t;
  const std::string frame = t.substr(second);
  EXPECT_NE(frame.find("policy-deny-ingress"), std::string::npos) << frame;
  EXPECT_NE(frame.find("x/a"), std::string::npos) << frame;
  EXPECT_EQ(t.find("error"), std::string::npos) << t;
}

// sluice.io/events-level on a Pod: re-applying pod a with it changes the
// level of a's hooks only.
class EventsLevelE2E : public ObserveE2E {
 protected:
  void annotate_a(const std::string& level) {
    const std::string ann =
        level.empty() ? "" : ", annotations: {sluice.io/events-level: '" + level + "'}";
    auto r = apply("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, "
                   "labels: {pod: a}" + ann + "}\n");
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  // Trace events of UDP datagrams from `pod` to port.
  std::vector<json> traces_from(const std::string& pod, int port) {
    std::vector<json> v;
    for (const auto& e : observe("--last 4096 --type trace --protocol UDP"))
      if (e.value("src_pod", "") == pod && e.value("dst_port", 0) == port)
        v.push_back(e);
    return v;
  }
  uint64_t counted(const std::string& reason, const std::string& dir) {
    auto st = json::parse(ctl("status -o json").out);
    for (const auto& c : st["counters"])
      if (c["reason"] == reason && c["direction"] == dir)
        return c["packets"].get<uint64_t>();
    return 0;
  }
};

TEST_F(EventsLevelE2E, AnnotatedTracePodShowsEveryPacketItSends) {
  annotate_a("trace");
  // The override reached a's endpoint in the datapath, and only a's.
  auto eps = json::parse(ctl("bpf ep_if list -o json").out);
  ASSERT_EQ(eps.size(), 3u) << eps.dump();
  for (const auto& e : eps)
    EXPECT_EQ(e["eventsLevel"], e["pod"] == "x/a" ? "trace" : "") << e.dump();
  const int n = 5;
  udp("a", v4_of(b_), 9999, n);
  udp("c", v4_of(b_), 9999, n);  // c and b keep the global level (flows)
  std::this_thread::sleep_for(500ms);  // the agent reads events on its own thread
  auto ev = traces_from("x/a", 9999);
  ASSERT_EQ(ev.size(), size_t(n)) << "one trace per datagram, new or established";
  for (const auto& e : ev) {
    EXPECT_EQ(e["verdict"], "forwarded") << e.dump();
    EXPECT_EQ(e["trace_point"], "to-endpoint") << e.dump();  // straight into b
    EXPECT_EQ(e["direction"], "egress") << e.dump();
    EXPECT_EQ(e["interface_pod"], "x/a") << e.dump();
    EXPECT_EQ(e["dst_pod"], "x/b") << e.dump();
    EXPECT_EQ(e["dst_ip"], v4_of(b_)) << e.dump();
  }
  EXPECT_TRUE(traces_from("x/c", 9999).empty());
  // The text form names the observation point and the hook.
  auto t = ctl("observe --last 1 --type trace --pod x/a");
  ASSERT_EQ(t.rc, 0) << t.out;
  EXPECT_NE(t.out.find("forwarded"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("to-endpoint on lxc"), std::string::npos) << t.out;
  // Without the annotation a is back at the global level: no more traces.
  annotate_a("");
  udp("a", v4_of(b_), 9999, n);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(traces_from("x/a", 9999).size(), size_t(n));
}

TEST_F(EventsLevelE2E, AnnotatedOffPodReportsNoDropsButCountsThem) {
  annotate_a("off");
  auto r = apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                 "metadata: {name: a-no-egress, namespace: x}\n"
                 "spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress]}\n");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto denied_from_a = [&] {
    size_t k = 0;
    for (const auto& e : observe("--last 4096 --drop-reason policy-deny-egress"))
      k += e.value("interface_pod", "") == "x/a" && e.value("dst_port", 0) == 9999;
    return k;
  };
  const int n = 5;
  const uint64_t before = counted("policy-deny-egress", "egress");
  udp("a", v4_of(c_), 9999, n);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(counted("policy-deny-egress", "egress") - before, uint64_t(n));
  EXPECT_EQ(denied_from_a(), 0u);
  // The same drops at the global level are reported.
  annotate_a("");
  udp("a", v4_of(c_), 9999, n);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(counted("policy-deny-egress", "egress") - before, uint64_t(2 * n));
  EXPECT_EQ(denied_from_a(), size_t(n));
}

TEST_F(EventsLevelE2E, InvalidLevelIsRejectedNamingTheAnnotation) {
  auto r = apply("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, "
                 "annotations: {sluice.io/events-level: loud}}\n");
  EXPECT_NE(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("metadata.annotations[sluice.io/events-level]: Invalid value "
                       "\"loud\""),
            std::string::npos)
      << r.out;
}

// The Prometheus endpoint, scraped from inside the node namespace.
class MetricsE2E : public ObserveE2E {
 protected:
  void SetUp() override {
    port_ = 19962;
    extra_args_ = {"--metrics-address", "127.0.0.1:" + std::to_string(port_)};
    ObserveE2E::SetUp();
  }
  std::string scrape() {
    node_->exec("ip link set lo up");
    auto r = node_->exec("curl -sf http://127.0.0.1:" + std::to_string(port_) +
                         "/metrics");
    EXPECT_EQ(r.rc, 0) << r.out;
    return r.out;
  }
  // The value of one series, e.g. sluice_drops_total{reason="x",...}.
  static double value(const std::string& text, const std::string& series) {
    auto pos = text.find("\n" + series + " ");
    if (pos == std::string::npos) {
      ADD_FAILURE() << "no series " << series;
      return -1;
    }
    pos += series.size() + 2;
    return std::stod(text.substr(pos, text.find('\n', pos) - pos));
  }
  int port_ = 0;
};

TEST_F(MetricsE2E, CountersMoveByExactlyTheTrafficSent) {
  // IPv4 only, and no neighbour traffic during the measurement.
  for (const char* p : {"a", "b"})
    pods_[p]->exec("sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
  ASSERT_TRUE(ping("a", v4_of(b_)));
  const int n = 50, payload = 100, frame = 14 + 20 + 8 + payload;
  const std::string fwd_p = "sluice_forwarded_packets_total{direction=\"egress\"}";
  const std::string fwd_b = "sluice_forwarded_bytes_total{direction=\"egress\"}";
  const std::string deny_p =
      "sluice_drops_total{reason=\"policy-deny-ingress\",direction=\"ingress\"}";
  const std::string deny_b =
      "sluice_drop_bytes_total{reason=\"policy-deny-ingress\",direction=\"ingress\"}";
  auto before = scrape();
  udp("a", v4_of(b_), 9999, n, payload);
  auto after = scrape();
  EXPECT_EQ(value(after, fwd_p) - value(before, fwd_p), n);
  EXPECT_EQ(value(after, fwd_b) - value(before, fwd_b), n * frame);
  EXPECT_EQ(value(after, deny_p) - value(before, deny_p), 0);

  deny_ingress_to_b();
  before = scrape();
  udp("a", v4_of(b_), 9999, n, payload);
  std::this_thread::sleep_for(500ms);  // the agent reads events on its own thread
  after = scrape();
  EXPECT_EQ(value(after, deny_p) - value(before, deny_p), n);
  EXPECT_EQ(value(after, deny_b) - value(before, deny_b), n * frame);
  EXPECT_EQ(value(after, fwd_p) - value(before, fwd_p), 0);
  // Each drop emitted one event, and none was lost.
  EXPECT_EQ(value(after, "sluice_events_received_total{type=\"drop\"}") -
                value(before, "sluice_events_received_total{type=\"drop\"}"),
            n);
  EXPECT_EQ(value(after, "sluice_events_lost_total{source=\"ringbuf\"}"), 0);
  // Format: HELP and TYPE for each family; maps and health are there.
  EXPECT_NE(after.find("# TYPE sluice_drops_total counter"), std::string::npos);
  EXPECT_NE(after.find("# HELP sluice_conntrack_entries "), std::string::npos);
  EXPECT_GE(value(after, "sluice_map_entries{map=\"sluice_ep_if\"}"), 3);
  EXPECT_GT(value(after, "sluice_map_capacity{map=\"sluice_ct\"}"), 0);
  EXPECT_GT(value(after, "sluice_agent_last_sync_timestamp_seconds"), 1.7e9);
  EXPECT_EQ(value(after, "sluice_agent_restore_result{component=\"lb\"}"), 1);
  EXPECT_EQ(value(after, "sluice_agent_errors_total"), 0);
  auto nf = node_->exec("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:" +
                        std::to_string(port_) + "/nope");
  EXPECT_EQ(nf.out, "404");
}

class MetricsOffE2E : public CniE2E {};

TEST_F(MetricsOffE2E, DefaultAddressAndSwitchedOff) {
  // This fixture's agent runs with the defaults: metrics on 127.0.0.1:9962.
  node_->exec("ip link set lo up");
  EXPECT_EQ(node_->exec("curl -sf http://127.0.0.1:9962/metrics").rc, 0);
  agent_.reset();
  extra_args_ = {"--metrics-enabled", "false"};
  start();
  EXPECT_NE(node_->exec("curl -sf http://127.0.0.1:9962/metrics").rc, 0);
}

}  // namespace
}  // namespace sluice::e2e

// NetworkPolicy reference semantics, modelled on the upstream Kubernetes
// network-policy e2e suite (test/e2e/network/netpol): namespaces x, y, z
// with pods a, b, c; pods labelled pod=<name>; namespaces labelled
// ns=<name> and kubernetes.io/metadata.name=<name>; every pod serves 80 and
// 81 on TCP, UDP and SCTP with named ports serve-80-tcp etc.
//
// Matrices are written as the e2e suite prints them: one row per source
// pod, one column per destination pod (grouped x y z, pods a b c),
// '.' = allowed, 'X' = denied.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "policy/evaluator.h"
#include "policy/selector.h"

namespace sluice::policy {
namespace {

using k8s::LabelSelector;
using k8s::LabelSelectorRequirement;
using k8s::NetworkPolicy;
using k8s::NetworkPolicyPeer;
using k8s::NetworkPolicyPort;
using k8s::NetworkPolicyRule;
using k8s::Protocol;
using Op = LabelSelectorRequirement::Op;

const std::vector<std::string> kNs = {"x", "y", "z"};
const std::vector<std::string> kPods = {"a", "b", "c"};

IpAddr ip(const std::string& s) {
  auto a = IpAddr::parse(s);
  EXPECT_TRUE(a) << s;
  return a ? *a : IpAddr{};
}

// ---- policy builders ----

LabelSelector sel(k8s::Labels l = {}) { return {std::move(l), {}}; }
LabelSelector expr(std::string key, Op op, std::vector<std::string> vals = {}) {
  return {{}, {{std::move(key), op, std::move(vals)}}};
}
NetworkPolicyPeer pods(LabelSelector s) { return {s, std::nullopt, std::nullopt}; }
NetworkPolicyPeer nss(LabelSelector s) { return {std::nullopt, s, std::nullopt}; }
NetworkPolicyPeer both(LabelSelector ns, LabelSelector pod) { return {pod, ns, std::nullopt}; }
NetworkPolicyPeer block(std::string cidr, std::vector<std::string> except = {}) {
  return {std::nullopt, std::nullopt, k8s::IpBlock{std::move(cidr), std::move(except)}};
}
NetworkPolicyPort port(int32_t p, Protocol pr = Protocol::TCP) { return {pr, p, std::nullopt}; }
NetworkPolicyPort named(std::string n, Protocol pr = Protocol::TCP) { return {pr, std::move(n), std::nullopt}; }
NetworkPolicyPort range(int32_t p, int32_t end, Protocol pr = Protocol::TCP) { return {pr, p, end}; }

NetworkPolicy ingress(std::string ns, std::string name, LabelSelector target,
                      std::vector<NetworkPolicyRule> rules) {
  NetworkPolicy p;
  p.meta.namespace_ = std::move(ns);
  p.meta.name = std::move(name);
  p.pod_selector = std::move(target);
  p.ingress = std::move(rules);
  return p;
}
NetworkPolicy egress(std::string ns, std::string name, LabelSelector target,
                     std::vector<NetworkPolicyRule> rules) {
  NetworkPolicy p = ingress(std::move(ns), std::move(name), std::move(target), {});
  p.ingress_type = false;
  p.egress_type = true;
  p.egress = std::move(rules);
  return p;
}
LabelSelector pod_is(const std::string& n) { return sel({{"pod", n}}); }
LabelSelector ns_is(const std::string& n) { return sel({{"ns", n}}); }

// ---- the x/y/z cluster ----

// x/a = 10.0.0.1 / fd00::0:1, y/b = 10.0.1.2 / fd00::1:2, ...
Cluster make_cluster() {
  Cluster c;
  for (size_t i = 0; i < kNs.size(); i++) {
    k8s::Namespace n;
    n.meta.name = kNs[i];
    n.meta.labels = {{"ns", kNs[i]}, {"kubernetes.io/metadata.name", kNs[i]}};
    c.namespaces.push_back(n);
    for (size_t j = 0; j < kPods.size(); j++) {
      ClusterPod p;
      p.pod.meta = {kPods[j], kNs[i], {{"pod", kPods[j]}}, {}};
      for (int num : {80, 81})
        for (auto [pr, s] : {std::pair{Protocol::TCP, "tcp"}, {Protocol::UDP, "udp"},
                             {Protocol::SCTP, "sctp"}})
          p.pod.ports.push_back({"serve-" + std::to_string(num) + "-" + s, num, pr});
      p.ips = {ip("10.0." + std::to_string(i) + "." + std::to_string(j + 1)),
               ip("fd00::" + std::to_string(i) + ":" + std::to_string(j + 1))};
      c.pods.push_back(p);
    }
  }
  return c;
}

class PolicyTest : public ::testing::Test {
 protected:
  Cluster cluster = make_cluster();
  PolicySet ps;

  Verdict eval(const Endpoint& s, const Endpoint& d, uint16_t p,
               Protocol pr = Protocol::TCP, int family = AF_INET) {
    auto v = evaluate(cluster, ps, s, d, p, pr, family);
    EXPECT_TRUE(v) << v.error();
    return v ? *v : Verdict{};
  }
  bool allowed(const std::string& from, const std::string& to, uint16_t p,
               Protocol pr = Protocol::TCP, int family = AF_INET) {
    return eval(ep(from), ep(to), p, pr, family).allowed;
  }
  static Endpoint ep(const std::string& ns_pod) {
    auto slash = ns_pod.find('/');
    return Endpoint::of_pod(ns_pod.substr(0, slash), ns_pod.substr(slash + 1));
  }

  std::vector<std::string> matrix(uint16_t p, Protocol pr = Protocol::TCP,
                                  int family = AF_INET) {
    std::vector<std::string> rows;
    for (const auto& sns : kNs)
      for (const auto& sp : kPods) {
        std::string row = sns + "/" + sp;
        for (const auto& dns : kNs) {
          row += " ";
          for (const auto& dp : kPods)
            row += allowed(sns + "/" + sp, dns + "/" + dp, p, pr, family) ? '.' : 'X';
        }
        rows.push_back(row);
      }
    return rows;
  }
};

std::string join(const std::vector<std::string>& rows) {
  std::string s = "\n";
  for (const auto& r : rows) s += r + "\n";
  return s;
}
#define EXPECT_MATRIX(actual, ...) \
  EXPECT_EQ(join(actual), join(std::vector<std::string>(__VA_ARGS__)))

const std::vector<std::string> kAllAllowed = {
    "x/a ... ... ...", "x/b ... ... ...", "x/c ... ... ...",
    "y/a ... ... ...", "y/b ... ... ...", "y/c ... ... ...",
    "z/a ... ... ...", "z/b ... ... ...", "z/c ... ... ..."};

// ---- selectors ----

TEST(Selector, EmptyMatchesEverything) {
  EXPECT_TRUE(matches({}, {}));
  EXPECT_TRUE(matches({}, {{"pod", "a"}}));
}

TEST(Selector, MatchLabelsNeedsEveryPair) {
  LabelSelector s = sel({{"pod", "a"}, {"tier", "web"}});
  EXPECT_TRUE(matches(s, {{"pod", "a"}, {"tier", "web"}, {"x", "y"}}));
  EXPECT_FALSE(matches(s, {{"pod", "a"}}));
  EXPECT_FALSE(matches(s, {{"pod", "a"}, {"tier", "db"}}));
}

TEST(Selector, Expressions) {
  k8s::Labels a = {{"pod", "a"}}, none;
  EXPECT_TRUE(matches(expr("pod", Op::In, {"a", "b"}), a));
  EXPECT_FALSE(matches(expr("pod", Op::In, {"b", "c"}), a));
  EXPECT_FALSE(matches(expr("pod", Op::In, {"a"}), none));
  EXPECT_FALSE(matches(expr("pod", Op::NotIn, {"a", "b"}), a));
  EXPECT_TRUE(matches(expr("pod", Op::NotIn, {"b"}), a));
  EXPECT_TRUE(matches(expr("pod", Op::NotIn, {"a"}), none));  // absent key
  EXPECT_TRUE(matches(expr("pod", Op::Exists), a));
  EXPECT_FALSE(matches(expr("pod", Op::Exists), none));
  EXPECT_FALSE(matches(expr("pod", Op::DoesNotExist), a));
  EXPECT_TRUE(matches(expr("pod", Op::DoesNotExist), none));
}

TEST(Selector, LabelsAndExpressionsAreAnded) {
  LabelSelector s = sel({{"pod", "a"}});
  s.match_expressions.push_back({"tier", Op::Exists, {}});
  s.match_expressions.push_back({"env", Op::NotIn, {"prod"}});
  EXPECT_TRUE(matches(s, {{"pod", "a"}, {"tier", "x"}}));
  EXPECT_FALSE(matches(s, {{"pod", "a"}}));
  EXPECT_FALSE(matches(s, {{"pod", "a"}, {"tier", "x"}, {"env", "prod"}}));
  EXPECT_FALSE(matches(s, {{"pod", "b"}, {"tier", "x"}}));
}

// ---- evaluate: matrices ----

TEST_F(PolicyTest, DefaultAllow) {
  EXPECT_MATRIX(matrix(80), kAllAllowed);
  Verdict v = eval(ep("x/a"), ep("y/b"), 80);
  EXPECT_TRUE(v.allowed);
  EXPECT_FALSE(v.egress.isolated);
  EXPECT_FALSE(v.ingress.isolated);
}

TEST_F(PolicyTest, DenyAllIngress) {
  ps.policies = {ingress("x", "deny-all", sel(), {})};
  EXPECT_MATRIX(matrix(80), {
      "x/a XXX ... ...", "x/b XXX ... ...", "x/c XXX ... ...",
      "y/a XXX ... ...", "y/b XXX ... ...", "y/c XXX ... ...",
      "z/a XXX ... ...", "z/b XXX ... ...", "z/c XXX ... ..."});
  EXPECT_MATRIX(matrix(81, Protocol::UDP, AF_INET6), matrix(80));
}

TEST_F(PolicyTest, DenyAllEgress) {
  ps.policies = {egress("x", "deny-all-egress", sel(), {})};
  EXPECT_MATRIX(matrix(80), {
      "x/a XXX XXX XXX", "x/b XXX XXX XXX", "x/c XXX XXX XXX",
      "y/a ... ... ...", "y/b ... ... ...", "y/c ... ... ...",
      "z/a ... ... ...", "z/b ... ... ...", "z/c ... ... ..."});
  // External destinations are cut off too.
  EXPECT_FALSE(eval(ep("x/a"), Endpoint::external(ip("192.0.2.1")), 443).allowed);
  EXPECT_TRUE(eval(ep("y/a"), Endpoint::external(ip("192.0.2.1")), 443).allowed);
}

TEST_F(PolicyTest, IngressTypeIgnoresEgressRules) {
  // policyTypes [Ingress] only: the egress section must not restrict.
  NetworkPolicy p = ingress("x", "ingress-only", sel(), {NetworkPolicyRule{}});
  p.egress = {};  // would deny all egress if Egress were a policy type
  ps.policies = {p};
  EXPECT_MATRIX(matrix(80), kAllAllowed);
}

TEST_F(PolicyTest, AllowFromSameNamespace) {
  ps.policies = {ingress("x", "allow-same-ns", sel(), {{{pods(sel())}, {}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a ... ... ...", "x/b ... ... ...", "x/c ... ... ...",
      "y/a XXX ... ...", "y/b XXX ... ...", "y/c XXX ... ...",
      "z/a XXX ... ...", "z/b XXX ... ...", "z/c XXX ... ..."});
}

TEST_F(PolicyTest, AllowFromNamespaceByLabel) {
  ps.policies = {ingress("x", "allow-from-y", pod_is("a"), {{{nss(ns_is("y"))}, {}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a X.. ... ...", "x/b X.. ... ...", "x/c X.. ... ...",
      "y/a ... ... ...", "y/b ... ... ...", "y/c ... ... ...",
      "z/a X.. ... ...", "z/b X.. ... ...", "z/c X.. ... ..."});
  // The metadata.name label works the same way.
  ps.policies = {ingress("x", "allow-from-y", pod_is("a"),
                         {{{nss(sel({{"kubernetes.io/metadata.name", "y"}}))}, {}}})};
  EXPECT_MATRIX(matrix(81), matrix(80));
  EXPECT_FALSE(allowed("z/a", "x/a", 81));
}

TEST_F(PolicyTest, PodAndNamespaceSelectorInOnePeerAreAnded) {
  ps.policies = {ingress("x", "and", pod_is("a"), {{{both(ns_is("y"), pod_is("b"))}, {}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a X.. ... ...", "x/b X.. ... ...", "x/c X.. ... ...",
      "y/a X.. ... ...", "y/b ... ... ...", "y/c X.. ... ...",
      "z/a X.. ... ...", "z/b X.. ... ...", "z/c X.. ... ..."});
}

TEST_F(PolicyTest, SeparatePeersAreOred) {
  // podSelector alone means pods of the policy's own namespace (x/b), not
  // pod=b everywhere.
  ps.policies = {ingress("x", "or", pod_is("a"), {{{nss(ns_is("y")), pods(pod_is("b"))}, {}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a X.. ... ...", "x/b ... ... ...", "x/c X.. ... ...",
      "y/a ... ... ...", "y/b ... ... ...", "y/c ... ... ...",
      "z/a X.. ... ...", "z/b X.. ... ...", "z/c X.. ... ..."});
}

TEST_F(PolicyTest, MatchExpressions) {
  // From namespaces ns NotIn [x], pods pod In [b, c]: y/b y/c z/b z/c.
  ps.policies = {ingress("x", "expr", pod_is("a"),
                         {{{both(expr("ns", Op::NotIn, {"x"}), expr("pod", Op::In, {"b", "c"}))}, {}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a X.. ... ...", "x/b X.. ... ...", "x/c X.. ... ...",
      "y/a X.. ... ...", "y/b ... ... ...", "y/c ... ... ...",
      "z/a X.. ... ...", "z/b ... ... ...", "z/c ... ... ..."});

  // Exists: every namespace has ns=; a NotIn on a key nobody has matches all.
  ps.policies = {ingress("x", "expr", pod_is("a"),
                         {{{both(expr("ns", Op::Exists), expr("team", Op::NotIn, {"red"}))}, {}}})};
  EXPECT_MATRIX(matrix(80), kAllAllowed);

  // DoesNotExist on a label every namespace has: no peer, x/a isolated.
  ps.policies = {ingress("x", "expr", pod_is("a"), {{{nss(expr("ns", Op::DoesNotExist))}, {}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a X.. ... ...", "x/b X.. ... ...", "x/c X.. ... ...",
      "y/a X.. ... ...", "y/b X.. ... ...", "y/c X.. ... ...",
      "z/a X.. ... ...", "z/b X.. ... ...", "z/c X.. ... ..."});

  // Policy target by expression: pods other than a in x are isolated.
  ps.policies = {ingress("x", "expr", expr("pod", Op::NotIn, {"a"}), {})};
  EXPECT_MATRIX(matrix(80), {
      "x/a .XX ... ...", "x/b .XX ... ...", "x/c .XX ... ...",
      "y/a .XX ... ...", "y/b .XX ... ...", "y/c .XX ... ...",
      "z/a .XX ... ...", "z/b .XX ... ...", "z/c .XX ... ..."});
}

TEST_F(PolicyTest, EgressToOnePodOnly) {
  ps.policies = {egress("x", "to-y-b", pod_is("a"), {{{both(ns_is("y"), pod_is("b"))}, {}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a XXX X.X XXX", "x/b ... ... ...", "x/c ... ... ...",
      "y/a ... ... ...", "y/b ... ... ...", "y/c ... ... ...",
      "z/a ... ... ...", "z/b ... ... ...", "z/c ... ... ..."});
}

TEST_F(PolicyTest, IpBlockWithExceptMatchesPodIps) {
  // Egress from x/a to 10.0.0.0/8 minus y's 10.0.1.0/24.
  ps.policies = {egress("x", "cidr", pod_is("a"), {{{block("10.0.0.0/8", {"10.0.1.0/24"})}, {}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a ... XXX ...", "x/b ... ... ...", "x/c ... ... ...",
      "y/a ... ... ...", "y/b ... ... ...", "y/c ... ... ...",
      "z/a ... ... ...", "z/b ... ... ...", "z/c ... ... ..."});
  EXPECT_TRUE(eval(ep("x/a"), Endpoint::external(ip("10.9.9.9")), 80).allowed);
  EXPECT_FALSE(eval(ep("x/a"), Endpoint::external(ip("10.0.1.200")), 80).allowed);
  EXPECT_FALSE(eval(ep("x/a"), Endpoint::external(ip("192.0.2.1")), 80).allowed);

  // Ingress to x/a from exactly y/b's address.
  ps.policies = {ingress("x", "from-y-b", pod_is("a"), {{{block("10.0.1.2/32")}, {}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a X.. ... ...", "x/b X.. ... ...", "x/c X.. ... ...",
      "y/a X.. ... ...", "y/b ... ... ...", "y/c X.. ... ...",
      "z/a X.. ... ...", "z/b X.. ... ...", "z/c X.. ... ..."});
}

TEST_F(PolicyTest, Ipv4BlockDoesNotMatchIpv6) {
  ps.policies = {egress("x", "cidr", pod_is("a"), {{{block("10.0.0.0/8", {"10.0.1.0/24"})}, {}}})};
  EXPECT_MATRIX(matrix(80, Protocol::TCP, AF_INET6), {
      "x/a XXX XXX XXX", "x/b ... ... ...", "x/c ... ... ...",
      "y/a ... ... ...", "y/b ... ... ...", "y/c ... ... ...",
      "z/a ... ... ...", "z/b ... ... ...", "z/c ... ... ..."});
  // 0.0.0.0/0 is "every IPv4 address", not "everything".
  ps.policies = {ingress("x", "all-v4", sel(), {{{block("0.0.0.0/0")}, {}}})};
  EXPECT_MATRIX(matrix(80), kAllAllowed);
  EXPECT_FALSE(allowed("y/a", "x/b", 80, Protocol::TCP, AF_INET6));
  EXPECT_FALSE(eval(Endpoint::external(ip("2001:db8::1")), ep("x/b"), 80,
                    Protocol::TCP, AF_INET6).allowed);
}

TEST_F(PolicyTest, Ipv6Blocks) {
  // From y's IPv6 range except y/c.
  ps.policies = {ingress("x", "from-y-v6", pod_is("a"),
                         {{{block("fd00::1:0/112", {"fd00::1:3/128"})}, {}}})};
  EXPECT_MATRIX(matrix(80, Protocol::TCP, AF_INET6), {
      "x/a X.. ... ...", "x/b X.. ... ...", "x/c X.. ... ...",
      "y/a ... ... ...", "y/b ... ... ...", "y/c X.. ... ...",
      "z/a X.. ... ...", "z/b X.. ... ...", "z/c X.. ... ..."});
  // The same pods over IPv4: no IPv4 block, so nobody.
  EXPECT_FALSE(allowed("y/a", "x/a", 80, Protocol::TCP, AF_INET));
  EXPECT_TRUE(eval(Endpoint::external(ip("fd00::1:99")), ep("x/a"), 80,
                   Protocol::TCP, AF_INET6).allowed);
}

TEST_F(PolicyTest, PodWithOnlyOneFamily) {
  cluster.pods[0].ips = {ip("10.0.0.1")};  // x/a: IPv4 only
  ps.policies = {ingress("y", "from-v6", sel(), {{{block("::/0")}, {}}})};
  EXPECT_TRUE(allowed("x/b", "y/a", 80, Protocol::TCP, AF_INET6));
  EXPECT_FALSE(allowed("x/a", "y/a", 80, Protocol::TCP, AF_INET));
  auto v = evaluate(cluster, ps, ep("x/a"), ep("y/a"), 80, Protocol::TCP, AF_INET6);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().find("x/a has no IPv6 address"), std::string::npos) << v.error();
}

TEST_F(PolicyTest, ProtocolFiltering) {
  ps.policies = {ingress("x", "udp-80", sel(), {{{}, {port(80, Protocol::UDP)}}})};
  const std::vector<std::string> x_denied = {
      "x/a XXX ... ...", "x/b XXX ... ...", "x/c XXX ... ...",
      "y/a XXX ... ...", "y/b XXX ... ...", "y/c XXX ... ...",
      "z/a XXX ... ...", "z/b XXX ... ...", "z/c XXX ... ..."};
  EXPECT_MATRIX(matrix(80, Protocol::UDP), kAllAllowed);
  EXPECT_MATRIX(matrix(80, Protocol::TCP), x_denied);
  EXPECT_MATRIX(matrix(80, Protocol::SCTP), x_denied);
  EXPECT_MATRIX(matrix(81, Protocol::UDP), x_denied);

  // A port entry with a protocol and no number: every port of it.
  ps.policies = {ingress("x", "sctp", sel(), {{{}, {NetworkPolicyPort{Protocol::SCTP, {}, {}}}}})};
  EXPECT_MATRIX(matrix(81, Protocol::SCTP), kAllAllowed);
  EXPECT_TRUE(allowed("y/a", "x/a", 9999, Protocol::SCTP));
  EXPECT_MATRIX(matrix(81, Protocol::TCP), x_denied);
}

TEST_F(PolicyTest, EndPortRanges) {
  ps.policies = {ingress("x", "range", pod_is("a"), {{{}, {range(80, 82)}}})};
  for (uint16_t p : {80, 81, 82}) EXPECT_TRUE(allowed("y/a", "x/a", p)) << p;
  for (uint16_t p : {79, 83}) EXPECT_FALSE(allowed("y/a", "x/a", p)) << p;
  EXPECT_FALSE(allowed("y/a", "x/a", 81, Protocol::UDP));

  ps.policies = {egress("x", "range", pod_is("a"),
                        {{{nss(ns_is("y"))}, {range(81, 81)}}, {{nss(ns_is("z"))}, {range(80, 81)}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a XXX XXX ...", "x/b ... ... ...", "x/c ... ... ...",
      "y/a ... ... ...", "y/b ... ... ...", "y/c ... ... ...",
      "z/a ... ... ...", "z/b ... ... ...", "z/c ... ... ..."});
  EXPECT_MATRIX(matrix(81), {
      "x/a XXX ... ...", "x/b ... ... ...", "x/c ... ... ...",
      "y/a ... ... ...", "y/b ... ... ...", "y/c ... ... ...",
      "z/a ... ... ...", "z/b ... ... ...", "z/c ... ... ..."});
}

TEST_F(PolicyTest, NamedPortsResolvedPerDestination) {
  // z/c serves serve-80-tcp on 8080; everybody else on 80.
  for (auto& cp : cluster.pods[8].pod.ports)
    if (cp.name == "serve-80-tcp") cp.container_port = 8080;
  ASSERT_EQ(cluster.pods[8].pod.meta.name, "c");

  // Ingress to all of z on serve-80-tcp: resolved on each target pod.
  ps.policies = {ingress("z", "named", sel(), {{{}, {named("serve-80-tcp")}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a ... ... ..X", "x/b ... ... ..X", "x/c ... ... ..X",
      "y/a ... ... ..X", "y/b ... ... ..X", "y/c ... ... ..X",
      "z/a ... ... ..X", "z/b ... ... ..X", "z/c ... ... ..X"});
  EXPECT_TRUE(allowed("x/a", "z/c", 8080));
  EXPECT_FALSE(allowed("x/a", "z/b", 8080));
  EXPECT_FALSE(allowed("x/a", "z/b", 80, Protocol::UDP));  // name is TCP's

  // Egress from x/a on serve-80-tcp: resolved on the destination pod.
  ps.policies = {egress("x", "named", pod_is("a"), {{{}, {named("serve-80-tcp")}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a ... ... ..X", "x/b ... ... ...", "x/c ... ... ...",
      "y/a ... ... ...", "y/b ... ... ...", "y/c ... ... ...",
      "z/a ... ... ...", "z/b ... ... ...", "z/c ... ... ..."});
  EXPECT_TRUE(allowed("x/a", "z/c", 8080));
  EXPECT_FALSE(allowed("x/a", "y/c", 8080));
  // An external destination has no named ports.
  EXPECT_FALSE(eval(ep("x/a"), Endpoint::external(ip("192.0.2.1")), 80).allowed);

  // A name bound to another protocol never matches.
  ps.policies = {ingress("x", "named-udp", sel(), {{{}, {named("serve-80-tcp", Protocol::UDP)}}})};
  EXPECT_FALSE(allowed("y/a", "x/a", 80, Protocol::UDP));
  EXPECT_FALSE(allowed("y/a", "x/a", 80, Protocol::TCP));
}

TEST_F(PolicyTest, MultiplePoliciesAddUp) {
  ps.policies = {ingress("x", "deny-all", sel(), {}),
                 ingress("x", "from-y", pod_is("a"), {{{nss(ns_is("y"))}, {}}}),
                 ingress("x", "from-z", pod_is("a"), {{{nss(ns_is("z"))}, {port(81)}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a XXX ... ...", "x/b XXX ... ...", "x/c XXX ... ...",
      "y/a .XX ... ...", "y/b .XX ... ...", "y/c .XX ... ...",
      "z/a XXX ... ...", "z/b XXX ... ...", "z/c XXX ... ..."});
  EXPECT_MATRIX(matrix(81), {
      "x/a XXX ... ...", "x/b XXX ... ...", "x/c XXX ... ...",
      "y/a .XX ... ...", "y/b .XX ... ...", "y/c .XX ... ...",
      "z/a .XX ... ...", "z/b .XX ... ...", "z/c .XX ... ..."});
}

TEST_F(PolicyTest, IngressAndEgressBothNeeded) {
  // x/a may only send to y; y/b only accepts from z: x/a -> y/b fails on
  // the ingress side, x/a -> z/* fails on the egress side.
  ps.policies = {egress("x", "to-y", pod_is("a"), {{{nss(ns_is("y"))}, {}}}),
                 ingress("y", "from-z", pod_is("b"), {{{nss(ns_is("z"))}, {}}})};
  EXPECT_MATRIX(matrix(80), {
      "x/a XXX .X. XXX", "x/b ... .X. ...", "x/c ... .X. ...",
      "y/a ... .X. ...", "y/b ... .X. ...", "y/c ... .X. ...",
      "z/a ... ... ...", "z/b ... ... ...", "z/c ... ... ..."});
  Verdict v = eval(ep("x/a"), ep("y/b"), 80);
  EXPECT_TRUE(v.egress.allowed);
  EXPECT_FALSE(v.ingress.allowed);
}

// ---- evaluate: the verdict names what decided ----

TEST_F(PolicyTest, VerdictNamesRulesAndPolicies) {
  ps.policies = {ingress("x", "deny-all", sel(), {}),
                 ingress("x", "web", pod_is("a"),
                         {{{nss(ns_is("z"))}, {}}, {{nss(ns_is("y"))}, {port(80)}}, {{}, {port(80)}}})};
  Verdict ok = eval(ep("y/b"), ep("x/a"), 80);
  EXPECT_TRUE(ok.allowed);
  EXPECT_TRUE(ok.ingress.isolated);
  EXPECT_FALSE(ok.egress.isolated);
  ASSERT_EQ(ok.ingress.allowed_by.size(), 2u);  // rules 1 and 2, not 0
  EXPECT_EQ(ok.ingress.allowed_by[0].str(), "x/web ingress[1]");
  EXPECT_EQ(ok.ingress.allowed_by[1].str(), "x/web ingress[2]");
  EXPECT_EQ(explain(ok),
            "y/b (10.0.1.2) -> x/a (10.0.0.1) 80/TCP: ALLOWED\n"
            "  egress from y/b (10.0.1.2): allowed (not isolated: no policy selects it)\n"
            "  ingress to x/a (10.0.0.1): allowed by x/web ingress[1] x/web ingress[2]");

  Verdict no = eval(ep("y/b"), ep("x/a"), 81, Protocol::UDP);
  EXPECT_FALSE(no.allowed);
  ASSERT_EQ(no.ingress.isolated_by.size(), 2u);
  EXPECT_EQ(no.ingress.isolated_by[0].str(), "x/deny-all");
  EXPECT_EQ(no.ingress.isolated_by[1].str(), "x/web");
  EXPECT_TRUE(no.ingress.allowed_by.empty());
  EXPECT_NE(explain(no).find("81/UDP: DENIED"), std::string::npos) << explain(no);
  EXPECT_NE(explain(no).find("denied (isolated by x/deny-all x/web; no rule matches)"),
            std::string::npos) << explain(no);

  Verdict ext = eval(ep("x/a"), Endpoint::external(ip("192.0.2.1")), 80);
  EXPECT_FALSE(ext.ingress.applies);
  EXPECT_NE(explain(ext).find("ingress to 192.0.2.1: external, no policy applies"),
            std::string::npos) << explain(ext);
}

TEST_F(PolicyTest, Errors) {
  auto unknown = evaluate(cluster, ps, ep("x/nope"), ep("x/a"), 80, Protocol::TCP, AF_INET);
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().find("x/nope not found"), std::string::npos) << unknown.error();
  auto mixed = evaluate(cluster, ps, ep("x/a"), Endpoint::external(ip("2001:db8::1")), 80,
                        Protocol::TCP, AF_INET);
  ASSERT_FALSE(mixed);
  EXPECT_NE(mixed.error().find("2001:db8::1"), std::string::npos) << mixed.error();
  EXPECT_FALSE(evaluate(cluster, ps, ep("x/a"), ep("x/b"), 80, Protocol::TCP, 0));
  EXPECT_FALSE(ingress_rules_for(cluster, ps, {"q", "a"}));
}

TEST_F(PolicyTest, MalformedPeersFailClosed) {
  NetworkPolicyPeer both_kinds = block("10.0.0.0/8");
  both_kinds.pod_selector = sel();
  ps.policies = {ingress("x", "bad", pod_is("a"),
                         {{{NetworkPolicyPeer{}, both_kinds, block("10.0.0.1/8")}, {}}})};
  EXPECT_FALSE(allowed("y/a", "x/a", 80));
  EXPECT_FALSE(allowed("x/b", "x/a", 80));
}

// ---- flattened rules agree with evaluate ----

bool rules_allow(const DirectionRules& r, const ClusterPod* remote, const IpAddr& remote_ip,
                 uint16_t p, Protocol pr, int family) {
  if (!r.isolated) return true;
  for (const auto& e : r.allowed) {
    if (e.ports.protocol && *e.ports.protocol != pr) continue;
    if (p < e.ports.first || p > e.ports.last) continue;
    switch (e.kind) {
      case AllowedPeer::Kind::Any: return true;
      case AllowedPeer::Kind::Pods:
        if (remote && (e.family == 0 || e.family == family) &&
            std::count(e.pods.begin(), e.pods.end(),
                       PodRef{remote->pod.meta.namespace_, remote->pod.meta.name}))
          return true;
        break;
      case AllowedPeer::Kind::IpBlock:
        if (e.cidr.contains(remote_ip) &&
            std::none_of(e.except.begin(), e.except.end(),
                         [&](const Cidr& x) { return x.contains(remote_ip); }))
          return true;
        break;
    }
  }
  return false;
}

// Every pod pair plus external peers, several ports, all protocols, both
// families: the compiler's view must give the same answer as evaluate().
void expect_flattened_agrees(const Cluster& c, const PolicySet& ps) {
  std::vector<Endpoint> eps;
  for (const auto& p : c.pods)
    eps.push_back(Endpoint::of_pod(p.pod.meta.namespace_, p.pod.meta.name));
  const std::vector<IpAddr> ext = {ip("10.0.1.200"), ip("192.0.2.1"), ip("fd00::1:99"),
                                   ip("2001:db8::1")};
  for (const auto& a : ext) eps.push_back(Endpoint::external(a));
  int checked = 0;
  for (const auto& s : eps)
    for (const auto& d : eps)
      for (int family : {AF_INET, AF_INET6})
        for (Protocol pr : {Protocol::TCP, Protocol::UDP, Protocol::SCTP})
          for (uint16_t p : {80, 81, 82, 8080}) {
            auto v = evaluate(c, ps, s, d, p, pr, family);
            if (!v) continue;  // wrong family for an external address
            auto ip_of = [&](const Endpoint& e, const ClusterPod* pod) {
              if (!pod) return e.ip;
              for (const auto& a : pod->ips)
                if (a.family == family) return a;
              return IpAddr{};
            };
            const ClusterPod* sp = s.pod ? c.find_pod(*s.pod) : nullptr;
            const ClusterPod* dp = d.pod ? c.find_pod(*d.pod) : nullptr;
            bool want = true;
            if (sp) want &= rules_allow(*egress_rules_for(c, ps, *s.pod), dp, ip_of(d, dp), p, pr, family);
            if (dp) want &= rules_allow(*ingress_rules_for(c, ps, *d.pod), sp, ip_of(s, sp), p, pr, family);
            ASSERT_EQ(v->allowed, want) << explain(*v) << " family " << family;
            checked++;
          }
  EXPECT_GT(checked, 1000);
}

TEST_F(PolicyTest, FlattenedRulesAgreeWithEvaluate) {
  for (auto& cp : cluster.pods[8].pod.ports)
    if (cp.name == "serve-80-tcp") cp.container_port = 8080;
  const std::vector<std::vector<NetworkPolicy>> sets = {
      {},
      {ingress("x", "deny", sel(), {}), egress("y", "deny", sel(), {})},
      {ingress("x", "or", pod_is("a"), {{{nss(ns_is("y")), pods(pod_is("b"))}, {port(80)}}})},
      {egress("x", "to-y-b", pod_is("a"), {{{both(ns_is("y"), pod_is("b"))}, {range(80, 81)}}})},
      {egress("x", "cidr", sel(), {{{block("10.0.0.0/8", {"10.0.1.0/24"}), block("fd00::2:0/112")}, {}}}),
       ingress("z", "cidr", sel(), {{{block("10.0.0.0/16", {"10.0.0.2/32"})}, {port(81, Protocol::UDP)}}})},
      {ingress("z", "named", sel(), {{{}, {named("serve-80-tcp"), named("serve-81-udp", Protocol::UDP)}}}),
       egress("x", "named", pod_is("a"), {{{}, {named("serve-80-tcp")}}}),
       egress("x", "named-cidr", pod_is("b"), {{{block("10.0.2.0/24", {"10.0.2.1/32"}), nss(ns_is("y"))},
                                                {named("serve-80-tcp"), port(81, Protocol::SCTP)}}})},
      {ingress("x", "sctp", sel(), {{{nss(expr("ns", Op::In, {"y", "z"}))}, {NetworkPolicyPort{Protocol::SCTP, {}, {}}}}})},
  };
  for (const auto& s : sets) {
    SCOPED_TRACE(s.empty() ? "no policies" : s[0].meta.name);
    ps.policies = s;
    expect_flattened_agrees(cluster, ps);
  }
}

TEST_F(PolicyTest, FlattenedShape) {
  for (auto& cp : cluster.pods[8].pod.ports)
    if (cp.name == "serve-80-tcp") cp.container_port = 8080;
  ps.policies = {ingress("x", "deny", sel(), {}),
                 ingress("x", "web", pod_is("a"),
                         {{{both(ns_is("y"), pod_is("b")), block("192.0.2.0/24", {"192.0.2.8/29"})},
                           {range(80, 81), named("serve-81-udp", Protocol::UDP)}}}),
                 egress("x", "named", pod_is("a"), {{{nss(ns_is("z"))}, {named("serve-80-tcp")}}})};

  auto in = ingress_rules_for(cluster, ps, {"x", "a"});
  ASSERT_TRUE(in) << in.error();
  EXPECT_TRUE(in->isolated);
  ASSERT_EQ(in->isolated_by.size(), 2u);
  ASSERT_EQ(in->allowed.size(), 4u);  // 2 peers x 2 ports
  const auto& e0 = in->allowed[0];
  EXPECT_EQ(e0.rule.str(), "x/web ingress[0]");
  EXPECT_EQ(e0.kind, AllowedPeer::Kind::Pods);
  EXPECT_EQ(e0.pods, (std::vector<PodRef>{{"y", "b"}}));
  EXPECT_EQ(e0.ports.protocol, Protocol::TCP);
  EXPECT_EQ(e0.ports.first, 80);
  EXPECT_EQ(e0.ports.last, 81);
  const auto& e1 = in->allowed[1];  // named port resolved on x/a itself
  EXPECT_EQ(e1.ports.protocol, Protocol::UDP);
  EXPECT_EQ(e1.ports.first, 81);
  EXPECT_EQ(e1.ports.last, 81);
  EXPECT_EQ(e1.ports.named, "serve-81-udp");
  const auto& e2 = in->allowed[2];
  EXPECT_EQ(e2.kind, AllowedPeer::Kind::IpBlock);
  EXPECT_EQ(e2.cidr.str(), "192.0.2.0/24");
  ASSERT_EQ(e2.except.size(), 1u);
  EXPECT_EQ(e2.except[0].str(), "192.0.2.8/29");

  // Egress named port: one Pods entry per resolved number.
  auto out = egress_rules_for(cluster, ps, {"x", "a"});
  ASSERT_TRUE(out) << out.error();
  ASSERT_EQ(out->allowed.size(), 2u);
  EXPECT_EQ(out->allowed[0].ports.first, 80);
  EXPECT_EQ(out->allowed[0].pods, (std::vector<PodRef>{{"z", "a"}, {"z", "b"}}));
  EXPECT_EQ(out->allowed[1].ports.first, 8080);
  EXPECT_EQ(out->allowed[1].pods, (std::vector<PodRef>{{"z", "c"}}));

  // Not selected: not isolated, nothing listed.
  auto free = ingress_rules_for(cluster, ps, {"y", "a"});
  ASSERT_TRUE(free);
  EXPECT_FALSE(free->isolated);
  EXPECT_TRUE(free->allowed.empty());
}

}  // namespace
}  // namespace sluice::policy

// Policy compiler: direct checks of the translation (CIDR identities,
// ipcache, ports, ipBlock/except, range merging and capacity, rule ids,
// incrementality). The datapath cross-check against policy::evaluate is in
// policy_compiler_crosscheck_test.cpp.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "policy_compiler_testlib.h"
#include "policy_datapath_sim.h"
#include "sluice/abi.h"

namespace sluice::policy {
namespace {

using namespace testlib;

class PolicyCompilerTest : public ::testing::Test {
 protected:
  Cluster cluster = make_cluster();
  std::map<PodRef, uint32_t> ids = label_identities(cluster);
  PolicySet ps;
  CidrIdentities cidrs;
  RuleTable rules;

  uint32_t id(const std::string& ns, const std::string& pod) {
    return ids.at({ns, pod});
  }
  CompiledPolicy compile() {
    auto c = compile_all(cluster, ps, identity_fn(ids), cidrs, rules);
    EXPECT_TRUE(c) << c.error();
    return c ? *c : CompiledPolicy{};
  }
  EndpointPolicy endpoint(const std::string& ns, const std::string& pod) {
    for (auto& e : compile().endpoints)
      if (e.pod == PodRef{ns, pod}) return e;
    ADD_FAILURE() << "no endpoint " << ns << "/" << pod;
    return {};
  }
  static std::vector<PolicyEntry> of(const EndpointPolicy& ep, uint32_t who,
                                     uint8_t dir) {
    std::vector<PolicyEntry> out;
    for (const auto& e : ep.entries)
      if (e.identity == who && e.dir == dir) out.push_back(e);
    return out;
  }
};

std::string str(const std::vector<PolicyEntry>& es) {
  std::string s;
  for (const auto& e : es) {
    s += std::to_string(e.proto) + ":";
    s += e.any_port ? "*" : std::to_string(e.port_lo) + "-" +
                                std::to_string(e.port_hi);
    s += " ";
  }
  return s;
}

TEST(PolicyCompilerCidr, IdentitiesAreStableAcrossSyncs) {
  CidrIdentities c;
  ASSERT_TRUE(c.sync({cidr("10.0.0.0/8"), cidr("10.1.0.0/16")}));
  const uint32_t a = *c.id_of(cidr("10.0.0.0/8"));
  const uint32_t b = *c.id_of(cidr("10.1.0.0/16"));
  EXPECT_GE(a, uint32_t(kIdentityFirstCidr));
  EXPECT_GE(b, uint32_t(kIdentityFirstCidr));
  EXPECT_NE(a, b);
  ASSERT_TRUE(c.sync({cidr("10.1.0.0/16"), cidr("fd00::/64")}));
  EXPECT_FALSE(c.id_of(cidr("10.0.0.0/8")));  // freed
  EXPECT_EQ(*c.id_of(cidr("10.1.0.0/16")), b);  // kept
  const uint32_t v6 = *c.id_of(cidr("fd00::/64"));
  EXPECT_NE(v6, a);  // a freed number is not handed out again right away
  EXPECT_NE(v6, b);
  EXPECT_EQ(c.prefix_of(v6)->str(), "fd00::/64");
  EXPECT_EQ(c.most_specific(ip("10.1.2.3")), b);
  EXPECT_EQ(c.most_specific(ip("10.2.0.1")), uint32_t(SLUICE_ID_WORLD));
  EXPECT_EQ(c.most_specific(ip("fd00::1")), v6);
}

TEST(PolicyCompilerCidr, PrefixesComeFromCidrAndExceptOfEveryPolicy) {
  PolicySet ps;
  ps.policies = {
      ingress("x", "p1", sel(), {{{block("10.0.0.0/16", {"10.0.1.0/24"})}, {}}}),
      egress("y", "p2", sel(), {{{block("10.0.0.0/16"), block("fd00::/64")}, {}}})};
  auto p = policy_prefixes(ps);
  EXPECT_EQ(p, (std::set<Cidr>{cidr("10.0.0.0/16"), cidr("10.0.1.0/24"),
                               cidr("fd00::/64")}));
}

TEST_F(PolicyCompilerTest, IpcacheHasPrefixesAndPodsWithCidrIdentity) {
  ps.policies = {ingress("x", "p", sel(),
                         {{{block("10.0.0.0/16", {"10.0.1.0/24"}),
                            block("10.0.2.3/32")},
                           {}}})};
  auto c = compile();
  const uint32_t wide = *cidrs.id_of(cidr("10.0.0.0/16"));
  const uint32_t exc = *cidrs.id_of(cidr("10.0.1.0/24"));
  const uint32_t host = *cidrs.id_of(cidr("10.0.2.3/32"));
  std::map<std::string, IpcacheEntry> by;
  for (const auto& e : c.ipcache) by[e.prefix.str()] = e;
  EXPECT_EQ(by.size(), 2u + 18u);  // /16 and /24; 9 pods x 2 (z/c == /32)
  EXPECT_EQ(by["10.0.0.0/16"].identity, wide);
  EXPECT_EQ(by["10.0.0.0/16"].cidr_identity, wide);
  EXPECT_EQ(by["10.0.1.0/24"].identity, exc);
  EXPECT_EQ(by["10.0.0.1/32"].identity, id("x", "a"));
  EXPECT_EQ(by["10.0.0.1/32"].cidr_identity, wide);
  EXPECT_EQ(by["10.0.1.2/32"].cidr_identity, exc);  // most specific
  // A pod address that is itself a policy prefix: one entry, the pod's.
  EXPECT_EQ(by["10.0.2.3/32"].identity, id("z", "c"));
  EXPECT_EQ(by["10.0.2.3/32"].cidr_identity, host);
  EXPECT_EQ(by["fd00::1/128"].identity, id("x", "a"));
  EXPECT_EQ(by["fd00::1/128"].cidr_identity, uint32_t(SLUICE_ID_WORLD));
}

TEST_F(PolicyCompilerTest, PortsTranslation) {
  ps.policies = {ingress("x", "p", pod_is("a"),
                         {{{pods(pod_is("b"))}, {}},
                          {{pods(pod_is("c"))},
                           {port(80), range(1000, 2000, Protocol::UDP),
                            proto_only(Protocol::SCTP),
                            named("serve-81-tcp")}}})};
  auto ep = endpoint("x", "a");
  EXPECT_TRUE(ep.ingress_enforced);
  EXPECT_FALSE(ep.egress_enforced);
  // No ports: every protocol, proto 0 included.
  EXPECT_EQ(str(of(ep, id("x", "b"), SLUICE_DIR_INGRESS)),
            "0:* 6:* 17:* 132:* ");
  EXPECT_EQ(str(of(ep, id("x", "c"), SLUICE_DIR_INGRESS)),
            "6:80-81 17:1000-2000 132:* ");
  // Rule ids name the rule.
  for (const auto& e : of(ep, id("x", "c"), SLUICE_DIR_INGRESS)) {
    ASSERT_NE(rules.lookup(e.rule_id), nullptr);
    EXPECT_EQ(rules.lookup(e.rule_id)->str(), "x/p ingress[1]");
  }
  EXPECT_EQ(rules.lookup(of(ep, id("x", "b"), SLUICE_DIR_INGRESS)[0].rule_id)
                ->str(),
            "x/p ingress[0]");
  EXPECT_EQ(ep.entries.size(), 7u);  // nothing for anyone else
  EXPECT_TRUE(endpoint("x", "b").entries.empty());
  EXPECT_FALSE(endpoint("x", "b").ingress_enforced);
}

TEST_F(PolicyCompilerTest, AnyPeerAndDenyAll) {
  ps.policies = {ingress("x", "deny", sel(), {}),
                 egress("y", "any-dns", sel(), {{{}, {port(53, Protocol::UDP)}}})};
  auto c = compile();
  for (const auto& ep : c.endpoints) {
    EXPECT_EQ(ep.ingress_enforced, ep.pod.namespace_ == "x");
    EXPECT_EQ(ep.egress_enforced, ep.pod.namespace_ == "y");
    if (ep.pod.namespace_ == "y")
      EXPECT_EQ(str(of(ep, SLUICE_ID_ANY, SLUICE_DIR_EGRESS)), "17:53-53 ");
    else
      EXPECT_TRUE(ep.entries.empty()) << ep.pod.str();
  }
}

TEST_F(PolicyCompilerTest, IpBlockAllowsNestedPrefixesOutsideExcept) {
  ps.policies = {
      ingress("x", "p", pod_is("a"),
              {{{block("10.0.0.0/16", {"10.0.1.0/24"})}, {port(80)}}}),
      // Other policies' prefixes: inside the except, inside the block, and
      // outside it.
      ingress("y", "q", sel(),
              {{{block("10.0.1.128/25"), block("10.0.2.0/24"),
                 block("10.0.2.0/25"), block("10.1.0.0/16")},
                {}}})};
  auto ep = endpoint("x", "a");
  std::set<uint32_t> allowed;
  for (const auto& e : ep.entries) allowed.insert(e.identity);
  EXPECT_EQ(allowed, (std::set<uint32_t>{*cidrs.id_of(cidr("10.0.0.0/16")),
                                         *cidrs.id_of(cidr("10.0.2.0/24")),
                                         *cidrs.id_of(cidr("10.0.2.0/25"))}));
}

TEST_F(PolicyCompilerTest, RangesMergeAndRuleIdsSurvive) {
  NetworkPolicyRule r1{{pods(pod_is("b"))}, {port(80), port(81), port(82)}};
  NetworkPolicyRule r2{{pods(pod_is("b"))}, {range(81, 90), port(85)}};
  NetworkPolicyRule r3{{pods(pod_is("b"))}, {port(443)}};
  ps.policies = {ingress("x", "p", pod_is("a"), {r1, r2, r3})};
  auto ep = endpoint("x", "a");
  auto es = of(ep, id("x", "b"), SLUICE_DIR_INGRESS);
  // Same-rule neighbours merge; 85 is shadowed by r2's own 81-90; r1 and
  // r2 overlap but stay apart (first match names r1 for 81-82).
  EXPECT_EQ(str(es), "6:80-82 6:81-90 6:443-443 ");
  EXPECT_EQ(rules.lookup(es[0].rule_id)->rule_index, 0u);
  EXPECT_EQ(rules.lookup(es[1].rule_id)->rule_index, 1u);
  EXPECT_EQ(rules.lookup(es[2].rule_id)->rule_index, 2u);
}

TEST_F(PolicyCompilerTest, TooManyRangesMergeAcrossRulesFirst) {
  // 20 adjacent single ports from 20 rules: merged into one range.
  std::vector<NetworkPolicyRule> rs;
  for (int i = 0; i < 20; i++) rs.push_back({{pods(pod_is("b"))}, {port(100 + i)}});
  ps.policies = {ingress("x", "many", pod_is("a"), rs)};
  EXPECT_EQ(str(of(endpoint("x", "a"), id("x", "b"), SLUICE_DIR_INGRESS)),
            "6:100-119 ");
}

TEST_F(PolicyCompilerTest, TooManyDisjointRangesIsAnErrorNamingEndpointAndPolicy) {
  std::vector<NetworkPolicyPort> ports;
  for (int i = 0; i < SLUICE_POLICY_RANGES; i++) ports.push_back(port(1000 + 2 * i));
  ps.policies = {ingress("x", "sixteen", pod_is("a"), {{{pods(pod_is("b"))}, ports}})};
  EXPECT_EQ(of(endpoint("x", "a"), id("x", "b"), SLUICE_DIR_INGRESS).size(),
            size_t(SLUICE_POLICY_RANGES));  // exactly at capacity: fine
  ps.policies.push_back(ingress("x", "one-more", pod_is("a"),
                                {{{pods(pod_is("b"))}, {port(5000)}}}));
  auto c = compile_all(cluster, ps, identity_fn(ids), cidrs, rules);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().find("x/a"), std::string::npos) << c.error();
  EXPECT_NE(c.error().find("x/sixteen"), std::string::npos) << c.error();
  EXPECT_NE(c.error().find("x/one-more"), std::string::npos) << c.error();
  // An any-port rule for the same key makes the ranges moot.
  ps.policies.push_back(ingress("x", "all", pod_is("a"), {{{pods(pod_is("b"))}, {}}}));
  auto ep = endpoint("x", "a");
  EXPECT_EQ(str(of(ep, id("x", "b"), SLUICE_DIR_INGRESS)), "0:* 6:* 17:* 132:* ");
}

TEST_F(PolicyCompilerTest, UnknownOrReservedIdentityNeverBecomesAnyPeer) {
  ids[{"x", "b"}] = 0;  // 0 is SLUICE_ID_ANY: must not be used for a pod
  ids.erase({"x", "c"});
  ps.policies = {ingress("x", "p", pod_is("a"),
                         {{{pods(pod_is("b")), pods(pod_is("c"))}, {}}})};
  auto ep = endpoint("x", "a");
  EXPECT_TRUE(ep.ingress_enforced);
  EXPECT_TRUE(ep.entries.empty());  // fail closed
}

TEST_F(PolicyCompilerTest, CompileEndpointNeedsSyncedCidrs) {
  ps.policies = {ingress("x", "p", sel(), {{{block("10.0.0.0/8")}, {}}})};
  const CompileInput in{cluster, ps, cidrs, identity_fn(ids)};
  auto ep = compile_endpoint(in, rules, {"x", "a"});
  ASSERT_FALSE(ep);
  EXPECT_NE(ep.error().find("10.0.0.0/8"), std::string::npos);
  ASSERT_TRUE(cidrs.sync(policy_prefixes(ps)));
  EXPECT_TRUE(compile_endpoint(in, rules, {"x", "a"}));
  EXPECT_FALSE(compile_endpoint(in, rules, {"x", "nope"}));
}

TEST(PolicyCompilerRules, IdsAreStableAndNeverReused) {
  RuleTable t;
  const RuleRef a{{"x", "p"}, Direction::Ingress, 0};
  const RuleRef b{{"x", "q"}, Direction::Egress, 1};
  EXPECT_EQ(t.id_for(a), 1u);
  EXPECT_EQ(t.id_for(b), 2u);
  EXPECT_EQ(t.id_for(a), 1u);
  PolicySet ps;
  ps.policies = {egress("x", "q", sel(), {{}, {}})};
  t.retain(ps);
  EXPECT_EQ(t.lookup(1), nullptr);
  EXPECT_EQ(*t.lookup(2), b);
  EXPECT_EQ(t.id_for(a), 3u);  // back, under a new number
}

TEST_F(PolicyCompilerTest, AffectedPods) {
  PolicySet before;
  before.policies = {ingress("x", "p", pod_is("a"), {{{block("10.0.0.0/16")}, {}}}),
                     ingress("y", "q", pod_is("b"), {}),
                     egress("z", "r", pod_is("c"), {})};
  PolicySet after = before;
  auto names = [](const std::vector<PodRef>& v) {
    std::string s;
    for (const auto& p : v) s += p.str() + " ";
    return s;
  };
  EXPECT_EQ(names(affected_pods(before, after, cluster)), "");
  after.policies[1].pod_selector = pod_is("c");  // y/b and y/c
  after.policies.push_back(ingress("z", "new", expr("pod", Op::In, {"a", "b"}), {}));
  after.policies.erase(after.policies.begin() + 2);  // z/r: z/c
  EXPECT_EQ(names(affected_pods(before, after, cluster)),
            "y/b y/c z/a z/b z/c ");
  // A new prefix inside x/p's unchanged ipBlock changes x/a's translation.
  PolicySet more = before;
  more.policies.push_back(egress("y", "s", pod_is("a"), {{{block("10.0.2.0/24")}, {}}}));
  EXPECT_EQ(names(affected_pods(before, more, cluster)), "x/a y/a ");
}

// The documented over-permits, shown on the simulated datapath.
TEST_F(PolicyCompilerTest, FamilyOverPermitOfIpBlockNamedPortIsNoted) {
  ps.policies = {egress("x", "p", pod_is("a"),
                        {{{block("10.0.1.0/24")}, {named("serve-80-tcp")}}})};
  auto c = compile();
  const auto& ep = c.endpoints[0];
  ASSERT_EQ(ep.pod, (PodRef{"x", "a"}));
  ASSERT_EQ(ep.notes.size(), 1u);
  EXPECT_NE(ep.notes[0].find("IPv6"), std::string::npos) << ep.notes[0];
  sim::Datapath dp(cluster, c, identity_fn(ids));
  auto xa = Endpoint::of_pod("x", "a"), yb = Endpoint::of_pod("y", "b");
  EXPECT_TRUE(dp.allows(xa, yb, AF_INET, IPPROTO_TCP, 80));
  EXPECT_FALSE(dp.allows(xa, yb, AF_INET, IPPROTO_TCP, 81));
  auto v = evaluate(cluster, ps, xa, yb, 80, Protocol::TCP, AF_INET6);
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->allowed);                                // reference
  EXPECT_TRUE(dp.allows(xa, yb, AF_INET6, IPPROTO_TCP, 80));  // over-permit
}

TEST_F(PolicyCompilerTest, IdentitySharingOverPermitOfEgressNamedPortIsNoted) {
  // y/b2: same labels as y/b (so the same identity), but "serve-80-tcp"
  // is 8080 there.
  ClusterPod b2 = make_pod("y", "b2", {{"pod", "b"}}, {ip("10.0.1.12")});
  b2.pod.ports[0].container_port = 8080;
  cluster.pods.push_back(b2);
  ids = label_identities(cluster);
  ASSERT_EQ(id("y", "b"), id("y", "b2"));
  ps.policies = {egress("x", "p", pod_is("a"),
                        {{{nss(ns_is("y"))}, {named("serve-80-tcp")}}})};
  auto c = compile();
  ASSERT_FALSE(c.endpoints[0].notes.empty());
  sim::Datapath dp(cluster, c, identity_fn(ids));
  auto xa = Endpoint::of_pod("x", "a"), yb = Endpoint::of_pod("y", "b");
  auto v = evaluate(cluster, ps, xa, yb, 8080, Protocol::TCP, AF_INET);
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->allowed);
  EXPECT_TRUE(dp.allows(xa, yb, AF_INET, IPPROTO_TCP, 8080));  // over-permit
}

}  // namespace
}  // namespace sluice::policy

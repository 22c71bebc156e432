// IncrementalCompiler against a full recompile: random sequences of policy,
// label, namespace, address, port and endpoint changes; after every step
// what the incremental compiler says the kernel holds (its deltas applied
// to a simulated kernel) must equal compiling every local endpoint afresh.
#include <gtest/gtest.h>

#include <random>

#include "policy/incremental.h"
#include "policy_compiler_testlib.h"

namespace sluice::policy {
namespace {

using namespace testlib;

// Identities that stay stable across steps, like the allocator's.
class StableIds {
 public:
  IdentityOf of(const Cluster& c) {
    return identity_fn(label_identities(c, &by_set_));
  }

 private:
  std::map<LabelSet, uint32_t> by_set_;
};

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  template <typename T>
  const T& one(const std::vector<T>& v) { return v[pick(int(v.size()))]; }

  LabelSelector selector() {
    switch (pick(5)) {
      case 0: return sel();
      case 1: return pod_is(one<std::string>({"a", "b", "c", "d"}));
      case 2: return expr("pod", Op::In, {"a", one<std::string>({"b", "c"})});
      case 3: return expr("tier", pick(2) ? Op::Exists : Op::DoesNotExist);
      default: return expr("pod", Op::NotIn, {one<std::string>({"a", "d"})});
    }
  }
  NetworkPolicyPeer peer() {
    switch (pick(5)) {
      case 0: return pods(selector());
      case 1: return nss(pick(2) ? ns_is(one(kNs)) : sel());
      case 2: return both(ns_is(one(kNs)), selector());
      case 3: return block("10.0." + std::to_string(pick(3)) + ".0/24",
                           {"10.0." + std::to_string(pick(3)) + ".1/32"});
      default: return block(one<std::string>({"10.0.0.0/8", "fd00::/64",
                                              "10.0.1.2/32"}));
    }
  }
  NetworkPolicyPort a_port() {
    switch (pick(4)) {
      case 0: return port(80 + pick(2), pick(2) ? Protocol::TCP : Protocol::UDP);
      case 1: return named(one<std::string>({"serve-80-tcp", "serve-81-udp", "web"}),
                           pick(2) ? Protocol::TCP : Protocol::UDP);
      case 2: return range(80, 81 + pick(10));
      default: return proto_only(Protocol::SCTP);
    }
  }
  NetworkPolicyRule rule() {
    NetworkPolicyRule r;
    for (int i = pick(3); i > 0; i--) r.peers.push_back(peer());
    for (int i = pick(3); i > 0; i--) r.ports.push_back(a_port());
    return r;
  }
  NetworkPolicy policy(const std::string& name) {
    NetworkPolicy p;
    p.meta.namespace_ = one(kNs);
    p.meta.name = name;
    p.pod_selector = selector();
    p.ingress_type = pick(4) != 0;
    p.egress_type = !p.ingress_type || pick(2);
    if (p.ingress_type)
      for (int i = pick(3); i > 0; i--) p.ingress.push_back(rule());
    if (p.egress_type)
      for (int i = pick(3); i > 0; i--) p.egress.push_back(rule());
    return p;
  }

 private:
  std::mt19937 rng_;
};

struct Kernel {
  std::map<Cidr, IpcacheEntry> ipcache;
  void apply(const IncrementalCompiler::Delta& d) {
    for (const auto& e : d.ipcache_upserts) ipcache[e.prefix] = e;
    for (const auto& p : d.ipcache_deletes) ipcache.erase(p);
  }
};

void expect_same(const IncrementalCompiler& inc, const Cluster& cluster,
                 const PolicySet& policies, const IdentityOf& ids,
                 const std::set<PodRef>& local, const CidrIdentities& cidrs,
                 const RuleTable& rules, const Kernel& k,
                 const std::string& step) {
  RuleTable fresh = rules;  // a miss would allocate a new id and differ
  const CompileInput in{cluster, policies, cidrs, ids};
  ASSERT_EQ(inc.installed().size(), local.size()) << step;
  for (const auto& ref : local) {
    auto full = compile_endpoint(in, fresh, ref);
    ASSERT_TRUE(full) << full.error();
    auto it = inc.installed().find(ref);
    ASSERT_NE(it, inc.installed().end()) << step << " " << ref.str();
    EXPECT_EQ(it->second.ingress_enforced, full->ingress_enforced)
        << step << " " << ref.str();
    EXPECT_EQ(it->second.egress_enforced, full->egress_enforced)
        << step << " " << ref.str();
    EXPECT_TRUE(it->second.entries == full->entries)
        << step << " " << ref.str() << ": " << it->second.entries.size()
        << " entries installed, " << full->entries.size() << " expected";
  }
  std::map<Cidr, IpcacheEntry> want;
  for (const auto& e : compile_ipcache(cluster, cidrs, ids)) want[e.prefix] = e;
  EXPECT_TRUE(k.ipcache == want) << step << ": ipcache differs";
}

class PolicyIncremental : public ::testing::TestWithParam<uint32_t> {};

TEST_P(PolicyIncremental, RandomChangesMatchAFullRecompile) {
  Gen g(GetParam());
  Cluster cluster = make_cluster();
  std::map<std::string, NetworkPolicy> by_name;
  std::set<PodRef> local;
  for (const auto& p : cluster.pods)
    if (g.pick(4)) local.insert({p.pod.meta.namespace_, p.pod.meta.name});
  StableIds stable;
  IncrementalCompiler inc;
  CidrIdentities cidrs;
  RuleTable rules;
  Kernel kernel;
  size_t compiled = 0, steps = 0;

  for (int step = 0; step < 120; step++) {
    std::string what;
    switch (g.pick(9)) {
      case 0: case 1: case 2: {  // add or replace a policy
        const std::string n = "p" + std::to_string(g.pick(8));
        by_name[n] = g.policy(n);
        what = "apply " + n;
        break;
      }
      case 3: {  // delete a policy
        if (by_name.empty()) continue;
        auto it = std::next(by_name.begin(), g.pick(int(by_name.size())));
        what = "delete " + it->first;
        by_name.erase(it);
        break;
      }
      case 4: {  // pod labels
        auto& p = cluster.pods[g.pick(int(cluster.pods.size()))];
        p.pod.meta.labels["pod"] = g.one<std::string>({"a", "b", "c", "d"});
        if (g.pick(2)) p.pod.meta.labels["tier"] = "web";
        else p.pod.meta.labels.erase("tier");
        what = "relabel pod " + p.pod.meta.name;
        break;
      }
      case 5: {  // namespace labels
        auto& n = cluster.namespaces[g.pick(int(cluster.namespaces.size()))];
        n.meta.labels["ns"] = g.one(kNs);
        what = "relabel ns " + n.meta.name;
        break;
      }
      case 6: {  // endpoint comes or goes
        const auto& p = cluster.pods[g.pick(int(cluster.pods.size()))];
        const PodRef r{p.pod.meta.namespace_, p.pod.meta.name};
        if (!local.erase(r)) local.insert(r);
        what = "toggle endpoint " + r.str();
        break;
      }
      case 7: {  // address change (a re-created sandbox)
        auto& p = cluster.pods[g.pick(int(cluster.pods.size()))];
        p.ips[0] = ip("10.0." + std::to_string(g.pick(3)) + "." +
                      std::to_string(1 + g.pick(5)));
        what = "readdress " + p.pod.meta.name;
        break;
      }
      default: {  // named ports
        auto& p = cluster.pods[g.pick(int(cluster.pods.size()))];
        p.pod.ports[0].name = g.pick(2) ? "web" : "serve-80-tcp";
        p.pod.ports[0].container_port = g.pick(2) ? 80 : 8080;
        what = "ports of " + p.pod.meta.name;
        break;
      }
    }
    PolicySet set;
    for (const auto& [n, p] : by_name) set.policies.push_back(p);
    const auto ids = stable.of(cluster);
    auto d = inc.update(cluster, set, ids, local, cidrs, rules);
    if (!d) continue;  // e.g. too many ranges: the kernel keeps the old
    kernel.apply(*d);
    inc.commit();
    compiled += d->compiled;
    steps++;
    expect_same(inc, cluster, set, ids, local, cidrs, rules, kernel,
                "step " + std::to_string(step) + " (" + what + ")");
    if (HasFailure()) return;
  }
  // Most steps must compile (a generator that only produced errors would
  // test nothing), and incremental must actually save work.
  EXPECT_GT(steps, 80u);
  EXPECT_LT(compiled, steps * local.size());
}

INSTANTIATE_TEST_SUITE_P(Seeds, PolicyIncremental,
                         ::testing::Values(1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u));

TEST(PolicyIncrementalBasics, UnrelatedPolicyTouchesOnlyItsPods) {
  Cluster cluster = make_cluster();
  std::set<PodRef> local;
  for (const auto& p : cluster.pods)
    local.insert({p.pod.meta.namespace_, p.pod.meta.name});
  StableIds stable;
  const auto ids = stable.of(cluster);
  IncrementalCompiler inc;
  CidrIdentities cidrs;
  RuleTable rules;
  PolicySet set;
  auto d = inc.update(cluster, set, ids, local, cidrs, rules);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->full);
  EXPECT_EQ(d->compiled, 9u);
  inc.commit();

  set.policies.push_back(ingress("x", "deny-a", pod_is("a"), {}));
  d = inc.update(cluster, set, ids, local, cidrs, rules);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->full);
  EXPECT_EQ(d->compiled, 1u);
  ASSERT_EQ(d->endpoints.size(), 1u);
  EXPECT_EQ(d->endpoints[0].pod.str(), "x/a");
  EXPECT_TRUE(d->endpoints[0].ingress_enforced);
  inc.commit();

  // Nothing changed: nothing compiled, nothing written.
  d = inc.update(cluster, set, ids, local, cidrs, rules);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->compiled, 0u);
  EXPECT_TRUE(d->endpoints.empty());
  EXPECT_TRUE(d->ipcache_upserts.empty());
  inc.commit();

  // forget(): the next update rewrites everything.
  inc.forget();
  d = inc.update(cluster, set, ids, local, cidrs, rules);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->full);
  EXPECT_EQ(d->endpoints.size(), 9u);
  EXPECT_EQ(d->ipcache_upserts.size(), 18u);
}

TEST(PolicyIncrementalBasics, CompileErrorRemembersNothing) {
  Cluster cluster = make_cluster();
  std::set<PodRef> local{{"x", "a"}};
  StableIds stable;
  const auto ids = stable.of(cluster);
  IncrementalCompiler inc;
  CidrIdentities cidrs;
  RuleTable rules;
  ASSERT_TRUE(inc.update(cluster, {}, ids, local, cidrs, rules));
  inc.commit();
  // 17 disjoint single ports from one peer: more than the datapath holds.
  NetworkPolicyRule r;
  r.peers.push_back(pods(pod_is("b")));
  for (int i = 0; i < 17; i++) r.ports.push_back(port(1000 + 2 * i));
  PolicySet bad{{ingress("x", "many", pod_is("a"), {r})}};
  auto d = inc.update(cluster, bad, ids, local, cidrs, rules);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().find("x/many"), std::string::npos) << d.error();
  inc.commit();  // no-op: nothing pending
  EXPECT_FALSE(inc.installed().at({"x", "a"}).ingress_enforced);
}

}  // namespace
}  // namespace sluice::policy

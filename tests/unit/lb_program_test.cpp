// The load balancer's desired map contents (lb/program.h): frontends per
// Service type, traffic policies, kube-proxy's terminating fallback,
// weights and their scaling, annotations, capacity. Pure: no maps.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <numeric>
#include <string>

#include "expect_has.h"
#include "k8s/manifest.h"
#include "lb/program.h"

using namespace sluice;
using namespace sluice::lb;

namespace {

IpAddr ip(const std::string& s) { return IpAddr::parse(s).value(); }

ProgramInput parse(const std::string& y) {
  ProgramInput in;
  auto r = k8s::parse_manifests(y, "t.yaml");
  EXPECT_TRUE(r) << r.error();
  if (!r) return in;
  for (const auto& o : *r) {
    if (auto* s = o.get<k8s::Service>()) in.services.push_back(*s);
    if (auto* p = o.get<k8s::Pod>()) in.pods.push_back(*p);
    if (auto* e = o.get<k8s::EndpointSlice>()) in.slices.push_back(*e);
  }
  return in;
}

Program compute(const ProgramInput& in) {
  auto p = compute_program(in);
  EXPECT_TRUE(p) << p.error();
  return p ? *p : Program{};
}

// Service x/web (port 80 "http" -> 8080) with `spec` merged in, and a
// slice of `endpoints` (flow-style list items).
std::string web(const std::string& spec, const std::string& endpoints,
                const std::string& annotations = "{}") {
  return "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x, "
         "annotations: " + annotations + "}\nspec: {" + spec +
         (spec.empty() ? "" : ", ") +
         "ports: [{name: http, port: 80, targetPort: 8080}]}\n---\n"
         "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
         "metadata: {name: web-1, namespace: x, labels: "
         "{kubernetes.io/service-name: web}}\naddressType: IPv4\n"
         "ports: [{name: http, port: 8080}]\nendpoints: [" + endpoints + "]\n";
}

const std::string kTwo =
    "{addresses: [10.200.0.5]}, {addresses: [10.200.0.6]}";

FrontendKey fe(const std::string& a, uint16_t port, uint8_t scope,
               uint8_t proto = IPPROTO_TCP) {
  return {ip(a), port, proto, scope};
}

const BackendSet& set_of(const Program& p, const FrontendKey& k) {
  static const BackendSet kNone;
  auto it = p.frontends.find(k);
  if (it == p.frontends.end()) {
    ADD_FAILURE() << "no frontend " << k.str();
    return kNone;
  }
  return p.sets.at(it->second.set);
}

std::vector<std::string> addrs(const BackendSet& s) {
  std::vector<std::string> out;
  for (const auto& m : s.members) out.push_back(m.addr.str());
  return out;
}

constexpr uint8_t kIn = SLUICE_LB_SCOPE_INTERNAL, kEx = SLUICE_LB_SCOPE_EXTERNAL;

TEST(LbProgram, ClusterIPIsOneInternalFrontendPerAddressAndPort) {
  auto p = compute(parse(web("clusterIP: 10.96.0.10", kTwo)));
  ASSERT_EQ(p.frontends.size(), 1u);
  const auto& s = set_of(p, fe("10.96.0.10", 80, kIn));
  EXPECT_EQ(addrs(s), (std::vector<std::string>{"10.200.0.5:8080",
                                                "10.200.0.6:8080"}));
  EXPECT_EQ(s.slots, (std::vector<uint32_t>{1, 1}));  // 100/100 over the GCD
  EXPECT_EQ(s.count(), 2);
  EXPECT_FALSE(s.maglev);
  EXPECT_EQ(s.flags, 0);
  EXPECT_EQ(p.frontends.begin()->second.set.kind, SetKind::All);
  EXPECT_EQ(fe("10.96.0.10", 80, kIn).str(), "10.96.0.10:80/TCP");
}

TEST(LbProgram, HeadlessServicesGetNoFrontend) {
  auto p = compute(parse(web("clusterIP: None", kTwo)));
  EXPECT_TRUE(p.frontends.empty());
  EXPECT_TRUE(p.sets.empty());
}

TEST(LbProgram, DualStackKeepsFamiliesApart) {
  auto in = parse(
      web("clusterIPs: [10.96.0.10, 'fd10:96::10'], ipFamilyPolicy: "
          "RequireDualStack, ipFamilies: [IPv4, IPv6], clusterIP: 10.96.0.10",
          kTwo) +
      "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
      "metadata: {name: web-6, namespace: x, labels: "
      "{kubernetes.io/service-name: web}}\naddressType: IPv6\n"
      "ports: [{name: http, port: 8080}]\n"
      "endpoints: [{addresses: ['fd10:200::5']}]\n");
  auto p = compute(in);
  ASSERT_EQ(p.frontends.size(), 2u);
  EXPECT_EQ(addrs(set_of(p, fe("10.96.0.10", 80, kIn))).size(), 2u);
  EXPECT_EQ(addrs(set_of(p, fe("fd10:96::10", 80, kIn))),
            std::vector<std::string>{"[fd10:200::5]:8080"});
  EXPECT_EQ(fe("fd10:96::10", 80, kIn, IPPROTO_UDP).str(), "[fd10:96::10]:80/UDP");
}

TEST(LbProgram, NodePortOnEveryNodeAddressInBothScopes) {
  auto in = parse(
      "apiVersion: v1\nkind: Service\nmetadata: {name: np, namespace: x}\n"
      "spec: {type: NodePort, clusterIP: 10.96.0.11, ports: [{name: a, port: "
      "80, nodePort: 30080}, {name: b, port: 53, protocol: UDP, nodePort: "
      "30053}]}\n");
  EXPECT_EQ(compute(in).frontends.size(), 2u);  // no node address: ClusterIP only
  in.node_addresses = {ip("198.18.0.1"), ip("198.18.1.1"), ip("2001:db8::1")};
  auto p = compute(in);
  // 2 ports x (1 ClusterIP + 2 IPv4 node addresses x 2 scopes); the IPv6
  // address is skipped: the Service is IPv4 only.
  EXPECT_EQ(p.frontends.size(), 10u);
  for (uint8_t scope : {kIn, kEx}) {
    EXPECT_TRUE(p.frontends.count(fe("198.18.1.1", 30080, scope)));
    EXPECT_TRUE(p.frontends.count(fe("198.18.0.1", 30053, scope, IPPROTO_UDP)));
  }
  EXPECT_FALSE(p.frontends.count(fe("2001:db8::1", 30080, kEx)));
  EXPECT_TRUE(set_of(p, fe("198.18.0.1", 30080, kEx)).members.empty());
}

TEST(LbProgram, LoadBalancerIngressAndExternalIPs) {
  auto p = compute(parse(
      "apiVersion: v1\nkind: Service\nmetadata: {name: lb, namespace: x}\n"
      "spec: {type: LoadBalancer, clusterIP: 10.96.0.12, externalIPs: "
      "[203.0.113.7], ports: [{port: 443, nodePort: 30443}]}\n"
      "status: {loadBalancer: {ingress: [{ip: 203.0.113.1}, {ip: 203.0.113.2, "
      "ipMode: Proxy}, {hostname: lb.example.com}]}}\n"));
  for (uint8_t scope : {kIn, kEx}) {
    EXPECT_TRUE(p.frontends.count(fe("203.0.113.1", 443, scope)));
    EXPECT_TRUE(p.frontends.count(fe("203.0.113.7", 443, scope)));
    // ipMode Proxy: the load balancer proxies, kube-proxy leaves it alone.
    EXPECT_FALSE(p.frontends.count(fe("203.0.113.2", 443, scope)));
  }
  EXPECT_EQ(p.frontends.size(), 5u);
}

TEST(LbProgram, ExternalTrafficPolicyLocal) {
  auto in = parse(web("clusterIP: 10.96.0.10, externalIPs: [203.0.113.7], "
                      "externalTrafficPolicy: Local",
                      kTwo));
  in.local_pods[{"x", "a"}] = {ip("10.200.0.6")};
  auto p = compute(in);
  const auto& ext = p.frontends.at(fe("203.0.113.7", 80, kEx));
  EXPECT_EQ(ext.flags, SLUICE_LB_EXT_LOCAL);
  EXPECT_EQ(ext.set.kind, SetKind::Local);
  EXPECT_EQ(addrs(p.sets.at(ext.set)),
            std::vector<std::string>{"10.200.0.6:8080"});
  // From inside the node external addresses obey neither policy, and the
  // ClusterIP follows internalTrafficPolicy (Cluster).
  EXPECT_EQ(addrs(set_of(p, fe("203.0.113.7", 80, kIn))).size(), 2u);
  EXPECT_EQ(p.frontends.at(fe("203.0.113.7", 80, kIn)).flags, 0);
  EXPECT_EQ(addrs(set_of(p, fe("10.96.0.10", 80, kIn))).size(), 2u);
  EXPECT_EQ(p.sets.size(), 2u);  // All and Local
}

TEST(LbProgram, InternalTrafficPolicyLocal) {
  auto in = parse(web("clusterIP: 10.96.0.10, internalTrafficPolicy: Local", kTwo));
  auto p = compute(in);
  EXPECT_TRUE(set_of(p, fe("10.96.0.10", 80, kIn)).members.empty());  // none local
  in.local_pods[{"x", "a"}] = {ip("10.200.0.5")};
  p = compute(in);
  EXPECT_EQ(addrs(set_of(p, fe("10.96.0.10", 80, kIn))),
            std::vector<std::string>{"10.200.0.5:8080"});
  EXPECT_EQ(p.frontends.begin()->second.set.kind, SetKind::Local);
}

TEST(LbProgram, TerminatingFallbackAsKubeProxy) {
  const std::string eps =
      "{addresses: [10.200.0.5], conditions: {ready: false, serving: true, "
      "terminating: true}}, {addresses: [10.200.0.6], conditions: {ready: "
      "false, serving: false, terminating: true}}, {addresses: [10.200.0.7], "
      "conditions: {ready: false}}";
  auto p = compute(parse(web("clusterIP: 10.96.0.10", eps)));
  const auto& s = set_of(p, fe("10.96.0.10", 80, kIn));
  EXPECT_EQ(addrs(s), std::vector<std::string>{"10.200.0.5:8080"});
  EXPECT_TRUE(s.terminating_fallback);
  // One ready endpoint: the terminating ones take no new connections.
  p = compute(parse(web("clusterIP: 10.96.0.10", eps + ", {addresses: [10.200.0.8]}")));
  EXPECT_EQ(addrs(set_of(p, fe("10.96.0.10", 80, kIn))),
            std::vector<std::string>{"10.200.0.8:8080"});
  // Nothing serving: count 0, the datapath rejects.
  p = compute(parse(web("clusterIP: 10.96.0.10",
                        "{addresses: [10.200.0.6], conditions: {ready: false, "
                        "serving: false, terminating: true}}")));
  EXPECT_EQ(set_of(p, fe("10.96.0.10", 80, kIn)).count(), 0);
}

TEST(LbProgram, LocalSetFallsBackToLocalTerminatingOnly) {
  auto in = parse(web("clusterIP: 10.96.0.10, internalTrafficPolicy: Local",
                      "{addresses: [10.200.0.5]}, {addresses: [10.200.0.6], "
                      "conditions: {ready: false, serving: true, terminating: "
                      "true}}"));
  in.local_pods[{"x", "b"}] = {ip("10.200.0.6")};
  auto p = compute(in);
  const auto& s = set_of(p, fe("10.96.0.10", 80, kIn));
  EXPECT_EQ(addrs(s), std::vector<std::string>{"10.200.0.6:8080"});
  EXPECT_TRUE(s.terminating_fallback);
}

TEST(LbProgram, WeightsFromServiceAndPodAnnotations) {
  auto in = parse(
      web("clusterIP: 10.96.0.10",
          "{addresses: [10.200.0.5]}, {addresses: [10.200.0.6]}, {addresses: "
          "[10.200.0.7], targetRef: {kind: Pod, name: canary}}, {addresses: "
          "[10.200.0.8]}, {addresses: [10.200.0.9]}",
          "{sluice.io/backend-weights: '10.200.0.5=90, 10.200.0.6:8080=10, "
          "10.200.0.6=50, 10.200.0.8=0'}") +
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: canary, namespace: x, "
      "annotations: {sluice.io/lb-weight: '20'}}\nspec: {containers: []}\n");
  auto p = compute(in);
  const auto& s = set_of(p, fe("10.96.0.10", 80, kIn));
  // .5 = 90, .6 = 10 (ip:port beats ip), .7 = 20 (its Pod), .8 = 0 (no new
  // connections), .9 unlisted = 100; divided by the GCD 10.
  EXPECT_EQ(addrs(s), (std::vector<std::string>{"10.200.0.5:8080", "10.200.0.6:8080",
                                                "10.200.0.7:8080", "10.200.0.9:8080"}));
  EXPECT_EQ(s.members[1].weight, 10u);
  EXPECT_EQ(s.slots, (std::vector<uint32_t>{9, 1, 2, 10}));
  EXPECT_EQ(s.count(), 22);
}

TEST(LbProgram, SlotCountsScaleDownAndKeepEveryBackend) {
  const std::vector<uint32_t> w = {10000, 1, 5000};
  auto s = slot_counts(w, 1024);
  ASSERT_TRUE(s) << s.error();
  EXPECT_LE(std::accumulate(s->begin(), s->end(), 0u), 1024u);
  EXPECT_EQ((*s)[1], 1u);
  EXPECT_NEAR(double((*s)[0]) / (*s)[2], 2.0, 0.01);
  std::vector<uint32_t> many(1024, 7);
  many[0] = 10000;
  s = slot_counts(many, 1024);
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(std::accumulate(s->begin(), s->end(), 0u), 1024u);
  EXPECT_EQ(*std::min_element(s->begin(), s->end()), 1u);
  many.push_back(1);
  s = slot_counts(many, 1024);
  ASSERT_FALSE(s);
  EXPECT_HAS(s.error(), "1025 backends exceed SLUICE_LB_SLOTS_PER_SVC (1024)");
}

TEST(LbProgram, TooManyBackendsForRandomNamesTheLimit) {
  auto in = parse(web("clusterIP: 10.96.0.10", kTwo));
  auto& eps = in.slices[0].endpoints;  // (more than one slice may hold)
  eps.clear();
  for (int i = 0; i < 1025; i++) {
    k8s::Endpoint e;
    e.addresses = {"10.201." + std::to_string(i / 250) + "." +
                   std::to_string(i % 250 + 1)};
    eps.push_back(e);
  }
  auto p = compute_program(in);
  ASSERT_FALSE(p);
  EXPECT_HAS(p.error(), "Service x/web port http: 1025 backends exceed "
                        "SLUICE_LB_SLOTS_PER_SVC (1024)");
  in.services[0].meta.annotations["sluice.io/lb-algorithm"] = "maglev";
  EXPECT_TRUE(compute_program(in));  // Maglev tables have no such limit
}

TEST(LbProgram, AlgorithmAffinityAndCap) {
  auto in = parse(web("clusterIP: 10.96.0.10, sessionAffinity: ClientIP", kTwo,
                      "{sluice.io/lb-algorithm: maglev, "
                      "sluice.io/maglev-table-size: '1021', "
                      "sluice.io/max-connections-per-backend: '50'}"));
  auto p = compute(in);
  const auto& s = set_of(p, fe("10.96.0.10", 80, kIn));
  EXPECT_TRUE(s.maglev);
  EXPECT_EQ(s.maglev_m, 1021u);
  EXPECT_EQ(s.flags, SLUICE_LB_MAGLEV | SLUICE_LB_AFFINITY);
  EXPECT_EQ(s.affinity_s, 10800u);  // the API default
  EXPECT_EQ(s.conn_cap, 50u);
  EXPECT_EQ(s.count(), 2);
  EXPECT_TRUE(s.slots.empty());
  // The agent default applies without the annotation; "random" opts out.
  in.services[0].meta.annotations.clear();
  in.algorithm = k8s::LbAlgorithm::Maglev;
  in.maglev_table_size = 251;
  EXPECT_EQ(set_of(compute(in), fe("10.96.0.10", 80, kIn)).maglev_m, 251u);
  in.services[0].meta.annotations["sluice.io/lb-algorithm"] = "random";
  EXPECT_FALSE(set_of(compute(in), fe("10.96.0.10", 80, kIn)).maglev);
}

TEST(LbProgram, InvalidAnnotationsAreRejectedAtApplyNamingTheKey) {
  auto error = [](const std::string& ann) {
    auto r = k8s::parse_manifests(web("clusterIP: 10.96.0.10", kTwo, ann), "t.yaml");
    EXPECT_FALSE(r) << ann;
    return r ? std::string() : r.error();
  };
  EXPECT_HAS(error("{sluice.io/backend-weights: '10.200.0.5=90,oops'}"),
             "metadata.annotations[sluice.io/backend-weights]: Invalid value "
             "\"10.200.0.5=90,oops\": entry 2 (\"oops\"): expected ADDRESS=WEIGHT");
  EXPECT_HAS(error("{sluice.io/backend-weights: '10.200.0.5=10001'}"),
             "weight \"10001\" is not an integer in 0..10000");
  EXPECT_HAS(error("{sluice.io/backend-weights: 'web=1'}"),
             "\"web\" is not an IP address, IP:port or [IPv6]:port");
  EXPECT_HAS(error("{sluice.io/backend-weights: '10.0.0.1=1,10.0.0.1=2'}"),
             "duplicate address");
  EXPECT_HAS(error("{sluice.io/lb-algorithm: roundrobin}"),
             "metadata.annotations[sluice.io/lb-algorithm]: Invalid value "
             "\"roundrobin\": supported values: \"maglev\", \"random\"");
  EXPECT_HAS(error("{sluice.io/maglev-table-size: '1000'}"),
             "metadata.annotations[sluice.io/maglev-table-size]: Invalid value "
             "\"1000\": 1000 is not a prime");
  EXPECT_HAS(error("{sluice.io/max-connections-per-backend: '0'}"),
             "metadata.annotations[sluice.io/max-connections-per-backend]");
  auto pod = k8s::parse_manifests(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, "
      "annotations: {sluice.io/lb-weight: heavy}}\nspec: {containers: []}\n",
      "p.yaml");
  ASSERT_FALSE(pod);
  EXPECT_HAS(pod.error(), "metadata.annotations[sluice.io/lb-weight]: Invalid "
                          "value \"heavy\"");
  auto ok = k8s::parse_backend_weights("[fd10::5]:8080=3, fd10::6=4, 10.0.0.1:80=0");
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ((*ok)[0].port, 8080);
  EXPECT_EQ((*ok)[1].ip, ip("fd10::6"));
  EXPECT_FALSE((*ok)[1].port);
  EXPECT_EQ((*ok)[2].weight, 0u);
}

TEST(LbProgram, InvalidStoredAnnotationsAreIgnoredWithAWarning) {
  auto in = parse(web("clusterIP: 10.96.0.10", kTwo));
  in.services[0].meta.annotations["sluice.io/backend-weights"] = "bogus";
  auto p = compute(in);
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_HAS(p.warnings[0], "Service x/web: sluice.io/backend-weights: entry 1");
  EXPECT_EQ(set_of(p, fe("10.96.0.10", 80, kIn)).slots,
            (std::vector<uint32_t>{1, 1}));
}

TEST(LbProgram, AFrontendTwoServicesClaimGoesToTheFirst) {
  auto in = parse(web("clusterIP: 10.96.0.10, externalIPs: [203.0.113.7]", kTwo));
  auto other = in.services[0];
  other.meta.name = "aaa";
  other.cluster_ips = {"10.96.0.11"};
  other.cluster_ip = "10.96.0.11";
  in.services.push_back(other);
  auto p = compute(in);
  EXPECT_EQ(p.frontends.at(fe("203.0.113.7", 80, kEx)).set.service, "x/aaa");
  ASSERT_EQ(p.warnings.size(), 2u);  // both scopes
  EXPECT_HAS(p.warnings[0], "Service x/web: frontend 203.0.113.7:80/TCP is "
                            "already Service x/aaa's (skipped)");
}

TEST(LbProgram, AssignSlotsMovesAsLittleAsItCan) {
  // 4 backends, one slot each; backend 3 leaves, 9 arrives: one slot changes.
  std::vector<uint32_t> prev = {1, 2, 3, 4};
  auto next = assign_slots(prev, {{1, 1}, {2, 1}, {4, 1}, {9, 1}});
  EXPECT_EQ(next, (std::vector<uint32_t>{1, 2, 9, 4}));
  // Shrinking: survivors beyond the new size move into the holes.
  next = assign_slots(prev, {{4, 1}, {2, 1}});
  EXPECT_EQ(next, (std::vector<uint32_t>{4, 2}));
  // Weights: 1 goes from one slot to three.
  next = assign_slots(prev, {{1, 3}, {2, 1}});
  EXPECT_EQ(next, (std::vector<uint32_t>{1, 2, 1, 1}));
}

TEST(LbProgram, CapacityIsCheckedAgainstEveryLimit) {
  auto in = parse(web("clusterIP: 10.96.0.10, externalIPs: [203.0.113.7]", kTwo));
  auto p = compute(in);
  const Usage u = usage(p);
  EXPECT_EQ(u.frontends, 3u);
  EXPECT_EQ(u.sets, 1u);
  EXPECT_EQ(u.slots, 2u);
  EXPECT_EQ(u.backends, 2u);
  EXPECT_TRUE(check_capacity(u));
  Limits l;
  l.frontends = 2;
  EXPECT_HAS(check_capacity(u, l).error(),
             "load balancer: 3 frontends exceed SLUICE_LB_SVC_MAX (2); nothing "
             "was changed");
  l = {};
  l.slots = 1;
  EXPECT_HAS(check_capacity(u, l).error(), "SLUICE_LB_SLOTS_MAX (1)");
  l = {};
  l.backends = 1;
  EXPECT_HAS(check_capacity(u, l).error(), "2 backends exceed SLUICE_LB_BE_MAX");
  l = {};
  l.sets = 0;
  EXPECT_HAS(check_capacity(u, l).error(), "SLUICE_LB_SVC_IDS_MAX - 1");
}

TEST(LbProgram, BuilderRecomputesOnlyWhatAChangeCanTouch) {
  // x/web: slices only; x/sel: a selector; z/np: NodePort; z/loc: ITP Local.
  auto in = parse(
      web("clusterIP: 10.96.0.10", kTwo) +
      "---\napiVersion: v1\nkind: Service\nmetadata: {name: sel, namespace: x}\n"
      "spec: {clusterIP: 10.96.0.11, selector: {app: a}, ports: [{port: 80}]}\n"
      "---\napiVersion: v1\nkind: Service\nmetadata: {name: np, namespace: z}\n"
      "spec: {type: NodePort, clusterIP: 10.96.0.12, ports: [{port: 80, nodePort: 30080}]}\n"
      "---\napiVersion: v1\nkind: Service\nmetadata: {name: loc, namespace: z}\n"
      "spec: {clusterIP: 10.96.0.13, internalTrafficPolicy: Local, ports: [{port: 80}]}\n"
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\n"
      "spec: {containers: []}\n");
  ProgramBuilder b;
  auto d = b.update(in);
  ASSERT_TRUE(d) << d.error();
  EXPECT_TRUE(d->all);
  EXPECT_EQ(d->recomputed, 4u);
  EXPECT_EQ(b.program().frontends.size(), 4u);
  // Nothing changed: nothing recomputed, an empty delta.
  d = b.update(in);
  EXPECT_EQ(d->recomputed, 0u);
  EXPECT_TRUE(d->sets.empty() && d->frontends.empty() && !d->all);
  // One slice changed: that Service alone, its set and frontend in the delta.
  in.slices[0].endpoints.pop_back();
  d = b.update(in);
  EXPECT_EQ(d->recomputed, 1u);
  EXPECT_EQ(d->frontends, (std::set<FrontendKey>{fe("10.96.0.10", 80, kIn)}));
  EXPECT_EQ(addrs(set_of(b.program(), fe("10.96.0.10", 80, kIn))),
            std::vector<std::string>{"10.200.0.5:8080"});
  // A local endpoint in x: x/sel (its selector); not z/loc (Local sets),
  // which has no backend at that address.
  in.local_pods[{"x", "a"}] = {ip("10.200.0.9")};
  d = b.update(in);
  EXPECT_EQ(d->recomputed, 1u);
  EXPECT_EQ(addrs(set_of(b.program(), fe("10.96.0.11", 80, kIn))),
            std::vector<std::string>{"10.200.0.9:80"});
  // z/loc gets a backend at 10.200.0.20 (its slice: itself alone), not
  // local: an empty Local set. A local endpoint there reaches z/loc alone.
  auto more = parse(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
      "metadata: {name: loc-1, namespace: z, labels: "
      "{kubernetes.io/service-name: loc}}\naddressType: IPv4\n"
      "ports: [{port: 80}]\nendpoints: [{addresses: [10.200.0.20]}]\n");
  in.slices.push_back(more.slices.at(0));
  d = b.update(in);
  EXPECT_EQ(d->recomputed, 1u);
  EXPECT_TRUE(set_of(b.program(), fe("10.96.0.13", 80, kIn)).members.empty());
  in.local_pods[{"z", "b"}] = {ip("10.200.0.20")};
  d = b.update(in);
  EXPECT_EQ(d->recomputed, 1u);
  EXPECT_EQ(addrs(set_of(b.program(), fe("10.96.0.13", 80, kIn))),
            std::vector<std::string>{"10.200.0.20:80"});
  // A node address: the NodePort Service alone.
  in.node_addresses = {ip("198.18.0.1")};
  d = b.update(in);
  EXPECT_EQ(d->recomputed, 1u);
  EXPECT_EQ(b.program().frontends.size(), 6u);
  // A Service removed: its frontends and sets leave the program.
  in.services.erase(in.services.begin());
  d = b.update(in);
  EXPECT_EQ(d->recomputed, 0u);
  EXPECT_FALSE(b.program().frontends.count(fe("10.96.0.10", 80, kIn)));
  EXPECT_EQ(d->frontends.size(), 1u);
  // A default changed: everything.
  in.algorithm = k8s::LbAlgorithm::Maglev;
  in.maglev_table_size = 251;
  d = b.update(in);
  EXPECT_TRUE(d->all);
  EXPECT_EQ(d->recomputed, 3u);
}

}  // namespace

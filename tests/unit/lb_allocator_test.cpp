// Cluster IP and node port allocation (lb::Allocator) and its use inside
// ClusterState's all-or-nothing apply, including persistence.
#include <gtest/gtest.h>

#include "expect_has.h"

#include <string>

#include "k8s/manifest.h"
#include "lb/allocator.h"
#include "state/cluster_state.h"
#include "store_fixture.h"

using namespace sluice;
using namespace sluice::k8s;
using lb::Allocator;
using lb::ServiceRanges;

namespace {


std::string svc_yaml(const std::string& name, const std::string& spec,
                     const std::string& ns = "x") {
  return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name +
         ", namespace: " + ns + "}\nspec: " + spec + "\n";
}

// A decoded (not yet allocated) Service.
Service decoded(const std::string& name, const std::string& spec) {
  auto r = parse_manifests(svc_yaml(name, spec), "t.yaml");
  EXPECT_TRUE(r) << r.error();
  if (!r || r->empty()) return {};
  return *(*r)[0].get<Service>();
}

const std::string kP80 = "ports: [{port: 80}]";

ServiceRanges ranges(const std::string& v4, const std::string& v6,
                     const std::string& np = "30000-32767") {
  auto r = ServiceRanges::parse(v4, v6, np);
  EXPECT_TRUE(r) << r.error();
  return r ? *r : ServiceRanges{};
}

IpAddr ip(const std::string& s) { return IpAddr::parse(s).value(); }

// Allocates a fresh Service; returns it (allocated) or fails the test.
Service alloc_ok(Allocator& a, const std::string& name, const std::string& spec,
                 const Service* old = nullptr) {
  Service s = decoded(name, spec);
  auto st = a.allocate(s, old);
  EXPECT_TRUE(st) << st.error();
  return s;
}
std::string alloc_err(Allocator& a, const std::string& name,
                      const std::string& spec, const Service* old = nullptr) {
  Service s = decoded(name, spec);
  auto st = a.allocate(s, old);
  EXPECT_FALSE(st) << "allocated " << name;
  return st ? std::string() : st.error();
}

}  // namespace

// --- ranges -----------------------------------------------------------------

TEST(ServiceRanges, DefaultsParseAndValidate) {
  ServiceRanges d;
  EXPECT_EQ(d.v4->str(), "10.96.0.0/12");
  EXPECT_EQ(d.v6->str(), "fd10:96::/108");
  EXPECT_EQ(d.node_port_min, 30000);
  EXPECT_EQ(d.node_port_max, 32767);
  EXPECT_TRUE(d.dual_stack());
  EXPECT_TRUE(d.validate());

  auto r = ServiceRanges::parse("10.100.0.0/16", "", "31000-31999");
  ASSERT_TRUE(r) << r.error();
  EXPECT_FALSE(r->v6);
  EXPECT_FALSE(r->dual_stack());
  EXPECT_EQ(r->primary(), IpFamily::IPv4);
  EXPECT_EQ(r->node_port_min, 31000);
  EXPECT_EQ(ServiceRanges::parse("", "fd00::/112", "1-2")->primary(),
            IpFamily::IPv6);

  EXPECT_HAS(ServiceRanges::parse("fd00::/112", "", "30000-32767").error(),
             "serviceCIDR: \"fd00::/112\" is not an IPv4 CIDR");
  EXPECT_HAS(ServiceRanges::parse("10.96.0.1/12", "", "30000-32767").error(),
             "serviceCIDR: invalid CIDR \"10.96.0.1/12\": host bits set");
  EXPECT_HAS(ServiceRanges::parse("", "fd00::/64", "30000-32767").error(),
             "serviceCIDRv6: \"fd00::/64\": the prefix length must be between "
             "96 and 126");
  EXPECT_HAS(ServiceRanges::parse("", "", "30000-32767").error(),
             "at least one service range");
  EXPECT_HAS(ServiceRanges::parse("10.0.0.0/31", "", "30000-32767").error(),
             "too small");
  EXPECT_HAS(ServiceRanges::parse("10.0.0.0/24", "", "32767-30000").error(),
             "nodePortRange");
  EXPECT_HAS(ServiceRanges::parse("10.0.0.0/24", "", "30000").error(),
             "nodePortRange: \"30000\" is not a range like 30000-32767");
}

TEST(ServiceRanges, StaticBandLikeUpstream) {
  EXPECT_EQ(lb::static_band(16, 16, 16, 256), 0u);
  EXPECT_EQ(lb::static_band(32, 16, 16, 256), 16u);
  EXPECT_EQ(lb::static_band(1024, 16, 16, 256), 64u);
  EXPECT_EQ(lb::static_band(1 << 20, 16, 16, 256), 256u);
  EXPECT_EQ(lb::static_band(2768, 16, 32, 128), 86u);
}

// --- cluster IPs ------------------------------------------------------------

TEST(LbAllocator, DynamicClusterIPsComeFromTheUpperRangeInOrder) {
  Allocator a;
  const Service s1 = alloc_ok(a, "a", "{" + kP80 + "}");
  EXPECT_EQ(s1.cluster_ip, "10.96.1.1") << "above the 256-address static band";
  EXPECT_EQ(s1.cluster_ips, (std::vector<std::string>{"10.96.1.1"}));
  EXPECT_EQ(s1.ip_families, (std::vector<IpFamily>{IpFamily::IPv4}));
  EXPECT_EQ(s1.ip_family_policy, IpFamilyPolicy::SingleStack);
  EXPECT_EQ(alloc_ok(a, "b", "{" + kP80 + "}").cluster_ip, "10.96.1.2");
  EXPECT_EQ(a.ip_holder(ip("10.96.1.1")), "x/a");
  // A freed address is not handed out again right away (next-fit).
  a.release(s1);
  EXPECT_FALSE(a.ip_holder(ip("10.96.1.1")));
  EXPECT_EQ(alloc_ok(a, "c", "{" + kP80 + "}").cluster_ip, "10.96.1.3");
  const Service v6 = alloc_ok(a, "d", "{ipFamilies: [IPv6], " + kP80 + "}");
  EXPECT_EQ(v6.cluster_ip, "fd10:96::101");
  EXPECT_EQ(v6.ip_families, (std::vector<IpFamily>{IpFamily::IPv6}));
}

TEST(LbAllocator, RequestedClusterIPs) {
  Allocator a;
  const Service dns =
      alloc_ok(a, "dns", "{clusterIP: 10.96.0.10, " + kP80 + "}");
  EXPECT_EQ(dns.cluster_ips, (std::vector<std::string>{"10.96.0.10"}));
  EXPECT_EQ(alloc_err(a, "dns2", "{clusterIP: 10.96.0.10, " + kP80 + "}"),
            "spec.clusterIPs[0]: Invalid value \"10.96.0.10\": failed to "
            "allocate IP 10.96.0.10: provided IP is already allocated (to "
            "Service x/dns)");
  for (const char* bad : {"10.95.255.255", "10.96.0.0", "10.111.255.255"})
    EXPECT_EQ(alloc_err(a, "out",
                        "{clusterIP: " + std::string(bad) + ", " + kP80 + "}"),
              "spec.clusterIPs[0]: Invalid value \"" + std::string(bad) +
                  "\": failed to allocate IP " + bad +
                  ": provided IP is not in the valid range. The range of "
                  "valid IPs is 10.96.0.0/12")
        << "outside, network address, broadcast address";
  EXPECT_EQ(alloc_ok(a, "last", "{clusterIP: 10.111.255.254, " + kP80 + "}")
                .cluster_ip,
            "10.111.255.254");
  EXPECT_EQ(alloc_ok(a, "v6", "{clusterIP: \"fd10:96::f:ffff\", " + kP80 + "}")
                .ip_families,
            (std::vector<IpFamily>{IpFamily::IPv6}))
      << "the family follows a requested IPv6 address; the last IPv6 "
         "address is usable";
  EXPECT_HAS(
      alloc_err(a, "v6b", "{clusterIP: \"fd10:96:0::f:ffff\", " + kP80 + "}"),
      "provided IP is already allocated (to Service x/v6)")
      << "compared as addresses, not strings";
}

TEST(LbAllocator, IpFamiliesDefaultFromPolicyAndRanges) {
  Allocator a;
  const Service pref =
      alloc_ok(a, "pref", "{ipFamilyPolicy: PreferDualStack, " + kP80 + "}");
  EXPECT_EQ(pref.ip_families,
            (std::vector<IpFamily>{IpFamily::IPv4, IpFamily::IPv6}));
  EXPECT_EQ(pref.cluster_ips,
            (std::vector<std::string>{"10.96.1.1", "fd10:96::101"}));
  const Service req6 = alloc_ok(
      a, "req6",
      "{ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv6], " + kP80 + "}");
  EXPECT_EQ(req6.ip_families,
            (std::vector<IpFamily>{IpFamily::IPv6, IpFamily::IPv4}));
  EXPECT_EQ(req6.cluster_ips,
            (std::vector<std::string>{"fd10:96::102", "10.96.1.2"}));
  const Service two =
      alloc_ok(a, "two", "{ipFamilies: [IPv4, IPv6], " + kP80 + "}");
  EXPECT_EQ(two.ip_family_policy, IpFamilyPolicy::RequireDualStack)
      << "two families without a policy require dual-stack";
  EXPECT_EQ(
      alloc_err(a, "single",
                "{ipFamilyPolicy: SingleStack, ipFamilies: [IPv4, IPv6], " +
                    kP80 + "}"),
      "spec.ipFamilyPolicy: Invalid value \"SingleStack\": when multiple "
      "IP families are specified, IP family policy must be "
      "RequireDualStack or PreferDualStack");
  const Service dual_ips = alloc_ok(a, "ips",
                                    "{clusterIP: \"fd10:96::50\", clusterIPs: "
                                    "[\"fd10:96::50\", 10.96.0.50], " +
                                        kP80 + "}");
  EXPECT_EQ(dual_ips.ip_families,
            (std::vector<IpFamily>{IpFamily::IPv6, IpFamily::IPv4}));
  EXPECT_EQ(dual_ips.ip_family_policy, IpFamilyPolicy::RequireDualStack);

  Allocator v4only(ranges("10.96.0.0/24", ""));
  EXPECT_EQ(
      alloc_ok(v4only, "p", "{ipFamilyPolicy: PreferDualStack, " + kP80 + "}")
          .ip_families,
      (std::vector<IpFamily>{IpFamily::IPv4}))
      << "preferred, not required";
  EXPECT_EQ(alloc_err(v4only, "r",
                      "{ipFamilyPolicy: RequireDualStack, " + kP80 + "}"),
            "spec.ipFamilyPolicy: Invalid value \"RequireDualStack\": this "
            "cluster is not configured for dual-stack services");
  EXPECT_EQ(alloc_err(v4only, "six", "{ipFamilies: [IPv6], " + kP80 + "}"),
            "spec.ipFamilies[0]: Invalid value \"IPv6\": not configured on "
            "this cluster");
  Allocator v6only(ranges("", "fd00::/120"));
  EXPECT_EQ(alloc_ok(v6only, "s", "{" + kP80 + "}").cluster_ip, "fd00::11")
      << "IPv6 is primary when it is the only family (static band of 16)";
}

TEST(LbAllocator, HeadlessServices) {
  Allocator a;
  const Service bare = alloc_ok(a, "bare", "{clusterIP: None}");
  EXPECT_EQ(bare.cluster_ip, "None");
  EXPECT_EQ(bare.cluster_ips, (std::vector<std::string>{"None"}));
  EXPECT_EQ(bare.ip_family_policy, IpFamilyPolicy::PreferDualStack)
      << "headless without selector: every family the cluster has";
  EXPECT_EQ(bare.ip_families,
            (std::vector<IpFamily>{IpFamily::IPv4, IpFamily::IPv6}));
  const Service sel =
      alloc_ok(a, "sel", "{clusterIP: None, selector: {app: db}}");
  EXPECT_EQ(sel.ip_family_policy, IpFamilyPolicy::SingleStack);
  EXPECT_EQ(sel.ip_families, (std::vector<IpFamily>{IpFamily::IPv4}));
  EXPECT_EQ(a.ips_held(), 0u) << "headless Services hold no address";
}

TEST(LbAllocator, RangeExhaustionAndRecovery) {
  // /29: 8 addresses, 6 usable (network and broadcast excluded), no band.
  Allocator a(ranges("10.96.0.0/29", ""));
  std::vector<Service> held;
  for (const char* name : {"s0", "s1", "s2", "s3", "s4", "s5"})
    held.push_back(alloc_ok(a, name, "{" + kP80 + "}"));
  EXPECT_EQ(held[0].cluster_ip, "10.96.0.1");
  EXPECT_EQ(held[5].cluster_ip, "10.96.0.6");
  EXPECT_EQ(alloc_err(a, "full", "{" + kP80 + "}"),
            "spec.clusterIPs[0]: failed to allocate a serviceIP: range is full "
            "(10.96.0.0/29)");
  EXPECT_EQ(a.ips_held(), 6u) << "a failed allocation holds nothing";
  a.release(held[2]);
  EXPECT_EQ(alloc_ok(a, "again", "{" + kP80 + "}").cluster_ip, "10.96.0.3");
  // The second family failing releases the first.
  Allocator d(ranges("10.96.0.0/29", "fd00::/126"));
  for (int i = 0; i < 3; i++)
    alloc_ok(d, std::string(1, char('a' + i)),
             "{ipFamilies: [IPv6], " + kP80 + "}");
  EXPECT_EQ(
      alloc_err(d, "dual", "{ipFamilyPolicy: RequireDualStack, " + kP80 + "}"),
      "spec.clusterIPs[1]: failed to allocate a serviceIP: range is full "
      "(fd00::/126)");
  EXPECT_FALSE(d.ip_holder(ip("10.96.0.1")));
}

// --- node ports -------------------------------------------------------------

TEST(LbAllocator, NodePorts) {
  Allocator a;
  const Service np = alloc_ok(
      a, "np",
      "{type: NodePort, ports: [{name: a, port: 80}, {name: b, port: 443, "
      "nodePort: 30443}]}");
  EXPECT_EQ(np.ports[0].node_port, 30086) << "above the static band of 86";
  EXPECT_EQ(np.ports[1].node_port, 30443);
  EXPECT_EQ(a.node_port_holder(30443), "x/np");
  EXPECT_EQ(alloc_err(a, "np2",
                      "{type: NodePort, ports: [{port: 80, nodePort: "
                      "30443}]}"),
            "spec.ports[0].nodePort: Invalid value 30443: provided port is "
            "already allocated (to Service x/np)");
  EXPECT_EQ(alloc_err(a, "np3",
                      "{type: NodePort, ports: [{port: 80, nodePort: "
                      "8080}]}"),
            "spec.ports[0].nodePort: Invalid value 8080: provided port is not "
            "in the valid range. The range of valid ports is 30000-32767");
  EXPECT_EQ(alloc_err(a, "np4",
                      "{type: LoadBalancer, ports: [{port: 80, "
                      "nodePort: 32768}]}"),
            "spec.ports[0].nodePort: Invalid value 32768: provided port is not "
            "in the valid range. The range of valid ports is 30000-32767");
  const Service dns = alloc_ok(
      a, "dns",
      "{type: NodePort, ports: [{name: tcp, port: 53, nodePort: 30053}, "
      "{name: udp, port: 53, protocol: UDP, nodePort: 30053}]}");
  EXPECT_EQ(dns.ports[1].node_port, 30053) << "shared across protocols";
  const Service lb = alloc_ok(a, "lb",
                              "{type: LoadBalancer, ports: [{name: a, "
                              "port: 80}, {name: b, port: 81}]}");
  EXPECT_EQ(lb.ports[0].node_port, 30087);
  EXPECT_EQ(lb.ports[1].node_port, 30088);
  const Service none = alloc_ok(
      a, "none",
      "{type: LoadBalancer, allocateLoadBalancerNodePorts: false, ports: "
      "[{name: a, port: 80}, {name: b, port: 81, nodePort: 31081}]}");
  EXPECT_EQ(none.ports[0].node_port, 0);
  EXPECT_EQ(none.ports[1].node_port, 31081) << "given ones are still held";
  EXPECT_EQ(a.node_port_holder(31081), "x/none");
  EXPECT_EQ(alloc_ok(a, "cip", "{" + kP80 + "}").ports[0].node_port, 0);
}

TEST(LbAllocator, NodePortExhaustion) {
  Allocator a(ranges("10.96.0.0/24", "", "30000-30003"));
  alloc_ok(a, "a",
           "{type: NodePort, ports: [{name: a, port: 1}, {name: b, "
           "port: 2}, {name: c, port: 3}]}");
  const Service d = alloc_ok(a, "d", "{type: NodePort, ports: [{port: 4}]}");
  EXPECT_EQ(alloc_err(a, "e",
                      "{type: NodePort, ports: [{name: p, port: 80}, "
                      "{name: q, port: 81}]}"),
            "spec.ports[0].nodePort: failed to allocate a nodePort: range is "
            "full (30000-30003)");
  EXPECT_EQ(a.node_ports_held(), 4u);
  EXPECT_EQ(a.ips_held(), 2u)
      << "the cluster IP found before the node port failed is not held";
  a.release(d);
  EXPECT_EQ(alloc_ok(a, "f", "{type: NodePort, ports: [{port: 4}]}")
                .ports[0]
                .node_port,
            d.ports[0].node_port);
}

// --- stability across re-applies ---------------------------------------------

TEST(LbAllocator, ReapplyKeepsClusterIPsAndNodePorts) {
  Allocator a;
  const std::string spec =
      "{type: NodePort, ipFamilyPolicy: PreferDualStack, ports: [{name: http, "
      "port: 80}, {name: https, port: 443}]}";
  const Service first = alloc_ok(a, "web", spec);
  alloc_ok(a, "other", "{" + kP80 + "}");  // moves the cursors
  const Service again = alloc_ok(a, "web", spec, &first);
  EXPECT_EQ(again, first) << "same manifest, same result";
  EXPECT_EQ(a.ip_holder(ip(first.cluster_ips[1])), "x/web");

  // Ports matched by name: a renamed/added port gets a new node port, the
  // others keep theirs; a dropped port frees its own.
  const Service changed = alloc_ok(
      a, "web",
      "{type: NodePort, ipFamilyPolicy: PreferDualStack, ports: [{name: "
      "https, port: 8443}, {name: admin, port: 9000}]}",
      &again);
  EXPECT_EQ(changed.ports[0].node_port, first.ports[1].node_port);
  EXPECT_NE(changed.ports[1].node_port, first.ports[0].node_port);
  EXPECT_FALSE(a.node_port_holder(uint16_t(first.ports[0].node_port)));
  EXPECT_EQ(changed.cluster_ips, first.cluster_ips);

  // Explicitly the same address is fine; another one is not.
  EXPECT_TRUE(alloc_ok(a, "web",
                       "{type: NodePort, clusterIP: " + first.cluster_ip +
                           ", ipFamilyPolicy: PreferDualStack, ports: [{name: "
                           "https, port: 8443}, {name: admin, port: 9000}]}",
                       &changed) == changed);
  EXPECT_EQ(alloc_err(a, "web",
                      "{type: NodePort, clusterIP: 10.96.0.99, ports: [{port: "
                      "80}]}",
                      &changed),
            "spec.clusterIPs[0]: Invalid value [10.96.0.99]: may not change "
            "once set (it is \"" +
                first.cluster_ip + "\")");
  EXPECT_EQ(a.ip_holder(ip(first.cluster_ip)), "x/web")
      << "a failed re-apply keeps what the stored Service held";
  EXPECT_EQ(alloc_err(a, "web", "{clusterIP: None}", &changed),
            "spec.clusterIPs[0]: Invalid value [None]: may not change once set "
            "(it is \"" +
                first.cluster_ip + "\")");
}

TEST(LbAllocator, TypeAndFamilyChanges) {
  Allocator a;
  const Service np = alloc_ok(a, "web", "{type: NodePort, " + kP80 + "}");
  const Service cip = alloc_ok(a, "web", "{" + kP80 + "}", &np);
  EXPECT_EQ(cip.ports[0].node_port, 0);
  EXPECT_FALSE(a.node_port_holder(uint16_t(np.ports[0].node_port)))
      << "NodePort -> ClusterIP frees the node port";
  EXPECT_EQ(cip.cluster_ip, np.cluster_ip);

  // Upgrade to dual-stack keeps the primary; downgrade releases the second.
  const Service dual = alloc_ok(
      a, "web", "{ipFamilyPolicy: PreferDualStack, " + kP80 + "}", &cip);
  ASSERT_EQ(dual.cluster_ips.size(), 2u);
  EXPECT_EQ(dual.cluster_ips[0], cip.cluster_ip);
  const Service kept = alloc_ok(a, "web", "{" + kP80 + "}", &dual);
  EXPECT_EQ(kept.cluster_ips, dual.cluster_ips)
      << "without a policy, the stored two addresses mean RequireDualStack";
  EXPECT_EQ(kept.ip_family_policy, IpFamilyPolicy::RequireDualStack);
  const Service single =
      alloc_ok(a, "web", "{ipFamilyPolicy: SingleStack, " + kP80 + "}", &kept);
  EXPECT_EQ(single.cluster_ips, (std::vector<std::string>{cip.cluster_ip}));
  EXPECT_EQ(single.ip_families, (std::vector<IpFamily>{IpFamily::IPv4}));
  EXPECT_FALSE(a.ip_holder(ip(dual.cluster_ips[1])));
  const Service back = alloc_ok(
      a, "web", "{ipFamilyPolicy: PreferDualStack, " + kP80 + "}", &single);
  EXPECT_NE(back.cluster_ips[1], dual.cluster_ips[1])
      << "the released secondary is not promised back";

  // A headless Service stays headless; it cannot become a NodePort.
  const Service h = alloc_ok(a, "db", "{clusterIP: None, selector: {app: db}}");
  EXPECT_TRUE(
      alloc_ok(a, "db", "{selector: {app: db}, " + kP80 + "}", &h).headless());
  EXPECT_EQ(alloc_err(a, "db", "{type: NodePort, " + kP80 + "}", &h),
            "spec.clusterIPs[0]: Invalid value \"None\": may not be set to "
            "'None' for NodePort services");
  EXPECT_HAS(alloc_err(a, "db", "{clusterIP: 10.96.0.40, " + kP80 + "}", &h),
             "spec.clusterIPs[0]: Invalid value [10.96.0.40]: may not change "
             "once set (it is \"None\")");
}

// --- inside ClusterState
// ------------------------------------------------------

namespace {

class ServiceStateTest : public sluice::test::StoreTest {};

const char* kNs = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n";

}  // namespace

TEST_F(ServiceStateTest, ApplyAllocatesStoresAndKeepsUnchanged) {
  ClusterState cs(*store_);
  const std::string y =
      std::string(kNs) + "---\n" +
      svc_yaml("web",
               "{type: NodePort, selector: {app: web}, ports: [{name: "
               "http, port: 80, targetPort: http}]}");
  auto r = cs.apply(y, "t.yaml");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, (std::vector<std::string>{"namespace/x created",
                                          "service/x/web created"}));
  ASSERT_EQ(cs.services().size(), 1u);
  const Service s = cs.services()[0];
  EXPECT_EQ(s.cluster_ip, "10.96.1.1");
  EXPECT_EQ(s.ports[0].node_port, 30086);
  auto stored = store_->get("k8s/services/x/web");
  ASSERT_TRUE(stored && *stored);
  EXPECT_HAS(**stored, "\"clusterIP\":\"10.96.1.1\"");
  EXPECT_HAS(**stored, "\"nodePort\":30086");
  EXPECT_HAS(**stored, "\"ipFamilyPolicy\":\"SingleStack\"");

  r = cs.apply(y, "t.yaml");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ((*r)[1], "service/x/web unchanged");
  EXPECT_EQ(cs.services()[0], s);
}

TEST_F(ServiceStateTest, AllocationsSurviveARestart) {
  Service before;
  {
    ClusterState cs(*store_);
    ASSERT_TRUE(cs.apply(std::string(kNs) + "---\n" +
                             svc_yaml("web",
                                      "{type: LoadBalancer, "
                                      "ipFamilyPolicy: RequireDualStack, " +
                                          kP80 + "}"),
                         "t.yaml"));
    before = cs.services().at(0);
  }
  ClusterState again(*store_);
  ASSERT_TRUE(again.restore());
  ASSERT_EQ(again.services().size(), 1u);
  EXPECT_EQ(again.services()[0], before);
  // Restored values are held: a new Service neither gets nor may take them.
  auto r = again.apply(svc_yaml("b", "{" + kP80 + "}"), "b.yaml");
  ASSERT_TRUE(r) << r.error();
  for (const auto& s : again.services())
    if (s.meta.name == "b") {
      EXPECT_NE(s.cluster_ip, before.cluster_ip);
    }
  r = again.apply(
      svc_yaml("c", "{clusterIP: " + before.cluster_ip + ", " + kP80 + "}"),
      "c.yaml");
  ASSERT_FALSE(r);
  EXPECT_HAS(r.error(),
             "c.yaml: document 1 (Service x/c): spec.clusterIPs[0]: "
             "Invalid value \"" +
                 before.cluster_ip + "\": failed to allocate IP " +
                 before.cluster_ip +
                 ": provided IP is already allocated (to Service x/web)");
  r = again.apply(
      svc_yaml("d", "{type: NodePort, ports: [{port: 80, nodePort: " +
                        std::to_string(before.ports[0].node_port) + "}]}"),
      "d.yaml");
  ASSERT_FALSE(r);
  EXPECT_HAS(r.error(), "spec.ports[0].nodePort: Invalid value " +
                            std::to_string(before.ports[0].node_port) +
                            ": provided port is already allocated");
  // Re-applying the manifest (no clusterIP, no nodePort) keeps everything.
  r = again.apply(svc_yaml("web",
                           "{type: LoadBalancer, ipFamilyPolicy: "
                           "RequireDualStack, " +
                               kP80 + "}"),
                  "t.yaml");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ((*r)[0], "service/x/web unchanged");
}

TEST_F(ServiceStateTest, AllOrNothingAcrossKindsAndAllocations) {
  ClusterState cs(*store_);
  ASSERT_TRUE(cs.apply(std::string(kNs) + "---\n" +
                           svc_yaml("dns",
                                    "{clusterIP: 10.96.0.10, ports: "
                                    "[{port: 53, protocol: UDP}]}"),
                       "base.yaml"));
  // Document 3 asks for the DNS address: nothing of the file is applied,
  // not even the Pod and the Service before it.
  const std::string y =
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\n---\n" +
      svc_yaml("a",
               "{clusterIP: 10.96.0.20, type: NodePort, ports: [{port: "
               "80, nodePort: 30080}]}") +
      "---\n" + svc_yaml("b", "{clusterIP: 10.96.0.10, " + kP80 + "}");
  auto r = cs.apply(y, "bad.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(),
            "bad.yaml: document 3 (Service x/b): spec.clusterIPs[0]: Invalid "
            "value \"10.96.0.10\": failed to allocate IP 10.96.0.10: provided "
            "IP is already allocated (to Service x/dns)");
  EXPECT_TRUE(cs.pods().empty());
  EXPECT_EQ(cs.services().size(), 1u);
  EXPECT_FALSE(store_->get("k8s/services/x/a").value());
  // What document 2 would have taken is free again.
  r = cs.apply(svc_yaml("a2",
                        "{clusterIP: 10.96.0.20, type: NodePort, ports: "
                        "[{port: 80, nodePort: 30080}]}"),
               "ok.yaml");
  ASSERT_TRUE(r) << r.error();
  // A document's failure after an earlier re-apply of the same Service
  // restores that Service's own values.
  const Service a2 = [&] {
    for (const auto& s : cs.services())
      if (s.meta.name == "a2") return s;
    return Service{};
  }();
  r = cs.apply(svc_yaml("a2", "{type: NodePort, ports: [{port: 80}]}") +
                   "---\n" +
                   svc_yaml("zz", "{clusterIP: 10.96.0.20, " + kP80 + "}"),
               "t.yaml");
  ASSERT_FALSE(r);
  EXPECT_HAS(r.error(), "document 2 (Service x/zz)");
  EXPECT_HAS(r.error(), "already allocated (to Service x/a2)")
      << "document 1 kept a2's address";
  r = cs.apply(
      svc_yaml("zz", "{type: NodePort, ports: [{port: 80, nodePort: 30080}]}"),
      "t.yaml");
  ASSERT_FALSE(r) << "a2 still holds its node port";
  for (const auto& s : cs.services())
    if (s.meta.name == "a2") {
      EXPECT_EQ(s, a2);
    }
}

TEST_F(ServiceStateTest, LaterDocumentsSeeEarlierOnes) {
  ClusterState cs(*store_);
  ASSERT_TRUE(cs.apply(kNs, "ns.yaml"));
  // Same Service twice: the second inherits what the first got.
  auto r =
      cs.apply(svc_yaml("web", "{type: NodePort, " + kP80 + "}") + "---\n" +
                   svc_yaml("web", "{type: NodePort, " + kP80 + "}") + "---\n" +
                   svc_yaml("two", "{type: NodePort, " + kP80 + "}"),
               "t.yaml");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(cs.services().size(), 2u);
  EXPECT_NE(cs.services()[0].cluster_ip, cs.services()[1].cluster_ip);
  EXPECT_NE(cs.services()[0].ports[0].node_port,
            cs.services()[1].ports[0].node_port);
}

TEST_F(ServiceStateTest, DeleteFreesAndNamespaceDeleteCascades) {
  ClusterState cs(*store_);
  ASSERT_TRUE(cs.apply(std::string(kNs) + "---\n" +
                           svc_yaml("a",
                                    "{clusterIP: 10.96.0.30, type: "
                                    "NodePort, ports: [{port: 80, "
                                    "nodePort: 30030}]}"),
                       "t.yaml"));
  auto r = cs.remove(svc_yaml("a", "{" + kP80 + "}"), "d.yaml");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, (std::vector<std::string>{"service/x/a deleted"}));
  r = cs.apply(svc_yaml("b",
                        "{clusterIP: 10.96.0.30, type: NodePort, ports: "
                        "[{port: 80, nodePort: 30030}]}"),
               "t.yaml");
  ASSERT_TRUE(r) << "a's address and node port were freed: " << r.error();
  r = cs.apply(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
      "metadata: {name: b-1, namespace: x, labels: "
      "{kubernetes.io/service-name: b}}\naddressType: IPv4\n",
      "es.yaml");
  ASSERT_TRUE(r) << r.error();
  r = cs.remove(kNs, "d.yaml");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->size(), 3u);
  EXPECT_TRUE(cs.services().empty());
  EXPECT_TRUE(cs.endpoint_slices().empty());
  ASSERT_TRUE(
      cs.apply(std::string(kNs) + "---\n" +
                   svc_yaml("c", "{clusterIP: 10.96.0.30, " + kP80 + "}"),
               "t.yaml"))
      << "freed by the cascade";
}

TEST_F(ServiceStateTest, EndpointSlicesAreStoredAndAddressTypeIsImmutable) {
  ClusterState cs(*store_);
  const std::string es =
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
      "metadata: {name: web-1, namespace: x, labels: "
      "{kubernetes.io/service-name: web}}\n";
  ASSERT_TRUE(cs.apply(std::string(kNs) + "---\n" + es +
                           "addressType: IPv4\nendpoints: [{addresses: "
                           "[10.200.0.5]}]\nports: [{port: 80}]\n",
                       "t.yaml"));
  ASSERT_EQ(cs.endpoint_slices().size(), 1u);
  auto r = cs.apply(es + "addressType: IPv6\n", "u.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(),
            "u.yaml: document 1 (EndpointSlice x/web-1): addressType: Invalid "
            "value \"IPv6\": field is immutable");
  ClusterState again(*store_);
  ASSERT_TRUE(again.restore());
  EXPECT_EQ(again.endpoint_slices(), cs.endpoint_slices());
  r = cs.apply(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
      "metadata: {name: s, namespace: nope}\naddressType: IPv4\n",
      "n.yaml");
  ASSERT_FALSE(r);
  EXPECT_HAS(r.error(), "namespaces \"nope\" not found");
}

TEST_F(ServiceStateTest, ConfiguredRanges) {
  ClusterState cs(*store_, ranges("10.100.0.0/24", "", "31000-31099"));
  ASSERT_TRUE(cs.apply(std::string(kNs) + "---\n" +
                           svc_yaml("a", "{type: NodePort, " + kP80 + "}"),
                       "t.yaml"));
  EXPECT_EQ(cs.services()[0].cluster_ip, "10.100.0.17");
  EXPECT_EQ(cs.services()[0].ports[0].node_port, 31016);
  // New ranges: stored Services keep their values, even outside them.
  cs.set_service_ranges(ranges("10.200.0.0/24", ""));
  auto r = cs.apply(svc_yaml("a", "{type: NodePort, " + kP80 + "}"), "t.yaml");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ((*r)[0], "service/x/a unchanged");
  r = cs.apply(svc_yaml("b", "{" + kP80 + "}"), "t.yaml");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(cs.services()[1].cluster_ip, "10.200.0.17");
  r = cs.apply(svc_yaml("c", "{clusterIP: 10.100.0.17, " + kP80 + "}"),
               "t.yaml");
  ASSERT_FALSE(r);
  EXPECT_HAS(r.error(),
             "provided IP is not in the valid range. The range of "
             "valid IPs is 10.200.0.0/24");
}

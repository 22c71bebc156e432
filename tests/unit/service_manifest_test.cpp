// Service and EndpointSlice manifests: API-server defaulting and
// validation (field paths and messages), and the state store's JSON form.
// Allocation (cluster IPs, families, node ports) is lb_allocator_test.cpp.
#include <gtest/gtest.h>

#include "expect_has.h"

#include <string>

#include "k8s/manifest.h"

using namespace sluice::k8s;

namespace {


std::string error_of(const std::string& y) {
  auto r = parse_manifests(y, "s.yaml");
  EXPECT_FALSE(r) << "accepted:\n" << y;
  return r ? std::string() : r.error();
}

template <typename T>
T one(const std::string& y) {
  auto r = parse_manifests(y, "s.yaml");
  EXPECT_TRUE(r) << r.error();
  if (!r || r->size() != 1 || !(*r)[0].get<T>()) {
    ADD_FAILURE() << "expected exactly one " << KindInfo<T>::kind;
    return T{};
  }
  return *(*r)[0].get<T>();
}

// A Service x/web with the given flow-style spec (and optional extra
// top-level YAML such as a status).
std::string svc(const std::string& spec, const std::string& extra = "") {
  return "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x}\n"
         "spec: " +
         spec + "\n" + extra;
}
Service svc_ok(const std::string& spec, const std::string& extra = "") {
  return one<Service>(svc(spec, extra));
}
const std::string kSvc = "s.yaml: document 1 (Service x/web): ";
std::string svc_error(const std::string& spec, const std::string& extra = "") {
  return error_of(svc(spec, extra));
}
// The message without the "s.yaml: document 1 (Service x/web): " prefix.
std::string svc_msg(const std::string& spec, const std::string& extra = "") {
  const std::string e = svc_error(spec, extra);
  EXPECT_EQ(e.rfind(kSvc, 0), 0u) << e;
  return e.rfind(kSvc, 0) == 0 ? e.substr(kSvc.size()) : e;
}

const std::string kP80 = "ports: [{port: 80}]";

std::string slice(const std::string& body) {
  return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
         "metadata: {name: web-1, namespace: x, labels: "
         "{kubernetes.io/service-name: web}}\n" +
         body + "\n";
}
const std::string kEs = "s.yaml: document 1 (EndpointSlice x/web-1): ";
std::string es_msg(const std::string& body) {
  const std::string e = error_of(slice(body));
  EXPECT_EQ(e.rfind(kEs, 0), 0u) << e;
  return e.rfind(kEs, 0) == 0 ? e.substr(kEs.size()) : e;
}

}  // namespace

// --- Service: defaults ------------------------------------------------------

TEST(ServiceDefaults, MinimalClusterIP) {
  const Service s = svc_ok("{selector: {app: web}, ports: [{port: 80}]}");
  EXPECT_EQ(s.meta.namespace_, "x");
  EXPECT_EQ(s.type, ServiceType::ClusterIP);
  EXPECT_EQ(s.selector, (Labels{{"app", "web"}}));
  ASSERT_EQ(s.ports.size(), 1u);
  EXPECT_EQ(s.ports[0].protocol, Protocol::TCP);
  EXPECT_EQ(s.ports[0].target_port, (std::variant<int32_t, std::string>(80)));
  EXPECT_EQ(s.ports[0].node_port, 0);
  EXPECT_EQ(s.session_affinity, SessionAffinity::None);
  EXPECT_EQ(s.affinity_timeout, 0);
  EXPECT_EQ(s.internal_traffic_policy, TrafficPolicy::Cluster);
  EXPECT_FALSE(s.external_traffic_policy) << "only externally-accessible";
  EXPECT_FALSE(s.allocate_lb_node_ports);
  // Left to the allocator: it needs the cluster's ranges.
  EXPECT_TRUE(s.cluster_ip.empty());
  EXPECT_TRUE(s.cluster_ips.empty());
  EXPECT_TRUE(s.ip_families.empty());
  EXPECT_FALSE(s.ip_family_policy);
}

TEST(ServiceDefaults, TargetPortDefaultsToPortUnlessGiven) {
  const Service s = svc_ok(
      "{ports: [{name: a, port: 80, targetPort: 0}, {name: b, port: 81, "
      "targetPort: \"\"}, {name: c, port: 82, targetPort: 8082}, "
      "{name: d, port: 83, targetPort: http}, {name: e, port: 84, "
      "protocol: \"\"}]}");
  EXPECT_EQ(std::get<int32_t>(s.ports[0].target_port), 80);
  EXPECT_EQ(std::get<int32_t>(s.ports[1].target_port), 81);
  EXPECT_EQ(std::get<int32_t>(s.ports[2].target_port), 8082);
  EXPECT_EQ(std::get<std::string>(s.ports[3].target_port), "http");
  EXPECT_EQ(s.ports[4].protocol, Protocol::TCP)
      << "a plain string: \"\" is TCP";
}

TEST(ServiceDefaults, ExternalTrafficPolicyForExternallyAccessible) {
  EXPECT_EQ(svc_ok("{type: NodePort, " + kP80 + "}").external_traffic_policy,
            TrafficPolicy::Cluster);
  EXPECT_EQ(
      svc_ok("{type: LoadBalancer, " + kP80 + "}").external_traffic_policy,
      TrafficPolicy::Cluster);
  EXPECT_EQ(svc_ok("{externalIPs: [192.0.2.10], " + kP80 + "}")
                .external_traffic_policy,
            TrafficPolicy::Cluster)
      << "a ClusterIP Service with external IPs is externally accessible";
  EXPECT_EQ(
      svc_ok("{type: NodePort, externalTrafficPolicy: Local, " + kP80 + "}")
          .external_traffic_policy,
      TrafficPolicy::Local);
  EXPECT_EQ(svc_ok("{internalTrafficPolicy: Local, " + kP80 + "}")
                .internal_traffic_policy,
            TrafficPolicy::Local);
}

TEST(ServiceDefaults, LoadBalancerNodePortsAndIngressIpMode) {
  const Service lb = svc_ok("{type: LoadBalancer, " + kP80 + "}",
                            "status: {loadBalancer: {ingress: [{ip: "
                            "198.51.100.7}, {hostname: lb.example.com}]}}");
  EXPECT_EQ(lb.allocate_lb_node_ports, true);
  EXPECT_TRUE(lb.needs_node_ports());
  ASSERT_EQ(lb.lb_ingress.size(), 2u);
  EXPECT_EQ(lb.lb_ingress[0].ip, "198.51.100.7");
  EXPECT_EQ(lb.lb_ingress[0].ip_mode, "VIP");
  EXPECT_EQ(lb.lb_ingress[1].hostname, "lb.example.com");
  EXPECT_EQ(lb.lb_ingress[1].ip_mode, "");
  const Service no =
      svc_ok("{type: LoadBalancer, allocateLoadBalancerNodePorts: false, " +
             kP80 + "}");
  EXPECT_FALSE(no.needs_node_ports());
  EXPECT_EQ(svc_ok("{type: LoadBalancer, " + kP80 + "}",
                   "status: {loadBalancer: {ingress: [{ip: 198.51.100.7, "
                   "ipMode: Proxy}]}}")
                .lb_ingress[0]
                .ip_mode,
            "Proxy");
}

TEST(ServiceDefaults, SessionAffinityClientIPTimeout) {
  const Service a = svc_ok("{sessionAffinity: ClientIP, " + kP80 + "}");
  EXPECT_EQ(a.session_affinity, SessionAffinity::ClientIP);
  EXPECT_EQ(a.affinity_timeout, 10800);
  EXPECT_EQ(svc_ok("{sessionAffinity: ClientIP, sessionAffinityConfig: "
                   "{clientIP: {timeoutSeconds: 86400}}, " +
                   kP80 + "}")
                .affinity_timeout,
            86400);
  EXPECT_EQ(svc_ok("{sessionAffinity: ClientIP, sessionAffinityConfig: "
                   "{clientIP: {timeoutSeconds: 1}}, " +
                   kP80 + "}")
                .affinity_timeout,
            1);
  // With None the config is dropped (SetDefaults_Service), not rejected.
  const Service n = svc_ok(
      "{sessionAffinity: None, sessionAffinityConfig: "
      "{clientIP: {timeoutSeconds: 5}}, " +
      kP80 + "}");
  EXPECT_EQ(n.session_affinity, SessionAffinity::None);
  EXPECT_EQ(n.affinity_timeout, 0);
}

TEST(ServiceDefaults, ClusterIPsFromClusterIPAndHeadless) {
  const Service s = svc_ok("{clusterIP: 10.96.0.10, " + kP80 + "}");
  EXPECT_EQ(s.cluster_ips, (std::vector<std::string>{"10.96.0.10"}));
  const Service h = svc_ok("{clusterIP: None, selector: {app: db}}");
  EXPECT_TRUE(h.headless());
  EXPECT_TRUE(h.ports.empty()) << "headless Services need no ports";
  const Service d = svc_ok(
      "{clusterIP: 10.96.0.10, clusterIPs: [10.96.0.10, \"fd10:96::10\"], "
      "ipFamilies: [IPv4, IPv6], ipFamilyPolicy: RequireDualStack, " +
      kP80 + "}");
  EXPECT_EQ(d.cluster_ips.size(), 2u);
  EXPECT_EQ(d.ip_families,
            (std::vector<IpFamily>{IpFamily::IPv4, IpFamily::IPv6}));
  EXPECT_EQ(d.ip_family_policy, IpFamilyPolicy::RequireDualStack);
}

TEST(ServiceDefaults, AnnotationsAndIgnoredFieldsKept) {
  auto r = parse_manifests(R"(
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations: {sluice.io/scheduler: maglev, sluice.io/weights: "a=90,b=10"}
spec:
  type: LoadBalancer
  loadBalancerClass: example.com/lb
  loadBalancerIP: 198.51.100.7
  healthCheckNodePort: 31000
  externalTrafficPolicy: Local
  trafficDistribution: PreferClose
  publishNotReadyAddresses: true
  ports:
  - {name: http, port: 80, targetPort: http, appProtocol: kubernetes.io/h2c}
  - {name: dns, port: 53, protocol: UDP}
  - {name: sctp, port: 9, protocol: SCTP}
)",
                           "s.yaml");
  ASSERT_TRUE(r) << r.error();
  const Service& s = *(*r)[0].get<Service>();
  EXPECT_EQ(s.meta.namespace_, "default");
  EXPECT_EQ(s.meta.annotations.at("sluice.io/scheduler"), "maglev");
  EXPECT_EQ(s.ports[0].app_protocol, "kubernetes.io/h2c");
  EXPECT_EQ(s.ports[1].protocol, Protocol::UDP);
  EXPECT_EQ(s.ports[2].protocol, Protocol::SCTP);
  EXPECT_TRUE(s.publish_not_ready_addresses);
  EXPECT_EQ((*r)[0].key(), "services/default/web");
  EXPECT_EQ((*r)[0].display(), "Service default/web");
}

// --- Service: validation ----------------------------------------------------

TEST(ServiceValidation, NameIsADns1035Label) {
  EXPECT_EQ(error_of("apiVersion: v1\nkind: Service\nmetadata: {name: 1web}\n"
                     "spec: {ports: [{port: 80}]}\n"),
            "s.yaml: document 1 (Service default/1web): metadata.name: Invalid "
            "value \"1web\": a DNS-1035 label must consist of lower case "
            "alphanumeric characters or '-', start with an alphabetic "
            "character, and end with an alphanumeric character (e.g. "
            "'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')");
  EXPECT_HAS(error_of("apiVersion: v1\nkind: Service\nmetadata: {name: a.b}\n"
                      "spec: {ports: [{port: 80}]}\n"),
             "metadata.name: Invalid value \"a.b\": a DNS-1035 label");
  EXPECT_HAS(
      error_of("apiVersion: v1\nkind: Service\nmetadata: {name: " +
               std::string(64, 'a') + "}\nspec: {ports: [{port: 80}]}\n"),
      "must be no more than 63 characters");
}

TEST(ServiceValidation, Ports) {
  EXPECT_EQ(svc_msg("{selector: {app: web}}"), "spec.ports: Required value");
  EXPECT_EQ(svc_msg("{ports: [{port: 80}, {name: b, port: 81}]}"),
            "spec.ports[0].name: Required value");
  EXPECT_EQ(svc_msg("{ports: [{name: a, port: 80}, {port: 81}]}"),
            "spec.ports[1].name: Required value");
  EXPECT_EQ(svc_msg("{ports: [{name: a, port: 80}, {name: a, port: 81}]}"),
            "spec.ports[1].name: Duplicate value \"a\"");
  EXPECT_HAS(svc_msg("{ports: [{name: HTTP, port: 80}]}"),
             "spec.ports[0].name: Invalid value \"HTTP\": a lowercase RFC 1123 "
             "label");
  EXPECT_EQ(svc_msg("{ports: [{name: a}]}"),
            "spec.ports[0].port: Invalid value 0: must be between 1 and "
            "65535, inclusive");
  EXPECT_EQ(svc_msg("{ports: [{port: 65536}]}"),
            "spec.ports[0].port: Invalid value 65536: must be between 1 and "
            "65535, inclusive");
  EXPECT_EQ(svc_msg("{ports: [{port: 80, protocol: ICMP}]}"),
            "spec.ports[0].protocol: Unsupported value \"ICMP\": supported "
            "values: \"TCP\", \"UDP\", \"SCTP\"");
  EXPECT_EQ(svc_msg("{ports: [{port: 80, targetPort: 70000}]}"),
            "spec.ports[0].targetPort: Invalid value 70000: must be between 1 "
            "and 65535, inclusive");
  EXPECT_EQ(svc_msg("{ports: [{port: 80, targetPort: \"8080\"}]}"),
            "spec.ports[0].targetPort: Invalid value \"8080\": must contain at "
            "least one letter (a-z)")
      << "a quoted number is a (bad) port name, as upstream";
  EXPECT_HAS(svc_msg("{ports: [{port: 80, targetPort: web_http}]}"),
             "spec.ports[0].targetPort: Invalid value \"web_http\"");
  EXPECT_HAS(svc_msg("{ports: [{port: 80, targetPort: [1]}]}"),
             "spec.ports[0].targetPort: expected a port number or name, got a "
             "list");
  EXPECT_HAS(svc_msg("{ports: [{port: 80, appProtocol: \"a b\"}]}"),
             "spec.ports[0].appProtocol: Invalid value \"a b\"");
  EXPECT_EQ(svc_msg("{ports: [{name: a, port: 80}, {name: b, port: 80}]}"),
            "spec.ports[1]: Duplicate value \"80/TCP\"");
  EXPECT_EQ(svc_ok("{ports: [{name: a, port: 53}, {name: b, port: 53, "
                   "protocol: UDP}]}")
                .ports.size(),
            2u)
      << "the same port on two protocols is fine";
  EXPECT_EQ(svc_msg("{ports: [{port: 80, port2: 1}]}"),
            "spec.ports[0].port2: unknown field");
  EXPECT_EQ(svc_msg("{ports: [{port: \"80\"}]}"),
            "spec.ports[0].port: expected an integer, got string \"80\"");
}

TEST(ServiceValidation, TypeAndUnsupportedFeatures) {
  EXPECT_EQ(svc_msg("{type: ExternalName, externalName: db.example.com}"),
            "spec.type: Unsupported value \"ExternalName\": not supported by "
            "Sluice (ExternalName services are DNS aliases, there is nothing "
            "to load-balance): supported values: \"ClusterIP\", "
            "\"LoadBalancer\", \"NodePort\"");
  EXPECT_EQ(svc_msg("{type: Foo, " + kP80 + "}"),
            "spec.type: Unsupported value \"Foo\": supported values: "
            "\"ClusterIP\", \"LoadBalancer\", \"NodePort\"");
  EXPECT_HAS(svc_msg("{externalName: db.example.com, " + kP80 + "}"),
             "spec.externalName: Forbidden: not supported by Sluice");
  EXPECT_HAS(svc_msg("{type: LoadBalancer, loadBalancerSourceRanges: "
                     "[10.0.0.0/8], " +
                     kP80 + "}"),
             "spec.loadBalancerSourceRanges: Forbidden: not supported by "
             "Sluice");
  EXPECT_EQ(svc_msg("{" + kP80 + ", topologyKeys: [a]}"),
            "spec.topologyKeys: unknown field");
}

TEST(ServiceValidation, SelectorAndAffinity) {
  EXPECT_HAS(svc_msg("{selector: {app: \"-web\"}, " + kP80 + "}"),
             "spec.selector: Invalid value \"-web\"");
  EXPECT_HAS(svc_msg("{selector: {\"a/b/c\": web}, " + kP80 + "}"),
             "spec.selector: Invalid value \"a/b/c\"");
  EXPECT_EQ(svc_msg("{sessionAffinity: Sticky, " + kP80 + "}"),
            "spec.sessionAffinity: Unsupported value \"Sticky\": supported "
            "values: \"ClientIP\", \"None\"");
  for (const char* t : {"0", "-1", "86401"})
    EXPECT_EQ(svc_msg("{sessionAffinity: ClientIP, sessionAffinityConfig: "
                      "{clientIP: {timeoutSeconds: " +
                      std::string(t) + "}}, " + kP80 + "}"),
              "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid "
              "value " +
                  std::string(t) +
                  ": must be greater than 0 and less than 86400");
  EXPECT_EQ(svc_msg("{sessionAffinity: ClientIP, sessionAffinityConfig: "
                    "{clientIP: {timeout: 5}}, " +
                    kP80 + "}"),
            "spec.sessionAffinityConfig.clientIP.timeout: unknown field");
}

TEST(ServiceValidation, ClusterIPs) {
  EXPECT_EQ(svc_msg("{clusterIP: 10.96.0.10, clusterIPs: [10.96.0.11], " +
                    kP80 + "}"),
            "spec.clusterIPs: Invalid value [10.96.0.11]: first value must "
            "match `clusterIP`");
  EXPECT_EQ(svc_msg("{clusterIPs: [10.96.0.11], " + kP80 + "}"),
            "spec.clusterIPs: Invalid value [10.96.0.11]: must be empty when "
            "`clusterIP` is not specified");
  EXPECT_EQ(svc_msg("{clusterIP: None, clusterIPs: [None, \"fd10:96::1\"], " +
                    kP80 + "}"),
            "spec.clusterIPs: Invalid value [None, fd10:96::1]: 'None' must be "
            "the first and only value");
  EXPECT_EQ(svc_msg("{clusterIP: 10.96.0.300, " + kP80 + "}"),
            "spec.clusterIPs[0]: Invalid value \"10.96.0.300\": must be a "
            "valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
  EXPECT_EQ(svc_msg("{clusterIP: 10.96.0.1, clusterIPs: [10.96.0.1, "
                    "\"fd10:96::1\", 10.96.0.2], " +
                    kP80 + "}"),
            "spec.clusterIPs: Invalid value [10.96.0.1, fd10:96::1, "
            "10.96.0.2]: may only hold up to 2 values");
  EXPECT_EQ(svc_msg("{clusterIP: 10.96.0.1, clusterIPs: [10.96.0.1, "
                    "10.96.0.2], " +
                    kP80 + "}"),
            "spec.clusterIPs: Invalid value [10.96.0.1, 10.96.0.2]: may "
            "specify no more than one IP for each IP family");
  EXPECT_EQ(svc_msg("{clusterIP: 10.96.0.1, ipFamilies: [IPv6], " + kP80 + "}"),
            "spec.clusterIPs[0]: Invalid value \"10.96.0.1\": expected an IPv6 "
            "value as indicated by `ipFamilies[0]`");
  EXPECT_EQ(svc_msg("{ipFamilies: [IPv5], " + kP80 + "}"),
            "spec.ipFamilies[0]: Unsupported value \"IPv5\": supported values: "
            "\"IPv4\", \"IPv6\"");
  EXPECT_EQ(svc_msg("{ipFamilies: [IPv4, IPv4], " + kP80 + "}"),
            "spec.ipFamilies[1]: Duplicate value \"IPv4\"");
  EXPECT_EQ(svc_msg("{ipFamilyPolicy: DualStack, " + kP80 + "}"),
            "spec.ipFamilyPolicy: Unsupported value \"DualStack\": supported "
            "values: \"PreferDualStack\", \"RequireDualStack\", "
            "\"SingleStack\"");
  EXPECT_EQ(svc_msg("{type: NodePort, clusterIP: None, " + kP80 + "}"),
            "spec.clusterIPs[0]: Invalid value \"None\": may not be set to "
            "'None' for NodePort services");
  EXPECT_EQ(svc_msg("{type: LoadBalancer, clusterIP: None, " + kP80 + "}"),
            "spec.clusterIPs[0]: Invalid value \"None\": may not be set to "
            "'None' for LoadBalancer services");
}

TEST(ServiceValidation, ExternalIPs) {
  EXPECT_EQ(svc_msg("{externalIPs: [192.0.2.300], " + kP80 + "}"),
            "spec.externalIPs[0]: Invalid value \"192.0.2.300\": must be a "
            "valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
  EXPECT_EQ(svc_msg("{externalIPs: [192.0.2.1, 127.0.0.1], " + kP80 + "}"),
            "spec.externalIPs[1]: Invalid value \"127.0.0.1\": may not be in "
            "the loopback range (127.0.0.0/8, ::1/128)");
  EXPECT_EQ(svc_msg("{externalIPs: [\"::\"], " + kP80 + "}"),
            "spec.externalIPs[0]: Invalid value \"::\": may not be "
            "unspecified (::)");
  EXPECT_HAS(svc_msg("{externalIPs: [169.254.1.1], " + kP80 + "}"),
             "may not be in the link-local range (169.254.0.0/16, fe80::/10)");
  EXPECT_HAS(svc_msg("{externalIPs: [\"fe80::1\"], " + kP80 + "}"),
             "may not be in the link-local range");
  EXPECT_HAS(svc_msg("{externalIPs: [224.0.0.5], " + kP80 + "}"),
             "may not be in the link-local multicast range");
  EXPECT_EQ(svc_ok("{externalIPs: [\"2001:db8::7\"], " + kP80 + "}")
                .external_ips.size(),
            1u);
}

TEST(ServiceValidation, NodePortsAndTrafficPolicies) {
  EXPECT_EQ(svc_msg("{ports: [{port: 80, nodePort: 30080}]}"),
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is "
            "'ClusterIP'");
  EXPECT_EQ(svc_msg("{type: NodePort, ports: [{name: a, port: 80, nodePort: "
                    "30080}, {name: b, port: 81, nodePort: 30080}]}"),
            "spec.ports[1].nodePort: Duplicate value 30080");
  EXPECT_EQ(svc_ok("{type: NodePort, ports: [{name: a, port: 53, nodePort: "
                   "30053}, {name: b, port: 53, protocol: UDP, nodePort: "
                   "30053}]}")
                .ports[1]
                .node_port,
            30053)
      << "one node port for TCP and UDP is fine";
  EXPECT_EQ(svc_msg("{type: NodePort, allocateLoadBalancerNodePorts: true, " +
                    kP80 + "}"),
            "spec.allocateLoadBalancerNodePorts: Forbidden: may only be used "
            "when `type` is 'LoadBalancer'");
  EXPECT_EQ(svc_msg("{externalTrafficPolicy: Local, " + kP80 + "}"),
            "spec.externalTrafficPolicy: Invalid value \"Local\": may only be "
            "set for externally-accessible services");
  EXPECT_EQ(svc_msg("{externalTrafficPolicy: Cluster, " + kP80 + "}"),
            "spec.externalTrafficPolicy: Invalid value \"Cluster\": may only "
            "be set for externally-accessible services");
  EXPECT_EQ(
      svc_msg("{type: NodePort, externalTrafficPolicy: Global, " + kP80 + "}"),
      "spec.externalTrafficPolicy: Unsupported value \"Global\": "
      "supported values: \"Cluster\", \"Local\"");
  EXPECT_EQ(svc_msg("{internalTrafficPolicy: Node, " + kP80 + "}"),
            "spec.internalTrafficPolicy: Unsupported value \"Node\": "
            "supported values: \"Cluster\", \"Local\"");
  EXPECT_EQ(svc_msg("{type: LoadBalancer, allocateLoadBalancerNodePorts: "
                    "maybe, " +
                    kP80 + "}"),
            "spec.allocateLoadBalancerNodePorts: expected a boolean, got "
            "string \"maybe\"");
}

TEST(ServiceValidation, LoadBalancerStatus) {
  EXPECT_EQ(svc_msg("{" + kP80 + "}",
                    "status: {loadBalancer: {ingress: [{ip: 198.51.100.7}]}}"),
            "status.loadBalancer.ingress: Forbidden: may only be used when "
            "`spec.type` is 'LoadBalancer'");
  const std::string lb = "{type: LoadBalancer, " + kP80 + "}";
  EXPECT_EQ(svc_msg(lb,
                    "status: {loadBalancer: {ingress: [{ip: 198.51.100.7}, "
                    "{ip: lb}]}}"),
            "status.loadBalancer.ingress[1].ip: Invalid value \"lb\": must be "
            "a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
  EXPECT_EQ(svc_msg(lb,
                    "status: {loadBalancer: {ingress: [{ip: 198.51.100.7, "
                    "ipMode: Direct}]}}"),
            "status.loadBalancer.ingress[0].ipMode: Unsupported value "
            "\"Direct\": supported values: \"Proxy\", \"VIP\"");
  EXPECT_EQ(svc_msg(lb,
                    "status: {loadBalancer: {ingress: [{hostname: a.com, "
                    "ipMode: VIP}]}}"),
            "status.loadBalancer.ingress[0].ipMode: Forbidden: may not be set "
            "when `ip` is not set");
  EXPECT_EQ(svc_msg(lb,
                    "status: {loadBalancer: {ingress: [{hostname: "
                    "198.51.100.7}]}}"),
            "status.loadBalancer.ingress[0].hostname: Invalid value "
            "\"198.51.100.7\": must be a DNS name, not an IP address");
  EXPECT_EQ(svc_msg(lb, "status: {loadBalancer: {ingres: []}}"),
            "status.loadBalancer.ingres: unknown field");
}

TEST(ServiceValidation, FirstProblemIsReportedForTheRightDocument) {
  const std::string y = svc("{" + kP80 + "}") + "---\n" +
                        "apiVersion: v1\nkind: Service\nmetadata: {name: db, "
                        "namespace: x}\nspec: {type: NodePort, ports: [{port: "
                        "5432, protocol: tcp}]}\n";
  EXPECT_EQ(error_of(y),
            "s.yaml: document 2 (Service x/db): spec.ports[0].protocol: "
            "Unsupported value \"tcp\": supported values: \"TCP\", \"UDP\", "
            "\"SCTP\"");
}

// --- EndpointSlice ----------------------------------------------------------

TEST(EndpointSliceManifest, DecodesAndKeepsConditionsAsGiven) {
  const EndpointSlice es = one<EndpointSlice>(slice(R"(addressType: IPv4
endpoints:
- addresses: [10.200.0.5]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: node-1
  zone: zone-a
  hostname: web-0
  targetRef: {kind: Pod, namespace: x, name: web-0, uid: abc-123}
- addresses: [10.200.0.6, 10.200.0.7]
  hints: {forZones: [{name: zone-a}]}
ports:
- {name: http, port: 8080}
- {name: dns, port: 53, protocol: UDP, appProtocol: dns}
- {name: any})"));
  EXPECT_EQ(es.meta.labels.at(kServiceNameLabel), "web");
  EXPECT_EQ(es.address_type, AddressType::IPv4);
  ASSERT_EQ(es.endpoints.size(), 2u);
  EXPECT_EQ(es.endpoints[0].conditions.ready, true);
  EXPECT_EQ(es.endpoints[0].conditions.terminating, false);
  EXPECT_EQ(es.endpoints[0].node_name, "node-1");
  EXPECT_EQ(es.endpoints[0].zone, "zone-a");
  ASSERT_TRUE(es.endpoints[0].target_ref);
  EXPECT_EQ(es.endpoints[0].target_ref->name, "web-0");
  EXPECT_EQ(es.endpoints[0].target_ref->namespace_, "x");
  EXPECT_FALSE(es.endpoints[1].conditions.ready)
      << "no default: unset stays unset";
  EXPECT_FALSE(es.endpoints[1].target_ref);
  EXPECT_EQ(es.endpoints[1].addresses.size(), 2u);
  ASSERT_EQ(es.ports.size(), 3u);
  EXPECT_EQ(es.ports[0].protocol, Protocol::TCP);
  EXPECT_EQ(es.ports[0].port, 8080);
  EXPECT_EQ(es.ports[1].protocol, Protocol::UDP);
  EXPECT_FALSE(es.ports[2].port);
  const EndpointSlice v6 = one<EndpointSlice>(
      slice("addressType: IPv6\nendpoints: [{addresses: [\"fd10:200::5\"]}]"));
  EXPECT_EQ(v6.address_type, AddressType::IPv6);
  auto r = parse_manifests(slice("addressType: IPv4"), "s.yaml");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[0].key(), "endpointslices/x/web-1");
}

TEST(EndpointSliceManifest, Validation) {
  EXPECT_EQ(es_msg("endpoints: []"), "addressType: Required value");
  EXPECT_EQ(es_msg("addressType: FQDN"),
            "addressType: Unsupported value \"FQDN\": not supported by Sluice "
            "(FQDN endpoints cannot be load-balanced to): supported values: "
            "\"IPv4\", \"IPv6\"");
  EXPECT_EQ(es_msg("addressType: IP"),
            "addressType: Unsupported value \"IP\": supported values: "
            "\"IPv4\", \"IPv6\"");
  EXPECT_EQ(es_msg("addressType: IPv4\nendpoints: [{addresses: []}]"),
            "endpoints[0].addresses: Required value: must contain at least 1 "
            "address");
  EXPECT_EQ(es_msg("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1]}, "
                   "{addresses: [\"fd00::1\"]}]"),
            "endpoints[1].addresses[0]: Invalid value \"fd00::1\": must be a "
            "valid IPv4 address");
  EXPECT_EQ(es_msg("addressType: IPv6\nendpoints: [{addresses: [10.0.0.1]}]"),
            "endpoints[0].addresses[0]: Invalid value \"10.0.0.1\": must be a "
            "valid IPv6 address");
  EXPECT_EQ(es_msg("addressType: IPv4\nendpoints: [{addresses: [127.0.0.1]}]"),
            "endpoints[0].addresses[0]: Invalid value \"127.0.0.1\": may not "
            "be in the loopback range (127.0.0.0/8, ::1/128)");
  std::string many = "addressType: IPv4\nendpoints: [{addresses: [";
  for (int i = 0; i < 101; i++)
    many += (i ? ", " : "") + std::string("10.0.0.1");
  EXPECT_EQ(es_msg(many + "]}]"),
            "endpoints[0].addresses: Too many: 101: must have at most 100 "
            "items");
  EXPECT_HAS(es_msg("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], "
                    "nodeName: Node_1}]"),
             "endpoints[0].nodeName: Invalid value \"Node_1\": a lowercase RFC "
             "1123 subdomain");
  EXPECT_HAS(es_msg("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], "
                    "hostname: a.b}]"),
             "endpoints[0].hostname: Invalid value \"a.b\": a lowercase RFC "
             "1123 label");
  EXPECT_EQ(es_msg("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], "
                   "conditions: {ready: \"true\"}}]"),
            "endpoints[0].conditions.ready: expected a boolean, got string "
            "\"true\"");
  EXPECT_EQ(es_msg("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], "
                   "conditions: {healthy: true}}]"),
            "endpoints[0].conditions.healthy: unknown field");
  EXPECT_EQ(es_msg("addressType: IPv4\nports: [{name: a, port: 80}, {name: a, "
                   "port: 81}]"),
            "ports[1].name: Duplicate value \"a\"");
  EXPECT_EQ(es_msg("addressType: IPv4\nports: [{port: 80}, {port: 81}]"),
            "ports[1].name: Duplicate value \"\"");
  EXPECT_EQ(es_msg("addressType: IPv4\nports: [{name: a, port: 80, protocol: "
                   "\"\"}]"),
            "ports[0].protocol: Unsupported value \"\": supported values: "
            "\"TCP\", \"UDP\", \"SCTP\"");
  EXPECT_EQ(es_msg("addressType: IPv4\nports: [{name: a, port: 0}]"),
            "ports[0].port: Invalid value 0: must be between 1 and 65535, "
            "inclusive");
  EXPECT_HAS(es_msg("addressType: IPv4\nports: [{name: Http, port: 80}]"),
             "ports[0].name: Invalid value \"Http\"");
  EXPECT_EQ(es_msg("addressType: IPv4\nspec: {}"), "spec: unknown field");
  EXPECT_HAS(
      error_of("apiVersion: discovery.k8s.io/v1beta1\nkind: "
               "EndpointSlice\nmetadata: {name: a}\naddressType: IPv4\n"),
      "apiVersion: Unsupported value \"discovery.k8s.io/v1beta1\": "
      "supported values: \"discovery.k8s.io/v1\"");
}

TEST(EndpointSliceManifest, AddressTypeIsImmutable) {
  auto a = parse_manifests(slice("addressType: IPv4"), "s.yaml");
  auto b = parse_manifests(slice("addressType: IPv6"), "s.yaml");
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(validate_update((*a)[0], (*a)[0]));
  auto s = validate_update((*b)[0], (*a)[0]);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(),
            "addressType: Invalid value \"IPv6\": field is immutable");
}

// --- JSON (state store) -----------------------------------------------------

TEST(ServiceJson, RoundTripsEveryField) {
  auto r = parse_manifests(R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: x, labels: {app: web}, annotations: {sluice.io/scheduler: maglev}}
spec:
  type: LoadBalancer
  selector: {app: web}
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd10:96::a"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: PreferDualStack
  externalIPs: [192.0.2.1]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  publishNotReadyAddresses: true
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080, appProtocol: http}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353, nodePort: 30053}
status:
  loadBalancer:
    ingress: [{ip: 198.51.100.7}, {ip: "2001:db8::7", ipMode: Proxy}, {hostname: lb.example.com}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: x, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.200.0.5]
  conditions: {ready: false, serving: true, terminating: true}
  nodeName: node-1
  zone: zone-a
  hostname: web-0
  targetRef: {kind: Pod, namespace: x, name: web-0}
- addresses: [10.200.0.6]
ports: [{name: http, port: 8080, appProtocol: http}, {name: dns, protocol: UDP}]
)",
                           "s.yaml");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 3u);
  for (const auto& o : *r) {
    const std::string j = to_json(o);
    auto back = from_json(j);
    ASSERT_TRUE(back) << back.error() << "\n" << j;
    EXPECT_EQ(*back, o) << j;
  }
  const std::string j = to_json((*r)[0]);
  EXPECT_HAS(j, "\"clusterIPs\":[\"10.96.0.10\",\"fd10:96::a\"]");
  EXPECT_HAS(j, "\"targetPort\":\"http\"");
  EXPECT_HAS(j, "\"nodePort\":30080");
  EXPECT_HAS(j, "\"allocateLoadBalancerNodePorts\":true");
  EXPECT_HAS(j, "\"ipMode\":\"VIP\"");
  EXPECT_HAS(to_json((*r)[2]), "\"addressType\":\"IPv4\"");
}

TEST(ServiceJson, SpellsOutDefaults) {
  auto r = parse_manifests(svc("{ports: [{port: 80}]}"), "s.yaml");
  ASSERT_TRUE(r);
  const std::string j = to_json((*r)[0]);
  EXPECT_HAS(j, "\"protocol\":\"TCP\"");
  EXPECT_HAS(j, "\"targetPort\":80");
  EXPECT_HAS(j, "\"sessionAffinity\":\"None\"");
  EXPECT_HAS(j, "\"internalTrafficPolicy\":\"Cluster\"");
  EXPECT_HAS(j, "\"type\":\"ClusterIP\"");
  EXPECT_EQ(j.find("externalTrafficPolicy"), std::string::npos) << j;
}

TEST(ServiceObjects, ToString) {
  EXPECT_STREQ(to_string(ServiceType::LoadBalancer), "LoadBalancer");
  EXPECT_STREQ(to_string(IpFamily::IPv6), "IPv6");
  EXPECT_STREQ(to_string(IpFamilyPolicy::PreferDualStack), "PreferDualStack");
  EXPECT_STREQ(to_string(TrafficPolicy::Local), "Local");
  EXPECT_STREQ(to_string(SessionAffinity::ClientIP), "ClientIP");
  EXPECT_STREQ(to_string(AddressType::IPv4), "IPv4");
}

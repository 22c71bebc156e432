// Kubernetes objects as Sluice holds them: the subset of the API that pod
// networking, NetworkPolicy and Services need, after API-server style
// defaulting. Plain data; parsing and validation live in manifest.{h,cpp},
// policy semantics in agent/policy/, Service allocation and backends in
// agent/lb/.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace sluice::k8s {

using Labels = std::map<std::string, std::string>;

enum class Protocol { TCP, UDP, SCTP };

struct ObjectMeta {
  std::string name;
  std::string namespace_;  // empty for cluster-scoped kinds (Namespace)
  Labels labels;
  std::map<std::string, std::string> annotations;
  bool operator==(const ObjectMeta&) const = default;
};

struct Namespace {
  ObjectMeta meta;  // labels always include kubernetes.io/metadata.name
  bool operator==(const Namespace&) const = default;
};

struct ContainerPort {
  std::string name;  // optional (IANA_SVC_NAME when set)
  int32_t container_port = 0;
  Protocol protocol = Protocol::TCP;
  bool operator==(const ContainerPort&) const = default;
};

struct Pod {
  ObjectMeta meta;
  std::vector<ContainerPort> ports;  // all containers' ports, in order
  bool operator==(const Pod&) const = default;
};

struct LabelSelectorRequirement {
  enum class Op { In, NotIn, Exists, DoesNotExist };
  std::string key;
  Op op = Op::In;
  std::vector<std::string> values;
  bool operator==(const LabelSelectorRequirement&) const = default;
};

// An empty selector (no labels, no expressions) selects everything.
struct LabelSelector {
  Labels match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;
  bool operator==(const LabelSelector&) const = default;
};

struct IpBlock {
  std::string cidr;                 // validated CIDR text
  std::vector<std::string> except;  // each inside cidr
  bool operator==(const IpBlock&) const = default;
};

// Exactly one of: pod_selector and/or namespace_selector, or ip_block.
struct NetworkPolicyPeer {
  std::optional<LabelSelector> pod_selector;
  std::optional<LabelSelector> namespace_selector;
  std::optional<IpBlock> ip_block;
  bool operator==(const NetworkPolicyPeer&) const = default;
};

struct NetworkPolicyPort {
  Protocol protocol = Protocol::TCP;
  // No port: all ports of the protocol. A number, or a named port resolved
  // per destination pod on this protocol.
  std::optional<std::variant<int32_t, std::string>> port;
  std::optional<int32_t> end_port;  // only with a numeric port, >= port
  bool operator==(const NetworkPolicyPort&) const = default;
};

// Empty `peers` = all sources (ingress) / destinations (egress);
// empty `ports` = all ports.
struct NetworkPolicyRule {
  std::vector<NetworkPolicyPeer> peers;
  std::vector<NetworkPolicyPort> ports;
  bool operator==(const NetworkPolicyRule&) const = default;
};

struct NetworkPolicy {
  ObjectMeta meta;
  LabelSelector pod_selector;
  bool ingress_type = true;   // policyTypes contains Ingress
  bool egress_type = false;   // policyTypes contains Egress
  std::vector<NetworkPolicyRule> ingress;
  std::vector<NetworkPolicyRule> egress;
  bool operator==(const NetworkPolicy&) const = default;
};

// --- Services (v1) ----------------------------------------------------------

// ExternalName is rejected at decoding: Sluice has no DNS to answer it.
enum class ServiceType { ClusterIP, NodePort, LoadBalancer };
enum class IpFamily { IPv4, IPv6 };
enum class IpFamilyPolicy { SingleStack, PreferDualStack, RequireDualStack };
enum class TrafficPolicy { Cluster, Local };
enum class SessionAffinity { None, ClientIP };

struct ServicePort {
  std::string name;  // DNS-1123 label; required when the Service has >1 port
  Protocol protocol = Protocol::TCP;
  std::string app_protocol;  // optional
  int32_t port = 0;
  // A number, or a named container port resolved per backend pod on this
  // port's protocol. Defaulted to `port` (number) when absent, 0 or "".
  std::variant<int32_t, std::string> target_port = int32_t(0);
  int32_t node_port = 0;  // 0: none (ClusterIP) or not allocated yet
  bool operator==(const ServicePort&) const = default;
};

struct LoadBalancerIngress {  // status.loadBalancer.ingress[]
  std::string ip;             // empty for hostname-only entries
  std::string hostname;
  std::string ip_mode;  // "VIP" (default when ip is set) or "Proxy"
  bool operator==(const LoadBalancerIngress&) const = default;
};

inline constexpr const char* kClusterIPNone = "None";
inline constexpr int32_t kDefaultAffinityTimeout = 10800;  // 3 hours
inline constexpr int32_t kMaxAffinityTimeout = 86400;

// After decoding: every API-server default except the ones that need the
// cluster (cluster IPs, ipFamilies, ipFamilyPolicy, nodePorts); after
// lb::Allocator::allocate, those too (the state store keeps that form).
struct Service {
  ObjectMeta meta;  // annotations kept: the LB reads sluice.io/* ones
  ServiceType type = ServiceType::ClusterIP;
  Labels selector;  // empty: no selector (endpoints come from slices only)
  std::vector<ServicePort> ports;
  std::string cluster_ip;                // "", an address, or "None"
  std::vector<std::string> cluster_ips;  // [0] == cluster_ip when set
  std::vector<IpFamily> ip_families;
  std::optional<IpFamilyPolicy> ip_family_policy;
  std::vector<std::string> external_ips;
  SessionAffinity session_affinity = SessionAffinity::None;
  int32_t affinity_timeout = 0;  // ClientIP only: 1..86400, default 10800
  // Set (default Cluster) exactly when the Service is externally
  // accessible: NodePort, LoadBalancer, or ClusterIP with externalIPs.
  std::optional<TrafficPolicy> external_traffic_policy;
  TrafficPolicy internal_traffic_policy = TrafficPolicy::Cluster;
  std::optional<bool> allocate_lb_node_ports;  // LoadBalancer only (true)
  bool publish_not_ready_addresses = false;
  std::vector<LoadBalancerIngress> lb_ingress;  // status
  bool operator==(const Service&) const = default;

  bool headless() const {
    return cluster_ips.size() == 1 && cluster_ips[0] == kClusterIPNone;
  }
  bool externally_accessible() const {
    return type != ServiceType::ClusterIP || !external_ips.empty();
  }
  // NodePort, and LoadBalancer unless allocateLoadBalancerNodePorts: false.
  bool needs_node_ports() const {
    return type == ServiceType::NodePort ||
           (type == ServiceType::LoadBalancer &&
            allocate_lb_node_ports.value_or(true));
  }
};

// --- EndpointSlices (discovery.k8s.io/v1) -----------------------------------

// FQDN slices are rejected at decoding: they cannot be load-balanced to.
enum class AddressType { IPv4, IPv6 };

// As given (the API server does not default them); their meaning for
// consumers: ready unset = ready, serving unset = ready, terminating unset =
// not terminating.
struct EndpointConditions {
  std::optional<bool> ready, serving, terminating;
  bool operator==(const EndpointConditions&) const = default;
};

struct ObjectReference {
  std::string kind, namespace_, name;
  bool operator==(const ObjectReference&) const = default;
};

struct Endpoint {
  std::vector<std::string> addresses;  // 1..100, of the slice's family
  EndpointConditions conditions;
  std::string hostname;   // optional
  std::string node_name;  // optional
  std::string zone;       // optional
  std::optional<ObjectReference> target_ref;
  bool operator==(const Endpoint&) const = default;
};

struct EndpointPort {
  std::string name;  // "" matches an unnamed Service port
  Protocol protocol = Protocol::TCP;
  std::optional<int32_t> port;  // unset: no port (matches nothing here)
  std::string app_protocol;
  bool operator==(const EndpointPort&) const = default;
};

inline constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";

struct EndpointSlice {
  ObjectMeta meta;  // labels[kubernetes.io/service-name] names the Service
  AddressType address_type = AddressType::IPv4;
  std::vector<Endpoint> endpoints;
  std::vector<EndpointPort> ports;
  bool operator==(const EndpointSlice&) const = default;
};

const char* to_string(Protocol p);
const char* to_string(LabelSelectorRequirement::Op op);
// Exact, case-sensitive API spellings ("TCP", "NotIn"); nullopt otherwise.
std::optional<Protocol> parse_protocol(const std::string& s);
std::optional<LabelSelectorRequirement::Op> parse_selector_op(
    const std::string& s);
const char* to_string(ServiceType t);
const char* to_string(IpFamily f);
const char* to_string(IpFamilyPolicy p);
const char* to_string(TrafficPolicy p);
const char* to_string(SessionAffinity a);
const char* to_string(AddressType t);

}  // namespace sluice::k8s

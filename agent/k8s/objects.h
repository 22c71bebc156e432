// Kubernetes objects as Sluice holds them: the subset of the API that pod
// networking, NetworkPolicy and (later) Services need, after API-server
// style defaulting. Plain data; parsing and validation live in
// manifest.{h,cpp}, policy semantics in agent/policy/.
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

const char* to_string(Protocol p);
const char* to_string(LabelSelectorRequirement::Op op);
// Exact, case-sensitive API spellings ("TCP", "NotIn"); nullopt otherwise.
std::optional<Protocol> parse_protocol(const std::string& s);
std::optional<LabelSelectorRequirement::Op> parse_selector_op(
    const std::string& s);

}  // namespace sluice::k8s

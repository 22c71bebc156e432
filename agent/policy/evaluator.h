// Reference semantics of Kubernetes NetworkPolicy (networking.k8s.io/v1),
// with no kernel dependency. One implementation serves three users:
//   - `sluicectl policy trace`: evaluate() + explain() say whether one
//     connection is allowed and which policies/rules decided;
//   - end-to-end tests: evaluate() over every pod pair is the oracle for
//     expected connectivity matrices;
//   - the BPF policy compiler: ingress_rules_for()/egress_rules_for() give
//     one pod's allow-list per direction in flattened form.
//
// Semantics (upstream, plus the choices the spec leaves open):
//   - A connection is allowed iff the egress side of the source (if it is a
//     pod) AND the ingress side of the destination (if it is a pod) allow it.
//   - Per direction, a pod no policy of that type selects is unrestricted;
//     otherwise it is isolated and allowed iff some rule of some selecting
//     policy matches (policies add up; an empty rule list allows nothing).
//   - Policies apply to a pod's traffic with itself too (no loopback
//     exemption); an e2e harness wanting upstream's AllowLoopback() sets the
//     diagonal itself.
//   - ipBlock matches pod addresses as well as external ones, never across
//     families. Selector peers never match external addresses.
//   - A named port is resolved on the connection's destination pod (the
//     policy's own pod for ingress); an external destination never has one.
//   - Malformed input the API server would reject (an unparsable CIDR, a
//     peer with neither selectors nor ipBlock, or both) matches nothing:
//     fail closed rather than open.
#pragma once

#include <compare>
#include <map>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"
#include "k8s/objects.h"

namespace sluice::policy {

struct PodRef {
  std::string namespace_;
  std::string name;
  std::string str() const { return namespace_ + "/" + name; }
  auto operator<=>(const PodRef&) const = default;
};

// A pod as the policy engine needs it: the object plus its addresses
// (status.podIPs: at most one per family).
struct ClusterPod {
  k8s::Pod pod;
  std::vector<IpAddr> ips;
};

struct Cluster {
  std::vector<k8s::Namespace> namespaces;
  std::vector<ClusterPod> pods;

  const ClusterPod* find_pod(const PodRef& ref) const;
  // The namespace's labels; a namespace not listed gets only the
  // kubernetes.io/metadata.name label the API server always sets.
  k8s::Labels namespace_labels(const std::string& ns) const;
};

struct PolicySet {
  std::vector<k8s::NetworkPolicy> policies;
};

enum class Direction { Ingress, Egress };
const char* to_string(Direction d);

struct PolicyRef {
  std::string namespace_;
  std::string name;
  std::string str() const { return namespace_ + "/" + name; }
  auto operator<=>(const PolicyRef&) const = default;
};

// One rule: spec.ingress[rule_index] or spec.egress[rule_index].
struct RuleRef {
  PolicyRef policy;
  Direction direction = Direction::Ingress;
  size_t rule_index = 0;
  std::string str() const;  // "ns/name ingress[0]"
  auto operator<=>(const RuleRef&) const = default;
};

// Either a pod of the cluster or an address outside it.
struct Endpoint {
  std::optional<PodRef> pod;
  IpAddr ip;  // used only when !pod

  static Endpoint of_pod(std::string ns, std::string name) {
    return {PodRef{std::move(ns), std::move(name)}, {}};
  }
  static Endpoint external(IpAddr a) { return {std::nullopt, a}; }
};

struct DirectionVerdict {
  bool applies = false;   // the endpoint is a pod (external: no policy)
  bool isolated = false;  // some policy of this type selects the pod
  bool allowed = true;
  std::vector<PolicyRef> isolated_by;  // every selecting policy
  std::vector<RuleRef> allowed_by;     // every rule that matched
};

struct Verdict {
  bool allowed = false;
  DirectionVerdict egress;   // of the source
  DirectionVerdict ingress;  // of the destination
  // The connection, as resolved, for explain().
  std::string src, dst;  // "ns/pod (ip)" or "ip"
  uint16_t port = 0;
  k8s::Protocol protocol = k8s::Protocol::TCP;
};

// Errors: unknown pod, a pod without an address of `family`, an external
// address of another family, or a family other than AF_INET/AF_INET6.
Result<Verdict> evaluate(const Cluster& cluster, const PolicySet& policies,
                         const Endpoint& src, const Endpoint& dst,
                         uint16_t port, k8s::Protocol proto, int family);

// A few lines of text: the verdict, then one line per direction.
std::string explain(const Verdict& v);

// ---- Flattened allow-lists, for the policy compiler ----

struct PortRange {
  std::optional<k8s::Protocol> protocol;  // nullopt: any (rule had no ports)
  uint16_t first = 0, last = 65535;       // inclusive; 0-65535 = all ports
  std::string named;  // the port name this was resolved from, if any
};

// "Traffic with a peer in this set on these ports is allowed", from one
// rule. The peer set has exactly one form, by `kind`:
//   Any:     every pod and every address (the rule had no peers);
//   Pods:    these pods (selectors resolved against the cluster now; may be
//            empty). `family` != 0 restricts them to connections of that
//            family: it is set when the pods came from an ipBlock (egress
//            named ports, see below);
//   IpBlock: addresses inside `cidr` and outside every `except`, pod
//            addresses included.
// Named ports: for ingress they are resolved on the pod itself (entries
// that do not resolve are dropped); for egress on each destination, so an
// egress named port always yields Pods entries, one per resolved number.
struct AllowedPeer {
  enum class Kind { Any, Pods, IpBlock };
  RuleRef rule;
  Kind kind = Kind::Any;
  std::vector<PodRef> pods;
  int family = 0;
  Cidr cidr;
  std::vector<Cidr> except;
  PortRange ports;
};

struct DirectionRules {
  bool isolated = false;  // false: everything allowed, `allowed` is empty
  std::vector<PolicyRef> isolated_by;
  std::vector<AllowedPeer> allowed;  // union; empty + isolated = deny all
};

// Memo for flattening many pods against one (cluster, policies) pair: the
// compiler flattens every endpoint of a node against the same inputs, and
// the costly part — selector peers resolved over every pod — repeats
// across them. Valid only while both inputs stay unchanged and in place
// (it keys on their addresses); make a new one per compile pass.
class FlattenCache {
 public:
  FlattenCache(const Cluster& c, const PolicySet& ps);
  const ClusterPod* find_pod(const PodRef& ref) const;
  const k8s::Labels& namespace_labels(const std::string& ns) const;
  // Policies of a namespace, in PolicySet order.
  const std::vector<const k8s::NetworkPolicy*>& policies_in(
      const std::string& ns) const;
  // Pods a selector peer of a policy in `policy_ns` selects, cluster order.
  const std::vector<const ClusterPod*>& peer_pods(
      const k8s::NetworkPolicyPeer& peer, const std::string& policy_ns);

 private:
  const Cluster& c_;
  std::map<PodRef, const ClusterPod*> pods_;
  mutable std::map<std::string, k8s::Labels> ns_labels_;
  std::map<std::string, std::vector<const k8s::NetworkPolicy*>> by_ns_;
  std::map<const k8s::NetworkPolicyPeer*, std::vector<const ClusterPod*>>
      peers_;
};

// Errors: unknown pod. `cache` (optional) must have been made for the same
// cluster and policies.
Result<DirectionRules> ingress_rules_for(const Cluster& cluster,
                                         const PolicySet& policies,
                                         const PodRef& pod,
                                         FlattenCache* cache = nullptr);
Result<DirectionRules> egress_rules_for(const Cluster& cluster,
                                        const PolicySet& policies,
                                        const PodRef& pod,
                                        FlattenCache* cache = nullptr);

}  // namespace sluice::policy

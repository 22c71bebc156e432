#include "policy/evaluator.h"

#include <arpa/inet.h>

#include <map>
#include <sstream>

#include "policy/selector.h"

namespace sluice::policy {

namespace {

using k8s::NetworkPolicy;
using k8s::NetworkPolicyPeer;
using k8s::NetworkPolicyPort;
using k8s::NetworkPolicyRule;

PodRef ref_of(const ClusterPod& p) {
  return {p.pod.meta.namespace_, p.pod.meta.name};
}

PolicyRef ref_of(const NetworkPolicy& p) {
  return {p.meta.namespace_, p.meta.name};
}

// status.podIPs holds at most one address per family.
std::optional<IpAddr> ip_of(const ClusterPod& p, int family) {
  for (const auto& ip : p.ips)
    if (ip.family == family) return ip;
  return std::nullopt;
}

bool selects(const NetworkPolicy& pol, Direction d, const ClusterPod& p) {
  const bool typed = d == Direction::Ingress ? pol.ingress_type
                                             : pol.egress_type;
  return typed && pol.meta.namespace_ == p.pod.meta.namespace_ &&
         matches(pol.pod_selector, p.pod.meta.labels);
}

const std::vector<NetworkPolicyRule>& rules(const NetworkPolicy& pol,
                                            Direction d) {
  return d == Direction::Ingress ? pol.ingress : pol.egress;
}

struct Block {
  Cidr cidr;
  std::vector<Cidr> except;
  bool contains(const IpAddr& a) const {
    if (!cidr.contains(a)) return false;  // also rejects other families
    for (const auto& e : except)
      if (e.contains(a)) return false;
    return true;
  }
};

// nullopt if any CIDR fails to parse: the peer then matches nothing.
std::optional<Block> parse_block(const k8s::IpBlock& b) {
  auto c = Cidr::parse(b.cidr);
  if (!c) return std::nullopt;
  Block out{*c, {}};
  for (const auto& e : b.except) {
    auto ec = Cidr::parse(e);
    if (!ec) return std::nullopt;
    out.except.push_back(*ec);
  }
  return out;
}

bool is_selector_peer(const NetworkPolicyPeer& p) {
  return !p.ip_block && (p.pod_selector || p.namespace_selector);
}
bool is_block_peer(const NetworkPolicyPeer& p) {
  return p.ip_block && !p.pod_selector && !p.namespace_selector;
}

// podSelector alone: pods of the policy's namespace; namespaceSelector
// alone: all pods of matching namespaces; both: the AND of the two.
bool selector_peer_selects(const k8s::Labels& ns_labels,
                           const NetworkPolicyPeer& peer,
                           const std::string& policy_ns,
                           const ClusterPod& p) {
  if (peer.namespace_selector) {
    if (!matches(*peer.namespace_selector, ns_labels)) return false;
  } else if (p.pod.meta.namespace_ != policy_ns) {
    return false;
  }
  return !peer.pod_selector || matches(*peer.pod_selector, p.pod.meta.labels);
}
bool selector_peer_selects(const Cluster& c, const NetworkPolicyPeer& peer,
                           const std::string& policy_ns,
                           const ClusterPod& p) {
  return selector_peer_selects(
      peer.namespace_selector ? c.namespace_labels(p.pod.meta.namespace_)
                              : k8s::Labels{},
      peer, policy_ns, p);
}

// The far side of the connection as seen by one direction's rules.
struct Remote {
  const ClusterPod* pod = nullptr;  // null: external address
  IpAddr ip;                        // pod's address of the connection family
};

bool peer_matches(const Cluster& c, const NetworkPolicyPeer& peer,
                  const std::string& policy_ns, const Remote& r) {
  if (is_block_peer(peer)) {
    auto b = parse_block(*peer.ip_block);
    return b && b->contains(r.ip);
  }
  return is_selector_peer(peer) && r.pod &&
         selector_peer_selects(c, peer, policy_ns, *r.pod);
}

// The port ranges one policy port stands for when the destination is
// `dst` (null: external or not known). Shared by evaluate() and the
// flattened form so the two cannot disagree.
std::vector<PortRange> resolve_port(const NetworkPolicyPort& pp,
                                    const ClusterPod* dst) {
  if (!pp.port) return {PortRange{pp.protocol, 0, 65535, {}}};
  if (const auto* num = std::get_if<int32_t>(&*pp.port)) {
    const int32_t last = pp.end_port ? *pp.end_port : *num;
    if (*num < 0 || last > 65535 || last < *num) return {};  // invalid
    return {PortRange{pp.protocol, static_cast<uint16_t>(*num),
                      static_cast<uint16_t>(last), {}}};
  }
  const auto& name = std::get<std::string>(*pp.port);
  std::vector<PortRange> out;
  if (!dst) return out;
  for (const auto& cp : dst->pod.ports) {
    if (cp.name == name && cp.protocol == pp.protocol &&
        cp.container_port > 0 && cp.container_port <= 65535) {
      const auto n = static_cast<uint16_t>(cp.container_port);
      out.push_back(PortRange{pp.protocol, n, n, name});
    }
  }
  return out;
}

bool ports_match(const NetworkPolicyRule& rule, const ClusterPod* dst,
                 uint16_t port, k8s::Protocol proto) {
  if (rule.ports.empty()) return true;
  for (const auto& pp : rule.ports)
    for (const auto& r : resolve_port(pp, dst))
      if (r.protocol == proto && r.first <= port && port <= r.last)
        return true;
  return false;
}

bool rule_matches(const Cluster& c, const NetworkPolicyRule& rule,
                  const std::string& policy_ns, const Remote& remote,
                  const ClusterPod* dst, uint16_t port, k8s::Protocol proto) {
  if (!ports_match(rule, dst, port, proto)) return false;
  if (rule.peers.empty()) return true;
  for (const auto& peer : rule.peers)
    if (peer_matches(c, peer, policy_ns, remote)) return true;
  return false;
}

DirectionVerdict judge(const Cluster& c, const PolicySet& ps,
                       const ClusterPod& self, Direction d,
                       const Remote& remote, const ClusterPod* dst,
                       uint16_t port, k8s::Protocol proto) {
  DirectionVerdict v;
  v.applies = true;
  for (const auto& pol : ps.policies) {
    if (!selects(pol, d, self)) continue;
    v.isolated_by.push_back(ref_of(pol));
    const auto& rs = rules(pol, d);
    for (size_t i = 0; i < rs.size(); i++)
      if (rule_matches(c, rs[i], pol.meta.namespace_, remote, dst, port,
                       proto))
        v.allowed_by.push_back({ref_of(pol), d, i});
  }
  v.isolated = !v.isolated_by.empty();
  v.allowed = !v.isolated || !v.allowed_by.empty();
  return v;
}

// An endpoint resolved for one connection: its pod (if any) and address.
Result<Remote> resolve(const Cluster& c, const Endpoint& e, int family,
                       std::string* text) {
  if (!e.pod) {
    if (e.ip.family != family)
      return err("address " + e.ip.str() +
                 " is not of the connection's family");
    *text = e.ip.str();
    return Remote{nullptr, e.ip};
  }
  const ClusterPod* p = c.find_pod(*e.pod);
  if (!p) return err("pod " + e.pod->str() + " not found");
  auto ip = ip_of(*p, family);
  if (!ip)
    return err("pod " + e.pod->str() + " has no " +
               (family == AF_INET ? "IPv4" : "IPv6") + " address");
  *text = e.pod->str() + " (" + ip->str() + ")";
  return Remote{p, *ip};
}

}  // namespace

const ClusterPod* Cluster::find_pod(const PodRef& ref) const {
  for (const auto& p : pods)
    if (p.pod.meta.namespace_ == ref.namespace_ && p.pod.meta.name == ref.name)
      return &p;
  return nullptr;
}

k8s::Labels Cluster::namespace_labels(const std::string& ns) const {
  for (const auto& n : namespaces)
    if (n.meta.name == ns) return n.meta.labels;
  return {{"kubernetes.io/metadata.name", ns}};
}

const char* to_string(Direction d) {
  return d == Direction::Ingress ? "ingress" : "egress";
}

std::string RuleRef::str() const {
  return policy.str() + " " + to_string(direction) + "[" +
         std::to_string(rule_index) + "]";
}

Result<Verdict> evaluate(const Cluster& cluster, const PolicySet& policies,
                         const Endpoint& src, const Endpoint& dst,
                         uint16_t port, k8s::Protocol proto, int family) {
  if (family != AF_INET && family != AF_INET6)
    return err("address family must be AF_INET or AF_INET6, got " +
               std::to_string(family));
  Verdict v;
  v.port = port;
  v.protocol = proto;
  auto s = resolve(cluster, src, family, &v.src);
  if (!s) return err("source: " + s.error());
  auto d = resolve(cluster, dst, family, &v.dst);
  if (!d) return err("destination: " + d.error());
  if (s->pod)
    v.egress = judge(cluster, policies, *s->pod, Direction::Egress, *d,
                     d->pod, port, proto);
  if (d->pod)
    v.ingress = judge(cluster, policies, *d->pod, Direction::Ingress, *s,
                      d->pod, port, proto);
  v.allowed = v.egress.allowed && v.ingress.allowed;
  return v;
}

namespace {

void explain_direction(std::ostringstream& o, const char* what,
                       const std::string& who, const DirectionVerdict& d) {
  o << "\n  " << what << " " << who << ": ";
  if (!d.applies) {
    o << "external, no policy applies";
  } else if (!d.isolated) {
    o << "allowed (not isolated: no policy selects it)";
  } else if (d.allowed) {
    o << "allowed by";
    for (const auto& r : d.allowed_by) o << " " << r.str();
  } else {
    o << "denied (isolated by";
    for (const auto& p : d.isolated_by) o << " " << p.str();
    o << "; no rule matches)";
  }
}

}  // namespace

std::string explain(const Verdict& v) {
  std::ostringstream o;
  o << v.src << " -> " << v.dst << " " << v.port << "/"
    << k8s::to_string(v.protocol) << ": "
    << (v.allowed ? "ALLOWED" : "DENIED");
  explain_direction(o, "egress from", v.src, v.egress);
  explain_direction(o, "ingress to", v.dst, v.ingress);
  return o.str();
}

// ---- Flattened allow-lists ----

namespace {

// Appends the entries of one peer of a rule (nullptr: the rule has no
// peers, i.e. Any), one per port range the rule's ports resolve to.
void add_entries(const Cluster& c, FlattenCache& fc, const ClusterPod& self,
                 Direction d, const RuleRef& rr, const std::string& policy_ns,
                 const NetworkPolicyPeer* peer, const NetworkPolicyRule& rule,
                 std::vector<AllowedPeer>& out) {
  AllowedPeer base;
  base.rule = rr;
  std::optional<Block> block;
  if (!peer) {
    base.kind = AllowedPeer::Kind::Any;
  } else if (is_block_peer(*peer)) {
    block = parse_block(*peer->ip_block);
    if (!block) return;  // malformed: matches nothing
    base.kind = AllowedPeer::Kind::IpBlock;
    base.cidr = block->cidr;
    base.except = block->except;
  } else if (is_selector_peer(*peer)) {
    base.kind = AllowedPeer::Kind::Pods;
    for (const ClusterPod* p : fc.peer_pods(*peer, policy_ns))
      base.pods.push_back(ref_of(*p));
  } else {
    return;  // malformed: matches nothing
  }

  // Would this peer form match pod p as a destination (egress named ports)?
  auto form_has = [&](const ClusterPod& p) {
    switch (base.kind) {
      case AllowedPeer::Kind::Any: return true;
      case AllowedPeer::Kind::Pods:
        return selector_peer_selects(
            fc.namespace_labels(p.pod.meta.namespace_), *peer, policy_ns, p);
      case AllowedPeer::Kind::IpBlock: {
        auto ip = ip_of(p, block->cidr.addr.family);
        return ip && block->contains(*ip);
      }
    }
    return false;
  };

  if (rule.ports.empty()) {
    out.push_back(base);  // default PortRange: any protocol, all ports
    return;
  }
  for (const auto& pp : rule.ports) {
    const bool named = pp.port && std::holds_alternative<std::string>(*pp.port);
    if (!named || d == Direction::Ingress) {
      // Numbers need no destination; ingress names resolve on self.
      for (const auto& r : resolve_port(pp, &self)) {
        AllowedPeer e = base;
        e.ports = r;
        out.push_back(std::move(e));
      }
      continue;
    }
    // Egress named port: resolved on each destination pod; group the pods
    // by the number it resolves to. External destinations never match.
    std::map<uint16_t, AllowedPeer> by_port;
    std::vector<const ClusterPod*> all;
    if (base.kind != AllowedPeer::Kind::Pods)
      for (const auto& p : c.pods) all.push_back(&p);
    const auto& candidates = base.kind == AllowedPeer::Kind::Pods
                                 ? fc.peer_pods(*peer, policy_ns)
                                 : all;
    for (const ClusterPod* pp_pod : candidates) {
      const ClusterPod& p = *pp_pod;
      if (!form_has(p)) continue;
      for (const auto& r : resolve_port(pp, &p)) {
        auto [it, fresh] = by_port.try_emplace(r.first);
        if (fresh) {
          it->second.rule = rr;
          it->second.kind = AllowedPeer::Kind::Pods;
          it->second.ports = r;
          if (block) it->second.family = block->cidr.addr.family;
        }
        it->second.pods.push_back(ref_of(p));
      }
    }
    for (auto& [n, e] : by_port) out.push_back(std::move(e));
  }
}

Result<DirectionRules> rules_for(const Cluster& c, const PolicySet& ps,
                                 const PodRef& ref, Direction d,
                                 FlattenCache* cache) {
  std::optional<FlattenCache> own;
  if (!cache) cache = &own.emplace(c, ps);
  FlattenCache& fc = *cache;
  const ClusterPod* self = fc.find_pod(ref);
  if (!self) return err("pod " + ref.str() + " not found");
  DirectionRules out;
  for (const auto* polp : fc.policies_in(ref.namespace_)) {
    const auto& pol = *polp;
    if (!selects(pol, d, *self)) continue;
    out.isolated_by.push_back(ref_of(pol));
    const auto& rs = rules(pol, d);
    for (size_t i = 0; i < rs.size(); i++) {
      const RuleRef rr{ref_of(pol), d, i};
      if (rs[i].peers.empty())
        add_entries(c, fc, *self, d, rr, pol.meta.namespace_, nullptr,
                    rs[i], out.allowed);
      for (const auto& peer : rs[i].peers)
        add_entries(c, fc, *self, d, rr, pol.meta.namespace_, &peer, rs[i],
                    out.allowed);
    }
  }
  out.isolated = !out.isolated_by.empty();
  return out;
}

}  // namespace

FlattenCache::FlattenCache(const Cluster& c, const PolicySet& ps) : c_(c) {
  for (const auto& p : c.pods) pods_.emplace(ref_of(p), &p);
  for (const auto& n : c.namespaces) ns_labels_.emplace(n.meta.name, n.meta.labels);
  for (const auto& p : ps.policies) by_ns_[p.meta.namespace_].push_back(&p);
}

const ClusterPod* FlattenCache::find_pod(const PodRef& ref) const {
  auto it = pods_.find(ref);
  return it == pods_.end() ? nullptr : it->second;
}

const k8s::Labels& FlattenCache::namespace_labels(const std::string& ns) const {
  auto it = ns_labels_.find(ns);
  if (it != ns_labels_.end()) return it->second;
  // Not listed: only the label the API server always sets. Remembered so
  // the reference stays valid.
  return ns_labels_.emplace(ns, c_.namespace_labels(ns)).first->second;
}

const std::vector<const k8s::NetworkPolicy*>& FlattenCache::policies_in(
    const std::string& ns) const {
  static const std::vector<const k8s::NetworkPolicy*> none;
  auto it = by_ns_.find(ns);
  return it == by_ns_.end() ? none : it->second;
}

const std::vector<const ClusterPod*>& FlattenCache::peer_pods(
    const NetworkPolicyPeer& peer, const std::string& policy_ns) {
  auto [it, fresh] = peers_.try_emplace(&peer);
  if (fresh)
    for (const auto& p : c_.pods)
      if (selector_peer_selects(namespace_labels(p.pod.meta.namespace_), peer,
                                policy_ns, p))
        it->second.push_back(&p);
  return it->second;
}

Result<DirectionRules> ingress_rules_for(const Cluster& cluster,
                                         const PolicySet& policies,
                                         const PodRef& pod,
                                         FlattenCache* cache) {
  return rules_for(cluster, policies, pod, Direction::Ingress, cache);
}

Result<DirectionRules> egress_rules_for(const Cluster& cluster,
                                        const PolicySet& policies,
                                        const PodRef& pod,
                                        FlattenCache* cache) {
  return rules_for(cluster, policies, pod, Direction::Egress, cache);
}

}  // namespace sluice::policy

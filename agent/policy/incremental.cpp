#include "policy/incremental.h"

#include "policy/compiler_util.h"
#include "policy/selector.h"

namespace sluice::policy {

using detail::ref_of;

IncrementalCompiler::PodStates IncrementalCompiler::snapshot(
    const Cluster& cluster, const IdentityOf& identity_of) {
  PodStates out;
  for (const auto& p : cluster.pods) {
    const PodRef ref = ref_of(p);
    out.emplace(ref, PodState{p.pod, cluster.namespace_labels(ref.namespace_),
                              p.ips, detail::label_identity(identity_of, ref)});
  }
  return out;
}

namespace {

// Could `peer` of a policy in namespace `ns` name a pod in state `s`?
bool peer_may_name(const k8s::NetworkPolicyPeer& peer, const std::string& ns,
                   const PodRef& ref, const k8s::Labels& labels,
                   const k8s::Labels& ns_labels,
                   const std::vector<IpAddr>& ips) {
  if (peer.ip_block) {
    auto c = Cidr::parse(peer.ip_block->cidr);
    if (!c) return false;
    for (const auto& ip : ips)
      if (c->contains(ip)) return true;
    return false;
  }
  if (!peer.pod_selector && !peer.namespace_selector) return false;
  if (peer.namespace_selector) {
    if (!matches(*peer.namespace_selector, ns_labels)) return false;
  } else if (ref.namespace_ != ns) {
    return false;
  }
  return !peer.pod_selector || matches(*peer.pod_selector, labels);
}

bool has_named_port(const k8s::NetworkPolicyRule& r) {
  for (const auto& p : r.ports)
    if (p.port && std::holds_alternative<std::string>(*p.port)) return true;
  return false;
}

}  // namespace

std::set<PodRef> IncrementalCompiler::reached_by_pod_changes(
    const Cluster& cluster, const PolicySet& policies, const PodStates& now,
    bool* any) const {
  // Changed pods, each with its state before and/or after.
  struct Change {
    PodRef ref;
    const PodState* before;
    const PodState* after;
  };
  std::vector<Change> changes;
  for (const auto& [ref, s] : pods_) {
    auto it = now.find(ref);
    if (it == now.end()) changes.push_back({ref, &s, nullptr});
    else if (!(it->second == s)) changes.push_back({ref, &s, &it->second});
  }
  for (const auto& [ref, s] : now)
    if (!pods_.count(ref)) changes.push_back({ref, nullptr, &s});

  std::set<PodRef> out;
  *any = !changes.empty();
  if (changes.empty()) return out;
  for (const auto& c : changes) out.insert(c.ref);

  auto names_a_change = [&](const k8s::NetworkPolicy& p) {
    for (const auto* rules : {&p.ingress, &p.egress})
      for (const auto& r : *rules) {
        if (rules == &p.egress && has_named_port(r)) return true;
        for (const auto& peer : r.peers)
          for (const auto& c : changes)
            for (const PodState* s : {c.before, c.after})
              if (s && peer_may_name(peer, p.meta.namespace_, c.ref,
                                     s->pod.meta.labels, s->ns_labels, s->ips))
                return true;
      }
    return false;
  };
  std::vector<const k8s::NetworkPolicy*> reaching;
  for (const auto& p : policies.policies)
    if (names_a_change(p)) reaching.push_back(&p);
  detail::add_selected_pods(cluster, reaching, out);
  return out;
}

Result<IncrementalCompiler::Delta> IncrementalCompiler::update(
    const Cluster& cluster, const PolicySet& policies,
    const IdentityOf& identity_of, const std::set<PodRef>& local,
    CidrIdentities& cidrs, RuleTable& rules) {
  pending_.reset();
  std::set<Cidr> prefixes = policy_prefixes(policies);
  if (auto s = cidrs.sync(prefixes); !s) return err(s.error());
  rules.retain(policies);

  Pending next;
  next.pods = snapshot(cluster, identity_of);
  Delta d;
  d.full = !valid_;

  // Which local endpoints to recompile.
  std::set<PodRef> todo;
  bool pods_changed = true;
  if (d.full) {
    todo = local;
  } else {
    for (const auto& r : affected_pods(policies_, policies, cluster))
      if (local.count(r)) todo.insert(r);
    for (const auto& r : reached_by_pod_changes(cluster, policies, next.pods,
                                                &pods_changed))
      if (local.count(r)) todo.insert(r);
    for (const auto& r : local)  // new endpoints of known pods
      if (!installed_.count(r)) todo.insert(r);
  }

  FlattenCache cache(cluster, policies);
  std::map<uint32_t, std::vector<PodRef>> by_identity;
  const CompileInput in{cluster, policies, cidrs, identity_of, capacity_,
                        &cache, &by_identity};
  for (const auto& ref : todo) {
    auto ep = compile_endpoint(in, rules, ref);
    if (!ep) return err(ep.error());
    d.compiled++;
    auto it = installed_.find(ref);
    if (it != installed_.end() && it->second.entries == ep->entries &&
        it->second.ingress_enforced == ep->ingress_enforced &&
        it->second.egress_enforced == ep->egress_enforced)
      continue;
    d.endpoints.push_back(std::move(*ep));
  }
  for (const auto& [ref, _] : installed_)
    if (!local.count(ref)) d.removed.push_back(ref);

  // The ipcache is a function of the pods (addresses, identities) and the
  // policy prefixes only: most policy changes leave it as it is.
  if (!d.full && !pods_changed && prefixes == prefixes_) {
    next.ipcache_same = true;
  } else {
    for (auto& e : compile_ipcache(cluster, cidrs, identity_of)) {
      auto it = ipcache_.find(e.prefix);
      if (it == ipcache_.end() || !(it->second == e) || d.full)
        d.ipcache_upserts.push_back(e);
      next.ipcache.emplace(e.prefix, std::move(e));
    }
    for (const auto& [prefix, _] : ipcache_)
      if (!next.ipcache.count(prefix)) d.ipcache_deletes.push_back(prefix);
  }
  next.prefixes = std::move(prefixes);

  next.policies = policies;
  next.changed = d.endpoints;
  next.removed = d.removed;
  pending_ = std::move(next);
  return d;
}

void IncrementalCompiler::commit() {
  if (!pending_) return;
  policies_ = std::move(pending_->policies);
  pods_ = std::move(pending_->pods);
  if (!pending_->ipcache_same) ipcache_ = std::move(pending_->ipcache);
  prefixes_ = std::move(pending_->prefixes);
  for (auto& ep : pending_->changed) {
    const PodRef ref = ep.pod;
    installed_.insert_or_assign(ref, std::move(ep));
  }
  for (const auto& r : pending_->removed) installed_.erase(r);
  pending_.reset();
  valid_ = true;
}

void IncrementalCompiler::forget() {
  // Prefixes of a delta that may have been written half-way must be
  // candidates for deletion next time.
  if (pending_)
    for (auto& [prefix, e] : pending_->ipcache) ipcache_.emplace(prefix, e);
  prefixes_.clear();
  pending_.reset();
  valid_ = false;
  installed_.clear();
}

void IncrementalCompiler::invalidate(const PodRef& pod) {
  installed_.erase(pod);
}

}  // namespace sluice::policy


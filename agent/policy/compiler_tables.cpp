// RuleTable, CIDR identities, ipcache entries and affected_pods(): the
// cluster-wide tables of the policy compiler (compiler.h).
#include <algorithm>
#include <iterator>
#include <limits>

#include "policy/compiler.h"
#include "policy/compiler_util.h"
#include "policy/selector.h"
#include "sluice/abi.h"

namespace sluice::policy {

using detail::blocks_of;
using detail::host_prefix;
using detail::inside;
using detail::label_identity;
using detail::ref_of;

// ---- RuleTable ----

uint32_t RuleTable::id_for(const RuleRef& rule) {
  auto [it, fresh] = by_ref_.try_emplace(rule, next_);
  if (fresh) by_id_.emplace(next_++, rule);
  return it->second;
}

std::optional<uint32_t> RuleTable::find(const RuleRef& rule) const {
  auto it = by_ref_.find(rule);
  if (it == by_ref_.end()) return std::nullopt;
  return it->second;
}

const RuleRef* RuleTable::lookup(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

void RuleTable::retain(const PolicySet& policies) {
  std::set<RuleRef> live;
  for (const auto& p : policies.policies) {
    const PolicyRef pr{p.meta.namespace_, p.meta.name};
    for (size_t i = 0; i < p.ingress.size(); i++)
      live.insert({pr, Direction::Ingress, i});
    for (size_t i = 0; i < p.egress.size(); i++)
      live.insert({pr, Direction::Egress, i});
  }
  for (auto it = by_ref_.begin(); it != by_ref_.end();) {
    if (live.count(it->first)) {
      ++it;
      continue;
    }
    by_id_.erase(it->second);
    it = by_ref_.erase(it);
  }
}

// ---- CIDR identities ----

std::set<Cidr> policy_prefixes(const PolicySet& policies) {
  std::set<Cidr> out;
  for (const auto& p : policies.policies)
    blocks_of(p, [&](const k8s::IpBlock& b) {
      if (auto c = Cidr::parse(b.cidr)) out.insert(*c);
      for (const auto& e : b.except)
        if (auto c = Cidr::parse(e)) out.insert(*c);
    });
  return out;
}

Status CidrIdentities::sync(const std::set<Cidr>& prefixes) {
  if (!init_) {
    next_ = kIdentityFirstCidr;
    init_ = true;
  }
  for (auto it = by_prefix_.begin(); it != by_prefix_.end();) {
    if (prefixes.count(it->first)) {
      ++it;
      continue;
    }
    by_id_.erase(it->second);
    it = by_prefix_.erase(it);
  }
  const uint64_t space =
      uint64_t(std::numeric_limits<uint32_t>::max()) - kIdentityFirstCidr + 1;
  for (const auto& p : prefixes) {
    if (by_prefix_.count(p)) continue;
    if (by_id_.size() >= space)
      return err("CIDR identities exhausted at prefix " + p.str());
    // Monotonic, wrapping: freed numbers come back only after a full turn.
    while (by_id_.count(next_))
      next_ = next_ == std::numeric_limits<uint32_t>::max()
                  ? uint32_t(kIdentityFirstCidr)
                  : next_ + 1;
    const uint32_t id = next_;
    next_ = next_ == std::numeric_limits<uint32_t>::max()
                ? uint32_t(kIdentityFirstCidr)
                : next_ + 1;
    by_prefix_.emplace(p, id);
    by_id_.emplace(id, p);
  }
  lengths_.clear();
  for (const auto& [p, id] : by_prefix_)
    lengths_[p.addr.family].insert(p.prefixlen);
  return {};
}

std::optional<uint32_t> CidrIdentities::id_of(const Cidr& prefix) const {
  auto it = by_prefix_.find(prefix);
  if (it == by_prefix_.end()) return std::nullopt;
  return it->second;
}

std::optional<Cidr> CidrIdentities::prefix_of(uint32_t id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

uint32_t CidrIdentities::most_specific(const IpAddr& a) const {
  auto lens = lengths_.find(a.family);
  if (lens == lengths_.end()) return SLUICE_ID_WORLD;
  for (uint8_t len : lens->second) {
    Cidr c{a, len};
    const size_t full = len / 8;
    for (size_t i = full; i < a.size(); i++) {
      const int keep = i == full ? len % 8 : 0;
      c.addr.bytes[i] &= uint8_t(0xff00 >> keep);
    }
    auto it = by_prefix_.find(c);
    if (it != by_prefix_.end()) return it->second;
  }
  return SLUICE_ID_WORLD;
}

// ---- ipcache ----

std::vector<IpcacheEntry> compile_ipcache(const Cluster& cluster,
                                          const CidrIdentities& cidrs,
                                          const IdentityOf& identity_of) {
  std::map<Cidr, IpcacheEntry> out;
  for (const auto& [p, id] : cidrs.all()) out[p] = {p, id, id};
  for (const auto& pod : cluster.pods) {
    auto id = label_identity(identity_of, ref_of(pod));
    if (!id) continue;
    for (const auto& ip : pod.ips) {
      const Cidr host = host_prefix(ip);
      out[host] = {host, *id, cidrs.most_specific(ip)};
    }
  }
  std::vector<IpcacheEntry> v;
  v.reserve(out.size());
  for (auto& [p, e] : out) v.push_back(e);
  return v;
}

// ---- Incrementality ----

std::vector<PodRef> affected_pods(const PolicySet& before,
                                  const PolicySet& after,
                                  const Cluster& cluster) {
  using Name = std::pair<std::string, std::string>;
  auto index = [](const PolicySet& ps) {
    std::map<Name, const k8s::NetworkPolicy*> m;
    for (const auto& p : ps.policies)
      m[{p.meta.namespace_, p.meta.name}] = &p;
    return m;
  };
  const auto old_by = index(before), new_by = index(after);

  std::vector<const k8s::NetworkPolicy*> relevant;  // selectors to apply
  std::set<Name> changed;
  for (const auto& [n, p] : old_by) {
    auto it = new_by.find(n);
    if (it == new_by.end() || !(*it->second == *p)) {
      changed.insert(n);
      relevant.push_back(p);
    }
  }
  for (const auto& [n, p] : new_by) {
    auto it = old_by.find(n);
    if (it == old_by.end() || !(*it->second == *p)) {
      changed.insert(n);
      relevant.push_back(p);
    }
  }

  // Prefixes that appear or disappear change the IpBlock translation of
  // every unchanged ipBlock that contains them.
  const auto pb = policy_prefixes(before), pa = policy_prefixes(after);
  std::vector<Cidr> delta;
  std::set_symmetric_difference(pb.begin(), pb.end(), pa.begin(), pa.end(),
                                std::back_inserter(delta));
  if (!delta.empty()) {
    for (const auto& [n, p] : new_by) {
      if (changed.count(n)) continue;
      bool hit = false;
      blocks_of(*p, [&](const k8s::IpBlock& b) {
        auto c = Cidr::parse(b.cidr);
        if (!c) return;
        for (const auto& d : delta)
          if (inside(d, *c)) hit = true;
      });
      if (hit) relevant.push_back(p);
    }
  }

  std::set<PodRef> out;
  detail::add_selected_pods(cluster, relevant, out);
  return {out.begin(), out.end()};
}

}  // namespace sluice::policy

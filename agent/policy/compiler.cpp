// Per-endpoint policy compilation (compiler.h); the cluster-wide tables
// are in compiler_tables.cpp.
#include "policy/compiler.h"

#include <arpa/inet.h>

#include <algorithm>
#include <tuple>

#include "policy/compiler_util.h"
#include "sluice/abi.h"

namespace sluice::policy {

using detail::inside;
using detail::label_identity;
using detail::ref_of;

// ---- Per-endpoint policy ----

namespace {

constexpr uint8_t kProtoOther = 0;
constexpr uint8_t kProtoSctp = 132;

uint8_t proto_number(k8s::Protocol p) {
  switch (p) {
    case k8s::Protocol::TCP: return IPPROTO_TCP;
    case k8s::Protocol::UDP: return IPPROTO_UDP;
    case k8s::Protocol::SCTP: return kProtoSctp;
  }
  return kProtoOther;
}

std::string proto_name(uint8_t p) {
  switch (p) {
    case IPPROTO_TCP: return "TCP";
    case IPPROTO_UDP: return "UDP";
    case kProtoSctp: return "SCTP";
  }
  return "other";
}

struct Range {
  uint16_t lo, hi;
  uint32_t rule;
};

// Everything compiled for one {identity, dir, proto} key.
struct KeyAcc {
  bool any = false;
  uint32_t any_rule = 0;
  std::vector<Range> ranges;
  std::set<PolicyRef> policies;  // to blame in errors
};

using Key = std::tuple<uint32_t, uint8_t, uint8_t>;

// Sorted, non-overlapping-per-rule ranges with shadowed ones removed; the
// union of ports (and which rule allows each port, where it is unique) is
// unchanged.
std::vector<Range> merge(std::vector<Range> rs, bool across_rules) {
  std::sort(rs.begin(), rs.end(), [&](const Range& a, const Range& b) {
    if (!across_rules && a.rule != b.rule) return a.rule < b.rule;
    return std::tie(a.lo, b.hi) < std::tie(b.lo, a.hi);
  });
  std::vector<Range> out;
  for (const auto& r : rs) {
    if (!out.empty() && (across_rules || out.back().rule == r.rule) &&
        uint32_t(r.lo) <= uint32_t(out.back().hi) + 1) {
      out.back().hi = std::max(out.back().hi, r.hi);
      continue;
    }
    out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const Range& a, const Range& b) {
    return std::tie(a.lo, b.hi, a.rule) < std::tie(b.lo, a.hi, b.rule);
  });
  // Drop ranges inside an earlier one: the datapath's first-match scan
  // would never reach them.
  // Sorted by lo, then hi descending: r is inside an earlier range iff
  // some earlier hi reaches r.hi.
  std::vector<Range> kept;
  int32_t max_hi = -1;
  for (const auto& r : out) {
    if (int32_t(r.hi) <= max_hi) continue;
    max_hi = r.hi;
    kept.push_back(r);
  }
  return kept;
}

std::string peer_text(uint32_t id, const CidrIdentities& cidrs) {
  if (id == SLUICE_ID_ANY) return "any peer";
  if (auto p = cidrs.prefix_of(id)) return "CIDR " + p->str();
  return "identity " + std::to_string(id);
}

class EndpointCompiler {
 public:
  EndpointCompiler(const CompileInput& in, RuleTable& rules, PodRef pod)
      : in_(in), rules_(rules) {
    out_.pod = std::move(pod);
  }

  Result<EndpointPolicy> run() {
    auto ing = ingress_rules_for(in_.cluster, in_.policies, out_.pod, in_.cache);
    if (!ing) return err(ing.error());
    auto eg = egress_rules_for(in_.cluster, in_.policies, out_.pod, in_.cache);
    if (!eg) return err(eg.error());
    out_.ingress_enforced = ing->isolated;
    out_.egress_enforced = eg->isolated;
    for (const auto& a : ing->allowed)
      if (auto s = add(a, SLUICE_DIR_INGRESS); !s) return err(s.error());
    for (const auto& a : eg->allowed)
      if (auto s = add(a, SLUICE_DIR_EGRESS); !s) return err(s.error());
    if (auto s = emit(); !s) return err(s.error());
    std::sort(out_.notes.begin(), out_.notes.end());
    out_.notes.erase(std::unique(out_.notes.begin(), out_.notes.end()),
                     out_.notes.end());
    return std::move(out_);
  }

 private:
  std::string where(const RuleRef& r) const {
    return "endpoint " + out_.pod.str() + ", policy " + r.str();
  }

  // The peer identities one AllowedPeer stands for.
  Result<std::vector<uint32_t>> peers(const AllowedPeer& a) {
    std::set<uint32_t> ids;
    switch (a.kind) {
      case AllowedPeer::Kind::Any:
        return std::vector<uint32_t>{SLUICE_ID_ANY};
      case AllowedPeer::Kind::Pods:
        for (const auto& p : a.pods)
          if (auto id = label_identity(in_.identity_of, p)) ids.insert(*id);
        break;
      case AllowedPeer::Kind::IpBlock: {
        auto cid = in_.cidrs.id_of(a.cidr);
        if (!cid)
          return err(where(a.rule) + ": ipBlock " + a.cidr.str() +
                     " has no CIDR identity (CIDR identities not synced "
                     "with the policies)");
        ids.insert(*cid);
        for (const auto& [p, id] : in_.cidrs.all()) {
          if (p == a.cidr || !inside(p, a.cidr)) continue;
          bool excepted = false;
          for (const auto& e : a.except)
            if (inside(p, e)) excepted = true;
          if (!excepted) ids.insert(id);
        }
        break;
      }
    }
    return std::vector<uint32_t>(ids.begin(), ids.end());
  }

  void note_over_permits(const AllowedPeer& a,
                         const std::vector<uint32_t>& ids) {
    if (a.kind != AllowedPeer::Kind::Pods || a.ports.named.empty()) return;
    const std::string what = "policy " + a.rule.str() + ": named port " +
                             a.ports.named + " (= " +
                             std::to_string(a.ports.first) + ")";
    if (a.family) {
      out_.notes.push_back(
          what + " via an " + (a.family == AF_INET ? "IPv4" : "IPv6") +
          " ipBlock also allows the same pods over " +
          (a.family == AF_INET ? "IPv6" : "IPv4") +
          " (identities are family-agnostic)");
    }
    // Pods outside the group that share an identity with one in it.
    std::set<PodRef> group(a.pods.begin(), a.pods.end());
    const auto& by_id = pods_by_identity();
    for (uint32_t id : ids) {
      auto it = by_id.find(id);
      if (it == by_id.end()) continue;
      for (const auto& r : it->second)
        if (!group.count(r))
          out_.notes.push_back(what + " also allows pod " + r.str() +
                               ", which shares identity " +
                               std::to_string(id) + " with a pod it names");
    }
  }

  Status add(const AllowedPeer& a, uint8_t dir) {
    auto ids = peers(a);
    if (!ids) return err(ids.error());
    note_over_permits(a, *ids);
    const uint32_t rule = rules_.id_for(a.rule);
    std::vector<uint8_t> protos;
    bool any_port = true;
    if (!a.ports.protocol) {
      protos = {IPPROTO_TCP, IPPROTO_UDP, kProtoSctp, kProtoOther};
    } else {
      protos = {proto_number(*a.ports.protocol)};
      any_port = a.ports.first == 0 && a.ports.last == 65535;
    }
    for (uint32_t id : *ids)
      for (uint8_t proto : protos) {
        auto& k = acc_[Key{id, dir, proto}];
        k.policies.insert(a.rule.policy);
        if (any_port) {
          if (!k.any) k.any_rule = rule;
          k.any = true;
        } else {
          k.ranges.push_back({a.ports.first, a.ports.last, rule});
        }
      }
    return {};
  }

  Status emit() {
    if (acc_.size() > in_.capacity) {
      std::string blame;
      for (const auto& [k, v] : acc_)
        for (const auto& p : v.policies)
          if (blame.find(p.str()) == std::string::npos)
            blame += (blame.empty() ? "" : ", ") + p.str();
      return err("endpoint " + out_.pod.str() + ": " +
                 std::to_string(acc_.size()) +
                 " policy entries exceed the per-endpoint capacity of " +
                 std::to_string(in_.capacity) + " (policies: " +
                 blame + ")");
    }
    for (auto& [key, k] : acc_) {
      const auto [id, dir, proto] = key;
      PolicyEntry e{id, dir, proto, false, 0, 0, 0};
      if (k.any) {  // any-port wins; ranges would only eat capacity
        e.any_port = true;
        e.rule_id = k.any_rule;
        out_.entries.push_back(e);
        continue;
      }
      auto rs = merge(k.ranges, false);
      if (rs.size() > SLUICE_POLICY_RANGES) rs = merge(rs, true);
      if (rs.size() > SLUICE_POLICY_RANGES) {
        std::string blame;
        for (const auto& p : k.policies)
          blame += (blame.empty() ? "" : ", ") + p.str();
        return err("endpoint " + out_.pod.str() + ": " +
                   (dir == SLUICE_DIR_INGRESS ? "ingress" : "egress") +
                   " from/to " + peer_text(id, in_.cidrs) + " on " +
                   proto_name(proto) + " needs " + std::to_string(rs.size()) +
                   " disjoint port ranges, more than the " +
                   std::to_string(SLUICE_POLICY_RANGES) +
                   " the datapath holds (policies: " + blame + ")");
      }
      for (const auto& r : rs) {
        e.port_lo = r.lo;
        e.port_hi = r.hi;
        e.rule_id = r.rule;
        out_.entries.push_back(e);
      }
    }
    return {};
  }

  // Pods per label identity: shared by the endpoints of one pass through
  // in_.by_identity when given.
  const std::map<uint32_t, std::vector<PodRef>>& pods_by_identity() {
    auto* m = in_.by_identity ? in_.by_identity : &own_by_identity_;
    if (m->empty())
      for (const auto& p : in_.cluster.pods) {
        const PodRef r = ref_of(p);
        if (auto id = label_identity(in_.identity_of, r))
          (*m)[*id].push_back(r);
      }
    return *m;
  }

  const CompileInput& in_;
  RuleTable& rules_;
  std::map<uint32_t, std::vector<PodRef>> own_by_identity_;
  EndpointPolicy out_;
  std::map<Key, KeyAcc> acc_;
};

}  // namespace

Result<EndpointPolicy> compile_endpoint(const CompileInput& in,
                                        RuleTable& rules, const PodRef& pod) {
  return EndpointCompiler(in, rules, pod).run();
}

Result<CompiledPolicy> compile_all(const Cluster& cluster,
                                   const PolicySet& policies,
                                   const IdentityOf& identity_of,
                                   CidrIdentities& cidrs, RuleTable& rules) {
  if (auto s = cidrs.sync(policy_prefixes(policies)); !s)
    return err(s.error());
  rules.retain(policies);
  CompiledPolicy out;
  out.ipcache = compile_ipcache(cluster, cidrs, identity_of);
  FlattenCache cache(cluster, policies);
  std::map<uint32_t, std::vector<PodRef>> by_identity;
  const CompileInput in{cluster, policies, cidrs, identity_of,
                        SLUICE_POLICY_ENTRIES_MAX, &cache, &by_identity};
  for (const auto& p : cluster.pods) {
    auto ep = compile_endpoint(in, rules, ref_of(p));
    if (!ep) return err(ep.error());
    out.endpoints.push_back(std::move(*ep));
  }
  return out;
}

}  // namespace sluice::policy

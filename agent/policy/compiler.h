// The NetworkPolicy compiler: from (cluster, policies, identities) to what
// the pod datapath reads — ipcache entries and one flat policy map per
// local endpoint (docs/design-pod-networking.md, "Identities", "ipBlock that
// matches pods, exactly", "Maps"). Pure C++: no kernel calls; the agent
// hands the output to datapath::PolicyMaps and the ipcache writer.
//
// How each flattened AllowedPeer (policy/evaluator.h) becomes map entries:
//   Any      -> identity SLUICE_ID_ANY;
//   Pods     -> the label identity of every pod (deduplicated);
//   IpBlock  -> {cidr C, except E...}: id(C) plus the CIDR identity of
//               every policy prefix strictly inside C and inside no E.
//               The datapath matches the peer's `cidr_identity` (most
//               specific policy prefix containing it), so this is exact for
//               pod and external addresses alike.
//   ports    -> no ports: any-port entries for TCP, UDP, SCTP and proto 0
//               (everything else, e.g. ICMP); protocol P without a number:
//               any-port for P; a number or endPort range: that range on P.
//
// Known over-permits (identities are per label set and family-agnostic, so
// the datapath cannot express these exactly; each is reported in
// EndpointPolicy::notes when it occurs):
//   - family: an egress named port whose peer is an ipBlock yields Pods
//     entries restricted to the block's family (AllowedPeer::family). The
//     pods' label identities are allowed on the resolved port in BOTH
//     families, so e.g. `ipBlock 10.0.0.0/24, port: http` also allows those
//     pods' IPv6 addresses on that port.
//   - identity sharing: pods with equal label sets share an identity. An
//     egress named port allows the identity of each destination pod on the
//     number it resolves to there, so a pod sharing that identity is allowed
//     on every such number, even one its own named port does not resolve to
//     (as in Cilium; documented in the design).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"
#include "datapath/policy_maps.h"
#include "policy/evaluator.h"
#include "sluice/abi.h"

namespace sluice::policy {

// A pod's label identity (allocated elsewhere, identity/allocator). nullopt
// or a reserved number (< 256) = not known yet: the pod is left out of
// every peer set (fail closed) and gets no ipcache entry.
using IdentityOf = std::function<std::optional<uint32_t>(const PodRef&)>;

// ---- Rule ids: what the datapath's rule_id (CT entries, drop/allow
// events, `policy trace`) names. ----
class RuleTable {
 public:
  // The id of `rule`, allocating one (from 1) if it has none. Ids are never
  // reused, so an id in a CT entry keeps naming the rule that allowed it.
  uint32_t id_for(const RuleRef& rule);
  std::optional<uint32_t> find(const RuleRef& rule) const;
  const RuleRef* lookup(uint32_t id) const;  // null: unknown or forgotten
  // Forgets rules that are not in `policies` any more (their ids stay
  // retired).
  void retain(const PolicySet& policies);
  size_t size() const { return by_ref_.size(); }

 private:
  std::map<RuleRef, uint32_t> by_ref_;
  std::map<uint32_t, RuleRef> by_id_;
  uint32_t next_ = 1;
};

// ---- CIDR identities ----

// Every distinct prefix in any ipBlock `cidr` or `except` of `policies`
// (prefixes that fail to parse are skipped: such peers match nothing).
std::set<Cidr> policy_prefixes(const PolicySet& policies);

// Prefix <-> CIDR identity (from kIdentityFirstCidr = 1 << 24), stable
// across recompiles: a prefix keeps its number while some policy uses it.
// Freed numbers are not handed out again until the counter wraps, so a
// stale map entry never allows a prefix that took over its number.
class CidrIdentities {
 public:
  // Makes the table hold exactly `prefixes`: existing ones keep their id,
  // new ones get fresh ids, the rest are freed. Error only on exhaustion.
  Status sync(const std::set<Cidr>& prefixes);

  std::optional<uint32_t> id_of(const Cidr& prefix) const;
  std::optional<Cidr> prefix_of(uint32_t id) const;
  // The CIDR identity of the most specific prefix containing `a`, or
  // SLUICE_ID_WORLD when none does (what the ipcache gives as
  // cidr_identity).
  uint32_t most_specific(const IpAddr& a) const;
  const std::map<Cidr, uint32_t>& all() const { return by_prefix_; }

 private:
  std::map<Cidr, uint32_t> by_prefix_;
  std::map<uint32_t, Cidr> by_id_;
  // Prefix lengths in use per family, longest first: most_specific() does
  // one exact lookup per length instead of a scan of every prefix.
  std::map<int, std::set<uint8_t, std::greater<>>> lengths_;
  uint32_t next_;
  bool init_ = false;
};

// ---- ipcache ----

struct IpcacheEntry {
  Cidr prefix;
  uint32_t identity = 0;       // label identity (pods) or CIDR identity
  uint32_t cidr_identity = 0;  // most specific policy prefix, or world
  auto operator<=>(const IpcacheEntry&) const = default;
};

// One entry per policy prefix {prefix, id, id} and per pod address
// {/32 or /128, label identity, most specific prefix or world}; a pod
// address that is itself a policy prefix gets only the pod entry. Sorted by
// prefix.
std::vector<IpcacheEntry> compile_ipcache(const Cluster& cluster,
                                          const CidrIdentities& cidrs,
                                          const IdentityOf& identity_of);

// ---- Per-endpoint policy ----

struct EndpointPolicy {
  PodRef pod;
  bool ingress_enforced = false;  // SLUICE_EP_INGRESS_ENFORCED
  bool egress_enforced = false;   // SLUICE_EP_EGRESS_ENFORCED
  // Both directions, ready for PolicyMaps::install: per {identity, dir,
  // proto} either one any-port entry or at most SLUICE_POLICY_RANGES
  // disjoint ranges. Sorted by key, then port.
  std::vector<PolicyEntry> entries;
  std::vector<std::string> notes;  // over-permits that apply (see above)
};

struct CompileInput {
  const Cluster& cluster;
  const PolicySet& policies;
  const CidrIdentities& cidrs;  // synced to policy_prefixes(policies)
  IdentityOf identity_of;
  // Keys one endpoint's map holds (config policy.endpointMaxEntries).
  size_t capacity = SLUICE_POLICY_ENTRIES_MAX;
  // Optional memos shared by the endpoints of one pass (evaluator.h; pods
  // by label identity, filled on first use).
  FlattenCache* cache = nullptr;
  std::map<uint32_t, std::vector<PodRef>>* by_identity = nullptr;
};

// One endpoint. Errors: unknown pod, an ipBlock prefix without a CIDR
// identity (cidrs not synced), more than SLUICE_POLICY_RANGES port ranges
// for one key after merging, or more than `in.capacity` keys —
// each naming the endpoint and, where one is to blame, the policy.
Result<EndpointPolicy> compile_endpoint(const CompileInput& in,
                                        RuleTable& rules, const PodRef& pod);

struct CompiledPolicy {
  std::vector<IpcacheEntry> ipcache;
  std::vector<EndpointPolicy> endpoints;  // in cluster.pods order
};

// Everything: syncs `cidrs` to the policies' prefixes, allocates rule ids,
// compiles every pod of the cluster (all are treated as local endpoints).
// On error `cidrs` and `rules` may have been updated but nothing is
// returned, so nothing gets applied.
Result<CompiledPolicy> compile_all(const Cluster& cluster,
                                   const PolicySet& policies,
                                   const IdentityOf& identity_of,
                                   CidrIdentities& cidrs, RuleTable& rules);

// Pods whose policy maps may change when `before` becomes `after` (same
// cluster): pods selected (namespace + podSelector, any policyType) by a
// policy that was added, removed or changed, in either version; plus pods
// selected by an unchanged policy whose ipBlock contains a prefix that
// appears or disappears (its IpBlock translation lists the prefixes inside
// it). Label/identity changes of pods are the caller's business. Sorted.
std::vector<PodRef> affected_pods(const PolicySet& before,
                                  const PolicySet& after,
                                  const Cluster& cluster);

}  // namespace sluice::policy

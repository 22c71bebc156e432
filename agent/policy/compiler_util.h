// Helpers shared by compiler.cpp and compiler_tables.cpp (internal).
#pragma once

#include <arpa/inet.h>

#include <functional>
#include <optional>
#include <set>
#include <vector>

#include "identity/allocator.h"
#include "policy/compiler.h"
#include "policy/selector.h"

namespace sluice::policy::detail {

// `inner` lies inside `outer` (equal counts as inside).
inline bool inside(const Cidr& inner, const Cidr& outer) {
  return inner.addr.family == outer.addr.family &&
         outer.prefixlen <= inner.prefixlen && outer.contains(inner.addr);
}

inline Cidr host_prefix(const IpAddr& a) {
  return Cidr{a, static_cast<uint8_t>(a.family == AF_INET ? 32 : 128)};
}

// Calls `fn` for every ipBlock peer of every rule of `p`.
inline void blocks_of(const k8s::NetworkPolicy& p,
                      const std::function<void(const k8s::IpBlock&)>& fn) {
  for (const auto* rules : {&p.ingress, &p.egress})
    for (const auto& r : *rules)
      for (const auto& peer : r.peers)
        if (peer.ip_block) fn(*peer.ip_block);
}

// The pod's label identity, or nullopt when unknown. Never lets a reserved
// number (0 = SLUICE_ID_ANY!) stand for a pod.
inline std::optional<uint32_t> label_identity(const IdentityOf& identity_of,
                                              const PodRef& pod) {
  if (!identity_of) return std::nullopt;
  auto id = identity_of(pod);
  if (!id || *id < kIdentityFirstLabel) return std::nullopt;
  return id;
}

inline PodRef ref_of(const ClusterPod& p) {
  return {p.pod.meta.namespace_, p.pod.meta.name};
}

// Adds to `out` every pod of `cluster` that one of `policies` selects
// (its namespace and podSelector; any policyType).
inline void add_selected_pods(
    const Cluster& cluster,
    const std::vector<const k8s::NetworkPolicy*>& policies,
    std::set<PodRef>& out) {
  for (const auto& pod : cluster.pods)
    for (const auto* p : policies)
      if (p->meta.namespace_ == pod.pod.meta.namespace_ &&
          matches(p->pod_selector, pod.pod.meta.labels)) {
        out.insert(ref_of(pod));
        break;
      }
}

}  // namespace sluice::policy::detail

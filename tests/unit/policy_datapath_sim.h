// A user-space model of the pod datapath's policy decision for a new
// connection, written to mirror bpf/sluice_lxc.bpf.c, bpf/lib/policy.h and
// bpf/lib/ipcache.h line by line, fed with the policy compiler's output as
// the agent would install it (PolicyMaps::install's merge included). Every
// pod is a local endpoint of one node.
#pragma once

#include <arpa/inet.h>

#include <map>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "policy/compiler.h"
#include "sluice/abi.h"

namespace sluice::policy::sim {

class Datapath {
 public:
  Datapath(const Cluster& cluster, const CompiledPolicy& compiled,
           const IdentityOf& identity_of)
      : cluster_(cluster), ipcache_(compiled.ipcache) {
    uint32_t ep_id = 0;
    for (const auto& ep : compiled.endpoints) {
      const ClusterPod* p = cluster.find_pod(ep.pod);
      if (!p) throw std::runtime_error("unknown pod " + ep.pod.str());
      sluice_endpoint e{};
      e.ep_id = ep_id++;
      e.identity = identity_of(ep.pod).value_or(0);
      e.flags = (ep.ingress_enforced ? SLUICE_EP_INGRESS_ENFORCED : 0) |
                (ep.egress_enforced ? SLUICE_EP_EGRESS_ENFORCED : 0);
      for (const auto& ip : p->ips) ep_ip_[{ip.family, ip.bytes}] = e;
      policy_[e.ep_id] = install(ep.entries);
    }
  }

  // The verdict sluice_lxc gives the first packet of src -> dst. External
  // endpoints use their `ip`; pods their address of `family`.
  bool allows(const Endpoint& src, const Endpoint& dst, int family,
              uint8_t proto, uint16_t dport) const {
    const IpAddr saddr = addr_of(src, family), daddr = addr_of(dst, family);
    if (src.pod) return lxc_out(saddr, daddr, proto, dport);
    if (dst.pod) return lxc_in(saddr, daddr, proto, dport);
    throw std::runtime_error("external to external never reaches sluice_lxc");
  }

 private:
  using PolicyKey = std::tuple<uint32_t, uint8_t, uint8_t>;
  using Inner = std::map<PolicyKey, sluice_policy_value>;

  // PolicyMaps::install's merge of entries into map values.
  static Inner install(const std::vector<PolicyEntry>& entries) {
    Inner m;
    for (const auto& e : entries) {
      auto& v = m[{e.identity, e.dir, e.proto}];
      if (e.any_port) {
        if (!v.any_port) v.any_rule = e.rule_id;
        v.any_port = 1;
        continue;
      }
      if (v.nranges >= SLUICE_POLICY_RANGES)
        throw std::runtime_error("more than SLUICE_POLICY_RANGES ranges");
      v.ranges[v.nranges] = {e.port_lo, e.port_hi};
      v.rule_ids[v.nranges] = e.rule_id;
      v.nranges++;
    }
    if (m.size() > SLUICE_POLICY_ENTRIES_MAX)
      throw std::runtime_error("inner map over capacity");
    return m;
  }

  IpAddr addr_of(const Endpoint& e, int family) const {
    if (!e.pod) return e.ip;
    const ClusterPod* p = cluster_.find_pod(*e.pod);
    if (p)
      for (const auto& ip : p->ips)
        if (ip.family == family) return ip;
    throw std::runtime_error("no address for " + e.pod->str());
  }

  // sluice_ep_by_addr
  const sluice_endpoint* ep_by_addr(const IpAddr& a) const {
    auto it = ep_ip_.find({a.family, a.bytes});
    return it == ep_ip_.end() ? nullptr : &it->second;
  }

  // sluice_ipcache_get: longest-prefix match over {family, addr}; a miss
  // is world.
  void ipcache_get(const IpAddr& a, uint32_t* id, uint32_t* cidr_id) const {
    const IpcacheEntry* best = nullptr;
    for (const auto& e : ipcache_)
      if (e.prefix.contains(a) &&
          (!best || e.prefix.prefixlen > best->prefix.prefixlen))
        best = &e;
    *id = best ? best->identity : SLUICE_ID_WORLD;
    *cidr_id = best ? best->cidr_identity : SLUICE_ID_WORLD;
  }

  // sluice_policy_match
  static int policy_match(const Inner& inner, const PolicyKey& k,
                          uint16_t dport, uint32_t* rule) {
    auto it = inner.find(k);
    if (it == inner.end()) return 0;
    const sluice_policy_value* v = &it->second;
    if (v->any_port) {
      *rule = v->any_rule;
      return 1;
    }
    for (int i = 0; i < SLUICE_POLICY_RANGES; i++) {
      if (i >= v->nranges) break;
      if (dport >= v->ranges[i].lo && dport <= v->ranges[i].hi) {
        *rule = v->rule_ids[i];
        return 1;
      }
    }
    return 0;
  }

  // sluice_policy_allows
  int policy_allows(uint32_t ep_id, uint8_t dir, uint8_t proto,
                    uint16_t dport, uint32_t peer_id, uint32_t cidr_id,
                    uint32_t* rule) const {
    auto inner = policy_.find(ep_id);
    if (inner == policy_.end()) return 0;
    const uint8_t p = (proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
                       proto == 132)
                          ? proto
                          : 0;
    if (!p) dport = 0;
    if (policy_match(inner->second, {peer_id, dir, p}, dport, rule)) return 1;
    if (policy_match(inner->second, {SLUICE_ID_ANY, dir, p}, dport, rule))
      return 1;
    if (cidr_id == peer_id) return 0;
    return policy_match(inner->second, {cidr_id, dir, p}, dport, rule);
  }

  // sluice_lxc_out, new-flow branch: the source is a local endpoint.
  bool lxc_out(const IpAddr& saddr, const IpAddr& daddr, uint8_t proto,
               uint16_t dport) const {
    const sluice_endpoint* ep = ep_by_addr(saddr);
    if (!ep) throw std::runtime_error("source is not a local endpoint");
    const sluice_endpoint* dst = ep_by_addr(daddr);
    uint32_t dst_id, dst_cidr, rule = 0, rule_in = 0;
    ipcache_get(daddr, &dst_id, &dst_cidr);
    if (dst) dst_id = dst->identity;
    if ((ep->flags & SLUICE_EP_EGRESS_ENFORCED) &&
        !policy_allows(ep->ep_id, SLUICE_DIR_EGRESS, proto, dport, dst_id,
                       dst_cidr, &rule))
      return false;
    if (dst && (dst->flags & SLUICE_EP_INGRESS_ENFORCED)) {
      uint32_t src_id, src_cidr;
      ipcache_get(saddr, &src_id, &src_cidr);
      if (!policy_allows(dst->ep_id, SLUICE_DIR_INGRESS, proto, dport,
                         ep->identity, src_cidr, &rule_in))
        return false;
    }
    return true;
  }

  // sluice_lxc_in, new-flow branch: routed by the host stack to a pod.
  bool lxc_in(const IpAddr& saddr, const IpAddr& daddr, uint8_t proto,
              uint16_t dport) const {
    const sluice_endpoint* ep = ep_by_addr(daddr);
    if (!ep) throw std::runtime_error("destination is not a local endpoint");
    uint32_t src_id, src_cidr, rule = 0;
    ipcache_get(saddr, &src_id, &src_cidr);
    if (src_id != SLUICE_ID_HOST && (ep->flags & SLUICE_EP_INGRESS_ENFORCED) &&
        !policy_allows(ep->ep_id, SLUICE_DIR_INGRESS, proto, dport, src_id,
                       src_cidr, &rule))
      return false;
    return true;
  }

  const Cluster& cluster_;
  std::vector<IpcacheEntry> ipcache_;
  std::map<std::pair<int, std::array<uint8_t, 16>>, sluice_endpoint> ep_ip_;
  std::map<uint32_t, Inner> policy_;
};

}  // namespace sluice::policy::sim

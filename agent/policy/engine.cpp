#include "policy/engine.h"

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "sluice/abi.h"

namespace sluice {

policy::Cluster PolicyEngine::cluster_view() const {
  policy::Cluster c;
  c.namespaces = cluster_.namespaces();
  std::map<std::pair<std::string, std::string>, std::vector<IpAddr>> ips;
  for (const auto& e : endpoints_.list())
    ips[{e.pod_namespace, e.pod_name}] = e.ips;
  for (const auto& p : cluster_.pods()) {
    auto it = ips.find({p.meta.namespace_, p.meta.name});
    c.pods.push_back({p, it == ips.end() ? std::vector<IpAddr>{} : it->second});
    if (it != ips.end()) ips.erase(it);
  }
  // Endpoints whose Pod object was not applied (yet): no labels.
  for (const auto& [ref, addrs] : ips) {
    k8s::Pod p;
    p.meta.namespace_ = ref.first;
    p.meta.name = ref.second;
    c.pods.push_back({p, addrs});
  }
  return c;
}

Status PolicyEngine::write_ipcache(
    const std::vector<policy::IpcacheEntry>& entries) {
  std::set<Cidr> now;
  for (const auto& e : entries) {
    sluice_ipcache_key k{};
    k.prefixlen = 32 + e.prefix.prefixlen;
    k.family = uint8_t(e.prefix.addr.family);
    std::memcpy(k.addr, e.prefix.addr.bytes.data(), e.prefix.addr.size());
    sluice_ipcache_value v{e.identity, e.cidr_identity, 0, 0};
    if (bpf_map_update_elem(ipcache_fd_, &k, &v, BPF_ANY))
      return err("map sluice_ipcache: " + e.prefix.str() + ": " +
                 errno_str(errno));
    now.insert(e.prefix);
  }
  // Policy prefixes that no longer exist. Pod addresses are removed by the
  // endpoint manager when the endpoint goes.
  for (const auto& p : written_prefixes_) {
    if (now.count(p)) continue;
    sluice_ipcache_key k{};
    k.prefixlen = 32 + p.prefixlen;
    k.family = uint8_t(p.addr.family);
    std::memcpy(k.addr, p.addr.bytes.data(), p.addr.size());
    bpf_map_delete_elem(ipcache_fd_, &k);
  }
  written_prefixes_.clear();
  for (const auto& e : entries)
    if (cidrs_.id_of(e.prefix)) written_prefixes_.insert(e.prefix);
  return {};
}

Status PolicyEngine::sync() {
  std::lock_guard g(mu_);
  const auto view = cluster_view();
  policy::PolicySet set{cluster_.policies()};
  std::map<std::pair<std::string, std::string>, uint32_t> ids;
  std::map<std::pair<std::string, std::string>, EndpointRecord> local;
  for (const auto& e : endpoints_.list()) {
    ids[{e.pod_namespace, e.pod_name}] = e.identity;
    local[{e.pod_namespace, e.pod_name}] = e;
  }
  auto identity_of = [&](const policy::PodRef& r) -> std::optional<uint32_t> {
    auto it = ids.find({r.namespace_, r.name});
    if (it == ids.end()) return std::nullopt;
    return it->second;
  };
  auto compiled = policy::compile_all(view, set, identity_of, cidrs_, rules_);
  if (!compiled) return Error{compiled.error()};
  if (auto s = write_ipcache(compiled->ipcache); !s) return s;
  size_t enforced = 0;
  for (const auto& ep : compiled->endpoints) {
    auto it = local.find({ep.pod.namespace_, ep.pod.name});
    if (it == local.end()) continue;
    const uint32_t flags =
        (ep.ingress_enforced ? SLUICE_EP_INGRESS_ENFORCED : 0) |
        (ep.egress_enforced ? SLUICE_EP_EGRESS_ENFORCED : 0);
    const uint32_t old = it->second.flags;
    // Raise enforcement only after the new map is in; lower it before the
    // map shrinks: no packet meets an enforced endpoint with a map that
    // does not yet allow what it should.
    if ((old & ~flags) != 0)
      if (auto s = endpoints_.set_flags(ep.pod.namespace_, ep.pod.name,
                                        old & flags);
          !s)
        return s;
    if (auto s = maps_.install(it->second.ep_id, ep.entries); !s) return s;
    if (auto s = endpoints_.set_flags(ep.pod.namespace_, ep.pod.name, flags);
        !s)
      return s;
    enforced += flags != 0;
  }
  spdlog::info("policy: {} policies, {} endpoints, {} enforced, {} rules",
               set.policies.size(), local.size(), enforced, rules_.size());
  return {};
}

}  // namespace sluice

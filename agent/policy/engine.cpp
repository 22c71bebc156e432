#include "policy/engine.h"

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <unordered_map>

#include "sluice/abi.h"

namespace sluice {

namespace {

policy::Cluster make_view(const ClusterState& cluster,
                          const std::vector<EndpointRecord>& eps) {
  policy::Cluster c;
  c.namespaces = cluster.namespaces();
  std::map<std::pair<std::string, std::string>, std::vector<IpAddr>> ips;
  for (const auto& e : eps) ips[{e.pod_namespace, e.pod_name}] = e.ips;
  for (auto& p : cluster.pods()) {
    auto it = ips.find({p.meta.namespace_, p.meta.name});
    c.pods.push_back(
        {std::move(p), it == ips.end() ? std::vector<IpAddr>{} : it->second});
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

sluice_ipcache_key ipcache_key(const Cidr& p) {
  sluice_ipcache_key k{};
  k.prefixlen = 32 + p.prefixlen;
  k.family = uint8_t(p.addr.family);
  std::memcpy(k.addr, p.addr.bytes.data(), p.addr.size());
  return k;
}

}  // namespace

PolicyEngine::PolicyEngine(ClusterState& cluster, LocalEndpoints& endpoints,
                           int policy_outer_fd, int policy_template_fd,
                           int ipcache_fd, uint32_t endpoint_capacity)
    : cluster_(cluster),
      endpoints_(endpoints),
      maps_(policy_outer_fd, policy_template_fd, endpoint_capacity),
      ipcache_fd_(ipcache_fd) {
  // The compiler names the policies to blame when an endpoint needs more;
  // PolicyMaps checks the same limit again at install.
  compiler_.set_capacity(endpoint_capacity);
}

policy::Cluster PolicyEngine::cluster_view() const {
  return make_view(cluster_, endpoints_.list());
}

Result<PolicyEngine::SyncStats> PolicyEngine::sync() {
  std::lock_guard g(mu_);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const auto eps = endpoints_.list();
  const auto view = make_view(cluster_, eps);
  const policy::PolicySet set{cluster_.policies()};
  // Hashed: the compiler asks for identities once per peer pod per rule.
  std::unordered_map<std::string, uint32_t> ids;
  auto id_key = [](const std::string& ns, const std::string& name) {
    std::string k;
    k.reserve(ns.size() + name.size() + 1);
    return k.append(ns).append(1, '/').append(name);
  };
  std::set<policy::PodRef> local;
  for (const auto& e : eps) {
    const policy::PodRef ref{e.pod_namespace, e.pod_name};
    ids[id_key(e.pod_namespace, e.pod_name)] = e.identity;
    local.insert(ref);
    const Incarnation inc{e.container_id, e.host_ifindex, e.ep_id};
    auto it = incarnations_.find(ref);
    if (it != incarnations_.end() && it->second != inc)
      compiler_.invalidate(ref);
  }
  auto identity_of = [&](const policy::PodRef& r) -> std::optional<uint32_t> {
    auto it = ids.find(id_key(r.namespace_, r.name));
    if (it == ids.end()) return std::nullopt;
    return it->second;
  };
  auto d = compiler_.update(view, set, identity_of, local, cidrs_, rules_);
  if (!d) return Error{d.error()};
  const auto t1 = Clock::now();
  auto stats = apply(*d, eps);
  if (!stats) {
    compiler_.forget();
    return stats;
  }
  compiler_.commit();
  const auto ms = [](auto a, auto b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  stats->compile_ms = ms(t0, t1);
  stats->kernel_ms = ms(t1, Clock::now());
  incarnations_.clear();
  for (const auto& e : eps)
    incarnations_[{e.pod_namespace, e.pod_name}] = {e.container_id,
                                                    e.host_ifindex, e.ep_id};
  spdlog::info(
      "policy: {} policies, {} endpoints; compiled {}{} in {:.1f} ms, "
      "installed {} and {} ipcache writes in {:.1f} ms",
      set.policies.size(), local.size(), stats->compiled,
      stats->full ? " (full)" : "", stats->compile_ms, stats->installed,
      stats->ipcache_writes, stats->kernel_ms);
  return stats;
}

Result<PolicyEngine::SyncStats> PolicyEngine::apply(
    const policy::IncrementalCompiler::Delta& d,
    const std::vector<EndpointRecord>& eps) {
  SyncStats st;
  st.compiled = d.compiled;
  st.full = d.full;
  // ipcache first: an identity a new policy names resolves before the
  // policy that names it is installed.
  for (const auto& e : d.ipcache_upserts) {
    const auto k = ipcache_key(e.prefix);
    sluice_ipcache_value v{e.identity, e.cidr_identity, 0, 0};
    if (bpf_map_update_elem(ipcache_fd_, &k, &v, BPF_ANY))
      return err("map sluice_ipcache: " + e.prefix.str() + ": " +
                 errno_str(errno));
    st.ipcache_writes++;
  }
  for (const auto& p : d.ipcache_deletes) {
    const auto k = ipcache_key(p);
    if (bpf_map_delete_elem(ipcache_fd_, &k) == 0) st.ipcache_writes++;
  }

  std::map<policy::PodRef, const EndpointRecord*> local;
  for (const auto& e : eps) local[{e.pod_namespace, e.pod_name}] = &e;
  for (const auto& ep : d.endpoints) {
    auto it = local.find(ep.pod);
    if (it == local.end()) continue;
    const EndpointRecord& rec = *it->second;
    const uint32_t flags =
        (ep.ingress_enforced ? SLUICE_EP_INGRESS_ENFORCED : 0) |
        (ep.egress_enforced ? SLUICE_EP_EGRESS_ENFORCED : 0);
    // Raise enforcement only after the new map is in; lower it before the
    // map shrinks: no packet meets an enforced endpoint with a map that
    // does not yet allow what it should.
    if ((rec.flags & ~flags) != 0)
      if (auto s = endpoints_.set_flags(ep.pod.namespace_, ep.pod.name,
                                        rec.flags & flags);
          !s)
        return Error{s.error()};
    if (auto s = maps_.install(rec.ep_id, ep.entries); !s)
      return Error{s.error()};
    if (flags != rec.flags)
      if (auto s = endpoints_.set_flags(ep.pod.namespace_, ep.pod.name, flags);
          !s)
        return Error{s.error()};
    st.installed++;
  }
  return st;
}

}  // namespace sluice

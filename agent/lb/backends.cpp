#include "lb/backends.h"

#include <sys/socket.h>

#include <algorithm>

namespace sluice::lb {

bool selects(const k8s::Labels& selector, const k8s::Labels& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

namespace {

using k8s::EndpointSlice;
using k8s::Pod;
using k8s::Service;

bool family_wanted(const Service& svc, int family) {
  if (svc.ip_families.empty()) return true;  // not allocated yet: either
  const auto f = family == AF_INET6 ? k8s::IpFamily::IPv6 : k8s::IpFamily::IPv4;
  return std::find(svc.ip_families.begin(), svc.ip_families.end(), f) !=
         svc.ip_families.end();
}

std::optional<int32_t> target_port(const k8s::ServicePort& sp, const Pod& pod) {
  if (const auto* n = std::get_if<int32_t>(&sp.target_port)) return *n;
  const auto& name = std::get<std::string>(sp.target_port);
  for (const auto& cp : pod.ports)
    if (cp.name == name && cp.protocol == sp.protocol) return cp.container_port;
  return std::nullopt;
}

// `pods`: the Service namespace's, sorted by name; `slices`: the Service's,
// sorted by name.
std::vector<PortBackends> derive(
    const Service& svc, const std::vector<const Pod*>& pods,
    const std::vector<const EndpointSlice*>& slices, const PodLookup& lookup) {
  // Pod addresses are looked up once per pod, not per port.
  std::vector<std::pair<const Pod*, PodAddresses>> selected;
  if (!svc.selector.empty())
    for (const Pod* p : pods)
      if (selects(svc.selector, p->meta.labels)) {
        PodAddresses a =
            lookup ? lookup(p->meta.namespace_, p->meta.name) : PodAddresses{};
        if (!a.ips.empty()) selected.emplace_back(p, std::move(a));
      }

  std::vector<PortBackends> out;
  for (const auto& sp : svc.ports) {
    PortBackends pb{sp.name, sp.protocol, sp.port, sp.node_port, {}};
    std::map<std::pair<IpAddr, uint16_t>, Backend> by_key;

    for (const EndpointSlice* es : slices) {
      const int family =
          es->address_type == k8s::AddressType::IPv6 ? AF_INET6 : AF_INET;
      if (!family_wanted(svc, family)) continue;
      auto port = std::find_if(
          es->ports.begin(), es->ports.end(), [&](const k8s::EndpointPort& p) {
            return p.name == sp.name && p.protocol == sp.protocol && p.port;
          });
      if (port == es->ports.end()) continue;
      for (const auto& ep : es->endpoints) {
        auto ip = IpAddr::parse(ep.addresses.at(0));
        if (!ip || ip->family != family) continue;
        Backend b;
        b.ip = *ip;
        b.port = uint16_t(*port->port);
        b.ready = ep.conditions.ready.value_or(true);
        b.serving = ep.conditions.serving.value_or(b.ready);
        b.terminating = ep.conditions.terminating.value_or(false);
        b.node_name = ep.node_name;
        b.zone = ep.zone;
        b.source = "EndpointSlice " + es->meta.namespace_ + "/" + es->meta.name;
        auto [it, fresh] = by_key.try_emplace({b.ip, b.port}, b);
        if (!fresh && !it->second.ready && b.ready) it->second = b;
      }
    }

    for (const auto& [pod, addrs] : selected) {
      const auto tp = target_port(sp, *pod);
      if (!tp) continue;  // named port absent on this pod: skipped
      for (const auto& ip : addrs.ips) {
        if (!family_wanted(svc, ip.family)) continue;
        Backend b;
        b.ip = ip;
        b.port = uint16_t(*tp);
        b.node_name = addrs.node_name;
        b.source = "Pod " + pod->meta.namespace_ + "/" + pod->meta.name;
        by_key.try_emplace({b.ip, b.port}, std::move(b));  // slices win
      }
    }

    for (auto& [k, b] : by_key) pb.backends.push_back(std::move(b));
    out.push_back(std::move(pb));
  }
  return out;
}

template <typename T>
bool by_name(const T* a, const T* b) {
  return a->meta.name < b->meta.name;
}

}  // namespace

std::vector<PortBackends> service_backends(
    const Service& svc, const std::vector<Pod>& pods,
    const std::vector<EndpointSlice>& slices, const PodLookup& lookup) {
  std::vector<const Pod*> ns_pods;
  for (const auto& p : pods)
    if (p.meta.namespace_ == svc.meta.namespace_) ns_pods.push_back(&p);
  std::vector<const EndpointSlice*> mine;
  for (const auto& es : slices) {
    auto it = es.meta.labels.find(k8s::kServiceNameLabel);
    if (es.meta.namespace_ == svc.meta.namespace_ &&
        it != es.meta.labels.end() && it->second == svc.meta.name)
      mine.push_back(&es);
  }
  std::sort(ns_pods.begin(), ns_pods.end(), by_name<Pod>);
  std::sort(mine.begin(), mine.end(), by_name<EndpointSlice>);
  return derive(svc, ns_pods, mine, lookup);
}

std::vector<PortBackends> service_backends(
    const Service& svc, const std::vector<const Pod*>& ns_pods,
    const std::vector<const EndpointSlice*>& slices, const PodLookup& lookup) {
  return derive(svc, ns_pods, slices, lookup);
}

std::map<std::string, std::vector<PortBackends>> all_backends(
    const std::vector<Service>& services, const std::vector<Pod>& pods,
    const std::vector<EndpointSlice>& slices, const PodLookup& lookup) {
  // Indexes, so the cost is linear in the state rather than
  // services x (pods + slices).
  std::map<std::string, std::vector<const Pod*>> pods_by_ns;
  for (const auto& p : pods) pods_by_ns[p.meta.namespace_].push_back(&p);
  std::map<std::string, std::vector<const EndpointSlice*>> slices_by_svc;
  for (const auto& es : slices)
    if (auto it = es.meta.labels.find(k8s::kServiceNameLabel);
        it != es.meta.labels.end())
      slices_by_svc[es.meta.namespace_ + "/" + it->second].push_back(&es);
  for (auto& [ns, v] : pods_by_ns) std::sort(v.begin(), v.end(), by_name<Pod>);
  for (auto& [k, v] : slices_by_svc)
    std::sort(v.begin(), v.end(), by_name<EndpointSlice>);

  static const std::vector<const Pod*> kNoPods;
  static const std::vector<const EndpointSlice*> kNoSlices;
  std::map<std::string, std::vector<PortBackends>> out;
  for (const auto& svc : services) {
    const std::string key = svc.meta.namespace_ + "/" + svc.meta.name;
    auto p = pods_by_ns.find(svc.meta.namespace_);
    auto s = slices_by_svc.find(key);
    out[key] = derive(svc, p == pods_by_ns.end() ? kNoPods : p->second,
                      s == slices_by_svc.end() ? kNoSlices : s->second, lookup);
  }
  return out;
}

}  // namespace sluice::lb

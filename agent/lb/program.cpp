#include "lb/program.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <tuple>
#include <unordered_map>

#include "lb/backends.h"

namespace sluice::lb {
namespace {

using PodRef = std::pair<std::string, std::string>;

std::string addr_port(const IpAddr& ip, uint16_t port) {
  return ip.family == AF_INET6 ? "[" + ip.str() + "]:" + std::to_string(port)
                               : ip.str() + ":" + std::to_string(port);
}

// What every Service of one update shares.
struct Ctx {
  const ProgramInput& in;
  std::set<IpAddr> local_ips;
  std::map<IpAddr, PodRef> pod_of_ip;     // local endpoints
  std::map<PodRef, uint32_t> pod_weight;  // pods with sluice.io/lb-weight
  std::vector<std::string> warnings;
  std::optional<std::map<std::string, std::vector<k8s::Pod>>> pods_by_ns;

  explicit Ctx(const ProgramInput& i) : in(i) {
    for (const auto& [pod, ips] : in.local_pods)
      for (const auto& ip : ips) {
        local_ips.insert(ip);
        pod_of_ip[ip] = pod;
      }
    for (const auto& p : in.pods) {
      std::vector<std::string> w;
      if (auto x = k8s::pod_lb_weight(p.meta, &w))
        pod_weight[{p.meta.namespace_, p.meta.name}] = *x;
      for (const auto& x : w)
        warnings.push_back("Pod " + p.meta.namespace_ + "/" + p.meta.name +
                           ": " + x + " (ignored)");
    }
  }
  // Selector Services only: the pods of a namespace.
  const std::vector<k8s::Pod>& pods_of(const std::string& ns) {
    if (!pods_by_ns) {
      pods_by_ns.emplace();
      for (const auto& p : in.pods) (*pods_by_ns)[p.meta.namespace_].push_back(p);
    }
    static const std::vector<k8s::Pod> kNone;
    auto it = pods_by_ns->find(ns);
    return it == pods_by_ns->end() ? kNone : it->second;
  }
};

// One Service's frontends and the sets they use.
class ServiceProgram {
 public:
  ServiceProgram(Ctx& c, const k8s::Service& svc,
                 const std::vector<k8s::EndpointSlice>& slices,
                 std::vector<std::string>& warnings)
      : c_(c),
        svc_(svc),
        name_(svc.meta.namespace_ + "/" + svc.meta.name) {
    std::vector<std::string> w;
    ann_ = k8s::service_lb_annotations(svc.meta, &w);
    for (const auto& x : w)
      warnings.push_back("Service " + name_ + ": " + x + " (ignored)");
    for (const auto& ip : svc.cluster_ips)
      if (auto a = IpAddr::parse(ip)) families_.insert(a->family);
    for (auto f : svc.ip_families)
      families_.insert(f == k8s::IpFamily::IPv6 ? AF_INET6 : AF_INET);
    // A backend's Pod, for its weight: its slice's targetRef.
    for (const auto& es : slices)
      for (const auto& ep : es.endpoints)
        if (ep.target_ref && ep.target_ref->kind == "Pod")
          if (auto ip = IpAddr::parse(ep.addresses.at(0)))
            pod_of_ip_.try_emplace(
                *ip, PodRef{ep.target_ref->namespace_.empty()
                                ? es.meta.namespace_
                                : ep.target_ref->namespace_,
                            ep.target_ref->name});
  }

  ProgramBuilder::Part part;

  Status add_port(const PortBackends& pb) {
    const uint8_t proto = ip_proto(pb.protocol);
    const uint16_t port = uint16_t(pb.port);
    const auto internal_kind = svc_.internal_traffic_policy ==
                                       k8s::TrafficPolicy::Local
                                   ? SetKind::Local
                                   : SetKind::All;
    const bool etp_local =
        svc_.external_traffic_policy == k8s::TrafficPolicy::Local;
    for (const auto& s : svc_.cluster_ips)
      if (auto ip = IpAddr::parse(s))
        if (auto st = add(pb, {*ip, port, proto, SLUICE_LB_SCOPE_INTERNAL},
                          internal_kind, 0);
            !st)
          return st;
    // External addresses: from inside the node, no traffic policy (as
    // kube-proxy: "up and out to the load balancer and back"); from
    // outside, externalTrafficPolicy.
    auto external = [&](const IpAddr& ip, uint16_t p) -> Status {
      if (auto st = add(pb, {ip, p, proto, SLUICE_LB_SCOPE_INTERNAL},
                        SetKind::All, 0);
          !st)
        return st;
      return add(pb, {ip, p, proto, SLUICE_LB_SCOPE_EXTERNAL},
                 etp_local ? SetKind::Local : SetKind::All,
                 etp_local ? SLUICE_LB_EXT_LOCAL : 0);
    };
    std::vector<std::string> ext = svc_.external_ips;
    for (const auto& in : svc_.lb_ingress)
      if (!in.ip.empty() && in.ip_mode != "Proxy") ext.push_back(in.ip);
    for (const auto& s : ext)
      if (auto ip = IpAddr::parse(s))
        if (auto st = external(*ip, port); !st) return st;
    if (svc_.type != k8s::ServiceType::ClusterIP && pb.node_port)
      for (const auto& ip : c_.in.node_addresses)
        if (auto st = external(ip, uint16_t(pb.node_port)); !st) return st;
    return {};
  }

private:
  Status add(const PortBackends& pb, const FrontendKey& k, SetKind kind,
             uint16_t flags) {
    if (!families_.empty() && !families_.count(k.addr.family)) return {};
    if (!keys_.insert(k).second) return {};  // e.g. an externalIP twice
    SetRef ref{name_, pb.name, k.addr.family, kind};
    part.frontends.emplace_back(k, Frontend{ref, flags});
    if (part.sets.count(ref)) return {};
    auto set = make_set(pb, ref);
    if (!set) return Error{set.error()};
    part.sets.emplace(ref, std::move(*set));
    return {};
  }

  uint32_t weight_of(const Backend& b) const {
    std::optional<uint32_t> by_ip;
    for (const auto& w : ann_.weights) {
      if (w.ip != b.ip) continue;
      if (w.port == b.port) return w.weight;
      if (!w.port) by_ip = w.weight;
    }
    if (by_ip) return *by_ip;
    using Pods = std::map<IpAddr, PodRef>;
    for (const Pods* m : {&pod_of_ip_, static_cast<const Pods*>(&c_.pod_of_ip)})
      if (auto p = m->find(b.ip); p != m->end())
        if (auto w = c_.pod_weight.find(p->second); w != c_.pod_weight.end())
          return w->second;
    return k8s::kDefaultBackendWeight;
  }

  Result<BackendSet> make_set(const PortBackends& pb, const SetRef& ref) {
    BackendSet s;
    std::vector<const Backend*> in_scope;
    for (const auto& b : pb.backends)
      if (b.ip.family == ref.family &&
          (ref.kind == SetKind::All || c_.local_ips.count(b.ip)))
        in_scope.push_back(&b);
    std::vector<const Backend*> active;
    for (const Backend* b : in_scope)
      if (b->ready && !b->terminating) active.push_back(b);
    if (active.empty()) {  // kube-proxy's terminating fallback
      for (const Backend* b : in_scope)
        if (b->serving && b->terminating) active.push_back(b);
      s.terminating_fallback = !active.empty();
    }
    for (const Backend* b : active)
      if (const uint32_t w = weight_of(*b))
        s.members.push_back({{b->ip, b->port}, w});
    std::sort(s.members.begin(), s.members.end(),
              [](const SetMember& a, const SetMember& b) {
                return a.addr < b.addr;
              });
    s.maglev = ann_.algorithm.value_or(c_.in.algorithm) ==
               k8s::LbAlgorithm::Maglev;
    if (s.maglev) {
      s.flags |= SLUICE_LB_MAGLEV;
      s.maglev_m = ann_.maglev_table_size.value_or(c_.in.maglev_table_size);
    }
    if (svc_.session_affinity == k8s::SessionAffinity::ClientIP) {
      s.flags |= SLUICE_LB_AFFINITY;
      s.affinity_s = uint32_t(svc_.affinity_timeout);
    }
    s.conn_cap = ann_.max_connections;
    if (!s.maglev) {
      std::vector<uint32_t> w;
      for (const auto& m : s.members) w.push_back(m.weight);
      auto slots = slot_counts(w, SLUICE_LB_SLOTS_PER_SVC);
      if (!slots)
        return err("load balancer: Service " + ref.service + " port " +
                   (ref.port.empty() ? "(unnamed)" : ref.port) + ": " +
                   slots.error() + " (use sluice.io/lb-algorithm: maglev)");
      s.slots = std::move(*slots);
    }
    return s;
  }

  Ctx& c_;
  const k8s::Service& svc_;
  std::string name_;
  k8s::ServiceLbAnnotations ann_;
  std::set<int> families_;
  std::set<FrontendKey> keys_;
  std::map<IpAddr, PodRef> pod_of_ip_;
};

}  // namespace

std::string BackendAddr::str() const { return addr_port(ip, port); }

std::string FrontendKey::str() const {
  return addr_port(addr, port) + "/" + proto_name(proto);
}

std::string SetRef::str() const {
  return service + ":" + (port.empty() ? "-" : port) +
         (family == AF_INET6 ? " IPv6" : " IPv4") +
         (kind == SetKind::Local ? " local" : "");
}

uint16_t BackendSet::count() const {
  if (maglev) return uint16_t(std::min<size_t>(members.size(), 0xffff));
  return uint16_t(std::accumulate(slots.begin(), slots.end(), 0u));
}

uint8_t ip_proto(k8s::Protocol p) {
  switch (p) {
    case k8s::Protocol::UDP: return IPPROTO_UDP;
    case k8s::Protocol::SCTP: return IPPROTO_SCTP;
    default: return IPPROTO_TCP;
  }
}

const char* proto_name(uint8_t proto) {
  switch (proto) {
    case IPPROTO_TCP: return "TCP";
    case IPPROTO_UDP: return "UDP";
    case IPPROTO_SCTP: return "SCTP";
    default: return "?";
  }
}

Result<Program> compute_program(const ProgramInput& in) {
  ProgramBuilder b;
  if (auto d = b.update(in); !d) return Error{d.error()};
  return b.program();
}

namespace {

bool same_slices(const std::vector<k8s::EndpointSlice>& a,
                 const std::vector<const k8s::EndpointSlice*>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (!(a[i] == *b[i])) return false;
  return true;
}

}  // namespace

// Which Services a change of context can touch.
struct ContextChange {
  bool all = false;       // defaults, or a Pod weight some slice may name
  bool local = false;     // the set of local addresses (Local sets)
  bool nodes = false;     // node addresses (node ports)
  std::set<std::string> namespaces;  // pods changed here (selectors)

  bool touches(const k8s::Service& s) const {
    const bool local_sets =
        s.internal_traffic_policy == k8s::TrafficPolicy::Local ||
        s.external_traffic_policy == k8s::TrafficPolicy::Local;
    return all || (local && local_sets) ||
           (nodes && s.type != k8s::ServiceType::ClusterIP) ||
           (!s.selector.empty() && namespaces.count(s.meta.namespace_));
  }
};

// The entries of two maps that differ (added, removed or changed).
template <typename K, typename V, typename F>
void each_difference(const std::map<K, V>& a, const std::map<K, V>& b, F f) {
  for (const auto& [k, v] : a)
    if (auto it = b.find(k); it == b.end() || !(it->second == v)) f(k);
  for (const auto& [k, v] : b)
    if (!a.count(k)) f(k);
}

Result<ProgramDelta> ProgramBuilder::update(const ProgramInput& in) {
  ContextChange cc;
  cc.all = !primed_ || in.algorithm != algorithm_ ||
           in.maglev_table_size != maglev_m_;
  cc.nodes = in.node_addresses != node_;
  if (!cc.all && in.pods != pods_) {
    std::map<PodRef, k8s::Pod> before, after;
    for (const auto& p : pods_) before[{p.meta.namespace_, p.meta.name}] = p;
    for (const auto& p : in.pods) after[{p.meta.namespace_, p.meta.name}] = p;
    each_difference(before, after, [&](const PodRef& r) {
      cc.namespaces.insert(r.first);
      for (const auto* m : {&before, &after})
        if (auto it = m->find(r); it != m->end() &&
                                  it->second.meta.annotations.count(k8s::kLbWeightAnnotation))
          cc.all = true;  // its weight may apply to any Service's backend
    });
  }
  if (!cc.all && in.local_pods != local_) {
    cc.local = true;
    each_difference(local_, in.local_pods, [&](const PodRef& r) {
      cc.namespaces.insert(r.first);
      for (const auto& p : in.pods)  // weights follow a pod's addresses
        if (p.meta.namespace_ == r.first && p.meta.name == r.second &&
            p.meta.annotations.count(k8s::kLbWeightAnnotation))
          cc.all = true;
    });
  }
  std::unordered_map<std::string, std::vector<const k8s::EndpointSlice*>> slices;
  for (const auto& es : in.slices)
    if (auto it = es.meta.labels.find(k8s::kServiceNameLabel);
        it != es.meta.labels.end())
      slices[es.meta.namespace_ + "/" + it->second].push_back(&es);
  Ctx c(in);
  // Computed off to the side: an error leaves the builder as it was.
  std::map<std::string, Entry> fresh;
  const uint64_t epoch = epoch_ + 1;
  static const std::vector<const k8s::EndpointSlice*> kNoSlices;
  for (const auto& svc : in.services) {
    std::string key = svc.meta.namespace_ + "/" + svc.meta.name;
    auto sl = slices.find(key);
    auto mine = sl == slices.end() ? kNoSlices : std::move(sl->second);
    std::sort(mine.begin(), mine.end(), [](auto* a, auto* b) {
      return a->meta.name < b->meta.name;
    });
    auto it = cache_.find(key);
    if (it != cache_.end() && !cc.touches(svc) && it->second.svc == svc &&
        same_slices(it->second.slices, mine)) {
      it->second.epoch = epoch;
      continue;
    }
    Entry e{svc, {}, {}, epoch};
    for (const auto* es : mine) e.slices.push_back(*es);
    if (!svc.headless()) {
      ServiceProgram sp(c, svc, e.slices, c.warnings);
      const auto lookup = [&](const std::string& ns, const std::string& n) {
        PodAddresses a;
        if (auto p = in.local_pods.find({ns, n}); p != in.local_pods.end())
          a.ips = p->second;
        return a;
      };
      static const std::vector<k8s::Pod> kNoPods;
      const auto ports = service_backends(
          svc, svc.selector.empty() ? kNoPods : c.pods_of(svc.meta.namespace_),
          e.slices, lookup);
      for (const auto& pb : ports)
        if (auto st = sp.add_port(pb); !st) return Error{st.error()};
      e.part = std::move(sp.part);
    }
    fresh[std::move(key)] = std::move(e);
  }

  ProgramDelta d;
  d.recomputed = fresh.size();
  std::vector<std::string> gone;
  for (const auto& [key, e] : cache_)
    if (e.epoch != epoch && !fresh.count(key)) gone.push_back(key);
  bool whole = cc.all;
  for (const auto& key : gone)
    whole = whole || clashing_.count(key);
  for (const auto& [key, e] : fresh) whole = whole || clashing_.count(key);
  if (!whole) {
    for (const auto& key : gone) unmerge(key, cache_.at(key).part, d);
    for (const auto& [key, e] : fresh)
      if (auto it = cache_.find(key); it != cache_.end())
        unmerge(key, it->second.part, d);
    prog_.warnings.clear();
    for (const auto& [key, e] : fresh)
      if (!merge(key, e.part, d)) {
        whole = true;
        break;
      }
  }
  for (const auto& key : gone) cache_.erase(key);
  for (auto& [key, e] : fresh) cache_[key] = std::move(e);
  epoch_ = epoch;
  if (whole) {
    rebuild();
    d.all = true;
  }
  prog_.warnings.insert(prog_.warnings.begin(), c.warnings.begin(),
                        c.warnings.end());
  if (in.pods != pods_) pods_ = in.pods;
  local_ = in.local_pods;
  node_ = in.node_addresses;
  algorithm_ = in.algorithm;
  maglev_m_ = in.maglev_table_size;
  primed_ = true;
  return d;
}

void ProgramBuilder::unmerge(const std::string& key, const Part& part,
                             ProgramDelta& d) {
  for (const auto& [k, fe] : part.frontends)
    if (auto it = prog_.frontends.find(k);
        it != prog_.frontends.end() && it->second.set.service == key) {
      prog_.frontends.erase(it);
      d.frontends.insert(k);
    }
  for (const auto& [ref, set] : part.sets)
    if (prog_.sets.erase(ref)) d.sets.insert(ref);
}

// False when a frontend is another Service's already (a clash: rebuild).
bool ProgramBuilder::merge(const std::string& key, const Part& part,
                           ProgramDelta& d) {
  for (const auto& [k, fe] : part.frontends) {
    auto [it, fresh] = prog_.frontends.try_emplace(k, fe);
    if (!fresh) return it->second.set.service == key;
    d.frontends.insert(k);
    if (prog_.sets.try_emplace(fe.set, part.sets.at(fe.set)).second)
      d.sets.insert(fe.set);
  }
  return true;
}

void ProgramBuilder::rebuild() {
  prog_ = {};
  clashing_.clear();
  for (const auto& [key, e] : cache_)
    for (const auto& [k, fe] : e.part.frontends) {
      auto [it, fresh] = prog_.frontends.try_emplace(k, fe);
      if (!fresh) {
        const std::string& owner = it->second.set.service;
        prog_.warnings.push_back("Service " + key + ": frontend " + k.str() +
                                 " is already Service " + owner +
                                 "'s (skipped)");
        clashing_.insert(key);
        clashing_.insert(owner);
        continue;
      }
      prog_.sets.try_emplace(fe.set, e.part.sets.at(fe.set));
    }
}

Result<std::vector<uint32_t>> slot_counts(std::span<const uint32_t> weights,
                                          uint32_t max) {
  if (weights.size() > max)
    return err(std::to_string(weights.size()) +
               " backends exceed SLUICE_LB_SLOTS_PER_SVC (" +
               std::to_string(max) + ") for random selection");
  uint32_t g = 0;
  for (uint32_t w : weights) g = std::gcd(g, w);
  std::vector<uint32_t> out(weights.begin(), weights.end());
  uint64_t total = 0;
  for (auto& w : out) total += (w /= std::max(g, 1u));
  if (total <= max) return out;
  // Proportional with a floor of one slot; shrink the budget until the
  // floors fit too (weights.size() <= max guarantees an end).
  for (uint64_t budget = max;;) {
    uint64_t sum = 0;
    for (size_t i = 0; i < out.size(); i++) {
      const uint64_t w = weights[i] / std::max(g, 1u);
      out[i] = uint32_t(std::max<uint64_t>(1, w * budget / total));
      sum += out[i];
    }
    if (sum <= max) return out;
    budget -= std::min(budget - 1, sum - max);
  }
}

std::vector<uint32_t> assign_slots(std::span<const uint32_t> prev,
                                   const std::map<uint32_t, uint32_t>& need) {
  size_t total = 0;
  for (const auto& [id, n] : need) total += n;
  std::vector<uint32_t> out(total, 0);
  auto left = need;
  for (size_t i = 0; i < std::min(prev.size(), total); i++) {
    auto it = left.find(prev[i]);
    if (it != left.end() && it->second > 0) {
      out[i] = prev[i];
      it->second--;
    }
  }
  auto next = left.begin();
  for (auto& slot : out) {
    if (slot) continue;
    while (next->second == 0) ++next;
    slot = next->first;
    next->second--;
  }
  return out;
}

Usage usage(const Program& p) {
  Usage u;
  u.frontends = p.frontends.size();
  u.sets = p.sets.size();
  std::set<BackendAddr> be;
  for (const auto& [ref, s] : p.sets) {
    if (!s.maglev) u.slots += s.count();
    for (const auto& m : s.members) be.insert(m.addr);
  }
  u.backends = be.size();
  return u;
}

Status check_capacity(const Usage& u, const Limits& l) {
  auto over = [](size_t n, size_t max, const char* what, const char* limit) {
    return err("load balancer: " + std::to_string(n) + " " + what +
               " exceed " + limit + " (" + std::to_string(max) +
               "); nothing was changed");
  };
  if (u.frontends > l.frontends)
    return over(u.frontends, l.frontends, "frontends", "SLUICE_LB_SVC_MAX");
  if (u.sets > l.sets)
    return over(u.sets, l.sets, "backend sets (svc ids)",
                "SLUICE_LB_SVC_IDS_MAX - 1");
  if (u.slots > l.slots)
    return over(u.slots, l.slots, "random-selection slots",
                "SLUICE_LB_SLOTS_MAX");
  if (u.backends > l.backends)
    return over(u.backends, l.backends, "backends", "SLUICE_LB_BE_MAX");
  return {};
}

}  // namespace sluice::lb

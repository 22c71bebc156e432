#include "lb/program.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <tuple>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

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
  const ProgramContext& in;
  const std::map<PodRef, uint32_t>& pod_weight;  // pods with sluice.io/lb-weight
  const std::map<std::string, std::map<std::string, const k8s::Pod*>>& pods;
  std::set<IpAddr> local_ips;
  std::map<IpAddr, PodRef> pod_of_ip;     // local endpoints
  std::map<std::string, std::vector<const k8s::Pod*>> pods_by_ns;

  Ctx(const ProgramContext& i, const std::map<PodRef, uint32_t>& w,
      const std::map<std::string, std::map<std::string, const k8s::Pod*>>& p)
      : in(i), pod_weight(w), pods(p) {
    for (const auto& [pod, ips] : in.local_pods)
      for (const auto& ip : ips) {
        local_ips.insert(ip);
        pod_of_ip[ip] = pod;
      }
  }
  // Selector Services only: the pods of a namespace, sorted by name.
  const std::vector<const k8s::Pod*>& pods_of(const std::string& ns) {
    auto [it, fresh] = pods_by_ns.try_emplace(ns);
    if (fresh)
      if (auto p = pods.find(ns); p != pods.end())
        for (const auto& [name, pod] : p->second) it->second.push_back(pod);
    return it->second;
  }
};

// One Service's frontends and the sets they use.
class ServiceProgram {
 public:
  ServiceProgram(Ctx& c, const k8s::Service& svc,
                 const std::vector<const k8s::EndpointSlice*>& slices,
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
    for (const auto* es : slices)
      for (const auto& ep : es->endpoints)
        if (ep.target_ref && ep.target_ref->kind == "Pod")
          if (auto ip = IpAddr::parse(ep.addresses.at(0)))
            pod_of_ip_.try_emplace(
                *ip, PodRef{ep.target_ref->namespace_.empty()
                                ? es->meta.namespace_
                                : ep.target_ref->namespace_,
                            ep.target_ref->name});
  }

  // The pods whose lb-weight this Service's weights may read through its
  // slices (ProgramBuilder's dependency index).
  std::vector<PodRef> target_pods() const {
    std::vector<PodRef> out;
    for (const auto& [ip, pod] : pod_of_ip_) out.push_back(pod);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
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

// The entries of two maps that differ (added, removed or changed).
template <typename K, typename V, typename F>
void each_difference(const std::map<K, V>& a, const std::map<K, V>& b, F f) {
  for (const auto& [k, v] : a)
    if (auto it = b.find(k); it == b.end() || !(it->second == v)) f(k);
  for (const auto& [k, v] : b)
    if (!a.count(k)) f(k);
}

std::string ns_name(const k8s::ObjectMeta& m) {
  return m.namespace_ + "/" + m.name;
}

// "ns/service" an EndpointSlice belongs to; "" without the label.
std::string owner_of(const k8s::EndpointSlice& es) {
  auto it = es.meta.labels.find(k8s::kServiceNameLabel);
  return it == es.meta.labels.end() ? std::string()
                                    : es.meta.namespace_ + "/" + it->second;
}

bool relevant(const k8s::Object& o) {
  return o.get<k8s::Service>() || o.get<k8s::EndpointSlice>() ||
         o.get<k8s::Pod>();
}

}  // namespace

void ProgramBuilder::reach_address(const IpAddr& ip) {
  if (auto it = by_ip_.find(ip); it != by_ip_.end())
    for (const std::string* svc : it->second) due_.insert(*svc);
}

// A pod's weight changed: every Service that may read it.
void ProgramBuilder::reach_pod_weight(const PodRef& pod,
                                      const ProgramContext& ctx) {
  if (auto it = by_pod_.find(pod); it != by_pod_.end())
    due_.insert(it->second.begin(), it->second.end());
  for (const auto* local : {&std::as_const(ctx_).local_pods, &ctx.local_pods})
    if (auto it = local->find(pod); it != local->end())
      for (const auto& ip : it->second) reach_address(ip);
}

void ProgramBuilder::apply_change(const std::string& key,
                                  const k8s::ObjectPtr& now,
                                  const ProgramContext& ctx,
                                  std::vector<std::string>& warnings) {
  if (now && !relevant(*now)) return;
  auto it = objects_.find(key);
  const k8s::ObjectPtr old = it == objects_.end() ? nullptr : it->second;
  if (old == now) return;
  if (old && now && *old == *now) {  // the same content, a new copy
    it->second = now;
    if (auto* s = now->get<k8s::Service>()) services_[ns_name(s->meta)] = s;
    if (auto* es = now->get<k8s::EndpointSlice>())
      if (auto o = owner_of(*es); !o.empty()) slices_of_[o][es->meta.name] = es;
    if (auto* p = now->get<k8s::Pod>()) pods_[p->meta.namespace_][p->meta.name] = p;
    return;
  }
  const k8s::Object& any = now ? *now : *old;
  if (any.get<k8s::Service>()) {
    const auto* o = old ? old->get<k8s::Service>() : nullptr;
    const auto* n = now ? now->get<k8s::Service>() : nullptr;
    const std::string name = ns_name((o ? o : n)->meta);
    if (o && !o->selector.empty()) {
      auto& sel = selector_svcs_[o->meta.namespace_];
      sel.erase(name);
      if (sel.empty()) selector_svcs_.erase(o->meta.namespace_);
    }
    if (n) {
      services_[name] = n;
      if (!n->selector.empty()) selector_svcs_[n->meta.namespace_].insert(name);
    } else {
      services_.erase(name);
    }
    due_.insert(name);
  } else if (any.get<k8s::EndpointSlice>()) {
    const auto* o = old ? old->get<k8s::EndpointSlice>() : nullptr;
    const auto* n = now ? now->get<k8s::EndpointSlice>() : nullptr;
    if (o)
      if (auto owner = owner_of(*o); !owner.empty()) {
        due_.insert(owner);
        auto s = slices_of_.find(owner);
        s->second.erase(o->meta.name);
        if (s->second.empty()) slices_of_.erase(s);
      }
    if (n)
      if (auto owner = owner_of(*n); !owner.empty()) {
        due_.insert(owner);
        slices_of_[owner][n->meta.name] = n;
      }
  } else if (any.get<k8s::Pod>()) {
    const auto* o = old ? old->get<k8s::Pod>() : nullptr;
    const auto* n = now ? now->get<k8s::Pod>() : nullptr;
    const k8s::ObjectMeta& m = (o ? o : n)->meta;
    const PodRef ref{m.namespace_, m.name};
    if (auto sel = selector_svcs_.find(m.namespace_); sel != selector_svcs_.end())
      for (const auto& svc : sel->second) {
        const auto& selector = services_.at(svc)->selector;
        if ((o && selects(selector, o->meta.labels)) ||
            (n && selects(selector, n->meta.labels)))
          due_.insert(svc);
      }
    std::optional<uint32_t> w_old, w_new;
    if (o) w_old = k8s::pod_lb_weight(o->meta, nullptr);
    if (n) {
      std::vector<std::string> w;
      w_new = k8s::pod_lb_weight(n->meta, &w);
      for (const auto& x : w)
        warnings.push_back("Pod " + m.namespace_ + "/" + m.name + ": " + x +
                           " (ignored)");
    }
    if (w_old != w_new) {
      reach_pod_weight(ref, ctx);
      if (w_new) pod_weight_[ref] = *w_new;
      else pod_weight_.erase(ref);
    }
    auto& ns = pods_[m.namespace_];
    if (n) {
      ns[m.name] = n;
    } else {
      ns.erase(m.name);
      if (ns.empty()) pods_.erase(m.namespace_);
    }
  }
  if (now) objects_[key] = now;
  else objects_.erase(key);
}

void ProgramBuilder::index(const std::string& key, const Deps& deps, bool add) {
  for (const auto& ip : deps.ips)
    if (add) {
      by_ip_[ip].push_back(&key);
    } else if (auto it = by_ip_.find(ip); it != by_ip_.end()) {
      auto& v = it->second;
      v.erase(std::remove(v.begin(), v.end(), &key), v.end());
      if (v.empty()) by_ip_.erase(it);
    }
  for (const auto& pod : deps.pods)
    if (add) {
      by_pod_[pod].insert(key);
    } else if (auto it = by_pod_.find(pod); it != by_pod_.end()) {
      it->second.erase(key);
      if (it->second.empty()) by_pod_.erase(it);
    }
}

Result<ProgramDelta> ProgramBuilder::update(const ProgramInput& in) {
  k8s::ChangeFeed feed;
  feed.full = true;
  auto add = [&](k8s::Object o) {
    auto key = o.key();
    feed.changes.push_back(
        {std::move(key), std::make_shared<const k8s::Object>(std::move(o))});
  };
  for (const auto& s : in.services) add({s});
  for (const auto& e : in.slices) add({e});
  for (const auto& p : in.pods) add({p});
  ProgramContext ctx{in.local_pods, in.node_addresses, in.algorithm,
                     in.maglev_table_size};
  return update(feed, ctx);
}

Result<ProgramDelta> ProgramBuilder::update(const k8s::ChangeFeed& feed,
                                            const ProgramContext& ctx) {
  const bool all = !primed_ || ctx.algorithm != ctx_.algorithm ||
                   ctx.maglev_table_size != ctx_.maglev_table_size;
  std::vector<std::string> warnings;
  // The objects, and the Services each change reaches.
  if (feed.full) {
    std::unordered_set<std::string_view> listed;
    listed.reserve(feed.changes.size());
    for (const auto& c : feed.changes) {
      if (!c.object || !relevant(*c.object)) continue;
      listed.insert(c.key);
      apply_change(c.key, c.object, ctx, warnings);
    }
    std::vector<std::string> gone;
    for (const auto& [key, o] : objects_)
      if (!listed.count(key)) gone.push_back(key);
    for (const auto& key : gone) apply_change(key, nullptr, ctx, warnings);
  } else {
    for (const auto& c : feed.changes)
      apply_change(c.key, c.object, ctx, warnings);
  }
  // The context.
  if (all) {
    for (const auto& [key, e] : parts_) due_.insert(key);
    for (const auto& [key, s] : services_) due_.insert(key);
  } else {
    if (ctx.local_pods != ctx_.local_pods)
      each_difference(ctx_.local_pods, ctx.local_pods, [&](const PodRef& r) {
        auto ns = pods_.find(r.first);
        auto sel = selector_svcs_.find(r.first);
        if (ns != pods_.end() && sel != selector_svcs_.end())
          if (auto pod = ns->second.find(r.second); pod != ns->second.end())
            for (const auto& svc : sel->second)
              if (selects(services_.at(svc)->selector, pod->second->meta.labels))
                due_.insert(svc);
        for (const auto* local : {&std::as_const(ctx_).local_pods, &ctx.local_pods})
          if (auto it = local->find(r); it != local->end())
            for (const auto& ip : it->second) reach_address(ip);
      });
    if (ctx.node_addresses != ctx_.node_addresses)
      for (const auto& [key, s] : services_)
        if (s->type != k8s::ServiceType::ClusterIP) due_.insert(key);
  }

  // The due Services' parts, computed off to the side: an error leaves
  // the program as it was (and them due).
  Ctx c(ctx, pod_weight_, pods_);
  std::map<std::string, std::optional<Entry>> fresh;  // unset: removed
  for (const auto& key : due_) {
    auto sit = services_.find(key);
    if (sit == services_.end()) {
      if (parts_.count(key)) fresh[key] = std::nullopt;
      continue;
    }
    const k8s::Service& svc = *sit->second;
    Entry e;
    if (!svc.headless()) {
      std::vector<const k8s::EndpointSlice*> mine;
      if (auto sl = slices_of_.find(key); sl != slices_of_.end())
        for (const auto& [name, es] : sl->second) mine.push_back(es);
      ServiceProgram sp(c, svc, mine, warnings);
      const auto lookup = [&](const std::string& ns, const std::string& n) {
        PodAddresses a;
        if (auto p = ctx.local_pods.find({ns, n}); p != ctx.local_pods.end())
          a.ips = p->second;
        return a;
      };
      static const std::vector<const k8s::Pod*> kNoPods;
      const auto ports = service_backends(
          svc, svc.selector.empty() ? kNoPods : c.pods_of(svc.meta.namespace_),
          mine, lookup);
      for (const auto& pb : ports) {
        if (auto st = sp.add_port(pb); !st) return Error{st.error()};
        for (const auto& b : pb.backends) e.deps.ips.push_back(b.ip);
      }
      std::sort(e.deps.ips.begin(), e.deps.ips.end());
      e.deps.ips.erase(std::unique(e.deps.ips.begin(), e.deps.ips.end()),
                       e.deps.ips.end());
      e.deps.pods = sp.target_pods();
      e.part = std::move(sp.part);
    }
    fresh[key] = std::move(e);
  }

  ProgramDelta d;
  bool whole = all;
  for (const auto& [key, e] : fresh) {
    if (e) d.recomputed++;
    whole = whole || clashing_.count(key);
  }
  if (!whole) {
    prog_.warnings.clear();
    for (const auto& [key, e] : fresh)
      if (auto it = parts_.find(key);
          it != parts_.end() && (!e || !(e->part == it->second.part)))
        unmerge(key, it->second.part, d);
    for (const auto& [key, e] : fresh) {
      if (!e) continue;
      auto it = parts_.find(key);
      if (it != parts_.end() && e->part == it->second.part) continue;
      if (!merge(key, e->part, d)) {
        whole = true;
        break;
      }
    }
  }
  for (auto& [key, e] : fresh) {
    auto it = parts_.find(key);
    if (it != parts_.end()) {
      index(it->first, it->second.deps, false);
      if (!e) {
        parts_.erase(it);
        continue;
      }
      it->second = std::move(*e);
    } else if (e) {
      it = parts_.emplace(key, std::move(*e)).first;
    } else {
      continue;
    }
    index(it->first, it->second.deps, true);  // by parts_' own key
  }
  if (whole) {
    rebuild();
    d.all = true;
  }
  prog_.warnings.insert(prog_.warnings.begin(), warnings.begin(),
                        warnings.end());
  due_.clear();
  ctx_ = ctx;
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
  for (const auto& [key, e] : parts_)
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

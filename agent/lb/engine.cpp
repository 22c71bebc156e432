#include "lb/engine.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "lb/maglev.h"

namespace sluice {

using lb::BackendAddr;
using lb::BackendSet;
using lb::FrontendKey;
using lb::SetRef;

namespace {

double ms_between(std::chrono::steady_clock::time_point a,
                  std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

bool same(const sluice_lb_svc& a, const sluice_lb_svc& b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

// Next-fit: the first id >= cursor (wrapping to 1 below `end`) for which
// `used` is false; 0 when every id is used.
template <typename Used>
uint32_t next_fit(uint32_t& cursor, uint32_t end, Used used) {
  for (uint32_t n = 0; n + 1 < end; n++) {
    if (cursor == 0 || cursor >= end) cursor = 1;
    const uint32_t id = cursor++;
    if (!used(id)) return id;
  }
  return 0;
}

}  // namespace

std::vector<IpAddr> device_addresses(const std::vector<std::string>& devices) {
  std::vector<IpAddr> out;
  ifaddrs* ifa = nullptr;
  if (devices.empty() || getifaddrs(&ifa)) return out;
  for (ifaddrs* i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr || !i->ifa_name ||
        std::find(devices.begin(), devices.end(), i->ifa_name) == devices.end())
      continue;
    IpAddr a;
    if (i->ifa_addr->sa_family == AF_INET) {
      a.family = AF_INET;
      std::memcpy(a.bytes.data(),
                  &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      a.family = AF_INET6;
      std::memcpy(a.bytes.data(),
                  &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
      if (a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80) continue;
    } else {
      continue;
    }
    out.push_back(a);
  }
  freeifaddrs(ifa);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// What one sync will do, decided before the first write.
struct LbEngine::Plan {
  std::map<SetRef, uint32_t> ids;  // every desired set's svc id
  struct SetChange {
    uint32_t id = 0;
    const BackendSet* set = nullptr;
    WrittenSet next;
    std::vector<uint32_t> put_slots;  // positions to write
    std::vector<uint32_t> del_slots;  // positions to delete
    bool put_table = false, del_table = false;
    // A smaller Maglev table: its frontends take the new M while the old,
    // larger table is still in place (every slot below M stays valid),
    // rather than the new table meeting the old M.
    bool frontends_first = false;
    std::vector<lb::MaglevBackend> table_in;  // Maglev inputs
  };
  std::vector<SetChange> changes;  // new or different sets
  std::vector<uint32_t> stale;     // svc ids no set uses any more
  std::map<BackendAddr, uint32_t> new_be;  // ids given this sync
  std::map<uint32_t, int> refs;            // backend id -> change in users
  std::vector<uint32_t> new_conns, del_be;
  std::vector<std::pair<FrontendKey, sluice_lb_svc>> put_svc;
  std::vector<FrontendKey> del_svc;
  int64_t slot_change = 0;  // slot entries, end minus now
  bool all = false;  // everything looked at: every backend is a candidate
};

Result<std::unique_ptr<LbEngine>> LbEngine::create(ClusterState& cluster,
                                                   LocalEndpoints& endpoints,
                                                   const lb::LbMapFds& fds,
                                                   LbEngineConfig cfg) {
  auto maps = lb::LbMaps::open(fds);
  if (!maps) return Error{maps.error()};
  return std::make_unique<LbEngine>(Token{}, cluster, endpoints,
                                    std::move(*maps), std::move(cfg));
}

LbEngine::LbEngine(Token, ClusterState& cluster, LocalEndpoints& endpoints,
                   lb::LbMaps maps, LbEngineConfig cfg)
    : cluster_(cluster),
      endpoints_(endpoints),
      maps_(std::move(maps)),
      cfg_(std::move(cfg)) {}

void LbEngine::forget() {
  adopted_ = false;
  sets_.clear();
  set_ids_.clear();
  be_ids_.clear();
  be_addr_.clear();
  be_refs_.clear();
  svc_.clear();
  conns_.clear();
  slots_total_ = 0;
}

Status LbEngine::adopt() {
  forget();
  auto snap = maps_.read();
  if (!snap) return Error{snap.error()};
  for (auto& [id, a] : snap->backends) {
    be_ids_[a] = id;
    be_addr_[id] = a;
    next_be_ = std::max(next_be_, id + 1);
  }
  svc_ = std::move(snap->frontends);
  conns_ = std::move(snap->conns);
  auto touch = [&](uint32_t id) -> WrittenSet& {
    next_set_ = std::max(next_set_, id + 1);
    return sets_[id];
  };
  for (const auto& [k, v] : svc_) {
    if (auto st = maps_.gate(k); !st) return st;
    auto& s = touch(v.svc_id);
    s.maglev = v.flags & SLUICE_LB_MAGLEV;
    s.maglev_m = v.maglev_m;
  }
  for (auto& [id, slots] : snap->slots) touch(id).slots = std::move(slots);
  for (uint32_t id : snap->maglev) touch(id).has_table = true;
  sets_.erase(0);  // a frontend naming no set: replaced or deleted below
  for (auto& [id, s] : sets_) {
    for (uint32_t b : s.slots)
      if (b) {
        s.names.push_back(b);
        slots_total_++;
      }
    std::sort(s.names.begin(), s.names.end());
    s.names.erase(std::unique(s.names.begin(), s.names.end()), s.names.end());
    for (uint32_t b : s.names) be_refs_[b]++;
  }
  adopted_ = true;
  spdlog::info(
      "lb: adopted pinned state: {} frontends, {} backend sets, {} backends",
      svc_.size(), sets_.size(), be_addr_.size());
  return {};
}

Result<LbEngine::SyncStats> LbEngine::sync() {
  std::lock_guard g(mu_);
  const auto t0 = std::chrono::steady_clock::now();
  SyncStats st;
  bool all = full_next_;
  if (!adopted_) {
    if (auto s = adopt(); !s) return Error{s.error()};
    st.adopted = all = true;
  }
  // The cheap inputs first: when neither they nor the desired state (its
  // generation) changed, there is nothing to do.
  const uint64_t gen = cluster_.generation();
  decltype(lb::ProgramContext::local_pods) local;
  for (const auto& e : endpoints_.list())
    local[{e.pod_namespace, e.pod_name}] = e.ips;
  auto nodes = cfg_.node_addresses ? cfg_.node_addresses()
                                   : std::vector<IpAddr>{};
  if (!all && gen == generation_ && local == local_ && nodes == nodes_)
    return st;
  // Only what changed since the last successful sync (a builder that
  // already took some of it finds those unchanged); everything when the
  // builder starts from nothing.
  const auto tc = std::chrono::steady_clock::now();
  const auto feed = builder_.primed() ? cluster_.changes_since(generation_)
                                      : cluster_.snapshot();
  st.feed_ms = ms_between(tc, std::chrono::steady_clock::now());
  const lb::ProgramContext ctx{local, nodes, cfg_.algorithm,
                               cfg_.maglev_table_size};
  const auto tb = std::chrono::steady_clock::now();
  auto d = builder_.update(feed, ctx);
  if (!d) return Error{d.error()};
  st.program_ms = ms_between(tb, std::chrono::steady_clock::now());
  const auto& prog = builder_.program();
  for (const auto& w : prog.warnings)
    if (warned_.insert(w).second) spdlog::warn("lb: {}", w);
  auto p = plan(prog, *d, all || d->all);
  if (!p) {
    full_next_ = true;  // the builder moved on; the maps did not
    return Error{p.error()};
  }
  const auto t1 = std::chrono::steady_clock::now();
  if (auto s = write(*p, st); !s) {
    forget();
    return Error{s.error()};
  }
  full_next_ = false;
  generation_ = feed.generation;
  local_ = std::move(local);
  nodes_ = std::move(nodes);
  const auto t2 = std::chrono::steady_clock::now();
  st.frontends = prog.frontends.size();
  st.sets = prog.sets.size();
  st.backends = be_addr_.size();
  st.recomputed = d->recomputed;
  st.compute_ms = ms_between(t0, t1);
  st.kernel_ms = ms_between(t1, t2);
  if (st.writes || st.deletes || st.adopted)
    spdlog::info(
        "lb: {} frontends, {} backend sets, {} backends; {} writes ({} "
        "Maglev tables), {} deletes; compute {:.1f} ms, maps {:.1f} ms",
        st.frontends, st.sets, st.backends, st.writes, st.tables, st.deletes,
        st.compute_ms, st.kernel_ms);
  return st;
}


Result<LbEngine::Plan> LbEngine::plan(const lb::Program& prog,
                                      const lb::ProgramDelta& d, bool all) {
  Plan p;
  p.all = all;
  // What to look at: everything, or what the program says changed.
  std::vector<const SetRef*> refs;
  std::vector<const FrontendKey*> keys;
  if (all) {
    for (const auto& [ref, set] : prog.sets) refs.push_back(&ref);
    for (const auto& [key, fe] : prog.frontends) keys.push_back(&key);
    for (const auto& [key, v] : svc_)
      if (!prog.frontends.count(key)) keys.push_back(&key);
  } else {
    for (const auto& ref : d.sets) refs.push_back(&ref);
    for (const auto& key : d.frontends) keys.push_back(&key);
  }

  // svc ids: the set's own; else one a frontend of it uses whose set is
  // gone (a restart, a port renamed); else a fresh one.
  std::set<uint32_t> claimed;
  for (const SetRef* ref : refs)
    if (prog.sets.count(*ref))
      if (auto it = set_ids_.find(*ref); it != set_ids_.end()) {
        p.ids[*ref] = it->second;
        claimed.insert(it->second);
      }
  for (const FrontendKey* key : keys) {
    auto fe = prog.frontends.find(*key);
    auto it = svc_.find(*key);
    if (fe == prog.frontends.end() || it == svc_.end() ||
        p.ids.count(fe->second.set) || set_ids_.count(fe->second.set))
      continue;
    const uint32_t id = it->second.svc_id;
    auto old = sets_.find(id);
    if (old != sets_.end() &&
        (!old->second.ref || !prog.sets.count(*old->second.ref)) &&
        claimed.insert(id).second)
      p.ids[fe->second.set] = id;
  }
  size_t new_ids = 0;
  for (const SetRef* ref : refs) {
    if (!prog.sets.count(*ref) || p.ids.count(*ref)) continue;
    const uint32_t id = next_fit(next_set_, SLUICE_LB_SVC_IDS_MAX, [&](uint32_t i) {
      return sets_.count(i) || claimed.count(i);
    });
    if (!id)
      return err("load balancer: no free svc id below SLUICE_LB_SVC_IDS_MAX (" +
                 std::to_string(SLUICE_LB_SVC_IDS_MAX) + "); nothing was changed");
    claimed.insert(id);
    p.ids[*ref] = id;
  }
  for (uint32_t id : claimed) new_ids += !sets_.count(id);

  std::set<uint32_t> fresh_ids;
  auto backend_id = [&](const BackendAddr& a) -> uint32_t {
    if (auto it = be_ids_.find(a); it != be_ids_.end()) return it->second;
    if (auto it = p.new_be.find(a); it != p.new_be.end()) return it->second;
    const uint32_t id = next_fit(next_be_, 1u << 31, [&](uint32_t i) {
      return be_addr_.count(i) || fresh_ids.count(i);
    });
    fresh_ids.insert(id);
    p.new_be[a] = id;
    return id;
  };
  auto occupied = [](const std::vector<uint32_t>& slots) {
    return size_t(std::count_if(slots.begin(), slots.end(),
                                [](uint32_t b) { return b != 0; }));
  };
  std::set<uint32_t> conns;
  size_t new_slots = 0;
  int64_t slot_change = 0;
  for (const SetRef* ref : refs) {
    auto sit = prog.sets.find(*ref);
    if (sit == prog.sets.end()) continue;
    const BackendSet& set = sit->second;
    const uint32_t id = p.ids.at(*ref);
    auto old_it = sets_.find(id);
    const WrittenSet* old = old_it == sets_.end() ? nullptr : &old_it->second;
    if (old && old->ref == *ref && old->desired == set) continue;
    Plan::SetChange ch;
    ch.id = id;
    ch.set = &set;
    WrittenSet& nx = ch.next;
    nx.ref = *ref;
    nx.desired = set;
    nx.maglev = set.maglev;
    nx.maglev_m = set.maglev_m;
    std::map<uint32_t, uint32_t> need;
    for (size_t i = 0; i < set.members.size(); i++) {
      const auto& m = set.members[i];
      const uint32_t b = backend_id(m.addr);
      nx.names.push_back(b);
      if (set.maglev)
        ch.table_in.push_back({b, m.weight, lb::maglev_key(m.addr.ip, m.addr.port)});
      else
        need[b] += set.slots[i];
    }
    std::sort(nx.names.begin(), nx.names.end());
    static const std::vector<uint32_t> kNone;
    const auto& prev = old ? old->slots : kNone;
    if (!set.maglev) {
      nx.slots = lb::assign_slots(prev, need);
      for (uint32_t i = 0; i < nx.slots.size(); i++)
        if (i >= prev.size() || prev[i] != nx.slots[i]) {
          ch.put_slots.push_back(i);
          if (i >= prev.size() || !prev[i]) new_slots++;
        }
    }
    for (uint32_t i = uint32_t(nx.slots.size()); i < prev.size(); i++)
      if (prev[i]) ch.del_slots.push_back(i);
    slot_change += int64_t(nx.slots.size()) - int64_t(occupied(prev));
    nx.has_table = set.maglev && !set.members.empty();
    ch.put_table = nx.has_table;
    ch.del_table = !nx.has_table && old && old->has_table;
    ch.frontends_first = ch.put_table && old && old->maglev &&
                         old->has_table && old->maglev_m > set.maglev_m;
    if (old)
      for (uint32_t b : old->names) p.refs[b]--;
    for (uint32_t b : nx.names) p.refs[b]++;
    if (set.conn_cap)
      for (uint32_t b : nx.names)
        if (!conns_.count(b)) conns.insert(b);
    p.changes.push_back(std::move(ch));
  }
  p.new_conns.assign(conns.begin(), conns.end());
  auto stale = [&](uint32_t id) {
    const auto& s = sets_.at(id);
    p.stale.push_back(id);
    slot_change -= int64_t(occupied(s.slots));
    for (uint32_t b : s.names) p.refs[b]--;
  };
  if (all) {
    for (const auto& [id, s] : sets_)
      if (!claimed.count(id)) stale(id);
  } else {
    for (const SetRef* ref : refs)
      if (!prog.sets.count(*ref))
        if (auto it = set_ids_.find(*ref);
            it != set_ids_.end() && !claimed.count(it->second))
          stale(it->second);
  }
  auto unused = [&](uint32_t id) {
    auto r = be_refs_.find(id);
    auto dl = p.refs.find(id);
    return (r == be_refs_.end() ? 0 : int64_t(r->second)) +
               (dl == p.refs.end() ? 0 : dl->second) <= 0;
  };
  if (all) {
    for (const auto& [id, a] : be_addr_)
      if (unused(id)) p.del_be.push_back(id);
  } else {
    for (const auto& [id, dl] : p.refs)
      if (dl < 0 && be_addr_.count(id) && unused(id)) p.del_be.push_back(id);
  }

  size_t new_frontends = 0;
  for (const FrontendKey* key : keys) {
    auto fe = prog.frontends.find(*key);
    auto it = svc_.find(*key);
    if (fe == prog.frontends.end()) {
      if (it != svc_.end()) p.del_svc.push_back(*key);
      continue;
    }
    const SetRef& ref = fe->second.set;
    const BackendSet& set = prog.sets.at(ref);
    auto id = p.ids.find(ref);
    const sluice_lb_svc v{id != p.ids.end() ? id->second : set_ids_.at(ref),
                          set.count(),
                          uint16_t(set.flags | fe->second.flags),
                          set.maglev ? set.maglev_m : 0,
                          set.affinity_s,
                          set.conn_cap,
                          0};
    if (it == svc_.end()) new_frontends++;
    if (it == svc_.end() || !same(it->second, v)) p.put_svc.emplace_back(*key, v);
  }

  // Capacity, before anything is written: the end state, and the peak
  // while old and new entries coexist (removals come last).
  lb::Usage end{svc_.size() + new_frontends - p.del_svc.size(),
                sets_.size() + new_ids - p.stale.size(),
                size_t(int64_t(slots_total_) + slot_change),
                be_addr_.size() + p.new_be.size() - p.del_be.size()};
  if (auto s = lb::check_capacity(end, cfg_.limits); !s) return Error{s.error()};
  lb::Usage peak{svc_.size() + new_frontends, sets_.size() + new_ids,
                 slots_total_ + new_slots, be_addr_.size() + p.new_be.size()};
  if (auto s = lb::check_capacity(peak, cfg_.limits); !s)
    return err(s.error() + " (old and new entries coexist during the update)");
  p.slot_change = slot_change;
  return p;
}

Status LbEngine::write(Plan& p, SyncStats& st) {
  // Batched where the order allows: every new backend, then every set's
  // slots (and each Maglev table), then the frontends.
  if (!p.new_be.empty()) {
    std::vector<std::pair<BackendAddr, uint32_t>> be(p.new_be.begin(),
                                                     p.new_be.end());
    if (auto s = maps_.put_backends(be); !s) return s;
    st.writes += be.size();
  }
  for (uint32_t id : p.new_conns) {
    if (auto s = maps_.ensure_conns(id); !s) return s;
    st.writes++;
  }
  std::vector<bool> svc_done(p.put_svc.size());
  auto put_frontends = [&](uint32_t only) -> Status {
    std::vector<std::pair<FrontendKey, sluice_lb_svc>> batch;
    for (size_t i = 0; i < p.put_svc.size(); i++) {
      const auto& [k, v] = p.put_svc[i];
      if (svc_done[i] || (only && v.svc_id != only)) continue;
      batch.push_back(p.put_svc[i]);
      svc_done[i] = true;
    }
    if (batch.empty()) return {};
    if (auto s = maps_.put_svcs(batch); !s) return s;
    st.writes += batch.size();
    return {};
  };
  std::vector<lb::LbMaps::SlotWrite> slots;
  for (const auto& ch : p.changes)
    for (uint32_t i : ch.put_slots) slots.push_back({ch.id, i, ch.next.slots[i]});
  if (!slots.empty()) {
    if (auto s = maps_.put_slots(slots); !s) return s;
    st.writes += slots.size();
  }
  // New Maglev tables are made and filled, then swapped in by batches
  // (one kernel RCU wait per batch, not per table; a bounded number of
  // inner-map fds open at once).
  std::vector<std::pair<uint32_t, UniqueFd>> tables;
  auto swap_tables = [&]() -> Status {
    if (tables.empty()) return {};
    if (auto s = maps_.swap_maglevs(tables); !s) return s;
    st.writes += tables.size();
    st.tables += tables.size();
    tables.clear();
    return {};
  };
  for (auto& ch : p.changes) {
    if (ch.frontends_first) {
      if (auto s = swap_tables(); !s) return s;
      if (auto s = put_frontends(ch.id); !s) return s;
    }
    if (!ch.put_table) continue;
    auto table = lb::maglev_table(ch.table_in, ch.set->maglev_m);
    if (!table) return Error{table.error()};
    // An adopted table is kept when it is what would be written.
    auto old = sets_.find(ch.id);
    if (old != sets_.end() && old->second.has_table && !old->second.desired)
      if (auto cur = maps_.read_maglev(ch.id, ch.set->maglev_m);
          cur && *cur == *table)
        continue;
    auto inner = maps_.make_maglev(ch.id, *table);
    if (!inner) return Error{inner.error()};
    tables.emplace_back(ch.id, std::move(*inner));
    if (ch.frontends_first || tables.size() >= 256)
      if (auto s = swap_tables(); !s) return s;
  }
  if (auto s = swap_tables(); !s) return s;
  if (auto s = put_frontends(0); !s) return s;
  for (const auto& k : p.del_svc) {
    if (auto s = maps_.del_svc(k); !s) return s;
    st.deletes++;
  }
  auto drop = [&](uint32_t id, const std::vector<uint32_t>& slots,
                  bool table) -> Status {
    for (uint32_t i : slots) {
      if (auto s = maps_.del_slot(id, i); !s) return s;
      st.deletes++;
    }
    if (table) {
      if (auto s = maps_.del_maglev(id); !s) return s;
      st.deletes++;
    }
    return {};
  };
  for (const auto& ch : p.changes)
    if (auto s = drop(ch.id, ch.del_slots, ch.del_table); !s) return s;
  for (uint32_t id : p.stale) {
    const auto& old = sets_.at(id);
    std::vector<uint32_t> slots;
    for (uint32_t i = 0; i < old.slots.size(); i++)
      if (old.slots[i]) slots.push_back(i);
    if (auto s = drop(id, slots, old.has_table); !s) return s;
  }
  for (uint32_t id : p.del_be) {
    if (auto s = maps_.del_backend(id); !s) return s;
    st.deletes++;
  }
  if (!p.stale.empty()) {
    // Optional (the datapath ignores entries of unknown svc ids), so a
    // failure is only logged.
    auto n = maps_.purge_affinity({p.stale.begin(), p.stale.end()});
    if (!n) spdlog::warn("lb: {}", n.error());
    else st.deletes += *n;
  }
  {
    // ClientIP affinity must not outlive a backend's membership: the
    // datapath only checks that an affine backend still exists (another
    // set may name it), so a changed set's entries naming a backend it no
    // longer has (removed, terminating) go now.
    std::map<uint32_t, std::set<uint32_t>> keep;
    for (const auto& ch : p.changes)
      if (ch.set && ch.set->affinity_s)
        keep[ch.id] = {ch.next.names.begin(), ch.next.names.end()};
    if (!keep.empty()) {
      auto n = maps_.purge_affinity_except(keep);
      if (!n) spdlog::warn("lb: {}", n.error());
      else st.deletes += *n;
    }
  }

  // Everything is in: remember it.
  for (uint32_t id : p.stale) {
    auto& ref = sets_.at(id).ref;
    if (ref && set_ids_.count(*ref) && set_ids_.at(*ref) == id)
      set_ids_.erase(*ref);
    sets_.erase(id);
  }
  for (auto& ch : p.changes) {
    auto& slot = sets_[ch.id];
    if (slot.ref && slot.ref != ch.next.ref && set_ids_.count(*slot.ref) &&
        set_ids_.at(*slot.ref) == ch.id)
      set_ids_.erase(*slot.ref);  // an id taken over from a set now gone
    set_ids_[*ch.next.ref] = ch.id;
    slot = std::move(ch.next);
  }
  slots_total_ = size_t(int64_t(slots_total_) + p.slot_change);
  for (const auto& [a, id] : p.new_be) {
    be_ids_[a] = id;
    be_addr_[id] = a;
  }
  for (const auto& [id, d] : p.refs) {
    const int64_t n = int64_t(be_refs_[id]) + d;
    if (n > 0) be_refs_[id] = uint32_t(n);
    else be_refs_.erase(id);
  }
  for (uint32_t id : p.del_be) {
    be_ids_.erase(be_addr_.at(id));
    be_addr_.erase(id);
    be_refs_.erase(id);
    conns_.erase(id);
  }
  for (auto& [k, v] : p.put_svc) svc_[k] = v;
  for (const auto& k : p.del_svc) svc_.erase(k);
  conns_.insert(p.new_conns.begin(), p.new_conns.end());
  return {};
}

Result<std::vector<LbEngine::FrontendRow>> LbEngine::list() {
  std::lock_guard g(mu_);
  auto fes = maps_.read_frontends();
  if (!fes) return Error{fes.error()};
  std::vector<FrontendRow> out;
  std::map<uint32_t, std::vector<BackendRow>> by_set;
  for (const auto& [key, v] : *fes) {
    FrontendRow row;
    row.key = key;
    row.value = v;
    auto ws = sets_.find(v.svc_id);
    const WrittenSet* set = ws == sets_.end() ? nullptr : &ws->second;
    if (set && set->ref) {
      row.service = set->ref->service;
      row.port = set->ref->port;
    }
    auto [it, fresh] = by_set.try_emplace(v.svc_id);
    if (fresh && v.count) {
      std::map<uint32_t, uint32_t> share;
      if (v.flags & SLUICE_LB_MAGLEV) {
        auto t = maps_.read_maglev(v.svc_id, v.maglev_m);
        if (!t) return Error{t.error()};
        for (uint32_t id : *t)
          if (id) share[id]++;
      } else {
        for (uint32_t i = 0; i < v.count; i++) {
          auto id = maps_.read_slot(v.svc_id, i);
          if (!id) return Error{id.error()};
          share[*id]++;
        }
      }
      for (const auto& [id, n] : share) {
        BackendRow b;
        b.id = id;
        b.share = n;
        if (auto a = maps_.read_backend(id)) b.addr = *a;
        if (set && set->desired && b.addr)
          for (const auto& m : set->desired->members)
            if (m.addr == *b.addr) b.weight = m.weight;
        it->second.push_back(b);
      }
    }
    row.backends = it->second;
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace sluice

#include "lb/lb_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/fd.h"

namespace sluice::lb {
namespace {

constexpr uint32_t kMaglevScanMargin = 4096;

Error map_err(const char* map, const std::string& what) {
  return err(std::string("map ") + map + ": " + what + ": " + errno_str(errno));
}

// Every entry of a hash map: batched lookups (one syscall per few
// thousand entries: adoption reads up to a million backends), falling back
// to key iteration where the kernel has no batch support.
template <typename K, typename V>
Result<std::vector<std::pair<K, V>>> dump(int fd, const char* name) {
  std::vector<std::pair<K, V>> out;
  uint32_t chunk = 4096;
  std::vector<K> keys(chunk);
  std::vector<V> vals(chunk);
  alignas(8) unsigned char in[sizeof(K) + 8], next[sizeof(K) + 8];
  bool first = true;
  for (;;) {
    uint32_t n = chunk;
    LIBBPF_OPTS(bpf_map_batch_opts, o);
    const int r = bpf_map_lookup_batch(fd, first ? nullptr : in, next,
                                       keys.data(), vals.data(), &n, &o);
    const int e = r ? errno : 0;
    if (r && e == ENOSPC && n == 0 && chunk < (1u << 22)) {  // bucket > chunk
      chunk *= 4;
      keys.resize(chunk);
      vals.resize(chunk);
      continue;
    }
    if (r && e != ENOENT) {
      if (first && (e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP)) break;
      return map_err(name, "read");
    }
    for (uint32_t i = 0; i < n; i++) out.emplace_back(keys[i], vals[i]);
    if (r) return out;  // ENOENT: that was the last batch
    std::memcpy(in, next, sizeof(in));
    first = false;
  }
  K k{}, nk{};
  const K* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &nk) == 0) {
    V v{};
    if (bpf_map_lookup_elem(fd, &nk, &v) == 0) out.emplace_back(nk, v);
    k = nk;
    prev = &k;
  }
  return out;
}

BackendAddr backend_of(const sluice_lb_backend& b) {
  BackendAddr a;
  a.ip.family = b.family;
  std::memcpy(a.ip.bytes.data(), b.addr, b.family == AF_INET6 ? 16 : 4);
  a.port = ntohs(b.port);
  return a;
}

Status check_map(int fd, const char* name, uint32_t key, uint32_t value) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (fd < 0) return err(std::string("map ") + name + ": not found");
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) return map_err(name, "info");
  if (info.key_size != key || info.value_size != value)
    return err(std::string("map ") + name + ": key/value size " +
               std::to_string(info.key_size) + "/" +
               std::to_string(info.value_size) + ", expected " +
               std::to_string(key) + "/" + std::to_string(value));
  return {};
}

}  // namespace

Result<LbMaps> LbMaps::open(const LbMapFds& f) {
  const struct {
    int fd;
    const char* name;
    uint32_t key, value;
  } want[] = {
      {f.svc, SLUICE_MAP_LB_SVC, sizeof(sluice_lb_svc_key), sizeof(sluice_lb_svc)},
      {f.slots, SLUICE_MAP_LB_SLOTS, sizeof(sluice_lb_slot_key), 4},
      {f.maglev, SLUICE_MAP_LB_MAGLEV, 4, 4},
      {f.maglev_tmpl, "sluice_lb_mg_tmpl", 4, sizeof(sluice_lb_maglev_block)},
      {f.be, SLUICE_MAP_LB_BE, 4, sizeof(sluice_lb_backend)},
      {f.aff, SLUICE_MAP_LB_AFFINITY, sizeof(sluice_lb_affinity_key),
       sizeof(sluice_lb_affinity)},
      {f.conns, SLUICE_MAP_LB_BE_CONNS, 4, 4},
  };
  for (const auto& w : want)
    if (auto s = check_map(w.fd, w.name, w.key, w.value); !s)
      return Error{s.error()};
  if (f.gate >= 0)
    if (auto s = check_map(f.gate, SLUICE_MAP_LB_GATE, 4, 8); !s)
      return Error{s.error()};
  LbMaps m(f);
  // New inner maps copy the template's definition (libbpf 1.1's
  // bpf_map__inner_map() is not reliable; the kernel's view is).
  bpf_map_info t{};
  uint32_t len = sizeof(t);
  if (bpf_obj_get_info_by_fd(f.maglev_tmpl, &t, &len))
    return map_err("sluice_lb_mg_tmpl", "info");
  m.inner_type_ = t.type;
  m.inner_flags_ = t.map_flags;
  m.inner_key_ = t.key_size;
  m.inner_value_ = t.value_size;
  return m;
}

sluice_lb_svc_key LbMaps::svc_key(const FrontendKey& k) {
  sluice_lb_svc_key s{};
  std::memcpy(s.addr, k.addr.bytes.data(), k.addr.size());
  s.port = htons(k.port);
  s.proto = k.proto;
  s.family = uint8_t(k.addr.family);
  s.scope = k.scope;
  return s;
}

FrontendKey LbMaps::frontend_of(const sluice_lb_svc_key& s) {
  FrontendKey k;
  k.addr.family = s.family;
  std::memcpy(k.addr.bytes.data(), s.addr, s.family == AF_INET6 ? 16 : 4);
  k.port = ntohs(s.port);
  k.proto = s.proto;
  k.scope = s.scope;
  return k;
}

Status LbMaps::put_backend(uint32_t id, const BackendAddr& a) {
  sluice_lb_backend b{};
  std::memcpy(b.addr, a.ip.bytes.data(), a.ip.size());
  b.port = htons(a.port);
  b.family = uint8_t(a.ip.family);
  if (bpf_map_update_elem(fds_.be, &id, &b, BPF_ANY))
    return map_err(SLUICE_MAP_LB_BE, "backend " + std::to_string(id) + " " +
                                         a.str());
  return {};
}

Status LbMaps::del_backend(uint32_t id) {
  if (bpf_map_delete_elem(fds_.be, &id) && errno != ENOENT)
    return map_err(SLUICE_MAP_LB_BE, "delete backend " + std::to_string(id));
  if (bpf_map_delete_elem(fds_.conns, &id) && errno != ENOENT)
    return map_err(SLUICE_MAP_LB_BE_CONNS, "delete " + std::to_string(id));
  return {};
}

Status LbMaps::put_slot(uint32_t svc_id, uint32_t slot, uint32_t be_id) {
  const sluice_lb_slot_key k{svc_id, slot};
  if (bpf_map_update_elem(fds_.slots, &k, &be_id, BPF_ANY))
    return map_err(SLUICE_MAP_LB_SLOTS, "svc " + std::to_string(svc_id) +
                                            " slot " + std::to_string(slot));
  return {};
}

Status LbMaps::del_slot(uint32_t svc_id, uint32_t slot) {
  const sluice_lb_slot_key k{svc_id, slot};
  if (bpf_map_delete_elem(fds_.slots, &k) && errno != ENOENT)
    return map_err(SLUICE_MAP_LB_SLOTS, "delete svc " +
                                            std::to_string(svc_id) + " slot " +
                                            std::to_string(slot));
  return {};
}

namespace {

// Keys and values side by side, written in chunks; false with errno set
// on a failure. No batch support (EINVAL/ENOTSUPP on the first chunk, old
// kernels): one by one.
template <typename K, typename V>
bool update_batch(int fd, const std::vector<K>& keys,
                  const std::vector<V>& values) {
  constexpr size_t kChunk = 8192;
  for (size_t at = 0; at < keys.size(); at += kChunk) {
    uint32_t n = uint32_t(std::min(kChunk, keys.size() - at));
    LIBBPF_OPTS(bpf_map_batch_opts, o);
    if (bpf_map_update_batch(fd, &keys[at], &values[at], &n, &o) == 0)
      continue;
    constexpr int kENOTSUPP = 524;  // the kernel's, not in libc headers
    if (at != 0 || (errno != EINVAL && errno != kENOTSUPP && errno != EOPNOTSUPP))
      return false;
    for (size_t i = 0; i < keys.size(); i++)
      if (bpf_map_update_elem(fd, &keys[i], &values[i], BPF_ANY)) return false;
    return true;
  }
  return true;
}

}  // namespace

Result<UniqueFd> LbMaps::make_maglev(uint32_t svc_id,
                                     std::span<const uint32_t> table) {
  const uint32_t n = uint32_t((table.size() + SLUICE_LB_MAGLEV_BLOCK - 1) /
                              SLUICE_LB_MAGLEV_BLOCK);
  std::vector<sluice_lb_maglev_block> blocks(n);  // zeroed: spare ids are 0
  std::vector<uint32_t> keys(n);
  for (size_t i = 0; i < table.size(); i++)
    blocks[i / SLUICE_LB_MAGLEV_BLOCK].ids[i % SLUICE_LB_MAGLEV_BLOCK] =
        table[i];
  for (uint32_t i = 0; i < n; i++) keys[i] = i;
  LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = inner_flags_);
  UniqueFd inner(bpf_map_create(bpf_map_type(inner_type_), "sluice_lb_mg",
                                inner_key_, inner_value_, n, &o));
  const std::string what = "svc " + std::to_string(svc_id);
  if (!inner.valid()) return map_err(SLUICE_MAP_LB_MAGLEV, what + ": create");
  uint32_t count = n;
  LIBBPF_OPTS(bpf_map_batch_opts, bo);
  if (bpf_map_update_batch(inner.get(), keys.data(), blocks.data(), &count,
                           &bo))
    for (uint32_t i = 0; i < n; i++)  // no batch support: one by one
      if (bpf_map_update_elem(inner.get(), &keys[i], &blocks[i], BPF_ANY))
        return map_err(SLUICE_MAP_LB_MAGLEV, what + ": fill");
  return inner;
}

Status LbMaps::swap_maglevs(
    std::span<const std::pair<uint32_t, UniqueFd>> tables) {
  std::vector<uint32_t> keys, fds;
  for (const auto& [id, fd] : tables) {
    keys.push_back(id);
    fds.push_back(uint32_t(fd.get()));
  }
  if (!update_batch(fds_.maglev, keys, fds))
    return map_err(SLUICE_MAP_LB_MAGLEV,
                   "swap " + std::to_string(tables.size()) + " tables");
  return {};  // the outer map holds the tables now; our fds may close
}

Status LbMaps::put_maglev(uint32_t svc_id, std::span<const uint32_t> table) {
  auto inner = make_maglev(svc_id, table);
  if (!inner) return Error{inner.error()};
  const uint32_t fd = uint32_t(inner->get());
  if (bpf_map_update_elem(fds_.maglev, &svc_id, &fd, BPF_ANY))
    return map_err(SLUICE_MAP_LB_MAGLEV, "svc " + std::to_string(svc_id) + ": swap");
  return {};  // the outer map holds the table now; our fd may close
}

Status LbMaps::del_maglev(uint32_t svc_id) {
  if (bpf_map_delete_elem(fds_.maglev, &svc_id) && errno != ENOENT)
    return map_err(SLUICE_MAP_LB_MAGLEV, "delete svc " + std::to_string(svc_id));
  return {};
}

Status LbMaps::gate(const sluice_lb_svc_key& k) {
  if (fds_.gate < 0 || k.scope != SLUICE_LB_SCOPE_EXTERNAL) return {};
  uint32_t a[4];
  std::memcpy(a, k.addr, sizeof(a));
  const uint32_t bit = sluice_lb_gate_bit(a), word = bit / 64;
  uint64_t w = 0;
  if (bpf_map_lookup_elem(fds_.gate, &word, &w))
    return map_err(SLUICE_MAP_LB_GATE, "lookup");
  if (w & (1ull << (bit % 64))) return {};
  // Only the agent sets bits here besides the datapath's atomic ORs for
  // SNAT addresses; a lost datapath bit is set again by its next new
  // connection.
  w |= 1ull << (bit % 64);
  if (bpf_map_update_elem(fds_.gate, &word, &w, BPF_ANY))
    return map_err(SLUICE_MAP_LB_GATE, "update");
  return {};
}

Status LbMaps::put_svc(const FrontendKey& k, const sluice_lb_svc& v) {
  const auto key = svc_key(k);
  // The gate first: the frontend is reachable from the moment it exists.
  if (auto s = gate(key); !s) return s;
  if (bpf_map_update_elem(fds_.svc, &key, &v, BPF_ANY))
    return map_err(SLUICE_MAP_LB_SVC, k.str());
  return {};
}

Status LbMaps::del_svc(const FrontendKey& k) {
  const auto key = svc_key(k);
  if (bpf_map_delete_elem(fds_.svc, &key) && errno != ENOENT)
    return map_err(SLUICE_MAP_LB_SVC, "delete " + k.str());
  return {};
}


Status LbMaps::put_backends(
    std::span<const std::pair<BackendAddr, uint32_t>> bs) {
  std::vector<uint32_t> keys;
  std::vector<sluice_lb_backend> values;
  keys.reserve(bs.size());
  values.reserve(bs.size());
  for (const auto& [a, id] : bs) {
    sluice_lb_backend b{};
    std::memcpy(b.addr, a.ip.bytes.data(), a.ip.size());
    b.port = htons(a.port);
    b.family = uint8_t(a.ip.family);
    keys.push_back(id);
    values.push_back(b);
  }
  if (!update_batch(fds_.be, keys, values))
    return map_err(SLUICE_MAP_LB_BE, std::to_string(bs.size()) + " backends");
  return {};
}

Status LbMaps::put_slots(std::span<const SlotWrite> ss) {
  std::vector<sluice_lb_slot_key> keys;
  std::vector<uint32_t> values;
  keys.reserve(ss.size());
  values.reserve(ss.size());
  for (const auto& w : ss) {
    keys.push_back({w.svc_id, w.slot});
    values.push_back(w.be_id);
  }
  if (!update_batch(fds_.slots, keys, values))
    return map_err(SLUICE_MAP_LB_SLOTS, std::to_string(ss.size()) + " slots");
  return {};
}

Status LbMaps::put_svcs(
    std::span<const std::pair<FrontendKey, sluice_lb_svc>> fs) {
  std::vector<sluice_lb_svc_key> keys;
  std::vector<sluice_lb_svc> values;
  keys.reserve(fs.size());
  values.reserve(fs.size());
  for (const auto& [k, v] : fs) {
    keys.push_back(svc_key(k));
    values.push_back(v);
    if (auto s = gate(keys.back()); !s) return s;
  }
  if (!update_batch(fds_.svc, keys, values))
    return map_err(SLUICE_MAP_LB_SVC, std::to_string(fs.size()) + " frontends");
  return {};
}

Status LbMaps::ensure_conns(uint32_t be_id) {
  const uint32_t zero = 0;
  if (bpf_map_update_elem(fds_.conns, &be_id, &zero, BPF_NOEXIST) &&
      errno != EEXIST)
    return map_err(SLUICE_MAP_LB_BE_CONNS, "backend " + std::to_string(be_id));
  return {};
}

Result<size_t> LbMaps::purge_affinity(const std::set<uint32_t>& svc_ids) {
  auto all = dump<sluice_lb_affinity_key, sluice_lb_affinity>(
      fds_.aff, SLUICE_MAP_LB_AFFINITY);
  if (!all) return Error{all.error()};
  size_t n = 0;
  for (const auto& [k, v] : *all)
    if (svc_ids.count(k.svc_id) && bpf_map_delete_elem(fds_.aff, &k) == 0) n++;
  return n;
}

Result<size_t> LbMaps::purge_affinity_except(
    const std::map<uint32_t, std::set<uint32_t>>& keep) {
  auto all = dump<sluice_lb_affinity_key, sluice_lb_affinity>(
      fds_.aff, SLUICE_MAP_LB_AFFINITY);
  if (!all) return Error{all.error()};
  size_t n = 0;
  for (const auto& [k, v] : *all) {
    auto it = keep.find(k.svc_id);
    if (it != keep.end() && !it->second.count(v.backend_id) &&
        bpf_map_delete_elem(fds_.aff, &k) == 0)
      n++;
  }
  return n;
}

Result<std::map<FrontendKey, sluice_lb_svc>> LbMaps::read_frontends() const {
  auto svc = dump<sluice_lb_svc_key, sluice_lb_svc>(fds_.svc, SLUICE_MAP_LB_SVC);
  if (!svc) return Error{svc.error()};
  std::map<FrontendKey, sluice_lb_svc> out;
  for (const auto& [k, v] : *svc) out[frontend_of(k)] = v;
  return out;
}

Result<LbMaps::Snapshot> LbMaps::read() const {
  Snapshot s;
  auto be = dump<uint32_t, sluice_lb_backend>(fds_.be, SLUICE_MAP_LB_BE);
  if (!be) return Error{be.error()};
  for (const auto& [id, b] : *be) s.backends[id] = backend_of(b);
  auto fe = read_frontends();
  if (!fe) return Error{fe.error()};
  s.frontends = std::move(*fe);
  auto slots = dump<sluice_lb_slot_key, uint32_t>(fds_.slots, SLUICE_MAP_LB_SLOTS);
  if (!slots) return Error{slots.error()};
  for (const auto& [k, id] : *slots) {
    auto& v = s.slots[k.svc_id];
    if (v.size() <= k.slot) v.resize(k.slot + 1, 0);
    v[k.slot] = id;
  }
  // An array of maps has no cheap way to list what it holds (batch
  // lookups stop at the first hole), and a lookup costs ~1.7 us: look at
  // the ids in use and a margin above them, not all of them. ids are given
  // next-fit, so a table a crash left without a frontend (between the
  // table and the frontend write) sits just above the highest id in use.
  uint32_t top = 0;
  for (const auto& [k, v] : s.frontends) top = std::max(top, v.svc_id);
  if (!s.slots.empty()) top = std::max(top, s.slots.rbegin()->first);
  const uint32_t end = uint32_t(std::min<uint64_t>(
      SLUICE_LB_SVC_IDS_MAX, uint64_t(top) + kMaglevScanMargin + 1));
  for (uint32_t id = 1; id < end; id++) {
    uint32_t inner = 0;
    if (bpf_map_lookup_elem(fds_.maglev, &id, &inner) == 0) s.maglev.insert(id);
  }
  auto conns = dump<uint32_t, uint32_t>(fds_.conns, SLUICE_MAP_LB_BE_CONNS);
  if (!conns) return Error{conns.error()};
  for (const auto& [id, n] : *conns) s.conns.insert(id);
  return s;
}

Result<std::vector<uint32_t>> LbMaps::read_maglev(uint32_t svc_id,
                                                   uint32_t m) const {
  uint32_t inner_id = 0;
  if (bpf_map_lookup_elem(fds_.maglev, &svc_id, &inner_id))
    return map_err(SLUICE_MAP_LB_MAGLEV, "svc " + std::to_string(svc_id));
  UniqueFd inner(bpf_map_get_fd_by_id(inner_id));
  if (!inner.valid())
    return map_err(SLUICE_MAP_LB_MAGLEV, "table of svc " + std::to_string(svc_id));
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(inner.get(), &info, &len))
    return map_err(SLUICE_MAP_LB_MAGLEV, "table info");
  const uint32_t blocks = (m + SLUICE_LB_MAGLEV_BLOCK - 1) / SLUICE_LB_MAGLEV_BLOCK;
  if (info.max_entries < blocks || info.value_size != sizeof(sluice_lb_maglev_block))
    return err("map sluice_lb_maglev: table of svc " + std::to_string(svc_id) +
               " has " + std::to_string(info.max_entries) +
               " blocks, M = " + std::to_string(m) + " needs " +
               std::to_string(blocks));
  std::vector<uint32_t> out(m);
  for (uint32_t b = 0; b < blocks; b++) {
    sluice_lb_maglev_block blk{};
    if (bpf_map_lookup_elem(inner.get(), &b, &blk))
      return map_err(SLUICE_MAP_LB_MAGLEV, "table block");
    for (uint32_t i = 0; i < SLUICE_LB_MAGLEV_BLOCK; i++)
      if (b * SLUICE_LB_MAGLEV_BLOCK + i < m)
        out[b * SLUICE_LB_MAGLEV_BLOCK + i] = blk.ids[i];
  }
  return out;
}

Result<uint32_t> LbMaps::read_slot(uint32_t svc_id, uint32_t slot) const {
  const sluice_lb_slot_key k{svc_id, slot};
  uint32_t id = 0;
  if (bpf_map_lookup_elem(fds_.slots, &k, &id))
    return map_err(SLUICE_MAP_LB_SLOTS, "svc " + std::to_string(svc_id) +
                                            " slot " + std::to_string(slot));
  return id;
}

Result<BackendAddr> LbMaps::read_backend(uint32_t id) const {
  sluice_lb_backend b{};
  if (bpf_map_lookup_elem(fds_.be, &id, &b))
    return map_err(SLUICE_MAP_LB_BE, "backend " + std::to_string(id));
  return backend_of(b);
}

}  // namespace sluice::lb

#include "datapath/conntrack.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <net/if.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace sluice {

namespace {

sluice_ct_key reversed(const sluice_ct_key& k) {
  sluice_ct_key r = k;
  std::memcpy(r.saddr, k.daddr, sizeof(r.saddr));
  std::memcpy(r.daddr, k.saddr, sizeof(r.daddr));
  r.sport = k.dport;
  r.dport = k.sport;
  return r;
}

}  // namespace

sluice_ct_key ct_map_key(const sluice_ct_key& initiator, bool* swapped) {
  uint32_t s[4], d[4];
  std::memcpy(s, initiator.saddr, sizeof(s));
  std::memcpy(d, initiator.daddr, sizeof(d));
  const bool rev = sluice_ct_swapped(s, d, initiator.sport, initiator.dport);
  if (swapped) *swapped = rev;
  sluice_ct_key k = rev ? reversed(initiator) : initiator;
  k.pad = 0;
  return k;
}

Result<std::vector<CtRow>> ct_dump(int fd, size_t limit, uint64_t* total) {
  std::vector<CtRow> rows;
  sluice_ct_key key{}, next{};
  void* prev = nullptr;
  *total = 0;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    key = next;
    prev = &key;
    ++*total;
    if (rows.size() >= limit) continue;
    CtRow r{key, {}};
    if (bpf_map_lookup_elem(fd, &key, &r.value) != 0) continue;
    if (r.value.flags & SLUICE_CT_KEY_SWAPPED) r.key = reversed(key);
    rows.push_back(r);
  }
  return rows;
}

Status ct_endpoints_changed(int epoch_fd) {
  // Writers: the endpoint manager, conntrack flush (API) and GC (its own
  // thread): read, increment, write under one lock, so that no increment is
  // lost and the value never moves back to one entries were resolved at.
  // Packets read the value with a plain load.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const uint32_t zero = 0;
  uint32_t epoch = 0;
  if (bpf_map_lookup_elem(epoch_fd, &zero, &epoch))
    return err("map sluice_ep_epoch: read: " + errno_str(errno));
  epoch++;
  if (bpf_map_update_elem(epoch_fd, &zero, &epoch, BPF_ANY))
    return err("map sluice_ep_epoch: write: " + errno_str(errno));
  return {};
}

Status ct_entries_deleted(int epoch_fd) {
  return ct_endpoints_changed(epoch_fd);
}

Result<uint64_t> ct_flush(int fd, int epoch_fd) {
  // Collect, then delete: deleting the key the walk stands on would restart
  // it from the first bucket, and restarting for every key is quadratic in
  // the table size (minutes for a full 256k table). Entries the datapath
  // creates during a pass are caught by the next one; a bounded number of
  // passes keeps a flush under a connection flood finite.
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len))
    return err("map sluice_ct: info: " + errno_str(errno));
  uint64_t n = 0;
  std::vector<sluice_ct_key> keys;
  for (int pass = 0; pass < 3; pass++) {
    keys.clear();
    sluice_ct_key key{}, next{};
    void* prev = nullptr;
    // A walk restarts when its current key is evicted under it: bound it.
    while (keys.size() < size_t(info.max_entries) * 2 &&
           bpf_map_get_next_key(fd, prev, &next) == 0) {
      keys.push_back(next);
      key = next;
      prev = &key;
    }
    if (keys.empty()) break;
    for (const auto& k : keys) {
      if (bpf_map_delete_elem(fd, &k) == 0)
        n++;
      else if (errno != ENOENT)
        return err("map sluice_ct: delete: " + errno_str(errno));
    }
  }
  if (n && epoch_fd >= 0)
    if (auto s = ct_entries_deleted(epoch_fd); !s) return Error{s.error()};
  return n;
}

sluice_ct_key ct_svc_connection_key(const sluice_ct_key& key,
                                    const sluice_ct_value& v) {
  // The client sent client -> frontend; its connection is client (or the
  // hairpin address) -> backend.
  const bool swapped = v.flags & SLUICE_CT_KEY_SWAPPED;
  sluice_ct_key conn{};
  std::memcpy(conn.saddr, swapped ? key.daddr : key.saddr, sizeof(conn.saddr));
  conn.sport = swapped ? key.dport : key.sport;
  if (v.flags & SLUICE_CT_HAIRPIN) {
    std::memset(conn.saddr, 0, sizeof(conn.saddr));
    if (key.family == AF_INET) {
      const uint32_t a = htonl(SLUICE_LB_HAIRPIN_V4);
      std::memcpy(conn.saddr, &a, 4);
    } else {
      const uint32_t w0 = htonl(SLUICE_LB_HAIRPIN_V6_W0),
                     w3 = htonl(SLUICE_LB_HAIRPIN_V6_W3);
      std::memcpy(conn.saddr, &w0, 4);
      std::memcpy(conn.saddr + 12, &w3, 4);
    }
  }
  std::memcpy(conn.daddr, v.nat_addr, sizeof(conn.daddr));
  conn.dport = v.nat_port;
  conn.proto = key.proto;
  conn.family = key.family;
  return ct_map_key(conn);
}

Result<uint64_t> ct_gc(int fd, uint64_t now, uint64_t hz, const CtTimeouts& t,
                       int conns_fd, int epoch_fd) {
  // Host veths live in the agent's network namespace; one question per
  // ifindex and pass (if_indextoname opens a socket per call).
  std::unordered_map<uint32_t, bool> exists;
  auto veth_exists = [&](uint32_t ifindex) {
    auto [it, fresh] = exists.try_emplace(ifindex, true);
    if (fresh) {
      char name[IF_NAMESIZE];
      it->second = if_indextoname(ifindex, name) != nullptr || errno != ENXIO;
    }
    return it->second;
  };
  // The walk first, then the work: get_next_key restarts from the first
  // key when the datapath deletes the one the walk stands on, so the same
  // key can come twice; counted twice, it would inflate a backend's
  // connection count.
  std::vector<sluice_ct_key> keys;
  {
    sluice_ct_key key{}, next{};
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      keys.push_back(next);
      key = next;
      prev = &key;
    }
  }
  auto key_less = [](const sluice_ct_key& a, const sluice_ct_key& b) {
    return std::memcmp(&a, &b, sizeof(a)) < 0;
  };
  std::sort(keys.begin(), keys.end(), key_less);
  keys.erase(std::unique(keys.begin(), keys.end(),
                         [](const sluice_ct_key& a, const sluice_ct_key& b) {
                           return std::memcmp(&a, &b, sizeof(a)) == 0;
                         }),
             keys.end());
  std::vector<sluice_ct_key> expired;
  // Service entries live as long as their connection entry (they never
  // see a reply of their own): checked after the expiry pass.
  struct SvcEntry {
    sluice_ct_key key, conn;
    uint64_t idle;  // seconds
  };
  std::vector<SvcEntry> services;
  std::unordered_map<uint32_t, uint32_t> open;  // backend id -> connections
  for (const auto& key : keys) {
    sluice_ct_value v{};
    if (bpf_map_lookup_elem(fd, &key, &v)) continue;
    const uint64_t idle = now > v.last_seen ? (now - v.last_seen) / hz : 0;
    if (v.flags & SLUICE_CT_SVC) {
      services.push_back({key, ct_svc_connection_key(key, v), idle});
      continue;
    }
    uint64_t limit = t.other;
    if (!(v.flags & SLUICE_CT_SEEN_REPLY))
      limit = t.unreplied;
    else if (key.proto == 6)
      limit = (v.flags & SLUICE_CT_CLOSING) ? t.tcp_closing : t.tcp_established;
    if (idle > limit) {
      expired.push_back(key);
      continue;
    }
    // An end whose host veth is gone is a deleted endpoint: the entry
    // could only deliver to a device that no longer exists (or, should
    // the ifindex be reused, to the wrong one).
    bool gone = false;
    for (const auto& e : v.ends)
      if (e.ifindex && !veth_exists(e.ifindex)) gone = true;
    if (gone) {
      expired.push_back(key);
      continue;
    }
    if ((v.flags & SLUICE_CT_REVNAT) && !(v.flags & SLUICE_CT_CLOSING))
      open[v.backend_id]++;
  }
  uint64_t n = 0;
  for (const auto& k : expired)
    if (bpf_map_delete_elem(fd, &k) == 0) n++;
  // A service entry goes with its connection entry. One whose connection
  // entry is missing for another reason (evicted by the LRU, or not yet
  // inserted by a CPU creating it right now) goes only once idle past the
  // unreplied timeout: while its client keeps sending, the datapath makes
  // the connection entry again.
  std::sort(expired.begin(), expired.end(), key_less);
  sluice_ct_value v{};
  for (const auto& s : services) {
    const bool conn_expired =
        std::binary_search(expired.begin(), expired.end(), s.conn, key_less);
    if (!conn_expired && (s.idle <= t.unreplied ||
                          bpf_map_lookup_elem(fd, &s.conn, &v) == 0))
      continue;
    if (bpf_map_delete_elem(fd, &s.key) == 0) n++;
  }
  if (n && epoch_fd >= 0)
    if (auto s = ct_entries_deleted(epoch_fd); !s) return Error{s.error()};
  // Circuit breaking: the exact count replaces the datapath's running one
  // (which misses connections the LRU evicted or that timed out).
  if (conns_fd >= 0) {
    uint32_t id = 0, nid = 0;
    std::vector<uint32_t> ids;
    void* p = nullptr;
    while (bpf_map_get_next_key(conns_fd, p, &nid) == 0) {
      ids.push_back(nid);
      id = nid;
      p = &id;
    }
    for (uint32_t b : ids) {
      auto it = open.find(b);
      const uint32_t c = it == open.end() ? 0 : it->second;
      bpf_map_update_elem(conns_fd, &b, &c, BPF_EXIST);
    }
  }
  return n;
}

// /proc/timer_list prints "jiffies: N" (root only); it is read only for
// `ct list`, never on a hot path.
uint64_t ct_now_jiffies() {
  std::ifstream in("/proc/timer_list");
  std::string line;
  while (std::getline(in, line)) {
    auto p = line.find("jiffies: ");
    if (p != std::string::npos) return std::stoull(line.substr(p + 9));
  }
  return 0;
}

uint64_t ct_hz() {
  static uint64_t hz = [] {
    const uint64_t j0 = ct_now_jiffies();
    timespec t0{}, t1{};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ::usleep(100 * 1000);
    const uint64_t j1 = ct_now_jiffies();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double dt = double(t1.tv_sec - t0.tv_sec) +
                      double(t1.tv_nsec - t0.tv_nsec) / 1e9;
    const double measured = double(j1 - j0) / dt;
    uint64_t best = 1000;  // CONFIG_HZ is one of these
    for (uint64_t h : {100, 250, 300, 1000})
      if (std::abs(double(h) - measured) < std::abs(double(best) - measured))
        best = h;
    return best;
  }();
  return hz;
}

std::string ct_endpoint_str(const sluice_ct_key& k, bool src) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(k.family, src ? k.saddr : k.daddr, buf, sizeof(buf));
  const uint16_t port = ntohs(src ? k.sport : k.dport);
  std::ostringstream o;
  if (k.family == AF_INET6)
    o << "[" << buf << "]:" << port;
  else
    o << buf << ":" << port;
  return o.str();
}

const char* ct_proto_name(uint8_t proto) {
  switch (proto) {
    case 6: return "TCP";
    case 17: return "UDP";
    case 132: return "SCTP";
    case 1: return "ICMP";
    case 58: return "ICMPv6";
  }
  return "other";
}

}  // namespace sluice

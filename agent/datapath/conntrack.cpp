#include "datapath/conntrack.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sluice {

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
    if (bpf_map_lookup_elem(fd, &key, &r.value) == 0) rows.push_back(r);
  }
  return rows;
}

Result<uint64_t> ct_flush(int fd) {
  uint64_t n = 0;
  sluice_ct_key key{};
  // Always restart from the first key: deleting the current key would
  // otherwise end the walk early.
  while (bpf_map_get_next_key(fd, nullptr, &key) == 0) {
    if (bpf_map_delete_elem(fd, &key) && errno != ENOENT)
      return err("map sluice_ct: delete: " + errno_str(errno));
    n++;
  }
  return n;
}

Result<uint64_t> ct_gc(int fd, uint64_t now, uint64_t hz,
                       const CtTimeouts& t) {
  std::vector<sluice_ct_key> expired;
  sluice_ct_key key{}, next{};
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    key = next;
    prev = &key;
    sluice_ct_value v{};
    if (bpf_map_lookup_elem(fd, &key, &v)) continue;
    uint64_t limit = t.other;
    if (!(v.flags & SLUICE_CT_SEEN_REPLY))
      limit = t.unreplied;
    else if (key.proto == 6)
      limit = (v.flags & SLUICE_CT_CLOSING) ? t.tcp_closing : t.tcp_established;
    if (now > v.last_seen && (now - v.last_seen) / hz > limit)
      expired.push_back(key);
  }
  uint64_t n = 0;
  for (const auto& k : expired)
    if (bpf_map_delete_elem(fd, &k) == 0) n++;
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

#include "api/bpf_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <net/if.h>

#include <map>

#include "daemon/agent.h"
#include "datapath/conntrack.h"
#include "datapath/counters.h"
#include "sluice/abi.h"

namespace sluice {
namespace {

std::string addr_str(uint8_t family, const uint8_t* a) {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(family == AF_INET ? AF_INET : AF_INET6, a, buf, sizeof(buf));
  return buf;
}

std::string mac_str(const uint8_t* m) {
  char buf[18];
  snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1],
           m[2], m[3], m[4], m[5]);
  return buf;
}

std::string ifname(uint32_t ifindex) {
  char buf[IF_NAMESIZE] = "";
  return ifindex && if_indextoname(ifindex, buf) ? buf : std::to_string(ifindex);
}

// Names for what the numbers mean: identities (labels or reserved
// names) and endpoints (namespace/pod).
struct Names {
  std::map<uint32_t, std::string> identity, pod;

  explicit Names(Agent& a) {
    identity[SLUICE_ID_HOST] = "reserved:host";
    identity[SLUICE_ID_WORLD] = "reserved:world";
    for (const auto& [id, labels] : a.identities().list()) {
      std::string s;
      for (const auto& [k, v] : labels) s += (s.empty() ? "" : ",") + k + "=" + v;
      identity[id] = s;
    }
    for (const auto& e : a.endpoints().list())
      pod[e.ep_id] = e.pod_namespace + "/" + e.pod_name;
  }
  std::string id(uint32_t i) const {
    auto it = identity.find(i);
    return it == identity.end() ? "" : it->second;
  }
  std::string ep(uint32_t i) const {
    auto it = pod.find(i);
    return it == pod.end() ? "" : it->second;
  }
};

template <typename K, typename V, typename F>
Status walk(int fd, const char* map, F&& each) {
  K key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    key = next;
    prev = &key;
    V v{};
    if (bpf_map_lookup_elem(fd, &key, &v)) continue;  // gone meanwhile
    each(key, v);
  }
  if (errno != ENOENT) return err(std::string("map ") + map + ": walk: " + errno_str(errno));
  return {};
}

// The endpoint's event level override (sluice.io/events-level), "" = the
// global events.level.
std::string events_override(uint32_t flags) {
  static const char* const names[] = {"off", "drops", "flows", "trace"};
  const uint32_t o = (flags & SLUICE_EP_EVENTS_MASK) >> SLUICE_EP_EVENTS_SHIFT;
  return o >= 1 && o <= 4 ? names[o - 1] : "";
}

nlohmann::ordered_json endpoint_row(const Names& n, const sluice_endpoint& e) {
  return {{"endpoint", e.ep_id},
          {"pod", n.ep(e.ep_id)},
          {"identity", e.identity},
          {"labels", n.id(e.identity)},
          {"ipv4", addr_str(AF_INET, e.ipv4)},
          {"ipv6", addr_str(AF_INET6, e.ipv6)},
          {"hostDev", ifname(e.ifindex)},
          {"podMAC", mac_str(e.pod_mac)},
          {"flags", e.flags},
          {"eventsLevel", events_override(e.flags)}};
}

}  // namespace

const char* bpf_map_names() {
  return "ep_ip, ep_if, ipcache, ct, counters, lb_svc";
}

Result<nlohmann::ordered_json> bpf_map_rows(Agent& a, std::string map) {
  if (map.rfind("sluice_", 0) == 0) map = map.substr(7);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  const Names n(a);
  Status s;
  if (map == "ep_ip") {
    s = walk<sluice_addr_key, sluice_endpoint>(
        a.lxc().map_fd(SLUICE_MAP_EP_IP), SLUICE_MAP_EP_IP,
        [&](const sluice_addr_key& k, const sluice_endpoint& e) {
          nlohmann::ordered_json r{{"address", addr_str(k.family, k.addr)}};
          r.update(endpoint_row(n, e));
          out.push_back(r);
        });
  } else if (map == "ep_if") {
    s = walk<uint32_t, sluice_endpoint>(
        a.lxc().map_fd(SLUICE_MAP_EP_IF), SLUICE_MAP_EP_IF,
        [&](uint32_t k, const sluice_endpoint& e) {
          nlohmann::ordered_json r{{"device", ifname(k)}};
          r.update(endpoint_row(n, e));
          out.push_back(r);
        });
  } else if (map == "ipcache") {
    s = walk<sluice_ipcache_key, sluice_ipcache_value>(
        a.lxc().map_fd(SLUICE_MAP_IPCACHE), SLUICE_MAP_IPCACHE,
        [&](const sluice_ipcache_key& k, const sluice_ipcache_value& v) {
          out.push_back({{"prefix", addr_str(k.family, k.addr) + "/" +
                                        std::to_string(k.prefixlen - 32)},
                         {"identity", v.identity},
                         {"labels", n.id(v.identity)},
                         {"cidrIdentity", v.cidr_identity}});
        });
  } else if (map == "ct") {
    uint64_t total = 0;
    auto rows = ct_dump(a.lxc().map_fd(SLUICE_MAP_CT), 10000, &total);
    if (!rows) return Error{rows.error()};
    for (const auto& r : *rows) {
      const auto& k = r.key;
      const auto& v = r.value;
      nlohmann::ordered_json j{
          {"proto", k.proto},
          {"source", addr_str(k.family, k.saddr) + ":" + std::to_string(ntohs(k.sport))},
          {"destination", addr_str(k.family, k.daddr) + ":" + std::to_string(ntohs(k.dport))},
          {"from", n.id(v.src_identity)},
          {"to", n.id(v.dst_identity)},
          {"flags", v.flags},
          {"initiatorPod", n.ep(v.ends[0].ep_id)},
          {"responderPod", n.ep(v.ends[1].ep_id)}};
      if (v.flags & (SLUICE_CT_SVC | SLUICE_CT_REVNAT))
        j["nat"] = addr_str(k.family, v.nat_addr) + ":" + std::to_string(ntohs(v.nat_port));
      out.push_back(j);
    }
  } else if (map == "counters") {
    auto rows = read_counters(a.lxc().map_fd(SLUICE_MAP_COUNTERS));
    if (!rows) return Error{rows.error()};
    for (const auto& r : *rows)
      out.push_back({{"direction", dir_name(r.dir)},
                     {"reason", drop_reason_name(r.reason)},
                     {"packets", r.packets},
                     {"bytes", r.bytes}});
  } else if (map == "lb_svc") {
    auto rows = a.lb().list();
    if (!rows) return Error{rows.error()};
    for (const auto& r : *rows) {
      std::string bes;
      for (const auto& b : r.backends)
        bes += (bes.empty() ? "" : " ") + (b.addr ? b.addr->str() : "?");
      out.push_back({{"frontend", r.key.str()},
                     {"scope", r.key.scope == SLUICE_LB_SCOPE_EXTERNAL ? "external" : "internal"},
                     {"service", r.service},
                     {"svcId", r.value.svc_id},
                     {"backends", bes}});
    }
  } else {
    return err("map: unsupported value \"" + map + "\": supported values: " +
               bpf_map_names());
  }
  if (!s) return Error{s.error()};
  return out;
}

}  // namespace sluice

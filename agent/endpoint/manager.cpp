#include "endpoint/manager.h"

#include "datapath/config_map.h"
#include "datapath/conntrack.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "k8s/events_annotation.h"
#include "sluice/abi.h"

namespace sluice {
namespace {

constexpr const char* kPrefix = "endpoints/";

sluice_endpoint to_bpf(const EndpointRecord& r) {
  sluice_endpoint e{};
  e.ep_id = r.ep_id;
  e.identity = r.identity;
  e.flags = r.flags;
  if (r.events_level) e.flags |= SLUICE_EP_EVENTS(*r.events_level);
  e.ifindex = r.host_ifindex;
  for (const auto& ip : r.ips) {
    if (ip.family == AF_INET) std::memcpy(e.ipv4, ip.bytes.data(), 4);
    if (ip.family == AF_INET6) std::memcpy(e.ipv6, ip.bytes.data(), 16);
  }
  std::memcpy(e.pod_mac, r.pod_mac.data(), 6);
  std::memcpy(e.host_mac, r.host_mac.data(), 6);
  return e;
}

sluice_addr_key addr_key(const IpAddr& ip) {
  sluice_addr_key k{};
  k.family = uint8_t(ip.family);
  std::memcpy(k.addr, ip.bytes.data(), ip.size());
  return k;
}

sluice_ipcache_key ipcache_key(const IpAddr& ip) {
  sluice_ipcache_key k{};
  k.prefixlen = 32 + (ip.family == AF_INET ? 32 : 128);
  k.family = uint8_t(ip.family);
  std::memcpy(k.addr, ip.bytes.data(), ip.size());
  return k;
}

nlohmann::json to_json(const EndpointRecord& r) {
  std::vector<std::string> ips;
  for (const auto& ip : r.ips) ips.push_back(ip.str());
  return {{"containerID", r.container_id}, {"netns", r.netns},
          {"ifname", r.ifname},            {"podNamespace", r.pod_namespace},
          {"podName", r.pod_name},         {"hostDev", r.host_dev},
          {"hostIfindex", r.host_ifindex}, {"endpointID", r.ep_id},
          {"identity", r.identity},        {"ips", ips},
          {"podMAC", mac_str(r.pod_mac)},  {"hostMAC", mac_str(r.host_mac)}};
}

Mac parse_mac(const std::string& s) {
  Mac m{};
  unsigned v[6] = {};
  if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3],
                  &v[4], &v[5]) == 6)
    for (int i = 0; i < 6; i++) m[i] = uint8_t(v[i]);
  return m;
}

// No duplicate address detection on our own links: addresses are ours by
// allocation, and DAD would hold a pod's first IPv6 packets for a second.
void no_dad(const std::string& dev) {
  std::ofstream("/proc/sys/net/ipv6/conf/" + dev + "/accept_dad") << "0";
}

}  // namespace

std::string EndpointManager::key(const std::string& cid,
                                 const std::string& ifname) {
  return cid + "_" + ifname;
}

std::string EndpointManager::host_dev_name(const std::string& cid,
                                           const std::string& ifname) {
  // FNV-1a: stable across restarts and builds, unlike std::hash.
  uint32_t h = 2166136261u;
  for (char c : cid + "/" + ifname) h = (h ^ uint8_t(c)) * 16777619u;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "lxc%08x", h);
  return buf;
}

LabelSet EndpointManager::labels_for(const std::string& ns,
                                     const std::string& name) const {
  k8s::Pod pod;
  k8s::Labels pl;
  if (cluster_.find_pod(ns, name, &pod)) pl = pod.meta.labels;
  return pod_label_set(pl, cluster_.namespace_labels(ns));
}

std::optional<uint32_t> EndpointManager::events_level_for(
    const std::string& ns, const std::string& name) const {
  k8s::Pod pod;
  if (!cluster_.find_pod(ns, name, &pod)) return std::nullopt;
  auto l = k8s::pod_events_level(pod.meta);
  // Applying rejects an invalid value; one that got in another way (an
  // older agent's state) means no override rather than a failed endpoint.
  if (!l) {
    spdlog::warn("pod {}/{}: {}: {}; using events.level", ns, name,
                 k8s::kEventsLevelAnnotation, l.error());
    return std::nullopt;
  }
  return *l;
}

Status EndpointManager::publish_override_flags() {
  uint32_t flags = 0;
  for (const auto& [k, r] : eps_) {
    if (!r.events_level) continue;
    flags |= SLUICE_CFG_EP_EVENTS;
    if (*r.events_level >= SLUICE_EVENTS_TRACE) flags |= SLUICE_CFG_EP_TRACE;
  }
  return update_config_map(dp_.map_fd(SLUICE_MAP_CONFIG), [&](sluice_config& c) {
    c.flags = (c.flags & ~uint32_t(SLUICE_CFG_EP_EVENTS | SLUICE_CFG_EP_TRACE)) |
              flags;
  });
}

uint32_t EndpointManager::free_ep_id() const {
  for (uint32_t id = 1; id < SLUICE_ENDPOINTS_MAX; id++) {
    bool used = false;
    for (const auto& [k, r] : eps_) used |= r.ep_id == id;
    if (!used) return id;
  }
  return 0;
}

Status EndpointManager::plumb(EndpointRecord& r) {
  UniqueFd podns(::open(r.netns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!podns.valid())
    return err("netns " + r.netns + ": " + errno_str(errno));
  auto nl = Netlink::open();
  if (!nl) return Error{nl.error()};
  if (auto s = nl->create_veth(r.host_dev, r.ifname, podns.get()); !s) return s;
  no_dad(r.host_dev);
  if (auto s = nl->set_up(r.host_dev); !s) return s;
  auto hm = nl->mac(r.host_dev);
  if (!hm) return Error{hm.error()};
  r.host_mac = *hm;
  auto idx = nl->ifindex(r.host_dev);
  if (!idx) return Error{idx.error()};
  r.host_ifindex = *idx;
  for (const auto& ip : r.ips) {
    Cidr host{ip, uint8_t(ip.family == AF_INET ? 32 : 128)};
    if (auto s = nl->add_route(r.host_dev, host, nullptr); !s) return s;
  }
  return in_netns(r.netns, [&](Netlink& pod) -> Status {
    no_dad(r.ifname);
    for (const auto& ip : r.ips)
      if (auto s = pod.add_address(
              r.ifname, Cidr{ip, uint8_t(ip.family == AF_INET ? 32 : 128)});
          !s)
        return s;
    if (auto s = pod.set_up("lo"); !s) return s;
    if (auto s = pod.set_up(r.ifname); !s) return s;
    auto pm = pod.mac(r.ifname);
    if (!pm) return Error{pm.error()};
    r.pod_mac = *pm;
    for (const auto& ip : r.ips) {
      const bool v4 = ip.family == AF_INET;
      const auto gw = *IpAddr::parse(v4 ? kGatewayV4 : kGatewayV6);
      if (auto s = pod.add_permanent_neighbour(r.ifname, gw, r.host_mac); !s)
        return s;
      if (auto s = pod.add_route(r.ifname, *Cidr::parse(v4 ? "0.0.0.0/0" : "::/0"),
                                 &gw);
          !s)
        return s;
    }
    return {};
  });
}

Status EndpointManager::publish(const EndpointRecord& r) {
  const auto ep = to_bpf(r);
  const int ep_if = dp_.map_fd(SLUICE_MAP_EP_IF), ep_ip = dp_.map_fd(SLUICE_MAP_EP_IP),
            ipc = dp_.map_fd(SLUICE_MAP_IPCACHE);
  for (const auto& ip : r.ips) {
    auto k = addr_key(ip);
    if (bpf_map_update_elem(ep_ip, &k, &ep, BPF_ANY))
      return err("map sluice_ep_ip: endpoint " + r.host_dev + ": " + errno_str(errno));
    auto ck = ipcache_key(ip);
    sluice_ipcache_value v{r.identity, SLUICE_ID_WORLD, 0, 0};
    if (bpf_map_update_elem(ipc, &ck, &v, BPF_ANY))
      return err("map sluice_ipcache: endpoint " + r.host_dev + ": " + errno_str(errno));
  }
  // Last: the device only becomes a known endpoint once its addresses are.
  if (bpf_map_update_elem(ep_if, &r.host_ifindex, &ep, BPF_ANY))
    return err("map sluice_ep_if: endpoint " + r.host_dev + ": " + errno_str(errno));
  return {};
}

void EndpointManager::unpublish(const EndpointRecord& r) {
  bpf_map_delete_elem(dp_.map_fd(SLUICE_MAP_EP_IF), &r.host_ifindex);
  for (const auto& ip : r.ips) {
    auto k = addr_key(ip);
    bpf_map_delete_elem(dp_.map_fd(SLUICE_MAP_EP_IP), &k);
    auto ck = ipcache_key(ip);
    bpf_map_delete_elem(dp_.map_fd(SLUICE_MAP_IPCACHE), &ck);
  }
  bpf_map_delete_elem(dp_.map_fd(SLUICE_MAP_POLICY), &r.ep_id);
  // Conntrack entries cache this endpoint as a delivery target: make them
  // re-resolve (and drop those whose end is gone) on their next packet.
  if (auto s = ct_endpoints_changed(dp_.map_fd(SLUICE_MAP_EP_EPOCH)); !s)
    spdlog::warn("endpoint {}: {}", r.host_dev, s.error());
}

Status EndpointManager::persist(const EndpointRecord& r) {
  return store_.put(kPrefix + key(r.container_id, r.ifname), to_json(r).dump(1));
}

Result<EndpointRecord> EndpointManager::add(const EndpointAddRequest& req) {
  if (req.container_id.empty()) return err("containerID: required");
  if (req.netns.empty()) return err("netns: required");
  if (req.ifname.empty() || req.ifname.size() > 15)
    return err("ifname: must be 1-15 characters");
  if (req.pod_namespace.empty() || req.pod_name.empty())
    return err("K8S_POD_NAMESPACE and K8S_POD_NAME: required");
  std::lock_guard g(mu_);
  const std::string k = key(req.container_id, req.ifname);
  if (auto it = eps_.find(k); it != eps_.end()) return it->second;

  EndpointRecord r;
  r.container_id = req.container_id;
  r.netns = req.netns;
  r.ifname = req.ifname;
  r.pod_namespace = req.pod_namespace;
  r.pod_name = req.pod_name;
  r.host_dev = host_dev_name(req.container_id, req.ifname);
  r.ep_id = free_ep_id();
  if (!r.ep_id) return err("endpoints: all " + std::to_string(SLUICE_ENDPOINTS_MAX) +
                           " endpoint ids are in use");
  auto ips = ipam_.allocate(req.container_id, req.ifname);
  if (!ips) return Error{ips.error()};
  r.ips = *ips;
  auto id = ids_.acquire(labels_for(r.pod_namespace, r.pod_name));
  if (!id) {
    (void)ipam_.release(req.container_id, req.ifname);
    return Error{id.error()};
  }
  r.identity = *id;
  r.events_level = events_level_for(r.pod_namespace, r.pod_name);

  auto undo = [&](const std::string& why) -> Result<EndpointRecord> {
    unpublish(r);
    (void)dp_.detach(r.host_dev);
    if (auto nl = Netlink::open()) (void)nl->delete_link(r.host_dev);
    (void)ipam_.release(req.container_id, req.ifname);
    ids_.release(r.identity);
    spdlog::warn("endpoint {}/{}: add failed, rolled back: {}", r.pod_namespace,
                 r.pod_name, why);
    return err(why);
  };
  if (auto s = plumb(r); !s) return undo(s.error());
  if (auto s = publish(r); !s) return undo(s.error());
  auto links = dp_.attach(r.host_dev, r.host_ifindex);
  if (!links) return undo(links.error());
  if (auto s = persist(r); !s) return undo(s.error());
  links_.emplace(k, std::move(*links));
  eps_[k] = r;
  if (r.events_level)
    if (auto s = publish_override_flags(); !s) return Error{s.error()};
  spdlog::info("endpoint {}/{}: {} id {} identity {} ({})", r.pod_namespace,
               r.pod_name, r.host_dev, r.ep_id, r.identity,
               r.ips.empty() ? "" : r.ips[0].str());
  return r;
}

Status EndpointManager::del(const std::string& cid, const std::string& ifname) {
  std::lock_guard g(mu_);
  const std::string k = key(cid, ifname);
  auto it = eps_.find(k);
  if (it == eps_.end()) {
    // Not ours (or already gone): still release a leaked address.
    return ipam_.release(cid, ifname);
  }
  const EndpointRecord r = it->second;
  unpublish(r);
  links_.erase(k);
  if (auto s = dp_.detach(r.host_dev); !s) return s;
  auto nl = Netlink::open();
  if (!nl) return Error{nl.error()};
  if (auto s = nl->delete_link(r.host_dev); !s) return s;
  if (auto s = ipam_.release(cid, ifname); !s) return s;
  ids_.release(r.identity);
  if (auto s = store_.remove(kPrefix + k); !s) return s;
  eps_.erase(it);
  if (r.events_level)
    if (auto s = publish_override_flags(); !s) return s;
  spdlog::info("endpoint {}/{}: deleted", r.pod_namespace, r.pod_name);
  return {};
}

Status EndpointManager::check(const std::string& cid, const std::string& ifname) {
  std::lock_guard g(mu_);
  auto it = eps_.find(key(cid, ifname));
  if (it == eps_.end()) return err("endpoint " + cid + "/" + ifname + " not found");
  auto nl = Netlink::open();
  if (!nl) return Error{nl.error()};
  auto idx = nl->ifindex(it->second.host_dev);
  if (!idx || *idx != it->second.host_ifindex)
    return err("endpoint " + cid + ": host device " + it->second.host_dev + " is gone");
  return {};
}

Status EndpointManager::restore() {
  std::lock_guard g(mu_);
  auto keys = store_.list(kPrefix);
  if (!keys) return Error{keys.error()};
  bool changed = false;  // an endpoint dropped or on another device
  for (const auto& sk : *keys) {
    auto doc = store_.get(sk);
    if (!doc || !*doc) continue;
    EndpointRecord r;
    try {
      auto j = nlohmann::json::parse(**doc);
      r.container_id = j.at("containerID");
      r.netns = j.at("netns");
      r.ifname = j.at("ifname");
      r.pod_namespace = j.at("podNamespace");
      r.pod_name = j.at("podName");
      r.host_dev = j.at("hostDev");
      r.host_ifindex = j.at("hostIfindex");
      r.ep_id = j.at("endpointID");
      for (const auto& s : j.at("ips")) r.ips.push_back(*IpAddr::parse(s.get<std::string>()));
      r.pod_mac = parse_mac(j.at("podMAC"));
      r.host_mac = parse_mac(j.at("hostMAC"));
    } catch (const std::exception& e) {
      spdlog::error("state {}: {}", sk, e.what());
      continue;
    }
    auto nl = Netlink::open();
    auto idx = nl ? nl->ifindex(r.host_dev) : Result<unsigned>(err("netlink"));
    if (!idx) {
      spdlog::warn("endpoint {}/{}: {} is gone; dropping the endpoint",
                   r.pod_namespace, r.pod_name, r.host_dev);
      (void)ipam_.release(r.container_id, r.ifname);
      (void)store_.remove(sk);
      changed = true;
      continue;
    }
    changed |= r.host_ifindex != *idx;
    r.host_ifindex = *idx;
    auto id = ids_.acquire(labels_for(r.pod_namespace, r.pod_name));
    if (!id) return Error{id.error()};
    r.identity = *id;
    r.events_level = events_level_for(r.pod_namespace, r.pod_name);
    if (auto s = publish(r); !s) return s;
    auto links = dp_.attach(r.host_dev, r.host_ifindex);
    if (!links) return Error{links.error()};
    const std::string k = key(r.container_id, r.ifname);
    links_.emplace(k, std::move(*links));
    eps_[k] = r;
  }
  if (changed)
    if (auto s = ct_endpoints_changed(dp_.map_fd(SLUICE_MAP_EP_EPOCH)); !s)
      return s;
  // Also with no override left: flags of a previous run must not stay.
  if (auto s = publish_override_flags(); !s) return s;
  spdlog::info("endpoints: {} restored", eps_.size());
  return {};
}

Status EndpointManager::refresh_identities() {
  std::lock_guard g(mu_);
  bool levels_changed = false;
  for (auto& [k, r] : eps_) {
    auto level = events_level_for(r.pod_namespace, r.pod_name);
    if (level != r.events_level) {
      spdlog::info("endpoint {}/{}: events level {}", r.pod_namespace,
                   r.pod_name, level ? std::to_string(*level) : "(global)");
      r.events_level = level;
      levels_changed = true;
      if (auto s = publish(r); !s) return s;
    }
    auto id = ids_.acquire(labels_for(r.pod_namespace, r.pod_name));
    if (!id) return Error{id.error()};
    if (*id == r.identity) {
      ids_.release(*id);
      continue;
    }
    const uint32_t old = r.identity;
    r.identity = *id;
    if (auto s = publish(r); !s) return s;
    if (auto s = persist(r); !s) return s;
    ids_.release(old);
    spdlog::info("endpoint {}/{}: identity {} -> {}", r.pod_namespace,
                 r.pod_name, old, r.identity);
  }
  if (levels_changed) return publish_override_flags();
  return {};
}

Status EndpointManager::set_flags(const std::string& ns,
                                  const std::string& name, uint32_t flags) {
  std::lock_guard g(mu_);
  for (auto& [k, r] : eps_) {
    if (r.pod_namespace != ns || r.pod_name != name || r.flags == flags)
      continue;
    r.flags = flags;
    if (auto s = publish(r); !s) return s;
  }
  return {};
}

std::vector<EndpointRecord> EndpointManager::list() const {
  std::lock_guard g(mu_);
  std::vector<EndpointRecord> out;
  for (const auto& [k, r] : eps_) out.push_back(r);
  return out;
}

}  // namespace sluice

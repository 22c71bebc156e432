#include "endpoint/ipam.h"

#include <arpa/inet.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace sluice {

namespace {

constexpr const char* kStateKey = "ipam";

// The address `off` places above the network address. Host bits of the
// network address are zero, so OR-ing the offset into the low 4 (IPv4) or
// 8 (IPv6) bytes is an addition; offsets never exceed the host bits.
IpAddr addr_at(const Cidr& c, uint64_t off) {
  IpAddr a = c.addr;
  const size_t end = a.size(), n = a.family == AF_INET ? 4 : 8;
  for (size_t i = 0; i < n; i++, off >>= 8) a.bytes[end - 1 - i] |= off & 0xff;
  return a;
}

std::string key_str(const IpamOwner& o) {
  return o.container_id + "/" + o.ifname;
}

}  // namespace

Result<std::unique_ptr<Ipam>> Ipam::create(StateStore& store,
                                           std::optional<Cidr> v4,
                                           std::optional<Cidr> v6) {
  if (!v4 && !v6)
    return err("ipam: no pod CIDR configured (need IPv4, IPv6 or both)");
  std::vector<Pool> pools;
  if (v4) {
    if (v4->addr.family != AF_INET)
      return err("ipam: IPv4 pod CIDR " + v4->str() + " is not IPv4");
    if (v4->prefixlen > 30)
      return err("ipam: IPv4 pod CIDR " + v4->str() +
                 " is too small (need /30 or wider)");
    const unsigned h = 32 - v4->prefixlen;
    pools.push_back({*v4, 2, (uint64_t{1} << h) - 2, 2});  // no broadcast
  }
  if (v6) {
    if (v6->addr.family != AF_INET6)
      return err("ipam: IPv6 pod CIDR " + v6->str() + " is not IPv6");
    if (v6->prefixlen > 126)
      return err("ipam: IPv6 pod CIDR " + v6->str() +
                 " is too small (need /126 or wider)");
    const unsigned h = 128 - v6->prefixlen;
    pools.push_back(
        {*v6, 2, h >= 64 ? UINT64_MAX : (uint64_t{1} << h) - 1, 2});
  }
  return std::unique_ptr<Ipam>(new Ipam(store, std::move(pools)));
}

Result<uint64_t> Ipam::pick(const Pool& p) const {
  const uint64_t span = p.last - p.first;  // range size minus one
  const bool v4 = p.cidr.addr.family == AF_INET;
  const uint64_t tries = v4 ? span + 1 : std::min(span + 1, kMaxProbes);
  uint64_t off = p.next < p.first || p.next > p.last ? p.first : p.next;
  for (uint64_t i = 0; i < tries; i++) {
    if (!by_addr_.count(addr_at(p.cidr, off))) return off;
    off = off == p.last ? p.first : off + 1;
  }
  if (v4)
    return err("ipam: no free address in " + p.cidr.str() + " (all " +
               std::to_string(span + 1) + " pod addresses are allocated)");
  return err("ipam: no free address in " + p.cidr.str() + " within " +
             std::to_string(tries) + " addresses from " +
             addr_at(p.cidr, p.next).str());
}

Result<std::vector<IpAddr>> Ipam::allocate(const std::string& container_id,
                                           const std::string& ifname) {
  std::lock_guard g(mu_);
  const IpamOwner key{container_id, ifname};
  std::vector<IpAddr> have;
  if (auto it = by_owner_.find(key); it != by_owner_.end()) have = it->second;
  std::vector<IpAddr> out, added;
  const std::vector<Pool> saved = pools_;
  for (auto& p : pools_) {
    const int fam = p.cidr.addr.family;
    auto it = std::find_if(have.begin(), have.end(),
                           [&](const IpAddr& a) { return a.family == fam; });
    if (it != have.end()) {
      out.push_back(*it);
      continue;
    }
    auto off = pick(p);
    if (!off) {
      pools_ = saved;
      for (const auto& a : added) by_addr_.erase(a);
      return Error{off.error()};
    }
    const IpAddr a = addr_at(p.cidr, *off);
    p.next = *off == p.last ? p.first : *off + 1;
    by_addr_[a] = key;
    added.push_back(a);
    out.push_back(a);
  }
  if (added.empty()) return out;
  by_owner_[key] = out;
  if (auto s = persist(); !s) {
    pools_ = saved;
    for (const auto& a : added) by_addr_.erase(a);
    if (have.empty())
      by_owner_.erase(key);
    else
      by_owner_[key] = have;
    return Error{s.error()};
  }
  return out;
}

Status Ipam::release(const std::string& container_id,
                     const std::string& ifname) {
  std::lock_guard g(mu_);
  auto it = by_owner_.find({container_id, ifname});
  if (it == by_owner_.end()) return {};
  const auto entry = *it;
  for (const auto& a : it->second) by_addr_.erase(a);
  by_owner_.erase(it);
  if (auto s = persist(); !s) {
    by_owner_.insert(entry);
    for (const auto& a : entry.second) by_addr_[a] = entry.first;
    return s;
  }
  return {};
}

std::optional<std::vector<IpAddr>> Ipam::lookup(
    const std::string& container_id, const std::string& ifname) const {
  std::lock_guard g(mu_);
  auto it = by_owner_.find({container_id, ifname});
  if (it == by_owner_.end()) return std::nullopt;
  return it->second;
}

std::optional<IpamOwner> Ipam::owner_of(const IpAddr& a) const {
  std::lock_guard g(mu_);
  auto it = by_addr_.find(a);
  if (it == by_addr_.end()) return std::nullopt;
  return it->second;
}

size_t Ipam::size() const {
  std::lock_guard g(mu_);
  return by_owner_.size();
}

Status Ipam::restore() {
  std::lock_guard g(mu_);
  auto doc = store_.get(kStateKey);
  if (!doc) return Error{doc.error()};
  std::map<IpamOwner, std::vector<IpAddr>> owners;
  std::map<IpAddr, IpamOwner> addrs;
  if (*doc) {
    try {
      auto j = nlohmann::json::parse(**doc);
      for (const auto& e : j.at("allocations")) {
        IpamOwner o{e.at("containerID").get<std::string>(),
                    e.at("ifname").get<std::string>()};
        for (const auto& s : e.at("ips")) {
          auto a = IpAddr::parse(s.get<std::string>());
          if (!a) return err("state ipam: " + key_str(o) + ": " + a.error());
          if (auto [it, fresh] = addrs.emplace(*a, o); !fresh)
            return err("state ipam: " + a->str() + " is held by both " +
                       key_str(it->second) + " and " + key_str(o));
          owners[o].push_back(*a);
        }
      }
      const auto& cur = j.value("cursors", nlohmann::json::object());
      for (auto& p : pools_)
        if (cur.contains(p.cidr.str()))
          p.next = cur.at(p.cidr.str()).get<uint64_t>();
    } catch (const nlohmann::json::exception& e) {
      return err(std::string("state ipam: ") + e.what());
    }
  }
  by_owner_ = std::move(owners);
  by_addr_ = std::move(addrs);
  return {};
}

Status Ipam::persist() {
  nlohmann::json j;
  j["allocations"] = nlohmann::json::array();
  for (const auto& [o, addrs] : by_owner_) {
    std::vector<std::string> ips;
    for (const auto& a : addrs) ips.push_back(a.str());
    j["allocations"].push_back(
        {{"containerID", o.container_id}, {"ifname", o.ifname}, {"ips", ips}});
  }
  j["cursors"] = nlohmann::json::object();
  for (const auto& p : pools_) j["cursors"][p.cidr.str()] = p.next;
  return store_.put(kStateKey, j.dump(1));
}

}  // namespace sluice

#include "lb/allocator.h"

#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <set>

namespace sluice::lb {
namespace {

using k8s::IpFamily;
using k8s::IpFamilyPolicy;
using k8s::Service;

std::string quote(const std::string& s) { return "\"" + s + "\""; }

std::string list_value(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
  return "[" + out + "]";
}

std::string owner_of(const Service& s) {
  return s.meta.namespace_ + "/" + s.meta.name;
}

IpFamily family_of(const IpAddr& a) {
  return a.family == AF_INET6 ? IpFamily::IPv6 : IpFamily::IPv4;
}

// Same address, however spelt ("fd10:96::1" == "fd10:96:0::1").
bool same_ip(const std::string& a, const std::string& b) {
  auto x = IpAddr::parse(a), y = IpAddr::parse(b);
  if (x && y) return *x == *y;
  return a == b;
}

bool contains_ip(const std::vector<std::string>& list, const std::string& ip) {
  return std::any_of(list.begin(), list.end(),
                     [&](const std::string& x) { return same_ip(x, ip); });
}

int host_bits(const Cidr& c) {
  return (c.addr.family == AF_INET ? 32 : 128) - c.prefixlen;
}
uint64_t range_size(const Cidr& c) { return uint64_t(1) << host_bits(c); }

// Usable offsets of a range: the network address is never handed out, nor
// IPv4's broadcast address.
uint64_t first_usable() { return 1; }
uint64_t last_usable(const Cidr& c) {
  return range_size(c) - (c.addr.family == AF_INET ? 2 : 1);
}

IpAddr at(const Cidr& c, uint64_t offset) {
  IpAddr a = c.addr;
  uint64_t carry = offset;
  for (int i = int(a.size()) - 1; i >= 0 && carry; i--) {
    const uint64_t sum = a.bytes[i] + (carry & 0xff);
    a.bytes[i] = uint8_t(sum);
    carry = (carry >> 8) + (sum >> 8);
  }
  return a;
}

// Offset of `a` in `c`; only meaningful when c.contains(a).
uint64_t offset_in(const Cidr& c, const IpAddr& a) {
  uint64_t off = 0;
  const int n = int(a.size());
  for (int i = std::max(0, n - 8); i < n; i++) off = (off << 8) | a.bytes[i];
  const int bits = host_bits(c);
  return bits >= 64 ? off : off & ((uint64_t(1) << bits) - 1);
}

}  // namespace

uint64_t static_band(uint64_t size, uint64_t lo, uint64_t step, uint64_t hi) {
  if (size <= lo) return 0;
  return std::clamp(size / step, lo, hi);
}

// --- ServiceRanges ----------------------------------------------------------

Result<ServiceRanges> ServiceRanges::parse(const std::string& v4,
                                           const std::string& v6,
                                           const std::string& node_ports) {
  ServiceRanges r;
  auto cidr = [](const std::string& s, const char* what,
                 int family) -> Result<std::optional<Cidr>> {
    if (s.empty()) return std::optional<Cidr>();
    auto c = Cidr::parse(s);
    if (!c) return err(std::string(what) + ": " + c.error());
    if (c->addr.family != family)
      return err(std::string(what) + ": \"" + s + "\" is not an " +
                 (family == AF_INET ? "IPv4" : "IPv6") + " CIDR");
    return std::optional<Cidr>(*c);
  };
  auto a = cidr(v4, "serviceCIDR", AF_INET);
  if (!a) return Error{a.error()};
  auto b = cidr(v6, "serviceCIDRv6", AF_INET6);
  if (!b) return Error{b.error()};
  r.v4 = *a;
  r.v6 = *b;
  const auto dash = node_ports.find('-');
  auto num = [](std::string_view s, uint16_t& out) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v > 65535)
      return false;
    out = uint16_t(v);
    return true;
  };
  const std::string_view np(node_ports);
  if (dash == std::string::npos || !num(np.substr(0, dash), r.node_port_min) ||
      !num(np.substr(dash + 1), r.node_port_max))
    return err("nodePortRange: \"" + node_ports +
               "\" is not a range like 30000-32767");
  if (auto s = r.validate(); !s) return Error{s.error()};
  return r;
}

Status ServiceRanges::validate() const {
  if (!v4 && !v6)
    return err(
        "serviceCIDR, serviceCIDRv6: at least one service range is "
        "needed");
  if (v4 && v4->prefixlen > 30)
    return err("serviceCIDR: \"" + v4->str() + "\" is too small (at most /30)");
  if (v6 && (v6->prefixlen < 96 || v6->prefixlen > 126))
    return err("serviceCIDRv6: \"" + v6->str() +
               "\": the prefix length must be between 96 and 126");
  if (node_port_min < 1 || node_port_min > node_port_max)
    return err("nodePortRange: " + std::to_string(node_port_min) + "-" +
               std::to_string(node_port_max) + " is empty or starts at 0");
  return {};
}

// --- Allocator --------------------------------------------------------------

void Allocator::hold(const Service& svc) {
  const std::string owner = owner_of(svc);
  for (const auto& s : svc.cluster_ips)
    if (auto ip = IpAddr::parse(s)) ips_.emplace(*ip, owner);
  for (const auto& p : svc.ports)
    if (p.node_port > 0 && p.node_port <= 65535)
      node_ports_.emplace(uint16_t(p.node_port), owner);
}

void Allocator::release(const Service& svc) {
  const std::string owner = owner_of(svc);
  for (const auto& s : svc.cluster_ips)
    if (auto ip = IpAddr::parse(s)) {
      auto it = ips_.find(*ip);
      if (it != ips_.end() && it->second == owner) ips_.erase(it);
    }
  for (const auto& p : svc.ports)
    if (p.node_port > 0 && p.node_port <= 65535) {
      auto it = node_ports_.find(uint16_t(p.node_port));
      if (it != node_ports_.end() && it->second == owner) node_ports_.erase(it);
    }
}

std::optional<std::string> Allocator::ip_holder(const IpAddr& ip) const {
  auto it = ips_.find(ip);
  if (it == ips_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Allocator::node_port_holder(uint16_t port) const {
  auto it = node_ports_.find(port);
  if (it == node_ports_.end()) return std::nullopt;
  return it->second;
}

std::optional<IpAddr> Allocator::next_free_ip(const Cidr& range,
                                              uint64_t& cursor) const {
  const uint64_t lo = first_usable(), hi = last_usable(range);
  if (hi < lo) return std::nullopt;
  const uint64_t band =
      lo + std::min(static_band(range_size(range), 16, 16, 256), hi - lo);
  // Upper part first, next-fit from the cursor, then the static band.
  const uint64_t start = cursor >= band && cursor <= hi ? cursor : band;
  for (uint64_t n = 0, off = start; n <= hi - band; n++) {
    const IpAddr a = at(range, off);
    if (!ips_.count(a)) {
      cursor = off == hi ? band : off + 1;
      return a;
    }
    off = off == hi ? band : off + 1;
  }
  for (uint64_t off = lo; off < band; off++) {
    const IpAddr a = at(range, off);
    if (!ips_.count(a)) return a;
  }
  return std::nullopt;
}

Status Allocator::allocate(Service& svc, const Service* old) {
  if (old) release(*old);
  auto st = [&]() -> Status {
    const std::string owner = owner_of(svc);

    // patchAllocatedValues + validateUpgradeDowngradeClusterIPs.
    if (old) {
      if (svc.cluster_ips.empty()) {
        svc.cluster_ip = old->cluster_ip;
        svc.cluster_ips = old->cluster_ips;
      } else if (!(old->headless() && svc.headless()) &&
                 !old->cluster_ips.empty()) {
        if (!same_ip(svc.cluster_ips[0], old->cluster_ips[0]))
          return err("spec.clusterIPs[0]: Invalid value " +
                     list_value(svc.cluster_ips) +
                     ": may not change once set (it is " +
                     quote(old->cluster_ips[0]) + ")");
        if (svc.cluster_ips.size() == 2 && old->cluster_ips.size() == 2 &&
            !same_ip(svc.cluster_ips[1], old->cluster_ips[1]))
          return err("spec.clusterIPs[1]: Invalid value " +
                     list_value(svc.cluster_ips) +
                     ": may not change once set (it is " +
                     quote(old->cluster_ips[1]) + ")");
      }
      if (old->needs_node_ports() && svc.needs_node_ports()) {
        std::set<int32_t> used;
        for (const auto& p : svc.ports)
          if (p.node_port) used.insert(p.node_port);
        std::map<std::string, int32_t> by_name;
        for (const auto& p : old->ports) by_name[p.name] = p.node_port;
        for (auto& p : svc.ports) {
          auto it = by_name.find(p.name);
          if (!p.node_port && it != by_name.end() && it->second &&
              !used.count(it->second)) {
            p.node_port = it->second;
            used.insert(it->second);
          }
        }
      }
      // Dropping to SingleStack with the stored cluster IPs is a clear
      // intent: the secondary is released (initIPFamilyFields).
      if (svc.ip_family_policy == IpFamilyPolicy::SingleStack &&
          svc.cluster_ips.size() > 1 &&
          svc.cluster_ips.size() == old->cluster_ips.size() &&
          same_ip(svc.cluster_ips[0], old->cluster_ips[0]) &&
          same_ip(svc.cluster_ips[1], old->cluster_ips[1])) {
        svc.cluster_ips.resize(1);
        if (svc.ip_families == old->ip_families && svc.ip_families.size() > 1)
          svc.ip_families.resize(1);
      }
    }

    // Validation of the merged object (inheriting "None" must not make a
    // headless NodePort).
    if (svc.headless() && svc.type != k8s::ServiceType::ClusterIP)
      return err(
          std::string("spec.clusterIPs[0]: Invalid value \"None\": may not "
                      "be set to 'None' for ") +
          k8s::to_string(svc.type) + " services");

    // initIPFamilyFields: families from the cluster IPs.
    if (!svc.headless())
      for (size_t i = 0; i < svc.cluster_ips.size(); i++) {
        const IpFamily f = family_of(IpAddr::parse(svc.cluster_ips[i]).value());
        if (i >= svc.ip_families.size())
          svc.ip_families.push_back(f);
        else if (svc.ip_families[i] != f)
          return err(
              "spec.ipFamilies[" + std::to_string(i) + "]: Invalid value " +
              quote(k8s::to_string(svc.ip_families[i])) +
              ": must match the IP family of clusterIPs[" + std::to_string(i) +
              "] (" + quote(svc.cluster_ips[i]) + ")");
      }
    if (!svc.ip_family_policy && svc.ip_families.size() == 2)
      svc.ip_family_policy = IpFamilyPolicy::RequireDualStack;

    auto configured = [&](IpFamily f) {
      return f == IpFamily::IPv4 ? ranges_.v4.has_value()
                                 : ranges_.v6.has_value();
    };
    auto all_families = [&] {
      std::vector<IpFamily> out;
      if (ranges_.v4) out.push_back(IpFamily::IPv4);
      if (ranges_.v6) out.push_back(IpFamily::IPv6);
      return out;
    };

    // Headless without selector: every family the cluster has, by default.
    if (svc.headless() && svc.selector.empty()) {
      if (!svc.ip_family_policy)
        svc.ip_family_policy = IpFamilyPolicy::PreferDualStack;
      if (svc.ip_families.empty()) svc.ip_families = all_families();
      svc.cluster_ip = k8s::kClusterIPNone;
      return {};
    }

    if (svc.ip_family_policy == IpFamilyPolicy::RequireDualStack &&
        !ranges_.dual_stack())
      return err(
          "spec.ipFamilyPolicy: Invalid value \"RequireDualStack\": this "
          "cluster is not configured for dual-stack services");
    for (size_t i = 0; i < svc.ip_families.size(); i++)
      if (!configured(svc.ip_families[i]))
        return err("spec.ipFamilies[" + std::to_string(i) +
                   "]: Invalid value " +
                   quote(k8s::to_string(svc.ip_families[i])) +
                   ": not configured on this cluster");
    if (svc.ip_family_policy == IpFamilyPolicy::SingleStack &&
        svc.ip_families.size() > 1)
      return err(
          "spec.ipFamilyPolicy: Invalid value \"SingleStack\": when multiple "
          "IP families are specified, IP family policy must be "
          "RequireDualStack or PreferDualStack");

    if (!svc.ip_family_policy)
      svc.ip_family_policy = IpFamilyPolicy::SingleStack;
    if (svc.ip_families.empty()) svc.ip_families.push_back(ranges_.primary());
    if (svc.ip_family_policy != IpFamilyPolicy::SingleStack &&
        svc.ip_families.size() == 1 && ranges_.dual_stack())
      svc.ip_families.push_back(svc.ip_families[0] == IpFamily::IPv4
                                    ? IpFamily::IPv6
                                    : IpFamily::IPv4);

    if (!svc.headless())
      if (auto s = allocate_ips(svc, old, owner); !s) return s;
    return allocate_node_ports(svc, old, owner);
  }();
  if (!st) {
    release(svc);  // whatever of it was held (nothing: holds come last)
    if (old) hold(*old);
    return st;
  }
  hold(svc);
  return {};
}

Status Allocator::allocate_ips(Service& svc, const Service* old,
                               const std::string& owner) {
  std::vector<std::string> out;
  for (size_t i = 0; i < svc.ip_families.size(); i++) {
    const IpFamily fam = svc.ip_families[i];
    const Cidr& range = fam == IpFamily::IPv4 ? *ranges_.v4 : *ranges_.v6;
    const std::string path = "spec.clusterIPs[" + std::to_string(i) + "]";
    if (i < svc.cluster_ips.size()) {
      const std::string& want = svc.cluster_ips[i];
      const IpAddr ip = IpAddr::parse(want).value();
      // Kept as stored, even if the range changed since.
      if (old && contains_ip(old->cluster_ips, want)) {
        out.push_back(want);
        continue;
      }
      const uint64_t off = offset_in(range, ip);
      if (!range.contains(ip) || off < first_usable() ||
          off > last_usable(range))
        return err(path + ": Invalid value " + quote(want) +
                   ": failed to allocate IP " + want +
                   ": provided IP is not in the valid range. The range of "
                   "valid IPs is " +
                   range.str());
      if (auto h = ip_holder(ip); h && *h != owner)
        return err(path + ": Invalid value " + quote(want) +
                   ": failed to allocate IP " + want +
                   ": provided IP is already allocated (to Service " + *h +
                   ")");
      out.push_back(want);
      continue;
    }
    // A family added back keeps the address the Service had in it.
    std::optional<IpAddr> pick;
    if (old)
      for (const auto& s : old->cluster_ips)
        if (auto ip = IpAddr::parse(s);
            ip && family_of(*ip) == fam && !ips_.count(*ip))
          pick = *ip;
    if (!pick)
      pick =
          next_free_ip(range, fam == IpFamily::IPv4 ? cursor_v4_ : cursor_v6_);
    if (!pick)
      return err(path + ": failed to allocate a serviceIP: range is full (" +
                 range.str() + ")");
    out.push_back(pick->str());
  }
  svc.cluster_ips = std::move(out);
  svc.cluster_ip = svc.cluster_ips.empty() ? "" : svc.cluster_ips[0];
  return {};
}

Status Allocator::allocate_node_ports(Service& svc, const Service* old,
                                      const std::string& owner) {
  const uint32_t lo = ranges_.node_port_min, hi = ranges_.node_port_max;
  const std::string range = std::to_string(lo) + "-" + std::to_string(hi);
  std::set<int32_t> mine;  // this Service's ports (shared across protocols)
  auto held_by_old = [&](int32_t np) {
    return old && std::any_of(old->ports.begin(), old->ports.end(),
                              [&](const auto& p) { return p.node_port == np; });
  };
  for (size_t i = 0; i < svc.ports.size(); i++) {
    const int32_t np = svc.ports[i].node_port;
    if (!np) continue;
    const std::string path = "spec.ports[" + std::to_string(i) + "].nodePort";
    if (!held_by_old(np)) {
      if (np < int32_t(lo) || np > int32_t(hi))
        return err(path + ": Invalid value " + std::to_string(np) +
                   ": provided port is not in the valid range. The range of "
                   "valid ports is " +
                   range);
      if (auto h = node_port_holder(uint16_t(np)); h && *h != owner)
        return err(path + ": Invalid value " + std::to_string(np) +
                   ": provided port is already allocated (to Service " + *h +
                   ")");
    }
    mine.insert(np);
  }
  if (!svc.needs_node_ports()) return {};
  const uint32_t size = hi - lo + 1;
  const uint32_t band =
      std::min<uint32_t>(uint32_t(static_band(size, 16, 32, 128)), size - 1);
  for (size_t i = 0; i < svc.ports.size(); i++) {
    auto& p = svc.ports[i];
    if (p.node_port) continue;
    auto free = [&](uint32_t port) {
      return !node_ports_.count(uint16_t(port)) && !mine.count(int32_t(port));
    };
    std::optional<uint32_t> pick;
    const uint32_t start =
        cursor_np_ >= band && cursor_np_ < size ? cursor_np_ : band;
    for (uint32_t n = 0, off = start; n < size - band && !pick; n++) {
      if (free(lo + off)) {
        pick = lo + off;
        cursor_np_ = off + 1 == size ? band : off + 1;
      }
      off = off + 1 == size ? band : off + 1;
    }
    for (uint32_t off = 0; off < band && !pick; off++)
      if (free(lo + off)) pick = lo + off;
    if (!pick)
      return err("spec.ports[" + std::to_string(i) +
                 "].nodePort: failed to allocate a nodePort: range is full (" +
                 range + ")");
    p.node_port = int32_t(*pick);
    mine.insert(p.node_port);
  }
  return {};
}

}  // namespace sluice::lb

// Service cluster IPs and node ports, allocated the way the API server's
// service registry does (pkg/registry/core/service/storage/alloc.go):
//   - a re-applied Service keeps what it has: a manifest without clusterIP
//     inherits the stored cluster IPs, a port without nodePort the stored
//     node port of the port with the same name (patchAllocatedValues);
//   - ipFamilies/ipFamilyPolicy are defaulted from the cluster IPs, the
//     policy and the configured ranges (initIPFamilyFields);
//   - a requested value must be inside its range and free; a missing one is
//     taken from the range, dynamically assigned values coming from the
//     upper part of it first so that low, hand-picked addresses (DNS at
//     10.96.0.10) and ports rarely collide with them (KEP-3070/KEP-3668);
//   - cluster IPs may not change once set (validateUpgradeDowngradeClusterIPs),
//     except that dropping to SingleStack releases the secondary.
// Values are held by the Service that owns them (namespace/name) and freed
// when it is deleted. Nothing here persists: the state store keeps the
// allocated Service, and restore() re-holds its values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/cidr.h"
#include "common/result.h"
#include "k8s/objects.h"

namespace sluice::lb {

// The agent config's serviceCIDR, serviceCIDRv6 and nodePortRange.
struct ServiceRanges {
  std::optional<Cidr> v4 = Cidr::parse("10.96.0.0/12").value();
  std::optional<Cidr> v6 = Cidr::parse("fd10:96::/108").value();
  uint16_t node_port_min = 30000, node_port_max = 32767;

  // "" disables a family; node ports as "30000-32767". Errors name the
  // argument ("serviceCIDR", "serviceCIDRv6", "nodePortRange").
  static Result<ServiceRanges> parse(const std::string& v4,
                                     const std::string& v6,
                                     const std::string& node_ports);
  // At least one family; a range holds at least 4 addresses and at most
  // 2^32 (an IPv6 prefix of /96 or longer); node ports 1 <= min <= max.
  Status validate() const;
  bool dual_stack() const { return v4 && v6; }
  k8s::IpFamily primary() const {
    return v4 ? k8s::IpFamily::IPv4 : k8s::IpFamily::IPv6;
  }
};

class Allocator {
 public:
  explicit Allocator(ServiceRanges ranges = {}) : ranges_(std::move(ranges)) {}
  const ServiceRanges& ranges() const { return ranges_; }

  // Holds the values of an already-allocated Service (restore). A value
  // another Service already holds stays with that one.
  void hold(const k8s::Service& svc);
  // Frees every value `svc` holds.
  void release(const k8s::Service& svc);

  // Completes `svc` (as decoded from a manifest) against `old`, the stored
  // Service with the same namespace/name if any: inherits, defaults and
  // allocates as described above, and holds the result in place of what
  // `old` held. On error (a message "<field path>: <problem>") nothing
  // changed, `old` keeps its values, and `svc` is unspecified.
  Status allocate(k8s::Service& svc, const k8s::Service* old);

  // Who holds a cluster IP / node port ("ns/name"), for tests and status.
  std::optional<std::string> ip_holder(const IpAddr& ip) const;
  std::optional<std::string> node_port_holder(uint16_t port) const;
  size_t ips_held() const { return ips_.size(); }
  size_t node_ports_held() const { return node_ports_.size(); }

 private:
  Status allocate_ips(k8s::Service& svc, const k8s::Service* old,
                      const std::string& owner);
  Status allocate_node_ports(k8s::Service& svc, const k8s::Service* old,
                             const std::string& owner);
  std::optional<IpAddr> next_free_ip(const Cidr& range, uint64_t& cursor) const;

  ServiceRanges ranges_;
  std::map<IpAddr, std::string> ips_;
  std::map<uint16_t, std::string> node_ports_;
  // Next-fit cursors (offsets into each range), so a freed value is not
  // handed out again right away.
  uint64_t cursor_v4_ = 0, cursor_v6_ = 0;
  uint32_t cursor_np_ = 0;
};

// The offset below which a range is left to static (requested) values:
// min(max(lo, size / step), hi), 0 for ranges of `lo` or fewer. Upstream
// uses (16, 16, 256) for cluster IPs and (16, 32, 128) for node ports.
uint64_t static_band(uint64_t size, uint64_t lo, uint64_t step, uint64_t hi);

}  // namespace sluice::lb

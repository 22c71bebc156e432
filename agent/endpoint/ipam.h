// Pod addresses from the node's pod CIDRs (config podCIDR, default
// 10.200.0.0/16, and podCIDRv6, default fd10:200::/64; either may be off,
// not both). Each endpoint, keyed by container id + interface name, gets
// one address per configured family.
//
// Never handed out: the network address (offset 0; for IPv6 the
// subnet-router anycast), the IPv4 broadcast, and offset 1 (.1 / ::1),
// kept reserved for the node. Pods do not use .1 as their gateway: their
// default route goes via the link-local kGatewayV4 / kGatewayV6 (onlink,
// answered by a permanent neighbour entry for the host veth), so the
// gateway costs no pod address and is the same on every node.
//
// Allocation walks forward from a cursor (wrapping), so a released address
// is reused only after the rest of the range was handed out: stale
// conntrack or policy state never meets a new pod at once. The IPv6 range
// (2^64 addresses) is never enumerated: at most kMaxProbes candidates are
// tried per allocation.
//
// Allocations and cursors persist in the state store (key "ipam") before
// allocate()/release() return, so a restarted agent keeps every address.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"
#include "state/store.h"

namespace sluice {

inline constexpr const char* kDefaultPodCidrV4 = "10.200.0.0/16";
inline constexpr const char* kDefaultPodCidrV6 = "fd10:200::/64";
inline constexpr const char* kGatewayV4 = "169.254.1.1";
inline constexpr const char* kGatewayV6 = "fe80::1";

struct IpamOwner {
  std::string container_id;
  std::string ifname;
  auto operator<=>(const IpamOwner&) const = default;
};

class Ipam {
 public:
  static constexpr uint64_t kMaxProbes = 1u << 16;

  // Validates the CIDRs: at least one, right families, room for a pod
  // (IPv4 /30 or wider, IPv6 /126 or wider).
  static Result<std::unique_ptr<Ipam>> create(StateStore& store,
                                              std::optional<Cidr> v4,
                                              std::optional<Cidr> v6);

  // Loads persisted allocations (replacing what is in memory). Entries
  // outside today's CIDRs are kept: their pods still use them.
  Status restore();

  // One address per configured family, IPv4 first. Idempotent: the same
  // key gets the same addresses back (and only a missing family is added).
  Result<std::vector<IpAddr>> allocate(const std::string& container_id,
                                       const std::string& ifname);
  // Frees the key's addresses; an unknown key is not an error.
  Status release(const std::string& container_id, const std::string& ifname);

  std::optional<std::vector<IpAddr>> lookup(const std::string& container_id,
                                            const std::string& ifname) const;
  std::optional<IpamOwner> owner_of(const IpAddr& a) const;
  size_t size() const;  // number of keys holding addresses

 private:
  struct Pool {
    Cidr cidr;
    uint64_t first = 2, last = 0;  // usable offsets, inclusive
    uint64_t next = 2;             // cursor
  };
  Ipam(StateStore& store, std::vector<Pool> pools)
      : store_(store), pools_(std::move(pools)) {}
  Result<uint64_t> pick(const Pool& p) const;  // a free offset
  Status persist();

  StateStore& store_;
  mutable std::mutex mu_;
  std::vector<Pool> pools_;  // IPv4 first
  std::map<IpamOwner, std::vector<IpAddr>> by_owner_;
  std::map<IpAddr, IpamOwner> by_addr_;
};

}  // namespace sluice

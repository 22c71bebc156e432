// IP addresses and CIDR prefixes as the agent, the config and the API see
// them. Parsing is strict: host bits set under the mask are rejected (as
// Kubernetes does for ipBlock), so "10.0.0.1/8" is an error, not 10.0.0.0/8.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sluice {

struct IpAddr {
  int family = 0;  // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 in bytes[0..3]

  static Result<IpAddr> parse(std::string_view s);
  std::string str() const;
  size_t size() const;  // 4 or 16
  auto operator<=>(const IpAddr&) const = default;
};

struct Cidr {
  IpAddr addr;
  uint8_t prefixlen = 0;

  // Accepts "a.b.c.d/n", "x::y/n"; a bare address is a host prefix.
  static Result<Cidr> parse(std::string_view s);
  std::string str() const;
  bool contains(const IpAddr& a) const;
  auto operator<=>(const Cidr&) const = default;
};

}  // namespace sluice

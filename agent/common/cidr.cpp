#include "common/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace sluice {

Result<IpAddr> IpAddr::parse(std::string_view s) {
  IpAddr a;
  std::string str(s);
  if (inet_pton(AF_INET, str.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, str.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return err("invalid IP address \"" + str + "\"");
}

size_t IpAddr::size() const { return family == AF_INET ? 4 : 16; }

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes.data(), buf, sizeof(buf));
  return buf;
}

Result<Cidr> Cidr::parse(std::string_view s) {
  const std::string orig(s);
  auto slash = s.find('/');
  auto addr = IpAddr::parse(s.substr(0, slash));
  if (!addr) return err("invalid CIDR \"" + orig + "\": bad address");
  Cidr c;
  c.addr = *addr;
  const int max = addr->family == AF_INET ? 32 : 128;
  int len = max;
  if (slash != std::string_view::npos) {
    auto p = s.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), len);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() ||
        len < 0 || len > max)
      return err("invalid CIDR \"" + orig + "\": prefix length must be 0-" +
                 std::to_string(max));
  }
  c.prefixlen = static_cast<uint8_t>(len);
  for (int bit = len; bit < max; bit++) {
    if (c.addr.bytes[bit / 8] & (0x80 >> (bit % 8)))
      return err("invalid CIDR \"" + orig +
                 "\": host bits set (did you mean " + [&] {
                   Cidr m = c;
                   for (int b = len; b < max; b++)
                     m.addr.bytes[b / 8] &= ~(0x80 >> (b % 8));
                   return m.str();
                 }() + "?)");
  }
  return c;
}

std::string Cidr::str() const {
  return addr.str() + "/" + std::to_string(prefixlen);
}

bool Cidr::contains(const IpAddr& a) const {
  if (a.family != addr.family) return false;
  for (int bit = 0; bit < prefixlen; bit++) {
    const uint8_t m = 0x80 >> (bit % 8);
    if ((a.bytes[bit / 8] & m) != (addr.bytes[bit / 8] & m)) return false;
  }
  return true;
}

}  // namespace sluice

// The API server's string validators (k8s.io/apimachinery/pkg/util/
// validation), with its messages. Each returns the list of problems; empty
// means valid. Kept separate from manifest parsing so every kind and the API
// can reuse them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::k8s {

using Problems = std::vector<std::string>;

Problems dns1123_label(const std::string& s);      // namespace names
Problems dns1123_subdomain(const std::string& s);  // pod, policy names
Problems dns1035_label(const std::string& s);      // service names
Problems qualified_name(const std::string& s);     // label/annotation keys
Problems label_value(const std::string& s);
Problems port_name(const std::string& s);  // IANA_SVC_NAME
Problems port_number(int64_t n);           // 1-65535
// IP addresses (IsValidIP / IsValidIPv4Address / IsValidIPv6Address).
Problems ip_address(const std::string& s);
Problems ipv4_address(const std::string& s);
Problems ipv6_address(const std::string& s);
// ValidateNonSpecialIP: not unspecified, loopback or link-local, which make
// no sense as endpoints or external IPs. `s` must be a valid address.
Problems non_special_ip(const std::string& s);

// "a; b" for an error message.
std::string join(const Problems& p);

}  // namespace sluice::k8s

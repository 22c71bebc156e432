#include "k8s/validation.h"

#include <arpa/inet.h>

#include <cstring>

namespace sluice::k8s {
namespace {

bool lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool alnum(char c) { return lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

// [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool is_label(const std::string& s, size_t b, size_t e) {
  if (b >= e || !lower_alnum(s[b]) || !lower_alnum(s[e - 1])) return false;
  for (size_t i = b; i < e; i++)
    if (!lower_alnum(s[i]) && s[i] != '-') return false;
  return true;
}

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], or empty when allow_empty.
bool is_qualified_part(const std::string& s, bool allow_empty) {
  if (s.empty()) return allow_empty;
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s)
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

std::string max_len(size_t n) {
  return "must be no more than " + std::to_string(n) + " characters";
}

const char* kQualifiedMsg =
    "must consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyName', or "
    "'my.name', or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

}  // namespace

Problems dns1123_label(const std::string& s) {
  Problems p;
  if (s.size() > 63) p.push_back(max_len(63));
  if (!is_label(s, 0, s.size()))
    p.push_back(
        "a lowercase RFC 1123 label must consist of lower case alphanumeric "
        "characters or '-', and must start and end with an alphanumeric "
        "character (e.g. 'my-name', or '123-abc', regex used for validation "
        "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
  return p;
}

Problems dns1123_subdomain(const std::string& s) {
  Problems p;
  if (s.size() > 253) p.push_back(max_len(253));
  bool ok = !s.empty();
  for (size_t b = 0; ok && b <= s.size();) {
    size_t e = s.find('.', b);
    if (e == std::string::npos) e = s.size();
    ok = is_label(s, b, e);
    b = e + 1;
  }
  if (!ok)
    p.push_back(
        "a lowercase RFC 1123 subdomain must consist of lower case "
        "alphanumeric characters, '-' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'example.com', regex used for "
        "validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
  return p;
}

Problems dns1035_label(const std::string& s) {
  Problems p;
  if (s.size() > 63) p.push_back(max_len(63));
  if (!is_label(s, 0, s.size()) || !(s[0] >= 'a' && s[0] <= 'z'))
    p.push_back(
        "a DNS-1035 label must consist of lower case alphanumeric characters "
        "or '-', start with an alphabetic character, and end with an "
        "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used "
        "for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");
  return p;
}

Problems qualified_name(const std::string& s) {
  Problems p;
  std::string name = s;
  if (auto slash = s.find('/'); slash != std::string::npos) {
    if (s.find('/', slash + 1) != std::string::npos)
      return {std::string("a qualified name ") + kQualifiedMsg +
              " with an optional DNS subdomain prefix and '/' (e.g. "
              "'example.com/MyName')"};
    const std::string prefix = s.substr(0, slash);
    name = s.substr(slash + 1);
    if (prefix.empty()) p.push_back("prefix part must be non-empty");
    for (const auto& m :
         prefix.empty() ? Problems{} : dns1123_subdomain(prefix))
      p.push_back("prefix part " + m);
  }
  if (name.empty())
    p.push_back("name part must be non-empty");
  else if (name.size() > 63)
    p.push_back("name part " + max_len(63));
  if (!is_qualified_part(name, false))
    p.push_back(std::string("name part ") + kQualifiedMsg);
  return p;
}

Problems label_value(const std::string& s) {
  Problems p;
  if (s.size() > 63) p.push_back(max_len(63));
  if (!is_qualified_part(s, true))
    p.push_back(
        "a valid label must be an empty string or consist of alphanumeric "
        "characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345', "
        "regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
  return p;
}

Problems port_name(const std::string& s) {
  Problems p;
  if (s.size() > 15) p.push_back(max_len(15));
  bool charset = !s.empty(), letter = false;
  for (char c : s) {
    charset = charset && (lower_alnum(c) || c == '-');
    letter = letter || (c >= 'a' && c <= 'z');
  }
  if (!charset)
    p.push_back(
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens "
        "(-)");
  if (!letter) p.push_back("must contain at least one letter (a-z)");
  if (s.find("--") != std::string::npos)
    p.push_back("must not contain consecutive hyphens");
  if (!s.empty() && (s.front() == '-' || s.back() == '-'))
    p.push_back("must not begin or end with a hyphen");
  return p;
}

Problems port_number(int64_t n) {
  if (n >= 1 && n <= 65535) return {};
  return {"must be between 1 and 65535, inclusive"};
}

namespace {
bool parses(int af, const std::string& s) {
  unsigned char buf[16];
  return !s.empty() && inet_pton(af, s.c_str(), buf) == 1;
}
}  // namespace

Problems ip_address(const std::string& s) {
  if (parses(AF_INET, s) || parses(AF_INET6, s)) return {};
  return {"must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"};
}

Problems ipv4_address(const std::string& s) {
  if (parses(AF_INET, s)) return {};
  return {"must be a valid IPv4 address"};
}

Problems ipv6_address(const std::string& s) {
  if (parses(AF_INET6, s)) return {};
  return {"must be a valid IPv6 address"};
}

Problems non_special_ip(const std::string& s) {
  unsigned char b[16] = {};
  Problems p;
  if (parses(AF_INET, s)) {
    inet_pton(AF_INET, s.c_str(), b);
    if (!b[0] && !b[1] && !b[2] && !b[3])
      p.push_back("may not be unspecified (" + s + ")");
    if (b[0] == 127)
      p.push_back("may not be in the loopback range (127.0.0.0/8, ::1/128)");
    if (b[0] == 169 && b[1] == 254)
      p.push_back(
          "may not be in the link-local range (169.254.0.0/16, fe80::/10)");
    if (b[0] == 224 && b[1] == 0 && b[2] == 0)
      p.push_back(
          "may not be in the link-local multicast range (224.0.0.0/24, "
          "ff02::/10)");
    return p;
  }
  if (!parses(AF_INET6, s)) return p;
  inet_pton(AF_INET6, s.c_str(), b);
  // An IPv4-mapped address (::ffff:a.b.c.d) is judged as its IPv4 address,
  // as Go's net.IP does.
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0,    0,
                                            0, 0, 0, 0, 0xff, 0xff};
  if (!std::memcmp(b, kMapped, 12)) {
    char v4[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, b + 12, v4, sizeof(v4));
    Problems q = non_special_ip(v4);
    for (auto& m : q)
      if (m.rfind("may not be unspecified", 0) == 0)
        m = "may not be unspecified (" + s + ")";
    return q;
  }
  bool zero = true, loop = true;
  for (int i = 0; i < 16; i++) {
    zero = zero && !b[i];
    loop = loop && b[i] == (i == 15 ? 1 : 0);
  }
  if (zero) p.push_back("may not be unspecified (" + s + ")");
  if (loop)
    p.push_back("may not be in the loopback range (127.0.0.0/8, ::1/128)");
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
    p.push_back(
        "may not be in the link-local range (169.254.0.0/16, fe80::/10)");
  if (b[0] == 0xff && (b[1] & 0x0f) == 0x02)
    p.push_back(
        "may not be in the link-local multicast range (224.0.0.0/24, "
        "ff02::/10)");
  return p;
}

std::string join(const Problems& p) {
  std::string out;
  for (const auto& m : p) out += (out.empty() ? "" : "; ") + m;
  return out;
}

}  // namespace sluice::k8s

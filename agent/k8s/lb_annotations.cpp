#include "k8s/lb_annotations.h"

#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <utility>

#include "lb/maglev.h"

namespace sluice::k8s {
namespace {

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// Digits only (no sign, no spaces), at most `max`.
std::optional<uint64_t> number(const std::string& s, uint64_t max) {
  uint64_t v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc() || p != end || v > max)
    return std::nullopt;
  return v;
}

// "a.b.c.d", "a.b.c.d:port", "x::y", "[x::y]", "[x::y]:port".
Result<BackendWeight> weight_key(const std::string& k) {
  const Error bad = err(quoted(k) +
                        " is not an IP address, IP:port or [IPv6]:port");
  BackendWeight w;
  std::string addr = k, port;
  if (!k.empty() && k[0] == '[') {
    const auto close = k.find(']');
    if (close == std::string::npos) return bad;
    addr = k.substr(1, close - 1);
    const std::string rest = k.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return bad;
      port = rest.substr(1);
      if (port.empty()) return bad;
    }
  } else if (const auto c = k.find(':');
             c != std::string::npos && k.find(':', c + 1) == std::string::npos) {
    addr = k.substr(0, c);  // exactly one colon: IPv4:port
    port = k.substr(c + 1);
    if (port.empty()) return bad;
  }
  auto ip = IpAddr::parse(addr);
  if (!ip || (k[0] == '[' && ip->family != AF_INET6)) return bad;
  w.ip = *ip;
  if (!port.empty()) {
    const auto p = number(port, 65535);
    if (!p || *p == 0)
      return err("port " + quoted(port) + " of " + quoted(k) +
                 " is not in 1..65535");
    w.port = uint16_t(*p);
  }
  return w;
}

}  // namespace

Result<LbAlgorithm> parse_lb_algorithm(const std::string& v) {
  if (v == "random") return LbAlgorithm::Random;
  if (v == "maglev") return LbAlgorithm::Maglev;
  return err("supported values: \"maglev\", \"random\"");
}

Result<uint32_t> parse_backend_weight(const std::string& v) {
  const auto n = number(v, kMaxBackendWeight);
  if (!n)
    return err("weight " + quoted(v) + " is not an integer in 0.." +
               std::to_string(kMaxBackendWeight));
  return uint32_t(*n);
}

Result<std::vector<BackendWeight>> parse_backend_weights(const std::string& v) {
  std::vector<BackendWeight> out;
  if (trim(v).empty()) return out;  // no overrides
  std::set<std::pair<IpAddr, std::optional<uint16_t>>> seen;
  size_t start = 0, n = 0;
  while (start <= v.size()) {
    const auto comma = std::min(v.find(',', start), v.size());
    const std::string entry = trim(v.substr(start, comma - start));
    start = comma + 1;
    n++;
    const std::string where = "entry " + std::to_string(n) + " (" +
                              quoted(entry) + "): ";
    const auto eq = entry.find('=');
    if (eq == std::string::npos)
      return err(where + "expected ADDRESS=WEIGHT, e.g. 10.200.0.5=90");
    auto w = weight_key(trim(entry.substr(0, eq)));
    if (!w) return err(where + w.error());
    auto weight = parse_backend_weight(trim(entry.substr(eq + 1)));
    if (!weight) return err(where + weight.error());
    w->weight = *weight;
    if (!seen.insert({w->ip, w->port}).second)
      return err(where + "duplicate address");
    out.push_back(*w);
  }
  return out;
}

Result<uint32_t> parse_max_connections(const std::string& v) {
  const auto n = number(v, UINT32_MAX);
  if (!n || *n == 0)
    return err(quoted(v) +
               " is not an integer in 1..4294967295 (remove the annotation "
               "for no cap)");
  return uint32_t(*n);
}

Result<uint32_t> parse_table_size(const std::string& v) {
  auto m = lb::parse_maglev_table_size(v, kMaglevTableSizeAnnotation);
  if (m) return m;
  // lb's message starts with the key; the caller names the annotation.
  const std::string prefix = std::string(kMaglevTableSizeAnnotation) + ": ";
  std::string msg = m.error();
  if (msg.rfind(prefix, 0) == 0) msg = msg.substr(prefix.size());
  return err(msg);
}

std::optional<AnnotationProblem> lb_annotation_problem(const ObjectMeta& meta,
                                                       bool service) {
  for (const auto& [k, v] : meta.annotations) {
    std::string problem;
    if (service && k == kLbAlgorithmAnnotation) {
      if (auto r = parse_lb_algorithm(v); !r) problem = r.error();
    } else if (service && k == kMaglevTableSizeAnnotation) {
      if (auto r = parse_table_size(v); !r) problem = r.error();
    } else if (service && k == kBackendWeightsAnnotation) {
      if (auto r = parse_backend_weights(v); !r) problem = r.error();
    } else if (service && k == kMaxConnectionsAnnotation) {
      if (auto r = parse_max_connections(v); !r) problem = r.error();
    } else if (!service && k == kLbWeightAnnotation) {
      if (auto r = parse_backend_weight(v); !r) problem = r.error();
    }
    if (!problem.empty()) return AnnotationProblem{k, problem};
  }
  return std::nullopt;
}

ServiceLbAnnotations service_lb_annotations(
    const ObjectMeta& meta, std::vector<std::string>* warnings) {
  ServiceLbAnnotations a;
  auto get = [&](const char* key, auto parse, auto& out) {
    auto it = meta.annotations.find(key);
    if (it == meta.annotations.end()) return;
    auto r = parse(it->second);
    if (r)
      out = *r;
    else if (warnings)
      warnings->push_back(std::string(key) + ": " + r.error());
  };
  get(kLbAlgorithmAnnotation, parse_lb_algorithm, a.algorithm);
  get(kMaglevTableSizeAnnotation, parse_table_size, a.maglev_table_size);
  get(kBackendWeightsAnnotation, parse_backend_weights, a.weights);
  get(kMaxConnectionsAnnotation, parse_max_connections, a.max_connections);
  return a;
}

std::optional<uint32_t> pod_lb_weight(const ObjectMeta& meta,
                                      std::vector<std::string>* warnings) {
  auto it = meta.annotations.find(kLbWeightAnnotation);
  if (it == meta.annotations.end()) return std::nullopt;
  auto r = parse_backend_weight(it->second);
  if (!r) {
    if (warnings)
      warnings->push_back(std::string(kLbWeightAnnotation) + ": " + r.error());
    return std::nullopt;
  }
  return *r;
}

}  // namespace sluice::k8s

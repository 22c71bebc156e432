#include "config/config.h"

#include "lb/allocator.h"
#include "lb/maglev.h"
#include "sluice/abi.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <stdexcept>
#include <set>
#include <tuple>
#include <arpa/inet.h>
#include <sstream>

namespace sluice {
namespace {

const std::set<std::string> kLogLevels = {"trace", "debug", "info",
                                          "warn",  "error", "critical", "off"};

Result<std::string> scalar(const YAML::Node& n, const std::string& field) {
  if (!n.IsScalar()) return err(field + ": expected a string");
  return n.as<std::string>();
}

Result<std::vector<std::string>> string_list(const YAML::Node& n,
                                             const std::string& field) {
  if (n.IsNull()) return std::vector<std::string>{};
  if (!n.IsSequence()) return err(field + ": expected a list");
  std::vector<std::string> out;
  for (size_t i = 0; i < n.size(); i++) {
    auto s = scalar(n[i], field + "[" + std::to_string(i) + "]");
    if (!s) return Error{s.error()};
    out.push_back(*s);
  }
  return out;
}

Result<bool> boolean(const YAML::Node& n, const std::string& field) {
  auto s = scalar(n, field);
  if (!s) return Error{s.error()};
  if (*s != "true" && *s != "false")
    return err(field + ": \"" + *s + "\" is not true or false");
  return *s == "true";
}

Result<uint64_t> unsigned_in(const YAML::Node& n, const std::string& field,
                             uint64_t lo, uint64_t hi) {
  auto s = scalar(n, field);
  if (!s) return Error{s.error()};
  uint64_t v = 0;
  size_t used = 0;
  try {
    if (s->empty() || (*s)[0] == '-') throw std::invalid_argument("sign");
    v = std::stoull(*s, &used, 10);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s->size())
    return err(field + ": \"" + *s + "\" is not a whole number");
  if (v < lo || v > hi)
    return err(field + ": " + *s + " is out of range " + std::to_string(lo) +
               ".." + std::to_string(hi));
  return v;
}

}  // namespace

int event_level_of(const std::string& name) {
  if (name == "off") return SLUICE_EVENTS_OFF;
  if (name == "drops") return SLUICE_EVENTS_DROPS;
  if (name == "flows") return SLUICE_EVENTS_FLOWS;
  if (name == "trace") return SLUICE_EVENTS_TRACE;
  return -1;
}

Result<uint64_t> parse_duration(const std::string& text,
                                const std::string& field) {
  if (text.empty()) return err(field + ": empty duration");
  uint64_t total = 0;
  size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])))
      j++;
    if (j == i || j - i > 9)
      return err(field + ": \"" + text +
                 "\" is not a duration (e.g. 90s, 5m, 6h, 1h30m)");
    const uint64_t n = std::stoull(text.substr(i, j - i));
    uint64_t unit = 1;
    if (j < text.size()) {
      switch (text[j]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default:
          return err(field + ": \"" + text + "\": unknown unit '" +
                     text[j] + "' (s, m, h, d)");
      }
      j++;
    } else if (any) {
      return err(field + ": \"" + text + "\": a number without a unit");
    }
    total += n * unit;
    any = true;
    i = j;
  }
  return total;
}

Result<AgentConfig> parse_config_yaml(const std::string& text,
                                      const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return err(origin + ": invalid YAML: " + e.what());
  }
  AgentConfig cfg;
  if (root.IsNull()) return cfg;
  if (!root.IsMap()) return err(origin + ": top level must be a mapping");
  auto fail = [&](const std::string& m) { return err(origin + ": " + m); };

  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "devices") {
      auto l = string_list(v, key);
      if (!l) return fail(l.error());
      cfg.devices = *l;
    } else if (key == "bpffs" || key == "socket" || key == "stateDir" ||
               key == "logLevel" || key == "podCIDR" || key == "podCIDRv6" ||
               key == "serviceCIDR" || key == "serviceCIDRv6" ||
               key == "nodePortRange") {
      auto s = scalar(v, key);
      if (!s) return fail(s.error());
      if (key == "bpffs") cfg.bpffs = *s;
      if (key == "socket") cfg.socket = *s;
      if (key == "stateDir") cfg.state_dir = *s;
      if (key == "logLevel") cfg.log_level = *s;
      if (key == "podCIDR") cfg.pod_cidr = *s;
      if (key == "podCIDRv6") cfg.pod_cidr_v6 = *s;
      if (key == "serviceCIDR") cfg.service_cidr = *s;
      if (key == "serviceCIDRv6") cfg.service_cidr_v6 = *s;
      if (key == "nodePortRange") cfg.node_port_range = *s;
    } else if (key == "prefilter") {
      if (!v.IsMap()) return fail("prefilter: expected a mapping");
      for (const auto& pkv : v) {
        const std::string pkey = pkv.first.as<std::string>();
        if (pkey != "deny") return fail("unknown key prefilter." + pkey);
        auto l = string_list(pkv.second, "prefilter.deny");
        if (!l) return fail(l.error());
        for (size_t i = 0; i < l->size(); i++) {
          auto c = Cidr::parse((*l)[i]);
          if (!c)
            return fail("prefilter.deny[" + std::to_string(i) +
                        "]: " + c.error());
          cfg.prefilter.deny.push_back(*c);
        }
      }
    } else if (key == "conntrack") {
      if (!v.IsMap()) return fail("conntrack: expected a mapping");
      for (const auto& ckv : v) {
        const std::string ck = ckv.first.as<std::string>();
        const std::string field = "conntrack." + ck;
        if (ck == "max") {
          auto n = unsigned_in(ckv.second, field, 1024, 1u << 26);
          if (!n) return fail(n.error());
          cfg.conntrack.max = uint32_t(*n);
          continue;
        }
        uint64_t* dst = ck == "tcpEstablishedTimeout" ? &cfg.conntrack.tcp_established
                        : ck == "tcpClosingTimeout"   ? &cfg.conntrack.tcp_closing
                        : ck == "unrepliedTimeout"    ? &cfg.conntrack.unreplied
                        : ck == "otherTimeout"        ? &cfg.conntrack.other
                        : ck == "gcInterval"          ? &cfg.conntrack.gc_interval
                                                      : nullptr;
        if (!dst) return fail("unknown key " + field);
        auto s = scalar(ckv.second, field);
        if (!s) return fail(s.error());
        auto d = parse_duration(*s, field);
        if (!d) return fail(d.error());
        *dst = *d;
      }
    } else if (key == "lb") {
      if (!v.IsMap()) return fail("lb: expected a mapping");
      for (const auto& lkv : v) {
        const std::string lk = lkv.first.as<std::string>();
        if (lk == "algorithm") {
          auto a = scalar(lkv.second, "lb.algorithm");
          if (!a) return fail(a.error());
          cfg.lb.algorithm = *a;
        } else if (lk == "maglevTableSize") {
          auto n = unsigned_in(lkv.second, "lb.maglevTableSize", 1, 1u << 20);
          if (!n) return fail(n.error());
          cfg.lb.maglev_table_size = uint32_t(*n);
        } else if (lk == "mode") {
          auto m = scalar(lkv.second, "lb.mode");
          if (!m) return fail(m.error());
          cfg.lb.mode = *m;
        } else if (lk == "socketLB") {
          auto b = boolean(lkv.second, "lb.socketLB");
          if (!b) return fail(b.error());
          cfg.lb.socket_lb = *b;
        } else if (lk == "socketLBCgroup") {
          auto c = scalar(lkv.second, "lb.socketLBCgroup");
          if (!c) return fail(c.error());
          cfg.lb.socket_lb_cgroup = *c;
        } else {
          return fail("unknown key lb." + lk);
        }
      }
    } else if (key == "events") {
      if (!v.IsMap()) return fail("events: expected a mapping");
      for (const auto& ekv : v) {
        const std::string ek = ekv.first.as<std::string>();
        if (ek == "level") {
          auto l = scalar(ekv.second, "events.level");
          if (!l) return fail(l.error());
          cfg.events.level = *l;
        } else if (ek == "history") {
          auto n = unsigned_in(ekv.second, "events.history", 0, 1u << 22);
          if (!n) return fail(n.error());
          cfg.events.history = uint32_t(*n);
        } else {
          return fail("unknown key events." + ek);
        }
      }
    } else if (key == "metrics") {
      if (!v.IsMap()) return fail("metrics: expected a mapping");
      for (const auto& mkv : v) {
        const std::string mk = mkv.first.as<std::string>();
        auto m = scalar(mkv.second, "metrics." + mk);
        if (!m) return fail(m.error());
        if (mk == "enabled") {
          auto b = boolean(mkv.second, "metrics.enabled");
          if (!b) return fail(b.error());
          cfg.metrics.enabled = *b;
        } else if (mk == "address") {
          cfg.metrics.address = *m;
        } else {
          return fail("unknown key metrics." + mk);
        }
      }
    } else if (key == "policy") {
      if (!v.IsMap()) return fail("policy: expected a mapping");
      for (const auto& pkv : v) {
        const std::string pk = pkv.first.as<std::string>();
        if (pk != "endpointMaxEntries") return fail("unknown key policy." + pk);
        auto n = unsigned_in(pkv.second, "policy.endpointMaxEntries", 16,
                             1u << 20);
        if (!n) return fail(n.error());
        cfg.policy.endpoint_max_entries = uint32_t(*n);
      }
    } else {
      return fail("unknown key " + key);
    }
  }
  return cfg;
}

Result<AgentConfig> load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return err("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config_yaml(ss.str(), path);
}

Result<HostPort> parse_host_port(const std::string& text) {
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() ||
        text[close + 1] != ':')
      return err("\"" + text + "\" is not [IPv6]:PORT");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon)
      return err("\"" + text + "\" is not IPv4:PORT or [IPv6]:PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto ip = IpAddr::parse(host);
  if (!ip) return err("\"" + text + "\": \"" + host + "\" is not an IP address");
  uint64_t p = 0;
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos ||
      (p = std::stoull(port)) > 65535)
    return err("\"" + text + "\": port must be 0-65535");
  return HostPort{*ip, uint16_t(p)};
}

Status validate_config(const AgentConfig& cfg) {
  if (!kLogLevels.count(cfg.log_level))
    return err("logLevel: \"" + cfg.log_level +
               "\" is not one of trace, debug, info, warn, error, critical, "
               "off");
  for (const auto& [name, val] :
       {std::pair{"bpffs", cfg.bpffs}, std::pair{"socket", cfg.socket},
        std::pair{"stateDir", cfg.state_dir}}) {
    if (val.empty() || val[0] != '/')
      return err(std::string(name) + ": must be an absolute path, got \"" +
                 val + "\"");
  }
  for (const auto& [name, val, fam] :
       {std::tuple{"podCIDR", cfg.pod_cidr, AF_INET},
        std::tuple{"podCIDRv6", cfg.pod_cidr_v6, AF_INET6}}) {
    if (val.empty()) continue;
    auto c = Cidr::parse(val);
    if (!c) return err(std::string(name) + ": " + c.error());
    if (c->addr.family != fam)
      return err(std::string(name) + ": \"" + val + "\" is not an " +
                 (fam == AF_INET ? "IPv4" : "IPv6") + " CIDR");
  }
  for (const auto& [name, val] :
       {std::pair{"conntrack.tcpEstablishedTimeout", cfg.conntrack.tcp_established},
        std::pair{"conntrack.tcpClosingTimeout", cfg.conntrack.tcp_closing},
        std::pair{"conntrack.unrepliedTimeout", cfg.conntrack.unreplied},
        std::pair{"conntrack.otherTimeout", cfg.conntrack.other},
        std::pair{"conntrack.gcInterval", cfg.conntrack.gc_interval}})
    if (val < 1 || val > 30 * 86400)
      return err(std::string(name) + ": " + std::to_string(val) +
                 "s is out of range 1s..30d");
  if (cfg.conntrack.max < 1024 || cfg.conntrack.max > (1u << 26))
    return err("conntrack.max: " + std::to_string(cfg.conntrack.max) +
               " is out of range 1024.." + std::to_string(1u << 26));
  if (cfg.policy.endpoint_max_entries < 16 ||
      cfg.policy.endpoint_max_entries > (1u << 20))
    return err("policy.endpointMaxEntries: " +
               std::to_string(cfg.policy.endpoint_max_entries) +
               " is out of range 16.." + std::to_string(1u << 20));
  if (auto r = lb::ServiceRanges::parse(cfg.service_cidr, cfg.service_cidr_v6,
                                       cfg.node_port_range);
      !r)
    return Error{r.error()};
  if (cfg.lb.algorithm != "random" && cfg.lb.algorithm != "maglev")
    return err("lb.algorithm: \"" + cfg.lb.algorithm +
               "\" is not one of random, maglev");
  if (cfg.lb.mode != "snat" && cfg.lb.mode != "dsr")
    return err("lb.mode: \"" + cfg.lb.mode + "\" is not one of snat, dsr");
  if (auto s = lb::validate_maglev_table_size(cfg.lb.maglev_table_size,
                                              "lb.maglevTableSize");
      !s)
    return s;
  if (cfg.lb.socket_lb_cgroup.empty() || cfg.lb.socket_lb_cgroup[0] != '/')
    return err("lb.socketLBCgroup: must be an absolute path, got \"" +
               cfg.lb.socket_lb_cgroup + "\"");
  if (event_level_of(cfg.events.level) < 0)
    return err("events.level: \"" + cfg.events.level +
               "\" is not one of off, drops, flows, trace");
  if (cfg.events.history > (1u << 22))
    return err("events.history: " + std::to_string(cfg.events.history) +
               " is out of range 0.." + std::to_string(1u << 22));
  if (cfg.metrics.enabled) {
    auto a = parse_host_port(cfg.metrics.address);
    if (!a) return err("metrics.address: " + a.error());
  }
  if (cfg.pod_cidr.empty() && cfg.pod_cidr_v6.empty())
    return err("podCIDR, podCIDRv6: at least one must be set");
  std::set<std::string> seen;
  for (const auto& d : cfg.devices) {
    if (d.empty() || d.size() >= 16 || d.find('/') != std::string::npos)
      return err("devices: \"" + d + "\" is not a valid interface name");
    if (!seen.insert(d).second)
      return err("devices: \"" + d + "\" listed twice");
  }
  return {};
}

}  // namespace sluice

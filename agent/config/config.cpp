#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
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

}  // namespace

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
               key == "logLevel" || key == "podCIDR" || key == "podCIDRv6") {
      auto s = scalar(v, key);
      if (!s) return fail(s.error());
      if (key == "bpffs") cfg.bpffs = *s;
      if (key == "socket") cfg.socket = *s;
      if (key == "stateDir") cfg.state_dir = *s;
      if (key == "logLevel") cfg.log_level = *s;
      if (key == "podCIDR") cfg.pod_cidr = *s;
      if (key == "podCIDRv6") cfg.pod_cidr_v6 = *s;
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

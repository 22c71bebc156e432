// Agent configuration: a YAML file (--config) whose every key is also a
// kebab-case command-line flag that wins over the file. Unknown keys are
// errors, so a typo never silently falls back to a default.
#pragma once

#include <string>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"

namespace sluice {

struct PrefilterConfig {
  std::vector<Cidr> deny;
};

struct AgentConfig {
  std::vector<std::string> devices;  // node devices for XDP/TC; none default
  std::string bpffs = "/sys/fs/bpf/sluice";
  std::string socket = "/run/sluice/sluice.sock";
  std::string state_dir = "/var/lib/sluice";
  std::string log_level = "info";
  PrefilterConfig prefilter;
  // Pod address ranges of this node; either may be disabled with "" (at
  // least one must remain).
  std::string pod_cidr = "10.200.0.0/16";
  std::string pod_cidr_v6 = "fd10:200::/64";
};

// Parses YAML text; `origin` names the file in error messages.
Result<AgentConfig> parse_config_yaml(const std::string& text,
                                      const std::string& origin);
Result<AgentConfig> load_config_file(const std::string& path);

// Checks values that are independent of the machine (log level, paths).
// Device existence is checked by the datapath, which knows the netns.
Status validate_config(const AgentConfig& cfg);

}  // namespace sluice

// Agent configuration: a YAML file (--config) whose every key is also a
// kebab-case command-line flag that wins over the file. Unknown keys are
// errors, so a typo never silently falls back to a default.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"

namespace sluice {

struct PrefilterConfig {
  std::vector<Cidr> deny;
};

// Connection tracking (sluice_ct). Timeouts are idle times in seconds;
// in YAML and flags they are durations ("6h", "90s", "1m30s") or seconds.
struct ConntrackConfig {
  uint32_t max = 262144;  // LRU capacity, sized before load
  uint64_t tcp_established = 6 * 3600;
  uint64_t tcp_closing = 10;  // FIN or RST seen
  uint64_t unreplied = 60;    // no reply yet (SYN, first datagram)
  uint64_t other = 60;        // UDP, SCTP, ICMP with replies
  uint64_t gc_interval = 30;
};

struct PolicyConfig {
  // Most entries one endpoint's policy map may hold ({peer identity,
  // direction, protocol} keys). Maps are sized to what they hold, so this
  // is a limit, not an allocation.
  uint32_t endpoint_max_entries = 16384;
};

// Service load balancing defaults (per-service annotations override them:
// sluice.io/lb-algorithm, sluice.io/maglev-table-size).
struct LbConfig {
  std::string algorithm = "random";   // random | maglev
  uint32_t maglev_table_size = 16381;  // a prime, 251..131071
  // North-south to backends on other nodes: snat (replies come back
  // through this node) | dsr (IP-in-IP; the backend's node answers the
  // client directly). Every node must run the same mode.
  std::string mode = "snat";
  // Socket-level balancing (sluice_sock): connect/sendmsg to a ClusterIP
  // from this node's pods and the node itself get the backend at the
  // socket, so their packets need no NAT. Off by default: the TC path
  // carries every feature (caps, rejects, drop reasons for every packet),
  // the socket path only what it can serve identically, and its hooks see
  // every socket under the cgroup (docs/design-services.md, "Socket LB").
  bool socket_lb = false;
  std::string socket_lb_cgroup = "/sys/fs/cgroup";  // cgroup v2 directory
};

// Flow events (sluice_events ring buffer) and the agent's history of them.
struct EventsConfig {
  // off | drops | flows | trace (enum sluice_event_level): flows (the
  // default) is drops plus one policy verdict and one service translation
  // per new connection; trace adds per-packet events.
  std::string level = "flows";
  uint32_t history = 4096;  // events kept for `sluicectl observe --last`
};

// Prometheus text endpoint (GET /metrics).
struct MetricsConfig {
  bool enabled = true;
  std::string address = "127.0.0.1:9962";  // IPv4:port or [IPv6]:port
};

struct HostPort {
  IpAddr ip;
  uint16_t port = 0;
};
// "127.0.0.1:9962", "[::1]:9962".
Result<HostPort> parse_host_port(const std::string& text);

// "off" -> SLUICE_EVENTS_OFF etc.; -1 for an unknown name.
int event_level_of(const std::string& name);

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
  // Service ranges (ClusterIP allocation; "" disables a family) and the
  // NodePort range "min-max".
  std::string service_cidr = "10.96.0.0/12";
  std::string service_cidr_v6 = "fd10:96::/108";
  std::string node_port_range = "30000-32767";
  ConntrackConfig conntrack;
  PolicyConfig policy;
  LbConfig lb;
  EventsConfig events;
  MetricsConfig metrics;
};

// "90", "90s", "5m", "6h", "1h30m", "2d" -> seconds. `field` names the
// key in the error.
Result<uint64_t> parse_duration(const std::string& text,
                                const std::string& field);

// Parses YAML text; `origin` names the file in error messages.
Result<AgentConfig> parse_config_yaml(const std::string& text,
                                      const std::string& origin);
Result<AgentConfig> load_config_file(const std::string& path);

// Checks values that are independent of the machine (log level, paths).
// Device existence is checked by the datapath, which knows the netns.
Status validate_config(const AgentConfig& cfg);

}  // namespace sluice

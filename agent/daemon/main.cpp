// sluice-agent: the node daemon.
//   sluice-agent [--config FILE] [--devices a,b] [--bpffs DIR] [--socket P]
//                [--state-dir DIR] [--log-level L] [--prefilter-deny C,..]
//                [--pod-cidr C] [--pod-cidr-v6 C] [--service-cidr C]
//                [--service-cidr-v6 C] [--node-port-range A-B] [--conntrack-max N]
//                [--conntrack-{tcp-established,tcp-closing,unreplied,other}-timeout D]
//                [--conntrack-gc-interval D] [--policy-endpoint-max-entries N]
//                [--lb-algorithm random|maglev] [--lb-maglev-table-size P]
//                [--lb-mode snat|dsr]
//                [--lb-socket-lb true|false] [--lb-socket-lb-cgroup DIR]
//                [--events-level off|drops|flows|trace] [--events-history N]
//                [--metrics-enabled true|false] [--metrics-address IP:PORT]
//   sluice-agent --cleanup [same flags]
// Flags win over the file; with no file, defaults apply.
#include <bpf/libbpf.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <map>

#include "config/config.h"
#include "daemon/agent.h"

namespace {

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list ap) {
  char buf[1024];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string s(buf);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  if (level == LIBBPF_WARN)
    spdlog::warn("libbpf: {}", s);
  else
    spdlog::debug("libbpf: {}", s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sluice node agent: eBPF/XDP dataplane"};
  std::string config_path;
  bool cleanup = false;
  std::vector<std::string> devices, deny;
  std::string bpffs, socket, state_dir, log_level, pod_cidr, pod_cidr_v6;
  std::string svc_cidr, svc_cidr_v6, node_ports;
  app.add_option("--config", config_path, "YAML config file");
  app.add_flag("--cleanup", cleanup,
               "detach and remove every program, link and pin, then exit");
  auto* o_dev = app.add_option("--devices", devices, "node devices (a,b)")
                    ->delimiter(',');
  auto* o_bpffs = app.add_option("--bpffs", bpffs, "root of every pin");
  auto* o_sock = app.add_option("--socket", socket, "API Unix socket");
  auto* o_state = app.add_option("--state-dir", state_dir, "state directory");
  auto* o_log = app.add_option("--log-level", log_level,
                               "trace|debug|info|warn|error|critical|off");
  auto* o_pod4 = app.add_option("--pod-cidr", pod_cidr,
                                "pod IPv4 range (\"\" disables IPv4)");
  auto* o_pod6 = app.add_option("--pod-cidr-v6", pod_cidr_v6,
                                "pod IPv6 range (\"\" disables IPv6)");
  auto* o_svc4 = app.add_option("--service-cidr", svc_cidr,
                                "service IPv4 range (\"\" disables IPv4)");
  auto* o_svc6 = app.add_option("--service-cidr-v6", svc_cidr_v6,
                                "service IPv6 range (\"\" disables IPv6)");
  auto* o_np = app.add_option("--node-port-range", node_ports,
                              "NodePort range, e.g. 30000-32767");
  auto* o_deny = app.add_option("--prefilter-deny", deny,
                                "prefilter deny CIDRs (a,b)")
                     ->delimiter(',');
  uint32_t ct_max = 0, pol_max = 0;
  auto* o_ct_max = app.add_option("--conntrack-max", ct_max,
                                  "conntrack table capacity (LRU)");
  // Durations: "6h", "90s", "1m30s" or seconds.
  std::map<std::string, std::string> ct_durations;
  std::vector<std::pair<CLI::Option*, std::string>> ct_opts;
  for (const char* k : {"tcp-established-timeout", "tcp-closing-timeout",
                        "unreplied-timeout", "other-timeout", "gc-interval"})
    ct_opts.push_back({app.add_option(std::string("--conntrack-") + k,
                                      ct_durations[k], "duration"),
                       k});
  std::string lb_algo;
  uint32_t maglev_m = 0;
  auto* o_lb_algo = app.add_option("--lb-algorithm", lb_algo,
                                   "default backend selection: random|maglev");
  std::string lb_mode;
  auto* o_lb_mode = app.add_option(
      "--lb-mode", lb_mode,
      "north-south to other nodes' backends: snat|dsr (IP-in-IP)");
  auto* o_maglev = app.add_option("--lb-maglev-table-size", maglev_m,
                                  "default Maglev table size (a prime)");
  std::string socket_lb, socket_lb_cgroup;
  auto* o_sock_lb = app.add_option("--lb-socket-lb", socket_lb,
                                   "socket-level ClusterIP balancing: true|false")
                        ->check(CLI::IsMember({"true", "false"}));
  auto* o_sock_lb_cg = app.add_option("--lb-socket-lb-cgroup", socket_lb_cgroup,
                                      "cgroup v2 directory of the socket hooks");
  auto* o_pol_max = app.add_option("--policy-endpoint-max-entries", pol_max,
                                   "policy map entries per endpoint");
  std::string ev_level, metrics_addr, metrics_on;
  uint32_t ev_history = 0;
  auto* o_ev_level = app.add_option("--events-level", ev_level,
                                    "flow events: off|drops|flows|trace");
  auto* o_ev_hist = app.add_option("--events-history", ev_history,
                                   "events kept for observe --last");
  auto* o_m_on = app.add_option("--metrics-enabled", metrics_on,
                                "Prometheus endpoint: true|false")
                     ->check(CLI::IsMember({"true", "false"}));
  auto* o_m_addr = app.add_option("--metrics-address", metrics_addr,
                                  "Prometheus endpoint IP:PORT");
  CLI11_PARSE(app, argc, argv);

  sluice::AgentConfig cfg;
  if (!config_path.empty()) {
    auto c = sluice::load_config_file(config_path);
    if (!c) {
      spdlog::error("{}", c.error());
      return 2;
    }
    cfg = std::move(*c);
  }
  if (*o_dev) cfg.devices = devices;
  if (*o_bpffs) cfg.bpffs = bpffs;
  if (*o_sock) cfg.socket = socket;
  if (*o_state) cfg.state_dir = state_dir;
  if (*o_log) cfg.log_level = log_level;
  if (*o_pod4) cfg.pod_cidr = pod_cidr;
  if (*o_pod6) cfg.pod_cidr_v6 = pod_cidr_v6;
  if (*o_svc4) cfg.service_cidr = svc_cidr;
  if (*o_svc6) cfg.service_cidr_v6 = svc_cidr_v6;
  if (*o_np) cfg.node_port_range = node_ports;
  if (*o_ct_max) cfg.conntrack.max = ct_max;
  if (*o_pol_max) cfg.policy.endpoint_max_entries = pol_max;
  if (*o_lb_algo) cfg.lb.algorithm = lb_algo;
  if (*o_maglev) cfg.lb.maglev_table_size = maglev_m;
  if (*o_lb_mode) cfg.lb.mode = lb_mode;
  if (*o_sock_lb) cfg.lb.socket_lb = socket_lb == "true";
  if (*o_sock_lb_cg) cfg.lb.socket_lb_cgroup = socket_lb_cgroup;
  if (*o_ev_level) cfg.events.level = ev_level;
  if (*o_ev_hist) cfg.events.history = ev_history;
  if (*o_m_on) cfg.metrics.enabled = metrics_on == "true";
  if (*o_m_addr) cfg.metrics.address = metrics_addr;
  for (const auto& [opt, k] : ct_opts) {
    if (!*opt) continue;
    auto d = sluice::parse_duration(ct_durations[k], "--conntrack-" + k);
    if (!d) {
      spdlog::error("{}", d.error());
      return 2;
    }
    auto& c = cfg.conntrack;
    (k == "tcp-established-timeout" ? c.tcp_established
     : k == "tcp-closing-timeout"   ? c.tcp_closing
     : k == "unreplied-timeout"     ? c.unreplied
     : k == "other-timeout"         ? c.other
                                    : c.gc_interval) = *d;
  }
  if (*o_deny) {
    cfg.prefilter.deny.clear();
    for (size_t i = 0; i < deny.size(); i++) {
      auto c = sluice::Cidr::parse(deny[i]);
      if (!c) {
        spdlog::error("--prefilter-deny[{}]: {}", i, c.error());
        return 2;
      }
      cfg.prefilter.deny.push_back(*c);
    }
  }
  if (auto s = sluice::validate_config(cfg); !s) {
    spdlog::error("config: {}", s.error());
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  libbpf_set_print(libbpf_log);
  ::umask(0077);  // pins, state files and the API socket: owner only

  if (cleanup) {
    auto s = sluice::Agent::cleanup(cfg);
    if (!s) {
      spdlog::error("cleanup: {}", s.error());
      return 1;
    }
    return 0;
  }

  // Signals are taken synchronously by wait_for_signal(); block them before
  // any thread exists so every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  sluice::Agent agent(cfg);
  if (auto s = agent.start(); !s) {
    spdlog::error("start: {}", s.error());
    return 1;
  }
  agent.wait_for_signal();
  return 0;
}

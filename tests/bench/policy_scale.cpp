// sluice-policy-scale: control-plane cost of NetworkPolicy at scale — the
// time from desired state to kernel maps for P policies over N local pods,
// the agent's peak memory doing it, and the time to get one changed policy
// (or one relabelled pod) into the maps with all of that in place.
//
// It drives the agent's own code (ClusterState, IdentityAllocator,
// PolicyEngine with the incremental compiler, PolicyMaps) against real
// kernel maps of a freshly loaded, unattached sluice_lxc object. The only
// stand-in is the endpoint table: it lists N endpoints without creating N
// veths, because veth creation is the CNI's cost, not policy's. Run via
// scripts/bench.sh; reports numbers, asserts nothing about time.
#include <CLI/CLI.hpp>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "endpoint/record.h"
#include "identity/allocator.h"
#include "policy/engine.h"
#include "sluice/abi.h"
#include "datapath/bpffs.h"
#include "datapath/lxc_datapath.h"
#include "state/cluster_state.h"
#include "state/file_store.h"

using namespace sluice;
using Clock = std::chrono::steady_clock;

namespace {

struct Shape {
  int pods = 1000, policies = 1000, namespaces = 50, apps = 100;
};

long max_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// CPU time of this process (user + system): unlike wall time it does not
// grow when other work shares the cores.
double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string ns_name(int i) { return "ns-" + std::to_string(i); }

// Pods: app-<k> (k cycles over `apps`), tier front/back, in namespaces
// round-robin; each serves http 8080 and metrics 9090.
std::string pods_yaml(const Shape& s) {
  std::ostringstream y;
  for (int i = 0; i < s.namespaces; i++)
    y << "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " << ns_name(i)
      << "\n  labels:\n    team: t" << i % 5 << "\n---\n";
  for (int i = 0; i < s.pods; i++)
    y << "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-" << i
      << "\n  namespace: " << ns_name(i % s.namespaces)
      << "\n  labels:\n    app: app-" << i % s.apps << "\n    tier: "
      << (i % 2 ? "front" : "back")
      << "\nspec:\n  containers:\n  - name: c\n    ports:\n"
         "    - name: http\n      containerPort: 8080\n"
         "    - name: metrics\n      containerPort: 9090\n---\n";
  return y.str();
}

// Policy i selects app-(i % apps) in its namespace and mixes the rule
// shapes real clusters use: pod selectors, namespace selectors, ipBlocks
// with except, numeric and named ports, egress.
std::string policy_yaml(const Shape& s, int i, int variant = 0) {
  std::ostringstream y;
  y << "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
    << "  name: pol-" << i << "\n  namespace: " << ns_name(i % s.namespaces)
    << "\nspec:\n  podSelector:\n    matchLabels:\n      app: app-"
    << i % s.apps << "\n";
  switch (i % 4) {
    case 0:
      y << "  ingress:\n  - from:\n    - podSelector:\n        matchLabels:\n"
        << "          app: app-" << (i + 1) % s.apps << "\n    ports:\n"
        << "    - port: " << 80 + (i + variant) % 20 << "\n";
      break;
    case 1:
      y << "  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels:\n"
        << "          team: t" << (i + variant) % 5 << "\n      podSelector:\n"
        << "        matchLabels:\n          tier: front\n    ports:\n"
        << "    - port: http\n";
      break;
    case 2:
      y << "  ingress:\n  - from:\n    - ipBlock:\n        cidr: 172."
        << 16 + i % 16 << "." << (i / 16) % 256 << ".0/24\n        except:\n"
        << "        - 172." << 16 + i % 16 << "." << (i / 16) % 256 << "."
        << (variant % 250) + 1 << "/32\n    ports:\n    - port: 443\n";
      break;
    default:
      y << "  policyTypes: [Egress]\n  egress:\n  - to:\n    - podSelector:\n"
        << "        matchLabels:\n          app: app-" << (i + 7 + variant) % s.apps
        << "\n    ports:\n    - port: metrics\n    - port: 53\n      protocol: UDP\n";
  }
  return y.str();
}

class SyntheticEndpoints : public LocalEndpoints {
 public:
  std::vector<EndpointRecord> list() const override { return eps_; }
  Status set_flags(const std::string& ns, const std::string& name,
                   uint32_t flags) override {
    for (auto& e : eps_)
      if (e.pod_namespace == ns && e.pod_name == name) e.flags = flags;
    return {};
  }
  std::vector<EndpointRecord> eps_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int quiet(enum libbpf_print_level level, const char* fmt, va_list args) {
  return level == LIBBPF_DEBUG ? 0 : std::vfprintf(stderr, fmt, args);
}

}  // namespace

int main(int argc, char** argv) {
  Shape s;
  int changes = 21;
  uint32_t ep_max = SLUICE_POLICY_ENTRIES_MAX;
  std::string json_out;
  CLI::App app{"sluice-policy-scale: NetworkPolicy compile-to-maps cost at scale"};
  app.add_option("--pods", s.pods, "local endpoints")->check(CLI::Range(1, 60000));
  app.add_option("--policies", s.policies, "NetworkPolicies")->check(CLI::Range(1, 100000));
  app.add_option("--namespaces", s.namespaces, "namespaces")->check(CLI::Range(1, 10000));
  app.add_option("--changes", changes, "single-policy changes to time (median reported)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--endpoint-max-entries", ep_max,
                 "most policy entries per endpoint (agent: policy.endpointMaxEntries)")
      ->check(CLI::Range(16u, 1u << 20));
  app.add_option("--json", json_out, "also write the results as JSON");
  bool verbose = false;
  app.add_flag("--verbose", verbose, "log every engine sync (compiled, installed, ms)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(verbose ? spdlog::level::info : spdlog::level::warn);
  if (geteuid() != 0) {
    std::fprintf(stderr, "sluice-policy-scale: must run as root (BPF maps)\n");
    return 2;
  }
  libbpf_set_print(quiet);

  const auto dir = std::filesystem::temp_directory_path() /
                   ("sluice-policy-scale-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path d;
    ~Cleanup() { std::filesystem::remove_all(d); }
  } cleanup{dir};

  auto store = FileStore::open(dir.string());
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().c_str());
    return 1;
  }
  ClusterState cluster(**store);
  IdentityAllocator ids(**store);
  // The agent's own loader, pinned under a private bpffs directory that
  // goes away with the run.
  const BpffsLayout layout{"/sys/fs/bpf/sluice-policy-scale-" +
                           std::to_string(getpid())};
  if (auto st = ensure_bpffs(layout); !st) {
    std::fprintf(stderr, "%s\n", st.error().c_str());
    return 1;
  }
  struct Unpin {
    std::string d;
    ~Unpin() { std::filesystem::remove_all(d); }
  } unpin{layout.root};
  auto lxc = LxcDatapath::load(layout);
  if (!lxc) {
    std::fprintf(stderr, "sluice-policy-scale: %s\n", lxc.error().c_str());
    return 1;
  }

  if (auto r = cluster.apply(pods_yaml(s), "pods"); !r) {
    std::fprintf(stderr, "%s\n", r.error().c_str());
    return 1;
  }
  SyntheticEndpoints eps;
  for (const auto& p : cluster.pods()) {
    EndpointRecord r;
    const int i = std::stoi(p.meta.name.substr(4));
    r.pod_namespace = p.meta.namespace_;
    r.pod_name = p.meta.name;
    r.container_id = "c" + std::to_string(i);
    r.ep_id = uint32_t(i + 1);
    r.host_ifindex = unsigned(1000 + i);
    r.ips = {*IpAddr::parse("10.200." + std::to_string(i / 250) + "." +
                            std::to_string(i % 250 + 1))};
    auto id = ids.acquire(
        pod_label_set(p.meta.labels, cluster.namespace_labels(p.meta.namespace_)));
    if (!id) {
      std::fprintf(stderr, "%s\n", id.error().c_str());
      return 1;
    }
    r.identity = *id;
    eps.eps_.push_back(r);
  }
  std::string all;
  for (int i = 0; i < s.policies; i++) all += policy_yaml(s, i) + "---\n";
  if (auto r = cluster.apply(all, "policies"); !r) {
    std::fprintf(stderr, "%s\n", r.error().c_str());
    return 1;
  }

  PolicyEngine engine(cluster, eps, (*lxc)->map_fd(SLUICE_MAP_POLICY),
                      (*lxc)->map_fd("sluice_pol_tmpl"),
                      (*lxc)->map_fd(SLUICE_MAP_IPCACHE), ep_max);
  const long rss0 = max_rss_kib();
  auto t0 = Clock::now();
  const double c0 = cpu_ms();
  auto full = engine.sync();
  const double full_ms = ms_since(t0), full_cpu_ms = cpu_ms() - c0;
  const long rss1 = max_rss_kib();
  if (!full) {
    std::fprintf(stderr, "sync: %s\n", full.error().c_str());
    return 1;
  }

  // One changed policy: re-apply policy k with another port/peer, each
  // time a different one; timed from apply (parse, validate, store) to
  // the maps, and the engine part alone.
  std::vector<double> change_ms, sync_ms;
  size_t installed = 0, compiled = 0;
  for (int c = 0; c < changes; c++) {
    const int k = (c * 37) % s.policies;
    t0 = Clock::now();
    auto r = cluster.apply(policy_yaml(s, k, c + 1), "change");
    const auto t1 = Clock::now();
    auto st = engine.sync();
    if (!r || !st) {
      std::fprintf(stderr, "change: %s\n", !r ? r.error().c_str() : st.error().c_str());
      return 1;
    }
    change_ms.push_back(ms_since(t0));
    sync_ms.push_back(ms_since(t1));
    installed += st->installed;
    compiled += st->compiled;
  }
  // One relabelled pod (its identity changes, peers follow).
  std::vector<double> relabel_ms;
  for (int c = 0; c < 5; c++) {
    auto& e = eps.eps_[size_t(c * 101) % eps.eps_.size()];
    k8s::Pod p;
    cluster.find_pod(e.pod_namespace, e.pod_name, &p);
    std::ostringstream y;
    y << "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " << e.pod_name
      << "\n  namespace: " << e.pod_namespace << "\n  labels:\n    app: app-"
      << (c * 13) % s.apps << "\n    tier: front\n";
    t0 = Clock::now();
    auto r = cluster.apply(y.str(), "relabel");
    auto id = ids.acquire(pod_label_set(
        {{"app", "app-" + std::to_string((c * 13) % s.apps)}, {"tier", "front"}},
        cluster.namespace_labels(e.pod_namespace)));
    if (!r || !id) return 1;
    e.identity = *id;
    auto st = engine.sync();
    if (!st) {
      std::fprintf(stderr, "relabel: %s\n", st.error().c_str());
      return 1;
    }
    relabel_ms.push_back(ms_since(t0));
  }

  std::printf("policy scale: %d policies, %d pods (local endpoints), %d namespaces, endpoint limit %u entries\n",
              s.policies, s.pods, s.namespaces, ep_max);
  std::printf("  full compile into maps     %9.1f ms  (CPU %.1f ms; compile %.1f ms, kernel %.1f ms; %zu endpoints, %zu maps)\n",
              full_ms, full_cpu_ms, full->compile_ms, full->kernel_ms, full->compiled, full->installed);
  std::printf("  peak agent RSS             %9.1f MiB (+%.1f MiB during the full compile)\n",
              rss1 / 1024.0, (rss1 - rss0) / 1024.0);
  std::printf("  one changed policy         %9.2f ms  median of %d (max %.2f), apply+sync; sync alone %.2f ms\n",
              median(change_ms), changes,
              *std::max_element(change_ms.begin(), change_ms.end()), median(sync_ms));
  std::printf("                                           %.1f endpoints compiled, %.1f maps installed per change\n",
              double(compiled) / changes, double(installed) / changes);
  std::printf("  one relabelled pod         %9.2f ms  median of 5\n", median(relabel_ms));
  if (!json_out.empty()) {
    nlohmann::json j{{"policies", s.policies},
                     {"pods", s.pods},
                     {"namespaces", s.namespaces},
                     {"full_ms", full_ms},
                     {"full_cpu_ms", full_cpu_ms},
                     {"peak_rss_mib", rss1 / 1024.0},
                     {"change_ms_median", median(change_ms)},
                     {"change_sync_ms_median", median(sync_ms)},
                     {"relabel_ms_median", median(relabel_ms)}};
    std::ofstream(json_out) << j.dump(2) << "\n";
  }
  return 0;
}

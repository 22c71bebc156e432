// sluice-lb-scale: control-plane cost of the service load balancer at
// scale — the time from desired state to kernel maps for S Services of B
// backends each, the agent's peak memory doing it, and the latency of one
// changed backend (one EndpointSlice re-applied) with all of that in place:
// the engine's sync alone (ClusterState's change feed -> maps written) and
// ClusterState::apply of the manifest plus that sync.
//
// It drives the agent's own code (ClusterState, LbEngine, LbMaps) against
// the real maps of a freshly loaded, unattached sluice_lxc object pinned
// under a private bpffs directory. Run via scripts/bench.sh; reports
// numbers, asserts nothing about time (targets: 10,000 x 10 within 2 s, one
// change within 10 ms).
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
#include <nlohmann/json.hpp>
#include <sstream>

#include "datapath/bpffs.h"
#include "datapath/lxc_datapath.h"
#include "lb/engine.h"
#include "sluice/abi.h"
#include "state/cluster_state.h"
#include "state/file_store.h"

using namespace sluice;
using Clock = std::chrono::steady_clock;

namespace {

struct Shape {
  int services = 10000, backends = 10, namespaces = 50;
  std::string algorithm = "random";
  uint32_t maglev_m = 1021;
};

long current_rss_kib() {
  long pages = 0, rss = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    std::fclose(f);
  }
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

long max_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string ns_name(const Shape& s, int i) {
  return "ns-" + std::to_string(i % s.namespaces);
}

// Backend j of Service i; variant v > 0 (the v-th change) replaces backend
// 0 with an address no other backend has. All in 10.128.0.0/9.
std::string backend_ip(const Shape& s, int i, int j, int v) {
  const long k = j == 0 && v ? long(s.services) * s.backends + v
                             : long(i) * s.backends + j;
  return "10." + std::to_string(128 + k / 62500) + "." +
         std::to_string(k / 250 % 250) + "." + std::to_string(k % 250 + 1);
}

std::string slice_yaml(const Shape& s, int i, int v = 0) {
  std::ostringstream y;
  y << "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
    << "  name: svc-" << i << "-1\n  namespace: " << ns_name(s, i)
    << "\n  labels: {kubernetes.io/service-name: svc-" << i
    << "}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n";
  for (int j = 0; j < s.backends; j++)
    y << "- addresses: [" << backend_ip(s, i, j, v) << "]\n";
  return y.str();
}

// Service i; `weight` > 0 gives its backend 1 that weight (a changed
// Service object: its slots change).
std::string service_yaml(const Shape& s, int i, int weight = 0) {
  std::ostringstream y;
  y << "apiVersion: v1\nkind: Service\nmetadata: {name: svc-" << i
    << ", namespace: " << ns_name(s, i);
  if (weight)
    y << ", annotations: {sluice.io/backend-weights: \"" << backend_ip(s, i, 1, 0)
      << "=" << weight << "\"}";
  y << "}\nspec: {ports: [{name: http, port: 80, targetPort: 8080}]}\n";
  return y.str();
}

std::string state_yaml(const Shape& s) {
  std::ostringstream y;
  for (int n = 0; n < s.namespaces; n++)
    y << "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-" << n
      << "}\n---\n";
  for (int i = 0; i < s.services; i++)
    y << service_yaml(s, i) << "---\n" << slice_yaml(s, i) << "---\n";
  return y.str();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int quiet(enum libbpf_print_level level, const char* fmt, va_list args) {
  return level == LIBBPF_DEBUG ? 0 : std::vfprintf(stderr, fmt, args);
}

class NoEndpoints : public LocalEndpoints {
 public:
  std::vector<EndpointRecord> list() const override { return {}; }
  Status set_flags(const std::string&, const std::string&, uint32_t) override {
    return {};
  }
};

int die(const std::string& what) {
  std::fprintf(stderr, "sluice-lb-scale: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Shape s;
  int changes = 20;
  std::string json_out;
  CLI::App app{"sluice-lb-scale: Services to load-balancer maps at scale"};
  app.add_option("--services", s.services, "Services (one port each)")
      ->check(CLI::Range(1, 60000));
  app.add_option("--backends", s.backends, "backends per Service")
      ->check(CLI::Range(1, 1000));
  app.add_option("--changes", changes, "single-backend changes to time")
      ->check(CLI::Range(1, 1000));
  app.add_option("--algorithm", s.algorithm, "random|maglev")
      ->check(CLI::IsMember({"random", "maglev"}));
  app.add_option("--maglev-table-size", s.maglev_m, "M with --algorithm maglev");
  app.add_option("--json", json_out, "also write the results as JSON");
  bool verbose = false;
  app.add_flag("--verbose", verbose, "log every engine sync");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(verbose ? spdlog::level::info : spdlog::level::warn);
  if (long(s.services) * s.backends + changes >= 7'900'000L)
    return die("--services x --backends: too many addresses for 10.128.0.0/9");
  if (geteuid() != 0) return die("must run as root (BPF maps)");
  libbpf_set_print(quiet);

  // The state store on tmpfs when there is one: its fsyncs are the
  // store's cost (20,000 objects), not the load balancer's.
  const std::filesystem::path tmp = std::filesystem::is_directory("/dev/shm")
                                        ? "/dev/shm"
                                        : std::filesystem::temp_directory_path();
  const auto dir = tmp / ("sluice-lb-scale-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path d;
    ~Cleanup() { std::filesystem::remove_all(d); }
  } cleanup{dir};
  auto store = FileStore::open(dir.string());
  if (!store) return die(store.error());
  ClusterState cluster(**store);
  const BpffsLayout layout{"/sys/fs/bpf/sluice-lb-scale-" +
                           std::to_string(getpid())};
  if (auto st = ensure_bpffs(layout); !st) return die(st.error());
  struct Unpin {
    std::string d;
    ~Unpin() { std::filesystem::remove_all(d); }
  } unpin{layout.root};
  auto lxc = LxcDatapath::load(layout);
  if (!lxc) return die(lxc.error());

  auto t0 = Clock::now();
  if (auto r = cluster.apply(state_yaml(s), "state"); !r) return die(r.error());
  const double apply_ms = ms_since(t0);

  NoEndpoints eps;
  LbEngineConfig cfg;
  cfg.algorithm = s.algorithm == "maglev" ? k8s::LbAlgorithm::Maglev
                                          : k8s::LbAlgorithm::Random;
  cfg.maglev_table_size = s.maglev_m;
  auto& dp = **lxc;
  auto engine = LbEngine::create(
      cluster, eps,
      {dp.map_fd(SLUICE_MAP_LB_SVC), dp.map_fd(SLUICE_MAP_LB_SLOTS),
       dp.map_fd(SLUICE_MAP_LB_MAGLEV), dp.map_fd("sluice_lb_mg_tmpl"),
       dp.map_fd(SLUICE_MAP_LB_BE), dp.map_fd(SLUICE_MAP_LB_AFFINITY),
       dp.map_fd(SLUICE_MAP_LB_BE_CONNS)},
      cfg);
  if (!engine) return die(engine.error());

  const long rss0 = max_rss_kib(), cur0 = current_rss_kib();
  t0 = Clock::now();
  const double c0 = cpu_ms();
  auto full = (*engine)->sync();
  const double full_ms = ms_since(t0), full_cpu_ms = cpu_ms() - c0;
  const long rss1 = max_rss_kib();
  if (!full) return die("sync: " + full.error());

  // One changed backend: Service k's slice re-applied with backend 0
  // replaced, a different Service each time.
  const long rss_now = current_rss_kib();
  std::vector<double> change_ms, sync_ms, feed_ms, apply_one_ms, maps_ms;
  size_t recomputed = 0;
  size_t writes = 0, deletes = 0;
  for (int c = 0; c < changes; c++) {
    const int k = (c * 37) % s.services;
    t0 = Clock::now();
    auto r = cluster.apply(slice_yaml(s, k, c + 1), "change");
    const auto t1 = Clock::now();
    auto st = (*engine)->sync();
    if (!r || !st) return die("change: " + (!r ? r.error() : st.error()));
    change_ms.push_back(ms_since(t0));
    sync_ms.push_back(ms_since(t1));
    apply_one_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    feed_ms.push_back(st->feed_ms);
    maps_ms.push_back(st->kernel_ms);
    recomputed += st->recomputed;
    writes += st->writes;
    deletes += st->deletes;
  }
  // One changed Service object (a weight annotation on one backend).
  std::vector<double> svc_sync_ms, svc_change_ms;
  size_t svc_writes = 0;
  for (int c = 0; c < changes; c++) {
    const int k = (c * 53 + 11) % s.services;
    t0 = Clock::now();
    auto r = cluster.apply(service_yaml(s, k, 100 * (2 + c % 3)), "change");
    const auto t1 = Clock::now();
    auto st = (*engine)->sync();
    if (!r || !st) return die("change: " + (!r ? r.error() : st.error()));
    svc_change_ms.push_back(ms_since(t0));
    svc_sync_ms.push_back(ms_since(t1));
    svc_writes += st->writes + st->deletes;
  }
  t0 = Clock::now();
  auto idle = (*engine)->sync();
  const double idle_ms = ms_since(t0);
  if (!idle) return die(idle.error());

  std::printf("lb scale: %d Services x %d backends (%s%s), %d namespaces\n",
              s.services, s.backends, s.algorithm.c_str(),
              s.algorithm == "maglev" ? (" M=" + std::to_string(s.maglev_m)).c_str() : "",
              s.namespaces);
  std::printf("  apply manifests (not LB)   %9.1f ms\n", apply_ms);
  std::printf("  full sync into maps        %9.1f ms  (CPU %.1f ms; compute %.1f ms of which feed %.1f ms,"
              " program %.1f ms; maps %.1f ms; %zu writes)\n",
              full_ms, full_cpu_ms, full->compute_ms, full->feed_ms, full->program_ms,
              full->kernel_ms, full->writes);
  std::printf("  peak RSS                   %9.1f MiB (+%.1f MiB during the full sync; current RSS %.1f -> %.1f"
              " MiB across it)\n",
              rss1 / 1024.0, (rss1 - rss0) / 1024.0, cur0 / 1024.0, rss_now / 1024.0);
  auto mx = [](const std::vector<double>& v) {
    return *std::max_element(v.begin(), v.end());
  };
  std::printf("  one changed backend        %9.2f ms  engine sync (apply -> maps written), median of %d (max %.2f);"
              " of which reading the change feed %.3f ms, writing the maps %.2f ms\n",
              median(sync_ms), changes, mx(sync_ms), median(feed_ms), median(maps_ms));
  std::printf("                             %9.2f ms  ClusterState::apply of the slice + sync, median (max %.2f);"
              " apply alone %.2f ms (parse, validate, store)\n",
              median(change_ms), mx(change_ms), median(apply_one_ms));
  std::printf("                                          %.1f writes, %.1f deletes, %.1f Services recomputed per change\n",
              double(writes) / changes, double(deletes) / changes,
              double(recomputed) / changes);
  std::printf("  one changed Service        %9.2f ms  engine sync, median of %d (max %.2f); apply+sync %.2f ms"
              " (max %.2f); %.1f map operations per change\n",
              median(svc_sync_ms), changes, mx(svc_sync_ms), median(svc_change_ms),
              mx(svc_change_ms), double(svc_writes) / changes);
  std::printf("  sync with nothing changed  %9.2f ms\n", idle_ms);
  if (!json_out.empty()) {
    nlohmann::json j{{"services", s.services},
                     {"backends", s.backends},
                     {"algorithm", s.algorithm},
                     {"full_ms", full_ms},
                     {"full_cpu_ms", full_cpu_ms},
                     {"peak_rss_mib", rss1 / 1024.0},
                     {"change_sync_ms_median", median(sync_ms)},
                     {"change_sync_ms_max", mx(sync_ms)},
                     {"change_apply_sync_ms_median", median(change_ms)},
                     {"change_apply_sync_ms_max", mx(change_ms)},
                     {"change_feed_ms_median", median(feed_ms)},
                     {"service_change_sync_ms_median", median(svc_sync_ms)},
                     {"service_change_apply_sync_ms_median", median(svc_change_ms)},
                     {"idle_sync_ms", idle_ms}};
    std::ofstream(json_out) << j.dump(2) << "\n";
  }
  return 0;
}

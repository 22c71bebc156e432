#include "daemon/agent.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <optional>

#include "api/server.h"
#include "datapath/conntrack.h"
#include "datapath/neigh_requests.h"
#include "endpoint/netlink.h"
#include "sluice/abi.h"

namespace sluice {
namespace {

// NodePort traffic is translated at XDP and then routed by this network
// namespace's stack to the pod's veth (and the pod's replies back out of
// the device): with node devices configured the namespace must forward,
// as every Kubernetes node does. Per network namespace; never touched
// without devices.
Status enable_forwarding(const std::vector<std::string>& devices) {
  if (devices.empty()) return {};
  for (const char* path : {"/proc/sys/net/ipv4/ip_forward",
                           "/proc/sys/net/ipv6/conf/all/forwarding"}) {
    std::ofstream f(path);
    if (!(f << "1\n") || !f.flush())
      return err(std::string("enable forwarding: write ") + path + ": " +
                 errno_str(errno));
  }
  spdlog::info("forwarding enabled (node devices configured)");
  return {};
}

}  // namespace

Agent::Agent(AgentConfig cfg) : cfg_(std::move(cfg)), layout_{cfg_.bpffs} {}

Agent::~Agent() {
  stopping_ = true;
  metrics_.reset();
  if (ct_gc_.joinable()) ct_gc_.join();
  if (api_) api_->shutdown();
  if (events_) events_->stop();
}

Status Agent::start() {
  // Unknown devices fail the start before anything is loaded or attached.
  for (const auto& d : cfg_.devices)
    if (auto idx = device_ifindex(d); !idx) return Error{idx.error()};

  if (auto s = ensure_bpffs(layout_); !s) return s;
  auto store = FileStore::open(cfg_.state_dir);
  if (!store) return Error{store.error()};
  store_ = std::move(*store);
  if (auto s = store_->lock(); !s) return s;
  auto ranges = lb::ServiceRanges::parse(
      cfg_.service_cidr, cfg_.service_cidr_v6, cfg_.node_port_range);
  if (!ranges) return Error{ranges.error()};
  cluster_ = std::make_unique<ClusterState>(*store_, std::move(*ranges));
  if (auto s = cluster_->restore(); !s) return s;
  identities_ = std::make_unique<IdentityAllocator>(*store_);
  if (auto s = identities_->restore(); !s) return s;

  // sluice_lxc first: it sizes the maps both programs share (pins).
  auto lxc = LxcDatapath::load(layout_, {cfg_.conntrack.max});
  if (!lxc) return Error{lxc.error()};
  lxc_ = std::move(*lxc);
  auto xdp = XdpDatapath::load(layout_, cfg_.conntrack.max);
  if (!xdp) return Error{xdp.error()};
  xdp_ = std::move(*xdp);
  if (auto s = xdp_->set_event_level(
          uint32_t(event_level_of(cfg_.events.level)));
      !s)
    return s;
  if (auto s = xdp_->set_lb_dsr(cfg_.lb.mode == "dsr"); !s) return s;
  if (auto s = enable_forwarding(cfg_.devices); !s) return s;

  std::optional<Cidr> pod4, pod6;
  if (!cfg_.pod_cidr.empty()) pod4 = *Cidr::parse(cfg_.pod_cidr);
  if (!cfg_.pod_cidr_v6.empty()) pod6 = *Cidr::parse(cfg_.pod_cidr_v6);
  auto ipam = Ipam::create(*store_, pod4, pod6);
  if (!ipam) return Error{ipam.error()};
  ipam_ = std::move(*ipam);
  if (auto s = ipam_->restore(); !s) return s;
  endpoints_ = std::make_unique<EndpointManager>(*store_, *ipam_, *identities_,
                                                 *cluster_, *lxc_);
  if (auto s = endpoints_->restore(); !s) return s;
  if (auto s = identities_->gc_unused(); !s) return s;
  policy_ = std::make_unique<PolicyEngine>(
      *cluster_, *endpoints_, lxc_->map_fd(SLUICE_MAP_POLICY),
      lxc_->map_fd("sluice_pol_tmpl"), lxc_->map_fd(SLUICE_MAP_IPCACHE),
      cfg_.policy.endpoint_max_entries);
  if (auto s = policy_->sync(); !s) return Error{s.error()};
  if (auto s = start_lb(); !s) return s;
  if (auto s = start_socket_lb(); !s) return s;

  // Desired state reaches the maps before the (new) program is attached.
  auto deny = DenyMaps::open({xdp_->map_fd(SLUICE_MAP_PF_V4),
                              xdp_->map_fd(SLUICE_MAP_PF_V6),
                              xdp_->map_fd(SLUICE_MAP_PF_V4_BM),
                              xdp_->map_fd(SLUICE_MAP_PF_V6_BM)});
  if (!deny) return Error{deny.error()};
  deny_maps_ = std::move(*deny);
  prefilter_ = std::make_unique<Prefilter>(*deny_maps_, *store_,
                                           cfg_.prefilter.deny,
                                           SLUICE_PREFILTER_MAX);
  if (auto s = prefilter_->restore(); !s) return s;

  if (auto s = xdp_->attach(cfg_.devices); !s) return s;

  events_ = std::make_unique<Observer>(
      xdp_->map_fd(SLUICE_MAP_EVENTS), xdp_->map_fd(SLUICE_MAP_COUNTERS),
      Observer::Options{cfg_.events.history});
  if (auto s = events_->start(); !s) return s;

  // Conntrack GC: expired entries go every conntrack.gcInterval (the LRU
  // bounds the table regardless; GC keeps idle flows from pinning their
  // policy verdict).
  ct_gc_ = std::thread([this] {
    const int fd = lxc_->map_fd(SLUICE_MAP_CT);
    const int conns = lxc_->map_fd(SLUICE_MAP_LB_BE_CONNS);
    const int epoch = lxc_->map_fd(SLUICE_MAP_EP_EPOCH);
    const CtTimeouts t{cfg_.conntrack.tcp_established,
                       cfg_.conntrack.tcp_closing, cfg_.conntrack.unreplied,
                       cfg_.conntrack.other};
    const uint64_t every = cfg_.conntrack.gc_interval * 5;  // 200 ms ticks
    // Next hops XDP forwarding asked for (node devices only).
    const int neigh = xdp_->map_fd(SLUICE_MAP_NP_NEIGH);
    std::optional<Netlink> nl;
    if (!cfg_.devices.empty()) {
      auto n = Netlink::open();
      if (n) nl.emplace(std::move(*n));
      else spdlog::warn("neighbour requests: {}", n.error());
    }
    for (uint64_t tick = 1; !stopping_; tick++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (nl) {
        auto r = resolve_neighbour_requests(neigh, *nl);
        if (!r) spdlog::warn("{}", r.error());
        else if (*r) spdlog::info("added {} managed neighbour(s) for XDP forwarding", *r);
      }
      if (tick % every) continue;
      auto n = ct_gc(fd, ct_now_jiffies(), ct_hz(), t, conns, epoch);
      if (!n) {
        spdlog::warn("conntrack gc: {}", n.error());
        health_.errors++;
      } else if (*n) spdlog::debug("conntrack gc: {} expired entries", *n);
    }
  });

  health_.synced();
  if (cfg_.metrics.enabled) {
    auto hp = parse_host_port(cfg_.metrics.address);
    if (!hp) return err("metrics.address: " + hp.error());
    auto m = MetricsServer::start(hp->ip, hp->port,
                                  [this] { return prometheus_text(metrics_snapshot()); });
    if (!m) return Error{m.error()};
    metrics_ = std::move(*m);
  }
  api_ = std::make_unique<ApiServer>(*this);
  if (auto s = api_->start(cfg_.socket); !s) return s;
  spdlog::info("agent ready: {} device(s), bpffs {}, socket {}",
               cfg_.devices.size(), cfg_.bpffs, cfg_.socket);
  return {};
}

Status Agent::start_lb() {
  LbEngineConfig c;
  c.algorithm = cfg_.lb.algorithm == "maglev" ? k8s::LbAlgorithm::Maglev
                                              : k8s::LbAlgorithm::Random;
  c.maglev_table_size = cfg_.lb.maglev_table_size;
  // Read at every sync: node ports follow the devices' addresses.
  c.node_addresses = [devices = cfg_.devices] {
    return device_addresses(devices);
  };
  const lb::LbMapFds fds{lxc_->map_fd(SLUICE_MAP_LB_SVC),
                         lxc_->map_fd(SLUICE_MAP_LB_SLOTS),
                         lxc_->map_fd(SLUICE_MAP_LB_MAGLEV),
                         lxc_->map_fd("sluice_lb_mg_tmpl"),
                         lxc_->map_fd(SLUICE_MAP_LB_BE),
                         lxc_->map_fd(SLUICE_MAP_LB_AFFINITY),
                         lxc_->map_fd(SLUICE_MAP_LB_BE_CONNS),
                         lxc_->map_fd(SLUICE_MAP_LB_GATE)};
  auto lb = LbEngine::create(*cluster_, *endpoints_, fds, std::move(c));
  if (!lb) return Error{lb.error()};
  lb_ = std::move(*lb);
  // Not fatal: a desired state the maps cannot hold (capacity) must not
  // keep the agent, and with it the API that could fix it, from starting.
  // The pinned maps stay as they were; every reconcile retries.
  if (auto s = lb_->sync(); !s) {
    spdlog::error("lb: initial sync failed, maps left as pinned: {}", s.error());
    health_.lb_restored = 0;
    health_.errors++;
  }
  return {};
}

// After start_lb: the hooks translate from the load balancer's maps, which
// must hold the desired state before a socket can be sent anywhere by them.
Status Agent::start_socket_lb() {
  if (!cfg_.lb.socket_lb) return SockDatapath::detach(layout_);
  auto sock = SockDatapath::load(layout_, cfg_.conntrack.max);
  if (!sock) return Error{sock.error()};
  sock_ = std::move(*sock);
  sock_netns_ = std::make_unique<SockNetns>(sock_->map_fd(SLUICE_MAP_SOCK_NETNS));
  if (auto s = sock_netns_->sync(endpoints_->list()); !s) return s;
  if (auto s = sock_->attach(cfg_.lb.socket_lb_cgroup); !s) return s;
  spdlog::info("socket LB: attached to {} ({} links)", cfg_.lb.socket_lb_cgroup,
               sock_->link_ids().size());
  return {};
}

Status Agent::reconcile() {
  if (auto s = endpoints_->refresh_identities(); !s) return s;
  if (auto s = policy_->sync(); !s) return Error{s.error()};
  // Backends follow endpoints too: a selector's pods are known by the
  // addresses of local endpoints.
  if (auto s = lb_->sync(); !s) return Error{s.error()};
  // A pod's sockets are translated from its CNI ADD to its DEL.
  if (sock_netns_)
    if (auto s = sock_netns_->sync(endpoints_->list()); !s) return s;
  return {};
}

void Agent::wait_for_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("signal {}: stopping; the datapath stays attached", sig);
}

Status Agent::cleanup(const AgentConfig& cfg) {
  BpffsLayout layout{cfg.bpffs};
  if (auto s = ensure_bpffs(layout); !s) return s;
  auto s = XdpDatapath::cleanup(layout);
  if (::unlink(cfg.socket.c_str()) && errno != ENOENT)
    spdlog::warn("cleanup: remove socket {}: {}", cfg.socket,
                 errno_str(errno));
  if (s) spdlog::info("cleanup: removed every link and pin under {}", cfg.bpffs);
  return s;
}

}  // namespace sluice

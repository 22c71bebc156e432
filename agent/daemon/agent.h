// The agent: owns the datapath objects, the desired state and the API
// server for one node (one bpffs root, one state directory, one socket).
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "config/config.h"
#include "datapath/bpffs.h"
#include "datapath/lxc_datapath.h"
#include "datapath/sock_datapath.h"
#include "datapath/xdp_datapath.h"
#include "endpoint/ipam.h"
#include "endpoint/manager.h"
#include "observe/metrics.h"
#include "observe/observer.h"
#include "identity/allocator.h"
#include "lb/engine.h"
#include "policy/engine.h"
#include "prefilter/prefilter.h"
#include "state/cluster_state.h"
#include "state/file_store.h"

namespace sluice {

class ApiServer;

// Agent health for metrics: last successful sync, errors, restore results.
struct AgentHealth {
  std::atomic<int64_t> last_sync_ms{0};  // Unix ms, 0 = never
  std::atomic<uint64_t> errors{0};
  std::atomic<int> lb_restored{1};
  void synced();  // now
};

class Agent {
 public:
  explicit Agent(AgentConfig cfg);
  ~Agent();

  // Mounts/validates bpffs, loads and pins, restores desired state,
  // attaches, starts the event reader and the API. Nothing is attached
  // unless every configured device exists.
  Status start();
  // Blocks until SIGTERM/SIGINT; the datapath stays attached on return.
  void wait_for_signal();

  // `sluice-agent --cleanup`: detach and unpin everything under the bpffs
  // root and remove the socket. State is kept (see docs/architecture.md).
  static Status cleanup(const AgentConfig& cfg);

  const AgentConfig& config() const { return cfg_; }
  XdpDatapath& xdp() { return *xdp_; }
  Prefilter& prefilter() { return *prefilter_; }
  Observer& events() { return *events_; }
  ClusterState& cluster() { return *cluster_; }
  IdentityAllocator& identities() { return *identities_; }
  EndpointManager& endpoints() { return *endpoints_; }
  PolicyEngine& policy() { return *policy_; }
  LbEngine& lb() { return *lb_; }
  LxcDatapath& lxc() { return *lxc_; }
  // After desired state changed (manifests applied or deleted, endpoints
  // added or deleted): identities, policies and the load balancer follow.
  Status reconcile();
  const BpffsLayout& layout() const { return layout_; }
  AgentHealth& health() { return health_; }
  // What GET /metrics exports (agent/daemon/agent_metrics.cpp).
  MetricsSnapshot metrics_snapshot();
  uint16_t metrics_port() const { return metrics_ ? metrics_->port() : 0; }

 private:
  Status start_lb();
  Status start_socket_lb();

  AgentConfig cfg_;
  BpffsLayout layout_;
  std::unique_ptr<FileStore> store_;
  std::unique_ptr<ClusterState> cluster_;
  std::unique_ptr<IdentityAllocator> identities_;
  std::unique_ptr<XdpDatapath> xdp_;
  std::unique_ptr<LxcDatapath> lxc_;
  std::unique_ptr<Ipam> ipam_;
  std::unique_ptr<EndpointManager> endpoints_;
  std::unique_ptr<PolicyEngine> policy_;
  std::unique_ptr<LbEngine> lb_;
  std::unique_ptr<SockDatapath> sock_;     // lb.socketLB only
  std::unique_ptr<SockNetns> sock_netns_;  // lb.socketLB only
  std::unique_ptr<DenyMaps> deny_maps_;
  std::unique_ptr<Prefilter> prefilter_;
  std::unique_ptr<Observer> events_;
  std::unique_ptr<ApiServer> api_;
  std::unique_ptr<MetricsServer> metrics_;
  AgentHealth health_;
  std::thread ct_gc_;
  std::atomic<bool> stopping_{false};
};

}  // namespace sluice

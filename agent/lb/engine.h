// Keeps the load-balancer maps equal to the desired state: computes the
// program (lb/program.h) from the Services, EndpointSlices, Pods, local
// endpoints and node addresses, gives ids to backend sets (svc ids) and
// backends, and writes only what differs from what it wrote before.
//
// Order, so that no packet meets a half-made state: new backends, then
// the sets' slots or Maglev tables (a new inner map swapped in whole),
// then the frontends (sluice_lb_svc, count last: a set grows only once its
// slots exist); removals in reverse: frontends, slots beyond a set's count
// and tables no frontend uses, then backends nothing names any more.
// Each of those steps is one batched update (BPF_MAP_UPDATE_BATCH) where
// the map allows it; new Maglev tables are swapped in 256 at a time. The desired state comes from ClusterState's change
// feed: a sync reads only what changed since the last one, and the
// ProgramBuilder recomputes only the Services that can reach.
// Capacity is checked before the first write; a failed check leaves the
// maps as they were. A kernel error half-way makes the next sync re-read
// the maps (they are the truth) before it writes anything.
//
// Ids are stable: a set keeps its svc id and a backend (family, ip, port)
// its backend id as long as anything uses them (conntrack and affinity
// entries hold both), and ids are handed out next-fit, so a freed id is
// not reused at once. On the first sync the engine ADOPTS what is pinned:
// backend ids by address, svc ids by the frontends that use them, slot
// layouts and Maglev tables as they are, so a restarted agent writes only
// what changed while it was away.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "endpoint/record.h"
#include "lb/lb_maps.h"
#include "lb/program.h"
#include "state/cluster_state.h"

namespace sluice {

struct LbEngineConfig {
  k8s::LbAlgorithm algorithm = k8s::LbAlgorithm::Random;  // lb.algorithm
  uint32_t maglev_table_size = 16381;                     // lb.maglevTableSize
  // Addresses node ports are served on (the agent: every address of its
  // configured devices); unset = none.
  std::function<std::vector<IpAddr>()> node_addresses;
  lb::Limits limits;  // the ABI's; tests make them small
};

// IPv4 and IPv6 addresses of these devices in the calling thread's netns
// (IPv6 link-local ones excluded: not reachable from another node).
std::vector<IpAddr> device_addresses(const std::vector<std::string>& devices);

class LbEngine {
 public:
  static Result<std::unique_ptr<LbEngine>> create(ClusterState& cluster,
                                                  LocalEndpoints& endpoints,
                                                  const lb::LbMapFds& fds,
                                                  LbEngineConfig cfg);

  struct SyncStats {
    size_t frontends = 0, sets = 0, backends = 0;  // programmed
    size_t writes = 0, deletes = 0;                // map operations
    size_t tables = 0;                             // Maglev tables swapped
    size_t recomputed = 0;  // Services whose part of the program changed
    bool adopted = false;  // read the pinned maps first
    // compute_ms includes feed_ms: reading what changed out of
    // ClusterState (ClusterState::changes_since; every object on the
    // first sync).
    // program_ms: the ProgramBuilder's part of compute_ms.
    double feed_ms = 0, program_ms = 0, compute_ms = 0, kernel_ms = 0;
  };
  Result<SyncStats> sync();

  // A frontend as the maps hold it (read back, not remembered), with the
  // names the engine knows for its svc id.
  struct BackendRow {
    uint32_t id = 0;
    std::optional<lb::BackendAddr> addr;  // unset: id not in sluice_lb_be
    uint32_t share = 0;   // slots (random) or table entries (Maglev)
    uint32_t weight = 0;  // as configured; 0 = unknown to the engine
  };
  struct FrontendRow {
    lb::FrontendKey key;
    sluice_lb_svc value{};
    std::string service, port;  // "" when the svc id is unknown
    std::vector<BackendRow> backends;
  };
  Result<std::vector<FrontendRow>> list();

  struct Token {
   private:
    Token() = default;
    friend class LbEngine;
  };
  LbEngine(Token, ClusterState& cluster, LocalEndpoints& endpoints,
           lb::LbMaps maps, LbEngineConfig cfg);

 private:
  // What the maps hold for one svc id.
  struct WrittenSet {
    std::optional<lb::SetRef> ref;  // unset: adopted, not claimed yet
    // What was written; unset when adopted (the slots and table are
    // known, the weights behind them are not).
    std::optional<lb::BackendSet> desired;
    bool maglev = false;
    uint32_t maglev_m = 0;
    std::vector<uint32_t> slots;  // random: backend id per slot (0: none)
    bool has_table = false;
    std::vector<uint32_t> names;  // backend ids its slots/table name, sorted
  };
  struct Plan;

  Status adopt();
  Result<Plan> plan(const lb::Program& p, const lb::ProgramDelta& d, bool all);
  Status write(Plan& plan, SyncStats& st);
  void forget();  // after a kernel error: re-read the maps next time

  ClusterState& cluster_;
  LocalEndpoints& endpoints_;
  lb::LbMaps maps_;
  LbEngineConfig cfg_;
  std::mutex mu_;
  bool adopted_ = false;
  bool full_next_ = true;  // look at every set, not only what changed
  lb::ProgramBuilder builder_;
  // Inputs of the last successful sync, to skip one that has nothing to do
  // and to ask ClusterState only for what changed since.
  uint64_t generation_ = 0;
  decltype(lb::ProgramContext::local_pods) local_;
  std::vector<IpAddr> nodes_;
  size_t slots_total_ = 0;  // slot entries in the map
  std::map<uint32_t, WrittenSet> sets_;  // by svc id
  std::map<lb::SetRef, uint32_t> set_ids_;
  std::map<lb::BackendAddr, uint32_t> be_ids_;
  std::map<uint32_t, lb::BackendAddr> be_addr_;
  std::unordered_map<uint32_t, uint32_t> be_refs_;  // sets naming each id
  std::map<lb::FrontendKey, sluice_lb_svc> svc_;
  std::set<uint32_t> conns_;  // backend ids with a sluice_lb_conns entry
  uint32_t next_set_ = 1, next_be_ = 1;  // next-fit cursors
  std::set<std::string> warned_;
};

}  // namespace sluice

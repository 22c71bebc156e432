// Keeps the kernel's policy state equal to the compiled NetworkPolicies:
// per-endpoint policy maps (swapped whole), enforcement flags, and the
// ipcache entries for pod addresses and policy CIDRs. Incremental: each
// sync recompiles only the endpoints a change can reach and writes only
// what differs (policy/incremental.h).
#pragma once

#include <map>
#include <mutex>
#include <tuple>

#include "common/result.h"
#include "datapath/policy_maps.h"
#include "endpoint/record.h"
#include "policy/compiler.h"
#include "policy/incremental.h"
#include "state/cluster_state.h"

namespace sluice {

class PolicyEngine {
 public:
  PolicyEngine(ClusterState& cluster, LocalEndpoints& endpoints,
               int policy_outer_fd, int policy_template_fd, int ipcache_fd,
               uint32_t endpoint_capacity = SLUICE_POLICY_ENTRIES_MAX);

  struct SyncStats {
    size_t compiled = 0;   // endpoints recompiled
    size_t installed = 0;  // endpoint policy maps swapped
    size_t ipcache_writes = 0;
    bool full = false;
    double compile_ms = 0, kernel_ms = 0;  // where the time went
  };

  // Brings the kernel up to date. Compilation errors (e.g. too many port
  // ranges) leave the kernel state untouched; a kernel error half-way makes
  // the next sync rewrite everything.
  Result<SyncStats> sync();

  const policy::RuleTable& rules() const { return rules_; }
  // The cluster view used by the compiler (for `policy trace`).
  policy::Cluster cluster_view() const;

 private:
  Result<SyncStats> apply(const policy::IncrementalCompiler::Delta& d,
                          const std::vector<EndpointRecord>& eps);

  ClusterState& cluster_;
  LocalEndpoints& endpoints_;
  PolicyMaps maps_;
  int ipcache_fd_;
  std::mutex mu_;
  policy::CidrIdentities cidrs_;
  policy::RuleTable rules_;
  policy::IncrementalCompiler compiler_;
  // Which incarnation of each endpoint holds the policy we installed: an
  // endpoint re-created under the same pod starts without one.
  using Incarnation = std::tuple<std::string, unsigned, uint32_t>;
  std::map<policy::PodRef, Incarnation> incarnations_;
};

}  // namespace sluice

// Keeps the kernel's policy state equal to the compiled NetworkPolicies:
// per-endpoint policy maps (swapped whole), enforcement flags, and the
// ipcache entries for pod addresses and policy CIDRs.
#pragma once

#include <map>
#include <mutex>
#include <set>

#include "common/result.h"
#include "datapath/policy_maps.h"
#include "endpoint/manager.h"
#include "policy/compiler.h"
#include "state/cluster_state.h"

namespace sluice {

class PolicyEngine {
 public:
  PolicyEngine(ClusterState& cluster, EndpointManager& endpoints,
               int policy_outer_fd, int policy_template_fd, int ipcache_fd)
      : cluster_(cluster),
        endpoints_(endpoints),
        maps_(policy_outer_fd, policy_template_fd),
        ipcache_fd_(ipcache_fd) {}

  // Recompiles every local endpoint and rewrites what changed. Compilation
  // errors (e.g. too many port ranges) leave the kernel state untouched.
  Status sync();

  const policy::RuleTable& rules() const { return rules_; }
  // The cluster view used by the compiler (for `policy trace`).
  policy::Cluster cluster_view() const;

 private:
  Status write_ipcache(const std::vector<policy::IpcacheEntry>& entries);

  ClusterState& cluster_;
  EndpointManager& endpoints_;
  PolicyMaps maps_;
  int ipcache_fd_;
  std::mutex mu_;
  policy::CidrIdentities cidrs_;
  policy::RuleTable rules_;
  std::set<Cidr> written_prefixes_;  // CIDR-identity ipcache entries we own
};

}  // namespace sluice

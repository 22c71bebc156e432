// Incremental policy compilation: remembers what the kernel holds (per
// local endpoint: its entries and enforcement; the ipcache entries it
// wrote) and, on each update, recompiles only the endpoints a change can
// reach, returning only what differs. A changed policy among thousands
// costs the pods it selects, not the node.
//
// Which endpoints a change reaches (conservative; a superset is harmless,
// it is only compiled and found unchanged):
//   - policies added, removed or changed, and ipBlocks whose translation
//     shifts because a policy prefix appeared or disappeared:
//     affected_pods() (compiler.h);
//   - a pod that was added, removed, or changed labels, namespace labels,
//     addresses, container ports or identity: the pod itself, plus every
//     endpoint selected by a policy with a rule that could name it — a
//     selector peer matching it before or after, an ipBlock containing one
//     of its addresses before or after, or any named port (those resolve
//     on every destination pod);
//   - the first update, or the one after forget(): every endpoint.
// The property test (tests/unit/policy_incremental_test.cpp) checks the
// result against a full recompile over random sequences of changes.
#pragma once

#include <map>
#include <set>
#include <vector>

#include "common/result.h"
#include "policy/compiler.h"

namespace sluice::policy {

class IncrementalCompiler {
 public:
  struct Delta {
    std::vector<IpcacheEntry> ipcache_upserts;  // new or changed values
    std::vector<Cidr> ipcache_deletes;          // written before, gone now
    // Local endpoints whose entries or enforcement differ from the last
    // commit (a new endpoint always does).
    std::vector<EndpointPolicy> endpoints;
    std::vector<PodRef> removed;  // local before, not now
    size_t compiled = 0;          // endpoints recompiled to find those
    bool full = false;            // every endpoint was recompiled
  };

  // `local`: the pods that are endpoints on this node (the only ones that
  // get policy maps). `cidrs` and `rules` are synced/retained here. Error:
  // a compile error (naming endpoint and policy); nothing is remembered.
  Result<Delta> update(const Cluster& cluster, const PolicySet& policies,
                       const IdentityOf& identity_of,
                       const std::set<PodRef>& local, CidrIdentities& cidrs,
                       RuleTable& rules);
  // The delta of the last update() reached the kernel: remember it.
  void commit();
  // The kernel may not hold what we remember (an apply failed half-way):
  // the next update recompiles and rewrites everything.
  void forget();
  // The endpoint of `pod` lost its kernel policy (it was re-created under
  // a new endpoint id): the next update compiles and returns it.
  void invalidate(const PodRef& pod);

  // Keys one endpoint's policy map holds (its template's max_entries).
  void set_capacity(size_t n) { capacity_ = n; }

  // What the last commit left per endpoint (for tests and `get`).
  const std::map<PodRef, EndpointPolicy>& installed() const {
    return installed_;
  }

 private:
  struct PodState {
    k8s::Pod pod;
    k8s::Labels ns_labels;
    std::vector<IpAddr> ips;
    std::optional<uint32_t> identity;
    bool operator==(const PodState&) const = default;
  };
  using PodStates = std::map<PodRef, PodState>;
  static PodStates snapshot(const Cluster& cluster,
                            const IdentityOf& identity_of);
  // Endpoints a pod change can reach; `any` says whether a pod changed.
  std::set<PodRef> reached_by_pod_changes(const Cluster& cluster,
                                          const PolicySet& policies,
                                          const PodStates& now,
                                          bool* any) const;

  bool valid_ = false;
  size_t capacity_ = SLUICE_POLICY_ENTRIES_MAX;
  PolicySet policies_;
  PodStates pods_;
  std::map<PodRef, EndpointPolicy> installed_;
  std::map<Cidr, IpcacheEntry> ipcache_;
  std::set<Cidr> prefixes_;  // policy prefixes the ipcache was built with
  // Staged by update(), made current by commit(): only what changed, so
  // a small change never copies the whole node's state.
  struct Pending {
    PolicySet policies;
    PodStates pods;
    std::vector<EndpointPolicy> changed;
    std::vector<PodRef> removed;
    std::map<Cidr, IpcacheEntry> ipcache;
    bool ipcache_same = false;  // `ipcache` left empty: keep the current
    std::set<Cidr> prefixes;
  };
  std::optional<Pending> pending_;
};

}  // namespace sluice::policy

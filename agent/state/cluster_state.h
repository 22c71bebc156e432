// The Kubernetes objects the agent holds (Namespaces, Pods,
// NetworkPolicies, Services, EndpointSlices), applied and deleted
// kubectl-style, kept in the state store under
// "k8s/<resource>/<ns>/<name>" so a restart restores them.
//
// Apply and delete are all-or-nothing per request: every document is
// validated, every Service allocated (cluster IPs, node ports: see
// lb/allocator.h) and every delete target found before the first write.
// The stored Service is the allocated one, so allocations survive a
// restart; deleting a Service frees them. Deleting a Namespace deletes
// everything in it, as the API server's namespace controller does. The
// "default" namespace always exists, as on a real cluster.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "k8s/change.h"
#include "k8s/manifest.h"
#include "k8s/objects.h"
#include "lb/allocator.h"
#include "state/store.h"

namespace sluice {

class ClusterState {
 public:
  explicit ClusterState(StateStore& store, lb::ServiceRanges ranges = {})
      : store_(store), alloc_(std::move(ranges)) {}

  // The service ranges (agent config); call before restore(). Stored
  // Services keep their values even outside new ranges.
  void set_service_ranges(lb::ServiceRanges ranges);
  Status restore();
  // Returns kubectl-style lines: "pod/x/a created", "... configured",
  // "... unchanged".
  Result<std::vector<std::string>> apply(const std::string& yaml,
                                         const std::string& origin);
  Result<std::vector<std::string>> remove(const std::string& yaml,
                                          const std::string& origin);

  // Copies, consistent with each other.
  std::vector<k8s::Namespace> namespaces() const;
  std::vector<k8s::Pod> pods() const;
  std::vector<k8s::NetworkPolicy> policies() const;
  std::vector<k8s::Service> services() const;
  std::vector<k8s::EndpointSlice> endpoint_slices() const;
  const k8s::Pod* find_pod(const std::string& ns, const std::string& name,
                           k8s::Pod* out) const;
  k8s::Labels namespace_labels(const std::string& ns) const;
  uint64_t generation() const;  // bumps on every change

  // The change feed (k8s/change.h): every object added, changed or
  // deleted after generation `since`, each once, as it is now. Cheap: a
  // journal of changed keys is kept (at least kJournalMin entries, and as
  // many as there are objects), so a consumer a few changes behind gets
  // those; one further behind, or asking from before a restore(), gets
  // `full` (every object). snapshot() is always full.
  k8s::ChangeFeed changes_since(uint64_t since) const;
  k8s::ChangeFeed snapshot() const;
  static constexpr size_t kJournalMin = 4096;

 private:
  bool namespace_exists(const std::string& ns) const;
  void rebuild_allocations();
  static std::string store_key(const k8s::Object& o) { return "k8s/" + o.key(); }
  // objects_ changed at generation_ + 1 (every mutation bumps generation_
  // once it is done).
  void journal(const std::string& key);
  void trim_journal();
  k8s::ChangeFeed full_feed() const;

  StateStore& store_;
  mutable std::mutex mu_;
  // By Object::key(). Immutable once stored: a change installs a new
  // object, so pointers handed out by the change feed stay valid and true.
  std::map<std::string, k8s::ObjectPtr> objects_;
  lb::Allocator alloc_;  // holds the values of the Services in objects_
  uint64_t generation_ = 0;
  // (generation, key) of every change after journal_floor_, oldest first.
  std::deque<std::pair<uint64_t, std::string>> journal_;
  uint64_t journal_floor_ = 0;
};

}  // namespace sluice

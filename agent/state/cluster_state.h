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

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
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

 private:
  bool namespace_exists(const std::string& ns) const;
  void rebuild_allocations();
  static std::string store_key(const k8s::Object& o) { return "k8s/" + o.key(); }

  StateStore& store_;
  mutable std::mutex mu_;
  std::map<std::string, k8s::Object> objects_;  // by Object::key()
  lb::Allocator alloc_;  // holds the values of the Services in objects_
  uint64_t generation_ = 0;
};

}  // namespace sluice

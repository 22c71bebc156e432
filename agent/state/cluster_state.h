// The Kubernetes objects the agent holds (Namespaces, Pods,
// NetworkPolicies), applied and deleted kubectl-style, kept in the state
// store under "k8s/<resource>/<ns>/<name>" so a restart restores them.
//
// Apply and delete are all-or-nothing per request: every document is
// validated (and every delete target found) before the first write.
// Deleting a Namespace deletes its Pods and NetworkPolicies, as the API
// server's namespace controller does. The "default" namespace always
// exists, as on a real cluster.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "k8s/manifest.h"
#include "k8s/objects.h"
#include "state/store.h"

namespace sluice {

class ClusterState {
 public:
  explicit ClusterState(StateStore& store) : store_(store) {}

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
  const k8s::Pod* find_pod(const std::string& ns, const std::string& name,
                           k8s::Pod* out) const;
  k8s::Labels namespace_labels(const std::string& ns) const;
  uint64_t generation() const;  // bumps on every change

 private:
  bool namespace_exists(const std::string& ns) const;
  static std::string store_key(const k8s::Object& o) { return "k8s/" + o.key(); }

  StateStore& store_;
  mutable std::mutex mu_;
  std::map<std::string, k8s::Object> objects_;  // by Object::key()
  uint64_t generation_ = 0;
};

}  // namespace sluice

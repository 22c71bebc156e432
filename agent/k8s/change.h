// A change feed of the desired state: what ClusterState::changes_since
// hands to consumers that keep their own view of it (the load balancer's
// ProgramBuilder), so a sync costs what changed rather than a copy of
// every object. Objects are shared and immutable: ClusterState replaces
// an object by installing a new one, never by editing it in place, so a
// consumer may keep the pointers it was given.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "k8s/manifest.h"

namespace sluice::k8s {

using ObjectPtr = std::shared_ptr<const Object>;

struct Change {
  std::string key;   // Object::key(): "services/x/web", "pods/x/a", ...
  ObjectPtr object;  // as it is now; null: deleted
};

struct ChangeFeed {
  uint64_t generation = 0;  // the state these changes lead to
  // True: `changes` is every object there is (the feed could not say
  // what changed since the generation asked for); anything the consumer
  // holds that is not listed is gone.
  bool full = false;
  std::vector<Change> changes;  // each key at most once
};

}  // namespace sluice::k8s

// Numeric security identities for label sets. Pods with equal label sets
// (pod labels plus their namespace's labels, prefixed "ns:") share one
// identity; the datapath only ever sees the number.
//
// Standalone, numbers are allocated here and persisted in the state store
// (key "identities"), so a restart keeps every number and no policy map or
// conntrack entry has to change. Cluster mode will allocate in etcd behind
// the same interface.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "k8s/objects.h"
#include "state/store.h"

namespace sluice {

enum ReservedIdentity : uint32_t {
  kIdentityUnknown = 0,
  kIdentityHost = 1,
  kIdentityWorld = 2,
  kIdentityRemoteNode = 3,
  kIdentityHealth = 4,
  kIdentityFirstLabel = 256,
  kIdentityFirstCidr = 1u << 24,
};

using LabelSet = k8s::Labels;

// The label set of a pod: its labels plus "ns:<k>" for every label of its
// namespace (which includes kubernetes.io/metadata.name).
LabelSet pod_label_set(const k8s::Labels& pod, const k8s::Labels& ns);

class IdentityAllocator {
 public:
  explicit IdentityAllocator(StateStore& store) : store_(store) {}

  // Loads persisted numbers; they stay reserved for their label sets until
  // gc_unused() runs (after every endpoint re-acquired its identity).
  Status restore();

  // Returns the identity of `labels`, allocating one if needed; refcounted.
  Result<uint32_t> acquire(const LabelSet& labels);
  void release(uint32_t id);
  // Frees restored identities nobody re-acquired.
  Status gc_unused();

  std::optional<LabelSet> labels_of(uint32_t id) const;
  std::vector<std::pair<uint32_t, LabelSet>> list() const;

 private:
  Status persist();
  static std::string canonical(const LabelSet& l);

  StateStore& store_;
  mutable std::mutex mu_;
  struct Entry {
    LabelSet labels;
    uint32_t refs = 0;
  };
  std::map<uint32_t, Entry> by_id_;
  std::map<std::string, uint32_t> by_labels_;
  uint32_t next_ = kIdentityFirstLabel;
};

}  // namespace sluice

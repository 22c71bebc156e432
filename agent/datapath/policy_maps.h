// Per-endpoint policy maps: a complete inner map is built off to the side
// and swapped into sluice_policy[endpoint id] with one update, so no packet
// ever sees half of a policy change.
#pragma once

#include <cstdint>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "sluice/abi.h"

namespace sluice {

struct PolicyEntry {
  uint32_t identity = 0;  // SLUICE_ID_ANY = any peer
  uint8_t dir = 0;        // enum sluice_dir
  uint8_t proto = 0;      // 6/17/132, or 0 for "other protocols"
  bool any_port = false;
  uint16_t port_lo = 0, port_hi = 0;  // when !any_port
  uint32_t rule_id = 0;
  bool operator==(const PolicyEntry&) const = default;
};

class PolicyMaps {
 public:
  // `outer_fd`: sluice_policy; `template_fd`: sluice_pol_tmpl (its
  // definition is what inner maps must match, except in size: the kernel
  // lets a hash inner map have any max_entries). `capacity`: most keys one
  // endpoint may have (config policy.endpointMaxEntries).
  PolicyMaps(int outer_fd, int template_fd,
             uint32_t capacity = SLUICE_POLICY_ENTRIES_MAX)
      : outer_(outer_fd), template_(template_fd), capacity_(capacity) {}

  // Validates (at most SLUICE_POLICY_RANGES ranges per key, capacity),
  // builds a map sized to the entries (maps are never grown in place, a
  // change builds a new one, and the hash table's bucket array is most of
  // a map's cost to create), then swaps. On error nothing changed.
  Status install(uint32_t ep_id, const std::vector<PolicyEntry>& entries);
  Status remove(uint32_t ep_id);

 private:
  int outer_, template_;
  uint32_t capacity_;
};

}  // namespace sluice

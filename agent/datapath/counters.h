// Reads the per-CPU sluice_counters map, summed over CPUs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace sluice {

struct CounterRow {
  uint32_t dir = 0;     // enum sluice_dir
  uint32_t reason = 0;  // enum sluice_drop_reason, 0 = forwarded
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

// Non-zero rows only; the events-lost slot is not a row (see
// Observer::lost_in_datapath).
Result<std::vector<CounterRow>> read_counters(int map_fd);

// Name and explanation of a drop reason code ("forwarded" for 0,
// "unknown-<n>" for codes this build does not know).
std::string drop_reason_name(uint32_t code);
std::string drop_reason_help(uint32_t code);
const char* dir_name(uint32_t dir);

}  // namespace sluice

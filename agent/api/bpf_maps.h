// `sluicectl bpf MAP list`: a pinned map's entries as the datapath reads
// them, in friendly form (pods and identity labels instead of numbers).
// bpftool prints the same maps raw (docs/inspect.md).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace sluice {

class Agent;

// The maps this view knows, by name without the "sluice_" prefix.
const char* bpf_map_names();

// One JSON object per entry, columns in display order ("sluice_" prefix
// optional in `map`).
Result<nlohmann::ordered_json> bpf_map_rows(Agent& a, std::string map);

}  // namespace sluice

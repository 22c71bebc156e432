#include "datapath/counters.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>

#include "sluice/abi.h"

namespace sluice {

Result<std::vector<CounterRow>> read_counters(int map_fd) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return err("possible CPUs: " + errno_str(ncpu));
  std::vector<sluice_counter> vals(ncpu);
  std::vector<CounterRow> rows;
  for (uint32_t idx = 0; idx < SLUICE_COUNTERS_MAX; idx++) {
    if (idx == SLUICE_COUNTER_EVENTS_LOST) continue;  // not packets
    if (bpf_map_lookup_elem(map_fd, &idx, vals.data()))
      return err("map sluice_counters: lookup " + std::to_string(idx) + ": " +
                 errno_str(errno));
    CounterRow r{idx / SLUICE_REASON_SLOTS, idx % SLUICE_REASON_SLOTS, 0, 0};
    for (const auto& v : vals) {
      r.packets += v.packets;
      r.bytes += v.bytes;
    }
    if (r.packets) rows.push_back(r);
  }
  return rows;
}

std::string drop_reason_name(uint32_t code) {
  switch (code) {
    case SLUICE_DROP_NONE:
      return "forwarded";
#define SLUICE_X_NAME(n, c, name, help) \
  case c:                               \
    return name;
      SLUICE_DROP_REASONS(SLUICE_X_NAME)
#undef SLUICE_X_NAME
  }
  return "unknown-" + std::to_string(code);
}

std::string drop_reason_help(uint32_t code) {
  switch (code) {
    case SLUICE_DROP_NONE:
      return "packet passed the program";
#define SLUICE_X_HELP(n, c, name, help) \
  case c:                               \
    return help;
      SLUICE_DROP_REASONS(SLUICE_X_HELP)
#undef SLUICE_X_HELP
  }
  return "reason code not known to this build";
}

const char* dir_name(uint32_t dir) {
  return dir == SLUICE_DIR_EGRESS ? "egress" : "ingress";
}

}  // namespace sluice

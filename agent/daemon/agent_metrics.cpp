// Agent::metrics_snapshot: what GET /metrics exports, read at scrape time
// from the per-CPU counters, the observer and the maps.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <chrono>

#include "daemon/agent.h"
#include "datapath/counters.h"
#include "observe/flow.h"
#include "sluice/abi.h"

namespace sluice {

void AgentHealth::synced() {
  last_sync_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
}

MetricsSnapshot Agent::metrics_snapshot() {
  MetricsSnapshot s;
  // Every slot of every known reason, zeros included, so rate() works
  // from the first scrape.
  const int ncpu = libbpf_num_possible_cpus();
  std::vector<sluice_counter> vals(ncpu > 0 ? ncpu : 1);
  const int cfd = xdp_->map_fd(SLUICE_MAP_COUNTERS);
  auto slot = [&](uint32_t dir, uint32_t reason) {
    MetricsSnapshot::Slot r{dir, reason, 0, 0};
    uint32_t idx = SLUICE_COUNTER_IDX(dir, reason);
    if (ncpu > 0 && bpf_map_lookup_elem(cfd, &idx, vals.data()) == 0)
      for (const auto& v : vals) {
        r.packets += v.packets;
        r.bytes += v.bytes;
      }
    s.counters.push_back(r);
  };
  for (uint32_t dir = 0; dir < SLUICE_DIR_MAX; dir++) {
    slot(dir, SLUICE_DROP_NONE);
#define SLUICE_X_SLOT(n, code, name, help) slot(dir, code);
    SLUICE_DROP_REASONS(SLUICE_X_SLOT)
#undef SLUICE_X_SLOT
  }
  auto& ev = *events_;
  for (uint16_t t : {SLUICE_EVENT_DROP, SLUICE_EVENT_POLICY_VERDICT,
                     SLUICE_EVENT_SERVICE_XLATE, SLUICE_EVENT_TRACE})
    s.events_received.push_back({event_type_name(t), ev.received(t)});
  s.events_lost_ringbuf = ev.lost_in_datapath();
  s.events_lost_subscribers = ev.lost_by_subscribers();
  for (uint8_t v : {SLUICE_VERDICT_ALLOWED, SLUICE_VERDICT_DENIED})
    for (uint8_t d = 0; d < SLUICE_DIR_MAX; d++)
      s.verdicts.emplace_back(verdict_name(v), dir_name(d), ev.verdicts(v, d));
  s.translations = ev.received(SLUICE_EVENT_SERVICE_XLATE);

  for (const char* name :
       {SLUICE_MAP_CT, SLUICE_MAP_EP_IF, SLUICE_MAP_IPCACHE, SLUICE_MAP_LB_SVC,
        SLUICE_MAP_LB_BE, SLUICE_MAP_LB_AFFINITY, SLUICE_MAP_FRAG}) {
    const int fd = lxc_->map_fd(name);
    if (fd < 0) continue;
    if (auto f = map_fill(fd)) {
      s.maps.push_back({name, f->first, f->second});
      if (std::string(name) == SLUICE_MAP_CT) s.conntrack_entries = f->first;
    }
  }
  s.maps.push_back({SLUICE_MAP_PF_V4, prefilter_->size_v4(), prefilter_->capacity()});
  s.maps.push_back({SLUICE_MAP_PF_V6, prefilter_->size_v6(), prefilter_->capacity()});

  s.last_sync_unix = double(health_.last_sync_ms.load()) / 1000.0;
  s.errors = health_.errors.load();
  s.restore = {{"desired_state", 1}, {"lb", health_.lb_restored.load()}};
  return s;
}

}  // namespace sluice

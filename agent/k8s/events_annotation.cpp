#include "k8s/events_annotation.h"

#include "sluice/abi.h"

namespace sluice::k8s {

Result<std::optional<uint32_t>> pod_events_level(const ObjectMeta& meta) {
  auto it = meta.annotations.find(kEventsLevelAnnotation);
  if (it == meta.annotations.end()) return std::optional<uint32_t>{};
  const std::string& v = it->second;
  // The names of config events.level; not shared with it so that the k8s
  // objects do not depend on the agent's config.
  if (v == "off") return std::optional<uint32_t>{SLUICE_EVENTS_OFF};
  if (v == "drops") return std::optional<uint32_t>{SLUICE_EVENTS_DROPS};
  if (v == "flows") return std::optional<uint32_t>{SLUICE_EVENTS_FLOWS};
  if (v == "trace") return std::optional<uint32_t>{SLUICE_EVENTS_TRACE};
  return err("supported values: \"drops\", \"flows\", \"off\", \"trace\"");
}

}  // namespace sluice::k8s

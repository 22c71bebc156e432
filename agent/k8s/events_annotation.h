// sluice.io/events-level on a Pod: the event level of that pod's endpoint
// (off | drops | flows | trace), overriding the agent's events.level for
// the packets at its veth (both directions). Rejected when a manifest with
// an unknown value is applied (metadata.annotations[sluice.io/events-level]:
// Invalid value ...), like the load balancer's annotations.
#pragma once

#include <cstdint>
#include <optional>

#include "common/result.h"
#include "k8s/objects.h"

namespace sluice::k8s {

inline constexpr const char* kEventsLevelAnnotation = "sluice.io/events-level";

// The pod's override as an enum sluice_event_level; nullopt when it has
// none; an error naming the supported values when the value is invalid.
Result<std::optional<uint32_t>> pod_events_level(const ObjectMeta& meta);

}  // namespace sluice::k8s

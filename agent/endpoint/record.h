// What the agent knows of one local endpoint, and the narrow view of the
// endpoint table the policy engine needs (so the engine can be driven, in
// benchmarks and tests, by a table that creates no veths).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"
#include "endpoint/netlink.h"

namespace sluice {

struct EndpointRecord {
  std::string container_id, netns, ifname, pod_namespace, pod_name;
  std::string host_dev;
  unsigned host_ifindex = 0;
  uint32_t ep_id = 0;
  uint32_t identity = 0;
  uint32_t flags = 0;  // enum sluice_ep_flags (policy enforcement)
  // enum sluice_event_level from the Pod's sluice.io/events-level; unset:
  // the global events.level. Derived from the Pod, never persisted.
  std::optional<uint32_t> events_level;
  std::vector<IpAddr> ips;
  Mac pod_mac{}, host_mac{};
};

class LocalEndpoints {
 public:
  virtual ~LocalEndpoints() = default;
  virtual std::vector<EndpointRecord> list() const = 0;
  // Sets the enforcement flags of the endpoint of a pod, if it is local.
  virtual Status set_flags(const std::string& ns, const std::string& name,
                           uint32_t flags) = 0;
};

}  // namespace sluice

// Endpoints (pods on this node): the veth pair, addresses, routes and
// neighbours (libnl), the sluice_lxc programs on the host side (pinned tcx
// links), and the endpoint/ipcache map entries. One record per
// (container id, interface), persisted in the state store so a restarted
// agent re-adopts every endpoint without touching its traffic.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"
#include "datapath/lxc_datapath.h"
#include "endpoint/ipam.h"
#include "endpoint/netlink.h"
#include "endpoint/record.h"
#include "identity/allocator.h"
#include "state/cluster_state.h"
#include "state/store.h"

namespace sluice {

struct EndpointAddRequest {
  std::string container_id, netns, ifname, pod_namespace, pod_name;
};

class EndpointManager : public LocalEndpoints {
 public:
  EndpointManager(StateStore& store, Ipam& ipam, IdentityAllocator& ids,
                  ClusterState& cluster, LxcDatapath& dp)
      : store_(store), ipam_(ipam), ids_(ids), cluster_(cluster), dp_(dp) {}

  // Reloads records, re-acquires identities, updates the programs behind
  // the pinned links and rewrites the map entries.
  Status restore();
  Result<EndpointRecord> add(const EndpointAddRequest& req);
  Status del(const std::string& container_id, const std::string& ifname);
  Status check(const std::string& container_id, const std::string& ifname);
  // Re-derives every endpoint's identity and event level override from the
  // current Pod and Namespace objects; rewrites the maps of those that
  // changed.
  Status refresh_identities();
  std::vector<EndpointRecord> list() const override;
  // Sets the enforcement flags of the endpoint of a pod, if it is local.
  Status set_flags(const std::string& ns, const std::string& name,
                   uint32_t flags) override;

 private:
  static std::string key(const std::string& cid, const std::string& ifname);
  static std::string host_dev_name(const std::string& cid,
                                   const std::string& ifname);
  Status plumb(EndpointRecord& r);
  Status publish(const EndpointRecord& r);
  void unpublish(const EndpointRecord& r);
  Status persist(const EndpointRecord& r);
  LabelSet labels_for(const std::string& ns, const std::string& name) const;
  std::optional<uint32_t> events_level_for(const std::string& ns,
                                           const std::string& name) const;
  // sluice_config.flags: which level overrides exist (lib/ep_events.h).
  Status publish_override_flags();
  uint32_t free_ep_id() const;

  StateStore& store_;
  Ipam& ipam_;
  IdentityAllocator& ids_;
  ClusterState& cluster_;
  LxcDatapath& dp_;
  mutable std::mutex mu_;
  std::map<std::string, EndpointRecord> eps_;
  std::map<std::string, std::pair<TcxLink, TcxLink>> links_;
};

}  // namespace sluice

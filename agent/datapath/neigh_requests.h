// Next hops the XDP forwarding path could not use because the kernel had
// no MAC address for them (sluice_np_neigh, written by sluice_xdp: XDP
// cannot resolve a neighbour itself). Each becomes a managed neighbour
// entry, which the kernel resolves and keeps fresh from then on, so only
// the first packets toward a new next hop are dropped (lb-no-neigh).
#pragma once

#include <cstddef>

#include "common/result.h"

namespace sluice {

class Netlink;

// Drains the request map: one managed neighbour per request, then the
// request is deleted. Returns how many were added.
Result<size_t> resolve_neighbour_requests(int map_fd, Netlink& nl);

}  // namespace sluice

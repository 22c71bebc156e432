#include "datapath/neigh_requests.h"

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "endpoint/netlink.h"
#include "sluice/abi.h"

namespace sluice {

Result<size_t> resolve_neighbour_requests(int map_fd, Netlink& nl) {
  std::vector<sluice_np_neigh_key> keys;
  sluice_np_neigh_key k{}, next{};
  const void* cur = nullptr;
  while (bpf_map_get_next_key(map_fd, cur, &next) == 0) {
    keys.push_back(next);
    k = next;
    cur = &k;
  }
  size_t added = 0;
  for (const auto& key : keys) {
    IpAddr ip;
    ip.family = key.family;
    std::memcpy(ip.bytes.data(), key.addr, ip.size());
    if (auto s = nl.add_managed_neighbour(key.ifindex, ip); !s)
      spdlog::warn("map {}: next hop {} (ifindex {}): {}",
                   SLUICE_MAP_NP_NEIGH, ip.str(), key.ifindex, s.error());
    else
      added++;
    if (bpf_map_delete_elem(map_fd, &key) && errno != ENOENT)
      return err(std::string("map ") + SLUICE_MAP_NP_NEIGH +
                 ": delete: " + errno_str(errno));
  }
  return added;
}

}  // namespace sluice

#include "datapath/policy_maps.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <tuple>

#include "sluice/abi.h"

namespace sluice {

Status PolicyMaps::install(uint32_t ep_id,
                           const std::vector<PolicyEntry>& entries) {
  using Key = std::tuple<uint32_t, uint8_t, uint8_t>;
  std::map<Key, sluice_policy_value> merged;
  for (const auto& e : entries) {
    auto& v = merged[{e.identity, e.dir, e.proto}];
    if (e.any_port) {
      if (!v.any_port) v.any_rule = e.rule_id;
      v.any_port = 1;
      continue;
    }
    if (v.nranges >= SLUICE_POLICY_RANGES)
      return err("endpoint " + std::to_string(ep_id) + ": more than " +
                 std::to_string(SLUICE_POLICY_RANGES) +
                 " port ranges for identity " + std::to_string(e.identity) +
                 " protocol " + std::to_string(e.proto) + " " +
                 (e.dir == SLUICE_DIR_INGRESS ? "ingress" : "egress"));
    v.ranges[v.nranges] = {e.port_lo, e.port_hi};
    v.rule_ids[v.nranges] = e.rule_id;
    v.nranges++;
  }
  bpf_map_info tinfo{};
  uint32_t len = sizeof(tinfo);
  if (bpf_obj_get_info_by_fd(template_, &tinfo, &len))
    return err("map sluice_pol_tmpl: info: " + errno_str(errno));
  if (merged.size() > capacity_)
    return err("endpoint " + std::to_string(ep_id) + ": " +
               std::to_string(merged.size()) +
               " policy entries exceed the per-endpoint capacity of " +
               std::to_string(capacity_) + " (policy.endpointMaxEntries)");

  LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = tinfo.map_flags);
  const uint32_t size = std::max<uint32_t>(16, uint32_t(merged.size()));
  UniqueFd inner(bpf_map_create(BPF_MAP_TYPE_HASH, "sluice_pol_ep",
                                tinfo.key_size, tinfo.value_size, size, &o));
  if (!inner.valid())
    return err("endpoint " + std::to_string(ep_id) +
               ": create policy map: " + errno_str(errno));
  for (const auto& [k, v] : merged) {
    sluice_policy_key key{std::get<0>(k), std::get<1>(k), std::get<2>(k), 0};
    if (bpf_map_update_elem(inner.get(), &key, &v, BPF_NOEXIST))
      return err("endpoint " + std::to_string(ep_id) +
                 ": fill policy map: " + errno_str(errno));
  }
  uint32_t fd = uint32_t(inner.get());
  if (bpf_map_update_elem(outer_, &ep_id, &fd, BPF_ANY))
    return err("map sluice_policy: install endpoint " +
               std::to_string(ep_id) + ": " + errno_str(errno));
  return {};  // the outer map holds the inner map now; our fd may close
}

Status PolicyMaps::remove(uint32_t ep_id) {
  if (bpf_map_delete_elem(outer_, &ep_id) && errno != ENOENT)
    return err("map sluice_policy: remove endpoint " + std::to_string(ep_id) +
               ": " + errno_str(errno));
  return {};
}

}  // namespace sluice

#include "datapath/config_map.h"

#include <bpf/bpf.h>

#include <cerrno>

namespace sluice {

Status update_config_map(int fd, const std::function<void(sluice_config&)>& change) {
  sluice_config cfg{};
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(fd, &zero, &cfg))
    return err("map sluice_config: lookup: " + errno_str(errno));
  change(cfg);
  if (bpf_map_update_elem(fd, &zero, &cfg, BPF_ANY))
    return err("map sluice_config: update: " + errno_str(errno));
  return {};
}

}  // namespace sluice

#include "datapath/map_pins.h"

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>

namespace sluice {
namespace {

bool is_percpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

bool compatible(const bpf_map_info& info, const bpf_map* m) {
  return info.type == bpf_map__type(m) &&
         info.key_size == bpf_map__key_size(m) &&
         info.value_size == bpf_map__value_size(m) &&
         info.max_entries == bpf_map__max_entries(m) &&
         info.map_flags == bpf_map__map_flags(m);
}

}  // namespace

Status MapPinner::prepare(bpf_object* obj) {
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    const std::string name = bpf_map__name(m);
    if (name.find('.') != std::string::npos) continue;  // internal maps
    const std::string pin = layout_.map_pin(name);
    if (int e = bpf_map__set_pin_path(m, pin.c_str()))
      return err("map " + name + ": set pin path " + pin + ": " +
                 errno_str(e));
    UniqueFd old(bpf_obj_get(pin.c_str()));
    if (!old.valid()) continue;  // first start: created and pinned at load
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(old.get(), &info, &len))
      return err("map " + name + ": read info of pin " + pin + ": " +
                 errno_str(errno));
    if (compatible(info, m)) continue;  // libbpf reuses it as is
    spdlog::warn("map {}: pinned definition differs (max_entries {} -> {}, "
                 "value size {} -> {}); migrating",
                 name, info.max_entries, bpf_map__max_entries(m),
                 info.value_size, bpf_map__value_size(m));
    if (::unlink(pin.c_str()))
      return err("map " + name + ": unpin " + pin + ": " + errno_str(errno));
    aside_.push_back({name, std::move(old)});
  }
  return {};
}

Status MapPinner::migrate(bpf_object* obj) {
  for (auto& a : aside_) {
    bpf_map* m = bpf_object__find_map_by_name(obj, a.name.c_str());
    if (!m) continue;
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(a.fd.get(), &info, &len))
      return err("map " + a.name + ": info: " + errno_str(errno));
    const uint32_t type = bpf_map__type(m);
    if (type == BPF_MAP_TYPE_RINGBUF ||
        info.key_size != bpf_map__key_size(m) ||
        info.value_size != bpf_map__value_size(m)) {
      spdlog::warn("map {}: layout changed and no converter is registered; "
                   "starting empty", a.name);
      continue;
    }
    const int ncpu = is_percpu(type) ? libbpf_num_possible_cpus() : 1;
    std::vector<uint8_t> key(info.key_size), next(info.key_size),
        val(size_t(info.value_size) * ncpu);
    uint64_t copied = 0, failed = 0;
    void* prev = nullptr;
    while (bpf_map_get_next_key(a.fd.get(), prev, next.data()) == 0) {
      key = next;
      prev = key.data();
      if (bpf_map_lookup_elem(a.fd.get(), key.data(), val.data())) continue;
      if (bpf_map_update_elem(bpf_map__fd(m), key.data(), val.data(), 0))
        failed++;
      else
        copied++;
    }
    spdlog::info("map {}: migrated {} entries ({} did not fit)", a.name,
                 copied, failed);
  }
  aside_.clear();  // old maps are released when the last fd closes
  return {};
}

}  // namespace sluice

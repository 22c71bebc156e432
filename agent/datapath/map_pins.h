// Pinned-map reuse across agent restarts and upgrades. Before an object is
// loaded, every map gets its pin path; libbpf then reuses a compatible
// pinned map (state survives: no flush). A pinned map whose definition no
// longer matches (a new max_entries, a new layout) is migrated instead of
// silently recreated empty: its pin is moved aside, the new map is created
// and pinned by the load, entries are copied over, and the old map is
// released only after that.
#pragma once

#include <bpf/libbpf.h>

#include <cerrno>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "datapath/bpffs.h"

namespace sluice {

class MapPinner {
 public:
  explicit MapPinner(BpffsLayout layout) : layout_(std::move(layout)) {}

  // Sets pin paths on every map of `obj` and sets aside incompatible pins.
  // Call between open and load.
  Status prepare(bpf_object* obj);

  // Copies entries from set-aside maps into their replacements. Call after
  // a successful load. Entries that do not fit the new layout are counted
  // and logged, never half-written.
  Status migrate(bpf_object* obj);

 private:
  struct Aside {
    std::string name;
    UniqueFd fd;
  };
  BpffsLayout layout_;
  std::vector<Aside> aside_;
};

// Loads an opened object with `load` (its skeleton's __load) so that every
// map reuses or migrates its pin. `ct` is the object's sluice_ct, which
// sluice_lxc, sluice_xdp and sluice_sock all declare and share by pin: it is
// sized to conntrack.max first. `name` names the object in errors.
template <typename Load>
Status load_pinned(bpf_object* obj, bpf_map* ct, uint32_t ct_max,
                   const BpffsLayout& layout, const std::string& name,
                   Load load) {
  if (bpf_map__set_max_entries(ct, ct_max))
    return err(name + ": conntrack.max " + std::to_string(ct_max) + ": " +
               errno_str(errno));
  MapPinner pinner(layout);
  if (auto s = pinner.prepare(obj); !s) return s;
  if (int e = load())
    return err("load " + name + " (see libbpf log above): " + errno_str(e));
  return pinner.migrate(obj);
}

}  // namespace sluice

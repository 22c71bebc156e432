// The pod datapath object (sluice_lxc): loaded once, maps pinned under
// <bpffs>/maps (the counters, events and config maps are shared with
// sluice_xdp through the same pins), programs attached per endpoint by
// tcx links pinned as <bpffs>/links/tcx_{in,eg}_<host veth>.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "datapath/bpffs.h"
#include "datapath/tcx_link.h"
#include "sluice/abi.h"

struct sluice_lxc;

namespace sluice {

// Capacities set before load (a pinned map of another size is migrated,
// see map_pins.h).
struct LxcSizes {
  uint32_t ct_max = SLUICE_CT_MAX_DEFAULT;
};

class LxcDatapath {
 public:
  static Result<std::unique_ptr<LxcDatapath>> load(const BpffsLayout& layout,
                                                   const LxcSizes& sizes = {});
  ~LxcDatapath();

  int map_fd(const std::string& name) const;
  int prog_out() const;  // tcx ingress of the host veth (from the pod)
  int prog_in() const;   // tcx egress of the host veth (to the pod)

  // Attaches both programs to a host veth (reusing pinned links).
  Result<std::pair<TcxLink, TcxLink>> attach(const std::string& host_dev,
                                             unsigned ifindex);
  // Detaches and unpins both links of a host veth.
  Status detach(const std::string& host_dev);

  struct Token {
   private:
    Token() = default;
    friend class LxcDatapath;
  };
  explicit LxcDatapath(Token) {}

 private:
  BpffsLayout layout_;
  sluice_lxc* skel_ = nullptr;
};

}  // namespace sluice

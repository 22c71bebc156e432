// The node-device XDP datapath: the sluice_xdp object loaded once, its maps
// pinned (and reused across restarts), and one pinned link per device.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "datapath/bpffs.h"
#include "datapath/xdp_link.h"

struct sluice_xdp;  // generated skeleton

namespace sluice {

struct ProgramInfo {
  std::string name;
  std::string type;
  uint32_t id = 0;
  uint32_t xlated_insns = 0;  // verifier-visible size, watched in CI
};

class XdpDatapath {
 public:
  // Opens and loads the object, reusing (or migrating) pinned maps.
  // ct_max: conntrack.max. sluice_xdp shares sluice_ct (and the endpoint,
  // policy and load-balancer maps) with sluice_lxc through their pins, so
  // it must declare the same size; load sluice_lxc first.
  static Result<std::unique_ptr<XdpDatapath>> load(const BpffsLayout& layout,
                                                   uint32_t ct_max);
  ~XdpDatapath();  // closes fds only: pins and links stay

  XdpDatapath(const XdpDatapath&) = delete;
  XdpDatapath& operator=(const XdpDatapath&) = delete;

  // Attaches (or atomically updates) every device in `devices` and detaches
  // pinned XDP links of devices no longer configured. All-or-nothing on
  // unknown devices: they are checked before anything changes.
  Status attach(const std::vector<std::string>& devices);

  // Runtime knobs in sluice_config (read-modify-write: the endpoint
  // manager keeps other flags there).
  Status set_event_level(uint32_t level);
  Status set_lb_dsr(bool dsr);  // lb.mode dsr

  int map_fd(const std::string& name) const;
  ProgramInfo program() const;
  std::vector<XdpAttachInfo> attachments() const;

  // Detaches every link and removes every pin under the layout (the
  // `sluice-agent --cleanup` path). Works without a loaded object.
  static Status cleanup(const BpffsLayout& layout);

  struct Token {  // only load() constructs
   private:
    Token() = default;
    friend class XdpDatapath;
  };
  explicit XdpDatapath(Token) {}

 private:
  BpffsLayout layout_;
  sluice_xdp* skel_ = nullptr;
  std::vector<XdpLink> links_;
};

}  // namespace sluice

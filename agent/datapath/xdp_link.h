// One XDP attachment of a program to a device, held by a pinned bpf_link so
// the program stays attached while no agent runs. Re-attaching an existing
// pin swaps the program atomically (bpf_link_update): no packet sees a
// device without a program, and there is never a second attachment.
#pragma once

#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace sluice {

struct XdpAttachInfo {
  std::string device;
  unsigned ifindex = 0;
  std::string mode;  // "native" or "generic"
  uint32_t link_id = 0;
  uint32_t prog_id = 0;
  std::string pin;
};

class XdpLink {
 public:
  // Attaches prog_fd to `device`, reusing the link pinned at `pin` when it
  // still points at that device. Native mode first, generic as a logged
  // fallback.
  static Result<XdpLink> attach(const std::string& device, int prog_fd,
                                const std::string& pin);

  XdpAttachInfo info() const;
  const std::string& device() const { return device_; }

 private:
  std::string device_;
  std::string pin_;
  unsigned ifindex_ = 0;
  UniqueFd fd_;
};

// Interface index of a device in the agent's network namespace.
Result<unsigned> device_ifindex(const std::string& device);

}  // namespace sluice

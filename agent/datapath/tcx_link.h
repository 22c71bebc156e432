// A TC program attached to a device through a tcx link (kernel 6.6+), so
// no other tool's tc filters can clobber it or be clobbered by it. Debian's
// libbpf 1.1 has no tcx helper: the link is made with bpf_link_create and
// the attach types below. Pinned, reused and updated in place like XDP.
#pragma once

#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace sluice {

enum class TcxDir { Ingress, Egress };

constexpr uint32_t kBpfTcxIngress = 46;  // BPF_TCX_INGRESS
constexpr uint32_t kBpfTcxEgress = 47;   // BPF_TCX_EGRESS
constexpr uint32_t kBpfLinkTypeTcx = 11;  // BPF_LINK_TYPE_TCX

class TcxLink {
 public:
  // Attaches prog_fd to `ifindex` in `dir` and pins the link at `pin`
  // (reusing a pinned link for the same device). `what` names it in logs.
  static Result<TcxLink> attach(unsigned ifindex, TcxDir dir, int prog_fd,
                                const std::string& pin,
                                const std::string& what);
  uint32_t id() const;
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
};

}  // namespace sluice

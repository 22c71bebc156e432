#include "datapath/tcx_link.h"

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>

#include "datapath/link_pin.h"

namespace sluice {

Result<TcxLink> TcxLink::attach(unsigned ifindex, TcxDir dir, int prog_fd,
                                const std::string& pin,
                                const std::string& what) {
  TcxLink l;
  auto reused = reuse_pinned_link(pin, kBpfLinkTypeTcx, ifindex, prog_fd, what);
  if (!reused) return Error{reused.error()};
  if (reused->valid()) {
    l.fd_ = std::move(*reused);
    return l;
  }
  const uint32_t type = dir == TcxDir::Ingress ? kBpfTcxIngress : kBpfTcxEgress;
  int fd = bpf_link_create(prog_fd, int(ifindex),
                           static_cast<bpf_attach_type>(type), nullptr);
  if (fd < 0)
    return err(what + ": attach tcx " +
               (dir == TcxDir::Ingress ? "ingress" : "egress") + ": " +
               errno_str(errno));
  l.fd_.reset(fd);
  if (!pin.empty() && bpf_obj_pin(fd, pin.c_str()))
    return err(what + ": pin tcx link at " + pin + ": " + errno_str(errno));
  spdlog::debug("{}: tcx {} attached", what,
                dir == TcxDir::Ingress ? "ingress" : "egress");
  return l;
}

uint32_t TcxLink::id() const {
  bpf_link_info li{};
  uint32_t len = sizeof(li);
  if (bpf_obj_get_info_by_fd(fd_.get(), &li, &len)) return 0;
  return li.id;
}

}  // namespace sluice

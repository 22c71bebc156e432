#include "datapath/xdp_link.h"

#include "datapath/link_pin.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>

namespace sluice {

Result<unsigned> device_ifindex(const std::string& device) {
  unsigned idx = if_nametoindex(device.c_str());
  if (!idx)
    return err("device " + device + " not found: " + errno_str(errno));
  return idx;
}

Result<XdpLink> XdpLink::attach(const std::string& device, int prog_fd,
                                const std::string& pin) {
  auto idx = device_ifindex(device);
  if (!idx) return Error{idx.error()};
  XdpLink l;
  l.device_ = device;
  l.pin_ = pin;
  l.ifindex_ = *idx;

  auto reused = reuse_pinned_link(pin, BPF_LINK_TYPE_XDP, *idx, prog_fd,
                                  "device " + device + ": XDP");
  if (!reused) return Error{reused.error()};
  if (reused->valid()) {
    l.fd_ = std::move(*reused);
    return l;
  }

  LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
  int fd = bpf_link_create(prog_fd, *idx, BPF_XDP, &opts);
  if (fd < 0) {
    const int drv_errno = errno;
    opts.flags = XDP_FLAGS_SKB_MODE;
    fd = bpf_link_create(prog_fd, *idx, BPF_XDP, &opts);
    if (fd < 0)
      return err("device " + device + ": attach XDP (native: " +
                 errno_str(drv_errno) + "; generic: " + errno_str(errno) +
                 ")" +
                 (errno == EBUSY || errno == EEXIST
                      ? " - another XDP program is attached to it"
                      : ""));
    spdlog::warn("device {}: native XDP unavailable ({}), using generic mode",
                 device, errno_str(drv_errno));
  }
  l.fd_.reset(fd);
  if (bpf_obj_pin(fd, pin.c_str()))
    return err("device " + device + ": pin XDP link at " + pin + ": " +
               errno_str(errno));
  spdlog::info("device {}: XDP attached (ifindex {})", device, *idx);
  return l;
}

XdpAttachInfo XdpLink::info() const {
  XdpAttachInfo i;
  i.device = device_;
  i.ifindex = ifindex_;
  i.pin = pin_;
  bpf_link_info li{};
  uint32_t len = sizeof(li);
  if (bpf_obj_get_info_by_fd(fd_.get(), &li, &len) == 0) {
    i.link_id = li.id;
    i.prog_id = li.prog_id;
  }
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (bpf_xdp_query(ifindex_, 0, &q) == 0)
    i.mode = q.attach_mode == XDP_ATTACHED_SKB ? "generic"
             : q.attach_mode == XDP_ATTACHED_DRV ? "native"
             : q.attach_mode == XDP_ATTACHED_HW  ? "offload"
             : q.attach_mode == XDP_ATTACHED_MULTI ? "multi"
                                                   : "none";
  return i;
}

}  // namespace sluice

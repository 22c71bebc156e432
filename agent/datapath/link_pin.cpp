#include "datapath/link_pin.h"

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>

namespace sluice {
namespace {

// The ifindex a link is bound to, per link type (0 when detached).
unsigned link_ifindex(const bpf_link_info& li) {
  if (li.type == BPF_LINK_TYPE_XDP) return li.xdp.ifindex;
  // tcx links (type 11) report the device at the same place as netkit's;
  // Debian's UAPI headers predate them, so read the raw union.
  const uint32_t* raw = reinterpret_cast<const uint32_t*>(&li.raw_tracepoint);
  return raw[0];
}

}  // namespace

Result<UniqueFd> reuse_pinned_link(const std::string& pin, uint32_t link_type,
                                   unsigned ifindex, int prog_fd,
                                   const std::string& what) {
  return reuse_pinned_link(
      pin,
      [&](const bpf_link_info& li) {
        return li.type == link_type && link_ifindex(li) == ifindex;
      },
      prog_fd, what);
}

Result<UniqueFd> reuse_pinned_link(
    const std::string& pin,
    const std::function<bool(const bpf_link_info&)>& matches, int prog_fd,
    const std::string& what) {
  UniqueFd old(bpf_obj_get(pin.c_str()));
  if (!old.valid()) return UniqueFd();
  bpf_link_info li{};
  uint32_t len = sizeof(li);
  const bool same =
      bpf_obj_get_info_by_fd(old.get(), &li, &len) == 0 && matches(li);
  if (same) {
    if (bpf_link_update(old.get(), prog_fd, nullptr))
      return err(what + ": update pinned link " + pin + ": " +
                 errno_str(errno));
    spdlog::info("{}: program replaced in place (link {})", what, li.id);
    return old;
  }
  spdlog::info("{}: pinned link {} is stale, re-attaching", what, li.id);
  bpf_link_detach(old.get());
  ::unlink(pin.c_str());
  return UniqueFd();
}

Status detach_pinned_link(const std::string& pin) {
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd.valid()) {
    if (errno == ENOENT) return {};
    return err("open pinned link " + pin + ": " + errno_str(errno));
  }
  if (bpf_link_detach(fd.get()) && errno != EINVAL && errno != ENOLINK)
    return err("detach link " + pin + ": " + errno_str(errno));
  if (::unlink(pin.c_str()) && errno != ENOENT)
    return err("unpin " + pin + ": " + errno_str(errno));
  return {};
}

}  // namespace sluice

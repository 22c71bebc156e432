#include "datapath/xdp_datapath.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <set>

#include "datapath/config_map.h"
#include "datapath/link_pin.h"
#include "datapath/map_pins.h"
#include "sluice/abi.h"
#include "sluice_xdp.skel.h"

namespace sluice {

Result<std::unique_ptr<XdpDatapath>> XdpDatapath::load(
    const BpffsLayout& layout, uint32_t ct_max) {
  auto dp = std::make_unique<XdpDatapath>(Token{});
  dp->layout_ = layout;
  dp->skel_ = sluice_xdp__open();
  if (!dp->skel_) return err("open sluice_xdp object: " + errno_str(errno));
  if (auto s = load_pinned(dp->skel_->obj, dp->skel_->maps.sluice_ct, ct_max,
                           layout, "sluice_xdp",
                           [&] { return sluice_xdp__load(dp->skel_); });
      !s)
    return Error{s.error()};
  return dp;
}

XdpDatapath::~XdpDatapath() {
  links_.clear();
  if (skel_) sluice_xdp__destroy(skel_);
}

Status XdpDatapath::attach(const std::vector<std::string>& devices) {
  for (const auto& d : devices)
    if (auto idx = device_ifindex(d); !idx) return Error{idx.error()};

  std::vector<XdpLink> links;
  for (const auto& d : devices) {
    auto l = XdpLink::attach(d, bpf_program__fd(skel_->progs.sluice_xdp),
                             layout_.xdp_link_pin(d));
    if (!l) return Error{l.error()};
    links.push_back(std::move(*l));
  }
  links_ = std::move(links);

  // Devices dropped from the config lose their program.
  std::set<std::string> want;
  for (const auto& d : devices) want.insert(layout_.xdp_link_pin(d));
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(layout_.links(), ec)) {
    const std::string p = e.path().string();
    if (e.path().filename().string().rfind("xdp_", 0) != 0 || want.count(p))
      continue;
    spdlog::info("link {}: device no longer configured, detaching", p);
    if (auto s = detach_pinned_link(p); !s) return s;
  }
  return {};
}

Status XdpDatapath::set_event_level(uint32_t level) {
  return update_config_map(bpf_map__fd(skel_->maps.sluice_config),
                           [&](sluice_config& c) { c.event_level = level; });
}

Status XdpDatapath::set_lb_dsr(bool dsr) {
  return update_config_map(bpf_map__fd(skel_->maps.sluice_config),
                           [&](sluice_config& c) {
                             c.flags = dsr ? c.flags | SLUICE_CFG_LB_DSR
                                           : c.flags & ~uint32_t(SLUICE_CFG_LB_DSR);
                           });
}

int XdpDatapath::map_fd(const std::string& name) const {
  bpf_map* m = bpf_object__find_map_by_name(skel_->obj, name.c_str());
  return m ? bpf_map__fd(m) : -1;
}

ProgramInfo XdpDatapath::program() const {
  ProgramInfo p{"sluice_xdp", "xdp", 0, 0};
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_program__fd(skel_->progs.sluice_xdp), &info,
                             &len) == 0) {
    p.id = info.id;
    p.xlated_insns = info.xlated_prog_len / 8;
  }
  return p;
}

std::vector<XdpAttachInfo> XdpDatapath::attachments() const {
  std::vector<XdpAttachInfo> out;
  for (const auto& l : links_) out.push_back(l.info());
  return out;
}

Status XdpDatapath::cleanup(const BpffsLayout& layout) {
  std::error_code ec;
  std::string first_error;
  for (const auto& e :
       std::filesystem::directory_iterator(layout.links(), ec)) {
    if (auto s = detach_pinned_link(e.path().string()); !s) {
      spdlog::error("cleanup: {}", s.error());
      if (first_error.empty()) first_error = s.error();
    }
  }
  for (const auto& e : std::filesystem::directory_iterator(layout.maps(), ec))
    if (::unlink(e.path().c_str()) && errno != ENOENT) {
      spdlog::error("cleanup: unpin {}: {}", e.path().string(),
                    errno_str(errno));
      if (first_error.empty()) first_error = "unpin " + e.path().string();
    }
  for (const auto& d : {layout.links(), layout.maps(), layout.root})
    if (::rmdir(d.c_str()) && errno != ENOENT)
      spdlog::warn("cleanup: rmdir {}: {}", d, errno_str(errno));
  if (!first_error.empty()) return err(first_error);
  return {};
}

}  // namespace sluice

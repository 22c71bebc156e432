#include "datapath/lxc_datapath.h"

#include <bpf/libbpf.h>

#include <cerrno>

#include "datapath/link_pin.h"
#include "datapath/map_pins.h"
#include "sluice_lxc.skel.h"

namespace sluice {

Result<std::unique_ptr<LxcDatapath>> LxcDatapath::load(
    const BpffsLayout& layout, const LxcSizes& sizes) {
  auto dp = std::make_unique<LxcDatapath>(Token{});
  dp->layout_ = layout;
  dp->skel_ = sluice_lxc__open();
  if (!dp->skel_) return err("open sluice_lxc object: " + errno_str(errno));
  if (auto s = load_pinned(dp->skel_->obj, dp->skel_->maps.sluice_ct,
                           sizes.ct_max, layout, "sluice_lxc",
                           [&] { return sluice_lxc__load(dp->skel_); });
      !s)
    return Error{s.error()};
  return dp;
}

LxcDatapath::~LxcDatapath() {
  if (skel_) sluice_lxc__destroy(skel_);
}

int LxcDatapath::map_fd(const std::string& name) const {
  bpf_map* m = bpf_object__find_map_by_name(skel_->obj, name.c_str());
  return m ? bpf_map__fd(m) : -1;
}

int LxcDatapath::prog_out() const {
  return bpf_program__fd(skel_->progs.sluice_lxc_out);
}

int LxcDatapath::prog_in() const {
  return bpf_program__fd(skel_->progs.sluice_lxc_in);
}

Result<std::pair<TcxLink, TcxLink>> LxcDatapath::attach(
    const std::string& host_dev, unsigned ifindex) {
  auto out = TcxLink::attach(ifindex, TcxDir::Ingress, prog_out(),
                             layout_.links() + "/tcx_in_" + host_dev,
                             "endpoint " + host_dev);
  if (!out) return Error{out.error()};
  auto in = TcxLink::attach(ifindex, TcxDir::Egress, prog_in(),
                            layout_.links() + "/tcx_eg_" + host_dev,
                            "endpoint " + host_dev);
  if (!in) return Error{in.error()};
  return std::make_pair(std::move(*out), std::move(*in));
}

Status LxcDatapath::detach(const std::string& host_dev) {
  for (const char* p : {"/tcx_in_", "/tcx_eg_"})
    if (auto s = detach_pinned_link(layout_.links() + p + host_dev); !s)
      return s;
  return {};
}

}  // namespace sluice

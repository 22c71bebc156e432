// The BPF filesystem root every pin of one agent lives under:
//   <root>/maps/<map name>      maps, with BTF (bpftool prints typed values)
//   <root>/links/xdp_<device>   XDP links (keep programs attached when the
//                                agent is gone)
#pragma once

#include <string>

#include "common/result.h"

namespace sluice {

struct BpffsLayout {
  std::string root;
  std::string maps() const { return root + "/maps"; }
  std::string links() const { return root + "/links"; }
  std::string map_pin(const std::string& name) const {
    return maps() + "/" + name;
  }
  std::string xdp_link_pin(const std::string& dev) const {
    return links() + "/xdp_" + dev;
  }
};

// Makes sure `root` lies on a BPF filesystem shared with the host, so pins
// outlive this process. Must run before any thread starts: when started
// through `ip netns exec` (a private mount namespace whose fresh /sys hides
// the host's bpffs) it joins its parent's mount namespace, keeping its
// network namespace. If no bpffs is mounted at all it mounts one at /sys/fs/bpf (or
// at root when root is elsewhere). Creates root/maps and root/links (0700).
Status ensure_bpffs(const BpffsLayout& layout);

// True if `path` (or its nearest existing ancestor) is on a bpffs.
bool on_bpffs(const std::string& path);

Status mkdir_p(const std::string& path, unsigned mode);

}  // namespace sluice

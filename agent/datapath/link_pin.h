// Reuse of a pinned bpf_link across agent restarts: if the link pinned at
// `pin` is of `link_type` and still bound to `ifindex` (or, for other
// links, what the caller wants), its program is swapped atomically
// (bpf_link_update) and the link returned; a stale link (device gone or
// re-created) is detached and unpinned.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <functional>
#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace sluice {

// Returns an invalid fd when there was nothing to reuse.
Result<UniqueFd> reuse_pinned_link(const std::string& pin, uint32_t link_type,
                                   unsigned ifindex, int prog_fd,
                                   const std::string& what);

// The same for links not bound to a device (cgroup links): `same` says
// whether the pinned link is still the attachment wanted.
Result<UniqueFd> reuse_pinned_link(
    const std::string& pin,
    const std::function<bool(const bpf_link_info&)>& same, int prog_fd,
    const std::string& what);

// Detaches the link pinned at `pin` (even if other fds hold it) and removes
// the pin. A missing pin is not an error.
Status detach_pinned_link(const std::string& pin);

}  // namespace sluice

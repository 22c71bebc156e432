// sluice_config[0], the one runtime-config record every program reads
// (pinned, shared). It has more than one writer (the global event level at
// start, the endpoint manager's override flags), so each changes only its
// own fields: read, change, write.
#pragma once

#include <functional>

#include "common/result.h"
#include "sluice/abi.h"

namespace sluice {

Status update_config_map(int fd, const std::function<void(sluice_config&)>& change);

}  // namespace sluice

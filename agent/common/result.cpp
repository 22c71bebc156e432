#include "common/result.h"

#include <cstring>

namespace sluice {

std::string errno_str(int e) {
  if (e < 0) e = -e;
  return std::string(std::strerror(e)) + " (errno " + std::to_string(e) + ")";
}

}  // namespace sluice

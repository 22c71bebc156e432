// Rendering of API replies for humans (aligned text) and scripts (JSON).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "sluice.pb.h"

namespace sluice::ctl {

std::string status_text(const v1::StatusReply& r);
nlohmann::json status_json(const v1::StatusReply& r);
std::string drop_reasons_text();

}  // namespace sluice::ctl

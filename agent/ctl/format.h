// Rendering of API replies for humans (aligned text) and scripts (JSON).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "sluice.pb.h"

namespace sluice::ctl {

std::string status_text(const v1::StatusReply& r);
nlohmann::json status_json(const v1::StatusReply& r);
std::string drop_reasons_text();
// [{"code", "name", "explanation"}], from the drop-reason X-macro.
nlohmann::json drop_reasons_json();
// `sluicectl get KIND` as an aligned table.
std::string get_text(const std::string& kind, const nlohmann::json& items);
std::string services_text(const nlohmann::json& items);
std::string endpoint_slices_text(const nlohmann::json& items);
// `sluicectl lb list`: one row per frontend, its backends below it.
std::string lb_text(const nlohmann::json& items);
// Rows of objects as a table: a header of the first row's keys (upper
// case), in their order; strings unquoted.
std::string rows_text(const nlohmann::ordered_json& rows);
std::string ct_text(const v1::CtListReply& r);
nlohmann::json ct_json(const v1::CtListReply& r);
// `sluicectl observe`: one aligned line per flow (and its header), or one
// JSON object per line (empty fields left out).
std::string flow_text_header();
std::string flow_text(const v1::FlowEvent& f);
nlohmann::json flow_json(const v1::FlowEvent& f);
// `sluicectl top` (ctl/top.cpp): refreshes until `iterations` (0: forever);
// returns the exit status.
int run_top(const std::string& socket, double interval, uint32_t iterations,
            uint32_t rows);
// A file's content, or standard input for "-".
Result<std::string> read_input(const std::string& path);

}  // namespace sluice::ctl

// sluice-cni: the CNI plugin (spec 1.0.0). This build answers VERSION;
// ADD/DEL/CHECK arrive with pod networking (endpoint creation through the
// agent API) and until then fail with a spec-shaped error, never silently.
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

constexpr const char* kSupported[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0"};

int cni_error(int code, const std::string& msg, const std::string& details) {
  nlohmann::json j = {{"cniVersion", "1.0.0"},
                      {"code", code},
                      {"msg", msg},
                      {"details", details}};
  std::cout << j.dump() << "\n";
  return 1;
}

}  // namespace

int main() {
  const char* cmd = std::getenv("CNI_COMMAND");
  if (!cmd) return cni_error(4, "CNI_COMMAND is not set", "");
  const std::string c = cmd;
  if (c == "VERSION") {
    nlohmann::json j = {{"cniVersion", "1.0.0"},
                        {"supportedVersions", kSupported}};
    std::cout << j.dump() << "\n";
    return 0;
  }
  if (c == "ADD" || c == "DEL" || c == "CHECK" || c == "GC" || c == "STATUS")
    return cni_error(100, "sluice-cni: " + c + " is not implemented yet",
                     "pod networking lands with the endpoints feature");
  return cni_error(4, "unknown CNI_COMMAND \"" + c + "\"", "");
}

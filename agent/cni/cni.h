// sluice-cni logic (CNI spec 1.0.0), kept out of main() so tests can drive
// it with a fake environment, stdin and agent.
//
// Commands: ADD → EndpointAdd (prints the result), DEL → EndpointDel,
// CHECK → EndpointCheck (config 0.4.0 or later), VERSION. STATUS and GC
// (spec 1.1) are answered with code 4: we do not advertise 1.1.0, so a
// conforming runtime never sends them (libcni synthesises DELs instead of
// GC for such plugins).
//
// Errors are the spec's JSON on stdout with a non-zero exit:
//   1 incompatible cniVersion     4 bad/missing env var (named)
//   5 stdin read failure          6 stdin is not JSON
//   7 invalid network config      3 agent says the container is gone
//  11 agent unreachable or timed out: try again later. On DEL too: the
//     endpoint's address and maps would leak if we claimed success, and
//     the runtime retries DEL until it succeeds.
// 100 agent rejected the request (msg is the agent's)
// 101 agent failed otherwise     102 CHECK: addresses differ from prevResult
//
// DEL succeeds for an unknown endpoint, an empty or vanished CNI_NETNS and
// when repeated: the plugin never looks at the netns, the agent decides.
// CNI_PATH is not required: we delegate to no other plugin.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sluice.pb.h"

namespace sluice::cni {

inline const std::vector<std::string> kSupportedVersions = {
    "0.3.0", "0.3.1", "0.4.0", "1.0.0"};
inline constexpr const char* kDefaultSocket = "/run/sluice/sluice.sock";
inline constexpr int kRpcTimeoutSeconds = 30;

enum Code : int {
  kIncompatibleVersion = 1,
  kContainerUnknown = 3,
  kInvalidEnv = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kAgentRejected = 100,
  kAgentFailed = 101,
  kCheckMismatch = 102,
};

struct CniError {
  int code = 0;
  std::string msg;
  std::string details;
};

template <typename T>
using Parsed = std::variant<T, CniError>;

struct Env {
  std::string command, container_id, netns, ifname, args, path;
};

struct NetConf {
  std::string cni_version, name, type;
  std::string socket = kDefaultSocket;
  nlohmann::json prev_result;  // null if absent
};

// Returns the variable's value, nullopt when unset.
using Getenv = std::function<std::optional<std::string>(const std::string&)>;

// CNI_COMMAND and the variables it requires, validated as the spec says
// (container id [A-Za-z0-9][A-Za-z0-9_.-]*, ifname ≤ 15 bytes, no / : or
// whitespace, not . or ..).
Parsed<Env> parse_env(const Getenv& getenv);
// "K=V;K=V" (CNI_ARGS). Unknown keys are ignored (we only read the K8S_
// ones); a pair without '=' or an empty key is code 4.
Parsed<std::map<std::string, std::string>> parse_cni_args(std::string_view s);
Parsed<NetConf> parse_netconf(std::string_view stdin_text);
// Whether `version` (from the config) allows `command`.
std::optional<CniError> check_version(const std::string& command,
                                      const std::string& version);

nlohmann::json version_json();
// `cni_version`: the config's version when we support it, else 1.0.0.
nlohmann::json error_json(const CniError& e, const std::string& cni_version);
// The ADD result in the config's version (0.3.x/0.4.0 add "version" to
// each ip). Missing gateways default to 169.254.1.1 / fe80::1; one default
// route per address family present.
nlohmann::json result_json(const v1::EndpointReply& r, const Env& env,
                           const std::string& cni_version);
CniError from_grpc(const grpc::Status& s, const std::string& socket);

// One agent RPC: command is "ADD", "DEL" or "CHECK".
using AgentCall = std::function<grpc::Status(
    const std::string& command, const std::string& socket,
    const v1::EndpointRequest& req, v1::EndpointReply* reply)>;
// Reads stdin; nullopt on a read error. Not called for VERSION.
using ReadStdin = std::function<std::optional<std::string>()>;

struct Output {
  std::string stdout_text;  // with a trailing newline, or empty
  int exit_code = 0;
};
Output run(const Getenv& getenv, const ReadStdin& read_stdin,
           const AgentCall& agent);

}  // namespace sluice::cni

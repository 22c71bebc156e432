#include "cni/cni.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace sluice::cni {

namespace {

CniError env_error(std::string msg, std::string details = "") {
  return {kInvalidEnv, std::move(msg), std::move(details)};
}

// [A-Za-z0-9][A-Za-z0-9_.-]*: container ids and network names.
bool valid_id(const std::string& s) {
  if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0])))
    return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  });
}

std::optional<std::string> ifname_problem(const std::string& s) {
  if (s.size() > 15) return "longer than 15 characters";
  if (s == "." || s == "..") return "\".\" and \"..\" are not names";
  for (unsigned char c : s)
    if (c == '/' || c == ':' || std::isspace(c))
      return "contains '/', ':' or whitespace";
  return std::nullopt;
}

bool is_v6(const std::string& cidr) {
  return cidr.find(':') != std::string::npos;
}

const char* code_name(grpc::StatusCode c) {
  static const char* names[] = {
      "OK",           "CANCELLED",         "UNKNOWN",   "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",    "ALREADY_EXISTS",
      "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",      "OUT_OF_RANGE",      "UNIMPLEMENTED", "INTERNAL",
      "UNAVAILABLE",  "DATA_LOSS",         "UNAUTHENTICATED"};
  const int i = static_cast<int>(c);
  return i >= 0 && i <= 16 ? names[i] : "UNKNOWN";
}

}  // namespace

Parsed<Env> parse_env(const Getenv& getenv) {
  Env e;
  e.command = getenv("CNI_COMMAND").value_or("");
  if (e.command.empty()) return env_error("CNI_COMMAND is not set");
  if (e.command == "VERSION") return e;
  if (e.command != "ADD" && e.command != "DEL" && e.command != "CHECK")
    return env_error("CNI_COMMAND \"" + e.command + "\" is not supported",
                     "sluice-cni implements ADD, DEL, CHECK and VERSION "
                     "(spec up to 1.0.0; STATUS and GC need 1.1.0)");
  e.container_id = getenv("CNI_CONTAINERID").value_or("");
  e.netns = getenv("CNI_NETNS").value_or("");
  e.ifname = getenv("CNI_IFNAME").value_or("");
  e.args = getenv("CNI_ARGS").value_or("");
  e.path = getenv("CNI_PATH").value_or("");
  std::vector<std::string> missing;
  if (e.container_id.empty()) missing.push_back("CNI_CONTAINERID");
  if (e.netns.empty() && e.command != "DEL") missing.push_back("CNI_NETNS");
  if (e.ifname.empty()) missing.push_back("CNI_IFNAME");
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return env_error("required environment variables missing: " + list);
  }
  if (!valid_id(e.container_id))
    return env_error("CNI_CONTAINERID \"" + e.container_id + "\" is invalid",
                     "must match [a-zA-Z0-9][a-zA-Z0-9_.-]*");
  if (auto p = ifname_problem(e.ifname))
    return env_error("CNI_IFNAME \"" + e.ifname + "\" is invalid", *p);
  return e;
}

Parsed<std::map<std::string, std::string>> parse_cni_args(std::string_view s) {
  std::map<std::string, std::string> out;
  while (!s.empty()) {
    const auto semi = s.find(';');
    const auto pair = s.substr(0, semi);
    s = semi == std::string_view::npos ? "" : s.substr(semi + 1);
    if (pair.empty()) continue;  // tolerate "a=b;" and ";;"
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return env_error("CNI_ARGS: \"" + std::string(pair) +
                       "\" is not KEY=VALUE");
    out[std::string(pair.substr(0, eq))] = std::string(pair.substr(eq + 1));
  }
  return out;
}

Parsed<NetConf> parse_netconf(std::string_view text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return CniError{kDecodeFailure, "cannot decode the network config",
                    e.what()};
  }
  if (!j.is_object())
    return CniError{kDecodeFailure, "the network config is not a JSON object",
                    ""};
  auto str_field = [&](const char* k, std::string& out) -> bool {
    if (!j.contains(k)) return true;
    if (!j[k].is_string()) return false;
    out = j[k].get<std::string>();
    return true;
  };
  NetConf c;
  c.cni_version = "0.1.0";  // absent means 0.1.0, as libcni reads it
  for (auto [k, dst] : {std::pair{"cniVersion", &c.cni_version},
                         std::pair{"name", &c.name},
                         std::pair{"type", &c.type}})
    if (!str_field(k, *dst))
      return CniError{kDecodeFailure,
                      std::string("network config: \"") + k +
                          "\" must be a string",
                      ""};
  if (c.name.empty())
    return CniError{kInvalidConfig, "network config: \"name\" is missing", ""};
  if (!valid_id(c.name))
    return CniError{kInvalidConfig,
                    "network config: name \"" + c.name + "\" is invalid",
                    "must match [a-zA-Z0-9][a-zA-Z0-9_.-]*"};
  if (j.contains("socket") &&
      (!j["socket"].is_string() ||
       !j["socket"].get<std::string>().starts_with("/")))
    return CniError{kInvalidConfig,
                    "network config: \"socket\" must be an absolute path",
                    "the sluice agent's API socket, default " +
                        std::string(kDefaultSocket)};
  str_field("socket", c.socket);
  if (j.contains("prevResult")) {
    if (!j["prevResult"].is_object())
      return CniError{kInvalidConfig,
                      "network config: \"prevResult\" must be an object", ""};
    c.prev_result = j["prevResult"];
  }
  return c;
}

std::optional<CniError> check_version(const std::string& command,
                                      const std::string& version) {
  const auto& v = kSupportedVersions;
  if (std::find(v.begin(), v.end(), version) == v.end()) {
    std::string list;
    for (const auto& s : v) list += (list.empty() ? "" : ", ") + s;
    return CniError{kIncompatibleVersion, "incompatible CNI versions",
                    "config is \"" + version + "\", sluice-cni supports " +
                        list};
  }
  if (command == "CHECK" && version.starts_with("0.3."))
    return CniError{kIncompatibleVersion,
                    "config version " + version + " does not allow CHECK",
                    "CHECK needs cniVersion 0.4.0 or later"};
  return std::nullopt;
}

nlohmann::json version_json() {
  return {{"cniVersion", "1.0.0"}, {"supportedVersions", kSupportedVersions}};
}

nlohmann::json error_json(const CniError& e, const std::string& cni_version) {
  const auto& v = kSupportedVersions;
  const bool known = std::find(v.begin(), v.end(), cni_version) != v.end();
  return {{"cniVersion", known ? cni_version : "1.0.0"},
          {"code", e.code},
          {"msg", e.msg},
          {"details", e.details}};
}

nlohmann::json result_json(const v1::EndpointReply& r, const Env& env,
                           const std::string& cni_version) {
  nlohmann::json pod = {{"name", env.ifname}};
  if (!r.mac().empty()) pod["mac"] = r.mac();
  pod["sandbox"] = env.netns;
  nlohmann::json ips = nlohmann::json::array();
  std::string gw4, gw6;
  for (const auto& ip : r.ips()) {
    const bool v6 = is_v6(ip.address());
    std::string gw = ip.gateway();
    if (gw.empty()) gw = v6 ? "fe80::1" : "169.254.1.1";
    std::string& route_gw = v6 ? gw6 : gw4;  // the family's first gateway
    if (route_gw.empty()) route_gw = gw;
    nlohmann::json e = {
        {"address", ip.address()}, {"gateway", gw}, {"interface", 1}};
    if (cni_version != "1.0.0") e["version"] = v6 ? "6" : "4";
    ips.push_back(std::move(e));
  }
  nlohmann::json routes = nlohmann::json::array();
  if (!gw4.empty()) routes.push_back({{"dst", "0.0.0.0/0"}, {"gw", gw4}});
  if (!gw6.empty()) routes.push_back({{"dst", "::/0"}, {"gw", gw6}});
  return {{"cniVersion", cni_version},
          {"interfaces", {{{"name", r.host_ifname()}}, pod}},
          {"ips", ips},
          {"routes", routes},
          {"dns", nlohmann::json::object()}};
}

CniError from_grpc(const grpc::Status& s, const std::string& socket) {
  const std::string details =
      std::string(code_name(s.error_code())) + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return {kTryAgainLater, "cannot reach the sluice agent at " + socket,
              details};
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return {kTryAgainLater,
              "the sluice agent at " + socket + " did not answer within " +
                  std::to_string(kRpcTimeoutSeconds) + " s",
              details};
    case grpc::StatusCode::ABORTED:
      return {kTryAgainLater, s.error_message(), details};
    case grpc::StatusCode::NOT_FOUND:
      return {kContainerUnknown, s.error_message(), details};
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return {kAgentRejected, s.error_message(), details};
    default:
      return {kAgentFailed, "sluice agent error: " + s.error_message(),
              details};
  }
}

namespace {

// CHECK: the agent's addresses must be the ones the runtime recorded.
std::optional<CniError> compare_prev(const nlohmann::json& prev,
                                     const v1::EndpointReply& r) {
  if (!prev.is_object() || !prev.contains("ips")) return std::nullopt;
  std::set<std::string> want, have;
  for (const auto& ip : prev["ips"])
    if (ip.is_object() && ip.contains("address") && ip["address"].is_string())
      want.insert(ip["address"].get<std::string>());
  for (const auto& ip : r.ips()) have.insert(ip.address());
  if (want == have) return std::nullopt;
  auto join = [](const std::set<std::string>& s) {
    std::string out;
    for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
    return "[" + out + "]";
  };
  return CniError{kCheckMismatch,
                  "endpoint addresses differ from prevResult",
                  "prevResult " + join(want) + ", agent " + join(have)};
}

}  // namespace

Output run(const Getenv& getenv, const ReadStdin& read_stdin,
           const AgentCall& agent) {
  std::string ver = "1.0.0";
  auto fail = [&](const CniError& e) {
    return Output{error_json(e, ver).dump() + "\n", 1};
  };
  auto env_or = parse_env(getenv);
  if (auto* e = std::get_if<CniError>(&env_or)) return fail(*e);
  const Env& env = std::get<Env>(env_or);
  if (env.command == "VERSION") return {version_json().dump() + "\n", 0};

  auto text = read_stdin();
  if (!text) return fail({kIoFailure, "cannot read the network config", ""});
  auto conf_or = parse_netconf(*text);
  if (auto* e = std::get_if<CniError>(&conf_or)) return fail(*e);
  const NetConf& conf = std::get<NetConf>(conf_or);
  if (auto e = check_version(env.command, conf.cni_version)) return fail(*e);
  ver = conf.cni_version;

  v1::EndpointRequest req;
  req.set_container_id(env.container_id);
  req.set_netns(env.netns);
  req.set_ifname(env.ifname);
  auto args_or = parse_cni_args(env.args);
  if (auto* e = std::get_if<CniError>(&args_or)) {
    // DEL must not fail forever on arguments ADD would have refused.
    if (env.command != "DEL") return fail(*e);
  } else {
    const auto& args = std::get<0>(args_or);
    auto arg = [&](const char* k) {
      auto it = args.find(k);
      return it == args.end() ? std::string() : it->second;
    };
    req.set_pod_namespace(arg("K8S_POD_NAMESPACE"));
    req.set_pod_name(arg("K8S_POD_NAME"));
  }
  if (env.command == "ADD") {
    for (auto [k, v] : {std::pair{"K8S_POD_NAMESPACE", &req.pod_namespace()},
                        std::pair{"K8S_POD_NAME", &req.pod_name()}})
      if (v->empty())
        return fail(env_error(std::string("CNI_ARGS: ") + k + " is missing",
                              "sluice-cni serves Kubernetes pods; the "
                              "runtime passes K8S_POD_NAMESPACE and "
                              "K8S_POD_NAME in CNI_ARGS"));
  }

  v1::EndpointReply reply;
  const grpc::Status s = agent(env.command, conf.socket, req, &reply);
  if (env.command == "DEL")
    return s.ok() || s.error_code() == grpc::StatusCode::NOT_FOUND
               ? Output{}
               : fail(from_grpc(s, conf.socket));
  if (!s.ok()) return fail(from_grpc(s, conf.socket));
  if (env.command == "CHECK") {
    if (auto e = compare_prev(conf.prev_result, reply)) return fail(*e);
    return {};
  }
  return {result_json(reply, env, ver).dump() + "\n", 0};
}

}  // namespace sluice::cni

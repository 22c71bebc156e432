#include "cni/cni.h"

#include <gtest/gtest.h>

namespace {

namespace cni = sluice::cni;
namespace v1 = sluice::v1;
using nlohmann::json;

constexpr const char* kConf =
    R"({"cniVersion":"1.0.0","name":"sluice","type":"sluice-cni"})";

// A fake runtime: environment, stdin, and an agent that records requests.
struct Fake {
  std::map<std::string, std::string> env = {
      {"CNI_COMMAND", "ADD"},
      {"CNI_CONTAINERID", "abc123"},
      {"CNI_NETNS", "/var/run/netns/cni-1"},
      {"CNI_IFNAME", "eth0"},
      {"CNI_PATH", "/opt/cni/bin"},
      {"CNI_ARGS",
       "IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a;"
       "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=u-1"}};
  std::optional<std::string> stdin_text = kConf;
  grpc::Status status;
  v1::EndpointReply reply;
  std::vector<std::pair<std::string, v1::EndpointRequest>> calls;
  std::string socket;
  bool stdin_read = false;

  cni::Getenv getenv() {
    return [this](const std::string& k) -> std::optional<std::string> {
      auto it = env.find(k);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
  }
  cni::Output run() {
    return cni::run(
        getenv(),
        [this] {
          stdin_read = true;
          return stdin_text;
        },
        [this](const std::string& cmd, const std::string& sock,
               const v1::EndpointRequest& req, v1::EndpointReply* r) {
          calls.emplace_back(cmd, req);
          socket = sock;
          *r = reply;
          return status;
        });
  }
};

v1::EndpointReply dual_stack_reply() {
  v1::EndpointReply r;
  r.set_host_ifname("lxc1a2b3c");
  r.set_mac("02:00:0a:c8:00:05");
  auto* a = r.add_ips();
  a->set_address("10.200.0.5/32");
  a->set_gateway("169.254.1.1");
  auto* b = r.add_ips();
  b->set_address("fd10:200::5/128");
  b->set_gateway("fe80::1");
  return r;
}

json error_of(const cni::Output& o) {
  EXPECT_NE(o.exit_code, 0);
  return json::parse(o.stdout_text);
}

// --- environment and CNI_ARGS ---

TEST(CniEnv, ParsesAdd) {
  Fake f;
  auto e = cni::parse_env(f.getenv());
  ASSERT_TRUE(std::holds_alternative<cni::Env>(e));
  const auto& env = std::get<cni::Env>(e);
  EXPECT_EQ(env.command, "ADD");
  EXPECT_EQ(env.container_id, "abc123");
  EXPECT_EQ(env.netns, "/var/run/netns/cni-1");
  EXPECT_EQ(env.ifname, "eth0");
  EXPECT_EQ(env.path, "/opt/cni/bin");
}

TEST(CniEnv, MissingVariablesAreNamed) {
  Fake f;
  f.env.erase("CNI_CONTAINERID");
  f.env.erase("CNI_NETNS");
  auto e = std::get<cni::CniError>(cni::parse_env(f.getenv()));
  EXPECT_EQ(e.code, 4);
  EXPECT_NE(e.msg.find("CNI_CONTAINERID"), std::string::npos) << e.msg;
  EXPECT_NE(e.msg.find("CNI_NETNS"), std::string::npos) << e.msg;
  f.env.erase("CNI_COMMAND");
  e = std::get<cni::CniError>(cni::parse_env(f.getenv()));
  EXPECT_EQ(e.code, 4);
  EXPECT_NE(e.msg.find("CNI_COMMAND"), std::string::npos);
}

TEST(CniEnv, DelNeedsNoNetns) {
  Fake f;
  f.env["CNI_COMMAND"] = "DEL";
  f.env.erase("CNI_NETNS");
  EXPECT_TRUE(std::holds_alternative<cni::Env>(cni::parse_env(f.getenv())));
}

TEST(CniEnv, RejectsBadContainerIdAndIfname) {
  for (auto [var, val] : {std::pair{"CNI_CONTAINERID", "-abc"},
                          std::pair{"CNI_CONTAINERID", "a/b"},
                          std::pair{"CNI_IFNAME", "averyveryverylong0"},
                          std::pair{"CNI_IFNAME", "eth/0"},
                          std::pair{"CNI_IFNAME", ".."},
                          std::pair{"CNI_IFNAME", "eth 0"}}) {
    Fake f;
    f.env[var] = val;
    auto e = cni::parse_env(f.getenv());
    ASSERT_TRUE(std::holds_alternative<cni::CniError>(e)) << var << "=" << val;
    EXPECT_EQ(std::get<cni::CniError>(e).code, 4);
    EXPECT_NE(std::get<cni::CniError>(e).msg.find(var), std::string::npos);
  }
}

TEST(CniEnv, StatusAndGcAreUnsupported) {
  for (const char* c : {"STATUS", "GC", "FROB"}) {
    Fake f;
    f.env["CNI_COMMAND"] = c;
    auto j = error_of(f.run());
    EXPECT_EQ(j["code"], 4) << c;
    EXPECT_NE(j["msg"].get<std::string>().find(c), std::string::npos);
    EXPECT_FALSE(f.stdin_read);
    EXPECT_TRUE(f.calls.empty());
  }
}

TEST(CniArgs, ParsesPairs) {
  auto a = std::get<0>(cni::parse_cni_args(
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a=b;Empty=;"));
  EXPECT_EQ(a["IgnoreUnknown"], "1");
  EXPECT_EQ(a["K8S_POD_NAMESPACE"], "x");
  EXPECT_EQ(a["K8S_POD_NAME"], "a=b");  // split at the first '='
  EXPECT_EQ(a["Empty"], "");
  EXPECT_TRUE(std::get<0>(cni::parse_cni_args("")).empty());
}

TEST(CniArgs, RejectsMalformed) {
  for (const char* s : {"K8S_POD_NAME", "a=b;junk", "=x"}) {
    auto r = cni::parse_cni_args(s);
    ASSERT_TRUE(std::holds_alternative<cni::CniError>(r)) << s;
    EXPECT_EQ(std::get<cni::CniError>(r).code, 4);
  }
}

// --- network config and versions ---

TEST(CniConf, DefaultsAndSocket) {
  auto c = std::get<cni::NetConf>(cni::parse_netconf(kConf));
  EXPECT_EQ(c.cni_version, "1.0.0");
  EXPECT_EQ(c.name, "sluice");
  EXPECT_EQ(c.type, "sluice-cni");
  EXPECT_EQ(c.socket, "/run/sluice/sluice.sock");
  EXPECT_TRUE(c.prev_result.is_null());
  c = std::get<cni::NetConf>(cni::parse_netconf(
      R"({"cniVersion":"1.0.0","name":"n","type":"sluice-cni",)"
      R"("socket":"/tmp/s.sock","prevResult":{"ips":[]}})"));
  EXPECT_EQ(c.socket, "/tmp/s.sock");
  EXPECT_TRUE(c.prev_result.is_object());
}

TEST(CniConf, Errors) {
  const std::pair<const char*, int> cases[] = {
      {"{not json", 6},
      {"[1,2]", 6},
      {R"({"cniVersion":1,"name":"n"})", 6},
      {R"({"cniVersion":"1.0.0","type":"t"})", 7},
      {R"({"cniVersion":"1.0.0","name":"bad name"})", 7},
      {R"({"cniVersion":"1.0.0","name":"n","socket":"rel.sock"})", 7},
      {R"({"cniVersion":"1.0.0","name":"n","socket":5})", 7},
      {R"({"cniVersion":"1.0.0","name":"n","prevResult":[]})", 7},
  };
  for (auto [text, code] : cases) {
    auto r = cni::parse_netconf(text);
    ASSERT_TRUE(std::holds_alternative<cni::CniError>(r)) << text;
    EXPECT_EQ(std::get<cni::CniError>(r).code, code) << text;
  }
}

TEST(CniVersion, VersionOutput) {
  Fake f;
  f.env = {{"CNI_COMMAND", "VERSION"}};
  auto o = f.run();
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(json::parse(o.stdout_text),
            json::parse(R"({"cniVersion":"1.0.0","supportedVersions":)"
                        R"(["0.3.0","0.3.1","0.4.0","1.0.0"]})"));
  EXPECT_FALSE(f.stdin_read);
}

TEST(CniVersion, Negotiation) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0"})
    EXPECT_FALSE(cni::check_version("ADD", v)) << v;
  for (const char* v : {"0.1.0", "0.2.0", "1.1.0", "2.0.0", ""}) {
    auto e = cni::check_version("ADD", v);
    ASSERT_TRUE(e) << v;
    EXPECT_EQ(e->code, 1);
    EXPECT_NE(e->details.find("1.0.0"), std::string::npos);
  }
  EXPECT_EQ(cni::check_version("CHECK", "0.3.1")->code, 1);
  EXPECT_FALSE(cni::check_version("CHECK", "0.4.0"));
}

TEST(CniVersion, UnsupportedConfigVersionFails) {
  Fake f;
  f.stdin_text = R"({"cniVersion":"0.2.0","name":"sluice","type":"t"})";
  auto j = error_of(f.run());
  EXPECT_EQ(j["code"], 1);
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_TRUE(f.calls.empty());
  f.stdin_text = R"({"name":"sluice","type":"t"})";  // absent: 0.1.0
  EXPECT_EQ(error_of(f.run())["code"], 1);
}

// --- result and error JSON ---

TEST(CniResult, DualStackShape) {
  cni::Env env{"ADD", "abc123", "/var/run/netns/cni-1", "eth0", "", ""};
  auto j = cni::result_json(dual_stack_reply(), env, "1.0.0");
  EXPECT_EQ(j, json::parse(R"({
    "cniVersion": "1.0.0",
    "interfaces": [
      {"name": "lxc1a2b3c"},
      {"name": "eth0", "mac": "02:00:0a:c8:00:05",
       "sandbox": "/var/run/netns/cni-1"}],
    "ips": [
      {"address": "10.200.0.5/32", "gateway": "169.254.1.1", "interface": 1},
      {"address": "fd10:200::5/128", "gateway": "fe80::1", "interface": 1}],
    "routes": [
      {"dst": "0.0.0.0/0", "gw": "169.254.1.1"},
      {"dst": "::/0", "gw": "fe80::1"}],
    "dns": {}})"));
}

TEST(CniResult, SingleFamilyDefaultGatewayAndOldVersions) {
  v1::EndpointReply r;
  r.set_host_ifname("lxc0");
  r.add_ips()->set_address("fd10:200::7/128");  // no gateway given
  cni::Env env{"ADD", "c", "/ns", "eth0", "", ""};
  auto j = cni::result_json(r, env, "0.4.0");
  EXPECT_EQ(j["cniVersion"], "0.4.0");
  EXPECT_EQ(j["ips"][0]["gateway"], "fe80::1");
  EXPECT_EQ(j["ips"][0]["version"], "6");  // 0.3.x/0.4.0 results carry it
  EXPECT_EQ(j["routes"], json::parse(R"([{"dst":"::/0","gw":"fe80::1"}])"));
  EXPECT_FALSE(j["interfaces"][1].contains("mac"));
  EXPECT_FALSE(cni::result_json(r, env, "1.0.0")["ips"][0].contains("version"));
}

TEST(CniError, Json) {
  auto j = cni::error_json({7, "bad", "why"}, "0.4.0");
  EXPECT_EQ(j, json::parse(R"({"cniVersion":"0.4.0","code":7,"msg":"bad",)"
                           R"("details":"why"})"));
  EXPECT_EQ(cni::error_json({1, "m", ""}, "9.9.9")["cniVersion"], "1.0.0");
}

TEST(CniError, GrpcMapping) {
  using C = grpc::StatusCode;
  const std::pair<C, int> cases[] = {
      {C::UNAVAILABLE, 11},      {C::DEADLINE_EXCEEDED, 11},
      {C::ABORTED, 11},          {C::NOT_FOUND, 3},
      {C::INVALID_ARGUMENT, 100}, {C::RESOURCE_EXHAUSTED, 100},
      {C::FAILED_PRECONDITION, 100}, {C::INTERNAL, 101},
      {C::UNIMPLEMENTED, 101}};
  for (auto [code, want] : cases) {
    auto e = cni::from_grpc({code, "agent says no"}, "/run/s.sock");
    EXPECT_EQ(e.code, want) << static_cast<int>(code);
  }
  auto e = cni::from_grpc({C::INVALID_ARGUMENT, "ifname too long"}, "/s");
  EXPECT_EQ(e.msg, "ifname too long");
  EXPECT_NE(e.details.find("INVALID_ARGUMENT"), std::string::npos);
  e = cni::from_grpc({C::UNAVAILABLE, "connect failed"}, "/run/s.sock");
  EXPECT_NE(e.msg.find("/run/s.sock"), std::string::npos);
}

// --- whole commands against a fake agent ---

TEST(CniRun, AddCallsAgentAndPrintsResult) {
  Fake f;
  f.stdin_text =
      R"({"cniVersion":"1.0.0","name":"sluice","type":"sluice-cni",)"
      R"("socket":"/tmp/agent.sock"})";
  f.reply = dual_stack_reply();
  auto o = f.run();
  ASSERT_EQ(o.exit_code, 0) << o.stdout_text;
  ASSERT_EQ(f.calls.size(), 1u);
  EXPECT_EQ(f.calls[0].first, "ADD");
  const auto& q = f.calls[0].second;
  EXPECT_EQ(q.container_id(), "abc123");
  EXPECT_EQ(q.netns(), "/var/run/netns/cni-1");
  EXPECT_EQ(q.ifname(), "eth0");
  EXPECT_EQ(q.pod_namespace(), "x");
  EXPECT_EQ(q.pod_name(), "a");
  EXPECT_EQ(f.socket, "/tmp/agent.sock");
  auto j = json::parse(o.stdout_text);
  EXPECT_EQ(j["ips"][0]["address"], "10.200.0.5/32");
  EXPECT_EQ(j["interfaces"][1]["sandbox"], "/var/run/netns/cni-1");
}

TEST(CniRun, AddWithoutPodArgsNamesTheVariable) {
  for (auto [args, missing] :
       {std::pair{"K8S_POD_NAME=a", "K8S_POD_NAMESPACE"},
        std::pair{"IgnoreUnknown=1;K8S_POD_NAMESPACE=x", "K8S_POD_NAME"}}) {
    Fake f;
    f.env["CNI_ARGS"] = args;
    auto j = error_of(f.run());
    EXPECT_EQ(j["code"], 4);
    EXPECT_NE(j["msg"].get<std::string>().find(missing), std::string::npos);
    EXPECT_TRUE(f.calls.empty());
  }
}

TEST(CniRun, AddAgentRejectionAndUnreachable) {
  Fake f;
  f.status = {grpc::StatusCode::INVALID_ARGUMENT, "pod x/a does not exist"};
  auto j = error_of(f.run());
  EXPECT_EQ(j["code"], 100);
  EXPECT_EQ(j["msg"], "pod x/a does not exist");
  f.status = {grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"};
  EXPECT_EQ(error_of(f.run())["code"], 11);
}

TEST(CniRun, ErrorUsesConfigVersion) {
  Fake f;
  f.stdin_text = R"({"cniVersion":"0.4.0","name":"sluice","type":"t"})";
  f.status = {grpc::StatusCode::INTERNAL, "boom"};
  auto j = error_of(f.run());
  EXPECT_EQ(j["cniVersion"], "0.4.0");
  EXPECT_EQ(j["code"], 101);
}

TEST(CniRun, StdinReadFailure) {
  Fake f;
  f.stdin_text = std::nullopt;
  EXPECT_EQ(error_of(f.run())["code"], 5);
}

TEST(CniRun, DelIsForgiving) {
  Fake f;
  f.env["CNI_COMMAND"] = "DEL";
  f.env["CNI_NETNS"] = "";  // netns already gone
  f.env["CNI_ARGS"] = "garbage";  // not a reason to fail DEL
  auto o = f.run();
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.stdout_text, "");
  f.status = {grpc::StatusCode::NOT_FOUND, "no such endpoint"};
  o = f.run();  // second DEL of the same endpoint
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.stdout_text, "");
  ASSERT_EQ(f.calls.size(), 2u);
  EXPECT_EQ(f.calls[1].first, "DEL");
  EXPECT_EQ(f.calls[1].second.netns(), "");
}

TEST(CniRun, DelWithAgentDownAsksForRetry) {
  Fake f;
  f.env["CNI_COMMAND"] = "DEL";
  f.status = {grpc::StatusCode::UNAVAILABLE, "connect: No such file"};
  auto j = error_of(f.run());
  EXPECT_EQ(j["code"], 11);
  EXPECT_NE(j["msg"].get<std::string>().find("/run/sluice/sluice.sock"),
            std::string::npos);
}

TEST(CniRun, CheckComparesPrevResult) {
  Fake f;
  f.env["CNI_COMMAND"] = "CHECK";
  f.reply = dual_stack_reply();
  f.stdin_text =
      R"({"cniVersion":"1.0.0","name":"sluice","type":"sluice-cni",)"
      R"("prevResult":{"ips":[{"address":"10.200.0.5/32","interface":1},)"
      R"({"address":"fd10:200::5/128","interface":1}]}})";
  auto o = f.run();
  EXPECT_EQ(o.exit_code, 0) << o.stdout_text;
  EXPECT_EQ(o.stdout_text, "");
  EXPECT_EQ(f.calls.at(0).first, "CHECK");
  f.reply.mutable_ips(0)->set_address("10.200.0.9/32");
  auto j = error_of(f.run());
  EXPECT_EQ(j["code"], 102);
  f.status = {grpc::StatusCode::NOT_FOUND, "unknown endpoint"};
  EXPECT_EQ(error_of(f.run())["code"], 3);
}

TEST(CniRun, CheckRefusedForOldConfig) {
  Fake f;
  f.env["CNI_COMMAND"] = "CHECK";
  f.stdin_text = R"({"cniVersion":"0.3.1","name":"sluice","type":"t"})";
  auto j = error_of(f.run());
  EXPECT_EQ(j["code"], 1);
  EXPECT_TRUE(f.calls.empty());
}

}  // namespace

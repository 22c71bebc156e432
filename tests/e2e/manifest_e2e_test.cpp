// sluicectl apply/delete/get against a real agent: validation, all-or-
// nothing, restart persistence.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e_util.h"

namespace sluice::e2e {
namespace {

using namespace std::chrono_literals;

const char* kGood = R"(apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {pod: a}}
spec: {containers: [{name: c, ports: [{containerPort: 80, name: serve-80-tcp}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-80, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 80}]}]
)";

class ManifestE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    sfx_ = unique_suffix();
    ns_ = std::make_unique<Netns>("sl-m" + sfx_);
    tmp_ = "/tmp/sluice-me2e-" + sfx_;
    std::filesystem::create_directories(tmp_);
  }
  void TearDown() override {
    agent_.reset();
    sh(bin("sluice-agent") + " --cleanup --bpffs /sys/fs/bpf/sluice-me2e-" + sfx_ +
       " --socket " + tmp_ + "/a.sock");
    std::filesystem::remove_all(tmp_);
  }
  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--bpffs", "/sys/fs/bpf/sluice-me2e-" + sfx_, "--socket",
                                  tmp_ + "/a.sock", "--state-dir", tmp_ + "/state"};
    args.insert(args.end(), extra.begin(), extra.end());
    agent_ = std::make_unique<AgentProc>(ns_->name(), args, tmp_ + "/agent.log");
    std::string why;
    ASSERT_TRUE(agent_->wait_ready(tmp_ + "/a.sock", tmp_ + "/agent.log", &why)) << why;
  }
  CmdResult ctl(const std::string& args) {
    return sh(bin("sluicectl") + " --socket " + tmp_ + "/a.sock " + args);
  }
  std::string file(const std::string& name, const std::string& text) {
    std::ofstream(tmp_ + "/" + name) << text;
    return tmp_ + "/" + name;
  }
  std::string sfx_, tmp_;
  std::unique_ptr<Netns> ns_;
  std::unique_ptr<AgentProc> agent_;
};

TEST_F(ManifestE2E, ApplyGetDeleteAndRestart) {
  start();
  auto r = ctl("apply -f " + file("good.yaml", kGood));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("pod/x/a created"), std::string::npos) << r.out;
  r = ctl("apply -f " + file("good.yaml", kGood));
  EXPECT_NE(r.out.find("pod/x/a unchanged"), std::string::npos) << r.out;
  r = ctl("get pods -o json");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto pods = nlohmann::json::parse(r.out);
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0]["metadata"]["labels"]["pod"], "a");
  r = ctl("get namespaces");
  EXPECT_NE(r.out.find("kubernetes.io/metadata.name=x"), std::string::npos) << r.out;

  agent_->kill9();
  start();
  r = ctl("get networkpolicies -o json");
  ASSERT_EQ(r.rc, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 1u) << "restored from the state dir";

  r = ctl("delete -f " + file("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("networkpolicy/x/allow-80 deleted"), std::string::npos) << r.out;
  EXPECT_EQ(nlohmann::json::parse(ctl("get pods -o json").out).size(), 0u);
}

TEST_F(ManifestE2E, BadManifestIsRejectedWithTheFieldNamed) {
  start();
  ASSERT_EQ(ctl("apply -f " + file("good.yaml", kGood)).rc, 0);
  const std::string bad = std::string(kGood) + R"(---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: broken, namespace: x}
spec:
  podSelector:
    matchExpressions: [{key: pod, operator: Foo, values: [a]}]
)";
  auto r = ctl("apply -f " + file("bad.yaml", bad));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("document 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("matchExpressions[0].operator"), std::string::npos) << r.out;
  EXPECT_EQ(nlohmann::json::parse(ctl("get networkpolicies -o json").out).size(), 1u);
  r = ctl("apply -f " + file("kind.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("Deployment"), std::string::npos) << r.out;
  r = ctl("get widgets");
  EXPECT_NE(r.rc, 0);
}

// conntrack.max sizes the pinned table; a new size on restart migrates it;
// a bad duration is refused naming the flag.
TEST_F(ManifestE2E, ConntrackMaxSizesTheTableAcrossRestarts) {
  const std::string pin = "/sys/fs/bpf/sluice-me2e-" + sfx_ + "/maps/sluice_ct";
  auto max_entries = [&] {
    auto r = sh("bpftool -j map show pinned " + pin);
    if (r.rc != 0) return int64_t(-1);
    return nlohmann::json::parse(r.out).value("max_entries", int64_t(-1));
  };
  ASSERT_NO_FATAL_FAILURE(start({"--conntrack-max", "4096"}));
  EXPECT_EQ(max_entries(), 4096);
  agent_.reset();
  ASSERT_NO_FATAL_FAILURE(start({"--conntrack-max", "8192", "--conntrack-gc-interval", "5s"}));
  EXPECT_EQ(max_entries(), 8192);
  agent_.reset();

  AgentProc bad(ns_->name(),
                {"--bpffs", "/sys/fs/bpf/sluice-me2e-" + sfx_, "--socket", tmp_ + "/b.sock",
                 "--state-dir", tmp_ + "/state", "--conntrack-tcp-established-timeout", "6x"},
                tmp_ + "/bad.log");
  EXPECT_EQ(bad.wait_exit(10s), 2);
  EXPECT_NE(read_file(tmp_ + "/bad.log").find("--conntrack-tcp-established-timeout"),
            std::string::npos)
      << read_file(tmp_ + "/bad.log");
}

}  // namespace
}  // namespace sluice::e2e

// The CNI end-to-end fixture: an agent in a node namespace, pods created
// by sluice-cni ADD in their own namespaces (removed in TearDown, even when
// the test failed). Shared by the pod networking and service suites.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e_util.h"

namespace sluice::e2e {

using nlohmann::json;

class CniE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_blackhole_routes();
    sfx_ = unique_suffix();
    node_ = std::make_unique<Netns>("sl-cn" + sfx_);
    tmp_ = "/tmp/sluice-cni-" + sfx_;
    bpffs_ = "/sys/fs/bpf/sluice-cni-" + sfx_;
    std::filesystem::create_directories(tmp_);
    std::ofstream(tmp_ + "/net.conf")
        << R"({"cniVersion":"1.0.0","name":"sluice","type":"sluice-cni","socket":")"
        << tmp_ << "/a.sock\"}";
    ASSERT_NO_FATAL_FAILURE(before_start());
    start();
  }
  // For fixtures that need more in the node namespace before the agent
  // starts (node devices) or more agent flags (extra_args_).
  virtual void before_start() {}
  void TearDown() override {
    for (auto& [name, ns] : pods_) cni("DEL", name);
    agent_.reset();
    node_->exec(bin("sluice-agent") + " --cleanup --bpffs " + bpffs_ + " --socket " +
                tmp_ + "/a.sock");
    pods_.clear();
    node_.reset();
    std::filesystem::remove_all(tmp_);
  }
  void start() {
    std::vector<std::string> args{"--bpffs", bpffs_, "--socket", tmp_ + "/a.sock",
                                  "--state-dir", tmp_ + "/state", "--pod-cidr",
                                  "10.200.77.0/24", "--pod-cidr-v6", "fd10:200::77:0/112"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    agent_ = std::make_unique<AgentProc>(node_->name(), args, tmp_ + "/agent.log");
    std::string why;
    ASSERT_TRUE(agent_->wait_ready(tmp_ + "/a.sock", tmp_ + "/agent.log", &why)) << why;
  }
  CmdResult ctl(const std::string& args) {
    return sh(bin("sluicectl") + " --socket " + tmp_ + "/a.sock " + args);
  }
  // Runs the plugin like a container runtime does.
  CmdResult cni(const std::string& cmd, const std::string& pod,
                const std::string& ns = "x") {
    const std::string netns = "/var/run/netns/sl-cp" + pod + sfx_;
    return sh("CNI_COMMAND=" + cmd + " CNI_CONTAINERID=cid-" + pod + sfx_ +
              " CNI_NETNS=" + netns + " CNI_IFNAME=eth0 CNI_PATH=/nonexistent" +
              " CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAMESPACE=" + ns +
              ";K8S_POD_NAME=" + pod + "' " + bin("sluice-cni") + " < " + tmp_ +
              "/net.conf");
  }
  json add_pod(const std::string& pod) {
    pods_[pod] = std::make_unique<Netns>("sl-cp" + pod + sfx_);
    auto r = cni("ADD", pod);
    EXPECT_EQ(r.rc, 0) << r.out << read_file(tmp_ + "/agent.log");
    return r.rc == 0 ? json::parse(r.out) : json{};
  }
  static std::string v4_of(const json& result) {
    for (const auto& ip : result["ips"]) {
      std::string a = ip["address"];
      if (a.find(':') == std::string::npos) return a.substr(0, a.find('/'));
    }
    return "";
  }
  static std::string v6_of(const json& result) {
    for (const auto& ip : result["ips"]) {
      std::string a = ip["address"];
      if (a.find(':') != std::string::npos) return a.substr(0, a.find('/'));
    }
    return "";
  }
  bool ping(const std::string& pod, const std::string& dst, const std::string& src = "") {
    return pods_[pod]->exec("ping -n -c 1 -W 1 " + (src.empty() ? "" : "-I " + src + " ") + dst)
               .rc == 0;
  }

  std::string sfx_, tmp_, bpffs_;
  std::vector<std::string> extra_args_;  // more agent flags (set before SetUp)
  std::unique_ptr<Netns> node_;
  std::unique_ptr<AgentProc> agent_;
  std::map<std::string, std::unique_ptr<Netns>> pods_;
};

}  // namespace sluice::e2e

// Services and EndpointSlices through sluicectl against a real agent:
// allocation visible in `get services`, all-or-nothing rejection naming the
// field, allocations kept across a restart and freed by delete.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "e2e_util.h"

namespace sluice::e2e {
namespace {

const char* kGood = R"(apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: x, annotations: {sluice.io/scheduler: maglev}}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: x, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.200.0.5], conditions: {ready: true}}]
ports: [{name: http, port: 8080}]
)";

class ServiceManifestE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    sfx_ = unique_suffix();
    ns_ = std::make_unique<Netns>("sl-s" + sfx_);
    tmp_ = "/tmp/sluice-se2e-" + sfx_;
    std::filesystem::create_directories(tmp_);
  }
  void TearDown() override {
    agent_.reset();
    sh(bin("sluice-agent") + " --cleanup --bpffs /sys/fs/bpf/sluice-se2e-" +
       sfx_ + " --socket " + tmp_ + "/a.sock");
    std::filesystem::remove_all(tmp_);
  }
  void start() {
    agent_ = std::make_unique<AgentProc>(
        ns_->name(),
        std::vector<std::string>{"--bpffs", "/sys/fs/bpf/sluice-se2e-" + sfx_,
                                 "--socket", tmp_ + "/a.sock", "--state-dir",
                                 tmp_ + "/state"},
        tmp_ + "/agent.log");
    std::string why;
    ASSERT_TRUE(agent_->wait_ready(tmp_ + "/a.sock", tmp_ + "/agent.log", &why))
        << why;
  }
  CmdResult ctl(const std::string& args) {
    return sh(bin("sluicectl") + " --socket " + tmp_ + "/a.sock " + args);
  }
  std::string file(const std::string& name, const std::string& text) {
    std::ofstream(tmp_ + "/" + name) << text;
    return tmp_ + "/" + name;
  }
  nlohmann::json services() {
    auto r = ctl("get services -o json");
    EXPECT_EQ(r.rc, 0) << r.out;
    return r.rc == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::array();
  }
  std::string sfx_, tmp_;
  std::unique_ptr<Netns> ns_;
  std::unique_ptr<AgentProc> agent_;
};

TEST_F(ServiceManifestE2E, ApplyAllocatesGetShowsItAndRestartKeepsIt) {
  start();
  auto r = ctl("apply -f " + file("good.yaml", kGood));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("service/x/web created"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("endpointslice/x/web-1 created"), std::string::npos)
      << r.out;

  auto svcs = services();
  ASSERT_EQ(svcs.size(), 1u);
  const auto spec = svcs[0]["spec"];
  EXPECT_EQ(spec["clusterIP"], "10.96.1.1") << "first dynamic address";
  EXPECT_EQ(spec["clusterIPs"], nlohmann::json::array({"10.96.1.1"}));
  EXPECT_EQ(spec["ipFamilies"], nlohmann::json::array({"IPv4"}));
  EXPECT_EQ(spec["ports"][0]["nodePort"], 30086);
  EXPECT_EQ(spec["ports"][0]["targetPort"], "http");
  EXPECT_EQ(spec["externalTrafficPolicy"], "Cluster");
  EXPECT_EQ(svcs[0]["metadata"]["annotations"]["sluice.io/scheduler"],
            "maglev");

  r = ctl("get svc");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("CLUSTER-IP"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NodePort"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("10.96.1.1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("80:30086/TCP"), std::string::npos) << r.out;
  r = ctl("get endpointslices");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("10.200.0.5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("8080"), std::string::npos) << r.out;

  r = ctl("apply -f " + file("good.yaml", kGood));
  EXPECT_NE(r.out.find("service/x/web unchanged"), std::string::npos) << r.out;

  agent_->kill9();
  start();
  svcs = services();
  ASSERT_EQ(svcs.size(), 1u);
  EXPECT_EQ(svcs[0]["spec"]["clusterIP"], "10.96.1.1")
      << "restored, not re-allocated";
  EXPECT_EQ(svcs[0]["spec"]["ports"][0]["nodePort"], 30086);

  r = ctl("delete -f " + file("svc.yaml",
                              "apiVersion: v1\nkind: Service\n"
                              "metadata: {name: web, namespace: x}\n"
                              "spec: {ports: [{port: 80}]}\n"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(services().empty());
  // Its address is free again.
  r = ctl("apply -f " +
          file("again.yaml",
               "apiVersion: v1\nkind: Service\nmetadata: {name: "
               "dns, namespace: x}\nspec: {clusterIP: "
               "10.96.1.1, ports: [{port: 53, protocol: UDP}]}\n"));
  EXPECT_EQ(r.rc, 0) << r.out;
}

TEST_F(ServiceManifestE2E, BadManifestIsRejectedAndNothingApplied) {
  start();
  ASSERT_EQ(ctl("apply -f " + file("good.yaml", kGood)).rc, 0);
  const std::string bad = R"(apiVersion: v1
kind: Service
metadata: {name: api, namespace: x}
spec: {type: NodePort, ports: [{port: 443, nodePort: 30443}]}
---
apiVersion: v1
kind: Service
metadata: {name: taken, namespace: x}
spec: {type: NodePort, ports: [{port: 80, nodePort: 30086}]}
)";
  auto r = ctl("apply -f " + file("bad.yaml", bad));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("document 2 (Service x/taken): spec.ports[0].nodePort: "
                       "Invalid value 30086: provided port is already "
                       "allocated (to Service x/web)"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(services().size(), 1u) << "the first document was not applied";

  r = ctl("apply -f " + file("ext.yaml",
                             "apiVersion: v1\nkind: Service\nmetadata: {name: "
                             "db, namespace: x}\nspec: {type: ExternalName, "
                             "externalName: db.example.com}\n"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("spec.type: Unsupported value \"ExternalName\": not "
                       "supported by Sluice"),
            std::string::npos)
      << r.out;
  r = ctl("apply -f " + file("fqdn.yaml",
                             "apiVersion: discovery.k8s.io/v1\nkind: "
                             "EndpointSlice\nmetadata: {name: f, namespace: "
                             "x}\naddressType: FQDN\n"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("addressType: Unsupported value \"FQDN\""),
            std::string::npos)
      << r.out;
  EXPECT_EQ(nlohmann::json::parse(ctl("get endpointslices -o json").out).size(),
            1u);
}

}  // namespace
}  // namespace sluice::e2e

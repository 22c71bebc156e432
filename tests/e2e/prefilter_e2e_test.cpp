// Prefilter end to end: two namespaces joined by a veth pair, the agent in
// the "node" namespace with XDP on its end, traffic from the "client".
//
//   client ns                          node ns (sluice-agent, XDP)
//   veth c: 198.18.10.1/24             veth n: 198.18.10.2/24
//           198.51.100.7/32 (denied)           routes back to the
//           2001:db8:1::1/64                    denied prefixes
//           2001:db8:dead::7/128 (denied)      2001:db8:1::2/64
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e_util.h"

namespace sluice::e2e {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class PrefilterE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_blackhole_routes();
    sfx_ = unique_suffix();
    client_ = std::make_unique<Netns>("sl-c" + sfx_);
    node_ = std::make_unique<Netns>("sl-n" + sfx_);
    cdev_ = "slc" + sfx_;
    ndev_ = "sln" + sfx_;
    tmp_ = "/tmp/sluice-e2e-" + sfx_;
    bpffs_ = "/sys/fs/bpf/sluice-e2e-" + sfx_;
    std::filesystem::create_directories(tmp_);
    ASSERT_EQ(sh("ip link add " + cdev_ + " netns " + client_->name() +
                 " type veth peer name " + ndev_ + " netns " + node_->name())
                  .rc,
              0);
    for (const auto& c : {
             "ip addr add 198.18.10.1/24 dev " + cdev_,
             "ip addr add 198.51.100.7/32 dev " + cdev_,
             "ip addr add 2001:db8:1::1/64 dev " + cdev_ + " nodad",
             "ip addr add 2001:db8:dead::7/128 dev " + cdev_ + " nodad",
             "ip link set " + cdev_ + " up"})
      ASSERT_EQ(client_->exec(c).rc, 0) << c;
    for (const auto& c : {
             "ip addr add 198.18.10.2/24 dev " + ndev_,
             "ip addr add 2001:db8:1::2/64 dev " + ndev_ + " nodad",
             "ip link set " + ndev_ + " up",
             "ip route add 198.51.100.0/24 dev " + ndev_,
             "ip -6 route add 2001:db8:dead::/48 dev " + ndev_})
      ASSERT_EQ(node_->exec(c).rc, 0) << c;
    ASSERT_TRUE(ping("198.18.10.1", "198.18.10.2")) << "topology broken";
  }

  void TearDown() override {
    agent_.reset();
    sh(bin("sluice-agent") + " --cleanup " + flags_str());
    std::filesystem::remove_all(tmp_);
    node_.reset();
    client_.reset();
  }

  std::vector<std::string> flags() const {
    return {"--bpffs", bpffs_, "--socket", sock(), "--state-dir",
            tmp_ + "/state"};
  }
  std::string flags_str() const {
    std::string s;
    for (const auto& f : flags()) s += f + " ";
    return s;
  }
  std::string sock() const { return tmp_ + "/agent.sock"; }

  void start_agent(std::vector<std::string> extra = {}) {
    auto args = flags();
    args.insert(args.end(), {"--devices", ndev_, "--prefilter-deny",
                             "198.51.100.0/24,2001:db8:dead::/48"});
    args.insert(args.end(), extra.begin(), extra.end());
    agent_ = std::make_unique<AgentProc>(node_->name(), args,
                                         tmp_ + "/agent.log");
    std::string why;
    ASSERT_TRUE(agent_->wait_ready(sock(), tmp_ + "/agent.log", &why)) << why;
  }

  CmdResult ctl(const std::string& args) {
    return sh(bin("sluicectl") + " --socket " + sock() + " " + args);
  }
  json status() {
    auto r = ctl("status -o json");
    EXPECT_EQ(r.rc, 0) << r.out;
    return r.rc == 0 ? json::parse(r.out) : json{};
  }
  uint64_t counter(const std::string& reason) {
    uint64_t n = 0;
    const json st = status();
    for (const auto& c : st["counters"])
      if (c["reason"] == reason) n += c["packets"].get<uint64_t>();
    return n;
  }
  bool ping(const std::string& src, const std::string& dst) {
    return client_->exec("ping -n -c 1 -W 1 -I " + src + " " + dst).rc == 0;
  }
  // XDP program ids attached to the node device, as the kernel reports them.
  std::string xdp_prog_on_device() {
    auto r = node_->exec("ip -d link show dev " + ndev_);
    auto p = r.out.find("prog/xdp id ");
    if (p == std::string::npos) return "";
    return r.out.substr(p + 12, r.out.find_first_of(" \n", p + 12) - p - 12);
  }

  std::string sfx_, cdev_, ndev_, tmp_, bpffs_;
  std::unique_ptr<Netns> client_, node_;
  std::unique_ptr<AgentProc> agent_;
};

TEST_F(PrefilterE2E, DenyList_DropsDeniedSourcesAndPassesOthers) {
  start_agent();
  auto st = status();
  ASSERT_EQ(st["attachments"].size(), 1u);
  EXPECT_EQ(st["attachments"][0]["device"], ndev_);
  EXPECT_EQ(st["attachments"][0]["mode"], "native");
  const uint64_t before = counter("prefilter-deny");
  EXPECT_TRUE(ping("198.18.10.1", "198.18.10.2"));
  EXPECT_FALSE(ping("198.51.100.7", "198.18.10.2"));
  EXPECT_TRUE(ping("2001:db8:1::1", "2001:db8:1::2"));
  EXPECT_FALSE(ping("2001:db8:dead::7", "2001:db8:1::2"));
  EXPECT_GE(counter("prefilter-deny"), before + 2) << ctl("status").out;
  EXPECT_EQ(counter("malformed"), 0u);
}

TEST_F(PrefilterE2E, RuntimeChanges_TakeEffectWithoutReload) {
  start_agent();
  const auto prog = status()["programs"][0]["id"];
  ASSERT_TRUE(ping("198.18.10.1", "198.18.10.2"));
  auto r = ctl("prefilter add 198.18.10.1/32");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_FALSE(ping("198.18.10.1", "198.18.10.2"));
  EXPECT_EQ(status()["programs"][0]["id"], prog) << "must not reload";
  r = ctl("prefilter delete 198.18.10.1/32");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(ping("198.18.10.1", "198.18.10.2"));
  r = ctl("prefilter list");
  EXPECT_NE(r.out.find("198.51.100.0/24"), std::string::npos);
  EXPECT_EQ(r.out.find("198.18.10.1/32"), std::string::npos);
}

TEST_F(PrefilterE2E, BadInput_RejectedAndDenyListUnchanged) {
  start_agent();
  const auto before = ctl("prefilter list -o json").out;
  auto r = ctl("prefilter add 198.18.10.1/32 10.0.0.300/8");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("10.0.0.300/8"), std::string::npos) << r.out;
  r = ctl("prefilter delete 192.0.2.0/24");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("not in the deny list"), std::string::npos) << r.out;
  EXPECT_EQ(ctl("prefilter list -o json").out, before);
  EXPECT_TRUE(ping("198.18.10.1", "198.18.10.2"));
  EXPECT_FALSE(ping("198.51.100.7", "198.18.10.2"));
}

TEST_F(PrefilterE2E, AgentKilled_KeepsDropping_RestartReattachesOnce) {
  start_agent();
  ASSERT_EQ(ctl("prefilter add 203.0.113.0/24").rc, 0);
  auto st = status();
  const auto link_id = st["attachments"][0]["link_id"];
  const auto old_prog = st["programs"][0]["id"].get<uint32_t>();
  agent_->kill9();
  agent_.reset();

  // No agent: the pinned link keeps the program and the maps alive.
  EXPECT_FALSE(ping("198.51.100.7", "198.18.10.2"));
  EXPECT_TRUE(ping("198.18.10.1", "198.18.10.2"));
  EXPECT_EQ(xdp_prog_on_device(), std::to_string(old_prog));

  start_agent();
  st = status();
  ASSERT_EQ(st["attachments"].size(), 1u);
  EXPECT_EQ(st["attachments"][0]["link_id"], link_id)
      << "restart must update the pinned link, not attach a second one";
  const auto new_prog = st["programs"][0]["id"].get<uint32_t>();
  EXPECT_NE(new_prog, old_prog);
  EXPECT_EQ(xdp_prog_on_device(), std::to_string(new_prog));
  // Exactly one XDP link runs the new program.
  auto links = json::parse(sh("bpftool -j link show").out);
  int n = 0;
  for (const auto& l : links)
    if (l.value("prog_id", 0u) == new_prog) n++;
  EXPECT_EQ(n, 1);
  // Run-time additions were restored from the state directory.
  EXPECT_NE(ctl("prefilter list").out.find("203.0.113.0/24"),
            std::string::npos);
  EXPECT_FALSE(ping("198.51.100.7", "198.18.10.2"));
  EXPECT_TRUE(ping("198.18.10.1", "198.18.10.2"));
}

TEST_F(PrefilterE2E, Cleanup_LeavesNoPinsLinksOrPrograms) {
  start_agent();
  auto st = status();
  const auto prog = st["programs"][0]["id"].get<uint32_t>();
  const auto link = st["attachments"][0]["link_id"].get<uint32_t>();
  agent_.reset();  // SIGTERM: datapath stays
  EXPECT_FALSE(ping("198.51.100.7", "198.18.10.2"));

  auto r = node_->exec(bin("sluice-agent") + " --cleanup " + flags_str());
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_FALSE(std::filesystem::exists(bpffs_));
  EXPECT_EQ(xdp_prog_on_device(), "");
  const json links = json::parse(sh("bpftool -j link show").out);
  for (const auto& l : links)
    EXPECT_NE(l.value("id", 0u), link);
  // Programs go away once nothing references them (freed asynchronously).
  bool gone = false;
  for (int i = 0; i < 50 && !gone; i++) {
    gone = sh("bpftool prog show id " + std::to_string(prog)).rc != 0;
    if (!gone) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(gone) << "program " << prog << " still loaded";
  EXPECT_TRUE(ping("198.51.100.7", "198.18.10.2"));
}

TEST_F(PrefilterE2E, BadInput_UnknownDeviceFailsStartCleanly) {
  auto args = flags();
  args.insert(args.end(), {"--devices", ndev_ + ",nosuchdev0"});
  AgentProc a(node_->name(), args, tmp_ + "/agent.log");
  EXPECT_EQ(a.wait_exit(10s), 1);
  const auto log = read_file(tmp_ + "/agent.log");
  EXPECT_NE(log.find("device nosuchdev0 not found"), std::string::npos) << log;
  EXPECT_EQ(xdp_prog_on_device(), "") << "nothing may be attached";
}

TEST_F(PrefilterE2E, BadInput_InvalidConfigFileNamesTheField) {
  const std::string cfg = tmp_ + "/bad.yaml";
  sh("printf 'devices: [" + ndev_ +
     "]\\nprefilter:\\n  deny: [198.51.100.0/24, 300.0.0.0/8]\\n' > " + cfg);
  auto args = flags();
  args.insert(args.end(), {"--config", cfg});
  AgentProc a(node_->name(), args, tmp_ + "/agent.log");
  EXPECT_EQ(a.wait_exit(10s), 2);
  const auto log = read_file(tmp_ + "/agent.log");
  EXPECT_NE(log.find("prefilter.deny[1]"), std::string::npos) << log;
  EXPECT_EQ(xdp_prog_on_device(), "");
}

TEST_F(PrefilterE2E, Security_SocketAndPinsAreOwnerOnly) {
  start_agent();
  struct stat sb {};
  ASSERT_EQ(::stat(sock().c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600);
  for (const auto& e : std::filesystem::recursive_directory_iterator(bpffs_)) {
    ASSERT_EQ(::stat(e.path().c_str(), &sb), 0);
    if (S_ISREG(sb.st_mode))
      EXPECT_EQ(sb.st_mode & 0777, 0600) << e.path();
    else
      EXPECT_EQ(sb.st_mode & 0077, 0) << e.path();
  }
}

}  // namespace
}  // namespace sluice::e2e

// Pod networking end to end through the CNI plugin: the agent runs in a
// node namespace, sluice-cni ADD creates pods in their own namespaces, and
// real traffic flows pod to pod through sluice_lxc.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cni_fixture.h"
#include "e2e_util.h"
#include "sluice/abi.h"

namespace sluice::e2e {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TEST_F(CniE2E, AddGivesAddressesAndPodsTalkOverIpv4AndIpv6) {
  auto a = add_pod("a"), b = add_pod("b");
  ASSERT_FALSE(v4_of(a).empty()) << a.dump();
  EXPECT_EQ(a["cniVersion"], "1.0.0");
  EXPECT_EQ(v4_of(a).rfind("10.200.77.", 0), 0u) << a.dump();
  EXPECT_NE(v4_of(a), v4_of(b));
  EXPECT_TRUE(ping("a", v4_of(b)));
  EXPECT_TRUE(ping("b", v4_of(a)));
  EXPECT_TRUE(pods_["a"]->exec("ping -6 -n -c 3 -W 1 " + v6_of(b)).rc == 0);
  auto eps = json::parse(ctl("get endpoints -o json").out);
  EXPECT_EQ(eps.size(), 2u);
}

TEST_F(CniE2E, PodCannotSpoofAnotherAddress) {
  auto a = add_pod("a"), b = add_pod("b");
  ASSERT_EQ(pods_["a"]->exec("ip addr add 10.200.77.250/32 dev eth0").rc, 0);
  EXPECT_FALSE(ping("a", v4_of(b), "10.200.77.250"));
  EXPECT_TRUE(ping("a", v4_of(b)));
  auto st = json::parse(ctl("status -o json").out);
  uint64_t spoofed = 0;
  for (const auto& c : st["counters"])
    if (c["reason"] == "spoofed-source") spoofed += c["packets"].get<uint64_t>();
  EXPECT_GE(spoofed, 1u);
}

TEST_F(CniE2E, AddIsIdempotentDelRemovesEverythingTwiceIsFine) {
  auto a = add_pod("a");
  auto again = cni("ADD", "a");
  ASSERT_EQ(again.rc, 0) << again.out;
  EXPECT_EQ(v4_of(json::parse(again.out)), v4_of(a));
  const std::string host = a["interfaces"][0]["name"];
  EXPECT_EQ(node_->exec("ip link show " + host).rc, 0);
  // Conntrack entries cache endpoints as delivery targets; deleting one
  // must move the endpoint epoch so they re-resolve (never deliver to a
  // vanished or reused veth).
  auto epoch = [&]() -> int64_t {
    int fd = bpf_obj_get((bpffs_ + "/maps/" SLUICE_MAP_EP_EPOCH).c_str());
    if (fd < 0) return -1;
    uint32_t k = 0, v = 0;
    const int rc = bpf_map_lookup_elem(fd, &k, &v);
    ::close(fd);
    return rc ? -1 : int64_t(v);
  };
  const int64_t before = epoch();
  ASSERT_GE(before, 0) << "sluice_ep_epoch not readable under " << bpffs_;
  EXPECT_EQ(cni("DEL", "a").rc, 0);
  EXPECT_GT(epoch(), before) << "endpoint delete must bump sluice_ep_epoch";
  EXPECT_NE(node_->exec("ip link show " + host).rc, 0);
  EXPECT_NE(pods_["a"]->exec("ip link show eth0").rc, 0);
  EXPECT_EQ(cni("DEL", "a").rc, 0);
  EXPECT_EQ(json::parse(ctl("get endpoints -o json").out).size(), 0u);
  // The address went back to the pool (IPAM rotates through the range
  // before reusing one, so the next pod gets a fresh address).
  auto b = add_pod("b");
  EXPECT_FALSE(v4_of(b).empty());
}

TEST_F(CniE2E, PodLabelsGiveTheEndpointItsIdentity) {
  ASSERT_EQ(ctl("apply -f - <<'EOF'\napiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {ns: x}}\nEOF").rc, 0);
  add_pod("a");
  auto id0 = json::parse(ctl("get endpoints -o json").out)[0]["identity"].get<uint32_t>();
  auto r = ctl("apply -f - <<'EOF'\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {pod: a}}\nEOF");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto id1 = json::parse(ctl("get endpoints -o json").out)[0]["identity"].get<uint32_t>();
  EXPECT_NE(id0, id1) << "labels changed, so must the identity";
  auto ids = json::parse(ctl("get identities -o json").out);
  bool found = false;
  for (const auto& i : ids)
    if (i["id"] == id1) found = i["labels"].value("pod", "") == "a" &&
                                i["labels"].value("ns:ns", "") == "x";
  EXPECT_TRUE(found) << ids.dump();
}

TEST_F(CniE2E, TrafficSurvivesAgentKillAndRestartAdoptsEndpoints) {
  auto a = add_pod("a"), b = add_pod("b");
  ASSERT_TRUE(ping("a", v4_of(b)));
  agent_->kill9();
  EXPECT_TRUE(ping("a", v4_of(b))) << "the datapath runs without the agent";
  start();
  EXPECT_EQ(json::parse(ctl("get endpoints -o json").out).size(), 2u);
  EXPECT_TRUE(ping("a", v4_of(b)));
  EXPECT_EQ(cni("DEL", "a").rc, 0);
}

// NetworkPolicy through the whole agent: apply, compile, maps, datapath.
class CniPolicyE2E : public CniE2E {
 protected:
  void SetUp() override {
    CniE2E::SetUp();
    if (HasFatalFailure()) return;
    auto r = ctl("apply -f - <<'EOF'\n"
                 "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {ns: x}}\n---\n"
                 "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {pod: a}}\n---\n"
                 "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {pod: b}}\n"
                 "spec: {containers: [{name: c, ports: [{containerPort: 80, name: serve-80-tcp}]}]}\n"
                 "EOF");
    ASSERT_EQ(r.rc, 0) << r.out;
    a_ = add_pod("a");
    b_ = add_pod("b");
    // OpenBSD nc listens on one family per process.
    for (int port : {80, 81})
      for (const char* fam : {"-4", "-6"})
        pods_["b"]->exec(std::string("sh -c 'timeout 20 nc ") + fam + " -lk -p " +
                         std::to_string(port) + " >/dev/null 2>&1 &'");
    std::this_thread::sleep_for(200ms);
  }
  bool tcp(const std::string& from, const std::string& dst, int port) {
    return pods_[from]->exec("nc -z -w 1 " + dst + " " + std::to_string(port)).rc == 0;
  }
  CmdResult apply(const std::string& yaml) {
    return ctl("apply -f - <<'EOF'\n" + yaml + "EOF");
  }
  json a_, b_;
};

TEST_F(CniPolicyE2E, DenyAllThenAllowOnePortFromOnePod) {
  ASSERT_TRUE(tcp("a", v4_of(b_), 80));
  ASSERT_TRUE(tcp("a", v4_of(b_), 81));
  auto r = apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                 "metadata: {name: deny-all, namespace: x}\n"
                 "spec: {podSelector: {matchLabels: {pod: b}}, policyTypes: [Ingress]}\n");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_FALSE(tcp("a", v4_of(b_), 80));
  EXPECT_FALSE(ping("a", v4_of(b_)));
  EXPECT_TRUE(ping("b", v4_of(a_))) << "b's egress is not restricted; replies pass";
  r = apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            "metadata: {name: allow-a-80, namespace: x}\n"
            "spec:\n  podSelector: {matchLabels: {pod: b}}\n"
            "  ingress: [{from: [{podSelector: {matchLabels: {pod: a}}}], ports: [{port: serve-80-tcp}]}]\n");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(tcp("a", v4_of(b_), 80)) << "named port resolved on b";
  EXPECT_FALSE(tcp("a", v4_of(b_), 81));
  auto t = ctl("policy trace --from x/a --to x/b --port 80/TCP");
  ASSERT_EQ(t.rc, 0) << t.out;
  EXPECT_NE(t.out.find("ALLOWED"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("x/allow-a-80 ingress[0]"), std::string::npos) << t.out;
  t = ctl("policy trace --from x/a --to x/b --port 81/TCP");
  EXPECT_NE(t.out.find("DENIED"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("x/deny-all"), std::string::npos) << t.out;
  EXPECT_EQ(ctl("policy trace --from x/a --to x/b --port 80/XTP").rc, 2);
  // The allowed connection is in conntrack, with the rule that allowed it.
  auto ct = json::parse(ctl("ct list -o json").out);
  bool seen = false;
  for (const auto& e : ct)
    seen |= e["protocol"] == "TCP" && e["dst"] == v4_of(b_) + ":80" &&
            e["rule"] == "x/allow-a-80 ingress[0]" && e["seenReply"] == true;
  EXPECT_TRUE(seen) << ct.dump(1);
  auto fl = ctl("ct flush");
  EXPECT_EQ(fl.rc, 0) << fl.out;
  EXPECT_EQ(json::parse(ctl("ct list -o json").out).size(), 0u);
  EXPECT_TRUE(tcp("a", v6_of(b_), 80));
  EXPECT_FALSE(tcp("a", v6_of(b_), 81));
  r = ctl("delete -f - <<'EOF'\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
          "metadata: {name: deny-all, namespace: x}\nEOF");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_FALSE(tcp("a", v4_of(b_), 81)) << "allow-a-80 still isolates b";
  r = ctl("delete -f - <<'EOF'\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
          "metadata: {name: allow-a-80, namespace: x}\nEOF");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(tcp("a", v4_of(b_), 81)) << "no policy selects b any more";
}

TEST_F(CniPolicyE2E, IpBlockMatchesPodAddresses) {
  auto r = apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                 "metadata: {name: from-block, namespace: x}\n"
                 "spec:\n  podSelector: {matchLabels: {pod: b}}\n"
                 "  ingress: [{from: [{ipBlock: {cidr: 10.200.77.0/24, except: [" +
                 v4_of(a_) + "/32]}}]}]\n");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_FALSE(tcp("a", v4_of(b_), 80)) << "a is in the except";
  r = apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            "metadata: {name: from-block, namespace: x}\n"
            "spec:\n  podSelector: {matchLabels: {pod: b}}\n"
            "  ingress: [{from: [{ipBlock: {cidr: 10.200.77.0/24}}]}]\n");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(tcp("a", v4_of(b_), 80));
  EXPECT_FALSE(tcp("a", v6_of(b_), 80)) << "an IPv4 block does not allow IPv6";
  r = apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            "metadata: {name: from-block6, namespace: x}\n"
            "spec:\n  podSelector: {matchLabels: {pod: b}}\n"
            "  ingress: [{from: [{ipBlock: {cidr: \"fd10:200::77:0/112\"}}]}]\n");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(tcp("a", v6_of(b_), 80)) << "the IPv6 block does";
}

TEST_F(CniPolicyE2E, EgressDenyAndDropReasonCounted) {
  auto r = apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                 "metadata: {name: a-egress-none, namespace: x}\n"
                 "spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress]}\n");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_FALSE(tcp("a", v4_of(b_), 80));
  auto st = json::parse(ctl("status -o json").out);
  uint64_t n = 0;
  for (const auto& c : st["counters"])
    if (c["reason"] == "policy-deny-egress") n += c["packets"].get<uint64_t>();
  EXPECT_GE(n, 1u);
}

}  // namespace
}  // namespace sluice::e2e

// Services end to end, Ginkgo style (Services.<Context>_<It>): pods
// created by sluice-cni, Services and EndpointSlices applied with sluicectl,
// real TCP connections from a client pod to the service address through
// sluice_lxc's load balancer. Backends are Python servers in the pods'
// namespaces that answer with their pod name (lb_scripts.h), so every
// connection says which backend it reached.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "service_fixture.h"
#include "sluice/abi.h"

namespace sluice::e2e {
namespace {

using namespace std::chrono_literals;

TEST_F(Services, ClusterIP_ReachesEveryBackendOverIpv4AndIpv6) {
  ASSERT_EQ(apply(web()).rc, 0);
  auto vips = cluster_ips("web");
  ASSERT_EQ(vips.size(), 2u);
  for (const auto& vip : vips) {
    auto j = connect(vip, 60);
    EXPECT_EQ(j["fail"], 0) << vip << " " << j.dump();
    for (const char* p : {"b", "c", "d"})
      EXPECT_GT(j["counts"].value(p, 0), 0) << vip << " never reached " << p << ": " << j.dump();
  }
  auto lb = ctl("lb list");
  EXPECT_EQ(lb.rc, 0) << lb.out;
  EXPECT_NE(lb.out.find(vips[0]), std::string::npos) << lb.out;
  // Conntrack shows both halves of a service connection.
  auto ct = json::parse(ctl("ct list -o json").out, nullptr, false);
  int to_backend = 0, from_frontend = 0;
  for (const auto& e : ct) {
    const std::string nat = e.value("nat", "");
    to_backend += nat.rfind("to ", 0) == 0;
    from_frontend += nat == "from " + vips[0] + ":80";
  }
  EXPECT_GT(to_backend, 0) << ct.dump();
  EXPECT_GT(from_frontend, 0) << ct.dump();
}

TEST_F(Services, Weights_Split90To10Within3PercentOver10000Connections) {
  ASSERT_EQ(apply(web(", annotations: {sluice.io/backend-weights: \"" + ip_["b"] + "=900," +
                      ip_["c"] + "=100," + ip_["d"] + "=0\"}"))
                .rc,
            0);
  auto j = connect(cluster_ips("web")[0], 10000);
  EXPECT_EQ(j["fail"], 0) << j.dump();
  const double b = j["counts"].value("b", 0), c = j["counts"].value("c", 0);
  EXPECT_NEAR(b / (b + c), 0.9, 0.03) << j.dump();
  EXPECT_EQ(j["counts"].value("d", 0), 0) << j.dump();
}

TEST_F(Services, SessionAffinity_ClientIPKeepsAClientOnOneBackend) {
  ASSERT_EQ(apply(web("", ", sessionAffinity: ClientIP")).rc, 0);
  auto j = connect(cluster_ips("web")[0], 40);
  EXPECT_EQ(j["fail"], 0) << j.dump();
  EXPECT_EQ(j["counts"].size(), 1u) << j.dump();
}

TEST_F(Services, Hairpin_ABackendReachesItselfThroughItsService) {
  ASSERT_EQ(apply(web()).rc, 0);
  const auto vip = cluster_ips("web")[0];
  auto r = pods_["b"]->exec("python3 " + tmp_ + "/client.py " + vip + " 80 30", 60);
  auto j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["fail"], 0) << r.out;
  EXPECT_GT(j["counts"].value("b", 0), 0) << r.out;  // itself, through the VIP
}

TEST_F(Services, Terminating_BackendKeepsItsConnectionAndGetsNoNewOnes) {
  ASSERT_EQ(apply(web("", "", false) + "---\n" +
                  slice({{"b", "{ready: true}"}, {"c", "{ready: true}"}}))
                .rc,
            0);
  const auto vip = cluster_ips("web")[0];
  // A connection held open for 4 s; its backend then starts terminating.
  pods_["client"]->exec("sh -c 'python3 " + tmp_ + "/hold.py " + vip + " 80 4 > " + tmp_ +
                        "/hold.out 2>&1 &'");
  std::string held;
  for (int i = 0; i < 50 && held.empty(); i++) {
    std::this_thread::sleep_for(100ms);
    auto out = read_file(tmp_ + "/hold.out");
    if (!out.empty() && out.find('\n') != std::string::npos) held = out.substr(0, out.find('\n'));
  }
  ASSERT_TRUE(held == "b" || held == "c") << held;
  const std::string other = held == "b" ? "c" : "b";
  ASSERT_EQ(apply(slice({{held, "{ready: false, serving: true, terminating: true}"},
                         {other, "{ready: true}"}}))
                .rc,
            0);
  auto j = connect(vip, 30);
  EXPECT_EQ(j["fail"], 0) << j.dump();
  EXPECT_EQ(j["counts"].value(held, 0), 0) << j.dump();
  for (int i = 0; i < 60; i++) {
    std::this_thread::sleep_for(100ms);
    if (read_file(tmp_ + "/hold.out").find("ok") != std::string::npos) break;
  }
  EXPECT_NE(read_file(tmp_ + "/hold.out").find("ok"), std::string::npos)
      << read_file(tmp_ + "/hold.out");
}

TEST_F(Services, NoReadyEndpoints_NewConnectionsAreRejectedWithADropReason) {
  ASSERT_EQ(apply(web("", "", false) + "---\n" + slice({{"b", "{ready: false}"}})).rc, 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto j = connect(cluster_ips("web")[0], 3);
  EXPECT_EQ(j["fail"], 3) << j.dump();
  // Refused at once (a TCP RST), not left to time out.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_GE(drops("lb-no-backend"), 3u);
}

TEST_F(Services, CircuitBreaker_CapHoldsUntilAConnectionCloses) {
  ASSERT_EQ(apply(web(", annotations: {sluice.io/max-connections-per-backend: \"2\"}", "", false) +
                  "---\n" + slice({{"b", "{ready: true}"}}))
                .rc,
            0);
  const auto vip = cluster_ips("web")[0];
  for (int i : {1, 2})
    pods_["client"]->exec("sh -c 'python3 " + tmp_ + "/hold.py " + vip + " 80 " +
                          std::to_string(i * 2) + " > " + tmp_ + "/hold" + std::to_string(i) +
                          ".out 2>&1 &'");
  std::this_thread::sleep_for(800ms);
  auto j = connect(vip, 1);
  EXPECT_EQ(j["fail"], 1) << "a third connection got through the cap: " << j.dump();
  EXPECT_GE(drops("lb-backends-at-cap"), 1u);
  // The first held connection ends after 2 s: its place frees.
  std::this_thread::sleep_for(2s);
  j = connect(vip, 1);
  EXPECT_EQ(j["fail"], 0) << j.dump();
}

TEST_F(Services, Maglev_RemovingOneBackendOfThreeMovesAboutAThirdOfFlows) {
  const std::string maglev = ", annotations: {sluice.io/lb-algorithm: maglev, "
                             "sluice.io/maglev-table-size: \"1021\"}";
  ASSERT_EQ(apply(web(maglev, "", false) + "---\n" +
                  slice({{"b", "{ready: true}"}, {"c", "{ready: true}"}, {"d", "{ready: true}"}}))
                .rc,
            0);
  const auto vip = cluster_ips("web")[0];
  auto before = connect(vip, 300, 20000);
  ASSERT_EQ(before["fail"], 0) << before.dump();
  // Same flows again: Maglev, not conntrack, must give the same answers.
  ASSERT_EQ(ctl("ct flush").rc, 0);
  auto again = connect(vip, 300, 20000);
  EXPECT_EQ(again["by_sport"], before["by_sport"]);
  ASSERT_EQ(apply(slice({{"b", "{ready: true}"}, {"c", "{ready: true}"}})).rc, 0);
  ASSERT_EQ(ctl("ct flush").rc, 0);
  auto after = connect(vip, 300, 20000);
  ASSERT_EQ(after["fail"], 0) << after.dump();
  int moved = 0, kept_survivors = 0, survivors = 0;
  for (const auto& [sport, was] : before["by_sport"].items()) {
    const std::string now = after["by_sport"].value(sport, "");
    if (now != was) moved++;
    if (was != "d") {
      survivors++;
      if (now == was) kept_survivors++;
    }
  }
  EXPECT_NEAR(moved / 300.0, 1.0 / 3, 0.1) << before.dump() << after.dump();
  EXPECT_GE(kept_survivors, survivors * 95 / 100);
}

TEST_F(Services, ObserveShowsAServiceConnectionsFrontendAndBackend) {
  ASSERT_EQ(apply(web()).rc, 0);
  auto vips = cluster_ips("web");
  ASSERT_FALSE(vips.empty());
  auto j = connect(vips[0], 3);
  ASSERT_EQ(j["fail"], 0) << j.dump();
  int seen = 0;
  for (const auto& e : xlate_events(vips[0] + ":80")) {
    const std::string be = e.value("backend", "");
    EXPECT_TRUE(be == ip_["b"] + ":8080" || be == ip_["c"] + ":8080" ||
                be == ip_["d"] + ":8080")
        << e.dump();
    seen++;
  }
  // One translation event per new connection (flows level, the default).
  EXPECT_EQ(seen, 3);
}

TEST_F(Services, BpfMapsListShowsPodsAndIdentityLabels) {
  ASSERT_EQ(apply(web()).rc, 0);
  auto vips = cluster_ips("web");
  ASSERT_FALSE(vips.empty());
  EXPECT_EQ(connect(vips[0], 3)["fail"], 0);
  auto rows = [&](const std::string& map) {
    auto r = ctl("bpf " + map + " list -o json");
    EXPECT_EQ(r.rc, 0) << r.out;
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_array()) << r.out;
    return j.is_array() ? j : json::array();
  };
  // Endpoints by address: the pod's name and its identity's labels.
  bool found = false;
  for (const auto& e : rows("ep_ip"))
    if (e.value("address", "") == ip_["b"]) {
      found = true;
      EXPECT_EQ(e.value("pod", ""), "x/b") << e.dump();
      EXPECT_NE(e.value("labels", "").find("app=web"), std::string::npos) << e.dump();
    }
  EXPECT_TRUE(found);
  found = false;
  for (const auto& e : rows("sluice_ipcache"))
    found |= e.value("prefix", "") == ip_["client"] + "/32" &&
             e.value("labels", "").find("app=client") != std::string::npos;
  EXPECT_TRUE(found) << rows("ipcache").dump();
  // Conntrack names the client pod; counters name their reasons.
  found = false;
  for (const auto& e : rows("ct")) found |= e.value("initiatorPod", "") == "x/client";
  EXPECT_TRUE(found) << rows("ct").dump();
  found = false;
  for (const auto& e : rows("counters")) found |= e.value("reason", "") == "forwarded";
  EXPECT_TRUE(found);
  EXPECT_NE(ctl("bpf ep_ip list").out.find("x/b"), std::string::npos);
  auto bad = ctl("bpf nosuchmap list");
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.out.find("map: unsupported value \"nosuchmap\""), std::string::npos) << bad.out;
}

}  // namespace

// North-south: a node device with sluice_xdp, and a client in a namespace
// outside the node on the other end of it.
class NodePort : public Services {
 protected:
  void before_start() override {
    outside_ = std::make_unique<Netns>("sl-co" + sfx_);
    auto r = sh("ip link add np0 netns " + node_->name() + " type veth peer name eth0 netns " +
                outside_->name());
    ASSERT_EQ(r.rc, 0) << r.out;
    ASSERT_EQ(node_->exec("ip addr add 198.18.77.2/24 dev np0").rc, 0);
    ASSERT_EQ(node_->exec("ip link set np0 up").rc, 0);
    ASSERT_EQ(outside_->exec("ip addr add 198.18.77.1/24 dev eth0").rc, 0);
    ASSERT_EQ(outside_->exec("ip link set eth0 up").rc, 0);
    // A veth hands a local sender's TCP/UDP packets over with the checksum
    // left to offload (CHECKSUM_PARTIAL), which XDP cannot see; packets
    // from a wire carry full checksums. Make the outside a wire.
    ASSERT_EQ(outside_->exec("ethtool -K eth0 tx off").rc, 0);
    // XDP_TX on a veth hands the frame to the peer's NAPI, which a veth
    // runs only with an XDP program of its own (a NIC needs nothing): the
    // bench's empty XDP_PASS program.
    auto x = outside_->exec("ip link set dev eth0 xdpdrv obj " + bin("../bpf/sluice_empty.bpf.o") +
                            " sec xdp");
    ASSERT_EQ(x.rc, 0) << x.out;
    extra_args_ = {"--devices", "np0"};
  }
  json connect_from_outside(const std::string& addr, uint16_t port, int n) {
    auto r = outside_->exec("python3 " + tmp_ + "/client.py " + addr + " " +
                                std::to_string(port) + " " + std::to_string(n),
                            120);
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j.is_discarded() ? json{{"counts", json::object()}, {"fail", n}} : j;
  }
  std::unique_ptr<Netns> outside_;
};

TEST_F(NodePort, FromANamespaceOutsideTheNodeReachesEveryBackend) {
  ASSERT_EQ(apply("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x}\n"
                  "spec: {type: NodePort, selector: {app: web}, ports: [{name: http, "
                  "port: 80, targetPort: http, nodePort: 30080}]}\n")
                .rc,
            0);
  auto j = connect_from_outside("198.18.77.2", 30080, 30);
  EXPECT_EQ(j["fail"], 0) << j.dump() << read_file(tmp_ + "/agent.log");
  for (const char* p : {"b", "c", "d"})
    EXPECT_GT(j["counts"].value(p, 0), 0) << "never reached " << p << ": " << j.dump();
  auto lb = ctl("lb list");
  EXPECT_NE(lb.out.find("198.18.77.2:30080"), std::string::npos) << lb.out;
  // The client saw the node address only: its connections are in
  // conntrack as translated from the node port.
  auto ct = json::parse(ctl("ct list -o json").out, nullptr, false);
  int from_node_port = 0;
  for (const auto& e : ct) from_node_port += e.value("nat", "") == "from 198.18.77.2:30080";
  EXPECT_GT(from_node_port, 0) << ct.dump();
  // A NetworkPolicy on the backends that admits only the client pod shuts
  // the outside client out (its address keeps its own identity: world).
  ASSERT_EQ(apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: "
                  "{name: only-client, namespace: x}\nspec: {podSelector: {matchLabels: "
                  "{app: web}}, ingress: [{from: [{podSelector: {matchLabels: {app: "
                  "client}}}]}]}\n")
                .rc,
            0);
  j = connect_from_outside("198.18.77.2", 30080, 3);
  EXPECT_EQ(j["fail"], 3) << j.dump();
  EXPECT_GE(drops("policy-deny-ingress"), 1u);
}

TEST_F(NodePort, WithoutBackendsTheClientIsRefusedAtOnce) {
  ASSERT_EQ(apply("apiVersion: v1\nkind: Service\nmetadata: {name: none, namespace: x}\n"
                  "spec: {type: NodePort, selector: {app: nobody}, ports: [{name: http, "
                  "port: 80, targetPort: 8080, nodePort: 30090}]}\n")
                .rc,
            0);
  // Refused (a RST from XDP), not a timeout: Kubernetes' "no endpoints"
  // behaviour, for a client outside the node too.
  std::ofstream(tmp_ + "/refused.py")
      << "import socket, sys\ns = socket.socket()\ns.settimeout(3)\ntry:\n"
         "    s.connect((sys.argv[1], int(sys.argv[2])))\n    print('connected')\n"
         "except ConnectionRefusedError:\n    print('refused')\nexcept OSError as e:\n"
         "    print(type(e).__name__)\n";
  auto r = outside_->exec("python3 " + tmp_ + "/refused.py 198.18.77.2 30090");
  EXPECT_EQ(r.out, "refused\n");
  EXPECT_GE(drops("lb-no-backend"), 1u);
}

// A backend on another host: the node forwards at XDP. The outside
// namespace is also the router between the node and that host, which
// serves the backend address 198.18.79.5 (a test-link address: any
// routable backend of an EndpointSlice). Every client packet goes in and
// out of the node's device in XDP; so does every reply (SNAT brings them
// back).
class NodePortRemote : public NodePort {
 protected:
  void before_start() override {
    NodePort::before_start();
    if (HasFatalFailure()) return;
    remote_ = std::make_unique<Netns>("sl-rn" + sfx_);
    auto r = sh("ip link add eth1 netns " + outside_->name() + " type veth peer name eth0 netns " +
                remote_->name());
    ASSERT_EQ(r.rc, 0) << r.out;
    for (const char* c : {"ip addr add 198.18.78.1/24 dev eth1", "ip link set eth1 up",
                          "sysctl -qw net.ipv4.ip_forward=1", "ethtool -K eth1 tx off",
                          "ip route add 198.18.79.0/24 via 198.18.78.2"})
      ASSERT_EQ(outside_->exec(c).rc, 0) << c;
    for (const char* c : {"ip addr add 198.18.78.2/24 dev eth0", "ip link set eth0 up",
                          "ip link set lo up", "ip addr add 198.18.79.5/32 dev lo",
                          "ethtool -K eth0 tx off", "ip route add default via 198.18.78.1"})
      ASSERT_EQ(remote_->exec(c).rc, 0) << c;
    // The next hop is an address the node never hears from otherwise, so
    // the first packet finds it unresolved (lb-no-neigh) and the agent's
    // managed neighbour entry must fix that.
    ASSERT_EQ(outside_->exec("ip addr add 198.18.77.3/24 dev eth0").rc, 0);
    ASSERT_EQ(node_->exec("ip route add 198.18.79.0/24 via 198.18.77.3").rc, 0);
    std::ofstream(tmp_ + "/server.py") << kLbServer;
    remote_->exec("sh -c 'timeout 300 python3 " + tmp_ + "/server.py remote 8080 280 "
                  ">/dev/null 2>&1 &'");
    bool up = false;
    for (int i = 0; i < 100 && !up; i++) {
      up = remote_->exec("ss -Hltn 'sport = :8080' | grep -q 8080").rc == 0;
      if (!up) std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(up) << "server in the remote namespace did not start";
  }
  std::string remote_service() {
    return "apiVersion: v1\nkind: Service\nmetadata: {name: far, namespace: x}\n"
           "spec: {type: NodePort, ports: [{name: http, port: 80, nodePort: 30081}]}\n"
           "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: "
           "{name: far-1, namespace: x, labels: {kubernetes.io/service-name: far}}\n"
           "addressType: IPv4\nports: [{name: http, port: 8080, protocol: TCP}]\n"
           "endpoints: [{addresses: [\"198.18.79.5\"]}]\n";
  }
  std::unique_ptr<Netns> remote_;
};

TEST_F(NodePortRemote, SnatForwardsToABackendOnAnotherHostAndBack) {
  ASSERT_EQ(apply(remote_service()).rc, 0);
  auto j = connect_from_outside("198.18.77.2", 30081, 20);
  EXPECT_EQ(j["fail"], 0) << j.dump() << read_file(tmp_ + "/agent.log");
  EXPECT_EQ(j["counts"].value("remote", 0), 20) << j.dump();
  // The backend sees the node's address, not the client's (SNAT), with a
  // port from the SNAT range: a connection held open shows it.
  outside_->exec("sh -c 'timeout 20 python3 " + tmp_ + "/hold.py 198.18.77.2 30081 6 "
                 ">/dev/null 2>&1 &'");
  // The server is dual-stack: the peer reads [::ffff:198.18.77.2]:PORT.
  int peer_port = 0;
  std::string seen;
  for (int i = 0; i < 50 && !peer_port; i++) {
    seen = remote_->exec("ss -Htn state established '( sport = :8080 )'").out;
    auto at = seen.find("198.18.77.2]:");
    if (at != std::string::npos) peer_port = std::atoi(seen.c_str() + at + 13);
    else std::this_thread::sleep_for(100ms);
  }
  EXPECT_GE(peer_port, int(SLUICE_NP_SNAT_PORT_MIN)) << seen;
  EXPECT_LE(peer_port, int(SLUICE_NP_SNAT_PORT_MAX)) << seen;
  EXPECT_EQ(seen.find("198.18.77.1"), std::string::npos) << seen;
  // The first packet found the next hop unresolved: dropped with its
  // reason, and the agent made it a managed neighbour the kernel resolved.
  EXPECT_GE(drops("lb-no-neigh"), 1u);
  auto neigh = node_->exec("ip neigh show 198.18.77.3");
  EXPECT_NE(neigh.out.find("managed"), std::string::npos) << neigh.out;
  EXPECT_NE(neigh.out.find("lladdr"), std::string::npos) << neigh.out;
}

}  // namespace sluice::e2e

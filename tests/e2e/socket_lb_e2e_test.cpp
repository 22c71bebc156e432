// Socket-level load balancing end to end (SocketLB.<Context>_<It>): the
// Services fixture with lb.socketLB on, its cgroup hooks attached at the
// machine's cgroup v2 root. They see every socket of the machine; the
// agent's allow list (its node namespace and its pods') keeps them to this
// test's namespaces, which is part of what is tested here.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "datapath/sock_datapath.h"
#include "service_fixture.h"

namespace sluice::e2e {
namespace {

using namespace std::chrono_literals;

const char* const kHooks[] = {"connect4",  "connect6",     "sendmsg4",
                              "sendmsg6",  "recvmsg4",     "recvmsg6",
                              "getpeername4", "getpeername6"};

class SocketLB : public Services {
 protected:
  void before_start() override {
    cgroup_ = cgroup2_mount();
    ASSERT_FALSE(cgroup_.empty()) << "no cgroup2 mounted";
    extra_args_ = {"--lb-socket-lb", "true", "--lb-socket-lb-cgroup", cgroup_};
  }
  void SetUp() override {
    Services::SetUp();
    if (HasFatalFailure()) return;
    std::ofstream(tmp_ + "/udp_server.py") << kLbUdpServer;
    std::ofstream(tmp_ + "/probe.py") << kSockProbe;
    ASSERT_NO_FATAL_FAILURE(serve_in_backends("udp_server.py", 8053, true));
  }
  // web (TCP 80 -> http) plus dns (UDP 53 -> 8053), dual stack.
  std::string web_udp() {
    return "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x}\n"
           "spec: {selector: {app: web}, ipFamilyPolicy: PreferDualStack, ports: ["
           "{name: http, port: 80, targetPort: http}, "
           "{name: dns, protocol: UDP, port: 53, targetPort: 8053}]}\n";
  }
  json probe(const Netns& ns, const std::string& mode, const std::string& addr, int port,
             int n) {
    auto r = ns.exec("python3 " + tmp_ + "/probe.py " + mode + " " + addr + " " +
                         std::to_string(port) + " " + std::to_string(n),
                     120);
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j.is_discarded() ? json{{"counts", json::object()}, {"peers", json::array()},
                                   {"fail", n}}
                            : j;
  }
  static std::string host_port(const std::string& addr, int port) {
    return addr + ":" + std::to_string(port);
  }
  // The links the agent pinned: hook -> link id (bpftool), empty if none.
  std::map<std::string, int> pinned_links() {
    std::map<std::string, int> ids;
    for (const char* h : kHooks) {
      auto r = sh("bpftool -j link show pinned " + bpffs_ + "/links/sock_" + h);
      auto j = json::parse(r.out, nullptr, false);
      if (r.rc == 0 && !j.is_discarded() && j.contains("id")) ids[h] = j["id"];
    }
    return ids;
  }
  // What conntrack holds: entries of a translated (service) connection or
  // to a cluster IP, and plain client pod <-> backend:port ones.
  struct Ct {
    int translated = 0, direct = 0;
    std::string dump;
  };
  Ct conntrack(int backend_port) {
    Ct out;
    auto ct = json::parse(ctl("ct list -o json").out, nullptr, false);
    EXPECT_TRUE(ct.is_array());
    out.dump = ct.dump();
    if (!ct.is_array()) return out;
    const auto vips = cluster_ips("web");
    for (const auto& e : ct) {
      const std::string s = e.value("src", ""), d = e.value("dst", "");
      bool to_vip = false;
      for (const auto& v : vips)
        to_vip |= s.find(v) != std::string::npos || d.find(v) != std::string::npos;
      out.translated += !e.value("nat", "").empty() || to_vip;
      const std::string be_port = ":" + std::to_string(backend_port);
      for (const char* p : {"b", "c", "d"})
        out.direct += (s.rfind(ip_["client"] + ":", 0) == 0 && d == ip_[p] + be_port) ||
                      (d.rfind(ip_["client"] + ":", 0) == 0 && s == ip_[p] + be_port);
    }
    return out;
  }
  // Program ids attached at the cgroup (bpftool cgroup show).
  std::set<int> cgroup_progs() {
    std::set<int> ids;
    auto j = json::parse(sh("bpftool -j cgroup show " + cgroup_).out, nullptr, false);
    if (j.is_array())
      for (const auto& e : j) ids.insert(e.value("id", 0));
    return ids;
  }

  std::string cgroup_;
};

TEST_F(SocketLB, ClusterIP_TCPReachesEveryBackendWithoutPerPacketNAT) {
  ASSERT_EQ(apply(web_udp()).rc, 0);
  auto vips = cluster_ips("web");
  ASSERT_EQ(vips.size(), 2u);
  // IPv4, IPv6, and IPv4 through an AF_INET6 socket (IPv4-mapped).
  for (const auto& vip : {vips[0], vips[1], "::ffff:" + vips[0]}) {
    auto j = probe(*pods_["client"], "tcp", vip, 80, 60);
    EXPECT_EQ(j["fail"], 0) << vip << " " << j.dump();
    for (const char* p : {"b", "c", "d"})
      EXPECT_GT(j["counts"].value(p, 0), 0) << vip << " never reached " << p << ": " << j.dump();
    // getpeername reports the service, not the backend the socket talks to.
    EXPECT_EQ(j["peers"], json::array({host_port(vip, 80)})) << j.dump();
  }
  // Conntrack holds plain client -> backend connections: no service entry
  // (nat "to"), no reverse translation (nat "from"), nothing to the VIP.
  auto ct = conntrack(8080);
  EXPECT_EQ(ct.translated, 0) << ct.dump;
  EXPECT_GE(ct.direct, 3) << ct.dump;
  // observe still tells which frontend each connection was given to: one
  // translation per socket, from the client pod.
  int seen = 0;
  for (const auto& e : xlate_events(host_port(vips[0], 80))) {
    const std::string be = e.value("backend", "");
    EXPECT_TRUE(be == ip_["b"] + ":8080" || be == ip_["c"] + ":8080" ||
                be == ip_["d"] + ":8080")
        << e.dump();
    EXPECT_EQ(e.value("src_ip", ""), ip_["client"]) << e.dump();
    EXPECT_EQ(e.value("src_pod", ""), "x/client") << e.dump();
    seen++;
  }
  EXPECT_EQ(seen, 120);  // 60 IPv4 and 60 IPv4-mapped
}

TEST_F(SocketLB, UDP_RepliesComeFromTheServiceAddress) {
  ASSERT_EQ(apply(web_udp()).rc, 0);
  auto vips = cluster_ips("web");
  ASSERT_EQ(vips.size(), 2u);
  for (const auto& vip : vips) {
    // One unconnected socket: every datagram to the same backend (as one
    // flow through conntrack would be), every reply from the VIP.
    auto one = probe(*pods_["client"], "udp", vip, 53, 20);
    EXPECT_EQ(one["fail"], 0) << vip << " " << one.dump();
    EXPECT_EQ(one["counts"].size(), 1u) << one.dump();
    EXPECT_EQ(one["peers"], json::array({host_port(vip, 53)})) << one.dump();
    // A socket per datagram: spread over every backend.
    auto each = probe(*pods_["client"], "udp-each", vip, 53, 45);
    EXPECT_EQ(each["fail"], 0) << vip << " " << each.dump();
    for (const char* p : {"b", "c", "d"})
      EXPECT_GT(each["counts"].value(p, 0), 0) << vip << " never reached " << p << each.dump();
    EXPECT_EQ(each["peers"], json::array({host_port(vip, 53)})) << each.dump();
    // Connected UDP: recvfrom and getpeername both say the VIP.
    auto conn = probe(*pods_["client"], "udp-connected", vip, 53, 10);
    EXPECT_EQ(conn["fail"], 0) << vip << " " << conn.dump();
    EXPECT_EQ(conn["peers"], json::array({host_port(vip, 53)})) << conn.dump();
  }
  // The sluice_lxc path gives the application the same answers; what
  // differs is that no datagram was translated on the way.
  auto ct = conntrack(8053);
  EXPECT_EQ(ct.translated, 0) << ct.dump;
  EXPECT_GE(ct.direct, 3) << ct.dump;
}

TEST_F(SocketLB, Selection_WeightsAffinityAndMaglevAsOnTheTCPath) {
  // Weights: the same slots sluice_lxc draws from.
  ASSERT_EQ(apply(web(", annotations: {sluice.io/backend-weights: \"" + ip_["b"] + "=900," +
                      ip_["c"] + "=100," + ip_["d"] + "=0\"}"))
                .rc,
            0);
  const auto vip = cluster_ips("web")[0];
  auto w = probe(*pods_["client"], "tcp", vip, 80, 2000);
  EXPECT_EQ(w["fail"], 0) << w.dump();
  const double b = w["counts"].value("b", 0), c = w["counts"].value("c", 0);
  EXPECT_NEAR(b / (b + c), 0.9, 0.03) << w.dump();
  EXPECT_EQ(w["counts"].value("d", 0), 0) << w.dump();
  // Maglev: the socket cookie stands in for the source port, so one pod's
  // sockets still spread over the table.
  ASSERT_EQ(apply(web(", annotations: {sluice.io/lb-algorithm: maglev, "
                      "sluice.io/maglev-table-size: \"1021\"}"))
                .rc,
            0);
  auto m = probe(*pods_["client"], "tcp", vip, 80, 60);
  EXPECT_EQ(m["fail"], 0) << m.dump();
  for (const char* p : {"b", "c", "d"})
    EXPECT_GT(m["counts"].value(p, 0), 0) << "maglev never picked " << p << ": " << m.dump();
  // ClientIP affinity: one backend for every connection of the client.
  ASSERT_EQ(apply(web("", ", sessionAffinity: ClientIP")).rc, 0);
  auto a = probe(*pods_["client"], "tcp", vip, 80, 40);
  EXPECT_EQ(a["fail"], 0) << a.dump();
  EXPECT_EQ(a["counts"].size(), 1u) << a.dump();
  EXPECT_EQ(conntrack(8080).translated, 0);
}

TEST_F(SocketLB, Hairpin_ABackendThatPicksItselfStaysInItsNamespace) {
  ASSERT_EQ(apply(web()).rc, 0);
  const auto vip = cluster_ips("web")[0];
  auto j = probe(*pods_["b"], "tcp", vip, 80, 30);
  EXPECT_EQ(j["fail"], 0) << j.dump();
  EXPECT_GT(j["counts"].value("b", 0), 0) << j.dump();  // itself, over its loopback
  EXPECT_EQ(j["peers"], json::array({host_port(vip, 80)})) << j.dump();
  // No hairpin translation at TC: nothing in conntrack names b's own
  // address at both ends or the hairpin source.
  auto ct = json::parse(ctl("ct list -o json").out, nullptr, false);
  for (const auto& e : ct) {
    EXPECT_EQ(e.value("nat", ""), "") << e.dump();
    EXPECT_EQ(e.value("src", "").rfind("169.254.42.1:", 0), std::string::npos) << e.dump();
  }
}

TEST_F(SocketLB, WhatTheSocketPathCannotServeIsLeftToTheTCPath) {
  // A connection cap is counted from conntrack service entries: capped
  // services are translated by sluice_lxc, and the cap holds.
  ASSERT_EQ(apply(web(", annotations: {sluice.io/max-connections-per-backend: \"2\"}", "",
                      false) +
                  "---\n" + slice({{"b", "{ready: true}"}}))
                .rc,
            0);
  const auto vip = cluster_ips("web")[0];
  for (int i : {1, 2})
    pods_["client"]->exec("sh -c 'python3 " + tmp_ + "/hold.py " + vip + " 80 3 > " + tmp_ +
                          "/hold" + std::to_string(i) + ".out 2>&1 &'");
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(probe(*pods_["client"], "tcp", vip, 80, 1)["fail"], 1);
  EXPECT_GE(drops("lb-backends-at-cap"), 1u);
  EXPECT_GT(conntrack(8080).translated, 0) << "capped service not on the TC path";
  // No ready backend: refused at once by sluice_lxc, with its drop reason.
  ASSERT_EQ(apply(slice({{"b", "{ready: false}"}})).rc, 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(probe(*pods_["client"], "tcp", vip, 80, 3)["fail"], 3);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_GE(drops("lb-no-backend"), 3u);
}

TEST_F(SocketLB, TheNodeItselfReachesEveryBackend) {
  ASSERT_EQ(apply(web_udp()).rc, 0);
  const auto vip = cluster_ips("web")[0];
  // The node namespace has no route to the service range: only the socket
  // hook (the agent's own namespace is in its allow list) gets it there.
  // Its replies need a source address the pods can answer.
  ASSERT_EQ(node_->exec("ip link set lo up").rc, 0);
  ASSERT_EQ(node_->exec("ip addr add 198.18.78.1/32 dev lo").rc, 0);
  auto j = probe(*node_, "tcp", vip, 80, 30);
  EXPECT_EQ(j["fail"], 0) << j.dump();
  for (const char* p : {"b", "c", "d"})
    EXPECT_GT(j["counts"].value(p, 0), 0) << "never reached " << p << ": " << j.dump();
  EXPECT_EQ(j["peers"], json::array({host_port(vip, 80)})) << j.dump();
}

TEST_F(SocketLB, ANamespaceTheAgentDoesNotManageIsNotTranslated) {
  ASSERT_EQ(apply(web_udp()).rc, 0);
  const auto vip = cluster_ips("web")[0];
  // A namespace that holds the VIP and the backends' addresses itself on
  // lo, with a "frontend" server on :80 and a "backend" one on :8080: an
  // untranslated connection to VIP:80 meets the first, a translated one
  // the second, and nothing leaves the namespace either way.
  auto twin = [&](const Netns& ns) {
    for (const std::string& c :
         {std::string("ip link set lo up"), "ip addr add " + vip + "/32 dev lo",
          "ip addr add " + ip_["b"] + "/32 dev lo", "ip addr add " + ip_["c"] + "/32 dev lo",
          "ip addr add " + ip_["d"] + "/32 dev lo"})
      ASSERT_EQ(ns.exec(c).rc, 0) << c;
    for (const char* name : {"frontend 80", "backend 8080"})
      ns.exec("sh -c 'timeout 60 python3 " + tmp_ + "/server.py " + name +
              " 50 >/dev/null 2>&1 &'");
    ASSERT_TRUE(listening(ns, 80) && listening(ns, 8080)) << ns.name();
  };
  // Not made by CNI: the agent never listed it.
  Netns other("sl-cq" + sfx_);
  ASSERT_NO_FATAL_FAILURE(twin(other));
  auto j = probe(other, "tcp", vip, 80, 10);
  EXPECT_EQ(j["counts"], json({{"frontend", 10}})) << j.dump();
  // The control: the same in the client pod, which the agent lists, is
  // translated (so the check above can fail). The servers end by
  // themselves after 50 s (timeout bounds them), as the fixture's do.
  ASSERT_NO_FATAL_FAILURE(twin(*pods_["client"]));
  auto c = probe(*pods_["client"], "tcp", vip, 80, 10);
  EXPECT_EQ(c["counts"], json({{"backend", 10}})) << c.dump();
}

TEST_F(SocketLB, TheAllowListFollowsCniAddAndDel) {
  auto entries = [&] {
    auto j = json::parse(sh("bpftool -j map dump pinned " + bpffs_ + "/maps/sluice_sock_netns").out,
                         nullptr, false);
    std::map<uint32_t, uint64_t> by_ep;  // endpoint id (0: the node) -> netns cookie
    // With -j and BTF, bpftool puts the typed entry under "formatted".
    if (j.is_array())
      for (const auto& e : j) {
        const auto& f = e.contains("formatted") ? e["formatted"] : e;
        by_ep[f["value"]["ep_id"]] = f["key"];
      }
    return by_ep;
  };
  auto before = entries();
  ASSERT_EQ(before.size(), 5u) << "the node and four pods";
  ASSERT_TRUE(before.count(0));
  uint64_t client_cookie = 0;
  for (const auto& e : json::parse(ctl("get endpoints -o json").out, nullptr, false))
    if (e["metadata"].value("name", "") == "client")
      client_cookie = before[e.value("endpointID", 0u)];
  ASSERT_NE(client_cookie, 0u);
  ASSERT_EQ(cni("DEL", "client").rc, 0);
  auto after = entries();
  EXPECT_EQ(after.size(), 4u);
  for (const auto& [ep, cookie] : after) EXPECT_NE(cookie, client_cookie) << ep;
  EXPECT_EQ(after[0], before[0]);
  pods_.erase("client");
}

TEST_F(SocketLB, RestartKeepsTheLinksAndCleanupRemovesThem) {
  ASSERT_EQ(apply(web_udp()).rc, 0);
  const auto vip = cluster_ips("web")[0];
  auto before = pinned_links();
  ASSERT_EQ(before.size(), 8u) << sh("ls -l " + bpffs_ + "/links").out;
  // Links, not program attachments: bpftool cgroup show lists each link's
  // program at the cgroup, beside whatever else is attached there.
  auto progs = cgroup_progs();
  for (const auto& [hook, id] : before) {
    auto l = json::parse(sh("bpftool -j link show id " + std::to_string(id)).out, nullptr, false);
    ASSERT_FALSE(l.is_discarded());
    EXPECT_EQ(l.value("type", ""), "cgroup") << l.dump();
    EXPECT_TRUE(progs.count(l.value("prog_id", 0))) << hook << " " << l.dump();
  }

  // With the agent gone the pinned links and maps go on translating.
  agent_.reset();
  auto down = probe(*pods_["client"], "tcp", vip, 80, 10);
  EXPECT_EQ(down["fail"], 0) << down.dump();
  EXPECT_EQ(down["peers"], json::array({host_port(vip, 80)})) << down.dump();

  // A restarted agent updates the same links in place and restores its
  // allow list from the endpoint records: the client pod is still served.
  start();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(pinned_links(), before);
  auto ct0 = ctl("ct flush");
  ASSERT_EQ(ct0.rc, 0) << ct0.out;
  auto after = probe(*pods_["client"], "tcp", vip, 80, 30);
  EXPECT_EQ(after["fail"], 0) << after.dump();
  EXPECT_EQ(after["counts"].size(), 3u) << after.dump();
  auto ct = conntrack(8080);
  EXPECT_EQ(ct.translated, 0) << ct.dump;
  EXPECT_GE(ct.direct, 3) << ct.dump;

  // Cleanup detaches and unpins every link; the cgroup keeps none of the
  // programs they held.
  std::set<int> ours;
  for (const auto& [hook, id] : before) {
    auto l = json::parse(sh("bpftool -j link show id " + std::to_string(id)).out, nullptr, false);
    ASSERT_FALSE(l.is_discarded()) << hook;
    ours.insert(l.value("prog_id", 0));
  }
  agent_.reset();
  auto r = node_->exec(bin("sluice-agent") + " --cleanup --bpffs " + bpffs_ + " --socket " +
                       tmp_ + "/a.sock");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(pinned_links().empty());
  for (const auto& [hook, id] : before)
    EXPECT_NE(sh("bpftool link show id " + std::to_string(id)).rc, 0) << hook;
  for (int id : cgroup_progs()) EXPECT_FALSE(ours.count(id)) << "program " << id << " left";
  auto plain = probe(*pods_["client"], "tcp", vip, 80, 3);
  EXPECT_EQ(plain["fail"], 3) << "still translated after cleanup: " << plain.dump();
}

}  // namespace
}  // namespace sluice::e2e

// The Kubernetes network-policy matrix, in the style of the upstream
// e2e suite (test/e2e/network/netpol): three namespaces x, y, z with pods
// a, b, c each, every pod serving TCP and UDP on 80 and 81. A spec applies
// policies with sluicectl and compares the full 9x9 reachability matrix of
// a port/protocol/family against an expectation built like upstream's
// `Reachability`. Ginkgo's Describe/Context/It become
// NetpolMatrix.Context_It, so `ctest -R` / --gtest_filter select specs.
//
// Every spec gets its own node namespace, agent, bpffs dir, socket, state
// dir and pod CIDRs; all of it is removed in TearDown, also on failure.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "e2e_util.h"

namespace sluice::e2e {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr std::array<const char*, 3> kNamespaces = {"x", "y", "z"};
constexpr std::array<const char*, 3> kPodNames = {"a", "b", "c"};
constexpr int kN = 9;  // pods: x/a x/b x/c y/a ... z/c

std::string pod_key(int i) {
  return std::string(kNamespaces[i / 3]) + "/" + kPodNames[i % 3];
}
int pod_index(const std::string& key) {
  for (int i = 0; i < kN; i++)
    if (pod_key(i) == key) return i;
  ADD_FAILURE() << "unknown pod " << key;
  return 0;
}

enum class Proto { kTcp, kUdp };
enum class Family { kV4, kV6 };

// A selector of pods in the matrix: empty fields match anything.
struct Peer {
  std::string ns;
  std::string pod;
  bool matches(int i) const {
    return (ns.empty() || ns == kNamespaces[i / 3]) &&
           (pod.empty() || pod == kPodNames[i % 3]);
  }
};

// Upstream's Reachability: a truth table of from x to, default all true.
class Reachability {
 public:
  explicit Reachability(bool def = true) {
    for (auto& row : m_) row.fill(def);
  }
  void Expect(const std::string& from, const std::string& to, bool v) {
    m_[pod_index(from)][pod_index(to)] = v;
  }
  void ExpectPeer(const Peer& from, const Peer& to, bool v) {
    for (int f = 0; f < kN; f++)
      for (int t = 0; t < kN; t++)
        if (from.matches(f) && to.matches(t)) m_[f][t] = v;
  }
  void ExpectAllIngress(const std::string& to, bool v) {
    ExpectPeer({}, peer_of(to), v);
  }
  void ExpectAllEgress(const std::string& from, bool v) {
    ExpectPeer(peer_of(from), {}, v);
  }
  // Pod-to-self traffic uses the pod's loopback, never the datapath.
  void AllowLoopback() {
    for (int i = 0; i < kN; i++) m_[i][i] = true;
  }
  bool at(int f, int t) const { return m_[f][t]; }
  void set(int f, int t, bool v) { m_[f][t] = v; }

  static Peer peer_of(const std::string& key) {
    auto s = key.find('/');
    return {key.substr(0, s), key.substr(s + 1)};
  }

 private:
  std::array<std::array<bool, kN>, kN> m_{};
};

std::string header() {
  std::string s = "       ";
  for (int t = 0; t < kN; t++) s += " " + pod_key(t);
  return s + "\n";
}

std::string table(const Reachability& r) {
  std::string s = header();
  for (int f = 0; f < kN; f++) {
    s += "  " + pod_key(f) + "  ";
    for (int t = 0; t < kN; t++) s += std::string("  ") + (r.at(f, t) ? "1" : "0") + " ";
    s += "\n";
  }
  return s;
}

std::string diff_table(const Reachability& want, const Reachability& got) {
  std::string s = header();
  for (int f = 0; f < kN; f++) {
    s += "  " + pod_key(f) + "  ";
    for (int t = 0; t < kN; t++)
      s += std::string("  ") + (want.at(f, t) == got.at(f, t) ? "." : "X") + " ";
    s += "\n";
  }
  return s;
}

// Unique per fixture (pid and a counter) so CIDRs never clash with another
// spec's leftovers; always within the blackholed 10.200.0.0/16 and
// fd10:200::/64.
// UDP echo on 80 and 81, IPv4 and IPv6, one socket each, no forking.
constexpr const char* kUdpEcho = R"(import select, socket
socks = []
for fam, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for port in (80, 81):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((any_addr, port))
        socks.append(s)
while True:
    for s in select.select(socks, [], [])[0]:
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)
)";

int unique_cidr_octet() {
  static int n = 0;
  return 101 + (int(::getpid()) * 7 + 13 * n++) % 150;
}

class NetpolMatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_blackhole_routes();
    sfx_ = unique_suffix();
    octet_ = unique_cidr_octet();
    node_ = std::make_unique<Netns>("sl-nm" + sfx_);
    tmp_ = "/tmp/sluice-netpol-" + sfx_;
    bpffs_ = "/sys/fs/bpf/sluice-netpol-" + sfx_;
    std::filesystem::create_directories(tmp_);
    std::ofstream(tmp_ + "/net.conf")
        << R"({"cniVersion":"1.0.0","name":"sluice","type":"sluice-cni","socket":")"
        << tmp_ << "/a.sock\"}";
    std::ofstream(tmp_ + "/udp_echo.py") << kUdpEcho;
    const std::string o = std::to_string(octet_);
    cidr4_ = "10.200." + o + ".0/24";
    cidr6_ = "fd10:200::" + o + ":0/112";
    agent_ = std::make_unique<AgentProc>(
        node_->name(),
        std::vector<std::string>{"--bpffs", bpffs_, "--socket", tmp_ + "/a.sock",
                                 "--state-dir", tmp_ + "/state", "--pod-cidr", cidr4_,
                                 "--pod-cidr-v6", cidr6_},
        tmp_ + "/agent.log");
    std::string why;
    ASSERT_TRUE(agent_->wait_ready(tmp_ + "/a.sock", tmp_ + "/agent.log", &why)) << why;

    std::string yaml;
    for (const char* ns : kNamespaces)
      yaml += std::string("apiVersion: v1\nkind: Namespace\nmetadata: {name: \"") + ns +
              "\", labels: {ns: \"" + ns + "\"}}\n---\n";
    for (int i = 0; i < kN; i++)
      yaml += pod_yaml(kNamespaces[i / 3], kPodNames[i % 3],
                       std::string("{pod: \"") + kPodNames[i % 3] + "\"}") +
              "---\n";
    auto r = apply(yaml);
    ASSERT_EQ(r.rc, 0) << "applying namespaces and pods: " << r.out;

    // Servers bind wildcard addresses, so they start before the pods get
    // theirs (overlapping their start-up with the plugin runs).
    for (int i = 0; i < kN; i++) {
      pods_[i] = std::make_unique<Netns>(netns_name(i));
      // OpenBSD nc listens on one family per process. UDP: one echo
      // process per pod on a plain socket each (socat's fork mode mixes up
      // concurrent clients).
      std::string srv = "timeout 120 python3 " + tmp_ + "/udp_echo.py >/dev/null 2>&1 &\n";
      for (int port : {80, 81}) {
        const std::string p = std::to_string(port);
        srv += "timeout 120 nc -4 -lk -p " + p + " >/dev/null 2>&1 &\n";
        srv += "timeout 120 nc -6 -lk -p " + p + " >/dev/null 2>&1 &\n";
      }
      auto s = sh(in_pod(i) + "sh -c '" + srv + "'");
      ASSERT_EQ(s.rc, 0) << s.out;
    }
    // Like a kubelet, run the plugin for all pods at once.
    std::array<CmdResult, kN> adds;
    {
      std::vector<std::thread> th;
      for (int i = 0; i < kN; i++) th.emplace_back([&, i] { adds[i] = cni("ADD", i); });
      for (auto& t : th) t.join();
    }
    for (int i = 0; i < kN; i++) added_[i] = adds[i].rc == 0;
    for (int i = 0; i < kN; i++) {
      const auto& c = adds[i];
      ASSERT_EQ(c.rc, 0) << "CNI ADD " << pod_key(i) << ": " << c.out << "\nagent log:\n"
                         << read_file(tmp_ + "/agent.log");
      json res = json::parse(c.out, nullptr, false);
      ASSERT_FALSE(res.is_discarded()) << c.out;
      for (const auto& ip : res["ips"]) {
        std::string a = ip["address"];
        a = a.substr(0, a.find('/'));
        (a.find(':') == std::string::npos ? v4_ : v6_)[i] = a;
      }
      ASSERT_FALSE(v4_[i].empty()) << res.dump();
      ASSERT_FALSE(v6_[i].empty()) << res.dump();
    }
    // Wait (bounded) until every pod listens on its 8 sockets.
    for (int i = 0; i < kN; i++) {
      bool ok = false;
      for (int tries = 0; tries < 50 && !ok; tries++) {
        auto l = sh(in_pod(i) + "ss -Hlntu");
        int n = 0;
        for (char ch : l.out) n += ch == '\n';
        ok = n >= 8;
        if (!ok) std::this_thread::sleep_for(100ms);
      }
      ASSERT_TRUE(ok) << pod_key(i) << " servers did not start: "
                      << pods_[i]->exec("ss -Hlntu").out;
    }
  }

  void TearDown() override {
    std::vector<std::thread> th;
    for (int i = 0; i < kN; i++) {
      if (!pods_[i]) continue;
      th.emplace_back([this, i] {
        // Servers (started by this fixture) do not die with `ip netns del`.
        sh("for p in $(ip netns pids " + pods_[i]->name() + "); do kill -9 $p; done");
        if (added_[i]) cni("DEL", i);
      });
    }
    for (auto& t : th) t.join();
    agent_.reset();
    if (node_)
      node_->exec(bin("sluice-agent") + " --cleanup --bpffs " + bpffs_ + " --socket " +
                  tmp_ + "/a.sock");
    for (auto& p : pods_) p.reset();
    node_.reset();
    std::filesystem::remove_all(tmp_);
  }

  // Runs in pod i's network namespace (nsenter is much lighter than
  // `ip netns exec`, which also makes a mount namespace).
  std::string in_pod(int i) const {
    return "nsenter --net=/var/run/netns/" + netns_name(i) + " ";
  }
  std::string netns_name(int i) const {
    return std::string("sl-cp") + kNamespaces[i / 3] + kPodNames[i % 3] + sfx_;
  }
  static std::string pod_yaml(const std::string& ns, const std::string& pod,
                              const std::string& labels) {
    return "apiVersion: v1\nkind: Pod\nmetadata: {name: \"" + pod + "\", namespace: \"" + ns + "\"" +
           ", labels: " + labels +
           "}\n"
           "spec: {containers: [{name: cont, ports: ["
           "{containerPort: 80, name: serve-80-tcp, protocol: TCP}, "
           "{containerPort: 81, name: serve-81-tcp, protocol: TCP}, "
           "{containerPort: 80, name: serve-80-udp, protocol: UDP}, "
           "{containerPort: 81, name: serve-81-udp, protocol: UDP}]}]}\n";
  }
  CmdResult ctl(const std::string& args) {
    return sh(bin("sluicectl") + " --socket " + tmp_ + "/a.sock " + args);
  }
  CmdResult apply(const std::string& yaml) {
    return ctl("apply -f - <<'EOF'\n" + yaml + "EOF");
  }
  // A NetworkPolicy; `spec` is the block under `spec:` (2-space indented).
  static std::string np(const std::string& name, const std::string& ns,
                        const std::string& spec) {
    return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: \"" +
           name + "\", namespace: \"" + ns + "\"}\nspec:\n" + spec;
  }
  void apply_ok(const std::string& yaml) {
    auto r = apply(yaml);
    ASSERT_EQ(r.rc, 0) << "sluicectl apply failed:\n" << yaml << "\n" << r.out;
  }
  void delete_policy(const std::string& name, const std::string& ns) {
    auto r = ctl("delete -f - <<'EOF'\napiVersion: networking.k8s.io/v1\n"
                 "kind: NetworkPolicy\nmetadata: {name: \"" + name + "\", namespace: \"" + ns +
                 "\"}\nEOF");
    ASSERT_EQ(r.rc, 0) << "sluicectl delete " << ns << "/" << name << ": " << r.out;
  }
  CmdResult cni(const std::string& cmd, int i) {
    const std::string ns = kNamespaces[i / 3], pod = kPodNames[i % 3];
    return sh("CNI_COMMAND=" + cmd + " CNI_CONTAINERID=cid-" + ns + pod + sfx_ +
              " CNI_NETNS=/var/run/netns/" + netns_name(i) +
              " CNI_IFNAME=eth0 CNI_PATH=/nonexistent"
              " CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAMESPACE=" + ns +
              ";K8S_POD_NAME=" + pod + "' " + bin("sluice-cni") + " < " + tmp_ +
              "/net.conf");
  }
  const std::string& addr(int i, Family fam) const {
    return fam == Family::kV4 ? v4_[i] : v6_[i];
  }

  // All 81 probes of one port/protocol/family at once; ~1-2 s per matrix.
  Reachability probe(Proto proto, int port, Family fam, std::string* err) {
    const std::string p = std::to_string(port);
    std::string s =
        "probe() { if nsenter --net=/var/run/netns/\"$1\" nc -z -w 1 \"$2\" " + p +
        " >/dev/null 2>&1; then echo \"R $3 1\"; else echo \"R $3 0\"; fi; }\n"
        "uprobe() { if [ \"$(echo sluice | nsenter --net=/var/run/netns/\"$1\" timeout 3 socat -t 1 -T 1 "
        "- \"$2\" 2>/dev/null)\" = sluice ]; then echo \"R $3 1\"; else echo \"R $3 0\"; "
        "fi; }\n";
    for (int f = 0; f < kN; f++)
      for (int t = 0; t < kN; t++) {
        const std::string& dst = addr(t, fam);
        std::string id = std::to_string(f * kN + t);
        if (proto == Proto::kTcp)
          s += "probe " + netns_name(f) + " " + dst + " " + id + " &\n";
        else
          s += "uprobe " + netns_name(f) + " " +
               (fam == Family::kV4 ? "UDP4:" + dst : "UDP6:[" + dst + "]") + ":" + p +
               " " + id + " &\n";
      }
    s += "wait\n";
    auto r = sh(s, 30);
    Reachability got(false);
    int seen = 0;
    std::istringstream in(r.out);
    std::string tag;
    int id, v;
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      if (ls >> tag >> id >> v && tag == "R" && id >= 0 && id < kN * kN) {
        got.set(id / kN, id % kN, v == 1);
        seen++;
      }
    }
    if (seen != kN * kN && err) *err = "only " + std::to_string(seen) + " of 81 probes reported:\n" + r.out;
    return got;
  }

  // Probes one matrix and compares it with `want` (plus loopback). A
  // mismatch is probed again (twice at most, like upstream's retries) so
  // a slow probe on a busy machine is not a failure; the last observation
  // is reported.
  void check(Reachability want, Proto proto, int port, Family fam) {
    want.AllowLoopback();
    const std::string what = std::string(proto == Proto::kTcp ? "TCP" : "UDP") + "/" +
                             std::to_string(port) + (fam == Family::kV4 ? " IPv4" : " IPv6");
    Reachability got;
    std::string err;
    int wrong = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
      err.clear();
      got = probe(proto, port, fam, &err);
      wrong = 0;
      for (int f = 0; f < kN; f++)
        for (int t = 0; t < kN; t++) wrong += want.at(f, t) != got.at(f, t);
      if (wrong == 0 && err.empty()) return;
    }
    ADD_FAILURE() << what << ": " << wrong << " of 81 wrong (rows = from, columns = to)\n"
                  << err << "diff ('.' ok, 'X' wrong):\n"
                  << diff_table(want, got) << "expected (1 = connected):\n"
                  << table(want) << "observed:\n"
                  << table(got);
  }
  void check_tcp_80_81(const Reachability& want, Family fam = Family::kV4) {
    check(want, Proto::kTcp, 80, fam);
    check(want, Proto::kTcp, 81, fam);
  }

  std::string sfx_, tmp_, bpffs_, cidr4_, cidr6_;
  int octet_ = 0;
  std::unique_ptr<Netns> node_;
  std::unique_ptr<AgentProc> agent_;
  std::array<std::unique_ptr<Netns>, kN> pods_;
  std::array<bool, kN> added_{};
  std::array<std::string, kN> v4_, v6_;
};

const std::string kDenyAllIngressX =
    "  podSelector: {}\n  policyTypes: [Ingress]\n";

// ---- Describe("NetworkPolicy") / Context("without policies") ----

TEST_F(NetpolMatrix, NoPolicies_AllPodsReachEachOther) {
  Reachability all;
  check_tcp_80_81(all);
  check(all, Proto::kUdp, 80, Family::kV4);
  check(all, Proto::kTcp, 80, Family::kV6);
}

// ---- Context("Ingress") ----

TEST_F(NetpolMatrix, Ingress_DenyAll_BlocksEveryPeer) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("deny-all", "x", kDenyAllIngressX)));
  Reachability want;
  want.ExpectPeer({}, {"x", ""}, false);
  check_tcp_80_81(want);
}

TEST_F(NetpolMatrix, Ingress_AllowFromSameNamespaceOnly) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("same-ns", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  ingress: [{from: [{podSelector: {}}]}]\n")));
  Reachability want;
  want.ExpectAllIngress("x/a", false);
  want.ExpectPeer({"x", ""}, {"x", "a"}, true);
  check_tcp_80_81(want);
}

TEST_F(NetpolMatrix, Ingress_AllowFromNamespaceBySelector) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("from-y", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: \"y\"}}}]}]\n")));
  Reachability want;
  want.ExpectAllIngress("x/a", false);
  want.ExpectPeer({"y", ""}, {"x", "a"}, true);
  check_tcp_80_81(want);
}

TEST_F(NetpolMatrix, Ingress_PodAndNamespaceSelectorInOnePeer_AreAnded) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("and", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: \"y\"}}, "
                                      "podSelector: {matchLabels: {pod: b}}}]}]\n")));
  Reachability want;
  want.ExpectAllIngress("x/a", false);
  want.Expect("y/b", "x/a", true);
  check_tcp_80_81(want);
}

TEST_F(NetpolMatrix, Ingress_PodAndNamespaceSelectorAsTwoPeers_AreOred) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("or", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: \"y\"}}}, "
                                      "{podSelector: {matchLabels: {pod: b}}}]}]\n")));
  Reachability want;
  want.ExpectAllIngress("x/a", false);
  want.ExpectPeer({"y", ""}, {"x", "a"}, true);
  want.Expect("x/b", "x/a", true);  // a lone podSelector means the policy's namespace
  check_tcp_80_81(want);
}

TEST_F(NetpolMatrix, Ingress_NamespaceSelectorNotIn) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("not-in-x", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  ingress: [{from: [{namespaceSelector: {matchExpressions: "
                                      "[{key: ns, operator: NotIn, values: [x]}]}}]}]\n")));
  Reachability want;
  want.ExpectAllIngress("x/a", false);
  want.ExpectPeer({"y", ""}, {"x", "a"}, true);
  want.ExpectPeer({"z", ""}, {"x", "a"}, true);
  check_tcp_80_81(want);
}

TEST_F(NetpolMatrix, Ingress_ExistsAndInExpressions) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("exists-in", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  ingress: [{from: [{namespaceSelector: {matchExpressions: "
                                      "[{key: ns, operator: Exists}]}, podSelector: {matchExpressions: "
                                      "[{key: pod, operator: In, values: [b, c]}]}}]}]\n")));
  Reachability want;
  want.ExpectAllIngress("x/a", false);
  want.ExpectPeer({"", "b"}, {"x", "a"}, true);
  want.ExpectPeer({"", "c"}, {"x", "a"}, true);
  check_tcp_80_81(want);
}

TEST_F(NetpolMatrix, Ingress_OnlyPort80_Port81Denied) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("port-80", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  ingress: [{ports: [{port: 80, protocol: TCP}]}]\n")));
  Reachability open, closed;
  closed.ExpectAllIngress("x/a", false);
  check(open, Proto::kTcp, 80, Family::kV4);
  check(closed, Proto::kTcp, 81, Family::kV4);
  check(closed, Proto::kUdp, 80, Family::kV4);  // TCP rule does not allow UDP
}

TEST_F(NetpolMatrix, Ingress_NamedPort81_Port80Denied) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("named-81", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  ingress: [{from: [{namespaceSelector: {}}], "
                                      "ports: [{port: serve-81-tcp, protocol: TCP}]}]\n")));
  Reachability open, closed;
  closed.ExpectAllIngress("x/a", false);
  check(closed, Proto::kTcp, 80, Family::kV4);
  check(open, Proto::kTcp, 81, Family::kV4);
}

TEST_F(NetpolMatrix, Ingress_EndPortRange80To81) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("range", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: \"y\"}}}], "
                                      "ports: [{port: 80, endPort: 81, protocol: TCP}]}]\n")));
  Reachability want;
  want.ExpectAllIngress("x/a", false);
  want.ExpectPeer({"y", ""}, {"x", "a"}, true);
  check_tcp_80_81(want);
  Reachability udp;
  udp.ExpectAllIngress("x/a", false);
  check(udp, Proto::kUdp, 80, Family::kV4);
}

TEST_F(NetpolMatrix, Ingress_IpBlockWithExcept) {
  const std::string except = v4_[pod_index("y/b")] + "/32";
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("block", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  ingress: [{from: [{ipBlock: {cidr: " + cidr4_ +
                                          ", except: [" + except + "]}}]}]\n")));
  Reachability want;
  want.Expect("y/b", "x/a", false);
  check_tcp_80_81(want);
  Reachability v6;  // an IPv4 block allows no IPv6 peer
  v6.ExpectAllIngress("x/a", false);
  check(v6, Proto::kTcp, 80, Family::kV6);
}

// ---- Context("Egress") ----

TEST_F(NetpolMatrix, Egress_DenyAllFromOnePod) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("a-no-egress", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  policyTypes: [Egress]\n")));
  Reachability want;
  want.ExpectAllEgress("x/a", false);
  check_tcp_80_81(want);
}

TEST_F(NetpolMatrix, Egress_AllowOnlyToNamespaceY) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("a-to-y", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  policyTypes: [Egress]\n"
                                      "  egress: [{to: [{namespaceSelector: {matchLabels: {ns: \"y\"}}}]}]\n")));
  Reachability want;
  want.ExpectAllEgress("x/a", false);
  want.ExpectPeer({"x", "a"}, {"y", ""}, true);
  check_tcp_80_81(want);
}

TEST_F(NetpolMatrix, EgressAndIngress_BothSidesMustAllow) {
  // x/a may only send to y/*, and y/b only accepts from x/*.
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("a-to-y", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  policyTypes: [Egress]\n"
                                      "  egress: [{to: [{namespaceSelector: {matchLabels: {ns: \"y\"}}}]}]\n")));
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("b-from-x", "y",
                                      "  podSelector: {matchLabels: {pod: b}}\n"
                                      "  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: \"x\"}}}]}]\n")));
  Reachability want;
  want.ExpectAllEgress("x/a", false);
  want.ExpectPeer({"x", "a"}, {"y", ""}, true);
  want.ExpectAllIngress("y/b", false);
  want.ExpectPeer({"x", ""}, {"y", "b"}, true);
  check_tcp_80_81(want);
}

// ---- Context("policy lifecycle") ----

TEST_F(NetpolMatrix, Update_ApplyChangeDelete) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("pol", "x", kDenyAllIngressX)));
  Reachability deny;
  deny.ExpectPeer({}, {"x", ""}, false);
  check_tcp_80_81(deny);

  ASSERT_NO_FATAL_FAILURE(apply_ok(np("pol", "x",
                                      "  podSelector: {}\n"
                                      "  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: \"y\"}}}], "
                                      "ports: [{port: 81}]}]\n")));
  Reachability from_y81;
  from_y81.ExpectPeer({}, {"x", ""}, false);
  from_y81.ExpectPeer({"y", ""}, {"x", ""}, true);
  check(deny, Proto::kTcp, 80, Family::kV4);
  check(from_y81, Proto::kTcp, 81, Family::kV4);

  ASSERT_NO_FATAL_FAILURE(delete_policy("pol", "x"));
  check_tcp_80_81(Reachability());
}

TEST_F(NetpolMatrix, Update_PodLabelChangeIsFollowed) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("isolate-b", "x",
                                      "  podSelector: {matchLabels: {pod: b}}\n"
                                      "  policyTypes: [Ingress]\n")));
  Reachability want;
  want.ExpectAllIngress("x/b", false);
  check(want, Proto::kTcp, 80, Family::kV4);

  // x/b loses pod=b and x/c gains it: the isolation moves from b to c.
  ASSERT_NO_FATAL_FAILURE(apply_ok(pod_yaml("x", "b", "{pod: b-renamed}")));
  ASSERT_NO_FATAL_FAILURE(apply_ok(pod_yaml("x", "c", "{pod: b}")));
  Reachability moved;
  moved.ExpectAllIngress("x/c", false);
  check_tcp_80_81(moved);

  // Back again.
  ASSERT_NO_FATAL_FAILURE(apply_ok(pod_yaml("x", "b", "{pod: b}")));
  ASSERT_NO_FATAL_FAILURE(apply_ok(pod_yaml("x", "c", "{pod: c}")));
  check(want, Proto::kTcp, 80, Family::kV4);
}

// ---- Context("UDP") ----

TEST_F(NetpolMatrix, Udp_DenyAllThenAllowUdp80Only) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("deny-all", "x", kDenyAllIngressX)));
  Reachability deny;
  deny.ExpectPeer({}, {"x", ""}, false);
  check(deny, Proto::kUdp, 80, Family::kV4);
  check(deny, Proto::kTcp, 80, Family::kV4);

  ASSERT_NO_FATAL_FAILURE(apply_ok(np("udp-80", "x",
                                      "  podSelector: {}\n"
                                      "  ingress: [{ports: [{port: 80, protocol: UDP}]}]\n")));
  check(Reachability(), Proto::kUdp, 80, Family::kV4);
  check(deny, Proto::kUdp, 81, Family::kV4);
  check_tcp_80_81(deny);
}

// ---- Context("IPv6") ----

TEST_F(NetpolMatrix, Ipv6_DenyAllIngress) {
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("deny-all", "x", kDenyAllIngressX)));
  Reachability want;
  want.ExpectPeer({}, {"x", ""}, false);
  check_tcp_80_81(want, Family::kV6);
  check(want, Proto::kUdp, 80, Family::kV6);
}

TEST_F(NetpolMatrix, Ipv6_AllowFromNamespaceAndIpBlock) {
  const std::string zb = v6_[pod_index("z/b")] + "/128";
  ASSERT_NO_FATAL_FAILURE(apply_ok(np("v6", "x",
                                      "  podSelector: {matchLabels: {pod: a}}\n"
                                      "  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: \"y\"}}}, "
                                      "{ipBlock: {cidr: \"" + zb + "\"}}]}]\n")));
  Reachability want;
  want.ExpectAllIngress("x/a", false);
  want.ExpectPeer({"y", ""}, {"x", "a"}, true);
  want.Expect("z/b", "x/a", true);
  check_tcp_80_81(want, Family::kV6);
  Reachability v4;  // over IPv4 the IPv6 block does not match z/b
  v4.ExpectAllIngress("x/a", false);
  v4.ExpectPeer({"y", ""}, {"x", "a"}, true);
  check(v4, Proto::kTcp, 80, Family::kV4);
}

}  // namespace
}  // namespace sluice::e2e

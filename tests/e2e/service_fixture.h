// The service fixture: an agent in a node namespace, four pods made by
// sluice-cni (x/client, and x/b, x/c, x/d labelled app=web, each running
// a TCP server on 8080 that answers with its pod name, lb_scripts.h), and
// helpers to apply Services and slices and to connect from the client.
// Shared by the Services (TC path) and SocketLB suites.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cni_fixture.h"
#include "lb_scripts.h"

namespace sluice::e2e {

class Services : public CniE2E {
 protected:
  void SetUp() override {
    CniE2E::SetUp();
    if (HasFatalFailure()) return;
    std::ofstream(tmp_ + "/server.py") << kLbServer;
    std::ofstream(tmp_ + "/client.py") << kLbClient;
    std::ofstream(tmp_ + "/hold.py") << kLbHold;
    std::string yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n";
    for (const char* p : {"client", "b", "c", "d"})
      yaml += std::string("---\napiVersion: v1\nkind: Pod\nmetadata: {name: ") + p +
              ", namespace: x, labels: {app: " + (p[0] == 'c' && p[1] == 'l' ? "client" : "web") +
              "}}\nspec: {containers: [{name: s, ports: [{containerPort: 8080, name: http}]}]}\n";
    ASSERT_EQ(apply(yaml).rc, 0);
    for (const char* p : {"client", "b", "c", "d"}) {
      ip_[p] = v4_of(add_pod(p));
      ASSERT_FALSE(ip_[p].empty()) << p;
    }
    ASSERT_NO_FATAL_FAILURE(serve_in_backends("server.py", 8080));
  }
  // Waits (bounded, 10 s) until `ns` listens on `port`: Python starts
  // slowly on a loaded CI machine, and early connections would be refused.
  static bool listening(const Netns& ns, int port, bool udp = false) {
    using namespace std::chrono_literals;
    const std::string p = std::to_string(port);
    for (int i = 0; i < 100; i++) {
      if (ns.exec(std::string("ss -Hl") + (udp ? "un" : "tn") + " 'sport = :" + p +
                  "' | grep -q " + p)
              .rc == 0)
        return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  // Runs tmp_/SCRIPT NAME PORT 280 (lb_scripts.h servers) in each backend
  // pod, bounded by timeout, and waits until every one listens.
  void serve_in_backends(const std::string& script, int port, bool udp = false) {
    for (const char* p : {"b", "c", "d"})
      pods_[p]->exec("sh -c 'timeout 300 python3 " + tmp_ + "/" + script + " " + p + " " +
                     std::to_string(port) + " 280 >/dev/null 2>&1 &'");
    for (const char* p : {"b", "c", "d"})
      ASSERT_TRUE(listening(*pods_[p], port, udp)) << script << " in pod " << p << " did not start";
  }
  // The service-xlate events `observe --last` holds for FRONTEND (addr:port).
  std::vector<json> xlate_events(const std::string& frontend) {
    auto r = ctl("observe --last 1000 --type service-xlate -o json");
    EXPECT_EQ(r.rc, 0) << r.out;
    std::vector<json> out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      auto e = json::parse(line, nullptr, false);
      if (!e.is_discarded() && e.value("frontend", "") == frontend) out.push_back(e);
    }
    return out;
  }
  CmdResult apply(const std::string& yaml) { return ctl("apply -f - <<'EOF'\n" + yaml + "EOF"); }
  // The service's cluster IPs from `sluicectl get services -o json`.
  std::vector<std::string> cluster_ips(const std::string& name) {
    auto r = ctl("get services -o json");
    auto j = json::parse(r.out, nullptr, false);
    for (const auto& s : j)
      if (s["metadata"]["name"] == name) return s["spec"]["clusterIPs"];
    ADD_FAILURE() << "no service " << name << ": " << r.out;
    return {};
  }
  json connect(const std::string& addr, int n, int sport_base = 0) {
    auto r = pods_["client"]->exec("python3 " + tmp_ + "/client.py " + addr + " 80 " +
                                       std::to_string(n) + " " + std::to_string(sport_base),
                                   120);
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j.is_discarded() ? json{{"counts", json::object()}, {"fail", n}} : j;
  }
  std::string web(const std::string& extra_meta = "", const std::string& extra_spec = "",
                  bool selector = true) {
    return "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x" + extra_meta +
           "}\nspec: {" + (selector ? "selector: {app: web}, " : "") +
           "ipFamilyPolicy: PreferDualStack, ports: [{name: http, port: 80, "
           "targetPort: http}]" + extra_spec + "}\n";
  }
  // An EndpointSlice for `web` (no selector) naming pods by condition.
  std::string slice(const std::vector<std::pair<std::string, std::string>>& eps) {
    std::string y = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: "
                    "{name: web-1, namespace: x, labels: {kubernetes.io/service-name: web}}\n"
                    "addressType: IPv4\nports: [{name: http, port: 8080, protocol: TCP}]\n"
                    "endpoints:\n";
    for (const auto& [pod, cond] : eps)
      y += "- {addresses: [\"" + ip_[pod] + "\"], conditions: " + cond + "}\n";
    return y;
  }
  uint64_t drops(const std::string& reason) {
    auto st = json::parse(ctl("status -o json").out, nullptr, false);
    uint64_t n = 0;
    for (const auto& c : st["counters"])
      if (c.value("reason", "") == reason) n += c.value("packets", uint64_t{0});
    return n;
  }

  std::map<std::string, std::string> ip_;
};

}  // namespace sluice::e2e

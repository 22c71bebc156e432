// Backend derivation (lb/backends.h): EndpointSlices plus selector-matched
// Pods, named target ports per pod, conditions, deduplication, families.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <map>
#include <string>

#include "k8s/manifest.h"
#include "lb/backends.h"

using namespace sluice;
using namespace sluice::k8s;
using lb::Backend;
using lb::PodAddresses;
using lb::PortBackends;

namespace {

struct State {
  std::vector<Service> services;
  std::vector<Pod> pods;
  std::vector<EndpointSlice> slices;
};

State parse(const std::string& y) {
  State st;
  auto r = parse_manifests(y, "t.yaml");
  EXPECT_TRUE(r) << r.error();
  if (!r) return st;
  for (const auto& o : *r) {
    if (auto* s = o.get<Service>()) st.services.push_back(*s);
    if (auto* p = o.get<Pod>()) st.pods.push_back(*p);
    if (auto* e = o.get<EndpointSlice>()) st.slices.push_back(*e);
  }
  return st;
}

// Pod "ns/name" -> addresses (on node-1).
lb::PodLookup lookup(std::map<std::string, std::vector<std::string>> m) {
  return [m](const std::string& ns, const std::string& name) {
    PodAddresses a;
    auto it = m.find(ns + "/" + name);
    if (it == m.end()) return a;
    for (const auto& s : it->second) a.ips.push_back(IpAddr::parse(s).value());
    a.node_name = "node-1";
    return a;
  };
}

// "ip:port" per backend, in order.
std::vector<std::string> eps(const PortBackends& p) {
  std::vector<std::string> out;
  for (const auto& b : p.backends)
    out.push_back(
        (b.ip.family == AF_INET6 ? "[" + b.ip.str() + "]" : b.ip.str()) + ":" +
        std::to_string(b.port));
  return out;
}

std::string pod(const std::string& name, const std::string& labels,
                const std::string& ports = "[]", const std::string& ns = "x") {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
         ", namespace: " + ns + ", labels: " + labels +
         "}\nspec: {containers: [{name: c, ports: " + ports + "}]}\n---\n";
}

std::string slice(const std::string& name, const std::string& svc,
                  const std::string& body, const std::string& ns = "x") {
  return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: "
         "{name: " +
         name + ", namespace: " + ns +
         ", labels: {kubernetes.io/service-name: " + svc + "}}\n" + body +
         "\n---\n";
}

std::string service(const std::string& name, const std::string& spec,
                    const std::string& ns = "x") {
  return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name +
         ", namespace: " + ns + "}\nspec: " + spec + "\n---\n";
}

std::vector<PortBackends> backends_of(const State& st, size_t svc,
                                      const lb::PodLookup& l) {
  return lb::service_backends(st.services.at(svc), st.pods, st.slices, l);
}

}  // namespace

TEST(LbBackends, FromEndpointSlicesByLabelNamespaceAndPortName) {
  const State st =
      parse(service("web",
                    "{ports: [{name: http, port: 80}, {name: dns, port: 53, "
                    "protocol: UDP}]}") +
            slice("web-b", "web", R"(addressType: IPv4
endpoints:
- {addresses: [10.200.0.9], nodeName: node-2, zone: zone-b}
- {addresses: [10.200.0.7, 10.200.0.8]}
ports: [{name: http, port: 8080}, {name: dns, port: 53, protocol: TCP}])") +
            slice("web-a", "web", R"(addressType: IPv4
endpoints: [{addresses: [10.200.0.3]}]
ports: [{name: dns, port: 5353, protocol: UDP}, {name: other, port: 1}])") +
            slice("other", "db",
                  "addressType: IPv4\nendpoints: [{addresses: "
                  "[10.200.0.50]}]\nports: [{name: http, port: 80}]") +
            slice("web-elsewhere", "web",
                  "addressType: IPv4\nendpoints: [{addresses: [10.200.0.60]}]\n"
                  "ports: [{name: http, port: 80}]",
                  "z") +
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: z}\n");
  const auto b = backends_of(st, 0, nullptr);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].name, "http");
  EXPECT_EQ(b[0].port, 80);
  EXPECT_EQ(eps(b[0]),
            (std::vector<std::string>{"10.200.0.7:8080", "10.200.0.9:8080"}))
      << "first address only; other services and namespaces ignored";
  EXPECT_EQ(b[0].backends[1].node_name, "node-2");
  EXPECT_EQ(b[0].backends[1].zone, "zone-b");
  EXPECT_EQ(b[0].backends[0].zone, "");
  EXPECT_EQ(b[0].backends[0].source, "EndpointSlice x/web-b");
  EXPECT_EQ(b[1].protocol, Protocol::UDP);
  EXPECT_EQ(eps(b[1]), (std::vector<std::string>{"10.200.0.3:5353"}))
      << "a port matches on name and protocol (dns/TCP is another port)";
}

TEST(LbBackends, ConditionsAsTheApiDefinesThem) {
  const State st = parse(service("web", "{ports: [{port: 80}]}") +
                         slice("web-1", "web", R"(addressType: IPv4
endpoints:
- {addresses: [10.0.0.1]}
- {addresses: [10.0.0.2], conditions: {ready: false}}
- {addresses: [10.0.0.3], conditions: {ready: false, serving: true, terminating: true}}
- {addresses: [10.0.0.4], conditions: {ready: false, serving: false, terminating: true}}
- {addresses: [10.0.0.5], conditions: {ready: true, terminating: false}}
ports: [{port: 8080}])"));
  const auto b = backends_of(st, 0, nullptr);
  ASSERT_EQ(b.at(0).backends.size(), 5u);
  auto cond = [&](size_t i) {
    const Backend& x = b[0].backends[i];
    return std::string(x.ready ? "R" : "-") + (x.serving ? "S" : "-") +
           (x.terminating ? "T" : "-");
  };
  EXPECT_EQ(cond(0), "RS-") << "unset: ready, serving = ready, not terminating";
  EXPECT_EQ(cond(1), "---") << "serving unset follows ready";
  EXPECT_EQ(cond(2), "-ST") << "terminating but still serving";
  EXPECT_EQ(cond(3), "--T");
  EXPECT_EQ(cond(4), "RS-");
}

TEST(LbBackends, SelectorWithNumberedAndNamedTargetPorts) {
  const State st = parse(
      service("web",
              "{selector: {app: web}, ports: [{name: http, port: 80, "
              "targetPort: http}, {name: metrics, port: 9100, "
              "targetPort: 9100}, {name: udp, port: 81, protocol: "
              "UDP, targetPort: http}]}") +
      pod("a", "{app: web}", "[{name: http, containerPort: 8080}]") +
      // Two containers: a name is unique per container only.
      "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: "
      "{app: web, tier: x}}\nspec: {containers: [{name: c, ports: [{name: "
      "http, containerPort: 9090}]}, {name: d, ports: [{name: http, "
      "containerPort: 7070, protocol: UDP}]}]}\n---\n" +
      pod("c", "{app: web}", "[{name: web, containerPort: 8080}]") +
      pod("d", "{app: db}", "[{name: http, containerPort: 8080}]") +
      pod("e", "{app: web}", "[{name: http, containerPort: 8080}]") +
      pod("f", "{app: web}", "[{name: http, containerPort: 8080}]", "z") +
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: z}\n");
  const auto l = lookup({{"x/a", {"10.200.0.1"}},
                         {"x/b", {"10.200.0.2"}},
                         {"x/c", {"10.200.0.3"}},
                         {"x/d", {"10.200.0.4"}},
                         {"z/f", {"10.200.0.6"}}});  // x/e: no address here
  const auto b = backends_of(st, 0, l);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(eps(b[0]),
            (std::vector<std::string>{"10.200.0.1:8080", "10.200.0.2:9090"}))
      << "named per pod; c has no `http` port and is skipped";
  EXPECT_EQ(eps(b[1]),
            (std::vector<std::string>{"10.200.0.1:9100", "10.200.0.2:9100",
                                      "10.200.0.3:9100"}))
      << "a number applies to every selected pod";
  EXPECT_EQ(eps(b[2]), (std::vector<std::string>{"10.200.0.2:7070"}))
      << "the name resolves on the Service port's protocol";
  const Backend& x = b[0].backends[0];
  EXPECT_TRUE(x.ready && x.serving && !x.terminating);
  EXPECT_EQ(x.node_name, "node-1");
  EXPECT_EQ(x.source, "Pod x/a");
}

TEST(LbBackends, NoSelectorMeansSlicesOnly) {
  const State st =
      parse(service("web", "{ports: [{port: 80}]}") + pod("a", "{app: web}"));
  EXPECT_TRUE(backends_of(st, 0, lookup({{"x/a", {"10.200.0.1"}}}))
                  .at(0)
                  .backends.empty());
}

TEST(LbBackends, DeduplicatedSlicesFirstReadyWins) {
  const State st =
      parse(service("web",
                    "{selector: {app: web}, ports: [{port: 80, targetPort: "
                    "8080}]}") +
            pod("a", "{app: web}") + pod("b", "{app: web}") +
            slice("web-1", "web", R"(addressType: IPv4
endpoints:
- {addresses: [10.200.0.1], conditions: {ready: false, serving: true, terminating: true}}
- {addresses: [10.200.0.3], conditions: {ready: false}}
ports: [{port: 8080}])") +
            slice("web-2", "web", R"(addressType: IPv4
endpoints:
- {addresses: [10.200.0.3], conditions: {ready: true}}
- {addresses: [10.200.0.1], conditions: {ready: true}}
ports: [{port: 8080}])"));
  // Pod b is at 10.200.0.1 as well: the slices' view of it wins.
  const auto b = backends_of(
      st, 0, lookup({{"x/a", {"10.200.0.2"}}, {"x/b", {"10.200.0.1"}}}));
  ASSERT_EQ(eps(b.at(0)),
            (std::vector<std::string>{"10.200.0.1:8080", "10.200.0.2:8080",
                                      "10.200.0.3:8080"}));
  EXPECT_EQ(b[0].backends[0].source, "EndpointSlice x/web-2")
      << "between slices a ready entry replaces a not-ready one";
  EXPECT_TRUE(b[0].backends[0].ready);
  EXPECT_TRUE(b[0].backends[2].ready);
  EXPECT_EQ(b[0].backends[1].source, "Pod x/a");
}

TEST(LbBackends, TerminatingSliceEntryBeatsThePod) {
  const State st = parse(
      service("web", "{selector: {app: web}, ports: [{port: 80}]}") +
      pod("a", "{app: web}") +
      slice("web-1", "web",
            "addressType: IPv4\nendpoints: [{addresses: [10.200.0.1], "
            "conditions: {ready: false, serving: true, terminating: true}}]\n"
            "ports: [{port: 80}]"));
  const auto b = backends_of(st, 0, lookup({{"x/a", {"10.200.0.1"}}}));
  ASSERT_EQ(b.at(0).backends.size(), 1u);
  EXPECT_TRUE(b[0].backends[0].terminating)
      << "the pod-derived entry must not hide that it is terminating";
}

TEST(LbBackends, FamiliesOfTheService) {
  std::string y = pod("a", "{app: web}") +
                  slice("web-6", "web",
                        "addressType: IPv6\nendpoints: [{addresses: "
                        "[\"fd10:200::9\"]}]\nports: [{port: 80}]") +
                  slice("web-4", "web",
                        "addressType: IPv4\nendpoints: [{addresses: "
                        "[10.200.0.9]}]\nports: [{port: 80}]");
  const auto l = lookup({{"x/a", {"10.200.0.1", "fd10:200::1"}}});
  State v4 = parse(service("web",
                           "{selector: {app: web}, ipFamilies: [IPv4], "
                           "ports: [{port: 80}]}") +
                   y);
  EXPECT_EQ(eps(backends_of(v4, 0, l).at(0)),
            (std::vector<std::string>{"10.200.0.1:80", "10.200.0.9:80"}));
  State dual = parse(service("web",
                             "{selector: {app: web}, ipFamilies: [IPv6, "
                             "IPv4], ports: [{port: 80}]}") +
                     y);
  EXPECT_EQ(eps(backends_of(dual, 0, l).at(0)),
            (std::vector<std::string>{"10.200.0.1:80", "10.200.0.9:80",
                                      "[fd10:200::1]:80", "[fd10:200::9]:80"}));
}

TEST(LbBackends, AllBackendsMatchesPerServiceDerivation) {
  const State st =
      parse(service("web",
                    "{selector: {app: web}, ports: [{name: http, port: 80, "
                    "targetPort: http}]}") +
            service("db", "{selector: {app: db}, ports: [{port: 5432}]}") +
            service("ext", "{ports: [{port: 443}]}", "z") +
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: z}\n---\n" +
            pod("a", "{app: web}", "[{name: http, containerPort: 8080}]") +
            pod("d", "{app: db}") +
            slice("ext-1", "ext",
                  "addressType: IPv4\nendpoints: [{addresses: [192.0.2.10]}]\n"
                  "ports: [{port: 443}]",
                  "z"));
  const auto l = lookup({{"x/a", {"10.200.0.1"}}, {"x/d", {"10.200.0.4"}}});
  const auto all = lb::all_backends(st.services, st.pods, st.slices, l);
  ASSERT_EQ(all.size(), 3u);
  for (const auto& s : st.services)
    EXPECT_EQ(all.at(s.meta.namespace_ + "/" + s.meta.name),
              lb::service_backends(s, st.pods, st.slices, l))
        << s.meta.name;
  EXPECT_EQ(eps(all.at("x/web").at(0)),
            (std::vector<std::string>{"10.200.0.1:8080"}));
  EXPECT_EQ(eps(all.at("x/db").at(0)),
            (std::vector<std::string>{"10.200.0.4:5432"}));
  EXPECT_EQ(eps(all.at("z/ext").at(0)),
            (std::vector<std::string>{"192.0.2.10:443"}));
}

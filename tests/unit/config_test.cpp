#include <gtest/gtest.h>

#include "config/config.h"

using sluice::parse_config_yaml;
using sluice::validate_config;

TEST(Config, DefaultsWithEmptyFile) {
  auto c = parse_config_yaml("", "t.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_TRUE(c->devices.empty());
  EXPECT_EQ(c->bpffs, "/sys/fs/bpf/sluice");
  EXPECT_EQ(c->socket, "/run/sluice/sluice.sock");
  EXPECT_EQ(c->state_dir, "/var/lib/sluice");
  EXPECT_EQ(c->log_level, "info");
  EXPECT_TRUE(validate_config(*c));
}

TEST(Config, FullFile) {
  auto c = parse_config_yaml(R"(
devices: [veth-node0, veth-node1]
bpffs: /sys/fs/bpf/n0
socket: /run/sluice/n0.sock
stateDir: /var/lib/sluice-n0
logLevel: debug
prefilter:
  deny: [198.51.100.0/24, "2001:db8::/32"]
)",
                             "t.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->devices, (std::vector<std::string>{"veth-node0", "veth-node1"}));
  EXPECT_EQ(c->bpffs, "/sys/fs/bpf/n0");
  EXPECT_EQ(c->socket, "/run/sluice/n0.sock");
  EXPECT_EQ(c->state_dir, "/var/lib/sluice-n0");
  EXPECT_EQ(c->log_level, "debug");
  ASSERT_EQ(c->prefilter.deny.size(), 2u);
  EXPECT_EQ(c->prefilter.deny[1].str(), "2001:db8::/32");
  EXPECT_TRUE(validate_config(*c));
}

void expect_error(const std::string& yaml, const std::string& fragment) {
  auto c = parse_config_yaml(yaml, "cfg.yaml");
  ASSERT_FALSE(c) << yaml;
  EXPECT_NE(c.error().find(fragment), std::string::npos) << c.error();
  EXPECT_NE(c.error().find("cfg.yaml"), std::string::npos) << c.error();
}

TEST(Config, ErrorsNameTheField) {
  expect_error("devise: [a]\n", "unknown key devise");
  expect_error("prefilter:\n  denny: []\n", "unknown key prefilter.denny");
  expect_error("prefilter:\n  deny: [10.0.0.0/8, 1.2.3.4/40]\n",
               "prefilter.deny[1]");
  expect_error("devices: eth0\n", "devices: expected a list");
  expect_error("bpffs: [a]\n", "bpffs: expected a string");
  expect_error("devices: [\n", "invalid YAML");
  expect_error("- a\n- b\n", "top level must be a mapping");
}

TEST(Config, ValidateRejectsBadValues) {
  sluice::AgentConfig c;
  c.log_level = "loud";
  EXPECT_NE(validate_config(c).error().find("logLevel"), std::string::npos);
  c = {};
  c.state_dir = "relative/dir";
  EXPECT_NE(validate_config(c).error().find("stateDir"), std::string::npos);
  c = {};
  c.devices = {"a", "a"};
  EXPECT_NE(validate_config(c).error().find("listed twice"), std::string::npos);
  c = {};
  c.devices = {"this-name-is-way-too-long"};
  EXPECT_FALSE(validate_config(c));
}

TEST(Config, ConntrackAndPolicySizes) {
  auto c = parse_config_yaml(R"(
conntrack:
  max: 1048576
  tcpEstablishedTimeout: 2h
  tcpClosingTimeout: 5s
  unrepliedTimeout: 1m30s
  otherTimeout: "45"
  gcInterval: 10s
policy:
  endpointMaxEntries: 131072
)",
                             "t.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->conntrack.max, 1048576u);
  EXPECT_EQ(c->conntrack.tcp_established, 7200u);
  EXPECT_EQ(c->conntrack.tcp_closing, 5u);
  EXPECT_EQ(c->conntrack.unreplied, 90u);
  EXPECT_EQ(c->conntrack.other, 45u);
  EXPECT_EQ(c->conntrack.gc_interval, 10u);
  EXPECT_EQ(c->policy.endpoint_max_entries, 131072u);
  EXPECT_TRUE(validate_config(*c));

  auto d = parse_config_yaml("", "t.yaml");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->conntrack.max, 262144u);
  EXPECT_EQ(d->conntrack.tcp_established, 6u * 3600);
  EXPECT_EQ(d->policy.endpoint_max_entries, 16384u);
}

TEST(Config, ConntrackErrorsNameTheField) {
  for (const auto& [yaml, field] : std::vector<std::pair<std::string, std::string>>{
           {"conntrack: {max: 12}", "conntrack.max"},
           {"conntrack: {max: -5}", "conntrack.max"},
           {"conntrack: {max: lots}", "conntrack.max"},
           {"conntrack: {tcpEstablishedTimeout: 6x}", "conntrack.tcpEstablishedTimeout"},
           {"conntrack: {otherTimeout: 5m3}", "conntrack.otherTimeout"},
           {"conntrack: {udpTimeout: 5s}", "conntrack.udpTimeout"},
           {"conntrack: 5", "conntrack"},
           {"policy: {endpointMaxEntries: 4}", "policy.endpointMaxEntries"},
           {"policy: {maxEntries: 4}", "policy.maxEntries"}}) {
    auto c = parse_config_yaml(yaml, "t.yaml");
    ASSERT_FALSE(c) << yaml;
    EXPECT_NE(c.error().find(field), std::string::npos) << yaml << ": " << c.error();
  }
  sluice::AgentConfig cfg;
  cfg.conntrack.gc_interval = 0;
  auto s = validate_config(cfg);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("conntrack.gcInterval"), std::string::npos);
}

TEST(Config, Durations) {
  using sluice::parse_duration;
  EXPECT_EQ(*parse_duration("90", "f"), 90u);
  EXPECT_EQ(*parse_duration("90s", "f"), 90u);
  EXPECT_EQ(*parse_duration("1h30m", "f"), 5400u);
  EXPECT_EQ(*parse_duration("2d", "f"), 172800u);
  EXPECT_FALSE(parse_duration("", "f"));
  EXPECT_FALSE(parse_duration("h", "f"));
  EXPECT_FALSE(parse_duration("1.5h", "f"));
  EXPECT_FALSE(parse_duration("-1s", "f"));
}

TEST(Config, ServiceRanges) {
  auto c = parse_config_yaml(
      "serviceCIDR: 10.97.0.0/16\nserviceCIDRv6: \"\"\nnodePortRange: 31000-31999\n", "t.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->service_cidr, "10.97.0.0/16");
  EXPECT_EQ(c->service_cidr_v6, "");
  EXPECT_EQ(c->node_port_range, "31000-31999");
  EXPECT_TRUE(validate_config(*c));
  for (const auto& [yaml, field] : std::vector<std::pair<std::string, std::string>>{
           {"serviceCIDR: 10.96.0.0/33", "serviceCIDR"},
           {"serviceCIDRv6: 10.96.0.0/12", "serviceCIDRv6"},
           {"nodePortRange: 32000-31000", "nodePortRange"}}) {
    auto p = parse_config_yaml(yaml, "t.yaml");
    ASSERT_TRUE(p) << yaml;
    auto s = validate_config(*p);
    ASSERT_FALSE(s) << yaml;
    EXPECT_NE(s.error().find(field), std::string::npos) << yaml << ": " << s.error();
  }
}

TEST(Config, LoadBalancerDefaults) {
  auto c = parse_config_yaml("lb: {algorithm: maglev, maglevTableSize: 1021}", "t.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->lb.algorithm, "maglev");
  EXPECT_EQ(c->lb.maglev_table_size, 1021u);
  EXPECT_TRUE(validate_config(*c));
  for (const auto& [yaml, field] : std::vector<std::pair<std::string, std::string>>{
           {"lb: {algorithm: roundrobin}", "lb.algorithm"},
           {"lb: {maglevTableSize: 1000}", "lb.maglevTableSize"}}) {
    auto p = parse_config_yaml(yaml, "t.yaml");
    ASSERT_TRUE(p) << yaml;
    auto s = validate_config(*p);
    ASSERT_FALSE(s) << yaml;
    EXPECT_NE(s.error().find(field), std::string::npos) << yaml << ": " << s.error();
  }
  auto bad = parse_config_yaml("lb: {weights: 3}", "t.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("lb.weights"), std::string::npos);
}

TEST(Config, SocketLoadBalancer) {
  auto d = parse_config_yaml("", "t.yaml");
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->lb.socket_lb);  // opt-in: the TC path carries every feature
  EXPECT_EQ(d->lb.socket_lb_cgroup, "/sys/fs/cgroup");
  auto c = parse_config_yaml("lb: {socketLB: true, socketLBCgroup: /sys/fs/cgroup/k}",
                             "t.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_TRUE(c->lb.socket_lb);
  EXPECT_EQ(c->lb.socket_lb_cgroup, "/sys/fs/cgroup/k");
  EXPECT_TRUE(validate_config(*c));
  auto yes = parse_config_yaml("lb: {socketLB: yes}", "t.yaml");
  ASSERT_FALSE(yes);
  EXPECT_EQ(yes.error(), "t.yaml: lb.socketLB: \"yes\" is not true or false");
  auto rel = parse_config_yaml("lb: {socketLBCgroup: sys/fs/cgroup}", "t.yaml");
  ASSERT_TRUE(rel);
  auto s = validate_config(*rel);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("lb.socketLBCgroup: must be an absolute path"), std::string::npos)
      << s.error();
}

TEST(Config, EventsAndMetrics) {
  auto d = parse_config_yaml("", "t.yaml");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->events.level, "flows");
  EXPECT_EQ(d->events.history, 4096u);
  EXPECT_TRUE(d->metrics.enabled);
  EXPECT_EQ(d->metrics.address, "127.0.0.1:9962");
  auto c = parse_config_yaml(R"(
events:
  level: trace
  history: 100
metrics:
  enabled: false
  address: "[::1]:9100"
)",
                             "t.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->events.level, "trace");
  EXPECT_EQ(sluice::event_level_of(c->events.level), 3);
  EXPECT_EQ(c->events.history, 100u);
  EXPECT_FALSE(c->metrics.enabled);
  EXPECT_EQ(c->metrics.address, "[::1]:9100");
  EXPECT_TRUE(validate_config(*c));
  auto hp = sluice::parse_host_port("[::1]:9100");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->port, 9100);
  EXPECT_EQ(hp->ip.str(), "::1");
  EXPECT_FALSE(sluice::parse_host_port("127.0.0.1"));
  EXPECT_FALSE(sluice::parse_host_port("localhost:80"));
  EXPECT_FALSE(sluice::parse_host_port("127.0.0.1:65536"));
  expect_error("events:\n  levle: drops\n", "unknown key events.levle");
  expect_error("metrics:\n  enabled: yes\n", "metrics.enabled");
  expect_error("metrics:\n  port: 1\n", "unknown key metrics.port");
  sluice::AgentConfig v;
  v.events.level = "everything";
  EXPECT_NE(validate_config(v).error().find("events.level"), std::string::npos);
  v = {};
  v.metrics.address = "localhost:9962";
  EXPECT_NE(validate_config(v).error().find("metrics.address"),
            std::string::npos);
  v.metrics.enabled = false;  // an unused address is not checked
  EXPECT_TRUE(validate_config(v));
}

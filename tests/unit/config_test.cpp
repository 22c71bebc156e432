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

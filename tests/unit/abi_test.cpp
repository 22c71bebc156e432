// The shared ABI, checked at compile time: a layout change that would make
// the agent and the BPF programs disagree breaks the build.
#include <gtest/gtest.h>

#include <cstddef>
#include <set>
#include <string>

#include "datapath/counters.h"
#include "sluice/abi.h"

static_assert(sizeof(sluice_lpm_v4_key) == 8);
static_assert(offsetof(sluice_lpm_v4_key, addr) == 4);
static_assert(sizeof(sluice_lpm_v6_key) == 20);
static_assert(offsetof(sluice_lpm_v6_key, addr) == 4);
static_assert(sizeof(sluice_prefilter_value) == 4);
static_assert(sizeof(sluice_counter) == 16);
static_assert(sizeof(sluice_fc_entry) == 80);
static_assert(offsetof(sluice_fc_entry, trace) == 72);
static_assert(offsetof(sluice_fc_entry, until) == 48);
static_assert(offsetof(sluice_fc_entry, eth) == 60);
static_assert(sizeof(sluice_config) == 32);
static_assert(sizeof(sluice_event) == 112);
static_assert(sizeof(sluice_event) % 8 == 0);
static_assert(offsetof(sluice_event, ifindex) == 8);
static_assert(offsetof(sluice_event, type) == 12);
static_assert(offsetof(sluice_event, reason) == 14);
static_assert(offsetof(sluice_event, family) == 16);
static_assert(offsetof(sluice_event, dir) == 18);
static_assert(offsetof(sluice_event, verdict) == 19);
static_assert(offsetof(sluice_event, sport) == 20);
static_assert(offsetof(sluice_event, dport) == 22);
static_assert(offsetof(sluice_event, src_identity) == 24);
static_assert(offsetof(sluice_event, dst_identity) == 28);
static_assert(offsetof(sluice_event, pkt_len) == 32);
static_assert(offsetof(sluice_event, rule_id) == 36);
static_assert(offsetof(sluice_event, ep_id) == 40);
static_assert(offsetof(sluice_event, fe_port) == 44);
static_assert(offsetof(sluice_event, be_port) == 46);
static_assert(offsetof(sluice_event, saddr) == 48);
static_assert(offsetof(sluice_event, daddr) == 64);
static_assert(offsetof(sluice_event, fe_addr) == 80);
static_assert(offsetof(sluice_event, be_addr) == 96);
static_assert(SLUICE_EVENT_DROP == 1 && SLUICE_EVENT_TRACE == 2 &&
              SLUICE_EVENT_POLICY_VERDICT == 3 &&
              SLUICE_EVENT_SERVICE_XLATE == 4);
static_assert(SLUICE_EVENTS_OFF == 0 && SLUICE_EVENTS_DROPS == 1 &&
              SLUICE_EVENTS_FLOWS == 2 && SLUICE_EVENTS_TRACE == 3);
static_assert(SLUICE_TRACE_TO_ENDPOINT == 1 && SLUICE_TRACE_TO_STACK == 2 &&
              SLUICE_TRACE_TO_DEVICE == 3);
// The level override fits its 3 bits and clears the enforcement flags.
static_assert(SLUICE_EP_EVENTS(SLUICE_EVENTS_TRACE) == 4u << 8);
static_assert((SLUICE_EP_EVENTS_MASK & (SLUICE_EP_INGRESS_ENFORCED |
                                        SLUICE_EP_EGRESS_ENFORCED)) == 0);
static_assert(SLUICE_COUNTER_EVENTS_LOST == SLUICE_REASON_SLOTS - 1);
// Pod datapath (lxc_abi.h).
static_assert(sizeof(sluice_endpoint) == 48);
// sluice_ct_end_is() compares pod_mac+host_mac as three 32-bit words.
static_assert(offsetof(sluice_endpoint, pod_mac) == 36);
static_assert(offsetof(sluice_endpoint, host_mac) == 42);
static_assert(sizeof(sluice_ct_key) == 40);
static_assert(offsetof(sluice_ct_key, daddr) == 16);
static_assert(offsetof(sluice_ct_key, sport) == 32);
static_assert(offsetof(sluice_ct_key, proto) == 36);
static_assert(offsetof(sluice_ct_key, family) == 37);
static_assert(sizeof(sluice_ct_end) == 20);
static_assert(offsetof(sluice_ct_end, pod_mac) == 8);
static_assert(offsetof(sluice_ct_end, host_mac) == 14);
static_assert(sizeof(sluice_ct_value) == 104);
static_assert(offsetof(sluice_ct_value, backend_id) == 36);
static_assert(offsetof(sluice_ct_value, nat_addr) == 80);
static_assert(offsetof(sluice_ct_value, nat_port) == 96);
static_assert(offsetof(sluice_ct_value, svc_id) == 100);
// Load balancer (lb_abi.h).
static_assert(sizeof(sluice_lb_svc_key) == 24);
static_assert(offsetof(sluice_lb_svc_key, port) == 16);
static_assert(offsetof(sluice_lb_svc_key, scope) == 20);
static_assert(sizeof(sluice_lb_svc) == 24);
static_assert(sizeof(sluice_lb_slot_key) == 8);
static_assert(sizeof(sluice_lb_maglev_block) == 64);
static_assert(sizeof(sluice_lb_backend) == 24);
static_assert(offsetof(sluice_lb_backend, port) == 16);
static_assert(sizeof(sluice_lb_affinity_key) == 24);
static_assert(sizeof(sluice_lb_affinity) == 16);
// Socket load balancer (sock_abi.h).
static_assert(sizeof(sluice_sock_netns) == 28);
static_assert(offsetof(sluice_sock_netns, ipv4) == 8);
static_assert(offsetof(sluice_sock_netns, ipv6) == 12);
static_assert(sizeof(sluice_sock_nat_key) == 32);
static_assert(offsetof(sluice_sock_nat_key, addr) == 8);
static_assert(offsetof(sluice_sock_nat_key, port) == 24);
static_assert(offsetof(sluice_sock_nat_key, family) == 26);
static_assert(offsetof(sluice_sock_nat_key, dir) == 27);
static_assert(sizeof(sluice_sock_nat) == 24);
static_assert(offsetof(sluice_sock_nat, port) == 16);
static_assert(offsetof(sluice_sock_nat, backend_id) == 20);
static_assert(SLUICE_SOCK_NAT_REV == 0 && SLUICE_SOCK_NAT_FWD == 1);
static_assert(offsetof(sluice_ct_value, flags) == 16);
static_assert(offsetof(sluice_ct_value, src_identity) == 24);
static_assert(offsetof(sluice_ct_value, ep_epoch) == 32);
static_assert(offsetof(sluice_ct_value, ends) == 40);
// North-south forwarding (lb_abi.h): 8-aligned hop, no holes.
static_assert(sizeof(sluice_np_hop) == 24);
static_assert(sizeof(sluice_np_fwd) == 80);
static_assert(offsetof(sluice_np_fwd, last_seen) == 48);
static_assert(offsetof(sluice_np_fwd, hop) == 56);
static_assert(sizeof(sluice_np_rev) == 72);
static_assert(offsetof(sluice_np_rev, hop) == 48);
static_assert(sizeof(sluice_np_neigh_key) == 24);
static_assert(sizeof(sluice_np_fast_key) == 16);
static_assert(sizeof(sluice_np_fast) == 80);
static_assert(offsetof(sluice_np_fast, until) % 8 == 0);
static_assert(SLUICE_COUNTER_IDX(SLUICE_DIR_EGRESS, 1) == SLUICE_REASON_SLOTS + 1);
static_assert(SLUICE_COUNTERS_MAX == 2 * SLUICE_REASON_SLOTS);

TEST(Abi, DropReasonCodesAreUniqueNamedAndInRange) {
  std::set<int> codes;
  std::set<std::string> names;
#define CHECK_REASON(n, code, name, help)            \
  EXPECT_GT(code, 0);                                \
  EXPECT_LT(code, SLUICE_REASON_SLOTS - 1); /* last: events lost */ \
  EXPECT_TRUE(codes.insert(code).second) << #n;      \
  EXPECT_TRUE(names.insert(name).second) << name;    \
  EXPECT_EQ(sluice::drop_reason_name(code), name);   \
  EXPECT_FALSE(std::string(help).empty()) << name;
  SLUICE_DROP_REASONS(CHECK_REASON)
#undef CHECK_REASON
  EXPECT_EQ(sluice::drop_reason_name(0), "forwarded");
  EXPECT_EQ(sluice::drop_reason_name(SLUICE_REASON_SLOTS - 1),
            "unknown-" + std::to_string(SLUICE_REASON_SLOTS - 1));
}

TEST(Abi, StableCodes) {
  // Codes are an ABI shared with dashboards and saved events.
  EXPECT_EQ(SLUICE_DROP_PREFILTER_DENY, 1);
  EXPECT_EQ(SLUICE_DROP_MALFORMED, 2);
}

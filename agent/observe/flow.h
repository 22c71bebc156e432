// Flow events for people: a raw struct sluice_event decoded and enriched
// (pods, identities' labels, services, rules, drop reason names) into the
// API's FlowEvent, and the filters of `sluicectl observe`.
//
// Enrichment reads an immutable snapshot of what the agent knows
// (FlowContext), rebuilt by its owner at most once a second, so decoding
// never takes the agent's locks per event.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"
#include "sluice.pb.h"
#include "sluice/abi.h"

namespace sluice {

struct FlowEndpoint {
  std::string pod;  // "ns/name"
  std::string dev;  // host veth
  uint32_t ep_id = 0;
  uint32_t identity = 0;
};

struct FlowContext {
  std::unordered_map<uint32_t, FlowEndpoint> by_ifindex;
  std::map<IpAddr, FlowEndpoint> by_ip;
  std::unordered_map<uint32_t, std::vector<std::string>> labels;  // identity
  // (frontend address, host-order port, proto) -> "ns/name:port"
  std::map<std::tuple<IpAddr, uint16_t, uint8_t>, std::string> services;
  // rule id -> "ns/policy ingress[0]" ("" when unknown)
  std::function<std::string(uint32_t)> rule_name;
  int64_t mono_to_unix_ns = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC
};

// CLOCK_REALTIME - CLOCK_MONOTONIC now, for FlowContext::mono_to_unix_ns.
int64_t mono_to_unix_offset_ns();

// Decodes and enriches one event.
v1::FlowEvent decode_flow(const sluice_event& ev, const FlowContext& ctx);

// A notice that `n` events were lost (source "client" or "ringbuf").
v1::FlowEvent lost_notice(uint64_t n, const std::string& source);

// The filters of ObserveRequest, checked for valid values once.
class FlowFilter {
 public:
  // INVALID_ARGUMENT-style message naming the field on a bad value.
  static Result<FlowFilter> from(const v1::ObserveRequest& q);
  bool match(const v1::FlowEvent& f) const;

 private:
  v1::ObserveRequest q_;
  std::string proto_;  // normalized
};

const char* event_type_name(uint16_t type);
const char* verdict_name(uint8_t verdict);
const char* trace_point_name(uint16_t point);  // enum sluice_trace_point
std::string proto_name(uint8_t proto);

}  // namespace sluice

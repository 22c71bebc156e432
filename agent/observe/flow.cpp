#include "observe/flow.h"

#include <arpa/inet.h>
#include <time.h>

#include <algorithm>
#include <cstring>

#include "datapath/counters.h"

namespace sluice {
namespace {

IpAddr addr_of(uint8_t family, const uint8_t* b) {
  IpAddr a;
  a.family = family;
  std::memcpy(a.bytes.data(), b, family == AF_INET ? 4 : 16);
  return a;
}

std::string host_port(const IpAddr& a, uint16_t port) {
  return a.family == AF_INET6 ? "[" + a.str() + "]:" + std::to_string(port)
                              : a.str() + ":" + std::to_string(port);
}

std::string rfc3339(int64_t unix_ns) {
  const time_t s = time_t(unix_ns / 1000000000);
  struct tm tm {};
  gmtime_r(&s, &tm);
  char buf[64];
  const size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof(buf) - n, ".%09lldZ",
           (long long)(unix_ns % 1000000000));
  return buf;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_policy_deny(uint32_t code) {
  return code == SLUICE_DROP_POLICY_DENY_EGRESS ||
         code == SLUICE_DROP_POLICY_DENY_INGRESS;
}

}  // namespace

int64_t mono_to_unix_offset_ns() {
  // Once per process: the same event must get the same time in every
  // answer (two clock reads never give exactly the same difference).
  static const int64_t offset = [] {
  timespec r{}, m{};
  clock_gettime(CLOCK_REALTIME, &r);
  clock_gettime(CLOCK_MONOTONIC, &m);
  return (int64_t(r.tv_sec) - m.tv_sec) * 1000000000 +
         (int64_t(r.tv_nsec) - m.tv_nsec);
  }();
  return offset;
}

const char* event_type_name(uint16_t type) {
  switch (type) {
    case SLUICE_EVENT_DROP: return "drop";
    case SLUICE_EVENT_TRACE: return "trace";
    case SLUICE_EVENT_POLICY_VERDICT: return "policy-verdict";
    case SLUICE_EVENT_SERVICE_XLATE: return "service-xlate";
  }
  return "unknown";
}

const char* verdict_name(uint8_t v) {
  switch (v) {
    case SLUICE_VERDICT_FORWARDED: return "forwarded";
    case SLUICE_VERDICT_DROPPED: return "dropped";
    case SLUICE_VERDICT_ALLOWED: return "allowed";
    case SLUICE_VERDICT_DENIED: return "denied";
    case SLUICE_VERDICT_TRANSLATED: return "translated";
  }
  return "";
}

const char* trace_point_name(uint16_t point) {
  switch (point) {
    case SLUICE_TRACE_TO_ENDPOINT: return "to-endpoint";
    case SLUICE_TRACE_TO_STACK: return "to-stack";
    case SLUICE_TRACE_TO_DEVICE: return "to-device";
  }
  return "";
}

std::string proto_name(uint8_t p) {
  switch (p) {
    case IPPROTO_TCP: return "TCP";
    case IPPROTO_UDP: return "UDP";
    case IPPROTO_SCTP: return "SCTP";
    case IPPROTO_ICMP: return "ICMP";
    case IPPROTO_ICMPV6: return "ICMPv6";
    case 0: return "";
  }
  return std::to_string(p);
}

v1::FlowEvent decode_flow(const sluice_event& ev, const FlowContext& ctx) {
  v1::FlowEvent f;
  const int64_t unix_ns = int64_t(ev.ts_ns) + ctx.mono_to_unix_ns;
  f.set_time_ns(uint64_t(unix_ns));
  f.set_time(rfc3339(unix_ns));
  f.set_type(event_type_name(ev.type));
  f.set_verdict(verdict_name(ev.verdict));
  if (ev.type == SLUICE_EVENT_DROP) {
    f.set_drop_reason(drop_reason_name(ev.reason));
    f.set_drop_reason_code(ev.reason);
    if (!ev.verdict) f.set_verdict("dropped");
  }
  if (ev.type == SLUICE_EVENT_TRACE) f.set_trace_point(trace_point_name(ev.reason));
  f.set_direction(dir_name(ev.dir));
  f.set_protocol(proto_name(ev.proto));
  f.set_ifindex(ev.ifindex);
  f.set_endpoint_id(ev.ep_id);
  f.set_pkt_len(ev.pkt_len);
  f.set_src_identity(ev.src_identity);
  f.set_dst_identity(ev.dst_identity);
  f.set_rule_id(ev.rule_id);
  if (ev.rule_id && ctx.rule_name) f.set_rule(ctx.rule_name(ev.rule_id));
  if (auto it = ctx.by_ifindex.find(ev.ifindex); it != ctx.by_ifindex.end()) {
    f.set_interface(it->second.dev);
    f.set_interface_pod(it->second.pod);
    if (!f.endpoint_id()) f.set_endpoint_id(it->second.ep_id);
  }
  if (ev.family == AF_INET || ev.family == AF_INET6) {
    f.set_family(ev.family == AF_INET ? 4 : 6);
    const IpAddr s = addr_of(ev.family, ev.saddr),
                 d = addr_of(ev.family, ev.daddr);
    f.set_src_ip(s.str());
    f.set_dst_ip(d.str());
    f.set_src_port(ntohs(ev.sport));
    f.set_dst_port(ntohs(ev.dport));
    if (auto it = ctx.by_ip.find(s); it != ctx.by_ip.end()) {
      f.set_src_pod(it->second.pod);
      if (!f.src_identity()) f.set_src_identity(it->second.identity);
    }
    if (auto it = ctx.by_ip.find(d); it != ctx.by_ip.end()) {
      f.set_dst_pod(it->second.pod);
      if (!f.dst_identity()) f.set_dst_identity(it->second.identity);
    }
    if (ev.type == SLUICE_EVENT_SERVICE_XLATE) {
      const IpAddr fe = addr_of(ev.family, ev.fe_addr),
                   be = addr_of(ev.family, ev.be_addr);
      f.set_frontend(host_port(fe, ntohs(ev.fe_port)));
      f.set_backend(host_port(be, ntohs(ev.be_port)));
      if (auto it = ctx.services.find({fe, ntohs(ev.fe_port), ev.proto});
          it != ctx.services.end())
        f.set_service(it->second);
    }
  }
  if (auto it = ctx.labels.find(f.src_identity()); it != ctx.labels.end())
    for (const auto& l : it->second) f.add_src_labels(l);
  if (auto it = ctx.labels.find(f.dst_identity()); it != ctx.labels.end())
    for (const auto& l : it->second) f.add_dst_labels(l);
  return f;
}

v1::FlowEvent lost_notice(uint64_t n, const std::string& source) {
  v1::FlowEvent f;
  timespec r{};
  clock_gettime(CLOCK_REALTIME, &r);
  const int64_t ns = int64_t(r.tv_sec) * 1000000000 + r.tv_nsec;
  f.set_time_ns(uint64_t(ns));
  f.set_time(rfc3339(ns));
  f.set_type("lost");
  f.set_lost(n);
  f.set_lost_source(source);
  return f;
}

Result<FlowFilter> FlowFilter::from(const v1::ObserveRequest& q) {
  FlowFilter f;
  f.q_ = q;
  auto bad = [](const std::string& field, const std::string& v,
                const std::string& allowed) {
    return err(field + ": unsupported value \"" + v +
               "\": supported values: " + allowed);
  };
  if (!q.protocol().empty()) {
    const std::string p = lower(q.protocol());
    if (p != "tcp" && p != "udp" && p != "sctp" && p != "icmp" &&
        p != "icmpv6")
      return bad("protocol", q.protocol(), "TCP, UDP, SCTP, ICMP, ICMPv6");
    f.proto_ = p;
  }
  if (!q.verdict().empty() && q.verdict() != "forwarded" &&
      q.verdict() != "dropped" && q.verdict() != "allowed" &&
      q.verdict() != "denied" && q.verdict() != "translated")
    return bad("verdict", q.verdict(),
               "forwarded, dropped, allowed, denied, translated");
  if (!q.type().empty() && q.type() != "drop" &&
      q.type() != "policy-verdict" && q.type() != "service-xlate" &&
      q.type() != "trace")
    return bad("type", q.type(), "drop, policy-verdict, service-xlate, trace");
  if (!q.drop_reason().empty()) {
    bool known = false;
#define SLUICE_X_KNOWN(n, c, name, help) known |= q.drop_reason() == name;
    SLUICE_DROP_REASONS(SLUICE_X_KNOWN)
#undef SLUICE_X_KNOWN
    if (!known)
      return err("drop-reason: unknown drop reason \"" + q.drop_reason() +
                 "\" (sluicectl drop-reasons lists them)");
  }
  for (const auto& [field, v] :
       {std::pair{"pod", q.pod()}, std::pair{"from-pod", q.from_pod()},
        std::pair{"to-pod", q.to_pod()}, std::pair{"service", q.service()}})
    if (!v.empty() &&
        (v.find('/') == std::string::npos || v.front() == '/' ||
         v.back() == '/'))
      return err(std::string(field) + ": \"" + v + "\" is not NS/NAME");
  if (!q.ip().empty()) {
    auto ip = IpAddr::parse(q.ip());
    if (!ip) return err("ip: \"" + q.ip() + "\" is not an IP address");
    f.q_.set_ip(ip->str());  // canonical, as decode_flow prints
  }
  if (q.port() > 65535) return err("port: must be 1-65535");
  return f;
}

bool FlowFilter::match(const v1::FlowEvent& f) const {
  const auto& q = q_;
  if (!q.type().empty() && f.type() != q.type()) return false;
  if (!q.verdict().empty()) {
    const auto& v = f.verdict();
    const bool deny_drop = is_policy_deny(f.drop_reason_code());
    bool ok = false;
    if (q.verdict() == "dropped") ok = v == "dropped" || v == "denied";
    else if (q.verdict() == "denied") ok = v == "denied" || deny_drop;
    else if (q.verdict() == "forwarded")
      ok = v == "forwarded" || v == "allowed" || v == "translated";
    else ok = v == q.verdict();
    if (!ok) return false;
  }
  if (!q.drop_reason().empty() && f.drop_reason() != q.drop_reason())
    return false;
  if (!proto_.empty() && lower(f.protocol()) != proto_) return false;
  auto ns_of = [](const std::string& pod) {
    return pod.substr(0, pod.find('/'));
  };
  if (!q.namespace_().empty() && ns_of(f.src_pod()) != q.namespace_() &&
      ns_of(f.dst_pod()) != q.namespace_() &&
      ns_of(f.interface_pod()) != q.namespace_())
    return false;
  if (!q.pod().empty() && f.src_pod() != q.pod() && f.dst_pod() != q.pod() &&
      f.interface_pod() != q.pod())
    return false;
  // From/to need the event's addresses; --pod and --namespace also take
  // the pod of the interface (events of drops before the flow was parsed
  // carry no addresses).
  if (!q.from_pod().empty() && f.src_pod() != q.from_pod()) return false;
  if (!q.to_pod().empty() && f.dst_pod() != q.to_pod()) return false;
  if (!q.ip().empty()) {
    auto host = [](const std::string& hp) {
      if (hp.empty()) return hp;
      if (hp[0] == '[') return hp.substr(1, hp.find(']') - 1);
      return hp.substr(0, hp.rfind(':'));
    };
    if (f.src_ip() != q.ip() && f.dst_ip() != q.ip() &&
        host(f.frontend()) != q.ip() && host(f.backend()) != q.ip())
      return false;
  }
  if (q.port()) {
    auto port = [](const std::string& hp) -> uint32_t {
      auto c = hp.rfind(':');
      return c == std::string::npos ? 0 : uint32_t(std::stoul(hp.substr(c + 1)));
    };
    if (f.src_port() != q.port() && f.dst_port() != q.port() &&
        port(f.frontend()) != q.port() && port(f.backend()) != q.port())
      return false;
  }
  if (q.identity() && f.src_identity() != q.identity() &&
      f.dst_identity() != q.identity())
    return false;
  if (!q.service().empty()) {
    const auto& s = f.service();
    if (s != q.service() && s.rfind(q.service() + ":", 0) != 0) return false;
  }
  return true;
}

}  // namespace sluice

#include "k8s/objects.h"

namespace sluice::k8s {

const char* to_string(Protocol p) {
  switch (p) {
    case Protocol::TCP:
      return "TCP";
    case Protocol::UDP:
      return "UDP";
    case Protocol::SCTP:
      return "SCTP";
  }
  return "?";
}

const char* to_string(LabelSelectorRequirement::Op op) {
  using Op = LabelSelectorRequirement::Op;
  switch (op) {
    case Op::In:
      return "In";
    case Op::NotIn:
      return "NotIn";
    case Op::Exists:
      return "Exists";
    case Op::DoesNotExist:
      return "DoesNotExist";
  }
  return "?";
}

std::optional<Protocol> parse_protocol(const std::string& s) {
  for (Protocol p : {Protocol::TCP, Protocol::UDP, Protocol::SCTP})
    if (s == to_string(p)) return p;
  return std::nullopt;
}

std::optional<LabelSelectorRequirement::Op> parse_selector_op(
    const std::string& s) {
  using Op = LabelSelectorRequirement::Op;
  for (Op op : {Op::In, Op::NotIn, Op::Exists, Op::DoesNotExist})
    if (s == to_string(op)) return op;
  return std::nullopt;
}

const char* to_string(ServiceType t) {
  switch (t) {
    case ServiceType::ClusterIP:
      return "ClusterIP";
    case ServiceType::NodePort:
      return "NodePort";
    case ServiceType::LoadBalancer:
      return "LoadBalancer";
  }
  return "?";
}

const char* to_string(IpFamily f) {
  return f == IpFamily::IPv4 ? "IPv4" : "IPv6";
}

const char* to_string(IpFamilyPolicy p) {
  switch (p) {
    case IpFamilyPolicy::SingleStack:
      return "SingleStack";
    case IpFamilyPolicy::PreferDualStack:
      return "PreferDualStack";
    case IpFamilyPolicy::RequireDualStack:
      return "RequireDualStack";
  }
  return "?";
}

const char* to_string(TrafficPolicy p) {
  return p == TrafficPolicy::Cluster ? "Cluster" : "Local";
}

const char* to_string(SessionAffinity a) {
  return a == SessionAffinity::None ? "None" : "ClientIP";
}

const char* to_string(AddressType t) {
  return t == AddressType::IPv4 ? "IPv4" : "IPv6";
}

}  // namespace sluice::k8s

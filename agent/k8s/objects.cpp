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

}  // namespace sluice::k8s

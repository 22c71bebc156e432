#include "policy/selector.h"

#include <algorithm>

namespace sluice::policy {

namespace {

bool requirement_holds(const k8s::LabelSelectorRequirement& r,
                       const k8s::Labels& labels) {
  using Op = k8s::LabelSelectorRequirement::Op;
  auto it = labels.find(r.key);
  const bool present = it != labels.end();
  const bool listed =
      present && std::find(r.values.begin(), r.values.end(), it->second) !=
                     r.values.end();
  switch (r.op) {
    case Op::In: return listed;
    case Op::NotIn: return !listed;  // an absent key is "not in" the set
    case Op::Exists: return present;
    case Op::DoesNotExist: return !present;
  }
  return false;  // unknown operator: select nothing rather than everything
}

}  // namespace

bool matches(const k8s::LabelSelector& selector, const k8s::Labels& labels) {
  for (const auto& [key, value] : selector.match_labels) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  for (const auto& r : selector.match_expressions)
    if (!requirement_holds(r, labels)) return false;
  return true;
}

}  // namespace sluice::policy

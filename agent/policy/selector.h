// Kubernetes label-selector semantics (metav1.LabelSelector), the building
// block of every NetworkPolicy decision.
#pragma once

#include "k8s/objects.h"

namespace sluice::policy {

// True iff `labels` satisfy every matchLabels pair AND every
// matchExpressions requirement. An empty selector matches everything.
//   In:           key present and its value is one of `values`
//   NotIn:        key absent, or its value is none of `values`
//   Exists:       key present (values ignored)
//   DoesNotExist: key absent (values ignored)
bool matches(const k8s::LabelSelector& selector, const k8s::Labels& labels);

}  // namespace sluice::policy

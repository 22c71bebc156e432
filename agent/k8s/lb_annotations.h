// The load balancer's `sluice.io/*` annotations: their names, parsing and
// validation. Decoding rejects an invalid value when the manifest is
// applied (metadata.annotations[KEY]: Invalid value ...), the way the API
// server rejects a bad field; lb::compute_program parses them again and
// ignores (with a warning) anything invalid that got in another way.
//
// On a Service:
//   sluice.io/lb-algorithm: random | maglev (default: agent lb.algorithm)
//   sluice.io/maglev-table-size: a prime in 251..131071
//   sluice.io/backend-weights: "10.200.0.5=90,10.200.0.6:8080=10,[fd10::7]:80=0"
//   sluice.io/max-connections-per-backend: N (1..4294967295)
// On a Pod:
//   sluice.io/lb-weight: N, the weight of every backend derived from it
//
// Weights are integers 0..10000 relative to the default 100 ("a normal
// share"): 0 takes no new connections, 200 twice a normal share. A backend
// no annotation names weighs 100, so listing only a canary
// ("10.200.0.9=10") gives it a tenth of what each other backend gets, and a
// new, unlisted pod gets a normal share instead of silently none (0) or a
// sliver (1). A Service entry with a port beats one without, which beats
// the Pod's annotation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"
#include "k8s/objects.h"

namespace sluice::k8s {

inline constexpr const char* kLbAlgorithmAnnotation = "sluice.io/lb-algorithm";
inline constexpr const char* kMaglevTableSizeAnnotation =
    "sluice.io/maglev-table-size";
inline constexpr const char* kBackendWeightsAnnotation =
    "sluice.io/backend-weights";
inline constexpr const char* kMaxConnectionsAnnotation =
    "sluice.io/max-connections-per-backend";
inline constexpr const char* kLbWeightAnnotation = "sluice.io/lb-weight";

inline constexpr uint32_t kDefaultBackendWeight = 100;
inline constexpr uint32_t kMaxBackendWeight = 10000;

struct BackendWeight {
  IpAddr ip;
  std::optional<uint16_t> port;  // unset: every port of the address
  uint32_t weight = kDefaultBackendWeight;
  bool operator==(const BackendWeight&) const = default;
};

enum class LbAlgorithm { Random, Maglev };

// A Service's load-balancer annotations, parsed; unset = not annotated.
struct ServiceLbAnnotations {
  std::optional<LbAlgorithm> algorithm;
  std::optional<uint32_t> maglev_table_size;
  std::vector<BackendWeight> weights;
  uint32_t max_connections = 0;  // 0: no cap
};

// Each parser's error is the problem alone ("weight \"x\" is not ..."),
// without the annotation's name.
Result<LbAlgorithm> parse_lb_algorithm(const std::string& value);
Result<std::vector<BackendWeight>> parse_backend_weights(
    const std::string& value);
Result<uint32_t> parse_backend_weight(const std::string& value);  // 0..10000
Result<uint32_t> parse_max_connections(const std::string& value);
Result<uint32_t> parse_table_size(const std::string& value);

// The first invalid `sluice.io/*` load-balancer annotation of a Service
// (service = true) or Pod, as {annotation key, problem}; nullopt if all
// are valid. Other annotations are not looked at.
struct AnnotationProblem {
  std::string key, problem;
};
std::optional<AnnotationProblem> lb_annotation_problem(
    const ObjectMeta& meta, bool service);

// Parses every LB annotation of a Service; an invalid one is left unset
// and described in `warnings` ("sluice.io/...: problem").
ServiceLbAnnotations service_lb_annotations(const ObjectMeta& meta,
                                            std::vector<std::string>* warnings);
// A Pod's sluice.io/lb-weight; nullopt when absent or invalid (warned).
std::optional<uint32_t> pod_lb_weight(const ObjectMeta& meta,
                                      std::vector<std::string>* warnings);

}  // namespace sluice::k8s

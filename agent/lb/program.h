// What the load-balancer maps should hold, as a pure function of the
// desired state (Services, EndpointSlices, Pods), the local endpoints'
// addresses, the node's addresses and the agent defaults. No ids, no
// maps: LbEngine (lb/engine.h) assigns ids and writes the difference.
//
// Decisions (docs/design-services.md, "LbEngine"):
//   - Frontends, per Service port: each cluster IP with the port (scope
//     internal); each externalIP and load-balancer ingress IP (not
//     ipMode Proxy, as kube-proxy) with the port, and for NodePort and
//     LoadBalancer Services the node port on each node address, both
//     scopes. Headless Services have none; addresses of a family the
//     Service does not have are skipped (no backend could answer).
//   - Backend sets are per (Service, port, family, kind): kind All is every
//     eligible backend, Local only those whose address is a local
//     endpoint's. As kube-proxy: a ClusterIP uses Local when
//     internalTrafficPolicy is Local; external-scope frontends use Local
//     when externalTrafficPolicy is Local (flag SLUICE_LB_EXT_LOCAL); traffic
//     from inside the node to external addresses and node ports is subject
//     to neither policy and uses All.
//   - Eligible for new connections: ready and not terminating. When a set
//     has none, serving and terminating backends take over (kube-proxy's
//     fallback, per set: a Local set falls back to local ones). None at
//     all: count 0, the datapath rejects.
//   - Weights (k8s/lb_annotations.h): the Service's backend-weights entry
//     for ip:port, else for ip, else the backend's Pod's lb-weight, else
//     100. Weight 0 takes no new connections. Random selection gives a
//     backend slots in proportion to its weight, divided by the weights'
//     GCD and scaled down to SLUICE_LB_SLOTS_PER_SVC (each backend keeps
//     at least one slot); more backends than that is an error.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"
#include "k8s/lb_annotations.h"
#include "k8s/objects.h"
#include "sluice/lb_abi.h"

namespace sluice::lb {

struct BackendAddr {
  IpAddr ip;
  uint16_t port = 0;  // host order
  auto operator<=>(const BackendAddr&) const = default;
  std::string str() const;  // "10.0.0.1:80", "[fd00::1]:80"
};

struct FrontendKey {
  IpAddr addr;
  uint16_t port = 0;  // host order
  uint8_t proto = 0;  // IPPROTO_TCP/UDP/SCTP
  uint8_t scope = SLUICE_LB_SCOPE_INTERNAL;
  auto operator<=>(const FrontendKey&) const = default;
  std::string str() const;  // "10.96.1.1:80/TCP", "[fd10:96::1]:80/UDP"
};

enum class SetKind : uint8_t { All, Local };

// Names a backend set; svc ids are given per SetRef.
struct SetRef {
  std::string service;  // "namespace/name"
  std::string port;     // the Service port's name ("" for a lone port)
  int family = 0;       // AF_INET / AF_INET6
  SetKind kind = SetKind::All;
  auto operator<=>(const SetRef&) const = default;
  std::string str() const;  // "x/web:http IPv4 local"
};

struct SetMember {
  BackendAddr addr;
  uint32_t weight = k8s::kDefaultBackendWeight;  // > 0, as configured
  bool operator==(const SetMember&) const = default;
};

struct BackendSet {
  bool maglev = false;
  uint32_t maglev_m = 0;
  uint16_t flags = 0;  // SLUICE_LB_MAGLEV, SLUICE_LB_AFFINITY
  uint32_t affinity_s = 0;
  uint32_t conn_cap = 0;
  bool terminating_fallback = false;  // members are serving+terminating
  std::vector<SetMember> members;     // may take new connections; sorted
  // Random selection: slots of members[i] (sum <= SLUICE_LB_SLOTS_PER_SVC).
  std::vector<uint32_t> slots;
  bool operator==(const BackendSet&) const = default;

  // sluice_lb_svc.count: slots in use, or (Maglev) the member count.
  uint16_t count() const;
};

struct Frontend {
  SetRef set;
  uint16_t flags = 0;  // SLUICE_LB_EXT_LOCAL
};

struct Program {
  std::map<SetRef, BackendSet> sets;  // only sets some frontend uses
  std::map<FrontendKey, Frontend> frontends;
  std::vector<std::string> warnings;  // ignored annotations, clashes
};

struct ProgramInput {
  std::vector<k8s::Service> services;
  std::vector<k8s::Pod> pods;
  std::vector<k8s::EndpointSlice> slices;
  // Local endpoints: pod (namespace, name) -> addresses.
  std::map<std::pair<std::string, std::string>, std::vector<IpAddr>> local_pods;
  std::vector<IpAddr> node_addresses;  // node ports are served on these
  k8s::LbAlgorithm algorithm = k8s::LbAlgorithm::Random;  // lb.algorithm
  uint32_t maglev_table_size = SLUICE_LB_MAGLEV_M_MAX;    // lb.maglevTableSize
};

// Errors: a random-selection set with more weighted backends than
// SLUICE_LB_SLOTS_PER_SVC (naming the Service and the limit).
Result<Program> compute_program(const ProgramInput& in);

// What one ProgramBuilder::update changed: the sets and frontends that
// were added, removed or may differ; `all` when everything may have.
struct ProgramDelta {
  bool all = false;
  std::set<SetRef> sets;
  std::set<FrontendKey> frontends;
  size_t recomputed = 0;  // Services whose part was computed again
};

// compute_program, incrementally: one Service's frontends and sets depend
// only on it, its EndpointSlices and the context, so a Service whose
// object and slices are unchanged keeps its part unless the context
// changed in a way that can touch it: pods of its namespace (a selector),
// local addresses (Local sets), node addresses (node ports). A changed
// default, or a change of a pod carrying sluice.io/lb-weight (any
// Service's backend may be that pod), recomputes every Service.
// A frontend two Services claim goes to the first by "namespace/name"; a
// Service involved in such a clash makes its changes rebuild the whole.
class ProgramBuilder {
 public:
  // On error (see compute_program) nothing changes.
  Result<ProgramDelta> update(const ProgramInput& in);
  // Warnings are those of the Services computed by the last update.
  const Program& program() const { return prog_; }

  struct Part {  // one Service's frontends (in order) and sets
    std::vector<std::pair<FrontendKey, Frontend>> frontends;
    std::map<SetRef, BackendSet> sets;
  };

 private:
  struct Entry {
    k8s::Service svc;
    std::vector<k8s::EndpointSlice> slices;  // its own, by name
    Part part;
    uint64_t epoch = 0;
  };
  void unmerge(const std::string& key, const Part& part, ProgramDelta& d);
  bool merge(const std::string& key, const Part& part, ProgramDelta& d);
  void rebuild();

  bool primed_ = false;
  uint64_t epoch_ = 0;
  std::map<std::string, Entry> cache_;  // "namespace/name"
  // The context the cached parts were computed in.
  std::vector<k8s::Pod> pods_;
  std::map<std::pair<std::string, std::string>, std::vector<IpAddr>> local_;
  std::vector<IpAddr> node_;
  k8s::LbAlgorithm algorithm_ = k8s::LbAlgorithm::Random;
  uint32_t maglev_m_ = 0;
  std::set<std::string> clashing_;
  Program prog_;
};

// Slots per weight (weights > 0): divided by their GCD, then scaled so the
// sum fits `max`, every backend keeping >= 1. Error if weights.size() > max.
Result<std::vector<uint32_t>> slot_counts(std::span<const uint32_t> weights,
                                          uint32_t max);

// A random set's slot layout (backend ids) that changes as few positions
// of `prev` as it can: `need[id]` slots per backend id, positions
// 0..sum-1. A backend keeps the positions it held (below the new size).
std::vector<uint32_t> assign_slots(std::span<const uint32_t> prev,
                                   const std::map<uint32_t, uint32_t>& need);

// Map usage and the capacity check LbEngine makes before anything is
// written (it counts usage incrementally; usage() is the one-shot count).
struct Usage {
  size_t frontends = 0, sets = 0, slots = 0, backends = 0;
};
struct Limits {
  size_t frontends = SLUICE_LB_SVC_MAX;
  size_t sets = SLUICE_LB_SVC_IDS_MAX - 1;  // svc ids 1..max-1
  size_t slots = SLUICE_LB_SLOTS_MAX;
  size_t backends = SLUICE_LB_BE_MAX;
};
Usage usage(const Program& p);
// The error names the limit: "load balancer: 70000 frontends exceed
// SLUICE_LB_SVC_MAX (65536) ...".
Status check_capacity(const Usage& u, const Limits& l = {});

uint8_t ip_proto(k8s::Protocol p);
const char* proto_name(uint8_t proto);

}  // namespace sluice::lb

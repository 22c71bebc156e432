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
#include <unordered_map>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"
#include "k8s/change.h"
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
  bool operator==(const Frontend&) const = default;
};

struct Program {
  std::map<SetRef, BackendSet> sets;  // only sets some frontend uses
  std::map<FrontendKey, Frontend> frontends;
  std::vector<std::string> warnings;  // ignored annotations, clashes
};

// What the program depends on besides the Kubernetes objects.
struct ProgramContext {
  // Local endpoints: pod (namespace, name) -> addresses.
  std::map<std::pair<std::string, std::string>, std::vector<IpAddr>> local_pods;
  std::vector<IpAddr> node_addresses;  // node ports are served on these
  k8s::LbAlgorithm algorithm = k8s::LbAlgorithm::Random;  // lb.algorithm
  uint32_t maglev_table_size = SLUICE_LB_MAGLEV_M_MAX;    // lb.maglevTableSize
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

// compute_program, incrementally. One Service's frontends and sets (its
// "part") depend only on the Service, its EndpointSlices and a context,
// so the builder keeps every part and, per change, computes again only
// the Services the change can reach (a superset is harmless: a part found
// equal changes nothing):
//   - a Service added, changed or removed: itself;
//   - an EndpointSlice: the Services its kubernetes.io/service-name label
//     named before and names now;
//   - a Pod added, removed or changed: the selector Services of its
//     namespace that select it before or after (labels, named ports); if
//     its sluice.io/lb-weight changed, also every Service whose slices
//     name it (targetRef) or that has a backend at one of its local
//     addresses (weights follow both);
//   - a local endpoint's addresses: the selector Services that select its
//     pod, and every Service with a backend at an address it had or has
//     (Local sets, weights by address);
//   - node addresses: Services with node ports (type other than ClusterIP);
//   - a changed default (algorithm, Maglev size), the first update: all.
// The reverse indexes (address -> Services, pod -> Services naming it,
// namespace -> selector Services) are kept with the parts. A frontend two
// Services claim goes to the first by "namespace/name"; a Service involved
// in such a clash makes its changes rebuild the whole program.
// tests/unit/lb_incremental_test.cpp checks the result against
// compute_program over random sequences of changes.
class ProgramBuilder {
 public:
  // The change feed (k8s/change.h; only Services, EndpointSlices and Pods
  // are read, other kinds are ignored) and the context. On error (see
  // compute_program) program() is unchanged, and the Services that were
  // due stay due: the next update computes them again, so the same feed
  // may be given again.
  Result<ProgramDelta> update(const k8s::ChangeFeed& feed,
                              const ProgramContext& ctx);
  // The whole input, as a full feed (compared with what the builder holds,
  // so a second call with the same input computes nothing).
  Result<ProgramDelta> update(const ProgramInput& in);
  bool primed() const { return primed_; }
  // Warnings are those of the Services and Pods read by the last update.
  const Program& program() const { return prog_; }

  struct Part {  // one Service's frontends (in order) and sets
    std::vector<std::pair<FrontendKey, Frontend>> frontends;
    std::map<SetRef, BackendSet> sets;
    bool operator==(const Part&) const = default;
  };

 private:
  using PodRef = std::pair<std::string, std::string>;
  // What a Service's part was computed from, beyond its own objects.
  struct Deps {
    std::vector<IpAddr> ips;    // every backend address it considered
    std::vector<PodRef> pods;   // pods its slices name (targetRef)
  };
  struct Entry {
    Part part;
    Deps deps;
  };
  void apply_change(const std::string& key, const k8s::ObjectPtr& now,
                    const ProgramContext& ctx,
                    std::vector<std::string>& warnings);
  void reach_pod_weight(const PodRef& pod, const ProgramContext& ctx);
  void reach_address(const IpAddr& ip);
  // `key` must be parts_' own (by_ip_ keeps its address).
  void index(const std::string& key, const Deps& deps, bool add);
  void unmerge(const std::string& key, const Part& part, ProgramDelta& d);
  bool merge(const std::string& key, const Part& part, ProgramDelta& d);
  void rebuild();

  bool primed_ = false;
  ProgramContext ctx_;  // the context the parts were computed in
  // The desired state as the feed gave it, by feed key ("services/x/web").
  std::unordered_map<std::string, k8s::ObjectPtr> objects_;
  std::map<std::string, const k8s::Service*> services_;  // "ns/name"
  // "ns/service" -> slice name -> slice, for slices labelled with it.
  std::unordered_map<std::string, std::map<std::string, const k8s::EndpointSlice*>>
      slices_of_;
  std::map<std::string, std::map<std::string, const k8s::Pod*>> pods_;  // ns -> name
  std::map<PodRef, uint32_t> pod_weight_;  // pods with a valid lb-weight
  std::unordered_map<std::string, std::set<std::string>> selector_svcs_;  // ns ->
  std::set<std::string> due_;  // Services to compute again
  std::map<std::string, Entry> parts_;  // "namespace/name"
  struct IpHash {
    size_t operator()(const IpAddr& a) const noexcept {
      uint64_t h = uint64_t(a.family);
      for (uint8_t b : a.bytes) h = h * 1099511628211ull ^ b;  // FNV-1a-ish
      return size_t(h);
    }
  };
  // Backend address -> Services (their keys in parts_, stable while there).
  std::unordered_map<IpAddr, std::vector<const std::string*>, IpHash> by_ip_;
  std::map<PodRef, std::set<std::string>> by_pod_;
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

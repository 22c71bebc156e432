// The backends of each Service port, derived from the desired state: a
// pure function of Services, EndpointSlices, Pods and the pods' addresses
// (which the agent knows from its local endpoints), so it can be tested
// without a datapath and re-run whenever any of them changes.
//
// Where backends come from, and the decisions taken:
//   - EndpointSlices labelled kubernetes.io/service-name=<service> in the
//     Service's namespace. A slice port matches a Service port by name and
//     protocol (kube-proxy's ServicePortName); a slice port without a number
//     matches nothing. Only an endpoint's first address is used: the API
//     defines no meaning for the others and kube-proxy ignores them.
//     Conditions as the API documents them: ready unset = true, serving
//     unset = ready, terminating unset = false.
//   - PLUS, when the Service has a selector, the Pods of its namespace whose
//     labels include every selector pair, each pod address being a backend
//     (what the EndpointSlice controller would publish; Sluice has no
//     controller, so it derives them itself). targetPort is a number, or a
//     container port name resolved per pod on the Service port's protocol; a
//     pod without such a port is skipped, as the endpointslice controller
//     does. Such backends are ready and serving (the agent only knows
//     addresses of running local pods); their node is the lookup's answer.
//   - Deduplicated by (ip, port): slices are read first (sorted by name) and
//     win over pod-derived entries, since they carry conditions the agent
//     cannot know (terminating); between slices, a ready entry replaces a
//     not-ready one (a pod moving between slices), as kube-proxy does.
//   - Addresses of a family the Service does not have (ipFamilies) are
//     dropped: no frontend could reach them.
//   - Backends are sorted by (ip, port) so every consumer (Maglev tables)
//     sees the same order whatever the sources' order.
// Headless Services get backends too; the load balancer skips them.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "k8s/objects.h"

namespace sluice::lb {

struct Backend {
  IpAddr ip;
  uint16_t port = 0;
  bool ready = true, serving = true, terminating = false;
  std::string node_name;  // "" when unknown
  std::string zone;       // "" when unknown (only slices carry one)
  std::string source;     // "EndpointSlice x/web-1" or "Pod x/a", for humans
  bool operator==(const Backend&) const = default;
};

struct PortBackends {
  std::string name;  // the Service port's
  k8s::Protocol protocol = k8s::Protocol::TCP;
  int32_t port = 0;  // the Service port (frontend)
  int32_t node_port = 0;
  std::vector<Backend> backends;
  bool operator==(const PortBackends&) const = default;
};

// A pod's addresses; empty when the pod has none (not running here).
struct PodAddresses {
  std::vector<IpAddr> ips;
  std::string node_name;
};
using PodLookup =
    std::function<PodAddresses(const std::string& ns, const std::string& name)>;

// One Service's backends, one entry per Service port in spec order.
std::vector<PortBackends> service_backends(
    const k8s::Service& svc, const std::vector<k8s::Pod>& pods,
    const std::vector<k8s::EndpointSlice>& slices, const PodLookup& lookup);

// The same from what the caller has already narrowed down: `ns_pods` the
// Service namespace's pods and `slices` the Service's own slices, each
// sorted by name (the load balancer's ProgramBuilder keeps them indexed).
std::vector<PortBackends> service_backends(
    const k8s::Service& svc, const std::vector<const k8s::Pod*>& ns_pods,
    const std::vector<const k8s::EndpointSlice*>& slices,
    const PodLookup& lookup);

// A Service selector (matchLabels only) against a pod's labels. An empty
// one matches every pod: callers check first (a Service without a
// selector has no pod backends).
bool selects(const k8s::Labels& selector, const k8s::Labels& labels);

// Every Service's, keyed "namespace/name".
std::map<std::string, std::vector<PortBackends>> all_backends(
    const std::vector<k8s::Service>& services,
    const std::vector<k8s::Pod>& pods,
    const std::vector<k8s::EndpointSlice>& slices, const PodLookup& lookup);

}  // namespace sluice::lb

// YAML manifests to objects.h structs, following kubectl + the API server:
//   - decoding is strict (yaml_fields.h): unknown and duplicate fields are
//     errors, as with kubectl's default --validate=strict, except inside Pod
//     spec/containers, where Sluice reads only ports and everything else is
//     Kubernetes' business;
//   - defaulting (SetDefaults_*) then validation (Validate*) with upstream's
//     field paths and messages, reporting the first problem only.
#include "k8s/manifest.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "common/cidr.h"
#include "k8s/events_annotation.h"
#include "k8s/lb_annotations.h"
#include "k8s/validation.h"
#include "k8s/yaml_fields.h"

namespace sluice::k8s {
namespace {

using namespace detail;

// --- metadata and selectors -------------------------------------------------

// Sluice's own load-balancer annotations are checked like fields: a typo
// in a weight must not silently become "weight 100".
void validate_lb_annotations(const ObjectMeta& m, bool service) {
  if (auto p = lb_annotation_problem(m, service))
    fail("metadata.annotations[" + p->key + "]",
         "Invalid value " + quote(m.annotations.at(p->key)) + ": " +
             p->problem);
}

void validate_events_annotation(const ObjectMeta& m) {
  if (auto r = pod_events_level(m); !r)
    fail(std::string("metadata.annotations[") + kEventsLevelAnnotation + "]",
         "Invalid value " + quote(m.annotations.at(kEventsLevelAnnotation)) +
             ": " + r.error());
}

// ValidateLabels reports at the map's path, naming the offending key/value.
void validate_labels(const Labels& labels, const std::string& path) {
  for (const auto& [k, v] : labels) {
    check(qualified_name(k), path, k);
    check(label_value(v), path, v);
  }
}

const std::set<std::string> kMetaFields = {"name",
                                           "generateName",
                                           "namespace",
                                           "labels",
                                           "annotations",
                                           "uid",
                                           "resourceVersion",
                                           "generation",
                                           "creationTimestamp",
                                           "deletionTimestamp",
                                           "deletionGracePeriodSeconds",
                                           "ownerReferences",
                                           "finalizers",
                                           "managedFields",
                                           "selfLink"};

template <typename T>
ObjectMeta decode_meta(const YAML::Node& n) {
  Fields f(n, "metadata", kMetaFields);
  ObjectMeta m;
  m.name = str(f["name"], "metadata.name");
  // A cluster-scoped object's namespace is cleared by the API server
  // (rest.BeforeCreate), not rejected; kubectl ignores it too.
  const std::string ns = str(f["namespace"], "metadata.namespace");
  if constexpr (KindInfo<T>::namespaced)
    m.namespace_ = ns.empty() ? "default" : ns;
  m.labels = string_map(f["labels"], "metadata.labels");
  m.annotations = string_map(f["annotations"], "metadata.annotations");
  if constexpr (std::is_same_v<T, Namespace>)
    m.labels["kubernetes.io/metadata.name"] = m.name;

  if (m.name.empty()) fail("metadata.name", "Required value");
  if constexpr (std::is_same_v<T, Service>)
    check(dns1035_label(m.name), "metadata.name", m.name);
  else
    check(KindInfo<T>::namespaced ? dns1123_subdomain(m.name)
                                  : dns1123_label(m.name),
          "metadata.name", m.name);
  if constexpr (KindInfo<T>::namespaced)
    check(dns1123_label(m.namespace_), "metadata.namespace", m.namespace_);
  validate_labels(m.labels, "metadata.labels");
  size_t total = 0;
  for (const auto& [k, v] : m.annotations) {
    std::string lower = k;
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    check(qualified_name(lower), "metadata.annotations", k);
    total += k.size() + v.size();
  }
  if (total > 256 * 1024)
    fail("metadata.annotations", "Too long: must have at most 262144 bytes");
  return m;
}

LabelSelector decode_selector(const YAML::Node& n, const std::string& path) {
  using Op = LabelSelectorRequirement::Op;
  Fields f(n, path, {"matchLabels", "matchExpressions"});
  LabelSelector s;
  s.match_labels = string_map(f["matchLabels"], f.path("matchLabels"));
  validate_labels(s.match_labels, f.path("matchLabels"));
  const auto exprs = list(f["matchExpressions"], f.path("matchExpressions"));
  for (size_t i = 0; i < exprs.size(); i++) {
    Fields e(exprs[i], idx(f.path("matchExpressions"), i),
             {"key", "operator", "values"});
    LabelSelectorRequirement r;
    r.key = str(e["key"], e.path("key"));
    const std::string op = str(e["operator"], e.path("operator"));
    const auto values = list(e["values"], e.path("values"));
    for (size_t j = 0; j < values.size(); j++)
      r.values.push_back(str(values[j], idx(e.path("values"), j)));
    const auto parsed = parse_selector_op(op);
    if (!parsed)
      unsupported(e.path("operator"), op,
                  {"In", "NotIn", "Exists", "DoesNotExist"});
    r.op = *parsed;
    if ((r.op == Op::In || r.op == Op::NotIn) && r.values.empty())
      fail(e.path("values"),
           "Required value: must be specified when `operator` is 'In' or "
           "'NotIn'");
    if ((r.op == Op::Exists || r.op == Op::DoesNotExist) && !r.values.empty())
      fail(e.path("values"),
           "Forbidden: may not be specified when `operator` is 'Exists' or "
           "'DoesNotExist'");
    check(qualified_name(r.key), e.path("key"), r.key);
    for (size_t j = 0; j < r.values.size(); j++)
      check(label_value(r.values[j]), idx(e.path("values"), j), r.values[j]);
    s.match_expressions.push_back(std::move(r));
  }
  return s;
}

// An explicit "" is not defaulted where the Go field is a pointer
// (NetworkPolicyPort.protocol) but is where it is a plain string
// (ContainerPort.protocol); `empty_means_tcp` selects which.
Protocol protocol(const YAML::Node& n, const std::string& path,
                  bool empty_means_tcp) {
  if (type_of(n) == Type::Null) return Protocol::TCP;
  const std::string s = str(n, path);
  if (s.empty() && empty_means_tcp) return Protocol::TCP;
  const auto p = parse_protocol(s);
  if (!p) unsupported(path, s, {"TCP", "UDP", "SCTP"});
  return *p;
}

// --- kinds ------------------------------------------------------------------

const std::set<std::string> kTopFields = {"apiVersion", "kind", "metadata",
                                          "spec", "status"};

template <typename T>
T decode_kind(const Fields& top);

template <>
Namespace decode_kind<Namespace>(const Fields& top) {
  return Namespace{decode_meta<Namespace>(top["metadata"])};
}

template <>
Pod decode_kind<Pod>(const Fields& top) {
  Pod pod;
  pod.meta = decode_meta<Pod>(top["metadata"]);
  validate_lb_annotations(pod.meta, false);
  validate_events_annotation(pod.meta);
  Fields spec(top["spec"], "spec");
  const auto containers = list(spec["containers"], "spec.containers");
  for (size_t c = 0; c < containers.size(); c++) {
    Fields ctr(containers[c], idx("spec.containers", c));
    const auto ports = list(ctr["ports"], ctr.path("ports"));
    std::set<std::string> names;  // unique per container only, as upstream
    for (size_t i = 0; i < ports.size(); i++) {
      Fields f(ports[i], idx(ctr.path("ports"), i),
               {"name", "containerPort", "protocol", "hostPort", "hostIP"});
      ContainerPort p;
      p.name = str(f["name"], f.path("name"));
      if (!p.name.empty()) {
        check(port_name(p.name), f.path("name"), p.name);
        if (!names.insert(p.name).second)
          fail(f.path("name"), "Duplicate value " + quote(p.name));
      }
      if (!f.has("containerPort"))
        fail(f.path("containerPort"), "Required value");
      const int64_t num = integer(f["containerPort"], f.path("containerPort"));
      if (num == 0) fail(f.path("containerPort"), "Required value");
      check(port_number(num), f.path("containerPort"), num);
      p.container_port = static_cast<int32_t>(num);
      if (f.has("hostPort")) {
        const int64_t hp = integer(f["hostPort"], f.path("hostPort"));
        if (hp != 0) check(port_number(hp), f.path("hostPort"), hp);
      }
      str(f["hostIP"], f.path("hostIP"));
      p.protocol = protocol(f["protocol"], f.path("protocol"), true);
      pod.ports.push_back(std::move(p));
    }
  }
  return pod;
}

IpBlock decode_ip_block(const YAML::Node& n, const std::string& path) {
  Fields f(n, path, {"cidr", "except"});
  IpBlock b;
  b.cidr = str(f["cidr"], f.path("cidr"));
  const auto except = list(f["except"], f.path("except"));
  for (size_t i = 0; i < except.size(); i++)
    b.except.push_back(str(except[i], idx(f.path("except"), i)));

  // Kubernetes wants "addr/len" (a bare address is not a CIDR there).
  // Cidr::parse also rejects host bits ("10.0.0.1/8"), which the API server
  // only does with StrictIPCIDRValidation; Sluice keeps the strict reading
  // so a typo cannot widen a policy.
  auto parse = [](const std::string& s, const std::string& p) {
    auto c = Cidr::parse(s);
    if (s.find('/') == std::string::npos || !c) {
      const std::string why = c ? "" : c.error();
      const auto colon = why.find("\": ");
      fail(p, "Invalid value " + quote(s) + ": not a valid CIDR" +
                  (colon == std::string::npos ? "" : why.substr(colon + 1)));
    }
    return *c;
  };
  if (b.cidr.empty()) fail(f.path("cidr"), "Required value");
  const Cidr cidr = parse(b.cidr, f.path("cidr"));
  for (size_t i = 0; i < b.except.size(); i++) {
    const std::string p = idx(f.path("except"), i);
    const Cidr e = parse(b.except[i], p);
    if (!cidr.contains(e.addr) || cidr.prefixlen >= e.prefixlen)
      fail(p, "Invalid value " + quote(b.except[i]) +
                  ": must be a strict subset of `cidr`");
  }
  return b;
}

NetworkPolicyPeer decode_peer(const YAML::Node& n, const std::string& path) {
  Fields f(n, path, {"podSelector", "namespaceSelector", "ipBlock"});
  NetworkPolicyPeer peer;
  if (f.has("podSelector"))
    peer.pod_selector =
        decode_selector(f["podSelector"], f.path("podSelector"));
  if (f.has("namespaceSelector"))
    peer.namespace_selector =
        decode_selector(f["namespaceSelector"], f.path("namespaceSelector"));
  if (f.has("ipBlock"))
    peer.ip_block = decode_ip_block(f["ipBlock"], f.path("ipBlock"));
  if (!peer.pod_selector && !peer.namespace_selector && !peer.ip_block)
    fail(path, "Required value: must specify a peer");
  if (peer.ip_block && (peer.pod_selector || peer.namespace_selector))
    fail(path, "Forbidden: may not specify both ipBlock and another peer");
  return peer;
}

NetworkPolicyPort decode_np_port(const YAML::Node& n, const std::string& path) {
  Fields f(n, path, {"protocol", "port", "endPort"});
  NetworkPolicyPort p;
  p.protocol = protocol(f["protocol"], f.path("protocol"), false);
  // IntOrString: a YAML number is a port number, anything quoted or
  // non-numeric a port name ("80" in quotes is an invalid name, as upstream).
  const YAML::Node port = f["port"];
  const Type t = type_of(port);
  if (t == Type::Int) {
    const int64_t num = integer(port, f.path("port"));
    check(port_number(num), f.path("port"), num);
    p.port = static_cast<int32_t>(num);
  } else if (t == Type::String) {
    check(port_name(port.Scalar()), f.path("port"), port.Scalar());
    p.port = port.Scalar();
  } else if (t != Type::Null) {
    fail(f.path("port"),
         "expected a port number or name, got " + describe(port));
  }
  if (f.has("endPort")) {
    const int64_t end = integer(f["endPort"], f.path("endPort"));
    if (!p.port)
      fail(f.path("endPort"), "Invalid value " + std::to_string(end) +
                                  ": may not be specified when `port` is not "
                                  "specified");
    if (!std::holds_alternative<int32_t>(*p.port))
      fail(f.path("endPort"), "Invalid value " + std::to_string(end) +
                                  ": may not be specified when `port` is "
                                  "non-numeric");
    if (end < std::get<int32_t>(*p.port))
      fail(f.path("endPort"), "Invalid value " + std::to_string(end) +
                                  ": must be greater than or equal to `port`");
    check(port_number(end), f.path("endPort"), end);
    p.end_port = static_cast<int32_t>(end);
  }
  return p;
}

// Upstream validates ingress ports before peers and egress peers before
// ports; with first-error reporting the order decides which one is shown.
NetworkPolicyRule decode_rule(const YAML::Node& n, const std::string& path,
                              bool ingress) {
  const std::string peers = ingress ? "from" : "to";
  Fields f(n, path, {peers, "ports"});
  NetworkPolicyRule r;
  auto ports = [&] {
    const auto l = list(f["ports"], f.path("ports"));
    for (size_t i = 0; i < l.size(); i++)
      r.ports.push_back(decode_np_port(l[i], idx(f.path("ports"), i)));
  };
  if (ingress) ports();
  const auto l = list(f[peers], f.path(peers));
  for (size_t i = 0; i < l.size(); i++)
    r.peers.push_back(decode_peer(l[i], idx(f.path(peers), i)));
  if (!ingress) ports();
  return r;
}

template <>
NetworkPolicy decode_kind<NetworkPolicy>(const Fields& top) {
  NetworkPolicy np;
  np.meta = decode_meta<NetworkPolicy>(top["metadata"]);
  Fields spec(top["spec"], "spec",
              {"podSelector", "policyTypes", "ingress", "egress"});
  np.pod_selector = decode_selector(spec["podSelector"], "spec.podSelector");
  const auto ingress = list(spec["ingress"], "spec.ingress");
  for (size_t i = 0; i < ingress.size(); i++)
    np.ingress.push_back(decode_rule(ingress[i], idx("spec.ingress", i), true));
  const auto egress = list(spec["egress"], "spec.egress");
  for (size_t i = 0; i < egress.size(); i++)
    np.egress.push_back(decode_rule(egress[i], idx("spec.egress", i), false));

  const auto types = list(spec["policyTypes"], "spec.policyTypes");
  if (types.size() > 2) {
    std::string v;
    for (size_t i = 0; i < types.size(); i++)
      v += (i ? ", " : "") + str(types[i], idx("spec.policyTypes", i));
    fail("spec.policyTypes", "Invalid value [" + v +
                                 "]: may not specify more than two "
                                 "policyTypes");
  }
  // SetDefaults_NetworkPolicy: no policyTypes means Ingress, plus Egress
  // when there is at least one egress rule (`egress: []` adds nothing).
  np.ingress_type = types.empty();
  np.egress_type = types.empty() && !np.egress.empty();
  for (size_t i = 0; i < types.size(); i++) {
    const std::string t = str(types[i], idx("spec.policyTypes", i));
    if (t == "Ingress")
      np.ingress_type = true;
    else if (t == "Egress")
      np.egress_type = true;
    else
      unsupported(idx("spec.policyTypes", i), t, {"Ingress", "Egress"});
  }
  return np;
}

// --- Service ----------------------------------------------------------------
// SetDefaults_Service, then ValidateService in upstream's order (the first
// problem is the one reported). Cluster IPs, IP families and node ports are
// completed by lb::Allocator (upstream: the registry's allocation step).

const std::set<std::string> kServiceSpecFields = {
    "type", "selector", "ports", "clusterIP", "clusterIPs", "ipFamilies",
    "ipFamilyPolicy", "externalIPs", "sessionAffinity",
    "sessionAffinityConfig", "externalTrafficPolicy", "internalTrafficPolicy",
    "allocateLoadBalancerNodePorts", "publishNotReadyAddresses",
    // Accepted and ignored: they only steer cloud load balancers or are
    // hints a dataplane may ignore.
    "healthCheckNodePort", "loadBalancerClass", "loadBalancerIP",
    "trafficDistribution",
    // Rejected when set (below): ignoring them would change what is exposed.
    "externalName", "loadBalancerSourceRanges"};

std::string list_value(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
  return "[" + out + "]";
}

std::optional<int> ip_family_of(const std::string& s) {
  if (!ipv4_address(s).empty() && !ipv6_address(s).empty()) return std::nullopt;
  return ipv4_address(s).empty() ? 4 : 6;
}

void decode_service_status(const YAML::Node& n, Service& svc) {
  Fields st(n, "status", {"loadBalancer", "conditions"});
  list(st["conditions"], "status.conditions");  // accepted, ignored
  Fields lb(st["loadBalancer"], "status.loadBalancer", {"ingress"});
  const auto ingress = list(lb["ingress"], "status.loadBalancer.ingress");
  for (size_t i = 0; i < ingress.size(); i++) {
    Fields f(ingress[i], idx("status.loadBalancer.ingress", i),
             {"ip", "hostname", "ipMode", "ports"});
    LoadBalancerIngress in;
    in.ip = str(f["ip"], f.path("ip"));
    in.hostname = str(f["hostname"], f.path("hostname"));
    in.ip_mode = str(f["ipMode"], f.path("ipMode"));
    list(f["ports"], f.path("ports"));  // accepted, ignored
    // SetDefaults_Service (LoadBalancerIPMode): VIP when an IP is given.
    if (svc.type == ServiceType::LoadBalancer && !in.ip.empty() &&
        !f.has("ipMode"))
      in.ip_mode = "VIP";
    svc.lb_ingress.push_back(std::move(in));
  }
  // ValidateLoadBalancerStatus
  if (svc.type != ServiceType::LoadBalancer && !svc.lb_ingress.empty())
    fail("status.loadBalancer.ingress",
         "Forbidden: may only be used when `spec.type` is 'LoadBalancer'");
  for (size_t i = 0; i < svc.lb_ingress.size(); i++) {
    const auto& in = svc.lb_ingress[i];
    const std::string p = idx("status.loadBalancer.ingress", i);
    if (!in.ip.empty()) check(ip_address(in.ip), p + ".ip", in.ip);
    if (!in.ip_mode.empty() && in.ip.empty())
      fail(p + ".ipMode", "Forbidden: may not be set when `ip` is not set");
    if (!in.ip_mode.empty() && in.ip_mode != "VIP" && in.ip_mode != "Proxy")
      unsupported(p + ".ipMode", in.ip_mode, {"Proxy", "VIP"});
    if (!in.hostname.empty()) {
      check(dns1123_subdomain(in.hostname), p + ".hostname", in.hostname);
      if (ip_address(in.hostname).empty())
        fail(p + ".hostname", "Invalid value " + quote(in.hostname) +
                                  ": must be a DNS name, not an IP address");
    }
  }
}

template <>
Service decode_kind<Service>(const Fields& top) {
  Service svc;
  svc.meta = decode_meta<Service>(top["metadata"]);
  validate_lb_annotations(svc.meta, true);
  Fields spec(top["spec"], "spec", kServiceSpecFields);

  const std::string type = str(spec["type"], "spec.type");
  if (type.empty() || type == "ClusterIP")
    svc.type = ServiceType::ClusterIP;
  else if (type == "NodePort")
    svc.type = ServiceType::NodePort;
  else if (type == "LoadBalancer")
    svc.type = ServiceType::LoadBalancer;
  else if (type == "ExternalName")
    fail("spec.type",
         "Unsupported value \"ExternalName\": not supported by Sluice "
         "(ExternalName services are DNS aliases, there is nothing to "
         "load-balance): supported values: \"ClusterIP\", \"LoadBalancer\", "
         "\"NodePort\"");
  else
    unsupported("spec.type", type, {"ClusterIP", "LoadBalancer", "NodePort"});
  if (const auto n = str(spec["externalName"], "spec.externalName");
      !n.empty())
    fail("spec.externalName",
         "Forbidden: not supported by Sluice (ExternalName services are not "
         "supported)");
  if (!list(spec["loadBalancerSourceRanges"], "spec.loadBalancerSourceRanges")
           .empty())
    fail("spec.loadBalancerSourceRanges",
         "Forbidden: not supported by Sluice (use a NetworkPolicy or the "
         "prefilter to restrict sources)");
  if (spec.has("healthCheckNodePort"))
    integer(spec["healthCheckNodePort"], "spec.healthCheckNodePort");
  str(spec["loadBalancerClass"], "spec.loadBalancerClass");
  str(spec["loadBalancerIP"], "spec.loadBalancerIP");
  str(spec["trafficDistribution"], "spec.trafficDistribution");

  // --- read (and SetDefaults_Service) ---
  svc.selector = string_map(spec["selector"], "spec.selector");
  struct RawPort {
    std::string protocol;
    bool protocol_set = false;
  };
  std::vector<RawPort> raw;
  const auto ports = list(spec["ports"], "spec.ports");
  for (size_t i = 0; i < ports.size(); i++) {
    Fields f(ports[i], idx("spec.ports", i),
             {"name", "protocol", "appProtocol", "port", "targetPort",
              "nodePort"});
    ServicePort p;
    p.name = str(f["name"], f.path("name"));
    RawPort r;
    r.protocol = str(f["protocol"], f.path("protocol"));
    p.app_protocol = str(f["appProtocol"], f.path("appProtocol"));
    if (f.has("port")) p.port = int32_t(integer(f["port"], f.path("port")));
    // IntOrString, as for NetworkPolicy ports: a YAML number is a number,
    // anything quoted or non-numeric a name.
    const YAML::Node tp = f["targetPort"];
    const Type t = type_of(tp);
    if (t == Type::Int)
      p.target_port = int32_t(integer(tp, f.path("targetPort")));
    else if (t == Type::String)
      p.target_port = tp.Scalar();
    else if (t != Type::Null)
      fail(f.path("targetPort"),
           "expected a port number or name, got " + describe(tp));
    if (f.has("nodePort"))
      p.node_port = int32_t(integer(f["nodePort"], f.path("nodePort")));
    if (p.target_port == decltype(p.target_port)(int32_t(0)) ||
        p.target_port == decltype(p.target_port)(std::string()))
      p.target_port = p.port;
    svc.ports.push_back(std::move(p));
    raw.push_back(std::move(r));
  }
  svc.cluster_ip = str(spec["clusterIP"], "spec.clusterIP");
  const auto cips = list(spec["clusterIPs"], "spec.clusterIPs");
  for (size_t i = 0; i < cips.size(); i++)
    svc.cluster_ips.push_back(str(cips[i], idx("spec.clusterIPs", i)));
  // NormalizeClusterIPs (create): the singular field alone sets the plural.
  if (!svc.cluster_ip.empty() && svc.cluster_ips.empty())
    svc.cluster_ips = {svc.cluster_ip};
  std::vector<std::string> families;
  const auto fams = list(spec["ipFamilies"], "spec.ipFamilies");
  for (size_t i = 0; i < fams.size(); i++)
    families.push_back(str(fams[i], idx("spec.ipFamilies", i)));
  const bool policy_set = spec.has("ipFamilyPolicy");
  const std::string policy = str(spec["ipFamilyPolicy"], "spec.ipFamilyPolicy");
  const auto eips = list(spec["externalIPs"], "spec.externalIPs");
  for (size_t i = 0; i < eips.size(); i++)
    svc.external_ips.push_back(str(eips[i], idx("spec.externalIPs", i)));
  const std::string affinity =
      str(spec["sessionAffinity"], "spec.sessionAffinity");
  std::optional<int64_t> timeout;
  {
    Fields sac(spec["sessionAffinityConfig"], "spec.sessionAffinityConfig",
               {"clientIP"});
    Fields cip(sac["clientIP"], sac.path("clientIP"), {"timeoutSeconds"});
    if (cip.has("timeoutSeconds"))
      timeout = integer(cip["timeoutSeconds"], cip.path("timeoutSeconds"));
  }
  const std::string etp =
      str(spec["externalTrafficPolicy"], "spec.externalTrafficPolicy");
  const bool itp_set = spec.has("internalTrafficPolicy");
  const std::string itp =
      str(spec["internalTrafficPolicy"], "spec.internalTrafficPolicy");
  if (spec.has("allocateLoadBalancerNodePorts"))
    svc.allocate_lb_node_ports =
        boolean(spec["allocateLoadBalancerNodePorts"],
                "spec.allocateLoadBalancerNodePorts");
  if (spec.has("publishNotReadyAddresses"))
    svc.publish_not_ready_addresses = boolean(
        spec["publishNotReadyAddresses"], "spec.publishNotReadyAddresses");

  // --- ValidateService ---
  if (svc.ports.empty() && !svc.headless())
    fail("spec.ports", "Required value");
  if (svc.headless() && svc.type != ServiceType::ClusterIP)
    fail("spec.clusterIPs[0]",
         std::string("Invalid value \"None\": may not be set to 'None' for ") +
             to_string(svc.type) + " services");
  std::set<std::string> names;
  for (size_t i = 0; i < svc.ports.size(); i++) {
    ServicePort& p = svc.ports[i];
    const std::string path = idx("spec.ports", i);
    if (svc.ports.size() > 1 && p.name.empty())
      fail(path + ".name", "Required value");
    if (!p.name.empty()) {
      check(dns1123_label(p.name), path + ".name", p.name);
      if (!names.insert(p.name).second)
        fail(path + ".name", "Duplicate value " + quote(p.name));
    }
    check(port_number(p.port), path + ".port", p.port);
    if (raw[i].protocol.empty()) {
      p.protocol = Protocol::TCP;
    } else if (auto pr = parse_protocol(raw[i].protocol)) {
      p.protocol = *pr;
    } else {
      unsupported(path + ".protocol", raw[i].protocol, {"TCP", "UDP", "SCTP"});
    }
    if (const auto* n = std::get_if<int32_t>(&p.target_port))
      check(port_number(*n), path + ".targetPort", *n);
    else
      check(port_name(std::get<std::string>(p.target_port)),
            path + ".targetPort", std::get<std::string>(p.target_port));
    if (!p.app_protocol.empty())
      check(qualified_name(p.app_protocol), path + ".appProtocol",
            p.app_protocol);
  }
  validate_labels(svc.selector, "spec.selector");

  if (affinity.empty() || affinity == "None") {
    svc.session_affinity = SessionAffinity::None;  // config dropped
  } else if (affinity == "ClientIP") {
    svc.session_affinity = SessionAffinity::ClientIP;
    const int64_t t = timeout.value_or(kDefaultAffinityTimeout);
    if (t <= 0 || t > kMaxAffinityTimeout)
      fail("spec.sessionAffinityConfig.clientIP.timeoutSeconds",
           "Invalid value " + std::to_string(t) +
               ": must be greater than 0 and less than " +
               std::to_string(kMaxAffinityTimeout));
    svc.affinity_timeout = int32_t(t);
  } else {
    unsupported("spec.sessionAffinity", affinity, {"ClientIP", "None"});
  }

  // ValidateServiceClusterIPsRelatedFields
  if (!svc.cluster_ip.empty() && svc.cluster_ips[0] != svc.cluster_ip)
    fail("spec.clusterIPs", "Invalid value " + list_value(svc.cluster_ips) +
                                ": first value must match `clusterIP`");
  if (svc.cluster_ip.empty() && !svc.cluster_ips.empty())
    fail("spec.clusterIPs", "Invalid value " + list_value(svc.cluster_ips) +
                                ": must be empty when `clusterIP` is not "
                                "specified");
  for (size_t i = 0; i < families.size(); i++) {
    const std::string p = idx("spec.ipFamilies", i);
    IpFamily f;
    if (families[i] == "IPv4")
      f = IpFamily::IPv4;
    else if (families[i] == "IPv6")
      f = IpFamily::IPv6;
    else
      unsupported(p, families[i], {"IPv4", "IPv6"});
    for (IpFamily seen : svc.ip_families)
      if (seen == f) fail(p, "Duplicate value " + quote(families[i]));
    svc.ip_families.push_back(f);
  }
  if (policy_set) {
    if (policy == "SingleStack")
      svc.ip_family_policy = IpFamilyPolicy::SingleStack;
    else if (policy == "PreferDualStack")
      svc.ip_family_policy = IpFamilyPolicy::PreferDualStack;
    else if (policy == "RequireDualStack")
      svc.ip_family_policy = IpFamilyPolicy::RequireDualStack;
    else
      unsupported("spec.ipFamilyPolicy", policy,
                  {"PreferDualStack", "RequireDualStack", "SingleStack"});
  }
  for (size_t i = 0; i < svc.cluster_ips.size(); i++) {
    if (i == 0 && svc.cluster_ips[0] == kClusterIPNone) {
      if (svc.cluster_ips.size() > 1)
        fail("spec.clusterIPs", "Invalid value " + list_value(svc.cluster_ips) +
                                    ": 'None' must be the first and only "
                                    "value");
      continue;
    }
    check(ip_address(svc.cluster_ips[i]), idx("spec.clusterIPs", i),
          svc.cluster_ips[i]);
  }
  if (svc.cluster_ips.size() > 2)
    fail("spec.clusterIPs", "Invalid value " + list_value(svc.cluster_ips) +
                                ": may only hold up to 2 values");
  if (svc.cluster_ips.size() == 2 &&
      ip_family_of(svc.cluster_ips[0]) == ip_family_of(svc.cluster_ips[1]))
    fail("spec.clusterIPs", "Invalid value " + list_value(svc.cluster_ips) +
                                ": may specify no more than one IP for each "
                                "IP family");
  if (!svc.headless())
    for (size_t i = 0;
         i < svc.cluster_ips.size() && i < svc.ip_families.size(); i++) {
      const bool v6 = ip_family_of(svc.cluster_ips[i]) == 6;
      const bool want_v6 = svc.ip_families[i] == IpFamily::IPv6;
      if (v6 != want_v6)
        fail(idx("spec.clusterIPs", i),
             "Invalid value " + quote(svc.cluster_ips[i]) + ": expected an " +
                 (want_v6 ? "IPv6" : "IPv4") +
                 " value as indicated by `ipFamilies[" + std::to_string(i) +
                 "]`");
    }

  for (size_t i = 0; i < svc.external_ips.size(); i++) {
    const std::string p = idx("spec.externalIPs", i);
    check(ip_address(svc.external_ips[i]), p, svc.external_ips[i]);
    check(non_special_ip(svc.external_ips[i]), p, svc.external_ips[i]);
  }

  if (svc.type == ServiceType::ClusterIP)
    for (size_t i = 0; i < svc.ports.size(); i++)
      if (svc.ports[i].node_port != 0)
        fail(idx("spec.ports", i) + ".nodePort",
             "Forbidden: may not be used when `type` is 'ClusterIP'");
  for (size_t i = 0; i < svc.ports.size(); i++)
    for (size_t j = 0; j < i; j++) {
      const auto &a = svc.ports[i], &b = svc.ports[j];
      if (a.node_port && a.node_port == b.node_port && a.protocol == b.protocol)
        fail(idx("spec.ports", i) + ".nodePort",
             "Duplicate value " + std::to_string(a.node_port));
    }
  for (size_t i = 0; i < svc.ports.size(); i++)
    for (size_t j = 0; j < i; j++) {
      const auto &a = svc.ports[i], &b = svc.ports[j];
      if (a.port == b.port && a.protocol == b.protocol)
        fail(idx("spec.ports", i),
             "Duplicate value " + quote(std::to_string(a.port) + "/" +
                                        to_string(a.protocol)));
    }

  if (svc.allocate_lb_node_ports && svc.type != ServiceType::LoadBalancer)
    fail("spec.allocateLoadBalancerNodePorts",
         "Forbidden: may only be used when `type` is 'LoadBalancer'");
  if (svc.type == ServiceType::LoadBalancer && !svc.allocate_lb_node_ports)
    svc.allocate_lb_node_ports = true;

  if (!svc.externally_accessible()) {
    if (!etp.empty())
      fail("spec.externalTrafficPolicy",
           "Invalid value " + quote(etp) +
               ": may only be set for externally-accessible services");
  } else if (etp.empty() || etp == "Cluster") {
    svc.external_traffic_policy = TrafficPolicy::Cluster;
  } else if (etp == "Local") {
    svc.external_traffic_policy = TrafficPolicy::Local;
  } else {
    unsupported("spec.externalTrafficPolicy", etp, {"Cluster", "Local"});
  }
  if (!itp_set || itp == "Cluster")
    svc.internal_traffic_policy = TrafficPolicy::Cluster;
  else if (itp == "Local")
    svc.internal_traffic_policy = TrafficPolicy::Local;
  else
    unsupported("spec.internalTrafficPolicy", itp, {"Cluster", "Local"});

  decode_service_status(top["status"], svc);
  return svc;
}

// --- EndpointSlice ----------------------------------------------------------
// ValidateEndpointSlice; the API server defaults only port names ("") and
// protocols (TCP). The conditions are kept as given.

constexpr size_t kMaxEndpoints = 1000, kMaxAddresses = 100, kMaxPorts = 20000;

void too_many(const std::string& path, size_t n, size_t max) {
  fail(path, "Too many: " + std::to_string(n) + ": must have at most " +
                 std::to_string(max) + " items");
}

Endpoint decode_endpoint(const YAML::Node& n, const std::string& path,
                         AddressType family) {
  Fields f(n, path,
           {"addresses", "conditions", "hostname", "targetRef", "nodeName",
            "zone", "hints", "deprecatedTopology"});
  Endpoint e;
  const auto addrs = list(f["addresses"], f.path("addresses"));
  for (size_t i = 0; i < addrs.size(); i++)
    e.addresses.push_back(str(addrs[i], idx(f.path("addresses"), i)));
  Fields c(f["conditions"], f.path("conditions"),
           {"ready", "serving", "terminating"});
  if (c.has("ready")) e.conditions.ready = boolean(c["ready"], c.path("ready"));
  if (c.has("serving"))
    e.conditions.serving = boolean(c["serving"], c.path("serving"));
  if (c.has("terminating"))
    e.conditions.terminating =
        boolean(c["terminating"], c.path("terminating"));
  e.hostname = str(f["hostname"], f.path("hostname"));
  e.node_name = str(f["nodeName"], f.path("nodeName"));
  e.zone = str(f["zone"], f.path("zone"));
  if (f.has("targetRef")) {
    Fields r(f["targetRef"], f.path("targetRef"),
             {"kind", "namespace", "name", "uid", "apiVersion",
              "resourceVersion", "fieldPath"});
    ObjectReference ref;
    ref.kind = str(r["kind"], r.path("kind"));
    ref.namespace_ = str(r["namespace"], r.path("namespace"));
    ref.name = str(r["name"], r.path("name"));
    for (const char* k : {"uid", "apiVersion", "resourceVersion", "fieldPath"})
      str(r[k], r.path(k));
    e.target_ref = std::move(ref);
  }
  (void)Fields(f["hints"], f.path("hints"));  // accepted (a mapping), ignored
  string_map(f["deprecatedTopology"], f.path("deprecatedTopology"));

  if (e.addresses.empty())
    fail(f.path("addresses"),
         "Required value: must contain at least 1 address");
  if (e.addresses.size() > kMaxAddresses)
    too_many(f.path("addresses"), e.addresses.size(), kMaxAddresses);
  for (size_t i = 0; i < e.addresses.size(); i++) {
    const std::string p = idx(f.path("addresses"), i);
    check(family == AddressType::IPv4 ? ipv4_address(e.addresses[i])
                                      : ipv6_address(e.addresses[i]),
          p, e.addresses[i]);
    check(non_special_ip(e.addresses[i]), p, e.addresses[i]);
  }
  if (f.has("hostname"))
    check(dns1123_label(e.hostname), f.path("hostname"), e.hostname);
  if (f.has("nodeName"))
    check(dns1123_subdomain(e.node_name), f.path("nodeName"), e.node_name);
  return e;
}

const std::set<std::string> kEndpointSliceFields = {
    "apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"};

template <>
EndpointSlice decode_kind<EndpointSlice>(const Fields& top) {
  EndpointSlice es;
  es.meta = decode_meta<EndpointSlice>(top["metadata"]);
  const std::string at = str(top["addressType"], "addressType");
  if (at.empty()) fail("addressType", "Required value");
  if (at == "IPv4")
    es.address_type = AddressType::IPv4;
  else if (at == "IPv6")
    es.address_type = AddressType::IPv6;
  else if (at == "FQDN")
    fail("addressType",
         "Unsupported value \"FQDN\": not supported by Sluice (FQDN "
         "endpoints cannot be load-balanced to): supported values: "
         "\"IPv4\", \"IPv6\"");
  else
    unsupported("addressType", at, {"IPv4", "IPv6"});

  const auto eps = list(top["endpoints"], "endpoints");
  if (eps.size() > kMaxEndpoints)
    too_many("endpoints", eps.size(), kMaxEndpoints);
  for (size_t i = 0; i < eps.size(); i++)
    es.endpoints.push_back(
        decode_endpoint(eps[i], idx("endpoints", i), es.address_type));

  const auto ports = list(top["ports"], "ports");
  if (ports.size() > kMaxPorts) too_many("ports", ports.size(), kMaxPorts);
  std::set<std::string> names;
  for (size_t i = 0; i < ports.size(); i++) {
    Fields f(ports[i], idx("ports", i),
             {"name", "protocol", "port", "appProtocol"});
    EndpointPort p;
    p.name = str(f["name"], f.path("name"));
    if (!p.name.empty()) check(dns1123_label(p.name), f.path("name"), p.name);
    if (!names.insert(p.name).second)
      fail(f.path("name"), "Duplicate value " + quote(p.name));
    p.protocol = protocol(f["protocol"], f.path("protocol"), false);
    if (f.has("port")) {
      const int64_t n = integer(f["port"], f.path("port"));
      // Upstream leaves the number unchecked; a slice port is a backend's
      // destination port, so Sluice insists on a valid one.
      check(port_number(n), f.path("port"), n);
      p.port = int32_t(n);
    }
    p.app_protocol = str(f["appProtocol"], f.path("appProtocol"));
    if (!p.app_protocol.empty())
      check(qualified_name(p.app_protocol), f.path("appProtocol"),
            p.app_protocol);
    es.ports.push_back(std::move(p));
  }
  return es;
}

// --- dispatch ---------------------------------------------------------------

template <typename T>
const std::set<std::string>& top_fields() {
  if constexpr (std::is_same_v<T, EndpointSlice>)
    return kEndpointSliceFields;
  else
    return kTopFields;
}

template <size_t I = 0>
void supported_kinds(std::vector<std::string>& out) {
  if constexpr (I < std::variant_size_v<Object::Kinds>) {
    out.push_back(KindInfo<std::variant_alternative_t<I, Object::Kinds>>::kind);
    supported_kinds<I + 1>(out);
  }
}

template <size_t I = 0>
bool is_cluster_scoped(const std::string& kind) {
  if constexpr (I == std::variant_size_v<Object::Kinds>) {
    return false;
  } else {
    using Info = KindInfo<std::variant_alternative_t<I, Object::Kinds>>;
    return (kind == Info::kind && !Info::namespaced) ||
           is_cluster_scoped<I + 1>(kind);
  }
}

template <size_t I = 0>
Object dispatch(const std::string& api_version, const std::string& kind,
                const YAML::Node& doc) {
  if constexpr (I == std::variant_size_v<Object::Kinds>) {
    std::vector<std::string> kinds;
    supported_kinds(kinds);
    unsupported("kind", kind, kinds);
  } else {
    using T = std::variant_alternative_t<I, Object::Kinds>;
    if (kind != KindInfo<T>::kind)
      return dispatch<I + 1>(api_version, kind, doc);
    if (api_version != KindInfo<T>::api_version)
      unsupported("apiVersion", api_version, {KindInfo<T>::api_version});
    // Namespace spec (finalizers) and the status of kinds other than
    // Service are accepted and ignored.
    return Object{decode_kind<T>(Fields(doc, "", top_fields<T>()))};
  }
}

Object decode(const YAML::Node& doc) {
  const Type t = type_of(doc);
  if (t != Type::Map) fail("", "expected a mapping, got " + describe(doc));
  Fields f(doc, "");
  const std::string kind = str(f["kind"], "kind");
  const std::string api_version = str(f["apiVersion"], "apiVersion");
  if (kind.empty()) fail("kind", "Required value");
  if (api_version.empty()) fail("apiVersion", "Required value");
  return dispatch(api_version, kind, doc);
}

std::string format(const FieldError& e) {
  return e.path.empty() ? e.msg : e.path + ": " + e.msg;
}

// "(Pod x/a)" for error messages, read leniently from a possibly broken
// document so the message can name what failed.
std::string label_of(const YAML::Node& doc) {
  auto scalar = [](const YAML::Node& n) {
    return n.IsDefined() && n.IsScalar() ? n.Scalar() : std::string();
  };
  if (!doc.IsMap()) return "";
  const std::string kind = scalar(doc["kind"]);
  if (kind.empty()) return "";
  const YAML::Node meta = doc["metadata"];
  std::string name, ns;
  if (meta.IsDefined() && meta.IsMap()) {
    name = scalar(meta["name"]);
    ns = scalar(meta["namespace"]);
  }
  if (name.empty()) return " (" + kind + ")";
  if (is_cluster_scoped(kind)) return " (" + kind + " " + name + ")";
  return " (" + kind + " " + (ns.empty() ? "default" : ns) + "/" + name + ")";
}

}  // namespace

// --- public -----------------------------------------------------------------

const char* Object::kind() const {
  return std::visit(
      [](const auto& o) { return KindInfo<std::decay_t<decltype(o)>>::kind; },
      v);
}
const char* Object::api_version() const {
  return std::visit(
      [](const auto& o) {
        return KindInfo<std::decay_t<decltype(o)>>::api_version;
      },
      v);
}
const ObjectMeta& Object::meta() const {
  return std::visit([](const auto& o) -> const ObjectMeta& { return o.meta; },
                    v);
}
std::string Object::key() const {
  const std::string resource = std::visit(
      [](const auto& o) {
        return KindInfo<std::decay_t<decltype(o)>>::resource;
      },
      v);
  const ObjectMeta& m = meta();
  return resource + "/" + (m.namespace_.empty() ? "" : m.namespace_ + "/") +
         m.name;
}
std::string Object::display() const {
  const ObjectMeta& m = meta();
  return std::string(kind()) + " " +
         (m.namespace_.empty() ? "" : m.namespace_ + "/") + m.name;
}

Result<Object> decode_object(const YAML::Node& doc) {
  try {
    return decode(doc);
  } catch (const FieldError& e) {
    return err(format(e));
  }
}

Status validate_update(const Object& next, const Object& prev) {
  const auto* a = next.get<EndpointSlice>();
  const auto* b = prev.get<EndpointSlice>();
  if (a && b && a->address_type != b->address_type)
    return err(std::string("addressType: Invalid value \"") +
               to_string(a->address_type) + "\": field is immutable");
  return {};
}

Result<std::vector<Object>> parse_manifests(
    const std::string& yaml_text, const std::string& origin,
    std::vector<std::string>* where_out) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(yaml_text);
  } catch (const YAML::Exception& e) {
    return err(origin + ": invalid YAML: " + e.what());
  }
  std::vector<Object> out;
  for (size_t d = 0; d < docs.size(); d++) {
    const std::string where = origin + ": document " + std::to_string(d + 1);
    const YAML::Node& doc = docs[d];
    if (type_of(doc) == Type::Null) continue;
    try {
      if (doc.IsMap() && doc["kind"].IsDefined() && doc["kind"].IsScalar() &&
          doc["kind"].Scalar() == "List") {
        Fields list_f(doc, "", {"apiVersion", "kind", "metadata", "items"});
        const std::string api = str(list_f["apiVersion"], "apiVersion");
        if (api != "v1") unsupported("apiVersion", api, {"v1"});
        const auto items = list(list_f["items"], "items");
        for (size_t i = 0; i < items.size(); i++) {
          auto o = decode_object(items[i]);
          if (!o)
            return err(where + ", " + idx("items", i) + label_of(items[i]) +
                       ": " + o.error());
          out.push_back(std::move(*o));
          if (where_out) where_out->push_back(where + ", " + idx("items", i));
        }
        continue;
      }
    } catch (const FieldError& e) {
      return err(where + " (List): " + format(e));
    }
    auto o = decode_object(doc);
    if (!o) return err(where + label_of(doc) + ": " + o.error());
    out.push_back(std::move(*o));
    if (where_out) where_out->push_back(where);
  }
  return out;
}

}  // namespace sluice::k8s

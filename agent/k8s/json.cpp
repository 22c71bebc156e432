// The state store's JSON: Kubernetes' own shape with every default written
// out (protocol, policyTypes, namespace; a Service's allocated cluster IPs
// and node ports), so it reads back unchanged and
// is readable by anyone who knows the API. Reading goes through the YAML
// decoder (JSON values converted to YAML nodes, strings tagged as strings)
// so a stored object passes exactly the checks an applied one did.
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <set>

#include "k8s/manifest.h"

namespace sluice::k8s {
namespace {

using nlohmann::json;

json meta_json(const ObjectMeta& m) {
  json j = {{"name", m.name}};
  if (!m.namespace_.empty()) j["namespace"] = m.namespace_;
  if (!m.labels.empty()) j["labels"] = m.labels;
  if (!m.annotations.empty()) j["annotations"] = m.annotations;
  return j;
}

json selector_json(const LabelSelector& s) {
  json j = json::object();
  if (!s.match_labels.empty()) j["matchLabels"] = s.match_labels;
  for (const auto& r : s.match_expressions) {
    json e = {{"key", r.key}, {"operator", to_string(r.op)}};
    if (!r.values.empty()) e["values"] = r.values;
    j["matchExpressions"].push_back(e);
  }
  return j;
}

// Containers are not kept, only their ports; one container is written per
// run of ports with distinct names, since names must be unique per
// container but may repeat across containers.
json spec_json(const Pod& pod) {
  json containers = json::array();
  std::set<std::string> names;
  for (const auto& p : pod.ports) {
    if (containers.empty() || (!p.name.empty() && names.count(p.name))) {
      containers.push_back({{"ports", json::array()}});
      names.clear();
    }
    json port = {{"containerPort", p.container_port},
                 {"protocol", to_string(p.protocol)}};
    if (!p.name.empty()) port["name"] = p.name;
    names.insert(p.name);
    containers.back()["ports"].push_back(port);
  }
  json spec = json::object();
  if (!containers.empty()) spec["containers"] = containers;
  return spec;
}

json peer_json(const NetworkPolicyPeer& p) {
  json j = json::object();
  if (p.pod_selector) j["podSelector"] = selector_json(*p.pod_selector);
  if (p.namespace_selector)
    j["namespaceSelector"] = selector_json(*p.namespace_selector);
  if (p.ip_block) {
    j["ipBlock"] = {{"cidr", p.ip_block->cidr}};
    if (!p.ip_block->except.empty())
      j["ipBlock"]["except"] = p.ip_block->except;
  }
  return j;
}

json rule_json(const NetworkPolicyRule& r, const char* peers) {
  json j = json::object();
  for (const auto& p : r.peers) j[peers].push_back(peer_json(p));
  for (const auto& p : r.ports) {
    json pj = {{"protocol", to_string(p.protocol)}};
    if (p.port) std::visit([&](const auto& v) { pj["port"] = v; }, *p.port);
    if (p.end_port) pj["endPort"] = *p.end_port;
    j["ports"].push_back(pj);
  }
  return j;
}

json spec_json(const NetworkPolicy& np) {
  json spec = {{"podSelector", selector_json(np.pod_selector)},
               {"policyTypes", json::array()}};
  if (np.ingress_type) spec["policyTypes"].push_back("Ingress");
  if (np.egress_type) spec["policyTypes"].push_back("Egress");
  for (const auto& r : np.ingress)
    spec["ingress"].push_back(rule_json(r, "from"));
  for (const auto& r : np.egress) spec["egress"].push_back(rule_json(r, "to"));
  return spec;
}

json spec_json(const Service& s) {
  json spec = {{"type", to_string(s.type)},
               {"sessionAffinity", to_string(s.session_affinity)},
               {"internalTrafficPolicy", to_string(s.internal_traffic_policy)}};
  if (!s.selector.empty()) spec["selector"] = s.selector;
  for (const auto& p : s.ports) {
    json pj = {{"protocol", to_string(p.protocol)}, {"port", p.port}};
    if (!p.name.empty()) pj["name"] = p.name;
    if (!p.app_protocol.empty()) pj["appProtocol"] = p.app_protocol;
    std::visit([&](const auto& v) { pj["targetPort"] = v; }, p.target_port);
    if (p.node_port) pj["nodePort"] = p.node_port;
    spec["ports"].push_back(pj);
  }
  if (!s.cluster_ip.empty()) spec["clusterIP"] = s.cluster_ip;
  if (!s.cluster_ips.empty()) spec["clusterIPs"] = s.cluster_ips;
  for (auto f : s.ip_families) spec["ipFamilies"].push_back(to_string(f));
  if (s.ip_family_policy)
    spec["ipFamilyPolicy"] = to_string(*s.ip_family_policy);
  if (!s.external_ips.empty()) spec["externalIPs"] = s.external_ips;
  if (s.session_affinity == SessionAffinity::ClientIP)
    spec["sessionAffinityConfig"] = {
        {"clientIP", {{"timeoutSeconds", s.affinity_timeout}}}};
  if (s.external_traffic_policy)
    spec["externalTrafficPolicy"] = to_string(*s.external_traffic_policy);
  if (s.allocate_lb_node_ports)
    spec["allocateLoadBalancerNodePorts"] = *s.allocate_lb_node_ports;
  if (s.publish_not_ready_addresses) spec["publishNotReadyAddresses"] = true;
  return spec;
}

json status_json(const Service& s) {
  if (s.lb_ingress.empty()) return nullptr;
  json ingress = json::array();
  for (const auto& in : s.lb_ingress) {
    json i = json::object();
    if (!in.ip.empty()) i["ip"] = in.ip;
    if (!in.hostname.empty()) i["hostname"] = in.hostname;
    if (!in.ip_mode.empty()) i["ipMode"] = in.ip_mode;
    ingress.push_back(i);
  }
  return {{"loadBalancer", {{"ingress", ingress}}}};
}

void body_json(const Namespace&, json&) {}
void body_json(const Pod& p, json& j) { j["spec"] = spec_json(p); }
void body_json(const NetworkPolicy& p, json& j) { j["spec"] = spec_json(p); }
void body_json(const Service& s, json& j) {
  j["spec"] = spec_json(s);
  if (json st = status_json(s); !st.is_null()) j["status"] = st;
}

// An EndpointSlice has no spec: its fields are at the top level.
void body_json(const EndpointSlice& es, json& j) {
  j["addressType"] = to_string(es.address_type);
  j["endpoints"] = json::array();
  for (const auto& e : es.endpoints) {
    json ej = {{"addresses", e.addresses}, {"conditions", json::object()}};
    if (e.conditions.ready) ej["conditions"]["ready"] = *e.conditions.ready;
    if (e.conditions.serving)
      ej["conditions"]["serving"] = *e.conditions.serving;
    if (e.conditions.terminating)
      ej["conditions"]["terminating"] = *e.conditions.terminating;
    if (!e.hostname.empty()) ej["hostname"] = e.hostname;
    if (!e.node_name.empty()) ej["nodeName"] = e.node_name;
    if (!e.zone.empty()) ej["zone"] = e.zone;
    if (e.target_ref) {
      json r = json::object();
      if (!e.target_ref->kind.empty()) r["kind"] = e.target_ref->kind;
      if (!e.target_ref->namespace_.empty())
        r["namespace"] = e.target_ref->namespace_;
      if (!e.target_ref->name.empty()) r["name"] = e.target_ref->name;
      ej["targetRef"] = r;
    }
    j["endpoints"].push_back(ej);
  }
  j["ports"] = json::array();
  for (const auto& p : es.ports) {
    json pj = {{"protocol", to_string(p.protocol)}};
    if (!p.name.empty()) pj["name"] = p.name;
    if (p.port) pj["port"] = *p.port;
    if (!p.app_protocol.empty()) pj["appProtocol"] = p.app_protocol;
    j["ports"].push_back(pj);
  }
}

YAML::Node to_yaml(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return YAML::Node(YAML::NodeType::Null);
    case json::value_t::object: {
      YAML::Node n(YAML::NodeType::Map);
      for (const auto& [k, v] : j.items()) n[k] = to_yaml(v);
      return n;
    }
    case json::value_t::array: {
      YAML::Node n(YAML::NodeType::Sequence);
      for (const auto& v : j) n.push_back(to_yaml(v));
      return n;
    }
    case json::value_t::string: {
      YAML::Node n(j.get<std::string>());
      n.SetTag("!");  // a string even if it reads like a number
      return n;
    }
    default:  // numbers and booleans resolve as YAML plain scalars
      return YAML::Node(j.dump());
  }
}

}  // namespace

std::string to_json(const Object& o) {
  json j = {{"apiVersion", o.api_version()},
            {"kind", o.kind()},
            {"metadata", meta_json(o.meta())}};
  std::visit([&](const auto& x) { body_json(x, j); }, o.v);
  return j.dump();
}

Result<Object> from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return err(std::string("invalid JSON: ") + e.what());
  }
  return decode_object(to_yaml(j));
}

}  // namespace sluice::k8s

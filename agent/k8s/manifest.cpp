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
#include "k8s/validation.h"
#include "k8s/yaml_fields.h"

namespace sluice::k8s {
namespace {

using namespace detail;

// --- metadata and selectors -------------------------------------------------

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

// --- dispatch ---------------------------------------------------------------

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
    // Namespace spec (finalizers) and any status are accepted and ignored.
    return Object{decode_kind<T>(Fields(doc, "", kTopFields))};
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

Result<std::vector<Object>> parse_manifests(const std::string& yaml_text,
                                            const std::string& origin) {
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
        }
        continue;
      }
    } catch (const FieldError& e) {
      return err(where + " (List): " + format(e));
    }
    auto o = decode_object(doc);
    if (!o) return err(where + label_of(doc) + ": " + o.error());
    out.push_back(std::move(*o));
  }
  return out;
}

}  // namespace sluice::k8s

#include <gtest/gtest.h>

#include "expect_has.h"

#include <string>

#include "k8s/manifest.h"

using namespace sluice::k8s;
using Op = LabelSelectorRequirement::Op;

namespace {

// gmock is not linked into unit_tests; a minimal substring matcher.
std::string Substr(const std::string& s) { return s; }

sluice::Result<std::vector<Object>> parse(const std::string& y) {
  return parse_manifests(y, "t.yaml");
}

std::string error_of(const std::string& y) {
  auto r = parse(y);
  EXPECT_FALSE(r) << "accepted:\n" << y;
  return r ? std::string() : r.error();
}

template <typename T>
T one(const std::string& y) {
  auto r = parse(y);
  EXPECT_TRUE(r) << r.error();
  if (!r || r->size() != 1 || !(*r)[0].get<T>()) {
    ADD_FAILURE() << "expected exactly one " << KindInfo<T>::kind;
    return T{};
  }
  return *(*r)[0].get<T>();
}

const std::string kNpHead =
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
    "metadata: {name: p, namespace: x}\n";

// A NetworkPolicy in namespace x with the given flow-style spec.
std::string np(const std::string& spec) {
  return kNpHead + "spec: " + spec + "\n";
}
std::string np_error(const std::string& spec) { return error_of(np(spec)); }
NetworkPolicy np_ok(const std::string& spec) {
  return one<NetworkPolicy>(np(spec));
}

std::string pod(const std::string& rest) {
  return "apiVersion: v1\nkind: Pod\n" + rest + "\n";
}
std::string pod_ports(const std::string& ports) {
  return pod("metadata: {name: a}\nspec: {containers: [{name: c, ports: " +
             ports + "}]}");
}

const std::string kPrefix = "t.yaml: document 1 (NetworkPolicy x/p): ";

}  // namespace

// --- documents, kinds, dispatch ---------------------------------------------

TEST(K8sManifest, ParsesMultipleKindsInOrder) {
  auto r = parse(R"(
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: a}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: x, labels: {app: web}, annotations: {note: hi}}
spec:
  containers:
  - name: c
    image: nginx
    ports: [{name: http, containerPort: 80}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec: {podSelector: {}}
)");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_STREQ((*r)[0].kind(), "Namespace");
  EXPECT_EQ((*r)[0].key(), "namespaces/x");
  EXPECT_EQ((*r)[0].display(), "Namespace x");
  EXPECT_EQ((*r)[1].key(), "pods/x/web-0");
  EXPECT_EQ((*r)[1].display(), "Pod x/web-0");
  EXPECT_STREQ((*r)[1].api_version(), "v1");
  EXPECT_EQ((*r)[2].key(), "networkpolicies/x/deny-all");
  EXPECT_STREQ((*r)[2].api_version(), "networking.k8s.io/v1");
  const Pod& p = *(*r)[1].get<Pod>();
  EXPECT_EQ(p.meta.labels, (Labels{{"app", "web"}}));
  EXPECT_EQ(p.meta.annotations.at("note"), "hi");
  ASSERT_EQ(p.ports.size(), 1u);
  EXPECT_EQ(p.ports[0].name, "http");
  EXPECT_EQ(p.ports[0].container_port, 80);
  EXPECT_EQ((*r)[0].get<Pod>(), nullptr);
}

TEST(K8sManifest, SkipsEmptyDocumentsButCountsThem) {
  auto r = parse("---\n# only a comment\n---\n---\n" +
                 pod("metadata: {name: a}") + "---\n");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE(parse("")->empty());
  EXPECT_TRUE(parse("# nothing\n")->empty());
  // Document numbers are positions in the file, empty ones included.
  EXPECT_HAS(error_of("a: 1\n---\n---\n" + pod("metadata: {name: A}")),
             Substr("document 1"));
  EXPECT_HAS(error_of(pod("metadata: {name: a}") + "---\n---\n" +
                      pod("metadata: {name: A}")),
             Substr("t.yaml: document 3 (Pod default/A): metadata.name"));
}

TEST(K8sManifest, AllOrNothingNamesDocumentAndField) {
  const std::string y = pod("metadata: {name: a, namespace: x}") + "---\n" +
                        pod("metadata: {name: b, namespace: x}") + R"(---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  ingress:
  - from:
    - podSelector: {}
    - podSelector:
        matchExpressions: [{key: app, operator: Foo}]
)";
  auto r = parse_manifests(y, "pods.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(),
            "pods.yaml: document 3 (NetworkPolicy x/deny-all): "
            "spec.ingress[0].from[1].podSelector.matchExpressions[0]."
            "operator: Unsupported value \"Foo\": supported values: \"In\", "
            "\"NotIn\", \"Exists\", \"DoesNotExist\"");
}

TEST(K8sManifest, ListKindIsExpanded) {
  auto r = parse(R"(
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: x}}
- {apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x}}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
)");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].key(), "namespaces/x");
  EXPECT_EQ((*r)[1].key(), "pods/x/a");
  EXPECT_EQ((*r)[2].key(), "pods/default/b");
  EXPECT_TRUE(parse("apiVersion: v1\nkind: List\nitems: []\n")->empty());
}

TEST(K8sManifest, ListErrorsNameTheItem) {
  EXPECT_EQ(error_of(R"(
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: a}}
- {apiVersion: v1, kind: Pod, metadata: {name: b, labels: {"-x": v}}}
)"),
            "t.yaml: document 1, items[1] (Pod default/b): metadata.labels: "
            "Invalid value \"-x\": name part must consist of alphanumeric "
            "characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName', or 'my.name', or "
            "'123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
  EXPECT_HAS(error_of("apiVersion: v1\nkind: List\nitems: {a: 1}\n"),
             Substr("document 1 (List): items: expected a list"));
  EXPECT_HAS(error_of("apiVersion: v2\nkind: List\nitems: []\n"),
             Substr("apiVersion: Unsupported value \"v2\""));
}

TEST(K8sManifest, UnsupportedKindsAndVersions) {
  EXPECT_EQ(error_of("apiVersion: apps/v1\nkind: Deployment\n"
                     "metadata: {name: web}\n"),
            "t.yaml: document 1 (Deployment default/web): kind: Unsupported "
            "value \"Deployment\": supported values: \"Namespace\", \"Pod\", "
            "\"NetworkPolicy\", \"Service\", \"EndpointSlice\"");
  EXPECT_EQ(error_of("apiVersion: networking.k8s.io/v1beta1\n"
                     "kind: NetworkPolicy\nmetadata: {name: p}\n"),
            "t.yaml: document 1 (NetworkPolicy default/p): apiVersion: "
            "Unsupported value \"networking.k8s.io/v1beta1\": supported "
            "values: \"networking.k8s.io/v1\"");
  EXPECT_HAS(error_of("apiVersion: networking.k8s.io/v1\nkind: Pod\n"
                      "metadata: {name: a}\n"),
             Substr("apiVersion: Unsupported value"));
  EXPECT_EQ(error_of("apiVersion: v1\nmetadata: {name: a}\n"),
            "t.yaml: document 1: kind: Required value");
  EXPECT_EQ(error_of("kind: Pod\nmetadata: {name: a}\n"),
            "t.yaml: document 1 (Pod default/a): apiVersion: Required value");
  EXPECT_EQ(error_of("- a\n- b\n"),
            "t.yaml: document 1: expected a mapping, got a list");
  EXPECT_HAS(error_of("apiVersion: v1\nkind: pod\nmetadata: {name: a}\n"),
             Substr("kind: Unsupported value \"pod\""));
}

TEST(K8sManifest, InvalidYaml) {
  EXPECT_HAS(error_of("a: [1, 2\n"), Substr("t.yaml: invalid YAML: "));
}

TEST(K8sManifest, UnknownAndDuplicateFieldsAreErrors) {
  // A misspelt `ingress` would otherwise make this a deny-all policy.
  EXPECT_EQ(np_error("{podSelector: {}, ingres: [{}]}"),
            kPrefix + "spec.ingres: unknown field");
  EXPECT_EQ(np_error("{ingress: [{from: [{podselector: {}}]}]}"),
            kPrefix + "spec.ingress[0].from[0].podselector: unknown field");
  EXPECT_EQ(error_of(pod("metadata: {name: a, label: {a: b}}")),
            "t.yaml: document 1 (Pod default/a): metadata.label: unknown "
            "field");
  EXPECT_EQ(error_of(pod("metadata: {name: a}\nspek: {}")),
            "t.yaml: document 1 (Pod default/a): spek: unknown field");
  EXPECT_HAS(error_of(pod("metadata:\n  name: a\n  name: b")),
             Substr("metadata.name: duplicate field"));
  EXPECT_HAS(error_of(pod_ports("[{containerPort: 80, containerport: 81}]")),
             Substr("spec.containers[0].ports[0].containerport: unknown "
                    "field"));
  // Pod spec and container fields Sluice does not model are left alone.
  EXPECT_TRUE(
      parse(pod("metadata: {name: a, uid: u1, resourceVersion: \"1\"}\n"
                "spec: {nodeName: n, containers: [{name: c, image: i, "
                "env: [{name: A, value: b}]}]}\nstatus: {podIP: 1.2.3.4}")));
}

// --- defaulting -------------------------------------------------------------

TEST(K8sDefaults, NamespaceOfNamespacedKinds) {
  EXPECT_EQ(one<Pod>(pod("metadata: {name: a}")).meta.namespace_, "default");
  EXPECT_EQ(one<Pod>(pod("metadata: {name: a, namespace: ~}")).meta.namespace_,
            "default");
  EXPECT_EQ(np_ok("{}").meta.namespace_, "x");
  EXPECT_EQ(one<NetworkPolicy>("apiVersion: networking.k8s.io/v1\n"
                               "kind: NetworkPolicy\nmetadata: {name: p}\n")
                .meta.namespace_,
            "default");
}

TEST(K8sDefaults, NamespaceNameLabelAlwaysSet) {
  auto ns = one<Namespace>(
      "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n"
      "  namespace: ignored\n  labels: {kubernetes.io/metadata.name: other, "
      "env: prod}\nspec: {finalizers: [kubernetes]}\n");
  EXPECT_EQ(ns.meta.labels,
            (Labels{{"env", "prod"}, {"kubernetes.io/metadata.name", "prod"}}));
  // Cluster-scoped: a namespace in the manifest is dropped, as the API
  // server does.
  EXPECT_EQ(ns.meta.namespace_, "");
  auto bare =
      one<Namespace>("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n");
  EXPECT_EQ(bare.meta.labels, (Labels{{"kubernetes.io/metadata.name", "x"}}));
}

TEST(K8sDefaults, PolicyTypes) {
  auto a = np_ok("{podSelector: {}}");
  EXPECT_TRUE(a.ingress_type);
  EXPECT_FALSE(a.egress_type);
  auto b = np_ok("{egress: [{to: [{podSelector: {}}]}]}");
  EXPECT_TRUE(b.ingress_type);
  EXPECT_TRUE(b.egress_type);
  // Upstream adds Egress only when len(spec.egress) != 0.
  auto c = np_ok("{egress: []}");
  EXPECT_TRUE(c.ingress_type);
  EXPECT_FALSE(c.egress_type);
  auto d = np_ok("{egress: ~}");
  EXPECT_FALSE(d.egress_type);
  auto e = np_ok("{policyTypes: [Egress], ingress: [{}]}");
  EXPECT_FALSE(e.ingress_type);
  EXPECT_TRUE(e.egress_type);
  EXPECT_EQ(e.ingress.size(), 1u);  // kept, though it has no effect
  auto f = np_ok("{policyTypes: [], egress: [{}]}");  // empty means absent
  EXPECT_TRUE(f.ingress_type);
  EXPECT_TRUE(f.egress_type);
  auto g = np_ok("{policyTypes: [Ingress, Ingress]}");
  EXPECT_TRUE(g.ingress_type);
  EXPECT_FALSE(g.egress_type);
}

TEST(K8sDefaults, ProtocolTcp) {
  auto p = one<Pod>(
      pod_ports("[{containerPort: 80}, {containerPort: 53, "
                "protocol: UDP}, {containerPort: 81, protocol: \"\"}]"));
  ASSERT_EQ(p.ports.size(), 3u);
  EXPECT_EQ(p.ports[0].protocol, Protocol::TCP);
  EXPECT_EQ(p.ports[1].protocol, Protocol::UDP);
  EXPECT_EQ(p.ports[2].protocol, Protocol::TCP);
  auto n = np_ok("{ingress: [{ports: [{port: 80}, {protocol: UDP}, {}]}]}");
  ASSERT_EQ(n.ingress[0].ports.size(), 3u);
  EXPECT_EQ(n.ingress[0].ports[0].protocol, Protocol::TCP);
  EXPECT_EQ(n.ingress[0].ports[1].protocol, Protocol::UDP);
  EXPECT_FALSE(n.ingress[0].ports[1].port.has_value());
  EXPECT_EQ(n.ingress[0].ports[2].protocol, Protocol::TCP);
  // NetworkPolicyPort.protocol is a pointer upstream: "" is not defaulted.
  EXPECT_EQ(np_error("{ingress: [{ports: [{protocol: \"\"}]}]}"),
            kPrefix +
                "spec.ingress[0].ports[0].protocol: Unsupported value "
                "\"\": supported values: \"TCP\", \"UDP\", \"SCTP\"");
}

// --- validation
// ---------------------------------------------------------------

TEST(K8sValidation, ObjectNames) {
  EXPECT_EQ(error_of(pod("metadata: {namespace: x}")),
            "t.yaml: document 1 (Pod): metadata.name: Required value");
  EXPECT_HAS(error_of(pod("metadata: {name: Web}")),
             Substr("metadata.name: Invalid value \"Web\": a lowercase RFC "
                    "1123 subdomain must consist of"));
  EXPECT_HAS(error_of(pod("metadata: {name: a..b}")),
             Substr("metadata.name: Invalid value \"a..b\""));
  EXPECT_HAS(error_of(pod("metadata: {name: a.-b}")), Substr("metadata.name"));
  EXPECT_HAS(error_of(pod("metadata: {name: " + std::string(254, 'a') + "}")),
             Substr("must be no more than 253 characters"));
  EXPECT_TRUE(parse(pod("metadata: {name: " + std::string(253, 'a') + "}")));
  EXPECT_TRUE(parse(pod("metadata: {name: web-0.example}")));
  // Namespaces are DNS labels: no dots, at most 63.
  EXPECT_HAS(
      error_of("apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n"),
      Substr("metadata.name: Invalid value \"a.b\": a lowercase RFC "
             "1123 label must consist of"));
  EXPECT_HAS(error_of("apiVersion: v1\nkind: Namespace\nmetadata: {name: " +
                      std::string(64, 'a') + "}\n"),
             Substr("must be no more than 63 characters"));
  EXPECT_HAS(error_of(pod("metadata: {name: a, namespace: a.b}")),
             Substr("metadata.namespace: Invalid value \"a.b\": a "
                    "lowercase RFC 1123 label"));
  EXPECT_HAS(error_of(np("{}").replace(kNpHead.find("p,"), 1, "P")),
             Substr("(NetworkPolicy x/P): metadata.name: Invalid value"));
  EXPECT_HAS(error_of(pod("metadata: [a]")),
             Substr("metadata: expected a mapping, got a list"));
}

TEST(K8sValidation, LabelKeys) {
  auto labels_err = [](const std::string& key) {
    return error_of(pod("metadata: {name: a, labels: {\"" + key + "\": v}}"));
  };
  for (const char* ok : {"app", "example.com/MyName", "a_b.c-d", "A1",
                         "kubernetes.io/metadata.name"})
    EXPECT_TRUE(parse(
        pod(std::string("metadata: {name: a, labels: {\"") + ok + "\": v}}")))
        << ok;
  EXPECT_HAS(labels_err("-app"), Substr("metadata.labels: Invalid value "
                                        "\"-app\": name part must consist"));
  EXPECT_HAS(labels_err("app_"), Substr("name part must consist"));
  EXPECT_HAS(labels_err("a b"), Substr("name part must consist"));
  EXPECT_HAS(labels_err(std::string(64, 'a')),
             Substr("name part must be no more than 63 characters"));
  EXPECT_HAS(labels_err("/app"), Substr("prefix part must be non-empty"));
  EXPECT_HAS(labels_err("example.com/"), Substr("name part must be non-empty"));
  EXPECT_HAS(labels_err("Example.com/app"),
             Substr("prefix part a lowercase RFC 1123 subdomain"));
  EXPECT_HAS(labels_err(std::string(254, 'a') + "/app"),
             Substr("prefix part must be no more than 253 characters"));
  EXPECT_HAS(labels_err("a/b/c"), Substr("a qualified name must consist of"));
  EXPECT_HAS(
      error_of(pod("metadata: {name: a, annotations: {\"bad key\": v}}")),
      Substr("metadata.annotations: Invalid value \"bad key\""));
  // Annotation keys are checked lower-cased; values are free text.
  EXPECT_TRUE(
      parse(pod("metadata: {name: a, annotations: {Example.com/X: "
                "\"any text: {}\"}}")));
}

TEST(K8sValidation, LabelValues) {
  auto v = [](const std::string& value) {
    return parse(pod("metadata: {name: a, labels: {k: \"" + value + "\"}}"));
  };
  EXPECT_TRUE(v(""));
  EXPECT_TRUE(v("My_value.1-2"));
  EXPECT_TRUE(v(std::string(63, 'a')));
  EXPECT_HAS(v(std::string(64, 'a')).error(),
             Substr("metadata.labels: Invalid value \"" + std::string(64, 'a') +
                    "\": must be no more than 63 characters"));
  EXPECT_HAS(v("-a").error(),
             Substr("Invalid value \"-a\": a valid label must be an empty "
                    "string or consist of"));
  EXPECT_HAS(v("a/b").error(), Substr("a valid label must be"));
  // null reads as "" (JSON null into a Go string).
  EXPECT_EQ(
      one<Pod>(pod("metadata: {name: a, labels: {k: ~}}")).meta.labels.at("k"),
      "");
}

TEST(K8sValidation, NonStringScalarsAreNotStrings) {
  // kubectl converts YAML to JSON first: unquoted 1, 1.5, true, yes are not
  // strings and the API server rejects them for string fields.
  for (const char* v : {"1", "1.5", "true", "yes", "off", "-2", "1e3"})
    EXPECT_HAS(
        error_of(pod(std::string("metadata: {name: a, labels: {version: ") + v +
                     "}}")),
        Substr("metadata.labels[version]: expected a string, got"))
        << v;
  EXPECT_EQ(
      one<Pod>(pod("metadata: {name: a, labels: {version: \"1\", b: 'true', "
                   "c: 1.2.3, d: v1}}"))
          .meta.labels,
      (Labels{{"version", "1"}, {"b", "true"}, {"c", "1.2.3"}, {"d", "v1"}}));
  EXPECT_HAS(error_of(pod("metadata: {name: 123}")),
             Substr("metadata.name: expected a string, got number 123 "
                    "(quote it)"));
  EXPECT_HAS(error_of(pod_ports("[{containerPort: \"80\"}]")),
             Substr("spec.containers[0].ports[0].containerPort: expected "
                    "an integer, got string \"80\""));
  EXPECT_HAS(error_of(pod_ports("[{containerPort: 99999999999}]")),
             Substr("out of range"));
}

TEST(K8sValidation, SelectorRequirements) {
  auto sel = [](const std::string& expr) {
    return np_error("{podSelector: {matchExpressions: [" + expr + "]}}");
  };
  EXPECT_EQ(sel("{key: a, operator: Foo}"),
            kPrefix +
                "spec.podSelector.matchExpressions[0].operator: "
                "Unsupported value \"Foo\": supported values: \"In\", "
                "\"NotIn\", \"Exists\", \"DoesNotExist\"");
  EXPECT_HAS(sel("{key: a, operator: in, values: [x]}"),
             Substr("Unsupported value \"in\""));
  EXPECT_EQ(sel("{key: a, operator: In}"),
            kPrefix +
                "spec.podSelector.matchExpressions[0].values: Required "
                "value: must be specified when `operator` is 'In' or "
                "'NotIn'");
  EXPECT_HAS(sel("{key: a, operator: NotIn, values: []}"),
             Substr("matchExpressions[0].values: Required value"));
  EXPECT_EQ(sel("{key: a, operator: Exists, values: [x]}"),
            kPrefix +
                "spec.podSelector.matchExpressions[0].values: "
                "Forbidden: may not be specified when `operator` is "
                "'Exists' or 'DoesNotExist'");
  EXPECT_HAS(sel("{key: a, operator: DoesNotExist, values: [x]}"),
             Substr("values: Forbidden"));
  EXPECT_HAS(sel("{key: a, operator: In, values: [ok, \"-bad\"]}"),
             Substr("spec.podSelector.matchExpressions[0].values[1]: "
                    "Invalid value \"-bad\""));
  EXPECT_HAS(sel("{key: \"bad key\", operator: Exists}"),
             Substr("matchExpressions[0].key: Invalid value \"bad key\""));
  EXPECT_HAS(sel("{operator: Exists}"),
             Substr("matchExpressions[0].key: Invalid value \"\": name part "
                    "must be non-empty"));
  EXPECT_HAS(np_error("{podSelector: {matchLabels: {a: \"b c\"}}}"),
             Substr("spec.podSelector.matchLabels: Invalid value \"b c\""));
  auto ok = np_ok(
      "{podSelector: {matchLabels: {app: web}, matchExpressions: [{key: tier, "
      "operator: NotIn, values: [db, cache]}, {key: x, operator: Exists, "
      "values: []}]}}");
  ASSERT_EQ(ok.pod_selector.match_expressions.size(), 2u);
  EXPECT_EQ(ok.pod_selector.match_expressions[0].op, Op::NotIn);
  EXPECT_EQ(ok.pod_selector.match_expressions[0].values,
            (std::vector<std::string>{"db", "cache"}));
  EXPECT_EQ(ok.pod_selector.match_expressions[1].op, Op::Exists);
  EXPECT_EQ(ok.pod_selector.match_labels, (Labels{{"app", "web"}}));
}

TEST(K8sValidation, ContainerPorts) {
  const std::string p =
      "t.yaml: document 1 (Pod default/a): spec.containers[0].ports[0].";
  EXPECT_EQ(error_of(pod_ports("[{name: http}]")),
            p + "containerPort: Required value");
  EXPECT_EQ(error_of(pod_ports("[{containerPort: 0}]")),
            p + "containerPort: Required value");
  EXPECT_EQ(error_of(pod_ports("[{containerPort: 65536}]")),
            p + "containerPort: Invalid value 65536: must be between 1 and "
                "65535, inclusive");
  EXPECT_HAS(error_of(pod_ports("[{containerPort: -1}]")),
             Substr("containerPort: Invalid value -1"));
  EXPECT_EQ(error_of(pod_ports("[{containerPort: 80, protocol: ICMP}]")),
            p + "protocol: Unsupported value \"ICMP\": supported values: "
                "\"TCP\", \"UDP\", \"SCTP\"");
  EXPECT_HAS(error_of(pod_ports("[{containerPort: 80, protocol: tcp}]")),
             Substr("protocol: Unsupported value \"tcp\""));
  EXPECT_HAS(error_of(pod_ports("[{containerPort: 80, hostPort: 70000}]")),
             Substr("hostPort: Invalid value 70000"));
  EXPECT_TRUE(
      parse(pod_ports("[{containerPort: 80, hostPort: 0, hostIP: 0.0.0.0}]")));
  EXPECT_TRUE(parse(pod_ports("[{containerPort: 1}, {containerPort: 65535}]")));

  auto name_err = [&](const std::string& name) {
    return error_of(pod_ports("[{name: \"" + name + "\", containerPort: 80}]"));
  };
  EXPECT_EQ(name_err("http-metrics-abcd"),
            p + "name: Invalid value \"http-metrics-abcd\": must be no more "
                "than 15 characters");
  EXPECT_HAS(name_err("HTTP"),
             Substr("must contain only alpha-numeric characters (a-z, "
                    "0-9), and hyphens (-)"));
  EXPECT_HAS(name_err("8080"),
             Substr("must contain at least one letter (a-z)"));
  EXPECT_HAS(name_err("a--b"), Substr("must not contain consecutive hyphens"));
  EXPECT_HAS(name_err("-ab"), Substr("must not begin or end with a hyphen"));
  EXPECT_HAS(name_err("ab-"), Substr("must not begin or end with a hyphen"));
  EXPECT_HAS(name_err("a_b"), Substr("name: Invalid value \"a_b\""));
  EXPECT_TRUE(
      parse(pod_ports("[{name: web-8080, containerPort: 80}, "
                      "{name: \"\", containerPort: 81}]")));

  EXPECT_EQ(error_of(pod_ports("[{name: http, containerPort: 80}, "
                               "{name: http, containerPort: 81}]")),
            "t.yaml: document 1 (Pod default/a): spec.containers[0].ports[1]."
            "name: Duplicate value \"http\"");
  // Names are unique per container only.
  auto two = one<Pod>(pod(R"(metadata: {name: a}
spec:
  containers:
  - {name: a, ports: [{name: metrics, containerPort: 9090}, {containerPort: 80}]}
  - {name: b, ports: [{name: metrics, containerPort: 9091, protocol: SCTP}]}
  - {name: c})"));
  ASSERT_EQ(two.ports.size(), 3u);
  EXPECT_EQ(two.ports[2].container_port, 9091);
  EXPECT_EQ(two.ports[2].protocol, Protocol::SCTP);

  EXPECT_HAS(
      error_of(pod("metadata: {name: a}\nspec: {containers: {name: c}}")),
      Substr("spec.containers: expected a list, got a mapping"));
  EXPECT_HAS(error_of(pod("metadata: {name: a}\nspec: {containers: [c]}")),
             Substr("spec.containers[0]: expected a mapping"));
  EXPECT_HAS(error_of(pod_ports("{containerPort: 80}")),
             Substr("spec.containers[0].ports: expected a list"));
  EXPECT_TRUE(one<Pod>(pod("metadata: {name: a}\nspec: {}")).ports.empty());
  EXPECT_TRUE(one<Pod>(pod("metadata: {name: a}")).ports.empty());
}

TEST(K8sValidation, PolicyPorts) {
  auto port_err = [](const std::string& port) {
    return np_error("{ingress: [{ports: [" + port + "]}]}");
  };
  const std::string p = kPrefix + "spec.ingress[0].ports[0].";
  EXPECT_EQ(
      port_err("{port: 0}"),
      p + "port: Invalid value 0: must be between 1 and 65535, inclusive");
  EXPECT_EQ(port_err("{port: 65536}"),
            p + "port: Invalid value 65536: must be between 1 and 65535, "
                "inclusive");
  EXPECT_EQ(port_err("{port: \"80\"}"),
            p + "port: Invalid value \"80\": must contain at least one "
                "letter (a-z)");
  EXPECT_HAS(port_err("{port: Http}"),
             Substr("port: Invalid value \"Http\": must contain only"));
  EXPECT_HAS(port_err("{port: true}"),
             Substr("port: expected a port number or name, got boolean"));
  EXPECT_EQ(port_err("{port: http, endPort: 90}"),
            p + "endPort: Invalid value 90: may not be specified when `port` "
                "is non-numeric");
  EXPECT_EQ(port_err("{endPort: 90}"),
            p + "endPort: Invalid value 90: may not be specified when `port` "
                "is not specified");
  EXPECT_EQ(port_err("{port: 100, endPort: 90}"),
            p + "endPort: Invalid value 90: must be greater than or equal to "
                "`port`");
  EXPECT_EQ(port_err("{port: 100, endPort: 65536}"),
            p + "endPort: Invalid value 65536: must be between 1 and 65535, "
                "inclusive");
  EXPECT_EQ(port_err("{protocol: ICMP, port: 1}"),
            p + "protocol: Unsupported value \"ICMP\": supported values: "
                "\"TCP\", \"UDP\", \"SCTP\"");
  EXPECT_HAS(np_error("{egress: [{ports: [{port: 0}]}]}"),
             Substr("spec.egress[0].ports[0].port: Invalid value 0"));
  auto ok = np_ok("{ingress: [{ports: [{port: 100, endPort: 100}]}]}");
  EXPECT_EQ(ok.ingress[0].ports[0].end_port, 100);
}

TEST(K8sValidation, IpBlock) {
  auto ipb = [](const std::string& block) {
    return np_error("{egress: [{to: [{ipBlock: " + block + "}]}]}");
  };
  const std::string p = kPrefix + "spec.egress[0].to[0].ipBlock.";
  EXPECT_EQ(ipb("{}"), p + "cidr: Required value");
  EXPECT_EQ(ipb("{cidr: 10.0.0.0/33}"),
            p + "cidr: Invalid value \"10.0.0.0/33\": not a valid CIDR: "
                "prefix length must be 0-32");
  EXPECT_EQ(ipb("{cidr: nope}"),
            p + "cidr: Invalid value \"nope\": not a valid CIDR: bad address");
  // A bare address is not a CIDR for Kubernetes.
  EXPECT_EQ(ipb("{cidr: 10.0.0.1}"),
            p + "cidr: Invalid value \"10.0.0.1\": not a valid CIDR");
  // Host bits: rejected (StrictIPCIDRValidation reading).
  EXPECT_EQ(ipb("{cidr: 10.0.0.1/8}"),
            p + "cidr: Invalid value \"10.0.0.1/8\": not a valid CIDR: host "
                "bits set (did you mean 10.0.0.0/8?)");
  EXPECT_EQ(ipb("{cidr: 10.0.0.0/8, except: [11.0.0.0/16]}"),
            p + "except[0]: Invalid value \"11.0.0.0/16\": must be a strict "
                "subset of `cidr`");
  EXPECT_HAS(ipb("{cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.0.0.0/8]}"),
             Substr("except[1]: Invalid value \"10.0.0.0/8\": must be a "
                    "strict subset"));
  EXPECT_HAS(ipb("{cidr: 10.0.0.0/8, except: [10.0.0.0/7]}"),
             Substr("except[0]: Invalid value \"10.0.0.0/7\""));
  EXPECT_HAS(ipb("{cidr: 0.0.0.0/0, except: [\"::/1\"]}"),
             Substr("except[0]: Invalid value \"::/1\": must be a strict "
                    "subset"));
  EXPECT_HAS(ipb("{cidr: 10.0.0.0/8, except: [10.1.0.1/16]}"),
             Substr("except[0]: Invalid value \"10.1.0.1/16\": not a "
                    "valid CIDR: host bits set"));
  EXPECT_HAS(ipb("{cidr: 10.0.0.0/8, exclude: [10.1.0.0/16]}"),
             Substr("ipBlock.exclude: unknown field"));
  auto v6 = np_ok(
      "{egress: [{to: [{ipBlock: {cidr: \"2001:db8::/32\", except: "
      "[\"2001:db8:1::/48\"]}}]}]}");
  EXPECT_EQ(v6.egress[0].peers[0].ip_block->cidr, "2001:db8::/32");
}

TEST(K8sValidation, Peers) {
  const std::string p = kPrefix + "spec.ingress[0].from[0]";
  EXPECT_EQ(np_error("{ingress: [{from: [{}]}]}"),
            p + ": Required value: must specify a peer");
  // A null selector is an absent one (a nil pointer upstream).
  EXPECT_EQ(np_error("{ingress: [{from: [{podSelector: ~}]}]}"),
            p + ": Required value: must specify a peer");
  EXPECT_EQ(np_error("{ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, "
                     "podSelector: {}}]}]}"),
            p + ": Forbidden: may not specify both ipBlock and another peer");
  EXPECT_EQ(np_error("{ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, "
                     "namespaceSelector: {}}]}]}"),
            p + ": Forbidden: may not specify both ipBlock and another peer");
  EXPECT_HAS(np_error("{egress: [{to: [{podSelector: {}}, {}]}]}"),
             Substr("spec.egress[0].to[1]: Required value"));
  EXPECT_HAS(np_error("{ingress: {from: []}}"),
             Substr("spec.ingress: expected a list, got a mapping"));
}

TEST(K8sValidation, PolicyTypeValues) {
  EXPECT_EQ(np_error("{policyTypes: [ingress]}"),
            kPrefix +
                "spec.policyTypes[0]: Unsupported value \"ingress\": "
                "supported values: \"Ingress\", \"Egress\"");
  EXPECT_HAS(np_error("{policyTypes: [Ingress, Egress, Ingress]}"),
             Substr("spec.policyTypes: Invalid value [Ingress, Egress, "
                    "Ingress]: may not specify more than two policyTypes"));
  EXPECT_HAS(np_error("{policyTypes: Ingress}"),
             Substr("spec.policyTypes: expected a list"));
}

// --- upstream-style examples -------------------------------------------------

TEST(K8sExamples, DefaultDenyIngress) {
  auto n = one<NetworkPolicy>(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes:
  - Ingress
)");
  EXPECT_TRUE(n.pod_selector.match_labels.empty());
  EXPECT_TRUE(n.pod_selector.match_expressions.empty());
  EXPECT_TRUE(n.ingress_type);
  EXPECT_FALSE(n.egress_type);
  EXPECT_TRUE(n.ingress.empty());
}

TEST(K8sExamples, DefaultDenyAllAndAllowAllIngress) {
  auto deny = np_ok("{podSelector: {}, policyTypes: [Ingress, Egress]}");
  EXPECT_TRUE(deny.ingress_type && deny.egress_type);
  EXPECT_TRUE(deny.ingress.empty() && deny.egress.empty());
  auto allow = np_ok("{podSelector: {}, ingress: [{}]}");
  ASSERT_EQ(allow.ingress.size(), 1u);
  EXPECT_TRUE(allow.ingress[0].peers.empty());
  EXPECT_TRUE(allow.ingress[0].ports.empty());
}

TEST(K8sExamples, NamespaceAndPodSelectorOnePeerVersusTwo) {
  // One element: pods labelled role=client IN namespaces labelled user=alice.
  auto and_ = one<NetworkPolicy>(kNpHead + R"(spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {user: alice}
      podSelector:
        matchLabels: {role: client}
)");
  ASSERT_EQ(and_.ingress[0].peers.size(), 1u);
  const auto& peer = and_.ingress[0].peers[0];
  ASSERT_TRUE(peer.namespace_selector && peer.pod_selector);
  EXPECT_EQ(peer.namespace_selector->match_labels, (Labels{{"user", "alice"}}));
  EXPECT_EQ(peer.pod_selector->match_labels, (Labels{{"role", "client"}}));
  EXPECT_FALSE(peer.ip_block);

  // Two elements: any pod in those namespaces OR role=client pods here.
  auto or_ = one<NetworkPolicy>(kNpHead + R"(spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {user: alice}
    - podSelector:
        matchLabels: {role: client}
)");
  ASSERT_EQ(or_.ingress[0].peers.size(), 2u);
  EXPECT_TRUE(or_.ingress[0].peers[0].namespace_selector);
  EXPECT_FALSE(or_.ingress[0].peers[0].pod_selector);
  EXPECT_FALSE(or_.ingress[0].peers[1].namespace_selector);
  EXPECT_TRUE(or_.ingress[0].peers[1].pod_selector);
  EXPECT_NE(and_, or_);
}

TEST(K8sExamples, IpBlockWithExcept) {
  auto n = one<NetworkPolicy>(kNpHead + R"(spec:
  podSelector: {matchLabels: {role: db}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except: [172.17.1.0/24]
    - namespaceSelector: {matchLabels: {project: myproject}}
    - podSelector: {matchLabels: {role: frontend}}
    ports: [{protocol: TCP, port: 6379}]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/24}}]
    ports: [{protocol: TCP, port: 5978}]
)");
  ASSERT_EQ(n.ingress[0].peers.size(), 3u);
  ASSERT_TRUE(n.ingress[0].peers[0].ip_block);
  EXPECT_EQ(n.ingress[0].peers[0].ip_block->cidr, "172.17.0.0/16");
  EXPECT_EQ(n.ingress[0].peers[0].ip_block->except,
            (std::vector<std::string>{"172.17.1.0/24"}));
  EXPECT_EQ(n.ingress[0].ports[0].port,
            (std::variant<int32_t, std::string>(6379)));
  EXPECT_EQ(n.egress[0].peers[0].ip_block->cidr, "10.0.0.0/24");
  EXPECT_TRUE(n.egress_type);
}

TEST(K8sExamples, NamedPortsEndPortAndSctp) {
  auto n = np_ok(R"({egress: [{to: [{ipBlock: {cidr: 10.0.0.0/24}}], ports: [
      {protocol: TCP, port: 32000, endPort: 32768},
      {port: metrics},
      {protocol: SCTP, port: 7777},
      {protocol: UDP}]}]})");
  const auto& ports = n.egress[0].ports;
  ASSERT_EQ(ports.size(), 4u);
  EXPECT_EQ(std::get<int32_t>(*ports[0].port), 32000);
  EXPECT_EQ(ports[0].end_port, 32768);
  EXPECT_EQ(std::get<std::string>(*ports[1].port), "metrics");
  EXPECT_EQ(ports[1].protocol, Protocol::TCP);
  EXPECT_FALSE(ports[1].end_port);
  EXPECT_EQ(ports[2].protocol, Protocol::SCTP);
  EXPECT_EQ(std::get<int32_t>(*ports[2].port), 7777);
  EXPECT_EQ(ports[3].protocol, Protocol::UDP);
  EXPECT_FALSE(ports[3].port);
  EXPECT_TRUE(n.egress_type);
}

// --- JSON
// ---------------------------------------------------------------------

TEST(K8sJson, RoundTripsEveryField) {
  auto r = parse(R"(
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {env: prod}, annotations: {a: "1"}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: x
  labels: {app: web, version: "1"}
  annotations: {note: "quotes \" and \\ and\nnewline", "example.com/n": "ünïcode"}
spec:
  containers:
  - ports: [{name: http, containerPort: 80}, {containerPort: 53, protocol: UDP}]
  - ports: [{name: http, containerPort: 8080, protocol: SCTP}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x, labels: {a: b}}
spec:
  podSelector:
    matchLabels: {app: web}
    matchExpressions: [{key: tier, operator: In, values: [a, b]}, {key: x, operator: DoesNotExist}]
  policyTypes: [Egress]
  ingress:
  - {}
  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {r: c}}}]
  egress:
  - to: [{ipBlock: {cidr: "2001:db8::/32", except: ["2001:db8:1::/48"]}}]
    ports: [{port: 1000, endPort: 2000}, {protocol: UDP, port: dns}, {protocol: SCTP}]
)");
  ASSERT_TRUE(r) << r.error();
  for (const Object& o : *r) {
    const std::string j = to_json(o);
    auto back = from_json(j);
    ASSERT_TRUE(back) << back.error() << "\n" << j;
    EXPECT_EQ(*back, o) << j;
    EXPECT_EQ(to_json(*back), j);
  }
  const Pod& p = *(*r)[1].get<Pod>();
  EXPECT_EQ(p.meta.annotations.at("note"), "quotes \" and \\ and\nnewline");
  EXPECT_EQ(p.ports.size(), 3u);
}

TEST(K8sJson, SpellsOutDefaults) {
  auto n = parse(np("{egress: [{ports: [{port: 53}]}]}"));
  ASSERT_TRUE(n) << n.error();
  const std::string j = to_json((*n)[0]);
  EXPECT_HAS(j, Substr("\"policyTypes\":[\"Ingress\",\"Egress\"]"));
  EXPECT_HAS(j, Substr("\"protocol\":\"TCP\""));
  EXPECT_HAS(j, Substr("\"namespace\":\"x\""));
  EXPECT_HAS(j, Substr("\"apiVersion\":\"networking.k8s.io/v1\""));
  // policyTypes explicit in JSON: egress_type survives even without rules.
  auto e = parse(np("{policyTypes: [Egress]}"));
  ASSERT_TRUE(e);
  auto back = from_json(to_json((*e)[0]));
  ASSERT_TRUE(back) << back.error();
  EXPECT_FALSE(back->get<NetworkPolicy>()->ingress_type);
  EXPECT_TRUE(back->get<NetworkPolicy>()->egress_type);
}

TEST(K8sJson, HandBuiltObjectsRoundTrip) {
  NetworkPolicy np;
  np.meta.name = "p";
  np.meta.namespace_ = "ns";
  np.egress_type = true;
  NetworkPolicyRule rule;
  NetworkPolicyPeer peer;
  peer.pod_selector = LabelSelector{};
  rule.peers.push_back(peer);
  NetworkPolicyPort port;
  port.port = std::string("web");
  rule.ports.push_back(port);
  np.ingress.push_back(rule);
  Object o{np};
  auto back = from_json(to_json(o));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(*back, o);
  Pod pod;
  pod.meta.name = "a";
  pod.meta.namespace_ = "default";
  back = from_json(to_json(Object{pod}));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(*back->get<Pod>(), pod);
}

TEST(K8sJson, RejectsBadInput) {
  EXPECT_HAS(from_json("{nope").error(), Substr("invalid JSON"));
  EXPECT_EQ(from_json("[1]").error(), "expected a mapping, got a list");
  EXPECT_EQ(
      from_json(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"A"}})")
          .error()
          .substr(0, 33),
      "metadata.name: Invalid value \"A\":");
  // JSON strings stay strings even when they look like numbers or booleans.
  auto o = from_json(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a",
      "labels":{"v":"1","b":"true"}},"spec":{"containers":[{"ports":[
      {"containerPort":80,"name":"x"}]}]}})");
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->meta().labels, (Labels{{"b", "true"}, {"v", "1"}}));
  EXPECT_EQ(o->get<Pod>()->ports[0].protocol, Protocol::TCP);
  EXPECT_HAS(
      from_json(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a",
      "labels":{"v":1}}})")
          .error(),
      Substr("metadata.labels[v]: expected a string"));
}

TEST(K8sObjects, ToString) {
  EXPECT_STREQ(to_string(Protocol::TCP), "TCP");
  EXPECT_STREQ(to_string(Protocol::UDP), "UDP");
  EXPECT_STREQ(to_string(Protocol::SCTP), "SCTP");
  EXPECT_STREQ(to_string(Op::DoesNotExist), "DoesNotExist");
  EXPECT_EQ(parse_protocol("SCTP"), Protocol::SCTP);
  EXPECT_FALSE(parse_protocol("sctp"));
  EXPECT_EQ(parse_selector_op("NotIn"), Op::NotIn);
  EXPECT_FALSE(parse_selector_op("notin"));
}

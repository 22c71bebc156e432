// Kubernetes manifests (what `sluicectl apply -f` reads) to objects.h
// structs, validated and defaulted the way the API server does, and the
// JSON form the state store keeps.
//
// Supported kinds: v1 Namespace, v1 Pod, networking.k8s.io/v1
// NetworkPolicy, v1 Service, discovery.k8s.io/v1 EndpointSlice. Service
// defaults that need the cluster (cluster IPs, IP families, node ports) are
// completed by lb::Allocator when the object is applied.
//
// Adding a kind: add its struct to Object::Kinds, a KindInfo specialisation
// below, a decoder in manifest.cpp (and its top-level fields in top_fields()
// if it has no `spec`, like EndpointSlice) and a body_json in json.cpp;
// dispatch by apiVersion/kind is generated from Object::Kinds.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "common/result.h"
#include "k8s/objects.h"

namespace YAML {
class Node;
}

namespace sluice::k8s {

template <typename T>
struct KindInfo;
template <>
struct KindInfo<Namespace> {
  static constexpr const char* api_version = "v1";
  static constexpr const char* kind = "Namespace";
  static constexpr const char* resource = "namespaces";
  static constexpr bool namespaced = false;
};
template <>
struct KindInfo<Pod> {
  static constexpr const char* api_version = "v1";
  static constexpr const char* kind = "Pod";
  static constexpr const char* resource = "pods";
  static constexpr bool namespaced = true;
};
template <>
struct KindInfo<NetworkPolicy> {
  static constexpr const char* api_version = "networking.k8s.io/v1";
  static constexpr const char* kind = "NetworkPolicy";
  static constexpr const char* resource = "networkpolicies";
  static constexpr bool namespaced = true;
};

template <>
struct KindInfo<Service> {
  static constexpr const char* api_version = "v1";
  static constexpr const char* kind = "Service";
  static constexpr const char* resource = "services";
  static constexpr bool namespaced = true;
};
template <>
struct KindInfo<EndpointSlice> {
  static constexpr const char* api_version = "discovery.k8s.io/v1";
  static constexpr const char* kind = "EndpointSlice";
  static constexpr const char* resource = "endpointslices";
  static constexpr bool namespaced = true;
};

struct Object {
  using Kinds =
      std::variant<Namespace, Pod, NetworkPolicy, Service, EndpointSlice>;
  Kinds v;

  const char* kind() const;         // "Pod"
  const char* api_version() const;  // "v1"
  const ObjectMeta& meta() const;
  // "namespaces/x", "pods/x/a", "networkpolicies/x/p": unique per object,
  // the state store's key.
  std::string key() const;
  // "Pod x/a", "Namespace x": for messages.
  std::string display() const;

  template <typename T>
  const T* get() const {
    return std::get_if<T>(&v);
  }
  bool operator==(const Object&) const = default;
};

// Every object in a multi-document YAML stream (`---` separated; empty
// documents skipped; `kind: List` expanded), validated and defaulted. All or
// nothing: the first invalid object fails the whole stream with a message
// like
//   pods.yaml: document 3 (NetworkPolicy x/deny-all):
//     spec.ingress[0].from[1].podSelector.matchExpressions[0].operator:
//     Unsupported value "Foo": supported values: "In", "NotIn", ...
// (on one line). Objects come back in file order; duplicates are kept
// (like kubectl, a later one wins when applied in order).
// `where`, when given, receives for each object "pods.yaml: document 3"
// (", items[1]" inside a List), for messages about it after parsing.
Result<std::vector<Object>> parse_manifests(
    const std::string& yaml_text, const std::string& origin,
    std::vector<std::string>* where = nullptr);

// Checks of an update that need the stored object (ValidateXxxUpdate) and
// are not allocation (lb::Allocator): an EndpointSlice's addressType is
// immutable. Errors are "<field>: <problem>".
Status validate_update(const Object& next, const Object& prev);

// One already-loaded YAML document (a mapping with apiVersion/kind). Errors
// are "<field>: <problem>" without origin or document prefix.
Result<Object> decode_object(const YAML::Node& doc);

// The state store's form: the Kubernetes JSON shape with every default
// spelled out, so from_json(to_json(o)) == o. from_json re-validates.
std::string to_json(const Object& o);
Result<Object> from_json(const std::string& json);

}  // namespace sluice::k8s

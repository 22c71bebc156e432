// Builders and the upstream-style x/y/z × a/b/c cluster for the policy
// compiler tests (same shape as policy_test.cpp): namespaces x, y, z
// labelled ns=<name>; pods a, b, c labelled pod=<name>, each serving 80 and
// 81 on TCP, UDP and SCTP with named ports serve-<n>-<proto>; pod j of
// namespace i has 10.0.i.(j+1) and fd00::i:(j+1).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "identity/allocator.h"
#include "policy/compiler.h"

namespace sluice::policy::testlib {

using k8s::LabelSelector;
using k8s::NetworkPolicy;
using k8s::NetworkPolicyPeer;
using k8s::NetworkPolicyPort;
using k8s::NetworkPolicyRule;
using k8s::Protocol;
using Op = k8s::LabelSelectorRequirement::Op;

inline const std::vector<std::string> kNs = {"x", "y", "z"};
inline const std::vector<std::string> kPods = {"a", "b", "c"};

inline IpAddr ip(const std::string& s) {
  auto a = IpAddr::parse(s);
  EXPECT_TRUE(a) << s;
  return a ? *a : IpAddr{};
}
inline Cidr cidr(const std::string& s) {
  auto c = Cidr::parse(s);
  EXPECT_TRUE(c) << s;
  return c ? *c : Cidr{};
}

inline LabelSelector sel(k8s::Labels l = {}) { return {std::move(l), {}}; }
inline LabelSelector expr(std::string key, Op op,
                          std::vector<std::string> vals = {}) {
  return {{}, {{std::move(key), op, std::move(vals)}}};
}
inline LabelSelector pod_is(const std::string& n) { return sel({{"pod", n}}); }
inline LabelSelector ns_is(const std::string& n) { return sel({{"ns", n}}); }
inline NetworkPolicyPeer pods(LabelSelector s) {
  return {s, std::nullopt, std::nullopt};
}
inline NetworkPolicyPeer nss(LabelSelector s) {
  return {std::nullopt, s, std::nullopt};
}
inline NetworkPolicyPeer both(LabelSelector ns, LabelSelector pod) {
  return {pod, ns, std::nullopt};
}
inline NetworkPolicyPeer block(std::string c,
                               std::vector<std::string> except = {}) {
  return {std::nullopt, std::nullopt,
          k8s::IpBlock{std::move(c), std::move(except)}};
}
inline NetworkPolicyPort port(int32_t p, Protocol pr = Protocol::TCP) {
  return {pr, p, std::nullopt};
}
inline NetworkPolicyPort named(std::string n, Protocol pr = Protocol::TCP) {
  return {pr, std::move(n), std::nullopt};
}
inline NetworkPolicyPort range(int32_t p, int32_t end,
                               Protocol pr = Protocol::TCP) {
  return {pr, p, end};
}
inline NetworkPolicyPort proto_only(Protocol pr) {
  return {pr, std::nullopt, std::nullopt};
}

inline NetworkPolicy ingress(std::string ns, std::string name,
                             LabelSelector target,
                             std::vector<NetworkPolicyRule> rules) {
  NetworkPolicy p;
  p.meta.namespace_ = std::move(ns);
  p.meta.name = std::move(name);
  p.pod_selector = std::move(target);
  p.ingress = std::move(rules);
  return p;
}
inline NetworkPolicy egress(std::string ns, std::string name,
                            LabelSelector target,
                            std::vector<NetworkPolicyRule> rules) {
  NetworkPolicy p = ingress(std::move(ns), std::move(name),
                            std::move(target), {});
  p.ingress_type = false;
  p.egress_type = true;
  p.egress = std::move(rules);
  return p;
}

inline ClusterPod make_pod(const std::string& ns, const std::string& name,
                           k8s::Labels labels, std::vector<IpAddr> ips) {
  ClusterPod p;
  p.pod.meta = {name, ns, std::move(labels), {}};
  for (int num : {80, 81})
    for (auto [pr, s] :
         {std::pair{Protocol::TCP, "tcp"}, {Protocol::UDP, "udp"},
          {Protocol::SCTP, "sctp"}})
      p.pod.ports.push_back(
          {"serve-" + std::to_string(num) + "-" + s, num, pr});
  p.ips = std::move(ips);
  return p;
}

inline Cluster make_cluster() {
  Cluster c;
  for (size_t i = 0; i < kNs.size(); i++) {
    k8s::Namespace n;
    n.meta.name = kNs[i];
    n.meta.labels = {{"ns", kNs[i]},
                     {"kubernetes.io/metadata.name", kNs[i]}};
    c.namespaces.push_back(n);
    for (size_t j = 0; j < kPods.size(); j++)
      c.pods.push_back(make_pod(
          kNs[i], kPods[j], {{"pod", kPods[j]}},
          {ip("10.0." + std::to_string(i) + "." + std::to_string(j + 1)),
           ip("fd00::" + std::to_string(i) + ":" + std::to_string(j + 1))}));
  }
  return c;
}

// Label identities as the allocator would hand them out: one number per
// distinct pod_label_set, from 256, in cluster order. Pass `by_set` to
// keep numbers stable across calls (as the allocator does).
inline std::map<PodRef, uint32_t> label_identities(
    const Cluster& c, std::map<LabelSet, uint32_t>* stable = nullptr) {
  std::map<LabelSet, uint32_t> own;
  auto& by_set = stable ? *stable : own;
  std::map<PodRef, uint32_t> out;
  for (const auto& p : c.pods) {
    auto set = pod_label_set(p.pod.meta.labels,
                             c.namespace_labels(p.pod.meta.namespace_));
    auto [it, fresh] = by_set.try_emplace(
        set, kIdentityFirstLabel + uint32_t(by_set.size()));
    out[{p.pod.meta.namespace_, p.pod.meta.name}] = it->second;
  }
  return out;
}

inline IdentityOf identity_fn(std::map<PodRef, uint32_t> ids) {
  return [ids = std::move(ids)](const PodRef& r) -> std::optional<uint32_t> {
    auto it = ids.find(r);
    if (it == ids.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace sluice::policy::testlib

#include "state/cluster_state.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string_view>

namespace sluice {
namespace {

std::string lower_kind(const k8s::Object& o) {
  std::string k = o.kind();
  for (auto& c : k) c = char(std::tolower(static_cast<unsigned char>(c)));
  return k;
}

std::string line(const k8s::Object& o, const char* verb) {
  const auto& m = o.meta();
  return lower_kind(o) + "/" +
         (m.namespace_.empty() ? "" : m.namespace_ + "/") + m.name + " " +
         verb;
}

}  // namespace

void ClusterState::set_service_ranges(lb::ServiceRanges ranges) {
  std::lock_guard g(mu_);
  alloc_ = lb::Allocator(std::move(ranges));
  rebuild_allocations();
}

void ClusterState::rebuild_allocations() {
  alloc_ = lb::Allocator(alloc_.ranges());
  for (const auto& [k, o] : objects_)
    if (auto* s = o->get<k8s::Service>()) alloc_.hold(*s);
}

void ClusterState::journal(const std::string& key) {
  journal_.emplace_back(generation_ + 1, key);
}

void ClusterState::trim_journal() {
  const size_t keep = std::max(kJournalMin, objects_.size());
  while (journal_.size() > keep) {
    journal_floor_ = std::max(journal_floor_, journal_.front().first);
    journal_.pop_front();
  }
}

Status ClusterState::restore() {
  std::lock_guard g(mu_);
  auto keys = store_.list("k8s/");
  if (!keys) return Error{keys.error()};
  for (const auto& key : *keys) {
    auto doc = store_.get(key);
    if (!doc) return Error{doc.error()};
    if (!*doc) continue;
    auto obj = k8s::from_json(**doc);
    if (!obj) return err("state " + key + ": " + obj.error());
    auto id = obj->key();  // before the move below
    objects_[id] = std::make_shared<const k8s::Object>(std::move(*obj));
  }
  rebuild_allocations();
  generation_++;
  journal_.clear();  // consumers from before start over
  journal_floor_ = generation_;
  return {};
}

bool ClusterState::namespace_exists(const std::string& ns) const {
  return ns == "default" || objects_.count("namespaces/" + ns);
}

Result<std::vector<std::string>> ClusterState::apply(
    const std::string& yaml, const std::string& origin) {
  std::vector<std::string> where;
  auto objs = k8s::parse_manifests(yaml, origin, &where);
  if (!objs) return Error{objs.error()};
  std::lock_guard g(mu_);
  std::set<std::string> new_namespaces;
  for (const auto& o : *objs)
    if (o.get<k8s::Namespace>()) new_namespaces.insert(o.meta().name);
  for (const auto& o : *objs) {
    const auto& ns = o.meta().namespace_;
    if (!ns.empty() && !namespace_exists(ns) && !new_namespaces.count(ns))
      return err(origin + ": " + o.display() + ": namespaces \"" + ns +
                 "\" not found");
  }
  // Update checks and Service allocation, in file order against the state
  // as it will be (a later document sees an earlier one's result). Undone
  // in full if any document fails.
  std::map<std::string, const k8s::Object*> staged;  // key -> latest in *objs
  std::vector<std::pair<std::optional<k8s::Service>, k8s::Service>> held;
  auto undo = [&] {
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
      alloc_.release(it->second);
      if (it->first) alloc_.hold(*it->first);
    }
  };
  for (size_t i = 0; i < objs->size(); i++) {
    k8s::Object& o = (*objs)[i];
    const k8s::Object* prev = nullptr;
    if (auto st = staged.find(o.key()); st != staged.end())
      prev = st->second;
    else if (auto it = objects_.find(o.key()); it != objects_.end())
      prev = it->second.get();
    auto fail = [&](const std::string& e) {
      undo();
      return err(where.at(i) + " (" + o.display() + "): " + e);
    };
    if (prev)
      if (auto s = k8s::validate_update(o, *prev); !s) return fail(s.error());
    if (auto* svc = std::get_if<k8s::Service>(&o.v)) {
      const k8s::Service* old = prev ? prev->get<k8s::Service>() : nullptr;
      std::optional<k8s::Service> old_copy;
      if (old) old_copy = *old;
      if (auto s = alloc_.allocate(*svc, old_copy ? &*old_copy : nullptr); !s)
        return fail(s.error());
      held.emplace_back(std::move(old_copy), *svc);
    }
    staged[o.key()] = &o;
  }

  std::vector<std::string> out;
  for (const auto& o : *objs) {
    auto it = objects_.find(o.key());
    if (it != objects_.end() && *it->second == o) {
      out.push_back(line(o, "unchanged"));
      continue;
    }
    if (auto s = store_.put(store_key(o), k8s::to_json(o)); !s) {
      rebuild_allocations();  // what is held follows what was written
      generation_++;
      trim_journal();
      return Error{s.error()};
    }
    out.push_back(line(o, it == objects_.end() ? "created" : "configured"));
    objects_[o.key()] = std::make_shared<const k8s::Object>(o);
    journal(o.key());
  }
  generation_++;
  trim_journal();
  return out;
}

Result<std::vector<std::string>> ClusterState::remove(
    const std::string& yaml, const std::string& origin) {
  auto objs = k8s::parse_manifests(yaml, origin);
  if (!objs) return Error{objs.error()};
  std::lock_guard g(mu_);
  for (const auto& o : *objs)
    if (!objects_.count(o.key()))
      return err(origin + ": " + o.display() + " not found");
  std::vector<std::string> out;
  for (const auto& o : *objs) {
    std::vector<std::string> doomed = {o.key()};
    if (o.get<k8s::Namespace>())
      for (const auto& [key, obj] : objects_)
        if (obj->meta().namespace_ == o.meta().name) doomed.push_back(key);
    for (const auto& key : doomed) {
      auto it = objects_.find(key);
      if (it == objects_.end()) continue;
      if (auto s = store_.remove(store_key(*it->second)); !s) {
        generation_++;
        trim_journal();
        return Error{s.error()};
      }
      out.push_back(line(*it->second, "deleted"));
      if (auto* svc = it->second->get<k8s::Service>()) alloc_.release(*svc);
      objects_.erase(it);
      journal(key);
    }
  }
  generation_++;
  trim_journal();
  return out;
}

std::vector<k8s::Namespace> ClusterState::namespaces() const {
  std::lock_guard g(mu_);
  std::vector<k8s::Namespace> out;
  for (const auto& [k, o] : objects_)
    if (auto* n = o->get<k8s::Namespace>()) out.push_back(*n);
  return out;
}

std::vector<k8s::Pod> ClusterState::pods() const {
  std::lock_guard g(mu_);
  std::vector<k8s::Pod> out;
  for (const auto& [k, o] : objects_)
    if (auto* p = o->get<k8s::Pod>()) out.push_back(*p);
  return out;
}

std::vector<k8s::NetworkPolicy> ClusterState::policies() const {
  std::lock_guard g(mu_);
  std::vector<k8s::NetworkPolicy> out;
  for (const auto& [k, o] : objects_)
    if (auto* p = o->get<k8s::NetworkPolicy>()) out.push_back(*p);
  return out;
}

std::vector<k8s::Service> ClusterState::services() const {
  std::lock_guard g(mu_);
  std::vector<k8s::Service> out;
  for (const auto& [k, o] : objects_)
    if (auto* s = o->get<k8s::Service>()) out.push_back(*s);
  return out;
}

std::vector<k8s::EndpointSlice> ClusterState::endpoint_slices() const {
  std::lock_guard g(mu_);
  std::vector<k8s::EndpointSlice> out;
  for (const auto& [k, o] : objects_)
    if (auto* s = o->get<k8s::EndpointSlice>()) out.push_back(*s);
  return out;
}

const k8s::Pod* ClusterState::find_pod(const std::string& ns,
                                       const std::string& name,
                                       k8s::Pod* out) const {
  std::lock_guard g(mu_);
  auto it = objects_.find("pods/" + ns + "/" + name);
  if (it == objects_.end()) return nullptr;
  *out = *it->second->get<k8s::Pod>();
  return out;
}

k8s::Labels ClusterState::namespace_labels(const std::string& ns) const {
  std::lock_guard g(mu_);
  auto it = objects_.find("namespaces/" + ns);
  if (it != objects_.end()) return it->second->get<k8s::Namespace>()->meta.labels;
  return {{"kubernetes.io/metadata.name", ns}};
}

uint64_t ClusterState::generation() const {
  std::lock_guard g(mu_);
  return generation_;
}

k8s::ChangeFeed ClusterState::full_feed() const {
  k8s::ChangeFeed f;
  f.generation = generation_;
  f.full = true;
  f.changes.reserve(objects_.size());
  for (const auto& [k, o] : objects_) f.changes.push_back({k, o});
  return f;
}

k8s::ChangeFeed ClusterState::snapshot() const {
  std::lock_guard g(mu_);
  return full_feed();
}

k8s::ChangeFeed ClusterState::changes_since(uint64_t since) const {
  std::lock_guard g(mu_);
  if (since < journal_floor_ || since > generation_) return full_feed();
  k8s::ChangeFeed f;
  f.generation = generation_;
  std::set<std::string_view> seen;
  for (auto it = journal_.rbegin(); it != journal_.rend() && it->first > since;
       ++it) {
    if (!seen.insert(it->second).second) continue;
    auto o = objects_.find(it->second);
    f.changes.push_back(
        {it->second, o == objects_.end() ? nullptr : o->second});
  }
  return f;
}

}  // namespace sluice

#include "identity/allocator.h"

#include <nlohmann/json.hpp>

namespace sluice {

namespace {
constexpr const char* kStateKey = "identities";
}

LabelSet pod_label_set(const k8s::Labels& pod, const k8s::Labels& ns) {
  LabelSet out = pod;
  for (const auto& [k, v] : ns) out["ns:" + k] = v;
  return out;
}

std::string IdentityAllocator::canonical(const LabelSet& l) {
  // std::map is ordered, and '\n' cannot appear in label keys or values.
  std::string s;
  for (const auto& [k, v] : l) s += k + "=" + v + "\n";
  return s;
}

Status IdentityAllocator::restore() {
  std::lock_guard g(mu_);
  auto doc = store_.get(kStateKey);
  if (!doc) return Error{doc.error()};
  if (!*doc) return {};
  try {
    auto j = nlohmann::json::parse(**doc);
    for (const auto& e : j.at("identities")) {
      const uint32_t id = e.at("id").get<uint32_t>();
      LabelSet labels = e.at("labels").get<LabelSet>();
      if (id < kIdentityFirstLabel || id >= kIdentityFirstCidr)
        return err("state identities: id " + std::to_string(id) +
                   " outside the label identity range");
      by_labels_[canonical(labels)] = id;
      by_id_[id] = {std::move(labels), 0};
      next_ = std::max(next_, id + 1);
    }
  } catch (const nlohmann::json::exception& e) {
    return err(std::string("state identities: ") + e.what());
  }
  return {};
}

Result<uint32_t> IdentityAllocator::acquire(const LabelSet& labels) {
  std::lock_guard g(mu_);
  const std::string key = canonical(labels);
  if (auto it = by_labels_.find(key); it != by_labels_.end()) {
    by_id_[it->second].refs++;
    return it->second;
  }
  // Lowest free number at or after next_, wrapping once through the range.
  uint32_t id = next_;
  for (uint32_t tries = 0; by_id_.count(id); tries++) {
    if (tries >= kIdentityFirstCidr - kIdentityFirstLabel)
      return err("identities: the label identity range is exhausted");
    id = id + 1 >= kIdentityFirstCidr ? kIdentityFirstLabel : id + 1;
  }
  by_id_[id] = {labels, 1};
  by_labels_[key] = id;
  next_ = id + 1 >= kIdentityFirstCidr ? kIdentityFirstLabel : id + 1;
  if (auto s = persist(); !s) {
    by_id_.erase(id);
    by_labels_.erase(key);
    return Error{s.error()};
  }
  return id;
}

void IdentityAllocator::release(uint32_t id) {
  std::lock_guard g(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second.refs == 0) return;
  if (--it->second.refs > 0) return;
  by_labels_.erase(canonical(it->second.labels));
  by_id_.erase(it);
  (void)persist();  // a stale entry only reserves a number until next gc
}

Status IdentityAllocator::gc_unused() {
  std::lock_guard g(mu_);
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    if (it->second.refs == 0) {
      by_labels_.erase(canonical(it->second.labels));
      it = by_id_.erase(it);
    } else {
      ++it;
    }
  }
  return persist();
}

std::optional<LabelSet> IdentityAllocator::labels_of(uint32_t id) const {
  std::lock_guard g(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second.labels;
}

std::vector<std::pair<uint32_t, LabelSet>> IdentityAllocator::list() const {
  std::lock_guard g(mu_);
  std::vector<std::pair<uint32_t, LabelSet>> out;
  for (const auto& [id, e] : by_id_) out.emplace_back(id, e.labels);
  return out;
}

Status IdentityAllocator::persist() {
  nlohmann::json j;
  j["identities"] = nlohmann::json::array();
  for (const auto& [id, e] : by_id_)
    j["identities"].push_back({{"id", id}, {"labels", e.labels}});
  return store_.put(kStateKey, j.dump(1));
}

}  // namespace sluice

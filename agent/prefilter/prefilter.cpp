#include "prefilter/prefilter.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "sluice/abi.h"

namespace sluice {
namespace {

constexpr const char* kStateKey = "prefilter";

Result<std::vector<Cidr>> parse_all(const std::vector<std::string>& in) {
  std::vector<Cidr> out;
  if (in.empty()) return err("no CIDR given");
  for (const auto& s : in) {
    auto c = Cidr::parse(s);
    if (!c) return Error{c.error()};
    out.push_back(*c);
  }
  return out;
}

}  // namespace

Prefilter::Prefilter(DenyMaps& maps, StateStore& store,
                     std::vector<Cidr> config_deny, uint32_t capacity)
    : maps_(maps),
      store_(store),
      config_(config_deny.begin(), config_deny.end()),
      capacity_(capacity) {}

std::set<Cidr> Prefilter::desired() const {
  std::set<Cidr> d = config_;
  d.insert(added_.begin(), added_.end());
  for (const auto& c : deleted_) d.erase(c);
  return d;
}

Status Prefilter::restore() {
  std::lock_guard g(mu_);
  auto doc = store_.get(kStateKey);
  if (!doc) return Error{doc.error()};
  if (*doc) {
    try {
      auto j = nlohmann::json::parse(**doc);
      for (const auto& [field, set] :
           {std::pair{"added", &added_}, std::pair{"deleted", &deleted_}}) {
        for (const auto& s : j.value(field, std::vector<std::string>{})) {
          auto c = Cidr::parse(s);
          if (!c) return err("state prefilter." + std::string(field) + ": " +
                             c.error());
          set->insert(*c);
        }
      }
    } catch (const nlohmann::json::exception& e) {
      return err(std::string("state prefilter: ") + e.what());
    }
  }
  const auto want = desired();
  if (count_in(want, AF_INET) > capacity_ || count_in(want, AF_INET6) > capacity_)
    return err("prefilter: " + std::to_string(want.size()) +
               " deny entries exceed the capacity of " +
               std::to_string(capacity_) + " per address family");
  size_t added = 0, removed = 0;
  if (auto s = maps_.reconcile(want, &added, &removed); !s) return s;
  programmed_ = want;
  spdlog::info("prefilter: {} deny entries ({} added, {} removed, {} kept)",
               want.size(), added, removed, want.size() - added);
  return {};
}

Status Prefilter::add(const std::vector<std::string>& in) {
  auto cidrs = parse_all(in);
  if (!cidrs) return Error{cidrs.error()};
  std::lock_guard g(mu_);
  size_t new4 = 0, new6 = 0;
  for (const auto& c : *cidrs)
    if (!programmed_.count(c)) (c.addr.family == AF_INET ? new4 : new6)++;
  if (count(AF_INET) + new4 > capacity_ ||
      count(AF_INET6) + new6 > capacity_)
    return err("prefilter: adding " + std::to_string(new4 + new6) +
               " entries would exceed the capacity of " +
               std::to_string(capacity_) + " per address family");
  auto old_added = added_, old_deleted = deleted_;
  for (const auto& c : *cidrs) {
    deleted_.erase(c);
    if (!config_.count(c)) added_.insert(c);
  }
  if (auto s = persist(); !s) {
    added_ = old_added;
    deleted_ = old_deleted;
    return s;
  }
  std::vector<Cidr> fresh;
  for (const auto& c : *cidrs)
    if (programmed_.insert(c).second) fresh.push_back(c);
  if (auto s = maps_.insert(fresh); !s) return s;
  spdlog::info("prefilter: added {} CIDR(s)", cidrs->size());
  return {};
}

Status Prefilter::remove(const std::vector<std::string>& in) {
  auto cidrs = parse_all(in);
  if (!cidrs) return Error{cidrs.error()};
  std::lock_guard g(mu_);
  for (const auto& c : *cidrs)
    if (!programmed_.count(c))
      return err("prefilter: " + c.str() + " is not in the deny list");
  auto old_added = added_, old_deleted = deleted_;
  for (const auto& c : *cidrs) {
    added_.erase(c);
    if (config_.count(c)) deleted_.insert(c);
  }
  if (auto s = persist(); !s) {
    added_ = old_added;
    deleted_ = old_deleted;
    return s;
  }
  std::set<Cidr> gone(cidrs->begin(), cidrs->end());
  for (const auto& c : gone) programmed_.erase(c);
  if (auto s = maps_.erase({gone.begin(), gone.end()}); !s) return s;
  spdlog::info("prefilter: deleted {} CIDR(s)", cidrs->size());
  return {};
}

std::vector<Cidr> Prefilter::list() const {
  std::lock_guard g(mu_);
  return {programmed_.begin(), programmed_.end()};
}

size_t Prefilter::count_in(const std::set<Cidr>& s, int family) {
  size_t n = 0;
  for (const auto& c : s) n += c.addr.family == family;
  return n;
}

size_t Prefilter::count(int family) const {
  return count_in(programmed_, family);
}

size_t Prefilter::size_v4() const {
  std::lock_guard g(mu_);
  return count(AF_INET);
}

size_t Prefilter::size_v6() const {
  std::lock_guard g(mu_);
  return count(AF_INET6);
}

Status Prefilter::persist() {
  nlohmann::json j;
  j["added"] = nlohmann::json::array();
  j["deleted"] = nlohmann::json::array();
  for (const auto& c : added_) j["added"].push_back(c.str());
  for (const auto& c : deleted_) j["deleted"].push_back(c.str());
  return store_.put(kStateKey, j.dump(2));
}

}  // namespace sluice

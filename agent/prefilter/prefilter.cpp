#include "prefilter/prefilter.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "sluice/abi.h"

namespace sluice {
namespace {

constexpr const char* kStateKey = "prefilter";

// An LPM key is prefixlen followed by the address bytes.
std::vector<uint8_t> lpm_key(const Cidr& c) {
  std::vector<uint8_t> k(4 + c.addr.size());
  uint32_t plen = c.prefixlen;
  std::memcpy(k.data(), &plen, 4);
  std::memcpy(k.data() + 4, c.addr.bytes.data(), c.addr.size());
  return k;
}

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

Prefilter::Prefilter(int v4_fd, int v6_fd, StateStore& store,
                     std::vector<Cidr> config_deny, uint32_t capacity)
    : v4_fd_(v4_fd),
      v6_fd_(v6_fd),
      store_(store),
      config_(config_deny.begin(), config_deny.end()),
      capacity_(capacity) {}

std::set<Cidr> Prefilter::desired() const {
  std::set<Cidr> d = config_;
  d.insert(added_.begin(), added_.end());
  for (const auto& c : deleted_) d.erase(c);
  return d;
}

Status Prefilter::write(const Cidr& c) {
  auto k = lpm_key(c);
  sluice_prefilter_value v{};
  int fd = c.addr.family == AF_INET ? v4_fd_ : v6_fd_;
  if (bpf_map_update_elem(fd, k.data(), &v, BPF_ANY))
    return err(std::string("map ") +
               (fd == v4_fd_ ? SLUICE_MAP_PF_V4 : SLUICE_MAP_PF_V6) +
               ": add " + c.str() + ": " + errno_str(errno));
  programmed_.insert(c);
  return {};
}

Status Prefilter::erase(const Cidr& c) {
  auto k = lpm_key(c);
  int fd = c.addr.family == AF_INET ? v4_fd_ : v6_fd_;
  if (bpf_map_delete_elem(fd, k.data()) && errno != ENOENT)
    return err(std::string("map ") +
               (fd == v4_fd_ ? SLUICE_MAP_PF_V4 : SLUICE_MAP_PF_V6) +
               ": delete " + c.str() + ": " + errno_str(errno));
  programmed_.erase(c);
  return {};
}

Result<std::set<Cidr>> Prefilter::read_map(int family) const {
  const int fd = family == AF_INET ? v4_fd_ : v6_fd_;
  const size_t alen = family == AF_INET ? 4 : 16;
  std::vector<uint8_t> key(4 + alen), next(4 + alen);
  std::set<Cidr> out;
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    key = next;
    prev = key.data();
    Cidr c;
    c.addr.family = family;
    uint32_t plen;
    std::memcpy(&plen, key.data(), 4);
    c.prefixlen = uint8_t(plen);
    std::memcpy(c.addr.bytes.data(), key.data() + 4, alen);
    out.insert(c);
  }
  if (errno != ENOENT && errno != 0)
    return err(std::string("map ") +
               (family == AF_INET ? SLUICE_MAP_PF_V4 : SLUICE_MAP_PF_V6) +
               ": iterate: " + errno_str(errno));
  return out;
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
  std::set<Cidr> have;
  for (int fam : {AF_INET, AF_INET6}) {
    auto m = read_map(fam);
    if (!m) return Error{m.error()};
    have.insert(m->begin(), m->end());
  }
  const auto want = desired();
  size_t added = 0, removed = 0;
  for (const auto& c : want)
    if (!have.count(c)) {
      if (auto s = write(c); !s) return s;
      added++;
    }
  for (const auto& c : have)
    if (!want.count(c)) {
      if (auto s = erase(c); !s) return s;
      removed++;
    }
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
  for (const auto& c : *cidrs)
    if (auto s = write(c); !s) return s;
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
  for (const auto& c : *cidrs)
    if (auto s = erase(c); !s) return s;
  spdlog::info("prefilter: deleted {} CIDR(s)", cidrs->size());
  return {};
}

std::vector<Cidr> Prefilter::list() const {
  std::lock_guard g(mu_);
  return {programmed_.begin(), programmed_.end()};
}

size_t Prefilter::count(int family) const {
  size_t n = 0;
  for (const auto& c : programmed_) n += c.addr.family == family;
  return n;
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

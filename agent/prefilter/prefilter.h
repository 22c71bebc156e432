// The prefilter deny list: the desired set of CIDRs and its programming into
// the sluice_pf_v4 / sluice_pf_v6 tries.
//
// Desired set = config `prefilter.deny` + CIDRs added at run time - CIDRs
// deleted at run time. The run-time changes are kept in the state store
// (key "prefilter"), so a restart re-applies them; editing the config file
// still works because config entries are never copied into the store.
//
// Every change is validated in full (syntax, capacity) before the first map
// write, so a rejected request leaves the running list untouched.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"
#include "prefilter/deny_maps.h"
#include "state/store.h"

namespace sluice {

class Prefilter {
 public:
  Prefilter(DenyMaps& maps, StateStore& store, std::vector<Cidr> config_deny,
            uint32_t capacity);

  // Loads run-time changes from the store and makes the maps match the
  // desired set exactly: adds what is missing, deletes what is extra,
  // never flushes (packets from denied sources keep dropping throughout).
  Status restore();

  Status add(const std::vector<std::string>& cidrs);
  Status remove(const std::vector<std::string>& cidrs);
  std::vector<Cidr> list() const;
  size_t size_v4() const;
  size_t size_v6() const;
  uint32_t capacity() const { return capacity_; }

 private:
  std::set<Cidr> desired() const;
  Status persist();
  size_t count(int family) const;  // caller holds mu_
  static size_t count_in(const std::set<Cidr>& s, int family);

  DenyMaps& maps_;
  StateStore& store_;
  std::set<Cidr> config_;
  std::set<Cidr> added_, deleted_;
  std::set<Cidr> programmed_;
  uint32_t capacity_;
  mutable std::mutex mu_;
};

}  // namespace sluice

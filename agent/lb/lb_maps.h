// The load-balancer maps (include/sluice/lb_abi.h) as typed operations:
// one write or delete per call, or a batch applied in order, so LbEngine
// decides the order, plus a snapshot of what is pinned (to adopt it after
// a restart) and the Maglev inner-map swaps. Borrows the fds (the sluice_lxc object owns them).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "lb/program.h"
#include "sluice/lb_abi.h"

namespace sluice::lb {

struct LbMapFds {
  int svc = -1, slots = -1, maglev = -1, maglev_tmpl = -1, be = -1,
      aff = -1, conns = -1;
  int gate = -1;  // sluice_lb_gate; -1: not kept (tests of other maps)
};

class LbMaps {
 public:
  // Checks that every fd is a map with the ABI's key and value sizes
  // (an old pin of another layout would be misread, not just rejected).
  static Result<LbMaps> open(const LbMapFds& fds);

  Status put_backend(uint32_t id, const BackendAddr& a);
  Status del_backend(uint32_t id);  // and its sluice_lb_conns entry
  Status put_slot(uint32_t svc_id, uint32_t slot, uint32_t be_id);
  Status del_slot(uint32_t svc_id, uint32_t slot);
  // A new inner map of ceil(M/16) blocks holding `table` (M ids), made
  // like the template, filled, then swapped in with one update: readers
  // see the old table or the new one.
  Status put_maglev(uint32_t svc_id, std::span<const uint32_t> table);
  // The same in two steps, so many tables can be swapped in with one
  // batched update of the outer map: the kernel waits for an RCU grace
  // period after every update of a map-in-map (~10 ms here), once per
  // batch rather than once per table. Each table still changes whole.
  Result<UniqueFd> make_maglev(uint32_t svc_id, std::span<const uint32_t> table);
  Status swap_maglevs(std::span<const std::pair<uint32_t, UniqueFd>> tables);
  Status del_maglev(uint32_t svc_id);
  Status put_svc(const FrontendKey& k, const sluice_lb_svc& v);
  Status del_svc(const FrontendKey& k);
  // The same writes, many per system call (BPF_MAP_UPDATE_BATCH, applied
  // in order, each entry on its own as with single updates; one by one
  // where the kernel has no batch support). For a full sync's hundreds of
  // thousands of entries.
  struct SlotWrite {
    uint32_t svc_id = 0, slot = 0, be_id = 0;
  };
  Status put_backends(std::span<const std::pair<BackendAddr, uint32_t>> b);
  Status put_slots(std::span<const SlotWrite> s);
  Status put_svcs(std::span<const std::pair<FrontendKey, sluice_lb_svc>> f);
  // Creates a zero count unless the datapath already keeps one.
  Status ensure_conns(uint32_t be_id);
  // Deletes the ClientIP affinity entries of these svc ids; returns how
  // many (the datapath ignores them anyway: this only frees the LRU).
  Result<size_t> purge_affinity(const std::set<uint32_t>& svc_ids);
  // Deletes the affinity entries of these svc ids that name a backend
  // not in the id's set (keep: svc id -> backend ids it still has).
  Result<size_t> purge_affinity_except(
      const std::map<uint32_t, std::set<uint32_t>>& keep);

  struct Snapshot {
    std::map<uint32_t, BackendAddr> backends;
    std::map<FrontendKey, sluice_lb_svc> frontends;
    // svc id -> slot -> backend id (0: no entry at that slot)
    std::map<uint32_t, std::vector<uint32_t>> slots;
    // svc ids with a table, among ids up to 4096 above the highest id a
    // frontend or slot names (see read()).
    std::set<uint32_t> maglev;
    std::set<uint32_t> conns;   // backend ids with a connection count
  };
  Result<Snapshot> read() const;
  // Table of svc_id, M entries (what the datapath reads), or an error.
  Result<std::vector<uint32_t>> read_maglev(uint32_t svc_id, uint32_t m) const;
  Result<uint32_t> read_slot(uint32_t svc_id, uint32_t slot) const;
  Result<BackendAddr> read_backend(uint32_t id) const;
  Result<std::map<FrontendKey, sluice_lb_svc>> read_frontends() const;

  static sluice_lb_svc_key svc_key(const FrontendKey& k);
  static FrontendKey frontend_of(const sluice_lb_svc_key& k);

  // Sets the sluice_lb_gate bit of an external frontend's address (put_svc
  // does it too; adopted pinned frontends need it once: the gate may be
  // newer than they are).
  Status gate(const FrontendKey& k) { return gate(svc_key(k)); }

 private:
  explicit LbMaps(const LbMapFds& fds) : fds_(fds) {}
  Status gate(const sluice_lb_svc_key& k);
  LbMapFds fds_;
  uint32_t inner_type_ = 0, inner_flags_ = 0, inner_key_ = 0, inner_value_ = 0;
};

}  // namespace sluice::lb

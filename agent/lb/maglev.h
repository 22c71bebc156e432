// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, section 3.4), with weights, as
// Katran and Cilium use it: a pure function from a set of backends to a
// lookup table of M entries (M prime), each entry a backend id. The datapath
// picks table[flow_hash % M] for a new flow; since every node computes the
// same table from the same backends, any node picks the same backend for a
// flow, and a backend change moves only about 1/N of the flows.
//
// Decisions:
//   - Permutation. Each backend's preference list is the sequence
//     (offset + j * skip) mod M, j = 0..M-1, with offset = h1(key) mod M and
//     skip = h2(key) mod (M - 1) + 1, h1/h2 two 64-bit mixes of the key with
//     different fixed seeds. M prime makes every skip coprime with M, so the
//     list visits every slot once. The key is the backend's id unless a key
//     is given: never its position in the input, so a backend keeps its
//     preferences whatever the other backends are. Preference lists are
//     walked lazily (a position and a stride per backend), not materialised
//     (N x M words).
//     Ids are per agent. For the same table on every node (north-south
//     traffic arriving through any node), give each backend a key derived
//     from what it is, maglev_key(ip, port) (Katran hashes the real's
//     address, Cilium the backend's address string, for the same reason):
//     then the table maps the same slots to the same addresses on every
//     node, whatever ids each agent assigned.
//   - Weights (uint32, 0 = excluded, default 1): Katran's turn scheme.
//     Every round each backend earns its weight in credit and takes one turn
//     (claims its next free preferred slot) per max-weight of credit, so the
//     heaviest backend takes a turn every round and a backend of weight w
//     takes w/max of them; turns are taken in (key, id) order within a
//     round. Shares are exact up to 1/M (weights 90/10 give 14743/1638 of
//     16381); equal weights are plain round robin (shares differ by at most
//     one entry). When weights are so skewed that most backends would sit
//     out most rounds, the same turns come from a heap (round of turn k =
//     ceil(k * max / w)), O(M log N) instead of O(rounds x N). A backend
//     whose share is below 1/M may get no entry at all.
//   - Determinism: the input is a set; it is ordered by (key, id) before
//     filling, so any order of the same backends gives the same table.
//     Duplicate ids are an error (a bug in the caller).
//   - Table size M: prime, 251..131071 (Cilium's range; the
//     upper bound keeps one table at 512 KiB), default 16381 (agent config
//     `lb.maglevTableSize`), overridable per Service by the annotation
//     `sluice.io/maglev-table-size`. It should be well above the number of
//     backends N (the paper and Cilium ask M > 100 x N): shares are
//     quantised to 1/M, and a backend change moves closer to the ideal 1/N
//     of the entries the larger M is (removing 1 of 10 changes about 10.5%
//     at 16381, 12-13% at 1021, 15-17% at 251). Changing M reshuffles every
//     entry, so it is never derived from the backend count automatically.
//   - Memory: a table is M x 4 bytes (64 KiB at 16381). 10,000 Services each
//     with its own default table would be 640 MiB, so Maglev is opt-in:
//     a Service uses it when annotated `sluice.io/lb-algorithm: maglev`, or
//     when the agent default `lb.algorithm` is maglev; other Services use
//     random selection and have no table. Memory is therefore
//     services_using_maglev x M x 4 bytes, and a large fleet of Maglev
//     Services should pick a smaller M (1021 for services of up to ~10
//     backends: 4 KiB each, 40 MiB for 10,000). In the kernel the table is
//     stored as blocks of 16 ids per ARRAY value: an ARRAY of single u32s
//     would pad each to 8 bytes and double this.
//   - Entries are uint32 backend ids, not uint16 indices into the Service's
//     backend list. The halving is a constant factor; the opt-in and M are
//     the real levers. Ids keep a table self-contained: the datapath goes
//     from entry to backend in one lookup on the new-flow path (no second
//     service-slot lookup), and every entry of a table, old or new, names a
//     backend by itself (the agent deletes a backend only after replacing
//     the tables that name it), whereas an index table and its index list
//     must change together or a packet between the two updates lands on the
//     wrong backend. See docs/design-services.md, "Maglev".
//   - The agent need not keep tables: they are a pure function of the
//     backends, regenerated when a Service's backends change: about 0.1 ms
//     for M = 16381 and 10 backends, 6 us for M = 1021 (sluice-maglev-bench,
//     tests/bench/maglev_bench.cpp). The cost is the fill's probing,
//     O(M log M) steps, so it scales with M, hardly with N: 10,000 Services
//     at the default size would take about 1 s of CPU, another reason to
//     keep M small when many Services use Maglev.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"

namespace sluice::lb {

inline constexpr uint32_t kMaglevDefaultTableSize = 16381;
inline constexpr uint32_t kMaglevMinTableSize = 251;
inline constexpr uint32_t kMaglevMaxTableSize = 131071;
inline constexpr std::string_view kMaglevTableSizeKey = "lb.maglevTableSize";
inline constexpr std::string_view kMaglevTableSizeAnnotation =
    "sluice.io/maglev-table-size";

struct MaglevBackend {
  uint32_t id = 0;      // what the table holds; unique within one call
  uint32_t weight = 1;  // 0 = excluded
  // Permutation key; unset = the id. See maglev_key.
  std::optional<uint64_t> key;
};

// M entries, each the id of a backend with weight > 0; empty when there is
// none ("no backends": the datapath must reject, not pick).
using MaglevTable = std::vector<uint32_t>;

bool is_prime(uint32_t n);

// A prime in kMaglevMinTableSize..kMaglevMaxTableSize; the error names
// `key` (the config key or the annotation it came from).
Status validate_maglev_table_size(uint32_t m,
                                  std::string_view key = kMaglevTableSizeKey);

// Parses and validates a table size given as text (an annotation's value);
// errors name `key`.
Result<uint32_t> parse_maglev_table_size(
    std::string_view value, std::string_view key = kMaglevTableSizeAnnotation);

// A permutation key for a backend address, the same on every node.
uint64_t maglev_key(const IpAddr& ip, uint16_t port);

// A backend's preference list: slot j of it is (offset + j * skip) mod m
// (m a valid table size, as maglev_table checks).
struct MaglevPermutation {
  uint32_t offset = 0, skip = 0;
};
MaglevPermutation maglev_permutation(uint64_t key, uint32_t m);

// The lookup table of size m for `backends` (any order). Errors: invalid m
// (naming lb.maglevTableSize), duplicate ids.
Result<MaglevTable> maglev_table(std::span<const MaglevBackend> backends,
                                 uint32_t m = kMaglevDefaultTableSize);

// How many entries differ between two tables (positions compared one to
// one; tables of different sizes differ everywhere: max of the sizes).
size_t maglev_changed_entries(std::span<const uint32_t> a,
                              std::span<const uint32_t> b);

}  // namespace sluice::lb

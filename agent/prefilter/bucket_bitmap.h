// One family's bucket bitmap (sluice_pf_v{4,6}_bm), kept exact as deny
// prefixes come and go. The map is mmapped: updates are plain 64-bit stores,
// no syscalls. A local mirror is the source of truth; sync() stores the
// words that differ.
//
// Which buckets a prefix sets (bucket = 24-bit key, see include/sluice/abi.h):
//   IPv4  len >= 24: its /24; 16 <= len < 24: each /24 inside (refcounted);
//         len < 16: a "wide" prefix, a whole range of words.
//   IPv6  len >= 32: hash of its top 32 bits; 16 <= len < 32: the hash of
//         every top-32 value inside (refcounted); len < 16: every bucket.
#pragma once

#include <cstdint>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"

namespace sluice {

class BucketBitmap {
 public:
  BucketBitmap(int family, int map_fd);
  ~BucketBitmap();
  BucketBitmap(BucketBitmap&&) = delete;
  BucketBitmap(const BucketBitmap&) = delete;

  Status map();  // mmap the BPF array; call once before use

  void add(const Cidr& c);
  void remove(const Cidr& c);
  void clear();  // forget everything (before a rebuild)
  // Writes differing words to the map. Call after add() before the trie
  // entry matters, and after remove() once the trie entry is gone.
  void sync();

  bool test(const IpAddr& a) const;  // the bit the datapath would read

 private:
  std::vector<uint32_t> refcounted_buckets(const Cidr& c) const;
  void set_range(uint32_t first, uint64_t count);
  void clear_range(uint32_t first, uint64_t count);
  void set_bit(uint32_t b) { mirror_[b >> 6] |= 1ull << (b & 63); }
  void rebuild_range(uint32_t first, uint64_t count);
  bool covered(uint32_t bucket) const;

  int family_;
  int fd_;
  volatile uint64_t* words_ = nullptr;  // the map, shared with the kernel
  std::vector<uint64_t> mirror_;
  std::unordered_map<uint32_t, uint32_t> refs_;
  std::set<std::pair<uint8_t, uint32_t>> wide4_;  // (len, first bucket)
  uint32_t wide6_ = 0;
};

}  // namespace sluice

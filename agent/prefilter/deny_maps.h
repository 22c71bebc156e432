// The deny prefixes as the datapath sees them: per family an LPM trie
// (exact answer) and a bucket bitmap in front of it (fast "no" for clean
// sources). Ordering keeps the datapath safe at every instant: a prefix's
// bits are set right after its trie entry is written, and cleared only
// after its trie entry is deleted, so a denied source never finds a clear
// bit while its prefix is meant to be active.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <set>
#include <vector>

#include "common/cidr.h"
#include "common/result.h"
#include "prefilter/bucket_bitmap.h"

namespace sluice {

struct DenyMapFds {
  int v4_trie, v6_trie, v4_bitmap, v6_bitmap;
};

class DenyMaps {
 public:
  static Result<std::unique_ptr<DenyMaps>> open(DenyMapFds fds);

  Status insert(const std::vector<Cidr>& cidrs);
  Status erase(const std::vector<Cidr>& cidrs);
  // Makes tries and bitmaps hold exactly `want` without a moment where a
  // wanted prefix is ineffective (restart path: pinned maps are reused).
  Status reconcile(const std::set<Cidr>& want, size_t* added, size_t* removed);

  bool bucket_set(const IpAddr& a) const;

  explicit DenyMaps(DenyMapFds fds);

 private:
  Status trie_write(const Cidr& c);
  Status trie_write_many(int family, const std::vector<Cidr>& cidrs);
  Status trie_delete(const Cidr& c);
  Result<std::set<Cidr>> trie_read(int family) const;
  BucketBitmap& bitmap(int family) { return family == AF_INET ? bm4_ : bm6_; }

  DenyMapFds fds_;
  BucketBitmap bm4_, bm6_;
};

}  // namespace sluice

#include "prefilter/bucket_bitmap.h"

#include <arpa/inet.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "sluice/abi.h"

namespace sluice {
namespace {

constexpr uint64_t kBuckets = 1ull << SLUICE_PF_BUCKET_BITS;
constexpr size_t kBytes = SLUICE_PF_BITMAP_WORDS * sizeof(uint64_t);

uint32_t top32(const IpAddr& a) {
  uint32_t v;
  std::memcpy(&v, a.bytes.data(), 4);
  return ntohl(v);
}

}  // namespace

BucketBitmap::BucketBitmap(int family, int map_fd)
    : family_(family), fd_(map_fd), mirror_(SLUICE_PF_BITMAP_WORDS, 0) {}

BucketBitmap::~BucketBitmap() {
  if (words_) ::munmap(const_cast<uint64_t*>(words_), kBytes);
}

Status BucketBitmap::map() {
  void* p = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED)
    return err(std::string("map ") +
               (family_ == AF_INET ? SLUICE_MAP_PF_V4_BM : SLUICE_MAP_PF_V6_BM) +
               ": mmap: " + errno_str(errno));
  words_ = static_cast<volatile uint64_t*>(p);
  return {};
}

std::vector<uint32_t> BucketBitmap::refcounted_buckets(const Cidr& c) const {
  std::vector<uint32_t> out;
  const uint32_t t = top32(c.addr);
  if (family_ == AF_INET) {
    const uint32_t first = sluice_pf_v4_bucket(t);
    const uint32_t n = c.prefixlen >= 24 ? 1u : 1u << (24 - c.prefixlen);
    for (uint32_t i = 0; i < n; i++) out.push_back(first + i);
  } else if (c.prefixlen >= 32) {
    out.push_back(sluice_pf_v6_bucket(t));
  } else {
    const uint32_t n = 1u << (32 - c.prefixlen);
    for (uint32_t i = 0; i < n; i++) out.push_back(sluice_pf_v6_bucket(t + i));
  }
  return out;
}

void BucketBitmap::set_range(uint32_t first, uint64_t count) {
  for (uint64_t b = first; b < first + count;) {
    if ((b & 63) == 0 && b + 64 <= first + count) {
      mirror_[b >> 6] = ~0ull;
      b += 64;
    } else {
      set_bit(uint32_t(b++));
    }
  }
}

void BucketBitmap::clear_range(uint32_t first, uint64_t count) {
  for (uint64_t b = first; b < first + count;) {
    if ((b & 63) == 0 && b + 64 <= first + count) {
      mirror_[b >> 6] = 0;
      b += 64;
    } else {
      mirror_[b >> 6] &= ~(1ull << (b & 63));
      b++;
    }
  }
}

// Clears [first, first+count) and sets back what the remaining prefixes
// cover: cost is the range plus the number of prefixes, never range x
// prefixes.
bool BucketBitmap::covered(uint32_t b) const {
  if (refs_.count(b)) return true;
  if (family_ == AF_INET6) return wide6_ > 0;
  for (uint8_t len = 0; len < 16; len++) {
    const uint32_t span = 1u << (24 - len);
    if (wide4_.count({len, b & ~(span - 1)})) return true;
  }
  return false;
}

void BucketBitmap::rebuild_range(uint32_t first, uint64_t count) {
  if (count <= 4096) {  // small: ask per bucket (<= 17 lookups each)
    for (uint64_t b = first; b < first + count; b++) {
      if (covered(uint32_t(b)))
        set_bit(uint32_t(b));
      else
        mirror_[b >> 6] &= ~(1ull << (b & 63));
    }
    return;
  }
  clear_range(first, count);
  const uint64_t end = first + count;
  for (const auto& [b, n] : refs_)
    if (b >= first && b < end) set_bit(b);
  for (const auto& [len, wfirst] : wide4_) {
    const uint64_t wend = wfirst + (1ull << (24 - len));
    const uint64_t lo = std::max<uint64_t>(wfirst, first);
    const uint64_t hi = std::min<uint64_t>(wend, end);
    if (lo < hi) set_range(uint32_t(lo), hi - lo);
  }
}

void BucketBitmap::add(const Cidr& c) {
  if (family_ == AF_INET && c.prefixlen < 16) {
    const uint32_t first = sluice_pf_v4_bucket(top32(c.addr));
    wide4_.insert({c.prefixlen, first});
    set_range(first, 1ull << (24 - c.prefixlen));
    return;
  }
  if (family_ == AF_INET6 && c.prefixlen < 16) {
    wide6_++;
    set_range(0, kBuckets);
    return;
  }
  for (uint32_t b : refcounted_buckets(c)) {
    refs_[b]++;
    set_bit(b);
  }
}

void BucketBitmap::remove(const Cidr& c) {
  if (family_ == AF_INET && c.prefixlen < 16) {
    const uint32_t first = sluice_pf_v4_bucket(top32(c.addr));
    if (!wide4_.erase({c.prefixlen, first})) return;
    rebuild_range(first, 1ull << (24 - c.prefixlen));
    return;
  }
  if (family_ == AF_INET6 && c.prefixlen < 16) {
    if (wide6_ == 0 || --wide6_ > 0) return;
    rebuild_range(0, kBuckets);
    return;
  }
  for (uint32_t b : refcounted_buckets(c)) {
    auto it = refs_.find(b);
    if (it == refs_.end()) continue;
    if (--it->second > 0) continue;
    refs_.erase(it);
    rebuild_range(b, 1);
  }
}

void BucketBitmap::clear() {
  std::fill(mirror_.begin(), mirror_.end(), 0);
  refs_.clear();
  wide4_.clear();
  wide6_ = 0;
}

void BucketBitmap::sync() {
  if (!words_) return;
  for (size_t w = 0; w < mirror_.size(); w++)
    if (words_[w] != mirror_[w]) words_[w] = mirror_[w];  // aligned: atomic
}

bool BucketBitmap::test(const IpAddr& a) const {
  const uint32_t t = top32(a);
  const uint32_t b =
      family_ == AF_INET ? sluice_pf_v4_bucket(t) : sluice_pf_v6_bucket(t);
  const uint64_t w = words_ ? words_[b >> 6] : mirror_[b >> 6];
  return (w >> (b & 63)) & 1;
}

}  // namespace sluice

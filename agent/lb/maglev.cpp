#include "lb/maglev.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <queue>
#include <string>
#include <utility>

namespace sluice::lb {

namespace {

// MurmurHash3's 64-bit finaliser: a bijection with full avalanche.
constexpr uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb93fe53ec1a9ULL;
  k ^= k >> 33;
  return k;
}

// Fixed seeds: changing them changes every table of every node at once, so
// they are part of the format, like Katran's.
constexpr uint64_t kOffsetSeed = 0x5d1ce0ff5e7a11e5ULL;
constexpr uint64_t kSkipSeed = 0x9b3c4a6e21f0d7b3ULL;
constexpr uint64_t kKeySeed = 0x3f84d5b5b5470917ULL;

uint64_t mix(uint64_t key, uint64_t seed) {
  return fmix64(fmix64(key ^ seed) + seed);
}

struct Live {
  uint64_t key;
  uint32_t id, weight;
  uint32_t pos = 0, skip = 0;  // next preferred slot, stride
  uint32_t turns = 0;
  uint64_t credit = 0;
};

}  // namespace

bool is_prime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  if (n % 3 == 0) return n == 3;
  for (uint64_t i = 5; i * i <= n; i += 6)
    if (n % i == 0 || n % (i + 2) == 0) return false;
  return true;
}

Status validate_maglev_table_size(uint32_t m, std::string_view key) {
  if (m < kMaglevMinTableSize || m > kMaglevMaxTableSize)
    return err(std::string(key) + ": " + std::to_string(m) +
               " is out of range " + std::to_string(kMaglevMinTableSize) +
               ".." + std::to_string(kMaglevMaxTableSize));
  if (!is_prime(m))
    return err(std::string(key) + ": " + std::to_string(m) +
               " is not a prime (Maglev needs a prime table size: 251, 509, "
               "1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071)");
  return {};
}

Result<uint32_t> parse_maglev_table_size(std::string_view value,
                                         std::string_view key) {
  uint32_t m = 0;
  const char* last = value.data() + value.size();
  auto [end, ec] = std::from_chars(value.data(), last, m);
  if (value.empty() || ec != std::errc() || end != last)
    return err(std::string(key) + ": \"" + std::string(value) +
               "\" is not a table size (a prime such as 16381)");
  if (auto st = validate_maglev_table_size(m, key); !st) return err(st.error());
  return m;
}

uint64_t maglev_key(const IpAddr& ip, uint16_t port) {
  // Byte by byte, so the key does not depend on the host's endianness.
  uint64_t lo = 0, hi = 0;
  for (int i = 0; i < 8; ++i) {
    lo = lo << 8 | ip.bytes[i];
    hi = hi << 8 | ip.bytes[8 + i];
  }
  uint64_t h = fmix64(kKeySeed ^ static_cast<uint64_t>(ip.size()));
  h = fmix64(h ^ lo);
  h = fmix64(h ^ hi);
  return fmix64(h ^ port);
}

MaglevPermutation maglev_permutation(uint64_t key, uint32_t m) {
  return {static_cast<uint32_t>(mix(key, kOffsetSeed) % m),
          static_cast<uint32_t>(mix(key, kSkipSeed) % (m - 1)) + 1};
}

Result<MaglevTable> maglev_table(std::span<const MaglevBackend> backends,
                                 uint32_t m) {
  if (auto st = validate_maglev_table_size(m); !st) return err(st.error());

  std::vector<uint32_t> ids;
  ids.reserve(backends.size());
  for (const auto& b : backends) ids.push_back(b.id);
  std::sort(ids.begin(), ids.end());
  if (auto d = std::adjacent_find(ids.begin(), ids.end()); d != ids.end())
    return err("maglev: duplicate backend id " + std::to_string(*d));

  std::vector<Live> live;
  live.reserve(backends.size());
  uint32_t wmax = 0;
  uint64_t wsum = 0;
  for (const auto& b : backends) {
    if (b.weight == 0) continue;
    live.push_back({b.key.value_or(b.id), b.id, b.weight});
    wmax = std::max(wmax, b.weight);
    wsum += b.weight;
  }
  if (live.empty()) return MaglevTable{};
  std::sort(live.begin(), live.end(), [](const Live& a, const Live& b) {
    return std::pair(a.key, a.id) < std::pair(b.key, b.id);
  });
  for (auto& l : live) {
    auto p = maglev_permutation(l.key, m);
    l.pos = p.offset;
    l.skip = p.skip;
  }

  // Scratch memory stays O(M) bytes + O(N): large short-lived buffers make
  // malloc return memory to the kernel and fault it back on the next call,
  // which costs more than the fill itself.
  MaglevTable table(m);
  std::vector<uint8_t> taken(m, 0);
  uint32_t filled = 0;
  // One turn of backend l: its next preferred slot that is still free. Its
  // list visits every slot, so while a slot is free this ends.
  auto turn = [&](Live& l) {
    uint32_t p = l.pos;
    while (taken[p]) {
      p += l.skip;
      if (p >= m) p -= m;
    }
    taken[p] = 1;
    table[p] = l.id;
    p += l.skip;
    l.pos = p >= m ? p - m : p;
    ++l.turns;
    ++filled;
  };

  // Katran's weighted turns: each round every backend earns its weight in
  // credit and takes a turn per max weight of credit (at most one: w <=
  // max), in (key, id) order. Equal weights are plain round robin. The
  // heaviest backend turns every round, so filling takes about
  // (M + N) * max / sum rounds of N steps each.
  const uint64_t rounds = (uint64_t(m) + live.size()) * wmax / wsum + 1;
  if (rounds * live.size() <= 8 * uint64_t(m)) {
    while (filled < m) {
      for (auto& l : live) {
        l.credit += l.weight;
        if (l.credit < wmax) continue;
        l.credit -= wmax;
        turn(l);
        if (filled == m) break;
      }
    }
    return table;
  }

  // Skewed weights (a few heavy backends among many light ones) would spend
  // most rounds visiting backends that do not turn: take the same turns
  // from a heap instead. Turn k (1-based) of a backend of weight w is in
  // round ceil(k * max / w) (k <= M < 2^17, max < 2^32: no overflow), ties
  // in (key, id) order, i.e. index in `live`.
  auto round_of = [&](const Live& l) {
    uint64_t k = uint64_t(l.turns) + 1;
    return (k * wmax + l.weight - 1) / l.weight;
  };
  using Next = std::pair<uint64_t, uint32_t>;  // (round, index in live)
  std::priority_queue<Next, std::vector<Next>, std::greater<>> next;
  for (uint32_t i = 0; i < live.size(); ++i) next.emplace(round_of(live[i]), i);
  while (filled < m) {
    uint32_t i = next.top().second;
    next.pop();
    turn(live[i]);
    next.emplace(round_of(live[i]), i);
  }
  return table;
}

size_t maglev_changed_entries(std::span<const uint32_t> a,
                              std::span<const uint32_t> b) {
  if (a.size() != b.size()) return std::max(a.size(), b.size());
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

}  // namespace sluice::lb

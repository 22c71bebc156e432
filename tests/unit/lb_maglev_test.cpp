// Maglev lookup tables (lb/maglev.h): table sizes, fill, balance, weights,
// disruption on backend removal/addition, order independence, keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "lb/maglev.h"

using namespace sluice;
using lb::MaglevBackend;
using lb::MaglevTable;

namespace {

constexpr uint32_t kM = lb::kMaglevDefaultTableSize;

// n backends of weight 1 with ids first, first+7, first+14, ...
std::vector<MaglevBackend> backends(uint32_t n, uint32_t first = 1000) {
  std::vector<MaglevBackend> v;
  for (uint32_t i = 0; i < n; ++i) v.push_back({first + i * 7, 1, {}});
  return v;
}

MaglevTable table(const std::vector<MaglevBackend>& b, uint32_t m = kM) {
  auto t = lb::maglev_table(b, m);
  EXPECT_TRUE(t) << t.error();
  return t ? *t : MaglevTable{};
}

std::map<uint32_t, size_t> shares(const MaglevTable& t) {
  std::map<uint32_t, size_t> n;
  for (uint32_t id : t) ++n[id];
  return n;
}

// Of the entries that pointed at a backend still present in `after`, how
// many now point elsewhere.
size_t survivors_moved(const MaglevTable& before, const MaglevTable& after,
                       const std::set<uint32_t>& surviving) {
  size_t n = 0;
  for (size_t i = 0; i < before.size(); ++i)
    if (surviving.count(before[i]) && after[i] != before[i]) ++n;
  return n;
}

// The algorithm as written in the paper (permutation[i][j] materialised,
// next[i] indices) with Katran's weighted turns (a credit loop over every
// backend each round), sorted by (key, id): what maglev_table must compute.
MaglevTable reference(std::vector<MaglevBackend> b, uint32_t m) {
  std::erase_if(b, [](const MaglevBackend& x) { return x.weight == 0; });
  if (b.empty()) return {};
  auto key = [](const MaglevBackend& x) { return x.key.value_or(x.id); };
  std::sort(b.begin(), b.end(), [&](const auto& x, const auto& y) {
    return std::pair(key(x), x.id) < std::pair(key(y), y.id);
  });
  size_t n = b.size();
  std::vector<std::vector<uint32_t>> permutation(n, std::vector<uint32_t>(m));
  uint64_t wmax = 0;
  for (size_t i = 0; i < n; ++i) {
    auto p = lb::maglev_permutation(key(b[i]), m);
    for (uint32_t j = 0; j < m; ++j)
      permutation[i][j] = uint32_t((p.offset + uint64_t(j) * p.skip) % m);
    wmax = std::max<uint64_t>(wmax, b[i].weight);
  }
  std::vector<uint32_t> next(n, 0);
  std::vector<uint64_t> credit(n, 0);
  std::vector<int64_t> entry(m, -1);
  uint32_t filled = 0;
  while (true) {
    for (size_t i = 0; i < n; ++i) {
      credit[i] += b[i].weight;
      if (credit[i] < wmax) continue;
      credit[i] -= wmax;
      uint32_t c = permutation[i][next[i]];
      while (entry[c] >= 0) c = permutation[i][++next[i]];
      entry[c] = b[i].id;
      ++next[i];
      if (++filled == m) return MaglevTable(entry.begin(), entry.end());
    }
  }
}

}  // namespace

TEST(Maglev, MatchesThePaperWithKatranWeights) {
  std::mt19937 rng(4);
  for (int trial = 0; trial < 60; ++trial) {
    uint32_t m = std::vector<uint32_t>{251, 1021, 4093}[trial % 3];
    std::vector<MaglevBackend> b;
    std::set<uint32_t> ids;
    size_t n = trial % 4 == 2 ? 20 + rng() % 30 : 1 + rng() % 40;
    while (ids.size() < n) ids.insert(rng());
    for (uint32_t id : ids) {
      // Equal weights; small weights with zeros; one heavy backend among
      // many light ones (the heap path); huge random weights.
      uint32_t w = trial % 4 == 0   ? 1
                   : trial % 4 == 1 ? uint32_t(rng() % 12)
                   : trial % 4 == 2 ? (b.empty() ? 5000 : 1 + uint32_t(rng() % 3))
                                    : uint32_t(rng());
      b.push_back({id, w, {}});
    }
    if (trial % 5 == 0)
      for (auto& x : b) x.key = uint64_t(rng()) << 32 | rng();
    ASSERT_EQ(table(b, m), reference(b, m)) << "trial " << trial;
  }
}

TEST(Maglev, IsPrime) {
  for (uint32_t p : {2u, 3u, 5u, 7u, 251u, 509u, 1021u, 2039u, 4093u, 8191u,
                     16381u, 32749u, 65521u, 131071u, 4294967291u})
    EXPECT_TRUE(lb::is_prime(p)) << p;
  for (uint32_t n : {0u, 1u, 4u, 9u, 25u, 49u, 1000u, 16383u, 65536u, 131073u,
                     4294967295u, 4294967293u})
    EXPECT_FALSE(lb::is_prime(n)) << n;
  // Against a sieve up to 20000.
  std::vector<bool> composite(20000, false);
  for (uint32_t i = 2; i < composite.size(); ++i) {
    if (!composite[i])
      for (uint32_t j = 2 * i; j < composite.size(); j += i) composite[j] = true;
    EXPECT_EQ(lb::is_prime(i), !composite[i]) << i;
  }
}

TEST(Maglev, TableSizeValidated) {
  EXPECT_TRUE(lb::validate_maglev_table_size(16381));
  EXPECT_TRUE(lb::validate_maglev_table_size(251));
  EXPECT_TRUE(lb::validate_maglev_table_size(131071));

  auto np = lb::validate_maglev_table_size(16383);
  ASSERT_FALSE(np);
  EXPECT_NE(np.error().find("lb.maglevTableSize"), std::string::npos) << np.error();
  EXPECT_NE(np.error().find("16383 is not a prime"), std::string::npos) << np.error();

  for (uint32_t m : {0u, 2u, 241u, 131101u, 4294967291u}) {
    auto r = lb::validate_maglev_table_size(m);
    ASSERT_FALSE(r) << m;
    EXPECT_EQ(r.error(), "lb.maglevTableSize: " + std::to_string(m) +
                             " is out of range 251..131071");
  }

  // maglev_table refuses a bad size before looking at the backends.
  auto t = lb::maglev_table(backends(3), 1000);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().find("lb.maglevTableSize: 1000 is not a prime"),
            std::string::npos) << t.error();
}

TEST(Maglev, TableSizeAnnotationParsed) {
  auto ok = lb::parse_maglev_table_size("1021");
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(*ok, 1021u);
  for (const char* bad : {"", "abc", "16381 ", "-1", "0x3ffd", "99999999999"}) {
    auto r = lb::parse_maglev_table_size(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().rfind("sluice.io/maglev-table-size: ", 0), 0u) << r.error();
  }
  auto np = lb::parse_maglev_table_size("1000");
  ASSERT_FALSE(np);
  EXPECT_NE(np.error().find("sluice.io/maglev-table-size: 1000 is not a prime"),
            std::string::npos) << np.error();
}

TEST(Maglev, EmptyInputIsNoBackends) {
  auto t = lb::maglev_table({}, kM);
  ASSERT_TRUE(t) << t.error();
  EXPECT_TRUE(t->empty());
  // Only weight-0 backends: the same.
  std::vector<MaglevBackend> zero{{1, 0, {}}, {2, 0, {}}};
  auto z = lb::maglev_table(zero, kM);
  ASSERT_TRUE(z) << z.error();
  EXPECT_TRUE(z->empty());
}

TEST(Maglev, DuplicateIdRejected) {
  std::vector<MaglevBackend> b{{5, 1, {}}, {6, 1, {}}, {5, 2, {}}};
  auto t = lb::maglev_table(b, kM);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error(), "maglev: duplicate backend id 5");
}

TEST(Maglev, SingleBackendTakesEverything) {
  auto t = table({{42, 3, {}}}, 251);
  ASSERT_EQ(t.size(), 251u);
  EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](uint32_t id) { return id == 42; }));
}

TEST(Maglev, EveryEntryIsALiveBackend) {
  for (uint32_t m : {251u, 1021u, 16381u, 131071u}) {
    auto b = backends(10);
    b[3].weight = 0;  // excluded
    b[7].weight = 5;
    auto t = table(b, m);
    ASSERT_EQ(t.size(), m);
    std::set<uint32_t> live;
    for (const auto& x : b)
      if (x.weight) live.insert(x.id);
    for (uint32_t id : t) ASSERT_TRUE(live.count(id)) << "m=" << m << " id=" << id;
    EXPECT_EQ(shares(t).size(), live.size()) << "every live backend has entries";
  }
}

TEST(Maglev, EqualWeightsShareEqually) {
  for (uint32_t n : {2u, 3u, 10u, 100u}) {
    auto t = table(backends(n));
    auto s = shares(t);
    ASSERT_EQ(s.size(), n);
    double fair = double(kM) / n;
    size_t lo = kM, hi = 0;
    for (auto [id, c] : s) {
      EXPECT_NEAR(double(c), fair, fair * 0.02) << "n=" << n << " id=" << id;
      lo = std::min(lo, c);
      hi = std::max(hi, c);
    }
    // One turn per backend per round: shares differ by at most one entry.
    EXPECT_LE(hi - lo, 1u) << "n=" << n;
  }
}

TEST(Maglev, WeightsSplitTraffic) {
  // A 90/10 canary split.
  auto t = table({{1, 90, {}}, {2, 10, {}}});
  auto s = shares(t);
  EXPECT_NEAR(double(s[1]) / kM, 0.90, 0.01) << s[1];
  EXPECT_NEAR(double(s[2]) / kM, 0.10, 0.01) << s[2];
  EXPECT_EQ(s[1], 14743u);  // exact up to 1/M: 9 turns to 1
  EXPECT_EQ(s[2], 1638u);

  // Uneven weights over several backends, including a large one (no
  // overflow in the turn arithmetic).
  std::vector<MaglevBackend> b{{10, 1, {}}, {11, 2, {}}, {12, 3, {}}, {13, 4, {}}};
  auto ts = shares(table(b));
  for (const auto& x : b)
    EXPECT_NEAR(double(ts[x.id]) / kM, x.weight / 10.0, 0.002) << x.id;

  std::vector<MaglevBackend> big{{1, 0xffffffffu, {}}, {2, 0x7fffffffu, {}}};
  auto bs = shares(table(big));
  EXPECT_NEAR(double(bs[1]) / kM, 2.0 / 3, 0.002);

  // A backend whose share is far below 1/M gets nothing; the table is full.
  auto tiny = table({{1, 1, {}}, {2, 1000000, {}}});
  EXPECT_EQ(tiny.size(), kM);
  EXPECT_EQ(shares(tiny)[2], kM);
}

TEST(Maglev, WeightZeroExcludes) {
  auto b = backends(5);
  auto without = b;
  without.erase(without.begin() + 2);
  b[2].weight = 0;
  // Weight 0 is the same as absent.
  EXPECT_EQ(table(b), table(without));
  EXPECT_EQ(shares(table(b)).count(b[2].id), 0u);
}

TEST(Maglev, OrderDoesNotMatter) {
  auto b = backends(12);
  for (size_t i = 0; i < b.size(); ++i) b[i].weight = 1 + i % 4;
  auto ref = table(b);
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    std::shuffle(b.begin(), b.end(), rng);
    ASSERT_EQ(table(b), ref) << "shuffle " << i;
  }
  std::reverse(b.begin(), b.end());
  EXPECT_EQ(table(b), ref);
}

TEST(Maglev, IdsNotPositionsDrivePreferences) {
  // The same positions with other ids give a different layout, not a
  // relabelled one: preferences come from the ids.
  auto a = table(backends(3, 1));
  auto b = table(backends(3, 500));
  std::map<uint32_t, uint32_t> relabel{{1, 500}, {8, 507}, {15, 514}};
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += relabel[a[i]] == b[i];
  EXPECT_LT(same, a.size() / 2) << "a relabelled copy would match everywhere";
}

// Removing one backend of N: its entries (1/N of the table) go elsewhere,
// and a few entries of surviving backends move too (Maglev is close to, not
// exactly, minimally disruptive; the excess grows with N/M, and is largest
// when two backends happen to draw the same skip, odds about N^2/2M).
// Measured with the seeds in maglev.cpp at M = 16381, worst over every
// backend and three id sets, changed - 1/N: N=5 0.5%, N=10 0.8% (changed
// <= 10.8%), N=20 1.1%, N=50 1.3%; adding one (four ids) up to 1.4% over
// 1/(N+1). Over 300 random id sets the mean excess is 0.3-1.0% for N=5..50.
// Bound: 2 percentage points over the ideal, and 12% for N=10.
constexpr double kSlack = 0.02;
const std::vector<uint32_t> kSizes{5, 10, 20, 50};

TEST(Maglev, RemovingOneOfNMovesAboutOneNth) {
  for (uint32_t n : kSizes) {
    double worst_changed = 0, worst_kept = 1;
    for (uint32_t first : {1u, 1000u, 77777u}) {
      auto all = backends(n, first);
      auto before = table(all);
      for (size_t r = 0; r < n; ++r) {
        auto fewer = all;
        fewer.erase(fewer.begin() + r);
        auto after = table(fewer);
        std::set<uint32_t> surviving;
        for (const auto& x : fewer) surviving.insert(x.id);
        size_t changed = lb::maglev_changed_entries(before, after);
        size_t removed_entries = shares(before)[all[r].id];
        size_t moved = survivors_moved(before, after, surviving);
        // Every entry of the removed backend changed, and only those plus
        // the survivors' moved ones.
        EXPECT_EQ(changed, removed_entries + moved);
        double f = double(changed) / kM;
        EXPECT_LE(f, 1.0 / n + kSlack) << "n=" << n << " removed " << r;
        EXPECT_LE(double(moved) / kM, kSlack) << "n=" << n << " removed " << r;
        // Entries pointing at a surviving backend mostly stay.
        double kept = 1 - double(moved) / double(kM - removed_entries);
        EXPECT_GE(kept, 1 - kSlack) << "n=" << n << " removed " << r;
        if (n == 10) {
          EXPECT_LE(f, 0.12);
        }
        worst_changed = std::max(worst_changed, f);
        worst_kept = std::min(worst_kept, kept);
      }
    }
    std::printf("remove 1 of %2u: worst changed %.4f (1/N %.4f), survivors kept >= %.4f\n",
                n, worst_changed, 1.0 / n, worst_kept);
  }
}

TEST(Maglev, AddingOneMovesAboutOneNthPlusOne) {
  for (uint32_t n : kSizes) {
    auto all = backends(n);
    auto before = table(all);
    double worst_changed = 0;
    for (uint32_t extra : {1u, 99u, 123456u, 0xfffffff0u}) {
      auto more = all;
      more.push_back({extra, 1, {}});
      auto after = table(more);
      size_t changed = lb::maglev_changed_entries(before, after);
      // The new backend takes its fair share; the other changed entries
      // are reshuffling among the old ones.
      size_t gained = shares(after)[extra];
      EXPECT_NEAR(double(gained) / kM, 1.0 / (n + 1), 0.001) << "n=" << n;
      EXPECT_GE(changed, gained);
      double f = double(changed) / kM;
      EXPECT_LE(f, 1.0 / (n + 1) + kSlack) << "n=" << n << " extra=" << extra;
      worst_changed = std::max(worst_changed, f);
    }
    std::printf("add 1 to %2u: worst changed %.4f (1/(N+1) %.4f)\n", n,
                worst_changed, 1.0 / (n + 1));
  }
}

TEST(Maglev, WeightChangeMovesOnlyTheDifference) {
  // A canary going from 10% to 20%: about 10% of the entries move.
  auto before = table({{1, 90, {}}, {2, 10, {}}});
  auto after = table({{1, 80, {}}, {2, 20, {}}});
  double changed = double(lb::maglev_changed_entries(before, after)) / kM;
  EXPECT_GE(changed, 0.10 - 0.01);
  EXPECT_LE(changed, 0.10 + 0.03) << changed;
}

TEST(Maglev, AddressKeysGiveTheSameTableOnEveryNode) {
  // Two agents that numbered the same backends differently: with address
  // keys every slot names the same address.
  std::vector<IpAddr> ips;
  for (int i = 1; i <= 8; ++i) ips.push_back(*IpAddr::parse("10.0.0." + std::to_string(i)));
  std::vector<MaglevBackend> node_a, node_b;
  std::map<uint32_t, std::string> addr_a, addr_b;
  for (size_t i = 0; i < ips.size(); ++i) {
    uint64_t key = lb::maglev_key(ips[i], 8080);
    node_a.push_back({uint32_t(i + 1), 1, key});
    node_b.push_back({uint32_t(900 - 3 * i), 1, key});
    addr_a[i + 1] = ips[i].str();
    addr_b[900 - 3 * i] = ips[i].str();
  }
  auto ta = table(node_a), tb = table(node_b);
  for (size_t s = 0; s < ta.size(); ++s) ASSERT_EQ(addr_a[ta[s]], addr_b[tb[s]]) << s;

  // Keys tell families and ports apart.
  auto v4 = *IpAddr::parse("10.0.0.1"), v6 = *IpAddr::parse("::a00:1");
  EXPECT_NE(lb::maglev_key(v4, 80), lb::maglev_key(v4, 81));
  EXPECT_NE(lb::maglev_key(v4, 80), lb::maglev_key(v6, 80));
}

TEST(Maglev, ChangedEntries) {
  std::vector<uint32_t> a{1, 2, 3, 4}, b{1, 9, 3, 9}, c{1, 2, 3};
  EXPECT_EQ(lb::maglev_changed_entries(a, a), 0u);
  EXPECT_EQ(lb::maglev_changed_entries(a, b), 2u);
  EXPECT_EQ(lb::maglev_changed_entries(a, c), 4u);
  EXPECT_EQ(lb::maglev_changed_entries({}, {}), 0u);
}

// The table is part of the cross-node (and cross-version) contract: agents
// of different versions during a rolling upgrade must compute the same
// table. Changing the hash or the fill changes these values.
TEST(Maglev, FormatIsStable) {
  auto t = table({{1, 1, {}}, {2, 1, {}}, {3, 2, {}}}, 251);
  std::vector<uint32_t> head(t.begin(), t.begin() + 16);
  uint64_t sum = 0;
  for (size_t i = 0; i < t.size(); ++i) sum = sum * 31 + t[i];
  std::string got;
  for (uint32_t id : head) got += std::to_string(id);
  RecordProperty("head", got);
  EXPECT_EQ(got, "2232223213221321");
  EXPECT_EQ(sum, 2901053044317681812u);
}

// sluice-maglev-bench: time to generate one Maglev lookup table
// (lb/maglev.h), the user-space cost behind programming a Maglev Service.
// The budget: 10,000 Services x 10 backends programmed within 2 s, so one
// 16381-entry table for 10 backends must stay well under 1 ms (it is about
// 0.1 ms on the 2-core dev VM). User space only; no root needed.
//
//   sluice-maglev-bench [--benchmark_filter=...] [--benchmark_repetitions=N]
//
// Arguments: table size M, backends N, weights (0 = all 1, 1 = 1..N, 2 = one
// backend 99x the others, a canary split).
#include <benchmark/benchmark.h>

#include <vector>

#include "lb/maglev.h"

using sluice::lb::MaglevBackend;

namespace {

std::vector<MaglevBackend> make(int n, int weights) {
  std::vector<MaglevBackend> v;
  for (int i = 0; i < n; ++i) {
    uint32_t w = 1;
    if (weights == 1) w = i + 1;
    if (weights == 2) w = i == 0 ? 99 : 1;
    v.push_back({uint32_t(10000 + 7 * i), w, {}});
  }
  return v;
}

void BM_MaglevTable(benchmark::State& st) {
  uint32_t m = st.range(0);
  auto b = make(st.range(1), st.range(2));
  for (auto _ : st) {
    auto t = sluice::lb::maglev_table(b, m);
    if (!t) st.SkipWithError(t.error().c_str());
    benchmark::DoNotOptimize(t->data());
  }
  st.counters["ns/entry"] = benchmark::Counter(
      double(m) * st.iterations(),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_MaglevTable)
    ->ArgNames({"M", "N", "weights"})
    ->Args({16381, 10, 0})   // the agent default, a typical Service
    ->Args({16381, 10, 1})
    ->Args({16381, 10, 2})
    ->Args({16381, 2, 2})    // a 99/1 canary
    ->Args({16381, 100, 0})
    ->Args({16381, 100, 1})
    ->Args({1021, 10, 0})    // a small table for fleets of Maglev Services
    ->Args({65521, 100, 0})
    ->Args({131071, 1000, 1})
    ->Unit(benchmark::kMicrosecond);

// One backend change, as the agent would do it: regenerate and diff against
// the table in place (to log how many entries moved).
void BM_MaglevBackendChange(benchmark::State& st) {
  uint32_t m = st.range(0);
  auto b = make(st.range(1), 0);
  auto before = *sluice::lb::maglev_table(b, m);
  b.pop_back();
  size_t moved = 0;
  for (auto _ : st) {
    auto after = sluice::lb::maglev_table(b, m);
    moved = sluice::lb::maglev_changed_entries(before, *after);
    benchmark::DoNotOptimize(moved);
  }
  st.counters["moved"] = double(moved) / m;
}
BENCHMARK(BM_MaglevBackendChange)
    ->ArgNames({"M", "N"})
    ->Args({16381, 10})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

// rt::Map benchmarks (Google Benchmark), beside std::unordered_map in the
// same binary and Go's map in the Go twin (go/mapbench/):
//
//   BM_MapInsert/<n>, BM_UnorderedMapInsert/<n>: ns per insert while a map
//       of n int64 keys is built from empty (no size hint: the growths, and
//       for rt::Map the collections its garbage triggers, are included);
//   BM_MapLookup/<n>, BM_UnorderedMapLookup/<n>: ns per lookup of a
//       present int64 key in a map of n entries, keys in random order.
//
// Keys are spread over 64 bits (i times an odd constant) and shuffled, so
// neither table sees sequential keys. Every benchmark reports "ns_per_op".
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#include "benchmarks/bench_util.h"
#include "rt/rt.h"

namespace {

using rtlab::bench::Clock;

std::vector<int64_t> bench_keys(int64_t n) {
  std::vector<int64_t> keys(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) keys[static_cast<size_t>(i)] = int64_t(uint64_t(i) * 0x9e3779b97f4a7c15ULL);
  std::shuffle(keys.begin(), keys.end(), std::mt19937_64(1));
  return keys;
}

void BM_MapInsert(benchmark::State& state) {
  std::vector<int64_t> keys = bench_keys(state.range(0));
  auto t0 = Clock::now();
  for (auto _ : state) {
    auto m = rt::make_map<int64_t, int64_t>();
    for (int64_t k : keys) m.set(k, k);
    benchmark::DoNotOptimize(m.len());
  }
  rtlab::bench::report(state, t0, state.range(0));
}

void BM_UnorderedMapInsert(benchmark::State& state) {
  std::vector<int64_t> keys = bench_keys(state.range(0));
  auto t0 = Clock::now();
  for (auto _ : state) {
    std::unordered_map<int64_t, int64_t> m;
    for (int64_t k : keys) m[k] = k;
    benchmark::DoNotOptimize(m.size());
  }
  rtlab::bench::report(state, t0, state.range(0));
}

void BM_MapLookup(benchmark::State& state) {
  std::vector<int64_t> keys = bench_keys(state.range(0));
  auto m = rt::make_map<int64_t, int64_t>();
  for (int64_t k : keys) m.set(k, k);
  std::shuffle(keys.begin(), keys.end(), std::mt19937_64(2));
  size_t i = 0;
  int64_t sum = 0;
  auto t0 = Clock::now();
  for (auto _ : state) {
    sum += m.get(keys[i]);
    if (++i == keys.size()) i = 0;
  }
  rtlab::bench::report(state, t0, 1);
  benchmark::DoNotOptimize(sum);
}

void BM_UnorderedMapLookup(benchmark::State& state) {
  std::vector<int64_t> keys = bench_keys(state.range(0));
  std::unordered_map<int64_t, int64_t> m;
  for (int64_t k : keys) m[k] = k;
  std::shuffle(keys.begin(), keys.end(), std::mt19937_64(2));
  size_t i = 0;
  int64_t sum = 0;
  auto t0 = Clock::now();
  for (auto _ : state) {
    sum += m.find(keys[i])->second;
    if (++i == keys.size()) i = 0;
  }
  rtlab::bench::report(state, t0, 1);
  benchmark::DoNotOptimize(sum);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {int64_t(1) << 10, int64_t(1) << 16, int64_t(1) << 20}) b->Arg(n);
}

BENCHMARK(BM_MapInsert)->Apply(sizes)->UseRealTime();
BENCHMARK(BM_UnorderedMapInsert)->Apply(sizes)->UseRealTime();
BENCHMARK(BM_MapLookup)->Apply(sizes)->UseRealTime();
BENCHMARK(BM_UnorderedMapLookup)->Apply(sizes)->UseRealTime();

}  // namespace

int main(int argc, char** argv) { return rtlab::bench::run_benchmarks(argc, argv); }

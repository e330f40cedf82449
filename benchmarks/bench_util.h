// Helpers shared by the Google Benchmark programs.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rt/rt.h"

namespace rtlab::bench {

// Registers one run per GOMAXPROCS value: 1 and 2, or the comma-separated
// list in RTLAB_BENCH_PROCS (e.g. "1,2,4,8,16" on a bigger machine).
inline void procs_args(benchmark::internal::Benchmark* b) {
  const char* env = std::getenv("RTLAB_BENCH_PROCS");
  std::string list = env != nullptr && *env != 0 ? env : "1,2";
  size_t pos = 0;
  while (pos < list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    int procs = std::atoi(list.substr(pos, comma - pos).c_str());
    if (procs > 0) b->Arg(procs);
    pos = comma + 1;
  }
}

using Clock = std::chrono::steady_clock;

// Sets items processed and the ns_per_op counter (wall-clock ns per unit
// of work over the whole timing loop); extra, if given, names a second
// counter with the same value. Also records the GOMAXPROCS it ran at.
inline void report(benchmark::State& state, Clock::time_point t0, int64_t ops_per_iter,
                   const char* extra = nullptr) {
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  const int64_t ops = state.iterations() * ops_per_iter;
  state.SetItemsProcessed(ops);
  const double per_op = ops > 0 ? ns / static_cast<double>(ops) : 0;
  state.counters["ns_per_op"] = benchmark::Counter(per_op);
  if (extra != nullptr) state.counters[extra] = benchmark::Counter(per_op);
  state.counters["gomaxprocs"] = benchmark::Counter(rt::gomaxprocs(0));
}

// main() of every benchmark program: the runtime starts once and the
// benchmarks run inside the main goroutine.
inline int run_benchmarks(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  return rt::run(argc, argv, [] {
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  });
}

}  // namespace rtlab::bench

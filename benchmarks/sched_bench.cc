// Scheduler micro-benchmarks (Google Benchmark), run inside the main
// goroutine. Twin of benchmarks/go/sched_bench_test.go: keep the two doing
// the same work so that scripts/bench can compare them side by side.
//
// Every benchmark takes GOMAXPROCS as its argument (1 and 2, or the
// comma-separated list in RTLAB_BENCH_PROCS, e.g. "1,2,4,8,16" on a bigger
// machine to see scaling), uses real time
// (the goroutines run on other threads, so the main thread's CPU time means
// nothing) and reports, besides items_per_second, a counter "ns_per_op":
// wall-clock nanoseconds per unit of work (per spawn, per goroutine, per
// gosched, per hand-off), measured around the timing loop.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "benchmarks/bench_util.h"
#include "rt/rt.h"

namespace {

constexpr int64_t kSpawnMany = 1'000'000;  // goroutines per BM_Spawn1MWait iteration
constexpr int64_t kYields = 1'000;         // gosched calls per goroutine per BM_GoschedPingPong iteration

using rtlab::bench::Clock;
using rtlab::bench::report;

using rtlab::bench::procs_args;


// (a) Spawn one goroutine and wait for it to exit.
void BM_SpawnExit(benchmark::State& state) {
  rt::gomaxprocs(static_cast<int>(state.range(0)));
  rt::WaitGroup wg;
  const auto t0 = Clock::now();
  for (auto _ : state) {
    wg.add(1);
    rt::go([&wg] { wg.done(); });
    wg.wait();
  }
  report(state, t0, 1);
}
BENCHMARK(BM_SpawnExit)->Apply(procs_args)->UseRealTime();

// (b) Spawn a million goroutines that each call wg.done(), then wait.
// ns_per_goroutine = wall time / (iterations * 1e6).
void BM_Spawn1MWait(benchmark::State& state) {
  rt::gomaxprocs(static_cast<int>(state.range(0)));
  const auto t0 = Clock::now();
  for (auto _ : state) {
    rt::WaitGroup wg;
    wg.add(static_cast<int>(kSpawnMany));
    for (int64_t i = 0; i < kSpawnMany; i++) rt::go([&wg] { wg.done(); });
    wg.wait();
  }
  report(state, t0, kSpawnMany, "ns_per_goroutine");
}
BENCHMARK(BM_Spawn1MWait)->Apply(procs_args)->Iterations(3)->UseRealTime();

// (c) Two goroutines each call gosched kYields times; items = total yields.
void BM_GoschedPingPong(benchmark::State& state) {
  rt::gomaxprocs(static_cast<int>(state.range(0)));
  rt::WaitGroup wg;
  auto yielder = [&wg] {
    for (int64_t i = 0; i < kYields; i++) rt::gosched();
    wg.done();
  };
  const auto t0 = Clock::now();
  for (auto _ : state) {
    wg.add(2);
    rt::go(yielder);
    rt::go(yielder);
    wg.wait();
  }
  report(state, t0, 2 * kYields);
}
BENCHMARK(BM_GoschedPingPong)->Apply(procs_args)->UseRealTime();

// (d) Park/ready hand-off through two semaphores. One iteration is a round
// trip = 2 hand-offs; ns_per_op is per hand-off.
void BM_SemaHandoff(benchmark::State& state) {
  rt::gomaxprocs(static_cast<int>(state.range(0)));
  std::atomic<uint32_t> a{0}, b{0};
  rt::WaitGroup wg;
  const int64_t rounds = static_cast<int64_t>(state.max_iterations);
  wg.add(1);
  rt::go([&, rounds] {
    for (int64_t i = 0; i < rounds; i++) {
      rt::semacquire(&a);
      rt::semrelease(&b);
    }
    wg.done();
  });
  const auto t0 = Clock::now();
  for (auto _ : state) {
    rt::semrelease(&a);
    rt::semacquire(&b);
  }
  report(state, t0, 2);
  wg.wait();
}
BENCHMARK(BM_SemaHandoff)->Apply(procs_args)->UseRealTime();

}  // namespace

int main(int argc, char** argv) { return rtlab::bench::run_benchmarks(argc, argv); }

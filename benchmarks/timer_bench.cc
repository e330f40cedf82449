// Timer micro-benchmarks (Google Benchmark), run inside the main goroutine.
// Twin of benchmarks/go/timerbench/timer_bench_test.go (run it with
// `cd benchmarks/go && go test -bench . -cpu 1,2 ./timerbench`).
//
// Each benchmark takes GOMAXPROCS as its argument (1 and 2, or
// RTLAB_BENCH_PROCS), uses real time and reports ns_per_op: wall-clock
// nanoseconds per operation measured around the timing loop.
//   BM_AfterFuncStop      rt::after_func(1h, f) + stop(): create and cancel
//   BM_TimerReset         reset() of a pending timer (re-sift in place)
//   BM_RuntimeTimerAddDel internal addtimer + deltimer (what channel timers use)
//   BM_Sleep0             rt::sleep(0): returns at once
//   BM_Sleep1us           rt::sleep(1us): park, timer fires, goready, run
//   BM_Sleep1usParallel   8 goroutines each sleeping 1us in a loop; per sleep
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "benchmarks/bench_util.h"
#include "rt/rt.h"
#include "runtime/time/timer.h"

namespace {

using rtlab::bench::procs_args;

using rtlab::bench::Clock;
using rtlab::bench::report;



void BM_AfterFuncStop(benchmark::State& state) {
  rt::gomaxprocs(static_cast<int>(state.range(0)));
  const auto t0 = Clock::now();
  for (auto _ : state) {
    rt::Timer t = rt::after_func(std::chrono::hours(1), [] {});
    if (!t.stop()) state.SkipWithError("stop failed");
  }
  report(state, t0, 1);
}
BENCHMARK(BM_AfterFuncStop)->Apply(procs_args)->UseRealTime();

void BM_TimerReset(benchmark::State& state) {
  rt::gomaxprocs(static_cast<int>(state.range(0)));
  rt::Timer t = rt::after_func(std::chrono::hours(1), [] {});
  int64_t d = 3600LL * 1000 * 1000 * 1000;
  const auto t0 = Clock::now();
  for (auto _ : state) {
    if (!t.reset(d)) state.SkipWithError("reset found the timer idle");
    d ^= 1;  // alternate the deadline
  }
  report(state, t0, 1);
  t.stop();
}
BENCHMARK(BM_TimerReset)->Apply(procs_args)->UseRealTime();

void BM_RuntimeTimerAddDel(benchmark::State& state) {
  rt::gomaxprocs(static_cast<int>(state.range(0)));
  rt::internal::RuntimeTimer t;
  t.f = [](void*, uintptr_t) {};
  const auto t0 = Clock::now();
  for (auto _ : state) {
    t.when = rt::internal::when_after(3600LL * 1000 * 1000 * 1000);
    rt::internal::addtimer(&t);
    if (!rt::internal::deltimer(&t)) state.SkipWithError("deltimer failed");
  }
  report(state, t0, 1);
}
BENCHMARK(BM_RuntimeTimerAddDel)->Apply(procs_args)->UseRealTime();

void BM_Sleep0(benchmark::State& state) {
  rt::gomaxprocs(static_cast<int>(state.range(0)));
  const auto t0 = Clock::now();
  for (auto _ : state) rt::sleep(0);
  report(state, t0, 1);
}
BENCHMARK(BM_Sleep0)->Apply(procs_args)->UseRealTime();

void BM_Sleep1us(benchmark::State& state) {
  rt::gomaxprocs(static_cast<int>(state.range(0)));
  const auto t0 = Clock::now();
  for (auto _ : state) rt::sleep(1000);
  report(state, t0, 1);
}
BENCHMARK(BM_Sleep1us)->Apply(procs_args)->UseRealTime();

void BM_Sleep1usParallel(benchmark::State& state) {
  rt::gomaxprocs(static_cast<int>(state.range(0)));
  constexpr int kG = 8;
  constexpr int kSleeps = 1000;
  const auto t0 = Clock::now();
  for (auto _ : state) {
    rt::WaitGroup wg;
    wg.add(kG);
    for (int g = 0; g < kG; g++) {
      rt::go([&wg] {
        for (int i = 0; i < kSleeps; i++) rt::sleep(1000);
        wg.done();
      });
    }
    wg.wait();
  }
  report(state, t0, kG * kSleeps);
}
BENCHMARK(BM_Sleep1usParallel)->Apply(procs_args)->UseRealTime();

}  // namespace

int main(int argc, char** argv) { return rtlab::bench::run_benchmarks(argc, argv); }

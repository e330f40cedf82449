// Channel and select micro-benchmarks (Google Benchmark), run inside the
// main goroutine; one binary per variant (chan_bench__<variant>).
//
// Each benchmark takes GOMAXPROCS as its argument (1 and 2, or the list in
// RTLAB_BENCH_PROCS) and reports ns_per_op, wall-clock nanoseconds per
// channel operation measured around the timing loop.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "benchmarks/bench_util.h"
#include "rt/rt.h"

namespace {

using rtlab::bench::Clock;
using rtlab::bench::report;

using rtlab::bench::procs_args;


// Uncontended: one goroutine sends into and receives from a buffered channel.
void BM_ChanBufferedUncontended(benchmark::State& state) {
  rt::gomaxprocs(int(state.range(0)));
  auto c = rt::make_chan<int>(1);
  auto t0 = Clock::now();
  for (auto _ : state) {
    c.send(1);
    benchmark::DoNotOptimize(c.recv());
  }
  report(state, t0, 2);
}
BENCHMARK(BM_ChanBufferedUncontended)->Apply(procs_args)->UseRealTime();

// Synchronous hand-off: a partner receives every value from an unbuffered
// channel (one op = one send/receive pair).
void BM_ChanSync(benchmark::State& state) {
  rt::gomaxprocs(int(state.range(0)));
  auto c = rt::make_chan<int>(0);
  rt::WaitGroup wg;
  wg.add(1);
  rt::go([c, &wg] {
    for (;;) {
      auto [v, ok] = c.recv2();
      if (!ok) break;
      benchmark::DoNotOptimize(v);
    }
    wg.done();
  });
  auto t0 = Clock::now();
  for (auto _ : state) c.send(1);
  report(state, t0, 1);
  c.close();
  wg.wait();
}
BENCHMARK(BM_ChanSync)->Apply(procs_args)->UseRealTime();

// Contended: four producers and four consumers share one buffered channel.
void BM_ChanBufferedContended(benchmark::State& state) {
  rt::gomaxprocs(int(state.range(0)));
  constexpr int kPairs = 4;
  constexpr int kPerIter = 1000;
  auto t0 = Clock::now();
  for (auto _ : state) {
    auto c = rt::make_chan<int>(64);
    rt::WaitGroup wg;
    wg.add(2 * kPairs);
    for (int i = 0; i < kPairs; i++) {
      rt::go([c, &wg] {
        for (int k = 0; k < kPerIter; k++) c.send(k);
        wg.done();
      });
      rt::go([c, &wg] {
        for (int k = 0; k < kPerIter; k++) benchmark::DoNotOptimize(c.recv());
        wg.done();
      });
    }
    wg.wait();
  }
  report(state, t0, int64_t(kPairs) * kPerIter);
}
BENCHMARK(BM_ChanBufferedContended)->Apply(procs_args)->UseRealTime();

// select over 2 or 8 ready buffered channels (one op = one select).
template <int N>
void BM_Select(benchmark::State& state) {
  rt::gomaxprocs(int(state.range(0)));
  rt::Chan<int> cs[8];
  for (auto& c : cs) c = rt::make_chan<int>(1);
  auto t0 = Clock::now();
  for (auto _ : state) {
    for (int i = 0; i < N; i++) cs[i].try_send(i);
    if constexpr (N == 2) {
      rt::select(rt::recv_case(cs[0]), rt::recv_case(cs[1]));
    } else {
      rt::select(rt::recv_case(cs[0]), rt::recv_case(cs[1]), rt::recv_case(cs[2]), rt::recv_case(cs[3]),
                 rt::recv_case(cs[4]), rt::recv_case(cs[5]), rt::recv_case(cs[6]), rt::recv_case(cs[7]));
    }
  }
  report(state, t0, 1);
}
BENCHMARK(BM_Select<2>)->Apply(procs_args)->UseRealTime();
BENCHMARK(BM_Select<8>)->Apply(procs_args)->UseRealTime();

}  // namespace

int main(int argc, char** argv) { return rtlab::bench::run_benchmarks(argc, argv); }

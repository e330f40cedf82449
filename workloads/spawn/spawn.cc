// Workload "spawn": goroutine spawn + wait. Each round the main goroutine
// starts `goroutines` goroutines that each note when they first ran and call
// wg.done(); then it waits. Reports wall-clock ns per goroutine (spawn to
// all done), ns per spawn call (the spawning loop alone), and a histogram
// of spawn-to-run latency (the time from just before rt::go to the
// goroutine's first instruction). GOMAXPROCS comes from the environment.
// Twin: go/main.go.
#include <cstdint>
#include <vector>

#include "harness/histogram.h"
#include "harness/timer.h"
#include "harness/workload.h"
#include "rt/rt.h"

int main(int argc, char** argv) {
  harness::Workload w("spawn", argc, argv);
  const int64_t n = w.param_int("goroutines", 100000);
  const int64_t rounds = w.param_int("rounds", 5);
  w.check_params();
  return rt::run(argc, argv, [&] {
    std::vector<int64_t> ran(static_cast<size_t>(n));
    harness::Histogram lat(1, 60LL * 1000000000, 3);
    int64_t spawn_ns = 0;
    w.begin();
    for (int64_t r = 0; r < rounds; r++) {
      rt::WaitGroup wg;
      wg.add(int(n));
      int64_t* slots = ran.data();
      const int64_t t0 = harness::now_ns();
      for (int64_t i = 0; i < n; i++) {
        int64_t t = harness::now_ns();
        rt::go([&wg, slots, i, t] {
          slots[i] = harness::now_ns() - t;
          wg.done();
        });
      }
      spawn_ns += harness::now_ns() - t0;
      wg.wait();
      for (int64_t i = 0; i < n; i++) lat.record(ran[size_t(i)]);
    }
    w.end(uint64_t(n * rounds));
    const double ops = double(n * rounds);
    // wall_ns includes recording the histogram between rounds (small; the
    // Go twin does the same).
    w.metric("ns_per_goroutine", double(w.wall_ns()) / ops);
    w.metric("spawn_ns_per_goroutine", double(spawn_ns) / ops);
    w.histogram("spawn_to_run_ns", lat);
    return w.emit();
  });
}

// Workload "park": `goroutines` goroutines blocked on one channel at once,
// then all released. Each goroutine receives one value from an unbuffered
// channel; once all of them are waiting, the main goroutine sends
// 0..goroutines-1, each send handing its value straight to a parked
// receiver, and waits for them to exit. Every value must arrive exactly
// once: a lost, duplicated or invented value ends the program with status
// 1 and a message (this is what park_million_test checks at a million).
//
// Metrics: rss_bytes_per_goroutine, the growth of the resident set from
// before the spawn to all goroutines waiting, divided by their number (what
// a parked goroutine costs: its stack pages and G); park_ns_per_goroutine
// (spawn until all wait) and release_ns_per_goroutine (sends until all
// exited); ns_per_goroutine is both. Twin: go/main.go.
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>

#include "harness/timer.h"
#include "harness/workload.h"
#include "rt/rt.h"

namespace {

// Resident set size of this process, from /proc/self/statm (pages).
int64_t rss_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long long size = 0, resident = 0;
  int n = fscanf(f, "%lld %lld", &size, &resident);
  fclose(f);
  return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  harness::Workload w("park", argc, argv);
  const int64_t n = w.param_int("goroutines", 1000000);
  w.check_params();
  if (n <= 0 || n > INT32_MAX) {
    fprintf(stderr, "park: goroutines must be in [1, %d]\n", INT32_MAX);
    return 2;
  }
  return rt::run(argc, argv, [&] {
    auto seen = std::make_unique<std::atomic<uint8_t>[]>(size_t(n));
    std::atomic<int64_t> invented{0};
    rt::Chan<int64_t> values = rt::make_chan<int64_t>(0);
    rt::WaitGroup waiting, exited;
    waiting.add(int(n));
    exited.add(int(n));
    const int64_t rss0 = rss_bytes();
    w.begin();
    const int64_t t0 = harness::now_ns();
    for (int64_t i = 0; i < n; i++) {
      rt::go([&] {
        waiting.done();
        int64_t v = values.recv();
        if (v < 0 || v >= n) {
          invented++;
        } else {
          seen[size_t(v)].fetch_add(1, std::memory_order_relaxed);
        }
        exited.done();
      });
    }
    waiting.wait();
    const int64_t t1 = harness::now_ns();
    const int64_t rss1 = rss_bytes();
    for (int64_t v = 0; v < n; v++) values.send(v);
    exited.wait();
    const int64_t t2 = harness::now_ns();
    w.end(uint64_t(n));
    int64_t lost = 0, duplicated = 0;
    for (int64_t v = 0; v < n; v++) {
      uint8_t k = seen[size_t(v)].load(std::memory_order_relaxed);
      lost += k == 0;
      duplicated += k > 1;
    }
    if (lost != 0 || duplicated != 0 || invented.load() != 0) {
      fprintf(stderr, "park: of %lld values %lld were lost, %lld delivered more than once, %lld invented\n",
              static_cast<long long>(n), static_cast<long long>(lost), static_cast<long long>(duplicated),
              static_cast<long long>(invented.load()));
      return 1;
    }
    w.metric("ns_per_goroutine", double(t2 - t0) / double(n));
    w.metric("park_ns_per_goroutine", double(t1 - t0) / double(n));
    w.metric("release_ns_per_goroutine", double(t2 - t1) / double(n));
    w.metric("rss_bytes_per_goroutine", double(rss1 - rss0) / double(n));
    return w.emit();
  });
}

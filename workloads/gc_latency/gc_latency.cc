// Workload "gc_latency": the shape of golang/benchmarks' gc_latency. Twin:
// go/main.go (same work, same checks, same record).
//
// A circular buffer of `slots` slots (a GC slice held by the main
// goroutine), each holding a freshly made noscan slice of `size` bytes
// filled with the push's number; `pushes` pushes in all, each replacing the
// oldest slice, so the live heap stays at slots x size while the collector
// frees what the buffer dropped. Every push (make + fill + store, the
// store through the write barrier) is timed: the histogram alloc_latency_ns
// (p50 ... p99.99, max) is what a request would see, assists and pauses
// included; the worst stop-the-world pause is in the record's runtime.gc.
// Afterwards the last `slots` pushes must all be in the buffer, intact
// (exit 1 otherwise).
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "harness/histogram.h"
#include "harness/timer.h"
#include "harness/workload.h"
#include "rt/rt.h"

int main(int argc, char** argv) {
  harness::Workload w("gc_latency", argc, argv);
  const int64_t slots = w.param_int("slots", 200000);
  const int64_t size = w.param_int("size", 1024);
  const int64_t pushes = w.param_int("pushes", 2000000);
  w.check_params();
  if (slots < 1 || size < 1 || pushes < slots) {
    fprintf(stderr, "gc_latency: want slots >= 1, size >= 1 and pushes >= slots\n");
    return 2;
  }
  return rt::run(argc, argv, [&] {
    rt::Slice<rt::Slice<uint8_t>> buf = rt::make_slice<rt::Slice<uint8_t>>(size_t(slots));
    harness::Histogram lat(1, 60LL * 1000000000, 3);
    harness::HeapPeak peak(1000000);
    w.begin();
    for (int64_t i = 0; i < pushes; i++) {
      const int64_t t0 = harness::now_ns();
      rt::Slice<uint8_t> b = rt::make_slice<uint8_t>(size_t(size));
      memset(b.data(), int(uint8_t(i)), size_t(size));
      buf[size_t(i % slots)] = b;
      lat.record(harness::now_ns() - t0);
    }
    w.end(uint64_t(pushes));
    const uint64_t heap_peak = peak.stop();
    for (int64_t k = 0; k < slots; k++) {
      const int64_t i = pushes - slots + k;
      const rt::Slice<uint8_t>& b = buf[size_t(i % slots)];
      if (int64_t(b.len()) != size || b[0] != uint8_t(i) || b[size_t(size - 1)] != uint8_t(i)) {
        fprintf(stderr, "gc_latency: slot %lld does not hold push %lld\n", (long long)(i % slots), (long long)i);
        return 1;
      }
    }
    w.histogram("alloc_latency_ns", lat);
    w.metric("alloc_latency_max_ns", double(lat.percentile(100)));
    w.metric("alloc_latency_p9999_ns", double(lat.percentile(99.99)));
    w.metric("ns_per_push", double(w.wall_ns()) / double(pushes));
    w.metric("heap_peak_bytes", double(heap_peak));
    return w.emit();
  });
}

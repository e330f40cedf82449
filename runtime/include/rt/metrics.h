// Runtime histograms for measurement tools (the rtlab harness): snapshots
// of the stop-the-world pause and scheduling-latency histograms that
// runtime/obs keeps. Counters are in rt::read_sched_stats() (rt/rt.h).
#pragma once

#include <cstdint>
#include <vector>

namespace rt::metrics {

// A copy of one runtime histogram. Buckets are log-linear (8 linear
// sub-buckets per power of two, values known within 12.5%); only non-empty
// buckets are listed, as [lo, hi] value ranges in nanoseconds.
struct HistogramSnapshot {
  struct Bucket {
    int64_t lo, hi;
    uint64_t count;
  };
  std::vector<Bucket> buckets;
  uint64_t count = 0;
  uint64_t sum = 0;
  int64_t max = 0;  // largest value ever recorded (not reduced by since())

  // The recordings made after `earlier` (a previous snapshot of the same
  // histogram): bucket counts, count and sum are subtracted.
  HistogramSnapshot since(const HistogramSnapshot& earlier) const;
};

// Every stop-the-world pause (request to restart).
HistogramSnapshot stw_pauses();

// The stopping part of every stop-the-world pause: from the request until
// the last P reached a safe point (Go 1.22's /sched/pauses/stopping). One
// recording per pause, each at most that pause.
HistogramSnapshot stw_stopping();

// Every asynchronous preemption (preempt=signal), from the signal being
// sent to the goroutine running again (with the time it waited behind
// other runnable goroutines). Empty under coop.
HistogramSnapshot async_preempts();

// Time from runnable to running; empty unless sched_latency_enabled().
HistogramSnapshot sched_latency();
bool sched_latency_enabled();
// Same switch as GODEBUG=schedlatency=1.
void set_sched_latency_enabled(bool on);

}  // namespace rt::metrics

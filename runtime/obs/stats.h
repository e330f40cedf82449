// Runtime observability: counters and histograms the scheduler keeps about
// itself (scheduling latency, stop-the-world pauses) and the GODEBUG keys
// that switch the optional ones on.
//
// Histograms are log-linear: each power of two is split into 8 linear
// sub-buckets, so any recorded value is known within 12.5%. Buckets are
// relaxed atomics: recording is wait-free and never allocates.
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/sched/runtime2.h"

namespace rt::obs {

class Histogram {
 public:
  static constexpr int kSubBits = 3;
  static constexpr int kBuckets = (64 - kSubBits + 1) << kSubBits;

  void record(int64_t v);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  int64_t max() const { return max_.load(std::memory_order_relaxed); }
  uint64_t sum() const { return sum_.load(std::memory_order_relaxed); }
  // Value at quantile q in [0, 1] (upper bound of its bucket), 0 if empty.
  int64_t quantile(double q) const;
  static int bucket_of(int64_t v);
  static int64_t bucket_upper(int b);
  uint64_t bucket_count(int b) const { return buckets_[b].load(std::memory_order_relaxed); }
  void reset();

 private:
  std::atomic<uint64_t> buckets_[kBuckets]{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
  std::atomic<int64_t> max_{0};
};

// Scheduling latency: time from a goroutine becoming runnable to it
// running. Off by default (it costs a clock read per wake-up); GODEBUG
// schedlatency=1 turns it on.
bool sched_latency_enabled();
void set_sched_latency_enabled(bool on);
void record_sched_latency(int64_t ns);
const Histogram& sched_latency();

// Every stop-the-world pause, from the request to the restart; and the
// part of it spent stopping, from the request until the last P stopped
// (Go 1.22's /sched/pauses/stopping): the time to reach safe points, which
// is what the preemption policy decides, apart from the work done while
// stopped.
void stw_begin();
void stw_stopped();
void stw_end();
const Histogram& stw_pauses();
const Histogram& stw_stopping();

// Every asynchronous preemption (signal variant), from the SIGURG being
// sent to the goroutine running again: signal delivery, the handler, the
// trampoline, the scheduler, and the wait in the run queue if other
// goroutines were runnable.
void record_async_preempt(int64_t ns);
const Histogram& async_preempts();

void add_pstats(internal::PStats* total, const internal::PStats& p);

}  // namespace rt::obs

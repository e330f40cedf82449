#include "runtime/obs/stats.h"

namespace rt::obs {

int Histogram::bucket_of(int64_t v) {
  if (v < (int64_t(1) << kSubBits)) return v < 0 ? 0 : int(v);
  int msb = 63 - __builtin_clzll(uint64_t(v));
  int shift = msb - kSubBits;
  int sub = int((uint64_t(v) >> shift) & ((1u << kSubBits) - 1));
  return ((shift + 1) << kSubBits) + sub;
}

int64_t Histogram::bucket_upper(int b) {
  if (b < (1 << kSubBits)) return b;
  int shift = (b >> kSubBits) - 1;
  int sub = b & ((1 << kSubBits) - 1);
  uint64_t base = (uint64_t(1) << kSubBits | uint64_t(sub)) << shift;
  return int64_t(base + (uint64_t(1) << shift) - 1);
}

void Histogram::record(int64_t v) {
  if (v < 0) v = 0;
  buckets_[bucket_of(v)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(uint64_t(v), std::memory_order_relaxed);
  int64_t m = max_.load(std::memory_order_relaxed);
  while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
  }
}

int64_t Histogram::quantile(double q) const {
  uint64_t n = count();
  if (n == 0) return 0;
  uint64_t rank = uint64_t(q * double(n - 1)) + 1;
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; b++) {
    seen += bucket_count(b);
    if (seen >= rank) {
      int64_t up = bucket_upper(b);
      return up < max() ? up : max();
    }
  }
  return max();
}

void Histogram::reset() {
  for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
  count_.store(0);
  sum_.store(0);
  max_.store(0);
}

namespace {
std::atomic<bool> latency_on{false};
Histogram latency_hist;
Histogram stw_hist;
Histogram stw_stopping_hist;
Histogram async_preempt_hist;
int64_t stw_start = 0;  // written only by the M that stopped the world
}  // namespace

bool sched_latency_enabled() { return latency_on.load(std::memory_order_relaxed); }
void set_sched_latency_enabled(bool on) { latency_on.store(on); }
void record_sched_latency(int64_t ns) { latency_hist.record(ns); }
const Histogram& sched_latency() { return latency_hist; }

void stw_begin() { stw_start = internal::nanotime(); }
void stw_stopped() { stw_stopping_hist.record(internal::nanotime() - stw_start); }
void stw_end() { stw_hist.record(internal::nanotime() - stw_start); }
const Histogram& stw_pauses() { return stw_hist; }
const Histogram& stw_stopping() { return stw_stopping_hist; }

void record_async_preempt(int64_t ns) { async_preempt_hist.record(ns); }
const Histogram& async_preempts() { return async_preempt_hist; }

void add_pstats(internal::PStats* t, const internal::PStats& p) {
  t->ctxswitches += p.ctxswitches;
  t->goroutines_created += p.goroutines_created;
  t->goroutines_exited += p.goroutines_exited;
  t->steal_attempts += p.steal_attempts;
  t->stolen += p.stolen;
  t->parks += p.parks;
  t->readies += p.readies;
  t->preemptions += p.preemptions;
}

}  // namespace rt::obs

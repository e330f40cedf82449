// rt/metrics.h: snapshots of the runtime/obs histograms.
#include "rt/metrics.h"

#include <map>

#include "runtime/obs/stats.h"

namespace rt::metrics {

namespace {
HistogramSnapshot snapshot(const obs::Histogram& h) {
  HistogramSnapshot s;
  for (int b = 0; b < obs::Histogram::kBuckets; b++) {
    uint64_t n = h.bucket_count(b);
    if (n == 0) continue;
    int64_t lo = b == 0 ? 0 : obs::Histogram::bucket_upper(b - 1) + 1;
    s.buckets.push_back({lo, obs::Histogram::bucket_upper(b), n});
  }
  s.count = h.count();
  s.sum = h.sum();
  s.max = h.max();
  return s;
}
}  // namespace

HistogramSnapshot HistogramSnapshot::since(const HistogramSnapshot& earlier) const {
  std::map<int64_t, uint64_t> old;
  for (const auto& b : earlier.buckets) old[b.lo] = b.count;
  HistogramSnapshot d;
  for (const auto& b : buckets) {
    auto it = old.find(b.lo);
    uint64_t prev = it == old.end() ? 0 : it->second;
    if (b.count > prev) d.buckets.push_back({b.lo, b.hi, b.count - prev});
  }
  d.count = count - earlier.count;
  d.sum = sum - earlier.sum;
  d.max = max;
  return d;
}

HistogramSnapshot stw_pauses() { return snapshot(obs::stw_pauses()); }
HistogramSnapshot stw_stopping() { return snapshot(obs::stw_stopping()); }
HistogramSnapshot sched_latency() { return snapshot(obs::sched_latency()); }
HistogramSnapshot async_preempts() { return snapshot(obs::async_preempts()); }
bool sched_latency_enabled() { return obs::sched_latency_enabled(); }
void set_sched_latency_enabled(bool on) { obs::set_sched_latency_enabled(on); }

}  // namespace rt::metrics

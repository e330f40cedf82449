// HDR-style latency histogram (the HdrHistogram bucket layout): values in
// [lowest, highest] are kept with `sigfigs` significant decimal digits
// (relative error <= 10^-sigfigs). Memory is
// O(log2(highest/lowest) * 10^sigfigs) counters, allocated once; recording
// is a few shifts and one increment (not thread-safe: record per thread or
// per goroutine and merge). Values above `highest` are clamped to it and
// counted in saturated(); negative values are recorded as 0.
#pragma once

#include <cstdint>
#include <vector>

#include "harness/json.h"

namespace harness {

class Histogram {
 public:
  // Defaults: 1 ns .. 1 hour, 3 significant digits (~0.1%).
  explicit Histogram(int64_t lowest = 1, int64_t highest = 3600LL * 1000000000LL, int sigfigs = 3);

  void record(int64_t value, uint64_t n = 1);
  // Adds every count of `other` (any configuration; values are re-binned
  // at the lowest value of their bucket when configurations differ).
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return total_; }
  uint64_t saturated() const { return saturated_; }
  int64_t min() const { return total_ ? min_ : 0; }
  int64_t max() const { return total_ ? max_ : 0; }
  double mean() const;
  // Value at percentile p in [0, 100]: the highest value equivalent to the
  // bucket holding that rank (as HdrHistogram does), capped at max(). 0 if empty.
  int64_t percentile(double p) const;

  int64_t lowest() const { return lowest_; }
  int64_t highest() const { return highest_; }
  int sigfigs() const { return sigfigs_; }

  // Bucket boundaries of a value: the smallest and largest value recorded
  // into the same counter.
  int64_t lowest_equivalent(int64_t v) const;
  int64_t highest_equivalent(int64_t v) const;

  struct Bucket {
    int64_t lo, hi;
    uint64_t count;
  };
  // Non-empty buckets in increasing order.
  std::vector<Bucket> buckets() const;

  // {"lowest","highest","sigfigs","count","saturated","min","max","mean",
  //  "p50","p90","p99","p999","buckets":[[lo,hi,count],...]} (see README).
  Json to_json() const;

 private:
  int counts_index(int64_t v) const;
  int64_t value_from_index(int index) const;
  int64_t size_of_range(int64_t v) const;
  int bucket_index(int64_t v) const;

  int64_t lowest_, highest_;
  int sigfigs_;
  int unit_magnitude_;
  int sub_bucket_half_count_magnitude_;
  int sub_bucket_count_;
  int sub_bucket_half_count_;
  int64_t sub_bucket_mask_;
  int bucket_count_;
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t saturated_ = 0;
  int64_t min_ = INT64_MAX;
  int64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace harness

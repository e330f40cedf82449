#include "harness/histogram.h"

#include <cmath>
#include <stdexcept>

namespace harness {

Histogram::Histogram(int64_t lowest, int64_t highest, int sigfigs)
    : lowest_(lowest), highest_(highest), sigfigs_(sigfigs) {
  if (lowest < 1 || highest < 2 * lowest || sigfigs < 1 || sigfigs > 5)
    throw std::invalid_argument("Histogram: need 1 <= lowest, 2*lowest <= highest, 1 <= sigfigs <= 5");
  int64_t largest_single_unit = 2;
  for (int i = 0; i < sigfigs; i++) largest_single_unit *= 10;
  int sub_bucket_count_magnitude = int(std::ceil(std::log2(double(largest_single_unit))));
  sub_bucket_half_count_magnitude_ = (sub_bucket_count_magnitude > 1 ? sub_bucket_count_magnitude : 1) - 1;
  unit_magnitude_ = int(std::floor(std::log2(double(lowest))));
  sub_bucket_count_ = 1 << (sub_bucket_half_count_magnitude_ + 1);
  sub_bucket_half_count_ = sub_bucket_count_ / 2;
  sub_bucket_mask_ = int64_t(sub_bucket_count_ - 1) << unit_magnitude_;
  int64_t smallest_untrackable = int64_t(sub_bucket_count_) << unit_magnitude_;
  int buckets = 1;
  while (smallest_untrackable <= highest) {
    if (smallest_untrackable > INT64_MAX / 2) {
      buckets++;
      break;
    }
    smallest_untrackable <<= 1;
    buckets++;
  }
  bucket_count_ = buckets;
  counts_.assign(size_t(bucket_count_ + 1) * size_t(sub_bucket_half_count_), 0);
}

int Histogram::bucket_index(int64_t v) const {
  int pow2ceiling = 64 - __builtin_clzll(uint64_t(v | sub_bucket_mask_));
  return pow2ceiling - unit_magnitude_ - (sub_bucket_half_count_magnitude_ + 1);
}

int Histogram::counts_index(int64_t v) const {
  int bi = bucket_index(v);
  int sbi = int(v >> (bi + unit_magnitude_));
  int base = (bi + 1) << sub_bucket_half_count_magnitude_;
  return base + (sbi - sub_bucket_half_count_);
}

int64_t Histogram::value_from_index(int index) const {
  int bi = (index >> sub_bucket_half_count_magnitude_) - 1;
  int sbi = (index & (sub_bucket_half_count_ - 1)) + sub_bucket_half_count_;
  if (bi < 0) {
    sbi -= sub_bucket_half_count_;
    bi = 0;
  }
  return int64_t(sbi) << (bi + unit_magnitude_);
}

int64_t Histogram::size_of_range(int64_t v) const {
  int bi = bucket_index(v);
  int sbi = int(v >> (bi + unit_magnitude_));
  int adjusted = sbi >= sub_bucket_count_ ? bi + 1 : bi;
  return int64_t(1) << (unit_magnitude_ + adjusted);
}

int64_t Histogram::lowest_equivalent(int64_t v) const {
  int bi = bucket_index(v);
  int sbi = int(v >> (bi + unit_magnitude_));
  return int64_t(sbi) << (bi + unit_magnitude_);
}

int64_t Histogram::highest_equivalent(int64_t v) const { return lowest_equivalent(v) + size_of_range(v) - 1; }

void Histogram::record(int64_t v, uint64_t n) {
  if (n == 0) return;
  if (v < 0) v = 0;
  if (v > highest_) {
    v = highest_;
    saturated_ += n;
  }
  counts_[size_t(counts_index(v))] += n;
  total_ += n;
  sum_ += (long double)v * n;
  if (v < min_) min_ = v;
  if (v > max_) max_ = v;
}

void Histogram::merge(const Histogram& o) {
  if (o.total_ == 0) return;
  bool same = o.lowest_ == lowest_ && o.highest_ == highest_ && o.sigfigs_ == sigfigs_;
  if (same) {
    for (size_t i = 0; i < counts_.size(); i++) counts_[i] += o.counts_[i];
    total_ += o.total_;
    sum_ += o.sum_;
    saturated_ += o.saturated_;
    if (o.min_ < min_) min_ = o.min_;
    if (o.max_ > max_) max_ = o.max_;
    return;
  }
  for (size_t i = 0; i < o.counts_.size(); i++)
    if (o.counts_[i]) record(o.value_from_index(int(i)), o.counts_[i]);
}

void Histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = saturated_ = 0;
  min_ = INT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double Histogram::mean() const { return total_ ? double(sum_ / total_) : 0.0; }

int64_t Histogram::percentile(double p) const {
  if (total_ == 0) return 0;
  if (p <= 0) return min_;
  if (p > 100) p = 100;
  uint64_t want = uint64_t(std::llround(p / 100.0 * double(total_)));
  if (want < 1) want = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); i++) {
    seen += counts_[i];
    if (seen >= want) {
      int64_t v = highest_equivalent(value_from_index(int(i)));
      return v < max_ ? v : max_;
    }
  }
  return max_;
}

std::vector<Histogram::Bucket> Histogram::buckets() const {
  std::vector<Bucket> out;
  for (size_t i = 0; i < counts_.size(); i++) {
    if (!counts_[i]) continue;
    int64_t lo = value_from_index(int(i));
    out.push_back({lo, highest_equivalent(lo), counts_[i]});
  }
  return out;
}

Json Histogram::to_json() const {
  Json j = Json::object();
  j.set("layout", "hdr");
  j.set("lowest", lowest_);
  j.set("highest", highest_);
  j.set("sigfigs", sigfigs_);
  j.set("count", total_);
  j.set("saturated", saturated_);
  j.set("min", min());
  j.set("max", max());
  j.set("mean", mean());
  j.set("p50", percentile(50));
  j.set("p90", percentile(90));
  j.set("p99", percentile(99));
  j.set("p999", percentile(99.9));
  Json b = Json::array();
  for (const auto& x : buckets()) b.push(Json(Json::Array{Json(x.lo), Json(x.hi), Json(x.count)}));
  j.set("buckets", std::move(b));
  return j;
}

}  // namespace harness

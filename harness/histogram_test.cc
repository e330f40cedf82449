#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>

#include "harness/histogram.h"

namespace {

TEST(Histogram, UniformPercentilesWithinPrecision) {
  harness::Histogram h(1, 10'000'000, 3);
  for (int64_t v = 1; v <= 100000; v++) h.record(v);
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 100000);
  EXPECT_NEAR(h.mean(), 50000.5, 1e-6);
  for (double p : {1.0, 25.0, 50.0, 90.0, 99.0, 99.9}) {
    double want = p / 100.0 * 100000;
    EXPECT_NEAR(double(h.percentile(p)), want, want * 1e-3 + 1) << p;
  }
  EXPECT_EQ(h.percentile(100), 100000);
}

TEST(Histogram, PrecisionFollowsSigfigs) {
  for (int sig = 1; sig <= 4; sig++) {
    harness::Histogram h(1, int64_t(1) << 40, sig);
    double tol = std::pow(10.0, -sig);
    for (int64_t v : {int64_t(7), int64_t(1234), int64_t(987654), int64_t(123456789012)}) {
      int64_t lo = h.lowest_equivalent(v), hi = h.highest_equivalent(v);
      EXPECT_LE(lo, v);
      EXPECT_GE(hi, v);
      EXPECT_LE(double(hi - lo), double(v) * tol + 1) << "sig " << sig << " v " << v;
    }
  }
}

TEST(Histogram, LowestAboveOne) {
  harness::Histogram h(1000, 1'000'000'000, 2);
  h.record(5'000'000);
  EXPECT_NEAR(double(h.percentile(50)), 5e6, 5e6 * 0.01);
}

TEST(Histogram, MergeEqualsRecordingEverything) {
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> d(8, 1.5);
  harness::Histogram a, b, all;
  harness::Histogram other_cfg(1, 1'000'000'000, 2);
  for (int i = 0; i < 20000; i++) {
    int64_t v = int64_t(d(rng));
    (i % 2 ? a : b).record(v);
    all.record(v);
  }
  harness::Histogram m;
  m.merge(a);
  m.merge(b);
  EXPECT_EQ(m.count(), all.count());
  EXPECT_EQ(m.max(), all.max());
  EXPECT_EQ(m.min(), all.min());
  for (double p : {50.0, 99.0, 99.9}) EXPECT_EQ(m.percentile(p), all.percentile(p));
  other_cfg.merge(all);  // different layout: re-binned
  EXPECT_EQ(other_cfg.count(), all.count());
  EXPECT_NEAR(double(other_cfg.percentile(50)), double(all.percentile(50)), all.percentile(50) * 0.02 + 1);
}

TEST(Histogram, SaturatesAndClampsNegative) {
  harness::Histogram h(1, 1000, 2);
  h.record(-5);
  h.record(5000, 3);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.saturated(), 3u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 1000);
  EXPECT_THROW(harness::Histogram(0, 10, 3), std::invalid_argument);
  EXPECT_THROW(harness::Histogram(1, 100, 9), std::invalid_argument);
}

TEST(Histogram, JsonBucketsSumToCount) {
  harness::Histogram h;
  for (int i = 0; i < 1000; i++) h.record(i * 37);
  harness::Json j = h.to_json();
  uint64_t sum = 0;
  for (const auto& b : h.buckets()) {
    EXPECT_LE(b.lo, b.hi);
    sum += b.count;
  }
  EXPECT_EQ(sum, h.count());
  std::string s = j.dump();
  EXPECT_NE(s.find("\"layout\":\"hdr\""), std::string::npos);
  EXPECT_NE(s.find("\"buckets\":[[0,0,1]"), std::string::npos) << s.substr(0, 200);
}

}  // namespace

// rt::Map tests: Go's map semantics (zero value, comma-ok, overwrite,
// delete, len, the nil map's panic, +0/-0 and NaN keys), iteration
// (random start measured over many iterations; erase and insert during a
// range loop; every surviving entry exactly once across a doubling and a
// same-size growth), a differential test against std::unordered_map, the
// structural invariants (map_debug.h) through growth, the hash's spread,
// the collector (values reachable only from a map survive collections
// forced in the middle of growth, also for noscan maps whose overflow
// buckets only the overflow lists keep; the heap returns to its baseline
// once the map is dropped), and the concurrent-misuse fatal errors. Built
// and run once per variant.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "rt/map.h"
#include "rt/rt.h"
#include "runtime/gc/map_debug.h"
#include "runtime/testing/rt_test_util.h"

namespace {

using rt::Map;
using rt::Ref;
using rt::internal::map_check;
using rt::internal::map_shape;
using rt::testing::clobber_stack;
using rt::testing::in_frame;

// ---- Semantics ---------------------------------------------------------

TEST(Map, NilMapReadsAsEmptyAndPanicsOnAssignment) {
  Map<int64_t, int64_t> m;
  EXPECT_TRUE(m == nullptr);
  EXPECT_EQ(m.len(), 0u);
  EXPECT_EQ(m.get(1), 0);
  EXPECT_EQ(m.lookup(1), std::make_pair(int64_t(0), false));
  m.erase(1);
  m.clear();
  int n = 0;
  for (const auto& kv : m) {
    (void)kv;
    n++;
  }
  EXPECT_EQ(n, 0);
  try {
    m.set(1, 2);
    FAIL() << "no panic";
  } catch (const rt::Panic& p) {
    EXPECT_STREQ(p.what(), "assignment to entry in nil map");
  }
  EXPECT_EQ(map_check(m), "");
}

TEST(Map, GetSetEraseOverwriteLen) {
  auto m = rt::make_map<int64_t, int64_t>();
  EXPECT_FALSE(m == nullptr);
  EXPECT_EQ(m.len(), 0u);
  EXPECT_EQ(m.get(5), 0) << "zero value for an absent key";
  m.set(5, 50);
  m.set(6, 60);
  EXPECT_EQ(m.len(), 2u);
  EXPECT_EQ(m.get(5), 50);
  EXPECT_EQ(m.lookup(6), std::make_pair(int64_t(60), true));
  EXPECT_EQ(m.lookup(7), std::make_pair(int64_t(0), false));
  m.set(5, 55);
  EXPECT_EQ(m.len(), 2u) << "overwrite keeps the count";
  EXPECT_EQ(m.get(5), 55);
  m.set(0, 0);  // a zero value stored is present
  EXPECT_EQ(m.lookup(0), std::make_pair(int64_t(0), true));
  m.erase(5);
  m.erase(5);
  m.erase(12345);  // absent: nothing
  EXPECT_EQ(m.len(), 2u);
  EXPECT_EQ(m.lookup(5), std::make_pair(int64_t(0), false));
  m.set(5, 1);
  EXPECT_EQ(m.get(5), 1);
  EXPECT_EQ(map_check(m), "");
  m.clear();
  EXPECT_EQ(m.len(), 0u);
  EXPECT_FALSE(m.lookup(6).second);
  m.set(6, 61);
  EXPECT_EQ(m.get(6), 61);
  EXPECT_EQ(map_check(m), "");
}

TEST(Map, CopiesShareTheTable) {
  auto a = rt::make_map<int32_t, int32_t>();
  Map<int32_t, int32_t> b = a;
  b.set(1, 10);
  EXPECT_EQ(a.get(1), 10);
  a.erase(1);
  EXPECT_EQ(b.len(), 0u);
}

TEST(Map, HintPresizesTheTable) {
  EXPECT_EQ(map_shape(rt::make_map<int64_t, int64_t>()).B, 0);
  EXPECT_EQ(map_shape(rt::make_map<int64_t, int64_t>(8)).B, 0);
  // Go's makemap: the smallest B with hint <= 6.5 x 2^B.
  EXPECT_EQ(map_shape(rt::make_map<int64_t, int64_t>(9)).B, 1);
  EXPECT_EQ(map_shape(rt::make_map<int64_t, int64_t>(1000)).B, 8);
  auto m = rt::make_map<int64_t, int64_t>(1000);
  for (int64_t i = 0; i < 1000; i++) m.set(i, i);
  EXPECT_EQ(map_shape(m).B, 8) << "no growth below the hint";
  EXPECT_FALSE(map_shape(m).growing);
  EXPECT_EQ(map_check(m), "");
  // An impossible hint is ignored, as Go's makemap ignores it.
  EXPECT_EQ(map_shape(rt::make_map<int64_t, int64_t>(~size_t(0))).B, 0);
}

TEST(Map, PlusAndMinusZeroAreOneKey) {
  auto m = rt::make_map<double, int>();
  m.set(0.0, 1);
  m.set(-0.0, 2);
  EXPECT_EQ(m.len(), 1u);
  EXPECT_EQ(m.get(0.0), 2);
  // Go's needkeyupdate: the overwrite stores the new key, -0.
  for (const auto& [k, v] : m) EXPECT_TRUE(std::signbit(k));
  auto f = rt::make_map<float, int>();
  f.set(-0.0f, 1);
  EXPECT_EQ(f.get(0.0f), 1);
}

TEST(Map, NaNKeysAreNeverFoundAndEachInsertAddsOne) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto m = rt::make_map<double, int>();
  for (int i = 0; i < 3; i++) m.set(nan, i);
  m.set(1.5, 7);
  EXPECT_EQ(m.len(), 4u);
  EXPECT_FALSE(m.lookup(nan).second);
  EXPECT_EQ(m.get(nan), 0);
  m.erase(nan);
  EXPECT_EQ(m.len(), 4u) << "a NaN key cannot be deleted";
  int nans = 0;
  std::set<int> values;
  for (const auto& [k, v] : m) {
    if (k != k) {
      nans++;
      values.insert(v);
    }
  }
  EXPECT_EQ(nans, 3);
  EXPECT_EQ(values, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(map_check(m), "");
  m.clear();
  EXPECT_EQ(m.len(), 0u);
  EXPECT_EQ(m.begin() == std::default_sentinel, true);
}

// NaNs are evacuated by the low bit of their tophash while an iterator
// runs, and produced exactly once by an iteration across the growth.
TEST(Map, NaNKeysAcrossGrowthDuringIteration) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto m = rt::make_map<double, int>();
  for (int i = 0; i < 200; i++) m.set(nan, i);
  for (int i = 0; i < 200; i++) m.set(double(i), 1000 + i);
  std::multiset<int> seen;
  int next = 0;
  for (const auto& [k, v] : m) {
    seen.insert(v);
    // Enough inserts to double (and finish) at least once meanwhile.
    for (int j = 0; j < 8; j++, next++) m.set(1e6 + next, -1);
  }
  int nans = 0, numbers = 0;
  for (int v : seen) {
    if (v >= 0 && v < 200) nans++;
    if (v >= 1000) numbers++;
  }
  EXPECT_EQ(nans, 200);
  EXPECT_EQ(numbers, 200);
  for (int i = 0; i < 200; i++) EXPECT_EQ(seen.count(i), 1u);
  EXPECT_EQ(map_check(m), "");
}

struct Point {
  int32_t x, y;
  bool operator==(const Point&) const = default;
};
struct Wide {
  int64_t a, b, c;
  bool operator==(const Wide&) const = default;
};
struct Celsius {
  double deg;
  bool operator==(const Celsius&) const = default;
};
enum class Color : uint8_t { kRed, kGreen, kBlue };

}  // namespace

template <>
struct rt::pointer_free<Point> : std::true_type {};
template <>
struct rt::pointer_free<Wide> : std::true_type {};
template <>
struct rt::MapHash<Celsius> {
  uint64_t operator()(const Celsius& c, uint64_t seed) const noexcept { return rt::MapHash<double>{}(c.deg, seed); }
};

namespace {

TEST(Map, KeyTypes) {
  auto points = rt::make_map<Point, int>();
  auto wide = rt::make_map<Wide, int>();
  auto temps = rt::make_map<Celsius, int>();
  auto colors = rt::make_map<Color, int>();
  auto bytes = rt::make_map<uint8_t, int>();
  for (int i = 0; i < 1000; i++) {
    points.set(Point{i, -i}, i);
    wide.set(Wide{i, i * 7, -i}, i);
    temps.set(Celsius{i * 0.5}, i);
    bytes.set(uint8_t(i), i);
  }
  colors.set(Color::kGreen, 1);
  temps.set(Celsius{-0.0}, -1);  // the custom hash keeps -0 == +0
  EXPECT_EQ(points.len(), 1000u);
  EXPECT_EQ(wide.len(), 1000u);
  EXPECT_EQ(temps.len(), 1000u);
  EXPECT_EQ(bytes.len(), 256u);
  for (int i = 0; i < 1000; i++) {
    ASSERT_EQ(points.get(Point{i, -i}), i);
    ASSERT_EQ(wide.get(Wide{i, i * 7, -i}), i);
    ASSERT_EQ(temps.get(Celsius{i * 0.5}), i == 0 ? -1 : i);
  }
  EXPECT_FALSE(points.lookup(Point{1, 1}).second);
  EXPECT_EQ(colors.get(Color::kGreen), 1);
  EXPECT_EQ(colors.get(Color::kBlue), 0);
  EXPECT_EQ(bytes.get(uint8_t(255)), 767);  // the last i with uint8_t(i) == 255
  EXPECT_EQ(map_check(points), "");
  EXPECT_EQ(map_check(wide), "");
  EXPECT_EQ(map_check(temps), "");
}

TEST(Map, HashSpreadsKeys) {
  // Sequential, strided (low bits constant) and high-bit-only keys: no
  // chain much above the average load.
  for (int shift : {0, 12, 32, 47}) {
    auto m = rt::make_map<uint64_t, int>();
    for (uint64_t i = 0; i < 50000; i++) m.set(i << shift, 1);
    EXPECT_LE(map_shape(m).max_chain, 4u) << "shift " << shift;
    EXPECT_LT(map_shape(m).noverflow, uint16_t(1u << map_shape(m).B) / 4) << "shift " << shift;
  }
  // The seed differs per map: the same keys land in different buckets.
  auto a = rt::make_map<int64_t, int>();
  int differ = 0;
  for (int trial = 0; trial < 20; trial++) {
    auto c = rt::make_map<int64_t, int>();
    auto hc = rt::internal::MapAccess::hmap(c);
    auto ha = rt::internal::MapAccess::hmap(a);
    if (hc->hash(12345) != ha->hash(12345)) differ++;
  }
  EXPECT_GE(differ, 19);
}

// ---- Iteration ---------------------------------------------------------

TEST(Map, IterationOrderIsRandom) {
  // One bucket: the random in-bucket offset makes each of the 8 keys come
  // first about 1/8 of the time (800 iterations: 100 each, sd 9.4).
  auto small = rt::make_map<int64_t, int64_t>();
  for (int64_t i = 0; i < 8; i++) small.set(i, i);
  ASSERT_EQ(map_shape(small).B, 0);
  std::map<int64_t, int> first;
  for (int it = 0; it < 800; it++) first[(*small.begin()).first]++;
  ASSERT_EQ(first.size(), 8u);
  for (const auto& [k, n] : first) EXPECT_GT(n, 50) << "key " << k;
  // Many buckets: the start bucket is random too.
  auto big = rt::make_map<int64_t, int64_t>();
  for (int64_t i = 0; i < 1000; i++) big.set(i, i);
  std::set<int64_t> firsts;
  std::set<std::vector<int64_t>> orders;
  for (int it = 0; it < 1000; it++) {
    firsts.insert(big.begin()->first);
    if (it < 20) {
      std::vector<int64_t> order;
      for (const auto& kv : big) order.push_back(kv.first);
      ASSERT_EQ(order.size(), 1000u);
      orders.insert(order);
    }
  }
  EXPECT_GT(firsts.size(), 400u);  // about 630 expected
  // An order is fixed by its start bucket and offset, 256 x 8 of them: 20
  // draws repeat one with probability 0.09, four with about 3e-6.
  EXPECT_GE(orders.size(), 17u);
}

TEST(Map, EntriesErasedBeforeBeingReachedAreNotProduced) {
  for (int round = 0; round < 20; round++) {
    auto m = rt::make_map<int64_t, int64_t>();
    for (int64_t i = 0; i < 1000; i++) m.set(i, i);
    std::set<int64_t> seen;
    bool erased = false;
    for (const auto& [k, v] : m) {
      ASSERT_TRUE(seen.insert(k).second) << "key " << k << " twice";
      if (!erased) {
        // Erase every odd key but this one; the even ones stay.
        for (int64_t j = 1; j < 1000; j += 2) {
          if (j != k) m.erase(j);
        }
        erased = true;
        continue;
      }
      ASSERT_TRUE(k % 2 == 0) << "erased key " << k << " produced";
    }
    for (int64_t j = 0; j < 1000; j += 2) ASSERT_EQ(seen.count(j), 1u) << j;
  }
}

TEST(Map, EntriesInsertedDuringIterationAtMostOnce) {
  auto m = rt::make_map<int64_t, int64_t>();
  for (int64_t i = 0; i < 100; i++) m.set(i, i);
  std::multiset<int64_t> seen;
  int64_t next = 100;
  for (const auto& [k, v] : m) {
    seen.insert(k);
    for (int j = 0; j < 10; j++) m.set(next++, 0);  // grows several times
  }
  for (int64_t i = 0; i < 100; i++) EXPECT_EQ(seen.count(i), 1u) << i;
  for (int64_t k : seen) EXPECT_LE(seen.count(k), 1u) << k;
  EXPECT_GT(map_shape(m).B, 5);
  EXPECT_EQ(map_check(m), "");
}

// Iterations started before a doubling, and in its middle, while writes
// (inserts, overwrites, erases of entries not yet reached) move the
// evacuation along: every surviving original entry is produced exactly
// once, with the value it has when produced.
TEST(Map, IterationAcrossGrowthProducesEverySurvivorOnce) {
  std::mt19937_64 rng(7);
  for (int start_growing = 0; start_growing < 2; start_growing++) {
    for (int round = 0; round < 10; round++) {
      auto m = rt::make_map<int64_t, int64_t>();
      int64_t n = 0;
      // 6.5 x 2^B entries fill B; the next insert starts the doubling.
      for (; n < 6 * 256 + 128; n++) m.set(n, n);
      if (start_growing) {
        for (; !map_shape(m).growing; n++) m.set(n, n);
        ASSERT_LT(map_shape(m).nevacuate, 8u);
      }
      const int64_t originals = n;
      std::vector<bool> erased(size_t(originals), false);
      std::vector<int> produced(size_t(originals), 0);
      bool saw_growing = map_shape(m).growing;
      for (const auto& [k, v] : m) {
        ASSERT_EQ(m.get(k), v) << "stale value for " << k;
        if (k < originals) {
          ASSERT_FALSE(erased[size_t(k)]) << "erased key " << k << " produced";
          produced[size_t(k)]++;
        }
        // Writes: a new key, an overwrite and an erase of random originals.
        m.set(n, n);
        n++;
        int64_t o = int64_t(rng() % uint64_t(originals));
        if (!erased[size_t(o)]) m.set(o, m.get(o) + 1000000);
        int64_t e = int64_t(rng() % uint64_t(originals));
        if (produced[size_t(e)] == 0 && !erased[size_t(e)]) {
          m.erase(e);
          erased[size_t(e)] = true;
        }
        saw_growing |= map_shape(m).growing;
      }
      ASSERT_TRUE(saw_growing);
      for (int64_t k = 0; k < originals; k++) {
        ASSERT_EQ(produced[size_t(k)], erased[size_t(k)] ? 0 : 1) << "key " << k;
      }
      ASSERT_EQ(map_check(m), "");
    }
  }
}

// Churn at a constant size just under the load factor: overflow buckets
// accumulate until a same-size growth packs the table again.
TEST(Map, SameSizeGrowthKeepsEveryEntry) {
  auto m = rt::make_map<int64_t, int64_t>();
  std::unordered_map<int64_t, int64_t> want;
  int64_t next = 0;
  for (; next < 100; next++) {
    m.set(next, next);
    want[next] = next;
  }
  const uint8_t b = map_shape(m).B;
  bool same_size = false;
  bool iterated_during = false;
  for (int64_t step = 0; step < 200000 && !(same_size && iterated_during); step++) {
    int64_t old = next - 100;
    m.erase(old);
    want.erase(old);
    m.set(next, next);
    want[next] = next;
    next++;
    rt::internal::MapShape s = map_shape(m);
    ASSERT_EQ(s.B, b) << "a doubling, not a same-size growth";
    if (s.same_size_grow) {
      same_size = true;
      ASSERT_EQ(map_check(m), "");
      // An iteration during the same-size growth, with writes.
      std::set<int64_t> seen;
      for (const auto& [k, v] : m) {
        ASSERT_TRUE(seen.insert(k).second);
        ASSERT_EQ(k, v);
        m.set(k, v);
      }
      for (const auto& [k, v] : want) ASSERT_EQ(seen.count(k), 1u);
      iterated_during = true;
    }
  }
  EXPECT_TRUE(same_size);
  EXPECT_EQ(m.len(), want.size());
  for (const auto& [k, v] : want) ASSERT_EQ(m.get(k), v);
  EXPECT_EQ(map_check(m), "");
}

TEST(Map, ClearDuringIterationEndsIt) {
  auto m = rt::make_map<int64_t, int64_t>();
  for (int64_t i = 0; i < 5000; i++) m.set(i, i);
  int n = 0;
  for (const auto& kv : m) {
    (void)kv;
    if (++n == 10) m.clear();
  }
  EXPECT_EQ(n, 10) << "cleared entries were produced";
  EXPECT_EQ(m.len(), 0u);
  EXPECT_EQ(map_check(m), "");
}

// ---- Differential and invariants ----------------------------------------

TEST(Map, DifferentialAgainstUnorderedMap) {
  std::mt19937_64 rng(12345);
  for (int64_t key_range : {16, 1000, 50000}) {
    auto m = rt::make_map<int64_t, int64_t>();
    std::unordered_map<int64_t, int64_t> want;
    for (int op = 0; op < 150000; op++) {
      int64_t k = int64_t(rng() % uint64_t(key_range)) - key_range / 2;
      uint64_t what = rng() % 100;
      if (what < 45) {
        int64_t v = int64_t(rng());
        m.set(k, v);
        want[k] = v;
      } else if (what < 70) {
        m.erase(k);
        want.erase(k);
      } else if (what < 99) {
        auto it = want.find(k);
        auto [v, ok] = m.lookup(k);
        ASSERT_EQ(ok, it != want.end()) << "key " << k << " op " << op;
        if (ok) {
          ASSERT_EQ(v, it->second);
        }
      } else if (op % 7 == 0) {
        std::unordered_map<int64_t, int64_t> got;
        for (const auto& [gk, gv] : m) ASSERT_TRUE(got.emplace(gk, gv).second);
        ASSERT_EQ(got, want);
      } else if (rng() % 50 == 0) {
        m.clear();
        want.clear();
      }
      ASSERT_EQ(m.len(), want.size());
      if (op % 5000 == 0) {
        ASSERT_EQ(map_check(m), "") << "op " << op;
      }
    }
    ASSERT_EQ(map_check(m), "");
  }
}

TEST(Map, InvariantsHoldThroughGrowth) {
  auto m = rt::make_map<int64_t, int64_t>();
  int growing_checks = 0;
  for (int64_t i = 0; i < 30000; i++) {
    m.set(i * 0x9e3779b1, i);
    if (map_shape(m).growing && (i % 31 == 0)) {
      ASSERT_EQ(map_check(m), "") << "insert " << i;
      growing_checks++;
    }
  }
  EXPECT_GT(growing_checks, 50);
  for (int64_t i = 0; i < 30000; i += 2) m.erase(i * 0x9e3779b1);
  EXPECT_EQ(m.len(), 15000u);
  ASSERT_EQ(map_check(m), "");
  for (int64_t i = 0; i < 30000; i++) ASSERT_EQ(m.lookup(i * 0x9e3779b1).second, i % 2 == 1);
}

// ---- The collector -----------------------------------------------------

struct Node {
  int64_t value;
  uint64_t check;
  uint64_t payload[4];
};

uint64_t node_check(int64_t v) { return uint64_t(v) * 0x9e3779b97f4a7c15ULL ^ 0x5bd1e995u; }

__attribute__((noinline)) Ref<Node> new_node(int64_t v) {
  Ref<Node> n = rt::make<Node>();
  n->value = v;
  n->check = node_check(v);
  for (int i = 0; i < 4; i++) n->payload[i] = node_check(v + i + 1);
  return n;
}

bool node_ok(const Ref<Node>& n, int64_t v) {
  if (!n || n->value != v || n->check != node_check(v)) return false;
  for (int i = 0; i < 4; i++) {
    if (n->payload[i] != node_check(v + i + 1)) return false;
  }
  return true;
}

// A scan object of a single bucket's size (144 bytes for 8-byte keys and
// values).
struct Garbage {
  Ref<Node> ref;
  uint64_t words[17];
};
static_assert(sizeof(Garbage) == sizeof(rt::internal::MapBucket<int64_t, Ref<Node>>));
static_assert(sizeof(Garbage) == sizeof(rt::internal::MapBucket<int64_t, int64_t>));

// Garbage of the size classes of nodes and of single buckets (scan and
// noscan), filled with a pattern: memory freed while still referenced is
// reused and overwritten.
__attribute__((noinline)) void churn(int n) {
  for (int i = 0; i < n; i++) {
    Ref<Node> x = rt::make<Node>();
    x->value = -1;
    x->check = ~0ull;
    rt::Slice<uint64_t> s = rt::make_slice<uint64_t>(18);
    for (auto& w : s) w = 0xdeadbeefdeadbeefULL;
    Ref<Garbage> g = rt::make<Garbage>();
    for (auto& w : g->words) w = 0xfefefefefefefefeULL;
  }
}

uint64_t live_heap() {
  clobber_stack();
  rt::gc();
  return rt::read_mem_stats().HeapAlloc;
}

TEST(MapGC, ValuesReachableOnlyFromAMapSurviveCollectionsDuringGrowth) {
  uint64_t base = live_heap();
  in_frame([] {
    auto m = rt::make_map<int64_t, Ref<Node>>();
    int gcs_while_growing = 0;
    for (int64_t i = 0; i < 30000; i++) {
      m.set(i, new_node(i));
      if (map_shape(m).growing && i % 97 == 0) {
        churn(200);
        rt::gc();
        gcs_while_growing++;
      }
      if (i % 3 == 0 && i > 0) m.erase(i - 1);  // reset slots must not lose the rest
    }
    EXPECT_GT(gcs_while_growing, 20);
    churn(20000);
    rt::gc();
    for (int64_t i = 0; i < 30000; i++) {
      auto [n, ok] = m.lookup(i);
      bool want = !(i % 3 == 2 && i < 29999);
      ASSERT_EQ(ok, want) << i;
      if (ok) {
        ASSERT_TRUE(node_ok(n, i)) << "value " << i << " freed";
      }
    }
    EXPECT_EQ(map_check(m), "");
  });
  // Map, buckets and nodes are all garbage now.
  EXPECT_LT(live_heap(), base + 64 * 1024) << "base " << base;
}

// Keys that are Refs, and values that are maps: the collector follows both.
TEST(MapGC, RefKeysAndNestedMaps) {
  in_frame([] {
    auto by_node = rt::make_map<Ref<Node>, int64_t>();
    auto outer = rt::make_map<int64_t, Map<int64_t, Ref<Node>>>();
    for (int64_t i = 0; i < 3000; i++) {
      by_node.set(new_node(i), i);
      if (i % 100 == 0) outer.set(i / 100, rt::make_map<int64_t, Ref<Node>>());
      outer.get(i / 100).set(i, new_node(i));
    }
    churn(20000);
    rt::gc();
    churn(20000);
    int64_t n = 0;
    for (const auto& [node, v] : by_node) {
      ASSERT_TRUE(node_ok(node, v));
      ASSERT_EQ(by_node.get(node), v);
      n++;
    }
    EXPECT_EQ(n, 3000);
    for (int64_t i = 0; i < 3000; i++) ASSERT_TRUE(node_ok(outer.get(i / 100).get(i), i));
  });
}

// Pointer-free keys and values: noscan buckets, whose overflow buckets are
// kept alive by the overflow lists only (through collections in the middle
// of growth, and for an iterator still walking an array the map dropped).
TEST(MapGC, NoscanMapKeepsItsOverflowBuckets) {
  in_frame([] {
    auto m = rt::make_map<int64_t, int64_t>();
    int64_t n = 0;
    while (n < 6 * 1024 + 400) {
      m.set(n, ~n);
      n++;
      if (n % 500 == 0) {
        churn(500);
        rt::gc();
      }
    }
    ASSERT_GT(map_shape(m).noverflow, 0u) << "the test needs overflow buckets";
    // Start an iteration, then grow until the map drops the array it walks.
    auto it = m.begin();
    int64_t produced = 0;
    while (!map_shape(m).growing) m.set(n, ~n), n++;
    while (map_shape(m).growing) m.set(n, ~n), n++;
    churn(30000);
    rt::gc();
    churn(30000);
    std::set<int64_t> seen;
    for (; it != std::default_sentinel; ++it) {
      ASSERT_EQ(it->second, ~it->first) << "key " << it->first;
      ASSERT_TRUE(seen.insert(it->first).second);
      produced++;
    }
    for (int64_t k = 0; k < 6 * 1024 + 400; k++) ASSERT_EQ(seen.count(k), 1u) << k;
    for (int64_t k = 0; k < n; k++) ASSERT_EQ(m.get(k), ~k) << k;
    EXPECT_EQ(map_check(m), "");
  });
}

// ---- Concurrent misuse ---------------------------------------------------

// A key whose == runs a hook: it runs inside a map write (the comparison
// of an insert that finds its key's tophash), so the hook's map operation
// meets the write in progress deterministically.
struct HookKey {
  int64_t v;
  bool operator==(const HookKey& o) const;
};
void (*key_hook)() = nullptr;
bool HookKey::operator==(const HookKey& o) const {
  if (key_hook != nullptr) {
    auto h = key_hook;
    key_hook = nullptr;
    h();
  }
  return v == o.v;
}

}  // namespace

template <>
struct rt::MapHash<HookKey> {
  uint64_t operator()(const HookKey& k, uint64_t seed) const noexcept { return rt::MapHash<int64_t>{}(k.v, seed); }
};

namespace {

using HookMap = Map<HookKey, int>;
HookMap hook_map;
rt::MapIterator<HookKey, int> hook_iter;

// Each sets key 1 again with a hook that runs one more operation on the
// map from inside that write.
void write_during_write() {
  hook_map = rt::make_map<HookKey, int>();
  hook_map.set(HookKey{1}, 1);
  key_hook = [] { hook_map.set(HookKey{2}, 2); };
  hook_map.set(HookKey{1}, 3);
}
void read_during_write() {
  hook_map = rt::make_map<HookKey, int>();
  hook_map.set(HookKey{1}, 1);
  key_hook = [] { (void)hook_map.get(HookKey{2}); };
  hook_map.set(HookKey{1}, 3);
}
void iteration_during_write() {
  hook_map = rt::make_map<HookKey, int>();
  for (int i = 0; i < 20; i++) hook_map.set(HookKey{i}, i);
  hook_iter = hook_map.begin();
  key_hook = [] { ++hook_iter; };
  hook_map.set(HookKey{1}, 3);
}

TEST(MapDeathTest, OperationDuringAWriteDiesWithGosMessage) {
  EXPECT_EXIT((write_during_write(), _exit(0)), testing::ExitedWithCode(2), "fatal error: concurrent map writes");
  EXPECT_EXIT((read_during_write(), _exit(0)), testing::ExitedWithCode(2),
              "fatal error: concurrent map read and map write");
  EXPECT_EXIT((iteration_during_write(), _exit(0)), testing::ExitedWithCode(2),
              "fatal error: concurrent map iteration and map write");
}

// Two goroutines writing one map on two Ps (Go's TestConcurrentMapWrites):
// the race is caught as soon as two writes overlap; bounded at 20 s.
void write_from_two_goroutines() {
  rt::gomaxprocs(2);
  auto m = rt::make_map<int64_t, int64_t>();
  rt::WaitGroup wg;
  int64_t deadline = rt::nanotime() + 20'000'000'000;
  for (int64_t g = 0; g < 2; g++) {
    wg.add(1);
    rt::go([m, g, deadline, &wg]() mutable {
      for (int64_t i = 0; rt::nanotime() < deadline; i++) {
        for (int64_t j = 0; j < 1000; j++) m.set((i * 1000 + j) & 4095, g);
      }
      wg.done();
    });
  }
  wg.wait();
}

// The program races by construction, and under ThreadSanitizer TSan sees
// the race on the buckets as well (Go's -race reports concurrent map writes
// as a data race too): the runtime's throw (status 2) or TSan's report of a
// race in the map (status 66, TSan's exit code under halt_on_error) ends
// it, whichever comes first; TSan's may also come while the throw's dump is
// printed, since the other writer still runs.
bool died_of_concurrent_map_writes(int status) {
  if (!WIFEXITED(status)) return false;
#ifdef RT_TSAN
  if (WEXITSTATUS(status) == 66) return true;
#endif
  return WEXITSTATUS(status) == 2;
}

TEST(MapDeathTest, ConcurrentWritesFromTwoGoroutines) {
#ifdef RT_TSAN
  const char* expected = "fatal error: concurrent map writes|SUMMARY: ThreadSanitizer: data race runtime/include/rt/map.h";
#else
  const char* expected = "fatal error: concurrent map writes";
#endif
  EXPECT_EXIT((write_from_two_goroutines(), _exit(0)), died_of_concurrent_map_writes, expected);
}

}  // namespace

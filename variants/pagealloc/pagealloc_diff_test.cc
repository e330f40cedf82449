// Differential tests of the page allocators: the treap and the radix tree
// are both address-ordered first fit, so the same sequence of grow, alloc
// and free must produce the same addresses from both, and from a naive
// first-fit model over a page array. The allocators never touch the pages,
// so the address ranges are made up and nothing is mapped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "runtime/policy/pagealloc.h"
#include "variants/pagealloc/radix/radix_pagealloc.h"
#include "variants/pagealloc/treap/treap_pagealloc.h"

namespace {

using rt::internal::RadixPageAlloc;
using rt::internal::TreapPageAlloc;
using rt::policy::kChunkBytes;
using rt::policy::kChunkPages;
using rt::policy::kPageSize;

constexpr uintptr_t kHeapBase = uintptr_t(0xc0) << 32;
constexpr size_t kArenaPages = (64 << 20) / kPageSize;

struct Run {
  uintptr_t base;
  size_t npages;
};

// Naive first fit over a page array starting at kHeapBase (true = free).
class NaiveModel {
 public:
  void grow(uintptr_t base, size_t npages) {
    size_t first = (base - kHeapBase) / kPageSize;
    if (free_.size() < first + npages) free_.resize(first + npages, false);
    std::fill(free_.begin() + long(first), free_.begin() + long(first + npages), true);
  }
  uintptr_t alloc(size_t npages) {
    size_t run = 0;
    for (size_t i = 0; i < free_.size(); i++) {
      run = free_[i] ? run + 1 : 0;
      if (run == npages) {
        size_t first = i + 1 - npages;
        std::fill(free_.begin() + long(first), free_.begin() + long(i + 1), false);
        return kHeapBase + first * kPageSize;
      }
    }
    return 0;
  }
  void free(uintptr_t base, size_t npages) {
    size_t first = (base - kHeapBase) / kPageSize;
    std::fill(free_.begin() + long(first), free_.begin() + long(first + npages), true);
  }

 private:
  std::vector<bool> free_;
};

size_t random_npages(std::mt19937_64& rng, size_t large) {
  uint64_t r = rng() % 100;
  if (r < 60) return 1 + rng() % 4;
  if (r < 90) return 1 + rng() % 64;
  if (r < 99) return 1 + rng() % 600;
  return 1 + rng() % large;
}

// Every free run of a page allocator, in address order.
template <class PageAlloc>
std::vector<Run> free_runs(const PageAlloc& a) {
  std::vector<Run> runs;
  uintptr_t addr = 0;
  Run r;
  while (a.next_free_run(addr, &r.base, &r.npages)) {
    runs.push_back(r);
    addr = r.base + r.npages * kPageSize;
  }
  return runs;
}

void expect_same_runs(const TreapPageAlloc& t, const RadixPageAlloc& r) {
  std::vector<Run> a = free_runs(t);
  std::vector<Run> b = free_runs(r);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); i++) {
    ASSERT_EQ(a[i].base, b[i].base) << "run " << i;
    ASSERT_EQ(a[i].npages, b[i].npages) << "run " << i;
  }
}

// Runs `ops` random operations on both allocators (and the naive model
// when given), checking that every allocation returns the same address.
// Frees release whole allocations or a random piece of one.
void differential(uint64_t seed, int ops, size_t max_grows, size_t grow_pages, NaiveModel* model) {
  std::mt19937_64 rng(seed);
  auto treap = std::make_unique<TreapPageAlloc>();
  auto radix = std::make_unique<RadixPageAlloc>();
  std::vector<Run> live;
  uintptr_t next_grow = kHeapBase;
  size_t grows = 0;
  auto grow = [&] {
    // Mostly contiguous growth, sometimes with a hole (a foreign mapping).
    if (rng() % 4 == 0) next_grow += kChunkBytes * (1 + rng() % 3);
    treap->grow(next_grow, grow_pages);
    radix->grow(next_grow, grow_pages);
    if (model != nullptr) model->grow(next_grow, grow_pages);
    next_grow += grow_pages * kPageSize;
    grows++;
  };
  grow();
  size_t live_pages = 0;
  for (int i = 0; i < ops; i++) {
    bool do_alloc = live.empty() || rng() % 100 < (live_pages < grows * grow_pages / 2 ? 60u : 40u);
    if (do_alloc) {
      size_t n = random_npages(rng, grow_pages * 2);
      uintptr_t a = treap->alloc(n);
      uintptr_t b = radix->alloc(n);
      ASSERT_EQ(a, b) << "op " << i << " alloc " << n;
      if (model != nullptr) {
        ASSERT_EQ(model->alloc(n), a) << "op " << i << " alloc " << n;
      }
      if (a == 0) {
        if (grows < max_grows) grow();
        continue;
      }
      live.push_back({a, n});
      live_pages += n;
    } else {
      size_t k = rng() % live.size();
      Run r = live[k];
      live[k] = live.back();
      live.pop_back();
      if (r.npages > 2 && rng() % 4 == 0) {
        // Free a middle piece; the two ends stay allocated.
        size_t lo = 1 + rng() % (r.npages - 2);
        size_t n = 1 + rng() % (r.npages - lo - 1);
        live.push_back({r.base, lo});
        live.push_back({r.base + (lo + n) * kPageSize, r.npages - lo - n});
        r = {r.base + lo * kPageSize, n};
      }
      treap->free(r.base, r.npages);
      radix->free(r.base, r.npages);
      if (model != nullptr) model->free(r.base, r.npages);
      live_pages -= r.npages;
    }
    if (i % 4096 == 0) {
      treap->check();
      radix->check();
      ASSERT_EQ(treap->free_pages(), radix->free_pages());
      ASSERT_EQ(treap->free_pages(), grows * grow_pages - live_pages);
      expect_same_runs(*treap, *radix);
    }
  }
  for (const Run& r : live) {
    treap->free(r.base, r.npages);
    radix->free(r.base, r.npages);
  }
  treap->check();
  radix->check();
  EXPECT_EQ(treap->free_pages(), grows * grow_pages);
  expect_same_runs(*treap, *radix);
}

TEST(PageAllocDiff, AgreesWithNaiveFirstFit) {
  NaiveModel model;
  differential(1, 60000, 12, kChunkPages, &model);
}

TEST(PageAllocDiff, TreapAndRadixAgreeOnLongRandomSequences) {
  for (uint64_t seed = 2; seed < 5; seed++) differential(seed, 400000, 16, kArenaPages, nullptr);
}

TEST(PageAllocDiff, FullyFreeRootEntries) {
  // 48 GiB grown at once: whole 16 GiB root entries are free, which the
  // packed summary encodes specially.
  auto treap = std::make_unique<TreapPageAlloc>();
  auto radix = std::make_unique<RadixPageAlloc>();
  uintptr_t base = uintptr_t(1) << 40;
  size_t npages = (size_t(48) << 30) / kPageSize;
  treap->grow(base, npages);
  radix->grow(base, npages);
  radix->check();
  for (size_t n : {size_t(1), npages / 2, npages / 4, size_t(3)}) {
    uintptr_t a = treap->alloc(n);
    ASSERT_EQ(a, radix->alloc(n)) << n;
    ASSERT_NE(a, 0u);
  }
  EXPECT_EQ(treap->alloc(npages), 0u);
  EXPECT_EQ(radix->alloc(npages), 0u);
  radix->check();
  treap->check();
  expect_same_runs(*treap, *radix);
}

TEST(PageAllocDiff, RadixPageCacheTakesTheLowestBlock) {
  auto radix = std::make_unique<RadixPageAlloc>();
  radix->grow(kHeapBase, kArenaPages);
  uintptr_t first = radix->alloc(3);  // pages 0..2 of the first block
  ASSERT_EQ(first, kHeapBase);
  rt::policy::PageCache c;
  radix->cache_refill(&c);
  EXPECT_EQ(c.base, kHeapBase);
  EXPECT_EQ(c.free_bits, ~uint64_t(7));
  EXPECT_EQ(radix->free_pages(), kArenaPages - 64);
  // The next locked allocation comes after the cached block.
  EXPECT_EQ(radix->alloc(1), kHeapBase + 64 * kPageSize);
  EXPECT_EQ(RadixPageAlloc::cache_alloc(&c, 1), kHeapBase + 3 * kPageSize);
  EXPECT_EQ(RadixPageAlloc::cache_alloc(&c, 4), kHeapBase + 4 * kPageSize);
  EXPECT_EQ(RadixPageAlloc::cache_alloc(&c, 8), kHeapBase + 8 * kPageSize);
  EXPECT_EQ(RadixPageAlloc::cache_alloc(&c, 64), 0u);
  radix->free(kHeapBase + 4 * kPageSize, 4);  // the run taken from the cache
  radix->cache_flush(&c);
  EXPECT_EQ(c.free_bits, 0u);
  radix->check();
  // Pages 0..2, 3, 8..15 and page 64 stay allocated.
  EXPECT_EQ(radix->free_pages(), kArenaPages - 3 - 1 - 8 - 1);
  EXPECT_EQ(radix->alloc(1), kHeapBase + 4 * kPageSize);
}

}  // namespace

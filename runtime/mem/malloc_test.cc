// Heap allocator tests: size classes, mallocgc/free_object properties over
// millions of random operations, statistics, scavenging, arenas, large
// objects and the fatal errors. Built and run once per variant.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "rt/rt.h"
#include "runtime/mem/malloc.h"
#include "runtime/mem/mcache.h"
#include "runtime/mem/mheap.h"
#include "runtime/mem/sizeclasses.h"
#include "runtime/policy/pagealloc.h"
#include "runtime/sched/runtime2.h"
#include "runtime/testing/rt_test_util.h"

namespace {

using rt::internal::free_object;
using rt::internal::kPageSize;
using rt::internal::mallocgc;
using rt::internal::MSpan;
using rt::internal::object_base;
using rt::internal::span_of;
using rt::testing::ProcsGuard;

uintptr_t addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

// These tests keep mallocgc objects in std containers, where the collector
// cannot see them: collection by heap growth is off for the whole binary
// (death tests re-execute it and set it again).
class GcOff : public testing::Environment {
 public:
  void SetUp() override { rt::set_gc_percent(-1); }
};
testing::Environment* const gc_off = testing::AddGlobalTestEnvironment(new GcOff);

bool all_zero(const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != 0) return false;
  }
  return true;
}

TEST(SizeClasses, EverySizeGetsTheSmallestClassThatFits) {
  using namespace rt::internal;
  for (size_t size = 1; size <= kMaxSmallSize; size++) {
    uint8_t c = size_to_class(size);
    ASSERT_GE(kClassToSize[c], size) << size;
    ASSERT_LT(kClassToSize[c - 1], size) << size;
  }
  EXPECT_EQ(kNumSizeClasses - 1, 67u);
  EXPECT_EQ(kClassToSize[3], 24u);
  EXPECT_EQ(kClassToPages[size_to_class(9472)], 7u);
}

TEST(SizeClasses, MagicDivisionFindsEveryObject) {
  using namespace rt::internal;
  for (size_t c = 1; c < kNumSizeClasses; c++) {
    uint64_t magic = div_magic(kClassToSize[c]);
    size_t span = kClassToPages[c] * kPageSize;
    for (size_t off = 0; off < span; off++) {
      ASSERT_EQ((off * magic) >> 32, off / kClassToSize[c]) << "class " << c << " offset " << off;
    }
  }
}

TEST(Malloc, ZeroSizeReturnsZerobase) {
  void* a = mallocgc(0, true);
  void* b = mallocgc(0, false);
  EXPECT_EQ(a, &rt::internal::zerobase);
  EXPECT_EQ(a, b);
}

size_t random_size(std::mt19937_64& rng) {
  uint64_t r = rng() % 1000;
  if (r < 300) return 1 + rng() % 15;        // tiny when noscan
  if (r < 800) return 1 + rng() % 512;
  if (r < 990) return 1 + rng() % 32768;
  return 32769 + rng() % (200 << 10);        // large
}

struct Live {
  uintptr_t p;
  size_t size;
  unsigned char fill;
};

// Random allocation and free; checks every invariant the GC will rely on.
TEST(Malloc, RandomOperationsKeepObjectsDisjointZeroedAndInsideTheirSpans) {
  std::mt19937_64 rng(42);
  std::vector<Live> live;
  std::map<uintptr_t, uintptr_t> ranges;  // start -> end of live objects (not tiny)
  std::set<uintptr_t> tiny_blocks;
  // ThreadSanitizer makes the checks tens of times slower (the test ran
  // past its 300 s timeout there): a tenth of the operations under it.
#ifdef RT_TSAN
  constexpr int kOps = 100000;
#else
  constexpr int kOps = 1000000;
#endif
  for (int op = 0; op < kOps; op++) {
    if (live.empty() || rng() % 100 < 55) {
      size_t size = random_size(rng);
      bool scan = rng() % 2 == 0;
      auto* p = static_cast<unsigned char*>(mallocgc(size, scan));
      uintptr_t a = addr(p);
      MSpan* s = span_of(a);
      ASSERT_NE(s, nullptr);
      ASSERT_LE(a + size, s->limit);
      ASSERT_GE(a, s->startAddr);
      if (!scan && size < rt::internal::kTinySize) {
        uintptr_t block = object_base(a);
        ASSERT_EQ(block % 16, 0u);
        ASSERT_LE(a + size, block + 16);
        if (size % 8 == 0) {
          ASSERT_EQ(a % 8, 0u);
        }
        if (size % 4 == 0) {
          ASSERT_EQ(a % 4, 0u);
        }
        if (size % 2 == 0) {
          ASSERT_EQ(a % 2, 0u);
        }
        ASSERT_TRUE(all_zero(p, size));
        tiny_blocks.insert(block);
        memset(p, 0xee, size);
        continue;
      }
      ASSERT_EQ(object_base(a), a);
      ASSERT_EQ(object_base(a + size - 1), a);
      ASSERT_EQ((a - s->startAddr) % s->elemsize, 0u);
      ASSERT_GE(s->elemsize, size);
      ASSERT_EQ(a % 8, 0u);
      if (s->elemsize % 16 == 0) {
        ASSERT_EQ(a % 16, 0u);
      }
      ASSERT_TRUE(all_zero(p, size)) << "size " << size;
      auto next = ranges.lower_bound(a);
      if (next != ranges.end()) {
        ASSERT_GE(next->first, a + size);
      }
      if (next != ranges.begin()) {
        ASSERT_LE(std::prev(next)->second, a);
      }
      ranges[a] = a + size;
      unsigned char fill = static_cast<unsigned char>(1 + rng() % 255);
      memset(p, fill, size);
      live.push_back({a, size, fill});
    } else {
      size_t k = rng() % live.size();
      Live l = live[k];
      live[k] = live.back();
      live.pop_back();
      const auto* b = reinterpret_cast<const unsigned char*>(l.p);
      ASSERT_TRUE(b[0] == l.fill && b[l.size - 1] == l.fill && b[l.size / 2] == l.fill) << "overwritten";
      ranges.erase(l.p);
      free_object(reinterpret_cast<void*>(l.p));
      ASSERT_EQ(object_base(l.p), 0u) << "freed object still looks allocated";
    }
  }
  for (const Live& l : live) free_object(reinterpret_cast<void*>(l.p));
  for (uintptr_t b : tiny_blocks) free_object(reinterpret_cast<void*>(b));
}

// The heap counted from its structures, independently of heap_counters
// (which read_mem_stats reports): arenas from the arena map, in-use and
// stack pages from the spans, free pages from the page allocator and the
// Ps' page caches, released pages from the arenas' released bitmaps.
struct HeapCensus {
  uint64_t arena_pages = 0;
  uint64_t inuse_pages = 0;
  uint64_t manual_pages = 0;
  uint64_t spans = 0;
  uint64_t free_pages = 0;
  uint64_t released_pages = 0;
  uint64_t mcaches = 0;
  bool operator==(const HeapCensus&) const = default;
};

HeapCensus take_census() {
  using namespace rt::internal;
  HeapCensus c;
  HeapLockGuard g;
  for (size_t ai = 0; ai < (size_t(1) << kArenaBits); ai++) {
    HeapArena* ha = arena_of(uintptr_t(ai) * kArenaBytes);
    if (ha == nullptr) continue;
    c.arena_pages += kPagesPerArena;
    for (const auto& word : ha->released) c.released_pages += uint64_t(__builtin_popcountll(word.load()));
  }
  for_each_span(
      [](MSpan* s, void* arg) {
        auto* c = static_cast<HeapCensus*>(arg);
        c->spans++;
        (s->state.load() == SpanState::kManual ? c->manual_pages : c->inuse_pages) += s->npages;
      },
      &c);
  uintptr_t base = 0;
  size_t npages = 0;
  for (uintptr_t from = 0; rt::policy::pagealloc::next_free_run(from, &base, &npages); from = base + npages * kPageSize) {
    c.free_pages += npages;
  }
  c.mcaches = 1;  // the one shared by threads without a P (malloc.cc)
  for (int32_t i = 0; i < gomaxprocs.load(); i++) {
    MCache* mc = allp[i] != nullptr ? allp[i]->mcache : nullptr;
    if (mc == nullptr) continue;
    c.mcaches++;
    c.free_pages += uint64_t(__builtin_popcountll(mc->pcache.free_bits));
  }
  return c;
}

// A census and a MemStats snapshot of the same moment: the background
// scavenger may release pages in between, so both are taken until the
// census is unchanged around the snapshot (it changes only while the
// scavenger works through a backlog, a few steps).
struct HeapView {
  HeapCensus census;
  rt::MemStats stats;
};

HeapView view_heap() {
  HeapView v;
  for (int attempt = 0; attempt < 1000; attempt++) {
    v.census = take_census();
    v.stats = rt::read_mem_stats();
    if (take_census() == v.census) return v;
  }
  ADD_FAILURE() << "the heap kept changing under a single goroutine for 1000 censuses";
  return v;
}

// Every MemStats figure that the heap's structures determine, checked
// against the census; Sys and the *Sys metadata figures have no
// independent count and are left out.
void expect_stats_match_structures(const HeapView& v) {
  const HeapCensus& c = v.census;
  const rt::MemStats& st = v.stats;
  EXPECT_EQ(st.HeapSys + st.StackSys, c.arena_pages * kPageSize);
  EXPECT_EQ(st.HeapInuse, c.inuse_pages * kPageSize);
  EXPECT_EQ(st.StackInuse, c.manual_pages * kPageSize);
  EXPECT_EQ(st.HeapIdle, c.free_pages * kPageSize);
  EXPECT_EQ(st.HeapReleased, c.released_pages * kPageSize);
  EXPECT_EQ(st.MSpanInuse, c.spans * sizeof(MSpan));
  EXPECT_EQ(st.MCacheInuse, c.mcaches * sizeof(rt::internal::MCache));
  // The heap's own invariants: every page is in exactly one span or free,
  // and only free pages are released.
  EXPECT_EQ(c.arena_pages, c.inuse_pages + c.manual_pages + c.free_pages);
  EXPECT_LE(c.released_pages, c.free_pages);
}

TEST(MemStats, MatchTheHeapsStructures) {
  rt::MemStats before = rt::read_mem_stats();
  std::mt19937_64 rng(7);
  std::vector<void*> objs;
  for (int i = 0; i < 200000; i++) objs.push_back(mallocgc(16 + rng() % 40000, true));
  for (size_t i = 0; i < objs.size(); i += 2) free_object(objs[i]);
  HeapView mid = view_heap();
  EXPECT_EQ(mid.stats.Mallocs - before.Mallocs, 200000u);
  EXPECT_EQ(mid.stats.Frees - before.Frees, 100000u);
  EXPECT_EQ(mid.stats.HeapObjects - before.HeapObjects, 100000u);
  expect_stats_match_structures(mid);
  // 100,000 live objects of 16..40000 bytes.
  EXPECT_GT(mid.stats.HeapInuse, before.HeapInuse + 100000u * 16);
  for (size_t i = 1; i < objs.size(); i += 2) free_object(objs[i]);
  HeapView after = view_heap();
  EXPECT_EQ(after.stats.HeapObjects, before.HeapObjects);
  expect_stats_match_structures(after);
  rt::free_os_memory();
  HeapView released = view_heap();
  EXPECT_GT(released.census.released_pages, 0u);
  expect_stats_match_structures(released);
}

TEST(Malloc, ObjectsFreedByAnotherP) {
  ProcsGuard procs(2);
  constexpr int kRounds = 40;
  constexpr int kBatch = 5000;
  std::vector<void*> batches[2];
  rt::Mutex mu;
  rt::WaitGroup wg;
  std::atomic<bool> ok{true};
  // Each goroutine allocates a batch, then frees the other's previous batch
  // (objects of spans the other P's mcache may still hold).
  for (int g = 0; g < 2; g++) {
    wg.add(1);
    rt::go([&, g] {
      for (int r = 0; r < kRounds; r++) {
        std::vector<void*> mine;
        for (int i = 0; i < kBatch; i++) {
          auto* p = static_cast<uint64_t*>(mallocgc(48 + 16 * (i % 8), true));
          if (p[0] != 0) ok = false;
          p[0] = uint64_t(g + 1);
          mine.push_back(p);
        }
        std::vector<void*> theirs;
        mu.lock();
        theirs.swap(batches[1 - g]);
        batches[g].insert(batches[g].end(), mine.begin(), mine.end());
        mu.unlock();
        for (void* p : theirs) {
          if (*static_cast<uint64_t*>(p) != uint64_t(2 - g)) ok = false;
          free_object(p);
        }
        rt::gosched();
      }
      wg.done();
    });
  }
  wg.wait();
  for (auto& b : batches) {
    for (void* p : b) free_object(p);
  }
  EXPECT_TRUE(ok.load());
  expect_stats_match_structures(view_heap());
}

// A free that finds the heap lock held does not wait for it: it leaves
// the span to the holder, which gives the pages back before it releases
// the lock (and no later), so no free is lost and none outlives the holder.
TEST(Heap, FreeLeavesItsPagesToTheHolderOfTheHeapLock) {
  using namespace rt::internal;
  struct Range {
    uintptr_t base;
    size_t npages;
  };
  std::vector<MSpan*> spans;
  std::vector<Range> ranges;
  for (int i = 0; i < 64; i++) {
    MSpan* s = mheap_alloc(size_t(1 + i % 3), SpanState::kManual, 0);
    ASSERT_NE(s, nullptr);
    spans.push_back(s);
    ranges.push_back({s->startAddr, s->npages});
  }
  // Caller holds heap_lock.
  auto is_free = [](const Range& r) {
    uintptr_t base = 0;
    size_t npages = 0;
    return rt::policy::pagealloc::next_free_run(r.base, &base, &npages) && base == r.base && npages >= r.npages;
  };
  std::atomic<bool> returned{false};
  std::thread freer;
  {
    HeapLockGuard g;
    freer = std::thread([&] {
      for (MSpan* s : spans) mheap_free(s);
      returned.store(true);
    });
    for (int i = 0; i < 10000 && !returned.load(); i++) usleep(1000);
    EXPECT_TRUE(returned.load()) << "mheap_free waited for the heap lock";
    for (const Range& r : ranges) EXPECT_FALSE(is_free(r)) << "freed behind the holder's back";
  }
  freer.join();
  // A bare lock gives back nothing: what the guard's release left stays.
  heap_lock.lock();
  size_t still_allocated = 0;
  for (const Range& r : ranges) still_allocated += is_free(r) ? 0 : 1;
  heap_lock.unlock();
  EXPECT_EQ(still_allocated, 0u);
}

TEST(Malloc, LargeObjectJustOverTheSmallLimit) {
  size_t size = 32768 + 1;
  void* p = mallocgc(size, false);
  MSpan* s = span_of(addr(p));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->startAddr, addr(p));
  EXPECT_EQ(s->npages, 5u);
  EXPECT_EQ(rt::internal::span_class_size(s->spanclass), 0);
  EXPECT_EQ(object_base(addr(p) + size - 1), addr(p));
  EXPECT_TRUE(all_zero(p, size));
  free_object(p);
  EXPECT_EQ(span_of(addr(p)), nullptr);
}

TEST(Malloc, OneGibibyteObject) {
  size_t size = size_t(1) << 30;
  auto* p = static_cast<unsigned char*>(mallocgc(size, false));
  ASSERT_EQ(object_base(addr(p) + size - 1), addr(p));
  for (size_t off = 0; off < size; off += 1 << 20) {
    ASSERT_EQ(p[off], 0);
    p[off] = 1;
  }
  free_object(p);
  rt::free_os_memory();
}

TEST(Malloc, ArenasBeyondTheFirst) {
  // 100 MiB of small objects and one 100 MiB object need several arenas.
  std::vector<void*> objs;
  for (int i = 0; i < 100 * 32; i++) objs.push_back(mallocgc(32 << 10, true));
  auto* big = static_cast<unsigned char*>(mallocgc(100 << 20, false));
  EXPECT_EQ(object_base(addr(big) + (99 << 20)), addr(big));
  big[(100 << 20) - 1] = 7;
  std::set<uintptr_t> arenas;
  for (void* p : objs) arenas.insert(addr(p) >> 26);
  EXPECT_GE(arenas.size(), 2u);
  EXPECT_GE(rt::read_mem_stats().HeapSys, uint64_t(200) << 20);
  for (void* p : objs) free_object(p);
  free_object(big);
}

TEST(Scavenger, ReleasedPagesReadBackAsZero) {
  size_t size = 4 << 20;
  auto* p = static_cast<unsigned char*>(mallocgc(size, false));
  memset(p, 0xab, size);
  free_object(p);
  rt::free_os_memory();
  rt::MemStats st = rt::read_mem_stats();
  EXPECT_GE(st.HeapReleased, size);
  // Released means given back to the kernel: no page of it is resident.
  std::vector<unsigned char> resident(size / size_t(getpagesize()));
  ASSERT_EQ(mincore(p, size, resident.data()), 0) << strerror(errno);
  EXPECT_EQ(std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return (r & 1) != 0; }), 0);
  // First fit hands the same pages back; without zeroing by the
  // allocator (needzero = false) they must still read as zero.
  auto* q = static_cast<unsigned char*>(mallocgc(size, false, false));
  ASSERT_EQ(q, p);
  EXPECT_TRUE(all_zero(q, size));
  EXPECT_LE(rt::read_mem_stats().HeapReleased, st.HeapReleased - size);
  free_object(q);
}

TEST(Scavenger, DirtyPagesAreZeroedOnReuse) {
  size_t size = 1 << 20;
  auto* p = static_cast<unsigned char*>(mallocgc(size, false));
  memset(p, 0xcd, size);
  free_object(p);
  auto* q = static_cast<unsigned char*>(mallocgc(size, false));
  EXPECT_TRUE(all_zero(q, size));
  free_object(q);
}

TEST(Scavenger, MemoryLimitReleasesBeforeGrowing) {
  // Free 64 MiB, then ask for more than is free under a limit: the heap
  // must release the free memory before mapping a new arena.
  void* a = mallocgc(64 << 20, false);
  memset(a, 1, 64 << 20);
  free_object(a);
  rt::MemStats st = rt::read_mem_stats();
  int64_t old = rt::set_memory_limit(int64_t(st.HeapSys - st.HeapReleased + st.StackSys));
  void* b = mallocgc(st.HeapIdle + (64 << 20), false);
  rt::MemStats after = rt::read_mem_stats();
  rt::set_memory_limit(old);
  EXPECT_GT(after.HeapReleased, 0u);
  free_object(b);
}

TEST(MallocDeath, OutOfMemory) {
  EXPECT_EXIT(mallocgc(size_t(1) << 46, false), testing::ExitedWithCode(2),
              "runtime: out of memory: cannot allocate 70368744177664-byte block \\([0-9]+ in use\\)\nfatal error: out of memory");
}

TEST(MallocDeath, FreeOfStackAddress) {
  int local = 0;
  EXPECT_EXIT(free_object(&local), testing::ExitedWithCode(2), "fatal error: free_object: 0x[0-9a-f]+ is not in the heap");
}

TEST(MallocDeath, DoubleFree) {
  EXPECT_EXIT(
      {
        void* p = mallocgc(64, true);
        free_object(p);
        free_object(p);
      },
      testing::ExitedWithCode(2), "fatal error: free_object: 0x[0-9a-f]+ is not an allocated object");
}

TEST(MallocDeath, FreeOfInteriorPointer) {
  EXPECT_EXIT(free_object(static_cast<char*>(mallocgc(64, true)) + 8), testing::ExitedWithCode(2),
              "fatal error: free_object: 0x[0-9a-f]+ is not the start of an object");
}

}  // namespace

namespace {

TEST(MallocDeath, LostAllocCountUpdateIsCaughtInDebugBuild) {
#ifndef RT_DEBUG
  GTEST_SKIP() << "the allocator's debug checks run in --config=dbg only";
#endif
  EXPECT_EXIT(
      {
        void* first = mallocgc(64, false);
        MSpan* s = span_of(addr(first));
        // Fill the span so that the mcache moves on and hands s back.
        for (size_t i = 0; i <= s->nelems && span_of(addr(mallocgc(64, false))) == s; i++) {
        }
        s->allocCount++;  // an update no object accounts for
        free_object(first);
      },
      testing::ExitedWithCode(2), "fatal error: mcentral: span 0x[0-9a-f]+ has allocCount [0-9]+ but [0-9]+ allocated objects");
}

TEST(Stacks, GoroutineStacksLiveInManualSpans) {
  int local = 0;
  MSpan* s = span_of(addr(&local));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state.load(), rt::internal::SpanState::kManual);
  EXPECT_EQ(object_base(addr(&local)), 0u);  // a stack is not a heap object
  rt::MemStats st = rt::read_mem_stats();
  EXPECT_GE(st.StackInuse, s->npages * kPageSize);
  EXPECT_EQ(st.StackInuse, view_heap().census.manual_pages * kPageSize);
}

}  // namespace

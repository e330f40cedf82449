// The scavenger (Go's mgcscavenge.go): returns free heap pages to the OS.
//
// Released pages are madvise(MADV_DONTNEED)'d: the mapping stays, the
// kernel drops the physical pages, and the next touch faults in a zero
// page, so reuse needs neither a call nor zeroing (claim_pages in mheap.cc
// clears their released bits and counts them as clean). HeapArena.released
// marks them; heap_counters.released_pages counts them (HeapReleased).
//
// The scan walks the page allocator's free runs upward from a cursor that
// persists between calls (wrapping once around the heap per call) and
// releases the runs' pages that are not released yet, one stretch at a
// time (unreleased pages of one run inside one arena, at most what is
// left of the request). heap.lock is held only to find a stretch and
// take it from the page allocator (alloc_range), and again to free it:
// madvise runs without the lock, on pages nobody else can be handed
// meanwhile (Go 1.14's scavengeRangeLocked). So no heap.lock hold lasts
// longer than a page-allocator operation, whatever the request. A
// stretch's released bits are set while the scavenger holds it, the only
// time released pages are not free or cached.
//
// Two drivers:
//   - background: a thread (not an M: it never runs goroutines) that keeps
//     the retained heap (mapped minus released) near a goal of 110% of the
//     pages in use (Go's retainExtraPercent), releasing 64 KiB per step and
//     then sleeping 99 times as long as the step took, i.e. about 1% of one
//     CPU; it sleeps 100 ms when there is nothing to do;
//   - synchronous: when the heap grows past the memory limit with
//     retained memory (GOMEMLIMIT, default none), the allocation that grew
//     it releases the excess right after, without heap.lock (mheap.cc
//     mheap_alloc; Go 1.19 does the same in allocSpan).
#include <pthread.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "runtime/mem/mheap.h"
#include "runtime/policy/pagealloc.h"

namespace rt::internal {

namespace {

// Where the next scavenge starts, as a page number (address / kPageSize),
// not an address: the collector scans .bss conservatively, and an address
// would keep the heap object on that page alive.
uintptr_t scav_cursor_page = 0;  // heap_lock
std::atomic<uint64_t> mem_limit{~uint64_t(0)};
constexpr size_t kScavengeStepPages = (64 << 10) / kPageSize;
constexpr int64_t kIdleSleepNs = 100 * 1000 * 1000;
constexpr int64_t kMinSleepNs = 50 * 1000;

bool page_released(HeapArena* ha, size_t page) {
  return (ha->released[page / 64].load(std::memory_order_relaxed) >> (page % 64)) & 1;
}

// The first stretch of unreleased pages in the free run [base, end), in
// one arena and at most budget pages long; false if every page of the run
// is released. *stopped: where the scan of the run stopped.
bool find_stretch(uintptr_t base, uintptr_t end, size_t budget, uintptr_t* stretch, size_t* n, uintptr_t* stopped) {
  uintptr_t a = base;
  while (a < end && page_released(arena_of(a), (a & (kArenaBytes - 1)) / kPageSize)) a += kPageSize;
  *stopped = a;
  if (a == end) return false;
  HeapArena* ha = arena_of(a);
  *stretch = a;
  *n = 0;
  do {
    a += kPageSize;
    ++*n;
  } while (a < end && *n < budget && (a & (kArenaBytes - 1)) != 0 &&
           !page_released(ha, (a & (kArenaBytes - 1)) / kPageSize));
  *stopped = a;
  return true;
}

// Where one scavenge is in its walk around the heap.
struct ScavengeWalk {
  uintptr_t start;  // the cursor when the call began
  uintptr_t addr;   // the next address to look at
  bool wrapped;
};

// heap.lock held: the next stretch of at most budget unreleased free
// pages from walk->addr on, taken from the page allocator; false once the
// walk is back at its start.
bool take_stretch(ScavengeWalk* walk, size_t budget, uintptr_t* stretch, size_t* n) {
  heap_lock.assert_held();
  for (;;) {
    uintptr_t base;
    size_t npages;
    bool found = policy::pagealloc::next_free_run(walk->addr, &base, &npages);
    if (found && walk->wrapped && base >= walk->start) found = false;
    if (!found) {
      if (walk->wrapped) return false;
      walk->wrapped = true;
      walk->addr = 0;
      continue;
    }
    uintptr_t end = base + npages * kPageSize;
    if (walk->wrapped && end > walk->start) end = walk->start;
    uintptr_t stopped;
    bool got = find_stretch(base, end, budget, stretch, n, &stopped);
    walk->addr = stopped;
    scav_cursor_page = stopped / kPageSize;
    if (!got) continue;
    policy::pagealloc::alloc_range(*stretch, *n);
    return true;
  }
}

void* background_scavenger(void*) {
  for (;;) {
    uint64_t inuse = (heap_counters.inuse_pages.load(std::memory_order_relaxed) +
                      heap_counters.manual_pages.load(std::memory_order_relaxed)) *
                     kPageSize;
    uint64_t goal = inuse + inuse / 10;
    if (heap_retained_bytes() <= goal + kScavengeStepPages * kPageSize) {
      usleep_os(kIdleSleepNs / 1000);
      continue;
    }
    int64_t start = nanotime();
    size_t n = scavenge(kScavengeStepPages);
    int64_t took = nanotime() - start;
    if (n == 0) {
      usleep_os(kIdleSleepNs / 1000);
      continue;
    }
    int64_t sleep = took * 99;
    if (sleep < kMinSleepNs) sleep = kMinSleepNs;
    usleep_os(sleep / 1000);
  }
  return nullptr;
}

// GOMEMLIMIT: a byte count with an optional B, KiB, MiB, GiB or TiB
// suffix, or "off"; anything else is ignored.
uint64_t parse_memory_limit(const char* s) {
  if (s == nullptr || *s == 0 || strcmp(s, "off") == 0) return ~uint64_t(0);
  char* end;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s) return ~uint64_t(0);
  static const struct {
    const char* suffix;
    int shift;
  } units[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
  for (const auto& u : units) {
    if (strcmp(end, u.suffix) == 0) return uint64_t(v) << u.shift;
  }
  return ~uint64_t(0);
}

}  // namespace

size_t scavenge(size_t npages) {
  size_t released = 0;
  ScavengeWalk walk{};
  heap_lock.lock();
  walk.start = walk.addr = scav_cursor_page * kPageSize;
  while (released < npages) {
    uintptr_t stretch;
    size_t n;
    if (!take_stretch(&walk, npages - released, &stretch, &n)) break;
    heap_lock.unlock();
    if (madvise(reinterpret_cast<void*>(stretch), n * kPageSize, MADV_DONTNEED) != 0) {
      throw_fatal("scavenger: madvise(MADV_DONTNEED) failed");
    }
    HeapArena* ha = arena_of(stretch);
    for (uintptr_t p = stretch; p < stretch + n * kPageSize; p += kPageSize) {
      size_t i = (p & (kArenaBytes - 1)) / kPageSize;
      ha->released[i / 64].fetch_or(uint64_t(1) << (i % 64), std::memory_order_relaxed);
    }
    heap_counters.released_pages.fetch_add(n, std::memory_order_relaxed);
    released += n;
    heap_lock.lock();
    policy::pagealloc::free(stretch, n);
  }
  heap_lock.unlock();
  return released;
}

uint64_t heap_retained_bytes() {
  return heap_counters.arena_bytes.load(std::memory_order_relaxed) -
         heap_counters.released_pages.load(std::memory_order_relaxed) * kPageSize;
}

void set_memory_limit(uint64_t bytes) { mem_limit.store(bytes, std::memory_order_relaxed); }
uint64_t memory_limit() { return mem_limit.load(std::memory_order_relaxed); }

void start_background_scavenger() {
  set_memory_limit(parse_memory_limit(getenv("GOMEMLIMIT")));
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, background_scavenger, nullptr) != 0) throw_fatal("cannot start the scavenger thread");
  pthread_attr_destroy(&attr);
}

}  // namespace rt::internal

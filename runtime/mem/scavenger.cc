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
// releases the runs' pages that are not released yet. It holds heap.lock
// for the whole step, madvise included, as Go 1.13's scavenger did: the
// pages are free, so nobody else may touch them while the lock is held.
//
// Two drivers:
//   - background: a thread (not an M: it never runs goroutines) that keeps
//     the retained heap (mapped minus released) near a goal of 110% of the
//     pages in use (Go's retainExtraPercent), releasing 64 KiB per step and
//     then sleeping 99 times as long as the step took, i.e. about 1% of one
//     CPU; it sleeps 100 ms when there is nothing to do;
//   - synchronous: before the heap grows, if retained memory plus the
//     growth would exceed the memory limit (GOMEMLIMIT, default none), the
//     excess is released first (mheap.cc grow).
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

// Releases the unreleased pages of the free run [base, base + npages*8K),
// at most `budget`; returns how many, and stores where it stopped.
size_t release_run(uintptr_t base, size_t npages, size_t budget, uintptr_t* stopped) {
  size_t released = 0;
  uintptr_t end = base + npages * kPageSize;
  uintptr_t a = base;
  while (a < end && released < budget) {
    HeapArena* ha = arena_of(a);
    size_t page = (a & (kArenaBytes - 1)) / kPageSize;
    if (page_released(ha, page)) {
      a += kPageSize;
      continue;
    }
    // A stretch of unreleased pages inside this arena.
    uintptr_t s = a;
    size_t n = 0;
    do {
      a += kPageSize;
      n++;
    } while (a < end && released + n < budget && (a & (kArenaBytes - 1)) != 0 &&
             !page_released(ha, (a & (kArenaBytes - 1)) / kPageSize));
    if (madvise(reinterpret_cast<void*>(s), n * kPageSize, MADV_DONTNEED) != 0) {
      throw_fatal("scavenger: madvise(MADV_DONTNEED) failed");
    }
    for (uintptr_t p = s; p < s + n * kPageSize; p += kPageSize) {
      size_t i = (p & (kArenaBytes - 1)) / kPageSize;
      ha->released[i / 64].fetch_or(uint64_t(1) << (i % 64), std::memory_order_relaxed);
    }
    released += n;
  }
  *stopped = a;
  return released;
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

size_t scavenge_locked(size_t npages) {
  heap_lock.assert_held();
  size_t released = 0;
  uintptr_t start = scav_cursor_page * kPageSize;
  uintptr_t addr = start;
  bool wrapped = false;
  while (released < npages) {
    uintptr_t base;
    size_t n;
    bool found = policy::pagealloc::next_free_run(addr, &base, &n);
    if (found && wrapped && base >= start) found = false;
    if (!found) {
      if (wrapped) break;
      wrapped = true;
      addr = 0;
      continue;
    }
    if (wrapped && base + n * kPageSize > start) n = (start - base) / kPageSize;
    uintptr_t stopped;
    released += release_run(base, n, npages - released, &stopped);
    addr = stopped;
  }
  scav_cursor_page = addr / kPageSize;
  heap_counters.released_pages.fetch_add(released, std::memory_order_relaxed);
  return released;
}

size_t scavenge(size_t npages) {
  HeapLockGuard g;
  return scavenge_locked(npages);
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

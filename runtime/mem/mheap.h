// The page heap (Go's mheap.go): arenas, the arena map, span allocation.
//
// Memory comes from the OS in 64 MiB arenas, reserved at increasing
// addresses from a hint (0x00c000000000, as Go) so that the heap stays
// contiguous, and mapped read-write with ordinary commit accounting (the
// kernel refuses a request that can never be backed, which becomes Go's
// "out of memory"; pages are physically committed only when touched).
// The page allocator policy (runtime/policy/pagealloc.h) decides which free
// pages a span gets.
//
// The arena map is two-level: the 47-bit user address space has 2^21
// arenas; arena_l1[i >> 11][i & 2047] points to the arena's HeapArena,
// which maps each of its 8192 pages to the span holding it, records which
// free pages were returned to the OS (released: they read back as zeros
// and were not touched since) and zeroedBase, below which pages may be
// dirty. A span needs zeroing iff one of its pages lies below zeroedBase
// and is not released.
//
// Locking: heap.lock guards the page allocator, arena growth and the
// released bitmaps of free pages. With the radix policy a P's page cache
// serves small spans without it. Span metadata comes from FixAlloc.
// A free never waits for the lock: mheap_free pushes the span on a
// lock-free stack of deferred frees and takes the lock only if it is free;
// every holder gives the stacked spans back (pages and MSpans) right after
// it takes the lock and again before it releases it (HeapLockGuard), so no
// holder sees them allocated once their free has returned and they wait at
// most until the current holder leaves.
// The background sweeper and the allocating goroutine both free a span for
// almost every one they sweep; waiting on each other cost the mutator a
// sleep in the kernel, which on the VM measured here means 1-4 ms before
// it runs again (lock.h).
// Invariants: pages of in-use and manual spans are never free in the page
// allocator; released pages are always free or cached (the scavenger only
// releases pages that are free in the page allocator, and allocation clears
// their bits); inuse_pages counts the pages of kInUse spans and
// manual_pages those of kManual spans.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime/mem/fixalloc.h"
#include "runtime/mem/mspan.h"
#include "runtime/sched/lock.h"

namespace rt::internal {

struct MCache;

constexpr size_t kArenaBytes = size_t(64) << 20;
constexpr size_t kPagesPerArena = kArenaBytes / kPageSize;
constexpr int kAddrBits = 47;
constexpr int kArenaBits = kAddrBits - 26;  // 21
constexpr int kArenaL2Bits = 11;
constexpr int kArenaL1Bits = kArenaBits - kArenaL2Bits;  // 10

struct HeapArena {
  std::atomic<MSpan*> spans[kPagesPerArena];
  std::atomic<uint64_t> released[kPagesPerArena / 64];
  std::atomic<uintptr_t> zeroedBase;  // offset in bytes
};

// Heap-wide counters (pages); read by read_mem_stats.
struct HeapCounters {
  std::atomic<uint64_t> arena_bytes{0};    // mapped arena memory
  std::atomic<uint64_t> inuse_pages{0};    // kInUse spans
  std::atomic<uint64_t> manual_pages{0};   // kManual spans (stacks)
  std::atomic<uint64_t> released_pages{0}; // free pages returned to the OS
  std::atomic<uint64_t> metadata_bytes{0}; // HeapArena records and arena map
  std::atomic<uint64_t> frees{0};          // objects released (free_object)
  std::atomic<uint64_t> dead_mallocs{0};   // counters of destroyed mcaches
  std::atomic<uint64_t> dead_tiny{0};
  // Bytes, for the GC's pacer and MemStats (Go's heapLive, totalAlloc,
  // totalFree). heap_live counts the objects of spans in no mcache plus
  // every slot of spans an mcache holds (reserved when it takes the span,
  // the unused ones given back when it returns it): the collector starts
  // when it reaches the trigger. total_alloc counts objects allocated,
  // folded in when their span leaves the mcache; total_free objects freed.
  std::atomic<uint64_t> heap_live{0};
  std::atomic<uint64_t> total_alloc{0};
  std::atomic<uint64_t> total_free{0};
  // Lowest and highest arena address (a quick test for conservative scans).
  std::atomic<uintptr_t> arena_lo{~uintptr_t(0)};
  std::atomic<uintptr_t> arena_hi{0};
};

extern Lock heap_lock;

// Holds heap_lock for a scope, with the deferred frees given back on
// entry and on exit. Every holder of heap_lock takes it this way.
class HeapLockGuard {
 public:
  HeapLockGuard();
  ~HeapLockGuard();
  HeapLockGuard(const HeapLockGuard&) = delete;
  HeapLockGuard& operator=(const HeapLockGuard&) = delete;
};
// The sweep generation (runtime/gc/mgcsweep.cc): grows by 2 at each mark
// termination; spans allocated now are stamped with it (swept).
extern std::atomic<uint32_t> heap_sweepgen;
extern HeapCounters heap_counters;
extern FixAlloc<MSpan> span_alloc;

void mheap_init();
HeapArena* arena_of(uintptr_t addr);

// Allocates a span of npages. kInUse spans are initialised for spanclass
// (nelems, elemsize, bitmaps); kManual spans only get their pages. Returns
// nullptr when the OS refuses more memory.
MSpan* mheap_alloc(size_t npages, SpanState kind, SpanClass spanclass);
// Returns a span's pages to the page allocator and the span to FixAlloc;
// when the heap lock is held, leaves both to its holder.
void mheap_free(MSpan* s);

// Releases up to npages free, unreleased pages to the OS (madvise
// MADV_DONTNEED), scanning from where the last call stopped; returns the
// number released. Takes heap.lock.
size_t scavenge(size_t npages);
// The same with heap.lock already held (synchronous scavenging on growth).
size_t scavenge_locked(size_t npages);
// Bytes of mapped heap memory not released: what the process keeps.
uint64_t heap_retained_bytes();
// Memory limit for synchronous scavenging on growth (GOMEMLIMIT).
void set_memory_limit(uint64_t bytes);
uint64_t memory_limit();
void start_background_scavenger();

// Calls fn for every in-use and manual span (heap.lock held): for tests.
void for_each_span(void (*fn)(MSpan*, void*), void* arg);

}  // namespace rt::internal

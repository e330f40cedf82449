// mcache: a P's private cache of spans, one per span class (Go's
// mcache.go), plus the tiny allocator's current block and the P's page
// cache for the page-allocator policy.
//
// Only the M that owns the P touches its mcache, so allocation takes no
// lock: alloc[spc] is a span the mcache holds, and the fast path is a
// count-trailing-zeros on its allocCache. An exhausted span goes back to
// its mcentral and a fresh one is fetched (refill). Slots without a span
// point at an empty sentinel span (nelems 0), so the fast path never tests
// for null. A thread without a P uses a shared mcache under a lock.
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/mem/mspan.h"
#include "runtime/policy/pagealloc.h"

namespace rt::internal {

struct MCache {
  uintptr_t tiny = 0;       // current tiny block (16 bytes), or 0
  size_t tinyoffset = 0;    // bytes of it in use
  MSpan* alloc[kNumSpanClasses];
  policy::PageCache pcache;
  bool gc_check = false;  // mallocgc got a fresh span or a large object: test the GC trigger
  // Written by the owner only; read by read_mem_stats.
  std::atomic<uint64_t> nmalloc{0};     // objects (blocks) allocated
  std::atomic<uint64_t> tinyallocs{0};  // tiny allocations packed into an existing block
};

MCache* mcache_alloc();
// Returns every span and cached page, folds the counters into the heap's,
// and frees the mcache (its P is destroyed).
void mcache_free(MCache* c);
// Swaps the exhausted span of class spc for one with free objects; false
// when the heap cannot grow.
bool mcache_refill(MCache* c, SpanClass spc);
// Returns every cached span to its mcentral and forgets the tiny block
// (Go's releaseAll): the collector's mark sees allocBits complete.
void mcache_release_all(MCache* c);
// Forgets the tiny block if it lies in [base, base + size): that block is
// being freed.
void mcache_drop_tiny(MCache* c, uintptr_t base, size_t size);

// MCacheInuse / MCacheSys of MemStats.
size_t mcache_inuse_bytes();
size_t mcache_sys_bytes();
// The span every empty slot points at.
extern MSpan empty_span;

}  // namespace rt::internal

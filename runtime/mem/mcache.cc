// mcache: per-P span cache (see mcache.h).
#include "runtime/mem/mcache.h"

#include "runtime/mem/fixalloc.h"
#include "runtime/mem/mcentral.h"
#include "runtime/mem/mheap.h"

namespace rt::internal {

MSpan empty_span;

namespace {
FixAlloc<MCache> cache_alloc;
}  // namespace

MCache* mcache_alloc() {
  MCache* c = cache_alloc.alloc();
  for (MSpan*& s : c->alloc) s = &empty_span;
  return c;
}

bool mcache_refill(MCache* c, SpanClass spc) {
  MSpan* old = c->alloc[spc];
  if (old != &empty_span) {
    c->alloc[spc] = &empty_span;
    mcentral[spc].uncache_span(old);
  }
  MSpan* s = mcentral[spc].cache_span();
  if (s == nullptr) return false;
  c->alloc[spc] = s;
  return true;
}

void mcache_drop_tiny(MCache* c, uintptr_t base, size_t size) {
  if (c->tiny >= base && c->tiny < base + size) {
    c->tiny = 0;
    c->tinyoffset = 0;
  }
}

void mcache_release_all(MCache* c) {
  for (size_t spc = 0; spc < kNumSpanClasses; spc++) {
    if (c->alloc[spc] != &empty_span) {
      mcentral[spc].uncache_span(c->alloc[spc]);
      c->alloc[spc] = &empty_span;
    }
  }
  c->tiny = 0;
  c->tinyoffset = 0;
}

void mcache_free(MCache* c) {
  mcache_release_all(c);
  if (c->pcache.free_bits != 0) {
    HeapLockGuard g;
    policy::pagealloc::cache_flush(&c->pcache);
  }
  heap_counters.dead_mallocs.fetch_add(c->nmalloc.load(std::memory_order_relaxed), std::memory_order_relaxed);
  heap_counters.dead_tiny.fetch_add(c->tinyallocs.load(std::memory_order_relaxed), std::memory_order_relaxed);
  cache_alloc.free(c);
}

size_t mcache_inuse_bytes() { return cache_alloc.inuse() * sizeof(MCache); }
size_t mcache_sys_bytes() { return cache_alloc.sys_bytes(); }

}  // namespace rt::internal

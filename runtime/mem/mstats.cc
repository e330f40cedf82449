// rt::read_mem_stats and the other public memory controls (rt/mem.h).
#include "rt/mem.h"

#include "runtime/gc/mgc.h"
#include "runtime/mem/malloc.h"
#include "runtime/mem/mcache.h"
#include "runtime/mem/mheap.h"
#include "runtime/sched/runtime2.h"

namespace rt {

MemStats read_mem_stats() {
  using namespace internal;
  MemStats st{};
  uint64_t mallocs = heap_counters.dead_mallocs.load(std::memory_order_relaxed);
  uint64_t tiny = heap_counters.dead_tiny.load(std::memory_order_relaxed);
  // Objects allocated from spans the mcaches still hold count in
  // TotalAlloc only once their span goes back (mcentral.cc): add them.
  uint64_t cached_alloc = 0;
  int32_t procs = gomaxprocs.load();
  for (int32_t i = 0; i < procs; i++) {
    MCache* c = allp[i] != nullptr ? allp[i]->mcache : nullptr;
    if (c == nullptr) continue;
    mallocs += c->nmalloc.load(std::memory_order_relaxed);
    tiny += c->tinyallocs.load(std::memory_order_relaxed);
    for (MSpan* s : c->alloc) {
      uint16_t now = s->allocCount, then = s->allocCountAtCache;
      if (s != &empty_span && now > then) cached_alloc += uint64_t(now - then) * s->elemsize;
    }
  }
  uint64_t nop_mallocs, nop_tiny;
  nop_mcache_counts(&nop_mallocs, &nop_tiny);
  mallocs += nop_mallocs;
  tiny += nop_tiny;
  uint64_t frees = heap_counters.frees.load(std::memory_order_relaxed);
  st.Mallocs = mallocs + tiny;
  st.Frees = frees + tiny;
  st.HeapObjects = mallocs - frees;
  uint64_t arena = heap_counters.arena_bytes.load(std::memory_order_relaxed);
  st.StackInuse = heap_counters.manual_pages.load(std::memory_order_relaxed) * kPageSize;
  st.StackSys = st.StackInuse;
  st.HeapSys = arena - st.StackInuse;
  st.HeapInuse = heap_counters.inuse_pages.load(std::memory_order_relaxed) * kPageSize;
  st.HeapIdle = st.HeapSys - st.HeapInuse;
  st.HeapReleased = heap_counters.released_pages.load(std::memory_order_relaxed) * kPageSize;
  st.MSpanInuse = span_alloc.inuse() * sizeof(MSpan);
  st.MSpanSys = span_alloc.sys_bytes();
  st.MCacheInuse = mcache_inuse_bytes();
  st.MCacheSys = mcache_sys_bytes();
  st.OtherSys = heap_counters.metadata_bytes.load(std::memory_order_relaxed);
  st.Sys = st.HeapSys + st.StackSys + st.MSpanSys + st.MCacheSys + st.OtherSys;
  st.TotalAlloc = heap_counters.total_alloc.load(std::memory_order_relaxed) + cached_alloc;
  uint64_t freed = heap_counters.total_free.load(std::memory_order_relaxed);
  st.HeapAlloc = st.TotalAlloc > freed ? st.TotalAlloc - freed : 0;
  gc_read_stats(&st);
  return st;
}

void free_os_memory() { internal::scavenge(~size_t(0) / 2); }

int64_t set_memory_limit(int64_t bytes) {
  uint64_t old = internal::memory_limit();
  if (bytes >= 0) {
    internal::set_memory_limit(uint64_t(bytes));
    internal::gc_update_goal();
  }
  return old > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(old);
}

}  // namespace rt

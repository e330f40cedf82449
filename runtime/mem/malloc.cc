// mallocgc, free_object and the object lookups (see malloc.h).
#include "runtime/mem/malloc.h"

#include <cstdio>
#include <cstring>

#include "rt/gc.h"
#include "runtime/gc/mgc.h"

#include "runtime/mem/mcache.h"
#include "runtime/mem/mcentral.h"
#include "runtime/mem/mheap.h"
#include "runtime/sched/runtime2.h"

namespace rt::internal {

uint64_t zerobase;

namespace {

// The mcache of threads that hold no P (Go's mcache0 plays this role only
// during bootstrap; here any such thread may allocate, one at a time).
Lock nop_lock{LockRank::kNopMcache};
MCache* nop_mcache = nullptr;

[[noreturn]] void out_of_memory(size_t size) {
  uint64_t inuse = heap_counters.inuse_pages.load(std::memory_order_relaxed) * kPageSize;
  fprintf(stderr, "runtime: out of memory: cannot allocate %zu-byte block (%llu in use)\n", size,
          static_cast<unsigned long long>(inuse));
  throw_fatal("out of memory");
}

// Go's nextFreeFast: the next free object of s from its allocCache, or 0.
inline uintptr_t next_free_fast(MSpan* s) {
  if (s->allocCache == 0) return 0;
  size_t bit = size_t(__builtin_ctzll(s->allocCache));
  size_t idx = s->freeindex.load(std::memory_order_relaxed);
  size_t result = idx + bit;
  if (result >= s->nelems) return 0;
  size_t next = result + 1;
  if (next % 64 == 0 && next != s->nelems) return 0;
  s->allocCache >>= bit;
  s->allocCache >>= 1;
  s->freeindex.store(uint16_t(next), std::memory_order_relaxed);
  s->allocCount++;
  return s->startAddr + result * s->elemsize;
}

uintptr_t next_free(MCache* c, SpanClass spc, size_t size, MSpan** span) {
  MSpan* s = c->alloc[spc];
  size_t idx = s->next_free_index();
  if (idx == s->nelems) {
    if (!mcache_refill(c, spc)) out_of_memory(size);
    c->gc_check = true;
    s = c->alloc[spc];
    idx = s->next_free_index();
    if (idx == s->nelems) throw_fatal("mallocgc: fresh span has no free object");
  }
  s->allocCount++;
  *span = s;
  return s->startAddr + idx * s->elemsize;
}

void* alloc_small(MCache* c, size_t size, bool scan, bool needzero) {
  if (!scan && size < kTinySize) {
    size_t off = c->tinyoffset;
    if ((size & 7) == 0) {
      off = (off + 7) & ~size_t(7);
    } else if ((size & 3) == 0) {
      off = (off + 3) & ~size_t(3);
    } else if ((size & 1) == 0) {
      off = (off + 1) & ~size_t(1);
    }
    if (c->tiny != 0 && off + size <= kTinySize) {
      c->tinyoffset = off + size;
      c->tinyallocs.store(c->tinyallocs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      return reinterpret_cast<void*>(c->tiny + off);
    }
    SpanClass spc = make_span_class(kTinySizeClass, true);
    MSpan* s = c->alloc[spc];
    uintptr_t v = next_free_fast(s);
    if (v == 0) v = next_free(c, spc, size, &s);
    if (__builtin_expect(debug_clobberfree, 0)) check_clobbered(v, kTinySize);
    auto* block = reinterpret_cast<uint64_t*>(v);
    block[0] = 0;
    block[1] = 0;
    // Keep whichever block has more room left.
    if (size < c->tinyoffset || c->tiny == 0) {
      c->tiny = v;
      c->tinyoffset = size;
    }
    return block;
  }
  SpanClass spc = make_span_class(size_to_class(size), !scan);
  MSpan* s = c->alloc[spc];
  uintptr_t v = next_free_fast(s);
  if (v == 0) v = next_free(c, spc, size, &s);
  if (needzero && s->needzero) {
    // A freed slot is dirty (needzero), so this is where clobberfree's
    // pattern is checked.
    if (__builtin_expect(debug_clobberfree, 0)) check_clobbered(v, s->elemsize);
    memset(reinterpret_cast<void*>(v), 0, s->elemsize);
  }
  return reinterpret_cast<void*>(v);
}

void* alloc_large(MCache* c, size_t size, bool scan, bool needzero) {
  size_t npages = size / kPageSize + (size % kPageSize != 0 ? 1 : 0);
  if (size + kPageSize < size) out_of_memory(size);
  uint64_t sweep_mark = gc_alloc_sweep_mark();
  gc_deduct_sweep_credit(npages * kPageSize, npages);
  gc_reclaim(npages);
  gc_alloc_sweep_done(sweep_mark);
  MSpan* s = mheap_alloc(npages, SpanState::kInUse, make_span_class(0, !scan));
  if (s == nullptr) out_of_memory(size);
  s->freeindex.store(1, std::memory_order_relaxed);
  s->allocCount = 1;
  uint64_t bytes = uint64_t(npages) * kPageSize;
  heap_counters.heap_live.fetch_add(bytes, std::memory_order_relaxed);
  heap_counters.total_alloc.fetch_add(bytes, std::memory_order_relaxed);
  c->gc_check = true;
  if (needzero && s->needzero) memset(reinterpret_cast<void*>(s->startAddr), 0, size);
  return reinterpret_cast<void*>(s->startAddr);
}

}  // namespace

void mallocinit() {
  for (size_t i = 0; i < kNumSpanClasses; i++) mcentral[i].spanclass = SpanClass(i);
  mheap_init();
  nop_mcache = mcache_alloc();
  start_background_scavenger();
}

void* mallocgc(size_t size, bool scan, bool needzero) {
  if (size == 0) return &zerobase;
  M* mp = getm();
  P* pp = mp != nullptr ? mp->p : nullptr;
  MCache* c = pp != nullptr ? pp->mcache : nullptr;
  if (c == nullptr) {
    LockGuard g(nop_lock);
    void* v = size <= kMaxSmallSize ? alloc_small(nop_mcache, size, scan, needzero)
                                    : alloc_large(nop_mcache, size, scan, needzero);
    nop_mcache->nmalloc.store(nop_mcache->nmalloc.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (__builtin_expect(gc_marking(), 0)) gc_mark_new_object_p(reinterpret_cast<uintptr_t>(v), nullptr);
    return v;
  }
  // Not preemptible while the mcache is in use: the goroutine must not
  // move to another P half way.
  mp->locks++;
  void* v;
  if (size <= kMaxSmallSize) {
    uint64_t tiny_before = c->tinyallocs.load(std::memory_order_relaxed);
    v = alloc_small(c, size, scan, needzero);
    if (c->tinyallocs.load(std::memory_order_relaxed) == tiny_before) {
      c->nmalloc.store(c->nmalloc.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
  } else {
    v = alloc_large(c, size, scan, needzero);
    c->nmalloc.store(c->nmalloc.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  // A fresh span or a large object moved heap_live: time to see whether
  // it reached the GC trigger (Go's shouldhelpgc). Read before the P can
  // be lost: nothing here is a safe point, but the check must be ours.
  bool check = c->gc_check;
  c->gc_check = false;
  // While the collector marks, new objects are black, and the allocating
  // goroutine pays for its allocation with mark work (assists).
  bool marking = gc_marking();
  if (__builtin_expect(marking, 0)) gc_mark_new_object_p(reinterpret_cast<uintptr_t>(v), pp);
  mp->locks--;
  if (__builtin_expect(marking, 0)) {
    G* gp = getg();
    if (gp != mp->g0) {
      gp->gc_assist_bytes -= int64_t(size);
      if (gp->gc_assist_bytes < 0) gc_assist_alloc(gp);
    }
  }
  if (__builtin_expect(check, 0)) {
    gc_heap_trigger_check();
    // The assist and the trigger check may park the goroutine, which can
    // resume on another M and P: pp may now be another goroutine's.
    if (marking) gc_yield_to_fractional_worker(getm()->p);
  }
  // A safe point, as every Go function's prologue is: a loop that only
  // allocates still stops for a stop-the-world or a stack scan promptly
  // (the signal variant refuses to stop it inside mallocgc, m->locks).
  preempt_check();
  return v;
}

void nop_mcache_lock() { nop_lock.lock(); }
void nop_mcache_unlock() { nop_lock.unlock(); }
MCache* nop_mcache_locked() {
  nop_lock.assert_held();
  return nop_mcache;
}

void nop_mcache_counts(uint64_t* mallocs, uint64_t* tinyallocs) {
  LockGuard g(nop_lock);
  *mallocs = nop_mcache->nmalloc.load(std::memory_order_relaxed);
  *tinyallocs = nop_mcache->tinyallocs.load(std::memory_order_relaxed);
}

MSpan* span_of(uintptr_t addr) {
  HeapArena* ha = arena_of(addr);
  if (ha == nullptr) return nullptr;
  MSpan* s = ha->spans[(addr & (kArenaBytes - 1)) / kPageSize].load(std::memory_order_relaxed);
  if (s == nullptr || s->state.load(std::memory_order_acquire) == SpanState::kDead) return nullptr;
  if (addr < s->startAddr || addr >= s->end()) return nullptr;
  return s;
}

uintptr_t object_base(uintptr_t addr) {
  MSpan* s = span_of(addr);
  if (s == nullptr || s->state.load(std::memory_order_relaxed) != SpanState::kInUse || addr >= s->limit) return 0;
  size_t idx = s->object_index(addr);
  if (!s->is_allocated(idx)) return 0;
  return s->startAddr + idx * s->elemsize;
}

void free_object(void* p) {
  uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  MSpan* s = span_of(addr);
  char buf[128];
  if (s == nullptr || s->state.load(std::memory_order_acquire) != SpanState::kInUse || addr >= s->limit) {
    snprintf(buf, sizeof buf, "free_object: %#lx is not in the heap", static_cast<unsigned long>(addr));
    throw_fatal(buf);
  }
  size_t idx = s->object_index(addr);
  if (s->startAddr + idx * s->elemsize != addr) {
    snprintf(buf, sizeof buf, "free_object: %#lx is not the start of an object", static_cast<unsigned long>(addr));
    throw_fatal(buf);
  }
  gc_ensure_swept(s);
  // While marking, the object's mark must not keep it allocated.
  if (gcphase.load(std::memory_order_acquire) != kGCoff) gc_clear_mark(s, idx);
  heap_counters.frees.fetch_add(1, std::memory_order_relaxed);
  if (span_class_size(s->spanclass) == 0) {
    if (s->allocCount != 1) {
      snprintf(buf, sizeof buf, "free_object: %#lx is not an allocated object", static_cast<unsigned long>(addr));
      throw_fatal(buf);
    }
    s->allocCount = 0;
    heap_counters.heap_live.fetch_sub(s->npages * kPageSize, std::memory_order_relaxed);
    heap_counters.total_free.fetch_add(s->npages * kPageSize, std::memory_order_relaxed);
    mheap_free(s);
    return;
  }
  if (s->spanclass == make_span_class(kTinySizeClass, true)) {
    M* mp = getm();
    if (mp != nullptr && mp->p != nullptr && mp->p->mcache != nullptr) mcache_drop_tiny(mp->p->mcache, addr, kTinySize);
    LockGuard g(nop_lock);
    mcache_drop_tiny(nop_mcache, addr, kTinySize);
  }
  mcentral[s->spanclass].free_object(s, idx);
}

size_t roundupsize(size_t size) {
  if (size <= kMaxSmallSize) return size == 0 ? 0 : kClassToSize[size_to_class(size)];
  if (size + kPageSize < size) return size;
  return (size + kPageSize - 1) & ~(kPageSize - 1);
}

void* gc_alloc(size_t size, bool scan) { return mallocgc(size, scan); }
size_t gc_roundupsize(size_t size) { return roundupsize(size); }

}  // namespace rt::internal

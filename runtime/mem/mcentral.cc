// mcentral: spans of one class between mcaches and the heap (see
// mcentral.h for the lists, the pending frees and the invariants).
#include "runtime/mem/mcentral.h"

#include <cstdio>

#include "runtime/gc/mgc.h"
#include "runtime/mem/mheap.h"

namespace rt::internal {

MCentral mcentral[kNumSpanClasses];

namespace {

size_t count_bits(const uint8_t* bits, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n / 8; i++) c += size_t(__builtin_popcount(bits[i]));
  if (n % 8 != 0) c += size_t(__builtin_popcount(bits[n / 8] & ((1u << (n % 8)) - 1)));
  return c;
}

[[noreturn]] void bad_free(uintptr_t addr, const char* what) {
  char buf[128];
  snprintf(buf, sizeof buf, "free_object: %#lx %s", static_cast<unsigned long>(addr), what);
  throw_fatal(buf);
}

// Debug-build checks (--config=dbg); they compile to nothing otherwise.

// A span in no mcache: allocCount is the number of allocated objects.
void check_alloc_count(const MSpan* s) {
#ifdef RT_DEBUG
  if (s->allocCount != count_bits(s->allocBits, s->nelems)) {
    char buf[128];
    snprintf(buf, sizeof buf, "mcentral: span %#lx has allocCount %u but %zu allocated objects",
             static_cast<unsigned long>(s->startAddr), unsigned(s->allocCount), count_bits(s->allocBits, s->nelems));
    throw_fatal(buf);
  }
#else
  (void)s;
#endif
}

#ifdef RT_DEBUG
// Span s, on one of c's lists: linked into it both ways, of c's class, in
// use, in no mcache, on the list its fill says (partial: some objects
// free; full: none), with a true allocCount.
void check_listed_span(const MCentral* c, const MSpan* s) {
  const SpanList* list = s->list;
  if (list != &c->partial && list != &c->full) throw_fatal("mcentral: span on a list of another mcentral");
  if ((s->prev == nullptr ? list->first != s : s->prev->next != s) || (s->next != nullptr && s->next->prev != s)) {
    throw_fatal("mcentral: broken span list links");
  }
  if (s->spanclass != c->spanclass || s->state.load(std::memory_order_relaxed) != SpanState::kInUse) {
    throw_fatal("mcentral: span of another class or state on the list");
  }
  if (s->incache) throw_fatal("mcentral: span held by an mcache is on a list");
  bool full = list == &c->full;
  if ((s->allocCount == s->nelems) != full || s->allocCount == 0) {
    throw_fatal(full ? "mcentral: span with free objects on the full list"
                     : "mcentral: full or empty span on the partial list");
  }
  check_alloc_count(s);
}
#endif

// After a change to c's lists that involved span s (the caller holds c's
// lock): s, if listed, and its neighbours are checked at once; both whole
// lists (each span, and the counts against the links) once every
// partial.count + full.count changes, which keeps the cost per change
// constant however long the lists grow.
void check_lists(MCentral* c, const MSpan* s) {
#ifdef RT_DEBUG
  c->lock.assert_held();
  if (s->list != nullptr) {
    check_listed_span(c, s);
    if (s->prev != nullptr) check_listed_span(c, s->prev);
    if (s->next != nullptr) check_listed_span(c, s->next);
  }
  if (++c->changes_since_check < c->partial.count + c->full.count) return;
  c->changes_since_check = 0;
  for (const SpanList* list : {&c->partial, &c->full}) {
    size_t n = 0;
    for (const MSpan* x = list->first; x != nullptr; x = x->next, n++) check_listed_span(c, x);
    if (n != list->count) throw_fatal("mcentral: span list count does not match its links");
  }
#else
  (void)c;
  (void)s;
#endif
}

}  // namespace

MSpan* MCentral::take_partial() {
  for (size_t swept = 0; swept < kLazySweepPages; swept += kClassToPages[span_class_size(spanclass)]) {
    MSpan* s = partial.first;
    if (s == nullptr) return nullptr;
    if (__atomic_load_n(&s->sweepgen, __ATOMIC_ACQUIRE) == heap_sweepgen.load(std::memory_order_acquire)) {
      partial.remove(s);
      check_alloc_count(s);
      check_lists(this, s);
      return s;
    }
    gc_sweep_in_mcentral(s, this);
  }
  return nullptr;
}

MSpan* MCentral::cache_span() {
  const size_t npages = kClassToPages[span_class_size(spanclass)];
  uint64_t sweep_mark = gc_alloc_sweep_mark();
  gc_deduct_sweep_credit(npages * kPageSize, 0);
  lock.lock();
  MSpan* s = take_partial();
  if (s == nullptr) {
    lock.unlock();
    gc_reclaim(npages);
    lock.lock();
    s = take_partial();
  }
  gc_alloc_sweep_done(sweep_mark);
  if (s == nullptr) {
    lock.unlock();
    s = mheap_alloc(npages, SpanState::kInUse, spanclass);
    if (s == nullptr) return nullptr;
    if (debug_clobberfree) {  // every free slot holds the pattern (mgc.h)
      clobber_object(s->startAddr, s->limit - s->startAddr);
      s->needzero = true;
    }
    lock.lock();
  }
  s->incache = true;
  s->allocCountAtCache = s->allocCount;
  lock.unlock();
  if (s->freeindex.load(std::memory_order_relaxed) != 0) throw_fatal("mcentral: cached span has freeindex != 0");
  heap_counters.heap_live.fetch_add(uint64_t(s->nelems - s->allocCount) * s->elemsize, std::memory_order_relaxed);
  s->refill_alloc_cache(0);
  return s;
}

void MCentral::uncache_span(MSpan* s) {
  lock.lock();
  if (!s->incache) throw_fatal("mcentral: uncache of a span not in an mcache");
  heap_counters.total_alloc.fetch_add(uint64_t(s->allocCount - s->allocCountAtCache) * s->elemsize,
                                      std::memory_order_relaxed);
  size_t fi = s->freeindex.load(std::memory_order_relaxed);
  for (size_t i = 0; i < fi; i++) MSpan::set_bit(s->allocBits, i);
  if (s->npendingFree != 0) {
    for (size_t b = 0; b < kSpanBitmapBytes; b++) {
      MSpan::store_byte(&s->allocBits[b], uint8_t(s->allocBits[b] & ~s->pendingFree[b]));
      MSpan::store_byte(&s->pendingFree[b], 0);
    }
    s->npendingFree = 0;
    s->needzero = true;
  }
  s->freeindex.store(0, std::memory_order_relaxed);
  s->allocCount = uint16_t(count_bits(s->allocBits, s->nelems));
  s->incache = false;
  heap_counters.heap_live.fetch_sub(uint64_t(s->nelems - s->allocCount) * s->elemsize, std::memory_order_relaxed);
  if (s->allocCount == 0) {
    lock.unlock();
    mheap_free(s);
    return;
  }
  if (s->allocCount == s->nelems) {
    full.push(s);
  } else {
    partial.push(s);
  }
  check_lists(this, s);
  lock.unlock();
}

void MCentral::free_object(MSpan* s, size_t index) {
  uintptr_t addr = s->startAddr + index * s->elemsize;
  lock.lock();
  if (s->state.load(std::memory_order_acquire) != SpanState::kInUse || s->spanclass != spanclass) {
    lock.unlock();
    bad_free(addr, "is not in an in-use span");
  }
  if (!s->is_allocated(index)) {
    lock.unlock();
    bad_free(addr, "is not an allocated object (double free?)");
  }
  heap_counters.total_free.fetch_add(s->elemsize, std::memory_order_relaxed);
  if (debug_clobberfree) clobber_object(addr, s->elemsize);
  if (s->incache) {
    MSpan::set_bit(s->pendingFree, index);
    s->npendingFree++;
    lock.unlock();
    return;
  }
  MSpan::clear_bit(s->allocBits, index);
  heap_counters.heap_live.fetch_sub(s->elemsize, std::memory_order_relaxed);
  s->needzero = true;
  if (s->allocCount == s->nelems) {
    full.remove(s);
    partial.push(s);
  }
  s->allocCount--;
  check_alloc_count(s);
  if (s->allocCount == 0) {
    partial.remove(s);
    lock.unlock();
    mheap_free(s);
    return;
  }
  check_lists(this, s);
  lock.unlock();
}

}  // namespace rt::internal

// Sweeping (Go's mgcsweep.go and mspan.sweep), with the world stopped.
//
// After mark, a span's gcmarkBits hold exactly its reachable objects.
// Sweeping a span makes them its allocation state: allocBits and
// gcmarkBits swap (the old allocBits, cleared, become the next cycle's
// mark bits), allocCount becomes the number of marked objects, and the
// unmarked ones are free slots for the next mcache that takes the span.
// The span then goes to its mcentral's partial or full list, or, with no
// object left, back to the page heap (mheap_free), so the freed pages are
// free in whichever page allocator is linked (treap or radix) and the
// scavenger can return them to the OS. A large object's span (class 0)
// is freed whole when its one object is unmarked.
//
// With GODEBUG=clobberfree=1 every object freed in a span that stays in
// use is filled with kClobberPattern (mgc.h), which mallocgc checks when
// it hands the slot out again.
//
// sweepgen: every span swept in cycle n has sweepgen n; the sweeper
// checks that no span it meets was swept already in this cycle (each is
// swept exactly once) and that no mcache holds it (mark termination
// flushed every mcache). Freed slots may hold old data: needzero is set so
// mallocgc clears them.
#include <cstring>

#include "runtime/gc/mgc.h"
#include "runtime/mem/mcentral.h"
#include "runtime/mem/mheap.h"
#include "runtime/sched/runtime2.h"

namespace rt::internal {

namespace {

struct SweepState {
  uint32_t sweepgen;
  SweepResult result;
};

size_t count_marked(const MSpan* s) {
  size_t n = 0;
  for (size_t i = 0; i < size_t(s->nelems + 7) / 8; i++) n += size_t(__builtin_popcount(s->gcmarkBits[i]));
  return n;
}

void sweep_span(MSpan* s, void* arg) {
  auto* st = static_cast<SweepState*>(arg);
  if (s->state.load(std::memory_order_relaxed) != SpanState::kInUse) return;
  if (s->sweepgen == st->sweepgen) throw_fatal("gc: span swept twice in one cycle");
  if (s->incache) throw_fatal("gc: sweep of a span an mcache holds");
  s->sweepgen = st->sweepgen;
  if (span_class_size(s->spanclass) == 0) {
    if (MSpan::bit(s->gcmarkBits, 0)) {
      MSpan::clear_bit(s->gcmarkBits, 0);
      return;
    }
    uint64_t bytes = uint64_t(s->npages) * kPageSize;
    st->result.freed_bytes += bytes;
    st->result.freed_objects++;
    st->result.freed_spans++;
    s->allocCount = 0;
    mheap_free(s);
    return;
  }
  MCentral* c = &mcentral[s->spanclass];
  c->lock.lock();
  size_t live = count_marked(s);
  if (live > s->allocCount) throw_fatal("gc: span has more marked objects than allocated ones");
  size_t freed = s->allocCount - live;
  if (debug_clobberfree && freed != 0 && live != 0) {
    for (size_t i = 0; i < s->nelems; i++) {
      if (MSpan::bit(s->allocBits, i) && !MSpan::bit(s->gcmarkBits, i)) {
        clobber_object(s->startAddr + i * s->elemsize, s->elemsize);
      }
    }
  }
  uint8_t* old_alloc = s->allocBits;
  s->allocBits = s->gcmarkBits;
  s->gcmarkBits = old_alloc;
  memset(s->gcmarkBits, 0, kSpanBitmapBytes);
  if (s->list == &c->full) {
    c->full.remove(s);
  } else {
    c->partial.remove(s);
  }
  s->allocCount = uint16_t(live);
  if (freed != 0) s->needzero = true;
  st->result.freed_bytes += uint64_t(freed) * s->elemsize;
  st->result.freed_objects += freed;
  if (live == 0) {
    c->lock.unlock();
    st->result.freed_spans++;
    mheap_free(s);
    return;
  }
  (live == s->nelems ? c->full : c->partial).push(s);
  c->lock.unlock();
}

}  // namespace

SweepResult gc_sweep(uint32_t sweepgen) {
  SweepState st{sweepgen, {}};
  for_each_span(sweep_span, &st);
  heap_counters.frees.fetch_add(st.result.freed_objects, std::memory_order_relaxed);
  heap_counters.total_free.fetch_add(st.result.freed_bytes, std::memory_order_relaxed);
  return st.result;
}

}  // namespace rt::internal

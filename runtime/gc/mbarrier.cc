// The write barrier (Go's mbarrier.go; proposal 17503's hybrid barrier).
//
// While the collector marks, every store of a reference p into a slot of
// the heap, a global or a stack shades both the reference it overwrites
// (*slot: a Yuasa deletion barrier, so an object a scanned stack still
// holds cannot be hidden from the marker by unlinking it) and p itself (a
// Dijkstra insertion barrier, so an object a stack not yet scanned hands
// to a black object is not lost when that stack drops it). Go shades p
// only while the storing goroutine's stack is grey; this runtime cannot
// tell a Ref on the stack from one in the heap cheaply, so it always does,
// as Go's implementation does too. Together with allocate-black this is
// what lets each stack be scanned once, with no rescan at mark
// termination.
//
// The barrier runs with m->locks held, so the goroutine cannot lose its P
// (whose GcWork receives the grey objects) or be stopped between shading
// and the store: mark termination, which stops the world, sees either
// neither or both. A thread without a P shades into the shared GcWork.
// The store is an atomic word store: the marker may be reading the slot.
#include "runtime/mem/mbarrier.h"

#include <atomic>
#include <cstdint>

#include "runtime/gc/mgc.h"
#include "runtime/gc/mgcwork.h"
#include "runtime/sched/runtime2.h"

extern "C" __attribute__((used)) unsigned char rt_write_barrier_enabled = 0;

namespace rt::internal {

namespace {

// Runs fn(gcw, arg) with the GcWork this thread may use.
template <class F>
void with_gcw(F&& fn) {
  M* mp = getm();
  if (mp != nullptr && mp->p != nullptr) {
    mp->locks++;
    fn(gcw_of(mp->p));
    mp->locks--;
    return;
  }
  GcWork* gcw = nop_gcw_lock();
  fn(gcw);
  nop_gcw_unlock();
}

__attribute__((no_sanitize("address", "thread"))) void shade_words(const void* p, size_t n, GcWork* gcw) {
  auto a = reinterpret_cast<uintptr_t>(p);
  uintptr_t e = a + n;
  for (a = (a + 7) & ~uintptr_t(7); a + 8 <= e; a += 8) {
    gc_shade(__atomic_load_n(reinterpret_cast<const uintptr_t*>(a), __ATOMIC_RELAXED), gcw);
  }
}

}  // namespace

void write_barrier_store(void** slot, void* v) {
  with_gcw([&](GcWork* gcw) {
    // The flag may have gone off since the inline test (the call was
    // preemptible): then this is a plain store.
    if (gc_marking()) {
      gc_shade(reinterpret_cast<uintptr_t>(__atomic_load_n(slot, __ATOMIC_RELAXED)), gcw);
      gc_shade(reinterpret_cast<uintptr_t>(v), gcw);
    }
    __atomic_store_n(slot, v, __ATOMIC_RELAXED);
  });
}

void bulk_barrier(const void* dst, const void* src, size_t n) {
  with_gcw([&](GcWork* gcw) {
    if (!gc_marking()) return;
    shade_words(dst, n, gcw);
    shade_words(src, n, gcw);
  });
}

}  // namespace rt::internal

// The page heap: arena reservation, the arena map, span allocation and
// release (see mheap.h for the design and invariants).
#include "runtime/mem/mheap.h"

#include <errno.h>
#include <sys/mman.h>

#include <cstring>

#include "runtime/gc/mgc.h"
#include "runtime/mem/mcache.h"
#include "runtime/policy/pagealloc.h"
#include "runtime/sched/faultinject.h"
#include "runtime/sched/runtime2.h"

namespace rt::internal {

Lock heap_lock{LockRank::kMheap};
std::atomic<uint32_t> heap_sweepgen{0};
HeapCounters heap_counters;
FixAlloc<MSpan> span_alloc;

void SpanList::throw_fatal_span_list() { throw_fatal("span list: span is on another list"); }

namespace {

using ArenaL2 = std::atomic<HeapArena*>;
std::atomic<ArenaL2*> arena_l1[size_t(1) << kArenaL1Bits];
#ifdef RT_TSAN
// ThreadSanitizer shadows only its application ranges, and 0xc0 << 32
// lies outside them (its low range ends at 0x80 << 32).
uintptr_t arena_hint = uintptr_t(0x10) << 32;  // heap_lock
#else
uintptr_t arena_hint = uintptr_t(0xc0) << 32;  // heap_lock
#endif
constexpr uintptr_t kAddrLimit = uintptr_t(1) << kAddrBits;

void* map_metadata(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw_fatal("out of memory allocating heap metadata");
  heap_counters.metadata_bytes.fetch_add(bytes, std::memory_order_relaxed);
  return p;
}

// mmap for arena memory, through the test-only injection point
// (faultinject.h) that makes it fail as the OS would.
void* arena_mmap(void* addr, size_t bytes, int flags) {
  if (int err = injected_fault(FaultPoint::kArenaMap)) {
    errno = err;
    return MAP_FAILED;
  }
  return mmap(addr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
}

// Maps `bytes` (a multiple of kArenaBytes) of arena memory: at the hint
// while the hint works, else anywhere (aligned). 0 if the OS refuses.
uintptr_t sys_reserve_arena(size_t bytes) {
  for (int tries = 0; tries < 64 && arena_hint + bytes <= kAddrLimit && arena_hint + bytes > arena_hint; tries++) {
    void* want = reinterpret_cast<void*>(arena_hint);
    void* p = arena_mmap(want, bytes, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE);
    if (p == MAP_FAILED) {
      if (errno == ENOMEM) return 0;
      arena_hint += kArenaBytes;  // something else lives there
      continue;
    }
    if (p != want) {  // a kernel without MAP_FIXED_NOREPLACE treats it as a hint
      munmap(p, bytes);
      arena_hint += kArenaBytes;
      continue;
    }
    arena_hint += bytes;
    return reinterpret_cast<uintptr_t>(p);
  }
  if (bytes + kArenaBytes < bytes) return 0;
  void* p = arena_mmap(nullptr, bytes + kArenaBytes, MAP_PRIVATE | MAP_ANONYMOUS);
  if (p == MAP_FAILED) return 0;
  uintptr_t raw = reinterpret_cast<uintptr_t>(p);
  uintptr_t base = (raw + kArenaBytes - 1) & ~(kArenaBytes - 1);
  if (base > raw) munmap(p, base - raw);
  if (raw + kArenaBytes > base) munmap(reinterpret_cast<void*>(base + bytes), raw + kArenaBytes - base);
  if (base + bytes > kAddrLimit) {
    munmap(reinterpret_cast<void*>(base), bytes);
    return 0;
  }
  return base;
}

void register_arena(uintptr_t base) {
  size_t ai = base >> 26;
  ArenaL2* l2 = arena_l1[ai >> kArenaL2Bits].load(std::memory_order_acquire);
  if (l2 == nullptr) {
    l2 = static_cast<ArenaL2*>(map_metadata(sizeof(ArenaL2) << kArenaL2Bits));
    arena_l1[ai >> kArenaL2Bits].store(l2, std::memory_order_release);
  }
  auto* ha = static_cast<HeapArena*>(map_metadata(sizeof(HeapArena)));
  l2[ai & ((size_t(1) << kArenaL2Bits) - 1)].store(ha, std::memory_order_release);
}

// Adds at least npages of fresh arena memory to the page allocator
// (heap_lock held). First returns memory to the OS if the growth would
// push the retained heap past the memory limit.
bool grow(size_t npages) {
  heap_lock.assert_held();
  size_t bytes = (npages * kPageSize + kArenaBytes - 1) & ~(kArenaBytes - 1);
  if (bytes < npages * kPageSize) return false;
  uint64_t retained = heap_retained_bytes();
  uint64_t limit = memory_limit();
  if (retained + bytes > limit) {
    uint64_t over = retained + bytes - limit;
    scavenge_locked(size_t((over + kPageSize - 1) / kPageSize));
  }
  uintptr_t base = sys_reserve_arena(bytes);
  if (base == 0) return false;
  for (uintptr_t a = base; a < base + bytes; a += kArenaBytes) register_arena(a);
  if (base < heap_counters.arena_lo.load(std::memory_order_relaxed)) {
    heap_counters.arena_lo.store(base, std::memory_order_release);
  }
  if (base + bytes > heap_counters.arena_hi.load(std::memory_order_relaxed)) {
    heap_counters.arena_hi.store(base + bytes, std::memory_order_release);
  }
  policy::pagealloc::grow(base, bytes / kPageSize);
  heap_counters.arena_bytes.fetch_add(bytes, std::memory_order_relaxed);
  return true;
}

uint64_t range_mask(size_t lo, size_t hi) {  // bits [lo, hi) of a word
  uint64_t upper = hi >= 64 ? ~uint64_t(0) : (uint64_t(1) << hi) - 1;
  return upper & (~uint64_t(0) << lo);
}

// Takes ownership of freshly allocated pages: clears their released bits
// (they fault back in as zeros) and reports whether any of them may hold
// old data. Lock-free: no one else touches the bits of allocated pages,
// and the words are shared with free pages only through atomic RMW.
bool claim_pages(uintptr_t base, size_t npages) {
  bool needzero = false;
  uint64_t released = 0;
  uintptr_t end = base + npages * kPageSize;
  for (uintptr_t a = base; a < end;) {
    HeapArena* ha = arena_of(a);
    uintptr_t arena_base = a & ~(kArenaBytes - 1);
    uintptr_t seg_end = arena_base + kArenaBytes < end ? arena_base + kArenaBytes : end;
    size_t first = (a - arena_base) / kPageSize;
    size_t last = (seg_end - arena_base) / kPageSize;  // exclusive
    size_t zeroed = ha->zeroedBase.load(std::memory_order_relaxed) / kPageSize;
    for (size_t w = first / 64; w * 64 < last; w++) {
      size_t lo = w * 64 > first ? 0 : first % 64;
      size_t hi = (w + 1) * 64 <= last ? 64 : last % 64;
      uint64_t mask = range_mask(lo, hi);
      uint64_t old = ha->released[w].fetch_and(~mask, std::memory_order_relaxed);
      released += size_t(__builtin_popcountll(old & mask));
      if (zeroed > w * 64) {
        uint64_t dirty = mask & ~old & range_mask(0, zeroed - w * 64);
        if (dirty != 0) needzero = true;
      }
    }
    uintptr_t off = seg_end - arena_base;
    uintptr_t cur = ha->zeroedBase.load(std::memory_order_relaxed);
    while (cur < off && !ha->zeroedBase.compare_exchange_weak(cur, off, std::memory_order_relaxed)) {
    }
    a = seg_end;
  }
  if (released != 0) heap_counters.released_pages.fetch_sub(released, std::memory_order_relaxed);
  return needzero;
}

void init_span(MSpan* s, uintptr_t base, size_t npages, SpanState kind, SpanClass spanclass, bool needzero) {
  s->next = s->prev = nullptr;
  s->list = nullptr;
  s->startAddr = base;
  s->npages = npages;
  s->manualFreeList = 0;
  s->freeindex.store(0, std::memory_order_relaxed);
  s->allocCount = 0;
  s->npendingFree = 0;
  s->allocCountAtCache = 0;
  s->allocCache = 0;
  s->allocBits = s->bitmaps[0];
  s->gcmarkBits = s->bitmaps[1];
  memset(s->bitmaps, 0, sizeof s->bitmaps);
  memset(s->pendingFree, 0, sizeof s->pendingFree);
  __atomic_store_n(&s->sweepgen, heap_sweepgen.load(std::memory_order_acquire), __ATOMIC_RELAXED);
  s->spanclass = spanclass;
  s->needzero = needzero;
  s->incache = false;
  uint8_t sizeclass = span_class_size(spanclass);
  if (kind == SpanState::kManual) {
    s->elemsize = npages * kPageSize;
    s->nelems = 0;
    s->divMul = 0;
  } else if (sizeclass == 0) {
    s->elemsize = npages * kPageSize;
    s->nelems = 1;
    s->divMul = 0;
  } else {
    s->elemsize = kClassToSize[sizeclass];
    s->nelems = uint16_t(npages * kPageSize / s->elemsize);
    s->divMul = div_magic(s->elemsize);
  }
  s->limit = base + (kind == SpanState::kManual ? npages * kPageSize : s->nelems * s->elemsize);
}

void set_spans(MSpan* s) {
  for (uintptr_t a = s->startAddr; a < s->end(); a += kPageSize) {
    arena_of(a)->spans[(a & (kArenaBytes - 1)) / kPageSize].store(s, std::memory_order_relaxed);
  }
}

}  // namespace

HeapArena* arena_of(uintptr_t addr) {
  if (addr >= kAddrLimit) return nullptr;
  size_t ai = addr >> 26;
  ArenaL2* l2 = arena_l1[ai >> kArenaL2Bits].load(std::memory_order_acquire);
  if (l2 == nullptr) return nullptr;
  return l2[ai & ((size_t(1) << kArenaL2Bits) - 1)].load(std::memory_order_acquire);
}

void mheap_init() { policy::pagealloc::init(); }

MSpan* mheap_alloc(size_t npages, SpanState kind, SpanClass spanclass) {
  uintptr_t base = 0;
  if (policy::pagealloc::has_page_cache() && npages < policy::kPageCachePages / 4) {
    M* mp = getm();
    P* pp = mp != nullptr ? mp->p : nullptr;
    if (pp != nullptr && pp->mcache != nullptr) {
      policy::PageCache* c = &pp->mcache->pcache;
      base = policy::pagealloc::cache_alloc(c, npages);
      if (base == 0 && c->free_bits == 0) {
        {
          HeapLockGuard g;
          policy::pagealloc::cache_refill(c);
        }
        base = policy::pagealloc::cache_alloc(c, npages);
      }
    }
  }
  if (base == 0) {
    HeapLockGuard g;
    base = policy::pagealloc::alloc(npages);
    if (base == 0) {
      if (!grow(npages)) return nullptr;
      base = policy::pagealloc::alloc(npages);
      if (base == 0) throw_fatal("mheap: no free pages right after growing the heap");
    }
  }
  bool needzero = claim_pages(base, npages);
  MSpan* s = span_alloc.alloc();
  init_span(s, base, npages, kind, spanclass, needzero);
  set_spans(s);
  if (kind == SpanState::kManual) {
    heap_counters.manual_pages.fetch_add(npages, std::memory_order_relaxed);
  } else {
    heap_counters.inuse_pages.fetch_add(npages, std::memory_order_relaxed);
  }
  s->state.store(kind, std::memory_order_release);
  if (kind == SpanState::kInUse) gc_span_allocated(s);
  return s;
}

namespace {

// Spans whose mheap_free found the heap lock held, linked through next
// (they are on no list); their pages are still allocated in the page
// allocator. Pushed with a compare-and-swap, emptied whole by a holder
// of the lock, so no entry is ever popped alone (no ABA).
std::atomic<MSpan*> deferred_frees{nullptr};

// Gives back the deferred spans: their pages to the page allocator and
// the spans to FixAlloc (whose lock is a leaf), both under the heap lock,
// so a census under the lock finds MSpanInuse in step with the spans. A
// push this misses is seen by unlock_heap's look after the unlock.
void drain_deferred_frees() {
  heap_lock.assert_held();
  if (deferred_frees.load(std::memory_order_relaxed) == nullptr) return;
  MSpan* s = deferred_frees.exchange(nullptr, std::memory_order_acquire);
  while (s != nullptr) {
    MSpan* next = s->next;
    policy::pagealloc::free(s->startAddr, s->npages);
    span_alloc.free(s);
    s = next;
  }
}

// Releases the heap lock with no deferred free left behind. A free that
// pushed after the last drain and then found the lock still held relies
// on this: the stack is looked at again after the unlock, with a
// read-modify-write, so either the look sees the push or the pusher's
// try_lock sees the unlock.
void unlock_heap() {
  for (;;) {
    drain_deferred_frees();
    heap_lock.unlock();
    MSpan* seen = nullptr;
    if (deferred_frees.compare_exchange_strong(seen, nullptr, std::memory_order_acq_rel)) return;
    if (!heap_lock.try_lock()) return;  // the holder drains before it leaves
  }
}

}  // namespace

HeapLockGuard::HeapLockGuard() {
  heap_lock.lock();
  drain_deferred_frees();
}

HeapLockGuard::~HeapLockGuard() { unlock_heap(); }

void mheap_free(MSpan* s) {
  SpanState st = s->state.load(std::memory_order_relaxed);
  if (st == SpanState::kDead) throw_fatal("mheap: free of a span that is not in use");
  if (s->list != nullptr) throw_fatal("mheap: free of a span that is still on a list");
  s->state.store(SpanState::kDead, std::memory_order_release);
  if (st == SpanState::kManual) {
    heap_counters.manual_pages.fetch_sub(s->npages, std::memory_order_relaxed);
  } else {
    heap_counters.inuse_pages.fetch_sub(s->npages, std::memory_order_relaxed);
  }
  MSpan* head = deferred_frees.load(std::memory_order_relaxed);
  do {
    s->next = head;
  } while (!deferred_frees.compare_exchange_weak(head, s, std::memory_order_acq_rel, std::memory_order_relaxed));
  // A holder gives s back before it leaves; with nobody holding the lock,
  // this thread is the holder.
  if (heap_lock.try_lock()) unlock_heap();
}

void for_each_span(void (*fn)(MSpan*, void*), void* arg) {
  for (size_t i = 0; i < (size_t(1) << kArenaL1Bits); i++) {
    ArenaL2* l2 = arena_l1[i].load(std::memory_order_acquire);
    if (l2 == nullptr) continue;
    for (size_t j = 0; j < (size_t(1) << kArenaL2Bits); j++) {
      HeapArena* ha = l2[j].load(std::memory_order_acquire);
      if (ha == nullptr) continue;
      uintptr_t arena_base = ((i << kArenaL2Bits) | j) << 26;
      for (size_t p = 0; p < kPagesPerArena; p++) {
        MSpan* s = ha->spans[p].load(std::memory_order_relaxed);
        if (s == nullptr || s->startAddr != arena_base + p * kPageSize) continue;
        if (s->state.load(std::memory_order_acquire) == SpanState::kDead) continue;
        fn(s, arg);
      }
    }
  }
}

}  // namespace rt::internal

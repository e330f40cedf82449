// Sweeping (Go's mgcsweep.go and mspan.sweep): concurrent with the
// program, lazily from mcentral, in the background, and on demand.
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
// is freed whole when its one object is unmarked. Freed slots may hold old
// data: needzero is set so mallocgc clears them. With GODEBUG=
// clobberfree=1 every object freed in a span that stays in use is filled
// with kClobberPattern (mgc.h), which mallocgc checks when it hands the
// slot out again.
//
// The sweepgen protocol (Go's): heap_sweepgen (sg) grows by 2 at every
// mark termination, with the world stopped, which makes every in-use span
// unswept at once. A span's sweepgen says where it stands:
//   sg - 2  not swept in this cycle yet;
//   sg - 1  being swept (claimed with a compare-and-swap from sg - 2, so
//           each span is swept exactly once);
//   sg      swept (and every span allocated since: mheap_alloc stamps sg).
// mcaches hold swept spans only (mark termination flushed them, and
// cache_span sweeps what it takes), so an allocation never sees a span
// whose allocBits are stale.
//
// The sweep sets (Go 1.9's mheap.sweepSpans): two append-only buffers of
// spans, swept[sg/2 % 2] holding the spans swept or allocated in the
// cycle whose sweepgen is sg, the other the spans still to sweep. Every
// in-use span is in the swept set once it is swept (sweep_claimed pushes
// it when it stays in use) or allocated (mheap_alloc stamps sg and pushes
// it), so at mark termination that set is exactly the in-use spans; the
// sweepgen flip makes it the unswept set and the other buffer, emptied,
// the new swept set: mark termination touches no span. An entry may be
// stale (its span freed, its MSpan reused): claim() skips whatever is not
// an in-use span of sweepgen sg - 2.
//
// Who sweeps the unswept set:
//   - every allocation of a span (for an mcache, or a large object) first
//     pays its sweep credit (Go's proportional sweep, deductSweepCredit):
//     at mark termination the pacer sets sweep_pages_per_byte to the pages
//     left to sweep over the bytes the heap may grow before the next
//     trigger (less 1 MiB of margin; Go's gcPaceSweeper), and an
//     allocation that brings heap_live to L sweeps spans until
//     pages_swept - pages_swept_basis >= sweep_pages_per_byte x (L -
//     sweep_heap_live_basis). Every sweep, whoever does it, counts in
//     pages_swept, so the allocations pay only for what the others have
//     not done, and the sweep is over before heap_live reaches the trigger
//     when the program only allocates. Each allocation's share is its
//     span's bytes x the ratio, plus at most one span;
//   - mcentral's cache_span sweeps the spans of its partial list that it
//     meets before taking one (Go's lazy sweeping), at most
//     kLazySweepPages pages of them;
//   - before the heap takes fresh pages, gc_reclaim sweeps spans until as
//     many pages came free, so the heap does not grow while garbage waits
//     (Go's reclaim), at most kReclaimSweepPages plus twice the request:
//     when the spans at the head of the set are live (a ring of objects
//     dying in allocation order puts every live span there) an unbounded
//     reclaim would sweep the whole heap inside one allocation, and the
//     heap grows a little instead;
//   - the background sweeper goroutine sweeps the set, yielding after
//     every span (Go's bgsweep), readied at each mark termination; it
//     first destroys the values left in the buffers of the channels that
//     mark termination found dead (chan.h: it is also Go's finalizer
//     goroutine);
//   - rt::gc sweeps what is left before it returns, and the triggering
//     goroutine of the next cycle before that cycle's pause; sweep
//     termination then finishes it with the world stopped (usually nothing
//     is left) and waits for sweepers that are still inside a span (a
//     thread without a P may be; counted in sweepers_active).
// An explicit free (free_object) sweeps the object's span first.
// So an allocation sweeps at most its credit, kLazySweepPages and its
// reclaim budget; sweep_stats records the pages each kind of sweeper swept
// and the most one allocation swept (tests assert on them).
#include <sys/mman.h>

#include <cstring>

#include "rt/rt.h"
#include "runtime/chan/chan.h"
#include "runtime/gc/mgc.h"
#include "runtime/mem/mcentral.h"
#include "runtime/mem/mheap.h"
#include "runtime/sched/runtime2.h"

namespace rt::internal {

namespace {

// An append-only set of spans whose entries never move: fixed chunks
// installed on demand. Pushes and pops are atomic index increments; a
// buffer is pushed to only while it is the swept set and popped from
// only while it is the unswept one.
class SpanBuf {
 public:
  void push(MSpan* s) {
    size_t i = len_.fetch_add(1, std::memory_order_acq_rel);
    __atomic_store_n(&chunk(i / kChunk)[i % kChunk], s, __ATOMIC_RELEASE);
  }
  size_t len() const { return len_.load(std::memory_order_acquire); }
  MSpan* at(size_t i) { return __atomic_load_n(&chunk(i / kChunk)[i % kChunk], __ATOMIC_ACQUIRE); }
  void reset() { len_.store(0, std::memory_order_release); }

 private:
  static constexpr size_t kChunk = 8192;
  static constexpr size_t kMaxChunks = 16384;  // 134M spans: 1 PiB of 8 KiB spans

  MSpan** chunk(size_t c) {
    if (c >= kMaxChunks) throw_fatal("gc: too many spans for the sweep set");
    MSpan** p = chunks_[c].load(std::memory_order_acquire);
    if (p != nullptr) return p;
    void* mem = mmap(nullptr, kChunk * sizeof(MSpan*), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw_fatal("out of memory growing the sweep set");
    MSpan** fresh = static_cast<MSpan**>(mem);
    if (chunks_[c].compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) return fresh;
    munmap(mem, kChunk * sizeof(MSpan*));
    return p;
  }

  std::atomic<size_t> len_{0};
  std::atomic<MSpan**> chunks_[kMaxChunks] = {};
};

SpanBuf sweep_sets[2];
std::atomic<size_t> sweep_next{0};  // next index of the unswept set
std::atomic<int32_t> sweepers_active{0};

// Proportional sweep (Go's mheap.sweepPagesPerByte and its bases):
// pages_swept counts the pages of the spans swept since the flip; the
// pacer writes the ratio and sweep_heap_live_basis, then
// pages_swept_basis, which tells a paying allocation to start over.
std::atomic<uint64_t> pages_swept{0};
std::atomic<uint64_t> pages_swept_basis{0};
std::atomic<uint64_t> sweep_heap_live_basis{0};
std::atomic<double> sweep_pages_per_byte{0};

// Pages this thread swept for allocations (credit, lazy, reclaim); an
// allocation's share is the difference across it.
thread_local uint64_t thread_alloc_swept = 0;

struct {
  std::atomic<uint64_t> pages[size_t(Sweeper::kCount)];
  std::atomic<uint64_t> max_alloc_pages{0};
  std::atomic<double> max_pages_per_byte{0};
} sweep_stats;

SpanBuf& swept_set(uint32_t sg) { return sweep_sets[(sg / 2) % 2]; }
SpanBuf& unswept_set(uint32_t sg) { return sweep_sets[(sg / 2 + 1) % 2]; }

// The background sweeper, parked while there is nothing to sweep.
G* bgsweep_g = nullptr;
std::atomic<bool> bgsweep_parked{false};
constexpr const char kWaitReasonGCSweepWait[] = "GC sweep wait";

size_t count_marked(const MSpan* s) {
  size_t n = 0;
  for (size_t i = 0; i < size_t(s->nelems + 7) / 8; i++) n += size_t(__builtin_popcount(s->gcmarkBits[i]));
  return n;
}

// The end of a span's sweep: a release store, as gc_ensure_swept and the
// claims read it without a lock.
inline void mark_swept(MSpan* s, uint32_t sg) { __atomic_store_n(&s->sweepgen, sg, __ATOMIC_RELEASE); }

// Sweeps s, claimed by the caller (sweepgen sg - 1); c is s's mcentral
// (nullptr for a large span). `locked` says whether the caller holds c's
// lock (the lazy sweep of cache_span); it holds it again on return. The
// claim alone makes the caller the only one to touch s's bitmaps, so c's
// lock is taken only to unlink s from its list and to put it back: the
// background sweeper would otherwise hold the class's lock for every
// span it sweeps, and an allocation of the same class waiting behind it
// sleeps in the kernel, which costs milliseconds on the VM measured here
// (lock.h). While unlinked, s is on no list: cache_span cannot take it and
// free_object waits in gc_ensure_swept until it is back. Returns the pages
// given back to the heap.
size_t sweep_claimed(MSpan* s, MCentral* c, uint32_t sg, Sweeper who, bool locked) {
  if (s->incache) throw_fatal("gc: sweep of a span an mcache holds");
  pages_swept.fetch_add(s->npages, std::memory_order_relaxed);
  sweep_stats.pages[size_t(who)].fetch_add(s->npages, std::memory_order_relaxed);
  if (who == Sweeper::kCredit || who == Sweeper::kLazy || who == Sweeper::kReclaim) thread_alloc_swept += s->npages;
  if (span_class_size(s->spanclass) == 0) {
    if (MSpan::bit(s->gcmarkBits, 0)) {
      MSpan::clear_bit(s->gcmarkBits, 0);
      mark_swept(s, sg);
      swept_set(sg).push(s);
      return 0;
    }
    size_t npages = s->npages;
    heap_counters.frees.fetch_add(1, std::memory_order_relaxed);
    heap_counters.total_free.fetch_add(uint64_t(npages) * kPageSize, std::memory_order_relaxed);
    s->allocCount = 0;
    mark_swept(s, sg);
    mheap_free(s);
    return npages;
  }
  if (!locked) c->lock.lock();
  (s->list == &c->full ? c->full : c->partial).remove(s);
  if (!locked) c->lock.unlock();
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
  s->allocCount = uint16_t(live);
  if (freed != 0) s->needzero = true;
  heap_counters.frees.fetch_add(freed, std::memory_order_relaxed);
  heap_counters.total_free.fetch_add(uint64_t(freed) * s->elemsize, std::memory_order_relaxed);
  if (live == 0) {
    mark_swept(s, sg);
    if (locked) c->lock.unlock();
    size_t npages = s->npages;
    mheap_free(s);
    if (locked) c->lock.lock();
    return npages;
  }
  swept_set(sg).push(s);
  if (!locked) c->lock.lock();
  mark_swept(s, sg);  // with s listed again, under the lock free_object takes
  (live == s->nelems ? c->full : c->partial).push(s);
  if (!locked) c->lock.unlock();
  return 0;
}

bool claim(MSpan* s, uint32_t sg) {
  uint32_t want = sg - 2;
  return s->state.load(std::memory_order_acquire) == SpanState::kInUse &&
         __atomic_compare_exchange_n(&s->sweepgen, &want, sg - 1, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

// Sweeps s if it is unswept and this call claims it; returns the pages
// it gave back to the heap. Takes s's mcentral lock for a small span.
size_t sweep_if_unswept(MSpan* s, Sweeper who) {
  uint32_t sg = heap_sweepgen.load(std::memory_order_acquire);
  M* mp = getm();
  if (mp != nullptr) mp->locks++;  // a claimed span must not wait for a preempted sweeper
  sweepers_active.fetch_add(1, std::memory_order_acq_rel);
  size_t freed = 0;
  if (claim(s, sg)) {
    MCentral* c = span_class_size(s->spanclass) == 0 ? nullptr : &mcentral[s->spanclass];
    freed = sweep_claimed(s, c, sg, who, false);
  }
  sweepers_active.fetch_sub(1, std::memory_order_acq_rel);
  if (mp != nullptr) mp->locks--;
  return freed;
}

// Sweeps the next span of the unswept set; false when it is exhausted.
bool sweepone(Sweeper who, size_t* pages_freed) {
  SpanBuf& set = unswept_set(heap_sweepgen.load(std::memory_order_acquire));
  size_t i = sweep_next.fetch_add(1, std::memory_order_acq_rel);
  if (i >= set.len()) return false;
  *pages_freed += sweep_if_unswept(set.at(i), who);
  return true;
}

bool sweep_done() {
  return sweep_next.load(std::memory_order_acquire) >=
             unswept_set(heap_sweepgen.load(std::memory_order_acquire)).len() &&
         sweepers_active.load(std::memory_order_acquire) == 0;
}

void atomic_max(std::atomic<uint64_t>* m, uint64_t v) {
  uint64_t cur = m->load(std::memory_order_relaxed);
  while (v > cur && !m->compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

bool park_bgsweep(G*, void*) {
  bgsweep_parked.store(true, std::memory_order_release);
  return true;
}

void bgsweep() {
  for (;;) {
    gopark(park_bgsweep, nullptr, kWaitReasonGCSweepWait);
    run_chan_finalizers();
    size_t pages = 0;
    while (sweepone(Sweeper::kBackground, &pages)) gosched_impl();
  }
}

}  // namespace

void gc_start_bgsweep() {
  void* mem;
  G* gp = newproc_begin(&mem, 0, 1);
  gp->issystem = true;
  bgsweep_g = gp;  // before it can run: gc_wake_bgsweep reads it unsynchronised
  newproc_end(
      gp, [](void*) { bgsweep(); }, [](void*) {});
}

void gc_finish_sweep() {
  size_t pages = 0;
  while (sweepone(Sweeper::kFinish, &pages)) {
  }
  while (sweepers_active.load(std::memory_order_acquire) != 0) {
  }
}

void gc_sweep_start() {
  gc_finish_sweep();
  uint32_t sg = heap_sweepgen.load(std::memory_order_acquire);
  // After the flip the swept set of this cycle is the unswept one; the
  // other buffer (its spans all swept, or freed, in this cycle) restarts.
  unswept_set(sg).reset();
  sweep_next.store(0, std::memory_order_release);
  pages_swept.store(0, std::memory_order_relaxed);
  pages_swept_basis.store(0, std::memory_order_relaxed);
  heap_sweepgen.store(sg + 2, std::memory_order_release);
}

// s->sweepgen is read atomically: a stale entry for s's MSpan in the
// unswept set may reach claim() at any time.
void gc_span_allocated(MSpan* s) { swept_set(__atomic_load_n(&s->sweepgen, __ATOMIC_RELAXED)).push(s); }

void gc_wake_bgsweep() {
  bool parked = true;
  if (bgsweep_g == nullptr || !bgsweep_parked.compare_exchange_strong(parked, false)) return;
  GQueue list;
  list.push_back(bgsweep_g);
  injectglist(&list, 1);
}

void gc_reclaim(size_t npages) {
  size_t freed = 0;
  uint64_t budget = kReclaimSweepPages + 2 * npages;
  uint64_t start = thread_alloc_swept;
  while (freed < npages && thread_alloc_swept - start < budget && sweepone(Sweeper::kReclaim, &freed)) {
  }
}

void gc_pace_sweeper(uint64_t trigger) {
  if (sweep_done()) {
    sweep_pages_per_byte.store(0, std::memory_order_relaxed);
    return;
  }
  uint64_t live = heap_counters.heap_live.load(std::memory_order_relaxed);
  int64_t distance = int64_t(trigger - live) - (int64_t(1) << 20);
  if (trigger < live || distance < int64_t(kPageSize)) distance = int64_t(kPageSize);
  uint64_t swept = pages_swept.load(std::memory_order_relaxed);
  uint64_t inuse = heap_counters.inuse_pages.load(std::memory_order_relaxed);
  if (inuse <= swept) {
    sweep_pages_per_byte.store(0, std::memory_order_relaxed);
    return;
  }
  double ratio = double(inuse - swept) / double(distance);
  sweep_pages_per_byte.store(ratio, std::memory_order_relaxed);
  sweep_heap_live_basis.store(live, std::memory_order_relaxed);
  pages_swept_basis.store(swept, std::memory_order_release);  // last: paying allocations start over
  if (ratio > sweep_stats.max_pages_per_byte.load(std::memory_order_relaxed)) {
    sweep_stats.max_pages_per_byte.store(ratio, std::memory_order_relaxed);
  }
}

uint64_t gc_alloc_sweep_mark() { return thread_alloc_swept; }

void gc_deduct_sweep_credit(size_t span_bytes, size_t caller_sweep_pages) {
  for (;;) {
    uint64_t basis = pages_swept_basis.load(std::memory_order_acquire);
    double ratio = sweep_pages_per_byte.load(std::memory_order_relaxed);
    if (ratio == 0) return;
    uint64_t live = heap_counters.heap_live.load(std::memory_order_relaxed);
    uint64_t live_basis = sweep_heap_live_basis.load(std::memory_order_relaxed);
    // A pacing racing with this read may leave live below its basis:
    // then only this span is charged (Go's issue 57523).
    uint64_t new_live = span_bytes + (live > live_basis ? live - live_basis : 0);
    int64_t target = int64_t(ratio * double(new_live)) - int64_t(caller_sweep_pages);
    bool repaced = false;
    size_t freed = 0;
    while (target > int64_t(pages_swept.load(std::memory_order_relaxed) - basis)) {
      if (!sweepone(Sweeper::kCredit, &freed)) {
        sweep_pages_per_byte.store(0, std::memory_order_relaxed);
        return;
      }
      if (pages_swept_basis.load(std::memory_order_acquire) != basis) {
        repaced = true;
        break;
      }
    }
    if (!repaced) return;
  }
}

void gc_alloc_sweep_done(uint64_t mark) { atomic_max(&sweep_stats.max_alloc_pages, thread_alloc_swept - mark); }

SweepStats gc_sweep_stats() {
  SweepStats st{};
  for (size_t i = 0; i < size_t(Sweeper::kCount); i++) st.pages[i] = sweep_stats.pages[i].load(std::memory_order_relaxed);
  st.max_alloc_pages = sweep_stats.max_alloc_pages.load(std::memory_order_relaxed);
  st.max_pages_per_byte = sweep_stats.max_pages_per_byte.load(std::memory_order_relaxed);
  return st;
}

void gc_ensure_swept(MSpan* s) {
  if (__atomic_load_n(&s->sweepgen, __ATOMIC_ACQUIRE) == heap_sweepgen.load(std::memory_order_acquire)) return;
  sweep_if_unswept(s, Sweeper::kExplicit);
  while (__atomic_load_n(&s->sweepgen, __ATOMIC_ACQUIRE) != heap_sweepgen.load(std::memory_order_acquire)) {
  }
}

bool gc_sweep_in_mcentral(MSpan* s, MCentral* c) {
  uint32_t sg = heap_sweepgen.load(std::memory_order_acquire);
  sweepers_active.fetch_add(1, std::memory_order_acq_rel);
  bool claimed = claim(s, sg);
  if (claimed) sweep_claimed(s, c, sg, Sweeper::kLazy, true);
  sweepers_active.fetch_sub(1, std::memory_order_acq_rel);
  return claimed;
}

}  // namespace rt::internal

// Mark work: grey objects waiting to be scanned (Go's mgcwork.go).
//
// A grey object is the address of an object whose mark bit is set and
// whose words are not scanned yet. Grey objects sit in work buffers of
// kWorkbufEntries addresses. Each P owns a GcWork of two buffers (Go's
// wbuf1 and wbuf2: pushes and pops alternate between them, so a producer
// and consumer on one P do not ping-pong whole buffers with the global
// lists); a full buffer goes to the global full list, from which idle
// markers take work, and drained buffers go to the global empty list.
// Only the P's owner touches its GcWork (the mark workers, assists and
// write barriers of goroutines on that P, with m->locks held so the P
// cannot change hands midway); a thread without a P uses the shared
// GcWork under nop_gcw_lock. Balance: a P whose buffers hold much while the
// full list is empty hands one buffer over (Go's gcWork.balance), so the
// workers on other Ps get a share.
//
// Invariant at mark termination (world stopped): every P's GcWork, the
// shared one and the full list are empty; then no grey object is left,
// and with the write barrier's invariant no white object is reachable.
// The termination check before that pause (mgc.cc's ragged barrier) has
// each P dispose its own GcWork and reads flushed_work: a GcWork that
// handed a buffer to the full list since the last check may have given
// another marker work, so marking is not known to be over.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rt::internal {

struct P;

constexpr size_t kWorkbufEntries = 253;

struct Workbuf {
  Workbuf* next = nullptr;
  size_t nobj = 0;
  uintptr_t obj[kWorkbufEntries];
};

// One cache line or more each: the markers of different Ps write their
// accounting on every object they mark, and GcWorks sharing a line cost
// each marker a coherence miss per object (alloc_storm at GOMAXPROCS=2
// spent twice the mark CPU of GOMAXPROCS=1 for the same work).
struct alignas(64) GcWork {
  Workbuf* wbuf1 = nullptr;
  Workbuf* wbuf2 = nullptr;
  // Accounting, folded into the cycle's totals by gcw_dispose.
  uint64_t bytes_marked = 0;  // objects this GcWork marked (black or grey)
  uint64_t scan_work = 0;     // bytes scanned
  uint64_t scan_work_published = 0;  // of those, already in the cycle's total
  // A buffer with grey objects went from here to the full list since the
  // last termination check took this flag (Go's flushedWork): this GcWork
  // may have handed work to another marker since then.
  bool flushed_work = false;

  void put(uintptr_t obj);
  // Next grey object, 0 when this GcWork and the full list are empty.
  uintptr_t tryget();
  // Whether this GcWork holds no grey object.
  bool empty() const;
  // Hands one buffer to the full list when there is none there.
  void balance();
  // Adds the scan work not yet published to total (assists pace
  // themselves by the cycle's total while workers drain).
  void publish_scan_work(std::atomic<uint64_t>* total);
  // Moves every non-empty buffer to the full list and returns both
  // buffers' memory; the accounting is added to the given counters.
  void dispose(std::atomic<uint64_t>* bytes_marked, std::atomic<uint64_t>* scan_work);
};

// The GcWork of P id (the P's owner only).
GcWork* gcw_of(const P* p);
// The shared GcWork of threads without a P: lock it around use.
GcWork* nop_gcw_lock();
void nop_gcw_unlock();
// Whether the global full list holds a buffer (a hint: racy by design).
bool work_full_nonempty();

}  // namespace rt::internal

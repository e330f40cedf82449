// Lock ranks: the order in which runtime locks may be taken (Go's
// lockrank.go and lockrank_on.go).
//
// Every runtime Lock and SpinLock has a rank, fixed where it is declared.
// An M may take a lock only if its rank is higher than the rank of every
// lock the M already holds; locks of one rank may be held together only
// where the table below says so (channels in address order, as select
// takes them; two Ps' timer heaps while procresize moves timers under
// stop-the-world). A program that keeps this order cannot deadlock on
// runtime locks, and a change that breaks it is caught the first time the
// two acquisitions happen in a test, not when they happen to interleave.
//
// The checks run only in the debug build (--config=dbg, RT_DEBUG): each M
// keeps the locks it holds in a small array (locks are never held across a
// goroutine switch to another M: they are released on the M that took
// them, if need be by gopark's unlock function on that M's g0). A lock of
// the wrong rank is a fatal "lock ordering problem" that names both locks;
// assert_held() is a fatal "not holding required lock!". In the optimised
// build a rank costs nothing: Lock stores none and nothing is checked.
#pragma once

#include <cstdint>

namespace rt::internal {

// Low ranks are taken first. Keep names[] in lockrank.cc in step.
enum class LockRank : uint8_t {
  kChanTimer,   // an rt::ChanTimer's state: held while it sends on its channel
  kSemaRoot,    // a semaphore-table root: held into gopark
  kGcWaiters,   // goroutines waiting for a GC cycle's mark to end
  kGcAssists,   // assists parked until background credit pays their debt
  kPollDesc,    // a netpoll pollDesc: held while its deadline timers change,
                // which may wake the netpoller or start an M (sched), as Go's
                // pollSetDeadline does
  kSched,       // sched.lock: idle Ms and Ps, the global run queue
  kAllg,        // allglock
  kTimers,      // a P's timer heap; two at once in procresize
  kHchan,       // a channel (SpinLock); several in address order (select)
  kSudog,       // the central sudog cache
  kGfree,       // sched.gflock: the global free-G list
  kStackpool,   // a stack-pool order
  kNopMcache,   // the mcache of Ms without a P; held through a GC cycle
  kFinChans,    // the buffered channels with element destructors, and the dead ones (chan.cc)
  kGcRoots,     // the list of rt::Root registrations
  kGcStats,     // the collector's statistics (MemStats' GC fields)
  kMcentral,    // an mcentral
  kMheap,       // heap_lock: the page allocator and arenas
  kPollCache,   // the netpoller's pollDesc cache (allocates from a FixAlloc)
  kNopGcWork,   // the mark-work cache of threads without a P
  kGcWork,      // the collector's lists of full and empty work buffers; taken
                // by the write barrier under any lock above
  kFixalloc,    // a FixAlloc (runtime metadata); a leaf
  kCount,
};

#ifdef RT_DEBUG
const char* lock_rank_name(LockRank r);

struct M;
// A lock an M holds (the M's locks_held array).
struct HeldLock {
  const void* lock;
  LockRank rank;
};
constexpr int kMaxLocksHeld = 16;

// Called by Lock/SpinLock before taking / after releasing l.
void lock_rank_acquire(const void* l, LockRank rank);
void lock_rank_release(const void* l);
// Fatal unless the current M holds l.
void lock_rank_assert_held(const void* l, LockRank rank);
#endif

}  // namespace rt::internal

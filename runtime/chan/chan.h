// Channels and select: the type-erased core behind rt::Chan<T> (Go's
// chan.go, select.go and the sudog parts of proc.go).
//
// hchan is Go's structure: a ring buffer of dataqsiz slots, FIFO queues of
// waiting senders and receivers (sudogs), and a runtime lock. Invariants,
// all under the lock:
//   - at least one of sendq and recvq is empty, except transiently for a
//     select that waits on both ends of the same channel;
//   - for buffered channels, qcount > 0 implies recvq is empty and
//     qcount < dataqsiz implies sendq is empty;
//   - slots [recvx, recvx + qcount) of the ring hold constructed elements,
//     the others hold none.
// A sender that finds a waiting receiver moves its value straight into the
// receiver's slot (no buffer round trip), and a receiver that finds a
// waiting sender takes the value from the sender's frame: goroutine stacks
// never move, so a parked goroutine's frame is addressable by its peer.
//
// Elements are any movable C++ type; ElemType holds the operations the core
// needs. A receive into uninitialised storage move-constructs; a receive
// from a closed, drained channel value-constructs (Go's zero value).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "rt/chan.h"
#include "runtime/sched/runtime2.h"

namespace rt::internal {



// A FIFO of sudogs, changed only under the channel lock. `first` is also
// read without the lock by the fast paths of non-blocking operations
// (full/empty in chan.cc), as Go reads it: every store to it is a relaxed
// atomic store (set_first) and those reads are relaxed atomic loads (plain
// moves on x86-64); reads under the lock need nothing.
struct WaitQ {
  SudoG* first = nullptr;
  SudoG* last = nullptr;
  void set_first(SudoG* sg) { __atomic_store_n(&first, sg, __ATOMIC_RELAXED); }
  bool empty_unlocked() const { return __atomic_load_n(&first, __ATOMIC_RELAXED) == nullptr; }
  void enqueue(SudoG* sg);
  // Removes and returns the first waiter that can still be woken: a
  // select's sudog is skipped if another case of that select already won.
  // Always inlined: it is on every hand-off, and GCC prices the atomic
  // store in set_first high enough to stop inlining it into chansend and
  // chanrecv (the ping-pong round trip then pays a call).
  __attribute__((always_inline)) SudoG* dequeue() {
    for (;;) {
      SudoG* sg = first;
      if (sg == nullptr) return nullptr;
      set_first(sg->next);
      if (first == nullptr)
        last = nullptr;
      else
        first->prev = nullptr;
      sg->next = sg->prev = nullptr;
      // A select waits on several channels: only the first to claim it wins.
      if (sg->is_select) {
        uint32_t expected = 0;
        if (!sg->g->select_done.compare_exchange_strong(expected, 1)) continue;
      }
      return sg;
    }
  }
  void remove(SudoG* sg);
};

struct HChan {
  // Written under the lock with relaxed atomic stores (buf_put/buf_take),
  // read without it by the fast paths and len() with relaxed atomic loads.
  uint32_t qcount = 0;
  uint32_t dataqsiz = 0;
  unsigned char* buf = nullptr;
  const ElemType* type = nullptr;
  std::atomic<uint32_t> closed{0};
  uint32_t sendx = 0;
  uint32_t recvx = 0;
  WaitQ recvq;
  WaitQ sendq;
  SpinLock lock{LockRank::kHchan};  // critical sections are short and never block

  void* slot(uint32_t i) const { return buf + size_t(i) * type->size; }
};


// Sends the element at ep (moved from on success). With block false,
// returns false instead of blocking. Panics on a closed channel.
bool chansend(HChan* c, void* ep, bool block);

// Receives into uninitialised storage ep. Returns whether the operation
// completed (false only when !block and it would block); *received is
// false when the value is the zero value of a closed channel.
bool chanrecv(HChan* c, void* ep, bool block, bool* received);

void closechan(HChan* c);
int64_t chanlen(HChan* c);
int64_t chancap(HChan* c);

// Pieces shared by chansend/chanrecv and selectgo; c is locked.
// Moves the value at ep into the buffer's tail / the buffer's head into ep.
void buf_put(HChan* c, void* ep);
void buf_take(HChan* c, void* ep);
// Completes an operation with a waiter sg dequeued from c, then calls
// unlock(arg) to release the caller's locks and wakes the waiter.
void send_to_waiter(HChan* c, SudoG* sg, void* ep, void (*unlock)(void*), void* arg);
void recv_from_waiter(HChan* c, SudoG* sg, void* ep, void (*unlock)(void*), void* arg);

// Channels are GC objects (rt/chan.h). A buffered channel whose element
// type has a destructor is also on a list from makechan on, so that the
// values left in its buffer are destroyed when it dies (Go's finalizer
// protocol, with the destructor as the finalizer). The list's nodes are
// runtime metadata (a FixAlloc), outside the memory the collector scans:
// a link kept in the channel or in a global would make the list itself
// reach every channel on it.
//   - while marking, the collector scans the buffers of the listed
//     channels as roots, without marking the channels themselves
//     (for_each_finalizable_chan), so what the values refer to outlives
//     the channel;
//   - with the world stopped at mark termination, queue_dead_chans moves
//     every listed channel the mark did not reach to the finalizer queue;
//     the collector marks them (they survive this cycle's sweep);
//   - the queue's channels are roots, marked whole
//     (for_each_queued_chan);
//   - run_chan_finalizers, on the background sweeper goroutine, destroys
//     the values of each queued channel and drops it; nothing refers to it
//     any more and the next cycle frees it.
void for_each_finalizable_chan(void (*fn)(HChan*, void*), void* arg);
void for_each_queued_chan(void (*fn)(HChan*, void*), void* arg);
// World stopped; mark(c) is called for each channel queued.
void queue_dead_chans(bool (*is_marked)(HChan*), void (*mark)(HChan*));
void run_chan_finalizers();

int selectgo(SelectCase* cases, int nsends, int nrecvs, bool block, bool* recv_ok);

SudoG* acquire_sudog();
void release_sudog(SudoG* s);

}  // namespace rt::internal

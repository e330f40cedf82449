// The network poller (Go's netpoll.go + netpoll_epoll.go): the interface
// between the epoll poller, the scheduler and rt::net. The algorithm, the
// pollDesc state machine and its invariants are described at the top of
// netpoll.cc.
//
// A PollDesc is the runtime's half of one open descriptor. rt::net opens
// one per socket (poll_open), parks goroutines on it until the descriptor
// is ready (poll_wait), sets deadlines (poll_set_deadline), wakes every
// waiter when the socket is closed (poll_unblock) and returns it to the
// cache (poll_close). PollDescs are never freed: a stale epoll event or
// deadline timer may still name one after its descriptor was closed, and
// the sequence numbers it carries are what make that harmless.
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/sched/runtime2.h"
#include "runtime/time/timer.h"

namespace rt::internal {

// Wait reason of goroutines blocked on a descriptor (Go's waitReasonIOWait).
inline constexpr const char kWaitReasonIOWait[] = "IO wait";

// poll_wait and poll_check results (Go's pollNoError .. pollErrNotPollable).
enum PollResult : int {
  kPollOK = 0,
  kPollClosing = 1,  // the descriptor is being closed
  kPollTimeout = 2,  // the deadline of that direction has passed
  kPollError = 3,    // epoll reported EPOLLERR: the next system call says why
};

// rg / wg: 0 (nothing), kPdReady (an event arrived and nobody consumed it),
// kPdWait (a goroutine is about to park), or the parked G's address.
inline constexpr uintptr_t kPdReady = 1;
inline constexpr uintptr_t kPdWait = 2;

struct PollDesc {
  PollDesc* link = nullptr;  // pollcache free list
  int fd = -1;
  // Bumped on every poll_open; the epoll event carries its low bits, so an
  // event queued for the previous user of this PollDesc is dropped.
  std::atomic<uintptr_t> fdseq{0};
  std::atomic<uintptr_t> rg{0};
  std::atomic<uintptr_t> wg{0};
  std::atomic<bool> closing{false};
  std::atomic<bool> everr{false};  // EPOLLERR seen

  // Deadlines, written under lock (read without it by waits): 0 none,
  // < 0 passed, > 0 a nanotime() instant. rseq/wseq are bumped whenever a
  // deadline timer is re-armed or the descriptor closes, so a timer that
  // fires for an older arming (its seq) changes nothing.
  Lock lock{LockRank::kPollDesc};
  std::atomic<int64_t> rd{0};
  std::atomic<int64_t> wd{0};
  uintptr_t rseq = 0;
  uintptr_t wseq = 0;
  bool rtimer_armed = false;
  bool wtimer_armed = false;
  RuntimeTimer rt;  // read deadline (or both, when rd == wd)
  RuntimeTimer wt;  // write deadline
};

// ---- rt::net side (goroutine context) ---------------------------------------

// Registers fd (non-blocking) with epoll for reading and writing, edge-
// triggered. Returns nullptr and sets *err to errno on failure.
PollDesc* poll_open(int fd, int* err);
// Wakes every goroutine waiting on pd with kPollClosing and makes later
// waits fail the same way (Go's poll_runtime_pollUnblock: Close's evict).
void poll_unblock(PollDesc* pd);
// Deregisters pd's descriptor and returns pd to the cache; no goroutine
// may be waiting on it (poll_unblock first, and wait for them to leave).
void poll_close(PollDesc* pd);
// Clears a stale readiness of direction mode ('r' or 'w') before an
// operation that will wait (Go's pollReset). Returns a PollResult.
int poll_reset(PollDesc* pd, int mode);
// Parks the calling goroutine until pd is ready for mode, its deadline
// passes or it closes. Returns a PollResult (kPollOK: try the call again).
int poll_wait(PollDesc* pd, int mode);
// Whether an edge for mode arrived that no reset or wait has consumed
// (the direction's word is pdReady).
bool poll_edge_pending(const PollDesc* pd, int mode);
// Sets the deadline of mode 'r', 'w' or 'r'+'w' to d (a nanotime()
// instant; 0 clears it; a passed one fails waits at once).
void poll_set_deadline(PollDesc* pd, int64_t d, int mode);

// ---- Scheduler side ---------------------------------------------------------

// Creates the epoll instance and the eventfd that breaks a blocking poll.
void netpoll_init();
// Goroutines parked in poll_wait (Go's netpollWaiters).
extern std::atomic<int32_t> netpoll_waiters;
// Polls for ready descriptors: delay < 0 blocks until one is ready or
// netpoll_break is called, 0 does not block, > 0 waits up to delay ns.
// Returns the goroutines made ready (still waiting; inject them with
// injectglist). May return an empty list early (broken, or interrupted).
GQueue netpoll(int64_t delay, int32_t* n);
// Interrupts a blocking netpoll; calls between two polls fold into one
// eventfd write (Go's netpollBreak).
void netpoll_break();
// The blocking poll of findrunnable, for an M without a P that found
// nothing to run. Returns false at once when nothing can arrive (no
// goroutine waits for I/O and no timer is pending) or when another M owns
// the poll (after breaking that M's poll if it would sleep past our
// earliest timer). Otherwise blocks until the earliest timer of all Ps,
// an I/O event or netpoll_break, and returns true with the goroutines made
// ready in *list (n of them).
bool netpoll_block(GQueue* list, int32_t* n);

// The single polling M (Go's sched.lastpoll and sched.pollUntil). At most
// one M blocks in netpoll at a time; it waits until the earliest timer of
// all Ps, so timers and I/O wake the same M.
//   netpoll_lastpoll  0 while an M owns the blocking poll, else the
//                     nanotime() of the last poll (sysmon polls when it
//                     is over 10 ms old).
//   netpoll_until     the owner's deadline; 0 while not yet known (then
//                     every wake-up breaks it), kMaxWhen without timers.
extern std::atomic<int64_t> netpoll_lastpoll;
extern std::atomic<int64_t> netpoll_until;
// Called after making a timer pending at when (Go's wakeNetPoller): breaks
// the blocking poll if it would sleep past when; with no M polling, wakes
// an idle P (wakep) so that some M comes to poll.
void wake_netpoller(int64_t when);
// Called after deleting a timer due at when: breaks the poll if its
// owner may be waiting for that timer, so that it recomputes its deadline
// (with nothing left to wait for it stops, and checkdead can see it).
void netpoll_timer_deleted(int64_t when);

// Counters for rt::read_sched_stats.
struct NetpollStats {
  uint64_t polls_with_events;  // netpoll calls that readied goroutines
  uint64_t blocking_polls;     // times an M blocked in epoll_wait
  uint64_t injected;           // goroutines readied by netpoll
  uint64_t breaks;             // eventfd writes (after deduplication)
};
NetpollStats netpoll_stats();
void netpoll_count_injected(int32_t n);

// Test-only fault injection: when set, every poller system call (epoll
// wait, and the read/write/accept/connect calls of rt::net) first calls
// hook(call); a non-zero result is taken as that call's errno, as if the
// kernel had failed it with that error (EINTR, EAGAIN). Never set outside
// tests.
enum class PollCall { kEpollWait, kRead, kWrite, kAccept, kConnect };
// Records a readiness edge for mode on pd as an epoll event would (for
// the fault injection of a spurious wake-up).
void poll_mark_ready(PollDesc* pd, int mode);
using PollFaultHook = int (*)(PollCall call);
extern std::atomic<PollFaultHook> poll_fault_hook;
inline int poll_fault(PollCall call) {
  PollFaultHook h = poll_fault_hook.load(std::memory_order_relaxed);
  return __builtin_expect(h != nullptr, 0) ? h(call) : 0;
}

}  // namespace rt::internal

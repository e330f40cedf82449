// sync.Mutex (Go's sync/mutex.go).
//
// state_ packs the lock:
//   bit 0  kMutexLocked    the mutex is held;
//   bit 1  kMutexWoken     a goroutine is awake and trying to lock (a woken
//                          waiter or an active spinner), so unlock need not
//                          wake another one;
//   bit 2  kMutexStarving  the mutex is in starvation mode;
//   bits 3..  the number of goroutines blocked on sema_.
//
// Normal mode: waiters queue FIFO on sema_, but a woken waiter does not own
// the mutex: it competes with goroutines arriving now, which are already on
// a CPU and usually win. A waiter that loses queues again at the head
// (lifo). While the mutex is held by a running goroutine, an arriving one
// may spin briefly (at most 4 rounds of 30 pause instructions, only on a
// multiprocessor with another P running and nothing waiting in the local
// run queue) instead of parking.
// Starvation mode, entered when a waiter has waited over 1 ms: unlock hands
// the mutex straight to the waiter at the head of the queue (semrelease
// with handoff) and arriving goroutines neither spin nor try to take it;
// they queue at the tail. The waiter that receives the mutex switches back
// to normal mode if it is the last waiter or waited less than 1 ms.
// Normal mode is much faster; starvation mode bounds the tail latency.
//
// Invariants (throw_fatal when broken):
//   - a waiter woken in starvation mode finds the mutex unlocked, not
//     Woken, and itself counted among the waiters (it owns the mutex);
//   - a goroutine that holds kMutexWoken for itself finds it still set;
//   - unlock finds the mutex locked ("sync: unlock of unlocked mutex", a
//     user error: fatal_user, like Go's sync.fatal).
#include <atomic>
#include <cstdint>

#include "rt/sync.h"
#include "runtime/policy/runq.h"
#include "runtime/sched/runtime2.h"
#include "runtime/sync/sema.h"

namespace rt {
namespace {

constexpr int32_t kMutexLocked = 1 << 0;
constexpr int32_t kMutexWoken = 1 << 1;
constexpr int32_t kMutexStarving = 1 << 2;
constexpr int kMutexWaiterShift = 3;
constexpr int32_t kMutexOneWaiter = 1 << kMutexWaiterShift;

// A waiter that waited longer than this switches the mutex to starvation
// mode.
constexpr int64_t kStarvationThresholdNs = 1'000'000;

constexpr int kActiveSpin = 4;        // spin rounds before parking
constexpr int kActiveSpinCount = 30;  // pause instructions per round

// Go's sync_runtime_canSpin: spinning only helps when the holder runs on
// another P, and is cooperative, so stay conservative: a few rounds, only
// if some other P is running (not idle, not itself spinning for work) and
// nothing waits in this P's run queue.
bool can_spin(int iter) {
  if (iter >= kActiveSpin) return false;
  int32_t idle_spinning_or_self = internal::sched.npidle.load(std::memory_order_relaxed) +
                                  internal::sched.nmspinning.load(std::memory_order_relaxed) + 1;
  if (internal::gomaxprocs.load(std::memory_order_relaxed) <= idle_spinning_or_self) return false;
  return policy::runq::empty(internal::getm()->p);
}

void spin_round() {
  for (int i = 0; i < kActiveSpinCount; i++) __builtin_ia32_pause();
}

int32_t waiters(int32_t state) { return state >> kMutexWaiterShift; }

}  // namespace

void Mutex::lock() {
  int32_t unlocked = 0;
  if (state_.compare_exchange_strong(unlocked, kMutexLocked, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
    return;
  }
  lock_slow();
}

bool Mutex::try_lock() {
  int32_t old = state_.load(std::memory_order_relaxed);
  if ((old & (kMutexLocked | kMutexStarving)) != 0) return false;
  // A failed CAS means contention: report failure rather than retry.
  return state_.compare_exchange_strong(old, old | kMutexLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed);
}

void Mutex::lock_slow() {
  internal::preempt_check();
  int64_t wait_start = 0;  // 0 until this goroutine first parks
  bool starving = false;   // this goroutine waited over the threshold
  bool awoke = false;      // this goroutine owns kMutexWoken
  int iter = 0;
  int32_t old = state_.load();
  for (;;) {
    // Spin while the mutex is held in normal mode; in starvation mode the
    // mutex goes to a waiter, so spinning cannot get it.
    if ((old & (kMutexLocked | kMutexStarving)) == kMutexLocked && can_spin(iter)) {
      // Set Woken so that unlock does not wake a waiter while we spin.
      if (!awoke && (old & kMutexWoken) == 0 && waiters(old) != 0 &&
          state_.compare_exchange_strong(old, old | kMutexWoken)) {
        awoke = true;
      }
      spin_round();
      iter++;
      old = state_.load();
      continue;
    }
    int32_t next = old;
    // Take the mutex only in normal mode: in starvation mode arrivals queue.
    if ((old & kMutexStarving) == 0) next |= kMutexLocked;
    if ((old & (kMutexLocked | kMutexStarving)) != 0) next += kMutexOneWaiter;
    // Switch to starvation mode, but only while the mutex is held: unlock
    // expects waiters in starvation mode, and an unlocked mutex may have none.
    if (starving && (old & kMutexLocked) != 0) next |= kMutexStarving;
    if (awoke) {
      if ((next & kMutexWoken) == 0) internal::throw_fatal("sync: inconsistent mutex state");
      next &= ~kMutexWoken;
    }
    if (!state_.compare_exchange_strong(old, next)) continue;  // old reloaded
    if ((old & (kMutexLocked | kMutexStarving)) == 0) break;   // locked by the CAS

    // Queued: a goroutine that already waited goes back to the head.
    bool queue_lifo = wait_start != 0;
    if (wait_start == 0) wait_start = internal::nanotime();
    internal::semacquire_reason(&sema_, queue_lifo, internal::kWaitReasonMutexLock);
    starving = starving || internal::nanotime() - wait_start > kStarvationThresholdNs;
    old = state_.load();
    if ((old & kMutexStarving) != 0) {
      // Handed the mutex in starvation mode: the state still counts us as a
      // waiter and has Locked clear; fix both in one add.
      if ((old & (kMutexLocked | kMutexWoken)) != 0 || waiters(old) == 0) {
        internal::throw_fatal("sync: inconsistent mutex state");
      }
      int32_t delta = kMutexLocked - kMutexOneWaiter;
      // Leave starvation mode when it is no longer needed: we waited
      // under the threshold, or nobody else waits. Staying in it with no
      // waiter would make the next unlock hand off to nobody.
      if (!starving || waiters(old) == 1) delta -= kMutexStarving;
      state_.fetch_add(delta);
      break;
    }
    awoke = true;
    iter = 0;
  }
}

void Mutex::unlock() {
  int32_t new_state = state_.fetch_sub(kMutexLocked, std::memory_order_release) - kMutexLocked;
  if (new_state != 0) unlock_slow(new_state);
}

void Mutex::unlock_slow(int32_t new_state) {
  if (((new_state + kMutexLocked) & kMutexLocked) == 0) {
    internal::fatal_user("sync: unlock of unlocked mutex");
  }
  if ((new_state & kMutexStarving) != 0) {
    // Starvation mode: hand the mutex to the first waiter, which sets
    // Locked itself, and yield the P to it. Arrivals see Starving and
    // queue instead of taking the unlocked-looking mutex.
    semrelease(&sema_, true);
    return;
  }
  int32_t old = new_state;
  for (;;) {
    // Nobody to wake, or someone already locked, woke up or switched to
    // starvation mode: that goroutine deals with the waiters.
    if (waiters(old) == 0 || (old & (kMutexLocked | kMutexWoken | kMutexStarving)) != 0) return;
    // Take one waiter off the count and wake it, as the Woken goroutine.
    if (state_.compare_exchange_strong(old, (old - kMutexOneWaiter) | kMutexWoken)) {
      semrelease(&sema_, false);
      return;
    }
  }
}

}  // namespace rt

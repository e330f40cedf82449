// Runtime locks and notes: the two OS-level blocking primitives of the
// runtime itself (Go's lock_futex.go).
//
// A Lock is a three-state futex mutex (unlocked, locked, locked with
// sleepers). It blocks the whole M, so it guards only short critical
// sections inside the runtime; goroutines that want to block use the
// rt::Mutex family, which parks the goroutine instead of the thread.
// Holding a Lock raises m->locks, which marks the M as not preemptible:
// an asynchronous preemption must never stop a goroutine that holds one.
// A contended lock spins (Go's four rounds of 30 pauses), then yields the
// CPU for up to kLockPassiveSpinNs (lock.cc) before it sleeps in the
// kernel; Go yields once. Holds are microseconds, but a holder preempted
// by the kernel can stay off its CPU for tens of them, and a thread
// woken from a futex on the 2-core VM this project measures on often
// waits 1-4 ms for a CPU (perf sched timehist's scheduling delay), so
// one sleep costs a thousand times the hold.
//
// Every Lock and SpinLock has a rank (lockrank.h), checked in the debug
// build.
//
// A Note is a one-shot event: one M sleeps on it, another wakes it exactly
// once, and it must be cleared before reuse. Idle Ms park on their note;
// stop-the-world waits on one.
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/sched/lockrank.h"

namespace rt::internal {

class Lock {
 public:
  constexpr explicit Lock(LockRank rank) {
#ifdef RT_DEBUG
    rank_ = rank;
#else
    (void)rank;
#endif
  }
  // Inline fast paths, defined in runtime2.h (they count m->locks).
  inline void lock();
  inline void unlock();
  bool try_lock();
  // Fatal unless the current M holds this lock (debug build; free otherwise).
  void assert_held() const {
#ifdef RT_DEBUG
    lock_rank_assert_held(this, rank_);
#endif
  }

 private:
  void lock_slow(uint32_t displaced);
  [[noreturn]] void unlock_unlocked();

  // 0 unlocked, 1 locked, 2 locked and some M may be sleeping in futex.
  std::atomic<uint32_t> state_{0};
#ifdef RT_DEBUG
  LockRank rank_;
#endif
};

// A test-and-set lock whose unlock is a plain store: one atomic operation
// per critical section instead of the futex lock's two. Waiters spin, then
// yield the CPU; they never sleep in the kernel, so a SpinLock guards only
// critical sections that are a few dozen instructions long and never block
// (channel state). Holding one raises m->locks like a Lock.
class SpinLock {
 public:
  constexpr explicit SpinLock(LockRank rank) {
#ifdef RT_DEBUG
    rank_ = rank;
#else
    (void)rank;
#endif
  }
  // Inline fast paths, defined in runtime2.h.
  inline void lock();
  inline void unlock();

 private:
  void lock_slow();
  std::atomic<uint32_t> state_{0};
#ifdef RT_DEBUG
  LockRank rank_;
#endif
};

class LockGuard {
 public:
  explicit LockGuard(Lock& l) : l_(l) { l_.lock(); }
  ~LockGuard() { l_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock& l_;
};

class Note {
 public:
  void clear() { key_.store(0, std::memory_order_relaxed); }
  void wakeup();
  void sleep();
  // Returns true if woken, false on timeout. ns < 0 sleeps without limit.
  bool sleep_for(int64_t ns);
  // Polls the note for up to ns without sleeping; true if woken. For
  // waits expected to end within microseconds. Between polls it yields
  // the CPU (sched_yield), so that a thread it would keep from running,
  // perhaps the one it waits for, still runs.
  bool spin_for(int64_t ns);

 private:
  std::atomic<uint32_t> key_{0};
};

// Thin futex wrappers and OS time/yield helpers used across the runtime.
void futex_sleep(std::atomic<uint32_t>* addr, uint32_t val, int64_t ns);
void futex_wake(std::atomic<uint32_t>* addr, int count);

int64_t nanotime();  // CLOCK_MONOTONIC in ns
void osyield();
void usleep_os(int64_t us);

}  // namespace rt::internal

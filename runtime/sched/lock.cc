// Futex-based runtime locks and notes (see lock.h for the design).
#include "runtime/sched/lock.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/sched/runtime2.h"

namespace rt::internal {

void futex_sleep(std::atomic<uint32_t>* addr, uint32_t val, int64_t ns) {
  struct timespec ts;
  struct timespec* tsp = nullptr;
  if (ns >= 0) {
    ts.tv_sec = ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    tsp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), FUTEX_WAIT_PRIVATE, val, tsp, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t>* addr, int count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}

int64_t nanotime() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void osyield() { sched_yield(); }

void usleep_os(int64_t us) {
  struct timespec ts{time_t(us / 1000000), long((us % 1000000) * 1000)};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

namespace {
constexpr int kActiveSpin = 4;
constexpr int kActiveSpinCount = 30;
// How long a contended Lock yields the CPU before its first sleep (lock.h).
constexpr int64_t kLockPassiveSpinNs = 50000;

inline void procyield(int n) {
  for (int i = 0; i < n; i++) __builtin_ia32_pause();
}

}  // namespace

bool Lock::try_lock() {
  uint32_t expected = 0;
  if (state_.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
#ifdef RT_DEBUG
    lock_rank_acquire(this, rank_);
#endif
    if (M* mp = getm()) mp->locks++;
    return true;
  }
  return false;
}

void Lock::lock_slow(uint32_t v) {
  // v is 1 or 2. Whatever we write later must keep "sleepers may exist" if
  // they did, so remember the strongest state we displaced.
  uint32_t wait = v;
  auto try_take = [&] {
    while (state_.load(std::memory_order_relaxed) == 0) {
      uint32_t expected = 0;
      if (state_.compare_exchange_weak(expected, wait, std::memory_order_acquire)) return true;
    }
    return false;
  };
  // After a wakeup the deadline has passed: one yield, as in Go.
  int64_t passive_deadline = 0;
  for (;;) {
    for (int i = 0; i < kActiveSpin; i++) {
      if (try_take()) return;
      procyield(kActiveSpinCount);
    }
    if (passive_deadline == 0) passive_deadline = nanotime() + kLockPassiveSpinNs;
    do {
      if (try_take()) return;
      osyield();
    } while (nanotime() < passive_deadline);
    v = state_.exchange(2, std::memory_order_acquire);
    if (v == 0) return;
    wait = 2;
    futex_sleep(&state_, 2, -1);
  }
}

void Lock::unlock_unlocked() { throw_fatal("unlock of unlocked lock"); }

void SpinLock::lock_slow() {
  for (int spins = 0;; spins++) {
    while (state_.load(std::memory_order_relaxed) != 0) {
      if (spins < kActiveSpin * 16) {
        procyield(kActiveSpinCount);
      } else {
        osyield();  // the holder may have lost its CPU
      }
      spins++;
    }
    if (state_.exchange(1, std::memory_order_acquire) == 0) return;
  }
}

void Note::wakeup() {
  uint32_t old = key_.exchange(1, std::memory_order_release);
  if (old != 0) throw_fatal("notewakeup - double wakeup");
  futex_wake(&key_, 1);
}

void Note::sleep() {
  while (key_.load(std::memory_order_acquire) == 0) futex_sleep(&key_, 0, -1);
}

bool Note::spin_for(int64_t ns) {
  int64_t deadline = nanotime() + ns;
  for (;;) {
    for (int i = 0; i < 64; i++) {
      if (key_.load(std::memory_order_acquire) != 0) return true;
      __builtin_ia32_pause();
    }
    if (nanotime() >= deadline) return false;
    osyield();
  }
}

bool Note::sleep_for(int64_t ns) {
  if (ns < 0) {
    sleep();
    return true;
  }
  int64_t deadline = nanotime() + ns;
  while (key_.load(std::memory_order_acquire) == 0) {
    int64_t left = deadline - nanotime();
    if (left <= 0) return false;
    futex_sleep(&key_, 0, left);
  }
  return true;
}

}  // namespace rt::internal

// Goroutine synchronisation: Go's sync package. Every wait parks the
// goroutine (gopark on a runtime semaphore), never the OS thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

namespace rt {

// Runtime semaphores (Go's sema.go): semacquire waits until *addr > 0 and
// decrements it; semrelease increments it and wakes one waiter. Waiters are
// kept per address in a balanced tree inside one of 251 hash buckets.
void semacquire(std::atomic<uint32_t>* addr);
// With lifo, the waiter goes to the head of the queue (used by Mutex for
// goroutines that already waited once).
void semacquire_mutex(std::atomic<uint32_t>* addr, bool lifo);
// With handoff, the woken waiter gets the count directly and the caller
// yields to it (Mutex starvation mode).
void semrelease(std::atomic<uint32_t>* addr, bool handoff = false);

// Mutual exclusion lock with Go's two modes. Normal mode: a woken waiter
// competes with arriving goroutines (fast, unfair). Starvation mode,
// entered when a waiter has waited over 1 ms: ownership is handed directly
// to the waiter at the head of the queue. Unlocking an unlocked Mutex is a
// fatal error ("sync: unlock of unlocked mutex"), as in Go.
class Mutex {
 public:
  void lock();
  bool try_lock();
  void unlock();

 private:
  void lock_slow();
  void unlock_slow(int32_t new_state);
  std::atomic<int32_t> state_{0};
  std::atomic<uint32_t> sema_{0};
};

// Reader/writer lock (Go's RWMutex): a pending writer blocks new readers.
class RWMutex {
 public:
  void lock();
  void unlock();
  void rlock();
  void runlock();
  bool try_lock();
  bool try_rlock();

 private:
  static constexpr int32_t kMaxReaders = 1 << 30;
  Mutex w_;
  std::atomic<uint32_t> writer_sem_{0};
  std::atomic<uint32_t> reader_sem_{0};
  std::atomic<int32_t> reader_count_{0};
  std::atomic<int32_t> reader_wait_{0};
};

// Waits for a collection of goroutines (Go's WaitGroup). A negative
// counter panics with "sync: negative WaitGroup counter".
class WaitGroup {
 public:
  void add(int delta);
  void done() { add(-1); }
  void wait();

 private:
  // High 32 bits: counter. Low 32 bits: waiter count.
  std::atomic<uint64_t> state_{0};
  std::atomic<uint32_t> sema_{0};
};

// Runs a function exactly once (Go's Once). Concurrent callers wait until
// the first call returns.
class Once {
 public:
  void call(const std::function<void()>& f);
  bool done() const { return done_.load(std::memory_order_acquire) != 0; }

 private:
  std::atomic<uint32_t> done_{0};
  Mutex m_;
};

// Go's RAII helper for the lock types.
template <class L>
class LockGuard {
 public:
  explicit LockGuard(L& l) : l_(l) { l_.lock(); }
  ~LockGuard() { l_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  L& l_;
};

}  // namespace rt

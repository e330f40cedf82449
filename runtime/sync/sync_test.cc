// Tests of the sync package: runtime semaphores, Mutex, RWMutex, WaitGroup
// and Once, against Go's semantics. Built and run once per variant
// (rt_cc_test). Every wait is bounded, and no test measures speed: the only
// time limits are loose ones that turn a hang into a failure.
//
// Some tests look inside the runtime (white-box): they read a goroutine's
// status to know that it is parked in a given wait before going on, which
// makes orderings deterministic, and one reads Mutex's state word to see
// starvation mode.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "rt/rt.h"
#include "runtime/sched/runtime2.h"
#include "runtime/testing/rt_test_util.h"

namespace {

using rt::internal::G;
using rt::internal::getg;

// Wait reasons of the runtime's parked goroutines (runtime/sync/sema.h).
constexpr const char kSemacquire[] = "semacquire";
constexpr const char kMutexLock[] = "sync.Mutex.Lock";
constexpr const char kRWMutexRLock[] = "sync.RWMutex.RLock";
constexpr const char kRWMutexLock[] = "sync.RWMutex.Lock";
constexpr const char kWaitGroupWait[] = "sync.WaitGroup.Wait";

constexpr int64_t kMs = 1'000'000;

using rt::testing::ProcsGuard;
using rt::testing::wait_until;

// Yields for about ms milliseconds (gives a wrong implementation time to
// misbehave; never needed for a correct one to pass).
void yield_for(int64_t ms) {
  int64_t until = rt::nanotime() + ms * kMs;
  while (rt::nanotime() < until) rt::gosched();
}

bool is_parked(G* gp, const char* reason) {
  return gp->atomicstatus.load() == rt::internal::kGwaiting && std::strcmp(gp->waitreason, reason) == 0;
}

// Starts f in a goroutine and waits until that goroutine is parked with the
// given wait reason. Returns its G, or nullptr if it did not park in time.
template <class F>
G* go_parked(F f, const char* reason, int64_t timeout_ms = 5000) {
  auto gp = std::make_shared<std::atomic<G*>>(nullptr);
  rt::go([gp, f]() mutable {
    gp->store(getg());
    f();
  });
  bool ok = wait_until([&] { return gp->load() != nullptr && is_parked(gp->load(), reason); }, timeout_ms);
  return ok ? gp->load() : nullptr;
}

// Runs f in a goroutine; true if it returned within the timeout.
template <class F>
bool returns_promptly(F f, int64_t timeout_ms = 5000) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  rt::go([done, f]() mutable {
    f();
    done->store(true);
  });
  return wait_until([&] { return done->load(); }, timeout_ms);
}

// ---- Runtime semaphores ----

TEST(Sema, ReleaseBeforeAcquireDoesNotBlock) {
  std::atomic<uint32_t> sem{0};
  rt::semrelease(&sem);
  rt::semrelease(&sem);
  rt::semrelease(&sem);
  EXPECT_EQ(sem.load(), 3u);
  EXPECT_TRUE(returns_promptly([&] {
    for (int i = 0; i < 3; i++) rt::semacquire(&sem);
  }));
  EXPECT_EQ(sem.load(), 0u);
}

TEST(Sema, EachReleaseWakesExactlyOneWaiter) {
  constexpr int kN = 64;
  constexpr int kFirst = 20;
  std::atomic<uint32_t> sem{0};
  std::atomic<int> woken{0};
  rt::WaitGroup wg;
  wg.add(kN);
  for (int i = 0; i < kN; i++) {
    EXPECT_NE(go_parked(
                  [&] {
                    rt::semacquire(&sem);
                    woken.fetch_add(1);
                    wg.done();
                  },
                  kSemacquire),
              nullptr);
  }
  EXPECT_EQ(woken.load(), 0);
  for (int i = 0; i < kFirst; i++) rt::semrelease(&sem);
  EXPECT_TRUE(wait_until([&] { return woken.load() == kFirst; })) << woken.load();
  // Nobody else wakes: each release was consumed by one waiter.
  yield_for(5);
  EXPECT_EQ(woken.load(), kFirst);
  EXPECT_EQ(sem.load(), 0u);
  for (int i = kFirst; i < kN; i++) rt::semrelease(&sem);
  wg.wait();
  EXPECT_EQ(woken.load(), kN);
  EXPECT_EQ(sem.load(), 0u);
}

// Parks kN goroutines one after the other on one address (each parked
// before the next starts), plus optionally one lifo waiter at the end, then
// releases one count at a time and returns the order in which they woke.
std::vector<int> wake_order(int n, bool add_lifo_waiter) {
  std::atomic<uint32_t> sem{0};
  std::atomic<int> slot{0};
  std::atomic<int> woken{0};
  int total = n + (add_lifo_waiter ? 1 : 0);
  std::vector<int> order(total, -1);
  rt::WaitGroup wg;
  wg.add(total);
  auto waiter = [&](int id, bool lifo) {
    if (lifo) {
      rt::semacquire_mutex(&sem, true);
    } else {
      rt::semacquire(&sem);
    }
    order[slot.fetch_add(1)] = id;
    woken.fetch_add(1);
    wg.done();
  };
  for (int i = 0; i < n; i++) {
    EXPECT_NE(go_parked([&waiter, i] { waiter(i, false); }, kSemacquire), nullptr) << i;
  }
  if (add_lifo_waiter) {
    EXPECT_NE(go_parked([&waiter, n] { waiter(n, true); }, kMutexLock), nullptr);
  }
  for (int i = 0; i < total; i++) {
    rt::semrelease(&sem);
    EXPECT_TRUE(wait_until([&] { return woken.load() == i + 1; })) << i;
  }
  wg.wait();
  return order;
}

TEST(Sema, WaitersWakeInFifoOrder) {
  ProcsGuard procs(1);
  constexpr int kN = 12;
  std::vector<int> order = wake_order(kN, false);
  std::vector<int> expect(kN);
  for (int i = 0; i < kN; i++) expect[i] = i;
  EXPECT_EQ(order, expect);
}

TEST(Sema, LifoWaiterGoesToTheHead) {
  ProcsGuard procs(1);
  constexpr int kN = 5;
  std::vector<int> order = wake_order(kN, true);
  std::vector<int> expect = {kN, 0, 1, 2, 3, 4};
  EXPECT_EQ(order, expect);
}

TEST(Sema, HandoffGivesTheCountToTheWaiter) {
  ProcsGuard procs(1);
  std::atomic<uint32_t> sem{0};
  std::atomic<int> woken{0};
  rt::WaitGroup wg;
  wg.add(1);
  ASSERT_NE(go_parked(
                [&] {
                  rt::semacquire(&sem);
                  woken.fetch_add(1);
                  wg.done();
                },
                kSemacquire),
            nullptr);
  rt::semrelease(&sem, true);
  // The releaser took the count for the waiter: nobody else can get it.
  EXPECT_EQ(sem.load(), 0u);
  wg.wait();
  EXPECT_EQ(woken.load(), 1);
  EXPECT_EQ(sem.load(), 0u);
}

// Addresses 251 * 8 bytes apart share one hash bucket of the semaphore
// table (sema.cc), so their waiters live in one treap.
constexpr size_t kCollideStride = 251 * 8 / sizeof(std::atomic<uint32_t>);

TEST(Sema, CollidingAddressesKeepSeparateQueues) {
  constexpr int kAddrs = 48;
  std::vector<std::atomic<uint32_t>> table(kAddrs * kCollideStride + 1);
  auto addr = [&](int k) { return &table[k * kCollideStride]; };
  struct Slot {
    std::atomic<int> woken{0};
    int order[3] = {-1, -1, -1};
  };
  std::vector<Slot> slots(kAddrs);
  std::atomic<int> total{0};
  std::atomic<int> last_addr{-1};
  rt::WaitGroup wg;
  wg.add(kAddrs * 3);
  auto waiter = [&](int k, int id) {
    if (id == 2) {
      rt::semacquire_mutex(addr(k), true);
    } else {
      rt::semacquire(addr(k));
    }
    Slot& s = slots[k];
    s.order[s.woken.load()] = id;
    s.woken.fetch_add(1);
    last_addr.store(k);
    total.fetch_add(1);
    wg.done();
  };
  // Build the tree in a scrambled address order: per address two fifo
  // waiters (0, 1) and then a lifo waiter (2), which goes ahead of them.
  std::mt19937 rng(12345);
  std::vector<int> build(kAddrs);
  for (int k = 0; k < kAddrs; k++) build[k] = k;
  std::shuffle(build.begin(), build.end(), rng);
  for (int round = 0; round < 3; round++) {
    for (int k : build) {
      const char* reason = round == 2 ? kMutexLock : kSemacquire;
      EXPECT_NE(go_parked([&waiter, k, round] { waiter(k, round); }, reason), nullptr) << k << " " << round;
    }
  }
  EXPECT_EQ(total.load(), 0);

  // A release on an address of the same bucket without waiters wakes
  // nobody and keeps its count.
  std::atomic<uint32_t>* idle = &table[kAddrs * kCollideStride];
  rt::semrelease(idle);
  yield_for(2);
  EXPECT_EQ(total.load(), 0);
  EXPECT_EQ(idle->load(), 1u);
  EXPECT_TRUE(returns_promptly([&] { rt::semacquire(idle); }));

  // Release in random order, one count at a time: each wakes the next
  // waiter of that address and no other.
  std::vector<int> releases;
  for (int k = 0; k < kAddrs; k++) releases.insert(releases.end(), 3, k);
  std::shuffle(releases.begin(), releases.end(), rng);
  for (size_t i = 0; i < releases.size(); i++) {
    int k = releases[i];
    int before = slots[k].woken.load();
    rt::semrelease(addr(k));
    ASSERT_TRUE(wait_until([&] { return total.load() == int(i) + 1; })) << i;
    EXPECT_EQ(last_addr.load(), k);
    EXPECT_EQ(slots[k].woken.load(), before + 1);
  }
  wg.wait();
  for (int k = 0; k < kAddrs; k++) {
    EXPECT_EQ(slots[k].order[0], 2) << k;
    EXPECT_EQ(slots[k].order[1], 0) << k;
    EXPECT_EQ(slots[k].order[2], 1) << k;
    EXPECT_EQ(addr(k)->load(), 0u) << k;
  }
}

TEST(Sema, CollidingAddressesUnderContention) {
  ProcsGuard procs(2);
  constexpr int kAddrs = 8;
  constexpr int kConsumers = 3;
  constexpr int kPerConsumer = 400;
  std::vector<std::atomic<uint32_t>> table(kAddrs * kCollideStride);
  auto addr = [&](int k) { return &table[k * kCollideStride]; };
  std::vector<std::atomic<int>> acquired(kAddrs);
  rt::WaitGroup wg;
  wg.add(kAddrs * (kConsumers + 1));
  for (int k = 0; k < kAddrs; k++) {
    for (int c = 0; c < kConsumers; c++) {
      rt::go([&, k, c] {
        for (int i = 0; i < kPerConsumer; i++) {
          rt::semacquire_mutex(addr(k), c == 0 && (i & 1));
          acquired[k].fetch_add(1);
        }
        wg.done();
      });
    }
    rt::go([&, k] {
      for (int i = 0; i < kConsumers * kPerConsumer; i++) {
        rt::semrelease(addr(k), (i & 7) == 0);
        if ((i & 15) == 0) rt::gosched();
      }
      wg.done();
    });
  }
  wg.wait();
  for (int k = 0; k < kAddrs; k++) {
    EXPECT_EQ(acquired[k].load(), kConsumers * kPerConsumer) << k;
    EXPECT_EQ(addr(k)->load(), 0u) << k;
  }
}

// ---- Mutex ----

void mutex_counter(int procs) {
  ProcsGuard guard(procs);
  constexpr int kG = 8;
  constexpr int kIters = 20000;
  rt::Mutex mu;
  long counter = 0;  // plain: only the mutex protects it
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  rt::WaitGroup wg;
  wg.add(kG);
  for (int g = 0; g < kG; g++) {
    rt::go([&] {
      for (int i = 0; i < kIters; i++) {
        mu.lock();
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        long v = counter;
        // Now and then switch goroutines inside the critical section.
        if ((i & 127) == 0) rt::gosched();
        counter = v + 1;
        inside.fetch_sub(1);
        mu.unlock();
      }
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(counter, long(kG) * kIters);
  EXPECT_EQ(overlaps.load(), 0);
}

TEST(Mutex, CounterUnderContentionOneProc) { mutex_counter(1); }
TEST(Mutex, CounterUnderContentionTwoProcs) { mutex_counter(2); }

TEST(Mutex, LockGuardAndUnlockByAnotherGoroutine) {
  rt::Mutex mu;
  {
    rt::LockGuard<rt::Mutex> g(mu);
    EXPECT_FALSE(mu.try_lock());
  }
  EXPECT_TRUE(mu.try_lock());
  // As in Go, a mutex is not tied to a goroutine: another one may unlock.
  EXPECT_TRUE(returns_promptly([&] { mu.unlock(); }));
  EXPECT_TRUE(mu.try_lock());
  mu.unlock();
}

TEST(Mutex, TryLock) {
  rt::Mutex mu;
  EXPECT_TRUE(mu.try_lock());
  EXPECT_FALSE(mu.try_lock());
  std::atomic<bool> other{true};
  EXPECT_TRUE(returns_promptly([&] { other = mu.try_lock(); }));
  EXPECT_FALSE(other.load());
  mu.unlock();
  EXPECT_TRUE(returns_promptly([&] {
    other = mu.try_lock();
    if (other) mu.unlock();
  }));
  EXPECT_TRUE(other.load());

  // A goroutine blocked in lock gets the mutex once it is unlocked, and
  // try_lock fails meanwhile.
  mu.lock();
  std::atomic<bool> got{false};
  rt::WaitGroup wg;
  wg.add(1);
  ASSERT_NE(go_parked(
                [&] {
                  mu.lock();
                  got = true;
                  EXPECT_FALSE(mu.try_lock());
                  mu.unlock();
                  wg.done();
                },
                kMutexLock),
            nullptr);
  EXPECT_FALSE(mu.try_lock());
  EXPECT_FALSE(got.load());
  mu.unlock();
  wg.wait();
  EXPECT_TRUE(got.load());
  EXPECT_TRUE(mu.try_lock());
  mu.unlock();
}

// Mutex's state word (white-box): bit 2 is starvation mode.
static_assert(std::is_standard_layout_v<rt::Mutex>);
int32_t mutex_state(rt::Mutex& mu) { return reinterpret_cast<std::atomic<int32_t>*>(&mu)->load(); }
constexpr int32_t kMutexStarving = 4;

TEST(Mutex, StarvationModeHandsLockToLongWaiterOneProc) {
  // One P. The hammer holds the mutex while yielding and relocks right
  // after each unlock, without yielding: a woken waiter only ever runs while
  // the mutex is held, so in normal mode it would lose forever. Once it has
  // waited over 1 ms it switches the mutex to starvation mode, and the next
  // unlock hands the mutex to it.
  ProcsGuard procs(1);
  rt::Mutex mu;
  std::atomic<bool> victim_got{false};
  std::atomic<bool> saw_starving{false};
  std::atomic<int> rounds{0};
  rt::WaitGroup wg;
  wg.add(2);
  rt::go([&] {
    int64_t deadline = rt::nanotime() + 5000 * kMs;
    while (!victim_got.load() && rt::nanotime() < deadline) {
      mu.lock();
      int64_t until = rt::nanotime() + kMs / 10;
      do {
        rt::gosched();
      } while (rt::nanotime() < until);
      if (mutex_state(mu) & kMutexStarving) saw_starving = true;
      mu.unlock();
      rounds.fetch_add(1);
    }
    wg.done();
  });
  ASSERT_TRUE(wait_until([&] { return rounds.load() > 0; }));
  rt::go([&] {
    mu.lock();
    victim_got = true;
    mu.unlock();
    wg.done();
  });
  wg.wait();
  EXPECT_TRUE(victim_got.load()) << "rounds " << rounds.load();
  EXPECT_TRUE(saw_starving.load());
  // Starvation mode ended with the last waiter.
  EXPECT_EQ(mutex_state(mu), 0);
}

TEST(Mutex, LongWaiterGetsLockWhileOthersHammerTwoProcs) {
  ProcsGuard procs(2);
  constexpr int kHammers = 3;
  rt::Mutex mu;
  std::atomic<bool> victim_got{false};
  std::atomic<int> rounds{0};
  rt::WaitGroup wg;
  wg.add(kHammers + 1);
  for (int h = 0; h < kHammers; h++) {
    rt::go([&] {
      int64_t deadline = rt::nanotime() + 5000 * kMs;
      while (!victim_got.load() && rt::nanotime() < deadline) {
        mu.lock();
        int64_t until = rt::nanotime() + kMs / 20;
        while (rt::nanotime() < until) rt::preempt_point();
        mu.unlock();
        rounds.fetch_add(1);
      }
      wg.done();
    });
  }
  ASSERT_TRUE(wait_until([&] { return rounds.load() > 10; }));
  rt::go([&] {
    for (int i = 0; i < 5; i++) {
      mu.lock();
      mu.unlock();
    }
    victim_got = true;
    wg.done();
  });
  wg.wait();
  EXPECT_TRUE(victim_got.load()) << "rounds " << rounds.load();
}

TEST(MutexDeathTest, UnlockOfUnlockedMutex) {
  EXPECT_EXIT(
      {
        rt::Mutex mu;
        mu.unlock();
      },
      testing::ExitedWithCode(2), "fatal error: sync: unlock of unlocked mutex");
  EXPECT_EXIT(
      {
        rt::Mutex mu;
        mu.lock();
        mu.unlock();
        mu.unlock();
      },
      testing::ExitedWithCode(2), "fatal error: sync: unlock of unlocked mutex");
}

// ---- RWMutex ----

TEST(RWMutex, ReadersHoldTheLockTogether) {
  constexpr int kReaders = 4;
  rt::RWMutex rw;
  std::atomic<int> entered{0};
  std::atomic<int> all_in{0};
  rt::WaitGroup wg;
  wg.add(kReaders);
  for (int i = 0; i < kReaders; i++) {
    rt::go([&] {
      rw.rlock();
      entered.fetch_add(1);
      // Nobody leaves before everyone is in: only possible if all of
      // them hold the read lock at once.
      if (wait_until([&] { return entered.load() == kReaders; }, 5000)) all_in.fetch_add(1);
      rw.runlock();
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(all_in.load(), kReaders);
  EXPECT_TRUE(rw.try_lock());
  rw.unlock();
}

TEST(RWMutex, WriterExcludesReadersAndWriters) {
  ProcsGuard procs(2);
  constexpr int kReaders = 4;
  constexpr int kWriters = 2;
  constexpr int kReadIters = 3000;
  constexpr int kWriteIters = 1500;
  rt::RWMutex rw;
  std::atomic<int> readers{0}, writers{0}, bad{0}, max_readers{0};
  long data = 0;  // even outside write sections
  rt::WaitGroup wg;
  wg.add(kReaders + kWriters);
  for (int r = 0; r < kReaders; r++) {
    rt::go([&] {
      for (int i = 0; i < kReadIters; i++) {
        if ((i & 7) != 0 || !rw.try_rlock()) rw.rlock();
        int n = readers.fetch_add(1) + 1;
        int m = max_readers.load();
        while (n > m && !max_readers.compare_exchange_weak(m, n)) {
        }
        if (writers.load() != 0) bad.fetch_add(1);
        if (data & 1) bad.fetch_add(1);
        if ((i & 31) == 0) rt::gosched();
        if (writers.load() != 0) bad.fetch_add(1);
        readers.fetch_sub(1);
        rw.runlock();
      }
      wg.done();
    });
  }
  for (int w = 0; w < kWriters; w++) {
    rt::go([&] {
      for (int i = 0; i < kWriteIters; i++) {
        if ((i & 3) != 0 || !rw.try_lock()) rw.lock();
        if (writers.fetch_add(1) != 0) bad.fetch_add(1);
        if (readers.load() != 0) bad.fetch_add(1);
        data++;
        if ((i & 15) == 0) rt::gosched();
        data++;
        if (readers.load() != 0) bad.fetch_add(1);
        writers.fetch_sub(1);
        rw.unlock();
      }
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(data, 2L * kWriters * kWriteIters);
  EXPECT_GE(max_readers.load(), 1);
  EXPECT_TRUE(rw.try_lock());
  rw.unlock();
}

TEST(RWMutex, PendingWriterBlocksNewReaders) {
  rt::RWMutex rw;
  rw.rlock();
  std::atomic<bool> writer_in{false}, writer_done{false}, reader2_in{false};
  std::atomic<bool> reader2_in_during_write{true}, writer_done_before_reader2{false};
  rt::WaitGroup wg;
  wg.add(2);
  ASSERT_NE(go_parked(
                [&] {
                  rw.lock();
                  writer_in = true;
                  reader2_in_during_write = reader2_in.load();
                  yield_for(1);
                  writer_done = true;
                  rw.unlock();
                  wg.done();
                },
                kRWMutexLock),
            nullptr);
  // Only a reader holds the lock, but the waiting writer shuts readers out.
  bool got_read = rw.try_rlock();
  EXPECT_FALSE(got_read);
  if (got_read) rw.runlock();
  bool got_write = rw.try_lock();
  EXPECT_FALSE(got_write);
  if (got_write) rw.unlock();
  ASSERT_NE(go_parked(
                [&] {
                  rw.rlock();
                  reader2_in = true;
                  writer_done_before_reader2 = writer_done.load();
                  rw.runlock();
                  wg.done();
                },
                kRWMutexRLock),
            nullptr);
  EXPECT_FALSE(writer_in.load());
  EXPECT_FALSE(reader2_in.load());
  rw.runlock();  // the writer goes first, then the new reader
  wg.wait();
  EXPECT_TRUE(writer_in.load());
  EXPECT_FALSE(reader2_in_during_write.load());
  EXPECT_TRUE(writer_done_before_reader2.load());
}

TEST(RWMutex, ReadersWaitingOnAWriterGoBeforeTheNextWriter) {
  rt::RWMutex rw;
  rw.lock();
  std::atomic<int> seq{0};
  std::atomic<int> reader_at{-1}, writer2_at{-1};
  rt::WaitGroup wg;
  wg.add(2);
  ASSERT_NE(go_parked(
                [&] {
                  rw.rlock();
                  reader_at = seq.fetch_add(1);
                  yield_for(1);
                  rw.runlock();
                  wg.done();
                },
                kRWMutexRLock),
            nullptr);
  ASSERT_NE(go_parked(
                [&] {
                  rw.lock();
                  writer2_at = seq.fetch_add(1);
                  rw.unlock();
                  wg.done();
                },
                kMutexLock),  // writers queue on the inner Mutex
            nullptr);
  rw.unlock();
  wg.wait();
  EXPECT_EQ(reader_at.load(), 0);
  EXPECT_EQ(writer2_at.load(), 1);
}

TEST(RWMutex, TryLockAndTryRLock) {
  rt::RWMutex rw;
  EXPECT_TRUE(rw.try_lock());
  EXPECT_FALSE(rw.try_lock());
  EXPECT_FALSE(rw.try_rlock());
  rw.unlock();
  EXPECT_TRUE(rw.try_rlock());
  EXPECT_TRUE(rw.try_rlock());
  EXPECT_FALSE(rw.try_lock());  // readers hold it
  rw.runlock();
  EXPECT_FALSE(rw.try_lock());
  rw.runlock();
  EXPECT_TRUE(rw.try_lock());
  // A failed try_lock leaves nothing behind: readers and writers get in.
  rw.unlock();
  rw.rlock();
  EXPECT_FALSE(rw.try_lock());
  rw.runlock();
  EXPECT_TRUE(returns_promptly([&] {
    rw.lock();
    rw.unlock();
  }));
}

TEST(RWMutexDeathTest, RUnlockOfUnlocked) {
  EXPECT_EXIT(
      {
        rt::RWMutex rw;
        rw.runlock();
      },
      testing::ExitedWithCode(2), "fatal error: sync: RUnlock of unlocked RWMutex");
  EXPECT_EXIT(
      {
        rt::RWMutex rw;
        rw.rlock();
        rw.runlock();
        rw.runlock();
      },
      testing::ExitedWithCode(2), "fatal error: sync: RUnlock of unlocked RWMutex");
  EXPECT_EXIT(
      {
        rt::RWMutex rw;
        rw.lock();
        rw.runlock();
      },
      testing::ExitedWithCode(2), "fatal error: sync: RUnlock of unlocked RWMutex");
}

TEST(RWMutexDeathTest, UnlockOfUnlocked) {
  EXPECT_EXIT(
      {
        rt::RWMutex rw;
        rw.unlock();
      },
      testing::ExitedWithCode(2), "fatal error: sync: Unlock of unlocked RWMutex");
  EXPECT_EXIT(
      {
        rt::RWMutex rw;
        rw.rlock();
        rw.unlock();
      },
      testing::ExitedWithCode(2), "fatal error: sync: Unlock of unlocked RWMutex");
}

// ---- WaitGroup ----

TEST(WaitGroup, WaitWithZeroCounterReturnsAtOnce) {
  rt::WaitGroup wg;
  EXPECT_TRUE(returns_promptly([&] { wg.wait(); }));
  wg.add(2);
  wg.add(-2);
  EXPECT_TRUE(returns_promptly([&] { wg.wait(); }));
}

TEST(WaitGroup, ManyGoroutinesAddAndDone) {
  ProcsGuard procs(2);
  // A tree of goroutines: each adds its children before starting them.
  constexpr int kFanout = 6;
  constexpr int kDepth = 4;  // 6 + 36 + 216 + 1296 goroutines
  rt::WaitGroup wg;
  std::atomic<int> finished{0};
  std::function<void(int)> node = [&](int depth) {
    if (depth < kDepth) {
      wg.add(kFanout);
      for (int i = 0; i < kFanout; i++) rt::go(node, depth + 1);
    }
    if (depth & 1) rt::gosched();
    finished.fetch_add(1);
    wg.done();
  };
  wg.add(1);
  rt::go(node, 0);
  wg.wait();
  int expect = 0;
  for (int d = 0, n = 1; d <= kDepth; d++, n *= kFanout) expect += n;
  EXPECT_EQ(finished.load(), expect);
}

TEST(WaitGroup, AllWaitersReleased) {
  constexpr int kWaiters = 8;
  rt::WaitGroup wg, waiters_done;
  std::atomic<int> released{0};
  wg.add(1);
  waiters_done.add(kWaiters);
  for (int i = 0; i < kWaiters; i++) {
    EXPECT_NE(go_parked(
                  [&] {
                    wg.wait();
                    released.fetch_add(1);
                    waiters_done.done();
                  },
                  kWaitGroupWait),
              nullptr);
  }
  EXPECT_EQ(released.load(), 0);
  wg.done();
  EXPECT_TRUE(wait_until([&] { return released.load() == kWaiters; })) << released.load();
  waiters_done.wait();
  EXPECT_EQ(released.load(), kWaiters);
}

TEST(WaitGroup, ReusedAfterWait) {
  ProcsGuard procs(2);
  rt::WaitGroup wg;
  for (int round = 1; round <= 50; round++) {
    std::atomic<int> ran{0};
    int n = round % 7 + 1;
    wg.add(n);
    for (int i = 0; i < n; i++) {
      rt::go([&] {
        rt::gosched();
        ran.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
    ASSERT_EQ(ran.load(), n) << "round " << round;
  }
}

TEST(WaitGroup, NegativeCounterPanics) {
  {
    rt::WaitGroup wg;
    EXPECT_THROW(wg.add(-1), rt::Panic);
  }
  {
    rt::WaitGroup wg;
    wg.add(1);
    wg.done();
    try {
      wg.done();
      ADD_FAILURE() << "no panic";
    } catch (const rt::Panic& p) {
      EXPECT_STREQ(p.what(), "sync: negative WaitGroup counter");
    }
  }
}

// ---- Once ----

TEST(Once, RunsOnceAndCallersWaitForIt) {
  ProcsGuard procs(2);
  constexpr int kG = 16;
  rt::Once once;
  std::atomic<int> calls{0}, arrived{0}, saw_effect{0};
  int value = 0;  // plain: published by Once
  rt::WaitGroup wg;
  wg.add(kG);
  for (int i = 0; i < kG; i++) {
    rt::go([&] {
      arrived.fetch_add(1);
      once.call([&] {
        calls.fetch_add(1);
        // Stay inside until every goroutine has arrived, and a little more,
        // so that the others call while f runs.
        wait_until([&] { return arrived.load() == kG; }, 5000);
        yield_for(2);
        value = 42;
      });
      if (value == 42) saw_effect.fetch_add(1);
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(saw_effect.load(), kG);
  EXPECT_TRUE(once.done());
}

TEST(Once, ThrowingFunctionCountsAsDone) {
  rt::Once once;
  EXPECT_FALSE(once.done());
  int runs = 0;
  try {
    once.call([&] {
      runs++;
      throw rt::Panic("once: boom");
    });
    ADD_FAILURE() << "exception not propagated";
  } catch (const rt::Panic& p) {
    EXPECT_STREQ(p.what(), "once: boom");
  }
  EXPECT_TRUE(once.done());
  EXPECT_TRUE(returns_promptly([&] { once.call([&] { runs++; }); }));
  EXPECT_EQ(runs, 1);
}

TEST(Once, WaitersOfThrowingFunctionReturnNormally) {
  rt::Once once;
  std::atomic<bool> inside{false}, second_ran{false}, second_returned{false};
  std::atomic<G*> second_g{nullptr};
  std::string caught;
  rt::WaitGroup wg;
  wg.add(2);
  rt::go([&] {
    try {
      once.call([&] {
        inside = true;
        // Throw only once the second caller waits for us.
        EXPECT_TRUE(wait_until(
            [&] {
              G* g = second_g.load();
              return g != nullptr && is_parked(g, kMutexLock);
            },
            5000));
        throw rt::Panic("first caller");
      });
    } catch (const rt::Panic& p) {
      caught = p.what();
    }
    wg.done();
  });
  ASSERT_TRUE(wait_until([&] { return inside.load(); }));
  rt::go([&] {
    second_g = getg();
    once.call([&] { second_ran = true; });
    second_returned = true;
    wg.done();
  });
  wg.wait();
  EXPECT_EQ(caught, "first caller");
  EXPECT_TRUE(second_returned.load());
  EXPECT_FALSE(second_ran.load());
  EXPECT_TRUE(once.done());
}

}  // namespace

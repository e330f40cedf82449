// Lock ranks (lockrank.h): checked in the debug build only, so outside it
// these tests are skipped (scripts/test --config=dbg runs them).
#include <gtest/gtest.h>

#include "rt/rt.h"
#include "runtime/chan/chan.h"
#include "runtime/mem/mheap.h"
#include "runtime/sched/runtime2.h"

namespace {

using rt::internal::heap_lock;
using rt::internal::LockRank;
using rt::internal::sched;

#ifdef RT_DEBUG
#define REQUIRE_LOCK_RANKS() \
  do {                       \
  } while (0)
#else
#define REQUIRE_LOCK_RANKS() GTEST_SKIP() << "lock ranks are checked in --config=dbg only"
#endif

TEST(LockRank, LocksInRankOrderAreAccepted) {
  REQUIRE_LOCK_RANKS();
  sched.lock.lock();
  heap_lock.lock();
  heap_lock.assert_held();
  sched.lock.assert_held();
  heap_lock.unlock();
  sched.lock.unlock();
  // Released out of order, then taken again: nothing left behind.
  sched.lock.lock();
  heap_lock.lock();
  sched.lock.unlock();
  heap_lock.unlock();
  sched.lock.lock();
  sched.lock.unlock();
}

TEST(LockRankDeathTest, InversionNamesBothLocks) {
  REQUIRE_LOCK_RANKS();
  EXPECT_EXIT(
      {
        heap_lock.lock();
        sched.lock.lock();
      },
      testing::ExitedWithCode(2),
      "runtime: lock ordering problem: acquiring sched \\(rank [0-9]+\\) 0x[0-9a-f]+ while holding mheap \\(rank "
      "[0-9]+\\) 0x[0-9a-f]+\n[0-9]+  ======\n0 : mheap [0-9]+ 0x[0-9a-f]+\n1 : sched [0-9]+ 0x[0-9a-f]+\n"
      "fatal error: lock ordering problem");
}

TEST(LockRankDeathTest, SameRankTwiceIsAnInversion) {
  REQUIRE_LOCK_RANKS();
  // Two semaphore roots: nothing orders them, so holding both could deadlock.
  static rt::internal::Lock a{LockRank::kSemaRoot}, b{LockRank::kSemaRoot};
  EXPECT_EXIT(
      {
        a.lock();
        b.lock();
      },
      testing::ExitedWithCode(2), "acquiring semaRoot .* while holding semaRoot (.|\n)*fatal error: lock ordering problem");
}

TEST(LockRankDeathTest, ChannelsOnlyInAddressOrder) {
  REQUIRE_LOCK_RANKS();
  // Select locks its channels sorted by address; any other order is fatal.
  static rt::internal::SpinLock locks[2] = {rt::internal::SpinLock{LockRank::kHchan},
                                            rt::internal::SpinLock{LockRank::kHchan}};
  locks[0].lock();
  locks[1].lock();
  locks[1].unlock();
  locks[0].unlock();
  EXPECT_EXIT(
      {
        locks[1].lock();
        locks[0].lock();
      },
      testing::ExitedWithCode(2), "acquiring hchan .* while holding hchan (.|\n)*fatal error: lock ordering problem");
}

TEST(LockRankDeathTest, AssertHeldWithoutTheLock) {
  REQUIRE_LOCK_RANKS();
  EXPECT_EXIT(heap_lock.assert_held(), testing::ExitedWithCode(2),
              "caller requires lock 0x[0-9a-f]+ \\(rank mheap\\), holding:\n(.|\n)*fatal error: not holding required lock!");
}

}  // namespace

// Run-queue policy stress test: one owner puts and gets while many thieves
// steal, on plain OS threads with private Ps. Every goroutine record must
// come out exactly once, whatever the variant.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "rt/rt.h"
#include "runtime/policy/runq.h"
#include "runtime/sched/runtime2.h"

namespace {

using rt::internal::G;
using rt::internal::P;
namespace runq = rt::policy::runq;

// Runs f alone on one P with no other goroutines, never preempted: the
// tests put records that are not real goroutines into the real global
// queue, and a scheduler that took one would run it. m->locks > 0 (Go's
// acquirem) makes both the cooperative check and the SIGURG handler
// refuse to preempt. The runtime's own goroutines (the background
// sweeper after a collection) may be runnable at first: they run and park
// before f starts, so that the queues hold only the test's records, which
// the test's thieves would otherwise take for its own.
template <class F>
void with_global_queue_to_myself(F f) {
  int old = rt::gomaxprocs(1);
  rt::internal::M* mp = nullptr;
  for (int tries = 0;; tries++) {
    ASSERT_LT(tries, 1000) << "other goroutines stayed runnable";
    rt::gosched();
    mp = rt::internal::getm();
    mp->locks++;
    if (rt::internal::sched.runqsize.load() == 0 && runq::empty(mp->p)) break;
    mp->locks--;
  }
  f();
  mp->locks--;
  rt::gomaxprocs(old);
}

void drain_global(std::vector<std::atomic<int>>& seen, std::vector<G>& gs) {
  rt::internal::LockGuard g(rt::internal::sched.lock);
  while (rt::internal::sched.runqsize > 0) {
    G* gp = rt::internal::sched.runq.pop();
    rt::internal::sched.runqsize--;
    seen[size_t(gp - gs.data())]++;
  }
}

TEST(Runq, EveryGoroutineRunsExactlyOnceUnderStealing) {
  with_global_queue_to_myself([] {
    constexpr int kGs = 200000;
    constexpr int kThieves = 3;
    std::vector<G> gs(kGs);
    std::vector<std::atomic<int>> seen(kGs);
    auto owner = std::make_unique<P>();
    std::vector<std::unique_ptr<P>> thief_ps;
    for (int i = 0; i < kThieves; i++) thief_ps.push_back(std::make_unique<P>());
    owner->status.store(rt::internal::kPrunning);

    std::atomic<bool> done{false};
    std::vector<std::thread> thieves;
    for (int i = 0; i < kThieves; i++) {
      thieves.emplace_back([&, i] {
        P* me = thief_ps[size_t(i)].get();
        while (!done.load(std::memory_order_acquire)) {
          if (G* gp = runq::steal(me, owner.get(), (i & 1) != 0)) seen[size_t(gp - gs.data())]++;
          bool inherit;
          while (G* gp = runq::get(me, &inherit)) seen[size_t(gp - gs.data())]++;
        }
        bool inherit;
        while (G* gp = runq::get(me, &inherit)) seen[size_t(gp - gs.data())]++;
      });
    }
    unsigned rnd = 12345;
    for (int i = 0; i < kGs; i++) {
      rnd = rnd * 1103515245 + 12345;
      runq::put(owner.get(), &gs[size_t(i)], (rnd >> 16) % 4 == 0);
      if ((rnd >> 20) % 3 == 0) {
        bool inherit;
        if (G* gp = runq::get(owner.get(), &inherit)) seen[size_t(gp - gs.data())]++;
      }
    }
    bool inherit;
    while (G* gp = runq::get(owner.get(), &inherit)) seen[size_t(gp - gs.data())]++;
    done.store(true, std::memory_order_release);
    for (auto& t : thieves) t.join();
    drain_global(seen, gs);

    int missing = 0, duplicated = 0;
    for (int i = 0; i < kGs; i++) {
      if (seen[size_t(i)].load() == 0) missing++;
      if (seen[size_t(i)].load() > 1) duplicated++;
    }
    EXPECT_EQ(missing, 0);
    EXPECT_EQ(duplicated, 0);
    EXPECT_TRUE(runq::empty(owner.get()));
  });
}

TEST(Runq, RunnextIsTakenFirstAndInheritsTime) {
  if (!runq::has_local_queues()) GTEST_SKIP() << "variant " << runq::name() << " has no runnext";
  auto p = std::make_unique<P>();
  G a, b, c;
  runq::put(p.get(), &a, false);
  runq::put(p.get(), &b, true);
  runq::put(p.get(), &c, true);  // kicks b to the tail
  bool inherit = false;
  EXPECT_EQ(runq::get(p.get(), &inherit), &c);
  EXPECT_TRUE(inherit);
  EXPECT_EQ(runq::get(p.get(), &inherit), &a);
  EXPECT_FALSE(inherit);
  EXPECT_EQ(runq::get(p.get(), &inherit), &b);
  EXPECT_EQ(runq::get(p.get(), &inherit), nullptr);
  EXPECT_TRUE(runq::empty(p.get()));
}

TEST(Runq, FullRingOverflowsHalfToGlobalQueue) {
  if (!runq::has_local_queues()) GTEST_SKIP() << "variant " << runq::name() << " has no local ring";
  with_global_queue_to_myself([] {
    auto p = std::make_unique<P>();
    std::vector<G> gs(rt::policy::LocalRunq::kSize + 1);
    int32_t before;
    {
      rt::internal::LockGuard g(rt::internal::sched.lock);
      before = rt::internal::sched.runqsize;
    }
    for (auto& g : gs) runq::put(p.get(), &g, false);
    EXPECT_EQ(runq::size(p.get()), rt::policy::LocalRunq::kSize / 2);
    std::vector<std::atomic<int>> seen(gs.size());
    bool inherit;
    while (G* gp = runq::get(p.get(), &inherit)) seen[size_t(gp - gs.data())]++;
    {
      rt::internal::LockGuard g(rt::internal::sched.lock);
      EXPECT_EQ(rt::internal::sched.runqsize - before, int32_t(rt::policy::LocalRunq::kSize / 2 + 1));
    }
    drain_global(seen, gs);
    for (auto& s : seen) EXPECT_EQ(s.load(), 1);
  });
}

}  // namespace

// Timer conformance tests: rt::sleep, rt::after_func / rt::Timer, the
// internal timers the channel code builds on, and their integration with
// the scheduler (idle waiting, deadlock detection, GOMAXPROCS resizing,
// starvation). Built and run once per variant (rt_cc_test).
//
// The machine is two noisy cores: timing checks are lower bounds ("slept at
// least d") and loose upper bounds that only turn a hang into a failure.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "rt/rt.h"
#include "runtime/sched/runtime2.h"
#include "runtime/testing/rt_test_util.h"
#include "runtime/time/timer.h"

namespace {

using namespace std::chrono_literals;
using rt::internal::RuntimeTimer;
using rt::testing::ProcsGuard;
using rt::testing::wait_until;

constexpr int64_t kMs = 1'000'000;

int64_t since(int64_t t0) { return rt::nanotime() - t0; }

// ---- rt::sleep --------------------------------------------------------------

TEST(Sleep, SleepsAtLeastTheDuration) {
  for (int64_t d : {int64_t(1), 1000 * int64_t(1), 1 * kMs, 10 * kMs, 30 * kMs}) {
    int64_t t0 = rt::nanotime();
    rt::sleep(d);
    EXPECT_GE(since(t0), d) << "d=" << d;
  }
}

TEST(Sleep, ChronoOverload) {
  int64_t t0 = rt::nanotime();
  rt::sleep(15ms);
  EXPECT_GE(since(t0), 15 * kMs);
  t0 = rt::nanotime();
  rt::sleep(std::chrono::microseconds(2500));
  EXPECT_GE(since(t0), 2500 * 1000);
}

TEST(Sleep, ZeroAndNegativeReturnAtOnceWithoutParking) {
  uint64_t parks = rt::read_sched_stats().parks;
  int64_t t0 = rt::nanotime();
  for (int i = 0; i < 100; i++) {
    rt::sleep(0);
    rt::sleep(-5 * kMs);
    rt::sleep(std::chrono::milliseconds(-1));
  }
  EXPECT_LT(since(t0), 1000 * kMs);
  EXPECT_EQ(rt::read_sched_stats().parks, parks);
}

TEST(Sleep, HugeDurationDoesNotOverflow) {
  // INT64_MAX from now saturates instead of wrapping into the past: the
  // sleeper must still be asleep when we look.
  std::atomic<bool> woke{false};
  rt::Timer t = rt::after_func(INT64_MAX, [&] { woke = true; });
  rt::sleep(5 * kMs);
  EXPECT_FALSE(woke.load());
  EXPECT_TRUE(t.stop());
}

// The goroutine dump shows "sleep" as the wait reason (white-box).
TEST(Sleep, WaitReasonIsSleep) {
  std::atomic<bool> done{false};
  rt::go([&] {
    rt::sleep(300 * kMs);
    done = true;
  });
  bool seen = wait_until([] {
    bool found = false;
    rt::internal::for_each_g(
        [](rt::internal::G* gp, void* arg) {
          if (gp->atomicstatus.load() == rt::internal::kGwaiting && std::strcmp(gp->waitreason, "sleep") == 0) {
            *static_cast<bool*>(arg) = true;
          }
        },
        &found);
    return found;
  });
  EXPECT_TRUE(seen);
  EXPECT_TRUE(wait_until([&] { return done.load(); }));
}

TEST(Sleep, ThousandSleepersAllWakeOnFewThreads) {
  constexpr int kN = 1000;
  int64_t threads_before = rt::read_sched_stats().threads;
  std::atomic<int> woke{0};
  std::atomic<int> early{0};
  std::atomic<int64_t> max_threads{0};
  for (int i = 0; i < kN; i++) {
    rt::go([&, i] {
      int64_t d = (5 + i % 40) * kMs;
      int64_t t0 = rt::nanotime();
      rt::sleep(d);
      if (since(t0) < d) early++;
      woke++;
    });
  }
  // While they sleep, the thread count does not follow the sleepers.
  EXPECT_TRUE(wait_until([&] {
    int64_t th = rt::read_sched_stats().threads;
    if (th > max_threads.load()) max_threads = th;
    return woke.load() == kN;
  }, 30000));
  EXPECT_EQ(woke.load(), kN);
  EXPECT_EQ(early.load(), 0);
  int64_t threads_after = rt::read_sched_stats().threads;
  // GOMAXPROCS Ms, one waiting for timers, a spinning one: a handful.
  EXPECT_LE(threads_after - threads_before, rt::gomaxprocs(0) + 3);
  EXPECT_LE(max_threads.load(), threads_before + rt::gomaxprocs(0) + 3);
}

TEST(Sleep, LockedGoroutineSleeps) {
  // A goroutine locked to its thread hands its P off while it sleeps
  // (handoffp with a pending timer) and gets it back when it wakes.
  std::atomic<int> done{0};
  rt::go([&] {
    rt::lock_os_thread();
    for (int i = 0; i < 5; i++) {
      int64_t t0 = rt::nanotime();
      rt::sleep(2 * kMs);
      if (since(t0) >= 2 * kMs) done++;
    }
    rt::unlock_os_thread();
  });
  EXPECT_TRUE(wait_until([&] { return done.load() == 5; }));
}

// ---- Ordering ----------------------------------------------------------------

// Internal timers fire in deadline order: f runs on the scheduler, so the
// order of the calls is the order of the heap. One P, so one M runs them.
TEST(TimerOrder, InternalTimersFireInDeadlineOrder) {
  ProcsGuard procs(1);
  constexpr int kN = 64;
  struct Rec {
    std::atomic<int> n{0};
    int64_t order[kN];
  } rec;
  std::vector<RuntimeTimer> timers(kN);
  std::vector<int> perm(kN);
  for (int i = 0; i < kN; i++) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), std::mt19937(42));
  int64_t base = rt::nanotime() + 20 * kMs;
  struct Arg {
    Rec* rec;
    int64_t when;
  };
  std::vector<Arg> args(kN);
  for (int i = 0; i < kN; i++) {
    // Deadlines 100 us apart, added in shuffled order; several come due
    // together whenever the M is late, so the heap decides the order.
    args[i] = Arg{&rec, base + perm[i] * 100'000};
    timers[i].when = args[i].when;
    timers[i].arg = &args[i];
    timers[i].f = [](void* a, uintptr_t) {
      auto* arg = static_cast<Arg*>(a);
      arg->rec->order[arg->rec->n.fetch_add(1)] = arg->when;
    };
    rt::internal::addtimer(&timers[i]);
  }
  EXPECT_TRUE(wait_until([&] { return rec.n.load() == kN; }));
  ASSERT_EQ(rec.n.load(), kN);
  for (int i = 1; i < kN; i++) EXPECT_LE(rec.order[i - 1], rec.order[i]) << "at " << i;
}

// Sleeping goroutines wake in order of their deadlines. The gaps are wide;
// a run on an overloaded machine may still see two wake together (and then
// in any order), so it retries with wider gaps, as Go's time tests do.
TEST(TimerOrder, SleepersWakeInDeadlineOrder) {
  const int order[] = {3, 0, 4, 1, 2};
  bool ok = false;
  for (int64_t gap = 15 * kMs; gap <= 120 * kMs && !ok; gap *= 2) {
    rt::Mutex mu;
    std::vector<int> woke;
    rt::WaitGroup wg;
    wg.add(5);
    for (int k : order) {
      rt::go([&, k] {
        rt::sleep((k + 1) * gap);
        mu.lock();
        woke.push_back(k);
        mu.unlock();
        wg.done();
      });
    }
    wg.wait();
    ok = std::is_sorted(woke.begin(), woke.end());
  }
  EXPECT_TRUE(ok);
}

TEST(TimerOrder, AfterFuncsFireInDeadlineOrder) {
  const int order[] = {2, 4, 0, 3, 1};
  bool ok = false;
  for (int64_t gap = 15 * kMs; gap <= 120 * kMs && !ok; gap *= 2) {
    rt::Mutex mu;
    std::vector<int> fired;
    rt::WaitGroup wg;
    wg.add(5);
    std::vector<rt::Timer> timers;
    for (int k : order) {
      timers.push_back(rt::after_func((k + 1) * gap, [&, k] {
        mu.lock();
        fired.push_back(k);
        mu.unlock();
        wg.done();
      }));
    }
    wg.wait();
    ok = std::is_sorted(fired.begin(), fired.end());
  }
  EXPECT_TRUE(ok);
}

// ---- rt::Timer (after_func) ----------------------------------------------------

TEST(AfterFunc, FiresAfterTheDurationInItsOwnGoroutine) {
  std::atomic<int64_t> fired_at{0};
  std::atomic<int64_t> goid{0};
  int64_t t0 = rt::nanotime();
  rt::Timer t = rt::after_func(20ms, [&] {
    goid = rt::goid();
    fired_at = rt::nanotime();
  });
  EXPECT_TRUE(wait_until([&] { return fired_at.load() != 0; }));
  EXPECT_GE(fired_at.load() - t0, 20 * kMs);
  EXPECT_NE(goid.load(), rt::goid());
  EXPECT_NE(goid.load(), 0);
}

TEST(AfterFunc, FunctionMayBlock) {
  // The function runs in a goroutine of its own, so it may sleep or wait.
  std::atomic<int> stage{0};
  rt::Timer t = rt::after_func(1ms, [&] {
    rt::sleep(5 * kMs);
    stage = 1;
  });
  EXPECT_TRUE(wait_until([&] { return stage.load() == 1; }));
}

TEST(AfterFunc, StopBeforeFirePreventsTheCall) {
  std::atomic<int> calls{0};
  rt::Timer t = rt::after_func(60 * kMs, [&] { calls++; });
  EXPECT_TRUE(t.stop());
  EXPECT_FALSE(t.stop());  // already stopped
  rt::sleep(120 * kMs);
  EXPECT_EQ(calls.load(), 0);
}

TEST(AfterFunc, StopAfterFireReturnsFalse) {
  std::atomic<int> calls{0};
  rt::Timer t = rt::after_func(1 * kMs, [&] { calls++; });
  EXPECT_TRUE(wait_until([&] { return calls.load() == 1; }));
  EXPECT_FALSE(t.stop());
  rt::sleep(5 * kMs);
  EXPECT_EQ(calls.load(), 1);
}

TEST(AfterFunc, ResetActiveTimerReplacesItsDeadline) {
  std::atomic<int> calls{0};
  std::atomic<int64_t> fired_at{0};
  rt::Timer t = rt::after_func(3600s, [&] {
    fired_at = rt::nanotime();
    calls++;
  });
  int64_t t0 = rt::nanotime();
  EXPECT_TRUE(t.reset(10 * kMs));  // was pending
  EXPECT_TRUE(wait_until([&] { return calls.load() == 1; }));
  EXPECT_GE(fired_at.load() - t0, 10 * kMs);
  rt::sleep(20 * kMs);
  EXPECT_EQ(calls.load(), 1);  // the old deadline is gone, not added
}

TEST(AfterFunc, ResetToLaterDelaysTheCall) {
  std::atomic<int64_t> fired_at{0};
  rt::Timer t = rt::after_func(5 * kMs, [&] { fired_at = rt::nanotime(); });
  int64_t t0 = rt::nanotime();
  if (t.reset(80 * kMs)) {
    // Still pending when reset: must not fire at the old deadline.
    EXPECT_TRUE(wait_until([&] { return fired_at.load() != 0; }));
    EXPECT_GE(fired_at.load() - t0, 80 * kMs);
  } else {
    // The machine was slow enough that it fired first: it fires again.
    int64_t first = fired_at.load();
    EXPECT_TRUE(wait_until([&] { return fired_at.load() != first; }));
  }
}

TEST(AfterFunc, ResetExpiredTimerFiresAgain) {
  std::atomic<int> calls{0};
  rt::Timer t = rt::after_func(1 * kMs, [&] { calls++; });
  EXPECT_TRUE(wait_until([&] { return calls.load() == 1; }));
  EXPECT_FALSE(t.reset(2 * kMs));  // had expired
  EXPECT_TRUE(wait_until([&] { return calls.load() == 2; }));
  EXPECT_FALSE(t.stop());
}

TEST(AfterFunc, ResetStoppedTimerFiresOnce) {
  std::atomic<int> calls{0};
  rt::Timer t = rt::after_func(3600s, [&] { calls++; });
  EXPECT_TRUE(t.stop());
  EXPECT_FALSE(t.reset(2 * kMs));  // had been stopped
  EXPECT_TRUE(wait_until([&] { return calls.load() == 1; }));
  rt::sleep(10 * kMs);
  EXPECT_EQ(calls.load(), 1);
}

TEST(AfterFunc, DroppedHandleStillFires) {
  std::atomic<int> calls{0};
  { rt::after_func(2 * kMs, [&] { calls++; }); }
  EXPECT_TRUE(wait_until([&] { return calls.load() == 1; }));
}

TEST(AfterFunc, CopiesShareTheTimer) {
  std::atomic<int> calls{0};
  rt::Timer a = rt::after_func(3600s, [&] { calls++; });
  rt::Timer b = a;
  EXPECT_TRUE(b.stop());
  EXPECT_FALSE(a.stop());
  rt::Timer c = std::move(a);
  EXPECT_FALSE(static_cast<bool>(a));
  EXPECT_FALSE(c.reset(1 * kMs));
  EXPECT_TRUE(wait_until([&] { return calls.load() == 1; }));
}

TEST(AfterFunc, UninitializedTimerPanics) {
  rt::Timer t;
  EXPECT_THROW(t.stop(), rt::Panic);
  EXPECT_THROW(t.reset(1), rt::Panic);
  try {
    t.stop();
  } catch (const rt::Panic& p) {
    EXPECT_STREQ(p.what(), "time: Stop called on uninitialized Timer");
  }
}

// Many goroutines stop and reset the same timers at once. Every arming
// (the initial one, and each reset that found the timer not pending) ends
// in exactly one call or one successful stop: calls + stops == armings.
TEST(AfterFunc, StopResetRace) {
  ProcsGuard procs(2);
  constexpr int kTimers = 8;
  constexpr int kGoroutines = 8;
  constexpr int kOps = 3000;
  struct Counts {
    std::atomic<int64_t> calls{0}, stops{0}, armings{0};
  };
  std::vector<Counts> counts(kTimers);
  std::vector<rt::Timer> timers;
  for (int k = 0; k < kTimers; k++) {
    counts[k].armings = 1;
    timers.push_back(rt::after_func(int64_t(k) * 20'000, [&counts, k] { counts[k].calls++; }));
  }
  rt::WaitGroup wg;
  wg.add(kGoroutines);
  for (int g = 0; g < kGoroutines; g++) {
    rt::go([&, g] {
      std::mt19937 rng(uint32_t(g) * 7919u + 1u);
      for (int i = 0; i < kOps; i++) {
        int k = int(rng() % kTimers);
        rt::Timer t = timers[size_t(k)];  // a handle of our own
        if (rng() % 2 == 0) {
          if (t.stop()) counts[k].stops++;
        } else {
          if (!t.reset(int64_t(rng() % 200) * 1000)) counts[k].armings++;
        }
        if (i % 64 == 0) rt::gosched();
      }
      wg.done();
    });
  }
  wg.wait();
  for (int k = 0; k < kTimers; k++) {
    if (timers[size_t(k)].stop()) counts[k].stops++;
  }
  // Calls already started finish in their own goroutines.
  bool settled = wait_until([&] {
    for (auto& c : counts) {
      if (c.calls.load() + c.stops.load() != c.armings.load()) return false;
    }
    return true;
  });
  EXPECT_TRUE(settled);
  rt::sleep(5 * kMs);
  int64_t total_calls = 0;
  for (int k = 0; k < kTimers; k++) {
    EXPECT_EQ(counts[k].calls.load() + counts[k].stops.load(), counts[k].armings.load()) << "timer " << k;
    total_calls += counts[k].calls.load();
  }
  EXPECT_GT(total_calls, 0);
}

// ---- Internal timers (the layer channel timers build on) ------------------------

TEST(RuntimeTimer, StatesFollowAddDelMod) {
  std::atomic<int> calls{0};
  RuntimeTimer t;
  t.when = rt::internal::when_after(3600LL * 1000 * kMs);
  t.arg = &calls;
  t.f = [](void* a, uintptr_t) { static_cast<std::atomic<int>*>(a)->fetch_add(1); };
  EXPECT_FALSE(rt::internal::deltimer(&t));  // never added
  rt::internal::addtimer(&t);
  EXPECT_EQ(t.status.load(), rt::internal::kTimerWaiting);
  EXPECT_NE(t.pp.load(), nullptr);
  EXPECT_TRUE(rt::internal::resettimer(&t, rt::internal::when_after(3600LL * 1000 * kMs)));
  EXPECT_TRUE(rt::internal::deltimer(&t));
  EXPECT_EQ(t.status.load(), rt::internal::kTimerIdle);
  EXPECT_EQ(t.pp.load(), nullptr);
  EXPECT_FALSE(rt::internal::deltimer(&t));
  EXPECT_FALSE(rt::internal::resettimer(&t, rt::internal::when_after(1 * kMs)));
  EXPECT_TRUE(wait_until([&] { return calls.load() == 1; }));
  EXPECT_EQ(t.status.load(), rt::internal::kTimerIdle);
  EXPECT_FALSE(rt::internal::deltimer(&t));
}

TEST(RuntimeTimer, SeqIsPassedThrough) {
  struct Arg {
    std::atomic<uintptr_t> seq{0};
  } arg;
  RuntimeTimer t;
  rt::internal::modtimer(&t, rt::internal::when_after(1 * kMs), 0,
                         [](void* a, uintptr_t seq) { static_cast<Arg*>(a)->seq = seq; }, &arg, 12345);
  EXPECT_TRUE(wait_until([&] { return arg.seq.load() == 12345; }));
}

TEST(RuntimeTimer, PeriodicFiresUntilDeleted) {
  std::atomic<int> calls{0};
  RuntimeTimer t;
  t.when = rt::internal::when_after(1 * kMs);
  t.period = 2 * kMs;
  t.arg = &calls;
  t.f = [](void* a, uintptr_t) { static_cast<std::atomic<int>*>(a)->fetch_add(1); };
  int64_t t0 = rt::nanotime();
  rt::internal::addtimer(&t);
  EXPECT_TRUE(wait_until([&] { return calls.load() >= 5; }));
  // Five calls need at least 1 + 4 periods.
  EXPECT_GE(since(t0), 9 * kMs);
  EXPECT_TRUE(rt::internal::deltimer(&t));
  int n = calls.load();
  rt::sleep(20 * kMs);
  EXPECT_LE(calls.load(), n + 1);  // at most one call that was already running
  EXPECT_FALSE(rt::internal::deltimer(&t));
}

// f runs without the heap lock: it may re-arm its own timer.
TEST(RuntimeTimer, FunctionMayRearmItself) {
  struct Arg {
    RuntimeTimer t;
    std::atomic<int> calls{0};
  } arg;
  arg.t.when = rt::internal::when_after(1 * kMs);
  arg.t.arg = &arg;
  arg.t.f = [](void* a, uintptr_t) {
    auto* x = static_cast<Arg*>(a);
    if (x->calls.fetch_add(1) + 1 < 5) rt::internal::resettimer(&x->t, rt::internal::when_after(1 * kMs));
  };
  rt::internal::addtimer(&arg.t);
  EXPECT_TRUE(wait_until([&] { return arg.calls.load() == 5; }));
  rt::sleep(10 * kMs);
  EXPECT_EQ(arg.calls.load(), 5);
  EXPECT_EQ(arg.t.status.load(), rt::internal::kTimerIdle);
}

// The same invariant as StopResetRace, at the internal layer: modtimer on
// timers that live in other Ps' heaps, deltimer, and the firing itself.
TEST(RuntimeTimer, ModDelRace) {
  ProcsGuard procs(2);
  constexpr int kTimers = 4;
  constexpr int kGoroutines = 6;
  constexpr int kOps = 4000;
  struct Slot {
    RuntimeTimer t;
    std::atomic<int64_t> calls{0}, dels{0}, armings{0};
  };
  std::vector<Slot> slots(kTimers);
  auto fire = [](void* a, uintptr_t) { static_cast<Slot*>(a)->calls++; };
  rt::WaitGroup wg;
  wg.add(kGoroutines);
  for (int g = 0; g < kGoroutines; g++) {
    rt::go([&, g] {
      std::mt19937 rng(uint32_t(g) + 99u);
      for (int i = 0; i < kOps; i++) {
        Slot& s = slots[rng() % kTimers];
        if (rng() % 3 == 0) {
          if (rt::internal::deltimer(&s.t)) s.dels++;
        } else {
          int64_t when = rt::internal::when_after(int64_t(rng() % 100) * 1000);
          if (!rt::internal::modtimer(&s.t, when, 0, fire, &s, 0)) s.armings++;
        }
        if (i % 32 == 0) rt::gosched();
      }
      wg.done();
    });
  }
  wg.wait();
  for (auto& s : slots) {
    if (rt::internal::deltimer(&s.t)) s.dels++;
  }
  // Timer functions run on the scheduler; one that was already removed
  // from its heap may still be about to run on another M.
  EXPECT_TRUE(wait_until([&] {
    for (auto& s : slots) {
      if (s.calls.load() + s.dels.load() != s.armings.load()) return false;
    }
    return true;
  }));
  for (auto& s : slots) {
    EXPECT_EQ(s.calls.load() + s.dels.load(), s.armings.load());
    EXPECT_EQ(s.t.status.load(), rt::internal::kTimerIdle);
  }
}

// ---- Scheduler integration ---------------------------------------------------------

// Runs fn on a goroutine whose P is not P 0 (P 0 always survives a
// resize). The caller keeps its own P busy meanwhile, so that a fresh
// goroutine is taken by another P.
template <class F>
bool run_off_p0(F fn) {
  for (int attempt = 0; attempt < 200; attempt++) {
    if (rt::internal::getm()->p->id != 0) {
      fn();
      return true;
    }
    std::atomic<int> state{0};  // 1: ran fn, 2: was on P 0
    rt::go([&] { state = rt::internal::getm()->p->id != 0 ? (fn(), 1) : 2; });
    int64_t t0 = rt::nanotime();
    while (state.load() == 0 && since(t0) < 5000 * kMs) rt::preempt_point();
    if (state.load() == 1) return true;
    if (state.load() == 0) return false;
  }
  return false;
}

// A timer on a P that procresize destroys moves to a surviving P and fires.
TEST(TimerSched, TimersSurviveGomaxprocsShrink) {
  ProcsGuard procs(4);
  std::atomic<int> calls{0};
  std::atomic<int> slept{0};
  rt::Timer t;
  RuntimeTimer rtimer;
  rtimer.arg = &calls;
  rtimer.f = [](void* a, uintptr_t) { static_cast<std::atomic<int>*>(a)->fetch_add(1); };
  ASSERT_TRUE(run_off_p0([&] {
    // All on this P (the sleeper's goroutine starts here too, and may be
    // stolen; the after_func and the internal timer stay here).
    t = rt::after_func(40 * kMs, [&] { calls++; });
    rtimer.when = rt::internal::when_after(40 * kMs);
    rt::internal::addtimer(&rtimer);
    rt::go([&] {
      rt::sleep(40 * kMs);
      slept++;
    });
  }));
  rt::internal::P* home = rtimer.pp.load();
  ASSERT_NE(home, nullptr);
  ASSERT_NE(home->id, 0);
  EXPECT_GE(home->num_timers.load(), 2);
  rt::gomaxprocs(home->id);  // destroys P home->id and above
  EXPECT_EQ(home->status.load(), rt::internal::kPdead);
  EXPECT_EQ(home->num_timers.load(), 0);
  rt::internal::P* now_on = rtimer.pp.load();
  if (now_on != nullptr) {  // nullptr: already fired
    EXPECT_EQ(now_on->id, 0);
  }
  EXPECT_TRUE(wait_until([&] { return calls.load() == 2 && slept.load() == 1; }));
  EXPECT_FALSE(t.stop());
}

TEST(TimerSched, TimersSurviveManyResizes) {
  std::atomic<int> calls{0};
  std::vector<rt::Timer> timers;
  int old = rt::gomaxprocs(0);
  for (int i = 0; i < 40; i++) {
    timers.push_back(rt::after_func(int64_t(i % 10) * kMs, [&] { calls++; }));
    rt::gomaxprocs(1 + i % 4);
    rt::gosched();
  }
  rt::gomaxprocs(old);
  EXPECT_TRUE(wait_until([&] { return calls.load() == 40; }));
}

// Switches sysmon's overdue-timer backstop off for a test, so that a timer
// fires promptly only if the prompt wake-up paths work.
class NoSysmonRescue {
 public:
  NoSysmonRescue() { rt::internal::sysmon_timer_rescue = false; }
  ~NoSysmonRescue() { rt::internal::sysmon_timer_rescue = true; }
};

// The idle M waits for the earliest timer of all, not for the first one
// added: a far timer pending does not delay a nearer one (with sysmon's
// backstop off, nothing else would run it before 3 s).
TEST(TimerSched, EarlierTimerWakesTheWaitingM) {
  ProcsGuard procs(1);
  NoSysmonRescue no_rescue;
  std::atomic<int> far_calls{0};
  rt::Timer far = rt::after_func(3s, [&] { far_calls++; });
  rt::sleep(5 * kMs);  // let an idle M settle into waiting for `far`
  int64_t t0 = rt::nanotime();
  rt::sleep(10 * kMs);
  int64_t took = since(t0);
  EXPECT_GE(took, 10 * kMs);
  EXPECT_LT(took, 1500 * kMs);  // far below the 3 s of the other timer
  EXPECT_TRUE(far.stop());
  EXPECT_EQ(far_calls.load(), 0);
}

// The same when the goroutine that adds the earlier timer keeps its P busy
// (never reaching the scheduler): adding the timer must wake the waiting M
// (wake_timer_waiter, Go's wakeNetPoller), which runs it from the other P.
TEST(TimerSched, AddingEarlierTimerWakesTheWaitingM) {
  ProcsGuard procs(2);
  NoSysmonRescue no_rescue;
  rt::Timer far = rt::after_func(3s, [] {});
  rt::sleep(5 * kMs);
  // Make the other M run something and go idle: it becomes the waiter for
  // `far` while we keep this P.
  std::atomic<bool> ran{false};
  rt::go([&] { ran = true; });
  int64_t s0 = rt::nanotime();
  while (since(s0) < 10 * kMs) rt::preempt_point();
  std::atomic<int64_t> fired_at{0};
  int64_t t0 = rt::nanotime();
  rt::Timer near = rt::after_func(10 * kMs, [&] { fired_at = rt::nanotime(); });
  // Spin without safe points: this P runs no timers until we stop.
  while (fired_at.load() == 0 && since(t0) < 1500 * kMs) {
  }
  EXPECT_NE(fired_at.load(), 0);
  EXPECT_GE(fired_at.load() - t0, 10 * kMs);
  EXPECT_TRUE(ran.load());
  EXPECT_TRUE(far.stop());
}

// An idle process with one timer pending sleeps: its CPU time over the wait
// is a small fraction of the wall time (busy polling would be ~100%).
TEST(TimerSched, IdleWaitUsesLittleCpu) {
  auto cpu_ns = [] {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t(ru.ru_utime.tv_sec) + ru.ru_stime.tv_sec) * 1'000'000'000 +
           (int64_t(ru.ru_utime.tv_usec) + ru.ru_stime.tv_usec) * 1000;
  };
  rt::sleep(20 * kMs);  // let goroutines of earlier tests finish
  int64_t c0 = cpu_ns();
  int64_t t0 = rt::nanotime();
  rt::sleep(200 * kMs);
  int64_t wall = since(t0);
  int64_t cpu = cpu_ns() - c0;
  EXPECT_GE(wall, 200 * kMs);
  EXPECT_LT(cpu, wall / 2) << "cpu " << cpu << " ns over " << wall << " ns";

  // The same with main blocked on a WaitGroup released by an after_func.
  rt::WaitGroup wg;
  wg.add(1);
  c0 = cpu_ns();
  t0 = rt::nanotime();
  rt::Timer t = rt::after_func(200 * kMs, [&] { wg.done(); });
  wg.wait();
  wall = since(t0);
  cpu = cpu_ns() - c0;
  EXPECT_GE(wall, 200 * kMs);
  EXPECT_LT(cpu, wall / 2) << "cpu " << cpu << " ns over " << wall << " ns";
}

// GOMAXPROCS=1 and a goroutine that never blocks (it only passes safe
// points): the sleeper still wakes, once sysmon preempts the busy one.
TEST(TimerSched, BusyGoroutineDoesNotStarveASleeper) {
  ProcsGuard procs(1);
  std::atomic<bool> stop{false};
  std::atomic<int> running{0};
  auto busy = [&] {
    running++;
    while (!stop.load(std::memory_order_relaxed)) rt::preempt_point();
    running--;
  };
  rt::go(busy);
  ASSERT_TRUE(wait_until([&] { return running.load() == 1; }));
  int64_t t0 = rt::nanotime();
  rt::sleep(20 * kMs);
  int64_t took = since(t0);
  EXPECT_GE(took, 20 * kMs);
  EXPECT_LT(took, 2000 * kMs);
  // A sleeping goroutine other than main, with main waiting too.
  std::atomic<int64_t> slept{0};
  rt::go([&] {
    int64_t s0 = rt::nanotime();
    rt::sleep(10 * kMs);
    slept = since(s0);
  });
  EXPECT_TRUE(wait_until([&] { return slept.load() != 0; }, 5000));
  EXPECT_GE(slept.load(), 10 * kMs);
  stop = true;
  // The busy goroutine reads our frame: it must be gone before we return.
  EXPECT_TRUE(wait_until([&] { return running.load() == 0; }));
}

// ---- Deadlock detection (death tests re-execute the binary) ---------------------------

TEST(TimerDeath, SleepingMainIsNotADeadlock) {
  EXPECT_EXIT(
      {
        rt::sleep(50 * kMs);
        fflush(nullptr);
        _exit(7);
      },
      testing::ExitedWithCode(7), "");
}

TEST(TimerDeath, BlockedWithTimerPendingIsNotADeadlock) {
  // Every goroutine is blocked, but a timer will release main.
  EXPECT_EXIT(
      {
        std::atomic<uint32_t> sema{0};
        rt::Timer t = rt::after_func(50 * kMs, [&] { rt::semrelease(&sema); });
        rt::semacquire(&sema);
        fflush(nullptr);
        _exit(7);
      },
      testing::ExitedWithCode(7), "");
}

TEST(TimerDeath, DeadlockReportedOnceTimersHaveFired) {
  EXPECT_EXIT(
      {
        rt::Timer t = rt::after_func(20 * kMs, [] { fprintf(stderr, "timer fired\n"); });
        std::atomic<uint32_t> never{0};
        rt::semacquire(&never);
      },
      testing::ExitedWithCode(2), "timer fired\n(.|\n)*fatal error: all goroutines are asleep - deadlock!");
}

TEST(TimerDeath, DeadlockReportedOnceTimersAreStopped) {
  EXPECT_EXIT(
      {
        rt::Timer t = rt::after_func(3600s, [] {});
        rt::sleep(1 * kMs);
        if (t.stop()) fprintf(stderr, "timer stopped\n");
        std::atomic<uint32_t> never{0};
        rt::semacquire(&never);
      },
      testing::ExitedWithCode(2), "timer stopped\n(.|\n)*fatal error: all goroutines are asleep - deadlock!");
}

TEST(TimerDeath, DumpShowsSleepWaitReason) {
  EXPECT_EXIT(
      {
        rt::go([] { rt::sleep(3600LL * 1000 * kMs); });
        rt::sleep(10 * kMs);
        rt::go([] { throw rt::Panic("look"); });
        rt::sleep(3600LL * 1000 * kMs);
      },
      testing::ExitedWithCode(2), "panic: look(.|\n)*goroutine [0-9]+ \\[sleep");
}

}  // namespace

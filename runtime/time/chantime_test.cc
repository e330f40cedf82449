// Channel timers: rt::after, rt::ChanTimer, rt::Ticker (after Go's
// time/sleep_test.go and time/tick_test.go). Only lower bounds on time are
// asserted; upper bounds are loose enough to catch hangs only.
#include <gtest/gtest.h>

#include <atomic>

#include "rt/rt.h"
#include "runtime/testing/rt_test_util.h"

namespace {

constexpr int64_t kMs = 1'000'000;

TEST(ChanTime, AfterDeliversOnceAfterTheDelay) {
  int64_t start = rt::nanotime();
  auto c = rt::after(20 * kMs);
  EXPECT_EQ(c.cap(), 1);
  int64_t t = c.recv();
  EXPECT_GE(t - start, 20 * kMs);
  EXPECT_GE(rt::nanotime() - start, 20 * kMs);
  int64_t again;
  rt::sleep(30 * kMs);
  EXPECT_FALSE(c.try_recv(&again)) << "after delivered twice";
}

TEST(ChanTime, SelectTimeoutPattern) {
  auto never = rt::make_chan<int>(0);
  int64_t start = rt::nanotime();
  bool timed_out = false;
  int idx = rt::select(rt::recv_case(never, [](int) { FAIL(); }), rt::recv_case(rt::after(15 * kMs), [&](int64_t) {
                         timed_out = true;
                       }));
  EXPECT_EQ(idx, 1);
  EXPECT_TRUE(timed_out);
  EXPECT_GE(rt::nanotime() - start, 15 * kMs);

  // A value that arrives first wins over the timeout.
  auto data = rt::make_chan<int>(0);
  rt::go([data] { data.send(7); });
  int got = 0;
  idx = rt::select(rt::recv_case(data, [&](int v) { got = v; }), rt::recv_case(rt::after(10'000 * kMs)));
  EXPECT_EQ(idx, 0);
  EXPECT_EQ(got, 7);
}

TEST(ChanTime, ChanTimerStopBeforeFire) {
  rt::ChanTimer t(50 * kMs);
  EXPECT_TRUE(t.stop());
  EXPECT_FALSE(t.stop());
  rt::sleep(80 * kMs);
  int64_t v;
  EXPECT_FALSE(t.c().try_recv(&v));
}

TEST(ChanTime, ChanTimerResetAfterFireDeliversAgain) {
  rt::ChanTimer t(5 * kMs);
  t.c().recv();
  // The clock is read before the reset: the timer may fire 5 ms after the
  // reset, which is less than 5 ms after any later reading.
  int64_t start = rt::nanotime();
  EXPECT_FALSE(t.reset(5 * kMs));  // it had fired
  t.c().recv();
  EXPECT_GE(rt::nanotime() - start, 5 * kMs);
  EXPECT_FALSE(t.reset(10'000 * kMs));  // fired again, so not pending
  EXPECT_TRUE(t.reset(10'000 * kMs));   // the previous reset armed it
  EXPECT_TRUE(t.stop());
}

TEST(ChanTime, DestroyingAChanTimerStopsIt) {
  rt::Chan<int64_t> c;
  {
    rt::ChanTimer t(20 * kMs);
    c = t.c();
  }
  rt::sleep(50 * kMs);
  int64_t v;
  EXPECT_FALSE(c.try_recv(&v));
}

TEST(ChanTime, TickerTicksAtItsPeriod) {
  // Read before the ticker starts, so the fifth tick is at least 25 ms
  // later with no allowance for the time the constructor took.
  int64_t start = rt::nanotime();
  rt::Ticker tick(5 * kMs);
  int64_t last = start;
  for (int i = 0; i < 5; i++) {
    int64_t t = tick.c().recv();
    EXPECT_GE(t, last);
    last = t;
  }
  EXPECT_GE(rt::nanotime() - start, 25 * kMs);
  tick.stop();
  rt::sleep(20 * kMs);
  int64_t v;
  tick.c().try_recv(&v);  // at most one tick was already buffered
  rt::sleep(20 * kMs);
  EXPECT_FALSE(tick.c().try_recv(&v)) << "ticker kept ticking after stop";
}

TEST(ChanTime, SlowReceiverLosesTicks) {
  rt::Ticker tick(2 * kMs);
  rt::sleep(30 * kMs);
  EXPECT_EQ(tick.c().len(), 1);  // capacity 1: the rest were dropped
}

TEST(ChanTime, TickerResetChangesPeriod) {
  rt::Ticker tick(1000 * kMs);
  tick.reset(5 * kMs);
  int64_t start = rt::nanotime();
  tick.c().recv();
  tick.c().recv();
  int64_t took = rt::nanotime() - start;
  EXPECT_GE(took, 5 * kMs);
  EXPECT_LT(took, 900 * kMs);
}

TEST(ChanTime, NonPositiveTickerPanics) {
  try {
    rt::Ticker t(0);
    FAIL() << "no panic";
  } catch (const rt::Panic& p) {
    EXPECT_STREQ(p.what(), "non-positive interval for NewTicker");
  }
  rt::Ticker t(kMs);
  EXPECT_THROW(t.reset(-1), rt::Panic);
}

TEST(ChanTime, ManyConcurrentAfters) {
  rt::testing::ProcsGuard procs(2);
  constexpr int kN = 500;
  std::atomic<int> fired{0};
  rt::WaitGroup wg;
  wg.add(kN);
  for (int i = 0; i < kN; i++) {
    rt::go([&, i] {
      rt::after((i % 10 + 1) * kMs).recv();
      fired++;
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(fired.load(), kN);
}

}  // namespace

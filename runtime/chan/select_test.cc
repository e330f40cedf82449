// select semantics, after Go's select tests in runtime/chan_test.go.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "rt/rt.h"
#include "runtime/sched/runtime2.h"
#include "runtime/testing/rt_test_util.h"

namespace {

using rt::testing::ProcsGuard;
using rt::testing::wait_until;

TEST(Select, DefaultWhenNothingReady) {
  auto a = rt::make_chan<int>(0);
  auto b = rt::make_chan<int>(1);
  b.send(1);  // full
  bool ran_default = false;
  int idx = rt::select(rt::recv_case(a, [](int) { FAIL(); }), rt::send_case(b, 2, [] { FAIL(); }),
                       rt::default_case([&] { ran_default = true; }));
  EXPECT_EQ(idx, 2);
  EXPECT_TRUE(ran_default);
}

TEST(Select, ReadyReceiveWinsOverDefault) {
  auto a = rt::make_chan<int>(1);
  a.send(5);
  int got = 0;
  int idx = rt::select(rt::default_case(), rt::recv_case(a, [&](int v, bool ok) {
                         EXPECT_TRUE(ok);
                         got = v;
                       }));
  EXPECT_EQ(idx, 1);
  EXPECT_EQ(got, 5);
}

TEST(Select, OnlyDefault) { EXPECT_EQ(rt::select(rt::default_case()), 0); }

TEST(Select, ReadyCasesChosenUniformly) {
  auto a = rt::make_chan<int>(1);
  auto b = rt::make_chan<int>(1);
  auto c = rt::make_chan<int>(1);
  int hits[3] = {};
  constexpr int kRounds = 30000;
  for (int i = 0; i < kRounds; i++) {
    a.try_send(0);
    b.try_send(0);
    c.try_send(0);
    hits[rt::select(rt::recv_case(a), rt::recv_case(b), rt::recv_case(c))]++;
  }
  // Expected 10000 each, standard deviation about 82: 8000..12000 is more
  // than 24 deviations wide and still catches a biased poll order.
  for (int h : hits) {
    EXPECT_GT(h, 8000);
    EXPECT_LT(h, 12000);
  }
}

TEST(Select, BlocksUntilASendArrives) {
  auto a = rt::make_chan<int>(0);
  auto b = rt::make_chan<std::string>(0);
  rt::go([b] { b.send("late"); });
  std::string got;
  int idx = rt::select(rt::recv_case(a, [](int) { FAIL(); }), rt::recv_case(b, [&](std::string s) { got = s; }));
  EXPECT_EQ(idx, 1);
  EXPECT_EQ(got, "late");
}

TEST(Select, BlockedSendCaseDelivers) {
  auto out = rt::make_chan<int>(0);
  std::atomic<int> received{0};
  rt::go([&, out] { received = out.recv(); });
  bool sent = false;
  int idx = rt::select(rt::send_case(out, 42, [&] { sent = true; }));
  EXPECT_EQ(idx, 0);
  EXPECT_TRUE(sent);
  EXPECT_TRUE(wait_until([&] { return received.load() == 42; }));
}

TEST(Select, CloseDuringBlockedSelect) {
  auto a = rt::make_chan<int>(0);
  auto b = rt::make_chan<int>(0);
  std::atomic<rt::internal::G*> waiter{nullptr};  // read by the test's wait while the goroutine stores it
  std::atomic<int> chosen{-1};
  std::atomic<bool> ok{true};
  rt::WaitGroup wg;
  wg.add(1);
  rt::go([&, a, b] {
    waiter = rt::internal::getg();
    chosen = rt::select(rt::recv_case(a, [&](int, bool k) { ok = k; }), rt::recv_case(b, [&](int, bool k) { ok = k; }));
    wg.done();
  });
  ASSERT_TRUE(wait_until([&] {
    rt::internal::G* g = waiter.load();
    return g != nullptr && g->atomicstatus.load() == rt::internal::kGwaiting && std::string(g->waitreason) == "select";
  }));
  b.close();
  wg.wait();
  EXPECT_EQ(chosen.load(), 1);
  EXPECT_FALSE(ok.load());
  // The losing case was dequeued: a later send on a must not find it.
  EXPECT_FALSE(a.try_send(1));
}

TEST(Select, SendOnClosedChannelPanics) {
  auto a = rt::make_chan<int>(1);
  a.close();
  EXPECT_THROW(rt::select(rt::send_case(a, 1), rt::default_case()), rt::Panic);
}

TEST(Select, NilChannelCasesAreIgnored) {
  rt::Chan<int> nil;
  auto a = rt::make_chan<int>(1);
  a.send(3);
  int got = 0;
  int idx = rt::select(rt::recv_case(nil, [](int) { FAIL(); }), rt::send_case(nil, 1, [] { FAIL(); }),
                       rt::recv_case(a, [&](int v) { got = v; }));
  EXPECT_EQ(idx, 2);
  EXPECT_EQ(got, 3);
}

TEST(Select, DuplicateChannelInOneSelect) {
  auto a = rt::make_chan<int>(0);
  rt::go([a] { a.send(9); });
  int got = 0;
  int idx = rt::select(rt::recv_case(a, [&](int v) { got = v; }), rt::recv_case(a, [&](int v) { got = v; }));
  EXPECT_TRUE(idx == 0 || idx == 1);
  EXPECT_EQ(got, 9);
}

TEST(Select, SendAndReceiveOnSameChannelNeverSelfDelivers) {
  // Go's TestSelfSelect: two goroutines each select on sending and
  // receiving on one channel; on an unbuffered channel a goroutine must
  // never receive its own value.
  for (int cap : {0, 1}) {
    ProcsGuard guard(2);
    auto c = rt::make_chan<int>(cap);
    std::atomic<bool> self_receive{false};
    rt::WaitGroup wg;
    wg.add(2);
    for (int p = 0; p < 2; p++) {
      rt::go([&, c, p] {
        for (int i = 0; i < 2000; i++) {
          if (p == 0 || i % 2 == 0) {
            rt::select(rt::send_case(c, p), rt::recv_case(c, [&](int v) {
                         if (cap == 0 && v == p) self_receive = true;
                       }));
          } else {
            rt::select(rt::recv_case(c, [&](int v) {
                         if (cap == 0 && v == p) self_receive = true;
                       }),
                       rt::send_case(c, p));
          }
        }
        wg.done();
      });
    }
    wg.wait();
    EXPECT_FALSE(self_receive.load()) << "cap " << cap;
  }
}

TEST(Select, StressEveryValueOnce) {
  ProcsGuard guard(2);
  constexpr int kChans = 4, kPer = 3000;
  // A GC slice: a std::vector's array is malloc memory, where the
  // collector would not see the channels.
  rt::Slice<rt::Chan<int>> chans = rt::make_slice<rt::Chan<int>>(kChans);
  for (int i = 0; i < kChans; i++) chans[size_t(i)] = rt::make_chan<int>(i % 2);
  auto done = rt::make_chan<int>(0);
  std::atomic<int64_t> sum{0};
  std::atomic<int> count{0};
  rt::WaitGroup producers, consumers;
  producers.add(kChans);
  for (int i = 0; i < kChans; i++) {
    rt::go([&, i] {
      for (int k = 1; k <= kPer; k++) chans[size_t(i)].send(k);
      producers.done();
    });
  }
  constexpr int kConsumers = 3;
  consumers.add(kConsumers);
  for (int k = 0; k < kConsumers; k++) {
    rt::go([&] {
      bool stop = false;
      auto take = [&](int v) {
        sum += v;
        count++;
      };
      while (!stop) {
        rt::select(rt::recv_case(chans[0], take), rt::recv_case(chans[1], take), rt::recv_case(chans[2], take),
                   rt::recv_case(chans[3], take), rt::recv_case(done, [&](int, bool) { stop = true; }));
      }
      consumers.done();
    });
  }
  producers.wait();
  ASSERT_TRUE(wait_until([&] { return count.load() == kChans * kPer; }));
  done.close();
  consumers.wait();
  EXPECT_EQ(count.load(), kChans * kPer);
  EXPECT_EQ(sum.load(), int64_t(kChans) * kPer * (kPer + 1) / 2);
}

TEST(SelectDeath, NoCasesBlocksForever) {
  EXPECT_EXIT(rt::select(), testing::ExitedWithCode(2),
              "all goroutines are asleep - deadlock!(.|\n)*goroutine 1 \\[select \\(no cases\\)\\]");
}

TEST(SelectDeath, BlockedSelectIsDeadlock) {
  EXPECT_EXIT(
      {
        auto a = rt::make_chan<int>(0);
        rt::select(rt::recv_case(a), rt::send_case(a, 1));
      },
      testing::ExitedWithCode(2), "all goroutines are asleep - deadlock!(.|\n)*goroutine 1 \\[select\\]");
}

}  // namespace

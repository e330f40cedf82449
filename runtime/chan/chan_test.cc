// Channel semantics, after Go's runtime/chan_test.go: every case states the
// outcome Go guarantees. Runs once per variant.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "rt/rt.h"
#include "runtime/sched/runtime2.h"
#include "runtime/testing/rt_test_util.h"

namespace {

using rt::testing::ProcsGuard;
using rt::testing::clobber_stack;
using rt::testing::in_frame;
using rt::testing::wait_until;

// Whether goroutine gp is parked with the given wait reason.
bool parked_as(rt::internal::G* gp, const char* reason) {
  return gp->atomicstatus.load() == rt::internal::kGwaiting && std::string(gp->waitreason) == reason;
}

TEST(Chan, BufferedIsFifo) {
  auto c = rt::make_chan<int>(100);
  for (int i = 0; i < 100; i++) c.send(i);
  EXPECT_EQ(c.len(), 100);
  EXPECT_EQ(c.cap(), 100);
  for (int i = 0; i < 100; i++) EXPECT_EQ(c.recv(), i);
  EXPECT_EQ(c.len(), 0);
}

TEST(Chan, UnbufferedRendezvous) {
  for (int procs : {1, 2}) {
    ProcsGuard guard(procs);
    auto c = rt::make_chan<int>(0);
    EXPECT_EQ(c.cap(), 0);
    rt::go([c] {
      for (int i = 0; i < 1000; i++) c.send(i);
    });
    for (int i = 0; i < 1000; i++) ASSERT_EQ(c.recv(), i);
  }
}

TEST(Chan, NonBlockingOps) {
  for (int cap : {0, 1, 4}) {
    auto c = rt::make_chan<int>(cap);
    int v = -1;
    bool ok = true;
    EXPECT_FALSE(c.try_recv(&v, &ok)) << "cap " << cap;  // empty
    for (int i = 0; i < cap; i++) EXPECT_TRUE(c.try_send(i));
    EXPECT_FALSE(c.try_send(99)) << "cap " << cap;  // full (or no receiver)
    for (int i = 0; i < cap; i++) {
      ASSERT_TRUE(c.try_recv(&v, &ok));
      EXPECT_EQ(v, i);
      EXPECT_TRUE(ok);
    }
    c.close();
    ASSERT_TRUE(c.try_recv(&v, &ok));  // closed: ready with the zero value
    EXPECT_EQ(v, 0);
    EXPECT_FALSE(ok);
  }
}

TEST(Chan, NilChannelNonBlockingOpsNeverProceed) {
  rt::Chan<int> nil;
  EXPECT_TRUE(nil.is_nil());
  EXPECT_FALSE(nil.try_send(1));
  int v;
  EXPECT_FALSE(nil.try_recv(&v));
  EXPECT_EQ(nil.len(), 0);
  EXPECT_EQ(nil.cap(), 0);
}

TEST(Chan, NilChannelBlocksForever) {
  rt::Chan<int> nil;
  std::atomic<rt::internal::G*> blocked{nullptr};
  std::atomic<bool> returned{false};
  rt::go([&] {
    blocked = rt::internal::getg();
    nil.recv();
    returned = true;
  });
  ASSERT_TRUE(wait_until([&] { return blocked != nullptr && parked_as(blocked.load(), "chan receive (nil chan)"); }));
  for (int i = 0; i < 1000; i++) rt::gosched();
  EXPECT_FALSE(returned.load());
}

TEST(Chan, ClosedDrainsBufferThenZero) {
  auto c = rt::make_chan<std::string>(3);
  c.send("a");
  c.send("b");
  c.close();
  EXPECT_EQ(c.recv2(), std::make_pair(std::string("a"), true));
  EXPECT_EQ(c.recv2(), std::make_pair(std::string("b"), true));
  EXPECT_EQ(c.recv2(), std::make_pair(std::string(), false));
  EXPECT_EQ(c.recv2(), std::make_pair(std::string(), false));
}

TEST(Chan, Panics) {
  auto c = rt::make_chan<int>(1);
  c.close();
  try {
    c.send(1);
    FAIL() << "send on closed channel did not panic";
  } catch (const rt::Panic& p) {
    EXPECT_STREQ(p.what(), "send on closed channel");
  }
  try {
    c.close();
    FAIL() << "close of closed channel did not panic";
  } catch (const rt::Panic& p) {
    EXPECT_STREQ(p.what(), "close of closed channel");
  }
  rt::Chan<int> nil;
  try {
    nil.close();
    FAIL() << "close of nil channel did not panic";
  } catch (const rt::Panic& p) {
    EXPECT_STREQ(p.what(), "close of nil channel");
  }
  EXPECT_THROW(rt::make_chan<int>(-1), rt::Panic);
}

TEST(Chan, CloseWakesAllReceivers) {
  auto c = rt::make_chan<int>(0);
  constexpr int kN = 20;
  std::atomic<int> woken_closed{0};
  rt::WaitGroup wg;
  wg.add(kN);
  for (int i = 0; i < kN; i++) {
    rt::go([&, c] {
      auto [v, ok] = c.recv2();
      if (!ok && v == 0) woken_closed++;
      wg.done();
    });
  }
  ASSERT_TRUE(wait_until([] { return rt::num_goroutine() >= kN + 1; }));
  for (int i = 0; i < 100; i++) rt::gosched();
  c.close();
  wg.wait();
  EXPECT_EQ(woken_closed.load(), kN);
}

TEST(Chan, CloseMakesBlockedSendersPanic) {
  auto c = rt::make_chan<int>(1);
  c.send(0);  // full
  constexpr int kN = 5;
  std::atomic<int> panicked{0};
  std::atomic<int> parked{0};
  rt::WaitGroup wg;
  wg.add(kN);
  std::vector<rt::internal::G*> senders(kN);
  for (int i = 0; i < kN; i++) {
    rt::go([&, c, i] {
      senders[size_t(i)] = rt::internal::getg();
      parked++;
      try {
        c.send(1);
      } catch (const rt::Panic& p) {
        if (std::string(p.what()) == "send on closed channel") panicked++;
      }
      wg.done();
    });
  }
  ASSERT_TRUE(wait_until([&] {
    if (parked.load() != kN) return false;
    for (auto* g : senders)
      if (!parked_as(g, "chan send")) return false;
    return true;
  }));
  c.close();
  wg.wait();
  EXPECT_EQ(panicked.load(), kN);
  // The buffered value is still delivered after close.
  EXPECT_EQ(c.recv2(), std::make_pair(0, true));
  EXPECT_EQ(c.recv2(), std::make_pair(0, false));
}

TEST(Chan, ProducersConsumersDeliverEachValueOnce) {
  for (int procs : {1, 2}) {
    for (int cap : {0, 1, 16}) {
      ProcsGuard guard(procs);
      constexpr int kProducers = 4, kConsumers = 4, kPer = 5000;
      auto c = rt::make_chan<int64_t>(cap);
      std::atomic<int64_t> sum{0};
      std::atomic<int64_t> count{0};
      rt::WaitGroup producers, consumers;
      producers.add(kProducers);
      consumers.add(kConsumers);
      for (int p = 0; p < kProducers; p++) {
        rt::go([&, c, p] {
          for (int i = 0; i < kPer; i++) c.send(int64_t(p) * kPer + i + 1);
          producers.done();
        });
      }
      for (int k = 0; k < kConsumers; k++) {
        rt::go([&, c] {
          for (;;) {
            auto [v, ok] = c.recv2();
            if (!ok) break;
            sum += v;
            count++;
          }
          consumers.done();
        });
      }
      producers.wait();
      c.close();
      consumers.wait();
      constexpr int64_t n = int64_t(kProducers) * kPer;
      EXPECT_EQ(count.load(), n) << "procs " << procs << " cap " << cap;
      EXPECT_EQ(sum.load(), n * (n + 1) / 2) << "procs " << procs << " cap " << cap;
    }
  }
}

TEST(Chan, MoveOnlyValues) {
  auto c = rt::make_chan<std::unique_ptr<int>>(0);
  rt::go([c] {
    for (int i = 0; i < 10; i++) c.send(std::make_unique<int>(i));
    c.close();
  });
  int expect = 0;
  for (;;) {
    auto [p, ok] = c.recv2();
    if (!ok) {
      EXPECT_EQ(p, nullptr);
      break;
    }
    EXPECT_EQ(*p, expect++);
  }
  EXPECT_EQ(expect, 10);
}

struct Counted {
  static std::atomic<int> live;
  int v = 0;
  Counted() { live++; }
  explicit Counted(int x) : v(x) { live++; }
  Counted(const Counted& o) : v(o.v) { live++; }
  Counted(Counted&& o) noexcept : v(o.v) { live++; }
  Counted& operator=(const Counted&) = default;
  ~Counted() { live--; }
};
std::atomic<int> Counted::live{0};

// Channels are GC objects: the values left in the buffer of a channel
// nothing refers to are destroyed after a collection finds it dead (by the
// background sweeper), and not before.
TEST(Chan, BufferedValuesOfADeadChannelAreDestroyed) {
  int before = Counted::live.load();
  rt::Chan<Counted> kept = rt::make_chan<Counted>(4);
  kept.send(Counted(7));
  in_frame([&] {
    auto c = rt::make_chan<Counted>(8);
    for (int i = 0; i < 5; i++) c.send(Counted(i));
    EXPECT_EQ(c.recv().v, 0);
    EXPECT_EQ(Counted::live.load(), before + 5);
  });
  clobber_stack();
  EXPECT_TRUE(wait_until([&] {
    rt::gc();
    return Counted::live.load() == before + 1;
  })) << "live " << Counted::live.load() << ", expected " << before + 1;
  rt::gc();
  EXPECT_EQ(kept.len(), 1);
  EXPECT_EQ(kept.recv().v, 7);
  EXPECT_EQ(Counted::live.load(), before);
}

// A channel is a reference: copies name one channel, and one held only by
// a GC object or an rt::Root outlives collections while its goroutine-side
// handles are gone.
TEST(Chan, HeldOnlyByAGCObjectOrARootSurvivesCollections) {
  struct Holder {
    rt::Chan<int> c;
  };
  rt::Ref<Holder> holder;
  auto* root = new rt::Root<rt::Chan<int>>();
  in_frame([&] {
    holder = rt::make<Holder>();
    holder->c = rt::make_chan<int>(64);
    *root = rt::make_chan<int>(64);
    for (int i = 0; i < 64; i++) {
      holder->c.send(i);
      root->chan().send(1000 + i);
    }
  });
  clobber_stack();
  for (int cycle = 0; cycle < 3; cycle++) {
    // Fresh channels that die at once: their memory is what a wrongly
    // freed channel would be reused for.
    for (int i = 0; i < 2000; i++) rt::make_chan<int>(64).send(-1);
    rt::gc();
  }
  for (int i = 0; i < 64; i++) {
    ASSERT_EQ(holder->c.recv(), i);
    ASSERT_EQ(root->chan().recv(), 1000 + i);
  }
  delete root;
}

TEST(Chan, HandleCopiesShareOneChannel) {
  auto a = rt::make_chan<int>(2);
  rt::Chan<int> b = a;
  EXPECT_TRUE(a == b);
  a.send(7);
  EXPECT_EQ(b.len(), 1);
  EXPECT_EQ(b.recv(), 7);
}

TEST(ChanDeath, BlockedReceiveIsDeadlock) {
  EXPECT_EXIT(
      {
        auto c = rt::make_chan<int>(0);
        c.recv();
      },
      testing::ExitedWithCode(2), "fatal error: all goroutines are asleep - deadlock!(.|\n)*goroutine 1 \\[chan receive\\]");
}

TEST(ChanDeath, NilSendIsDeadlock) {
  EXPECT_EXIT(
      {
        rt::Chan<int> nil;
        nil.send(1);
      },
      testing::ExitedWithCode(2), "all goroutines are asleep - deadlock!(.|\n)*\\[chan send \\(nil chan\\)\\]");
}

TEST(ChanDeath, UncaughtSendOnClosedPanics) {
  EXPECT_EXIT(
      {
        auto c = rt::make_chan<int>(0);
        c.close();
        rt::go([c] { c.send(1); });
        c.recv();  // keeps main alive (closed: returns at once) ...
        rt::Chan<int>().recv();  // ... then blocks while the panic happens
      },
      testing::ExitedWithCode(2), "panic: send on closed channel");
}

}  // namespace

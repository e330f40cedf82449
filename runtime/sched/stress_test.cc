// Randomized stress test of the runtime's primitives together: channels
// (buffered and unbuffered, blocking, non-blocking and in select), timers
// (select timeouts, after_func with stop and reset), Mutex, WaitGroup,
// gosched, sleeps, GOMAXPROCS changes and goexit, in rounds of random shape
// until the time budget is spent.
//
// Each round: producers send every value of their own range exactly once
// (a select that times out retries the same value), consumers select over
// all channels until each is closed, count each value under a Mutex and
// mark it seen; quitters and some producers end through goexit from inside
// nested calls; a goroutine keeps changing GOMAXPROCS; timers are started,
// stopped and reset. Invariants after the round: every value seen exactly
// once, the Mutex-guarded count equals the number of values, each timer
// fired as often as its stop/reset results say it must, no code ran after
// a goexit while every destructor did, and the goroutine count is back
// where it started.
//
// RTLAB_STRESS_SECONDS sets the budget (default 30); every run prints its
// seed, and RTLAB_STRESS_SEED=<seed> replays the same random choices (the
// interleaving is the scheduler's).
#include <gtest/gtest.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "rt/rt.h"
#include "runtime/testing/rt_test_util.h"

namespace {

using rt::testing::goexit_from_depth;
using rt::testing::ProcsGuard;
using rt::testing::wait_until;

constexpr int kChans = 4;  // the consumers' select has one case per channel
constexpr int kMaxProcs = 4;

uint64_t env_u64(const char* name, uint64_t def) {
  const char* s = std::getenv(name);
  return s != nullptr && *s != 0 ? std::strtoull(s, nullptr, 10) : def;
}

struct OnExit {
  std::atomic<int64_t>* count;
  rt::WaitGroup* wg;
  ~OnExit() {
    count->fetch_add(1);
    wg->done();
  }
};

struct Round {
  explicit Round(uint64_t seed) : rng(seed) {
    std::uniform_int_distribution<int> producers_d(1, 6), consumers_d(1, 4), quitters_d(0, 4), per_producer_d(50, 1500),
        timers_d(0, 40), cap_d(0, 3);
    producers = producers_d(rng);
    consumers = consumers_d(rng);
    quitters = quitters_d(rng);
    per_producer = per_producer_d(rng);
    timers = timers_d(rng);
    for (auto& c : chans) c = rt::make_chan<int64_t>(cap_d(rng));
    seen = std::make_unique<std::atomic<uint8_t>[]>(size_t(values()));
  }
  int64_t values() const { return int64_t(producers) * per_producer; }

  std::mt19937_64 rng;
  int producers, consumers, quitters, per_producer, timers;
  rt::Chan<int64_t> chans[kChans];
  std::unique_ptr<std::atomic<uint8_t>[]> seen;
  std::atomic<int64_t> out_of_range{0};
  rt::Mutex mu;
  int64_t counted = 0;  // under mu
  std::atomic<int64_t> exits_through_destructors{0};
  std::atomic<int64_t> ran_after_goexit{0};
  std::atomic<int64_t> timer_fired{0};
  std::atomic<int64_t> timer_expected{0};
};

void produce(Round& r, uint64_t seed, int64_t first, int64_t count) {
  std::mt19937_64 rng(seed);
  for (int64_t v = first; v < first + count;) {
    const rt::Chan<int64_t>& a = r.chans[rng() % kChans];
    const rt::Chan<int64_t>& b = r.chans[rng() % kChans];
    bool sent = true;
    switch (rng() % 6) {
      case 0:
      case 1:
        a.send(v);
        break;
      case 2:
        if (!a.try_send(v)) b.send(v);
        break;
      case 3: {
        // A short timeout: on expiry the value was not sent and is retried.
        rt::Chan<int64_t> timeout = rt::after(int64_t(rng() % 20'000));
        int chosen = rt::select(rt::send_case(a, v), rt::send_case(b, v), rt::recv_case(timeout));
        sent = chosen != 2;
        break;
      }
      case 4:
        sent = rt::select(rt::send_case(a, v), rt::default_case()) == 0;
        if (!sent) rt::gosched();
        break;
      default:
        if (rng() % 8 == 0) rt::sleep(int64_t(rng() % 50'000));
        a.send(v);
        break;
    }
    if (sent) v++;
  }
}

void consume(Round& r, uint64_t seed) {
  std::mt19937_64 rng(seed);
  rt::Chan<int64_t> open[kChans];
  for (int i = 0; i < kChans; i++) open[i] = r.chans[i];
  int remaining = kChans;
  int closed = -1;
  auto take = [&](int i) {
    return [&, i](int64_t v, bool ok) {
      if (!ok) {
        closed = i;
        return;
      }
      if (v < 0 || v >= r.values()) {
        r.out_of_range++;
        return;
      }
      r.seen[size_t(v)].fetch_add(1, std::memory_order_relaxed);
      r.mu.lock();
      r.counted++;
      r.mu.unlock();
    };
  };
  while (remaining > 0) {
    if (rng() % 4 == 0) {
      rt::Chan<int64_t> timeout = rt::after(int64_t(rng() % 100'000));
      rt::select(rt::recv_case(open[0], take(0)), rt::recv_case(open[1], take(1)), rt::recv_case(open[2], take(2)),
                 rt::recv_case(open[3], take(3)), rt::recv_case(timeout));
    } else {
      rt::select(rt::recv_case(open[0], take(0)), rt::recv_case(open[1], take(1)), rt::recv_case(open[2], take(2)),
                 rt::recv_case(open[3], take(3)));
    }
    if (closed >= 0) {
      open[closed] = rt::Chan<int64_t>();  // a nil channel's case never fires
      remaining--;
      closed = -1;
    }
    if (rng() % 16 == 0) rt::gosched();
  }
}

// Starts, stops and resets after_func timers; timer_expected counts the
// calls that their results promise.
void play_with_timers(Round& r, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<rt::Timer> ts;
  for (int i = 0; i < r.timers; i++) {
    r.timer_expected++;
    ts.push_back(rt::after_func(int64_t(rng() % 2'000'000), [&r] { r.timer_fired++; }));
    if (rng() % 4 == 0) rt::sleep(int64_t(rng() % 200'000));
  }
  for (rt::Timer& t : ts) {
    switch (rng() % 3) {
      case 0:
        if (t.stop()) r.timer_expected--;
        break;
      case 1:
        if (!t.reset(int64_t(rng() % 1'000'000))) r.timer_expected++;
        break;
      default:
        break;
    }
  }
}

void run_round(uint64_t seed, int round) {
  const int baseline = rt::num_goroutine();
  Round r(seed);
  // Not SCOPED_TRACE: gtest keeps traces per thread, and this goroutine
  // moves between threads.
  const std::string where = (testing::Message() << " [seed " << seed << " (RTLAB_STRESS_SEED), round " << round << ": "
                                                << r.producers << " producers x " << r.per_producer << " values, "
                                                << r.consumers << " consumers, " << r.quitters << " quitters, "
                                                << r.timers << " timers]")
                                .GetString();
  rt::WaitGroup producers, consumers, others;
  std::atomic<bool> round_over{false};
  int64_t goexits = 0;
  others.add(1);
  rt::go([&, s = r.rng()] {
    std::mt19937_64 rng(s);
    while (!round_over.load()) {
      rt::gomaxprocs(1 + int(rng() % kMaxProcs));
      rt::sleep(int64_t(100'000 + rng() % 900'000));
    }
    others.done();
  });
  for (int c = 0; c < r.consumers; c++) {
    consumers.add(1);
    rt::go([&, s = r.rng()] {
      consume(r, s);
      consumers.done();
    });
  }
  for (int p = 0; p < r.producers; p++) {
    producers.add(1);
    bool exits_by_goexit = r.rng() % 2 == 0;
    goexits += exits_by_goexit;
    rt::go([&, p, exits_by_goexit, s = r.rng()] {
      if (exits_by_goexit) {
        OnExit on_exit{&r.exits_through_destructors, &producers};
        produce(r, s, int64_t(p) * r.per_producer, r.per_producer);
        goexit_from_depth(2);
        r.ran_after_goexit++;
      }
      produce(r, s, int64_t(p) * r.per_producer, r.per_producer);
      producers.done();
    });
  }
  for (int q = 0; q < r.quitters; q++) {
    others.add(1);
    goexits++;
    rt::go([&, s = r.rng()] {
      OnExit on_exit{&r.exits_through_destructors, &others};
      std::mt19937_64 rng(s);
      for (int i = int(rng() % 20); i > 0; i--) {
        r.mu.lock();
        if (rng() % 2 == 0) rt::gosched();  // holding the lock: others queue on it
        r.mu.unlock();
      }
      goexit_from_depth(int(rng() % 3));
      r.ran_after_goexit++;
    });
  }
  others.add(1);
  rt::go([&, s = r.rng()] {
    play_with_timers(r, s);
    others.done();
  });

  producers.wait();
  for (const auto& c : r.chans) c.close();
  consumers.wait();
  round_over = true;
  others.wait();

  int64_t lost = 0, duplicated = 0;
  for (int64_t v = 0; v < r.values(); v++) {
    uint8_t k = r.seen[size_t(v)].load();
    lost += k == 0;
    duplicated += k > 1;
  }
  EXPECT_EQ(lost, 0) << "values never received" << where;
  EXPECT_EQ(duplicated, 0) << "values received more than once" << where;
  EXPECT_EQ(r.out_of_range.load(), 0) << "values no producer sent" << where;
  r.mu.lock();
  EXPECT_EQ(r.counted, r.values()) << "receives counted under the Mutex" << where;
  r.mu.unlock();
  EXPECT_EQ(r.ran_after_goexit.load(), 0) << "code ran after goexit" << where;
  EXPECT_EQ(r.exits_through_destructors.load(), goexits) << "destructors run by goexit" << where;
  EXPECT_TRUE(wait_until([&] { return r.timer_fired.load() >= r.timer_expected.load(); }))
      << r.timer_fired.load() << " of " << r.timer_expected.load() << " timer calls" << where;
  // Every goroutine of the round ends, timer callbacks included; a timer
  // that fires once too often shows here too, as its call ran by now.
  EXPECT_TRUE(wait_until([&] { return rt::num_goroutine() == baseline; }))
      << rt::num_goroutine() << " goroutines, " << baseline << " before the round" << where;
  EXPECT_EQ(r.timer_fired.load(), r.timer_expected.load()) << "timer calls" << where;
}

TEST(Stress, RandomRoundsKeepEveryInvariant) {
  const uint64_t seed = env_u64("RTLAB_STRESS_SEED", uint64_t(rt::nanotime()));
  const int64_t budget_ns = int64_t(env_u64("RTLAB_STRESS_SECONDS", 30)) * 1'000'000'000;
  printf("stress: seed %" PRIu64 " (RTLAB_STRESS_SEED=%" PRIu64 " replays its choices), budget %" PRId64 " s\n", seed,
         seed, budget_ns / 1'000'000'000);
  fflush(stdout);
  ProcsGuard procs(2);
  std::mt19937_64 seeds(seed);
  const int64_t deadline = rt::nanotime() + budget_ns;
  int rounds = 0;
  while (rt::nanotime() < deadline) {
    run_round(seeds(), rounds);
    rounds++;
    if (HasFailure()) break;
  }
  printf("stress: %d rounds\n", rounds);
  EXPECT_GT(rounds, 0);
}

}  // namespace

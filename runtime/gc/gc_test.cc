// Garbage collector tests: objects reachable from every kind of root
// survive collections with their contents intact (checksums), unreachable
// ones are freed and the heap returns to its baseline, sweeping gives pages
// back to the page allocator, MemStats' GC fields add up, gctrace prints
// Go's format, GOGC is read as Go reads it, rt::Slice grows as Go's
// append. Built and run once per variant.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "rt/rt.h"
#include "runtime/gc/mgc.h"
#include "runtime/mem/malloc.h"
#include "runtime/mem/mheap.h"
#include "runtime/mem/sizeclasses.h"
#include "runtime/sched/runtime2.h"
#include "runtime/testing/rt_test_util.h"

namespace {

using rt::Ref;
using rt::testing::ProcsGuard;
using rt::testing::clobber_stack;
using rt::testing::in_frame;

struct Node {
  int64_t value;
  uint64_t check;  // a function of value and the address-independent payload
  Ref<Node> next;
  Ref<Node> left;
  Ref<Node> right;
  uint64_t payload[3];
};

uint64_t node_check(int64_t value) { return uint64_t(value) * 0x9e3779b97f4a7c15ULL ^ 0x5bd1e995u; }

Ref<Node> new_node(int64_t value) {
  Ref<Node> n = rt::make<Node>();
  n->value = value;
  n->check = node_check(value);
  for (int i = 0; i < 3; i++) n->payload[i] = node_check(value + i + 1);
  return n;
}

bool node_ok(const Node* n) {
  if (n->check != node_check(n->value)) return false;
  for (int i = 0; i < 3; i++) {
    if (n->payload[i] != node_check(n->value + i + 1)) return false;
  }
  return true;
}

// A list of values 0..n-1 (head is n-1).
Ref<Node> make_list(int64_t n) {
  Ref<Node> head;
  for (int64_t i = 0; i < n; i++) {
    Ref<Node> x = new_node(i);
    x->next = head;
    head = x;
  }
  return head;
}

// Walks a list made by make_list: every node intact, values n-1..0.
bool list_ok(Ref<Node> head, int64_t n) {
  for (int64_t i = n - 1; i >= 0; i--) {
    if (!head || head->value != i || !node_ok(head.get())) return false;
    head = head->next;
  }
  return head == nullptr;
}

Ref<Node> make_tree(int depth, int64_t* counter) {
  Ref<Node> n = new_node((*counter)++);
  if (depth > 0) {
    n->left = make_tree(depth - 1, counter);
    n->right = make_tree(depth - 1, counter);
  }
  return n;
}

// Number of intact nodes, or -1 if one is damaged.
int64_t tree_count(const Ref<Node>& n) {
  if (!n) return 0;
  if (!node_ok(n.get())) return -1;
  int64_t l = tree_count(n->left), r = tree_count(n->right);
  return l < 0 || r < 0 ? -1 : 1 + l + r;
}

// A tree of depth depth, built in a frame of its own so that no dead
// slot of this frame holds one of its nodes.
Ref<Node> live_tree(int depth) {
  Ref<Node> live;
  in_frame([&] {
    int64_t counter = 0;
    live = make_tree(depth, &counter);
  });
  return live;
}

// Allocates garbage that reuses any wrongly freed memory (and overwrites
// it with other values), so that a missed reference shows up as a bad
// checksum.
__attribute__((noinline)) void churn(int64_t nodes) {
  for (int64_t i = 0; i < nodes; i++) {
    Ref<Node> x = new_node(-1 - i);
    x->next = x;
  }
}

uint64_t heap_alloc() { return rt::read_mem_stats().HeapAlloc; }

// HeapAlloc after a collection: the live heap.
uint64_t live_heap() {
  clobber_stack();
  rt::gc();
  return heap_alloc();
}

TEST(GC, ListSurvivesCollectionsAndGarbageIsFreed) {
  uint64_t base = live_heap();
  uint64_t with_list = 0;
  in_frame([&] {
    Ref<Node> list = make_list(20000);
    for (int i = 0; i < 3; i++) {
      churn(50000);
      rt::gc();
      ASSERT_TRUE(list_ok(list, 20000));
    }
    with_list = live_heap();
  });
  EXPECT_GE(with_list, base + 20000 * sizeof(Node));
  // Conservative scanning may keep a stray object alive; not the list.
  uint64_t after = live_heap();
  EXPECT_LT(after, base + 64 * 1024) << "base " << base << " with list " << with_list;
}

TEST(GC, TreesAndCyclesSurviveWhileReachableAndAreFreedAfter) {
  uint64_t base = live_heap();
  in_frame([] {
    int64_t counter = 0;
    Ref<Node> tree = make_tree(12, &counter);
    // A ring: every node reachable from every other.
    Ref<Node> ring = make_list(5000);
    Ref<Node> tail = ring;
    while (tail->next) tail = tail->next;
    tail->next = ring;
    for (int i = 0; i < 3; i++) {
      churn(30000);
      rt::gc();
    }
    EXPECT_EQ(tree_count(tree), counter);
    Ref<Node> r = ring;
    for (int i = 0; i < 5000; i++, r = r->next) ASSERT_TRUE(node_ok(r.get()));
    EXPECT_EQ(r, ring);
  });
  EXPECT_LT(live_heap(), base + 64 * 1024);
}

Ref<Node> global_list;

TEST(GC, ReachableOnlyFromAGlobal) {
  global_list = make_list(10000);
  clobber_stack();
  churn(30000);
  rt::gc();
  churn(30000);
  EXPECT_TRUE(list_ok(global_list, 10000));
  global_list = nullptr;
}

TEST(GC, ReachableOnlyFromARootInMallocMemory) {
  uint64_t base = live_heap();
  auto* holders = new std::vector<rt::Root<Node>>();
  in_frame([holders] {
    for (int i = 0; i < 10; i++) holders->emplace_back(make_list(1000));
  });
  clobber_stack();
  churn(30000);
  rt::gc();
  churn(30000);
  in_frame([holders] {
    for (auto& h : *holders) EXPECT_TRUE(list_ok(h.ref(), 1000));
  });
  // base may have counted a dead object the conservative scan kept (the
  // same 64 KiB of slack as the baseline checks).
  EXPECT_GE(live_heap() + 64 * 1024, base + 10000 * sizeof(Node));
  delete holders;
  EXPECT_LT(live_heap(), base + 64 * 1024);
}

TEST(GC, ReachableOnlyFromAParkedGoroutinesStack) {
  rt::Chan<int> ready = rt::make_chan<int>(0);
  rt::Chan<int> go_on = rt::make_chan<int>(0);
  rt::Chan<bool> result = rt::make_chan<bool>(0);
  rt::go([=] {
    Ref<Node> mine = make_list(10000);
    ready.send(1);
    go_on.recv();
    result.send(list_ok(mine, 10000));
  });
  ready.recv();
  for (int i = 0; i < 3; i++) {
    churn(30000);
    rt::gc();
  }
  go_on.send(1);
  EXPECT_TRUE(result.recv());
}

TEST(GC, ReachableOnlyFromAGoroutineInASystemCall) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  rt::Chan<bool> result = rt::make_chan<bool>(0);
  std::atomic<bool> started{false};
  rt::go([&, rfd = fds[0]] {
    Ref<Node> mine = make_list(10000);
    started.store(true);
    char c;
    ssize_t n = rt::sys::read(rfd, &c, 1);  // blocks in the kernel
    result.send(n == 1 && list_ok(mine, 10000));
  });
  ASSERT_TRUE(rt::testing::wait_until([&] { return started.load(); }));
  usleep(20000);  // let it enter read(2)
  for (int i = 0; i < 3; i++) {
    churn(30000);
    rt::gc();
  }
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  EXPECT_TRUE(result.recv());
  close(fds[0]);
  close(fds[1]);
}

// A goroutine that runs a loop over a ring it alone references, stopped by
// the collector's stop-the-world: with preempt=signal the loop makes no
// call, so it stops in the async-preempt trampoline with the reference in
// its saved registers; with coop it stops at its safe point.
TEST(GC, ReachableOnlyFromARunningGoroutine) {
  ProcsGuard procs(2);
  bool async = rt::testing::signal_preemption();
  std::atomic<bool> stop{false};
  std::atomic<bool> started{false};
  rt::Chan<int64_t> result = rt::make_chan<int64_t>(1);
  rt::go([&, async] {
    int64_t bad = 0;
    {
      Ref<Node> ring = make_list(1000);
      Ref<Node> t = ring;
      while (t->next) t = t->next;
      t->next = ring;
      t = nullptr;
      Node* p = ring.get();
      ring = nullptr;
      started.store(true);
      while (!stop.load(std::memory_order_relaxed)) {
        if (!node_ok(p)) bad++;
        p = p->next.get();
        if (!async) rt::preempt_point();
      }
    }
    result.send(bad);
  });
  ASSERT_TRUE(rt::testing::wait_until([&] { return started.load(); }));
  for (int i = 0; i < 5; i++) {
    churn(20000);
    rt::gc();
  }
  stop.store(true);
  EXPECT_EQ(result.recv(), 0);
}

TEST(GC, ReachableOnlyFromAChannelBuffer) {
  rt::Chan<Ref<Node>> ch = rt::make_chan<Ref<Node>>(4);
  ch.send(make_list(5000));
  ch.send(make_list(3000));
  clobber_stack();
  for (int i = 0; i < 3; i++) {
    churn(30000);
    rt::gc();
  }
  EXPECT_TRUE(list_ok(ch.recv(), 5000));
  EXPECT_TRUE(list_ok(ch.recv(), 3000));
}

TEST(GC, ReachableOnlyAsAValueInFlightFromABlockedSender) {
  rt::Chan<Ref<Node>> ch = rt::make_chan<Ref<Node>>(0);
  rt::go([ch] { ch.send(make_list(5000)); });
  ASSERT_TRUE(rt::testing::wait_until([] { return rt::num_goroutine() >= 2; }));
  rt::sleep(std::chrono::milliseconds(5));  // the sender is parked in send
  for (int i = 0; i < 3; i++) {
    churn(30000);
    rt::gc();
  }
  EXPECT_TRUE(list_ok(ch.recv(), 5000));
}

// Channels are GC objects: unreachable ones are freed, including cycles
// through their buffers (a channel holding the object that holds it),
// which reference counts could never free.
TEST(GC, UnreachableChannelsAndCyclesThroughBuffersAreFreed) {
  struct Box {
    rt::Chan<Ref<Box>> self;
    int64_t pad[6];
  };
  uint64_t base = live_heap();
  in_frame([] {
    for (int i = 0; i < 20000; i++) {
      Ref<Box> b = rt::make<Box>();
      b->self = rt::make_chan<Ref<Box>>(2);
      b->self.send(b);
      rt::make_chan<int64_t>(16).send(i);  // dead at once
    }
  });
  // 20,000 boxes and 40,000 channels are about 8 MB.
  EXPECT_LT(live_heap(), base + 64 * 1024) << "base " << base;
}

// What a timer's function captures is alive until the function runs
// (Go's timers hold their closures), and so is the channel of a channel
// timer nobody else refers to.
TEST(GC, ReachableOnlyFromATimerClosure) {
  rt::Chan<bool> result = rt::make_chan<bool>(1);
  rt::Timer t;
  in_frame([&] {
    Ref<Node> list = make_list(4000);
    rt::Chan<int> only_here = rt::make_chan<int>(1);
    only_here.send(42);
    t = rt::after_func(std::chrono::milliseconds(30), [list, only_here, result] {
      result.send(list_ok(list, 4000) && only_here.recv() == 42);
    });
  });
  clobber_stack();
  for (int i = 0; i < 3; i++) {
    churn(30000);
    rt::gc();
  }
  EXPECT_TRUE(result.recv());
}

TEST(GC, ChannelOfAPendingChanTimerSurvivesCollections) {
  // The Ticker (and its handle on the channel) is in malloc memory, which
  // the collector does not scan: the timer's own reference is the only one.
  auto* tick = new rt::Ticker(5 * 1000 * 1000);
  clobber_stack();
  for (int i = 0; i < 3; i++) {
    churn(30000);
    for (int k = 0; k < 1000; k++) rt::make_chan<int64_t>(1).send(-1);  // would reuse a freed channel
    rt::gc();
  }
  EXPECT_GT(tick->c().recv(), 0);
  EXPECT_GT(tick->c().recv(), 0);
  delete tick;
}

TEST(GC, ReachableOnlyFromGoroutineClosures) {
  rt::Chan<int> go_on = rt::make_chan<int>(0);
  rt::Chan<bool> result = rt::make_chan<bool>(2);
  {
    Ref<Node> small = make_list(4000);
    rt::go([=] {  // fits in the G
      go_on.recv();
      result.send(list_ok(small, 4000));
    });
    struct Big {
      Ref<Node> list;
      char pad[256];
    } big{make_list(6000), {}};
    rt::go([=] {  // a heap copy
      go_on.recv();
      result.send(list_ok(big.list, 6000));
    });
  }
  clobber_stack();
  for (int i = 0; i < 3; i++) {
    churn(30000);
    rt::gc();
  }
  go_on.send(1);
  go_on.send(1);
  EXPECT_TRUE(result.recv());
  EXPECT_TRUE(result.recv());
}

// A closure too large for the G is a GC object (aligned as its type asks),
// alive while its goroutine runs and freed after it exits.
TEST(GC, LargeClosuresAreGCObjectsFreedAfterTheirGoroutinesExit) {
  struct alignas(64) Wide {
    char bytes[512];
  };
  uint64_t base = live_heap();
  constexpr int kGoroutines = 2000;
  rt::Chan<bool> in_heap = rt::make_chan<bool>(kGoroutines);
  rt::WaitGroup wg;
  wg.add(kGoroutines);
  for (int i = 0; i < kGoroutines; i++) {
    Wide w{};
    w.bytes[0] = char(i);
    rt::go([=, &wg] {
      uintptr_t a = reinterpret_cast<uintptr_t>(&w);
      in_heap.send(rt::internal::object_base(a) != 0 && a % 64 == 0 && w.bytes[0] == char(i));
      wg.done();
    });
  }
  wg.wait();
  for (int i = 0; i < kGoroutines; i++) ASSERT_TRUE(in_heap.recv());
  EXPECT_LT(live_heap(), base + 64 * 1024) << "closures of exited goroutines are not freed";
}

// Interior pointers keep their whole object alive.
TEST(GC, InteriorPointerKeepsTheObject) {
  Ref<Node> n = new_node(7);
  volatile uint64_t* inside = &n->payload[2];
  n = nullptr;
  churn(30000);
  rt::gc();
  churn(30000);
  EXPECT_EQ(*inside, node_check(7 + 3));
}

TEST(GC, SweepReturnsEmptySpansToThePageAllocator) {
  rt::gc();
  rt::MemStats before = rt::read_mem_stats();
  // In frames of their own, erased after: no copy of a slice's address
  // stays on the stack for the conservative scan.
  in_frame([&] {
    std::vector<rt::Root<rt::Slice<uint8_t>>>* keep = new std::vector<rt::Root<rt::Slice<uint8_t>>>();
    for (int i = 0; i < 64; i++) keep->emplace_back(rt::make<rt::Slice<uint8_t>>(rt::make_slice<uint8_t>(1 << 20)));
    rt::MemStats full = rt::read_mem_stats();
    // (before may count an object the conservative scan still kept then.)
    EXPECT_GE(full.HeapInuse + (uint64_t(2) << 20), before.HeapInuse + (uint64_t(64) << 20));
    delete keep;
  });
  // Small objects too: 32 MiB of 64-byte nodes in spans of their own.
  in_frame([] { churn(400000); });
  rt::MemStats garbage = rt::read_mem_stats();
  rt::gc();
  rt::MemStats after = rt::read_mem_stats();
  // Of the 64 MiB, a few objects may stay: a dead word on a goroutine
  // stack that names one (an interior pointer left in an outer frame was
  // seen keeping two of the 1 MiB slices) keeps it for the conservative
  // scan.
  EXPECT_LT(after.HeapInuse, before.HeapInuse + (uint64_t(4) << 20))
      << "before " << before.HeapInuse << " with garbage " << garbage.HeapInuse;
  EXPECT_GE(after.HeapIdle, before.HeapIdle);
  // The freed pages serve the next allocations: the heap does not grow.
  {
    std::vector<rt::Root<rt::Slice<uint8_t>>>* keep = new std::vector<rt::Root<rt::Slice<uint8_t>>>();
    for (int i = 0; i < 64; i++) keep->emplace_back(rt::make<rt::Slice<uint8_t>>(rt::make_slice<uint8_t>(1 << 20)));
    EXPECT_EQ(rt::read_mem_stats().HeapSys, after.HeapSys);
    delete keep;
  }
  rt::gc();
}

TEST(GC, MemStatsFieldsAddUp) {
  rt::gc();
  rt::MemStats a = rt::read_mem_stats();
  int64_t t0 = rt::nanotime();
  constexpr int kCycles = 5;
  for (int i = 0; i < kCycles; i++) {
    churn(10000);
    rt::gc();
  }
  rt::MemStats b = rt::read_mem_stats();
  int64_t elapsed = rt::nanotime() - t0;
  // Heap-triggered cycles may run too; forced ones are exactly ours.
  EXPECT_EQ(b.NumForcedGC - a.NumForcedGC, uint32_t(kCycles));
  ASSERT_GE(b.NumGC - a.NumGC, uint32_t(kCycles));
  uint64_t sum = 0;
  for (uint32_t n = a.NumGC; n < b.NumGC; n++) {
    uint64_t p = b.PauseNs[n % 256];
    EXPECT_GT(p, 0u);
    EXPECT_LT(p, uint64_t(elapsed));
    sum += p;
    if (n > a.NumGC) {
      EXPECT_GE(b.PauseEnd[n % 256], b.PauseEnd[(n - 1) % 256]);
    }
  }
  EXPECT_EQ(b.PauseTotalNs - a.PauseTotalNs, sum);
  EXPECT_EQ(b.LastGC, b.PauseEnd[(b.NumGC + 255) % 256]);
  uint64_t now_unix = uint64_t(time(nullptr)) * 1000000000;
  EXPECT_LT(b.LastGC, now_unix + 2000000000);
  EXPECT_GT(b.LastGC, now_unix - 60 * uint64_t(1000000000));
  EXPECT_GE(b.TotalAlloc - a.TotalAlloc, uint64_t(kCycles) * 10000 * sizeof(Node));
  EXPECT_LE(b.HeapAlloc, b.TotalAlloc);
  EXPECT_LE(b.HeapAlloc, b.HeapInuse);
  EXPECT_GT(b.GCCPUFraction, 0.0);
  EXPECT_LT(b.GCCPUFraction, 1.0);
  EXPECT_GT(b.NextGC, b.HeapAlloc);
  // Every churned node but the few a conservative scan may still find.
  EXPECT_GE(b.Frees, a.Frees + uint64_t(kCycles) * 10000 * 99 / 100);
}

TEST(GC, HeapGrowthTriggersCollections) {
  rt::gc();
  rt::MemStats a = rt::read_mem_stats();
  churn(1000000);  // 64 MB of garbage, 4 MiB goal
  rt::MemStats b = rt::read_mem_stats();
  EXPECT_GE(b.NumGC - a.NumGC, 3u);
  EXPECT_EQ(b.NumForcedGC, a.NumForcedGC);
  // The heap never grew far past its goal.
  EXPECT_LT(b.HeapInuse, a.HeapInuse + (uint64_t(16) << 20));
}

// After a cycle that rt::gc did not finish (heap-triggered), spans are
// swept concurrently: lazily by allocation and by the background sweeper,
// which leaves none unswept once the program goes idle.
TEST(GC, BackgroundSweeperSweepsEverySpan) {
  rt::gc();
  uint32_t cycles = rt::read_mem_stats().NumGC;
  while (rt::read_mem_stats().NumGC == cycles) churn(10000);
  auto unswept = [] {
    size_t n = 0;
    rt::internal::for_each_span(
        [](rt::internal::MSpan* s, void* arg) {
          if (s->state.load() == rt::internal::SpanState::kInUse &&
              __atomic_load_n(&s->sweepgen, __ATOMIC_ACQUIRE) != rt::internal::heap_sweepgen.load()) {
            ++*static_cast<size_t*>(arg);
          }
        },
        &n);
    return n;
  };
  EXPECT_TRUE(rt::testing::wait_until([&] { return unswept() == 0; })) << unswept() << " spans left unswept";
}

TEST(GC, SetGCPercentOffStopsHeapTriggeredCollections) {
  rt::gc();
  int old = rt::set_gc_percent(-1);
  EXPECT_EQ(old, 100);
  rt::MemStats a = rt::read_mem_stats();
  EXPECT_EQ(a.NextGC, 0u);
  churn(200000);
  EXPECT_EQ(rt::read_mem_stats().NumGC, a.NumGC);
  EXPECT_EQ(rt::set_gc_percent(old), -1);
  EXPECT_GT(rt::read_mem_stats().NextGC, 0u);
  rt::gc();
}

// Go's forcegcperiod, shortened: sysmon readies the helper goroutine, which
// runs a cycle that is not counted as forced; with GOGC off it runs none.
TEST(GC, PeriodicCollectionWhenNoneRanForThePeriod) {
  rt::gc();  // the period counts from the last cycle's end
  rt::MemStats a = rt::read_mem_stats();
  int64_t old = rt::internal::forcegc_period_ns.exchange(20 * 1000 * 1000);
  ASSERT_TRUE(rt::testing::wait_until([&] { return rt::read_mem_stats().NumGC >= a.NumGC + 2; }));
  EXPECT_EQ(rt::read_mem_stats().NumForcedGC, a.NumForcedGC);
  int helper_goroutines = rt::num_goroutine();
  rt::set_gc_percent(-1);
  rt::MemStats b = rt::read_mem_stats();
  rt::sleep(std::chrono::milliseconds(100));
  // At most the cycle the helper had already begun.
  EXPECT_LE(rt::read_mem_stats().NumGC, b.NumGC + 1);
  rt::set_gc_percent(100);
  rt::internal::forcegc_period_ns.store(old);
  EXPECT_EQ(helper_goroutines, rt::num_goroutine()) << "the helper is a runtime goroutine";
}

// ---- Slices -------------------------------------------------------------

TEST(Slice, AppendGrowsAsGo) {
  // Go 1.19: cap after each growth of append(s, x) on a nil []int64 and
  // []byte (go run of the same loop).
  const std::vector<size_t> want64 = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 848, 1280, 1792, 2560, 3408, 5120};
  const std::vector<size_t> want8 = {8, 16, 32, 64, 128, 256, 512, 896, 1408, 2048, 3072, 4096, 5376};
  rt::Slice<int64_t> s;
  std::vector<size_t> got64;
  for (int i = 0; i < 5000; i++) {
    s = rt::append(s, int64_t(i));
    if (got64.empty() || got64.back() != s.cap()) got64.push_back(s.cap());
  }
  EXPECT_EQ(got64, want64);
  for (int i = 0; i < 5000; i++) ASSERT_EQ(s[size_t(i)], i);
  rt::Slice<uint8_t> b;
  std::vector<size_t> got8;
  for (int i = 0; i < 5000; i++) {
    b = rt::append(b, uint8_t(i));
    if (got8.empty() || got8.back() != b.cap()) got8.push_back(b.cap());
  }
  EXPECT_EQ(got8, want8);
  rt::Slice<int32_t> x = rt::make_slice<int32_t>(3, 5);
  x = rt::append(x, 1, 2, 3, 4, 5, 6, 7, 8);
  EXPECT_EQ(x.len(), 11u);
  EXPECT_EQ(x.cap(), 12u);
  EXPECT_EQ(x[10], 8);
  EXPECT_EQ(x[0], 0);
}

TEST(Slice, AppendWithRoomSharesTheArray) {
  rt::Slice<int64_t> s = rt::make_slice<int64_t>(2, 4);
  rt::Slice<int64_t> t = rt::append(s, int64_t(9));
  EXPECT_EQ(t.data(), s.data());
  EXPECT_EQ(s.len(), 2u);
  EXPECT_EQ(t.len(), 3u);
  rt::Slice<int64_t> u = t.sub(1, 3);
  EXPECT_EQ(u.len(), 2u);
  EXPECT_EQ(u.cap(), 3u);
  EXPECT_EQ(u[1], 9);
}

TEST(Slice, OutOfRangePanicsWithGosText) {
  rt::Slice<int32_t> s = rt::make_slice<int32_t>(3, 4);
  try {
    (void)s[5];
    FAIL() << "no panic";
  } catch (const rt::Panic& p) {
    EXPECT_STREQ(p.what(), "runtime error: index out of range [5] with length 3");
  }
  try {
    (void)s.sub(0, 5);
    FAIL() << "no panic";
  } catch (const rt::Panic& p) {
    EXPECT_STREQ(p.what(), "runtime error: slice bounds out of range [:5] with capacity 4");
  }
  EXPECT_THROW(rt::make_slice<int32_t>(5, 4), rt::Panic);
}

struct Pixel {
  uint8_t r, g, b, a;
  int32_t x, y;
};

struct Holder {
  Ref<Node> node;
};

}  // namespace

template <>
struct rt::pointer_free<Pixel> : std::true_type {};

namespace {

bool is_noscan(const void* p) {
  using namespace rt::internal;
  MSpan* s = span_of(reinterpret_cast<uintptr_t>(p));
  return s != nullptr && span_class_noscan(s->spanclass);
}

TEST(Slice, ArithmeticAndPointerFreeElementsAreNoscan) {
  EXPECT_TRUE(is_noscan(rt::make_slice<int64_t>(100).data()));
  EXPECT_TRUE(is_noscan(rt::make_slice<double>(100).data()));
  EXPECT_TRUE(is_noscan(rt::make_slice<Pixel>(100).data()));
  EXPECT_TRUE(is_noscan(rt::make<Pixel>().get()));
  EXPECT_FALSE(is_noscan(rt::make_slice<Ref<Node>>(100).data()));
  EXPECT_FALSE(is_noscan(rt::make<Holder>().get()));
  EXPECT_FALSE(is_noscan(rt::make<Node>().get()));
}

TEST(Slice, ElementsReachableThroughASliceOfRefs) {
  rt::Slice<Ref<Node>> s;
  for (int i = 0; i < 2000; i++) s = rt::append(s, new_node(i));
  clobber_stack();
  churn(30000);
  rt::gc();
  churn(30000);
  for (int i = 0; i < 2000; i++) {
    ASSERT_EQ(s[size_t(i)]->value, i);
    ASSERT_TRUE(node_ok(s[size_t(i)].get()));
  }
}

// A large scan object is marked in 128 KiB oblets (mgcmark.cc): references
// at both sides of every oblet boundary and in the last, partial oblet
// keep their objects.
TEST(GC, EveryObletOfALargeObjectIsScanned) {
  constexpr size_t kOblet = (128 << 10) / sizeof(Ref<Node>);
  constexpr size_t kLen = 18 * kOblet + kOblet / 3;
  rt::Slice<Ref<Node>> s = rt::make_slice<Ref<Node>>(kLen);
  std::vector<size_t> at = {0, kLen - 1};
  for (size_t b = kOblet; b < kLen; b += kOblet) {
    at.push_back(b - 1);
    at.push_back(b);
  }
  for (size_t i : at) s[i] = new_node(int64_t(i));
  clobber_stack();
  for (int round = 0; round < 3; round++) {
    churn(30000);
    rt::gc();
  }
  for (size_t i : at) {
    ASSERT_TRUE(s[i]) << i;
    ASSERT_EQ(s[i]->value, int64_t(i));
    ASSERT_TRUE(node_ok(s[i].get())) << i;
  }
}

TEST(GC, AlignedTypesGetAlignedObjects) {
  struct alignas(16) Wide {
    uint64_t a, b, c;
  };
  for (int i = 0; i < 100; i++) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(rt::make<Wide>().get()) % 16, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(rt::make_slice<Wide>(1).data()) % 16, 0u);
  }
}

// ---- Torture ---------------------------------------------------------------

// Random graphs over many collections: a table of live structures (lists,
// trees, rings, slices of nodes) is kept in a GC slice on the stack; each
// step replaces a random entry, and a collection runs every few thousand
// allocations. Every live structure is verified after each collection.
// GC_TORTURE_ALLOCS sets the number of allocations (default 1,000,000;
// the README gives the 10,000,000 run).
// forced: a collection every kCollectEvery allocations (rt::gc, which
// also finishes the sweep); else collections come from heap growth at
// GOGC=25 and sweeping runs lazily and in the background.
__attribute__((noinline)) void torture(int64_t total, bool forced) {
  constexpr int kSlots = 64;
  constexpr int64_t kCollectEvery = 5000;
  struct Entry {
    int kind;  // 0 empty, 1 list, 2 tree, 3 ring, 4 slice
    int64_t size;
    Ref<Node> node;
    rt::Slice<Ref<Node>> nodes;
  };
  rt::Slice<Entry> table = rt::make_slice<Entry>(kSlots);
  std::mt19937_64 rng(42);
  int64_t allocs = 0, next_gc = kCollectEvery;
  int64_t collections = 0;
  auto verify = [&] {
    for (int i = 0; i < kSlots; i++) {
      Entry& e = table[size_t(i)];
      switch (e.kind) {
        case 1: ASSERT_TRUE(list_ok(e.node, e.size)) << "list " << i; break;
        case 2: ASSERT_EQ(tree_count(e.node), e.size) << "tree " << i; break;
        case 3: {
          Ref<Node> r = e.node;
          for (int64_t k = 0; k < e.size; k++, r = r->next) ASSERT_TRUE(node_ok(r.get())) << "ring " << i;
          ASSERT_EQ(r, e.node);
          break;
        }
        case 4:
          for (int64_t k = 0; k < e.size; k++) {
            ASSERT_EQ(e.nodes[size_t(k)]->value, k);
            ASSERT_TRUE(node_ok(e.nodes[size_t(k)].get()));
          }
          break;
      }
    }
  };
  while (allocs < total) {
    Entry& e = table[rng() % kSlots];
    int kind = int(rng() % 5);
    int64_t size = int64_t(rng() % 200) + 1;
    e.kind = 0;
    e.node = nullptr;
    e.nodes = nullptr;
    switch (kind) {
      case 1: e.node = make_list(size); allocs += size; break;
      case 2: {
        int64_t count = 0;
        e.node = make_tree(int(size % 8), &count);
        size = count;
        allocs += count;
        break;
      }
      case 3: {
        e.node = make_list(size);
        Ref<Node> t = e.node;
        while (t->next) t = t->next;
        t->next = e.node;
        allocs += size;
        break;
      }
      case 4:
        for (int64_t k = 0; k < size; k++) e.nodes = rt::append(e.nodes, new_node(k));
        allocs += 2 * size;
        break;
      default: churn(size); allocs += size; break;
    }
    e.kind = kind == 0 ? 0 : kind;
    e.size = size;
    if (allocs >= next_gc) {
      next_gc = allocs + kCollectEvery;
      if (forced) {
        rt::gc();
        collections++;
      }
      verify();
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  if (forced) {
    EXPECT_GE(collections, total / kCollectEvery / 2);
  }
}

TEST(GC, Torture) {
  int64_t total = 1000000;
  if (const char* env = getenv("GC_TORTURE_ALLOCS")) total = atoll(env);
  uint64_t base = live_heap();
  torture(total / 2, true);
  int old = rt::set_gc_percent(25);
  uint32_t cycles = rt::read_mem_stats().NumGC;
  torture(total / 2, false);
  EXPECT_GT(rt::read_mem_stats().NumGC, cycles + 10);
  rt::set_gc_percent(old);
  EXPECT_LT(live_heap(), base + 64 * 1024);
}

// ---- Concurrent marking ---------------------------------------------------

// Goroutines rearrange a graph while collections mark it: they swap list
// heads between slots, splice nodes out of lists and back in, replace
// lists, and trade whole lists with each other through a buffered channel
// (values sitting in a channel's buffer and in flight between stacks).
// Every store is a Ref store, so the write barrier must keep every list
// reachable; with gccheckmark each collection also verifies that no black
// object points to a white one. Returns whether every list survived.
struct ListEntry {
  Ref<Node> head;
  int64_t len;
};

__attribute__((noinline)) bool mutate_during_marking(int workers, int64_t steps) {
  rt::Chan<ListEntry> trade = rt::make_chan<ListEntry>(8);
  std::atomic<bool> ok{true};
  std::atomic<bool> stop{false};
  rt::WaitGroup wg;
  wg.add(workers + 1);
  rt::go([&] {
    while (!stop.load()) rt::gc();
    wg.done();
  });
  std::atomic<int> running{workers};
  for (int w = 0; w < workers; w++) {
    rt::go([&, w] {
      constexpr int kSlots = 32;
      rt::Slice<ListEntry> table = rt::make_slice<ListEntry>(kSlots);
      for (int i = 0; i < kSlots; i++) table[size_t(i)] = ListEntry{make_list(i + 1), i + 1};
      std::mt19937_64 rng(uint64_t(w) * 7919 + 1);
      for (int64_t s = 0; s < steps; s++) {
        ListEntry& a = table[rng() % kSlots];
        ListEntry& b = table[rng() % kSlots];
        switch (rng() % 5) {
          case 0: {  // swap two slots through a temporary
            ListEntry tmp = a;
            a = b;
            b = tmp;
            break;
          }
          case 1:  // splice the second node out and push it back on top
            if (a.len >= 2) {
              Ref<Node> second = a.head->next;
              a.head->next = second->next;
              second->next = nullptr;
              churn(4);
              // Keep the list's shape: put the node back where it was.
              second->next = a.head->next;
              a.head->next = second;
            }
            break;
          case 2:  // a fresh list replaces an old one
            a = ListEntry{make_list(int64_t(rng() % 40) + 1), 0};
            for (Ref<Node> n = a.head; n; n = n->next) a.len++;
            break;
          case 3:  // trade with another goroutine (or this one)
            trade.send(a);
            a = trade.recv();
            break;
          default:
            churn(16);
            break;
        }
      }
      for (int i = 0; i < kSlots; i++) {
        if (!list_ok(table[size_t(i)].head, table[size_t(i)].len)) ok = false;
      }
      if (running.fetch_sub(1) == 1) stop = true;
      wg.done();
    });
  }
  wg.wait();
  return ok.load();
}

TEST(GC, MutatorsRearrangingTheGraphDuringMarkLoseNothing) {
  ProcsGuard procs(2);
  uint32_t before = rt::read_mem_stats().NumGC;
  EXPECT_TRUE(mutate_during_marking(3, 20000));
  EXPECT_GT(rt::read_mem_stats().NumGC, before + 3);
}

// The same under gccheckmark, in a fresh process (GODEBUG is read at
// start-up); exits 0 when every list survived and no check failed.
TEST(GCDeath, CheckmarkVerifiesEveryCycleOfMutatorsRearrangingTheGraph) {
  const char* debug = "gccheckmark=1";
  setenv("GODEBUG", debug, 1);
  EXPECT_EXIT(
      {
        rt::gomaxprocs(2);
        _exit(mutate_during_marking(3, 20000) ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
  unsetenv("GODEBUG");
}

// A reference stored into a black object behind the barrier's back (raw
// bytes over a Ref, which rt/gc.h forbids) to an object nothing else
// names: the collector misses it, and gccheckmark names the object.
__attribute__((noinline)) uintptr_t hidden_node() { return ~reinterpret_cast<uintptr_t>(new_node(7).get()); }

void store_behind_the_barrier() {
  rt::gomaxprocs(1);
  // Repeated until this goroutine sees the mark in progress (a small
  // heap may be marked before it runs again).
  for (int attempt = 0; attempt < 100; attempt++) {
    uintptr_t hidden = 0;
    in_frame([&] { hidden = hidden_node(); });  // white, and named by no word
    std::atomic<bool> done{false};
    rt::go([&] {
      rt::gc();
      done = true;
    });
    while (!rt::internal::gc_marking() && !done) rt::gosched();
    if (rt::internal::gc_marking()) {
      // No assist may end the mark before the store: pay ahead.
      rt::internal::getg()->gc_assist_bytes = int64_t(1) << 40;
      Ref<Node> holder = rt::make<Node>();  // allocated black while marking
      uintptr_t target = ~hidden;
      memcpy(reinterpret_cast<char*>(holder.get()) + offsetof(Node, next), &target, sizeof target);
      while (!done) rt::gosched();
      _exit(0);
    }
    while (!done) rt::gosched();
  }
  _exit(3);
}

TEST(GCDeath, CheckmarkNamesAnObjectStoredBehindTheBarrier) {
  setenv("GODEBUG", "gccheckmark=1", 1);
  EXPECT_EXIT(store_behind_the_barrier(), testing::ExitedWithCode(2),
              "fatal error: gccheckmark: object 0x[0-9a-f]+ is reachable but was not marked \\(reached from object "
              "0x[0-9a-f]+, word at 0x[0-9a-f]+\\)");
  unsetenv("GODEBUG");
}

// GODEBUG=gcstoptheworld=1: the whole mark inside one pause; the graph
// survives, and no goroutine runs while a cycle marks.
TEST(GCDeath, StopTheWorldModeMarksInsideOnePause) {
  setenv("GODEBUG", "gcstoptheworld=1", 1);
  EXPECT_EXIT(
      {
        rt::gomaxprocs(2);
        torture(100000, true);
        torture(100000, false);
        bool ok = !::testing::Test::HasFailure() && mutate_during_marking(2, 5000);
        // The mark ended inside sweep termination: no ragged barrier, no
        // mark-termination stop.
        rt::internal::GcCycleReport r = rt::internal::gc_last_cycle();
        ok = ok && r.ragged_rounds == 0 && r.mark_term_stops == 0;
        _exit(ok ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
  unsetenv("GODEBUG");
}

// The pacer: with a steady live heap and steady allocation, the heap at
// the end of each mark phase stays within 10% of that cycle's goal once
// the trigger has adapted.
TEST(GC, PacerKeepsTheSteadyStateHeapNearItsGoal) {
  ProcsGuard procs(2);
  Ref<Node> live = live_tree(16);  // about 6 MiB live
  std::vector<double> ratios;
  uint32_t seen = rt::internal::gc_last_cycle().num;
  while (ratios.size() < 30) {
    churn(2000);
    rt::internal::GcCycleReport r = rt::internal::gc_last_cycle();
    if (r.num == seen || r.forced) continue;
    seen = r.num;
    ratios.push_back(double(r.heap_at_mark_end) / double(r.goal));
  }
  std::vector<double> steady(ratios.begin() + 10, ratios.end());
  std::sort(steady.begin(), steady.end());
  double median = steady[steady.size() / 2];
  EXPECT_GT(median, 0.9) << "the mark ends well before the goal";
  EXPECT_LT(median, 1.1) << "the heap overshoots its goal";
  EXPECT_EQ(tree_count(live), (int64_t(1) << 17) - 1);
}

// Whether this process runs with GODEBUG=gcstoptheworld=N, N > 0 (the
// suite is also run so): each mark then ends inside sweep termination,
// with no ragged round and no mark-termination stop.
bool stoptheworld_mode() {
  const char* debug = getenv("GODEBUG");
  const char* key = debug != nullptr ? strstr(debug, "gcstoptheworld=") : nullptr;
  return key != nullptr && atoi(key + strlen("gcstoptheworld=")) > 0;
}

// The mark's scan work counts each byte once: with a tree of known size
// the only live heap, a cycle scans that tree's bytes plus the stacks and
// globals, whichever markers (workers, assists, the shared GcWork)
// scanned them. Assists pace themselves by this total: counted twice, it
// told them that most of the mark was done and the heap ran past its goal.
TEST(GC, ScanWorkCountsEachScannedByteOnce) {
  ProcsGuard procs(2);
  Ref<Node> live = live_tree(16);
  const uint64_t tree_bytes = ((uint64_t(1) << 17) - 1) * rt::internal::roundupsize(sizeof(Node));
  for (int i = 0; i < 3; i++) {
    live_heap();
    rt::internal::GcCycleReport r = rt::internal::gc_last_cycle();
    EXPECT_GE(r.scan_work, tree_bytes) << "cycle " << r.num;
    EXPECT_LT(r.scan_work, tree_bytes + tree_bytes / 4) << "cycle " << r.num;
  }
  EXPECT_EQ(tree_count(live), (int64_t(1) << 17) - 1);
}

// Assists park (Go's gcParkAssist). A long list has one grey object at a
// time, in the buffer of whoever marks it. With two goroutines allocating
// on both Ps, no P is idle, so no idle worker makes credit, and whenever
// one goroutine's assist holds the list's grey object, the other's finds
// no work and parks until scanning pays its debt (or the mark ends).
// Before parking, such debts were forgiven and the heap ran past the goal.
TEST(GC, AssistsFindingNoWorkParkUntilTheWorkersPay) {
  if (stoptheworld_mode()) GTEST_SKIP() << "gcstoptheworld marks inside one pause: no assist runs";
  ProcsGuard procs(2);
  Ref<Node> live;
  in_frame([&] { live = make_list(400000); });
  const uint32_t first = rt::internal::gc_last_cycle().num;
  std::atomic<uint32_t> parks{0};
  std::atomic<bool> done{false};
  rt::WaitGroup wg;
  for (int g = 0; g < 2; g++) {
    wg.add(1);
    rt::go([&, g] {
      uint32_t seen = rt::internal::gc_last_cycle().num;
      while (!done.load()) {
        churn(1000);
        rt::internal::GcCycleReport r = rt::internal::gc_last_cycle();
        if (r.num != seen) parks.fetch_add(g == 0 ? r.assist_parks : 0);
        seen = r.num;
        if (rt::internal::gc_last_cycle().num - first >= 12) done.store(true);
      }
      wg.done();
    });
  }
  wg.wait();
  EXPECT_GT(parks.load(), 0u) << "no assist parked in 12 cycles";
  EXPECT_TRUE(list_ok(live, 400000));
}

// ---- Mark termination: the ragged barrier, then one stop (mgc.cc) -----

// With nothing but the collector running, no barrier can grey an object
// after the ragged barrier found every P's buffer empty, so the one stop
// of the world that ends the mark is the only one: each cycle has at
// least one ragged round and exactly one mark-termination stop.
TEST(GC, MarkTerminationStopsTheWorldOnceWhenNothingMutates) {
  ProcsGuard procs(2);
  Ref<Node> live = live_tree(14);
  for (int i = 0; i < 10; i++) {
    churn(20000);
    rt::gc();
    rt::internal::GcCycleReport r = rt::internal::gc_last_cycle();
    ASSERT_TRUE(r.forced);
    if (stoptheworld_mode()) {
      EXPECT_EQ(r.ragged_rounds, 0u) << "cycle " << r.num;
      EXPECT_EQ(r.mark_term_stops, 0u) << "cycle " << r.num;
      continue;
    }
    EXPECT_GE(r.ragged_rounds, 1u) << "cycle " << r.num;
    EXPECT_EQ(r.mark_term_stops, 1u) << "cycle " << r.num;
  }
  EXPECT_EQ(tree_count(live), (int64_t(1) << 15) - 1);
}

// With goroutines rearranging the graph while collections mark it, a
// stop may find work a barrier greyed after its P's flush (rare), but no
// cycle stops the world for mark termination before a ragged round came
// back empty: every cycle seen has ragged_rounds >= mark_term_stops >= 1
// (both 0 under gcstoptheworld).
TEST(GC, EveryMarkTerminationStopFollowsAnEmptyRaggedRound) {
  ProcsGuard procs(2);
  std::atomic<bool> done{false};
  std::atomic<int> seen{0};
  std::atomic<int> bad{0};
  rt::WaitGroup wg;
  wg.add(1);
  const bool stw = stoptheworld_mode();
  rt::go([&] {
    uint32_t last = rt::internal::gc_last_cycle().num;
    while (!done.load()) {
      rt::internal::GcCycleReport r = rt::internal::gc_last_cycle();
      if (r.num != last) {
        last = r.num;
        seen++;
        if (stw ? r.mark_term_stops != 0 || r.ragged_rounds != 0
                : r.mark_term_stops < 1 || r.ragged_rounds < r.mark_term_stops) {
          bad++;
        }
      }
      rt::sleep(20'000);
    }
    wg.done();
  });
  // How many cycles end during one round of mutation depends on the
  // machine's speed and load (under ASan beside other tests: one). Rounds
  // go on until the watcher has seen enough, within a bound.
  const int64_t deadline = rt::nanotime() + 60'000'000'000;
  do {
    EXPECT_TRUE(mutate_during_marking(3, 20000));
  } while (seen.load() <= 3 && rt::nanotime() < deadline);
  done = true;
  wg.wait();
  EXPECT_GT(seen.load(), 3);
  EXPECT_EQ(bad.load(), 0) << "of " << seen.load() << " cycles";
}

// ---- GODEBUG and GOGC (each read at start-up: death tests re-execute) -----

// Runs body in a fresh process started with env NAME=VALUE; the process
// exits with body's result.
class EnvGuard {
 public:
  EnvGuard(const char* name, const char* value) : name_(name) {
    const char* old = getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv(name, value, 1);
  }
  ~EnvGuard() { had_ ? (void)setenv(name_, old_.c_str(), 1) : (void)unsetenv(name_); }

 private:
  const char* name_;
  bool had_;
  std::string old_;
};

TEST(GCDeath, GctracePrintsGosFormat) {
  EnvGuard env("GODEBUG", "gctrace=1");
  EXPECT_EXIT(
      {
        churn(100000);
        rt::gc();
        _exit(0);
      },
      testing::ExitedWithCode(0),
      "gc [0-9]+ @[0-9]+\\.[0-9]{3}s [0-9]+%: [0-9.]+\\+[0-9.]+\\+[0-9.]+ ms clock, "
      "[0-9.]+\\+[0-9.]+/[0-9.]+/[0-9.]+\\+[0-9.]+ ms cpu, [0-9]+->[0-9]+->[0-9]+ MB, [0-9]+ MB goal, "
      "[0-9]+ MB stacks, [0-9]+ MB globals, [0-9]+ P \\(forced\\)\n");
}

TEST(GCDeath, GctraceOffPrintsNothing) {
  EnvGuard env("GODEBUG", "gctrace=0");
  EXPECT_EXIT(
      {
        rt::gc();
        fprintf(stderr, "done\n");
        _exit(0);
      },
      testing::ExitedWithCode(0), "^done\n$");
}

// Exit code 0 when NextGC is want_goal after start-up and a 64 MB churn ran
// want_cycles collections or more (0: exactly none).
void check_gogc(uint64_t want_goal, bool want_cycles) {
  uint64_t goal = rt::read_mem_stats().NextGC;
  churn(1000000);
  uint32_t cycles = rt::read_mem_stats().NumGC;
  bool ok = goal == want_goal && (want_cycles ? cycles > 0 : cycles == 0);
  if (!ok) fprintf(stderr, "NextGC %llu NumGC %u\n", static_cast<unsigned long long>(goal), cycles);
  _exit(ok ? 0 : 1);
}

struct Blob {
  int64_t words[4];
};

// A write through a reference the collector could not see (here: a
// pointer hidden by complementing it) lands in a freed object; with
// clobberfree the next allocation of that slot dies naming it.
__attribute__((noinline)) uintptr_t hidden_blob() { return ~reinterpret_cast<uintptr_t>(rt::make<Blob>().get()); }

TEST(GCDeath, ClobberfreeCatchesAWriteAfterFree) {
  EnvGuard env("GODEBUG", "clobberfree=1");
  EXPECT_EXIT(
      {
        rt::gomaxprocs(1);
        // Live neighbours keep the victim's span in use (an empty span
        // would go back to the page heap instead of being clobbered).
        rt::Slice<Ref<Blob>> keep = rt::make_slice<Ref<Blob>>(200);
        uintptr_t hidden = 0;
        for (int i = 0; i < 100; i++) keep[size_t(i)] = rt::make<Blob>();
        in_frame([&] { hidden = hidden_blob(); });
        for (int i = 100; i < 200; i++) keep[size_t(i)] = rt::make<Blob>();
        rt::gc();
        reinterpret_cast<Blob*>(~hidden)->words[1] = 42;  // use after free
        for (int i = 0; i < 1000000; i++) rt::make<Blob>();
        _exit(0);
      },
      testing::ExitedWithCode(2), "fatal error: gc: freed object 0x[0-9a-f]+ \\(32 bytes\\) was written at offset 8 after it was freed");
}

TEST(GCDeath, ClobberfreeFindsNothingInACorrectProgram) {
  EnvGuard env("GODEBUG", "clobberfree=1");
  EXPECT_EXIT(
      {
        torture(100000, true);
        torture(100000, false);
        _exit(::testing::Test::HasFailure() ? 1 : 0);
      },
      testing::ExitedWithCode(0), "");
}

// GOGC=off with GOMEMLIMIT: collections run with a goal under the limit
// while a program churns through 20 times the limit (without them the
// heap would reach about 1 GB). The limit is soft: while GC time passes
// half the CPU, the limiter stops assists and the heap passes it by as
// much as the mark takes to finish, which on a loaded 2-core machine is
// tens of MB; the bound checked is twice the limit.
TEST(GCDeath, MemoryLimitDrivesCollectionWithGogcOff) {
  EnvGuard gogc("GOGC", "off");
  EnvGuard limit("GOMEMLIMIT", "48MiB");
  EXPECT_EXIT(
      {
        Ref<Node> live;
        int64_t counter = 0;
        live = make_tree(15, &counter);  // about 5 MiB live
        uint64_t peak = 0;
        for (int i = 0; i < 1000; i++) {
          churn(15000);  // about 1 MiB
          uint64_t h = rt::read_mem_stats().HeapAlloc;
          if (h > peak) peak = h;
        }
        rt::MemStats st = rt::read_mem_stats();
        bool ok = st.NumGC >= 5 && peak < (uint64_t(96) << 20) && st.NextGC != 0 && st.NextGC < (uint64_t(48) << 20) &&
                  tree_count(live) == (int64_t(1) << 16) - 1;
        if (!ok) {
          fprintf(stderr, "NumGC %u peak %llu NextGC %llu\n", st.NumGC, static_cast<unsigned long long>(peak),
                  static_cast<unsigned long long>(st.NextGC));
        }
        _exit(ok ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

TEST(GCDeath, GogcIsReadAsGoReadsIt) {
  {
    EnvGuard env("GOGC", "off");
    EXPECT_EXIT(check_gogc(0, false), testing::ExitedWithCode(0), "");
  }
  {
    EnvGuard env("GOGC", "-1");
    EXPECT_EXIT(check_gogc(0, false), testing::ExitedWithCode(0), "");
  }
  {
    EnvGuard env("GOGC", "50");
    EXPECT_EXIT(check_gogc(2 << 20, true), testing::ExitedWithCode(0), "");
  }
  for (const char* bad : {"abc", "", "100%", "1e3", "99999999999"}) {
    EnvGuard env("GOGC", bad);
    EXPECT_EXIT(check_gogc(4 << 20, true), testing::ExitedWithCode(0), "") << "GOGC=" << bad;
  }
}

}  // namespace

// Sweep pacing tests (runtime/gc/mgcsweep.cc): in a program that only
// allocates, the allocations' proportional sweep finishes each cycle's
// sweep before the next cycle starts (nothing is left for sweep
// termination), and no allocation sweeps more than its credit and the
// lazy-sweep and reclaim budgets. Assertions are on the sweeper's page
// counts, never on time. Built and run once per variant.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "rt/rt.h"
#include "runtime/gc/mgc.h"
#include "runtime/mem/mheap.h"
#include "runtime/testing/rt_test_util.h"

namespace {

using rt::internal::Sweeper;
using rt::testing::ProcsGuard;

constexpr size_t kSlots = 16384;
constexpr size_t kObjectBytes = 512;  // 8 MiB live: a 16 MiB goal, a runway of several MiB

uint64_t pages_by(const rt::internal::SweepStats& st, Sweeper who) { return st.pages[size_t(who)]; }

// gc_latency's shape: a ring whose slots get fresh noscan objects, so
// objects die in allocation order and the spans at the head of each
// cycle's sweep are live ones. Pushes until `cycles` heap-triggered
// collections have ended; checks the ring's contents as it goes.
void push_until(rt::Slice<rt::Slice<uint8_t>>& ring, size_t* next, uint32_t cycles) {
  uint32_t until = rt::read_mem_stats().NumGC + cycles;
  while (rt::read_mem_stats().NumGC < until) {
    for (int k = 0; k < 4096; k++, (*next)++) {
      size_t slot = *next % kSlots;
      if (*next >= kSlots) {
        const rt::Slice<uint8_t>& old = ring[slot];
        ASSERT_EQ(old[0], uint8_t(*next - kSlots));
        ASSERT_EQ(old[kObjectBytes - 1], uint8_t(*next - kSlots));
      }
      rt::Slice<uint8_t> b = rt::make_slice<uint8_t>(kObjectBytes);
      memset(b.data(), int(uint8_t(*next)), kObjectBytes);
      ring[slot] = b;
    }
  }
}

// With one P the background sweeper runs only when the allocating
// goroutine is preempted, so allocations find the sweep behind its pace
// and pay credit. With two, the sweeper has a CPU of its own and on an
// idle machine may keep ahead of the pace for whole cycles: whether credit
// is paid then depends on timing, and only the bounds are asserted.
void check_paced_sweep(bool expect_credit) {
  rt::gc();
  rt::Slice<rt::Slice<uint8_t>> ring = rt::make_slice<rt::Slice<uint8_t>>(kSlots);
  size_t next = 0;
  push_until(ring, &next, 3);  // the ring is full and the pacer settled
  if (::testing::Test::HasFatalFailure()) return;
  rt::internal::SweepStats a = rt::internal::gc_sweep_stats();
  rt::MemStats ma = rt::read_mem_stats();
  push_until(ring, &next, 4);
  if (::testing::Test::HasFatalFailure()) return;
  rt::internal::SweepStats b = rt::internal::gc_sweep_stats();
  rt::MemStats mb = rt::read_mem_stats();
  ASSERT_EQ(mb.NumForcedGC, ma.NumForcedGC) << "only heap-triggered cycles";

  if (expect_credit) {
    EXPECT_GT(pages_by(b, Sweeper::kCredit), pages_by(a, Sweeper::kCredit)) << "allocations paid no sweep credit";
  }
  EXPECT_EQ(pages_by(b, Sweeper::kFinish), pages_by(a, Sweeper::kFinish))
      << "a cycle started with spans left unswept";
  // One allocation sweeps its credit (the ratio x its one-page span,
  // rounded up), the lazy-sweep budget twice (cache_span looks at its
  // partial list before and after reclaiming) and the reclaim budget (2
  // pages for a one-page span), the credit and the reclaim each possibly
  // ending inside one more span; the largest span here is the ring's
  // backing array.
  const uint64_t ring_pages = (kSlots * sizeof(rt::Slice<uint8_t>) + rt::internal::kPageSize - 1) / rt::internal::kPageSize;
  const uint64_t credit = uint64_t(std::ceil(b.max_pages_per_byte * double(rt::internal::kPageSize)));
  const uint64_t bound = credit + 2 * rt::internal::kLazySweepPages + rt::internal::kReclaimSweepPages + 2 + 2 * ring_pages;
  EXPECT_LE(b.max_alloc_pages, bound) << "credit " << credit << " ring " << ring_pages;
  EXPECT_GT(b.max_pages_per_byte, 0.0);
}

TEST(SweepPacing, SweepEndsBeforeTheNextCycleAndAllocationsSweepBoundedSteps1P) {
  ProcsGuard procs(1);
  check_paced_sweep(true);
}

TEST(SweepPacing, SweepEndsBeforeTheNextCycleAndAllocationsSweepBoundedSteps2P) {
  ProcsGuard procs(2);
  check_paced_sweep(false);
}

}  // namespace

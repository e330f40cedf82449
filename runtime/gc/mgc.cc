// The collection cycle, the mark workers, assists and the pacer (Go's
// mgc.go and mgcpacer.go).
//
// A cycle (Go's gcStart ... gcMarkTermination), serialised by gc_sema,
// which is held from the start to the end of mark termination:
//   1. sweep termination: the goroutine that triggered the cycle sweeps
//      what the last cycle left (before any pause), then stops the world;
//      with the world stopped the sweep is finished (usually nothing is
//      left), every P's tiny block is dropped (a tiny block taken before
//      the mark would hold new objects in a white object), the mark phase
//      is prepared (mgcmark.cc: root jobs, the count of stacks to scan),
//      and the phase becomes kGCmark: the write barrier is on, new objects
//      are black, mark workers and assists may run. The world restarts
//      and the triggering goroutine scans its own stack.
//   2. concurrent mark: mark workers (below) and assists drain root jobs
//      and grey objects; write barriers and stack scans add grey objects.
//   3. mark termination, without draining (proposal 26903): a marker that
//      finds no work left and no other marker busy calls gc_mark_done.
//      First the ragged barrier (Go's gcMarkDone): for_each_p (proc.cc)
//      has every P flush its own buffered work to the global list at its
//      next safe point, the world running. If any P had handed work to
//      the global list since the last round (GcWork's flushed_work:
//      write barriers and allocation grey objects into the buffer of the
//      P they run on), or a marker is busy, or work is available, marking
//      goes on, with no pause at all: the markers drain it and come back.
//      Only a round that found nothing stops the world; with every P
//      stopped each P's buffer is flushed once more. Work found there (a
//      barrier greyed an object after its P's flush in the round) restarts
//      the world and marking goes on; this is rare, as in Go (whose
//      write-barrier buffer has the same window), so a cycle normally has
//      one mark-termination stop, and the pause stays a flush, never a
//      drain. Otherwise the phase ends: the barrier goes off, gccheckmark
//      verifies if asked, the finalizable channels the mark did not reach
//      are queued for their values' destructors and marked (chan.h; a
//      walk of that list, one mark-bit test per channel, in the pause),
//      every mcache gives back its spans, every in-use
//      span is queued for sweeping and becomes unswept (mgcsweep.cc), the
//      pacer sets the next trigger and goal, and the world restarts.
//   4. concurrent sweep (mgcsweep.cc); the background sweeper is readied.
// PauseNs of a cycle sums its stop-the-world pauses: sweep termination,
// every mark-termination stop that restarted, and the final one (Go
// counts the two pauses of a cycle the same way). A pause runs, as Go's
// pauseStart to startTheWorldWithSema's return, from the stop's start
// (the world semaphore taken) until every P with work is handed to an M
// again: the extra wakeup for queued work after that (wakep) is not part
// of it. GODEBUG=gcstoptheworld=1 runs the
// whole mark inside the sweep-termination pause instead (Go's knob, the
// stop-the-world ablation): the same root jobs and drain, one pause.
//
// Mark workers (Go's gcBgMarkWorker): one system goroutine per P, parked
// while idle. The scheduler runs a P's worker (gc_find_runnable_worker)
// as a dedicated worker (until no work is left or it is preempted) or a
// fractional one (until its P's share of mark-phase time exceeds the
// fractional goal, or for kFractionalSliceNs at most), and findrunnable
// runs it in idle mode (until the P has other work) when the P would
// otherwise go idle. Go's fractional worker runs until its share is 1.2x
// the goal: early in a mark that is milliseconds at a stretch (3-8 ms
// measured here), which the goroutines of its P wait out. Here its stints
// are short, and the share is kept by the mutator instead: a goroutine
// that takes a fresh span while its P's fractional worker is owed time
// (gc_yield_to_fractional_worker) yields at the end of that allocation,
// and schedule() runs the worker first. The background
// utilisation goal is 25% of GOMAXPROCS: round(0.25 x GOMAXPROCS)
// dedicated workers, and when that rounding is more than 30% off, one
// fewer and a fractional goal per P for the remainder (Go's startCycle;
// with GOMAXPROCS below 4 only fractional and idle workers run).
//
// Assists (Go's gcAssistAlloc): while marking, every allocation charges
// its bytes to the allocating goroutine's gc_assist_bytes. A goroutine in
// debt first takes background credit (scan work the workers did beyond
// what assists needed), then scans assist_ratio x debt bytes itself (at
// least kAssistMinWork), where assist_ratio is the scan work expected to
// be left per byte of heap left before the goal (Go 1.19's revise). The
// scan work expected is what the last cycle scanned (objects of scan
// classes, stacks, globals; the live heap of the last cycle before the
// first): noscan objects such as byte slices cost no scanning, and a heap
// of them made the live heap a 40-fold overestimate that put milliseconds
// of scanning into single allocations near the goal. Once the mark has
// scanned more than expected, the scannable heap grew: the expectation
// becomes the worst case (the whole heap at the mark's start) and the goal
// is stretched in proportion, up to (1 + GOGC/100) x the goal; past the
// goal, the goal is taken 10% further. A debt that neither credit nor its own
// scanning paid (no work was to be had: the grey objects sat in other Ps'
// buffers) parks the goroutine on the assist queue (Go's gcParkAssist),
// so the program cannot allocate past the goal faster than the workers
// mark. Mark workers hand on their scan work every kCreditSlack bytes
// (gc_flush_bg_credit): it pays the queued debts first, in queue order,
// readying each goroutine it pays off, and only the rest becomes credit.
// Mark termination readies the goroutines still queued. A goroutine is
// queued only while gc_blacken_enabled, tested under the queue's lock, so
// none is left behind when the mark ends.
//
// Pacer (Go 1.5-1.17's gcControllerState): the heap goal is heap_marked x
// (1 + GOGC/100), at least heapMinimum = 4 MiB x GOGC/100, where
// heap_marked is the live heap the last mark found. A cycle starts when
// heap_live reaches the trigger, heap_marked + trigger_fraction x (goal -
// heap_marked); trigger_fraction starts at 7/8 and after each cycle moves
// half way to where that cycle says it should have been (Go's endCycle:
// triggerError = goalGrowth - triggerRatio - u/0.30 x (actualGrowth -
// triggerRatio), u the mark phase's CPU utilisation), within Go 1.19's
// [45/64, 61/64]
// of the goal's growth. mallocgc tests the trigger whenever it takes a
// fresh span or allocates a large object, never on its fast path. GOGC is
// read as Go's readGOGC does: "off" disables, a number (a sign allowed)
// sets the percentage, a negative one disables, anything else is ignored.
// A memory limit (GOMEMLIMIT, rt::set_memory_limit) caps the goal at the
// limit less the memory that is not heap, less 3% (Go 1.19's
// memoryLimitHeapGoal), GOGC off or not; while the limit sets the goal,
// assists stop once GC time passes half the cycle's CPU time (Go's GC CPU
// limiter).
//
// Time trigger (Go's forcegchelper): a system goroutine parks until
// sysmon sees that no cycle ended within forcegc_period (2 minutes) and
// readies it; it then runs a cycle, unless GOGC is off. Such cycles are
// not "forced" in MemStats' sense (NumForcedGC counts rt::gc calls).
#include "runtime/gc/mgc.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "rt/gc.h"
#include "rt/mem.h"
#include "rt/rt.h"
#include "rt/sync.h"
#include "runtime/gc/mgcwork.h"
#include "runtime/mem/malloc.h"
#include "runtime/mem/mcache.h"
#include "runtime/mem/mheap.h"
#include "runtime/policy/runq.h"
#include "runtime/sched/runtime2.h"

extern "C" unsigned char rt_write_barrier_enabled;

namespace rt::internal {

std::atomic<uint32_t> gcphase{kGCoff};
std::atomic<bool> gc_blacken_enabled{false};

namespace {

constexpr uint64_t kDefaultHeapMinimum = uint64_t(4) << 20;
constexpr uint64_t kNoTrigger = ~uint64_t(0);
constexpr double kBackgroundUtilization = 0.25;  // Go's gcBackgroundUtilization
constexpr double kGoalUtilization = 0.30;        // Go's gcGoalUtilization
constexpr double kMaxUtilizationError = 0.3;
constexpr int64_t kAssistMinWork = 64 << 10;  // Go's gcOverAssistWork
constexpr int64_t kFractionalSliceNs = 500 * 1000;  // longest fractional stint
// The trigger's bounds, as fractions of the runway: Go 1.19's 45/64 and
// 61/64 (Go 1.17 allowed down to 0.6: a trigger that early lets more be
// allocated black during the mark, floating garbage the next goal grows by).
constexpr double kMinTriggerFraction = 45.0 / 64.0;
constexpr double kMaxTriggerFraction = 61.0 / 64.0;

std::atomic<uint32_t> start_sema{1};      // Go's work.startSema
std::atomic<uint32_t> gc_sema{1};         // Go's gcsema: start to end of mark termination
std::atomic<uint32_t> mark_done_sema{1};  // Go's work.markDoneSema
std::atomic<bool> gc_enabled{false};
std::atomic<uint32_t> work_cycles{0};  // cycles started (Go's work.cycles)

std::atomic<uint64_t> gc_trigger{kDefaultHeapMinimum};
std::atomic<uint64_t> gc_goal{kDefaultHeapMinimum};
// < 0: off. Written under gc_sema; sysmon reads it (the time trigger).
std::atomic<int32_t> gcpercent{100};
uint64_t heap_minimum = kDefaultHeapMinimum;
double trigger_fraction = 7.0 / 8.0;  // of the runway from heap_marked to the goal
bool limit_bound = false;             // the memory limit sets the goal (gc_sema)
uint64_t heap_marked = 0;             // live bytes the last mark found (gc_sema)
int32_t debug_gctrace = 0;
int32_t debug_gcstoptheworld = 0;
bool debug_gccheckmark = false;
int64_t runtime_init_time = 0;
std::atomic<int64_t> last_gc_nanotime{0};  // end of the last cycle

// Goroutines waiting for a mark phase to end (Go's work.sweepWaiters).
Lock waiters_lock{LockRank::kGcWaiters};
GQueue waiters;
constexpr const char kWaitReasonWaitForGCCycle[] = "wait for GC cycle";

// The force-GC helper: parked (idle) until sysmon readies it.
G* forcegc_g = nullptr;
std::atomic<bool> forcegc_idle{false};
constexpr const char kWaitReasonForceGCIdle[] = "force gc (idle)";

// MemStats' GC fields, under stats_lock.
SpinLock stats_lock{LockRank::kGcStats};
struct GcStats {
  uint64_t next_gc = kDefaultHeapMinimum;
  uint64_t last_gc = 0;
  uint32_t num_gc = 0;
  uint32_t num_forced_gc = 0;
  uint64_t pause_total_ns = 0;
  uint64_t pause_ns[256] = {};
  uint64_t pause_end[256] = {};
  uint64_t gc_cpu_ns = 0;  // pauses x GOMAXPROCS, plus worker and assist time
  GcCycleReport last{};
} stats;

// The cycle in progress (gc_sema).
struct Cycle {
  bool forced;
  int32_t procs;
  int64_t t_sweep_term, t_mark, t_mark_term, t_end;
  int64_t sweep_term_ns, mark_term_ns;
  std::atomic<int64_t> pause_ns;  // also read by the CPU limiter's assists (gc_cpu_limited)
  uint32_t ragged_rounds, mark_term_stops;
  uint64_t heap0, heap1, heap2, goal;
  MarkResult mark;
  std::atomic<int64_t> assist_ns, dedicated_ns, fractional_ns, idle_ns;
  std::atomic<uint32_t> assist_parks;
} cy;

// Mark workers, one per P id.
enum class WorkerMode { kDedicated, kFractional, kIdle };
struct Worker {
  G* g = nullptr;
  std::atomic<bool> parked{false};
  WorkerMode mode = WorkerMode::kIdle;
};
Worker workers[kMaxProcs];
std::atomic<uint32_t> worker_started{0};  // Go's work.bgMarkReady
std::atomic<int32_t> dedicated_left{0};
double fractional_goal = 0;
int64_t mark_start_time = 0;
std::atomic<int64_t> fractional_ns[kMaxProcs];
constexpr const char kWaitReasonGCWorkerIdle[] = "GC worker (idle)";

// Assists.
std::atomic<int64_t> bg_scan_credit{0};
uint64_t expected_scan_work = 0;
uint64_t last_scan_work = 0;  // what the last mark scanned (world stopped)
Lock assist_lock{LockRank::kGcAssists};
GQueue assist_queue;                       // parked assists, by assist_lock
std::atomic<int32_t> assists_parked{0};    // their number: the flush's fast path
constexpr const char kWaitReasonGCAssistWait[] = "GC assist wait";
void wake_all_assists();

// The goroutine running a stopped part of the cycle, and where it spilled
// its registers (run_stopped).
G* stopped_self = nullptr;
uintptr_t stopped_self_sp = 0;

uint64_t unix_nanos() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000 + uint64_t(ts.tv_nsec);
}

// Go's atoi32: an optional sign and decimal digits, within int32.
bool atoi32(const char* s, int32_t* out) {
  bool neg = false;
  if (*s == '-' || *s == '+') neg = *s++ == '-';
  if (*s == '\0') return false;
  int64_t v = 0;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9') return false;
    v = v * 10 + (*s - '0');
    if (v > int64_t(INT32_MAX) + (neg ? 1 : 0)) return false;
  }
  *out = int32_t(neg ? -v : v);
  return true;
}


// Go's setGCPercent (gc_sema held, or start-up).
void set_gcpercent(int32_t in) {
  gcpercent.store(in < 0 ? -1 : in, std::memory_order_relaxed);
  heap_minimum = in < 0 ? 0 : kDefaultHeapMinimum * uint64_t(in) / 100;
}

// The heap goal the memory limit allows (Go 1.19's memoryLimitHeapGoal):
// the limit less the memory that is not heap (stacks, span and cache
// metadata, arena maps), less 3% headroom; kNoTrigger without a limit.
uint64_t memory_limit_goal() {
  uint64_t limit = memory_limit();
  if (limit >= uint64_t(INT64_MAX)) return kNoTrigger;
  uint64_t nonheap = heap_counters.manual_pages.load(std::memory_order_relaxed) * kPageSize + span_alloc.sys_bytes() +
                     mcache_sys_bytes() + heap_counters.metadata_bytes.load(std::memory_order_relaxed);
  if (limit <= nonheap) return heap_marked;
  uint64_t goal = limit - nonheap;
  goal -= goal / 100 * 3;
  return goal < heap_marked ? heap_marked : goal;
}

// Publishes the goal and trigger that follow from heap_marked, gcpercent,
// the memory limit and trigger_fraction (Go's gcControllerCommit;
// gc_sema held, or start-up). The goal is the lower of GOGC's and the
// memory limit's; with GOGC off only the limit sets one.
void commit_goal() {
  uint64_t goal = kNoTrigger;
  int32_t percent = gcpercent.load(std::memory_order_relaxed);
  if (percent >= 0) {
    uint64_t m = heap_marked;
    goal = m + m / 100 * uint64_t(percent) + m % 100 * uint64_t(percent) / 100;
    if (goal < heap_minimum) goal = heap_minimum;
  }
  uint64_t limit_goal = memory_limit_goal();
  limit_bound = limit_goal < goal;
  if (limit_bound) goal = limit_goal;
  uint64_t trigger = kNoTrigger;
  if (goal != kNoTrigger) trigger = heap_marked + uint64_t(double(goal - heap_marked) * trigger_fraction);
  gc_goal.store(goal, std::memory_order_relaxed);
  gc_trigger.store(trigger, std::memory_order_relaxed);
  gc_pace_sweeper(trigger);
  stats_lock.lock();
  stats.next_gc = goal == kNoTrigger ? 0 : goal;
  stats_lock.unlock();
}

// Go's endCycle: moves trigger_fraction half way to the value this cycle
// says would have ended the mark at the goal.
void update_trigger_fraction() {
  int32_t percent = gcpercent.load(std::memory_order_relaxed);
  if (percent <= 0 || heap_marked == 0) return;
  double goal_growth = double(percent) / 100;
  double ratio = trigger_fraction * goal_growth;
  double actual_growth = double(cy.heap1) / double(heap_marked) - 1;
  double mark_ns = double(cy.t_mark_term - cy.t_mark);
  double utilization = kBackgroundUtilization;
  if (mark_ns > 0) utilization += double(cy.assist_ns.load()) / (mark_ns * double(cy.procs));
  double error = goal_growth - ratio - utilization / kGoalUtilization * (actual_growth - ratio);
  ratio += 0.5 * error;
  double f = ratio / goal_growth;
  trigger_fraction = f < kMinTriggerFraction ? kMinTriggerFraction : f > kMaxTriggerFraction ? kMaxTriggerFraction : f;
}

// Spills the callee-saved registers into this frame, so that a scan of
// the calling goroutine's stack from here up sees every reference its
// callers hold, then runs fn on g0 (the world is stopped, or the stack
// scanned is the caller's own).
__attribute__((noinline)) void run_stopped(void (*fn)(void*), void* arg) {
  __builtin_unwind_init();
  uintptr_t sp;
  asm volatile("movq %%rsp, %0" : "=r"(sp));
  stopped_self = getg();
  stopped_self_sp = sp;
  systemstack(fn, arg);
  asm volatile("" : : : "memory");
}

// The triggering goroutine, running again after sweep termination.
void scan_own_stack() {
  run_stopped([](void*) { gc_scan_self_at(stopped_self, stopped_self_sp); }, nullptr);
}

// Go's startCycle: the workers' shares for this mark phase.
void plan_workers(int32_t procs) {
  double total = double(procs) * kBackgroundUtilization;
  auto dedicated = int32_t(total + 0.5);
  double frac = 0;
  double err = double(dedicated) / total - 1;
  if (err < -kMaxUtilizationError || err > kMaxUtilizationError) {
    if (double(dedicated) > total) dedicated--;
    frac = (total - double(dedicated)) / double(procs);
  }
  dedicated_left.store(dedicated, std::memory_order_relaxed);
  fractional_goal = frac;
  for (int32_t i = 0; i < procs; i++) fractional_ns[i].store(0, std::memory_order_relaxed);
}

// World stopped: sweep termination and the start of the mark phase.
void start_mark_stopped(void*) {
  cy.procs = gomaxprocs.load();
  gc_finish_sweep();
  for (int32_t i = 0; i < cy.procs; i++) {
    MCache* c = allp[i]->mcache;
    if (c != nullptr) c->tiny = 0;
  }
  nop_mcache_lock();
  nop_mcache_locked()->tiny = 0;
  nop_mcache_unlock();
  work_cycles.fetch_add(1, std::memory_order_relaxed);
  gc_mark_prepare();
  plan_workers(cy.procs);
  bg_scan_credit.store(0, std::memory_order_relaxed);
  expected_scan_work = last_scan_work != 0         ? last_scan_work
                       : heap_marked > kDefaultHeapMinimum ? heap_marked
                                                           : kDefaultHeapMinimum;
  cy.heap0 = heap_counters.heap_live.load(std::memory_order_relaxed);
  gcphase.store(kGCmark, std::memory_order_release);
  __atomic_store_n(&rt_write_barrier_enabled, 1, __ATOMIC_RELEASE);
  gc_blacken_enabled.store(true, std::memory_order_release);
}

// World stopped, marking complete: mark termination (see the top).
void mark_termination_stopped() {
  gcphase.store(kGCmarktermination, std::memory_order_release);
  gc_blacken_enabled.store(false, std::memory_order_release);
  __atomic_store_n(&rt_write_barrier_enabled, 0, __ATOMIC_RELEASE);
  if (debug_gccheckmark) gc_checkmark(stopped_self, stopped_self_sp);
  gc_queue_dead_chans();
  cy.mark = gc_mark_result();
  last_scan_work = cy.mark.scan_work;
  cy.heap1 = heap_counters.heap_live.load(std::memory_order_relaxed);
  // GOMAXPROCS may have changed since sweep termination (cy.procs): every
  // P that exists now may hold spans.
  int32_t procs = gomaxprocs.load();
  for (int32_t i = 0; i < procs; i++) {
    if (allp[i]->mcache != nullptr) mcache_release_all(allp[i]->mcache);
  }
  nop_mcache_lock();
  mcache_release_all(nop_mcache_locked());
  gc_sweep_start();
  nop_mcache_unlock();
  update_trigger_fraction();
  cy.heap2 = cy.mark.marked_bytes;
  heap_marked = cy.heap2;
  heap_counters.heap_live.store(cy.heap2, std::memory_order_relaxed);
  commit_goal();
  gcphase.store(kGCoff, std::memory_order_release);
}

// World stopped (gcstoptheworld=1): the whole mark, then its termination.
void mark_all_stopped() {
  gc_scan_self_at(stopped_self, stopped_self_sp);
  GcWork* gcw = gcw_of(getm()->p);
  while (!gc_mark_complete_stopped()) gc_drain(gcw, DrainMode::kUntilStopped, 0, nullptr, nullptr);
  mark_termination_stopped();
}

// Go's fmtNSAsMS: whole milliseconds from 10 ms, else two significant
// digits with at most three decimals.
void put_ms(char** p, char* end, uint64_t ns) {
  if (ns >= 10000000) {
    *p += snprintf(*p, size_t(end - *p), "%llu", static_cast<unsigned long long>(ns / 1000000));
    return;
  }
  uint64_t x = ns / 1000;
  if (x == 0) {
    *p += snprintf(*p, size_t(end - *p), "0");
    return;
  }
  int dec = 3;
  while (x >= 100) {
    x /= 10;
    dec--;
  }
  uint64_t div = 1;
  for (int i = 0; i < dec; i++) div *= 10;
  *p += snprintf(*p, size_t(end - *p), "%llu.%0*llu", static_cast<unsigned long long>(x / div), dec,
                 static_cast<unsigned long long>(x % div));
}


void print_gctrace(uint32_t numgc, double cpu_fraction) {
  char buf[512];
  char* p = buf;
  char* end = buf + sizeof buf;
  uint64_t since_ms = uint64_t(cy.t_sweep_term - runtime_init_time) / 1000000;
  p += snprintf(p, size_t(end - p), "gc %u @%llu.%03llus %d%%: ", numgc, static_cast<unsigned long long>(since_ms / 1000),
                static_cast<unsigned long long>(since_ms % 1000), int(cpu_fraction * 100));
  uint64_t mark = uint64_t(cy.t_mark_term - cy.t_mark);
  put_ms(&p, end, uint64_t(cy.sweep_term_ns));
  p += snprintf(p, size_t(end - p), "+");
  put_ms(&p, end, mark);
  p += snprintf(p, size_t(end - p), "+");
  put_ms(&p, end, uint64_t(cy.mark_term_ns));
  // CPU: both pauses stop every P; the mark's time is split into
  // assists, dedicated and fractional workers, and idle workers.
  p += snprintf(p, size_t(end - p), " ms clock, ");
  put_ms(&p, end, uint64_t(cy.sweep_term_ns) * uint64_t(cy.procs));
  p += snprintf(p, size_t(end - p), "+");
  put_ms(&p, end, uint64_t(cy.assist_ns.load()));
  p += snprintf(p, size_t(end - p), "/");
  put_ms(&p, end, uint64_t(cy.dedicated_ns.load() + cy.fractional_ns.load()));
  p += snprintf(p, size_t(end - p), "/");
  put_ms(&p, end, uint64_t(cy.idle_ns.load()));
  p += snprintf(p, size_t(end - p), "+");
  put_ms(&p, end, uint64_t(cy.mark_term_ns) * uint64_t(cy.procs));
  p += snprintf(p, size_t(end - p), " ms cpu, %llu->%llu->%llu MB, %llu MB goal, %llu MB stacks, %llu MB globals, %d P%s\n",
                static_cast<unsigned long long>(cy.heap0 >> 20), static_cast<unsigned long long>(cy.heap1 >> 20),
                static_cast<unsigned long long>(cy.heap2 >> 20), static_cast<unsigned long long>(cy.goal >> 20),
                static_cast<unsigned long long>(cy.mark.stack_bytes >> 20),
                static_cast<unsigned long long>(cy.mark.globals_bytes >> 20), int(cy.procs),
                cy.forced ? " (forced)" : "");
  ssize_t ignored = write(2, buf, size_t(p - buf));
  (void)ignored;
}

// After the world restarts from mark termination: statistics, the
// gctrace line, the sweeper and the goroutines waiting for this mark.
void finish_cycle() {
  cy.t_end = nanotime();
  gc_wake_bgsweep();
  int64_t mark_cpu = cy.assist_ns.load() + cy.dedicated_ns.load() + cy.fractional_ns.load() + cy.idle_ns.load();
  stats_lock.lock();
  uint32_t i = stats.num_gc % 256;
  stats.pause_ns[i] = uint64_t(cy.pause_ns);
  stats.pause_end[i] = unix_nanos();
  stats.last_gc = stats.pause_end[i];
  last_gc_nanotime.store(cy.t_end, std::memory_order_relaxed);
  stats.pause_total_ns += uint64_t(cy.pause_ns);
  stats.gc_cpu_ns += uint64_t(cy.pause_ns) * uint64_t(cy.procs) + uint64_t(mark_cpu);
  stats.num_gc++;
  if (cy.forced) stats.num_forced_gc++;
  uint32_t numgc = stats.num_gc;
  stats.last = GcCycleReport{numgc, cy.forced, cy.heap1, cy.goal, cy.ragged_rounds, cy.mark_term_stops,
                             cy.mark.scan_work, cy.assist_parks.load()};
  double elapsed = double(cy.t_end - runtime_init_time) * double(cy.procs);
  double fraction = elapsed > 0 ? double(stats.gc_cpu_ns) / elapsed : 0;
  stats_lock.unlock();
  if (debug_gctrace > 0) print_gctrace(numgc, fraction);
  waiters_lock.lock();
  GQueue list = waiters;
  waiters = GQueue{};
  waiters_lock.unlock();
  int32_t n = 0;
  for (G* gp = list.head; gp != nullptr; gp = gp->schedlink) n++;
  injectglist(&list, n);
  semrelease(&gc_sema);
}

// Go's gcMarkDone: called by a marker that found no work left (see the
// top for the protocol).
void gc_mark_done() {
  for (;;) {
    semacquire(&mark_done_sema);
    if (!gc_marking() || !gc_no_drainers() || gc_mark_work_available(getm()->p)) {
      semrelease(&mark_done_sema);
      return;
    }
    // The ragged barrier: every P flushes its own work at a safe point.
    std::atomic<int32_t> flushed{0};
    for_each_p(
        [](P* p, void* a) {
          if (gc_flush_work(p)) static_cast<std::atomic<int32_t>*>(a)->fetch_add(1, std::memory_order_relaxed);
        },
        &flushed);
    if (gc_flush_work(nullptr)) flushed.fetch_add(1, std::memory_order_relaxed);
    cy.ragged_rounds++;
    if (flushed.load(std::memory_order_relaxed) != 0 || !gc_no_drainers() || gc_mark_work_available(nullptr)) {
      semrelease(&mark_done_sema);
      continue;  // work was handed on: marking goes on, or another round
    }
    int64_t t0 = stop_the_world("GC (mark termination)");
    cy.mark_term_stops++;
    struct Result {
      bool complete;
    } r{false};
    run_stopped(
        [](void* a) {
          auto* res = static_cast<Result*>(a);
          res->complete = gc_mark_complete_stopped();
          if (res->complete) {
            cy.t_mark_term = nanotime();
            mark_termination_stopped();
          }
        },
        &r);
    int64_t pause = start_the_world() - t0;
    cy.pause_ns += pause;
    if (r.complete) {
      // First the goroutines the mark held up (Go readies them inside
      // the pause): before the sweeper and the cycle's bookkeeping.
      wake_all_assists();
      cy.mark_term_ns = pause;
      finish_cycle();
      semrelease(&mark_done_sema);
      return;
    }
    // A write barrier greyed an object after its P's flush.
    semrelease(&mark_done_sema);
  }
}

// Whether a drain of worker mode mode should return now.
struct WorkerStop {
  WorkerMode mode;
  P* p;
  G* gp;
  int64_t start;
};

// A preemption request stops every mode: it may be a for_each_p round
// (the ragged barrier) waiting for this P.
bool worker_should_stop(void* arg) {
  auto* w = static_cast<WorkerStop*>(arg);
  if (sched.gcwaiting.load(std::memory_order_relaxed) || w->gp->preempt.load(std::memory_order_relaxed)) return true;
  switch (w->mode) {
    case WorkerMode::kDedicated:
      return false;
    case WorkerMode::kFractional: {
      // Go's pollFractionalWorkerExit: over 1.2x the goal since mark start.
      int64_t now = nanotime();
      int64_t delta = now - mark_start_time;
      if (delta <= 0) return true;
      if (now - w->start >= kFractionalSliceNs) return true;
      double self = double(fractional_ns[w->p->id].load(std::memory_order_relaxed) + (now - w->start));
      return self / double(delta) > 1.2 * fractional_goal;
    }
    case WorkerMode::kIdle:
      return !policy::runq::empty(w->p) || sched.runqsize.load(std::memory_order_relaxed) != 0;
  }
  return true;
}

bool park_worker(G*, void* arg) {
  static_cast<Worker*>(arg)->parked.store(true, std::memory_order_release);
  return true;
}

void run_worker(Worker* w) {
  M* mp = getm();
  P* p = mp->p;
  G* gp = getg();
  int64_t t0 = nanotime();
  WorkerStop stop{w->mode, p, gp, t0};
  mp->locks++;
  uint64_t did = gc_drain(gcw_of(p), DrainMode::kBackground, 0, worker_should_stop, &stop);
  mp->locks--;
  gp->preempt.store(false, std::memory_order_relaxed);
  if (did == 0 && w->mode == WorkerMode::kIdle) {
    // Only unscanned stacks of running goroutines are left: give them a
    // moment to stop instead of spinning on the retries.
    timespec ts{0, 50 * 1000};
    nanosleep(&ts, nullptr);
  }
  int64_t dt = nanotime() - t0;
  switch (w->mode) {
    case WorkerMode::kDedicated:
      cy.dedicated_ns.fetch_add(dt, std::memory_order_relaxed);
      dedicated_left.fetch_add(1, std::memory_order_relaxed);
      break;
    case WorkerMode::kFractional:
      cy.fractional_ns.fetch_add(dt, std::memory_order_relaxed);
      fractional_ns[p->id].fetch_add(dt, std::memory_order_relaxed);
      break;
    case WorkerMode::kIdle:
      cy.idle_ns.fetch_add(dt, std::memory_order_relaxed);
      break;
  }
  if (gc_no_drainers() && !gc_mark_work_available(p)) gc_mark_done();
}

void mark_worker_main(int32_t id) {
  Worker* w = &workers[id];
  w->g = getg();
  gc_register_mark_worker(w->g);
  semrelease(&worker_started);
  for (;;) {
    gopark(park_worker, w, kWaitReasonGCWorkerIdle);
    run_worker(w);
  }
}

// Go's gcBgMarkStartWorkers: one worker per P that has none yet, each
// waited for until it runs. A new worker usually needs a new M, and a stop
// of the world that came before that thread got going waited for it
// (0.2-0.8 ms of the first cycle's pause here).
void start_workers() {
  int32_t procs = gomaxprocs.load();
  for (int32_t i = 0; i < procs; i++) {
    if (workers[i].g != nullptr) continue;
    struct Arg {
      int32_t id;
    };
    void* mem;
    G* gp = newproc_begin(&mem, sizeof(Arg), alignof(Arg));
    new (mem) Arg{i};
    gp->issystem = true;
    workers[i].g = gp;
    newproc_end(
        gp, [](void* a) { mark_worker_main(static_cast<Arg*>(a)->id); }, [](void*) {});
    semacquire(&worker_started);
  }
}

// Whether p's fractional worker has had less than its share of the mark
// phase so far.
bool fractional_owed(const P* p) {
  if (fractional_goal <= 0) return false;
  int64_t delta = nanotime() - mark_start_time;
  return delta > 0 && double(fractional_ns[p->id].load(std::memory_order_relaxed)) / double(delta) < fractional_goal;
}

// Claims p's parked worker for mode and makes it runnable.
G* take_worker(P* p, WorkerMode mode) {
  Worker* w = &workers[p->id];
  bool parked = true;
  if (!w->parked.load(std::memory_order_relaxed) || !w->parked.compare_exchange_strong(parked, false)) return nullptr;
  w->mode = mode;
  casgstatus(w->g, kGwaiting, kGrunnable);
  return w->g;
}

// What a mark worker on p would do if it ran now: drain mark work, or
// only look for the end of marking (the last stack was claimed outside
// any drain, so no marker would; gc_take_check_done hands that to one
// worker), or nothing.
enum class WorkerTask { kNone, kDrain, kCheckDone };
WorkerTask worker_task(const P* p) {
  if (gc_mark_work_available(p)) return WorkerTask::kDrain;
  return gc_take_check_done() ? WorkerTask::kCheckDone : WorkerTask::kNone;
}

enum class Trigger { kHeap, kTime, kCycle };

// Go's gcTrigger.test: whether a cycle of this kind is still due (another
// may have started while this one waited). n: the cycle kCycle asks for.
bool trigger_due(Trigger kind, int64_t now, uint32_t n) {
  if (!gc_enabled.load(std::memory_order_relaxed) || gcphase.load(std::memory_order_acquire) != kGCoff) {
    return kind == Trigger::kCycle && int32_t(n - work_cycles.load()) > 0 && gc_enabled.load();
  }
  switch (kind) {
    case Trigger::kHeap:
      return heap_counters.heap_live.load(std::memory_order_relaxed) >= gc_trigger.load(std::memory_order_relaxed);
    case Trigger::kTime: {
      if (gcpercent.load(std::memory_order_relaxed) < 0) return false;
      int64_t last = last_gc_nanotime.load(std::memory_order_relaxed);
      return last != 0 && now - last > forcegc_period_ns.load(std::memory_order_relaxed);
    }
    case Trigger::kCycle:
      return int32_t(n - work_cycles.load()) > 0;
  }
  return false;
}

// Go's gcStart (see the top of the file).
void gc_start(Trigger kind, uint32_t n) {
  semacquire(&start_sema);
  if (!trigger_due(kind, nanotime(), n)) {
    semrelease(&start_sema);
    return;
  }
  // What the last cycle left to sweep, swept before the pause.
  gc_finish_sweep();
  semacquire(&gc_sema);
  if (kind == Trigger::kCycle && int32_t(n - work_cycles.load()) <= 0) {
    semrelease(&gc_sema);
    semrelease(&start_sema);
    return;
  }
  start_workers();
  cy.forced = kind == Trigger::kCycle;
  cy.assist_ns = cy.dedicated_ns = cy.fractional_ns = cy.idle_ns = 0;
  cy.pause_ns = cy.mark_term_ns = 0;
  cy.ragged_rounds = cy.mark_term_stops = 0;
  cy.assist_parks = 0;
  stats_lock.lock();
  cy.goal = stats.next_gc;
  stats_lock.unlock();
  cy.t_sweep_term = stop_the_world("GC (sweep termination)");
  if (debug_gcstoptheworld > 0) {
    run_stopped(
        [](void*) {
          start_mark_stopped(nullptr);
          cy.t_mark = nanotime();
          mark_start_time = cy.t_mark;
          gc_blacken_enabled.store(false, std::memory_order_release);
          mark_all_stopped();
          cy.t_mark_term = nanotime();
        },
        nullptr);
    cy.sweep_term_ns = start_the_world() - cy.t_sweep_term;
    cy.pause_ns = cy.sweep_term_ns;
    semrelease(&start_sema);
    finish_cycle();
    return;
  }
  systemstack(start_mark_stopped, nullptr);
  cy.t_mark = nanotime();
  mark_start_time = cy.t_mark;
  cy.sweep_term_ns = start_the_world() - cy.t_sweep_term;
  cy.pause_ns = cy.sweep_term_ns;
  scan_own_stack();
  semrelease(&start_sema);
}

// Go's gcWaitOnMark: returns once the mark phase of cycle n has ended.
bool park_waiter(G*, void*) {
  waiters_lock.unlock();
  return true;
}

void wait_on_mark(uint32_t n) {
  for (;;) {
    waiters_lock.lock();
    uint32_t marks = work_cycles.load();
    if (gcphase.load(std::memory_order_acquire) == kGCoff) marks++;  // that cycle's mark is over
    if (int32_t(marks - n) > 0) {
      waiters_lock.unlock();
      return;
    }
    waiters.push_back(getg());
    gopark(park_waiter, nullptr, kWaitReasonWaitForGCCycle);
  }
}

bool park_forcegc(G*, void*) {
  forcegc_idle.store(true, std::memory_order_release);
  return true;
}

void forcegc_helper() {
  forcegc_g = getg();
  for (;;) {
    gopark(park_forcegc, nullptr, kWaitReasonForceGCIdle);
    gc_start(Trigger::kTime, 0);
  }
}

}  // namespace

void gcinit() {
  runtime_init_time = nanotime();
  const char* env = getenv("GOGC");
  int32_t v = 100;
  if (env != nullptr && strcmp(env, "off") == 0) {
    v = -1;
  } else if (env != nullptr && !atoi32(env, &v)) {
    v = 100;
  }
  set_gcpercent(v);
  commit_goal();
  find_data_segments();
}

std::atomic<int64_t> forcegc_period_ns{int64_t(120) * 1000 * 1000 * 1000};
bool debug_clobberfree = false;

void gcenable() {
  // The helper is a runtime goroutine from its creation: not counted by
  // rt::num_goroutine, the deadlock check or goroutine dumps.
  void* mem;
  G* gp = newproc_begin(&mem, 0, 1);
  gp->issystem = true;
  newproc_end(
      gp, [](void*) { forcegc_helper(); }, [](void*) {});
  gc_start_bgsweep();
  commit_goal();  // GOMEMLIMIT is read after gcinit (mallocinit)
  gc_enabled.store(true, std::memory_order_release);
}

void gc_sysmon_check(int64_t now) {
  if (!forcegc_idle.load(std::memory_order_acquire) || !trigger_due(Trigger::kTime, now, 0)) return;
  bool idle = true;
  if (!forcegc_idle.compare_exchange_strong(idle, false)) return;
  GQueue list;
  list.push_back(forcegc_g);
  injectglist(&list, 1);
}

void set_debug_gctrace(int32_t v) { debug_gctrace = v; }
void set_debug_clobberfree(bool on) { debug_clobberfree = on; }
void set_debug_gcstoptheworld(int32_t v) { debug_gcstoptheworld = v; }
void set_debug_gccheckmark(bool on) { debug_gccheckmark = on; }

void clobber_object(uintptr_t base, size_t size) {
  auto* w = reinterpret_cast<uint64_t*>(base);
  for (size_t i = 0; i < size / 8; i++) w[i] = kClobberPattern;
}

void check_clobbered(uintptr_t base, size_t size) {
  const auto* w = reinterpret_cast<const uint64_t*>(base);
  for (size_t i = 0; i < size / 8; i++) {
    if (w[i] == kClobberPattern) continue;
    char buf[160];
    snprintf(buf, sizeof buf, "gc: freed object %#lx (%zu bytes) was written at offset %zu after it was freed (clobberfree)",
             static_cast<unsigned long>(base), size, i * 8);
    throw_fatal(buf);
  }
}

void gc_heap_trigger_check() {
  if (!gc_enabled.load(std::memory_order_relaxed) || gcphase.load(std::memory_order_relaxed) != kGCoff) return;
  if (heap_counters.heap_live.load(std::memory_order_relaxed) < gc_trigger.load(std::memory_order_relaxed)) return;
  M* mp = getm();
  if (mp == nullptr || mp->locks != 0 || mp->p == nullptr || getg() == mp->g0) return;
  gc_start(Trigger::kHeap, 0);
}

G* gc_find_runnable_worker(P* p) {
  if (!gc_blacken_enabled.load(std::memory_order_acquire) || !workers[p->id].parked.load(std::memory_order_relaxed)) {
    return nullptr;
  }
  switch (worker_task(p)) {
    case WorkerTask::kNone:
      return nullptr;
    case WorkerTask::kCheckDone:
      return take_worker(p, WorkerMode::kFractional);
    case WorkerTask::kDrain:
      break;
  }
  if (dedicated_left.load(std::memory_order_relaxed) > 0) {
    if (dedicated_left.fetch_sub(1, std::memory_order_acq_rel) > 0) {
      if (G* gp = take_worker(p, WorkerMode::kDedicated)) return gp;
    }
    dedicated_left.fetch_add(1, std::memory_order_acq_rel);
  }
  if (!fractional_owed(p)) return nullptr;
  return take_worker(p, WorkerMode::kFractional);
}

void gc_yield_to_fractional_worker(P* p) {
  if (!gc_blacken_enabled.load(std::memory_order_acquire) || !workers[p->id].parked.load(std::memory_order_relaxed) ||
      !fractional_owed(p) || !gc_mark_work_available(p)) {
    return;
  }
  getg()->preempt.store(true, std::memory_order_relaxed);
}

G* gc_find_idle_worker(P* p) {
  if (!gc_blacken_enabled.load(std::memory_order_acquire) || worker_task(p) == WorkerTask::kNone) return nullptr;
  return take_worker(p, WorkerMode::kIdle);
}

void gc_update_goal() {
  semacquire(&gc_sema);
  commit_goal();
  semrelease(&gc_sema);
  gc_heap_trigger_check();
}

void gc_mark_new_object_p(uintptr_t v, P* p) {
  if (p != nullptr) {
    gc_mark_new_object(v, gcw_of(p));
    return;
  }
  GcWork* gcw = nop_gcw_lock();
  gc_mark_new_object(v, gcw);
  nop_gcw_unlock();
}

// Go 1.19's GC CPU limiter, for collections the memory limit drives: once
// the cycle's GC time (pauses x GOMAXPROCS, assists, dedicated and
// fractional workers) passes half of its CPU time, assists stop and the
// heap may pass the limit rather than the program starve.
bool gc_cpu_limited() {
  if (!limit_bound) return false;
  double elapsed = double(nanotime() - cy.t_sweep_term) * double(cy.procs);
  double gc = double(cy.pause_ns) * double(cy.procs) + double(cy.assist_ns.load() + cy.dedicated_ns.load() + cy.fractional_ns.load());
  return elapsed > 0 && gc > 0.5 * elapsed;
}

namespace {

// Scan work per byte allocated: what is expected to be left to scan over
// the heap left before the goal (see the top of the file).
double assist_work_per_byte() {
  int64_t done = int64_t(gc_scan_work_done());
  int64_t expected = int64_t(expected_scan_work);
  int64_t goal = int64_t(gc_goal.load(std::memory_order_relaxed));
  int64_t live = int64_t(heap_counters.heap_live.load(std::memory_order_relaxed));
  int64_t start = int64_t(cy.heap0);
  int64_t worst = start > expected ? start : expected;
  if (done > expected) {
    int32_t percent = gcpercent.load(std::memory_order_relaxed);
    if (goal > start) {
      int64_t stretched = start + int64_t(double(goal - start) * double(worst) / double(expected));
      int64_t hard = percent > 0 ? goal + int64_t(double(goal) * percent / 100) : goal;
      goal = stretched < hard ? stretched : hard;
    }
    expected = worst;
  }
  if (live > goal) {
    goal += goal / 10;
    expected = worst;
  }
  int64_t left = expected - done;
  if (left < kAssistMinWork) left = kAssistMinWork;
  int64_t runway = goal - live;
  if (runway < kAssistMinWork) runway = kAssistMinWork;
  return double(left) / double(runway);
}

// One try at paying gp's debt: background credit first, then scanning
// (Go's gcAssistAlloc up to its park). True if the debt is paid.
bool pay_assist_debt(G* gp, M* mp) {
  double ratio = assist_work_per_byte();
  int64_t debt = -gp->gc_assist_bytes;
  int64_t want = int64_t(double(debt) * ratio);
  if (want < kAssistMinWork) want = kAssistMinWork;
  int64_t credit = bg_scan_credit.load(std::memory_order_relaxed);
  if (credit > 0) {
    int64_t steal = credit < want ? credit : want;
    bg_scan_credit.fetch_sub(steal, std::memory_order_relaxed);
    gp->gc_assist_bytes += int64_t(double(steal) / ratio) + 1;
    want -= steal;
    if (gp->gc_assist_bytes >= 0) return true;
  }
  int64_t t0 = nanotime();
  mp->locks++;
  uint64_t did = gc_drain(
      gcw_of(mp->p), DrainMode::kBudget, want,
      [](void*) { return sched.gcwaiting.load(std::memory_order_relaxed) != 0; }, nullptr);
  mp->locks--;
  gp->gc_assist_bytes += int64_t(double(did) / ratio);
  cy.assist_ns.fetch_add(nanotime() - t0, std::memory_order_relaxed);
  if (gc_no_drainers() && !gc_mark_work_available(mp->p)) gc_mark_done();
  return gp->gc_assist_bytes >= 0;
}

bool park_assist(G*, void*) {
  assist_lock.unlock();
  return true;
}

// Go's gcParkAssist: queues gp and parks it until a flush pays its debt
// or the mark ends. False, without parking, if credit came in since gp
// looked (gp pays with it).
bool park_assist_until_paid(G* gp) {
  assist_lock.lock();
  // The mark's end (wake_all_assists) takes the lock after turning
  // blackening off: a goroutine queued here is always readied.
  if (!gc_blacken_enabled.load(std::memory_order_acquire)) {
    assist_lock.unlock();
    return true;
  }
  if (bg_scan_credit.load(std::memory_order_relaxed) > 0) {
    assist_lock.unlock();
    return false;
  }
  assist_queue.push_back(gp);
  assists_parked.fetch_add(1, std::memory_order_relaxed);
  cy.assist_parks.fetch_add(1, std::memory_order_relaxed);
  gopark(park_assist, nullptr, kWaitReasonGCAssistWait);
  return true;
}

// Mark termination's wakeup of the assists still parked (Go's
// gcWakeAllAssists), once the world restarted with gc_blacken_enabled off:
// none can join.
void wake_all_assists() {
  assist_lock.lock();
  GQueue list = assist_queue;
  assist_queue = GQueue{};
  int32_t n = assists_parked.exchange(0, std::memory_order_relaxed);
  assist_lock.unlock();
  if (n > 0) injectglist(&list, n);
}

}  // namespace

void gc_flush_bg_credit(int64_t scan_work) {
  if (assists_parked.load(std::memory_order_relaxed) == 0) {
    // An assist queued after this load either sees the credit (it looks
    // under the lock before parking) or is paid by the next flush.
    bg_scan_credit.fetch_add(scan_work, std::memory_order_relaxed);
    return;
  }
  double work_per_byte = assist_work_per_byte();
  int64_t bytes = int64_t(double(scan_work) / work_per_byte);
  GQueue paid;
  int32_t npaid = 0;
  assist_lock.lock();
  while (bytes > 0) {
    G* gp = assist_queue.pop();
    if (gp == nullptr) break;
    if (bytes + gp->gc_assist_bytes >= 0) {
      bytes += gp->gc_assist_bytes;
      gp->gc_assist_bytes = 0;
      paid.push_back(gp);
      npaid++;
    } else {
      // Partly paid, and to the back of the queue, so that one large
      // debt does not hold up the small ones behind it (as Go does).
      gp->gc_assist_bytes += bytes;
      bytes = 0;
      assist_queue.push_back(gp);
    }
  }
  assists_parked.fetch_sub(npaid, std::memory_order_relaxed);
  if (bytes > 0) bg_scan_credit.fetch_add(int64_t(double(bytes) * work_per_byte), std::memory_order_relaxed);
  assist_lock.unlock();
  // To run queues, not runnext: a goroutine the worker pays must not take
  // the worker's fresh time slice ahead of the others (as in Go).
  if (npaid > 0) injectglist(&paid, npaid);
}

void gc_assist_alloc(G* gp) {
  M* mp = getm();
  if (mp->locks != 0 || mp->p == nullptr || gp == mp->g0) return;
  for (;;) {
    if (!gc_blacken_enabled.load(std::memory_order_acquire)) return;
    // Under the memory limit's CPU cap the debt is forgiven.
    if (gc_cpu_limited()) {
      gp->gc_assist_bytes = 0;
      return;
    }
    if (pay_assist_debt(gp, mp) || park_assist_until_paid(gp)) return;
  }
}

GcCycleReport gc_last_cycle() {
  stats_lock.lock();
  GcCycleReport r = stats.last;
  stats_lock.unlock();
  return r;
}

void gc_read_stats(MemStats* st) {
  stats_lock.lock();
  st->NextGC = stats.next_gc;
  st->LastGC = stats.last_gc;
  st->NumGC = stats.num_gc;
  st->NumForcedGC = stats.num_forced_gc;
  st->PauseTotalNs = stats.pause_total_ns;
  memcpy(st->PauseNs, stats.pause_ns, sizeof stats.pause_ns);
  memcpy(st->PauseEnd, stats.pause_end, sizeof stats.pause_end);
  uint64_t cpu = stats.gc_cpu_ns;
  stats_lock.unlock();
  double elapsed = double(nanotime() - runtime_init_time) * double(gomaxprocs.load());
  st->GCCPUFraction = elapsed > 0 ? double(cpu) / elapsed : 0;
}

void slice_index_panic(const char* what, size_t i, size_t n) {
  char buf[128];
  snprintf(buf, sizeof buf, what, i, n);
  throw rt::Panic(std::string("runtime error: ") + buf);
}

}  // namespace rt::internal

namespace rt {

int set_gc_percent(int percent) {
  using namespace internal;
  semacquire(&gc_sema);
  int old = gcpercent.load(std::memory_order_relaxed);
  set_gcpercent(percent);
  commit_goal();
  semrelease(&gc_sema);
  return old;
}

void gc() {
  using namespace internal;
  M* mp = getm();
  if (mp == nullptr || getg() == mp->g0) throw_fatal("rt::gc called off a goroutine");
  // Go's runtime.GC: wait for the cycle in progress, run a whole new one,
  // and sweep before returning.
  uint32_t n = work_cycles.load();
  wait_on_mark(n);
  gc_start(Trigger::kCycle, n + 1);
  wait_on_mark(n + 1);
  gc_finish_sweep();
}

}  // namespace rt

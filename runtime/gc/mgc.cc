// The collection cycle and its pacer (Go's mgc.go and mgcpacer.go), for a
// stop-the-world mark-sweep collector.
//
// A cycle, serialised by gc_sema (Go's gcsema) and run by the goroutine
// that triggered it:
//   1. stop the world (stop_the_world also takes worldsema);
//   2. sweep termination: every P's mcache and the P-less mcache give back
//      their spans (mcache_release_all), so allocBits are complete and no
//      span is half allocated; the P-less mcache stays locked until the end
//      of the cycle, so a thread without a P cannot allocate meanwhile;
//   3. mark (mgcmark.cc) from every root, on the g0 stack, the collecting
//      goroutine suspended at a point where its registers are spilled;
//   4. mark termination and sweep (mgcsweep.cc): every span swept with
//      this cycle's sweepgen, empty spans back to the page heap;
//   5. the pacer sets the next goal, the world restarts, statistics and
//      the gctrace line are published.
// The whole cycle is one pause; PauseNs records it from the stop request
// to the restart, as Go counts its pauses.
//
// Pacer (Go's gcControllerState without the concurrent-mark parts): the
// heap goal is heap_marked x (1 + GOGC/100), at least heapMinimum = 4 MiB
// x GOGC/100, where heap_marked is the live heap the last mark found.
// mallocgc tests heap_live against the trigger whenever it takes a fresh
// span or allocates a large object (never on its fast path); with the
// world stopped for the whole cycle the trigger is the goal itself. GOGC
// is read as Go's readGOGC does: "off" disables, a number (a sign allowed)
// sets the percentage, a negative one disables, anything else is ignored.
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
#include "runtime/mem/malloc.h"
#include "runtime/mem/mcache.h"
#include "runtime/mem/mheap.h"
#include "runtime/sched/runtime2.h"

namespace rt::internal {

namespace {

constexpr uint64_t kDefaultHeapMinimum = uint64_t(4) << 20;
constexpr uint64_t kNoTrigger = ~uint64_t(0);

std::atomic<uint32_t> gc_sema{1};
std::atomic<bool> gc_enabled{false};
std::atomic<uint64_t> gc_trigger{kDefaultHeapMinimum};
int32_t gcpercent = 100;   // < 0: off (gc_sema)
uint64_t heap_minimum = kDefaultHeapMinimum;
int32_t debug_gctrace = 0;
int64_t runtime_init_time = 0;
std::atomic<int64_t> last_gc_nanotime{0};  // end of the last cycle

// The force-GC helper: parked (idle) until sysmon readies it.
G* forcegc_g = nullptr;
std::atomic<bool> forcegc_idle{false};
constexpr const char kWaitReasonForceGCIdle[] = "force gc (idle)";
uint32_t sweepgen = 0;  // gc_sema
uint64_t heap_marked = 0;  // live bytes the last mark found (gc_sema)

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
  uint64_t gc_cpu_ns = 0;  // pause x GOMAXPROCS, summed
} stats;

// One cycle's record, filled as it goes.
struct Cycle {
  bool forced;
  G* self;
  uintptr_t self_sp;
  int32_t procs;
  int64_t t_sweep_term, t_mark, t_mark_term, t_end;
  uint64_t heap0, heap1, heap2, goal;
  MarkResult mark;
  SweepResult sweep;
};

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
  gcpercent = in < 0 ? -1 : in;
  heap_minimum = gcpercent < 0 ? 0 : kDefaultHeapMinimum * uint64_t(gcpercent) / 100;
}

// The goal after a mark that found `marked` live bytes.
uint64_t heap_goal(uint64_t marked) {
  if (gcpercent < 0) return kNoTrigger;
  uint64_t goal = marked + marked / 100 * uint64_t(gcpercent) + marked % 100 * uint64_t(gcpercent) / 100;
  return goal < heap_minimum ? heap_minimum : goal;
}

// Publishes the goal that follows from heap_marked and gcpercent (Go's
// gcControllerCommit; gc_sema held, or start-up).
void commit_goal() {
  uint64_t next = heap_goal(heap_marked);
  gc_trigger.store(next, std::memory_order_relaxed);
  stats_lock.lock();
  stats.next_gc = next == kNoTrigger ? 0 : next;
  stats_lock.unlock();
}

// Runs on g0 with the world stopped: sweep termination, mark, sweep.
void stopped_body(void* arg) {
  auto* cy = static_cast<Cycle*>(arg);
  int32_t procs = gomaxprocs.load();
  for (int32_t i = 0; i < procs; i++) {
    if (allp[i]->mcache != nullptr) mcache_release_all(allp[i]->mcache);
  }
  nop_mcache_lock();
  mcache_release_all(nop_mcache_locked());
  cy->heap0 = heap_counters.heap_live.load(std::memory_order_relaxed);
  cy->t_mark = nanotime();
  cy->mark = gc_mark(cy->self, cy->self_sp);
  cy->heap1 = heap_counters.heap_live.load(std::memory_order_relaxed);
  cy->t_mark_term = nanotime();
  cy->sweep = gc_sweep(++sweepgen);
  nop_mcache_unlock();
  cy->heap2 = cy->mark.marked_bytes;
  heap_marked = cy->heap2;
  heap_counters.heap_live.store(cy->heap2, std::memory_order_relaxed);
  commit_goal();
}

// Spills the callee-saved registers into this frame, so that the scan of
// the collecting goroutine's own stack from here up sees every reference
// its callers hold, then runs the stopped part on g0.
__attribute__((noinline)) void run_stopped(Cycle* cy) {
  __builtin_unwind_init();
  uintptr_t sp;
  asm volatile("movq %%rsp, %0" : "=r"(sp));
  cy->self_sp = sp;
  systemstack(stopped_body, cy);
  asm volatile("" : : : "memory");
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

void print_gctrace(const Cycle& cy, uint32_t numgc, double cpu_fraction) {
  char buf[512];
  char* p = buf;
  char* end = buf + sizeof buf;
  uint64_t since_ms = uint64_t(cy.t_sweep_term - runtime_init_time) / 1000000;
  p += snprintf(p, size_t(end - p), "gc %u @%llu.%03llus %d%%: ", numgc, static_cast<unsigned long long>(since_ms / 1000),
                static_cast<unsigned long long>(since_ms % 1000), int(cpu_fraction * 100));
  uint64_t sweep_term = uint64_t(cy.t_mark - cy.t_sweep_term);
  uint64_t mark = uint64_t(cy.t_mark_term - cy.t_mark);
  uint64_t mark_term = uint64_t(cy.t_end - cy.t_mark_term);
  put_ms(&p, end, sweep_term);
  p += snprintf(p, size_t(end - p), "+");
  put_ms(&p, end, mark);
  p += snprintf(p, size_t(end - p), "+");
  put_ms(&p, end, mark_term);
  // CPU: sweep termination and mark termination stop every P; the mark
  // itself runs on one (no assists, no idle workers while stopped).
  p += snprintf(p, size_t(end - p), " ms clock, ");
  put_ms(&p, end, sweep_term * uint64_t(cy.procs));
  p += snprintf(p, size_t(end - p), "+0/");
  put_ms(&p, end, mark);
  p += snprintf(p, size_t(end - p), "/0+");
  put_ms(&p, end, mark_term * uint64_t(cy.procs));
  p += snprintf(p, size_t(end - p), " ms cpu, %llu->%llu->%llu MB, %llu MB goal, %llu MB stacks, %llu MB globals, %d P%s\n",
                static_cast<unsigned long long>(cy.heap0 >> 20), static_cast<unsigned long long>(cy.heap1 >> 20),
                static_cast<unsigned long long>(cy.heap2 >> 20), static_cast<unsigned long long>(cy.goal >> 20),
                static_cast<unsigned long long>(cy.mark.stack_bytes >> 20),
                static_cast<unsigned long long>(cy.mark.globals_bytes >> 20), int(cy.procs),
                cy.forced ? " (forced)" : "");
  ssize_t ignored = write(2, buf, size_t(p - buf));
  (void)ignored;
}

enum class Trigger { kHeap, kTime, kUser };

// Go's gcTrigger.test: whether a cycle of this kind is still due (another
// may have run while this one waited for gc_sema).
bool trigger_due(Trigger kind, int64_t now) {
  switch (kind) {
    case Trigger::kHeap:
      return heap_counters.heap_live.load(std::memory_order_relaxed) >= gc_trigger.load(std::memory_order_relaxed);
    case Trigger::kTime: {
      if (gcpercent < 0) return false;
      int64_t last = last_gc_nanotime.load(std::memory_order_relaxed);
      return last != 0 && now - last > forcegc_period_ns.load(std::memory_order_relaxed);
    }
    case Trigger::kUser:
      return true;
  }
  return false;
}

// One cycle (see the top of the file).
void gc_cycle(Trigger kind) {
  semacquire(&gc_sema);
  if (!trigger_due(kind, nanotime())) {
    semrelease(&gc_sema);
    return;
  }
  bool forced = kind == Trigger::kUser;
  Cycle cy{};
  cy.forced = forced;
  cy.self = getg();
  cy.procs = gomaxprocs.load();
  stats_lock.lock();
  cy.goal = stats.next_gc;
  stats_lock.unlock();
  cy.t_sweep_term = nanotime();
  stop_the_world("GC");
  run_stopped(&cy);
  start_the_world();
  cy.t_end = nanotime();
  uint64_t pause = uint64_t(cy.t_end - cy.t_sweep_term);
  stats_lock.lock();
  uint32_t i = stats.num_gc % 256;
  stats.pause_ns[i] = pause;
  stats.pause_end[i] = unix_nanos();
  stats.last_gc = stats.pause_end[i];
  last_gc_nanotime.store(cy.t_end, std::memory_order_relaxed);
  stats.pause_total_ns += pause;
  stats.gc_cpu_ns += pause * uint64_t(cy.procs);
  stats.num_gc++;
  if (forced) stats.num_forced_gc++;
  uint32_t numgc = stats.num_gc;
  double elapsed = double(cy.t_end - runtime_init_time) * double(cy.procs);
  double fraction = elapsed > 0 ? double(stats.gc_cpu_ns) / elapsed : 0;
  stats_lock.unlock();
  if (debug_gctrace > 0) print_gctrace(cy, numgc, fraction);
  semrelease(&gc_sema);
}

bool park_forcegc(G*, void*) {
  forcegc_idle.store(true, std::memory_order_release);
  return true;
}

void forcegc_helper() {
  forcegc_g = getg();
  for (;;) {
    gopark(park_forcegc, nullptr, kWaitReasonForceGCIdle);
    gc_cycle(Trigger::kTime);
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
  gc_enabled.store(true, std::memory_order_release);
}

void gc_sysmon_check(int64_t now) {
  if (!forcegc_idle.load(std::memory_order_acquire) || !trigger_due(Trigger::kTime, now)) return;
  bool idle = true;
  if (!forcegc_idle.compare_exchange_strong(idle, false)) return;
  GQueue list;
  list.push_back(forcegc_g);
  injectglist(&list, 1);
}

void set_debug_gctrace(int32_t v) { debug_gctrace = v; }
void set_debug_clobberfree(bool on) { debug_clobberfree = on; }

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
  if (!gc_enabled.load(std::memory_order_relaxed)) return;
  if (heap_counters.heap_live.load(std::memory_order_relaxed) < gc_trigger.load(std::memory_order_relaxed)) return;
  M* mp = getm();
  if (mp == nullptr || mp->locks != 0 || mp->p == nullptr || getg() == mp->g0) return;
  gc_cycle(Trigger::kHeap);
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
  int old = gcpercent;
  set_gcpercent(percent);
  commit_goal();
  semrelease(&gc_sema);
  return old;
}

void gc() {
  internal::M* mp = internal::getm();
  if (mp == nullptr || internal::getg() == mp->g0) internal::throw_fatal("rt::gc called off a goroutine");
  internal::gc_cycle(internal::Trigger::kUser);
}

}  // namespace rt

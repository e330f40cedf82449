// The garbage collector's interface to the rest of the runtime (Go's
// mgc.go, mgcmark.go, mgcsweep.go, mgcpacer.go). The algorithm and its
// invariants are described at the top of mgc.cc (phases and pacer),
// mgcmark.cc (roots and marking) and mgcsweep.cc (sweeping).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime/mem/mspan.h"

namespace rt {
struct MemStats;
}

namespace rt::internal {

struct G;
struct P;

// Start-up: reads GOGC and finds the executable's data segments (gcinit,
// before any allocation); runtime_main enables collection once the
// scheduler runs (gcenable).
void gcinit();
void gcenable();
// GODEBUG=gctrace=N and clobberfree=1 (parsed with the other GODEBUG
// keys).
void set_debug_gctrace(int32_t v);
void set_debug_clobberfree(bool on);

// sysmon, every round: starts a collection when none ran for
// forcegc_period (Go's forcegcperiod, 2 minutes; white-box tests shorten
// it) by readying the parked force-GC helper goroutine.
void gc_sysmon_check(int64_t now);
extern std::atomic<int64_t> forcegc_period_ns;

// GODEBUG=clobberfree=1 (Go's key, with a check on reuse added): the
// sweeper and free_object fill every freed small object with
// kClobberPattern, fresh spans are filled too, and mallocgc verifies that
// a slot it hands out still holds nothing but the pattern: a write through
// a dangling reference (a Ref the collector could not see) then dies with
// the object's address instead of corrupting a later object silently.
extern bool debug_clobberfree;
constexpr uint64_t kClobberPattern = 0xdeadbeefdeadbeefULL;
void clobber_object(uintptr_t base, size_t size);
// Fatal unless [base, base + size) holds only kClobberPattern.
void check_clobbered(uintptr_t base, size_t size);

// mallocgc's slow path: a fresh span or a large object may have pushed
// heap_live past the trigger; starts a collection when it has, none is
// running, and the caller may start one (a goroutine holding no runtime
// lock).
void gc_heap_trigger_check();
// The memory limit changed (rt::set_memory_limit): recomputes the goal
// and trigger (a goroutine, which may start a collection).
void gc_update_goal();
// GODEBUG=gcstoptheworld=1 and gccheckmark=1.
void set_debug_gcstoptheworld(int32_t v);
void set_debug_gccheckmark(bool on);

// Fills the GC fields of MemStats.
void gc_read_stats(MemStats* st);

// The last cycle that ended, for tests: its number (NumGC), whether
// rt::gc forced it, the heap when its mark ended, its goal, the ragged
// barrier's rounds and the mark-termination stops of the world (the
// last one ends the mark; each earlier one found work and restarted;
// none with gcstoptheworld=1, which marks inside sweep termination), the
// mark's scan work (bytes of objects, stacks and globals scanned, the
// total assists pace themselves by) and how often an assist parked.
struct GcCycleReport {
  uint32_t num;
  bool forced;
  uint64_t heap_at_mark_end;
  uint64_t goal;
  uint32_t ragged_rounds;
  uint32_t mark_term_stops;
  uint64_t scan_work;
  uint32_t assist_parks;
};
GcCycleReport gc_last_cycle();

// ---- The scheduler's and the allocator's hooks -----------------------------

// Go's gcphase: kGCmark from the end of sweep termination to the start of
// mark termination (the write barrier is on and new objects are black);
// kGCmarktermination while the world is stopped to end marking.
enum GcPhase : uint32_t { kGCoff = 0, kGCmark = 1, kGCmarktermination = 2 };
extern std::atomic<uint32_t> gcphase;
inline bool gc_marking() { return gcphase.load(std::memory_order_relaxed) == kGCmark; }
// Set while mark workers and assists may mark (Go's gcBlackenEnabled).
extern std::atomic<bool> gc_blacken_enabled;

// schedule(), while gc_blacken_enabled: this P's mark worker, made
// runnable, if it should run now as a dedicated or fractional worker.
G* gc_find_runnable_worker(P* p);
// mallocgc, having taken a fresh span while marking: asks the running
// goroutine to yield (at mallocgc's safe point) if p's fractional worker
// is owed time, so that it runs in short stints (mgc.cc).
void gc_yield_to_fractional_worker(P* p);
// findrunnable, with nothing else to run: the mark worker in idle mode.
G* gc_find_idle_worker(P* p);
// execute(), while marking: scans gp's stack before it runs, unless it
// is scanned already in this cycle.
void gc_scan_before_execute(G* gp);
// procresize, world stopped: p goes away; its buffered mark work goes to
// the global lists (Go's p.destroy).
void gc_destroy_p(P* p);
// newproc_end, while marking: the new goroutine starts scanned; its
// closure is shaded.
void gc_newproc(G* gp);
// mallocgc, while marking: the new object at v (a tiny block for tiny
// allocations) is black; then the allocating goroutine pays its assist
// debt (gc_assist_alloc) when it has one.
void gc_mark_new_object_p(uintptr_t v, P* p);
void gc_assist_alloc(G* gp);

// ---- Shared by mgc.cc, mgcmark.cc, mbarrier.cc and mgcsweep.cc -------------

struct GcWork;

// What one mark phase found: bytes of marked objects, of the roots it
// scanned (for gctrace's "MB stacks" and "MB globals"), and of all it
// scanned.
struct MarkResult {
  uint64_t marked_bytes;
  uint64_t stack_bytes;
  uint64_t globals_bytes;
  uint64_t scan_work;
};

// Marking (mgcmark.cc). gc_mark_prepare runs with the world stopped at the
// start of a mark phase and returns its cycle number.
uint32_t gc_mark_prepare();
uint32_t gc_current_mark_cycle();
// Whether there is mark work: in p's GcWork (p may be null), the full
// list, root jobs or unscanned stacks.
bool gc_mark_work_available(const P* p);
enum class DrainMode {
  kUntilStopped,  // until no work is left or stop() says so
  kBudget,        // as kUntilStopped, or once budget bytes are scanned (assists)
  kBackground,    // as kUntilStopped, its work flushed as it goes to
                  // gc_flush_bg_credit (mark workers)
};
// Marks with gcw: root jobs, then grey objects, until the mode's end or
// no work is left; stop (may be null) is polled every few objects.
// Returns the bytes scanned.
uint64_t gc_drain(GcWork* gcw, DrainMode mode, int64_t budget, bool (*stop)(void*), void* stop_arg);
// Background scan work (bytes) done by a mark worker: pays the debts of
// parked assists first, readying those it pays off, and the rest becomes
// credit that assists take (Go's gcFlushBgCredit).
void gc_flush_bg_credit(int64_t scan_work);
// Whether no marker is inside gc_drain.
bool gc_no_drainers();
// Whether the last stack was scanned outside a drain since the last call
// (then a worker must run to look for the end of marking).
bool gc_take_check_done();
uint64_t gc_scan_work_done();
// Moves the grey objects of p's GcWork (p's owner, or p ownerless; null:
// the shared GcWork, locked here) to the full list and says whether that
// GcWork handed work to the full list since the last call (Go's
// flushedWork): the ragged barrier's step for one P.
bool gc_flush_work(const P* p);
// World stopped: flushes every GcWork to the full list and says whether
// marking is complete (no grey object, root job or stack left).
bool gc_mark_complete_stopped();
// World stopped, marking complete: queues the finalizable channels the
// mark did not reach for their values' destructors, marking them so that
// they survive this cycle (chan.h).
void gc_queue_dead_chans();
MarkResult gc_mark_result();
// The collecting goroutine scans its own stack from sp (its registers
// spilled above sp) unless it is scanned already.
void gc_scan_self_at(G* self, uintptr_t sp);
void gc_shade(uintptr_t w, GcWork* gcw);
void gc_mark_new_object(uintptr_t v, GcWork* gcw);
// free_object while marking: the freed object is not kept by its mark.
void gc_clear_mark(MSpan* s, size_t idx);
// The mark workers, whose stacks are not roots.
void gc_register_mark_worker(G* gp);
// GODEBUG=gccheckmark=1, world stopped at mark termination: marks again
// into separate bits and dies on an object reachable but not marked.
void gc_checkmark(G* self, uintptr_t self_sp);
// Records the data segments of the main executable (gcinit).
void find_data_segments();

// Sweeping (mgcsweep.cc).
struct MCentral;
// Mark termination, world stopped: the spans swept or allocated in this
// cycle become the next sweep's unswept set (heap_sweepgen += 2).
void gc_sweep_start();
// Sweeps every queued span and waits for sweepers inside one: sweep
// termination (world stopped) and rt::gc (before it returns).
void gc_finish_sweep();
// Readies the background sweeper (after the world restarts).
void gc_wake_bgsweep();
void gc_start_bgsweep();
// Before the heap takes npages fresh pages: sweeps queued spans until as
// many came free, none is left, or it swept its budget (Go's reclaim).
void gc_reclaim(size_t npages);
// Proportional sweep (Go's gcPaceSweeper), wherever the pacer commits a
// trigger (gc_sema held, or the world stopped): the pages left to sweep
// over the heap growth left before trigger set what each allocated byte
// pays in swept pages.
void gc_pace_sweeper(uint64_t trigger);
// Before an allocation takes a span of span_bytes (Go's
// deductSweepCredit): sweeps until the pages swept since the pacing cover
// heap_live + span_bytes at the ratio, less caller_sweep_pages the caller
// will sweep itself (a large object's reclaim).
void gc_deduct_sweep_credit(size_t span_bytes, size_t caller_sweep_pages);
// Around one allocation's sweeping (credit, lazy sweep, reclaim) on this
// thread: mark before, done after; the most pages one allocation swept is
// in gc_sweep_stats.
uint64_t gc_alloc_sweep_mark();
void gc_alloc_sweep_done(uint64_t mark);
// Who swept a span, for the statistics.
enum class Sweeper : uint8_t {
  kCredit,      // an allocation paying its sweep credit
  kLazy,        // mcentral, on its partial list
  kReclaim,     // before the heap takes fresh pages
  kBackground,  // the background sweeper
  kFinish,      // what was left at the next cycle's start or in rt::gc
  kExplicit,    // free_object
  kCount
};
struct SweepStats {
  uint64_t pages[size_t(Sweeper::kCount)];  // pages of the spans each swept, since start-up
  uint64_t max_alloc_pages;                 // the most pages one allocation swept
  double max_pages_per_byte;                // the highest sweep ratio the pacer set
};
SweepStats gc_sweep_stats();
// mheap_alloc: a new in-use span joins the swept set of this cycle.
void gc_span_allocated(MSpan* s);
// Sweeps s now unless it is swept (explicit frees).
void gc_ensure_swept(MSpan* s);
// Pages of unswept spans one cache_span sweeps on its partial list at most
// (attempts on spans that another sweeper holds count too).
constexpr size_t kLazySweepPages = 64;
// gc_reclaim(n) sweeps at most kReclaimSweepPages + 2n pages, plus the
// last span it started.
constexpr size_t kReclaimSweepPages = 64;
// cache_span, with c locked: sweeps s (on c's partial list) if unswept
// and this call claims it; c is locked again on return. False if s was
// not claimed (swept already, or another sweeper has it).
bool gc_sweep_in_mcentral(MSpan* s, MCentral* c);

}  // namespace rt::internal

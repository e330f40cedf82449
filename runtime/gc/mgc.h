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
// heap_live past the trigger; starts a collection when it has and the
// caller may run one (a goroutine holding no runtime lock).
void gc_heap_trigger_check();

// Fills the GC fields of MemStats.
void gc_read_stats(MemStats* st);

// ---- Shared by mgc.cc, mgcmark.cc and mgcsweep.cc ------------------------

// What one mark phase found: bytes of marked objects, and of the roots it
// scanned (for gctrace's "MB stacks" and "MB globals").
struct MarkResult {
  uint64_t marked_bytes;
  uint64_t stack_bytes;
  uint64_t globals_bytes;
};

// Marks everything reachable from the roots (the world is stopped and
// every mcache flushed). self is the goroutine that runs the collection,
// suspended at self_sp with its callee-saved registers spilled above it.
MarkResult gc_mark(G* self, uintptr_t self_sp);
// Records the data segments of the main executable (gcinit).
void find_data_segments();

// Sweeps every in-use span (the world is stopped, every mcache flushed):
// unmarked objects become free, gcmarkBits become allocBits, spans with no
// live object go back to the page allocator. Returns the bytes freed.
struct SweepResult {
  uint64_t freed_bytes;
  uint64_t freed_objects;
  uint64_t freed_spans;
};
SweepResult gc_sweep(uint32_t sweepgen);

}  // namespace rt::internal

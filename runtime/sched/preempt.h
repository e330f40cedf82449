// Signal-based asynchronous preemption (Go 1.14+): the machinery the
// `signal` preemption variant switches on. See preempt.cc for the design.
#pragma once

#include <cstdint>

#include "runtime/sched/runtime2.h"

// Bounds of the inline write-barrier sequences (rt/gc.h's ref_store):
// pairs of [first instruction, end), one per inlined copy, in link order
// (sorted by async_preempt_init); null without any.
extern "C" {
struct WriteBarrierSequence {
  uintptr_t lo, hi;
};
extern WriteBarrierSequence __start_rt_wb_sequences[] __attribute__((weak, visibility("hidden")));
extern WriteBarrierSequence __stop_rt_wb_sequences[] __attribute__((weak, visibility("hidden")));
}

namespace rt::internal {

// GODEBUG=asyncpreemptoff=1: no preemption signals are sent, and none is
// handled (a SIGURG then reaches whatever handler was there before).
extern bool debug_asyncpreemptoff;

// Installs the SIGURG handler and probes the extended-state size. Called
// once by the signal variant's init, before any M but m0 exists. Does
// nothing under asyncpreemptoff, without XSAVE, or in a ThreadSanitizer
// build (async preemption then stays off and requests are cooperative
// only).
void async_preempt_init();

// Sends SIGURG to mp's thread so that its goroutine, already flagged with
// gp->preempt, stops at the next async-safe instruction. At most one
// signal per M is in flight. Returns false if async preemption is off.
// Callable from any thread, including sysmon's.
bool preempt_m(M* mp);

// Why the handler left a goroutine running (the request stays set and is
// retried by the next sysmon tick or stop-the-world round).
enum PreemptRefusal : int {
  kRefusedNotUserG,  // the M ran g0 (scheduler, systemstack) or no goroutine
  kRefusedStale,     // the goroutine yielded already (gp->preempt cleared)
  kRefusedSyscall,   // in a system call (kGsyscall)
  kRefusedLocks,     // m->locks > 0: a runtime lock, mallocgc, newproc
  kRefusedRuntimePC, // PC inside the runtime's own code (rt_text)
  kRefusedForeignPC, // PC outside the executable's .text: libc, the vDSO, a PLT stub, ...
  kRefusedStack,     // not on the goroutine's stack, or too little room
  kRefusedSigmask,   // interrupted code had signals blocked (a signal handler)
  kNumPreemptRefusals,
};

// The part of the handler's decision that depends on the interrupted PC
// alone: kRefusedRuntimePC, kRefusedForeignPC, or -1 when a goroutine may
// be stopped there (user code in the executable's .text section).
int async_preempt_pc_refusal(uintptr_t pc);

struct AsyncPreemptStats {
  uint64_t signals_sent;
  uint64_t preemptions;  // goroutines stopped by the trampoline
  uint64_t refused[kNumPreemptRefusals];
};
AsyncPreemptStats async_preempt_stats();

}  // namespace rt::internal

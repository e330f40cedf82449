// Preemption policy: how a goroutine that has run too long, or that must
// stop for a stop-the-world, is made to give up its P.
//
// The core decides *when* to preempt (sysmon after 10 ms of one time slice,
// stop-the-world for every running P) and calls request(). The policy
// decides *how*:
//   - coop: set gp->preempt; the goroutine yields at its next safe point
//     (any runtime call, or rt::preempt_point() in a loop).
//   - signal: additionally interrupt the thread (SIGURG) so that a
//     goroutine with no safe points is stopped at an async-safe
//     instruction (runtime/sched/preempt.cc).
// A variant must never stop a goroutine while its M holds a runtime lock
// (m->locks > 0) or is inside the runtime; the safe-point check in the core
// enforces that for the cooperative flag.
#pragma once

namespace rt::internal {
struct G;
struct M;
}  // namespace rt::internal

namespace rt::policy::preempt {

// Human name of the linked variant ("coop", "signal").
const char* name();

// Called once per M when it starts, on that M's thread (signal variants
// install per-thread state here).
void init_thread(internal::M* mp);

// Called once at runtime start, before any M but m0 exists.
void init();

// Ask gp, currently running on mp, to stop at the next opportunity.
// Returns true if the request was delivered (it may still be ignored if the
// goroutine reaches no safe point).
bool request(internal::G* gp, internal::M* mp);

}  // namespace rt::policy::preempt

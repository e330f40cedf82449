// Run-queue policy: where runnable goroutines wait for a P.
//
// The scheduler core (sched/proc.cc) never names a variant. It calls the
// functions below, and exactly one variant library that defines them is
// linked into each binary (variants/runq/<name>/). Selection at link time
// means no indirect call on the hot path and lets the compiler see a plain
// function call.
//
// Every variant keeps Go's observable guarantees:
//   - a goroutine made runnable is eventually run (no loss, no duplication);
//   - the global queue (sched.runq, owned by the core) is always consulted
//     at least every 61st schedule() on each P, so a pair of goroutines
//     handing runnext back and forth cannot starve the rest;
//   - put/get/empty on a P are called only by the M that owns the P;
//     steal may be called by any M with a P of its own.
#pragma once

#include <atomic>
#include <cstdint>

namespace rt::internal {
struct G;
struct P;
}  // namespace rt::internal

namespace rt::policy {

// Per-P storage the core reserves for the run-queue policy. Variants that
// keep no per-P queue ignore it. The ring is a single-producer,
// multi-consumer queue: only the owner appends at tail, anyone may consume
// at head with a CAS (Go's runq in runtime2.go).
struct LocalRunq {
  static constexpr uint32_t kSize = 256;
  alignas(64) std::atomic<uint32_t> head{0};
  alignas(64) std::atomic<uint32_t> tail{0};
  std::atomic<internal::G*> runnext{nullptr};
  std::atomic<internal::G*> ring[kSize]{};
};

namespace runq {

// Human name of the linked variant ("global", "perp").
const char* name();

// Puts gp on p's queue. With next, gp should run next on this P (Go's
// runnext: a goroutine readied by the current one inherits its time
// slice); the variant may ignore the hint.
void put(internal::P* p, internal::G* gp, bool next);

// Takes the next goroutine for p, or nullptr. *inherit_time is set when the
// goroutine came from runnext and should not start a new time slice.
internal::G* get(internal::P* p, bool* inherit_time);

// Reports whether p's own queue holds no goroutine (racy when read by a
// non-owner; used for heuristics and the final "anything left?" check).
bool empty(internal::P* p);

// Number of goroutines waiting in p's own queue (approximate for non-owners).
uint32_t size(internal::P* p);

// Moves some goroutines from victim's queue to p's and returns one of them
// to run now, or nullptr. steal_runnext allows taking victim's runnext.
internal::G* steal(internal::P* p, internal::P* victim, bool steal_runnext);

// True if the variant keeps goroutines in per-P queues, so idle Ms must
// look at other Ps (work stealing) and a P with a non-empty local queue has
// work that nobody else can see without stealing.
bool has_local_queues();

}  // namespace runq
}  // namespace rt::policy

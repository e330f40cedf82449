// Runtime timers (Go 1.14+'s per-P timers, runtime/time.go): the interface
// between timers, the scheduler and the users of timers (sleep, rt::Timer,
// and later channel timers and netpoll deadlines). The algorithm, its
// states and invariants are described at the top of timer.cc.
//
// A RuntimeTimer is a plain struct owned by its user (on a goroutine stack,
// inside a heap object, ...). It must stay alive, at a fixed address, while
// it is pending (added and neither fired nor deleted) and while its f may
// still be running.
//
// Contract of the timer function f(arg, seq):
//   - it runs on an M that holds a P (the P whose heap held the timer, or
//     the P of an M that ran another P's overdue timers), on that M's g0
//     stack, from schedule() or findrunnable(); never on a goroutine
//     stack, never on sysmon;
//   - it runs with no timer lock held: it may add, modify or delete timers,
//     including its own;
//   - it must not block, park, or call anything that may (no rt::Mutex,
//     no channel operation that would block, no sleep); it may goready a
//     goroutine, start goroutines (rt::go) and take short runtime Locks;
//   - for a one-shot timer, f runs once per arming; the timer is no
//     longer pending when f starts, so deltimer from inside f (or
//     concurrently) returns false and modtimer re-arms it;
//   - for a periodic timer (period > 0), the timer stays pending while f
//     runs, with when already advanced past now;
//   - seq is passed back unchanged (netpoll uses it to ignore stale
//     deadlines); f may compare it to the current value under its own lock.
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/sched/runtime2.h"

namespace rt::internal {

// Wait reason of goroutines in rt::sleep (Go's waitReasonSleep).
inline constexpr const char kWaitReasonSleep[] = "sleep";

using TimerFunc = void (*)(void* arg, uintptr_t seq);

// Timer states. See timer.cc for the transitions.
enum TimerStatus : uint32_t {
  kTimerIdle = 0,       // in no heap: never added, fired (one-shot) or deleted
  kTimerModifying = 1,  // owned by one thread that is putting it into a heap
  kTimerWaiting = 2,    // in pp's heap at index i; guarded by pp->timers_lock
};

struct RuntimeTimer {
  int64_t when = 0;    // deadline (nanotime); > 0
  int64_t period = 0;  // > 0: fire again every period
  TimerFunc f = nullptr;
  void* arg = nullptr;
  uintptr_t seq = 0;
  int32_t i = -1;  // index in pp->timers while waiting
  std::atomic<P*> pp{nullptr};
  std::atomic<uint32_t> status{kTimerIdle};
};

constexpr int64_t kMaxWhen = INT64_MAX;

// nanotime() + ns, saturating at kMaxWhen (Go's when()). ns <= 0 is now.
int64_t when_after(int64_t ns);

// Adds t, whose when/period/f/arg/seq are set, to the current P's heap.
// t must be idle (throws otherwise). Must run with a P (goroutine or g0).
void addtimer(RuntimeTimer* t);
// Removes t if it is pending. Returns true if this call stopped it
// (Go's deltimer / Timer.Stop); false if it had fired, been deleted, or
// never been added. Does not wait for a running f.
bool deltimer(RuntimeTimer* t);
// Sets every field of t and makes it pending at when: in place if it is
// pending (on whatever P's heap), else on the current P's heap. Returns
// whether it was pending before the call.
bool modtimer(RuntimeTimer* t, int64_t when, int64_t period, TimerFunc f, void* arg, uintptr_t seq);
// modtimer keeping period, f, arg and seq (Go's resettimer).
bool resettimer(RuntimeTimer* t, int64_t when);

// Puts the calling goroutine to sleep for at least ns (Go's timeSleep).
// ns <= 0 returns at once. The goroutine parks with reason "sleep"; it
// costs no thread.
void time_sleep(int64_t ns);

// ---- Scheduler side ------------------------------------------------------

// Runs pp's timers that are due at now (0: read the clock only if some
// timer might be due). Cheap when nothing is due: one atomic load. Returns
// the time used (now, or the clock read) and sets *next to pp's earliest
// remaining deadline (0 if none) and *ran if some f ran. Needs a P on the
// current M; pp may be another P (its overdue timers run here).
int64_t check_timers(P* pp, int64_t now, int64_t* next = nullptr, bool* ran = nullptr);
// Runs the overdue timers of every P but self. Returns true if any ran.
bool run_other_timers(P* self);
// Earliest deadline over all Ps, 0 if no P has a timer (Go's
// nobarrierWakeTime / timeSleepUntil). Lock-free; usable without a P.
int64_t timers_next_when();
// Moves every timer of src into dst (Go's moveTimers). The world is
// stopped; src is being destroyed by procresize.
void move_timers(P* dst, P* src);
// sysmon's backstop (start an M for a timer overdue by over 1 ms while a P
// is idle). On by default; tests switch it off to check that the prompt
// paths (wake_netpoller, the blocking poll) work on their own.
extern std::atomic<bool> sysmon_timer_rescue;

}  // namespace rt::internal

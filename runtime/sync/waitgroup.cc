// sync.WaitGroup (Go's sync/waitgroup.go).
//
// state_ holds the counter in its high 32 bits and the number of waiters in
// its low 32 bits, so that add can see both in one atomic step. wait
// returns at once if the counter is 0; otherwise it counts itself as a
// waiter (CAS) and sleeps on sema_. The add that brings the counter to 0
// with waiters present resets the whole state to 0 and releases sema_ once
// per waiter.
//
// Rules (Go's), checked and reported as panics:
//   - the counter never goes below 0 ("sync: negative WaitGroup counter");
//   - an add that raises the counter from 0 must not race with wait: no
//     waiter may exist then, and nothing may change the state between the
//     add that reaches 0 and its reset ("sync: WaitGroup misuse: Add called
//     concurrently with Wait");
//   - the group is not reused (state changed) before every woken waiter has
//     returned ("sync: WaitGroup is reused before previous Wait has
//     returned").
#include <atomic>
#include <cstdint>

#include "rt/panic.h"
#include "rt/sync.h"
#include "runtime/sched/runtime2.h"
#include "runtime/sync/sema.h"

namespace rt {
namespace {

int32_t counter_of(uint64_t state) { return int32_t(uint32_t(state >> 32)); }
uint32_t waiters_of(uint64_t state) { return uint32_t(state); }

}  // namespace

void WaitGroup::add(int delta) {
  uint64_t counter_delta = uint64_t(int64_t(delta)) << 32;
  uint64_t state = state_.fetch_add(counter_delta) + counter_delta;
  int32_t counter = counter_of(state);
  uint32_t waiters = waiters_of(state);
  if (counter < 0) throw Panic("sync: negative WaitGroup counter");
  if (waiters != 0 && delta > 0 && counter == int32_t(delta)) {
    throw Panic("sync: WaitGroup misuse: Add called concurrently with Wait");
  }
  if (counter > 0 || waiters == 0) return;
  // The counter reached 0 with waiters present. No add may run now, and a
  // wait that sees counter 0 does not register, so the state cannot change;
  // check that cheaply.
  if (state_.load() != state) {
    throw Panic("sync: WaitGroup misuse: Add called concurrently with Wait");
  }
  state_.store(0);
  for (; waiters != 0; waiters--) semrelease(&sema_, false);
}

void WaitGroup::wait() {
  uint64_t state = state_.load();
  for (;;) {
    if (counter_of(state) == 0) return;
    if (state_.compare_exchange_weak(state, state + 1)) {
      internal::semacquire_reason(&sema_, false, internal::kWaitReasonWaitGroupWait);
      if (state_.load() != 0) {
        throw Panic("sync: WaitGroup is reused before previous Wait has returned");
      }
      return;
    }
  }
}

}  // namespace rt

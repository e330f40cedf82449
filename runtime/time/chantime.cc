// Channel timers: rt::after, rt::ChanTimer and rt::Ticker (Go's sendTime
// timers in time/sleep.go and time/tick.go).
//
// A ChanTimerState pairs a one-shot runtime timer with a channel of
// capacity 1. Its function sends nanotime() without blocking (a value
// nobody received makes the next one be dropped, as in Go) and, for a
// ticker, re-arms the timer for the next period, skipping periods that
// already passed.
//
// Lifetime: the state is reference counted, and a root registration
// keeps its channel alive as long as it lives. The handle (ChanTimer, Ticker)
// holds one reference and each arming of the timer holds one, which the
// timer function inherits when it fires. A ticker re-arms from inside its
// function, so the timer is never both pending and running for the same
// state; a lock and a `stopped` flag make stop() final even against a
// function that is about to re-arm.
#include <new>

#include "rt/panic.h"
#include "rt/time.h"
#include "runtime/mem/fixalloc.h"
#include "runtime/time/timer.h"

namespace rt::internal {

struct ChanTimerState {
  RuntimeTimer t;
  Chan<int64_t> c;
  RootNode root;  // keeps c alive while the state is (the timer may still send)
  int64_t period = 0;  // 0: one-shot
  Lock lock{LockRank::kChanTimer};  // orders stop/reset against the firing function
  bool stopped = false;
  std::atomic<int64_t> refs{0};
};

namespace {

FixAlloc<ChanTimerState> chantimer_alloc;

void chantimer_fire(void* arg, uintptr_t) {
  auto* st = static_cast<ChanTimerState*>(arg);
  st->lock.lock();
  if (st->stopped) {
    st->lock.unlock();
    chantimer_unref(st);
    return;
  }
  int64_t now = nanotime();
  try {
    st->c.try_send(now);
  } catch (const rt::Panic&) {
    // The user closed the timer's channel; Go's type system forbids that.
    // Nothing to deliver to, so the timer simply stops.
    st->stopped = true;
  }
  if (st->period > 0 && !st->stopped) {
    int64_t next = st->t.when + st->period;
    if (next <= now) next += (now - next) / st->period * st->period + st->period;
    // The fired timer is idle, so this arms it and our reference becomes
    // the armed one; if a reset armed it meanwhile, drop ours.
    bool was_pending = modtimer(&st->t, next, 0, chantimer_fire, st, 0);
    st->lock.unlock();
    if (was_pending) chantimer_unref(st);
    return;
  }
  st->lock.unlock();
  chantimer_unref(st);
}

}  // namespace

ChanTimerState* chantimer_start(int64_t ns, int64_t period, Chan<int64_t> c) {
  ChanTimerState* st = chantimer_alloc.alloc();
  st->c = c;
  st->root.slot = reinterpret_cast<void* const*>(st->c.slot());
  root_register(&st->root);
  st->period = period;
  st->refs.store(2, std::memory_order_relaxed);  // the handle and the arming
  st->t.when = when_after(ns);
  st->t.f = chantimer_fire;
  st->t.arg = st;
  addtimer(&st->t);
  return st;
}

bool chantimer_stop(ChanTimerState* st) {
  st->lock.lock();
  st->stopped = true;
  bool was_pending = deltimer(&st->t);
  st->lock.unlock();
  if (was_pending) chantimer_unref(st);
  return was_pending;
}

bool chantimer_reset(ChanTimerState* st, int64_t ns, int64_t period) {
  st->lock.lock();
  st->stopped = false;
  st->period = period;
  bool was_pending = modtimer(&st->t, when_after(ns), 0, chantimer_fire, st, 0);
  if (!was_pending) st->refs.fetch_add(1, std::memory_order_relaxed);  // a new arming
  st->lock.unlock();
  return was_pending;
}

void chantimer_unref(ChanTimerState* st) {
  if (st->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  root_unregister(&st->root);
  chantimer_alloc.free(st);
}

}  // namespace rt::internal

namespace rt {

ChanTimer::ChanTimer(int64_t ns) : c_(make_chan<int64_t>(1)), t_(internal::chantimer_start(ns, 0, c_)) {}

ChanTimer::~ChanTimer() {
  internal::chantimer_stop(t_);
  internal::chantimer_unref(t_);
}

bool ChanTimer::stop() { return internal::chantimer_stop(t_); }

bool ChanTimer::reset(int64_t ns) { return internal::chantimer_reset(t_, ns, 0); }

Chan<int64_t> after(int64_t ns) {
  Chan<int64_t> c = make_chan<int64_t>(1);
  internal::chantimer_unref(internal::chantimer_start(ns, 0, c));  // nobody keeps a handle
  return c;
}

Ticker::Ticker(int64_t period) {
  if (period <= 0) throw Panic("non-positive interval for NewTicker");
  c_ = make_chan<int64_t>(1);
  t_ = internal::chantimer_start(period, period, c_);
}

Ticker::~Ticker() {
  internal::chantimer_stop(t_);
  internal::chantimer_unref(t_);
}

void Ticker::stop() { internal::chantimer_stop(t_); }

void Ticker::reset(int64_t period) {
  if (period <= 0) throw Panic("non-positive interval for Ticker.Reset");
  internal::chantimer_reset(t_, period, period);
}

}  // namespace rt

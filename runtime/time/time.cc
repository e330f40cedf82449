// The public time API (rt/time.h) on top of runtime timers: rt::sleep and
// rt::after_func / rt::Timer (Go's time.AfterFunc).
//
// A FuncTimer is a runtime timer plus the user's function (a closure in
// the GC heap, held through a root registration), reference counted: one reference per rt::Timer handle and one held by the timer
// while it is armed. The armed reference changes hands exactly where the
// timer's pending state does, and each change is seen by one party only:
// after_func and a reset that finds the timer not pending take one; a stop
// that returns true drops it; when the timer fires, its function passes it
// to the goroutine it starts, which drops it after the user's function.
#include <utility>

#include "rt/rt.h"
#include "runtime/sched/runtime2.h"
#include "runtime/time/timer.h"

namespace rt {
namespace internal {

struct FuncTimer {
  RuntimeTimer t;
  void* fn;  // the user's closure, a GC object
  void (*call)(void*);
  void (*destroy)(void*);
  RootNode root;  // keeps fn, and what it captures, alive
  std::atomic<int64_t> refs{0};
};

void functimer_ref(FuncTimer* t) { t->refs.fetch_add(1, std::memory_order_relaxed); }

void functimer_unref(FuncTimer* t) {
  if (t->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  t->destroy(t->fn);
  root_unregister(&t->root);
  delete t;
}

namespace {
// The timer function (Go's goFunc): start the user's function in a new
// goroutine, which inherits the armed reference. Runs on g0, must not block.
void functimer_fire(void* arg, uintptr_t) {
  auto* ft = static_cast<FuncTimer*>(arg);
  rt::go([ft] {
    struct Unref {
      FuncTimer* ft;
      ~Unref() { functimer_unref(ft); }
    } unref{ft};
    ft->call(ft->fn);
  });
}
}  // namespace

FuncTimer* functimer_start(int64_t ns, void* fn, void (*call)(void*), void (*destroy)(void*)) {
  auto* ft = new FuncTimer;
  ft->fn = fn;
  ft->call = call;
  ft->destroy = destroy;
  ft->root.slot = &ft->fn;
  root_register(&ft->root);
  ft->refs.store(2, std::memory_order_relaxed);  // the handle and the armed timer
  ft->t.when = when_after(ns);
  ft->t.f = functimer_fire;
  ft->t.arg = ft;
  addtimer(&ft->t);
  return ft;
}

bool functimer_stop(FuncTimer* ft) {
  if (!deltimer(&ft->t)) return false;
  functimer_unref(ft);  // the armed reference; the caller's handle keeps it alive
  return true;
}

bool functimer_reset(FuncTimer* ft, int64_t ns) {
  functimer_ref(ft);  // for the arming, if the timer was not pending
  bool was_pending = resettimer(&ft->t, when_after(ns));
  if (was_pending) functimer_unref(ft);
  return was_pending;
}

}  // namespace internal

bool Timer::stop() {
  if (t_ == nullptr) throw Panic("time: Stop called on uninitialized Timer");
  return internal::functimer_stop(t_);
}

bool Timer::reset(int64_t ns) {
  if (t_ == nullptr) throw Panic("time: Reset called on uninitialized Timer");
  return internal::functimer_reset(t_, ns);
}

}  // namespace rt

// Runtime timers: per-P 4-ary heaps run by the scheduler (Go 1.14+,
// runtime/time.go), and the idle M that sleeps until the next timer.
//
// Algorithm. Every P owns a 4-ary min-heap of timers ordered by `when`,
// guarded by p->timers_lock, with two lock-free mirrors: num_timers and
// timer0_when (the root's deadline, 0 when empty). A timer is added to the
// heap of the P that adds it. The P's own M runs its due timers from
// schedule() and from the top of findrunnable() (check_timers: one atomic
// load when nothing is due). Before an M gives up its P it also runs the
// overdue timers of every other P (run_other_timers; Go does it while
// stealing), so a timer on a P whose M is busy, or on an idle P, is still
// run. A timer's function f runs with the heap lock released, on the M
// that found it due (contract in timer.h).
//
// States (a simpler scheme than Go 1.14's nine; justified below):
//   idle       in no heap. Only a thread that CASes idle -> modifying may
//              write its fields.
//   modifying  one thread owns it and is putting it into its P's heap (a
//              few instructions, with m->locks raised; others osyield).
//   waiting    in heap pp at index i. Whoever holds pp->timers_lock (and
//              has re-checked status == waiting && t->pp == pp under it)
//              owns it: it may change its fields and position, or remove it.
// Transitions: addtimer/modtimer idle -> modifying -> waiting (pp, i set
// under the heap lock before status); deltimer and the firing of a one-shot
// timer waiting -> idle under the heap lock (pp cleared first); modtimer of
// a waiting timer changes when/f/arg/seq in place and re-sifts it, on
// whatever P's heap it is. A periodic timer stays waiting while it fires.
// move_timers (procresize, world stopped) holds both heap locks and
// changes pp from the dying P to the survivor.
//
// Why not Go 1.14's lazy scheme. Go marks deleted/modified timers and lets
// the owning P fix its heap later (adjusttimers, cleantimers) so that a
// goroutine never takes another P's timers lock. Here deltimer and modtimer
// take the lock of the heap that holds the timer and fix it at once: one
// short critical section per operation, the same O(log4 n), no zombie
// timers (so num_timers is exact, which checkdead relies on), and far fewer
// states to reason about. The cost is contention on a remote P's timers
// lock when goroutines on several Ps stop/reset the same timers, which is
// rare. Linearization: stop/reset take effect at the moment they hold the
// timer's heap lock (or win the idle -> modifying CAS); a firing takes
// effect when the one-shot timer is removed, before f runs, so a stop that
// comes after the removal returns false even if f has not started yet
// (Go's semantics).
//
// Lock order: a thread holds at most one timers lock, except move_timers
// (world stopped) which holds dst's then src's. No timers lock is held while
// f runs or while an M sleeps. sched.lock is never taken under a timers lock.
// The netpoller holds a pollDesc's lock around its deadline timer's calls
// (pollDesc lock, then timers lock); a deadline f takes that lock with no
// timers lock held.
//
// The idle M. Timers have no thread of their own: when an M has released
// its P and found nothing to run, it blocks in the netpoller until the
// earliest timer of all Ps (netpoll_block, runtime/netpoll/netpoll.cc),
// then takes an idle P and runs the scheduler again, which runs the due
// timers. Every add and modify calls wake_netpoller(when) (Go's
// wakeNetPoller): it breaks that poll if it would sleep past the new
// timer, or starts an M (wakep) when nobody polls. The no-lost-wake-up
// argument is in netpoll.cc. sysmon is the backstop: a timer overdue by
// more than 1 ms with an idle P gets an M started for it.
//
// Deadlock detection. The polling M is not idle (as Go's M in netpoll is
// not), so checkdead cannot fire while it waits; checkdead also returns
// while any P has a timer. deltimer therefore breaks the poll when it
// removes the timer the poller may be waiting for: the poller looks again,
// finds nothing to wait for, and stops in stopm, whose checkdead then
// reports the deadlock.
#include "runtime/time/timer.h"

#include <climits>

#include "runtime/netpoll/netpoll.h"
#include "runtime/sched/lock.h"
#include "runtime/sched/runtime2.h"

namespace rt::internal {

namespace {

// ---- The heap (caller holds pp->timers_lock) -------------------------------

inline void heap_set(MetaVector<TimerHeapEntry>& h, size_t i, TimerHeapEntry e) {
  h[i] = e;
  e.t->i = int32_t(i);
}

void siftup(MetaVector<TimerHeapEntry>& h, size_t i) {
  TimerHeapEntry e = h[i];
  while (i > 0) {
    size_t parent = (i - 1) / 4;
    if (e.when >= h[parent].when) break;
    heap_set(h, i, h[parent]);
    i = parent;
  }
  heap_set(h, i, e);
}

void siftdown(MetaVector<TimerHeapEntry>& h, size_t i) {
  size_t n = h.size();
  TimerHeapEntry e = h[i];
  for (;;) {
    size_t c = 4 * i + 1;
    if (c >= n) break;
    size_t best = c;
    size_t end = c + 4 < n ? c + 4 : n;
    for (size_t k = c + 1; k < end; k++) {
      if (h[k].when < h[best].when) best = k;
    }
    if (h[best].when >= e.when) break;
    heap_set(h, i, h[best]);
    i = best;
  }
  heap_set(h, i, e);
}

// Restores the heap after the entry at i changed its deadline.
void heap_fix(MetaVector<TimerHeapEntry>& h, size_t i) {
  if (i > 0 && h[i].when < h[(i - 1) / 4].when)
    siftup(h, i);
  else
    siftdown(h, i);
}

void heap_remove(MetaVector<TimerHeapEntry>& h, size_t i) {
  size_t last = h.size() - 1;
  if (i != last) heap_set(h, i, h[last]);
  h.pop_back();
  if (i != last) heap_fix(h, i);
}

// Publishes the heap's size and root for lock-free readers.
inline void update_mirrors(P* pp) {
  pp->num_timers.store(int32_t(pp->timers.size()));
  pp->timer0_when.store(pp->timers.empty() ? 0 : pp->timers[0].when);
}

// Puts t (owned by the caller: status modifying) into pp's heap.
void heap_add(P* pp, RuntimeTimer* t) {
  LockGuard g(pp->timers_lock);
  pp->timers.push_back(TimerHeapEntry{t->when, t});
  t->i = int32_t(pp->timers.size() - 1);
  siftup(pp->timers, pp->timers.size() - 1);
  t->pp.store(pp);
  t->status.store(kTimerWaiting);
  update_mirrors(pp);
}

// Removes t, waiting at index t->i of pp's heap; the lock is held.
void heap_delete(P* pp, RuntimeTimer* t) {
  heap_remove(pp->timers, size_t(t->i));
  t->i = -1;
  t->pp.store(nullptr);
  t->status.store(kTimerIdle);
  update_mirrors(pp);
}

// Locks the heap holding t if t is waiting and returns that P (its lock
// held); returns nullptr if t is idle. Spins while t is being added.
P* lock_timer_heap(RuntimeTimer* t) {
  for (;;) {
    uint32_t s = t->status.load();
    if (s == kTimerIdle) return nullptr;
    if (s == kTimerModifying) {
      osyield();
      continue;
    }
    P* pp = t->pp.load();
    if (pp == nullptr) continue;  // being removed right now
    pp->timers_lock.lock();
    if (t->status.load() == kTimerWaiting && t->pp.load() == pp) return pp;
    pp->timers_lock.unlock();
  }
}

// Runs the root timer of pp, which is due at now. Called and returns with
// pp->timers_lock held; releases it while f runs.
void run_one_timer(P* pp, int64_t now) {
  RuntimeTimer* t = pp->timers[0].t;
  TimerFunc f = t->f;
  void* arg = t->arg;
  uintptr_t seq = t->seq;
  if (t->period > 0) {
    // Leave it in the heap, due at the first multiple of period after now.
    int64_t delta = now - t->when;
    int64_t steps = 1 + delta / t->period;
    int64_t when;
    if (__builtin_mul_overflow(steps, t->period, &when) || __builtin_add_overflow(when, t->when, &when)) {
      when = kMaxWhen;
    }
    t->when = when;
    pp->timers[0].when = when;
    siftdown(pp->timers, 0);
    update_mirrors(pp);
  } else {
    heap_delete(pp, t);
  }
  pp->timers_lock.unlock();
  f(arg, seq);
  pp->timers_lock.lock();
}

}  // namespace

std::atomic<bool> sysmon_timer_rescue{true};

int64_t when_after(int64_t ns) {
  int64_t now = nanotime();
  if (ns <= 0) return now;
  int64_t when;
  if (__builtin_add_overflow(now, ns, &when)) return kMaxWhen;
  return when;
}

// ---- Adding, deleting, modifying -----------------------------------------------

static bool modtimer_impl(RuntimeTimer* t, int64_t when, bool set_all, int64_t period, TimerFunc f, void* arg,
                          uintptr_t seq) {
  if (when <= 0) throw_fatal("timer when must be positive");
  if (period < 0) throw_fatal("timer period must be non-negative");
  M* mp = getm();
  mp->locks++;  // stay on this M and P until the timer is in a heap
  bool pending;
  for (;;) {
    if (P* pp = lock_timer_heap(t)) {
      // Pending: change it in place, wherever it is.
      t->when = when;
      if (set_all) {
        t->period = period;
        t->f = f;
        t->arg = arg;
        t->seq = seq;
      }
      pp->timers[size_t(t->i)].when = when;
      heap_fix(pp->timers, size_t(t->i));
      update_mirrors(pp);
      pp->timers_lock.unlock();
      pending = true;
      break;
    }
    uint32_t idle = kTimerIdle;
    if (t->status.compare_exchange_strong(idle, kTimerModifying)) {
      t->when = when;
      if (set_all) {
        t->period = period;
        t->f = f;
        t->arg = arg;
        t->seq = seq;
      }
      if (t->f == nullptr) throw_fatal("modtimer: timer without function");
      heap_add(mp->p, t);
      pending = false;
      break;
    }
  }
  mp->locks--;
  wake_netpoller(when);
  return pending;
}

void addtimer(RuntimeTimer* t) {
  if (t->when <= 0) throw_fatal("timer when must be positive");
  if (t->period < 0) throw_fatal("timer period must be non-negative");
  if (t->f == nullptr) throw_fatal("addtimer: timer without function");
  // Once in the heap the timer can run on another M at once, and a
  // sleeper's timer (in its frame) is gone when the sleeper returns.
  int64_t when = t->when;
  M* mp = getm();
  mp->locks++;
  uint32_t idle = kTimerIdle;
  if (!t->status.compare_exchange_strong(idle, kTimerModifying)) throw_fatal("addtimer called with initialized timer");
  heap_add(mp->p, t);
  mp->locks--;
  wake_netpoller(when);
}

bool deltimer(RuntimeTimer* t) {
  P* pp = lock_timer_heap(t);
  if (pp == nullptr) return false;
  int64_t when = t->when;
  heap_delete(pp, t);
  pp->timers_lock.unlock();
  // If the polling M waits for this timer, let it recompute its deadline:
  // with nothing left to wait for it must park in stopm, where checkdead
  // can see it, rather than sleep on (Go keeps deleted timers in the heap
  // instead).
  netpoll_timer_deleted(when);
  return true;
}

bool modtimer(RuntimeTimer* t, int64_t when, int64_t period, TimerFunc f, void* arg, uintptr_t seq) {
  if (f == nullptr) throw_fatal("modtimer: timer without function");
  return modtimer_impl(t, when, true, period, f, arg, seq);
}

bool resettimer(RuntimeTimer* t, int64_t when) { return modtimer_impl(t, when, false, 0, nullptr, nullptr, 0); }

// ---- Sleep -----------------------------------------------------------------------

static void ready_sleeper(void* arg, uintptr_t) { goready(static_cast<G*>(arg)); }

// gopark's unlock function: the timer is added only once the goroutine is
// marked waiting, so it cannot fire (on another M) before the park is done.
static bool sleep_park_commit(G*, void* arg) {
  addtimer(static_cast<RuntimeTimer*>(arg));
  return true;
}

void time_sleep(int64_t ns) {
  if (ns <= 0) return;
  G* gp = getg();
  if (gp == getm()->g0) throw_fatal("rt::sleep called on the scheduler stack");
  // The timer lives in this frame: the goroutine stays parked until f
  // readies it, and f's last access to the timer precedes that.
  RuntimeTimer t;
  t.when = when_after(ns);
  t.f = ready_sleeper;
  t.arg = gp;
  gopark(sleep_park_commit, &t, kWaitReasonSleep);
}

// ---- Scheduler side ----------------------------------------------------------------

int64_t check_timers(P* pp, int64_t now, int64_t* next, bool* ran) {
  int64_t first = pp->timer0_when.load(std::memory_order_acquire);
  if (first == 0) {
    if (next != nullptr) *next = 0;
    return now;
  }
  if (now == 0) now = nanotime();
  if (now < first) {
    if (next != nullptr) *next = first;
    return now;
  }
  pp->timers_lock.lock();
  while (!pp->timers.empty() && pp->timers[0].when <= now) {
    run_one_timer(pp, now);
    if (ran != nullptr) *ran = true;
  }
  if (next != nullptr) *next = pp->timers.empty() ? 0 : pp->timers[0].when;
  pp->timers_lock.unlock();
  return now;
}

bool run_other_timers(P* self) {
  bool ran = false;
  int64_t now = 0;
  int32_t procs = gomaxprocs.load();
  for (int32_t i = 0; i < procs; i++) {
    P* pp = allp[i];
    if (pp == nullptr || pp == self) continue;
    int64_t w = pp->timer0_when.load(std::memory_order_acquire);
    if (w == 0) continue;
    if (now == 0) now = nanotime();
    if (w <= now) now = check_timers(pp, now, nullptr, &ran);
  }
  return ran;
}

int64_t timers_next_when() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  int64_t next = 0;
  int32_t procs = gomaxprocs.load();
  for (int32_t i = 0; i < procs; i++) {
    P* pp = allp[i];
    if (pp == nullptr) continue;
    int64_t w = pp->timer0_when.load();
    if (w != 0 && (next == 0 || w < next)) next = w;
  }
  return next;
}

void move_timers(P* dst, P* src) {
  if (dst == src) return;
  LockGuard gd(dst->timers_lock);
  LockGuard gs(src->timers_lock);
  for (TimerHeapEntry e : src->timers) {
    RuntimeTimer* t = e.t;
    if (t->status.load() != kTimerWaiting || t->pp.load() != src) throw_fatal("move_timers: timer not on its P");
    dst->timers.push_back(e);
    t->i = int32_t(dst->timers.size() - 1);
    t->pp.store(dst);
    siftup(dst->timers, dst->timers.size() - 1);
  }
  src->timers.clear();
  update_mirrors(dst);
  update_mirrors(src);
}

}  // namespace rt::internal

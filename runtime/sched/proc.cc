// The goroutine scheduler (Go's proc.go).
//
// Algorithm. Each M (OS thread) that holds a P runs schedule() on its g0
// stack: every 61st tick it takes one goroutine from the global queue (so
// the global queue is never starved by local work), otherwise it asks the
// run-queue policy for the P's next goroutine, and otherwise calls
// findrunnable(), which looks at the local queue, the global queue, the
// network (a non-blocking poll), then steals from other Ps, and finally
// gives up its P and either blocks in the netpoller until the next timer or
// I/O event (one M at a time) or parks the M. It then
// execute()s the goroutine: switches to its stack with rt_gogo. A goroutine
// comes back to the scheduler through mcall(): gopark (blocking), gosched
// (yield), preemption, or goexit.
//
// Spinning. An M without work that looks for work is "spinning". wakep()
// starts one spinning M when a goroutine is made runnable, there is an idle
// P and nobody is spinning; a spinning M that finds work stops spinning and
// calls wakep() again. At most half of the busy Ps' worth of Ms spin. Just
// before an M parks it must drop spinning and re-check every queue, because
// a goroutine readied between its last check and the drop would otherwise
// wait for nobody (the "delicate dance" of findrunnable).
//
// Goroutines made ready from outside a P (the netpoller, sysmon's poll)
// enter through injectglist, which starts Ms for idle Ps.
//
// Safe-point functions (Go's forEachP). for_each_p(fn) runs fn once on
// every P without stopping the world: it flags every other P
// (run_safe_point_fn), asks the running ones to stop through the
// preemption policy, runs fn itself for the Ps on the idle list (under
// sched.lock, which keeps that list still) and for the Ps it takes from
// Ms in system calls (handoffp), and waits for the rest, re-asking every
// 100 us. A flagged P runs fn at its next safe point: the top of
// schedule() and of findrunnable(), and entersyscall before it leaves the
// P; findrunnable never puts a flagged P on the idle list, and handoffp
// runs fn for a flagged P it holds. The P's flag is cleared with a
// compare-and-swap by whoever runs fn, so each P runs it once. The
// collector's ragged barrier is built on it (mgc.cc's gc_mark_done).
//
// Deadlock. When an M goes idle with sched.lock held, checkdead() counts Ms
// that could still run something; if none can and no goroutine is
// runnable, no timer is pending and no goroutine waits for I/O, the
// program is deadlocked and dies with Go's message. sysmon is not counted:
// while it holds goroutines that it readied (taken from the poller, not
// yet on a run queue with Ms started), it counts itself as one more
// running M (incidlelocked(-1)), as Go's sysmon does around injectglist.
#include <cxxabi.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/include/rt/rt.h"
#include "runtime/gc/mgc.h"
#include "runtime/mem/fixalloc.h"
#include "runtime/mem/malloc.h"
#include "runtime/mem/mcache.h"
#include "runtime/netpoll/netpoll.h"
#include "runtime/obs/stats.h"
#include "runtime/policy/preempt.h"
#include "runtime/policy/runq.h"
#include "runtime/sched/faultinject.h"
#include "runtime/sched/runtime2.h"
#include "runtime/sched/signals.h"
#include "runtime/time/timer.h"

#ifdef RT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef RT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

extern "C" {
__attribute__((used)) __thread rt::internal::G* rt_tls_g;
__attribute__((used)) __thread rt::internal::M* rt_tls_m;
void rt_gogo(void* sp) __attribute__((noreturn));
void rt_mcall(void** save_sp, uintptr_t g0_top, void (*fn)(void*), void* arg);
void rt_systemstack_switch(uintptr_t g0_top, void (*fn)(void*), void* arg);
void rt_gostart();
}

namespace rt::internal {

Sched sched;
std::atomic<int32_t> gomaxprocs{0};
P* allp[kMaxProcs];
std::atomic<M*> allm{nullptr};
std::atomic<bool> main_started{false};

// allgs: every G ever created, append-only, for the deadlock check, the
// goroutine dump, the schedtrace and the collector's stack roots.
G** allgs = nullptr;
std::atomic<size_t> allglen{0};

namespace {

FixAlloc<G> galloc;
FixAlloc<M> malloc_m;
FixAlloc<P> palloc;

// allgs (runtime2.h) is reserved once, committed on demand.
constexpr size_t kMaxAllgs = size_t(1) << 26;
Lock allglock{LockRank::kAllg};

M m0;
G g0_main;
bool main_goexited = false;
size_t stack_size = 64 << 10;

constexpr int32_t kGfreeLocalMax = 64;
constexpr int32_t kGfreeBatch = 32;
constexpr uint32_t kGlobalRunqInterval = 61;

// ---- Thread state that follows a goroutine ----------------------------

struct EhGlobals {
  void* caught;
  unsigned int uncaught;
};

// __cxa_get_globals is declared __attribute__((const)); calling it through
// a function the compiler cannot analyse keeps it from reusing a pointer
// computed on another thread before a switch. Each M looks the two
// addresses up once, on its own thread (minit), and switches use those.
__attribute__((noinline, noipa)) EhGlobals* eh_globals() {
  return reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals());
}

__attribute__((noinline, noipa)) int* errno_location() { return &errno; }

inline void save_thread_state(M* mp, G* gp) {
  gp->saved_errno = *mp->errno_ptr;
  auto* eh = static_cast<EhGlobals*>(mp->eh_globals);
  gp->eh_caught = eh->caught;
  gp->eh_uncaught = eh->uncaught;
}

inline void restore_thread_state(M* mp, G* gp) {
  *mp->errno_ptr = gp->saved_errno;
  auto* eh = static_cast<EhGlobals*>(mp->eh_globals);
  eh->caught = gp->eh_caught;
  eh->uncaught = gp->eh_uncaught;
}

inline void check_stack_on_switch(G* gp) {
  if (gp->stack.lo == 0) return;
  uintptr_t sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (!stack_canary_ok(gp->stack) || sp < gp->stack.lo) report_stack_overflow(gp);
}

// ---- ASan fiber annotations ------------------------------------------

#ifdef RT_ASAN
inline void asan_start_switch(void** fake_save, uintptr_t lo, uintptr_t hi) {
  __sanitizer_start_switch_fiber(fake_save, reinterpret_cast<void*>(lo), hi - lo);
}
inline void asan_finish_switch(void* fake) { __sanitizer_finish_switch_fiber(fake, nullptr, nullptr); }
#else
inline void asan_start_switch(void**, uintptr_t, uintptr_t) {}
inline void asan_finish_switch(void*) {}
#endif

// ---- TSan fiber annotations ------------------------------------------
//
// Under ThreadSanitizer each goroutine is a TSan fiber. Every switch of stacks
// is announced just before it happens (gogo, mcall, systemstack, in both
// directions). A switch synchronises the two fibers (flags 0): they run one
// after the other on one thread, so what the first did happens before what
// the second does; goroutines on different Ms are ordered only by the
// runtime's own atomics and locks, which TSan sees.
//
// Creating and destroying a fiber maps and unmaps its shadow stack and
// trace, which costs far more than the goroutine it would serve: with a
// fresh fiber per g0 entry Chan.ProducersConsumersDeliverEachValueOnce
// took 219 s instead of 1.7 s, and with one per goroutine
// Sched.HundredThousandGoroutines took 84 s. So a fiber serves up to
// kTsanFiberUses uses before it is destroyed. g0's serves that many
// entries. A goroutine that exits leaves its fiber in its P's cache (up to
// TsanFiberCache::kSize of them; beyond, or used up, it is destroyed), and
// the next goroutine that P starts on a fresh stack takes it. The cache is
// per P, not per G: rt::go takes a new G whenever the free list is empty,
// as a burst of goroutines that have not yet run keeps it, and TSan allows
// only 8,128 threads and fibers alive at once.
//
// A use that ends for good leaves frames in TSan's shadow call stack that
// never return: a goroutine's exit leaves goroutine_main's (its stack is
// abandoned in goexit0), and each g0 entry leaves the g0 code that ran
// before (park_m or goexit0, schedule, execute, gogo), because mcall and
// systemstack start g0 afresh at the top of its stack. Fewer than 16 per
// use, so at most 16K of the shadow stack's 64K entries pile up before the
// fiber is replaced; a report lists them below its own frames, and names
// the fiber's creation, not the goroutine's, as its thread's start. Reuse
// orders nothing that was not ordered already: the goroutine that exited
// and the one that takes its fiber ran on one P one after the other, and
// the scheduler orders a P's uses by the switches on one M and by its
// locks and atomics between Ms. A goroutine's fiber is destroyed on g0
// (the goroutine is not running); g0's, once its last gogo has switched
// away from it. The thread's own fiber (its start, up to the first gogo)
// is never destroyed; an M that ends its thread switches back to it first.

#ifdef RT_TSAN
constexpr uint32_t kTsanFiberUses = 1024;
inline void tsan_switch_to(G* to) { __tsan_switch_to_fiber(to->tsan_fiber, 0); }
// gp (not running) starts on a fresh stack on p: a cached fiber or a new one.
inline void tsan_start_goroutine(P* p, G* gp) {
  TsanFiberCache& c = p->tsan_fibers;
  if (c.n > 0) {
    c.n--;
    gp->tsan_fiber = c.entries[c.n].fiber;
    gp->tsan_fiber_uses = c.entries[c.n].uses;
    return;
  }
  gp->tsan_fiber = __tsan_create_fiber(0);
  gp->tsan_fiber_uses = 0;
}
// gp's goroutine has exited (we run on g0): its fiber goes to p's cache,
// or is destroyed.
inline void tsan_end_goroutine(P* p, G* gp) {
  void* fiber = gp->tsan_fiber;
  gp->tsan_fiber = nullptr;
  TsanFiberCache& c = p->tsan_fibers;
  if (++gp->tsan_fiber_uses < kTsanFiberUses && c.n < TsanFiberCache::kSize) {
    c.entries[c.n++] = {fiber, gp->tsan_fiber_uses};
    return;
  }
  __tsan_destroy_fiber(fiber);
}
inline void tsan_fiber_cache_clear(P* p) {
  TsanFiberCache& c = p->tsan_fibers;
  while (c.n > 0) __tsan_destroy_fiber(c.entries[--c.n].fiber);
}
inline void tsan_thread_fiber(M* mp) { mp->g0->tsan_fiber = mp->tsan_thread_fiber = __tsan_get_current_fiber(); }
inline void tsan_enter_g0(M* mp) {
  G* g0 = mp->g0;
  void* old = g0->tsan_fiber;
  if (old != mp->tsan_thread_fiber && ++g0->tsan_fiber_uses < kTsanFiberUses) {
    __tsan_switch_to_fiber(old, 0);
    return;
  }
  g0->tsan_fiber_uses = 0;
  g0->tsan_fiber = __tsan_create_fiber(0);
  __tsan_switch_to_fiber(g0->tsan_fiber, 0);
  if (old != mp->tsan_thread_fiber) __tsan_destroy_fiber(old);
}
inline void tsan_exit_thread(M* mp) {
  void* last = mp->g0->tsan_fiber;
  __tsan_switch_to_fiber(mp->tsan_thread_fiber, 0);
  if (last != mp->tsan_thread_fiber) __tsan_destroy_fiber(last);
}
#else
inline void tsan_switch_to(G*) {}
inline void tsan_start_goroutine(P*, G*) {}
inline void tsan_end_goroutine(P*, G*) {}
inline void tsan_fiber_cache_clear(P*) {}
inline void tsan_thread_fiber(M*) {}
inline void tsan_enter_g0(M*) {}
inline void tsan_exit_thread(M*) {}
#endif

}  // namespace

// ---- Random numbers (per M, wyrand) -----------------------------------

uint32_t fastrand() {
  M* mp = getm();
  uint64_t* state = mp != nullptr ? &mp->fastrand : nullptr;
  static std::atomic<uint64_t> shared{0x9e3779b97f4a7c15ULL};
  uint64_t s = state != nullptr ? (*state += 0xa0761d6478bd642fULL)
                                : shared.fetch_add(0xa0761d6478bd642fULL, std::memory_order_relaxed);
  __uint128_t r = __uint128_t(s) * (s ^ 0xe7037ed1a0b428dbULL);
  return uint32_t(uint64_t(r >> 64) ^ uint64_t(r));
}

uint32_t fastrandn(uint32_t n) { return uint32_t((uint64_t(fastrand()) * n) >> 32); }

// ---- Status transitions ------------------------------------------------

void bad_gstatus(G* gp, uint32_t from, uint32_t to, uint32_t actual) {
  char buf[128];
  snprintf(buf, sizeof buf, "casgstatus: goroutine %lld from %u to %u, but status is %u",
           static_cast<long long>(gp->goid), from, to, actual);
  throw_fatal(buf);
}

// ---- allgs -----------------------------------------------------------------

static void allgadd(G* gp) {
  LockGuard g(allglock);
  size_t n = allglen.load(std::memory_order_relaxed);
  if (n == kMaxAllgs) throw_fatal("too many goroutines");
  allgs[n] = gp;
  allglen.store(n + 1, std::memory_order_release);
}

void for_each_g(void (*fn)(G*, void*), void* arg) {
  size_t n = allglen.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; i++) fn(allgs[i], arg);
}

// ---- P and M lists (sched.lock held) -------------------------------------

static void pidleput(P* p) {
  sched.lock.assert_held();
  if (!policy::runq::empty(p)) throw_fatal("pidleput: P has non-empty run queue");
  p->link = sched.pidle;
  sched.pidle = p;
  sched.npidle.fetch_add(1, std::memory_order_relaxed);
}

static P* pidleget() {
  sched.lock.assert_held();
  P* p = sched.pidle;
  if (p != nullptr) {
    sched.pidle = p->link;
    sched.npidle.fetch_sub(1, std::memory_order_relaxed);
  }
  return p;
}

static void checkdead();

static void mput(M* mp) {
  sched.lock.assert_held();
  mp->schedlink = sched.midle;
  sched.midle = mp;
  sched.nmidle++;
  checkdead();
}

static M* mget() {
  sched.lock.assert_held();
  M* mp = sched.midle;
  if (mp != nullptr) {
    sched.midle = mp->schedlink;
    sched.nmidle--;
  }
  return mp;
}

// ---- Global run queue (sched.lock held) ----------------------------------

// The lock orders the writers: a load and a store, not a locked add.
static void add_runqsize(int32_t n) {
  sched.runqsize.store(sched.runqsize.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

static int32_t peek_runqsize() { return sched.runqsize.load(std::memory_order_relaxed); }

void globrunqput(G* gp) {
  sched.lock.assert_held();
  sched.runq.push_back(gp);
  add_runqsize(1);
}

void globrunqputbatch(GQueue* batch, int32_t n) {
  sched.lock.assert_held();
  sched.runq.push_back_all(batch);
  add_runqsize(n);
}

static G* globrunqpop() {
  add_runqsize(-1);
  return sched.runq.pop();
}

// Takes a fair share of the global queue for p: returns one goroutine and
// moves up to max-1 more (at most half of p's local capacity) onto p's own
// queue. max == 0 means no limit beyond the fair share.
G* globrunqget(P* p, int32_t max) {
  sched.lock.assert_held();
  int32_t size = peek_runqsize();
  if (size == 0) return nullptr;
  int32_t n = size / gomaxprocs.load(std::memory_order_relaxed) + 1;
  if (n > size) n = size;
  if (max > 0 && n > max) n = max;
  if (!policy::runq::has_local_queues()) n = 1;
  if (n > int32_t(policy::LocalRunq::kSize / 2)) n = policy::LocalRunq::kSize / 2;
  G* gp = globrunqpop();
  for (n--; n > 0; n--) policy::runq::put(p, globrunqpop(), false);
  return gp;
}

void globrunqput_locked(G* gp) {
  LockGuard g(sched.lock);
  globrunqput(gp);
}

// ---- P ownership ----------------------------------------------------------

static void acquirep(P* p) {
  M* mp = getm();
  if (mp->p != nullptr || p->m != nullptr || p->status.load(std::memory_order_relaxed) != kPidle) {
    throw_fatal("acquirep: invalid P state");
  }
  mp->p = p;
  p->m = mp;
  p->status.store(kPrunning, std::memory_order_release);
}

static P* releasep() {
  M* mp = getm();
  P* p = mp->p;
  if (p == nullptr || p->m != mp || p->status.load(std::memory_order_relaxed) != kPrunning) {
    throw_fatal("releasep: invalid P state");
  }
  mp->p = nullptr;
  p->m = nullptr;
  p->status.store(kPidle, std::memory_order_release);
  return p;
}

// ---- M creation and parking ------------------------------------------------

static void mstart_on_thread(M* mp);

static void* thread_start(void* arg) {
  mstart_on_thread(static_cast<M*>(arg));
  return nullptr;
}

// mcount: the number of Ms, this one included (for the error message).
static void newm(bool spinning, P* p, int64_t id, int64_t mcount) {
  M* mp = malloc_m.alloc();
  mp->id = id;
  mp->g0 = galloc.alloc();
  mp->g0->m = mp;
  mp->g0->atomicstatus.store(kGrunning, std::memory_order_relaxed);
  mp->g0->issystem = true;
  mp->spinning = spinning;
  mp->nextp = p;
  mp->fastrand = uint64_t(nanotime()) * 0x9e3779b97f4a7c15ULL + uint64_t(id);
  M* head = allm.load(std::memory_order_relaxed);
  do {
    mp->alllink = head;
  } while (!allm.compare_exchange_weak(head, mp, std::memory_order_release));

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 512 << 10);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // New threads start with every signal blocked; minit unblocks the ones
  // the runtime handles once the thread is ready for them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = injected_fault(FaultPoint::kThreadCreate);
  if (err == 0) err = pthread_create(&mp->thread, &attr, thread_start, mp);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    // Go's newosproc.
    char buf[160];
    int n = snprintf(buf, sizeof buf, "runtime: failed to create new OS thread (have %lld already; errno=%d)\n",
                     static_cast<long long>(mcount), err);
    if (err == EAGAIN) {
      n += snprintf(buf + n, sizeof buf - size_t(n), "runtime: may need to increase max user processes (ulimit -u)\n");
    }
    ssize_t ignored = ::write(2, buf, size_t(n));
    (void)ignored;
    throw_fatal("newosproc");
  }
}

// Parks the current M until startm hands it a P.
static void stopm() {
  M* mp = getm();
  if (mp->locks != 0) throw_fatal("stopm holding locks");
  if (mp->p != nullptr) throw_fatal("stopm holding p");
  if (mp->spinning) throw_fatal("stopm spinning");
  {
    LockGuard g(sched.lock);
    mput(mp);
  }
  mp->blocked = true;
  mp->park.sleep();
  mp->park.clear();
  mp->blocked = false;
  acquirep(mp->nextp);
  mp->nextp = nullptr;
}

// Schedules some M to run p (or any idle P if p is nullptr). With spinning,
// the caller has already incremented nmspinning on the new M's behalf.
static void startm(P* p, bool spinning) {
  M* self = getm();
  if (self != nullptr) self->locks++;
  sched.lock.lock();
  if (p == nullptr) {
    p = pidleget();
    if (p == nullptr) {
      sched.lock.unlock();
      if (spinning && sched.nmspinning.fetch_sub(1) <= 0) throw_fatal("startm: negative nmspinning");
      if (self != nullptr) self->locks--;
      return;
    }
  }
  M* nmp = mget();
  if (nmp == nullptr) {
    int64_t id = sched.mnext++;
    int64_t mcount = sched.mnext - sched.nmfreed;
    if (mcount > sched.maxmcount) {
      char buf[96];
      snprintf(buf, sizeof buf, "thread exhaustion: program exceeds %d-thread limit", sched.maxmcount);
      throw_fatal(buf);
    }
    sched.lock.unlock();
    if (spinning) sched.spinning_wakeups.fetch_add(1, std::memory_order_relaxed);
    newm(spinning, p, id, mcount);
    if (self != nullptr) self->locks--;
    return;
  }
  sched.lock.unlock();
  if (nmp->spinning) throw_fatal("startm: m is spinning");
  if (nmp->nextp != nullptr) throw_fatal("startm: m has p");
  if (spinning) sched.spinning_wakeups.fetch_add(1, std::memory_order_relaxed);
  nmp->spinning = spinning;
  nmp->nextp = p;
  nmp->park.wakeup();
  if (self != nullptr) self->locks--;
}

// ---- Safe-point functions (for_each_p) -----------------------------------

// Runs the for_each_p round's function for p if p still owes it: by p's
// owner at a safe point, or by whoever holds p while it has no owner (an
// idle P or one taken from a system call; then with sched.lock held,
// locked). The compare-and-swap decides which of them runs it.
static void run_safe_point_fn(P* p, bool locked) {
  uint32_t owed = 1;
  if (!p->run_safe_point_fn.compare_exchange_strong(owed, 0, std::memory_order_acq_rel)) return;
  sched.safe_point_fn(p, sched.safe_point_arg);
  if (!locked) sched.lock.lock();
  if (--sched.safe_point_wait == 0) sched.safe_point_note.wakeup();
  if (!locked) sched.lock.unlock();
}

// The safe points' check: one relaxed load while no round is in progress.
static inline void safe_point(P* p) {
  if (__builtin_expect(p->run_safe_point_fn.load(std::memory_order_relaxed) != 0, 0)) run_safe_point_fn(p, false);
}

// Hands off p from an M that is blocking (syscall, locked wait) or gone.
static void handoffp(P* p) {
  if (!policy::runq::empty(p) || peek_runqsize() != 0) {
    startm(p, false);
    return;
  }
  if (sched.nmspinning.load() + sched.npidle.load() == 0) {
    int32_t zero = 0;
    if (sched.nmspinning.compare_exchange_strong(zero, 1)) {
      startm(p, true);
      return;
    }
  }
  sched.lock.lock();
  if (sched.gcwaiting.load()) {
    p->status.store(kPgcstop);
    if (--sched.stopwait == 0) sched.stopnote.wakeup();
    sched.lock.unlock();
    return;
  }
  // p is ownerless here: a for_each_p round it still owes is run now.
  run_safe_point_fn(p, true);
  if (peek_runqsize() != 0) {
    sched.lock.unlock();
    startm(p, false);
    return;
  }
  // Timers: a P with timers gets an M, which runs them or waits for them
  // in the netpoller when it finds nothing else to do.
  if (p->timer0_when.load() != 0) {
    sched.lock.unlock();
    startm(p, false);
    return;
  }
  // The last running P, and nobody polls the network: an M must, or the
  // goroutines waiting for I/O would wait for sysmon.
  if (sched.npidle.load() == gomaxprocs.load() - 1 && netpoll_lastpoll.load() != 0 &&
      netpoll_waiters.load() > 0) {
    sched.lock.unlock();
    startm(p, false);
    return;
  }
  pidleput(p);
  sched.lock.unlock();
}

void wakep() {
  if (sched.npidle.load(std::memory_order_relaxed) == 0) return;
  if (sched.nmspinning.load(std::memory_order_relaxed) != 0) return;
  int32_t zero = 0;
  if (!sched.nmspinning.compare_exchange_strong(zero, 1)) return;
  startm(nullptr, true);
}

static void resetspinning() {
  M* mp = getm();
  if (!mp->spinning) throw_fatal("resetspinning: not a spinning m");
  mp->spinning = false;
  if (sched.nmspinning.fetch_sub(1) <= 0) throw_fatal("findrunnable: negative nmspinning");
  wakep();
}

void incidlelocked(int32_t v) {
  LockGuard g(sched.lock);
  sched.nmidlelocked += v;
  if (v > 0) checkdead();
}

// Parks an M whose locked goroutine is not running until that goroutine is
// runnable again and handed back by startlockedm.
static void stoplockedm() {
  M* mp = getm();
  if (mp->lockedg == nullptr || mp->lockedg->lockedm != mp) throw_fatal("stoplockedm: inconsistent locking");
  if (mp->p != nullptr) handoffp(releasep());
  incidlelocked(1);
  mp->blocked = true;
  mp->park.sleep();
  mp->park.clear();
  mp->blocked = false;
  incidlelocked(-1);
  acquirep(mp->nextp);
  mp->nextp = nullptr;
}

// Hands our P to the M locked to gp and parks ourselves.
static void startlockedm(G* gp) {
  M* mp = gp->lockedm;
  if (mp == getm()) throw_fatal("startlockedm: locked to me");
  if (mp->nextp != nullptr) throw_fatal("startlockedm: m has p");
  incidlelocked(-1);
  mp->nextp = releasep();
  mp->park.wakeup();
  stopm();
}

// Stops the current M for a stop-the-world.
static void gcstopm() {
  M* mp = getm();
  if (!sched.gcwaiting.load()) throw_fatal("gcstopm: not waiting for gc");
  if (mp->spinning) {
    mp->spinning = false;
    if (sched.nmspinning.fetch_sub(1) <= 0) throw_fatal("gcstopm: negative nmspinning");
  }
  P* p = releasep();
  {
    LockGuard g(sched.lock);
    p->status.store(kPgcstop);
    if (--sched.stopwait == 0) sched.stopnote.wakeup();
  }
  stopm();
}

// ---- Goroutine creation and switching --------------------------------------

static void goroutine_main(G* gp);

// Lays out a fresh stack as if the goroutine had been suspended on entry to
// rt_gostart (see asm_amd64.S for the frame format).
static void gostartcall(G* gp) {
  // The frame is 16-byte aligned, so rt_gostart starts with rsp aligned
  // as the ABI expects just before a call.
  uintptr_t top = gp->stack.hi & ~uintptr_t(15);
  uint64_t* frame = reinterpret_cast<uint64_t*>(top - 16 - 8 * 8);
  frame[0] = 0x037F00001F80ULL;  // MXCSR default, x87 control word default
  frame[1] = 0;                  // r15
  frame[2] = 0;                  // r14
  frame[3] = reinterpret_cast<uint64_t>(&goroutine_main);  // r13: entry
  frame[4] = reinterpret_cast<uint64_t>(gp);               // r12: argument
  frame[5] = 0;                  // rbx
  frame[6] = 0;                  // rbp
  frame[7] = reinterpret_cast<uint64_t>(&rt_gostart);      // return address
  gp->sched_sp = frame;
}

[[noreturn]] static void gogo(G* gp) {
  RT_DEBUG_ASSERT(stack_canary_ok(gp->stack), "gogo: stack canary overwritten");
  setg(gp);
  asan_start_switch(nullptr, gp->stack.lo, gp->stack.hi);
  tsan_switch_to(gp);
  rt_gogo(gp->sched_sp);
}

// Runs gp on the current M. Never returns.
[[noreturn]] static void execute(G* gp, bool inherit_time) {
  M* mp = getm();
  P* p = mp->p;
  RT_DEBUG_ASSERT(getg() == mp->g0, "execute: not on g0");
  RT_DEBUG_ASSERT(p != nullptr && p->m == mp && p->status.load() == kPrunning, "execute: M does not own a running P");
  RT_DEBUG_ASSERT(gp->lockedm == nullptr || gp->lockedm == mp, "execute: goroutine locked to another thread");
  RT_DEBUG_ASSERT(mp->curg == nullptr, "execute: M already runs a goroutine");
  if (__builtin_expect(gc_marking(), 0) &&
      gp->gcscan_cycle.load(std::memory_order_relaxed) != gc_current_mark_cycle()) {
    gc_scan_before_execute(gp);
  }
  mp->curg = gp;
  gp->m = mp;
  casgstatus(gp, kGrunnable, kGrunning);
  gp->preempt.store(false, std::memory_order_relaxed);
  if (!inherit_time) p->schedtick++;
  p->stats.ctxswitches++;
  if (gp->runnable_since != 0) {
    obs::record_sched_latency(nanotime() - gp->runnable_since);
    gp->runnable_since = 0;
  }
  if (gp->stack.lo == 0) {
    gp->stack = stackalloc(p, stack_size);
    gostartcall(gp);
    tsan_start_goroutine(p, gp);
  }
  gogo(gp);
}

#ifdef RT_ASAN
// Under ASan every switch is announced and then confirmed on the new
// stack, so g0 functions are entered through this trampoline.
static void mcall_asan_entry(void* arg) {
  asan_finish_switch(nullptr);
  getm()->mcall_fn(static_cast<G*>(arg));
}
#endif

// Switches from gp to the g0 stack and runs fn(gp) there. With exiting,
// gp's stack is about to be freed and its context is never resumed.
static void switch_to_g0(G* gp, M* mp, void (*fn)(G*), bool exiting) {
  setg(mp->g0);
  tsan_enter_g0(mp);
#ifdef RT_ASAN
  asan_start_switch(exiting ? nullptr : &gp->asan_fake_stack, mp->g0_lo, mp->g0_top);
  mp->mcall_fn = fn;
  rt_mcall(&gp->sched_sp, mp->g0_top, mcall_asan_entry, gp);
#else
  (void)exiting;
  rt_mcall(&gp->sched_sp, mp->g0_top, reinterpret_cast<void (*)(void*)>(fn), gp);
#endif
}

void mcall(void (*fn)(G*)) {
  G* gp = getg();
  M* mp = getm();
  if (gp == mp->g0) throw_fatal("mcall called on g0 stack");
  check_stack_on_switch(gp);
  save_thread_state(mp, gp);
  switch_to_g0(gp, mp, fn, false);
  // Resumed by gogo, possibly on another thread.
  asan_finish_switch(gp->asan_fake_stack);
  restore_thread_state(getm(), gp);
}

namespace {
struct SystemstackCall {
  void (*fn)(void*);
  void* arg;
  G* gp;
};
void systemstack_trampoline(void* a) {
  auto* c = static_cast<SystemstackCall*>(a);
  asan_finish_switch(nullptr);
  c->fn(c->arg);
  asan_start_switch(nullptr, c->gp->stack.lo, c->gp->stack.hi);
  setg(c->gp);
}
}  // namespace

void systemstack(void (*fn)(void*), void* arg) {
  G* gp = getg();
  M* mp = getm();
  if (gp == mp->g0) {
    fn(arg);
    return;
  }
  SystemstackCall call{fn, arg, gp};
  setg(mp->g0);
  asan_start_switch(&gp->asan_fake_stack, mp->g0_lo, mp->g0_top);
  tsan_enter_g0(mp);
  rt_systemstack_switch(mp->g0_top, systemstack_trampoline, &call);
  tsan_switch_to(gp);  // after the trampoline returned: its frames stay on g0's fiber
  asan_finish_switch(gp->asan_fake_stack);
}

static G* gfget(P* p) {
  if (p->gfree.empty() && sched.ngfree.load() != 0) {
    LockGuard g(sched.gflock);
    while (p->gfreecnt < kGfreeBatch && !sched.gfree.empty()) {
      p->gfree.push_front(sched.gfree.pop());
      sched.ngfree--;
      p->gfreecnt++;
    }
  }
  G* gp = p->gfree.pop();
  if (gp != nullptr) p->gfreecnt--;
  return gp;
}

static void gfput(P* p, G* gp) {
  p->gfree.push_front(gp);
  p->gfreecnt++;
  if (p->gfreecnt >= kGfreeLocalMax) {
    LockGuard g(sched.gflock);
    while (p->gfreecnt >= kGfreeBatch) {
      sched.gfree.push_front(p->gfree.pop());
      p->gfreecnt--;
      sched.ngfree++;
    }
  }
}

static void gfpurge(P* p) {
  LockGuard g(sched.gflock);
  while (G* gp = p->gfree.pop()) {
    sched.gfree.push_front(gp);
    sched.ngfree++;
  }
  p->gfreecnt = 0;
}

G* newproc_begin(void** storage, size_t size, size_t align) {
  M* mp = getm();
  mp->locks++;  // keep our P until newproc_end
  G* newg = gfget(mp->p);
  if (newg == nullptr) {
    newg = galloc.alloc();
    newg->atomicstatus.store(kGdead, std::memory_order_relaxed);
    // Not counted among the stacks of a mark phase in progress.
    newg->gcscan_cycle.store(gc_current_mark_cycle(), std::memory_order_relaxed);
    allgadd(newg);
  }
  if (size <= kInlineClosure && align <= 16) {
    newg->fn_obj = newg->fn_buf;
  } else {
    // A GC object (scanned; freed once the goroutine has exited and
    // dropped it). Objects above the inline size are 16-byte aligned; a
    // stricter alignment takes room to align inside the object, which
    // the collector keeps alive through the interior pointer.
    size_t slack = align > 16 ? align - 16 : 0;
    auto mem = reinterpret_cast<uintptr_t>(mallocgc(size + slack, true));
    newg->fn_obj = reinterpret_cast<void*>((mem + align - 1) & ~uintptr_t(align - 1));
  }
  *storage = newg->fn_obj;
  return newg;
}

void newproc_end(G* newg, void (*run)(void*), void (*destroy)(void*)) {
  M* mp = getm();
  P* p = mp->p;
  newg->fn_run = run;
  newg->fn_destroy = destroy;
  if (p->goidcache == p->goidcacheend) {
    constexpr uint64_t kGoidBatch = 16;
    p->goidcache = sched.goidgen.fetch_add(kGoidBatch) + 1;
    p->goidcacheend = p->goidcache + kGoidBatch;
  }
  newg->goid = int64_t(p->goidcache++);
  newg->waitreason = "";
  newg->saved_errno = 0;
  newg->eh_caught = nullptr;
  newg->eh_uncaught = 0;
  newg->asan_fake_stack = nullptr;
  newg->preempt.store(false, std::memory_order_relaxed);
  if (obs::sched_latency_enabled()) newg->runnable_since = nanotime();
  p->stats.goroutines_created++;
  if (__builtin_expect(gc_marking(), 0)) gc_newproc(newg);
  casgstatus(newg, kGdead, kGrunnable);
  policy::runq::put(p, newg, true);
  mp->locks--;
  if (main_started.load(std::memory_order_relaxed)) wakep();
}

// ---- Goroutine exit ------------------------------------------------------

static void mexit_locked_thread(M* mp);

static void goexit0(G* gp) {
  M* mp = getm();
  P* p = mp->p;
  casgstatus(gp, kGrunning, kGdead);
  bool locked = gp->lockedm != nullptr;
  gp->m = nullptr;
  gp->lockedm = nullptr;
  gp->locked_count = 0;
  gp->waitreason = "";
  mp->lockedg = nullptr;
  mp->curg = nullptr;
  stackfree(p, gp->stack);
  gp->stack = Stack{};
  tsan_end_goroutine(p, gp);
  p->stats.goroutines_exited++;
  gfput(p, gp);
  if (locked) mexit_locked_thread(mp);
  schedule();
}

struct GoexitUnwind {};

static void goroutine_main(G* gp) {
  asan_finish_switch(nullptr);
  restore_thread_state(getm(), gp);
  try {
    gp->fn_run(gp->fn_obj);
  } catch (const GoexitUnwind&) {
    if (gp->goid == 1) main_goexited = true;
  }
  gp->fn_destroy(gp->fn_obj);
  gp->fn_obj = nullptr;
  check_stack_on_switch(gp);
  switch_to_g0(gp, getm(), goexit0, true);
  __builtin_unreachable();
}

void goexit_unwind() { throw GoexitUnwind{}; }

// A goroutine that exits while locked to its thread takes the thread with
// it (Go 1.10+): the thread may be in a state nobody else should inherit.
// The main thread cannot exit, so it is wedged instead.
static void mexit_locked_thread(M* mp) {
  handoffp(releasep());
  {
    LockGuard g(sched.lock);
    sched.nmfreed++;
    checkdead();
  }
  if (mp->ism0) {
    for (;;) pause();
  }
  tsan_exit_thread(mp);
  pthread_exit(nullptr);
}

// ---- park / ready / yield ---------------------------------------------------

static void park_m(G* gp) {
  M* mp = getm();
  casgstatus(gp, kGrunning, kGwaiting);
  mp->curg = nullptr;
  gp->m = nullptr;
  mp->p->stats.parks++;
  if (auto unlockf = mp->waitunlockf) {
    void* lk = mp->waitlock;
    mp->waitunlockf = nullptr;
    mp->waitlock = nullptr;
    if (!unlockf(gp, lk)) {
      casgstatus(gp, kGwaiting, kGrunnable);
      execute(gp, true);
    }
  }
  schedule();
}

void gopark(bool (*unlockf)(G*, void*), void* lock, const char* reason) {
  M* mp = getm();
  G* gp = getg();
  mp->waitunlockf = unlockf;
  mp->waitlock = lock;
  gp->waitreason = reason;
  mcall(park_m);
}

void goready(G* gp) {
  M* mp = getm();
  RT_DEBUG_ASSERT(mp->p != nullptr, "goready: no P");
  mp->locks++;
  casgstatus(gp, kGwaiting, kGrunnable);
  P* p = mp->p;
  p->stats.readies++;
  if (obs::sched_latency_enabled()) gp->runnable_since = nanotime();
  policy::runq::put(p, gp, true);
  mp->locks--;
  wakep();
}

void injectglist(GQueue* list, int32_t n) {
  if (list->empty()) return;
  bool stamp = obs::sched_latency_enabled();
  int64_t now = stamp ? nanotime() : 0;
  for (G* gp = list->head; gp != nullptr; gp = gp->schedlink) {
    casgstatus(gp, kGwaiting, kGrunnable);
    gp->runnable_since = now;
  }
  netpoll_count_injected(n);
  M* mp = getm();
  P* p = mp != nullptr ? mp->p : nullptr;
  auto start_idle = [](int32_t k) {
    for (; k > 0 && sched.npidle.load() != 0; k--) startm(nullptr, false);
  };
  if (p == nullptr) {
    // No P (sysmon, or an M that gave its P up): all to the global queue.
    // A caller that checkdead does not count as running (sysmon) keeps it
    // from seeing a deadlock until the Ms are started (see sysmon_main).
    {
      LockGuard g(sched.lock);
      globrunqputbatch(list, n);
    }
    start_idle(n);
    return;
  }
  mp->locks++;
  // One goroutine per idle P goes where that P's new M finds it.
  int32_t npidle = sched.npidle.load();
  GQueue global;
  int32_t k = 0;
  for (; k < npidle && !list->empty(); k++) global.push_back(list->pop());
  if (k > 0) {
    {
      LockGuard g(sched.lock);
      globrunqputbatch(&global, k);
    }
    start_idle(k);
  }
  while (G* gp = list->pop()) policy::runq::put(p, gp, false);
  mp->locks--;
}

static void gosched_m(G* gp) {
  M* mp = getm();
  casgstatus(gp, kGrunning, kGrunnable);
  mp->curg = nullptr;
  gp->m = nullptr;
  if (obs::sched_latency_enabled()) gp->runnable_since = nanotime();
  globrunqput_locked(gp);
  schedule();
}

void gosched_impl() { mcall(gosched_m); }

static void gopreempt_m(G* gp) {
  getm()->p->stats.preemptions++;
  gosched_m(gp);
}

void preempt_check_slow() {
  G* gp = getg();
  M* mp = getm();
  if (gp == mp->g0 || mp->locks != 0 || gp->atomicstatus.load() != kGrunning) return;
  gp->preempt.store(false, std::memory_order_relaxed);
  mcall(gopreempt_m);
}

// ---- The scheduler ----------------------------------------------------------

// A goroutine the netpoller made ready, taken to run now; the rest of its
// list is injected.
static G* take_from_netpoll(GQueue* list, int32_t n) {
  G* gp = list->pop();
  injectglist(list, n - 1);
  casgstatus(gp, kGwaiting, kGrunnable);
  netpoll_count_injected(1);
  return gp;
}

// Finds a runnable goroutine; returns with a P held. The sources, in
// order (Go 1.19's findrunnable):
//   1. timers due on this P (check_timers)
//   2. the local run queue, then the global one
//   3. the network without blocking, when goroutines wait for I/O and no
//      M is blocked in the poller (that M sees the events itself); before
//      stealing, so ready I/O does not wait behind it
//   4. stealing from other Ps (spinning), then their overdue timers
//   5. the idle-priority GC mark worker, while the collector marks:
//      after every source of user work
//   6. give up the P; after the last look at every queue, either become
//      the M blocked in the netpoller until the earliest timer or an I/O
//      event (one M at a time), or park in stopm
static G* findrunnable(bool* inherit_time) {
  M* mp = getm();
top:
  P* p = mp->p;
  if (sched.gcwaiting.load(std::memory_order_relaxed)) {
    gcstopm();
    goto top;
  }
  safe_point(p);
  // 1, 2: timers, local and global queues.
  check_timers(p, 0);
  if (G* gp = policy::runq::get(p, inherit_time)) return gp;
  if (peek_runqsize() != 0) {
    sched.lock.lock();
    G* gp = globrunqget(p, 0);
    sched.lock.unlock();
    if (gp != nullptr) {
      *inherit_time = false;
      return gp;
    }
  }

  // 3: the network, without blocking.
  if (netpoll_waiters.load(std::memory_order_relaxed) > 0 && netpoll_lastpoll.load(std::memory_order_relaxed) != 0) {
    int32_t n = 0;
    GQueue list = netpoll(0, &n);
    if (!list.empty()) {
      *inherit_time = false;
      return take_from_netpoll(&list, n);
    }
  }

  // 4: steal.
  int32_t procs = gomaxprocs.load(std::memory_order_relaxed);
  if (policy::runq::has_local_queues() &&
      (mp->spinning || 2 * sched.nmspinning.load() < procs - sched.npidle.load())) {
    if (!mp->spinning) {
      mp->spinning = true;
      sched.nmspinning.fetch_add(1);
    }
    // Four rounds over all Ps in a random order; only the last may take a
    // victim's runnext (it is about to run there anyway).
    for (int round = 0; round < 4; round++) {
      uint32_t start = fastrandn(uint32_t(procs));
      for (int32_t i = 0; i < procs; i++) {
        if (sched.gcwaiting.load(std::memory_order_relaxed)) goto top;
        P* victim = allp[(start + uint32_t(i)) % uint32_t(procs)];
        if (victim == p) continue;
        p->stats.steal_attempts++;
        if (G* gp = policy::runq::steal(p, victim, round == 3)) {
          *inherit_time = false;
          return gp;
        }
      }
    }
  }

  // Overdue timers of other Ps (their Ms are busy, or the Ps are idle):
  // run them here, as Go's stealWork does. They may have readied work.
  if (run_other_timers(p)) goto top;

  // 5: the mark worker in idle mode: the P would go idle otherwise.
  if (gc_blacken_enabled.load(std::memory_order_relaxed)) {
    if (G* gp = gc_find_idle_worker(p)) {
      *inherit_time = false;
      return gp;
    }
  }

  // 6: nothing to do: give up the P (not while it owes a for_each_p
  // round: for_each_p runs idle Ps' functions only on the idle list).
  sched.lock.lock();
  if (sched.gcwaiting.load() || p->run_safe_point_fn.load(std::memory_order_relaxed) != 0) {
    sched.lock.unlock();
    goto top;
  }
  if (peek_runqsize() != 0) {
    G* gp = globrunqget(p, 0);
    sched.lock.unlock();
    *inherit_time = false;
    return gp;
  }
  if (releasep() != p) throw_fatal("findrunnable: wrong p");
  pidleput(p);
  sched.lock.unlock();

  bool was_spinning = mp->spinning;
  if (mp->spinning) {
    mp->spinning = false;
    if (sched.nmspinning.fetch_sub(1) <= 0) throw_fatal("findrunnable: negative nmspinning");
  }
  // A goroutine may have been queued on some P after we looked and before
  // we stopped spinning; its owner relied on us to find it.
  if (was_spinning && policy::runq::has_local_queues()) {
    for (int32_t i = 0; i < procs; i++) {
      P* pp = allp[i];
      if (pp != nullptr && !policy::runq::empty(pp)) {
        sched.lock.lock();
        P* idle = pidleget();
        sched.lock.unlock();
        if (idle != nullptr) {
          acquirep(idle);
          mp->spinning = true;
          sched.nmspinning.fetch_add(1);
          goto top;
        }
        break;
      }
    }
  }
  // Block in the netpoller until the earliest timer of all Ps or an I/O
  // event, then take an idle P and look again (the due timers run at top).
  GQueue list;
  int32_t n = 0;
  if (netpoll_block(&list, &n)) {
    sched.lock.lock();
    P* idle = sched.gcwaiting.load() ? nullptr : pidleget();
    sched.lock.unlock();
    if (idle != nullptr) {
      acquirep(idle);
      if (!list.empty()) {
        *inherit_time = false;
        return take_from_netpoll(&list, n);
      }
      goto top;
    }
    // Every P is held: their Ms run the timers and the injected goroutines.
    injectglist(&list, n);
  }
  stopm();
  goto top;
}

[[noreturn]] void schedule() {
  M* mp = getm();
  if (mp->locks != 0) throw_fatal("schedule: holding locks");
  if (mp->lockedg != nullptr) {
    stoplockedm();
    execute(mp->lockedg, false);
  }
top:
  P* p = mp->p;
  if (sched.gcwaiting.load(std::memory_order_relaxed)) {
    gcstopm();
    goto top;
  }
  safe_point(p);
  check_timers(p, 0);
  G* gp = nullptr;
  bool inherit_time = false;
  if (__builtin_expect(gc_blacken_enabled.load(std::memory_order_relaxed), 0)) gp = gc_find_runnable_worker(p);
  if (gp == nullptr && p->schedtick % kGlobalRunqInterval == 0 && peek_runqsize() > 0) {
    sched.lock.lock();
    gp = globrunqget(p, 1);
    sched.lock.unlock();
  }
  if (gp == nullptr) gp = policy::runq::get(p, &inherit_time);
  if (gp == nullptr) gp = findrunnable(&inherit_time);
  if (mp->spinning) resetspinning();
  if (gp->lockedm != nullptr) {
    startlockedm(gp);
    goto top;
  }
  execute(gp, inherit_time);
}

// ---- Deadlock detection ------------------------------------------------------

// Called with sched.lock held whenever an M goes idle.
static void checkdead() {
  sched.lock.assert_held();
  int64_t run = sched.mnext - sched.nmidle - sched.nmidlelocked - sched.nmsys - sched.nmfreed;
  if (run > 0) return;
  if (run < 0) {
    char buf[160];
    snprintf(buf, sizeof buf, "checkdead: inconsistent counts: run=%lld nmidle=%d nmidlelocked=%d mcount=%lld",
             static_cast<long long>(run), sched.nmidle, sched.nmidlelocked, static_cast<long long>(sched.mnext));
    throw_fatal(buf);
  }
  int grunning = 0;
  size_t n = allglen.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; i++) {
    G* gp = allgs[i];
    if (gp->issystem) continue;
    switch (readgstatus(gp)) {
      case kGwaiting:
      case kGpreempted:
        grunning++;
        break;
      case kGrunnable:
      case kGrunning:
      case kGsyscall: {
        char buf[96];
        snprintf(buf, sizeof buf, "checkdead: runnable goroutine %lld", static_cast<long long>(gp->goid));
        throw_fatal(buf);
      }
      default:
        break;
    }
  }
  if (grunning == 0) fatal_user("no goroutines (main called runtime.Goexit) - deadlock!");
  // Pending timers will make goroutines runnable: not a deadlock (Go's
  // checkdead looks at every P's timers the same way).
  for (int32_t i = 0; i < gomaxprocs.load(); i++) {
    if (allp[i] != nullptr && allp[i]->num_timers.load() > 0) return;
  }
  // Goroutines waiting for I/O wait for something that can come from
  // outside (a server blocked in accept is not deadlocked); sysmon polls.
  if (netpoll_waiters.load() > 0) return;
  fatal_user("all goroutines are asleep - deadlock!");
}

// ---- Stop the world and GOMAXPROCS -------------------------------------------

// Asks the goroutine on every running P but this M's to stop. Cooperative
// only: gp->preempt, which every safe point reads, whatever the variant.
// Through the policy: also the variant's own means (the signal variant's
// SIGURG).
static void preemptall(bool cooperative_only) {
  int32_t procs = gomaxprocs.load();
  for (int32_t i = 0; i < procs; i++) {
    P* p = allp[i];
    if (p->status.load() != kPrunning) continue;
    M* mp = p->m.load();
    if (mp == nullptr || mp == getm()) continue;
    G* gp = mp->curg.load();
    if (gp == nullptr || gp == mp->g0) continue;
    if (cooperative_only) {
      gp->preempt.store(true, std::memory_order_relaxed);
    } else {
      policy::preempt::request(gp, mp);
    }
  }
}

// Held from stop_the_world to start_the_world: one stop at a time (Go's
// worldsema), whoever asks (the collector, GOMAXPROCS).
static std::atomic<uint32_t> worldsema{1};

// How long a stop waits for safe points before it asks through the policy.
// A goroutine that calls into the runtime (allocation, channels) reaches
// a safe point within a few microseconds. Go sends its preemption signals
// at once. Here they come only after this wait: on this VM, sending SIGURG
// and taking it in a thread that was about to stop anyway cost 35-85 us of
// a 2-P pause, against 2-5 us for the flag alone.
constexpr int64_t kStopSpinNs = 20 * 1000;
// Then it asks again every kStopRetryNs, as Go's stopTheWorldWithSema
// retries every 100 us.
constexpr int64_t kStopRetryNs = 100 * 1000;
// For the first kStopPollNs the stopper polls (yielding its CPU between
// polls); only then does it sleep. A sleeping stopper is woken by the last
// P to stop, and on this VM that wake-up of a thread whose vCPU had gone
// idle took 10-97 us (stop traces of alloc_storm at GOMAXPROCS=2): as
// long as the rest of the stop. A stop that outlasts the polling is one
// that a goroutine holds up (a call-free loop under coop can hold it up
// for ever) and should not also keep a CPU busy.
constexpr int64_t kStopPollNs = 1000 * 1000;

// Waits for the Ps that stop_the_world or for_each_p asked to stop (after
// preemptall(true)) until the last one wakes note.
static void wait_for_safe_points(Note* note) {
  int64_t start = nanotime();
  bool stopped = note->spin_for(kStopSpinNs);
  while (!stopped) {
    preemptall(false);
    stopped = nanotime() - start < kStopPollNs ? note->spin_for(kStopRetryNs) : note->sleep_for(kStopRetryNs);
  }
  note->clear();
}

int64_t stop_the_world(const char* reason) {
  (void)reason;
  rt::semacquire(&worldsema);
  int64_t begin = nanotime();
  M* mp = getm();
  mp->locks++;
  obs::stw_begin();
  sched.lock.lock();
  int32_t procs = gomaxprocs.load();
  sched.stopwait = procs;
  sched.gcwaiting.store(1);
  preemptall(true);
  mp->p->status.store(kPgcstop);
  sched.stopwait--;
  for (int32_t i = 0; i < procs; i++) {
    P* p = allp[i];
    uint32_t s = kPsyscall;
    if (p->status.compare_exchange_strong(s, kPgcstop)) {
      p->syscalltick.fetch_add(1);
      sched.stopwait--;
    }
  }
  while (P* p = pidleget()) {
    p->status.store(kPgcstop);
    sched.stopwait--;
  }
  bool wait = sched.stopwait > 0;
  sched.lock.unlock();
  if (wait) wait_for_safe_points(&sched.stopnote);
  if (sched.stopwait != 0) throw_fatal("stopTheWorld: not stopped (stopwait != 0)");
  for (int32_t i = 0; i < procs; i++) {
    if (allp[i]->status.load() != kPgcstop) throw_fatal("stopTheWorld: not stopped (status != _Pgcstop)");
  }
  obs::stw_stopped();
  sched.stw_count.fetch_add(1, std::memory_order_relaxed);
  return begin;
}

static P* procresize(int32_t nprocs);
static int32_t pending_procs = 0;

int64_t start_the_world() {
  M* mp = getm();
  sched.lock.lock();
  int32_t procs = pending_procs != 0 ? pending_procs : gomaxprocs.load();
  pending_procs = 0;
  P* runnable = procresize(procs);
  sched.gcwaiting.store(0);
  sched.lock.unlock();
  while (runnable != nullptr) {
    P* p = runnable;
    runnable = p->link;
    p->link = nullptr;
    startm(p, false);
  }
  int64_t end = nanotime();
  obs::stw_end();
  mp->locks--;
  wakep();
  rt::semrelease(&worldsema);
  return end;
}

void for_each_p(void (*fn)(P*, void*), void* arg) {
  rt::semacquire(&worldsema);
  M* mp = getm();
  mp->locks++;
  P* self = mp->p;
  sched.lock.lock();
  if (sched.safe_point_wait != 0) throw_fatal("forEachP: sched.safePointWait != 0");
  int32_t procs = gomaxprocs.load();
  sched.safe_point_wait = procs - 1;
  sched.safe_point_fn = fn;
  sched.safe_point_arg = arg;
  for (int32_t i = 0; i < procs; i++) {
    if (allp[i] != self) allp[i]->run_safe_point_fn.store(1);
  }
  // From here a P that goes idle or into a system call runs fn first.
  preemptall(true);
  // The idle list cannot change while sched.lock is held.
  for (P* p = sched.pidle; p != nullptr; p = p->link) run_safe_point_fn(p, true);
  bool wait = sched.safe_point_wait > 0;
  if (!wait) sched.safe_point_note.clear();  // the idle Ps were the last
  sched.lock.unlock();
  fn(self, arg);
  // Ps whose Ms are in system calls: taken from them as retake does, so
  // that handoffp runs fn (or starts an M on them, whose schedule does).
  for (int32_t i = 0; i < procs; i++) {
    P* p = allp[i];
    uint32_t s = kPsyscall;
    if (p->run_safe_point_fn.load() != 0 && p->status.compare_exchange_strong(s, kPidle)) {
      p->syscalltick.fetch_add(1);
      handoffp(p);
    }
  }
  if (wait) wait_for_safe_points(&sched.safe_point_note);
  sched.lock.lock();
  if (sched.safe_point_wait != 0) throw_fatal("forEachP: not done");
  for (int32_t i = 0; i < procs; i++) {
    if (allp[i]->run_safe_point_fn.load() != 0) throw_fatal("forEachP: P did not run fn");
  }
  sched.safe_point_fn = nullptr;
  sched.safe_point_arg = nullptr;
  sched.lock.unlock();
  mp->locks--;
  rt::semrelease(&worldsema);
}

static void destroyp(P* p) {
  if (policy::runq::has_local_queues()) {
    // Keep the queue's order: collect it, then put it at the global head.
    GQueue q;
    int32_t n = 0;
    bool inherit;
    while (G* gp = policy::runq::get(p, &inherit)) {
      q.push_back(gp);
      n++;
    }
    sched.runq.push_front_all(&q);
    add_runqsize(n);
  }
  // Timers move to P 0, which always survives (Go moves them to the local P).
  move_timers(allp[0], p);
  gfpurge(p);
  stackcache_clear(p);
  sudogcache_clear(p);
  tsan_fiber_cache_clear(p);
  gc_destroy_p(p);
  mcache_free(p->mcache);
  p->mcache = nullptr;
  obs::add_pstats(&sched.dead_p_stats, p->stats);
  p->stats = PStats{};
  p->status.store(kPdead);
}

// Changes the number of Ps with the world stopped and sched.lock held.
// Returns the Ps other than ours that have local work, linked by p->link;
// the others are put on the idle list.
static P* procresize(int32_t nprocs) {
  int32_t old = gomaxprocs.load();
  for (int32_t i = 0; i < nprocs; i++) {
    if (allp[i] == nullptr) {
      P* p = palloc.alloc();
      p->id = i;
      p->status.store(kPgcstop);
      allp[i] = p;
    } else if (allp[i]->status.load() == kPdead) {
      allp[i]->status.store(kPgcstop);
    }
    if (allp[i]->mcache == nullptr) allp[i]->mcache = mcache_alloc();
  }
  for (int32_t i = nprocs; i < old; i++) destroyp(allp[i]);
  gomaxprocs.store(nprocs);

  M* mp = getm();
  if (mp->p != nullptr && mp->p->id < nprocs) {
    mp->p->status.store(kPrunning);
  } else {
    if (mp->p != nullptr) mp->p->m = nullptr;
    mp->p = nullptr;
    allp[0]->m = nullptr;
    allp[0]->status.store(kPidle);
    acquirep(allp[0]);
  }
  P* runnable = nullptr;
  for (int32_t i = nprocs - 1; i >= 0; i--) {
    P* p = allp[i];
    if (p == mp->p) continue;
    p->status.store(kPidle);
    p->m = nullptr;
    if (policy::runq::empty(p)) {
      pidleput(p);
    } else {
      p->link = runnable;
      runnable = p;
    }
  }
  return runnable;
}

int32_t set_gomaxprocs(int32_t n) {
  int32_t ret = gomaxprocs.load();
  if (n <= 0 || n == ret) return ret;
  if (n > kMaxProcs) n = kMaxProcs;
  stop_the_world("GOMAXPROCS");
  pending_procs = n;
  start_the_world();
  return ret;
}

// ---- lock_os_thread ------------------------------------------------------------

void lock_os_thread() {
  G* gp = getg();
  M* mp = getm();
  gp->locked_count++;
  if (gp->locked_count == 0) throw_fatal("lock_os_thread nesting overflow");
  gp->lockedm = mp;
  mp->lockedg = gp;
}

void unlock_os_thread() {
  G* gp = getg();
  M* mp = getm();
  if (gp->locked_count == 0) return;
  if (--gp->locked_count == 0) {
    gp->lockedm = nullptr;
    mp->lockedg = nullptr;
  }
}

// ---- Syscalls -------------------------------------------------------------------

// saved: the six callee-saved registers rt_entersyscall pushed (r15,
// r14, r13, r12, rbx, rbp from low to high), its return address above.
extern "C" void rt_entersyscall_body(uintptr_t* saved) {
  G* gp = getg();
  M* mp = getm();
  for (int i = 0; i < 6; i++) gp->syscallregs[i] = saved[i];
  gp->syscallsp = reinterpret_cast<uintptr_t>(saved + 6);
  mp->locks++;
  check_stack_on_switch(gp);
  P* p = mp->p;
  // The last safe point before the P becomes another's to take.
  if (__builtin_expect(p->run_safe_point_fn.load(std::memory_order_relaxed) != 0, 0)) {
    systemstack([](void* arg) { run_safe_point_fn(static_cast<P*>(arg), false); }, p);
  }
  casgstatus(gp, kGrunning, kGsyscall);
  p->m = nullptr;
  mp->oldp = p;
  mp->p = nullptr;
  p->status.store(kPsyscall, std::memory_order_release);
  if (sched.gcwaiting.load()) {
    uint32_t s = kPsyscall;
    if (p->status.compare_exchange_strong(s, kPgcstop)) {
      LockGuard g(sched.lock);
      if (--sched.stopwait == 0) sched.stopnote.wakeup();
    }
  }
  mp->locks--;
}

// For calls known to block for long: hand the P off at once instead of
// waiting for sysmon to retake it.
void entersyscallblock() {
  G* gp = getg();
  M* mp = getm();
  mp->locks++;
  casgstatus(gp, kGrunning, kGsyscall);
  P* p = releasep();
  mp->oldp = nullptr;
  handoffp(p);
  mp->locks--;
}

static bool exitsyscallfast(P* oldp) {
  if (sched.gcwaiting.load() == 0 && oldp != nullptr) {
    uint32_t s = kPsyscall;
    if (oldp->status.compare_exchange_strong(s, kPidle)) {
      acquirep(oldp);
      return true;
    }
  }
  if (sched.pidle.load() != nullptr) {
    sched.lock.lock();
    P* p = sched.gcwaiting.load() ? nullptr : pidleget();
    sched.lock.unlock();
    if (p != nullptr) {
      acquirep(p);
      return true;
    }
  }
  return false;
}

static void exitsyscall0(G* gp) {
  M* mp = getm();
  casgstatus(gp, kGsyscall, kGrunnable);
  mp->curg = nullptr;
  gp->m = nullptr;
  sched.lock.lock();
  P* p = sched.gcwaiting.load() ? nullptr : pidleget();
  if (p == nullptr) globrunqput(gp);
  sched.lock.unlock();
  if (p != nullptr) {
    acquirep(p);
    execute(gp, false);
  }
  if (mp->lockedg != nullptr) {
    stoplockedm();
    execute(gp, false);
  }
  stopm();
  schedule();
}

void exitsyscall() {
  G* gp = getg();
  M* mp = getm();
  mp->locks++;
  P* oldp = mp->oldp;
  mp->oldp = nullptr;
  if (exitsyscallfast(oldp)) {
    mp->p->syscalltick.fetch_add(1, std::memory_order_relaxed);
    casgstatus(gp, kGsyscall, kGrunning);
    mp->locks--;
    preempt_check();
    return;
  }
  mp->locks--;
  mcall(exitsyscall0);
}

// ---- sysmon support ------------------------------------------------------------

static constexpr int64_t kForcePreemptNs = 10 * 1000 * 1000;

// Retakes Ps blocked in syscalls and preempts long-running goroutines.
// Returns the number of Ps retaken. Runs on the sysmon thread (no M).
uint32_t retake(int64_t now) {
  uint32_t n = 0;
  int32_t procs = gomaxprocs.load();
  for (int32_t i = 0; i < procs; i++) {
    P* p = allp[i];
    if (p == nullptr) continue;
    SysmonTick& pd = p->sysmontick;
    uint32_t s = p->status.load();
    bool sysretake = false;
    if (s == kPrunning || s == kPsyscall) {
      uint32_t t = p->schedtick.load();
      if (pd.schedtick != t) {
        pd.schedtick = t;
        pd.schedwhen = now;
      } else if (pd.schedwhen + kForcePreemptNs <= now) {
        M* mp = p->m.load();
        G* gp = mp != nullptr ? mp->curg.load() : nullptr;
        if (s == kPrunning && gp != nullptr && gp != mp->g0) policy::preempt::request(gp, mp);
        sysretake = true;
      }
    }
    if (s == kPsyscall) {
      uint32_t t = p->syscalltick.load();
      if (!sysretake && pd.syscalltick != t) {
        pd.syscalltick = t;
        pd.syscallwhen = now;
        continue;
      }
      if (policy::runq::empty(p) && peek_runqsize() == 0 &&
          sched.nmspinning.load() + sched.npidle.load() > 0 && pd.syscallwhen + 10 * 1000 * 1000 > now) {
        continue;
      }
      // Pretend one more M runs, so that the M leaving the syscall cannot
      // see a deadlock while we hand its P off.
      incidlelocked(-1);
      uint32_t expected = kPsyscall;
      if (p->status.compare_exchange_strong(expected, kPidle)) {
        n++;
        p->syscalltick.fetch_add(1);
        handoffp(p);
      }
      incidlelocked(1);
    }
  }
  return n;
}

// Starts an M on an idle P, if there is one (sysmon, for overdue timers).
void startm_idle() { startm(nullptr, false); }

// ---- Counters and goroutine count ---------------------------------------------

PStats sched_stats() {
  PStats total{};
  {
    LockGuard g(sched.lock);
    total = sched.dead_p_stats;
  }
  int32_t procs = gomaxprocs.load();
  for (int32_t i = 0; i < procs; i++) obs::add_pstats(&total, allp[i]->stats);
  return total;
}

int64_t gcount() {
  int64_t n = 0;
  size_t len = allglen.load(std::memory_order_acquire);
  for (size_t i = 0; i < len; i++) {
    G* gp = allgs[i];
    if (gp->issystem) continue;
    uint32_t s = readgstatus(gp);
    if (s != kGdead && s != kGidle) n++;
  }
  return n;
}

// ---- Bootstrap ---------------------------------------------------------------------

static void minit(M* mp) {
  tsan_thread_fiber(mp);
  mp->procid = pid_t(syscall(SYS_gettid));
  mp->errno_ptr = errno_location();
  mp->eh_globals = eh_globals();
  signals_minit(mp);
  policy::preempt::init_thread(mp);
}

static void set_g0_stack(M* mp) {
  uintptr_t sp;
  asm volatile("movq %%rsp, %0" : "=r"(sp));
  mp->g0_top = (sp - 256) & ~uintptr_t(15);
  pthread_attr_t attr;
  void* addr = nullptr;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
  }
  mp->g0_lo = reinterpret_cast<uintptr_t>(addr);
  mp->g0->stack.lo = mp->g0_lo;
  mp->g0->stack.hi = mp->g0_top;
}

[[noreturn]] static void mstart1(M* mp) {
  setm(mp);
  setg(mp->g0);
  set_g0_stack(mp);
  minit(mp);
  if (mp->nextp != nullptr) {
    acquirep(mp->nextp);
    mp->nextp = nullptr;
  }
  schedule();
}

static void mstart_on_thread(M* mp) { mstart1(mp); }

void schedinit(const StartupOptions& opts) {
  void* mem = mmap(nullptr, kMaxAllgs * sizeof(G*), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) throw_fatal("schedinit: cannot reserve allgs");
  allgs = static_cast<G**>(mem);

  stack_size = opts.stack_size;
  gcinit();
  mallocinit();
  stack_init(opts.stack_size, opts.guard_budget);
  netpoll_init();

  m0.ism0 = true;
  m0.g0 = &g0_main;
  g0_main.m = &m0;
  g0_main.issystem = true;
  g0_main.atomicstatus.store(kGrunning, std::memory_order_relaxed);
  m0.id = sched.mnext++;
  m0.fastrand = uint64_t(nanotime()) | 1;
  m0.thread = pthread_self();
  allm.store(&m0);
  setm(&m0);
  setg(&g0_main);
  signals_init();
  policy::preempt::init();

  sched.lock.lock();
  int32_t procs = opts.procs;
  if (procs > kMaxProcs) procs = kMaxProcs;
  P* runnable = procresize(procs);
  sched.lock.unlock();
  if (runnable != nullptr) throw_fatal("schedinit: unexpected runnable P");
}

[[noreturn]] void mstart_m0() {
  minit(&m0);
  set_g0_stack(&m0);
  schedule();
}

bool main_called_goexit() { return main_goexited; }

}  // namespace rt::internal

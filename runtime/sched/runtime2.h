// The scheduler's data structures: G, M, P and the global sched (Go's
// runtime2.go), in one header so their relations can be read in one place.
//
//   G  a goroutine: its saved stack pointer, stack, status, and the closure
//      it runs. Gs are never freed; a dead G goes on a free list (per P,
//      then global) and is reused by the next rt::go.
//   M  an OS thread. It runs the scheduler on its g0 (the thread's own
//      stack) and user goroutines on their stacks. An M needs a P to run Go
//      code; idle Ms sleep on their note in sched.midle.
//   P  a processor: the right to run goroutines. There are exactly
//      GOMAXPROCS of them; each holds its run queue, free-G list, stack
//      cache, mcache, goroutine-id cache and counters.
//
// Invariants (checked with throw_fatal where cheap):
//   - a P in status Running is owned by exactly one M (p->m, m->p);
//   - a G in status Running has g->m set and m->curg == g;
//   - nmspinning counts Ms that look for work without having found any;
//     at most one M is started to spin when work appears and nobody spins
//     (wakep), and a spinning M that finds work starts another (so a burst
//     of work is spread without a thundering herd);
//   - sched.lock protects midle, pidle, the global run queue and the
//     stop-the-world counters; it is never held across a context switch.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime/mem/metavec.h"
#include "runtime/policy/runq.h"
#include "runtime/sched/lock.h"
#include "runtime/stack/stack.h"

namespace rt::internal {

// A word that one thread at a time writes (the M that owns a P, the G's
// own M, the holder of a lock) and that other threads read without any
// lock, as Go's scheduler reads them (sysmon's retake, stop-the-world's
// preemptall, the counters summed by read_sched_stats, gfget's peek at the
// global free list). Stores release and loads acquire: plain moves on
// x86-64, so the owner's hot path costs what a plain field does, but never
// torn, and a reader that follows a pointer it loaded (retake's p->m, then
// m->curg, then the G's preempt flag) sees the object as its publisher
// did; ThreadSanitizer sees the intended race as atomics. A reader may see
// a stale value and must tolerate it. Increments are a load and a store,
// not a locked add: correct only because there is one writer.
template <typename T>
class Peeked {
 public:
  constexpr Peeked(T v = T()) : v_(v) {}
  Peeked(const Peeked& o) : v_(o.load()) {}
  Peeked& operator=(const Peeked& o) {
    store(o.load());
    return *this;
  }
  T load() const { return v_.load(std::memory_order_acquire); }
  void store(T v) { v_.store(v, std::memory_order_release); }
  operator T() const { return load(); }
  Peeked& operator=(T v) {
    store(v);
    return *this;
  }
  T operator->() const { return load(); }
  T operator++(int) {
    T v = load();
    store(v + 1);
    return v;
  }
  T operator--(int) {
    T v = load();
    store(v - 1);
    return v;
  }
  Peeked& operator+=(T d) {
    store(load() + d);
    return *this;
  }

 private:
  std::atomic<T> v_;
};

struct M;
struct P;
struct SudoG;
struct MCache;
struct RuntimeTimer;

// One entry of a P's timer heap (runtime/time/timer.h): the timer's
// deadline is copied next to the pointer so that sifting reads one array.
struct TimerHeapEntry {
  int64_t when;
  RuntimeTimer* t;
};

enum GStatus : uint32_t {
  kGidle = 0,
  kGrunnable = 1,
  kGrunning = 2,
  kGsyscall = 3,
  kGwaiting = 4,
  kGdead = 6,
  kGpreempted = 9,
  // Added to a stopped goroutine's status while the collector scans its
  // stack (Go's _Gscan): whoever would make it run, or change its status,
  // waits until the scan ends.
  kGscan = 0x1000,
};

enum PStatus : uint32_t {
  kPidle = 0,
  kPrunning = 1,
  kPsyscall = 2,
  kPgcstop = 3,
  kPdead = 4,
};

constexpr size_t kInlineClosure = 64;
constexpr int32_t kSudogCacheSize = 128;

// A goroutine waiting on a channel (Go's sudog). A plain send or receive
// uses the one embedded in its G (a goroutine waits on one such operation
// at a time); a select takes one per case from a per-P cache.
struct SudoG {
  G* g = nullptr;
  SudoG* next = nullptr;  // waitq links
  SudoG* prev = nullptr;
  void* elem = nullptr;     // value to send, or storage to receive into
  struct HChan* c = nullptr;
  SudoG* waitlink = nullptr;  // g->waiting list of a select
  bool is_select = false;
  bool success = false;  // woken by a completed operation, not by close
};

struct G {
  void* sched_sp = nullptr;  // saved stack pointer while not running
  Stack stack;               // stack.lo == 0 until the goroutine first runs
  std::atomic<uint32_t> atomicstatus{kGidle};
  int64_t goid = 0;
  Peeked<M*> m;         // the M running this G, or nullptr (preempt drivers read it)
  Peeked<M*> lockedm;    // lock_os_thread target (goroutine dumps read it)
  uint32_t locked_count = 0;  // lock_os_thread nesting
  G* schedlink = nullptr;     // run queue / free list link
  std::atomic<bool> preempt{false};  // a preemption was requested
  bool issystem = false;             // runtime goroutine, not user-visible
  Peeked<const char*> waitreason{""};  // read by goroutine dumps on other threads
  int64_t runnable_since = 0;  // for the scheduling-latency histogram
  void* param = nullptr;       // set by the waker: the sudog that completed
  SudoG* waiting = nullptr;    // sudogs this G is blocked on (chan, select)
  SudoG sudog;                 // for a plain channel send or receive
  std::atomic<uint32_t> select_done{0};  // a select case already won

  // Thread state that follows the goroutine across Ms.
  int saved_errno = 0;
  void* eh_caught = nullptr;  // __cxa_eh_globals of the C++ runtime
  unsigned eh_uncaught = 0;
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;    // TSan builds: this goroutine's fiber (proc.cc)
  uint32_t tsan_fiber_uses = 0;  // TSan builds: goroutines or g0 entries it served

  // The closure rt::go started; stored inline when small, else in a GC
  // object (the G's reference is what keeps it alive).
  void (*fn_run)(void*) = nullptr;
  void (*fn_destroy)(void*) = nullptr;
  void* fn_obj = nullptr;  // points into fn_buf or into a GC object

  // Set by entersyscall for the collector: the stack pointer of the frame
  // that entered the system call and the callee-saved registers (rbx, rbp,
  // r12-r15) as they were then (runtime/gc/mgcmark.cc).
  uintptr_t syscallsp = 0;
  uintptr_t syscallregs[6] = {};

  // The collector's per-goroutine state (runtime/gc/mgcmark.cc): the
  // number of the mark phase that last scanned this stack, and the
  // allocation credit (bytes; negative: debt) of mark assists.
  std::atomic<uint32_t> gcscan_cycle{0};
  int64_t gc_assist_bytes = 0;
  alignas(16) unsigned char fn_buf[kInlineClosure];
};

// A FIFO queue of goroutines linked through G::schedlink (Go's gQueue and
// gList in one type): the global run queue, the free-G lists, the
// goroutines a channel close or the netpoller makes ready. A G is on at
// most one such queue at a time. Not synchronised: its owner's lock (or
// its being local to one M) protects it.
struct GQueue {
  G* head = nullptr;
  G* tail = nullptr;

  bool empty() const { return head == nullptr; }
  inline void push_back(G* gp);
  inline void push_front(G* gp);
  // Appends every G of q (in order) and leaves q empty.
  inline void push_back_all(GQueue* q);
  // Puts every G of q (in order) before this queue's and leaves q empty.
  inline void push_front_all(GQueue* q);
  inline G* pop();  // nullptr when empty
};

struct M {
  G* g0 = nullptr;         // scheduler goroutine: runs on the thread stack
  uintptr_t g0_top = 0;    // mcall resets the g0 stack pointer here
  uintptr_t g0_lo = 0;
  Peeked<G*> curg;        // user G running on this M (read by sysmon, preemptall)
  P* p = nullptr;          // attached P
  P* nextp = nullptr;      // P handed over by startm
  P* oldp = nullptr;       // P held before entering a syscall
  int64_t id = 0;
  bool spinning = false;   // looking for work
  bool blocked = false;    // parked on its note
  int locks = 0;           // runtime locks held; > 0 forbids preemption
  bool ism0 = false;
  Note park;
  M* schedlink = nullptr;  // on sched.midle
  M* alllink = nullptr;    // on allm
  G* lockedg = nullptr;    // goroutine locked to this thread
  uint64_t fastrand = 0;
  pthread_t thread{};
  int* errno_ptr = nullptr;     // this thread's errno and C++ exception
  void* eh_globals = nullptr;   // globals, looked up once in minit
  pid_t procid = 0;
  void* altstack = nullptr;
  std::atomic<bool> preempt_signal_pending{false};  // a SIGURG is on its way (preempt.cc)
  std::atomic<int64_t> preempt_signal_sent{0};       // when it was sent (nanotime)
  void (*mcall_fn)(G*) = nullptr;  // g0 function of the pending mcall (ASan builds)
  void* tsan_thread_fiber = nullptr;  // TSan builds: the thread's own fiber (proc.cc)
#ifdef RT_DEBUG
  HeldLock locks_held[kMaxLocksHeld];  // lock ranks (lockrank.h)
  int nlocks_held = 0;
#endif
  // Passed to park_m by gopark.
  bool (*waitunlockf)(G*, void*) = nullptr;
  void* waitlock = nullptr;
};

// Counters kept per P (only the owning M writes them: no locked adds)
// and summed on demand by any thread.
struct PStats {
  Peeked<uint64_t> ctxswitches;     // goroutine switches (execute)
  Peeked<uint64_t> goroutines_created;
  Peeked<uint64_t> goroutines_exited;
  Peeked<uint64_t> steal_attempts;
  Peeked<uint64_t> stolen;          // goroutines taken from other Ps
  Peeked<uint64_t> parks;           // gopark calls
  Peeked<uint64_t> readies;         // goready calls
  Peeked<uint64_t> preemptions;     // yields because of a preemption request
};

// TSan builds: fibers of exited goroutines, for the next goroutines their
// P starts (proc.cc). Only the P's owner touches it.
struct TsanFiberCache {
  static constexpr int32_t kSize = 16;
  struct Entry {
    void* fiber;
    uint32_t uses;
  };
  Entry entries[kSize];
  int32_t n = 0;
};

struct SysmonTick {
  uint32_t schedtick = 0;
  int64_t schedwhen = 0;
  uint32_t syscalltick = 0;
  int64_t syscallwhen = 0;
};

struct P {
  int32_t id = 0;
  std::atomic<uint32_t> status{kPidle};
  P* link = nullptr;        // on sched.pidle
  Peeked<uint32_t> schedtick;  // incremented on every schedule() (sysmon reads it)
  std::atomic<uint32_t> syscalltick{0};  // incremented on every syscall
  SysmonTick sysmontick;    // sysmon's last observation
  Peeked<M*> m;            // owner, when running (read by sysmon, preemptall)
  policy::LocalRunq runq;
  GQueue gfree;
  int32_t gfreecnt = 0;
  StackCache stackcache;
  MCache* mcache = nullptr;  // per-P allocation cache (runtime/mem/mcache.h)
  uint64_t goidcache = 0;
  uint64_t goidcacheend = 0;
  SudoG* sudogcache[kSudogCacheSize];
  int32_t nsudog = 0;
  PStats stats;
#ifdef RT_TSAN
  TsanFiberCache tsan_fibers;
#endif

  // Timers (runtime/time/timer.h): a 4-ary min-heap on when. timers_lock
  // guards the heap and every timer in it; num_timers and timer0_when
  // mirror it for lock-free checks (timer0_when is 0 when the heap is
  // empty). Timers move with their P when procresize destroys it.
  Lock timers_lock{LockRank::kTimers};
  MetaVector<TimerHeapEntry> timers;
  std::atomic<int32_t> num_timers{0};
  std::atomic<int64_t> timer0_when{0};

  // 1 while a for_each_p round waits for this P to run its function
  // (Go's runSafePointFn); whoever clears it with a compare-and-swap runs
  // the function for this P.
  std::atomic<uint32_t> run_safe_point_fn{0};
};

struct Sched {
  Lock lock{LockRank::kSched};
  M* midle = nullptr;
  int32_t nmidle = 0;
  int32_t nmidlelocked = 0;  // locked Ms waiting for their G
  int64_t mnext = 0;         // next M id, also the number of Ms created
  int32_t maxmcount = 10000;
  int32_t nmsys = 0;         // system Ms (sysmon) not counted for deadlock
  int32_t nmfreed = 0;       // Ms that exited

  Peeked<P*> pidle;  // under lock; exitsyscallfast peeks, as Go's does
  std::atomic<int32_t> npidle{0};
  std::atomic<int32_t> nmspinning{0};

  GQueue runq;  // the global run queue
  // Its length: written under lock (add_runqsize), read without it by the
  // scheduler's peeks (schedule, findrunnable, handoffp, retake), as Go
  // reads sched.runqsize; relaxed, because a stale value only delays or
  // wastes one look at the queue, which is then taken under lock.
  std::atomic<int32_t> runqsize{0};

  Lock gflock{LockRank::kGfree};
  GQueue gfree;
  // Its length: written under gflock, peeked without it by gfget, as Go
  // peeks sched.gFree; a stale value costs one look under the lock.
  Peeked<int32_t> ngfree;

  std::atomic<uint32_t> gcwaiting{0};  // stop-the-world in progress
  int32_t stopwait = 0;
  Note stopnote;

  // The for_each_p round in progress (Go's safePointFn): the function and
  // its argument, set under lock before any P's run_safe_point_fn; the Ps
  // still to run it (under lock), and the note its caller sleeps on.
  void (*safe_point_fn)(P*, void*) = nullptr;
  void* safe_point_arg = nullptr;
  int32_t safe_point_wait = 0;
  Note safe_point_note;

  std::atomic<uint64_t> goidgen{0};
  PStats dead_p_stats;  // stats of destroyed Ps
  std::atomic<uint64_t> spinning_wakeups{0};
  std::atomic<uint64_t> stw_count{0};
};

inline void GQueue::push_back(G* gp) {
  gp->schedlink = nullptr;
  if (tail != nullptr)
    tail->schedlink = gp;
  else
    head = gp;
  tail = gp;
}

inline void GQueue::push_front(G* gp) {
  gp->schedlink = head;
  head = gp;
  if (tail == nullptr) tail = gp;
}

inline void GQueue::push_back_all(GQueue* q) {
  if (q->empty()) return;
  if (tail != nullptr)
    tail->schedlink = q->head;
  else
    head = q->head;
  tail = q->tail;
  *q = GQueue{};
}

inline void GQueue::push_front_all(GQueue* q) {
  if (q->empty()) return;
  q->tail->schedlink = head;
  head = q->head;
  if (tail == nullptr) tail = q->tail;
  *q = GQueue{};
}

inline G* GQueue::pop() {
  G* gp = head;
  if (gp != nullptr) {
    head = gp->schedlink;
    if (head == nullptr) tail = nullptr;
    gp->schedlink = nullptr;
  }
  return gp;
}

extern Sched sched;
extern std::atomic<int32_t> gomaxprocs;
extern P* allp[];  // indexed by P id, [0, gomaxprocs)
constexpr int kMaxProcs = 256;
extern std::atomic<M*> allm;
extern std::atomic<bool> main_started;

}  // namespace rt::internal

// The current goroutine and M live in two thread-local words. They are read
// with a volatile %fs-relative load each time: the compiler may never cache
// them (or the address of a thread_local) across a call, because a
// goroutine can resume on another thread after any call that switches.
// The runtime is always linked into the executable, so the local-exec TLS
// model applies.
extern "C" __thread rt::internal::G* rt_tls_g;
extern "C" __thread rt::internal::M* rt_tls_m;

namespace rt::internal {

inline G* getg() {
  G* gp;
  asm volatile("movq %%fs:rt_tls_g@tpoff, %0" : "=r"(gp));
  return gp;
}
inline M* getm() {
  M* mp;
  asm volatile("movq %%fs:rt_tls_m@tpoff, %0" : "=r"(mp));
  return mp;
}
inline void setg(G* gp) { asm volatile("movq %0, %%fs:rt_tls_g@tpoff" : : "r"(gp) : "memory"); }
inline void setm(M* mp) { asm volatile("movq %0, %%fs:rt_tls_m@tpoff" : : "r"(mp) : "memory"); }

// Fatal runtime errors: print "fatal error: msg", a goroutine dump, exit 2.
[[noreturn]] void throw_fatal(const char* msg);

// Invariant checks too costly for hot paths in optimised builds; on with
// --config=dbg (RT_DEBUG).
#ifdef RT_DEBUG
#define RT_DEBUG_ASSERT(cond, msg) \
  do {                             \
    if (!(cond)) ::rt::internal::throw_fatal(msg); \
  } while (0)
#else
#define RT_DEBUG_ASSERT(cond, msg) \
  do {                             \
  } while (0)
#endif
// As throw_fatal, but for errors of the user program (deadlock): same
// output, no runtime stack trace.
[[noreturn]] void fatal_user(const char* msg);
// Calls fn for every G ever created (including dead ones on free lists).
void for_each_g(void (*fn)(G*, void*), void* arg);
// Every G ever created, append-only: allgs[0, allglen) (the collector's
// stack roots index it).
extern G** allgs;
extern std::atomic<size_t> allglen;

uint32_t fastrand();
uint32_t fastrandn(uint32_t n);

// Scheduler entry points shared with sync, chan, time and the policies.
void gopark(bool (*unlockf)(G*, void*), void* lock, const char* reason);
void goready(G* gp);
void mcall(void (*fn)(G*));
void systemstack(void (*fn)(void*), void* arg);
void gosched_impl();
[[noreturn]] void schedule();
// Safe point: if a preemption was requested for the current goroutine,
// yield now. Cheap when nothing was requested.
void preempt_check_slow();
inline void preempt_check() {
  G* gp = getg();
  if (__builtin_expect(gp->preempt.load(std::memory_order_relaxed), 0)) preempt_check_slow();
}

// Global run queue; the caller holds sched.lock.
void globrunqput(G* gp);
void globrunqputbatch(GQueue* batch, int32_t n);
G* globrunqget(P* p, int32_t max);
// The same, taking sched.lock.
void globrunqput_locked(G* gp);

// Status transitions. Each transition has exactly one owner (the G's M
// parking it, the waker that dequeued it under a lock, the M that took it
// from a run queue). The collector adds kGscan to a goroutine that is not
// running while it scans the stack, so a transition out of a stopped
// status is a compare-and-swap that waits out a scan (Go's casgstatus);
// the collector never touches a running goroutine's status, so leaving
// kGrunning is a checked store.
[[noreturn]] void bad_gstatus(G* gp, uint32_t from, uint32_t to, uint32_t actual);
inline void casgstatus(G* gp, uint32_t from, uint32_t to) {
  if (from == kGrunning) {
    uint32_t actual = gp->atomicstatus.load(std::memory_order_acquire);
    if (__builtin_expect(actual != from, 0)) bad_gstatus(gp, from, to, actual);
    gp->atomicstatus.store(to, std::memory_order_release);
    return;
  }
  uint32_t expected = from;
  while (__builtin_expect(!gp->atomicstatus.compare_exchange_weak(expected, to, std::memory_order_acq_rel), 0)) {
    if ((expected & ~uint32_t(kGscan)) != from) bad_gstatus(gp, from, to, expected);
    __builtin_ia32_pause();
    expected = from;
  }
}
// The status without the scan bit (dumps, counts, checks).
inline uint32_t readgstatus(const G* gp) {
  return gp->atomicstatus.load(std::memory_order_acquire) & ~uint32_t(kGscan);
}
// Makes the goroutines of list (n of them, all waiting) runnable: as many
// as there are idle Ps go to the global queue with an M started for each
// such P, the rest to the current P's queue (all to the global queue when
// the caller has no P, as sysmon). Go's injectglist.
void injectglist(GQueue* list, int32_t n);
// Returns p's cached sudogs to the central list (P destroyed).
void sudogcache_clear(P* p);
void wakep();

// Stops every P (Go's stopTheWorld), one stop at a time (the world
// semaphore). Returns when the stop began: once the semaphore is taken,
// so that waiting for another stop is not part of this one (Go's
// pauseStart).
int64_t stop_the_world(const char* reason);
// Restarts every P; returns when the world runs again: every P with work
// handed to an M, before the extra wakeup for queued work and the
// semaphore's release (Go's startTheWorldWithSema: the end of a pause as
// PauseNs counts it).
int64_t start_the_world();

// Runs fn(p, arg) once for every P, each at a safe point of that P, without
// stopping the world (Go's forEachP, the ragged barrier): the caller's own
// P runs it at once; an idle P, and a P whose M is in a system call (taken
// from it as sysmon's retake does), are run by the caller under sched.lock;
// a running P is asked through the preemption policy (re-asked every
// 100 us) and runs fn in schedule(), in findrunnable before it goes idle,
// or in entersyscall before it leaves its P, always by the P's owner. So
// fn sees p with nobody else touching its per-P state (mcache, mark work),
// and when for_each_p returns every P has run it exactly once. With coop
// a goroutine that reaches no safe point delays the return, as it delays
// a stop-the-world. fn runs under sched.lock for some Ps: it may take only
// locks ranked after kSched, and must not block or allocate from the GC
// heap. The caller is a goroutine holding no runtime lock; the world
// semaphore is held for the duration, so no stop-the-world (and no other
// round) overlaps it.
void for_each_p(void (*fn)(P*, void*), void* arg);

// entersyscall is assembly (asm_amd64.S): it records the caller's stack
// pointer and callee-saved registers in the G for the collector, then
// runs entersyscall_body. Called directly, so those registers are the
// caller's own.
extern "C" void rt_entersyscall();
inline __attribute__((always_inline)) void entersyscall() { rt_entersyscall(); }
void entersyscallblock();
void exitsyscall();

// Counters summed over all Ps.
PStats sched_stats();
int64_t gcount();

// Start-up.
struct StartupOptions {
  int32_t procs;
  size_t stack_size;
  int guard_budget;
  int64_t schedtrace_ms;
  bool scheddetail;
};
void schedinit(const StartupOptions& opts);
void start_sysmon(int64_t schedtrace_ms, bool scheddetail);
void schedtrace(bool detailed);

// ---- Lock fast paths (declared in lock.h) ----------------------------------

inline void Lock::lock() {
#ifdef RT_DEBUG
  lock_rank_acquire(this, rank_);
#endif
  if (M* mp = getm()) mp->locks++;
  uint32_t v = state_.exchange(1, std::memory_order_acquire);
  if (__builtin_expect(v != 0, 0)) lock_slow(v);
}

inline void SpinLock::lock() {
#ifdef RT_DEBUG
  lock_rank_acquire(this, rank_);
#endif
  if (M* mp = getm()) mp->locks++;
  if (__builtin_expect(state_.exchange(1, std::memory_order_acquire) != 0, 0)) lock_slow();
}

inline void SpinLock::unlock() {
  RT_DEBUG_ASSERT(state_.load(std::memory_order_relaxed) == 1, "unlock of unlocked spin lock");
#ifdef RT_DEBUG
  lock_rank_release(this);
#endif
  state_.store(0, std::memory_order_release);
  if (M* mp = getm()) mp->locks--;
}

inline void Lock::unlock() {
#ifdef RT_DEBUG
  lock_rank_release(this);
#endif
  uint32_t v = state_.exchange(0, std::memory_order_release);
  if (__builtin_expect(v != 1, 0)) {
    if (v == 0) unlock_unlocked();
    futex_wake(&state_, 1);
  }
  if (M* mp = getm()) mp->locks--;
}

}  // namespace rt::internal

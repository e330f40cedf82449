// rtlab: a Go-style runtime in C++. This header pulls in the whole public API.
//
// A program hands its main function to rt::run, which starts the runtime
// (schedinit, the main goroutine, sysmon) and never returns: the process
// exits with main's return value, exactly like a Go program. Inside, code
// runs on goroutines:
//
//   int main(int argc, char** argv) {
//     return rt::run(argc, argv, [] {
//       rt::WaitGroup wg;
//       wg.add(1);
//       rt::go([&] { work(); wg.done(); });
//       wg.wait();
//       return 0;
//     });
//   }
//
// Goroutines must block only through rt primitives (rt::Mutex, channels,
// rt::sys calls). A goroutine blocked in an OS mutex or condition variable
// holds its thread and its P, and can deadlock the program: the runtime
// cannot see it waiting.
//
// Environment: GOMAXPROCS (number of Ps; invalid values are ignored, as in
// Go), GODEBUG (comma-separated key=value: schedtrace=N prints a scheduler
// line every N ms, scheddetail=1 adds per-P/M/G lines, stacksize=BYTES sets
// the goroutine stack size, stackguard=N the number of stacks that get a
// guard page, schedlatency=1 records scheduling latency, gctrace=1 prints a
// line per garbage collection), GOGC (see rt/gc.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "rt/chan.h"
#include "rt/gc.h"
#include "rt/map.h"
#include "rt/mem.h"
#include "rt/net.h"
#include "rt/panic.h"
#include "rt/sync.h"
#include "rt/sys.h"
#include "rt/time.h"

// A goroutine's closure and its entry points live outside namespace rt on
// purpose: signal preemption tells runtime code from user code by symbol
// (runtime/arch/rt_text.ld), and the goroutine's body, which the compiler
// inlines into these, is user code.
namespace rt_closure {
template <class F, class... Args>
struct Go {
  F fn;
  std::tuple<Args...> args;
  void operator()() { std::apply(fn, args); }
};
template <class C>
void run(void* p) {
  (*static_cast<C*>(p))();
}
template <class C>
void destroy(void* p) {
  static_cast<C*>(p)->~C();
}
}  // namespace rt_closure

namespace rt {

namespace internal {
struct G;
G* newproc_begin(void** storage, size_t size, size_t align);
void newproc_end(G* g, void (*run)(void*), void (*destroy)(void*));
void preempt_check_public();
[[noreturn]] void goexit_unwind();
}  // namespace internal

// Starts the runtime and runs main as the main goroutine. Does not return:
// the process exits with main's result once it returns (other goroutines
// are not waited for, as in Go).
[[noreturn]] int run(int argc, char** argv, std::function<int()> main);

// Starts f(args...) in a new goroutine. The arguments are copied (or moved)
// now, like the arguments of a Go statement `go f(x, y)`.
template <class F, class... Args>
void go(F&& f, Args&&... args) {
  using Closure = rt_closure::Go<std::decay_t<F>, std::decay_t<Args>...>;
  Closure closure{std::forward<F>(f), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)};
  void* mem;
  internal::G* g = internal::newproc_begin(&mem, sizeof(Closure), alignof(Closure));
  new (mem) Closure(std::move(closure));
  internal::newproc_end(g, &rt_closure::run<Closure>, &rt_closure::destroy<Closure>);
}

// Yields the processor: the goroutine goes to the global run queue.
void gosched();

// Sets GOMAXPROCS to n (a stop-the-world) and returns the previous value;
// n <= 0 only queries.
int gomaxprocs(int n);

// Number of goroutines that exist (runnable, running, blocked, in syscalls).
int num_goroutine();

// Wires the calling goroutine to its current OS thread: it only runs there,
// and no other goroutine runs there, until as many unlock_os_thread calls.
// A goroutine that exits while locked terminates its thread.
void lock_os_thread();
void unlock_os_thread();

// Ends the calling goroutine after running the destructors of its frames
// (Go's deferred calls). Implemented as an exception that only the
// goroutine's entry catches: a catch (...) that does not rethrow stops it.
// In the main goroutine, the program continues until the others finish, and
// then dies with "no goroutines (main called runtime.Goexit) - deadlock!".
[[noreturn]] inline void goexit() { internal::goexit_unwind(); }

// A safe point for loops that make no runtime call: yields if the
// scheduler asked this goroutine to stop (preemption, stop-the-world).
inline void preempt_point() { internal::preempt_check_public(); }

// The goroutine id of the caller (1 for the main goroutine).
int64_t goid();

// Monotonic time in nanoseconds.
int64_t nanotime();

// Scheduler counters, summed over all Ps.
struct SchedStats {
  uint64_t ctxswitches;
  uint64_t goroutines_created;
  uint64_t goroutines_exited;
  uint64_t steal_attempts;
  uint64_t stolen;
  uint64_t parks;
  uint64_t readies;
  uint64_t preemptions;
  uint64_t spinning_wakeups;
  uint64_t stw_count;
  uint64_t netpoll_wakeups;   // polls that found goroutines to ready
  uint64_t netpoll_blocking;  // times an M blocked in the poller
  uint64_t netpoll_injected;  // goroutines made runnable by the poller
  uint64_t netpoll_breaks;    // wake-ups of the blocked poller (eventfd writes)
  // Signal-based preemption (preempt=signal; zero under coop): SIGURGs
  // sent to stop a goroutine, goroutines they stopped, and signals after
  // which the handler left the goroutine running, by reason.
  uint64_t preempt_signals;
  uint64_t async_preemptions;
  struct PreemptRefusals {
    uint64_t not_user_g;  // the thread ran the scheduler, or no goroutine
    uint64_t stale;       // the goroutine had yielded already
    uint64_t syscall;     // in a system call
    uint64_t locks;       // holding a runtime lock, or allocating
    uint64_t runtime_pc;  // inside the runtime's own code
    uint64_t foreign_pc;  // outside the executable (libc, libstdc++, vDSO, ...)
    uint64_t stack;       // not enough room on the goroutine's stack
    uint64_t sigmask;     // signals blocked (inside a signal handler)
  } preempt_refused;
  int64_t threads;
  int gomaxprocs;
};
SchedStats read_sched_stats();

// Name of the variant of each policy axis linked into this binary, e.g.
// "perp_coop_radix" (axes in the order runq, preempt, pagealloc).
std::string variant_name();

}  // namespace rt

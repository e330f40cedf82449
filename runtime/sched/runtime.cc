// Bootstrap and the public scheduler API (Go's rt0_go, schedinit and
// runtime.main; the environment variables of runtime/extern.go).
//
// rt::run plays rt0_go: it reads GOMAXPROCS and GODEBUG, initialises the
// scheduler on the calling thread (which becomes m0), creates the main
// goroutine and enters the scheduler. The main goroutine starts sysmon and
// runs the user's main; when that returns the process exits with its
// value, without waiting for other goroutines.
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "rt/rt.h"
#include "runtime/gc/mgc.h"
#include "runtime/netpoll/netpoll.h"
#include "runtime/obs/stats.h"
#include "runtime/policy/axes.h"
#include "runtime/policy/pagealloc.h"
#include "runtime/policy/preempt.h"
#include "runtime/policy/runq.h"
#include "runtime/sched/preempt.h"
#include "runtime/sched/runtime2.h"

namespace rt {
namespace internal {

[[noreturn]] void mstart_m0();
int32_t set_gomaxprocs(int32_t n);
void lock_os_thread();
void unlock_os_thread();
bool main_called_goexit();

void preempt_check_public() { preempt_check(); }
void entersyscall_public() { entersyscall(); }
void exitsyscall_public() { exitsyscall(); }

namespace {

std::function<int()>* main_fn = nullptr;
int64_t schedtrace_ms = 0;
bool scheddetail = false;

// Go's atoi32: decimal digits only, no sign, no overflow.
bool parse_int(std::string_view s, int64_t max, int64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

int32_t ncpu() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int32_t(n) : 1;
}

// GODEBUG: comma-separated key=value pairs. Unknown keys are ignored, as in
// Go, so that a GODEBUG meant for the Go twin of a workload is harmless.
void parse_godebug(const char* env, StartupOptions* opts) {
  if (env == nullptr) return;
  std::string_view all(env);
  while (!all.empty()) {
    size_t comma = all.find(',');
    std::string_view item = all.substr(0, comma);
    all = comma == std::string_view::npos ? std::string_view() : all.substr(comma + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = item.substr(0, eq);
    int64_t v;
    if (!parse_int(item.substr(eq + 1), INT32_MAX, &v)) continue;
    if (key == "schedtrace") {
      opts->schedtrace_ms = v;
    } else if (key == "scheddetail") {
      opts->scheddetail = v != 0;
    } else if (key == "stacksize" && v > 0) {
      opts->stack_size = size_t(v);
    } else if (key == "stackguard") {
      opts->guard_budget = int(v);
    } else if (key == "schedlatency") {
      obs::set_sched_latency_enabled(v != 0);
    } else if (key == "gctrace") {
      set_debug_gctrace(int32_t(v));
    } else if (key == "clobberfree") {
      set_debug_clobberfree(v != 0);
    } else if (key == "gcstoptheworld") {
      set_debug_gcstoptheworld(int32_t(v));
    } else if (key == "gccheckmark") {
      set_debug_gccheckmark(v != 0);
    } else if (key == "asyncpreemptoff") {
      debug_asyncpreemptoff = v != 0;
    }
  }
}

void runtime_main() {
  main_started.store(true);
  start_sysmon(schedtrace_ms, scheddetail);
  gcenable();
  int code = (*main_fn)();
  fflush(nullptr);
  _exit(code);
}

}  // namespace
}  // namespace internal

int run(int argc, char** argv, std::function<int()> main) {
  (void)argc;
  (void)argv;
  using namespace internal;
  if (main_fn != nullptr) throw_fatal("rt::run called twice");
  StartupOptions opts{ncpu(), 64 << 10, 16384, 0, false};
  int64_t procs;
  if (const char* env = getenv("GOMAXPROCS"); env != nullptr && parse_int(env, kMaxProcs, &procs) && procs > 0) {
    opts.procs = int32_t(procs);
  }
  if (opts.procs > kMaxProcs) opts.procs = kMaxProcs;
  parse_godebug(getenv("GODEBUG"), &opts);
  schedtrace_ms = opts.schedtrace_ms;
  scheddetail = opts.scheddetail;
  main_fn = new std::function<int()>(std::move(main));
  schedinit(opts);
  go(runtime_main);
  mstart_m0();
}

void gosched() { internal::gosched_impl(); }

int gomaxprocs(int n) { return internal::set_gomaxprocs(n); }

int num_goroutine() { return int(internal::gcount()); }

void lock_os_thread() { internal::lock_os_thread(); }
void unlock_os_thread() { internal::unlock_os_thread(); }

int64_t goid() { return internal::getg()->goid; }

int64_t nanotime() { return internal::nanotime(); }

SchedStats read_sched_stats() {
  using namespace internal;
  PStats p = sched_stats();
  SchedStats s{};
  s.ctxswitches = p.ctxswitches;
  s.goroutines_created = p.goroutines_created;
  s.goroutines_exited = p.goroutines_exited;
  s.steal_attempts = p.steal_attempts;
  s.stolen = p.stolen;
  s.parks = p.parks;
  s.readies = p.readies;
  s.preemptions = p.preemptions;
  s.spinning_wakeups = sched.spinning_wakeups.load();
  s.stw_count = sched.stw_count.load();
  NetpollStats np = netpoll_stats();
  s.netpoll_wakeups = np.polls_with_events;
  s.netpoll_blocking = np.blocking_polls;
  s.netpoll_injected = np.injected;
  s.netpoll_breaks = np.breaks;
  AsyncPreemptStats a = async_preempt_stats();
  s.preempt_signals = a.signals_sent;
  s.async_preemptions = a.preemptions;
  s.preempt_refused = SchedStats::PreemptRefusals{
      a.refused[kRefusedNotUserG], a.refused[kRefusedStale],     a.refused[kRefusedSyscall],
      a.refused[kRefusedLocks],    a.refused[kRefusedRuntimePC], a.refused[kRefusedForeignPC],
      a.refused[kRefusedStack],    a.refused[kRefusedSigmask]};
  {
    internal::LockGuard g(sched.lock);
    s.threads = sched.mnext - sched.nmfreed;
  }
  s.gomaxprocs = internal::gomaxprocs.load();
  return s;
}

std::string variant_name() {
  std::string name;
#define RT_APPEND_AXIS_VARIANT(axis) name.append(name.empty() ? "" : "_").append(policy::axis::name());
  RT_POLICY_AXES(RT_APPEND_AXIS_VARIANT)
#undef RT_APPEND_AXIS_VARIANT
  return name;
}

namespace sys {
namespace {
// errno through a call the compiler cannot see into: after a syscall the
// goroutine may be on another thread (see rt/sys.h).
__attribute__((noinline, noipa)) void set_errno(int e) { errno = e; }
__attribute__((noinline, noipa)) int get_errno() { return errno; }

template <class F>
long syscall_result(F&& call) {
  internal::preempt_check();
  internal::entersyscall();
  long r;
  int e;
  do {
    r = call();
    e = r < 0 ? get_errno() : 0;
  } while (e == EINTR);
  internal::exitsyscall();
  if (r < 0) {
    set_errno(e);
    return -e;
  }
  return r;
}
}  // namespace

// A signal that arrives before any byte moved makes the kernel fail the
// call with EINTR (handlers without SA_RESTART): that is no result, so the
// call is made again, as Go's internal/poll does (ignoringEINTRIO). After
// some bytes moved the kernel returns their count instead.
template <class F>
long retry_eintr(F&& call) {
  long r;
  do {
    r = call();
  } while (r < 0 && errno == EINTR);
  return r;
}

ssize_t read(int fd, void* buf, size_t n) {
  return syscall_result([&] { return retry_eintr([&] { return long(::read(fd, buf, n)); }); });
}

ssize_t write(int fd, const void* buf, size_t n) {
  return syscall_result([&] { return retry_eintr([&] { return long(::write(fd, buf, n)); }); });
}

int nanosleep(int64_t ns) {
  if (ns <= 0) return 0;
  return int(syscall_result([&] {
    struct timespec ts{time_t(ns / 1000000000), long(ns % 1000000000)};
    while (::nanosleep(&ts, &ts) != 0) {
      if (errno != EINTR) return -1L;
    }
    return 0L;
  }));
}

}  // namespace sys
}  // namespace rt

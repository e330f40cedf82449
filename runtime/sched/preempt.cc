// Signal-based asynchronous preemption (Go's preempt.go, signal_unix.go's
// doSigPreempt / wantAsyncPreempt / isAsyncSafePoint, and sigctxt.pushCall
// of signal_amd64.go; golang/proposal design 24543).
//
// Sending. When sysmon finds a goroutine over its 10 ms slice, or a
// stop-the-world must stop every P, the signal variant sets gp->preempt
// (the cooperative request every safe point honours) and calls preempt_m,
// which sends SIGURG to the M's thread with tgkill. m->preempt_signal_pending
// keeps at most one signal per M in flight; the handler clears it. SIGURG
// is what Go uses: ordinary programs ignore it, and debuggers pass it on.
//
// Deciding. The handler runs on the M's alternate signal stack
// (SA_ONSTACK) with every signal blocked. A SIGURG that the runtime did
// not send (not SI_TKILL from this process, or no signal pending on this
// M) goes to the handler that was installed before the runtime started,
// if any. For ours, the interrupted instruction is an async-safe point
// only if all of these hold, checked in this order (each failure is
// counted by reason, and the request simply stays for the next round):
//   - the M runs a user goroutine: getg() == m->curg (not g0, so not the
//     scheduler or a systemstack call), in status kGrunning (not in a
//     system call), and the request still stands (gp->preempt);
//   - m->locks == 0: no runtime lock held, not inside mallocgc or
//     newproc (both hold m->locks), a P attached;
//   - the PC is in the main executable's .text section, and not in the
//     runtime's own code nor inside an inline write-barrier sequence (rt/gc.h's
//     ref_store: the test of the barrier flag and the store it guards
//     must not be split by a stop; each inlined copy records its bounds
//     in the section rt_wb_sequences, sorted at start-up and searched
//     here; such refusals count as runtime PCs). The runtime is compiled with -ffunction-sections, and the
//     linker script runtime/arch/rt_text.ld gathers its functions (every
//     rt:: symbol and the rt_ assembly) into one output section, rt_text,
//     bounded by rt_text_begin and rt_text_end; user code is compiled
//     without LTO, so no runtime code is ever inlined outside that range.
//     A PC in libc, libstdc++, the vDSO or any other shared object is
//     never safe: the goroutine might hold malloc's or stdio's lock, and
//     the next goroutine on that thread would deadlock (or, with a
//     recursive stdio lock, corrupt the stream). Nor is a PC in the
//     executable's other code sections: a PLT stub (.plt, .plt.got,
//     .plt.sec) runs on the way from any caller, the runtime included,
//     to a shared object, and a stop there is a stop inside the caller
//     (under ASan, between the two halves of a fiber switch). The same
//     linker script gives the bounds of .text, rt_user_text_begin/end;
//   - the stack pointer lies in the goroutine's stack with room for the
//     trampoline's frame (red zone, registers, XSAVE area, the calls down
//     to mcall);
//   - the interrupted code had no signal blocked (it is not itself a
//     signal handler, and not inside a region that masks signals).
// If so, the handler rewrites the signal context so that the thread
// "calls" rt_async_preempt (runtime/arch/preempt_amd64.S, frame layout in
// runtime/arch/preempt_frame.h) when the handler returns.
//
// Stopping. The trampoline saves the registers, flags and extended state
// on the goroutine's stack and calls rt_async_preempt2, which gives the
// goroutine up with mcall (carrying errno and the C++ exception globals,
// as every switch does). On g0 the goroutine enters kGpreempted: stopped
// at an async safe point, its complete register state in the trampoline
// frame, owned by no M. A stack-scanning collector's suspendG claims
// goroutines in that state (Go's preemptPark); until one exists, the
// parking M makes it runnable at once and queues it globally, as Go does
// for a time-slice preemption (gopreempt_m). Scheduled again, possibly on
// another thread, it returns through the trampoline to the exact
// instruction where it was stopped.
//
// Invariants: a goroutine is only ever stopped at a PC in user text with
// m->locks == 0 (debug builds re-check in rt_async_preempt2 with dladdr);
// only the M's own thread rewrites its context; kGpreempted is entered
// and left by the parking M only.
#include "runtime/sched/preempt.h"

#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "runtime/arch/preempt_frame.h"
#include "runtime/obs/stats.h"
#include "runtime/sched/signals.h"

extern "C" {
// Read by the trampoline.
uint64_t rt_xsave_size = 0;
uint64_t rt_xsave_mask = 0;
void rt_async_preempt();
void rt_async_preempt2(rt::internal::AsyncPreemptFrame* frame);
// Defined by the linker script runtime/arch/rt_text.ld (the runtime's code,
// and the .text section, where all other code of the executable is); null
// if a binary was linked without it.
extern const char rt_text_begin[] __attribute__((weak, visibility("hidden")));
extern const char rt_text_end[] __attribute__((weak, visibility("hidden")));
extern const char rt_user_text_begin[] __attribute__((weak, visibility("hidden")));
extern const char rt_user_text_end[] __attribute__((weak, visibility("hidden")));
}

namespace rt::internal {

bool debug_asyncpreemptoff = false;

namespace {

// Frames below the trampoline's: rt_async_preempt2, mcall, rt_mcall's
// saved registers (ASan's fake-stack bookkeeping needs more).
#ifdef RT_ASAN
constexpr uintptr_t kPreemptCallRoom = 8192;
#else
constexpr uintptr_t kPreemptCallRoom = 2048;
#endif

struct TextRange {
  uintptr_t lo, hi;
};

struct AsyncPreemptConfig {
  bool enabled = false;
  pid_t pid = 0;
  TextRange user_text = {};
  TextRange rt_text = {};
  uintptr_t stack_room = 0;
  struct sigaction prev = {};  // SIGURG's handler before ours
};
AsyncPreemptConfig config;

struct Counters {
  std::atomic<uint64_t> signals_sent{0};
  std::atomic<uint64_t> preemptions{0};
  std::atomic<uint64_t> refused[kNumPreemptRefusals]{};
};
Counters counters;

constexpr int kNotRefused = -1;

bool in_range(const TextRange& r, uintptr_t pc) { return pc >= r.lo && pc < r.hi; }
bool in_user_text(uintptr_t pc) { return in_range(config.user_text, pc); }
bool in_runtime_text(uintptr_t pc) { return in_range(config.rt_text, pc); }

// Whether pc lies inside an inline write-barrier sequence (binary search
// of the table, sorted once by async_preempt_init; sequences never nest).
bool in_write_barrier_sequence(uintptr_t pc) {
  const WriteBarrierSequence* lo = __start_rt_wb_sequences;
  const WriteBarrierSequence* hi = __stop_rt_wb_sequences;
  while (lo < hi) {
    const WriteBarrierSequence* mid = lo + (hi - lo) / 2;
    if (pc < mid->lo) {
      hi = mid;
    } else if (pc >= mid->hi) {
      lo = mid + 1;
    } else {
      return true;
    }
  }
  return false;
}

void sort_write_barrier_sequences() {
  if (__start_rt_wb_sequences == nullptr) return;
  std::sort(__start_rt_wb_sequences, __stop_rt_wb_sequences,
            [](const WriteBarrierSequence& a, const WriteBarrierSequence& b) { return a.lo < b.lo; });
}

// isAsyncSafePoint and wantAsyncPreempt together; returns kNotRefused or
// the first reason that fails (see the file comment).
int async_safe_point(M* mp, const ucontext_t* uc) {
  G* gp = mp->curg;
  if (gp == nullptr || getg() != gp) return kRefusedNotUserG;
  uint32_t status = gp->atomicstatus.load(std::memory_order_relaxed);
  if (status == kGsyscall) return kRefusedSyscall;
  if (status != kGrunning) return kRefusedNotUserG;
  if (!gp->preempt.load(std::memory_order_relaxed)) return kRefusedStale;
  if (mp->locks != 0 || mp->p == nullptr) return kRefusedLocks;
  int pc_refused = async_preempt_pc_refusal(uintptr_t(uc->uc_mcontext.gregs[REG_RIP]));
  if (pc_refused != kNotRefused) return pc_refused;
  uintptr_t sp = uintptr_t(uc->uc_mcontext.gregs[REG_RSP]);
  if (sp > gp->stack.hi || sp < gp->stack.lo || sp - gp->stack.lo < config.stack_room) return kRefusedStack;
  // Only the first 64 bits are the kernel's mask; glibc's sigset_t is
  // larger, and the rest of it overlaps the signal frame's siginfo.
  uint64_t blocked;
  memcpy(&blocked, &uc->uc_sigmask, sizeof blocked);
  if (blocked != 0) return kRefusedSigmask;
  return kNotRefused;
}

// Makes the interrupted thread resume in rt_async_preempt as if the
// interrupted instruction had called it, below the red zone.
void push_call(ucontext_t* uc) {
  greg_t* regs = uc->uc_mcontext.gregs;
  uintptr_t sp = uintptr_t(regs[REG_RSP]) - RT_PF_REDZONE - sizeof(uint64_t);
  *reinterpret_cast<uint64_t*>(sp) = uint64_t(regs[REG_RIP]);
  regs[REG_RSP] = greg_t(sp);
  regs[REG_RIP] = greg_t(reinterpret_cast<uintptr_t>(&rt_async_preempt));
}

void forward_signal(int sig, siginfo_t* info, void* uctx) {
  const struct sigaction& prev = config.prev;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction != nullptr) prev.sa_sigaction(sig, info, uctx);
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
  }
  // SIG_DFL for SIGURG is to ignore it.
}

void sigurg_handler(int sig, siginfo_t* info, void* uctx) {
  int saved_errno = errno;
  M* mp = getm();
  bool ours = mp != nullptr && info->si_code == SI_TKILL && info->si_pid == config.pid &&
              mp->preempt_signal_pending.exchange(false, std::memory_order_acq_rel);
  if (ours) {
    auto* uc = static_cast<ucontext_t*>(uctx);
    int refused = async_safe_point(mp, uc);
    if (refused == kNotRefused) {
      push_call(uc);
    } else {
      counters.refused[refused].fetch_add(1, std::memory_order_relaxed);
    }
  } else {
    forward_signal(sig, info, uctx);
  }
  errno = saved_errno;
}

// XSAVE components to save: what the CPU supports (CPUID 0xD.0 EDX:EAX)
// and the kernel enabled (XCR0); the area size for them is CPUID 0xD.0 EBX.
bool probe_xsave() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return false;
  if (!__get_cpuid_count(0xd, 0, &eax, &ebx, &ecx, &edx)) return false;
  uint64_t supported = (uint64_t(edx) << 32) | eax;
  uint32_t xcr0_lo, xcr0_hi;
  asm volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  uint64_t xcr0 = (uint64_t(xcr0_hi) << 32) | xcr0_lo;
  rt_xsave_mask = supported & xcr0;
  rt_xsave_size = (uint64_t(ebx) + RT_PF_XSAVE_ALIGN - 1) & ~uint64_t(RT_PF_XSAVE_ALIGN - 1);
  return rt_xsave_size >= RT_PF_XSAVE_HEADER + RT_PF_XSAVE_HEADER_SIZE;
}

// The goroutine, stopped at an async safe point, leaves its M (see the
// file comment for why kGpreempted is left at once).
void async_preempt_park(G* gp) {
  M* mp = getm();
  casgstatus(gp, kGrunning, kGpreempted);
  mp->curg = nullptr;
  gp->m = nullptr;
  mp->p->stats.preemptions++;
  casgstatus(gp, kGpreempted, kGrunnable);
  if (obs::sched_latency_enabled()) gp->runnable_since = nanotime();
  globrunqput_locked(gp);
  schedule();
}

#ifdef RT_DEBUG
// Independent of the handler's ranges for the executable: the loader's
// view of which object holds pc, compared with the one holding the runtime.
bool resume_pc_is_user_code(uintptr_t pc) {
  Dl_info at, runtime;
  if (dladdr(reinterpret_cast<void*>(pc), &at) == 0) return false;
  if (dladdr(reinterpret_cast<void*>(&rt_async_preempt2), &runtime) == 0) return false;
  return at.dli_fbase == runtime.dli_fbase && !in_runtime_text(pc);
}
#endif

}  // namespace

void async_preempt_init() {
  if (debug_asyncpreemptoff) return;
#ifdef RT_TSAN
  // ThreadSanitizer defers an asynchronous signal to the thread's next
  // interceptor or atomic operation, and then runs the handler there with
  // a copy of the context saved when the signal arrived: rewriting the
  // copy cannot redirect the thread, and push_call's store through the
  // saved stack pointer lands in the frames the thread has pushed since
  // (TSan's own, which then crash). TSan builds preempt cooperatively.
  return;
#endif
  if (!probe_xsave()) return;
  config.pid = getpid();
  config.rt_text = TextRange{reinterpret_cast<uintptr_t>(rt_text_begin), reinterpret_cast<uintptr_t>(rt_text_end)};
  config.user_text =
      TextRange{reinterpret_cast<uintptr_t>(rt_user_text_begin), reinterpret_cast<uintptr_t>(rt_user_text_end)};
  for (uintptr_t fn : {reinterpret_cast<uintptr_t>(&rt_async_preempt), reinterpret_cast<uintptr_t>(&rt_async_preempt2),
                       reinterpret_cast<uintptr_t>(&async_preempt_park)}) {
    if (!in_runtime_text(fn) || in_user_text(fn) || config.user_text.lo == 0) {
      throw_fatal("async preemption: the runtime's code is not in its rt_text section (link with //runtime:arch/rt_text.ld)");
    }
  }
  sort_write_barrier_sequences();
  config.stack_room = RT_PF_REDZONE + RT_PF_SIZE + RT_PF_XSAVE_ALIGN + rt_xsave_size + kPreemptCallRoom;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = sigurg_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigfillset(&sa.sa_mask);
  if (sigaction(SIGURG, &sa, &config.prev) != 0) throw_fatal("async preemption: cannot install the SIGURG handler");
  config.enabled = true;
}

bool preempt_m(M* mp) {
  if (!config.enabled) return false;
  if (mp->preempt_signal_pending.exchange(true, std::memory_order_acq_rel)) return true;
  counters.signals_sent.fetch_add(1, std::memory_order_relaxed);
  mp->preempt_signal_sent.store(nanotime(), std::memory_order_relaxed);
  if (syscall(SYS_tgkill, config.pid, mp->procid, SIGURG) != 0) {
    mp->preempt_signal_pending.store(false, std::memory_order_release);
    return false;
  }
  return true;
}

int async_preempt_pc_refusal(uintptr_t pc) {
  if (in_runtime_text(pc) || in_write_barrier_sequence(pc)) return kRefusedRuntimePC;
  if (!in_user_text(pc)) return kRefusedForeignPC;
  return kNotRefused;
}

AsyncPreemptStats async_preempt_stats() {
  AsyncPreemptStats s{};
  s.signals_sent = counters.signals_sent.load(std::memory_order_relaxed);
  s.preemptions = counters.preemptions.load(std::memory_order_relaxed);
  for (int i = 0; i < kNumPreemptRefusals; i++) s.refused[i] = counters.refused[i].load(std::memory_order_relaxed);
  return s;
}

}  // namespace rt::internal

// Called by the trampoline on the goroutine's stack, below its saved state.
extern "C" void rt_async_preempt2(rt::internal::AsyncPreemptFrame* frame) {
  using namespace rt::internal;
  (void)frame;
  RT_DEBUG_ASSERT(resume_pc_is_user_code(frame->pc), "async preemption stopped a goroutine outside user code");
  RT_DEBUG_ASSERT(getm()->locks == 0, "async preemption stopped a goroutine holding runtime locks");
  counters.preemptions.fetch_add(1, std::memory_order_relaxed);
  getg()->preempt.store(false, std::memory_order_relaxed);
  int64_t sent = getm()->preempt_signal_sent.load(std::memory_order_relaxed);
  mcall(async_preempt_park);
  rt::obs::record_async_preempt(nanotime() - sent);
}

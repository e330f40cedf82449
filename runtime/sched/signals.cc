// Fatal signals and per-M alternate signal stacks (see signals.h).
#include "runtime/sched/signals.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>

namespace rt::internal {

[[noreturn]] void on_terminate();

namespace {

constexpr size_t kAltStackSize = 64 << 10;

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV: segmentation violation";
    case SIGBUS: return "SIGBUS: bus error";
    case SIGFPE: return "SIGFPE: floating-point exception";
    case SIGILL: return "SIGILL: illegal instruction";
    default: return "signal";
  }
}

// A fault at or just below the low end of the running goroutine's stack
// (its guard page, or the stack below it for a frame larger than a page)
// is an overflow.
bool is_stack_overflow(G* gp, uintptr_t addr) {
  if (gp == nullptr || gp->stack.lo == 0) return false;
  return addr < gp->stack.lo + 256 && addr + (256 << 10) >= gp->stack.base;
}

void fatal_signal(int sig, siginfo_t* info, void* uctx) {
  auto* uc = static_cast<ucontext_t*>(uctx);
  uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  uintptr_t pc = uintptr_t(uc->uc_mcontext.gregs[REG_RIP]);
  M* mp = getm();
  G* gp = mp != nullptr ? mp->curg.load() : nullptr;
  if ((sig == SIGSEGV || sig == SIGBUS) && getg() != nullptr && getg() != mp->g0 && is_stack_overflow(gp, addr)) {
    report_stack_overflow(gp, pc);
  }
  char buf[256];
  snprintf(buf, sizeof buf, "unexpected signal during execution\n[signal %s code=0x%x addr=0x%lx pc=0x%lx]",
           signal_name(sig), info->si_code, static_cast<unsigned long>(addr), static_cast<unsigned long>(pc));
  throw_fatal_signal(buf, pc);
}

}  // namespace

void signals_init() {
  std::set_terminate(on_terminate);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigfillset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) sigaction(sig, &sa, nullptr);
}

void signals_minit(M* mp) {
  if (mp->altstack == nullptr) {
    void* mem = mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw_fatal("minit: cannot allocate signal stack");
    mp->altstack = mem;
  }
  stack_t ss;
  ss.ss_sp = mp->altstack;
  ss.ss_size = kAltStackSize;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, nullptr) != 0) throw_fatal("minit: sigaltstack failed");
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace rt::internal

// Signal handling and fatal-error reporting (Go's signal_unix.go and the
// printing half of panic.go / traceback.go).
//
// Every M runs its signal handlers on an alternate stack, so a goroutine
// that overflows into its guard page can still be reported. A fault in a
// guard page (or just below a goroutine's stack) is a stack overflow;
// any other SIGSEGV/SIGBUS/SIGFPE/SIGILL is a fatal "unexpected signal".
// An exception that escapes a goroutine ends in std::terminate, whose
// handler prints Go's "panic: ..." text. All of them print a goroutine dump
// and exit with status 2, writing with write(2) only, because the process
// may be in any state.
#pragma once

#include "runtime/sched/runtime2.h"

namespace rt::internal {

void signals_init();
void signals_minit(M* mp);
// fault_pc: the pc a signal interrupted (the dump starts there); 0 when
// called from ordinary code (the dump starts at the caller).
[[noreturn]] void report_stack_overflow(G* gp, uintptr_t fault_pc = 0);
// A fatal signal: as throw_fatal, with the failing stack shown from the
// interrupted pc.
[[noreturn]] void throw_fatal_signal(const char* msg, uintptr_t pc);

}  // namespace rt::internal

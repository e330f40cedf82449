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
[[noreturn]] void report_stack_overflow(G* gp);

}  // namespace rt::internal

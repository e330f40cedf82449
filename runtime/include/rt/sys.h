// Blocking system calls made through the runtime.
//
// A goroutine that makes a plain blocking system call keeps its P while the
// kernel has it. Calls made through rt::sys instead tell the scheduler
// (entersyscall/exitsyscall): the P is marked as in a syscall, sysmon hands
// it to another M if the call blocks for more than about 20 us, and the
// goroutine takes a P back (its old one if still free) when the call
// returns. Other goroutines keep running meanwhile.
//
// Results follow the raw-syscall convention: >= 0 on success, -errno on
// failure (errno is also set). Returning the error keeps it from being lost
// when the goroutine resumes on another thread: a compiler may have
// computed the address of the old thread's errno before the call. A call
// interrupted by a signal is retried: these never fail with EINTR.
//
// EINTR. With the signal preemption variant (the default), the runtime
// sends SIGURG to threads running goroutines, as Go 1.14+ does. The handler
// is installed with SA_RESTART, so most interrupted system calls restart by
// themselves, but calls the kernel never restarts (nanosleep, poll, epoll_wait,
// select, sem_timedwait, socket calls with a timeout, ...) fail with EINTR
// more often than a program without the runtime would see. Code that calls
// such functions directly, including inside rt::sys::blocking, must retry
// on EINTR, as it must in Go (see Go 1.14's release notes).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace rt {
namespace internal {
void entersyscall_public();
void exitsyscall_public();
}  // namespace internal

namespace sys {

// read(2) and write(2). A signal that interrupts them before any byte
// moved does not end the call (EINTR is retried, as Go's os package does);
// one that interrupts a write after some bytes moved returns their count.
ssize_t read(int fd, void* buf, size_t n);
ssize_t write(int fd, const void* buf, size_t n);
// Sleeps the thread (not just the goroutine) for ns nanoseconds, restarting
// after signals; the P is released to others while it sleeps.
int nanosleep(int64_t ns);

// Runs f() as a blocking system call: any code that may block its thread
// in the kernel (a C library call, a foreign blocking API). f must not
// call back into the runtime.
template <class F>
decltype(auto) blocking(F&& f) {
  struct Exit {
    ~Exit() { internal::exitsyscall_public(); }
  };
  internal::entersyscall_public();
  Exit exit;
  return std::forward<F>(f)();
}

}  // namespace sys
}  // namespace rt

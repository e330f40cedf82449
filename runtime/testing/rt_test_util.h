// Helpers shared by the runtime's tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include "rt/rt.h"

namespace rt::testing {

// Sets GOMAXPROCS for the scope of a test and restores it afterwards.
class ProcsGuard {
 public:
  explicit ProcsGuard(int n) : old_(rt::gomaxprocs(n)) {}
  ~ProcsGuard() { rt::gomaxprocs(old_); }
  ProcsGuard(const ProcsGuard&) = delete;
  ProcsGuard& operator=(const ProcsGuard&) = delete;

 private:
  int old_;
};

// How many goroutines a test that wants n of them alive at once may keep:
// n, except in a ThreadSanitizer build. TSan makes every goroutine a fiber
// and lets at most 8,128 threads and fibers live at once (beyond, the
// process dies with "Thread limit (8128 threads) exceeded"), so there it
// is at most 4,000, leaving room for the Ms and the test's other fibers.
constexpr int tsan_live_goroutines(int n) {
#ifdef RT_TSAN
  return n < 4000 ? n : 4000;
#else
  return n;
#endif
}

// Whether a goroutine in a loop without safe points is stopped (by a
// signal): with the signal preemption variant, except in a
// ThreadSanitizer build, which preempts cooperatively as coop does (see
// async_preempt_init). Where it is false, tests expect what coop does.
inline bool signal_preemption() {
#ifdef RT_TSAN
  return false;
#else
  return std::string(rt::variant_name()).find("signal") != std::string::npos;
#endif
}

// Yields until pred() holds; false if timeout_ms passes first. The bound
// only turns a hang into a failure: correct code never comes near it.
template <class Pred>
bool wait_until(Pred pred, int64_t timeout_ms = 10000) {
  int64_t deadline = rt::nanotime() + timeout_ms * 1'000'000;
  while (!pred()) {
    if (rt::nanotime() > deadline) return false;
    rt::gosched();
  }
  return true;
}

// Ends the calling goroutine with rt::goexit from `depth` calls deeper (the
// frames between must unwind). noipa: the caller must not learn that this
// never returns, or the compiler could drop the code after the call that a
// test uses to show a goexit that returned.
__attribute__((noipa)) inline void goexit_from_depth(int depth) {
  std::function<void(int)> descend = [&descend](int d) { d > 0 ? descend(d - 1) : rt::goexit(); };
  descend(depth);
}

// Zeroes the stack below the caller, where the frames of the calls it
// made (and the copies of references they left) lay: the stack scan is
// conservative, and a stale copy there would keep an object alive.
inline __attribute__((noinline)) void clobber_stack() {
  char buf[16384];
  memset(buf, 0, sizeof buf);
  asm volatile("" : : "r"(buf) : "memory");  // the stores must happen
}

template <class F>
__attribute__((noinline)) void call_noinline(F& f) {
  f();
}

// Runs f in a frame of its own and then erases that frame: the references
// it held (named variables and the temporaries the compiler made) are gone
// from the stack when in_frame returns.
template <class F>
__attribute__((noinline)) void in_frame(F f) {
  call_noinline(f);
  clobber_stack();
}

}  // namespace rt::testing

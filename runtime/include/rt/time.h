// Time: sleeping, function timers and channel timers (Go's time.Sleep,
// time.AfterFunc, time.After, time.NewTimer and time.NewTicker).
//
// Both are built on the runtime's timers: per-P 4-ary heaps that the
// scheduler runs (runtime/time/timer.h). A sleeping goroutine is parked
// (wait reason "sleep" in a goroutine dump) and costs no thread; an idle
// thread waits exactly until the next timer of the whole process instead
// of polling. Channel timers deliver nanotime() values on a channel of
// capacity 1 with a non-blocking send, as Go's do: a tick nobody has
// received yet makes the next one be dropped.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <type_traits>

#include "rt/chan.h"

namespace rt {

namespace internal {
struct FuncTimer;
void time_sleep(int64_t ns);
// fn is a closure in the GC heap (after_func); the timer keeps it alive
// (a root) until the last reference to the timer goes, then destroys it.
FuncTimer* functimer_start(int64_t ns, void* fn, void (*call)(void*), void (*destroy)(void*));
bool functimer_stop(FuncTimer* t);
bool functimer_reset(FuncTimer* t, int64_t ns);
void functimer_ref(FuncTimer* t);
void functimer_unref(FuncTimer* t);
template <class F>
inline constexpr bool is_std_function_v = false;
template <class R, class... A>
inline constexpr bool is_std_function_v<std::function<R(A...)>> = true;
struct ChanTimerState;
ChanTimerState* chantimer_start(int64_t ns, int64_t period, Chan<int64_t> c);
bool chantimer_stop(ChanTimerState* t);
bool chantimer_reset(ChanTimerState* t, int64_t ns, int64_t period);
void chantimer_unref(ChanTimerState* t);
}  // namespace internal

// Pauses the calling goroutine for at least ns nanoseconds (Go's
// time.Sleep). ns <= 0 returns at once, without yielding. Must be called
// from a goroutine.
inline void sleep(int64_t ns) { internal::time_sleep(ns); }

template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
  sleep(static_cast<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
}

// A timer that calls a function once, in its own goroutine, when it
// expires (Go's *time.Timer made by time.AfterFunc). Copies are handles to
// the same timer. Dropping every handle does not stop it: it still fires.
// A default-constructed Timer is uninitialized: stop and reset panic, as
// Go's do on a zero Timer.
class Timer {
 public:
  Timer() noexcept = default;
  Timer(const Timer& o) noexcept : t_(o.t_) {
    if (t_ != nullptr) internal::functimer_ref(t_);
  }
  Timer(Timer&& o) noexcept : t_(o.t_) { o.t_ = nullptr; }
  Timer& operator=(Timer o) noexcept {
    std::swap(t_, o.t_);
    return *this;
  }
  ~Timer() {
    if (t_ != nullptr) internal::functimer_unref(t_);
  }

  // Prevents the call if the timer is still pending. Returns true if this
  // call stopped it; false if it had already expired (the function has
  // been or is being started) or been stopped. Does not wait for the
  // function to finish.
  bool stop();

  // Re-arms the timer to expire ns from now (Go's Timer.Reset). Returns
  // true if it was pending (its old expiry is replaced), false if it had
  // expired or been stopped (it is now pending again and will call the
  // function once more).
  bool reset(int64_t ns);
  template <class Rep, class Period>
  bool reset(std::chrono::duration<Rep, Period> d) {
    return reset(static_cast<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
  }

  explicit operator bool() const noexcept { return t_ != nullptr; }

 private:
  template <class F>
  friend Timer after_func(int64_t ns, F f);
  explicit Timer(internal::FuncTimer* t) noexcept : t_(t) {}
  internal::FuncTimer* t_ = nullptr;
};

// Waits ns (at least), then calls f in its own goroutine (Go's
// time.AfterFunc). ns <= 0 fires as soon as the scheduler gets to it.
// f (any callable taking no arguments) is moved into the GC heap, so what
// it captures by value (a Chan, a Ref) is visible to the collector while
// the timer may still fire or a handle to it exists; f is destroyed when
// the last of those goes. A std::function keeps its captures in malloc
// memory, out of the collector's sight: pass the lambda itself. An empty
// std::function (or a null function pointer) panics as Go's nil func does.
template <class F>
Timer after_func(int64_t ns, F f) {
  static_assert(std::is_invocable_v<F&>, "rt::after_func: f must be callable with no arguments");
  static_assert(alignof(F) <= 16, "rt::after_func: closure alignment above 16 bytes");
  if constexpr (std::is_pointer_v<F> || internal::is_std_function_v<F>) {
    if (!f) throw Panic("time: AfterFunc called with nil function");
  }
  void* mem = internal::gc_alloc_aligned(sizeof(F), alignof(F), true);
  new (mem) F(std::move(f));
  return Timer(internal::functimer_start(
      ns, mem, [](void* p) { (*static_cast<F*>(p))(); }, [](void* p) { static_cast<F*>(p)->~F(); }));
}
template <class Rep, class Period, class F>
Timer after_func(std::chrono::duration<Rep, Period> d, F f) {
  return after_func(static_cast<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()), std::move(f));
}

// A timer that sends the time (nanotime) on its channel c() once, when it
// expires (Go's time.NewTimer). Not copyable; stop and reset as rt::Timer's.
// Destroying it stops it.
class ChanTimer {
 public:
  explicit ChanTimer(int64_t ns);
  ~ChanTimer();
  ChanTimer(const ChanTimer&) = delete;
  ChanTimer& operator=(const ChanTimer&) = delete;

  const Chan<int64_t>& c() const { return c_; }
  // True if this call stopped a pending timer. Does not drain c().
  bool stop();
  // Re-arms the timer ns from now; true if it was pending. Does not drain c().
  bool reset(int64_t ns);

 private:
  Chan<int64_t> c_;
  internal::ChanTimerState* t_;
};

// A channel that receives the time once, ns from now (Go's time.After).
Chan<int64_t> after(int64_t ns);
template <class Rep, class Period>
Chan<int64_t> after(std::chrono::duration<Rep, Period> d) {
  return after(static_cast<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
}

// Sends the time on c() every period (Go's time.Ticker). A slow receiver
// loses ticks rather than queueing them. A period <= 0 panics
// ("non-positive interval for NewTicker"). Destroying it stops it.
class Ticker {
 public:
  explicit Ticker(int64_t period);
  ~Ticker();
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

  const Chan<int64_t>& c() const { return c_; }
  void stop();
  // Stops the ticker and restarts it with a new period
  // ("non-positive interval for Ticker.Reset" if period <= 0).
  void reset(int64_t period);

 private:
  Chan<int64_t> c_;
  internal::ChanTimerState* t_;
};

}  // namespace rt

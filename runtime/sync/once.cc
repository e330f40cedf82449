// sync.Once (Go's sync/once.go).
//
// done_ becomes 1 only after f has returned (or thrown), so a caller that
// sees done_ == 1 (fast path, acquire load) also sees everything f wrote.
// The slow path runs under m_: the first caller runs f while later callers
// wait on the mutex, then find done_ set and return. As in Go, where done
// is stored by a deferred call, an f that throws counts as done: done_ is
// set while the exception propagates, and the exception reaches the first
// caller only.
#include <atomic>
#include <cstdint>
#include <functional>

#include "rt/sync.h"
#include "runtime/sched/runtime2.h"

namespace rt {
namespace {

// Sets done when it goes out of scope, however f left.
class MarkDoneOnExit {
 public:
  explicit MarkDoneOnExit(std::atomic<uint32_t>& done) : done_(done) {}
  ~MarkDoneOnExit() { done_.store(1, std::memory_order_release); }
  MarkDoneOnExit(const MarkDoneOnExit&) = delete;
  MarkDoneOnExit& operator=(const MarkDoneOnExit&) = delete;

 private:
  std::atomic<uint32_t>& done_;
};

}  // namespace

void Once::call(const std::function<void()>& f) {
  if (done_.load(std::memory_order_acquire) != 0) return;
  internal::preempt_check();
  // Destroyed in reverse order: done_ is stored before m_ is unlocked.
  LockGuard<Mutex> guard(m_);
  if (done_.load(std::memory_order_relaxed) != 0) return;
  MarkDoneOnExit mark_done(done_);
  f();
}

}  // namespace rt

// Monotonic timers for workloads (CLOCK_MONOTONIC through the vDSO: ~20 ns).
#pragma once

#include <time.h>

#include <cstdint>

namespace harness {

// Nanoseconds on the monotonic clock (same clock as rt::nanotime and Go's
// monotonic reading).
inline int64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// CPU time of the whole process (all threads), nanoseconds.
inline int64_t process_cpu_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

class Stopwatch {
 public:
  Stopwatch() : start_(now_ns()) {}
  void restart() { start_ = now_ns(); }
  int64_t elapsed_ns() const { return now_ns() - start_; }

 private:
  int64_t start_;
};

}  // namespace harness

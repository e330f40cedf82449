// Test-only fault injection at the runtime's calls into the OS.
//
// Each point is one real call site. A test arms it with an errno; the call
// is then not made and fails with that errno exactly as the OS would fail
// it, and the runtime's handling of the failure (the message, the exit,
// what it keeps) is the real one, not a mock. Nothing outside tests arms a
// point, and an unarmed point costs one relaxed load on a cold path
// (creating a thread, growing the heap).
#pragma once

#include <atomic>

namespace rt::internal {

enum class FaultPoint : int {
  kThreadCreate,  // pthread_create in newm: returns the errno
  kArenaMap,      // mmap of heap arena memory: MAP_FAILED with errno set
  kCount,
};

extern std::atomic<int> fault_errno[int(FaultPoint::kCount)];

// Every later call at p fails with err; 0 disarms.
inline void inject_fault(FaultPoint p, int err) { fault_errno[int(p)].store(err, std::memory_order_relaxed); }

// The errno the call at p must fail with, or 0 to make the call.
inline int injected_fault(FaultPoint p) { return fault_errno[int(p)].load(std::memory_order_relaxed); }

}  // namespace rt::internal

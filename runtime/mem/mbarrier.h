// The heap's write barrier for copies the runtime makes (Go's mbarrier.go
// typedmemmove and bulkBarrierPreWrite). rt::Ref stores run the barrier
// themselves (rt/gc.h); the runtime's own copies of program values into
// memory the collector may have scanned already (a channel's buffer, a
// blocked receiver's stack slot) go through typed_barrier first. The
// collector implements it (runtime/gc/mbarrier.cc).
#pragma once

#include <cstddef>

#include "rt/gc.h"

namespace rt::internal {

// Shades every word of [dst, dst + n) (the values about to be
// overwritten) and of [src, src + n) (the values about to be copied)
// while the collector marks: conservative, as the collector's scans are.
void bulk_barrier(const void* dst, const void* src, size_t n);

// Called before copying n bytes of a program value from src to dst; one
// predictable branch while the collector does not mark. The caller is
// not asynchronously preemptible (runtime code), so the test and the copy
// that follows cannot be split by a stop.
inline void typed_barrier(const void* dst, const void* src, size_t n) {
  if (__builtin_expect(rt_write_barrier_enabled != 0, 0)) bulk_barrier(dst, src, n);
}

}  // namespace rt::internal

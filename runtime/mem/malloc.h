// Heap allocation entry points (Go's malloc.go) used by the rest of the
// runtime, and the lookups the GC will use.
//
// mallocgc picks, by size:
//   - 0 bytes: the address of zerobase, shared by every zero-size object;
//   - noscan objects under 16 bytes: the tiny allocator packs them into the
//     current 16-byte block of the P's mcache (aligned to 8, 4 or 2 as
//     their size allows); the block is the heap object;
//   - up to 32 KiB: the object's size class, from the mcache's span;
//   - larger: a span of its own straight from the page heap (class 0).
// Memory is zeroed when needzero is set and the span's memory may be dirty.
// Allocation failures print Go's "runtime: out of memory: cannot allocate
// N-byte block (M in use)" and die with "fatal error: out of memory".
//
// free_object releases one object explicitly (the runtime's reference-
// counted channels), through the sweeper's per-span path; anything other than the start of an allocated
// object (for the tiny allocator: of a 16-byte block, see object_base) is a
// fatal error naming the address, in every build. A tiny block (several
// noscan objects under 16 B packed together) may be freed only once every
// object in it is dead and no P is still filling it: free_object forgets
// the block only on the calling P's mcache, so freeing a block another P
// is packing would hand its remaining bytes out twice. The runtime frees
// only objects of its own (channels, timers), never tiny ones.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/mem/mspan.h"

namespace rt::internal {

extern uint64_t zerobase;

void mallocinit();
void* mallocgc(size_t size, bool scan, bool needzero = true);
void free_object(void* p);
// Counters of the mcache shared by threads without a P.
void nop_mcache_counts(uint64_t* mallocs, uint64_t* tinyallocs);
// The collector holds the lock of that mcache through a cycle (nothing
// allocates from it meanwhile) and flushes it.
struct MCache;
void nop_mcache_lock();
void nop_mcache_unlock();
MCache* nop_mcache_locked();
// Bytes mallocgc reserves for a size-byte object (Go's roundupsize).
size_t roundupsize(size_t size);

// The in-use span holding addr (heap objects or a stack), or nullptr.
MSpan* span_of(uintptr_t addr);
// Start of the allocated heap object holding addr, or 0 if addr is not
// inside one (free slot, span tail, stack, not heap memory).
uintptr_t object_base(uintptr_t addr);

}  // namespace rt::internal

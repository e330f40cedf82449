// Fixed-size allocator for runtime metadata (Go's mfixalloc.go).
//
// Runtime metadata (G, M, P, later spans and caches) never comes from
// malloc: malloc may be the very thing being measured, and a runtime that
// calls it from a signal handler or while holding its own locks invites
// deadlock. FixAlloc carves objects of one type out of 64 KiB chunks
// mapped straight from the OS and keeps freed objects on a free list.
// Objects are constructed with T(args...) on every alloc (default-
// initialised without arguments, so a large buffer member is not zeroed).
// Chunks are populated when mapped: metadata is used at once, and one
// populating mmap is cheaper than a page fault per page (faulting lazily
// made spawn at GOMAXPROCS=1 1.17x slower per goroutine). The chunk size
// bounds what one allocation pays: on this project's 2-core VM a fresh
// page costs about 15 us, and a 256 KiB chunk made one gc_latency push
// take 1 ms (perf record -e cpu-clock). Memory is never returned.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <new>

#include "runtime/sched/runtime2.h"

namespace rt::internal {

// bytes of populated memory for runtime metadata, straight from the OS:
// outside the GC heap and the executable's data, so the collector never
// scans it; never returned.
inline void* map_metadata(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) throw_fatal("out of memory allocating runtime metadata");
  return p;
}

template <class T>
class FixAlloc {
 public:
  template <class... Args>
  T* alloc(Args&&... args) {
    void* mem;
    {
      LockGuard g(lock_);
      if (free_ != nullptr) {
        mem = free_;
        free_ = free_->next;
      } else {
        if (chunk_left_ < kObjSize) refill();
        mem = chunk_;
        chunk_ += kObjSize;
        chunk_left_ -= kObjSize;
      }
      add(&inuse_, 1);
    }
    if constexpr (sizeof...(Args) == 0) {
      return new (mem) T;
    } else {
      return new (mem) T(std::forward<Args>(args)...);
    }
  }

  void free(T* obj) {
    obj->~T();
    LockGuard g(lock_);
    auto* node = reinterpret_cast<FreeNode*>(obj);
    node->next = free_;
    free_ = node;
    add(&inuse_, -1);
  }

  // Read without the lock (MemStats): relaxed atomics, written under it.
  size_t inuse() const { return __atomic_load_n(&inuse_, __ATOMIC_RELAXED); }
  size_t sys_bytes() const { return __atomic_load_n(&sys_, __ATOMIC_RELAXED); }

 private:
  struct FreeNode {
    FreeNode* next;
  };
  static constexpr size_t kAlign = alignof(T) < 16 ? 16 : alignof(T);
  static constexpr size_t kObjSize = (sizeof(T) + kAlign - 1) / kAlign * kAlign;
  static constexpr size_t kChunk = kObjSize > (64 << 10) ? kObjSize : (64 << 10);

  void refill() {
    chunk_ = static_cast<char*>(map_metadata(kChunk));
    chunk_left_ = kChunk;
    add(&sys_, kChunk);
  }

  Lock lock_{LockRank::kFixalloc};
  FreeNode* free_ = nullptr;
  char* chunk_ = nullptr;
  size_t chunk_left_ = 0;
  static void add(size_t* counter, ptrdiff_t n) { __atomic_store_n(counter, *counter + size_t(n), __ATOMIC_RELAXED); }
  size_t inuse_ = 0;
  size_t sys_ = 0;
};

}  // namespace rt::internal

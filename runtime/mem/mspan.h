// mspan: a run of pages of the heap and what is allocated in it (Go's
// mspan in mheap.go, mbitmap.go's allocation bits).
//
// A span is either free (kDead: its pages belong to the page allocator and
// no span refers to them), in use for heap objects (kInUse), or manual
// (kManual: handed out whole, to the stack allocator). An in-use span of a
// small size class is an array of nelems objects of elemsize bytes.
//
// Which objects are allocated (Go's scheme, which the sweeper will keep):
//   - allocBits records the allocated objects as of the span's last
//     sweep (here: the last time it left an mcache);
//   - while an mcache allocates from the span, objects below freeindex
//     are allocated too; allocCache holds the complement of 64 allocBits
//     starting at freeindex's 64-aligned word, shifted so that bit 0 is
//     freeindex: count-trailing-zeros finds the next free object;
//   - so object i is allocated iff (i < freeindex or allocBits[i]) and it
//     has no pending free (below).
// Invariants: a span in no mcache has freeindex == 0 and allocCount ==
// popcount(allocBits); allocCount <= nelems; startAddr is page aligned and
// every page of an in-use or manual span maps to it in the arena map.
// gcmarkBits is the GC's mark bitmap: the collector sets the bit of every
// reachable object, and the sweep makes it the new allocBits (runtime/gc/
// mgcsweep.cc); sweepgen says whether the span is swept in this cycle
// (mgcsweep.cc gives the protocol; atomic accesses only).
// pendingFree collects explicit frees of objects of a span that an mcache
// holds; they are applied when it leaves the mcache, as a sweep would.
// Bitmaps are stored inline (1024 objects at most per span).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime/mem/sizeclasses.h"

namespace rt::internal {

struct SpanList;

enum class SpanState : uint8_t { kDead = 0, kInUse = 1, kManual = 2 };

constexpr size_t kSpanBitmapBytes = kMaxObjsPerSpan / 8;

struct MSpan {
  MSpan* next = nullptr;  // in a SpanList (mcentral lists, stack pool)
  MSpan* prev = nullptr;
  SpanList* list = nullptr;

  uintptr_t startAddr = 0;
  size_t npages = 0;
  uintptr_t limit = 0;             // end of the last object (in-use spans)
  uintptr_t manualFreeList = 0;    // free stacks of a manual span

  std::atomic<uint16_t> freeindex{0};  // written by the owning mcache only
  uint16_t nelems = 0;
  uint16_t allocCount = 0;
  uint16_t npendingFree = 0;
  uint16_t allocCountAtCache = 0;  // allocCount when an mcache took the span (TotalAlloc)
  uint64_t allocCache = 0;
  uint8_t* allocBits = nullptr;
  uint8_t* gcmarkBits = nullptr;
  uint32_t sweepgen = 0;
  size_t elemsize = 0;
  uint32_t divMul = 0;
  SpanClass spanclass = 0;
  std::atomic<SpanState> state{SpanState::kDead};
  bool needzero = false;  // some object memory may be dirty
  bool incache = false;   // held by an mcache (mcentral lock)

  uint8_t pendingFree[kSpanBitmapBytes];
  alignas(8) uint8_t bitmaps[2][kSpanBitmapBytes];

  uintptr_t base() const { return startAddr; }
  uintptr_t end() const { return startAddr + npages * kPageSize; }
  // Index of the object holding addr (addr inside the span).
  uintptr_t object_index(uintptr_t addr) const { return uintptr_t((uint64_t(addr - startAddr) * divMul) >> 32); }

  // Bitmap bytes are read by the collector's pointer test (is_allocated)
  // while the span's owner changes them under its lock: relaxed loads and
  // stores (plain moves on x86-64), never read-modify-writes.
  static uint8_t load_byte(const uint8_t* b) { return __atomic_load_n(b, __ATOMIC_RELAXED); }
  static void store_byte(uint8_t* b, uint8_t v) { __atomic_store_n(b, v, __ATOMIC_RELAXED); }
  static bool bit(const uint8_t* bits, size_t i) { return (load_byte(&bits[i / 8]) >> (i % 8)) & 1; }
  static void set_bit(uint8_t* bits, size_t i) {
    store_byte(&bits[i / 8], uint8_t(load_byte(&bits[i / 8]) | (1u << (i % 8))));
  }
  static void clear_bit(uint8_t* bits, size_t i) {
    store_byte(&bits[i / 8], uint8_t(load_byte(&bits[i / 8]) & ~(1u << (i % 8))));
  }

  // Loads allocCache from the 64 allocBits starting at bit 8*whichByte.
  void refill_alloc_cache(size_t whichByte) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = v << 8 | allocBits[whichByte + size_t(k)];
    allocCache = ~v;
  }

  // Index of the next free object at or after freeindex, advancing
  // freeindex past it; nelems when the span is full (Go's nextFreeIndex).
  size_t next_free_index() {
    size_t idx = freeindex.load(std::memory_order_relaxed);
    if (idx == nelems) return nelems;
    uint64_t cache = allocCache;
    size_t bit_index = cache == 0 ? 64 : size_t(__builtin_ctzll(cache));
    while (bit_index == 64) {
      idx = (idx + 64) & ~size_t(63);
      if (idx >= nelems) {
        freeindex.store(nelems, std::memory_order_relaxed);
        return nelems;
      }
      refill_alloc_cache(idx / 8);
      cache = allocCache;
      bit_index = cache == 0 ? 64 : size_t(__builtin_ctzll(cache));
    }
    size_t result = idx + bit_index;
    if (result >= nelems) {
      freeindex.store(nelems, std::memory_order_relaxed);
      return nelems;
    }
    allocCache >>= bit_index;
    allocCache >>= 1;
    idx = result + 1;
    if (idx % 64 == 0 && idx != nelems) refill_alloc_cache(idx / 8);
    freeindex.store(uint16_t(idx), std::memory_order_relaxed);
    return result;
  }

  // Whether object i counts as allocated (see the header comment).
  bool is_allocated(size_t i) const {
    return (i < freeindex.load(std::memory_order_relaxed) || bit(allocBits, i)) && !bit(pendingFree, i);
  }
};

// Doubly-linked list of spans (mcentral partial/full, stack pools).
struct SpanList {
  MSpan* first = nullptr;
  size_t count = 0;

  bool empty() const { return first == nullptr; }
  void push(MSpan* s) {
    if (s->list != nullptr) throw_fatal_span_list();
    s->next = first;
    s->prev = nullptr;
    if (first != nullptr) first->prev = s;
    first = s;
    s->list = this;
    count++;
  }
  void remove(MSpan* s) {
    if (s->list != this) throw_fatal_span_list();
    if (s->prev != nullptr) s->prev->next = s->next; else first = s->next;
    if (s->next != nullptr) s->next->prev = s->prev;
    s->next = s->prev = nullptr;
    s->list = nullptr;
    count--;
  }
  [[noreturn]] static void throw_fatal_span_list();
};

}  // namespace rt::internal

// Page-allocator policy: which free pages of the heap a span gets.
//
// The heap (runtime/mem/mheap.cc) owns the arenas and the heap lock; the
// page allocator only tracks which 8 KiB pages of the grown address space
// are free, and never touches the pages themselves (so free pages can be
// returned to the OS and stay untouched). Exactly one variant is linked
// (variants/pagealloc/<name>/); its state is one global instance behind the
// functions below. The variants' classes are also usable directly
// (TreapPageAlloc, RadixPageAlloc), which the differential test and the
// replay benchmark do.
//
// Contract shared by every variant, so that they are interchangeable and
// comparable address for address:
//   - alloc(n) is address-ordered first fit: it returns the lowest address
//     of a run of n free pages, or 0 when no such run exists;
//   - grow() adds a range never seen before, aligned to and a multiple of
//     kChunkBytes (the heap grows by whole 64 MiB arenas);
//   - free() is given exactly a range that alloc() returned or a part of
//     one (the heap never frees pages it does not own); adjacent free
//     ranges behave as one run (coalescing);
//   - init, grow, alloc, free, next_free_run and the cache refill/flush run
//     with the heap lock held; cache_alloc runs without it, on the P that
//     owns the cache.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rt::policy {

constexpr size_t kPageShift = 13;
constexpr size_t kPageSize = size_t(1) << kPageShift;  // 8 KiB
constexpr size_t kChunkPages = 512;                    // 4 MiB bitmap chunks (radix)
constexpr size_t kChunkBytes = kChunkPages * kPageSize;
constexpr size_t kPageCachePages = 64;                 // pages in a per-P page cache

// Per-P storage the heap reserves for a page cache (Go 1.14's pageCache):
// a 64-page aligned block and a bitmap of the pages in it that the P may
// hand out without the heap lock (bit i set = page base + i*kPageSize free).
// Variants without a cache leave it empty.
struct PageCache {
  uintptr_t base = 0;
  uint64_t free_bits = 0;
};

namespace pagealloc {

// Human name of the linked variant ("treap", "radix").
const char* name();

void init();
void grow(uintptr_t base, size_t npages);
uintptr_t alloc(size_t npages);
void free(uintptr_t base, size_t npages);

// Finds the lowest free run that ends above addr and stores it, clipped to
// start at addr or later, in *base / *npages; false if there is none. The
// scavenger walks the free pages with it.
bool next_free_run(uintptr_t addr, uintptr_t* base, size_t* npages);

// True if the variant keeps per-P page caches; when false the heap never
// calls the three functions below.
bool has_page_cache();
// Takes npages (< kPageCachePages / 4) from the cache; 0 if it has no such run.
uintptr_t cache_alloc(PageCache* c, size_t npages);
// Fills an empty cache with the free pages of the 64-page block holding the
// lowest free page (they become allocated to the cache); leaves it empty if
// no page is free.
void cache_refill(PageCache* c);
// Gives the cache's pages back (its P is destroyed) and empties it.
void cache_flush(PageCache* c);

}  // namespace pagealloc
}  // namespace rt::policy

// Radix page allocator (Go 1.14's mpagealloc.go; proposal 35112).
//
// State:
//   - a bitmap with one bit per 8 KiB page (1 = allocated), in chunks of
//     512 pages (4 MiB, 64 bytes of bitmap). Chunk bitmaps live in 512 KiB
//     blocks of 8192 chunks, mapped when the heap first grows into them and
//     found through a 4096-entry directory: the 47-bit user address space
//     has 2^25 chunks;
//   - a radix tree of summaries over the whole address space, five levels
//     stored as flat arrays reserved with mmap(MAP_NORESERVE), so only the
//     pages of entries ever written are committed. A leaf entry summarises
//     one chunk; each higher entry summarises 8 entries of the level below
//     (2^13 root entries of 16 GiB each). A summary packs three numbers of
//     free pages: start (the run at the low end), end (the run at the high
//     end) and max (the longest run), 21 bits each; bit 63 marks a fully
//     free root entry (2^21 pages, which does not fit in 21 bits).
//
// Invariants: every summary equals the one computed from its children (or
// from the chunk's bitmap for a leaf); address space never grown has all-
// zero summaries ("nothing free") whatever its bitmap says; every page
// below search_addr_ is allocated (it bounds where first fit starts).
//
// First fit walks down from the root: within the 8 entries of a block it
// carries the free run that reaches the current entry's low end; the run
// is found when that run plus the entry's start is long enough, and it
// descends into an entry whose max is long enough; at the bottom it scans
// the chunk's bitmap. Allocation and free set or clear bits and recompute
// the summaries of the chunks touched and of their ancestors.
//
// The per-P page cache (Go's pageCache) takes the whole 64-page aligned
// block containing the lowest free page: its free pages are marked
// allocated here and handed out by the P without the heap lock.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/policy/pagealloc.h"

namespace rt::internal {

class RadixPageAlloc {
 public:
  RadixPageAlloc();
  RadixPageAlloc(const RadixPageAlloc&) = delete;
  RadixPageAlloc& operator=(const RadixPageAlloc&) = delete;
  ~RadixPageAlloc();

  void grow(uintptr_t base, size_t npages);
  uintptr_t alloc(size_t npages);
  void free(uintptr_t base, size_t npages);
  bool next_free_run(uintptr_t addr, uintptr_t* base, size_t* npages) const;
  void cache_refill(policy::PageCache* c);
  void cache_flush(policy::PageCache* c);
  static uintptr_t cache_alloc(policy::PageCache* c, size_t npages);

  // Total free pages (walks the grown chunks; for tests).
  size_t free_pages() const;
  // Verifies that every summary of the grown range matches the bitmap.
  void check() const;

  static constexpr int kLevels = 5;
  static constexpr int kAddrBits = 47;
  static constexpr int kLevelBits = 3;
  static constexpr int kLogChunkPages = 9;
  static constexpr int kChunkWords = 8;  // 512 bits

 private:
  using Summary = uint64_t;
  struct ChunkBits {
    uint64_t words[kChunkWords];
  };

  static constexpr int kLogChunkBytes = kLogChunkPages + int(policy::kPageShift);
  static constexpr int kChunkIndexBits = kAddrBits - kLogChunkBytes;  // 25
  static constexpr int kChunkL2Bits = 13;
  static constexpr int kChunkL1Bits = kChunkIndexBits - kChunkL2Bits;  // 12

  static int level_entry_bits(int level) { return kChunkIndexBits - kLevelBits * (kLevels - 1 - level); }
  static int level_log_pages(int level) { return kLogChunkPages + kLevelBits * (kLevels - 1 - level); }
  static Summary pack(size_t start, size_t max, size_t end);
  static size_t sum_start(Summary s);
  static size_t sum_max(Summary s);
  static size_t sum_end(Summary s);
  static Summary summarize_chunk(const ChunkBits& b);
  static Summary merge(const Summary* children, int log_child_pages);

  ChunkBits* chunk(size_t ci) const;
  ChunkBits* chunk_or_map(size_t ci);
  void set_range(uintptr_t base, size_t npages, bool allocated);
  void update_summaries(size_t first_chunk, size_t last_chunk);
  uintptr_t find(size_t npages) const;

  Summary* levels_[kLevels] = {};
  size_t level_bytes_[kLevels] = {};
  ChunkBits* chunk_dir_[size_t(1) << kChunkL1Bits] = {};
  size_t first_chunk_ = ~size_t(0);  // grown range of chunks
  size_t last_chunk_ = 0;
  uintptr_t search_addr_ = ~uintptr_t(0);
};

}  // namespace rt::internal

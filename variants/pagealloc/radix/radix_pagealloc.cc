// Radix page allocator: see radix_pagealloc.h for the structure, the
// first-fit walk and the invariants.
#include "variants/pagealloc/radix/radix_pagealloc.h"

#include <sys/mman.h>

#include <cstring>

namespace rt::internal {

[[noreturn]] void throw_fatal(const char* msg);

namespace {

using policy::kPageSize;
constexpr size_t kChunkPages = size_t(1) << RadixPageAlloc::kLogChunkPages;
constexpr int kSumBits = 21;
constexpr uint64_t kSumMask = (uint64_t(1) << kSumBits) - 1;
constexpr uint64_t kSumAllFree = uint64_t(1) << 63;
constexpr size_t kMaxPacked = size_t(1) << kSumBits;

void* map_noreserve(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw_fatal("pagealloc: cannot reserve radix summary or bitmap memory");
  return p;
}

// First page at or after pos whose bit equals `want` (0 free, 1 allocated),
// or kChunkPages.
size_t next_bit(const uint64_t* words, size_t pos, bool want) {
  for (size_t w = pos / 64; w < kChunkPages / 64; w++) {
    uint64_t bits = want ? words[w] : ~words[w];
    if (w == pos / 64) bits &= ~uint64_t(0) << (pos % 64);
    if (bits != 0) return w * 64 + size_t(__builtin_ctzll(bits));
  }
  return kChunkPages;
}

// Index of the first run of n set bits in x, or 64 (Go's findBitRange64):
// each step shifts zeros into the top of every run of ones, doubling the
// run length already guaranteed.
size_t find_bit_range64(uint64_t x, size_t n) {
  size_t left = n - 1;
  size_t width = 1;
  while (left > 0 && x != 0) {
    size_t s = left <= width ? left : width;
    x &= x >> s;
    left -= s;
    width *= 2;
  }
  return x == 0 ? 64 : size_t(__builtin_ctzll(x));
}

uint64_t range_mask(size_t lo, size_t hi) {  // bits [lo, hi) of one word, hi <= 64
  uint64_t upper = hi == 64 ? ~uint64_t(0) : (uint64_t(1) << hi) - 1;
  return upper & (~uint64_t(0) << lo);
}

}  // namespace

RadixPageAlloc::RadixPageAlloc() {
  for (int l = 0; l < kLevels; l++) {
    level_bytes_[l] = sizeof(Summary) << level_entry_bits(l);
    levels_[l] = static_cast<Summary*>(map_noreserve(level_bytes_[l]));
  }
}

RadixPageAlloc::~RadixPageAlloc() {
  for (int l = 0; l < kLevels; l++) munmap(levels_[l], level_bytes_[l]);
  for (ChunkBits* block : chunk_dir_) {
    if (block != nullptr) munmap(block, sizeof(ChunkBits) << kChunkL2Bits);
  }
}

RadixPageAlloc::Summary RadixPageAlloc::pack(size_t start, size_t max, size_t end) {
  if (max == kMaxPacked) return kSumAllFree;
  return uint64_t(start) | uint64_t(max) << kSumBits | uint64_t(end) << (2 * kSumBits);
}
size_t RadixPageAlloc::sum_start(Summary s) { return s & kSumAllFree ? kMaxPacked : size_t(s & kSumMask); }
size_t RadixPageAlloc::sum_max(Summary s) { return s & kSumAllFree ? kMaxPacked : size_t(s >> kSumBits & kSumMask); }
size_t RadixPageAlloc::sum_end(Summary s) { return s & kSumAllFree ? kMaxPacked : size_t(s >> (2 * kSumBits) & kSumMask); }

RadixPageAlloc::Summary RadixPageAlloc::summarize_chunk(const ChunkBits& b) {
  size_t start = next_bit(b.words, 0, true);
  if (start == kChunkPages) return pack(kChunkPages, kChunkPages, kChunkPages);
  size_t end = 0;
  for (int w = kChunkWords - 1; w >= 0; w--) {
    if (b.words[w] == 0) {
      end += 64;
      continue;
    }
    end += size_t(__builtin_clzll(b.words[w]));
    break;
  }
  size_t max = start > end ? start : end;
  for (size_t pos = start; pos < kChunkPages;) {
    size_t free_at = next_bit(b.words, pos, false);
    if (free_at == kChunkPages) break;
    size_t used_at = next_bit(b.words, free_at, true);
    if (used_at - free_at > max) max = used_at - free_at;
    pos = used_at;
  }
  return pack(start, max, end);
}

RadixPageAlloc::Summary RadixPageAlloc::merge(const Summary* children, int log_child_pages) {
  const size_t child = size_t(1) << log_child_pages;
  constexpr int n = 1 << kLevelBits;
  size_t start = 0;
  for (int i = 0; i < n; i++) {
    start += sum_start(children[i]);
    if (sum_start(children[i]) != child) break;
  }
  size_t end = 0;
  for (int i = n - 1; i >= 0; i--) {
    end += sum_end(children[i]);
    if (sum_end(children[i]) != child) break;
  }
  size_t max = 0;
  size_t run = 0;
  for (int i = 0; i < n; i++) {
    Summary s = children[i];
    if (sum_start(s) == child) {
      run += child;
      continue;
    }
    if (run + sum_start(s) > max) max = run + sum_start(s);
    if (sum_max(s) > max) max = sum_max(s);
    run = sum_end(s);
  }
  if (run > max) max = run;
  return pack(start, max, end);
}

RadixPageAlloc::ChunkBits* RadixPageAlloc::chunk(size_t ci) const {
  ChunkBits* block = chunk_dir_[ci >> kChunkL2Bits];
  return block == nullptr ? nullptr : &block[ci & ((size_t(1) << kChunkL2Bits) - 1)];
}

RadixPageAlloc::ChunkBits* RadixPageAlloc::chunk_or_map(size_t ci) {
  ChunkBits*& block = chunk_dir_[ci >> kChunkL2Bits];
  if (block == nullptr) block = static_cast<ChunkBits*>(map_noreserve(sizeof(ChunkBits) << kChunkL2Bits));
  return &block[ci & ((size_t(1) << kChunkL2Bits) - 1)];
}

void RadixPageAlloc::update_summaries(size_t first, size_t last) {
  for (size_t ci = first; ci <= last; ci++) levels_[kLevels - 1][ci] = summarize_chunk(*chunk(ci));
  for (int l = kLevels - 2; l >= 0; l--) {
    first >>= kLevelBits;
    last >>= kLevelBits;
    for (size_t i = first; i <= last; i++) {
      levels_[l][i] = merge(&levels_[l + 1][i << kLevelBits], level_log_pages(l + 1));
    }
  }
}

void RadixPageAlloc::set_range(uintptr_t base, size_t npages, bool allocated) {
  size_t page = base / kPageSize;
  size_t end = page + npages;
  while (page < end) {
    ChunkBits* b = chunk(page / kChunkPages);
    if (b == nullptr) throw_fatal("pagealloc: range outside the grown heap");
    size_t w = page % kChunkPages / 64;
    size_t lo = page % 64;
    size_t hi = end - (page - lo) < 64 ? end - (page - lo) : 64;
    uint64_t mask = range_mask(lo, hi);
    if (allocated) {
      if ((b->words[w] & mask) != 0) throw_fatal("pagealloc: allocation of pages that are not free");
      b->words[w] |= mask;
    } else {
      if ((b->words[w] & mask) != mask) throw_fatal("pagealloc: free of pages that are already free");
      b->words[w] &= ~mask;
    }
    page += hi - lo;
  }
}

void RadixPageAlloc::grow(uintptr_t base, size_t npages) {
  if (base % policy::kChunkBytes != 0 || npages % kChunkPages != 0 || npages == 0) {
    throw_fatal("pagealloc: grow of a range not aligned to 4 MiB chunks");
  }
  if ((base + npages * kPageSize) >> kAddrBits != 0) throw_fatal("pagealloc: grow beyond the 47-bit address space");
  size_t first = base / policy::kChunkBytes;
  size_t last = first + npages / kChunkPages - 1;
  for (size_t ci = first; ci <= last; ci++) {
    if (levels_[kLevels - 1][ci] != 0) throw_fatal("pagealloc: grow of a range already grown");
    memset(chunk_or_map(ci), 0, sizeof(ChunkBits));
  }
  if (first < first_chunk_) first_chunk_ = first;
  if (last > last_chunk_) last_chunk_ = last;
  if (base < search_addr_) search_addr_ = base;
  update_summaries(first, last);
}

uintptr_t RadixPageAlloc::find(size_t npages) const {
  if (first_chunk_ > last_chunk_) return 0;
  const size_t search_page = search_addr_ / kPageSize;
  size_t block = 0;  // index of the entry of the level above whose children are scanned
  for (int l = 0; l < kLevels; l++) {
    const int shift = kLevelBits * (kLevels - 1 - l);  // chunk index -> entry index at level l
    size_t lo = l == 0 ? first_chunk_ >> shift : block << kLevelBits;
    size_t hi = l == 0 ? (last_chunk_ >> shift) + 1 : lo + (size_t(1) << kLevelBits);
    const int log_pages = level_log_pages(l);
    size_t search_entry = search_page >> log_pages;
    if (search_entry > lo && search_entry < hi) lo = search_entry;
    size_t run = 0;        // free pages reaching the low end of entry j
    size_t run_start = 0;  // first page of that run
    bool descended = false;
    for (size_t j = lo; j < hi; j++) {
      Summary s = levels_[l][j];
      if (s == 0) {
        run = 0;
        continue;
      }
      size_t start = sum_start(s);
      if (run + start >= npages) {
        if (run == 0) run_start = j << log_pages;
        return run_start * kPageSize;
      }
      if (sum_max(s) >= npages) {
        block = j;
        descended = true;
        break;
      }
      size_t entry_pages = size_t(1) << log_pages;
      if (run == 0 || start < entry_pages) {
        run = sum_end(s);
        run_start = ((j + 1) << log_pages) - run;
      } else {
        run += entry_pages;
      }
    }
    if (!descended) {
      if (l == 0) return 0;
      throw_fatal("pagealloc: radix summaries are inconsistent");
    }
  }
  const ChunkBits* b = chunk(block);
  for (size_t pos = 0; pos < kChunkPages;) {
    size_t free_at = next_bit(b->words, pos, false);
    if (free_at == kChunkPages) break;
    size_t used_at = next_bit(b->words, free_at, true);
    if (used_at - free_at >= npages) return (block * kChunkPages + free_at) * kPageSize;
    pos = used_at;
  }
  throw_fatal("pagealloc: radix leaf summary promises a run its bitmap lacks");
}

uintptr_t RadixPageAlloc::alloc(size_t npages) {
  if (npages == 0) throw_fatal("pagealloc: allocation of zero pages");
  uintptr_t addr = find(npages);
  if (addr == 0) return 0;
  set_range(addr, npages, true);
  update_summaries(addr / policy::kChunkBytes, (addr + npages * kPageSize - 1) / policy::kChunkBytes);
  // A single page found by first fit is the lowest free page.
  if (npages == 1) search_addr_ = addr + kPageSize;
  return addr;
}

void RadixPageAlloc::free(uintptr_t base, size_t npages) {
  if (npages == 0) throw_fatal("pagealloc: free of zero pages");
  set_range(base, npages, false);
  update_summaries(base / policy::kChunkBytes, (base + npages * kPageSize - 1) / policy::kChunkBytes);
  if (base < search_addr_) search_addr_ = base;
}

bool RadixPageAlloc::next_free_run(uintptr_t addr, uintptr_t* base, size_t* npages) const {
  if (first_chunk_ > last_chunk_) return false;
  size_t page = addr / kPageSize;
  size_t ci = page / kChunkPages;
  if (ci < first_chunk_) {
    ci = first_chunk_;
    page = ci * kChunkPages;
  }
  for (; ci <= last_chunk_; ci++, page = ci * kChunkPages) {
    if (levels_[kLevels - 1][ci] == 0) continue;
    const ChunkBits* b = chunk(ci);
    size_t free_at = next_bit(b->words, page % kChunkPages, false);
    if (free_at == kChunkPages) continue;
    size_t used_at = next_bit(b->words, free_at, true);
    size_t n = used_at - free_at;
    // A run reaching the chunk's end continues into the following chunks.
    for (size_t cj = ci + 1; used_at == kChunkPages && cj <= last_chunk_; cj++) {
      Summary s = levels_[kLevels - 1][cj];
      n += sum_start(s);
      if (sum_start(s) != kChunkPages) break;
    }
    *base = (ci * kChunkPages + free_at) * kPageSize;
    *npages = n;
    return true;
  }
  return false;
}

void RadixPageAlloc::cache_refill(policy::PageCache* c) {
  if (c->free_bits != 0) throw_fatal("pagealloc: refill of a page cache that is not empty");
  c->base = 0;
  uintptr_t first_free = find(1);
  if (first_free == 0) return;
  uintptr_t block = first_free & ~(policy::kPageCachePages * kPageSize - 1);
  size_t ci = block / policy::kChunkBytes;
  uint64_t& word = chunk(ci)->words[block / kPageSize % kChunkPages / 64];
  c->base = block;
  c->free_bits = ~word;
  word = ~uint64_t(0);
  update_summaries(ci, ci);
  search_addr_ = block + policy::kPageCachePages * kPageSize;
}

void RadixPageAlloc::cache_flush(policy::PageCache* c) {
  if (c->free_bits != 0) {
    size_t ci = c->base / policy::kChunkBytes;
    uint64_t& word = chunk(ci)->words[c->base / kPageSize % kChunkPages / 64];
    if ((word & c->free_bits) != c->free_bits) throw_fatal("pagealloc: page cache holds pages that are free");
    word &= ~c->free_bits;
    update_summaries(ci, ci);
    uintptr_t lowest = c->base + size_t(__builtin_ctzll(c->free_bits)) * kPageSize;
    if (lowest < search_addr_) search_addr_ = lowest;
  }
  *c = policy::PageCache{};
}

uintptr_t RadixPageAlloc::cache_alloc(policy::PageCache* c, size_t npages) {
  if (c->free_bits == 0) return 0;
  size_t i = npages == 1 ? size_t(__builtin_ctzll(c->free_bits)) : find_bit_range64(c->free_bits, npages);
  if (i == 64) return 0;
  c->free_bits &= ~range_mask(i, i + npages);
  return c->base + i * kPageSize;
}

size_t RadixPageAlloc::free_pages() const {
  size_t n = 0;
  for (size_t ci = first_chunk_; ci <= last_chunk_ && first_chunk_ <= last_chunk_; ci++) {
    if (levels_[kLevels - 1][ci] == 0) continue;
    for (uint64_t w : chunk(ci)->words) n += size_t(64 - __builtin_popcountll(w));
  }
  return n;
}

void RadixPageAlloc::check() const {
  if (first_chunk_ > last_chunk_) return;
  for (size_t ci = first_chunk_; ci <= last_chunk_; ci++) {
    Summary s = levels_[kLevels - 1][ci];
    if (s != 0 && s != summarize_chunk(*chunk(ci))) throw_fatal("pagealloc: radix leaf summary does not match its bitmap");
  }
  size_t first = first_chunk_;
  size_t last = last_chunk_;
  for (int l = kLevels - 2; l >= 0; l--) {
    first >>= kLevelBits;
    last >>= kLevelBits;
    for (size_t i = first; i <= last; i++) {
      if (levels_[l][i] != merge(&levels_[l + 1][i << kLevelBits], level_log_pages(l + 1))) {
        throw_fatal("pagealloc: radix summary does not match its children");
      }
    }
  }
}

}  // namespace rt::internal

// Size classes (Go's sizeclasses.go, Go 1.19 table).
//
// Small objects (<= 32 KiB) are rounded up to one of 67 size classes; each
// class allocates spans of a fixed number of 8 KiB pages chosen (by Go's
// mksizeclasses) to keep tail waste under 12.5%. The two tables below are
// those facts; everything else is derived from them at compile time:
//   - size_to_class: a lookup by ceil(size/8) up to 1 KiB and by
//     ceil((size-1024)/128) above (Go's size_to_class8 / size_to_class128);
//   - the division magic: for an offset n inside a span, n / size ==
//     (n * magic) >> 32 with magic = floor((2^32 - 1) / size) + 1, exact
//     for every n below the span size (a static_assert checks the first
//     and last byte of every object of every class), so an interior pointer maps to its
//     object index with a multiply and a shift.
// Class 0 stands for large objects (their own span). A span class is a
// size class times {scan, noscan}: (sizeclass << 1) | noscan.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "runtime/policy/pagealloc.h"

namespace rt::internal {

using policy::kPageShift;
using policy::kPageSize;

constexpr size_t kNumSizeClasses = 68;  // 67 small classes + class 0 (large)
constexpr size_t kMaxSmallSize = 32768;
constexpr size_t kSmallSizeDiv = 8;
constexpr size_t kSmallSizeMax = 1024;
constexpr size_t kLargeSizeDiv = 128;
constexpr size_t kNumSpanClasses = kNumSizeClasses * 2;
constexpr size_t kTinySize = 16;
constexpr uint8_t kTinySizeClass = 2;  // the 16-byte class holds tiny blocks
constexpr size_t kMaxObjsPerSpan = 1024;

constexpr std::array<uint16_t, kNumSizeClasses> kClassToSize = {
    0,     8,     16,    24,    32,    48,    64,    80,    96,    112,   128,   144,   160,   176,
    192,   208,   224,   240,   256,   288,   320,   352,   384,   416,   448,   480,   512,   576,
    640,   704,   768,   896,   1024,  1152,  1280,  1408,  1536,  1792,  2048,  2304,  2688,  3072,
    3200,  3456,  4096,  4864,  5376,  6144,  6528,  6784,  6912,  8192,  9472,  9728,  10240, 10880,
    12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768};

constexpr std::array<uint8_t, kNumSizeClasses> kClassToPages = {
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 2, 1, 2, 1, 2, 1, 3, 2, 3, 1, 3, 2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8, 3, 10, 7, 4};

constexpr uint32_t div_magic(size_t size) { return size == 0 ? 0 : uint32_t(~uint32_t(0) / size + 1); }

namespace sizeclass_detail {
template <size_t N>
constexpr std::array<uint8_t, N> make_lookup(size_t first, size_t step) {
  std::array<uint8_t, N> t{};
  size_t c = 1;
  for (size_t i = 0; i < N; i++) {
    size_t size = first + i * step;
    while (kClassToSize[c] < size) c++;
    t[i] = uint8_t(c);
  }
  return t;
}
constexpr bool magic_is_exact() {
  for (size_t c = 1; c < kNumSizeClasses; c++) {
    size_t span = kClassToPages[c] * kPageSize;
    uint64_t m = div_magic(kClassToSize[c]);
    // The first and last byte of every object are the edge cases.
    for (size_t n = 0; n < span; n += kClassToSize[c]) {
      size_t last = n + kClassToSize[c] - 1;
      if (((n * m) >> 32) != n / kClassToSize[c]) return false;
      if (last < span && ((last * m) >> 32) != n / kClassToSize[c]) return false;
    }
  }
  return true;
}
}  // namespace sizeclass_detail

constexpr auto kSizeToClass8 = sizeclass_detail::make_lookup<kSmallSizeMax / kSmallSizeDiv + 1>(0, kSmallSizeDiv);
constexpr auto kSizeToClass128 =
    sizeclass_detail::make_lookup<(kMaxSmallSize - kSmallSizeMax) / kLargeSizeDiv + 1>(kSmallSizeMax, kLargeSizeDiv);
static_assert(sizeclass_detail::magic_is_exact(), "size-class division magic is not exact");

inline uint8_t size_to_class(size_t size) {
  if (size <= kSmallSizeMax - 8) return kSizeToClass8[(size + kSmallSizeDiv - 1) / kSmallSizeDiv];
  return kSizeToClass128[(size - kSmallSizeMax + kLargeSizeDiv - 1) / kLargeSizeDiv];
}

using SpanClass = uint8_t;
constexpr SpanClass make_span_class(uint8_t sizeclass, bool noscan) { return SpanClass(sizeclass << 1 | (noscan ? 1 : 0)); }
constexpr uint8_t span_class_size(SpanClass sc) { return sc >> 1; }
constexpr bool span_class_noscan(SpanClass sc) { return (sc & 1) != 0; }

}  // namespace rt::internal

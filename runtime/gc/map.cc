// The non-template part of rt::Map (rt/map.h, where the table itself
// lives): the seeded byte hash (Go's memhash in alg.go), the random source
// for seeds, iteration starts and NaN hashes, and the fatal errors.
//
// memhash: the runtime's own hash, built from the same folded 64x64->128
// multiply as hash_word. Input is consumed 16 bytes per round, each round
// multiplying the two input words (each xor-ed with a constant, the first
// also with the running state) and folding; the last 1..16 bytes are read
// as two possibly overlapping words (so no byte-by-byte tail loop), and a
// final round mixes in the length, so that inputs that are prefixes of
// each other differ. The seed enters the state before the first round.
#include <cstring>

#include "rt/map.h"
#include "runtime/sched/runtime2.h"

namespace rt::internal {

namespace {

uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint64_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

uint32_t map_fastrand() { return fastrand(); }

uint64_t memhash(const void* p, size_t n, uint64_t seed) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  const size_t len = n;
  uint64_t state = hash_mix(seed ^ kHashK0, kHashK1);
  while (n > 16) {
    state = hash_mix(load64(b) ^ kHashK1 ^ state, load64(b + 8) ^ kHashK2);
    b += 16;
    n -= 16;
  }
  uint64_t lo = 0;
  uint64_t hi = 0;
  if (n > 8) {
    lo = load64(b);
    hi = load64(b + n - 8);
  } else if (n >= 4) {
    lo = load32(b);
    hi = load32(b + n - 4);
  } else if (n > 0) {
    lo = uint64_t(b[0]) | uint64_t(b[n / 2]) << 8 | uint64_t(b[n - 1]) << 16;
  }
  state = hash_mix(lo ^ kHashK1 ^ state, hi ^ kHashK2);
  return hash_mix(state ^ len, kHashK3);
}

void map_fatal(const char* msg) { fatal_user(msg); }

void map_throw(const char* msg) { throw_fatal(msg); }

}  // namespace rt::internal

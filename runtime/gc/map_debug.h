// A structural check of an rt::Map (white-box tests and debugging): walks
// the header and both bucket arrays and reports the first broken invariant:
//   - no write in progress; B, oldbuckets and the sameSizeGrow flag agree;
//   - every filled slot's tophash is tophash(hash(key)) and the slot sits
//     in the chain its hash selects (in the old array while its bucket is
//     not evacuated), except for keys that are not equal to themselves
//     (NaN), whose hash is random;
//   - emptyRest is followed by nothing but empty slots to the chain's end;
//   - evacuation: every old bucket below nevacuate is evacuated, an
//     evacuated chain holds evacuation markers only, and a new bucket is
//     filled only once its old bucket is evacuated;
//   - count equals the entries found (new array plus unevacuated old
//     buckets);
//   - noscan maps: every overflow bucket is in its generation's overflow
//     list (nothing else keeps it alive).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>

#include "rt/map.h"

namespace rt::internal {

struct MapAccess {
  template <class K, class V>
  static HMap<K, V>* hmap(const Map<K, V>& m) {
    return m.h_.get();
  }
};

// Shape of a map, for tests that look at growth.
struct MapShape {
  uint8_t B = 0;
  bool growing = false;
  bool same_size_grow = false;
  uintptr_t nevacuate = 0;
  uint16_t noverflow = 0;
  size_t max_chain = 0;  // longest chain of the current array, in buckets
};

template <class K, class V>
MapShape map_shape(const Map<K, V>& m) {
  MapShape s;
  HMap<K, V>* h = MapAccess::hmap(m);
  if (h == nullptr) return s;
  s.B = h->B;
  s.growing = h->growing();
  s.same_size_grow = h->same_size_grow();
  s.nevacuate = h->nevacuate;
  s.noverflow = h->noverflow;
  if (h->buckets.get() != nullptr) {
    for (uintptr_t i = 0; i < (uintptr_t(1) << h->B); i++) {
      size_t n = 0;
      for (auto* b = h->buckets.get() + i; b != nullptr; b = b->overflow.get()) n++;
      if (n > s.max_chain) s.max_chain = n;
    }
  }
  return s;
}

// "" when every invariant above holds, else what is broken.
template <class K, class V>
std::string map_check(const Map<K, V>& m) {
  using H = HMap<K, V>;
  using Bucket = MapBucket<K, V>;
  H* h = MapAccess::hmap(m);
  if (h == nullptr) return "";
  auto at = [](const char* what, uintptr_t i) { return std::string(what) + " (bucket " + std::to_string(i) + ")"; };
  uint8_t flags = h->load_flags();
  if (flags & kHashWriting) return "hashWriting set outside a write";
  if (!h->growing() && (flags & kSameSizeGrow)) return "sameSizeGrow set while not growing";
  if (h->buckets.get() == nullptr) return h->count == 0 && !h->growing() ? "" : "no buckets but entries";

  std::unordered_set<const void*> listed[2];  // overflow, oldoverflow
  if constexpr (H::kNoscan) {
    if (h->extra) {
      const Ref<MapOverflow<K, V>>* lists[2] = {&h->extra->overflow, &h->extra->oldoverflow};
      for (int g = 0; g < 2; g++) {
        if (*lists[g]) {
          for (const auto& r : (*lists[g])->buckets) listed[g].insert(r.get());
        }
      }
    }
  }

  // Walks the chain of bucket index of an array whose hashes select with
  // mask (generation 0: buckets, 1: oldbuckets), counting its entries into
  // found; returns the first broken invariant, or "".
  size_t found = 0;
  auto walk = [&](Bucket* first, uintptr_t index, uintptr_t mask, int generation, bool evacuated_chain) -> std::string {
    bool rest = false;
    for (Bucket* b = first; b != nullptr; b = b->overflow.get()) {
      if constexpr (H::kNoscan) {
        if (b != first && listed[generation].count(b) == 0) return at("noscan overflow bucket not in its overflow list", index);
      }
      for (unsigned i = 0; i < kBucketCnt; i++) {
        uint8_t top = b->tophash[i];
        if (evacuated_chain) {
          if (top != kEvacuatedX && top != kEvacuatedY && top != kEvacuatedEmpty) {
            return at("evacuated chain holds a slot that is not an evacuation marker", index);
          }
          continue;
        }
        if (top == kEmptyRest) {
          rest = true;
          continue;
        }
        if (top == kEmptyOne) continue;
        if (top < kMinTopHash) return at("evacuation marker in a live chain", index);
        if (rest) return at("filled slot after emptyRest", index);
        found++;
        const K& k = b->keys[i];
        if (!H::reflexive(k)) continue;
        uint64_t hash = h->hash(k);
        if (H::tophash(hash) != top) return at("tophash does not match the key's hash", index);
        if ((hash & mask) != index) return at("entry in a bucket its hash does not select", index);
      }
    }
    return "";
  };

  uintptr_t nbuckets = uintptr_t(1) << h->B;
  if (h->growing()) {
    uintptr_t nold = h->noldbuckets();
    if (!h->same_size_grow() && nold * 2 != nbuckets) return "old array is not half the new one";
    if (h->nevacuate >= nold) return "growth finished but oldbuckets kept";
    for (uintptr_t i = 0; i < nold; i++) {
      Bucket* ob = h->oldbuckets.get() + i;
      bool evac = H::evacuated(ob);
      if (i < h->nevacuate && !evac) return at("old bucket below nevacuate not evacuated", i);
      std::string e = walk(ob, i, nold - 1, 1, evac);
      if (!e.empty()) return "old array: " + e;
    }
  }
  for (uintptr_t i = 0; i < nbuckets; i++) {
    Bucket* b = h->buckets.get() + i;
    if (h->growing() && !H::evacuated(h->oldbuckets.get() + (i & h->oldbucketmask()))) {
      for (Bucket* c = b; c != nullptr; c = c->overflow.get()) {
        for (unsigned j = 0; j < kBucketCnt; j++) {
          if (!H::is_empty(c->tophash[j])) return at("new bucket filled before its old bucket was evacuated", i);
        }
      }
    }
    std::string e = walk(b, i, nbuckets - 1, 0, false);
    if (!e.empty()) return e;
  }
  if (found != h->count) {
    return "count " + std::to_string(h->count) + " but " + std::to_string(found) + " entries found";
  }
  return "";
}

}  // namespace rt::internal

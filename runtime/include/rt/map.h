// rt::Map<K, V>: Go's map, a hash table in the GC heap.
//
//   rt::Map<int64_t, rt::Ref<Node>> m = rt::make_map<int64_t, rt::Ref<Node>>();
//   m.set(7, node);                          // m[7] = node
//   rt::Ref<Node> n = m.get(7);              // m[7] (nil when absent)
//   auto [v, ok] = m.lookup(8);              // v, ok := m[8]
//   m.erase(7);                              // delete(m, 7)
//   for (const auto& [k, v] : m) use(k, v);  // for k, v := range m
//
// A Map is one pointer (a reference to the map's header in the GC heap):
// copies share the table, as Go's map values do. Like a Ref, it is seen by
// the collector on stacks, in globals and inside GC objects; a Map kept
// anywhere else (malloc memory, a std container) must sit in a GC object
// held through an rt::Root. A default-constructed Map
// is Go's nil map: it reads as empty, erase and clear do nothing, and set
// panics with rt::Panic("assignment to entry in nil map").
//
// Semantics (Go's): get returns V's zero value (V{}) for an absent key;
// set inserts or overwrites; len counts entries. Iteration starts at a
// random bucket and a random offset inside each bucket, every time: no
// order may be relied on. While a range loop runs, entries it has not yet
// reached that are erased are not produced, entries set during it may or
// may not be, and no entry is produced twice, also across a growth of the
// table. Float keys: +0 and -0 are one key; NaN != NaN, so every set with
// a NaN key adds an entry that get never finds and erase never removes
// (iteration and clear see them). Maps are not safe for concurrent use:
// a write during another write, read or iteration dies with Go's
// "fatal error: concurrent map writes" (or "concurrent map read and map
// write", "concurrent map iteration and map write") when it is caught;
// like Go, detection is best-effort, not a guarantee.
//
// Key and value types: trivially destructible (the collector runs no
// destructors, as for rt::make), default-constructible (the zero value),
// copyable without throwing. Keys need == and a hash: arithmetic types,
// enums, raw pointers, rt::Ref<T> and types declared rt::pointer_free
// whose bytes are their value (no padding, no floats) have one; for any
// other key type specialise rt::MapHash, chaining the hashes of the fields
// through the seed:
//
//   template <> struct rt::MapHash<Point> {
//     uint64_t operator()(const Point& p, uint64_t seed) const noexcept {
//       return rt::MapHash<double>{}(p.y, rt::MapHash<double>{}(p.x, seed));
//     }
//   };
//
// Layout and algorithm (Go's runtime/map.go): the header (HMap: count,
// flags, B, noverflow, hash0, buckets, oldbuckets, nevacuate, extra)
// points to an array of 2^B buckets; a bucket holds 8 slots (tophash[8],
// then 8 keys, then 8 values, then an overflow pointer chaining further
// buckets). The low B bits of a key's hash pick its bucket; the top byte
// (raised above the markers below) is its tophash, which a lookup compares
// before the key. Tophash markers: emptyRest (this slot and every later
// one in the chain is empty: lookups stop), emptyOne (empty), evacuatedX /
// evacuatedY (the entry moved to the first / second half of the new
// array), evacuatedEmpty (empty, bucket evacuated). Each map has its own
// random seed (hash0), renewed whenever the map becomes empty.
// Growth: an insert that would take the average load over 6.5 entries per
// bucket doubles the array; one that finds as many overflow buckets as
// buckets (2^min(B,15), counted approximately above B = 15) starts a
// same-size growth, which packs the entries again. Growth is incremental:
// the old array stays in oldbuckets, and each write evacuates the old
// bucket it is about to use plus the next one not yet evacuated
// (nevacuate) into the X (same index) or Y (index + 2^(B-1)) half; reads
// look in the old bucket until it is evacuated. Iterators walk the array
// they started on and, during a growth, the old bucket's entries that
// belong to the bucket they are at (mapiternext's checkBucket), looking up
// evacuated entries in the current table. Arrays with B >= 4 are
// allocated with 2^(B-4) spare buckets (rounded up to the size class) that
// serve as the first overflow buckets.
//
// GC: the header and bucket arrays are GC objects. Buckets are scanned
// like any other object, except when K and V are both pointer-free
// (rt::is_pointer_free_v): then bucket arrays are noscan, and the overflow
// buckets (whose only reference sits in a noscan bucket) are kept alive by
// a list in the header's extra part, one per generation (overflow for
// buckets, oldoverflow for oldbuckets), which iterators keep a reference
// to, as Go's hmap.extra.overflow. Every store of a key, value or bucket
// pointer into the map goes through Ref's own copy assignment (or the same
// write-barrier hook, rt::internal::ref_store), and slots are reset by
// assigning K{} / V{}: an erased entry's slots, and the first bucket of an
// evacuated chain, whose overflow pointer is cut (unless an iterator may
// still walk the old array), so that the old array holds nothing alive.
//
// What differs from Go: keys and values are stored in the bucket whatever
// their size (Go moves those above 128 bytes out of line); there is no
// map literal, no m[k] lvalue (set and get instead), no string keys (no
// GC string type yet); clear(m) is Go 1.21's, which also ends live
// iterations' view of the cleared entries.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <new>
#include <type_traits>
#include <utility>

#include "rt/gc.h"
#include "rt/panic.h"

namespace rt {

template <class K, class V>
class Map;
template <class K, class V>
class MapIterator;
// make(map[K]V, hint): an empty map with room for hint entries before it
// grows.
template <class K, class V>
Map<K, V> make_map(size_t hint = 0);

// The hash of a key type: a function object with
// uint64_t operator()(const K&, uint64_t seed) const noexcept, equal for
// keys that compare equal. See the top of this file.
template <class K, class Enable = void>
struct MapHash {
  static_assert(sizeof(K) == 0,
                "rt::Map<K, V>: no hash for this key type: specialise rt::MapHash<K> (see rt/map.h); "
                "types declared rt::pointer_free get one only when their bytes are their value "
                "(no padding bytes, no float fields)");
};

namespace internal {

// The non-template part (runtime/gc/map.cc).
uint32_t map_fastrand();
// A seeded hash of n bytes.
uint64_t memhash(const void* p, size_t n, uint64_t seed);
// A misuse of a map by the program (Go's fatal): "fatal error: msg".
[[noreturn]] void map_fatal(const char* msg);
// A broken map invariant (a runtime bug; Go's throw).
[[noreturn]] void map_throw(const char* msg);

// The two halves of a 64x64-bit product, folded: every output bit depends
// on every input bit of the operand that varies.
inline uint64_t hash_mix(uint64_t a, uint64_t b) {
  __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}
// Odd constants with balanced bits (digits of pi and e).
inline constexpr uint64_t kHashK0 = 0x243f6a8885a308d3ULL;
inline constexpr uint64_t kHashK1 = 0xb7e151628aed2a6bULL;
inline constexpr uint64_t kHashK2 = 0x13198a2e03707345ULL;
inline constexpr uint64_t kHashK3 = 0xa4093822299f31d1ULL;

// The hash of one word: two rounds, the seed in the multiplier of the
// first, so that both the low bits (the bucket) and the top byte (the
// tophash) depend on every bit of v and of the seed.
inline uint64_t hash_word(uint64_t v, uint64_t seed) {
  return hash_mix(hash_mix(v ^ kHashK0, (seed ^ kHashK1) | 1), kHashK2);
}

template <class T>
struct is_ref : std::false_type {};
template <class T>
struct is_ref<Ref<T>> : std::true_type {};

}  // namespace internal

// Integers and enums (Go's memhash32/memhash64).
template <class K>
struct MapHash<K, std::enable_if_t<std::is_integral_v<K> || std::is_enum_v<K>>> {
  uint64_t operator()(K k, uint64_t seed) const noexcept {
    static_assert(sizeof(K) <= 8, "rt::MapHash: integers wider than 64 bits need a MapHash specialisation");
    uint64_t v = 0;
    std::memcpy(&v, &k, sizeof k);
    return internal::hash_word(v, seed);
  }
};

// Pointers and Refs hash their address (Go's map[*T]V).
template <class T>
struct MapHash<T*> {
  uint64_t operator()(T* p, uint64_t seed) const noexcept {
    return internal::hash_word(reinterpret_cast<uintptr_t>(p), seed);
  }
};
template <class T>
struct MapHash<Ref<T>> {
  uint64_t operator()(const Ref<T>& r, uint64_t seed) const noexcept { return MapHash<T*>{}(r.get(), seed); }
};

// float and double (Go's f32hash/f64hash): +0 and -0 hash alike; a NaN
// hashes randomly (it equals nothing, so no lookup needs its hash again).
template <class F>
struct MapHash<F, std::enable_if_t<std::is_same_v<F, float> || std::is_same_v<F, double>>> {
  uint64_t operator()(F f, uint64_t seed) const noexcept {
    if (f == 0) return internal::hash_word(0, seed);
    if (f != f) return internal::hash_word(uint64_t(internal::map_fastrand()) << 32 | internal::map_fastrand(), seed);
    uint64_t v = 0;
    std::memcpy(&v, &f, sizeof f);
    return internal::hash_word(v, seed);
  }
};

// Structs the program declared pointer-free (Go's memhash), when equal
// values have equal bytes.
template <class K>
struct MapHash<K, std::enable_if_t<pointer_free<K>::value && std::is_class_v<K>>> {
  static_assert(std::has_unique_object_representations_v<K>,
                "rt::MapHash: this pointer_free key type has padding bytes or float fields, so equal keys "
                "may differ in their bytes: specialise rt::MapHash<K> (see rt/map.h)");
  uint64_t operator()(const K& k, uint64_t seed) const noexcept {
    if constexpr (sizeof(K) <= 8) {
      uint64_t v = 0;
      std::memcpy(&v, &k, sizeof k);
      return internal::hash_word(v, seed);
    } else {
      return internal::memhash(&k, sizeof k, seed);
    }
  }
};

namespace internal {

inline constexpr unsigned kBucketCntBits = 3;
inline constexpr unsigned kBucketCnt = 1u << kBucketCntBits;
// The load factor that triggers growth, 6.5 entries per bucket.
inline constexpr uintptr_t kLoadFactorNum = 13;
inline constexpr uintptr_t kLoadFactorDen = 2;

// Tophash markers (every value below kMinTopHash).
inline constexpr uint8_t kEmptyRest = 0;
inline constexpr uint8_t kEmptyOne = 1;
inline constexpr uint8_t kEvacuatedX = 2;
inline constexpr uint8_t kEvacuatedY = 3;
inline constexpr uint8_t kEvacuatedEmpty = 4;
inline constexpr uint8_t kMinTopHash = 5;

// HMap::flags.
inline constexpr uint8_t kIterator = 1;      // an iterator may be walking buckets
inline constexpr uint8_t kOldIterator = 2;   // an iterator may be walking oldbuckets
inline constexpr uint8_t kHashWriting = 4;   // a goroutine is writing the map
inline constexpr uint8_t kSameSizeGrow = 8;  // the growth in progress keeps B

// An iterator's checkBucket when it walks a bucket of its own array.
inline constexpr uintptr_t kNoCheck = ~uintptr_t(0);

// A reference into a GC object, interior pointers allowed (a bucket inside
// a bucket array), stored through the write-barrier hook as Ref's stores
// are (a Ref is only ever made to a whole object by rt::make).
template <class T>
class InteriorRef {
 public:
  InteriorRef() noexcept = default;
  explicit InteriorRef(T* v) noexcept { set(v); }
  InteriorRef(const InteriorRef& o) noexcept { set(o.p_); }
  InteriorRef& operator=(const InteriorRef& o) noexcept {
    set(o.p_);
    return *this;
  }
  T* get() const noexcept { return p_; }
  void set(T* v) noexcept { ref_store(reinterpret_cast<void**>(&p_), v); }

 private:
  T* p_ = nullptr;
};

template <class K, class V>
struct MapBucket {
  uint8_t tophash[kBucketCnt];
  K keys[kBucketCnt];
  V values[kBucketCnt];
  InteriorRef<MapBucket> overflow;
};

// Go's []*bmap behind a pointer: iterators keep the object, so overflow
// buckets appended after they started stay reachable through it.
template <class K, class V>
struct MapOverflow {
  Slice<InteriorRef<MapBucket<K, V>>> buckets;
};

// Go's mapextra: the overflow lists of noscan maps and the next spare
// bucket of the current array.
template <class K, class V>
struct MapExtra {
  Ref<MapOverflow<K, V>> overflow;
  Ref<MapOverflow<K, V>> oldoverflow;
  InteriorRef<MapBucket<K, V>> next_overflow;
};

template <class K, class V>
struct HMapSlot {
  MapBucket<K, V>* b = nullptr;
  unsigned i = 0;
};

}  // namespace internal

// Bucket arrays of pointer-free keys and values are noscan (see above).
template <class K, class V>
struct pointer_free<internal::MapBucket<K, V>> : std::bool_constant<is_pointer_free_v<K> && is_pointer_free_v<V>> {};

namespace internal {

// Go's hmap and the operations on it (mapaccess, mapassign, mapdelete,
// mapclear, hashGrow, growWork, evacuate).
template <class K, class V>
struct HMap {
  using Bucket = MapBucket<K, V>;
  using Slot = HMapSlot<K, V>;
  static constexpr bool kNoscan = is_pointer_free_v<Bucket>;
  // Keys that always equal themselves (Go's reflexivekey); others (floats,
  // user types that may hold one) are asked k == k.
  static constexpr bool kReflexiveKey =
      std::is_integral_v<K> || std::is_enum_v<K> || std::is_pointer_v<K> || is_ref<K>::value;
  // Equal keys that differ (+0 and -0): an overwrite stores the new key
  // too (Go's needkeyupdate).
  static constexpr bool kUpdateKey = std::is_floating_point_v<K>;

  size_t count = 0;                // live entries; len()
  std::atomic<uint8_t> flags{0};   // kIterator | ...; relaxed: misuse detection is best-effort, as Go's
  uint8_t B = 0;                   // log2 of the number of buckets
  uint16_t noverflow = 0;          // overflow buckets, approximate above B = 15
  uint32_t hash0 = 0;              // hash seed
  InteriorRef<Bucket> buckets;     // 2^B buckets (nil until the first insert when made with B = 0)
  InteriorRef<Bucket> oldbuckets;  // the previous array while growing
  uintptr_t nevacuate = 0;         // old buckets below this are evacuated
  Ref<MapExtra<K, V>> extra;

  static bool reflexive(const K& k) {
    if constexpr (kReflexiveKey) {
      return true;
    } else {
      return k == k;
    }
  }
  static uint8_t tophash(uint64_t hash) {
    uint8_t top = uint8_t(hash >> 56);
    return top < kMinTopHash ? uint8_t(top + kMinTopHash) : top;
  }
  static bool is_empty(uint8_t top) { return top <= kEmptyOne; }
  static bool evacuated(const Bucket* b) { return b->tophash[0] > kEmptyOne && b->tophash[0] < kMinTopHash; }
  static uintptr_t bucket_mask(uint8_t b) { return (uintptr_t(1) << b) - 1; }
  static bool over_load_factor(size_t n, uint8_t b) {
    return n > kBucketCnt && n > kLoadFactorNum * ((uintptr_t(1) << b) / kLoadFactorDen);
  }
  static bool too_many_overflow_buckets(uint16_t n, uint8_t b) { return n >= uint16_t(1u << (b > 15 ? 15 : b)); }

  uint64_t hash(const K& k) const { return MapHash<K>{}(k, hash0); }
  uint8_t load_flags() const { return flags.load(std::memory_order_relaxed); }
  void store_flags(uint8_t f) { flags.store(f, std::memory_order_relaxed); }
  bool growing() const { return oldbuckets.get() != nullptr; }
  bool same_size_grow() const { return (load_flags() & kSameSizeGrow) != 0; }
  uintptr_t noldbuckets() const { return uintptr_t(1) << (same_size_grow() ? B : B - 1); }
  uintptr_t oldbucketmask() const { return noldbuckets() - 1; }

  void begin_write() {
    if (load_flags() & kHashWriting) map_fatal("concurrent map writes");
    store_flags(load_flags() ^ kHashWriting);
  }
  void end_write() {
    if (!(load_flags() & kHashWriting)) map_fatal("concurrent map writes");
    store_flags(load_flags() & ~kHashWriting);
  }

  // Go's makemap: the smallest B that holds hint entries.
  void init(size_t hint) {
    // Go's makemap ignores a hint whose buckets could not be allocated.
    if (hint > (size_t(1) << 46) / sizeof(Bucket)) hint = 0;
    hash0 = map_fastrand();
    while (over_load_factor(hint, B)) B++;
    if (B != 0) {
      Bucket* next = nullptr;
      buckets.set(make_bucket_array(B, nullptr, &next));
      if (next != nullptr) set_next_overflow(next);
    }
  }

  // n buckets in one GC object, every slot holding the zero value.
  static Bucket* alloc_buckets(uintptr_t n) {
    Bucket* a = static_cast<Bucket*>(alloc_for<Bucket>(n * sizeof(Bucket)));
    if constexpr (!std::is_trivially_default_constructible_v<K> || !std::is_trivially_default_constructible_v<V>) {
      for (uintptr_t i = 0; i < n; i++) new (a + i) Bucket();
    }
    return a;
  }
  static void reset_slot(Bucket* b, unsigned i) {
    if constexpr (!is_pointer_free_v<K>) b->keys[i] = K{};
    b->values[i] = V{};
  }

  // Go's makeBucketArray: 2^b buckets plus the spare ones, fresh or (dirty)
  // the same array reset; *next_overflow is the first spare or nil. The
  // last spare's overflow pointer is a non-nil sentinel (the array).
  static Bucket* make_bucket_array(uint8_t b, Bucket* dirty, Bucket** next_overflow) {
    uintptr_t base = uintptr_t(1) << b;
    uintptr_t n = base;
    if (b >= 4) {
      n += uintptr_t(1) << (b - 4);
      size_t size = sizeof(Bucket) * n;
      size_t up = gc_roundupsize(size);
      if (up != size) n = up / sizeof(Bucket);
    }
    Bucket* a = dirty;
    if (a == nullptr) {
      a = alloc_buckets(n);
    } else {
      for (uintptr_t i = 0; i < n; i++) {
        for (unsigned j = 0; j < kBucketCnt; j++) {
          a[i].tophash[j] = kEmptyRest;
          reset_slot(a + i, j);
        }
        a[i].overflow.set(nullptr);
      }
    }
    *next_overflow = nullptr;
    if (base != n) {
      *next_overflow = a + base;
      a[n - 1].overflow.set(a);
    }
    return a;
  }

  void ensure_extra() {
    if (!extra) extra = make<MapExtra<K, V>>();
  }
  void set_next_overflow(Bucket* b) {
    ensure_extra();
    extra->next_overflow.set(b);
  }
  void create_overflow() {
    ensure_extra();
    if (!extra->overflow) extra->overflow = make<MapOverflow<K, V>>();
  }

  void incr_noverflow() {
    if (B < 16) {
      noverflow++;
      return;
    }
    // About as many overflow buckets as buckets when noverflow reaches 2^15.
    uint32_t mask = (uint32_t(1) << (B - 15)) - 1;
    if ((map_fastrand() & mask) == 0) noverflow++;
  }

  // Chains a new overflow bucket after b: the next spare, else a new one.
  Bucket* new_overflow(Bucket* b) {
    Bucket* ovf;
    if (extra && extra->next_overflow.get() != nullptr) {
      ovf = extra->next_overflow.get();
      if (ovf->overflow.get() == nullptr) {
        extra->next_overflow.set(ovf + 1);
      } else {
        ovf->overflow.set(nullptr);  // the last spare: drop the sentinel
        extra->next_overflow.set(nullptr);
      }
    } else {
      ovf = alloc_buckets(1);
    }
    incr_noverflow();
    if constexpr (kNoscan) {
      create_overflow();
      extra->overflow->buckets = append(extra->overflow->buckets, InteriorRef<Bucket>(ovf));
    }
    b->overflow.set(ovf);
    return ovf;
  }

  // The slot holding key (hash is its hash), or {} (Go's mapaccessK).
  // count > 0.
  Slot find(const K& key, uint64_t hash) const {
    uintptr_t m = bucket_mask(B);
    Bucket* b = buckets.get() + (hash & m);
    if (Bucket* old = oldbuckets.get()) {
      if (!same_size_grow()) m >>= 1;
      Bucket* oldb = old + (hash & m);
      if (!evacuated(oldb)) b = oldb;
    }
    // The 8 tophashes are compared as one word: a byte of tops ^ top*ones
    // is zero where the tophash matches (the zero-byte test may also flag
    // a byte above a real match, which the key comparison rejects). An
    // emptyRest (zero) byte ends the chain: nothing follows it, so the
    // result is the same as Go's slot-by-slot walk.
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHighs = 0x8080808080808080ULL;
    const uint64_t pattern = kOnes * tophash(hash);
    for (; b != nullptr; b = b->overflow.get()) {
      uint64_t tops;
      std::memcpy(&tops, b->tophash, sizeof tops);
      uint64_t x = tops ^ pattern;
      for (uint64_t match = (x - kOnes) & ~x & kHighs; match != 0; match &= match - 1) {
        unsigned i = unsigned(__builtin_ctzll(match)) / 8;
        if (b->keys[i] == key) return {b, i};
      }
      if (((tops - kOnes) & ~tops & kHighs) != 0) return {};
    }
    return {};
  }

  // Go's mapaccess.
  Slot lookup(const K& key) const {
    if (count == 0) return {};
    if (load_flags() & kHashWriting) map_fatal("concurrent map read and map write");
    return find(key, hash(key));
  }

  // Go's mapassign, with the value stored before the write ends.
  void assign(const K& key, const V& value) {
    if (load_flags() & kHashWriting) map_fatal("concurrent map writes");
    uint64_t h = hash(key);
    // After hashing: a user hash that throws has not begun a write.
    store_flags(load_flags() ^ kHashWriting);
    if (buckets.get() == nullptr) buckets.set(alloc_buckets(1));
    uint8_t top = tophash(h);
    uintptr_t bucket;
    Bucket* b;
    Bucket* insertb;
    unsigned inserti;
  again:
    bucket = h & bucket_mask(B);
    if (growing()) grow_work(bucket);
    b = buckets.get() + bucket;
    insertb = nullptr;
    inserti = 0;
    for (;;) {
      for (unsigned i = 0; i < kBucketCnt; i++) {
        if (b->tophash[i] != top) {
          if (is_empty(b->tophash[i]) && insertb == nullptr) {
            insertb = b;
            inserti = i;
          }
          if (b->tophash[i] == kEmptyRest) goto absent;
          continue;
        }
        if (!(b->keys[i] == key)) continue;
        if constexpr (kUpdateKey) b->keys[i] = key;
        b->values[i] = value;
        goto done;
      }
      if (b->overflow.get() == nullptr) break;
      b = b->overflow.get();
    }
  absent:
    if (!growing() && (over_load_factor(count + 1, B) || too_many_overflow_buckets(noverflow, B))) {
      hash_grow();
      goto again;  // the growth moved everything
    }
    if (insertb == nullptr) {
      insertb = new_overflow(b);
      inserti = 0;
    }
    insertb->keys[inserti] = key;
    insertb->values[inserti] = value;
    insertb->tophash[inserti] = top;
    count++;
  done:
    end_write();
  }

  // Go's mapdelete.
  void remove(const K& key) {
    if (count == 0) return;
    if (load_flags() & kHashWriting) map_fatal("concurrent map writes");
    uint64_t h = hash(key);
    store_flags(load_flags() ^ kHashWriting);
    uintptr_t bucket = h & bucket_mask(B);
    if (growing()) grow_work(bucket);
    Bucket* first = buckets.get() + bucket;
    uint8_t top = tophash(h);
    for (Bucket* b = first; b != nullptr; b = b->overflow.get()) {
      for (unsigned i = 0; i < kBucketCnt; i++) {
        if (b->tophash[i] != top) {
          if (b->tophash[i] == kEmptyRest) goto done;
          continue;
        }
        if (!(b->keys[i] == key)) continue;
        reset_slot(b, i);
        b->tophash[i] = kEmptyOne;
        mark_empty_rest(first, b, i);
        count--;
        // A new seed makes repeated collision attacks harder (Go issue 25237).
        if (count == 0) hash0 = map_fastrand();
        goto done;
      }
    }
  done:
    end_write();
  }

  // After slot i of b (in the chain starting at first) became emptyOne: if
  // nothing follows it in the chain, it and the emptyOne slots before it
  // become emptyRest.
  static void mark_empty_rest(Bucket* first, Bucket* b, unsigned i) {
    if (i == kBucketCnt - 1) {
      Bucket* next = b->overflow.get();
      if (next != nullptr && next->tophash[0] != kEmptyRest) return;
    } else if (b->tophash[i + 1] != kEmptyRest) {
      return;
    }
    for (;;) {
      b->tophash[i] = kEmptyRest;
      if (i == 0) {
        if (b == first) return;
        Bucket* c = b;
        for (b = first; b->overflow.get() != c; b = b->overflow.get()) {
        }
        i = kBucketCnt - 1;
      } else {
        i--;
      }
      if (b->tophash[i] != kEmptyOne) return;
    }
  }

  // Every slot of n buckets of a (and their chains) reads as empty, so that
  // an iterator still walking the array produces none of them.
  static void mark_buckets_empty(Bucket* a, uintptr_t n) {
    for (uintptr_t i = 0; i < n; i++) {
      for (Bucket* b = a + i; b != nullptr; b = b->overflow.get()) {
        for (unsigned j = 0; j < kBucketCnt; j++) b->tophash[j] = kEmptyRest;
      }
    }
  }

  // Go's mapclear, with Go 1.21's marking of the buckets for iterators.
  void clear() {
    if (count == 0) return;
    begin_write();
    mark_buckets_empty(buckets.get(), uintptr_t(1) << B);
    if (growing()) mark_buckets_empty(oldbuckets.get(), noldbuckets());
    store_flags(load_flags() & ~kSameSizeGrow);
    oldbuckets.set(nullptr);
    nevacuate = 0;
    noverflow = 0;
    count = 0;
    hash0 = map_fastrand();
    if (extra) *extra = MapExtra<K, V>{};
    Bucket* next = nullptr;
    make_bucket_array(B, buckets.get(), &next);
    if (next != nullptr) set_next_overflow(next);
    end_write();
  }

  // Go's hashGrow: a new array (twice as large when the load factor is
  // reached, else the same size) becomes buckets; evacuation is left to
  // the writes that follow.
  void hash_grow() {
    uint8_t bigger = 1;
    uint8_t f = load_flags();
    if (!over_load_factor(count + 1, B)) {
      bigger = 0;
      f |= kSameSizeGrow;
    }
    Bucket* old = buckets.get();
    Bucket* next = nullptr;
    Bucket* fresh = make_bucket_array(uint8_t(B + bigger), nullptr, &next);
    uint8_t nf = f & ~(kIterator | kOldIterator);
    if (f & kIterator) nf |= kOldIterator;
    B += bigger;
    store_flags(nf);
    oldbuckets.set(old);
    buckets.set(fresh);
    nevacuate = 0;
    noverflow = 0;
    if (extra && extra->overflow) {
      // The current overflow buckets become the old generation's.
      if (extra->oldoverflow) map_throw("map: oldoverflow is not nil");
      extra->oldoverflow = extra->overflow;
      extra->overflow = nullptr;
    }
    if (next != nullptr) set_next_overflow(next);
  }

  // Go's growWork: the old bucket about to be used, and one more.
  void grow_work(uintptr_t bucket) {
    evacuate(bucket & oldbucketmask());
    if (growing()) evacuate(nevacuate);
  }

  // Moves the entries of old bucket oldbucket (and its chain) to X (same
  // index) or Y (index + noldbuckets) of the new array; its tophashes
  // record where each went.
  void evacuate(uintptr_t oldbucket) {
    Bucket* first = oldbuckets.get() + oldbucket;
    uintptr_t newbit = noldbuckets();
    if (!evacuated(first)) {
      struct Dst {
        Bucket* b;
        unsigned i;
      } xy[2] = {{buckets.get() + oldbucket, 0}, {nullptr, 0}};
      bool same = same_size_grow();
      if (!same) xy[1].b = buckets.get() + oldbucket + newbit;
      for (Bucket* b = first; b != nullptr; b = b->overflow.get()) {
        for (unsigned i = 0; i < kBucketCnt; i++) {
          uint8_t top = b->tophash[i];
          if (is_empty(top)) {
            b->tophash[i] = kEvacuatedEmpty;
            continue;
          }
          if (top < kMinTopHash) map_throw("map: bad map state");
          unsigned use_y = 0;
          if (!same) {
            uint64_t h = hash(b->keys[i]);
            if ((load_flags() & kIterator) && !reflexive(b->keys[i])) {
              // A NaN's hash is not reproducible, and the choice must match
              // what an iterator decided: the low bit of its old tophash
              // decides, and it gets a fresh random tophash.
              use_y = top & 1;
              top = tophash(h);
            } else if (h & newbit) {
              use_y = 1;
            }
          }
          b->tophash[i] = uint8_t(kEvacuatedX + use_y);
          Dst& d = xy[use_y];
          if (d.i == kBucketCnt) {
            d.b = new_overflow(d.b);
            d.i = 0;
          }
          d.b->tophash[d.i] = top;
          d.b->keys[d.i] = b->keys[i];
          d.b->values[d.i] = b->values[i];
          d.i++;
        }
      }
      // Unless an iterator may still read them, drop the old chain's
      // references (the first bucket's slots and its overflow link); the
      // tophashes stay, they record the evacuation.
      if (!(load_flags() & kOldIterator) && !kNoscan) {
        for (unsigned i = 0; i < kBucketCnt; i++) reset_slot(first, i);
        first->overflow.set(nullptr);
      }
    }
    if (oldbucket == nevacuate) advance_evacuation_mark(newbit);
  }

  void advance_evacuation_mark(uintptr_t newbit) {
    nevacuate++;
    // Bounded, to keep a write O(1).
    uintptr_t stop = nevacuate + 1024;
    if (stop > newbit) stop = newbit;
    while (nevacuate != stop && evacuated(oldbuckets.get() + nevacuate)) nevacuate++;
    if (nevacuate == newbit) {
      // Done: the old array and its overflow list go (iterators keep
      // their own references).
      oldbuckets.set(nullptr);
      if (extra) extra->oldoverflow = nullptr;
      store_flags(load_flags() & ~kSameSizeGrow);
    }
  }
};

struct MapAccess;

}  // namespace internal

// An iteration over a Map (Go's hiter): a forward iterator of (key, value)
// pairs, copies taken when the iterator reaches them. Compares equal to
// std::default_sentinel at the end.
template <class K, class V>
class MapIterator {
 public:
  using value_type = std::pair<K, V>;
  using difference_type = std::ptrdiff_t;

  MapIterator() = default;

  const value_type& operator*() const noexcept { return entry_; }
  const value_type* operator->() const noexcept { return &entry_; }
  MapIterator& operator++() {
    next();
    return *this;
  }
  void operator++(int) { next(); }
  friend bool operator==(const MapIterator& it, std::default_sentinel_t) noexcept { return !it.h_; }

 private:
  friend class Map<K, V>;
  using HMap = internal::HMap<K, V>;
  using Bucket = internal::MapBucket<K, V>;

  // Go's mapiterinit: a snapshot of the array, a random start bucket and
  // in-bucket offset.
  explicit MapIterator(const Ref<HMap>& h) {
    if (!h || h->count == 0) return;
    h_ = h;
    B_ = h->B;
    buckets_ = h->buckets;
    if constexpr (HMap::kNoscan) {
      h->create_overflow();
      overflow_ = h->extra->overflow;
      oldoverflow_ = h->extra->oldoverflow;
    }
    uint64_t r = internal::map_fastrand();
    if (B_ > 31 - internal::kBucketCntBits) r |= uint64_t(internal::map_fastrand()) << 32;
    start_bucket_ = r & HMap::bucket_mask(B_);
    offset_ = uint8_t((r >> B_) & (internal::kBucketCnt - 1));
    bucket_ = start_bucket_;
    constexpr uint8_t both = internal::kIterator | internal::kOldIterator;
    if ((h->load_flags() & both) != both) h->flags.fetch_or(both, std::memory_order_relaxed);
    next();
  }

  // Go's mapiternext.
  void next() {
    HMap* h = h_.get();
    if (h->load_flags() & internal::kHashWriting) internal::map_fatal("concurrent map iteration and map write");
    uintptr_t bucket = bucket_;
    Bucket* b = bptr_.get();
    unsigned i = i_;
    uintptr_t check = check_bucket_;
    for (;;) {
      if (b == nullptr) {
        if (bucket == start_bucket_ && wrapped_) {
          h_ = nullptr;  // the end; drops the references
          buckets_.set(nullptr);
          bptr_.set(nullptr);
          overflow_ = nullptr;
          oldoverflow_ = nullptr;
          return;
        }
        if (h->growing() && B_ == h->B) {
          // Started during this growth: while the old bucket that fills
          // this one is not evacuated, walk it for the entries bound here.
          b = h->oldbuckets.get() + (bucket & h->oldbucketmask());
          if (!HMap::evacuated(b)) {
            check = bucket;
          } else {
            b = buckets_.get() + bucket;
            check = internal::kNoCheck;
          }
        } else {
          b = buckets_.get() + bucket;
          check = internal::kNoCheck;
        }
        bucket++;
        if (bucket == uintptr_t(1) << B_) {
          bucket = 0;
          wrapped_ = true;
        }
        i = 0;
      }
      for (; i < internal::kBucketCnt; i++) {
        unsigned offi = (i + offset_) & (internal::kBucketCnt - 1);
        uint8_t top = b->tophash[offi];
        if (HMap::is_empty(top) || top == internal::kEvacuatedEmpty) continue;
        const K& k = b->keys[offi];
        bool reflexive = HMap::reflexive(k);
        if (check != internal::kNoCheck && !h->same_size_grow()) {
          if (reflexive) {
            // Skip the entries that go to the other half.
            if ((h->hash(k) & HMap::bucket_mask(B_)) != check) continue;
          } else if ((check >> (B_ - 1)) != uintptr_t(top & 1)) {
            // A NaN goes where the low bit of its tophash says (evacuate).
            continue;
          }
        }
        if ((top != internal::kEvacuatedX && top != internal::kEvacuatedY) || !reflexive) {
          // The entry itself (a NaN cannot have been erased or updated).
          entry_.first = k;
          entry_.second = b->values[offi];
        } else {
          // Evacuated since the iteration began: the current table has
          // the entry, updated, or not at all when it was erased.
          internal::HMapSlot<K, V> s = h->count == 0 ? internal::HMapSlot<K, V>{} : h->find(k, h->hash(k));
          if (s.b == nullptr) continue;
          entry_.first = s.b->keys[s.i];
          entry_.second = s.b->values[s.i];
        }
        bucket_ = bucket;
        if (bptr_.get() != b) bptr_.set(b);
        i_ = uint8_t(i + 1);
        check_bucket_ = check;
        return;
      }
      b = b->overflow.get();
      i = 0;
    }
  }

  Ref<HMap> h_;  // nil at the end
  internal::InteriorRef<Bucket> buckets_;  // the array at the start
  internal::InteriorRef<Bucket> bptr_;     // the bucket being walked
  Ref<internal::MapOverflow<K, V>> overflow_;     // noscan maps: keep the overflow
  Ref<internal::MapOverflow<K, V>> oldoverflow_;  // buckets alive
  uintptr_t start_bucket_ = 0;
  uintptr_t bucket_ = 0;
  uintptr_t check_bucket_ = 0;
  uint8_t offset_ = 0;
  uint8_t B_ = 0;
  uint8_t i_ = 0;
  bool wrapped_ = false;
  value_type entry_{};
};

// Go's map[K]V. See the top of this file.
template <class K, class V>
class Map {
  static_assert(std::is_trivially_destructible_v<K> && std::is_trivially_destructible_v<V>,
                "rt::Map<K, V>: K and V must be trivially destructible: the collector frees buckets "
                "without running destructors (hold owned resources outside the GC heap)");
  static_assert(std::is_default_constructible_v<K> && std::is_default_constructible_v<V>,
                "rt::Map<K, V>: K and V must be default-constructible (Go's zero value)");
  static_assert(std::is_nothrow_copy_constructible_v<K> && std::is_nothrow_copy_assignable_v<K> &&
                    std::is_nothrow_copy_constructible_v<V> && std::is_nothrow_copy_assignable_v<V>,
                "rt::Map<K, V>: K and V must be copyable without throwing (a write cannot be undone halfway)");
  static_assert(std::is_convertible_v<decltype(std::declval<const K&>() == std::declval<const K&>()), bool>,
                "rt::Map<K, V>: K needs operator==");

  using HMap = internal::HMap<K, V>;

 public:
  using iterator = MapIterator<K, V>;

  // Go's nil map.
  Map() noexcept = default;
  Map(std::nullptr_t) noexcept {}

  // len(m).
  size_t len() const noexcept { return h_ ? h_->count : 0; }
  // m[key]: V's zero value when absent.
  V get(const K& key) const {
    if (!h_) return V{};
    internal::HMapSlot<K, V> s = h_->lookup(key);
    return s.b != nullptr ? s.b->values[s.i] : V{};
  }
  // v, ok := m[key].
  std::pair<V, bool> lookup(const K& key) const {
    if (!h_) return {V{}, false};
    internal::HMapSlot<K, V> s = h_->lookup(key);
    if (s.b == nullptr) return {V{}, false};
    return {s.b->values[s.i], true};
  }
  // m[key] = value; panics "assignment to entry in nil map" on a nil map.
  void set(const K& key, const V& value) {
    if (!h_) throw Panic("assignment to entry in nil map");
    h_->assign(key, value);
  }
  // delete(m, key): nothing when absent or nil.
  void erase(const K& key) {
    if (h_) h_->remove(key);
  }
  // clear(m) (Go 1.21): no entries left, NaN keys included.
  void clear() {
    if (h_) h_->clear();
  }
  // for k, v := range m (see the top of this file).
  iterator begin() const { return iterator(h_); }
  std::default_sentinel_t end() const noexcept { return {}; }

  // m == nil.
  friend bool operator==(const Map& m, std::nullptr_t) noexcept { return !m.h_; }

 private:
  template <class K2, class V2>
  friend Map<K2, V2> make_map(size_t hint);
  friend struct internal::MapAccess;

  Ref<HMap> h_;
};

static_assert(sizeof(Map<int, int>) == sizeof(void*), "rt::Map is one pointer");

template <class K, class V>
Map<K, V> make_map(size_t hint) {
  Map<K, V> m;
  m.h_ = make<internal::HMap<K, V>>();
  m.h_->init(hint);
  return m;
}

}  // namespace rt

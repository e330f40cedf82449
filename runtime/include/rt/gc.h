// The garbage-collected heap: rt::make, rt::Ref, rt::Root, rt::Slice,
// rt::append and rt::gc (Go's new/make, pointers, runtime.GC).
//
//   struct Node { int64_t value; rt::Ref<Node> next; };
//   rt::Ref<Node> list;                      // nil
//   for (int i = 0; i < 3; i++) list = rt::make<Node>(Node{i, list});
//   rt::Slice<int32_t> s = rt::make_slice<int32_t>(0, 4);
//   s = rt::append(s, 1, 2, 3);             // Go's append
//   rt::gc();                                // runtime.GC()
//
// Objects made here are freed by the collector once nothing reachable
// refers to them; there is no delete. What the collector sees as
// references (its roots and the objects they reach):
//   - every word of every goroutine stack from its stack pointer up, and
//     the callee-saved registers it saved when it stopped (conservatively:
//     any word that falls inside an allocated object keeps the whole
//     object alive, interior pointers included);
//   - every word of the main executable's writable data (.data, .bss);
//   - the closures of goroutines started with rt::go and of timers
//     started with rt::after_func, and the channels of rt::after, ChanTimer
//     and Ticker (channels are GC objects: rt/chan.h);
//   - rt::Root<T> and rt::Root<Chan<T>> handles, wherever they live;
//   - inside GC objects of scan classes, every word (see below).
// Anything else is invisible to the collector: a Ref or a Chan (or a raw
// pointer to a GC object) kept only in malloc memory, a std container
// (std::function's captures included), a thread_local or another process
// is the program's bug, and the object may be freed under it. Hold such
// references through an rt::Root, or keep them in GC objects (rt::Slice).
//
// Scan and noscan objects (Go's noscan span classes): an object is never
// scanned for references when its type is arithmetic or an enum, or when
// the program declares it pointer-free by specialising rt::pointer_free:
//
//   template <> struct rt::pointer_free<Pixel> : std::true_type {};
//
// Slices of such element types are noscan too. Every other type is
// scanned word by word. Declaring a type pointer-free that holds a Ref or
// a pointer to a GC object is a bug: the referenced objects are freed.
//
// Destructors: the collector frees memory without running any code, so
// rt::make and rt::make_slice refuse, at compile time, a type that is not
// trivially destructible (one owning malloc memory or a file descriptor
// would leak it silently). rt::Ref itself is trivially destructible, so
// structs of Refs, arithmetic fields and other such structs are accepted.
//
// The collector marks concurrently with the program. Every store of a
// reference into a Ref (assignment and copy construction alike) runs Go's
// hybrid write barrier while it marks, and is one predictable branch
// otherwise; Refs are the only references the program may store into GC
// objects. Copying raw bytes over a Ref (memcpy of a struct holding one)
// bypasses the barrier and may lose the object it names: GODEBUG=
// gccheckmark=1 verifies each collection and names such objects.
//
// Environment (read at start-up, with Go's meanings): GOGC=N sets the heap
// growth that triggers a collection (the heap goal is the live heap after
// the last collection times 1 + N/100, at least 4 MiB x N/100); GOGC=off,
// or a negative N, disables collection by heap growth; a value that is not
// a number is ignored (100), as Go ignores it. GODEBUG=gctrace=1 prints one
// line per collection in Go's format:
//   gc 7 @0.347s 2%: 0.013+0.48+0.012 ms clock, 0.026+0.1/0.3/0.05+0.024 ms
//     cpu, 8->8->3 MB, 8 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
// (on one line; "(forced)" for rt::gc()). GODEBUG=gcstoptheworld=1 marks
// with the world stopped; gccheckmark=1 verifies every mark.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "rt/panic.h"

// Non-zero while the collector marks (Go's writeBarrier.enabled); read by
// the inline barrier test below.
extern "C" unsigned char rt_write_barrier_enabled;

namespace rt {

// Specialise as std::true_type for a type that holds no reference to a GC
// object: its objects and slices are never scanned (see above).
template <class T>
struct pointer_free : std::false_type {};

template <class T>
inline constexpr bool is_pointer_free_v = std::is_arithmetic_v<T> || std::is_enum_v<T> || pointer_free<T>::value;

namespace internal {
void* gc_alloc(size_t size, bool scan);
// The size mallocgc actually reserves for a request of size bytes (its
// size class, or whole pages): append grows into it, as Go's growslice.
size_t gc_roundupsize(size_t size);

// Every store of a reference into a Ref: Go's hybrid write barrier while
// the collector marks (runtime/gc/mbarrier.cc), a plain store otherwise.
// The test of the flag, the branch and the store are one sequence that
// the asynchronous preemption must not split (a goroutine stopped between
// a test that saw the barrier off and its store would store unshaded into
// a marking heap): each inlined copy records its bounds in the section
// rt_wb_sequences, whose PCs the SIGURG handler refuses as it refuses the
// runtime's own code (runtime/sched/preempt.cc). A record joins the section
// group of the function it is in (the `?` flag): of an inline function
// that several objects emit, the linker keeps one copy, and the records of
// the copies it drops go with them (lld rejects a reference into a
// dropped section; GNU ld resolved it to address 0). Records are retained
// (`R`, SHF_GNU_RETAIN): nothing refers to them but __start_/__stop_,
// and lld's --gc-sections would otherwise drop every one.
void write_barrier_store(void** slot, void* v);
inline void ref_store(void** slot, void* v) {
  asm goto(
      "1:\n\t"
      "cmpb $0, rt_write_barrier_enabled(%%rip)\n\t"
      "jne %l[barrier]\n\t"
      "movq %1, %0\n"
      "2:\n\t"
      ".pushsection rt_wb_sequences,\"awR?\"\n\t"
      ".balign 8\n\t"
      ".quad 1b, 2b\n\t"
      ".popsection"
      : "+m"(*slot)
      : "r"(v)
      : "cc"
      : barrier);
  return;
barrier:
  write_barrier_store(slot, v);
}

// An rt::Root registration: a doubly-linked list the collector walks.
struct RootNode {
  RootNode* next;
  RootNode* prev;
  void* const* slot;
};
void root_register(RootNode* n);
void root_unregister(RootNode* n);

[[noreturn]] void slice_index_panic(const char* what, size_t i, size_t n);

// GC memory for bytes aligned to align (at most 16). Size classes are
// multiples of 16 except 8 and 24: round up so that 16-aligned types get
// a 16-aligned slot.
inline void* gc_alloc_aligned(size_t bytes, size_t align, bool scan) {
  if (align > 8) bytes = (bytes + 15) & ~size_t(15);
  return gc_alloc(bytes, scan);
}

template <class T>
void* alloc_for(size_t bytes) {
  static_assert(std::is_trivially_destructible_v<T>,
                "rt::make/rt::make_slice: T must be trivially destructible: the collector frees objects "
                "without running destructors (hold owned resources outside the GC heap)");
  static_assert(alignof(T) <= 16, "rt::make/rt::make_slice: alignment above 16 bytes is not supported");
  return gc_alloc_aligned(bytes, alignof(T), !is_pointer_free_v<T>);
}
}  // namespace internal

namespace internal {
template <class R>
class RootOf;
}  // namespace internal

// A reference to a GC object of type T: one pointer, nil by default.
// Copying a Ref copies the reference (both name the same object).
template <class T>
class Ref {
 public:
  Ref() noexcept = default;
  Ref(std::nullptr_t) noexcept {}
  Ref(const Ref& o) noexcept { store(o.p_); }
  template <class U, class = std::enable_if_t<std::is_convertible_v<U*, T*>>>
  Ref(const Ref<U>& o) noexcept {
    store(o.get());
  }
  Ref& operator=(const Ref& o) noexcept {
    store(o.p_);
    return *this;
  }
  Ref& operator=(std::nullptr_t) noexcept {
    store(nullptr);
    return *this;
  }
  ~Ref() = default;

  T* get() const noexcept { return p_; }
  T* operator->() const noexcept { return p_; }
  T& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }

  friend bool operator==(const Ref& a, const Ref& b) noexcept { return a.p_ == b.p_; }
  friend bool operator!=(const Ref& a, const Ref& b) noexcept { return a.p_ != b.p_; }
  friend bool operator==(const Ref& a, std::nullptr_t) noexcept { return a.p_ == nullptr; }
  friend bool operator!=(const Ref& a, std::nullptr_t) noexcept { return a.p_ != nullptr; }
  friend bool operator==(std::nullptr_t, const Ref& a) noexcept { return a.p_ == nullptr; }
  friend bool operator!=(std::nullptr_t, const Ref& a) noexcept { return a.p_ != nullptr; }

 private:
  template <class U, class... Args>
  friend Ref<U> make(Args&&... args);
  template <class R>
  friend class internal::RootOf;

  void store(T* v) noexcept {
    internal::ref_store(reinterpret_cast<void**>(const_cast<std::remove_cv_t<T>**>(&p_)),
                        const_cast<std::remove_cv_t<T>*>(v));
  }
  void* const* slot() const noexcept { return reinterpret_cast<void* const*>(&p_); }

  T* p_ = nullptr;
};

static_assert(sizeof(Ref<int>) == sizeof(void*), "rt::Ref is one pointer");
static_assert(std::is_trivially_destructible_v<Ref<int>>, "rt::Ref needs no destructor");

// Allocates a T in the GC heap, constructed from args (zeroed memory, then
// T(args...)); Go's new(T) and &T{...}.
template <class T, class... Args>
Ref<T> make(Args&&... args) {
  void* mem = internal::alloc_for<T>(sizeof(T));
  Ref<T> r;
  r.store(new (mem) T(std::forward<Args>(args)...));
  return r;
}

namespace internal {
// The registration shared by every kind of root: holds one reference R (a
// Ref or a Chan: one pointer, which slot() names) and keeps its slot on
// the collector's list for the Root's lifetime.
template <class R>
class RootOf {
 public:
  RootOf() { link(); }
  RootOf(const R& r) : r_(r) { link(); }
  RootOf(const RootOf& o) : r_(o.r_) { link(); }
  RootOf& operator=(const RootOf& o) {
    r_ = o.r_;
    return *this;
  }
  ~RootOf() { root_unregister(&node_); }

 protected:
  R r_;

 private:
  void link() {
    node_.slot = reinterpret_cast<void* const*>(r_.slot());
    root_register(&node_);
  }
  RootNode node_{};
};
}  // namespace internal

// A reference kept where the collector does not look (malloc memory, std
// containers, thread_locals, globals of shared libraries): the object stays
// alive while the Root exists. Registration takes a short lock; keep Roots
// for long-lived references, not in hot loops.
template <class T>
class Root : public internal::RootOf<Ref<T>> {
  using Base = internal::RootOf<Ref<T>>;

 public:
  using Base::Base;
  Root& operator=(const Ref<T>& r) {
    this->r_ = r;
    return *this;
  }

  const Ref<T>& ref() const noexcept { return this->r_; }
  T* get() const noexcept { return this->r_.get(); }
  T* operator->() const noexcept { return this->r_.get(); }
  T& operator*() const noexcept { return *this->r_; }
  explicit operator bool() const noexcept { return bool(this->r_); }
};

// Go's slice: a view of len elements of a GC array of cap elements. Copies
// share the array; append may move to a new one (see rt::append). T must
// be default-constructible and trivially destructible; noscan when T is
// pointer-free (see the top of this file).
template <class T>
class Slice {
 public:
  Slice() noexcept = default;
  Slice(std::nullptr_t) noexcept {}
  Slice(const Slice& o) noexcept : len_(o.len_), cap_(o.cap_) { store(o.array_); }
  Slice& operator=(const Slice& o) noexcept {
    store(o.array_);
    len_ = o.len_;
    cap_ = o.cap_;
    return *this;
  }

  size_t len() const noexcept { return len_; }
  size_t cap() const noexcept { return cap_; }
  bool empty() const noexcept { return len_ == 0; }
  T* data() const noexcept { return array_; }
  T* begin() const noexcept { return array_; }
  T* end() const noexcept { return array_ + len_; }
  // Go's s[i]: panics "index out of range [i] with length len".
  T& operator[](size_t i) const {
    if (i >= len_) internal::slice_index_panic("index out of range [%zu] with length %zu", i, len_);
    return array_[i];
  }
  // Go's s[lo:hi] (0 <= lo <= hi <= cap), sharing the array.
  Slice sub(size_t lo, size_t hi) const {
    if (hi > cap_) internal::slice_index_panic("slice bounds out of range [:%zu] with capacity %zu", hi, cap_);
    if (lo > hi) internal::slice_index_panic("slice bounds out of range [%zu:%zu]", lo, hi);
    Slice s;
    s.store(array_ + lo);
    s.len_ = hi - lo;
    s.cap_ = cap_ - lo;
    return s;
  }

 private:
  template <class U>
  friend Slice<U> make_slice(size_t len, size_t cap);
  template <class U, class... Vs>
  friend Slice<U> append(Slice<U> s, Vs&&... vs);

  void store(T* v) noexcept { internal::ref_store(reinterpret_cast<void**>(&array_), v); }

  T* array_ = nullptr;
  size_t len_ = 0;
  size_t cap_ = 0;
};

namespace internal {
template <class T>
T* make_array(size_t cap) {
  static_assert(std::is_default_constructible_v<T>, "rt::Slice: T must be default-constructible (Go's zero value)");
  if (cap > (size_t(1) << 46) / (sizeof(T) == 0 ? 1 : sizeof(T))) throw Panic("makeslice: cap out of range");
  T* a = static_cast<T*>(alloc_for<T>(cap * sizeof(T)));
  // The memory is zeroed; types whose zero value is not all-zero bytes get
  // constructed.
  if constexpr (!std::is_trivially_default_constructible_v<T>) {
    for (size_t i = 0; i < cap; i++) new (a + i) T();
  }
  return a;
}
}  // namespace internal

// Go's make([]T, len, cap): panics "makeslice: len out of range" or
// "makeslice: cap out of range" as Go does.
template <class T>
Slice<T> make_slice(size_t len, size_t cap) {
  if (len > cap) throw Panic("makeslice: cap out of range");
  Slice<T> s;
  s.store(internal::make_array<T>(cap));
  s.len_ = len;
  s.cap_ = cap;
  return s;
}
template <class T>
Slice<T> make_slice(size_t len) {
  return make_slice<T>(len, len);
}

// Go's append(s, vs...): when cap(s) has room, the values go into s's
// array; else a new array is allocated with Go's growth (growslice:
// double below 256 elements, then grow by (n + 3*256)/4 until enough,
// rounded up to the allocation's size class) and the old elements copied.
template <class T, class... Vs>
Slice<T> append(Slice<T> s, Vs&&... vs) {
  constexpr size_t kAdd = sizeof...(Vs);
  size_t need = s.len_ + kAdd;
  if (need > s.cap_) {
    size_t newcap = s.cap_;
    size_t doublecap = newcap + newcap;
    if (need > doublecap) {
      newcap = need;
    } else if (s.cap_ < 256) {
      newcap = doublecap;
    } else {
      while (newcap < need) newcap += (newcap + 3 * 256) / 4;
    }
    size_t bytes = internal::gc_roundupsize(newcap * sizeof(T));
    newcap = sizeof(T) == 0 ? newcap : bytes / sizeof(T);
    T* a = internal::make_array<T>(newcap);
    for (size_t i = 0; i < s.len_; i++) a[i] = s.array_[i];
    s.store(a);
    s.cap_ = newcap;
  }
  T* out = s.array_ + s.len_;
  ((*out++ = T(std::forward<Vs>(vs))), ...);
  s.len_ = need;
  return s;
}

// Runs a full collection and waits for it to finish, sweep included (Go's
// runtime.GC): afterwards every object that was unreachable when it was
// called has been freed.
void gc();

// Sets GOGC to percent (negative: off) and returns the previous setting
// (Go's debug.SetGCPercent); the next goal follows from the live heap the
// last collection found.
int set_gc_percent(int percent);

}  // namespace rt

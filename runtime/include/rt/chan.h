// Channels and select with Go's semantics.
//
//   rt::Chan<int> ch = rt::make_chan<int>(0);   // unbuffered
//   rt::go([ch] { ch.send(42); });
//   int v = ch.recv();
//
//   int idx = rt::select(
//       rt::recv_case(data, [&](int v, bool ok) { ... }),
//       rt::send_case(out, item, [&] { ... }),
//       rt::default_case([&] { ... }));
//
// Chan<T> is a copyable handle; a default-constructed Chan is the nil
// channel, on which send and recv block forever. T may be any movable
// type with alignment up to 16; recv on a closed, drained channel returns
// T{} (Go's zero value), so receiving needs a default-constructible T.
// Panics (rt::Panic) where Go panics, with Go's texts: "send on closed
// channel", "close of closed channel", "close of nil channel".
//
// A channel is a GC object (Go's hchan) and Chan<T> a reference to it: one
// pointer, trivially destructible, stored through the write barrier as
// rt::Ref is. The channel is freed by the collector once no reference
// reaches it, under rt/gc.h's rules: a Chan kept only in malloc memory, a
// std container or a thread_local is invisible; hold it in an
// rt::Root<Chan<T>>, a GC object or an rt::Slice. A goroutine blocked
// forever on a channel nothing else refers to stays blocked, as in Go (its
// stack refers to the channel).
// Values still buffered in a channel that became unreachable are destroyed
// (~T) by the background sweeper goroutine after the cycle that found the
// channel unreachable, and the channel's memory is freed one cycle later;
// what those values refer to stays alive until then (Go's finalizer rule,
// so a destructor may use it). Their destructors must not block. A
// channel whose buffer refers back to the channel itself (directly or
// through other objects) is never freed, as a Go object with a finalizer
// in a cycle is not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "rt/gc.h"

namespace rt {

namespace internal {
struct HChan;
struct ElemType {
  size_t size;
  size_t align;
  void (*move_construct)(void* dst, void* src);
  void (*destroy)(void* p);
  void (*zero_construct)(void* p);
  bool trivially_destructible;  // no ~T to run for values left in a dead channel
};
struct SelectCase {
  HChan* c;
  void* elem;
};
HChan* makechan(const ElemType* type, int64_t size);
bool chansend(HChan* c, void* ep, bool block);
bool chanrecv(HChan* c, void* ep, bool block, bool* received);
void closechan(HChan* c);
int64_t chanlen(HChan* c);
int64_t chancap(HChan* c);
int selectgo(SelectCase* cases, int nsends, int nrecvs, bool block, bool* recv_ok);

template <class T>
inline constexpr ElemType elem_type_of{
    sizeof(T), alignof(T), [](void* dst, void* src) { new (dst) T(std::move(*static_cast<T*>(src))); },
    [](void* p) { static_cast<T*>(p)->~T(); },
    [](void* p) {
      if constexpr (std::is_default_constructible_v<T>) {
        new (p) T{};
      }
    },
    std::is_trivially_destructible_v<T>};

// Uninitialised storage for one received value.
template <class T>
struct RecvSlot {
  alignas(T) unsigned char bytes[sizeof(T)];
  T* get() { return std::launder(reinterpret_cast<T*>(bytes)); }
  T take() {
    T v(std::move(*get()));
    get()->~T();
    return v;
  }
};
}  // namespace internal

template <class T>
class Chan {
  static_assert(alignof(T) <= 16, "rt::Chan element alignment above 16 bytes");
  static_assert(std::is_move_constructible_v<T>, "rt::Chan element must be movable");

 public:
  Chan() noexcept = default;
  Chan(const Chan& o) noexcept { store(o.c_); }
  Chan& operator=(const Chan& o) noexcept {
    store(o.c_);
    return *this;
  }
  ~Chan() = default;

  // Blocks until the value is delivered (or buffered).
  void send(T v) const { internal::chansend(c_, &v, true); }
  // Blocks until a value arrives; T{} if the channel is closed and drained.
  T recv() const { return recv2().first; }
  // Go's `v, ok := <-ch`: ok is false for the zero value of a closed channel.
  std::pair<T, bool> recv2() const {
    static_assert(std::is_default_constructible_v<T>, "receiving needs a zero value T{}");
    internal::RecvSlot<T> slot;
    bool received;
    internal::chanrecv(c_, slot.bytes, true, &received);
    return {slot.take(), received};
  }
  // Non-blocking send: false if it would block.
  bool try_send(T v) const { return internal::chansend(c_, &v, false); }
  // Non-blocking receive: false if it would block; otherwise sets *out and
  // *ok (ok false for the zero value of a closed channel).
  bool try_recv(T* out, bool* ok = nullptr) const {
    static_assert(std::is_default_constructible_v<T>, "receiving needs a zero value T{}");
    internal::RecvSlot<T> slot;
    bool received;
    if (!internal::chanrecv(c_, slot.bytes, false, &received)) return false;
    *out = slot.take();
    if (ok != nullptr) *ok = received;
    return true;
  }
  void close() const { internal::closechan(c_); }
  int64_t len() const { return internal::chanlen(c_); }
  int64_t cap() const { return internal::chancap(c_); }
  bool is_nil() const { return c_ == nullptr; }
  bool operator==(const Chan& o) const { return c_ == o.c_; }

  internal::HChan* raw() const { return c_; }
  // Where the reference is kept, for roots (rt::Root<Chan<T>>, timers).
  internal::HChan* const* slot() const noexcept { return &c_; }

 private:
  template <class U>
  friend Chan<U> make_chan(int64_t cap);
  explicit Chan(internal::HChan* c) noexcept { store(c); }
  void store(internal::HChan* c) noexcept { internal::ref_store(reinterpret_cast<void**>(&c_), c); }
  internal::HChan* c_ = nullptr;
};

// A channel reference kept where the collector does not look (malloc
// memory, std containers, thread_locals): the channel stays alive while the
// Root exists (rt::Root for channels).
template <class T>
class Root<Chan<T>> : public internal::RootOf<Chan<T>> {
  using Base = internal::RootOf<Chan<T>>;

 public:
  using Base::Base;
  Root& operator=(const Chan<T>& c) {
    this->r_ = c;
    return *this;
  }

  const Chan<T>& chan() const noexcept { return this->r_; }
  const Chan<T>* operator->() const noexcept { return &this->r_; }
  const Chan<T>& operator*() const noexcept { return this->r_; }
};

template <class T>
Chan<T> make_chan(int64_t cap = 0) {
  return Chan<T>(internal::makechan(&internal::elem_type_of<T>, cap));
}

static_assert(std::is_trivially_destructible_v<Chan<int>>, "rt::Chan is a GC reference: no destructor");
static_assert(sizeof(Chan<int>) == sizeof(void*), "rt::Chan is one pointer");

// ---- select ------------------------------------------------------------------

template <class T, class F>
struct RecvCase {
  static_assert(std::is_default_constructible_v<T>, "receiving needs a zero value T{}");
  static constexpr int kind = 1;
  const Chan<T>& ch;
  F fn;
  internal::RecvSlot<T> slot;
  void* elem() { return slot.bytes; }
  void fire(bool ok) {
    T v = slot.take();
    if constexpr (std::is_invocable_v<F&, T&&, bool>) {
      fn(std::move(v), ok);
    } else if constexpr (std::is_invocable_v<F&, T&&>) {
      fn(std::move(v));
    } else {
      fn();
    }
  }
};

template <class T, class F>
struct SendCase {
  static constexpr int kind = 0;
  const Chan<T>& ch;
  T value;
  F fn;
  void* elem() { return &value; }
  void fire(bool) { fn(); }
};

template <class F>
struct DefaultCase {
  static constexpr int kind = 2;
  F fn;
  void fire(bool) { fn(); }
};

// Receives from ch; fn takes (T, bool ok), (T) or nothing.
template <class T, class F>
RecvCase<T, F> recv_case(const Chan<T>& ch, F fn) {
  return RecvCase<T, F>{ch, std::move(fn), {}};
}
template <class T>
auto recv_case(const Chan<T>& ch) {
  return recv_case(ch, [] {});
}

// Sends v on ch, then runs fn.
template <class T, class F>
SendCase<T, F> send_case(const Chan<T>& ch, T v, F fn) {
  return SendCase<T, F>{ch, std::move(v), std::move(fn)};
}
template <class T>
auto send_case(const Chan<T>& ch, T v) {
  return send_case(ch, std::move(v), [] {});
}

template <class F>
DefaultCase<F> default_case(F fn) {
  return DefaultCase<F>{std::move(fn)};
}
inline auto default_case() {
  return default_case([] {});
}

// Waits until one case can proceed, performs it, runs its callback, and
// returns its index (in argument order). With a default case, returns at
// once if no other case is ready. A ready case is chosen uniformly at
// random; with no cases, blocks forever.
template <class... Cases>
int select(Cases&&... cases) {
  constexpr int n = sizeof...(Cases);
  constexpr int ndefault = ((std::decay_t<Cases>::kind == 2 ? 1 : 0) + ... + 0);
  static_assert(ndefault <= 1, "select: at most one default case");
  constexpr int nchan = n - ndefault;
  internal::SelectCase scases[nchan > 0 ? nchan : 1] = {};
  int to_arg[nchan > 0 ? nchan : 1] = {};
  int nsends = 0, nrecvs = 0;
  int default_index = -1;
  int arg = 0;
  // Sends first, then receives, as selectgo expects.
  [[maybe_unused]] auto place_send = [&](auto& c) {
    if constexpr (std::decay_t<decltype(c)>::kind == 0) {
      scases[nsends] = {c.ch.raw(), c.elem()};
      to_arg[nsends++] = arg;
    } else if constexpr (std::decay_t<decltype(c)>::kind == 2) {
      default_index = arg;
    }
    arg++;
  };
  (place_send(cases), ...);
  arg = 0;
  [[maybe_unused]] auto place_recv = [&](auto& c) {
    if constexpr (std::decay_t<decltype(c)>::kind == 1) {
      scases[nsends + nrecvs] = {c.ch.raw(), c.elem()};
      to_arg[nsends + nrecvs++] = arg;
    }
    arg++;
  };
  (place_recv(cases), ...);
  bool recv_ok = false;
  int chosen = internal::selectgo(scases, nsends, nrecvs, default_index < 0, &recv_ok);
  int chosen_arg = chosen < 0 ? default_index : to_arg[chosen];
  arg = 0;
  [[maybe_unused]] auto fire = [&](auto& c) {
    if (arg++ == chosen_arg) c.fire(recv_ok);
  };
  (fire(cases), ...);
  return chosen_arg;
}

}  // namespace rt

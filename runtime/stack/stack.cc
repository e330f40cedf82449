// Goroutine stack pool (Go's stack.go, adapted to fixed-size stacks; see
// stack.h for the design).
//
// Stacks live in manual spans of the heap (mheap_alloc with kManual), as
// in Go: each order's pool is a list of spans that have free stacks, and
// each span keeps its free stacks on its manualFreeList and counts the ones
// handed out in allocCount. A span whose stacks are all free again goes
// back to the heap, after the guard pages of its stacks are made
// accessible again (the heap may hand the pages out as objects). Stacks
// above the largest order get a manual span each.
//
// Free stacks are linked through a word stored just below their top: the
// top page of a stack that has run is committed anyway, and a fresh stack
// is linked the same way, which commits only that one page. The canary of
// every stack but the first of its span sits in the canary slot at the top
// of the region below (stack.h), a page the link commits anyway, so a
// parked goroutine costs one committed page of stack, not two.
// Invariants: every stack on a free list or in a cache has an intact canary
// (or a guard page) and belongs to exactly one list; a span is on its
// pool's list iff its manualFreeList is not empty.
#include "runtime/stack/stack.h"

#include <sys/mman.h>

#include <cstdio>

#include "runtime/mem/malloc.h"
#include "runtime/mem/mheap.h"
#include "runtime/sched/runtime2.h"

namespace rt::internal {
namespace {

struct FreeStack {
  uintptr_t next_encoded;  // base | guarded of the next free stack
};

struct Pool {
  Lock lock{LockRank::kStackpool};
  SpanList spans;  // spans of this order with at least one free stack
};

size_t default_size = 64 << 10;
int guard_budget = 16384;
std::atomic<int> guarded_count{0};
Pool pools[kStackOrders];

int order_of(size_t size) {
  int order = 0;
  for (size_t s = kStackMinSize; s < size; s <<= 1) order++;
  return order;
}

size_t order_size(int order) { return kStackMinSize << order; }

// A stack region is recorded by its base address with two flag bits (the
// base is page-aligned): guarded (guard page at the base) and canary below
// (its canary is in the slot at the top of the region below).
constexpr uintptr_t kGuardedBit = 1;
constexpr uintptr_t kCanaryBelowBit = 2;

uintptr_t region_base(uintptr_t encoded) { return encoded & ~(kGuardedBit | kCanaryBelowBit); }

Stack make_stack(uintptr_t encoded, size_t size) {
  Stack s;
  s.base = region_base(encoded);
  s.guarded = (encoded & kGuardedBit) != 0;
  s.hi = s.base + size - kStackCanaryArea;
  if (s.guarded) {
    s.lo = s.base + kStackGuardSize;
  } else {
    s.lo = (encoded & kCanaryBelowBit) != 0 ? s.base : s.base + kStackCanaryArea;
  }
  return s;
}

uintptr_t encode(const Stack& s) {
  return s.base | (s.guarded ? kGuardedBit : 0) | (!s.guarded && s.lo == s.base ? kCanaryBelowBit : 0);
}

FreeStack* free_node(uintptr_t encoded, size_t size) {
  return reinterpret_cast<FreeStack*>(region_base(encoded) + size - kStackCanaryArea - sizeof(FreeStack) - 8);
}

[[noreturn]] void stack_oom(size_t size) {
  char buf[96];
  snprintf(buf, sizeof buf, "out of memory: cannot allocate %zu-byte goroutine stack", size);
  throw_fatal(buf);
}

// Prepares the low end of a stack fresh from the OS: a guard page while the
// budget lasts, a canary otherwise: in the canary slot of the region below
// when there is one in the same span (first_in_span false), else at the
// base of its own region.
uintptr_t init_stack_region(uintptr_t base, bool first_in_span) {
  if (guarded_count.fetch_add(1, std::memory_order_relaxed) < guard_budget) {
    if (mprotect(reinterpret_cast<void*>(base), kStackGuardSize, PROT_NONE) == 0) return base | kGuardedBit;
  }
  guarded_count.fetch_sub(1, std::memory_order_relaxed);
  uintptr_t canary = first_in_span ? base : base - kStackCanaryArea;
  *reinterpret_cast<uint64_t*>(canary) = kStackCanary;
  return first_in_span ? base : base | kCanaryBelowBit;
}

// Stacks per pool span: 1 MiB worth, at least 4.
size_t stacks_per_span(size_t size) { return size >= (256 << 10) ? 4 : (1 << 20) / size; }

MSpan* stack_span(uintptr_t base) {
  MSpan* s = span_of(base);
  if (s == nullptr || s->state.load(std::memory_order_relaxed) != SpanState::kManual) {
    throw_fatal("stackfree: stack is not in a manual span");
  }
  return s;
}

// Makes a guarded stack's guard page ordinary memory again before its
// pages go back to the heap.
void unguard(uintptr_t encoded) {
  if ((encoded & kGuardedBit) == 0) return;
  if (mprotect(reinterpret_cast<void*>(region_base(encoded)), kStackGuardSize, PROT_READ | PROT_WRITE) != 0) {
    throw_fatal("stackfree: cannot unprotect a guard page");
  }
  guarded_count.fetch_sub(1, std::memory_order_relaxed);
}

// Takes a stack from an order's pool (pool lock held), carving a new span
// from the heap when no span has a free stack.
uintptr_t pool_pop(int order) {
  Pool& pool = pools[order];
  size_t size = order_size(order);
  MSpan* s = pool.spans.first;
  if (s == nullptr) {
    size_t n = stacks_per_span(size);
    s = mheap_alloc(n * size / kPageSize, SpanState::kManual, 0);
    if (s == nullptr) stack_oom(size);
    for (size_t i = n; i-- > 0;) {
      uintptr_t enc = init_stack_region(s->startAddr + i * size, i == 0);
      free_node(enc, size)->next_encoded = s->manualFreeList;
      s->manualFreeList = enc;
    }
    s->allocCount = 0;
    pool.spans.push(s);
  }
  uintptr_t enc = s->manualFreeList;
  s->manualFreeList = free_node(enc, size)->next_encoded;
  s->allocCount++;
  if (s->manualFreeList == 0) pool.spans.remove(s);
  return enc;
}

// Returns a stack to its span (pool lock held); frees the span when it
// holds no stack in use.
void pool_push(int order, uintptr_t enc) {
  Pool& pool = pools[order];
  size_t size = order_size(order);
  MSpan* s = stack_span(enc & ~uintptr_t(1));
  if (s->manualFreeList == 0) pool.spans.push(s);
  free_node(enc, size)->next_encoded = s->manualFreeList;
  s->manualFreeList = enc;
  if (s->allocCount == 0) throw_fatal("stackfree: span has no stack in use");
  s->allocCount--;
  if (s->allocCount == 0) {
    pool.spans.remove(s);
    for (uintptr_t e = s->manualFreeList; e != 0; e = free_node(e, size)->next_encoded) unguard(e);
    s->manualFreeList = 0;
    mheap_free(s);
  }
}

// Stacks above the largest order (GODEBUG stacksize over 1 MiB) are rare:
// each gets its own manual span.
Stack large_alloc(size_t size) {
  size = (size + kPageSize - 1) & ~(kPageSize - 1);
  MSpan* s = mheap_alloc(size / kPageSize, SpanState::kManual, 0);
  if (s == nullptr) stack_oom(size);
  return make_stack(init_stack_region(s->startAddr, true), size);
}

}  // namespace

void stack_init(size_t size, int budget) {
  if (size < kStackMinSize) size = kStackMinSize;
  size_t rounded = kStackMinSize;
  while (rounded < size) rounded <<= 1;
  default_size = rounded;
  guard_budget = budget;
}

size_t stack_default_size() { return default_size; }

Stack stackalloc(P* p, size_t size) {
  if (size > kStackMaxPooled) return large_alloc(size);
  int order = order_of(size);
  size_t osize = order_size(order);
  if (p == nullptr) {
    LockGuard g(pools[order].lock);
    return make_stack(pool_pop(order), osize);
  }
  StackCache& c = p->stackcache;
  if (c.count[order] == 0) {
    LockGuard g(pools[order].lock);
    while (c.count[order] < kStackCacheMax / 2) c.list[order][c.count[order]++] = pool_pop(order);
  }
  return make_stack(c.list[order][--c.count[order]], osize);
}

void stackfree(P* p, const Stack& s) {
  if (s.lo == 0) return;
  size_t size = s.size();
  if (size > kStackMaxPooled) {
    MSpan* span = stack_span(s.base);
    unguard(encode(s));
    mheap_free(span);
    return;
  }
  int order = order_of(size);
  if (p == nullptr) {
    LockGuard g(pools[order].lock);
    pool_push(order, encode(s));
    return;
  }
  StackCache& c = p->stackcache;
  if (c.count[order] == kStackCacheMax) {
    LockGuard g(pools[order].lock);
    while (c.count[order] > kStackCacheMax / 2) pool_push(order, c.list[order][--c.count[order]]);
  }
  c.list[order][c.count[order]++] = encode(s);
}

void stackcache_clear(P* p) {
  StackCache& c = p->stackcache;
  for (int order = 0; order < kStackOrders; order++) {
    LockGuard g(pools[order].lock);
    while (c.count[order] > 0) pool_push(order, c.list[order][--c.count[order]]);
  }
}

}  // namespace rt::internal

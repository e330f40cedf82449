// Goroutine stack pool (Go's stack.go, adapted to fixed-size stacks; see
// stack.h for the design).
//
// Free stacks are linked through a word stored just below their top: the
// top page of a stack that has run is committed anyway, and a fresh stack
// from a slab is linked the same way, which commits only that one page.
// Invariant: every stack on a free list or in a cache has an intact canary
// (or a guard page) and belongs to exactly one list.
#include "runtime/stack/stack.h"

#include <sys/mman.h>

#include <cstdio>

#include "runtime/sched/runtime2.h"

namespace rt::internal {
namespace {

struct FreeStack {
  uintptr_t next_encoded;  // base | guarded of the next free stack
};

struct Pool {
  Lock lock;
  uintptr_t head = 0;  // encoded
  int64_t count = 0;
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

Stack make_stack(uintptr_t encoded, size_t size) {
  Stack s;
  s.base = encoded & ~uintptr_t(1);
  s.guarded = (encoded & 1) != 0;
  s.hi = s.base + size;
  s.lo = s.base + (s.guarded ? kStackGuardSize : kStackCanaryArea);
  return s;
}

uintptr_t encode(const Stack& s) { return s.base | (s.guarded ? 1 : 0); }

FreeStack* free_node(uintptr_t encoded, size_t size) {
  return reinterpret_cast<FreeStack*>((encoded & ~uintptr_t(1)) + size - sizeof(FreeStack) - 8);
}

[[noreturn]] void stack_oom(size_t size) {
  char buf[96];
  snprintf(buf, sizeof buf, "out of memory: cannot allocate %zu-byte goroutine stack", size);
  throw_fatal(buf);
}

// Prepares the low end of a stack fresh from the OS: a guard page while the
// budget lasts, a canary otherwise.
uintptr_t init_stack_region(uintptr_t base) {
  if (guarded_count.fetch_add(1, std::memory_order_relaxed) < guard_budget) {
    if (mprotect(reinterpret_cast<void*>(base), kStackGuardSize, PROT_NONE) == 0) return base | 1;
  }
  guarded_count.fetch_sub(1, std::memory_order_relaxed);
  *reinterpret_cast<uint64_t*>(base) = kStackCanary;
  return base;
}

void* map_region(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  return p;
}

// Refills an order's pool with a slab of stacks (pool lock held).
void pool_grow(int order) {
  size_t size = order_size(order);
  size_t n = size >= (512 << 10) ? 4 : (1 << 20) / size;
  if (n < 4) n = 4;
  char* slab = static_cast<char*>(map_region(n * size));
  if (slab == nullptr) stack_oom(size);
  for (size_t i = n; i-- > 0;) {
    uintptr_t enc = init_stack_region(reinterpret_cast<uintptr_t>(slab + i * size));
    free_node(enc, size)->next_encoded = pools[order].head;
    pools[order].head = enc;
    pools[order].count++;
  }
}

uintptr_t pool_pop(int order) {
  Pool& pool = pools[order];
  if (pool.head == 0) pool_grow(order);
  uintptr_t enc = pool.head;
  pool.head = free_node(enc, order_size(order))->next_encoded;
  pool.count--;
  return enc;
}

void pool_push(int order, uintptr_t enc) {
  Pool& pool = pools[order];
  free_node(enc, order_size(order))->next_encoded = pool.head;
  pool.head = enc;
  pool.count++;
}

// Stacks above the largest order (GODEBUG stacksize over 1 MiB) are rare:
// each is mapped when needed and unmapped when freed.
Stack large_alloc(size_t size) {
  void* p = map_region(size);
  if (p == nullptr) stack_oom(size);
  return make_stack(init_stack_region(reinterpret_cast<uintptr_t>(p)), size);
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
    if (s.guarded) guarded_count.fetch_sub(1, std::memory_order_relaxed);
    munmap(reinterpret_cast<void*>(s.base), size);
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

// Goroutine stacks.
//
// C++ frames hold interior pointers, so a goroutine stack can never move or
// grow: every stack has a fixed size (64 KiB by default, GODEBUG
// stacksize=N). Stacks come in power-of-two orders from 16 KiB to 1 MiB.
// Each order has a global pool (under a lock) and a small per-P cache that
// takes no lock, refilled and drained in half-batches (Go's stackcache).
// Larger stacks get a manual span each.
//
// All stack memory is manual spans of the heap (runtime/mem/mheap.h); the
// allocator writes only a canary at the low end and a free-list word near
// the top of a free stack, so the other pages of a stack are committed
// only when the goroutine's frames reach them.
//
// Overflow never corrupts silently. Every stack carries a canary word just
// below its lowest usable address, checked whenever its goroutine is
// switched out; and
// the first `stackguard` stacks (GODEBUG stackguard=N, default 16384) also
// get a PROT_NONE guard page below the canary, which the SIGSEGV handler
// recognises. The guard-page count is bounded because each guard splits a
// mapping and Linux caps a process at vm.max_map_count (65530) mappings;
// stacks beyond the budget rely on the canary alone.
//
// Layout of a stack region [base, base + size): the guard page or canary
// at the bottom, the usable stack [lo, hi), and a canary slot of
// kStackCanaryArea bytes at the top that holds the canary of the region
// just above it in the same span. Only the first stack of a span keeps its
// canary at its own base. The top page of every region is committed
// anyway (the free-list link lives there; frames start there), so a parked
// goroutine whose frames fit in one page commits one page of stack rather
// than a top page and a canary page.
//
// A goroutine receives its stack when it first runs, not when it is
// created, and returns it when it exits: a million goroutines spawned
// before any of them runs hold no stack memory.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rt::internal {

struct P;

struct Stack {
  uintptr_t lo = 0;    // lowest usable address (above guard page or canary)
  uintptr_t hi = 0;    // one past the highest usable address (the canary slot above is not ours)
  uintptr_t base = 0;  // start of the whole region including the guard page
  bool guarded = false;
  size_t size() const;  // of the whole region
};

constexpr uint64_t kStackCanary = 0x5ac0ffee5afe57acULL;
constexpr size_t kStackGuardSize = 4096;
constexpr size_t kStackCanaryArea = 16;
constexpr size_t kStackMinSize = 16 << 10;
constexpr size_t kStackMaxPooled = 1 << 20;
constexpr int kStackOrders = 7;  // 16K .. 1M
constexpr int kStackCacheMax = 16;  // stacks per order per P

// Cached stacks are recorded by base address; bit 0 set means guarded.
struct StackCache {
  uintptr_t list[kStackOrders][kStackCacheMax];
  int count[kStackOrders] = {};
};

void stack_init(size_t default_size, int guard_budget);
size_t stack_default_size();

// Allocates a stack of `size` bytes (rounded up to an order). p may be
// nullptr (no P held): the global pool is used.
Stack stackalloc(P* p, size_t size);
void stackfree(P* p, const Stack& s);
// Returns all of p's cached stacks to the global pool (P destroyed).
void stackcache_clear(P* p);

inline size_t Stack::size() const { return hi + kStackCanaryArea - base; }

// Where an unguarded stack's canary lives: just below lo, in its own
// region's base or in the canary slot of the region below.
inline uintptr_t stack_canary_addr(const Stack& s) { return s.lo - kStackCanaryArea; }

// Guarded stacks need no canary: the guard page catches the overflow.
inline bool stack_canary_ok(const Stack& s) {
  return s.guarded || *reinterpret_cast<const uint64_t*>(stack_canary_addr(s)) == kStackCanary;
}

}  // namespace rt::internal

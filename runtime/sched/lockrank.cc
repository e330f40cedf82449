// Lock-rank checking (see lockrank.h); debug build only.
#include "runtime/sched/lockrank.h"

#ifdef RT_DEBUG

#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "runtime/sched/runtime2.h"

namespace rt::internal {

namespace {

constexpr const char* kRankNames[] = {
    "chanTimer", "semaRoot", "gcWaiters", "gcAssists", "pollDesc", "sched", "allg", "timers", "hchan", "sudog",
    "gFree", "stackpool", "nopMcache", "finChans", "gcRoots", "gcStats", "mcentral", "mheap", "pollCache", "nopGcWork", "gcWork",
    "fixalloc",
};
static_assert(sizeof kRankNames / sizeof kRankNames[0] == size_t(LockRank::kCount), "a name for every rank");

}  // namespace

const char* lock_rank_name(LockRank r) { return r < LockRank::kCount ? kRankNames[size_t(r)] : "?"; }

namespace {

// How locks of one rank may be held together.
enum class SameRank { kNever, kAddressOrder, kAnyOrder };

SameRank same_rank_rule(LockRank r) {
  switch (r) {
    case LockRank::kHchan: return SameRank::kAddressOrder;  // select locks channels sorted by address
    case LockRank::kTimers: return SameRank::kAnyOrder;     // procresize, under stop-the-world
    default: return SameRank::kNever;
  }
}

void print_raw(const char* s) {
  ssize_t ignored = ::write(2, s, strlen(s));
  (void)ignored;
}

// Go's printHeldLocks: "index : rank-name rank address", one per line.
void print_held_locks(M* mp) {
  char buf[160];
  snprintf(buf, sizeof buf, "%d  ======\n", int(mp->procid));
  print_raw(buf);
  for (int i = 0; i < mp->nlocks_held; i++) {
    const HeldLock& h = mp->locks_held[i];
    snprintf(buf, sizeof buf, "%d : %s %d %p\n", i, lock_rank_name(h.rank), int(h.rank), h.lock);
    print_raw(buf);
  }
}

bool rank_ok(const HeldLock& held, const void* l, LockRank rank) {
  if (rank > held.rank) return true;
  if (rank < held.rank) return false;
  switch (same_rank_rule(rank)) {
    case SameRank::kNever: return false;
    case SameRank::kAddressOrder: return reinterpret_cast<uintptr_t>(l) > reinterpret_cast<uintptr_t>(held.lock);
    case SameRank::kAnyOrder: return true;
  }
  return false;
}

}  // namespace

void lock_rank_acquire(const void* l, LockRank rank) {
  M* mp = getm();
  if (mp == nullptr) return;  // a thread the runtime does not run (yet)
  if (mp->nlocks_held == kMaxLocksHeld) throw_fatal("lock rank: too many locks held");
  mp->locks_held[mp->nlocks_held++] = HeldLock{l, rank};
  // Every held lock must be below the new one (not only the last: a lock
  // may be released out of order).
  for (int i = 0; i + 1 < mp->nlocks_held; i++) {
    const HeldLock& held = mp->locks_held[i];
    if (rank_ok(held, l, rank)) continue;
    char buf[256];
    snprintf(buf, sizeof buf, "runtime: lock ordering problem: acquiring %s (rank %d) %p while holding %s (rank %d) %p\n",
             lock_rank_name(rank), int(rank), l, lock_rank_name(held.rank), int(held.rank), held.lock);
    print_raw(buf);
    print_held_locks(mp);
    throw_fatal("lock ordering problem");
  }
}

void lock_rank_release(const void* l) {
  M* mp = getm();
  if (mp == nullptr) return;
  for (int i = mp->nlocks_held - 1; i >= 0; i--) {
    if (mp->locks_held[i].lock != l) continue;
    for (int j = i + 1; j < mp->nlocks_held; j++) mp->locks_held[j - 1] = mp->locks_held[j];
    mp->nlocks_held--;
    return;
  }
  throw_fatal("unlock of a lock this M does not hold");
}

void lock_rank_assert_held(const void* l, LockRank rank) {
  M* mp = getm();
  if (mp == nullptr) return;
  for (int i = 0; i < mp->nlocks_held; i++) {
    if (mp->locks_held[i].lock == l) return;
  }
  char buf[160];
  snprintf(buf, sizeof buf, "caller requires lock %p (rank %s), holding:\n", l, lock_rank_name(rank));
  print_raw(buf);
  print_held_locks(mp);
  throw_fatal("not holding required lock!");
}

}  // namespace rt::internal

#endif  // RT_DEBUG

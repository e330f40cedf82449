// Run-queue variant "perp": Go 1.1+ per-P queues (Vyukov's scalable
// scheduler).
//
// Each P owns a ring of 256 goroutines plus a runnext slot. Only the owner
// appends (at tail); the owner and thieves consume at head with a CAS, so
// the ring is single-producer multi-consumer and lock-free. A full ring
// moves half of itself plus the new goroutine to the global queue in one
// locked batch. An idle M steals half of a random victim's ring; runnext is
// stolen only in the last round, since the victim is about to run it.
#include <unistd.h>

#include "runtime/policy/runq.h"
#include "runtime/sched/runtime2.h"

namespace rt::policy::runq {

using internal::G;
using internal::P;

namespace {

constexpr uint32_t kSize = LocalRunq::kSize;

// Moves half of the full ring plus gp to the global queue. Returns false if
// a thief raced us for the head (the caller retries the fast path).
bool put_slow(P* p, G* gp, uint32_t head, uint32_t tail) {
  LocalRunq& q = p->runq;
  uint32_t n = (tail - head) / 2;
  if (n != kSize / 2) internal::throw_fatal("runqputslow: queue is not full");
  G* batch[kSize / 2 + 1];
  for (uint32_t i = 0; i < n; i++) batch[i] = q.ring[(head + i) % kSize].load(std::memory_order_relaxed);
  if (!q.head.compare_exchange_strong(head, head + n, std::memory_order_acq_rel)) return false;
  batch[n] = gp;
  internal::GQueue moved;
  for (uint32_t i = 0; i <= n; i++) moved.push_back(batch[i]);
  internal::LockGuard g(internal::sched.lock);
  internal::globrunqputbatch(&moved, int32_t(n + 1));
  return true;
}

// Copies half of victim's ring into ring slots [batch_head, ...) of p.
// Returns the number of goroutines taken.
uint32_t grab(P* victim, LocalRunq& dst, uint32_t batch_head, bool steal_runnext) {
  LocalRunq& q = victim->runq;
  for (;;) {
    uint32_t h = q.head.load(std::memory_order_acquire);
    uint32_t t = q.tail.load(std::memory_order_acquire);
    uint32_t n = t - h;
    n = n - n / 2;
    if (n == 0) {
      if (!steal_runnext) return 0;
      G* next = q.runnext.load(std::memory_order_acquire);
      if (next == nullptr) return 0;
      // The victim is likely about to schedule its runnext; stealing it
      // now would only move a hot goroutine between CPUs. Give it a moment.
      if (victim->status.load(std::memory_order_relaxed) == internal::kPrunning) usleep(3);
      if (!q.runnext.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel)) continue;
      dst.ring[batch_head % kSize].store(next, std::memory_order_relaxed);
      return 1;
    }
    if (n > kSize / 2) continue;  // read an inconsistent head/tail pair
    for (uint32_t i = 0; i < n; i++) {
      G* gp = q.ring[(h + i) % kSize].load(std::memory_order_relaxed);
      dst.ring[(batch_head + i) % kSize].store(gp, std::memory_order_relaxed);
    }
    if (q.head.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return n;
  }
}

}  // namespace

const char* name() { return "perp"; }

bool has_local_queues() { return true; }

void put(P* p, G* gp, bool next) {
  RT_DEBUG_ASSERT(internal::readgstatus(gp) == internal::kGrunnable || internal::readgstatus(gp) == internal::kGidle,
                  "runqput: goroutine is not runnable");
  LocalRunq& q = p->runq;
  if (next) {
    G* old = q.runnext.load(std::memory_order_relaxed);
    if (old == nullptr) {
      // Only the owner makes runnext non-null, and thieves only take a
      // non-null one: an empty slot stays empty until this store.
      q.runnext.store(gp, std::memory_order_release);
      return;
    }
    while (!q.runnext.compare_exchange_weak(old, gp, std::memory_order_acq_rel)) {
    }
    if (old == nullptr) return;
    gp = old;  // the old runnext goes to the tail
  }
  for (;;) {
    uint32_t h = q.head.load(std::memory_order_acquire);
    uint32_t t = q.tail.load(std::memory_order_relaxed);
    if (t - h < kSize) {
      q.ring[t % kSize].store(gp, std::memory_order_relaxed);
      q.tail.store(t + 1, std::memory_order_release);
      return;
    }
    if (put_slow(p, gp, h, t)) return;
  }
}

G* get(P* p, bool* inherit_time) {
  LocalRunq& q = p->runq;
  G* next = q.runnext.load(std::memory_order_relaxed);
  if (next != nullptr && q.runnext.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel)) {
    *inherit_time = true;
    return next;
  }
  for (;;) {
    uint32_t h = q.head.load(std::memory_order_acquire);
    uint32_t t = q.tail.load(std::memory_order_relaxed);
    if (t == h) return nullptr;
    G* gp = q.ring[h % kSize].load(std::memory_order_relaxed);
    if (q.head.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel)) {
      *inherit_time = false;
      return gp;
    }
  }
}

bool empty(P* p) {
  LocalRunq& q = p->runq;
  // Read head, tail, runnext, then tail again so that a goroutine moving
  // from runnext to the ring between the reads is not missed.
  for (;;) {
    uint32_t h = q.head.load(std::memory_order_acquire);
    uint32_t t = q.tail.load(std::memory_order_acquire);
    G* next = q.runnext.load(std::memory_order_acquire);
    if (t == q.tail.load(std::memory_order_acquire)) return h == t && next == nullptr;
  }
}

uint32_t size(P* p) {
  LocalRunq& q = p->runq;
  uint32_t n = q.tail.load(std::memory_order_acquire) - q.head.load(std::memory_order_acquire);
  if (n > kSize) n = 0;
  return n + (q.runnext.load(std::memory_order_relaxed) != nullptr ? 1 : 0);
}

G* steal(P* p, P* victim, bool steal_runnext) {
  LocalRunq& q = p->runq;
  uint32_t t = q.tail.load(std::memory_order_relaxed);
  uint32_t n = grab(victim, q, t, steal_runnext);
  if (n == 0) return nullptr;
  p->stats.stolen += n;
  n--;
  G* gp = q.ring[(t + n) % kSize].load(std::memory_order_relaxed);
  if (n == 0) return gp;
  uint32_t h = q.head.load(std::memory_order_acquire);
  if (t - h + n >= kSize) internal::throw_fatal("runqsteal: runq overflow");
  q.tail.store(t + n, std::memory_order_release);
  return gp;
}

}  // namespace rt::policy::runq

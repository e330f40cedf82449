// Runtime semaphores (Go's runtime/sema.go).
//
// Not a counting semaphore for users: a sleep/wakeup primitive in which
// every sleep is paired with exactly one wakeup, even when, through races,
// the wakeup comes before the sleep (Mullender and Cox, "Semaphores in
// Plan 9"). The slow paths of Mutex, RWMutex and WaitGroup are built on it.
//
// Layout. An address hashes ((addr >> 3) mod 251) to one of 251 SemaRoot
// buckets, each on a cache line of its own. A bucket holds a runtime Lock;
// nwait, the number of goroutines inside semacquire's slow path for any
// address of the bucket, readable without the lock; and a treap of waiters
// with distinct addresses: a binary search tree ordered by address that is
// also a min-heap on random priorities, which keeps it balanced on average.
// Each tree node is the head of the FIFO queue of the goroutines waiting on
// its address; the others hang off it through `next`. Finding an address's
// queue costs O(log n) in the number of distinct colliding addresses that
// have waiters; adding to and taking from a queue cost O(1).
//
// Waiter records (SemaWaiter) live in semacquire's frame on the waiting
// goroutine's stack: the goroutine stays parked for as long as its record
// is queued, and goroutine stacks never move, so nothing is allocated.
//
// Protocol (no lost wakeup):
//   semacquire: the fast path CAS-decrements *addr when it is > 0.
//     Otherwise, under the bucket lock: nwait++, try the CAS once more (a
//     release may have come in between), and if that fails too, enqueue and
//     gopark. gopark's unlock function drops the bucket lock only once the
//     goroutine is marked waiting, so a releaser that dequeues it may
//     goready it at once.
//   semrelease: *addr++ first, then read nwait. If nwait is 0, no goroutine
//     is past its locked retry, and any later one will see the increment.
//     Otherwise, under the lock, dequeue the first waiter on addr, nwait--,
//     unlock and goready it. The woken goroutine retries the CAS and queues
//     again if another goroutine took the count first: the count is not
//     reserved for it, unless the release was a handoff.
//   handoff: the releaser takes the count itself (CAS) and marks the waiter
//     handed_off, so the waiter returns without competing for it; then the
//     releaser yields its P, and the waiter, just put in runnext, runs next
//     (Mutex starvation mode).
//   The increment of *addr and the read of nwait (release) and the
//   increment of nwait and the read of *addr (acquire) form a Dekker pair:
//   all four are sequentially consistent.
//
// Invariants (throw_fatal when broken):
//   - tree links agree: a node is its parent's left or right child (checked
//     whenever a node is rotated or cut); a node's priority is >= its
//     parent's (maintained by the rotations, not checked);
//   - only the head of an address's queue is in the tree; only the head's
//     `tail` is set, and it points to the queue's last waiter (the head
//     itself when alone);
//   - a waiter being dequeued has not been handed a count already;
//   - semacquire runs on the current goroutine's stack, never on g0.
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "rt/sync.h"
#include "runtime/sched/runtime2.h"
#include "runtime/sync/sema.h"

namespace rt::internal {
namespace {

// A goroutine waiting in semacquire (Go's sudog, as the semaphore uses it).
struct SemaWaiter {
  G* g = nullptr;
  std::atomic<uint32_t>* addr = nullptr;
  // Tree links and heap priority: meaningful only on the head of a queue.
  SemaWaiter* parent = nullptr;
  SemaWaiter* left = nullptr;   // lower addresses
  SemaWaiter* right = nullptr;  // higher addresses
  uint32_t priority = 0;
  // The queue of goroutines waiting on addr.
  SemaWaiter* next = nullptr;
  SemaWaiter* tail = nullptr;  // on the head only: the last waiter
  // Set by semrelease when it gave its count directly to this waiter.
  bool handed_off = false;
};

bool addr_less(const std::atomic<uint32_t>* a, const std::atomic<uint32_t>* b) {
  return reinterpret_cast<uintptr_t>(a) < reinterpret_cast<uintptr_t>(b);
}

constexpr size_t kCacheLine = 64;
constexpr size_t kSemTabSize = 251;  // prime: uncorrelated with address patterns

class alignas(kCacheLine) SemaRoot {
 public:
  Lock lock{LockRank::kSemaRoot};
  std::atomic<uint32_t> nwait{0};

  // Adds w, for the current goroutine, to the waiters on addr: at the tail
  // of addr's queue, or at its head with lifo. Caller holds lock.
  void queue(std::atomic<uint32_t>* addr, SemaWaiter* w, bool lifo);
  // Removes and returns the first waiter on addr, or nullptr if there is
  // none. Caller holds lock.
  SemaWaiter* dequeue(std::atomic<uint32_t>* addr);

 private:
  void rotate_left(SemaWaiter* x);
  void rotate_right(SemaWaiter* y);
  // Makes child the child of parent (or the root) in place of old.
  void replace_child(SemaWaiter* parent, SemaWaiter* old, SemaWaiter* child);

  SemaWaiter* treap_ = nullptr;
};
static_assert(sizeof(SemaRoot) == kCacheLine, "one semaphore bucket per cache line");

constinit SemaRoot semtable[kSemTabSize];

SemaRoot* root_for(const std::atomic<uint32_t>* addr) {
  return &semtable[(reinterpret_cast<uintptr_t>(addr) >> 3) % kSemTabSize];
}

void SemaRoot::queue(std::atomic<uint32_t>* addr, SemaWaiter* w, bool lifo) {
  w->g = getg();
  w->addr = addr;
  w->parent = w->left = w->right = nullptr;
  w->next = nullptr;
  w->tail = w;
  w->handed_off = false;

  SemaWaiter* last = nullptr;
  SemaWaiter** link = &treap_;
  for (SemaWaiter* t = *link; t != nullptr; t = *link) {
    if (t->addr == addr) {
      if (lifo) {
        // w takes the head's place in the tree and t queues behind it.
        *link = w;
        w->priority = t->priority;
        w->parent = t->parent;
        w->left = t->left;
        w->right = t->right;
        if (w->left != nullptr) w->left->parent = w;
        if (w->right != nullptr) w->right->parent = w;
        w->next = t;
        w->tail = t->tail;
        t->parent = t->left = t->right = nullptr;
        t->tail = nullptr;
      } else {
        t->tail->next = w;
        t->tail = w;
        w->tail = nullptr;
      }
      return;
    }
    last = t;
    link = addr_less(addr, t->addr) ? &t->left : &t->right;
  }

  // A new address: insert w as a leaf, then rotate it up until its parent's
  // priority is not above its own.
  w->priority = fastrand();
  w->parent = last;
  *link = w;
  while (w->parent != nullptr && w->parent->priority > w->priority) {
    if (w->parent->left == w) {
      rotate_right(w->parent);
    } else {
      if (w->parent->right != w) throw_fatal("semaRoot queue");
      rotate_left(w->parent);
    }
  }
}

SemaWaiter* SemaRoot::dequeue(std::atomic<uint32_t>* addr) {
  SemaWaiter** link = &treap_;
  SemaWaiter* w = *link;
  while (w != nullptr && w->addr != addr) {
    link = addr_less(addr, w->addr) ? &w->left : &w->right;
    w = *link;
  }
  if (w == nullptr) return nullptr;

  if (SemaWaiter* t = w->next) {
    // The next waiter on addr takes w's place in the tree.
    *link = t;
    t->priority = w->priority;
    t->parent = w->parent;
    t->left = w->left;
    t->right = w->right;
    if (t->left != nullptr) t->left->parent = t;
    if (t->right != nullptr) t->right->parent = t;
    t->tail = w->tail;
  } else {
    // Rotate w down to a leaf, keeping the heap order, and cut it off.
    while (w->left != nullptr || w->right != nullptr) {
      if (w->right == nullptr || (w->left != nullptr && w->left->priority < w->right->priority)) {
        rotate_right(w);
      } else {
        rotate_left(w);
      }
    }
    replace_child(w->parent, w, nullptr);
  }
  w->parent = w->left = w->right = nullptr;
  w->next = nullptr;
  w->tail = nullptr;
  return w;
}

void SemaRoot::replace_child(SemaWaiter* parent, SemaWaiter* old, SemaWaiter* child) {
  if (parent == nullptr) {
    treap_ = child;
  } else if (parent->left == old) {
    parent->left = child;
  } else if (parent->right == old) {
    parent->right = child;
  } else {
    throw_fatal("semaRoot: broken tree links");
  }
}

// Turns (x a (y b c)) into (y (x a b) c).
void SemaRoot::rotate_left(SemaWaiter* x) {
  SemaWaiter* p = x->parent;
  SemaWaiter* y = x->right;
  SemaWaiter* b = y->left;
  y->left = x;
  x->parent = y;
  x->right = b;
  if (b != nullptr) b->parent = x;
  y->parent = p;
  replace_child(p, x, y);
}

// Turns (y (x a b) c) into (x a (y b c)).
void SemaRoot::rotate_right(SemaWaiter* y) {
  SemaWaiter* p = y->parent;
  SemaWaiter* x = y->left;
  SemaWaiter* b = x->right;
  x->right = y;
  y->parent = x;
  y->left = b;
  if (b != nullptr) b->parent = y;
  x->parent = p;
  replace_child(p, y, x);
}

// Takes one count if *addr > 0.
bool cansemacquire(std::atomic<uint32_t>* addr) {
  uint32_t v = addr->load();
  while (v != 0) {
    if (addr->compare_exchange_weak(v, v - 1)) return true;
  }
  return false;
}

// gopark's unlock function: the goroutine is queued and marked waiting.
bool unlock_root(G*, void* root) {
  static_cast<SemaRoot*>(root)->lock.unlock();
  return true;
}

}  // namespace

void semacquire_reason(std::atomic<uint32_t>* addr, bool lifo, const char* reason) {
  if (getg() != getm()->curg) throw_fatal("semacquire not on the G stack");
  if (cansemacquire(addr)) return;
  preempt_check();

  SemaRoot* root = root_for(addr);
  SemaWaiter w;
  for (;;) {
    root->lock.lock();
    // Counted in nwait, this goroutine disables semrelease's easy case.
    root->nwait.fetch_add(1);
    if (cansemacquire(addr)) {
      root->nwait.fetch_sub(1);
      root->lock.unlock();
      return;
    }
    // Any semrelease from here on sees nwait > 0 and looks for a waiter.
    root->queue(addr, &w, lifo);
    gopark(unlock_root, root, reason);
    // Woken by semrelease, which dequeued w and took it out of nwait.
    if (w.handed_off || cansemacquire(addr)) return;
  }
}

}  // namespace rt::internal

namespace rt {

void semacquire(std::atomic<uint32_t>* addr) {
  internal::semacquire_reason(addr, false, internal::kWaitReasonSemacquire);
}

void semacquire_mutex(std::atomic<uint32_t>* addr, bool lifo) {
  internal::semacquire_reason(addr, lifo, internal::kWaitReasonMutexLock);
}

void semrelease(std::atomic<uint32_t>* addr, bool handoff) {
  using namespace internal;
  SemaRoot* root = root_for(addr);
  addr->fetch_add(1);
  // Easy case: nobody waits. Must be read after the increment (see the
  // retry under the lock in semacquire_reason).
  if (root->nwait.load() == 0) return;

  root->lock.lock();
  if (root->nwait.load() == 0) {
    // A waiter took the count in its locked retry: nobody to wake.
    root->lock.unlock();
    return;
  }
  SemaWaiter* w = root->dequeue(addr);
  if (w != nullptr) root->nwait.fetch_sub(1);
  root->lock.unlock();
  if (w == nullptr) {
    preempt_check();
    return;
  }

  if (w->handed_off) throw_fatal("corrupted semaphore ticket");
  if (handoff && cansemacquire(addr)) w->handed_off = true;
  // Read w before goready: once it runs, the waiter returns from
  // semacquire and its frame, which holds w, is gone.
  bool yield_to_waiter = w->handed_off && getm()->locks == 0;
  goready(w->g);
  if (yield_to_waiter) {
    // The waiter is in this P's runnext: let it run now, inheriting the
    // rest of our time slice, so a contended semaphore cannot keep the P.
    gosched_impl();
  } else {
    preempt_check();
  }
}

}  // namespace rt

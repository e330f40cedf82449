// Run-queue variant "global": Go 1.0's single run queue.
//
// Every runnable goroutine waits in the core's global queue under
// sched.lock; Ps have no queue of their own, so there is nothing to steal
// and every put and get takes the lock. This is the baseline the per-P
// design was invented to beat.
#include "runtime/policy/runq.h"
#include "runtime/sched/runtime2.h"

namespace rt::policy::runq {

using internal::G;
using internal::P;

const char* name() { return "global"; }

bool has_local_queues() { return false; }

void put(P*, G* gp, bool) {
  internal::LockGuard g(internal::sched.lock);
  internal::globrunqput(gp);
}

G* get(P* p, bool* inherit_time) {
  *inherit_time = false;
  if (internal::sched.runqsize == 0) return nullptr;
  internal::LockGuard g(internal::sched.lock);
  return internal::globrunqget(p, 1);
}

bool empty(P*) { return true; }

uint32_t size(P*) { return 0; }

G* steal(P*, P*, bool) { return nullptr; }

}  // namespace rt::policy::runq

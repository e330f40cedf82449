// Preemption variant "coop": Go before 1.14.
//
// A request only sets gp->preempt. The goroutine yields at its next safe
// point (any runtime call or rt::preempt_point()); a loop without one runs
// until it ends, delaying sysmon's time slicing and every stop-the-world.
#include "runtime/policy/preempt.h"
#include "runtime/sched/runtime2.h"

namespace rt::policy::preempt {

const char* name() { return "coop"; }

void init() {}

void init_thread(internal::M*) {}

bool request(internal::G* gp, internal::M*) {
  gp->preempt.store(true, std::memory_order_relaxed);
  return true;
}

}  // namespace rt::policy::preempt

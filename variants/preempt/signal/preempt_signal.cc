// Preemption variant "signal": Go 1.14+ (non-cooperative preemption).
//
// A request sets gp->preempt, as coop does, and also sends SIGURG to the
// M's thread: a goroutine in a loop without safe points is stopped at the
// next async-safe instruction (runtime/sched/preempt.cc has the handler,
// the safe-point rules and the trampoline). A request the handler refuses
// stays set, and sysmon or the stop-the-world loop repeats it.
// GODEBUG=asyncpreemptoff=1 makes this variant behave as coop.
#include "runtime/policy/preempt.h"
#include "runtime/sched/preempt.h"
#include "runtime/sched/runtime2.h"

namespace rt::policy::preempt {

const char* name() { return "signal"; }

void init() { internal::async_preempt_init(); }

void init_thread(internal::M*) {}

bool request(internal::G* gp, internal::M* mp) {
  gp->preempt.store(true, std::memory_order_relaxed);
  internal::preempt_m(mp);
  return true;
}

}  // namespace rt::policy::preempt

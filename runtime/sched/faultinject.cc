// Storage of the test-only fault injection points (see faultinject.h).
#include "runtime/sched/faultinject.h"

namespace rt::internal {

std::atomic<int> fault_errno[int(FaultPoint::kCount)];

}  // namespace rt::internal

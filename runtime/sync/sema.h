// Internal entry points of the runtime semaphores (sema.cc) for the sync
// types: the public rt::semacquire family fixes the wait reason, these let
// each caller name what its goroutine is waiting for, as Go's
// sync_runtime_Semacquire* variants do.
#pragma once

#include <atomic>
#include <cstdint>

namespace rt::internal {

// Wait reasons shown in goroutine dumps (Go's waitReason strings).
inline constexpr const char kWaitReasonSemacquire[] = "semacquire";
inline constexpr const char kWaitReasonMutexLock[] = "sync.Mutex.Lock";
inline constexpr const char kWaitReasonRWMutexRLock[] = "sync.RWMutex.RLock";
inline constexpr const char kWaitReasonRWMutexLock[] = "sync.RWMutex.Lock";
inline constexpr const char kWaitReasonWaitGroupWait[] = "sync.WaitGroup.Wait";

// Waits until *addr > 0, then decrements it, parking the goroutine with the
// given reason. With lifo, the goroutine queues ahead of the other waiters
// on addr. Must be called on a goroutine stack, never on g0.
void semacquire_reason(std::atomic<uint32_t>* addr, bool lifo, const char* reason);

}  // namespace rt::internal

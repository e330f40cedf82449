// sync.RWMutex (Go's sync/rwmutex.go).
//
// Writers exclude each other with the Mutex w_. reader_count_ counts the
// readers holding or waiting for the lock; a writer announces itself by
// subtracting kMaxReaders, which makes it negative, so that new readers
// see a pending writer and wait on reader_sem_. The writer then waits on
// writer_sem_ for the readers that were already in: it adds their number to
// reader_wait_, and each of them decrements reader_wait_ on runlock; the
// last one wakes the writer. Unlock adds kMaxReaders back and wakes exactly
// the readers that queued meanwhile (those that found the count negative).
// So a pending writer blocks new readers, and readers waiting when a writer
// unlocks get in before the next writer.
//
// Invariants (user errors, fatal_user like Go's sync.fatal):
//   - runlock finds a reader to remove: reader_count_ was neither 0 nor
//     -kMaxReaders ("sync: RUnlock of unlocked RWMutex");
//   - unlock finds the write lock held: reader_count_ was negative
//     ("sync: Unlock of unlocked RWMutex").
// At most kMaxReaders - 1 readers may hold the lock at once.
#include <atomic>
#include <cstdint>

#include "rt/sync.h"
#include "runtime/sched/runtime2.h"
#include "runtime/sync/sema.h"

namespace rt {

void RWMutex::rlock() {
  if (reader_count_.fetch_add(1) + 1 < 0) {
    // A writer is pending: wait for its unlock.
    internal::semacquire_reason(&reader_sem_, false, internal::kWaitReasonRWMutexRLock);
  }
}

bool RWMutex::try_rlock() {
  int32_t c = reader_count_.load();
  while (c >= 0) {
    if (reader_count_.compare_exchange_weak(c, c + 1)) return true;
  }
  return false;  // a writer holds or waits for the lock
}

void RWMutex::runlock() {
  int32_t r = reader_count_.fetch_sub(1) - 1;
  if (r >= 0) return;
  if (r + 1 == 0 || r + 1 == -kMaxReaders) internal::fatal_user("sync: RUnlock of unlocked RWMutex");
  // A writer is pending; the last reader it waits for wakes it.
  if (reader_wait_.fetch_sub(1) - 1 == 0) semrelease(&writer_sem_, false);
}

void RWMutex::lock() {
  w_.lock();
  // Announce the writer; r is the number of readers already in.
  int32_t r = reader_count_.fetch_sub(kMaxReaders);
  if (r != 0 && reader_wait_.fetch_add(r) + r != 0) {
    internal::semacquire_reason(&writer_sem_, false, internal::kWaitReasonRWMutexLock);
  }
}

bool RWMutex::try_lock() {
  if (!w_.try_lock()) return false;
  int32_t no_readers = 0;
  if (!reader_count_.compare_exchange_strong(no_readers, -kMaxReaders)) {
    w_.unlock();
    return false;
  }
  return true;
}

void RWMutex::unlock() {
  // Announce to readers that there is no writer any more.
  int32_t r = reader_count_.fetch_add(kMaxReaders) + kMaxReaders;
  if (r >= kMaxReaders) internal::fatal_user("sync: Unlock of unlocked RWMutex");
  // Wake the readers that arrived while the writer held the lock.
  for (int32_t i = 0; i < r; i++) semrelease(&reader_sem_, false);
  w_.unlock();
}

}  // namespace rt

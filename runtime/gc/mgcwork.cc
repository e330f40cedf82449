// Work buffers and the global lists (see mgcwork.h).
#include "runtime/gc/mgcwork.h"

#include "runtime/mem/fixalloc.h"
#include "runtime/sched/runtime2.h"

namespace rt::internal {

namespace {

SpinLock work_lock{LockRank::kGcWork};
Workbuf* work_full = nullptr;   // buffers with at least one grey object
Workbuf* work_empty = nullptr;  // drained buffers, for reuse
std::atomic<int64_t> nfull{0};
FixAlloc<Workbuf> workbuf_alloc;

GcWork pgcw[kMaxProcs];
Lock nop_gcw_mutex{LockRank::kNopGcWork};
GcWork nop_gcw;

Workbuf* getempty() {
  work_lock.lock();
  Workbuf* b = work_empty;
  if (b != nullptr) work_empty = b->next;
  work_lock.unlock();
  if (b == nullptr) b = workbuf_alloc.alloc();
  b->next = nullptr;
  b->nobj = 0;
  return b;
}

void putempty(Workbuf* b) {
  work_lock.lock();
  b->next = work_empty;
  work_empty = b;
  work_lock.unlock();
}

void putfull(Workbuf* b) {
  if (b->nobj == 0) throw_fatal("gc: putfull of an empty work buffer");
  work_lock.lock();
  b->next = work_full;
  work_full = b;
  nfull.fetch_add(1, std::memory_order_relaxed);
  work_lock.unlock();
}

Workbuf* trygetfull() {
  if (nfull.load(std::memory_order_relaxed) == 0) return nullptr;
  work_lock.lock();
  Workbuf* b = work_full;
  if (b != nullptr) {
    work_full = b->next;
    nfull.fetch_sub(1, std::memory_order_relaxed);
  }
  work_lock.unlock();
  return b;
}

}  // namespace

void GcWork::put(uintptr_t obj) {
  if (wbuf1 == nullptr) {
    wbuf1 = getempty();
    wbuf2 = getempty();
  }
  if (wbuf1->nobj == kWorkbufEntries) {
    Workbuf* t = wbuf1;
    wbuf1 = wbuf2;
    wbuf2 = t;
    if (wbuf1->nobj == kWorkbufEntries) {
      putfull(wbuf1);
      flushed_work = true;
      wbuf1 = getempty();
    }
  }
  wbuf1->obj[wbuf1->nobj++] = obj;
}

uintptr_t GcWork::tryget() {
  if (wbuf1 == nullptr) {
    wbuf1 = getempty();
    wbuf2 = getempty();
  }
  if (wbuf1->nobj == 0) {
    Workbuf* t = wbuf1;
    wbuf1 = wbuf2;
    wbuf2 = t;
    if (wbuf1->nobj == 0) {
      Workbuf* full = trygetfull();
      if (full == nullptr) return 0;
      putempty(wbuf1);
      wbuf1 = full;
    }
  }
  return wbuf1->obj[--wbuf1->nobj];
}

bool GcWork::empty() const {
  return (wbuf1 == nullptr || wbuf1->nobj == 0) && (wbuf2 == nullptr || wbuf2->nobj == 0);
}

void GcWork::balance() {
  if (wbuf1 == nullptr || nfull.load(std::memory_order_relaxed) != 0) return;
  if (wbuf2->nobj != 0) {
    putfull(wbuf2);
    flushed_work = true;
    wbuf2 = getempty();
  } else if (wbuf1->nobj > 4) {
    Workbuf* b = getempty();
    size_t half = wbuf1->nobj / 2;
    for (size_t i = 0; i < half; i++) b->obj[i] = wbuf1->obj[wbuf1->nobj - half + i];
    b->nobj = half;
    wbuf1->nobj -= half;
    putfull(b);
    flushed_work = true;
  }
}

void GcWork::dispose(std::atomic<uint64_t>* marked, std::atomic<uint64_t>* scanned) {
  for (Workbuf** b : {&wbuf1, &wbuf2}) {
    if (*b == nullptr) continue;
    if ((*b)->nobj != 0) {
      putfull(*b);
      flushed_work = true;
    } else {
      putempty(*b);
    }
    *b = nullptr;
  }
  marked->fetch_add(bytes_marked, std::memory_order_relaxed);
  publish_scan_work(scanned);
  bytes_marked = 0;
  scan_work = 0;
  scan_work_published = 0;
}

void GcWork::publish_scan_work(std::atomic<uint64_t>* total) {
  if (scan_work != scan_work_published) total->fetch_add(scan_work - scan_work_published, std::memory_order_relaxed);
  scan_work_published = scan_work;
}

GcWork* gcw_of(const P* p) { return &pgcw[p->id]; }

GcWork* nop_gcw_lock() {
  nop_gcw_mutex.lock();
  return &nop_gcw;
}
void nop_gcw_unlock() { nop_gcw_mutex.unlock(); }

bool work_full_nonempty() { return nfull.load(std::memory_order_relaxed) != 0; }

}  // namespace rt::internal

// mcentral: spans of one class between mcaches and the heap (see
// mcentral.h for the lists, the pending frees and the invariants).
#include "runtime/mem/mcentral.h"

#include <cstdio>

#include "runtime/mem/mheap.h"

namespace rt::internal {

MCentral mcentral[kNumSpanClasses];

namespace {

size_t count_bits(const uint8_t* bits, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += MSpan::bit(bits, i);
  return c;
}

[[noreturn]] void bad_free(uintptr_t addr, const char* what) {
  char buf[128];
  snprintf(buf, sizeof buf, "free_object: %#lx %s", static_cast<unsigned long>(addr), what);
  throw_fatal(buf);
}

// Debug-build checks (--config=dbg); they compile to nothing otherwise.

// A span in no mcache: allocCount is the number of allocated objects.
void check_alloc_count(const MSpan* s) {
#ifdef RT_DEBUG
  if (s->allocCount != count_bits(s->allocBits, s->nelems)) {
    char buf[128];
    snprintf(buf, sizeof buf, "mcentral: span %#lx has allocCount %u but %zu allocated objects",
             static_cast<unsigned long>(s->startAddr), unsigned(s->allocCount), count_bits(s->allocBits, s->nelems));
    throw_fatal(buf);
  }
#else
  (void)s;
#endif
}

// Both lists, the caller holding c's lock: each span is on the list its
// fill says (partial: some objects free; full: none), of c's class, in use,
// in no mcache, with a true allocCount; the counts match the links.
void check_lists(const MCentral* c) {
#ifdef RT_DEBUG
  c->lock.assert_held();
  for (const SpanList* list : {&c->partial, &c->full}) {
    bool full = list == &c->full;
    size_t n = 0;
    for (const MSpan* s = list->first; s != nullptr; s = s->next, n++) {
      if (s->list != list || (s->next != nullptr && s->next->prev != s)) throw_fatal("mcentral: broken span list links");
      if (s->spanclass != c->spanclass || s->state.load(std::memory_order_relaxed) != SpanState::kInUse) {
        throw_fatal("mcentral: span of another class or state on the list");
      }
      if (s->incache) throw_fatal("mcentral: span held by an mcache is on a list");
      if ((s->allocCount == s->nelems) != full || s->allocCount == 0) {
        throw_fatal(full ? "mcentral: span with free objects on the full list"
                         : "mcentral: full or empty span on the partial list");
      }
      check_alloc_count(s);
    }
    if (n != list->count) throw_fatal("mcentral: span list count does not match its links");
  }
#else
  (void)c;
#endif
}

}  // namespace

MSpan* MCentral::cache_span() {
  lock.lock();
  MSpan* s = partial.first;
  if (s != nullptr) {
    partial.remove(s);
    check_alloc_count(s);
    check_lists(this);
  } else {
    lock.unlock();
    uint8_t sizeclass = span_class_size(spanclass);
    s = mheap_alloc(kClassToPages[sizeclass], SpanState::kInUse, spanclass);
    if (s == nullptr) return nullptr;
    lock.lock();
  }
  s->incache = true;
  lock.unlock();
  if (s->freeindex.load(std::memory_order_relaxed) != 0) throw_fatal("mcentral: cached span has freeindex != 0");
  s->refill_alloc_cache(0);
  return s;
}

void MCentral::uncache_span(MSpan* s) {
  lock.lock();
  if (!s->incache) throw_fatal("mcentral: uncache of a span not in an mcache");
  size_t fi = s->freeindex.load(std::memory_order_relaxed);
  for (size_t i = 0; i < fi; i++) MSpan::set_bit(s->allocBits, i);
  if (s->npendingFree != 0) {
    for (size_t b = 0; b < kSpanBitmapBytes; b++) {
      s->allocBits[b] &= uint8_t(~s->pendingFree[b]);
      s->pendingFree[b] = 0;
    }
    s->npendingFree = 0;
    s->needzero = true;
  }
  s->freeindex.store(0, std::memory_order_relaxed);
  s->allocCount = uint16_t(count_bits(s->allocBits, s->nelems));
  s->incache = false;
  if (s->allocCount == 0) {
    lock.unlock();
    mheap_free(s);
    return;
  }
  if (s->allocCount == s->nelems) {
    full.push(s);
  } else {
    partial.push(s);
  }
  check_lists(this);
  lock.unlock();
}

void MCentral::free_object(MSpan* s, size_t index) {
  uintptr_t addr = s->startAddr + index * s->elemsize;
  lock.lock();
  if (s->state.load(std::memory_order_acquire) != SpanState::kInUse || s->spanclass != spanclass) {
    lock.unlock();
    bad_free(addr, "is not in an in-use span");
  }
  if (!s->is_allocated(index)) {
    lock.unlock();
    bad_free(addr, "is not an allocated object (double free?)");
  }
  if (s->incache) {
    MSpan::set_bit(s->pendingFree, index);
    s->npendingFree++;
    lock.unlock();
    return;
  }
  MSpan::clear_bit(s->allocBits, index);
  s->needzero = true;
  if (s->allocCount == s->nelems) {
    full.remove(s);
    partial.push(s);
  }
  s->allocCount--;
  check_alloc_count(s);
  if (s->allocCount == 0) {
    partial.remove(s);
    lock.unlock();
    mheap_free(s);
    return;
  }
  lock.unlock();
}

}  // namespace rt::internal

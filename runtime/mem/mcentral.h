// mcentral: the spans of one span class that are not in an mcache (Go's
// mcentral.go).
//
// This is the pre-1.19 two-list form, with the names of Go 1.19: `partial`
// holds spans with at least one free object (Go <= 1.13's nonempty list)
// and `full` spans with none (Go's empty list), both under one lock. After
// a mark, spans on both lists may be unswept (their lists reflect the last
// sweep): cache_span sweeps the unswept spans it meets at the head of
// partial (Go <= 1.13's lazy sweep; at most kLazySweepPages pages of them
// per look), and sweeping a
// span moves it to the list its new fill says (runtime/gc/mgcsweep.cc; a
// sweeper other than cache_span's holds the lock only to unlink the span
// and to list it again, not while it sweeps the bitmaps).
//
// A span leaves the lists while an mcache holds it (incache). Explicit
// frees of its objects meanwhile go to its pendingFree bitmap; uncache
// applies them, like a sweep: allocBits becomes "allocated before or by the
// mcache, minus the frees", freeindex returns to 0, and the span goes to
// partial, to full, or (no object left) back to the heap.
//
// The debug build (--config=dbg) checks, under the lock: every span on
// partial has free objects and is not empty, every span on full has none,
// each is of this class, in use, in no mcache, its allocCount is the
// popcount of its allocBits, and the lists' counts match their links (the
// span that changed and its neighbours at each change, whole lists at a
// constant cost per change), and every explicit free keeps allocCount true.
#pragma once

#include "runtime/mem/mspan.h"
#include "runtime/sched/lock.h"

namespace rt::internal {

struct MCentral {
  Lock lock{LockRank::kMcentral};
  SpanClass spanclass = 0;
  SpanList partial;
  SpanList full;
#ifdef RT_DEBUG
  size_t changes_since_check = 0;  // the debug build's list checks (mcentral.cc)
#endif

  // A swept span with a free object, taken off the lists for an mcache;
  // nullptr when the heap cannot grow.
  MSpan* cache_span();
  // The first swept span of partial, taken off it, sweeping unswept ones
  // on the way (lock held); nullptr if none within the sweep budget.
  MSpan* take_partial();
  // Takes back a span from an mcache.
  void uncache_span(MSpan* s);
  // Frees object `index` of span s of this class (free_object).
  void free_object(MSpan* s, size_t index);
};

extern MCentral mcentral[kNumSpanClasses];

}  // namespace rt::internal

// mcentral: the spans of one span class that are not in an mcache (Go's
// mcentral.go).
//
// This is the pre-1.19 two-list form, with the names of Go 1.19: `partial`
// holds spans with at least one free object (Go <= 1.13's nonempty list)
// and `full` spans with none (Go's empty list), both under one lock. There
// is no swept/unswept split yet: without a GC every span here is swept.
// When the GC lands, Go 1.19's partial/full x swept/unswept span sets,
// indexed by sweepgen, replace the two lists.
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

  // A span with a free object, taken off the lists for an mcache; nullptr
  // when the heap cannot grow.
  MSpan* cache_span();
  // Takes back a span from an mcache.
  void uncache_span(MSpan* s);
  // Frees object `index` of span s of this class (free_object).
  void free_object(MSpan* s, size_t index);
};

extern MCentral mcentral[kNumSpanClasses];

}  // namespace rt::internal

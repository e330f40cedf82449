// Roots and marking (Go's mgcmark.go, for a conservative collector).
//
// Tri-colour marking with the world stopped: an object is white until its
// gcmarkBits bit is set (grey: on the mark stack, its words not scanned
// yet), black once scanned. greyobject shades one word; drain pops grey
// objects and shades every word in them until the stack is empty. The
// invariant when marking ends: no black object holds a word that points
// into a white allocated object, so every white object is unreachable.
//
// Pointer finding is conservative, as DESIGN says: a word is a reference
// when it falls inside an allocated object of an in-use span (arena map ->
// span -> object index by the span's magic division, interior pointers
// included). Noscan span classes (pointer-free types, rt/gc.h) are marked
// but never scanned; scan classes are scanned word by word over the whole
// slot. Manual spans (goroutine stacks) are never heap objects.
//
// Roots, each one job over a range of words:
//   - the writable PT_LOAD segments of the main executable (.data, .bss,
//     found once with dl_iterate_phdr);
//   - every goroutine that exists: its stack from the saved stack pointer
//     to stack.hi. A goroutine switches out through rt_mcall, which pushes
//     its callee-saved registers just above the saved stack pointer, and
//     an asynchronously preempted one has its whole register file and
//     extended state in the trampoline frame above that
//     (runtime/arch/preempt_frame.h), so one range covers registers too.
//     A goroutine in a system call keeps running without a P: its stack
//     is scanned from where entersyscall recorded it, plus the callee-
//     saved registers entersyscall copied into the G (the frames below
//     belong to the system call and hold no references of the program);
//   - the collecting goroutine itself, from the stack pointer at which it
//     spilled its registers (mgc.cc);
//   - goroutine closures (inline in the G or in their heap copy);
//   - rt::Root registrations;
//   - the runtime's own references: every live channel (channels are
//     reference counted, so a live one is a root; its buffer and the
//     values queued in it are reached from it). Values in flight between
//     two goroutines (a parked sender's value, a blocked receiver's slot)
//     lie on the goroutines' stacks, which are roots already.
#include <link.h>

#include <cstring>

#include "rt/gc.h"
#include "runtime/chan/chan.h"
#include "runtime/gc/mgc.h"
#include "runtime/mem/malloc.h"
#include "runtime/mem/mheap.h"
#include "runtime/mem/metavec.h"
#include "runtime/sched/runtime2.h"

namespace rt::internal {

namespace {

// The writable segments of the main executable.
struct DataSegment {
  uintptr_t lo;
  uintptr_t hi;
};
constexpr int kMaxDataSegments = 8;
DataSegment data_segments[kMaxDataSegments];
int ndata_segments = 0;

// rt::Root registrations: a circular list through a sentinel.
SpinLock roots_lock{LockRank::kGcRoots};
RootNode roots_head{&roots_head, &roots_head, nullptr};

// The mark state of one cycle (the world is stopped: one marker).
struct Marker {
  MetaVector<uintptr_t> stack;  // grey objects
  uintptr_t lo = 0;             // arena bounds, for a quick test of each word
  uintptr_t hi = 0;
  uint64_t marked_bytes = 0;

  void grey(uintptr_t p) {
    if (p < lo || p >= hi) return;
    MSpan* s = span_of(p);
    if (s == nullptr || s->state.load(std::memory_order_relaxed) != SpanState::kInUse || p >= s->limit) return;
    size_t idx = s->object_index(p);
    if (!s->is_allocated(idx) || MSpan::bit(s->gcmarkBits, idx)) return;
    MSpan::set_bit(s->gcmarkBits, idx);
    marked_bytes += s->elemsize;
    if (span_class_noscan(s->spanclass)) return;
    stack.push_back(s->startAddr + idx * s->elemsize);
  }

  // Shades every aligned word of [b, e). Stacks and objects are read
  // whole, redzones and frames of a thread in a system call included:
  // not for the sanitizers to judge.
  __attribute__((no_sanitize("address", "thread"))) void scan_range(uintptr_t b, uintptr_t e) {
    b = (b + 7) & ~uintptr_t(7);
    for (uintptr_t a = b; a + 8 <= e; a += 8) grey(*reinterpret_cast<const uintptr_t*>(a));
  }

  void drain() {
    while (!stack.empty()) {
      uintptr_t obj = stack[stack.size() - 1];
      stack.pop_back();
      MSpan* s = span_of(obj);
      scan_range(obj, obj + s->elemsize);
    }
  }
};

int find_segments(dl_phdr_info* info, size_t, void*) {
  // The first object dl_iterate_phdr reports is the main executable.
  for (int i = 0; i < info->dlpi_phnum && ndata_segments < kMaxDataSegments; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    data_segments[ndata_segments++] = DataSegment{lo, lo + ph.p_memsz};
  }
  return 1;
}

// Scans one goroutine's stack and closure (see the header comment).
void scan_goroutine(Marker* m, G* gp, G* self, uintptr_t self_sp, uint64_t* stack_bytes) {
  uint32_t status = gp->atomicstatus.load(std::memory_order_acquire);
  if (status == kGdead || status == kGidle) return;
  if (gp->fn_obj != nullptr) {
    uintptr_t c = reinterpret_cast<uintptr_t>(gp->fn_obj);
    m->scan_range(c, c + (gp->fn_obj == gp->fn_buf ? kInlineClosure : gp->fn_size));
  }
  if (gp->stack.lo == 0) return;  // never ran: nothing on its stack yet
  uintptr_t sp;
  if (gp == self) {
    sp = self_sp;
  } else if (status == kGsyscall) {
    sp = gp->syscallsp;
    for (uintptr_t r : gp->syscallregs) m->grey(r);
  } else if (status == kGrunning) {
    throw_fatal("gc: a goroutine other than the collector's runs while the world is stopped");
  } else {
    sp = reinterpret_cast<uintptr_t>(gp->sched_sp);
  }
  if (sp < gp->stack.lo || sp > gp->stack.hi) throw_fatal("gc: goroutine stack pointer outside its stack");
  *stack_bytes += gp->stack.hi - sp;
  m->scan_range(sp, gp->stack.hi);
}

struct GoroutineScan {
  Marker* m;
  G* self;
  uintptr_t self_sp;
  uint64_t stack_bytes;
};

}  // namespace

void find_data_segments() { dl_iterate_phdr(find_segments, nullptr); }

void root_register(RootNode* n) {
  roots_lock.lock();
  n->next = roots_head.next;
  n->prev = &roots_head;
  roots_head.next->prev = n;
  roots_head.next = n;
  roots_lock.unlock();
}

void root_unregister(RootNode* n) {
  roots_lock.lock();
  n->prev->next = n->next;
  n->next->prev = n->prev;
  roots_lock.unlock();
}

MarkResult gc_mark(G* self, uintptr_t self_sp) {
  Marker m;
  m.lo = heap_counters.arena_lo.load(std::memory_order_acquire);
  m.hi = heap_counters.arena_hi.load(std::memory_order_acquire);
  MarkResult r{};
  for (int i = 0; i < ndata_segments; i++) {
    m.scan_range(data_segments[i].lo, data_segments[i].hi);
    r.globals_bytes += data_segments[i].hi - data_segments[i].lo;
  }
  m.drain();
  GoroutineScan gs{&m, self, self_sp, 0};
  for_each_g(
      [](G* gp, void* arg) {
        auto* s = static_cast<GoroutineScan*>(arg);
        scan_goroutine(s->m, gp, s->self, s->self_sp, &s->stack_bytes);
        s->m->drain();
      },
      &gs);
  r.stack_bytes = gs.stack_bytes;
  roots_lock.lock();
  for (RootNode* n = roots_head.next; n != &roots_head; n = n->next) {
    m.grey(*reinterpret_cast<const uintptr_t*>(n->slot));
  }
  roots_lock.unlock();
  m.drain();
  for_each_live_chan([](HChan* c, void* arg) { static_cast<Marker*>(arg)->grey(reinterpret_cast<uintptr_t>(c)); }, &m);
  m.drain();
  r.marked_bytes = m.marked_bytes;
  return r;
}

}  // namespace rt::internal

// Roots and marking (Go's mgcmark.go, for a conservative collector).
//
// Tri-colour marking, concurrent with the program: an object is white
// until its gcmarkBits bit is set; grey while its address waits in a work
// buffer (mgcwork.h); black once its words are scanned. shade() greys one
// word; gc_drain pops grey objects and shades every word in them. Marking
// ends (mark termination, mgc.cc) when no grey object is left anywhere and
// every root job is done; the invariant then is that no black object and
// no scanned root holds a word pointing into a white allocated object, so
// every white object is unreachable and the sweep frees it.
//
// Pointer finding is conservative: a word is a reference when it falls
// inside an allocated object of an in-use span (arena map -> span ->
// object index by the span's magic division, interior pointers included).
// Noscan span classes (pointer-free types, rt/gc.h) are marked but never
// scanned; scan classes are scanned word by word over the whole slot
// (a large object in 128 KiB oblets, each a grey entry of its own).
// Mark bits are set with an atomic or: several markers (workers on every
// P, assists, write barriers, allocation) shade at once, and the one whose
// or flipped the bit queues the object, so each object is scanned once.
// The arena bounds are read when marking starts: an arena mapped later
// holds only objects allocated during the mark, which are black already.
//
// While marking (rt_write_barrier_enabled), the program's stores keep the
// hybrid barrier's invariant (mbarrier.cc, proposal 17503), and every
// object allocated is black (gc_mark_new_object), so a stack, once
// scanned, is never scanned again in the cycle.
//
// Roots, each one job taken from a shared counter (Go's markroot):
//   - the writable PT_LOAD segments of the main executable (.data, .bss,
//     found once with dl_iterate_phdr), in chunks of kGlobalsChunk;
//   - rt::Root registrations; the buffers of buffered channels whose
//     element type has a destructor, word by word but not the channels
//     themselves, and the dead channels queued for those destructors
//     (chan.h's finalizer protocol: what a value left in a dead channel
//     refers to outlives the channel until the value is destroyed);
//   - one job per goroutine that existed when marking started (allgs), its
//     stack scanned once per cycle while it is stopped (the stack-scan
//     protocol below), with its closure (inline in the G, or a GC object
//     the G refers to). gcscan_cycle records the cycle that scanned it.
//
// The stack-scan protocol (Go's suspendG/scanstack). A goroutine that is
// not running (runnable, waiting, preempted, or in a system call) is
// claimed by adding kGscan to its status with a compare-and-swap;
// casgstatus waits out the bit, so it cannot run, be readied or leave its
// system call while its stack is read. The claim of gcscan_cycle (a
// compare-and-swap to the current cycle) makes sure one scanner counts it.
// The range scanned is the stack from its saved stack pointer to its top:
// a goroutine switches out through rt_mcall, which pushes its callee-saved
// registers just above the saved stack pointer, and an asynchronously
// preempted one has its whole register file and extended state in the
// trampoline frame above that (runtime/arch/preempt_frame.h). A goroutine
// in a system call is scanned from where entersyscall recorded its stack
// pointer, plus the callee-saved registers it copied into the G (the
// frames below belong to the system call). A running goroutine cannot be
// scanned by anyone else: the scanner asks it to stop (the preemption
// policy's request: with coop it stops at its next safe point, with signal
// at once), and it is scanned when it next stops, or by execute() before
// it runs again (gc_scan_before_execute), whichever comes first. A
// goroutine that never reaches a safe point delays the end of marking.
// The collector's own goroutine scans itself (gc_scan_self), its
// registers spilled into its frame. The mark workers' stacks hold no heap
// references and are not scanned. Goroutines created while marking start
// scanned (their closures are shaded at creation); goroutines that exit
// unscanned need no scan (their stores went through the barrier).
//
// The count of goroutines left to scan (stacks_remaining) is set with the
// world stopped when marking starts: every goroutine that exists and is
// not dead is counted, dead ones are stamped scanned. Each claim of a
// counted goroutine decrements it once; marking cannot end before it is 0.
//
// gccheckmark (GODEBUG=gccheckmark=1, Go's debug mode): at mark
// termination, with the world stopped, the heap is marked again from every
// root into separate bits, verifying the invariant above on every edge the
// collector is accountable for: an object reached from an rt::Root, a live
// channel's buffer, a queued channel or a black object must be marked. Stacks, closures and globals
// are scanned but their words not verified: a conservative scan reads
// dead stack slots, which may name objects that died long ago, and the
// runtime's own tables in .data/.bss (the page allocator's) hold heap
// addresses that are not references and change without a barrier.
#include <link.h>
#include <sys/mman.h>
#include <time.h>

#include <cstdio>
#include <cstring>

#include "rt/gc.h"
#include "runtime/chan/chan.h"
#include "runtime/gc/mgc.h"
#include "runtime/gc/mgcwork.h"
#include "runtime/mem/malloc.h"
#include "runtime/mem/mheap.h"
#include "runtime/policy/preempt.h"
#include "runtime/policy/runq.h"
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
constexpr uintptr_t kGlobalsChunk = 256 << 10;

// rt::Root registrations: a circular list through a sentinel.
SpinLock roots_lock{LockRank::kGcRoots};
RootNode roots_head{&roots_head, &roots_head, nullptr};

// The state of one mark phase, set up with the world stopped.
struct MarkWork {
  uintptr_t arena_lo = 0;
  uintptr_t arena_hi = 0;
  uint32_t cycle = 0;
  // Root jobs: [0, nglobal_jobs) globals, then rt::Roots and channels,
  // then one per goroutine of allgs[0, nstack_jobs).
  uint32_t nglobal_jobs = 0;
  uint32_t nstack_jobs = 0;
  uint32_t root_jobs = 0;
  std::atomic<uint32_t> root_next{0};
  std::atomic<int64_t> stacks_remaining{0};
  std::atomic<uint64_t> bytes_marked{0};
  std::atomic<uint64_t> scan_work{0};
  std::atomic<uint64_t> stack_bytes{0};
  std::atomic<uint64_t> globals_bytes{0};
  std::atomic<int32_t> drainers{0};  // markers inside gc_drain
  std::atomic<bool> check_done{false};  // a worker must look for the end of marking
} work;

constexpr uint32_t kSpecialRootJobs = 2;  // rt::Roots, channels (chan.h's finalizer protocol)

inline bool in_arena(uintptr_t p) { return p >= work.arena_lo && p < work.arena_hi; }

// The object of an in-use span that p points into, or nullptr.
inline MSpan* object_of(uintptr_t p, size_t* idx) {
  if (!in_arena(p)) return nullptr;
  MSpan* s = span_of(p);
  if (s == nullptr || s->state.load(std::memory_order_relaxed) != SpanState::kInUse || p >= s->limit) return nullptr;
  *idx = s->object_index(p);
  if (!s->is_allocated(*idx)) return nullptr;
  return s;
}

// Sets bit idx of bits; true if this call set it.
inline bool set_mark(uint8_t* bits, size_t idx) {
  uint8_t mask = uint8_t(1u << (idx % 8));
  uint8_t* b = &bits[idx / 8];
  if (__atomic_load_n(b, __ATOMIC_RELAXED) & mask) return false;
  return (__atomic_fetch_or(b, mask, __ATOMIC_RELAXED) & mask) == 0;
}

inline bool is_marked(const uint8_t* bits, size_t idx) {
  return (__atomic_load_n(&bits[idx / 8], __ATOMIC_RELAXED) >> (idx % 8)) & 1;
}

// Greys the object p points into, if it is white (see the file comment).
inline void shade(uintptr_t p, GcWork* gcw) {
  size_t idx;
  MSpan* s = object_of(p, &idx);
  if (s == nullptr || !set_mark(s->gcmarkBits, idx)) return;
  gcw->bytes_marked += s->elemsize;
  if (span_class_noscan(s->spanclass)) return;
  gcw->put(s->startAddr + idx * s->elemsize);
}

constexpr size_t kMaxObletBytes = 128 << 10;
// A mark worker hands on its scan work as credit at least this often (Go's
// gcCreditSlack): parked assists wait for it.
constexpr uint64_t kCreditSlack = 2000;
// gc_drain's checks (stop requests, balance, credit) come at least this
// often in bytes scanned.
constexpr uint64_t kDrainCheckBytes = 16 << 10;

// Shades every aligned word of [b, e). Stacks and objects are read whole
// while their owners may write them (redzones and frames of a thread in a
// system call included): not for the sanitizers to judge.
__attribute__((no_sanitize("address", "thread"))) void scan_block(uintptr_t b, uintptr_t e, GcWork* gcw) {
  b = (b + 7) & ~uintptr_t(7);
  for (uintptr_t a = b; a + 8 <= e; a += 8) shade(__atomic_load_n(reinterpret_cast<const uintptr_t*>(a), __ATOMIC_RELAXED), gcw);
  gcw->scan_work += e > b ? e - b : 0;
}

// fn(word, arg) for every aligned word of [b, b + bytes), read as
// scan_block reads.
__attribute__((no_sanitize("address", "thread"))) void for_each_word(uintptr_t b, size_t bytes,
                                                                     void (*fn)(uintptr_t, void*), void* arg) {
  for (uintptr_t a = (b + 7) & ~uintptr_t(7); a + 8 <= b + bytes; a += 8) {
    fn(__atomic_load_n(reinterpret_cast<const uintptr_t*>(a), __ATOMIC_RELAXED), arg);
  }
}

// Scans the grey entry b: an object, or an oblet of a large one. An
// object larger than kMaxObletBytes is scanned in oblets of that size
// (Go's maxObletBytes): scanning its start queues the address of each
// further oblet, so one scan is bounded work (an assist or a worker
// stops between oblets; parallel markers share one large object).
void scan_object(uintptr_t b, GcWork* gcw) {
  MSpan* s = span_of(b);
  size_t n = s->elemsize;
  if (n > kMaxObletBytes) {
    if (b == s->startAddr) {
      for (uintptr_t oblet = b + kMaxObletBytes; oblet < b + n; oblet += kMaxObletBytes) gcw->put(oblet);
    }
    n = s->startAddr + n - b < kMaxObletBytes ? s->startAddr + n - b : kMaxObletBytes;
  }
  scan_block(b, b + n, gcw);
}

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

// The words of a goroutine's inline closure (empty when it has none or
// its closure is a GC object, which closure_object returns).
void closure_range(const G* gp, uintptr_t* lo, uintptr_t* hi) {
  *lo = *hi = 0;
  if (gp->fn_obj != gp->fn_buf) return;
  *lo = reinterpret_cast<uintptr_t>(gp->fn_buf);
  *hi = *lo + kInlineClosure;
}
uintptr_t closure_object(const G* gp) {
  return gp->fn_obj != gp->fn_buf ? reinterpret_cast<uintptr_t>(gp->fn_obj) : 0;
}

// Shades a goroutine's closure: the words of an inline one, or the GC
// object of a large one (scanned as every object is).
void scan_closure(const G* gp, GcWork* gcw) {
  uintptr_t lo, hi;
  closure_range(gp, &lo, &hi);
  if (lo != 0) scan_block(lo, hi, gcw);
  shade(closure_object(gp), gcw);
}

// The stack range of a stopped goroutine gp in status (without kGscan),
// or of the collector's own goroutine self stopped at self_sp. Fills regs
// with the callee-saved registers kept outside the stack (system call);
// returns false when the goroutine has no stack yet.
bool stack_range(G* gp, uint32_t status, G* self, uintptr_t self_sp, uintptr_t* lo, uintptr_t* hi,
                 const uintptr_t** regs) {
  *regs = nullptr;
  if (gp->stack.lo == 0) return false;  // never ran: nothing on its stack yet
  uintptr_t sp;
  if (gp == self) {
    sp = self_sp;
  } else if (status == kGsyscall) {
    sp = gp->syscallsp;
    *regs = gp->syscallregs;
  } else if (status == kGrunning) {
    throw_fatal("gc: scan of a running goroutine's stack");
  } else {
    sp = reinterpret_cast<uintptr_t>(gp->sched_sp);
  }
  if (sp < gp->stack.lo || sp > gp->stack.hi) throw_fatal("gc: goroutine stack pointer outside its stack");
  *lo = sp;
  *hi = gp->stack.hi;
  return true;
}

// Scans gp's closure and stack into gcw (gp is stopped and claimed).
void scan_goroutine(G* gp, uint32_t status, G* self, uintptr_t self_sp, GcWork* gcw) {
  scan_closure(gp, gcw);
  uintptr_t lo, hi;
  const uintptr_t* regs;
  if (!stack_range(gp, status, self, self_sp, &lo, &hi, &regs)) return;
  if (regs != nullptr) {
    for (int i = 0; i < 6; i++) shade(regs[i], gcw);
  }
  work.stack_bytes.fetch_add(hi - lo, std::memory_order_relaxed);
  scan_block(lo, hi, gcw);
}

// Claims gp's scan for this cycle; true once per counted goroutine.
bool claim_scan(G* gp) {
  uint32_t seen = gp->gcscan_cycle.load(std::memory_order_acquire);
  while (seen != work.cycle) {
    if (gp->gcscan_cycle.compare_exchange_weak(seen, work.cycle, std::memory_order_acq_rel)) {
      // The last stack may be claimed outside any drain (execute, newproc,
      // the collector's own scan), where nothing would look for the end
      // of marking: the next scheduling decision must.
      if (work.stacks_remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        work.check_done.store(true, std::memory_order_release);
      }
      return true;
    }
  }
  return false;
}

bool is_mark_worker(const G* gp);

// One attempt at gp's stack (the protocol in the file comment). Returns
// true when it is scanned for this cycle (by this call or another).
bool try_scan_g(G* gp, GcWork* gcw) {
  for (;;) {
    if (gp->gcscan_cycle.load(std::memory_order_acquire) == work.cycle) return true;
    uint32_t s = gp->atomicstatus.load(std::memory_order_acquire);
    if (s & kGscan) return false;  // another scanner has it
    switch (s) {
      case kGdead:
      case kGidle:
        claim_scan(gp);  // exited unscanned: nothing left to scan
        return true;
      case kGrunning: {
        if (is_mark_worker(gp)) {
          claim_scan(gp);
          return true;
        }
        M* mp = gp->m;
        if (mp != nullptr && gp != getg()) policy::preempt::request(gp, mp);
        return false;
      }
      case kGrunnable:
      case kGwaiting:
      case kGsyscall:
      case kGpreempted: {
        uint32_t expected = s;
        if (!gp->atomicstatus.compare_exchange_strong(expected, s | kGscan, std::memory_order_acq_rel)) continue;
        if (claim_scan(gp)) scan_goroutine(gp, s, nullptr, 0, gcw);
        gp->atomicstatus.store(s, std::memory_order_release);
        return true;
      }
      default:
        throw_fatal("gc: goroutine in an unknown status");
    }
  }
}

void mark_globals_chunk(uint32_t job, GcWork* gcw) {
  uintptr_t off = uintptr_t(job) * kGlobalsChunk;
  for (int i = 0; i < ndata_segments; i++) {
    uintptr_t len = data_segments[i].hi - data_segments[i].lo;
    if (off < len) {
      uintptr_t lo = data_segments[i].lo + off;
      uintptr_t hi = lo + kGlobalsChunk < data_segments[i].hi ? lo + kGlobalsChunk : data_segments[i].hi;
      work.globals_bytes.fetch_add(hi - lo, std::memory_order_relaxed);
      scan_block(lo, hi, gcw);
      return;
    }
    off -= (len + kGlobalsChunk - 1) / kGlobalsChunk * kGlobalsChunk;
  }
}

uint32_t count_global_jobs() {
  uint32_t n = 0;
  for (int i = 0; i < ndata_segments; i++) {
    n += uint32_t((data_segments[i].hi - data_segments[i].lo + kGlobalsChunk - 1) / kGlobalsChunk);
  }
  return n;
}

// The words of rt::Root slots (which 0), or of the buffers of finalizable
// channels and of the queued channels' addresses (which 1), through
// fn(word, arg).
void for_each_special_root(uint32_t which, void (*fn)(uintptr_t, void*), void* arg) {
  if (which == 0) {
    roots_lock.lock();
    for (RootNode* n = roots_head.next; n != &roots_head; n = n->next) {
      fn(__atomic_load_n(reinterpret_cast<const uintptr_t*>(n->slot), __ATOMIC_RELAXED), arg);
    }
    roots_lock.unlock();
    return;
  }
  struct Pass {
    void (*fn)(uintptr_t, void*);
    void* arg;
  } pass{fn, arg};
  // The buffer changes under the channel's lock, concurrently with this
  // scan; the barrier shades what is stored and what is overwritten.
  for_each_finalizable_chan(
      [](HChan* c, void* a) {
        auto* p = static_cast<Pass*>(a);
        for_each_word(reinterpret_cast<uintptr_t>(c->buf), size_t(c->dataqsiz) * c->type->size, p->fn, p->arg);
      },
      &pass);
  for_each_queued_chan(
      [](HChan* c, void* a) {
        auto* p = static_cast<Pass*>(a);
        p->fn(reinterpret_cast<uintptr_t>(c), p->arg);
      },
      &pass);
}

void markroot(uint32_t job, GcWork* gcw) {
  if (job < work.nglobal_jobs) {
    mark_globals_chunk(job, gcw);
  } else if (job < work.nglobal_jobs + kSpecialRootJobs) {
    for_each_special_root(
        job - work.nglobal_jobs, [](uintptr_t w, void* g) { shade(w, static_cast<GcWork*>(g)); }, gcw);
  } else {
    uint32_t i = job - work.nglobal_jobs - kSpecialRootJobs;
    if (!try_scan_g(allgs[i], gcw)) return;  // left for a retry
  }
}

// Retries the stacks still unscanned (their goroutines were running).
// Returns whether any was scanned.
bool retry_stacks(GcWork* gcw) {
  bool progress = false;
  for (uint32_t i = 0; i < work.nstack_jobs && work.stacks_remaining.load(std::memory_order_acquire) > 0; i++) {
    G* gp = allgs[i];
    if (gp->gcscan_cycle.load(std::memory_order_acquire) == work.cycle) continue;
    if (try_scan_g(gp, gcw)) progress = true;
  }
  return progress;
}

// Mark workers are registered by mgc.cc; their stacks are not roots.
constexpr int kMaxWorkers = kMaxProcs;
G* mark_workers[kMaxWorkers];
std::atomic<int32_t> nmark_workers{0};

bool is_mark_worker(const G* gp) {
  int32_t n = nmark_workers.load(std::memory_order_acquire);
  for (int32_t i = 0; i < n; i++) {
    if (mark_workers[i] == gp) return true;
  }
  return false;
}

// ---- gccheckmark ----------------------------------------------------------

// A second set of mark bits, one bitmap per in-use span, mapped for one
// verification and unmapped after it.
struct Checkmarks {
  uint8_t* bits = nullptr;
  size_t bytes = 0;
  size_t nspans = 0;
} checkmarks;

// Which span owns which bitmap: the span's index in a table sorted by
// address (spans do not change with the world stopped).
MetaVector<MSpan*> checkmark_spans;

uint8_t* checkmark_bits_of(MSpan* s) {
  size_t lo = 0, hi = checkmark_spans.size();
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (checkmark_spans[mid] == s) return checkmarks.bits + mid * kSpanBitmapBytes;
    if (checkmark_spans[mid]->startAddr < s->startAddr) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  throw_fatal("gccheckmark: span missing from the checkmark table");
}

[[noreturn]] void checkmark_fail(uintptr_t obj, const char* from_what, uintptr_t from, uintptr_t at) {
  char buf[256];
  snprintf(buf, sizeof buf,
           "gccheckmark: object %#lx is reachable but was not marked (reached from %s %#lx, word at %#lx)",
           static_cast<unsigned long>(obj), from_what, static_cast<unsigned long>(from), static_cast<unsigned long>(at));
  throw_fatal(buf);
}

struct CheckmarkState {
  MetaVector<uintptr_t> stack;  // objects to scan, with the low bit set when black
};

// Checkmarks the object w points into; verify: the edge must reach a
// marked object (from names the holder for the message).
void checkmark_shade(CheckmarkState* st, uintptr_t w, bool verify, const char* from_what, uintptr_t from, uintptr_t at) {
  size_t idx;
  MSpan* s = object_of(w, &idx);
  if (s == nullptr) return;
  bool black = is_marked(s->gcmarkBits, idx);
  uintptr_t base = s->startAddr + idx * s->elemsize;
  if (verify && !black) checkmark_fail(base, from_what, from, at);
  if (!set_mark(checkmark_bits_of(s), idx)) return;
  if (span_class_noscan(s->spanclass)) return;
  st->stack.push_back(base | (black ? 1 : 0));
}

__attribute__((no_sanitize("address", "thread"))) void checkmark_block(CheckmarkState* st, uintptr_t b, uintptr_t e,
                                                                       bool verify, const char* what, uintptr_t from) {
  b = (b + 7) & ~uintptr_t(7);
  for (uintptr_t a = b; a + 8 <= e; a += 8) checkmark_shade(st, *reinterpret_cast<const uintptr_t*>(a), verify, what, from, a);
}

void checkmark_drain(CheckmarkState* st) {
  while (!st->stack.empty()) {
    uintptr_t e = st->stack[st->stack.size() - 1];
    st->stack.pop_back();
    uintptr_t obj = e & ~uintptr_t(1);
    checkmark_block(st, obj, obj + span_of(obj)->elemsize, (e & 1) != 0, "object", obj);
  }
}

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

void gc_register_mark_worker(G* gp) {
  int32_t n = nmark_workers.load(std::memory_order_relaxed);
  if (n == kMaxWorkers) throw_fatal("gc: too many mark workers");
  mark_workers[n] = gp;
  nmark_workers.store(n + 1, std::memory_order_release);
}

uint32_t gc_mark_prepare() {
  work.arena_lo = heap_counters.arena_lo.load(std::memory_order_acquire);
  work.arena_hi = heap_counters.arena_hi.load(std::memory_order_acquire);
  work.cycle++;
  work.nglobal_jobs = count_global_jobs();
  size_t n = allglen.load(std::memory_order_acquire);
  int64_t live = 0;
  for (size_t i = 0; i < n; i++) {
    G* gp = allgs[i];
    gp->gc_assist_bytes = 0;
    uint32_t s = readgstatus(gp);
    if (s == kGdead || s == kGidle) {
      gp->gcscan_cycle.store(work.cycle, std::memory_order_relaxed);
    } else {
      live++;
    }
  }
  work.nstack_jobs = uint32_t(n);
  work.root_jobs = work.nglobal_jobs + kSpecialRootJobs + work.nstack_jobs;
  work.root_next.store(0, std::memory_order_relaxed);
  work.stacks_remaining.store(live, std::memory_order_relaxed);
  work.bytes_marked.store(0, std::memory_order_relaxed);
  work.scan_work.store(0, std::memory_order_relaxed);
  work.stack_bytes.store(0, std::memory_order_relaxed);
  work.globals_bytes.store(0, std::memory_order_relaxed);
  work.check_done.store(false, std::memory_order_relaxed);
  return work.cycle;
}

uint32_t gc_current_mark_cycle() { return work.cycle; }

bool gc_mark_work_available(const P* p) {
  return (p != nullptr && !gcw_of(p)->empty()) || work_full_nonempty() ||
         work.root_next.load(std::memory_order_relaxed) < work.root_jobs ||
         work.stacks_remaining.load(std::memory_order_relaxed) > 0;
}

uint64_t gc_drain(GcWork* gcw, DrainMode mode, int64_t budget, bool (*stop)(void*), void* stop_arg) {
  work.drainers.fetch_add(1, std::memory_order_acq_rel);
  uint64_t start_work = gcw->scan_work;
  auto done = [&]() { return mode == DrainMode::kBudget && int64_t(gcw->scan_work - start_work) >= budget; };
  auto should_stop = [&]() { return done() || (stop != nullptr && stop(stop_arg)); };
  uint64_t credited = gcw->scan_work;
  uint64_t checked = gcw->scan_work;
  int since_check = 0;
  for (;;) {
    // Root jobs first: they produce the grey objects.
    while (work.root_next.load(std::memory_order_relaxed) < work.root_jobs) {
      uint32_t job = work.root_next.fetch_add(1, std::memory_order_relaxed);
      if (job >= work.root_jobs) break;
      markroot(job, gcw);
      if (should_stop()) goto out;
    }
    uintptr_t obj = gcw->tryget();
    if (obj == 0) {
      if (work.stacks_remaining.load(std::memory_order_acquire) > 0 && retry_stacks(gcw)) continue;
      break;
    }
    scan_object(obj, gcw);
    // A budget (an assist's debt) is checked after every object: an
    // object or oblet can be 128 KiB of scan work. The rest is checked
    // every 64 objects or kDrainCheckBytes of scan work, whichever comes
    // first: a stop request, a for_each_p round and parked assists must
    // not wait for 64 oblets (8 MiB) of scanning.
    if (done()) break;
    if (++since_check == 64 || gcw->scan_work - checked >= kDrainCheckBytes) {
      since_check = 0;
      checked = gcw->scan_work;
      gcw->balance();
      gcw->publish_scan_work(&work.scan_work);
      if (mode == DrainMode::kBackground && gcw->scan_work - credited >= kCreditSlack) {
        gc_flush_bg_credit(int64_t(gcw->scan_work - credited));
        credited = gcw->scan_work;
      }
      if (should_stop()) break;
    }
  }
out:
  gcw->publish_scan_work(&work.scan_work);
  if (mode == DrainMode::kBackground && gcw->scan_work != credited) gc_flush_bg_credit(int64_t(gcw->scan_work - credited));
  uint64_t did = gcw->scan_work - start_work;
  work.drainers.fetch_sub(1, std::memory_order_acq_rel);
  return did;
}

bool gc_take_check_done() {
  return work.check_done.load(std::memory_order_relaxed) && work.check_done.exchange(false, std::memory_order_acq_rel);
}

bool gc_no_drainers() { return work.drainers.load(std::memory_order_acquire) == 0; }

uint64_t gc_scan_work_done() { return work.scan_work.load(std::memory_order_relaxed); }

bool gc_flush_work(const P* p) {
  GcWork* gcw = p != nullptr ? gcw_of(p) : nop_gcw_lock();
  gcw->dispose(&work.bytes_marked, &work.scan_work);
  bool flushed = gcw->flushed_work;
  gcw->flushed_work = false;
  if (p == nullptr) nop_gcw_unlock();
  return flushed;
}

bool gc_mark_complete_stopped() {
  int32_t procs = gomaxprocs.load();
  for (int32_t i = 0; i < procs; i++) gc_flush_work(allp[i]);
  gc_flush_work(nullptr);
  return !work_full_nonempty() && work.root_next.load() >= work.root_jobs && work.stacks_remaining.load() == 0;
}

void gc_queue_dead_chans() {
  queue_dead_chans(
      [](HChan* c) {
        size_t idx;
        MSpan* s = object_of(reinterpret_cast<uintptr_t>(c), &idx);
        if (s == nullptr) throw_fatal("gc: a finalizable channel outside the heap");
        return is_marked(s->gcmarkBits, idx);
      },
      [](HChan* c) {
        size_t idx;
        MSpan* s = object_of(reinterpret_cast<uintptr_t>(c), &idx);
        if (set_mark(s->gcmarkBits, idx)) work.bytes_marked.fetch_add(s->elemsize, std::memory_order_relaxed);
      });
}

void gc_destroy_p(P* p) {
  if (gc_marking()) gcw_of(p)->dispose(&work.bytes_marked, &work.scan_work);
}

MarkResult gc_mark_result() {
  return MarkResult{work.bytes_marked.load(), work.stack_bytes.load(), work.globals_bytes.load(), work.scan_work.load()};
}

void gc_scan_before_execute(G* gp) {
  // gp is runnable: either this scans it, or another scanner holds it and
  // execute's casgstatus waits until that scan ends.
  try_scan_g(gp, gcw_of(getm()->p));
}

void gc_newproc(G* gp) {
  scan_closure(gp, gcw_of(getm()->p));
  claim_scan(gp);
}

void gc_scan_self_at(G* self, uintptr_t sp) {
  if (self->gcscan_cycle.load(std::memory_order_acquire) == work.cycle || !claim_scan(self)) return;
  GcWork* gcw = gcw_of(getm()->p);
  scan_goroutine(self, kGrunning, self, sp, gcw);
}

void gc_shade(uintptr_t w, GcWork* gcw) { shade(w, gcw); }

void gc_mark_new_object(uintptr_t v, GcWork* gcw) {
  size_t idx;
  MSpan* s = span_of(v);
  if (s == nullptr) throw_fatal("gc: new object outside the heap");
  idx = s->object_index(v);
  if (set_mark(s->gcmarkBits, idx)) gcw->bytes_marked += s->elemsize;
}

void gc_clear_mark(MSpan* s, size_t idx) {
  uint8_t mask = uint8_t(1u << (idx % 8));
  __atomic_fetch_and(&s->gcmarkBits[idx / 8], uint8_t(~mask), __ATOMIC_RELAXED);
}

void gc_checkmark(G* self, uintptr_t self_sp) {
  work.arena_lo = heap_counters.arena_lo.load(std::memory_order_acquire);
  work.arena_hi = heap_counters.arena_hi.load(std::memory_order_acquire);
  checkmark_spans.clear();
  for_each_span(
      [](MSpan* s, void*) {
        if (s->state.load(std::memory_order_relaxed) == SpanState::kInUse) checkmark_spans.push_back(s);
      },
      nullptr);
  size_t n = checkmark_spans.size();
  // checkmark_bits_of searches the table by address: for_each_span walks
  // the arenas and their pages in address order, so it is sorted already.
  for (size_t i = 1; i < n; i++) {
    if (checkmark_spans[i - 1]->startAddr >= checkmark_spans[i]->startAddr) {
      throw_fatal("gccheckmark: spans not in address order");
    }
  }
  checkmarks.bytes = (n * kSpanBitmapBytes + 4095) & ~size_t(4095);
  if (checkmarks.bytes == 0) return;
  void* m = mmap(nullptr, checkmarks.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw_fatal("gccheckmark: out of memory for the check bits");
  checkmarks.bits = static_cast<uint8_t*>(m);
  CheckmarkState st;
  for (int i = 0; i < ndata_segments; i++) {
    checkmark_block(&st, data_segments[i].lo, data_segments[i].hi, false, "a global", data_segments[i].lo);
  }
  checkmark_drain(&st);
  for (uint32_t which = 0; which < kSpecialRootJobs; which++) {
    struct Arg {
      CheckmarkState* st;
      uint32_t which;
    } arg{&st, which};
    for_each_special_root(
        which,
        [](uintptr_t w, void* a) {
          auto* x = static_cast<Arg*>(a);
          checkmark_shade(x->st, w, true, x->which == 0 ? "an rt::Root" : "a finalizable channel", w, 0);
        },
        &arg);
    checkmark_drain(&st);
  }
  size_t ng = allglen.load(std::memory_order_acquire);
  for (size_t i = 0; i < ng; i++) {
    G* gp = allgs[i];
    uint32_t s = readgstatus(gp);
    if (s == kGdead || s == kGidle || (is_mark_worker(gp) && gp != self)) continue;
    uintptr_t lo, hi;
    closure_range(gp, &lo, &hi);
    if (lo != 0) checkmark_block(&st, lo, hi, false, "a closure", lo);
    checkmark_shade(&st, closure_object(gp), false, "a closure", 0, 0);
    const uintptr_t* regs;
    if (stack_range(gp, s, self, self_sp, &lo, &hi, &regs)) {
      if (regs != nullptr) {
        for (int r = 0; r < 6; r++) checkmark_shade(&st, regs[r], false, "a register", 0, 0);
      }
      checkmark_block(&st, lo, hi, false, "a stack", lo);
    }
    checkmark_drain(&st);
  }
  munmap(checkmarks.bits, checkmarks.bytes);
  checkmarks.bits = nullptr;
}

}  // namespace rt::internal

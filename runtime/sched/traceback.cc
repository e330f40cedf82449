// Fatal errors, panics and the goroutine dump (the printing half of Go's
// panic.go and traceback.go).
//
// Output. Everything goes through a small fixed buffer to write(2): no
// stdio locks, usable from a signal handler and while runtime locks are
// held. Each frame prints as Go prints it:
//
//   rt::internal::chansend(...)
//   	runtime/chan/chan.cc:131 +0x5d
//
// one pair of lines per function, inlined ones included (they carry no
// +offset, as in Go).
//
// Walking stacks. The failing stack (the one die() runs on) is unwound with
// the DWARF call-frame information (_Unwind_Backtrace), which also crosses
// a signal frame and frames of libraries built without frame pointers
// (libstdc++'s terminate and throw machinery). Parked goroutines are walked
// through their frame-pointer chain, starting from the context mcall saved
// (every runtime and user object is built with -fno-omit-frame-pointer);
// the chain must stay inside the goroutine's stack.
//
// Where the failing stack starts. The frames of the reporting code are
// left out, so the first frame is where the failure happened:
//   - throw_fatal, fatal_user: from their caller;
//   - a fatal signal: from the interrupted pc;
//   - an exception that escaped a goroutine: from the frame that threw it.
//     Nothing catches it, so the unwinder's search phase reaches the end of
//     the goroutine's stack (rt_gostart's CFI ends the chain), __cxa_throw
//     calls std::terminate before any frame is unwound, and our terminate
//     handler runs on top of the thrower's intact frames.
//
// Symbols. Program counters are turned into function, file and line by
// GCC's libbacktrace (libgcc-12-dev) from the executable's DWARF line
// tables, with the ELF symbol table and then dladdr as fall-backs, and
// names are demangled by libiberty's cplus_demangle_v3_callback. Neither
// calls malloc (libbacktrace is built with BACKTRACE_USES_MALLOC 0 and gets
// its memory with mmap; the demangler works on the stack), so a failure
// inside malloc, with its lock held, can still be reported; nor does any of
// it take a runtime lock. One limit comes from GCC 12 under LTO: the first
// instructions of a function's .cold fragment (where a conditional throw
// goes) sometimes have no line-table row, and then read as the line before
// them, in another function; the function name (from the symbol table) is
// still right. The libbacktrace state is created by the first
// (only) die() and never freed; reading the debug information costs a few
// milliseconds then, and nothing before. What the fatal path does call:
// open/mmap/close on the executable and the shared objects, and
// dl_iterate_phdr/dladdr, which take the dynamic loader's lock (a fault
// inside the loader itself would hang here instead of printing).
#include <backtrace.h>
#include <dlfcn.h>
#include <unistd.h>
#include <unwind.h>

// libiberty.h declares basename() differently from glibc's string.h.
#define HAVE_DECL_BASENAME 1
#include <libiberty/demangle.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <typeinfo>

#include "rt/panic.h"
#include "runtime/sched/runtime2.h"
#include "runtime/sched/signals.h"

namespace rt::internal {

namespace {

class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) {}
  ~Writer() { flush(); }
  void printf(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (size_t(n) >= sizeof tmp) n = sizeof tmp - 1;
    put(tmp, size_t(n));
  }
  void put(const char* s, size_t n) {
    if (len_ + n > sizeof buf_) flush();
    if (n > sizeof buf_) {
      write_all(s, n);
      return;
    }
    memcpy(buf_ + len_, s, n);
    len_ += n;
  }
  void flush() {
    write_all(buf_, len_);
    len_ = 0;
  }

 private:
  void write_all(const char* s, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, s, n);
      if (w <= 0) return;
      s += w;
      n -= size_t(w);
    }
  }
  int fd_;
  char buf_[4096];
  size_t len_ = 0;
};

const char* status_name(uint32_t s) {
  switch (s) {
    case kGidle: return "idle";
    case kGrunnable: return "runnable";
    case kGrunning: return "running";
    case kGsyscall: return "syscall";
    case kGwaiting: return "waiting";
    case kGdead: return "dead";
    case kGpreempted: return "preempted";
    default: return "unknown";
  }
}

// ---- Symbolisation -----------------------------------------------------------

// One program counter of a stack. A return address points after its call
// instruction, which is what must be looked up (it may be the last
// instruction of the function, or of an inlined body); an interrupted pc
// (a signal) is looked up as it is.
struct Frame {
  uintptr_t pc;
  bool is_return_address;
  uintptr_t lookup_pc() const { return is_return_address ? pc - 1 : pc; }
};

// Go prints 100 frames of a goroutine at most.
constexpr int kMaxFrames = 100;
// Functions inlined at one pc, innermost first, plus the one they are in.
constexpr int kMaxInlined = 16;

backtrace_state* bt_state = nullptr;

void ignore_bt_error(void*, const char*, int) {}

backtrace_state* symbolizer() {
  // Only the first die() gets here (see `dying`), so no locking: threaded=0.
  if (bt_state == nullptr) bt_state = backtrace_create_state(nullptr, 0, ignore_bt_error, nullptr);
  return bt_state;
}

struct SourceFrame {
  const char* function;  // as in DWARF: usually mangled; may be null
  const char* file;      // may be null
  int line;
};

struct PcInfo {
  SourceFrame frames[kMaxInlined];
  int n = 0;
};

int collect_pcinfo(void* data, uintptr_t, const char* file, int line, const char* function) {
  auto* info = static_cast<PcInfo*>(data);
  if (info->n == kMaxInlined) return 1;
  info->frames[info->n++] = SourceFrame{function, file, line};
  return 0;
}

struct SymInfo {
  const char* name = nullptr;
  uintptr_t value = 0;
};

void collect_syminfo(void* data, uintptr_t, const char* name, uintptr_t value, uintptr_t) {
  auto* s = static_cast<SymInfo*>(data);
  s->name = name;
  s->value = value;
}

void demangled_piece(const char* s, size_t n, void* w) { static_cast<Writer*>(w)->put(s, n); }

// Prints a function name as Go does: demangled, without the parameter
// list, followed by "(...)".
void print_function_name(Writer& w, const char* name) {
  if (name == nullptr) {
    w.printf("?");
  } else if (cplus_demangle_v3_callback(name, DMGL_ANSI | DMGL_RET_DROP, demangled_piece, &w) == 0) {
    w.put(name, strlen(name));
  }
  w.printf("(...)\n");
}

void print_frame(Writer& w, const Frame& f) {
  backtrace_state* st = symbolizer();
  uintptr_t pc = f.lookup_pc();
  PcInfo info;
  SymInfo sym;
  if (st != nullptr) {
    backtrace_pcinfo(st, pc, collect_pcinfo, ignore_bt_error, &info);
    backtrace_syminfo(st, pc, collect_syminfo, ignore_bt_error, &sym);
  }
  Dl_info dl{};
  bool have_dl = dladdr(reinterpret_cast<void*>(pc), &dl) != 0;
  if (sym.name == nullptr && have_dl && dl.dli_sname != nullptr) {
    sym.name = dl.dli_sname;
    sym.value = reinterpret_cast<uintptr_t>(dl.dli_saddr);
  }
  // Inlined functions first; the outermost one carries the offset.
  for (int i = 0; i + 1 < info.n; i++) {
    print_function_name(w, info.frames[i].function);
    w.printf("\t%s:%d\n", info.frames[i].file != nullptr ? info.frames[i].file : "?", info.frames[i].line);
  }
  // The outermost function is named from the symbol table when it can be:
  // DWARF names functions with internal linkage (static, lambdas) without
  // their scope, the symbol table with it.
  const SourceFrame* outer = info.n > 0 ? &info.frames[info.n - 1] : nullptr;
  print_function_name(w, sym.name != nullptr ? sym.name : outer != nullptr ? outer->function : nullptr);
  if (outer != nullptr && outer->file != nullptr) {
    w.printf("\t%s:%d", outer->file, outer->line);
  } else if (have_dl && dl.dli_fname != nullptr) {
    // No line table (a system library): name the object instead.
    w.printf("\t%s", dl.dli_fname);
  } else {
    w.printf("\t?:0");
  }
  if (sym.name != nullptr) {
    w.printf(" +0x%lx\n", static_cast<unsigned long>(f.pc - sym.value));
  } else {
    w.printf(" pc=0x%lx\n", static_cast<unsigned long>(f.pc));
  }
}

struct Frames {
  Frame pcs[kMaxFrames];
  int n = 0;
  bool truncated = false;
  void add(Frame f) {
    if (n == kMaxFrames) {
      truncated = true;
      return;
    }
    pcs[n++] = f;
  }
};

void print_frames(Writer& w, const Frames& frames) {
  for (int i = 0; i < frames.n; i++) print_frame(w, frames.pcs[i]);
  if (frames.truncated) w.printf("...additional frames elided...\n");
}

// ---- The failing stack (DWARF unwinding) ------------------------------------

// Which frame of the failing stack the dump starts at.
struct TraceStart {
  enum Kind {
    kFromCaller,  // the first frame whose stack pointer is above `sp`
    kFromPc,      // the frame interrupted at `pc` (a signal)
    kAfterThrow,  // the frame that called __cxa_throw / __cxa_rethrow
  } kind;
  uintptr_t sp = 0;
  uintptr_t pc = 0;
};

struct UnwindState {
  TraceStart start;
  bool started = false;
  Frames all;      // every frame, in case the start is never seen
  Frames printed;  // frames from the start on
};

// By name, not by address: under AddressSanitizer &__cxa_throw is ASan's
// interceptor, while the frame on the stack is libstdc++'s __cxa_throw.
bool is_throw_function(uintptr_t pc) {
  Dl_info dl;
  if (dladdr(reinterpret_cast<void*>(pc), &dl) == 0 || dl.dli_sname == nullptr) return false;
  for (const char* name : {"__cxa_throw", "__cxa_rethrow", "_ZSt17rethrow_exceptionNSt15__exception_ptr13exception_ptrE"}) {
    if (strcmp(dl.dli_sname, name) == 0) return true;
  }
  return false;
}

_Unwind_Reason_Code unwind_one(_Unwind_Context* ctx, void* arg) {
  auto* u = static_cast<UnwindState*>(arg);
  int before_insn = 0;
  uintptr_t ip = _Unwind_GetIPInfo(ctx, &before_insn);
  if (ip == 0) return _URC_END_OF_STACK;
  Frame f{ip, before_insn == 0};
  u->all.add(f);
  if (!u->started) {
    switch (u->start.kind) {
      case TraceStart::kFromCaller:
        // In a backtrace callback the "CFA" is that of the frame below
        // (the callee): this frame's stack pointer at its call.
        u->started = _Unwind_GetCFA(ctx) > u->start.sp;
        break;
      case TraceStart::kFromPc:
        u->started = ip == u->start.pc;
        break;
      case TraceStart::kAfterThrow:
        if (is_throw_function(f.lookup_pc())) {
          u->started = true;
          return _URC_NO_REASON;  // the thrower is the next frame
        }
        break;
    }
  }
  if (u->started) u->printed.add(f);
  return _URC_NO_REASON;
}

// Prints the stack die() runs on, from `start`.
__attribute__((noinline)) void print_failing_stack(Writer& w, const TraceStart& start) {
  // The frame arrays are large; keep them off the (possibly small) stack.
  static UnwindState u;
  u.start = start;
  _Unwind_Backtrace(unwind_one, &u);
  // If the start was never seen (a stack the unwinder could not follow),
  // print everything rather than nothing.
  print_frames(w, u.started ? u.printed : u.all);
}

// ---- Parked goroutines (frame-pointer chain) --------------------------------

// The dump reads every goroutine while the other Ms still run. Go's
// startpanic_m calls freezetheworld first, which asks every P to stop but
// waits only briefly, so there too goroutines may still run; rtlab does not
// freeze at all. A goroutine may start or park while it is printed, so
// these reads race by design and are not for ThreadSanitizer to judge
// (dump_one and print_parked_stack).
__attribute__((no_sanitize("thread"))) void print_parked_stack(Writer& w, G* gp) {
  // Saved context: mxcsr/fpcw, r15, r14, r13, r12, rbx, rbp, return pc.
  auto* saved = static_cast<uintptr_t*>(gp->sched_sp);
  static Frames frames;
  frames.n = 0;
  frames.truncated = false;
  frames.add(Frame{saved[7], true});
  uintptr_t fp = saved[6];
  uintptr_t lo = gp->stack.lo;
  uintptr_t hi = gp->stack.hi;
  while (fp >= lo && fp + 16 <= hi && (fp & 7) == 0) {
    auto* frame = reinterpret_cast<uintptr_t*>(fp);
    if (frame[1] == 0) break;
    frames.add(Frame{frame[1], true});
    if (frames.truncated || frame[0] <= fp) break;
    fp = frame[0];
  }
  print_frames(w, frames);
}

// ---- The dump -----------------------------------------------------------------

struct DumpArgs {
  Writer* w;
  const TraceStart* start;
  G* failing;         // the goroutine that failed, printed first
  G* on_stack;        // the goroutine whose stack die() runs on, if any
  G* skip = nullptr;  // already printed
};

__attribute__((no_sanitize("thread"))) void dump_one(G* gp, void* arg) {
  auto* a = static_cast<DumpArgs*>(arg);
  uint32_t s = readgstatus(gp);
  if (gp->issystem || s == kGdead || s == kGidle || gp == a->skip) return;
  Writer& w = *a->w;
  const char* waitreason = gp->waitreason.load();
  const char* reason = s == kGwaiting && waitreason[0] != 0 ? waitreason : status_name(s);
  w.printf("goroutine %lld [%s", static_cast<long long>(gp->goid), reason);
  if (gp->lockedm != nullptr) w.printf(", locked to thread");
  w.printf("]:\n");
  if (gp == a->on_stack) {
    print_failing_stack(w, *a->start);
  } else if ((s == kGwaiting || s == kGrunnable || s == kGpreempted) && gp->stack.lo != 0 &&
             gp->sched_sp != nullptr) {
    print_parked_stack(w, gp);
  } else if (s == kGrunning && gp != a->failing) {
    w.printf("goroutine running on other thread; stack unavailable\n");
  }
  w.printf("\n");
}

std::atomic<int> dying{0};

[[noreturn]] void die(const char* prefix, const char* msg, const TraceStart& start, bool runtime_stack) {
  if (dying.fetch_add(1) != 0) {
    // A second fatal error while reporting the first: report it and stop.
    Writer w(2);
    w.printf("%s%s [while reporting an earlier fatal error]\n", prefix, msg);
    w.flush();
    _exit(2);
  }
  fflush(stdout);
  Writer w(2);
  w.printf("%s%s\n\n", prefix, msg);
  G* gp = getg();
  M* mp = getm();
  bool on_g0 = mp != nullptr && gp == mp->g0;
  DumpArgs a{&w, &start, nullptr, nullptr};
  if (gp != nullptr && !on_g0) {
    a.failing = a.on_stack = gp;
  } else if (mp != nullptr) {
    a.failing = mp->curg;
  }
  if (on_g0 || gp == nullptr) {
    // The runtime's own stack (g0, or a thread the runtime does not know).
    if (runtime_stack) {
      w.printf("runtime stack:\n");
      print_failing_stack(w, start);
      w.printf("\n");
    }
  }
  // The goroutine that failed comes first, as in Go.
  if (a.failing != nullptr) dump_one(a.failing, &a);
  a.skip = a.failing;
  for_each_g(dump_one, &a);
  w.flush();
  _exit(2);
}

}  // namespace

// The dump starts at the caller of the function this is written in: the
// first frame whose stack pointer is above that function's frame pointer.
#define RT_TRACE_FROM_CALLER \
  TraceStart { TraceStart::kFromCaller, reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) }

__attribute__((noinline)) void throw_fatal(const char* msg) { die("fatal error: ", msg, RT_TRACE_FROM_CALLER, true); }

__attribute__((noinline)) void fatal_user(const char* msg) { die("fatal error: ", msg, RT_TRACE_FROM_CALLER, false); }

__attribute__((noinline)) void throw_fatal_signal(const char* msg, uintptr_t pc) {
  die("fatal error: ", msg, TraceStart{TraceStart::kFromPc, 0, pc}, true);
}

__attribute__((noinline)) void report_stack_overflow(G* gp, uintptr_t fault_pc) {
  char buf[160];
  snprintf(buf, sizeof buf, "runtime: goroutine %lld stack exceeds %zu-byte limit\n", static_cast<long long>(gp->goid),
           gp->stack.size());
  ssize_t ignored = ::write(2, buf, strlen(buf));
  (void)ignored;
  die("fatal error: ", "stack overflow",
      fault_pc != 0 ? TraceStart{TraceStart::kFromPc, 0, fault_pc} : RT_TRACE_FROM_CALLER, true);
}

// An exception escaped a goroutine: Go's unrecovered panic.
[[noreturn]] void on_terminate() {
  char msg[1024] = "unknown exception";
  if (std::exception_ptr ep = std::current_exception()) {
    try {
      std::rethrow_exception(ep);
    } catch (const rt::Panic& p) {
      snprintf(msg, sizeof msg, "%s", p.what());
    } catch (const std::exception& e) {
      const char* type = typeid(e).name();
      // The type name, demangled into msg itself (no malloc).
      struct Out {
        char* buf;
        size_t cap, len;
      } out{msg, sizeof msg - 1, 0};
      auto append = [](const char* s, size_t n, void* o) {
        auto* out = static_cast<Out*>(o);
        if (n > out->cap - out->len) n = out->cap - out->len;
        memcpy(out->buf + out->len, s, n);
        out->len += n;
      };
      if (cplus_demangle_v3_callback(type, DMGL_ANSI | DMGL_TYPES, append, &out) == 0) append(type, strlen(type), &out);
      msg[out.len] = 0;
      snprintf(msg + out.len, sizeof msg - out.len, ": %s", e.what());
    } catch (...) {
    }
  } else {
    snprintf(msg, sizeof msg, "std::terminate called");
  }
  die("panic: ", msg, TraceStart{TraceStart::kAfterThrow}, true);
}

}  // namespace rt::internal

// Fatal errors, panics and the goroutine dump.
//
// Output goes through a small fixed buffer to write(2): no malloc, no
// stdio locks, usable from a signal handler and while runtime locks are
// held. Goroutine stacks are walked through the frame-pointer chain (every
// runtime and user object is built with -fno-omit-frame-pointer) and
// symbolised with dladdr, which sees the executable's symbols because
// binaries link with -rdynamic.
#include <cxxabi.h>
#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
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

void print_pc(Writer& w, uintptr_t pc) {
  Dl_info info;
  // pc is a return address: look up the call instruction before it.
  if (dladdr(reinterpret_cast<void*>(pc - 1), &info) != 0 && info.dli_sname != nullptr) {
    int status = 0;
    char* name = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    w.printf("%s\n\t+0x%lx pc=0x%lx\n", status == 0 && name != nullptr ? name : info.dli_sname,
             static_cast<unsigned long>(pc - reinterpret_cast<uintptr_t>(info.dli_saddr)),
             static_cast<unsigned long>(pc));
    free(name);
  } else {
    w.printf("?()\n\tpc=0x%lx\n", static_cast<unsigned long>(pc));
  }
}

// Walks a frame-pointer chain that must stay inside [lo, hi).
void print_frames(Writer& w, uintptr_t fp, uintptr_t lo, uintptr_t hi) {
  for (int depth = 0; depth < 48; depth++) {
    if (fp < lo || fp + 16 > hi || (fp & 7) != 0) return;
    auto* frame = reinterpret_cast<uintptr_t*>(fp);
    uintptr_t pc = frame[1];
    if (pc == 0) return;
    print_pc(w, pc);
    if (frame[0] <= fp) return;
    fp = frame[0];
  }
}

struct DumpArgs {
  Writer* w;
  G* current;
  G* skip = nullptr;
};

void dump_one(G* gp, void* arg) {
  auto* a = static_cast<DumpArgs*>(arg);
  uint32_t s = gp->atomicstatus.load();
  if (gp->issystem || s == kGdead || s == kGidle || gp == a->skip) return;
  Writer& w = *a->w;
  const char* reason = s == kGwaiting && gp->waitreason[0] != 0 ? gp->waitreason : status_name(s);
  if (gp == a->current) reason = "running";
  w.printf("goroutine %lld [%s", static_cast<long long>(gp->goid), reason);
  if (gp->lockedm != nullptr) w.printf(", locked to thread");
  w.printf("]:\n");
  if (gp == a->current) {
    print_frames(w, reinterpret_cast<uintptr_t>(__builtin_frame_address(0)), gp->stack.lo ? gp->stack.lo : 0,
                 gp->stack.hi ? gp->stack.hi : ~uintptr_t(0));
  } else if ((s == kGwaiting || s == kGrunnable || s == kGpreempted) && gp->stack.lo != 0 &&
             gp->sched_sp != nullptr) {
    // Saved frame: mxcsr/fpcw, r15, r14, r13, r12, rbx, rbp, return pc.
    auto* saved = static_cast<uintptr_t*>(gp->sched_sp);
    print_pc(w, saved[7]);
    print_frames(w, saved[6], gp->stack.lo, gp->stack.hi);
  }
  w.printf("\n");
}

std::atomic<int> dying{0};

[[noreturn]] void die(const char* prefix, const char* msg) {
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
  DumpArgs a{&w, gp != nullptr && mp != nullptr && gp != mp->g0 ? gp : nullptr};
  if (a.current == nullptr && mp != nullptr && mp->curg != nullptr) a.current = mp->curg;
  if (gp != nullptr && mp != nullptr && gp == mp->g0) {
    w.printf("runtime stack:\n");
    print_frames(w, reinterpret_cast<uintptr_t>(__builtin_frame_address(0)), mp->g0_lo, ~uintptr_t(0));
    w.printf("\n");
  }
  // The goroutine that failed comes first, as in Go.
  if (a.current != nullptr) dump_one(a.current, &a);
  a.skip = a.current;
  for_each_g(dump_one, &a);
  w.flush();
  _exit(2);
}

}  // namespace

void throw_fatal(const char* msg) { die("fatal error: ", msg); }
void fatal_user(const char* msg) { die("fatal error: ", msg); }

[[noreturn]] void report_stack_overflow(G* gp) {
  char buf[160];
  snprintf(buf, sizeof buf, "runtime: goroutine %lld stack exceeds %zu-byte limit\n", static_cast<long long>(gp->goid),
           gp->stack.size());
  ssize_t ignored = ::write(2, buf, strlen(buf));
  (void)ignored;
  die("fatal error: ", "stack overflow");
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
      int status = 0;
      char* type = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
      snprintf(msg, sizeof msg, "%s: %s", status == 0 && type != nullptr ? type : typeid(e).name(), e.what());
      free(type);
    } catch (...) {
    }
  } else {
    snprintf(msg, sizeof msg, "std::terminate called");
  }
  die("panic: ", msg);
}

}  // namespace rt::internal

// rt::net: TCP sockets on the netpoller (Go's net.netFD over
// internal/poll.FD, fd_unix.go and fd_poll_runtime.go).
//
// A NetFD is one non-blocking, close-on-exec socket registered with the
// poller (its PollDesc). Every operation follows Go's pattern: try the
// system call; on EAGAIN park in poll_wait until the descriptor is ready
// (edge-triggered, so the call is retried until it reports EAGAIN again
// before the next wait), the deadline passes or the socket closes; EINTR
// retries. Reads and writes are serialised per direction by an rt::Mutex
// (the PollDesc holds one waiter per direction).
//
// Closing (Go's fdMutex reference count, simplified). `state` counts the
// operations in progress (refs, in units of 2) and has bit 0 set once
// close began. Each operation takes a reference, failing with kClosed if
// closing is set. close sets the bit, calls poll_unblock (every parked
// goroutine wakes with kPollClosing and returns kClosed), then waits on
// close_sema until the last reference is dropped; the drop that leaves
// exactly "closing, no refs" releases it. Only then are the PollDesc and
// the descriptor released, so no operation can touch a reused descriptor.
//
// Memory. A NetFD and its shared_ptr control block are one object on the
// runtime heap (allocate_shared with HeapAllocator: mallocgc, returned by
// free_object when the last Conn/Listener handle goes), as Go's netFD is a
// heap object; rt::net never calls malloc for a socket. The handles are
// reference-counted and live wherever the program keeps them, malloc
// memory and std containers included, where the collector cannot see: so
// each such object is a GC root of its own (a RootNode at its end names
// its start) from allocation until free_object, and its references to
// other heap objects stay marked too.
#include "rt/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "rt/gc.h"
#include "rt/sync.h"
#include "runtime/mem/malloc.h"
#include "runtime/netpoll/netpoll.h"

namespace rt::net {

namespace internal {

using rt::internal::PollDesc;

struct NetFD {
  int sysfd = -1;
  PollDesc* pd = nullptr;
  std::atomic<uint32_t> state{0};  // refs * 2 | closing
  std::atomic<uint32_t> close_sema{0};
  rt::Mutex rmu;
  rt::Mutex wmu;
  bool read_drained = false;  // the last read was short (by rmu)
  sockaddr_storage laddr{};
  sockaddr_storage raddr{};

  ~NetFD();
  bool incref();
  void decref();
  Error close();
};

bool NetFD::incref() {
  uint32_t s = state.load();
  for (;;) {
    if (s & 1) return false;
    if (state.compare_exchange_weak(s, s + 2)) return true;
  }
}

void NetFD::decref() {
  if (state.fetch_sub(2) == 3) semrelease(&close_sema);
}

Error NetFD::close() {
  uint32_t s = state.load();
  for (;;) {
    if (s & 1) return Error(Errc::kClosed, 0);
    if (state.compare_exchange_weak(s, s | 1)) break;
  }
  rt::internal::poll_unblock(pd);
  if (s != 0) semacquire(&close_sema);  // s: the references at the moment closing was set
  rt::internal::poll_close(pd);
  pd = nullptr;
  int r = ::close(sysfd);
  sysfd = -1;
  return r == 0 || errno == EINTR ? Error() : Error::from_errno(errno);
}

NetFD::~NetFD() {
  if ((state.load() & 1) == 0) close();
}

}  // namespace internal

namespace {

using internal::NetFD;
using rt::internal::kPollClosing;
using rt::internal::kPollError;
using rt::internal::kPollOK;
using rt::internal::kPollTimeout;
using rt::internal::poll_fault;
using rt::internal::PollCall;
using rt::internal::PollDesc;

Error poll_error(int r, int fd) {
  switch (r) {
    case kPollClosing:
      return Error(Errc::kClosed, 0);
    case kPollTimeout:
      return Error(Errc::kTimeout, 0);
    case kPollError: {
      int soerr = 0;
      socklen_t len = sizeof soerr;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
      return Error::from_errno(soerr != 0 ? soerr : EIO);
    }
    default:
      return Error();
  }
}

// Takes a reference for one operation; the guard drops it.
class OpRef {
 public:
  explicit OpRef(NetFD* fd) : fd_(fd != nullptr && fd->incref() ? fd : nullptr) {}
  ~OpRef() {
    if (fd_ != nullptr) fd_->decref();
  }
  bool ok() const { return fd_ != nullptr; }

 private:
  NetFD* fd_;
};

// A system call through the test fault hook: an injected errno fails it
// before the kernel sees it (nothing is consumed). An injected EAGAIN
// stands for a spurious readiness report followed by EAGAIN from the
// kernel, as epoll can give: the direction is marked ready (an edge
// arrived), so the wait that follows returns at once and the call is
// retried, exactly as after a real spurious wake-up. (A bare EAGAIN with
// the data already there would never see another edge.) connect has no
// PollDesc yet: there EAGAIN is the kernel's own error (no free port).
template <class F>
long fault_call(PollCall call, PollDesc* pd, int mode, F&& f) {
  if (int e = poll_fault(call)) {
    if (e == EAGAIN && pd != nullptr) rt::internal::poll_mark_ready(pd, mode);
    errno = e;
    return -1;
  }
  return f();
}

std::string format_addr(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "";
  char out[INET6_ADDRSTRLEN + 16];
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    snprintf(out, sizeof out, "%s:%u", host, ntohs(a->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    snprintf(out, sizeof out, "[%s]:%u", host, ntohs(a->sin6_port));
  } else {
    return "";
  }
  return out;
}

// Parses "host:port" for network into *ss. For listen, an empty host
// means every address; for dial, the loopback.
Error parse_addr(std::string_view network, std::string_view address, bool for_listen, sockaddr_storage* ss,
                 socklen_t* len) {
  int want = 0;  // 0: either family
  if (network == "tcp4")
    want = AF_INET;
  else if (network == "tcp6")
    want = AF_INET6;
  else if (network != "tcp")
    return Error(Errc::kInvalidAddr, 0, "unknown network");
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return Error(Errc::kInvalidAddr, 0, "missing port in address");
  std::string_view host = address.substr(0, colon);
  std::string_view port = address.substr(colon + 1);
  bool bracketed = !host.empty() && host.front() == '[';
  if (bracketed) {
    if (host.back() != ']') return Error(Errc::kInvalidAddr, 0, "missing ']' in address");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return Error(Errc::kInvalidAddr, 0, "too many colons in address");
  }
  if (port.empty() || port.size() > 5) return Error(Errc::kInvalidAddr, 0, "invalid port");
  unsigned p = 0;
  for (char ch : port) {
    if (ch < '0' || ch > '9') return Error(Errc::kInvalidAddr, 0, "unknown port");
    p = p * 10 + unsigned(ch - '0');
  }
  if (p > 65535) return Error(Errc::kInvalidAddr, 0, "invalid port");
  std::string h(host);
  if (h == "localhost") h = want == AF_INET6 ? "::1" : "127.0.0.1";
  if (h.empty()) {
    if (for_listen)
      h = want == AF_INET6 ? "::" : "0.0.0.0";
    else
      h = want == AF_INET6 ? "::1" : "127.0.0.1";
  }
  *ss = sockaddr_storage{};
  auto* a4 = reinterpret_cast<sockaddr_in*>(ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (!bracketed && want != AF_INET6 && inet_pton(AF_INET, h.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(uint16_t(p));
    *len = sizeof(sockaddr_in);
    return Error();
  }
  if (want != AF_INET && inet_pton(AF_INET6, h.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(uint16_t(p));
    *len = sizeof(sockaddr_in6);
    return Error();
  }
  return Error(Errc::kInvalidAddr, 0, "no suitable address (numeric hosts and localhost only)");
}

// The allocator of allocate_shared<NetFD>: the runtime heap, scanned (the
// control block and the NetFD hold pointers), each allocation its own root
// until it is freed (see "Memory" above).
template <class T>
struct HeapAllocator {
  using value_type = T;
  HeapAllocator() = default;
  template <class U>
  explicit HeapAllocator(const HeapAllocator<U>&) {}
  T* allocate(size_t n) {
    void* p = rt::internal::mallocgc(root_offset(n) + sizeof(SelfRoot), true);
    auto* r = new (static_cast<char*>(p) + root_offset(n)) SelfRoot{{nullptr, nullptr, nullptr}, p};
    r->node.slot = &r->base;
    rt::internal::root_register(&r->node);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    rt::internal::root_unregister(&reinterpret_cast<SelfRoot*>(reinterpret_cast<char*>(p) + root_offset(n))->node);
    rt::internal::free_object(p);
  }
  friend bool operator==(const HeapAllocator&, const HeapAllocator&) { return true; }

 private:
  struct SelfRoot {
    rt::internal::RootNode node;
    void* base;
  };
  static size_t root_offset(size_t n) {
    return (n * sizeof(T) + alignof(SelfRoot) - 1) / alignof(SelfRoot) * alignof(SelfRoot);
  }
};

// Wraps an open non-blocking socket; closes it on failure.
std::shared_ptr<NetFD> new_fd(int s, Error* err) {
  int e = 0;
  PollDesc* pd = rt::internal::poll_open(s, &e);
  if (pd == nullptr) {
    ::close(s);
    *err = Error::from_errno(e);
    return nullptr;
  }
  auto fd = std::allocate_shared<NetFD>(HeapAllocator<NetFD>());
  fd->sysfd = s;
  fd->pd = pd;
  socklen_t len = sizeof fd->laddr;
  getsockname(s, reinterpret_cast<sockaddr*>(&fd->laddr), &len);
  return fd;
}

}  // namespace

// ---- Error ------------------------------------------------------------------

Error Error::from_errno(int e) {
  switch (e) {
    case ECONNRESET:
      return Error(Errc::kReset, e);
    case ECONNREFUSED:
      return Error(Errc::kRefused, e);
    case EADDRINUSE:
      return Error(Errc::kAddrInUse, e);
    case EPIPE:
      return Error(Errc::kBrokenPipe, e);
    default:
      return Error(Errc::kSyscall, e);
  }
}

std::string Error::message() const {
  switch (code_) {
    case Errc::kOk:
      return "";
    case Errc::kTimeout:
      return "i/o timeout";
    case Errc::kClosed:
      return "use of closed network connection";
    case Errc::kEOF:
      return "EOF";
    case Errc::kInvalidAddr:
      return detail_ != nullptr ? detail_ : "invalid address";
    default: {
      // Go's syscall.Errno texts are the C library's, starting lower case.
      std::string s = strerror(errno_);
      if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z' && !(s.size() > 1 && s[1] >= 'A' && s[1] <= 'Z')) s[0] = char(s[0] - 'A' + 'a');
      return s;
    }
  }
}

// ---- Conn ---------------------------------------------------------------------

IOResult Conn::read(void* buf, size_t len) {
  NetFD* fd = fd_.get();
  OpRef ref(fd);
  if (!ref.ok()) return {0, Error(Errc::kClosed, 0)};
  std::lock_guard<rt::Mutex> g(fd->rmu);
  if (len == 0) {
    if (int r = rt::internal::poll_reset(fd->pd, 'r'); r != kPollOK) return {0, poll_error(r, fd->sysfd)};
    return {0, Error()};
  }
  // A short read left the socket empty, and data that came after it came
  // with an edge (epoll is edge-triggered, and every arrival after the
  // poller took the last event makes a new one). With no edge since, the
  // read would fail with EAGAIN: wait for the edge first (Go always tries
  // the read first; in a request-response exchange that is one failed
  // system call per message). With an edge pending, reset and read.
  if (fd->read_drained && !rt::internal::poll_edge_pending(fd->pd, 'r')) {
    if (int r = rt::internal::poll_wait(fd->pd, 'r'); r != kPollOK) return {0, poll_error(r, fd->sysfd)};
  } else if (int r = rt::internal::poll_reset(fd->pd, 'r'); r != kPollOK) {
    return {0, poll_error(r, fd->sysfd)};
  }
  for (;;) {
    long n = fault_call(PollCall::kRead, fd->pd, 'r', [&] { return long(::read(fd->sysfd, buf, len)); });
    fd->read_drained = n > 0 && size_t(n) < len;
    if (n > 0) return {size_t(n), Error()};
    if (n == 0) return {0, Error(Errc::kEOF, 0)};
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return {0, Error::from_errno(errno)};
    if (int r = rt::internal::poll_wait(fd->pd, 'r'); r != kPollOK) return {0, poll_error(r, fd->sysfd)};
  }
}

IOResult Conn::write(const void* buf, size_t len) {
  NetFD* fd = fd_.get();
  OpRef ref(fd);
  if (!ref.ok()) return {0, Error(Errc::kClosed, 0)};
  std::lock_guard<rt::Mutex> g(fd->wmu);
  if (int r = rt::internal::poll_reset(fd->pd, 'w'); r != kPollOK) return {0, poll_error(r, fd->sysfd)};
  size_t done = 0;
  const char* p = static_cast<const char*>(buf);
  while (done < len) {
    long n = fault_call(PollCall::kWrite, fd->pd, 'w',
                        [&] { return long(::send(fd->sysfd, p + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT)); });
    if (n >= 0) {
      done += size_t(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return {done, Error::from_errno(errno)};
    if (int r = rt::internal::poll_wait(fd->pd, 'w'); r != kPollOK) return {done, poll_error(r, fd->sysfd)};
  }
  return {done, Error()};
}

Error Conn::close() {
  if (fd_ == nullptr) return Error(Errc::kClosed, 0);
  return fd_->close();
}

static Error shutdown_fd(NetFD* fd, int how) {
  OpRef ref(fd);
  if (!ref.ok()) return Error(Errc::kClosed, 0);
  if (::shutdown(fd->sysfd, how) != 0) return Error::from_errno(errno);
  return Error();
}

Error Conn::close_read() { return shutdown_fd(fd_.get(), SHUT_RD); }
Error Conn::close_write() { return shutdown_fd(fd_.get(), SHUT_WR); }

static Error set_deadline_fd(NetFD* fd, int64_t t, int mode) {
  OpRef ref(fd);
  if (!ref.ok()) return Error(Errc::kClosed, 0);
  rt::internal::poll_set_deadline(fd->pd, t, mode);
  return Error();
}

Error Conn::set_deadline(int64_t t) { return set_deadline_fd(fd_.get(), t, 'r' + 'w'); }
Error Conn::set_read_deadline(int64_t t) { return set_deadline_fd(fd_.get(), t, 'r'); }
Error Conn::set_write_deadline(int64_t t) { return set_deadline_fd(fd_.get(), t, 'w'); }

std::string Conn::local_addr() const { return fd_ ? format_addr(fd_->laddr) : ""; }
std::string Conn::remote_addr() const { return fd_ ? format_addr(fd_->raddr) : ""; }
int Conn::sysfd() const { return fd_ ? fd_->sysfd : -1; }

// ---- Listener -------------------------------------------------------------------

std::pair<Conn, Error> Listener::accept() {
  NetFD* fd = fd_.get();
  OpRef ref(fd);
  if (!ref.ok()) return {Conn(), Error(Errc::kClosed, 0)};
  std::lock_guard<rt::Mutex> g(fd->rmu);
  if (int r = rt::internal::poll_reset(fd->pd, 'r'); r != kPollOK) return {Conn(), poll_error(r, fd->sysfd)};
  for (;;) {
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    long s = fault_call(PollCall::kAccept, fd->pd, 'r', [&] {
      return long(accept4(fd->sysfd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC));
    });
    if (s >= 0) {
      int one = 1;
      setsockopt(int(s), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      Error err;
      std::shared_ptr<NetFD> c = new_fd(int(s), &err);
      if (c == nullptr) return {Conn(), err};
      c->raddr = peer;
      return {Conn(std::move(c)), Error()};
    }
    // A connection reset while queued is not the listener's error.
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN) return {Conn(), Error::from_errno(errno)};
    if (int r = rt::internal::poll_wait(fd->pd, 'r'); r != kPollOK) return {Conn(), poll_error(r, fd->sysfd)};
  }
}

Error Listener::close() {
  if (fd_ == nullptr) return Error(Errc::kClosed, 0);
  return fd_->close();
}

std::string Listener::addr() const { return fd_ ? format_addr(fd_->laddr) : ""; }
int Listener::sysfd() const { return fd_ ? fd_->sysfd : -1; }

// ---- listen and dial --------------------------------------------------------------

// Go's maxListenerBacklog: the kernel's limit, read once.
static int listen_backlog() {
  static int backlog = [] {
    int n = SOMAXCONN;
    if (FILE* f = fopen("/proc/sys/net/core/somaxconn", "re")) {
      if (fscanf(f, "%d", &n) != 1 || n <= 0) n = SOMAXCONN;
      fclose(f);
    }
    return n > 65535 ? 65535 : n;
  }();
  return backlog;
}

std::pair<Listener, Error> listen(std::string_view network, std::string_view address) {
  sockaddr_storage ss;
  socklen_t len;
  if (Error e = parse_addr(network, address, true, &ss, &len)) return {Listener(), e};
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return {Listener(), Error::from_errno(errno)};
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(s, listen_backlog()) != 0) {
    Error e = Error::from_errno(errno);
    ::close(s);
    return {Listener(), e};
  }
  Error err;
  std::shared_ptr<NetFD> fd = new_fd(s, &err);
  if (fd == nullptr) return {Listener(), err};
  return {Listener(std::move(fd)), Error()};
}

std::pair<Conn, Error> dial(std::string_view network, std::string_view address) {
  sockaddr_storage ss;
  socklen_t len;
  if (Error e = parse_addr(network, address, false, &ss, &len)) return {Conn(), e};
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return {Conn(), Error::from_errno(errno)};
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  long r;
  do {
    // After EINTR the connection goes on; connecting again says EALREADY.
    r = fault_call(PollCall::kConnect, nullptr, 'w', [&] { return long(connect(s, reinterpret_cast<sockaddr*>(&ss), len)); });
  } while (r != 0 && errno == EINTR);
  int cerr = r == 0 ? 0 : errno;
  if (cerr != 0 && cerr != EINPROGRESS && cerr != EALREADY && cerr != EISCONN) {
    ::close(s);
    return {Conn(), Error::from_errno(cerr)};
  }
  // Registered after connect (as Go does): epoll_ctl reports the current
  // state, so a connection that completed already is seen at once.
  Error err;
  std::shared_ptr<NetFD> fd = new_fd(s, &err);
  if (fd == nullptr) return {Conn(), err};
  OpRef ref(fd.get());
  while (cerr != 0 && cerr != EISCONN) {
    if (int w = rt::internal::poll_wait(fd->pd, 'w'); w != kPollOK) return {Conn(), poll_error(w, s)};
    socklen_t sl = sizeof cerr;
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &cerr, &sl) != 0) return {Conn(), Error::from_errno(errno)};
    if (cerr == 0) {
      // Writable and no error can also mean not connected yet.
      sockaddr_storage peer;
      socklen_t pl = sizeof peer;
      if (getpeername(s, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) cerr = EINPROGRESS;
    } else if (cerr != EINPROGRESS && cerr != EALREADY && cerr != EINTR && cerr != EISCONN) {
      return {Conn(), Error::from_errno(cerr)};
    }
  }
  socklen_t l2 = sizeof fd->laddr;
  getsockname(s, reinterpret_cast<sockaddr*>(&fd->laddr), &l2);
  fd->raddr = ss;
  return {Conn(std::move(fd)), Error()};
}

}  // namespace rt::net

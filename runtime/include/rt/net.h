// TCP networking on the runtime's netpoller (Go's net package for TCP:
// net.Listen, Listener.Accept, net.Dial, Conn.Read/Write/Close,
// CloseRead/CloseWrite and the deadlines).
//
//   auto [ln, err] = rt::net::listen("tcp", "127.0.0.1:0");   // port 0: any free port
//   rt::go([ln] {
//     for (;;) {
//       auto [c, err] = ln.accept();
//       if (err) return;                                      // closed listener
//       rt::go([c]() mutable {
//         char buf[4096];
//         for (;;) {
//           auto [n, err] = c.read(buf, sizeof buf);
//           if (err) break;                                   // EOF, reset, timeout, closed
//           if (c.write(buf, n).err) break;
//         }
//         c.close();
//       });
//     }
//   });
//   auto [c, err2] = rt::net::dial("tcp", ln.addr());
//
// A goroutine blocked in accept, read, write or dial is parked on the
// descriptor (wait reason "IO wait" in a goroutine dump): it holds no
// thread and no P, and the netpoller makes it runnable when the kernel
// reports the descriptor ready. Descriptors are non-blocking and
// close-on-exec; writes never raise SIGPIPE (a peer that went away is an
// error: "broken pipe" or "connection reset by peer").
//
// Semantics (Go's):
//   - read returns what is there (at least one byte), or an error: EOF
//     when the peer closed its side and everything was read. A read of 0
//     bytes returns 0 at once.
//   - write writes everything or fails; the result's n says how much went.
//   - close wakes every goroutine blocked on the connection or listener,
//     which return "use of closed network connection"; so do later calls.
//     Closing twice returns that error too.
//   - Deadlines are absolute rt::nanotime() instants; 0 clears one. A
//     deadline in the past makes blocked and later calls fail at once with
//     "i/o timeout" (Error::timeout()); setting a new deadline while a call
//     is blocked applies to that call; a deadline that passes after a call
//     returned changes nothing for that call. set_deadline sets both.
//   - accept that fails because the process or system is out of
//     descriptors (EMFILE, ENFILE) returns that error at once.
// Conn and Listener are copyable handles to one shared socket; the socket
// is closed by close() or when the last handle goes away. Concurrent reads
// (or concurrent writes) on one connection are serialised; a read and a
// write may run at the same time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace rt::net {

namespace internal {
struct NetFD;
}

// What went wrong, for callers to compare (Go's sentinel errors and the
// errnos its callers test for).
enum class Errc : int {
  kOk = 0,
  kTimeout,      // "i/o timeout" (os.ErrDeadlineExceeded)
  kClosed,       // "use of closed network connection" (net.ErrClosed)
  kEOF,          // "EOF" (io.EOF)
  kReset,        // "connection reset by peer" (ECONNRESET)
  kRefused,      // "connection refused" (ECONNREFUSED)
  kAddrInUse,    // "address already in use" (EADDRINUSE)
  kBrokenPipe,   // "broken pipe" (EPIPE)
  kInvalidAddr,  // a malformed address or unknown network (net.AddrError)
  kSyscall,      // another system call error; sys_errno() says which
};

class Error {
 public:
  Error() = default;
  Error(Errc code, int sys_errno, const char* detail = nullptr) : code_(code), errno_(sys_errno), detail_(detail) {}
  // An error from a system call's errno (ECONNRESET -> kReset, ...).
  static Error from_errno(int e);

  explicit operator bool() const { return code_ != Errc::kOk; }
  bool operator==(Errc c) const { return code_ == c; }
  Errc code() const { return code_; }
  int sys_errno() const { return errno_; }
  bool timeout() const { return code_ == Errc::kTimeout; }
  // Go's text: "i/o timeout", "use of closed network connection", "EOF",
  // "connection reset by peer", "too many open files", "missing port in
  // address", ...
  std::string message() const;

 private:
  Errc code_ = Errc::kOk;
  int errno_ = 0;
  const char* detail_ = nullptr;  // kInvalidAddr: what is wrong (static text)
};

struct IOResult {
  size_t n = 0;
  Error err;
};

class Conn {
 public:
  Conn() = default;  // not connected: every call returns kClosed
  bool valid() const { return fd_ != nullptr; }

  IOResult read(void* buf, size_t len);
  IOResult write(const void* buf, size_t len);
  Error close();
  Error close_read();   // shutdown(SHUT_RD)
  Error close_write();  // shutdown(SHUT_WR): the peer reads EOF
  Error set_deadline(int64_t t);
  Error set_read_deadline(int64_t t);
  Error set_write_deadline(int64_t t);
  std::string local_addr() const;   // "127.0.0.1:54321", "[::1]:54321"
  std::string remote_addr() const;
  int sysfd() const;  // the descriptor (for setsockopt and tests); -1 if none

 private:
  friend class Listener;
  friend std::pair<Conn, Error> dial(std::string_view network, std::string_view address);
  explicit Conn(std::shared_ptr<internal::NetFD> fd) : fd_(std::move(fd)) {}
  std::shared_ptr<internal::NetFD> fd_;
};

class Listener {
 public:
  Listener() = default;
  bool valid() const { return fd_ != nullptr; }

  std::pair<Conn, Error> accept();
  Error close();
  std::string addr() const;  // the bound address, with the port chosen for port 0
  int sysfd() const;

 private:
  friend std::pair<Listener, Error> listen(std::string_view network, std::string_view address);
  explicit Listener(std::shared_ptr<internal::NetFD> fd) : fd_(std::move(fd)) {}
  std::shared_ptr<internal::NetFD> fd_;
};

// network: "tcp" (IPv4 or IPv6, as the address says), "tcp4" or "tcp6".
// address: "host:port" with a numeric IPv4 host, "[IPv6]:port",
// "localhost:port", or ":port" (every local address for listen, the
// loopback for dial). Port 0 picks a free port.
std::pair<Listener, Error> listen(std::string_view network, std::string_view address);
std::pair<Conn, Error> dial(std::string_view network, std::string_view address);

}  // namespace rt::net

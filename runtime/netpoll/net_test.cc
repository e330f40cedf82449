// rt::net and netpoller conformance tests, derived from Go's
// net/timeout_test.go and net/net_test.go: deadlines (before, during and
// after a blocked call; extended, cleared, in the past), close waking
// blocked calls, resets, refused connections, address errors, concurrent
// use, many connections with checksummed payloads, EINTR/EAGAIN storms
// injected into the poller's system calls, and a storm of real signals on
// every thread. Loopback only; every wait is
// bounded. Built and run once per variant (rt_cc_test).
//
// The machine is two noisy cores: timing checks are lower bounds ("timed
// out no earlier than the deadline") and loose upper bounds that only turn
// a hang into a failure.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "rt/rt.h"
#include "runtime/mem/malloc.h"
#include "runtime/netpoll/netpoll.h"
#include "runtime/testing/rt_test_util.h"

namespace {

using rt::net::Conn;
using rt::net::Errc;
using rt::net::Listener;
using rt::testing::ProcsGuard;
using rt::testing::wait_until;

constexpr int64_t kMs = 1'000'000;

int64_t since(int64_t t0) { return rt::nanotime() - t0; }

Listener must_listen(const char* addr = "127.0.0.1:0") {
  auto [ln, err] = rt::net::listen("tcp", addr);
  EXPECT_FALSE(err) << err.message();
  return ln;
}

// A connected pair: (dialled end, accepted end).
std::pair<Conn, Conn> must_pair(Listener& ln) {
  auto accepted = rt::make_chan<int>(1);
  Conn server;
  rt::go([&, accepted]() mutable {
    auto [c, err] = ln.accept();
    EXPECT_FALSE(err) << err.message();
    server = c;
    accepted.send(1);
  });
  auto [client, err] = rt::net::dial("tcp", ln.addr());
  EXPECT_FALSE(err) << err.message();
  accepted.recv();
  return {client, server};
}

// Starts one read of up to 8 bytes on c in a goroutine; the channel gets
// what it read, or its error's text.
rt::Chan<std::string> read_in_background(Conn c) {
  auto done = rt::make_chan<std::string>(1);
  rt::go([c, done]() mutable {
    char b[8];
    auto r = c.read(b, sizeof b);
    done.send(r.err ? r.err.message() : std::string(b, r.n));
  });
  return done;
}

// ---- Basics -------------------------------------------------------------------

TEST(Net, ListenPicksAPortAndEchoes) {
  for (const char* a : {"127.0.0.1:0", "[::1]:0", "localhost:0"}) {
    Listener ln = must_listen(a);
    std::string addr = ln.addr();
    EXPECT_EQ(addr.substr(addr.rfind(':') + 1) == "0", false) << addr;
    auto [c, s] = must_pair(ln);
    EXPECT_EQ(c.remote_addr(), addr);
    EXPECT_EQ(s.local_addr(), addr);
    EXPECT_EQ(s.remote_addr(), c.local_addr());
    ASSERT_FALSE(c.write("hello", 5).err);
    char buf[16];
    auto [n, err] = s.read(buf, sizeof buf);
    ASSERT_FALSE(err) << err.message();
    EXPECT_EQ(std::string(buf, n), "hello");
    EXPECT_FALSE(c.close());
    auto [n2, err2] = s.read(buf, sizeof buf);
    EXPECT_EQ(n2, 0u);
    EXPECT_EQ(err2, Errc::kEOF);
    EXPECT_EQ(err2.message(), "EOF");
    s.close();
    ln.close();
  }
}

TEST(Net, DescriptorsAreNonBlockingAndCloseOnExec) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  for (int fd : {ln.sysfd(), c.sysfd(), s.sysfd()}) {
    EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  }
}

// A socket's NetFD is one runtime heap object (not malloc), freed with its
// last handle: the heap counts an allocation per listener opened and a
// free per listener closed and dropped. (Goroutines of earlier tests may
// still be exiting and freeing: the counts are lower bounds.)
TEST(Net, SocketsLiveOnTheRuntimeHeap) {
  constexpr uint64_t kSockets = 64;
  rt::MemStats before = rt::read_mem_stats();
  std::vector<Listener> lns;
  for (uint64_t i = 0; i < kSockets; i++) lns.push_back(must_listen());
  rt::MemStats open = rt::read_mem_stats();
  EXPECT_GE(open.Mallocs - before.Mallocs, kSockets);
  for (Listener& ln : lns) ln.close();
  lns.clear();
  rt::MemStats after = rt::read_mem_stats();
  EXPECT_GE(after.Frees - open.Frees, kSockets);
}

// Conns held only in malloc memory (a std::vector's buffer, which the
// collector does not scan) survive collections: each socket is a root of
// its own until its last handle goes. A freed NetFD would be handed out
// again by the allocations after the collections, and their filling would
// break the echo below.
TEST(Net, SocketsHeldInMallocMemorySurviveCollection) {
  constexpr int kPairs = 16;
  Listener ln = must_listen();
  auto pairs = std::make_unique<std::vector<std::pair<Conn, Conn>>>();
  for (int i = 0; i < kPairs; i++) pairs->push_back(must_pair(ln));
  rt::MemStats before = rt::read_mem_stats();
  for (int round = 0; round < 3; round++) rt::gc();
  EXPECT_GE(rt::read_mem_stats().NumGC - before.NumGC, 3u);
  for (size_t size = 16; size <= 1024; size += 16) {
    for (int k = 0; k < 64; k++) memset(rt::internal::mallocgc(size, true), 0xab, size);
  }
  for (int i = 0; i < kPairs; i++) {
    auto& [c, s] = (*pairs)[size_t(i)];
    std::string msg = "conn " + std::to_string(i);
    ASSERT_FALSE(c.write(msg.data(), msg.size()).err);
    char buf[32];
    auto [n, err] = s.read(buf, sizeof buf);
    ASSERT_FALSE(err);
    EXPECT_EQ(std::string(buf, n), msg);
  }
}

TEST(Net, ZeroLengthReadReturnsAtOnce) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  char b;
  auto [n, err] = s.read(&b, 0);
  EXPECT_EQ(n, 0u);
  EXPECT_FALSE(err);
}

// A read after a short read waits for the poller's edge instead of trying
// the system call first (rt::net's one change to Go's pattern): in a
// ping-pong exchange each side's read would otherwise fail with EAGAIN once
// per message. The fault hook sees every read system call: about two per
// round trip (one a side), not four.
std::atomic<uint64_t> read_calls{0};
int count_reads(rt::internal::PollCall call) {
  if (call == rt::internal::PollCall::kRead) read_calls.fetch_add(1);
  return 0;
}

TEST(Net, PingPongReadsOnceAMessageEachSide) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  constexpr int kRounds = 2000;
  constexpr size_t kMsg = 64;
  auto served = rt::make_chan<int>(1);
  rt::go([s, served]() mutable {
    char b[4096];
    int echoed = 0;
    while (echoed < kRounds) {
      auto [n, err] = s.read(b, sizeof b);
      if (err || s.write(b, n).err) break;
      echoed += int(n / kMsg);
    }
    served.send(echoed);
  });
  rt::internal::poll_fault_hook.store(count_reads);
  char msg[kMsg], b[4096];
  memset(msg, 'x', sizeof msg);
  for (int i = 0; i < kRounds; i++) {
    ASSERT_FALSE(c.write(msg, sizeof msg).err);
    size_t got = 0;
    while (got < kMsg) {
      auto [n, err] = c.read(b, sizeof b);
      ASSERT_FALSE(err);
      got += n;
    }
  }
  rt::internal::poll_fault_hook.store(nullptr);
  EXPECT_EQ(served.recv(), kRounds);
  EXPECT_GE(read_calls.load(), uint64_t(2 * kRounds));
  EXPECT_LT(read_calls.load(), uint64_t(2 * kRounds + kRounds / 4)) << "reads that found nothing";
}

TEST(Net, ShutdownWriteGivesPeerEOFAndKeepsReading) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  EXPECT_FALSE(c.close_write());
  char buf[4];
  EXPECT_EQ(s.read(buf, sizeof buf).err, Errc::kEOF);
  ASSERT_FALSE(s.write("ok", 2).err);
  auto [n, err] = c.read(buf, sizeof buf);
  EXPECT_FALSE(err);
  EXPECT_EQ(std::string(buf, n), "ok");
  EXPECT_EQ(c.write("x", 1).err, Errc::kBrokenPipe);
}

// ---- Errors ----------------------------------------------------------------------

TEST(NetErrors, ConnectionRefused) {
  Listener ln = must_listen();
  std::string addr = ln.addr();
  ln.close();
  auto [c, err] = rt::net::dial("tcp", addr);
  EXPECT_FALSE(c.valid());
  EXPECT_EQ(err, Errc::kRefused);
  EXPECT_EQ(err.message(), "connection refused");
}

TEST(NetErrors, AddressInUse) {
  Listener ln = must_listen();
  auto [ln2, err] = rt::net::listen("tcp", ln.addr());
  EXPECT_FALSE(ln2.valid());
  EXPECT_EQ(err, Errc::kAddrInUse);
  EXPECT_EQ(err.message(), "address already in use");
}

TEST(NetErrors, InvalidAddresses) {
  struct Case {
    const char* network;
    const char* addr;
    const char* text;
  };
  for (Case k : {Case{"tcp", "127.0.0.1", "missing port in address"}, Case{"tcp", "127.0.0.1:http", "unknown port"},
                 Case{"tcp", "127.0.0.1:70000", "invalid port"}, Case{"tcp", "::1:80", "too many colons in address"},
                 Case{"udp", "127.0.0.1:0", "unknown network"}, Case{"tcp4", "[::1]:0", nullptr},
                 Case{"tcp", "example.invalid:80", nullptr}}) {
    auto [ln, err] = rt::net::listen(k.network, k.addr);
    EXPECT_EQ(err, Errc::kInvalidAddr) << k.addr;
    if (k.text != nullptr) {
      EXPECT_EQ(err.message(), k.text) << k.addr;
    }
    auto [c, err2] = rt::net::dial(k.network, k.addr);
    EXPECT_EQ(err2, Errc::kInvalidAddr) << k.addr;
  }
}

TEST(NetErrors, ClosedHandlesSayClosed) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  EXPECT_FALSE(c.close());
  auto e = c.close();
  EXPECT_EQ(e, Errc::kClosed);
  EXPECT_EQ(e.message(), "use of closed network connection");
  char b[1];
  EXPECT_EQ(c.read(b, 1).err, Errc::kClosed);
  EXPECT_EQ(c.write(b, 1).err, Errc::kClosed);
  EXPECT_EQ(c.set_deadline(rt::nanotime()), Errc::kClosed);
  EXPECT_FALSE(ln.close());
  EXPECT_EQ(ln.accept().second, Errc::kClosed);
  EXPECT_EQ(Conn().read(b, 1).err, Errc::kClosed);
}

TEST(NetErrors, ReadAfterPeerReset) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  linger lg{1, 0};  // close sends RST
  ASSERT_EQ(setsockopt(c.sysfd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  c.close();
  char b[8];
  auto r = s.read(b, sizeof b);
  EXPECT_EQ(r.err, Errc::kReset);
  EXPECT_EQ(r.err.message(), "connection reset by peer");
}

// Writing to a peer that went away fails (EPIPE or ECONNRESET) and never
// kills the process with SIGPIPE.
TEST(NetErrors, WriteToClosedPeerFailsWithoutSigpipe) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  s.close();
  std::vector<char> buf(64 << 10, 'x');
  rt::net::Error err;
  for (int i = 0; i < 100 && !err; i++) err = c.write(buf.data(), buf.size()).err;
  EXPECT_TRUE(err == Errc::kBrokenPipe || err == Errc::kReset) << err.message();
}

// ---- Close wakes blocked calls ---------------------------------------------------

TEST(NetClose, CloseDuringBlockedRead) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  auto done = rt::make_chan<rt::net::Error>(1);
  rt::go([s, done]() mutable {
    char b[8];
    done.send(s.read(b, sizeof b).err);
  });
  rt::sleep(20 * kMs);
  EXPECT_EQ(done.len(), 0);
  EXPECT_FALSE(s.close());
  rt::net::Error err = done.recv();
  EXPECT_EQ(err, Errc::kClosed);
  EXPECT_EQ(err.message(), "use of closed network connection");
}

TEST(NetClose, CloseDuringBlockedAccept) {
  Listener ln = must_listen();
  auto done = rt::make_chan<rt::net::Error>(1);
  rt::go([ln, done]() mutable { done.send(ln.accept().second); });
  rt::sleep(20 * kMs);
  EXPECT_EQ(done.len(), 0);
  ln.close();
  EXPECT_EQ(done.recv(), Errc::kClosed);
}

// Every goroutine blocked on the connection wakes: a reader, a second
// reader queued behind it, and a writer blocked on a full socket.
TEST(NetClose, CloseWakesEveryWaiter) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  auto done = rt::make_chan<rt::net::Error>(3);
  for (int i = 0; i < 2; i++) {
    rt::go([s, done]() mutable {
      char b[8];
      done.send(s.read(b, sizeof b).err);
    });
  }
  rt::go([s, done]() mutable {
    std::vector<char> big(64 << 20, 'x');  // far more than the socket buffers
    done.send(s.write(big.data(), big.size()).err);
  });
  rt::sleep(50 * kMs);
  EXPECT_EQ(done.len(), 0);
  s.close();
  for (int i = 0; i < 3; i++) EXPECT_EQ(done.recv(), Errc::kClosed);
}

// ---- Deadlines (Go's net/timeout_test.go) -----------------------------------------

TEST(NetDeadline, ReadTimeout) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  int64_t t0 = rt::nanotime();
  ASSERT_FALSE(s.set_read_deadline(t0 + 50 * kMs));
  char b[8];
  auto r = s.read(b, sizeof b);
  EXPECT_GE(since(t0), 50 * kMs);
  EXPECT_LT(since(t0), 5000 * kMs);
  EXPECT_TRUE(r.err.timeout());
  EXPECT_EQ(r.err.message(), "i/o timeout");
  // The deadline stays passed: the next read fails at once.
  t0 = rt::nanotime();
  EXPECT_TRUE(s.read(b, sizeof b).err.timeout());
  EXPECT_LT(since(t0), 1000 * kMs);
  // Writes have their own deadline.
  EXPECT_FALSE(s.write("x", 1).err);
  // Cleared, the connection works again.
  ASSERT_FALSE(s.set_read_deadline(0));
  ASSERT_FALSE(c.write("ab", 2).err);
  auto r2 = s.read(b, sizeof b);
  EXPECT_FALSE(r2.err);
  EXPECT_EQ(std::string(b, r2.n), "ab");
}

TEST(NetDeadline, WriteTimeout) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  std::vector<char> big(64 << 20, 'x');  // the peer never reads
  int64_t t0 = rt::nanotime();
  ASSERT_FALSE(c.set_write_deadline(t0 + 50 * kMs));
  auto r = c.write(big.data(), big.size());
  EXPECT_GE(since(t0), 50 * kMs);
  EXPECT_TRUE(r.err.timeout());
  EXPECT_LT(r.n, big.size());
  EXPECT_GT(r.n, 0u);  // what fit in the buffers went
}

TEST(NetDeadline, PastDeadlineFailsAtOnce) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  ASSERT_FALSE(c.write("data", 4).err);
  // Even with data waiting, as Go's (the deadline is checked first).
  ASSERT_FALSE(s.set_deadline(rt::nanotime() - kMs));
  char b[8];
  EXPECT_TRUE(s.read(b, sizeof b).err.timeout());
  EXPECT_TRUE(s.write("x", 1).err.timeout());
}

// A deadline set by another goroutine while the read is blocked applies.
TEST(NetDeadline, SetWhileBlocked) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  auto done = rt::make_chan<int64_t>(1);
  int64_t t0 = rt::nanotime();
  rt::go([s, done]() mutable {
    char b[8];
    auto r = s.read(b, sizeof b);
    done.send(r.err.timeout() ? rt::nanotime() : -1);
  });
  rt::sleep(20 * kMs);
  int64_t deadline = rt::nanotime() + 30 * kMs;
  ASSERT_FALSE(s.set_read_deadline(deadline));
  int64_t at = done.recv();
  ASSERT_GT(at, 0) << "read did not time out";
  EXPECT_GE(at, deadline);
  EXPECT_LT(at - t0, 5000 * kMs);
}

// A read blocks with a deadline 40 ms away; 10 ms in, change(s) moves
// or clears it; 80 ms after the first deadline "late" is written. Returns
// what the read got. An attempt whose change came only after the first
// deadline (the test goroutine not run for 40 ms on a loaded machine)
// proves nothing and is repeated, at most 10 times.
std::string read_past_changed_deadline(void (*change)(Conn&)) {
  for (int attempt = 0; attempt < 10; attempt++) {
    Listener ln = must_listen();
    auto [c, s] = must_pair(ln);
    int64_t first = rt::nanotime() + 40 * kMs;
    EXPECT_FALSE(s.set_read_deadline(first));
    auto done = read_in_background(s);
    rt::sleep(10 * kMs);
    change(s);
    if (rt::nanotime() >= first) {
      s.close();
      done.recv();
      continue;
    }
    rt::sleep(80 * kMs);  // past the first deadline
    EXPECT_FALSE(c.write("late", 4).err);
    return done.recv();
  }
  ADD_FAILURE() << "no attempt changed the deadline within 40 ms";
  return "";
}

// Extending the deadline of a blocked read takes effect: data that comes
// after the first deadline but before the second is read.
TEST(NetDeadline, ExtendedWhileBlocked) {
  auto extend = [](Conn& s) { ASSERT_FALSE(s.set_read_deadline(rt::nanotime() + 5000 * kMs)); };
  EXPECT_EQ(read_past_changed_deadline(extend), "late");
}

TEST(NetDeadline, ClearedWhileBlocked) {
  EXPECT_EQ(read_past_changed_deadline([](Conn& s) { ASSERT_FALSE(s.set_read_deadline(0)); }), "late");
}

// The timeout that fires after the read returned changes nothing for
// that read; only later calls see the passed deadline, and clearing it
// makes the connection usable again (no stale wake-up).
TEST(NetDeadline, FiresAfterReadReturned) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  ASSERT_FALSE(s.set_read_deadline(rt::nanotime() + 30 * kMs));
  ASSERT_FALSE(c.write("now", 3).err);
  char b[8];
  auto r = s.read(b, sizeof b);
  ASSERT_FALSE(r.err);
  EXPECT_EQ(std::string(b, r.n), "now");
  rt::sleep(60 * kMs);
  EXPECT_TRUE(s.read(b, sizeof b).err.timeout());
  ASSERT_FALSE(s.set_read_deadline(0));
  auto done = rt::make_chan<std::string>(1);
  rt::go([s, done]() mutable {
    char b2[8];
    auto r2 = s.read(b2, sizeof b2);
    done.send(r2.err ? r2.err.message() : std::string(b2, r2.n));
  });
  rt::sleep(20 * kMs);
  ASSERT_FALSE(c.write("again", 5).err);
  EXPECT_EQ(done.recv(), "again");
}

// Re-arming a deadline many times leaves only the last one in force: the
// older timers carry a stale seq and change nothing if they fire.
TEST(NetDeadline, OnlyTheLastArmingCounts) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  int64_t t0 = rt::nanotime();
  for (int i = 0; i < 50; i++) {
    ASSERT_FALSE(s.set_read_deadline(t0 + (i % 2 == 0 ? 1 : 2) * kMs));
    ASSERT_FALSE(s.set_write_deadline(t0 + 3 * kMs));  // sometimes shared with the read timer
  }
  int64_t last = rt::nanotime() + 60 * kMs;
  ASSERT_FALSE(s.set_read_deadline(last));
  ASSERT_FALSE(s.set_write_deadline(0));
  char b[8];
  auto r = s.read(b, sizeof b);
  EXPECT_TRUE(r.err.timeout());
  EXPECT_GE(rt::nanotime(), last);
  EXPECT_FALSE(s.write("w", 1).err);
}

// Both directions share one timer when their deadlines are equal; each
// still times out.
TEST(NetDeadline, SharedDeadlineTimesOutBothDirections) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  auto done = rt::make_chan<bool>(2);
  ASSERT_FALSE(c.set_deadline(rt::nanotime() + 40 * kMs));
  rt::go([c, done]() mutable {
    char b[8];
    done.send(c.read(b, sizeof b).err.timeout());
  });
  rt::go([c, done]() mutable {
    std::vector<char> big(64 << 20, 'x');
    done.send(c.write(big.data(), big.size()).err.timeout());
  });
  EXPECT_TRUE(done.recv());
  EXPECT_TRUE(done.recv());
}

// ---- Concurrency and scale -----------------------------------------------------------

uint64_t fnv(const char* p, size_t n, uint64_t h = 1469598103934665603ULL) {
  for (size_t i = 0; i < n; i++) h = (h ^ uint8_t(p[i])) * 1099511628211ULL;
  return h;
}

// Echoes every connection of ln until EOF, in one goroutine each.
void echo_server(Listener ln) {
  rt::go([ln]() mutable {
    for (;;) {
      auto [c, err] = ln.accept();
      if (err) return;
      rt::go([c]() mutable {
        char buf[16 << 10];
        for (;;) {
          auto [n, err] = c.read(buf, sizeof buf);
          if (err) break;
          if (c.write(buf, n).err) break;
        }
        c.close();
      });
    }
  });
}

// A read and a write in flight on one connection at the same time.
TEST(NetConcurrency, ReadAndWriteAtOnce) {
  Listener ln = must_listen();
  echo_server(ln);
  auto [c, err] = rt::net::dial("tcp", ln.addr());
  ASSERT_FALSE(err);
  constexpr size_t kTotal = 8 << 20;
  auto sum = rt::make_chan<uint64_t>(1);
  rt::go([c, sum]() mutable {
    std::vector<char> buf(kTotal);
    for (size_t i = 0; i < kTotal; i++) buf[i] = char(i * 7 + i / 4096);
    uint64_t h = fnv(buf.data(), buf.size());
    EXPECT_FALSE(c.write(buf.data(), buf.size()).err);
    sum.send(h);
  });
  uint64_t h = 1469598103934665603ULL;
  size_t got = 0;
  char buf[32 << 10];
  while (got < kTotal) {
    auto r = c.read(buf, sizeof buf);
    ASSERT_FALSE(r.err) << r.err.message();
    h = fnv(buf, r.n, h);
    got += r.n;
  }
  EXPECT_EQ(got, kTotal);
  EXPECT_EQ(h, sum.recv());
  c.close();
  ln.close();
}

// n clients at once, each sending `rounds` checksummed messages of random
// sizes through the echo server and checking what comes back.
void many_clients(const std::string& addr, int n, int rounds) {
  rt::WaitGroup wg;
  std::atomic<int> ok{0};
  for (int i = 0; i < n; i++) {
    wg.add(1);
    rt::go([&, i] {
      auto [c, err] = rt::net::dial("tcp", addr);
      if (err) {
        ADD_FAILURE() << "dial: " << err.message();
        wg.done();
        return;
      }
      std::mt19937 rng{uint32_t(i)};
      std::vector<char> out(8192), in(8192);
      bool good = true;
      for (int r = 0; r < rounds && good; r++) {
        size_t len = 1 + rng() % out.size();
        for (size_t k = 0; k < len; k++) out[k] = char(rng());
        uint64_t want = fnv(out.data(), len);
        if (c.write(out.data(), len).err) {
          good = false;
          break;
        }
        size_t got = 0;
        uint64_t h = 1469598103934665603ULL;
        while (got < len) {
          auto rr = c.read(in.data(), len - got);
          if (rr.err) {
            ADD_FAILURE() << "client " << i << " read: " << rr.err.message();
            good = false;
            break;
          }
          h = fnv(in.data(), rr.n, h);
          got += rr.n;
        }
        if (good && h != want) {
          ADD_FAILURE() << "client " << i << " round " << r << ": checksum mismatch";
          good = false;
        }
      }
      if (good) ok++;
      c.close();
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(ok.load(), n);
}

TEST(NetConcurrency, TwoHundredConnectionsChecksummed) {
  Listener ln = must_listen();
  echo_server(ln);
  many_clients(ln.addr(), 200, 20);
  ln.close();
}

// A goroutine blocked on the network holds no thread and no P: with one
// P, 100 blocked readers leave it free for others, and no thread is
// created for them.
TEST(NetConcurrency, BlockedGoroutinesHoldNoThreadOrP) {
  ProcsGuard procs(1);
  Listener ln = must_listen();
  std::vector<std::pair<Conn, Conn>> pairs;
  for (int i = 0; i < 100; i++) pairs.push_back(must_pair(ln));
  int64_t threads0 = rt::read_sched_stats().threads;
  auto done = rt::make_chan<int>(100);
  for (auto& p : pairs) {
    rt::go([s = p.second, done]() mutable {
      char b[4];
      auto r = s.read(b, sizeof b);
      done.send(r.err ? -1 : int(r.n));
    });
  }
  // The readers are parked; this goroutine still runs on the only P.
  ASSERT_TRUE(wait_until([&] { return rt::internal::netpoll_waiters.load() >= 100; }));
  auto ping = rt::make_chan<int>(0);
  rt::go([ping]() mutable { ping.send(7); });
  EXPECT_EQ(ping.recv(), 7);
  EXPECT_LE(rt::read_sched_stats().threads, threads0 + 1);
  for (auto& p : pairs) ASSERT_FALSE(p.first.write("ping", 4).err);
  for (int i = 0; i < 100; i++) EXPECT_EQ(done.recv(), 4);
}

// A server blocked in accept, with no timer pending and every other
// goroutine blocked, is not deadlocked: a connection from outside the
// runtime (a plain thread) completes it.
TEST(NetConcurrency, BlockedAcceptIsNotADeadlock) {
  Listener ln = must_listen();
  std::string addr = ln.addr();
  int port = std::stoi(addr.substr(addr.rfind(':') + 1));
  std::thread outside([port] {
    usleep(100 * 1000);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(uint16_t(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    close(fd);
  });
  auto [c, err] = ln.accept();  // the only goroutine, blocked on I/O
  EXPECT_FALSE(err);
  outside.join();
}

// Go issue 51651's situation: the only P never runs out of work (a
// goroutine that only computes, passing safe points), so findrunnable never
// polls; the ready connection is still served, by sysmon's poll (after
// 10 ms without one) or by a poll once the busy goroutine is preempted.
TEST(NetConcurrency, ReadyIoIsFoundWhileThePIsBusy) {
  ProcsGuard procs(1);
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  std::atomic<bool> stop{false};
  rt::WaitGroup spinner;  // the spinner reads stop, in this frame, until it returns
  spinner.add(1);
  rt::go([&] {
    while (!stop.load(std::memory_order_relaxed)) rt::preempt_point();
    spinner.done();
  });
  auto done = rt::make_chan<int64_t>(1);
  rt::go([s, done]() mutable {
    char b[8];
    auto r = s.read(b, sizeof b);
    done.send(r.err ? -1 : rt::nanotime());
  });
  rt::sleep(20 * kMs);
  int64_t t0 = rt::nanotime();
  ASSERT_FALSE(c.write("x", 1).err);
  int64_t at = done.recv();
  stop = true;
  spinner.wait();
  ASSERT_GT(at, 0);
  EXPECT_LT(at - t0, 2000 * kMs);
}

// Once the last goroutine waiting for I/O is gone, a program whose
// goroutines are all blocked is a deadlock again (the polling M must not
// wait forever for nothing).
void block_forever_after_io() {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  rt::go([s]() mutable {
    char b[1];
    s.read(b, 1);  // woken by the close below
    std::atomic<uint32_t> never{0};
    rt::semacquire(&never);
  });
  rt::sleep(20 * kMs);
  s.close();
  std::atomic<uint32_t> never{0};
  rt::semacquire(&never);
}

TEST(NetDeath, DeadlockAfterTheLastIoWaiterLeaves) {
  EXPECT_EXIT(block_forever_after_io(), testing::ExitedWithCode(2),
              "fatal error: all goroutines are asleep - deadlock!");
}

// ---- Fault injection: EINTR and EAGAIN storms -----------------------------------------

std::atomic<uint64_t> storm_state{0};
std::atomic<uint64_t> storm_injected{0};

// Fails about one call in three with EINTR or EAGAIN (epoll_wait only
// with EINTR, as the kernel would).
int storm_hook(rt::internal::PollCall call) {
  uint64_t x = storm_state.fetch_add(0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 31;
  if (x % 3 != 0) return 0;
  storm_injected.fetch_add(1);
  if (call == rt::internal::PollCall::kEpollWait || call == rt::internal::PollCall::kConnect) return EINTR;
  return (x >> 8) % 2 == 0 ? EINTR : EAGAIN;
}

class FaultStorm {
 public:
  FaultStorm() { rt::internal::poll_fault_hook.store(storm_hook); }
  ~FaultStorm() { rt::internal::poll_fault_hook.store(nullptr); }
};

TEST(NetFaults, EintrAndEagainStormsLoseNothing) {
  Listener ln = must_listen();
  echo_server(ln);
  uint64_t before = storm_injected.load();
  {
    FaultStorm storm;
    many_clients(ln.addr(), 20, 30);
  }
  EXPECT_GT(storm_injected.load() - before, 1000u);
  ln.close();
}

// Deadlines still fire, and close still wakes, in a storm.
TEST(NetFaults, DeadlinesAndCloseInAStorm) {
  Listener ln = must_listen();
  auto [c, s] = must_pair(ln);
  FaultStorm storm;
  int64_t t0 = rt::nanotime();
  ASSERT_FALSE(s.set_read_deadline(t0 + 30 * kMs));
  char b[8];
  EXPECT_TRUE(s.read(b, sizeof b).err.timeout());
  EXPECT_GE(since(t0), 30 * kMs);
  auto done = rt::make_chan<rt::net::Error>(1);
  ASSERT_FALSE(s.set_read_deadline(0));
  rt::go([s, done]() mutable {
    char b2[8];
    done.send(s.read(b2, sizeof b2).err);
  });
  rt::sleep(20 * kMs);
  s.close();
  EXPECT_EQ(done.recv(), Errc::kClosed);
}

// ---- Real signals ------------------------------------------------------------------------

std::atomic<int> real_signals{0};
void count_real_signal(int) { real_signals.fetch_add(1, std::memory_order_relaxed); }

// Sends SIGUSR1 to every thread of the process but the caller, every
// 200 us, until stop.
void signal_every_thread(const std::atomic<bool>& stop) {
  pid_t pid = getpid(), self = pid_t(syscall(SYS_gettid));
  while (!stop.load()) {
    DIR* d = opendir("/proc/self/task");
    while (dirent* e = d != nullptr ? readdir(d) : nullptr) {
      pid_t t = pid_t(atoi(e->d_name));
      if (t > 0 && t != self) syscall(SYS_tgkill, pid, t, SIGUSR1);
    }
    if (d != nullptr) closedir(d);
    usleep(200);
  }
}

// Real signals instead of injected errors, as SIGURG under the signal
// preemption variant: the kernel never restarts epoll_pwait2 after a
// handler (SA_RESTART or not), so every signal that reaches the thread
// blocked in the poller fails its wait with EINTR. A timed poll returns
// to recompute its deadline, an untimed one waits again: deadlines fire no
// earlier than set, sleeps end, and no byte is lost. Rounds repeat until
// 200 signals have been caught (at most 50 rounds: a starved storm thread
// on a loaded machine sends fewer per round).
TEST(NetFaults, PollerThroughARealSignalStorm) {
  struct sigaction sa {}, old {};
  sa.sa_handler = count_real_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  std::atomic<bool> stop{false};
  std::thread storm(signal_every_thread, std::cref(stop));
  int before = real_signals.load();
  Listener pairs = must_listen();
  Listener echo = must_listen();
  echo_server(echo);
  int rounds = 0;
  while (real_signals.load() - before < 200 && rounds < 50) {
    rounds++;
    auto [c, s] = must_pair(pairs);
    int64_t t0 = rt::nanotime();
    ASSERT_FALSE(s.set_read_deadline(t0 + 30 * kMs));
    auto timed = read_in_background(s);
    rt::sleep(20 * kMs);
    EXPECT_GE(since(t0), 20 * kMs);
    EXPECT_EQ(timed.recv(), "i/o timeout");
    EXPECT_GE(since(t0), 30 * kMs);
    many_clients(echo.addr(), 4, 10);
    c.close();
    s.close();
  }
  stop = true;
  storm.join();
  // A signal still pending on a thread that blocks signals for a moment
  // would kill the process once SIGUSR1 is back at SIG_DFL: setting
  // SIG_IGN discards pending ones first.
  signal(SIGUSR1, SIG_IGN);
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_GE(real_signals.load() - before, 200) << "in " << rounds << " rounds";
  pairs.close();
  echo.close();
}

// ---- Descriptor exhaustion --------------------------------------------------------------

// accept with no descriptor left returns EMFILE at once (no spinning
// inside the runtime), and works again once descriptors are free.
TEST(NetErrors, AcceptOutOfDescriptorsReturnsEmfile) {
  Listener ln = must_listen();
  auto [c, err] = rt::net::dial("tcp", ln.addr());  // queued, not yet accepted
  ASSERT_FALSE(err);
  rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  std::vector<int> fillers;
  rlimit low = old;
  low.rlim_cur = 64;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  for (;;) {
    int fd = dup(0);
    if (fd < 0) break;
    fillers.push_back(fd);
  }
  int64_t t0 = rt::nanotime();
  auto [a, aerr] = ln.accept();
  int64_t took = since(t0);
  for (int fd : fillers) close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_EQ(aerr, Errc::kSyscall);
  EXPECT_EQ(aerr.sys_errno(), EMFILE);
  EXPECT_EQ(aerr.message(), "too many open files");
  EXPECT_LT(took, 1000 * kMs);
  auto [a2, aerr2] = ln.accept();
  EXPECT_FALSE(aerr2) << aerr2.message();
}

}  // namespace

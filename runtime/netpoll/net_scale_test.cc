// Scale test: 10,000 concurrent loopback connections on the netpoller.
// The server side (this process) accepts and echoes them all; the client
// side is this binary re-executed with RTLAB_NET_SCALE_ADDR set (running
// only NetScaleClient), which dials all 10,000, keeps them open at once
// and checks each one's echoed message. Two processes, because the
// descriptor limit applies per process (20,000 here, not raisable without
// CAP_SYS_RESOURCE): each needs about 10,050. Each raises RLIMIT_NOFILE as
// far as allowed; the test is skipped, saying so, when that is too low.
// Under ThreadSanitizer each process keeps one goroutine per connection
// alive at once (the server's echoers, the client's writers), more than
// the fibers TSan allows, so there it is tsan_live_goroutines(10000)
// connections.
// Tagged manual (out of `bazel test //...` and scripts/test):
//   bazel test //runtime:net_scale_test
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "rt/rt.h"
#include "runtime/testing/rt_test_util.h"

namespace {

constexpr int kConns = rt::testing::tsan_live_goroutines(10000);

// Raises the soft limit to need (or as far as the hard limit allows);
// returns an explanation when it stays too low.
std::string raise_nofile(rlim_t need) {
  rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < need) {
    rlimit want{need, rl.rlim_max < need ? need : rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
      want = {rl.rlim_max, rl.rlim_max};
      setrlimit(RLIMIT_NOFILE, &want);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur >= need) return "";
  return "RLIMIT_NOFILE is " + std::to_string(rl.rlim_cur) + " (hard " + std::to_string(rl.rlim_max) +
         "): too low for " + std::to_string(need) + " descriptors per process; raise the hard limit (ulimit -Hn)";
}

std::string message_for(int i) { return "conn-" + std::to_string(i) + "-" + std::to_string(i * 2654435761u); }

TEST(NetScale, TenThousandConnections) {
  if (getenv("RTLAB_NET_SCALE_ADDR") != nullptr) GTEST_SKIP() << "client process";
  std::string why = raise_nofile(kConns + 50);
  if (!why.empty()) GTEST_SKIP() << why;
  auto [ln, err] = rt::net::listen("tcp", "127.0.0.1:0");
  ASSERT_FALSE(err) << err.message();
  std::vector<rt::net::Conn> served;
  served.reserve(kConns);
  rt::go([ln = ln, &served]() mutable {
    for (int i = 0; i < kConns; i++) {
      auto [c, err] = ln.accept();
      if (err) return;
      served.push_back(c);
      rt::go([c]() mutable {
        char buf[64];
        for (;;) {
          auto [n, err] = c.read(buf, sizeof buf);
          if (err || c.write(buf, n).err) break;
        }
      });
    }
  });
  // Everything the child needs is prepared before fork: between fork and
  // exec only async-signal-safe calls are allowed.
  std::string addr_env = "RTLAB_NET_SCALE_ADDR=" + ln.addr();
  // The child does not inherit Bazel's premature-exit marker: its gtest
  // would create and then remove the file this process made, so this
  // process's own removal fails ("Failed to remove premature exit
  // filepath") and a premature exit of this process goes unseen.
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; e++) {
    if (std::string_view(*e).starts_with("TEST_PREMATURE_EXIT_FILE=")) continue;
    envp.push_back(*e);
  }
  envp.push_back(addr_env.data());
  envp.push_back(nullptr);
  char arg0[] = "net_scale_client";
  char arg1[] = "--gtest_filter=NetScaleClient.*";
  char* argv[] = {arg0, arg1, nullptr};
  int64_t t0 = rt::nanotime();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execve("/proc/self/exe", argv, envp.data());
    _exit(127);
  }
  int status = 0;
  // The child's exit is awaited off the scheduler (a blocking call).
  rt::sys::blocking([&] { return waitpid(pid, &status, 0); });
  int64_t took = rt::nanotime() - t0;
  ASSERT_TRUE(WIFEXITED(status)) << "client killed, status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the client process failed (its output is above)";
  EXPECT_EQ(served.size(), size_t(kConns));
  fprintf(stderr, "%d connections accepted and echoed in %.0f ms; server threads: %lld\n", kConns, took / 1e6,
          static_cast<long long>(rt::read_sched_stats().threads));
  for (auto& c : served) c.close();
  ln.close();
}

TEST(NetScaleClient, DialAllAndEcho) {
  const char* addr = getenv("RTLAB_NET_SCALE_ADDR");
  if (addr == nullptr) GTEST_SKIP() << "run by NetScale.TenThousandConnections";
  std::string why = raise_nofile(kConns + 50);
  ASSERT_TRUE(why.empty()) << why;
  std::vector<rt::net::Conn> clients(kConns);
  std::atomic<int> failures{0};
  // Waves no larger than the accept backlog, so that no SYN is dropped (a
  // dropped SYN costs a 1 s retransmission).
  constexpr int kWave = 1000;
  for (int base = 0; base < kConns; base += kWave) {
    rt::WaitGroup wg;
    for (int i = base; i < base + kWave; i++) {
      wg.add(1);
      rt::go([&, i] {
        auto [c, err] = rt::net::dial("tcp", addr);
        if (err) {
          failures++;
        } else {
          clients[size_t(i)] = c;
        }
        wg.done();
      });
    }
    wg.wait();
  }
  ASSERT_EQ(failures.load(), 0);
  rt::WaitGroup wg;
  for (int i = 0; i < kConns; i++) {
    wg.add(1);
    rt::go([&, i] {
      std::string msg = message_for(i);
      rt::net::Conn& c = clients[size_t(i)];
      bool ok = !c.write(msg.data(), msg.size()).err;
      std::string got;
      char buf[64];
      while (ok && got.size() < msg.size()) {
        auto [n, err] = c.read(buf, sizeof buf);
        if (err) ok = false;
        got.append(buf, n);
      }
      if (!ok || got != msg) failures++;
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(failures.load(), 0);
  for (auto& c : clients) c.close();
}

}  // namespace

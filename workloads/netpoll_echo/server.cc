// Workload "netpoll_echo", rt server: the thing measured, built once per
// variant. It listens on 127.0.0.1 (any free port) and echoes every
// connection in its own goroutine (rt::net); the shared load generator
// (loadgen.cc, which describes the protocol) drives it and prints the
// record. On "begin" and "end" from stdin it takes the scheduler counters;
// at "end" it prints their deltas as one flat JSON line and exits.
// --busy=N starts N goroutines that only compute (with safe points, for
// the cooperative variant), so that run queues stay full. GOMAXPROCS comes
// from the environment. Twins: go/main.go (Go), epoll_server.cc (no runtime).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "rt/rt.h"

namespace {

// One connection: io.Copy(c, c) with io.Copy's 32 KiB buffer (on the
// heap: goroutine stacks are 64 KiB).
void echo(rt::net::Conn c) {
  std::vector<char> buf(32 << 10);
  for (;;) {
    auto [n, err] = c.read(buf.data(), buf.size());
    if (err) break;
    if (c.write(buf.data(), n).err) break;
  }
  c.close();
}

// Reads one line from stdin ("begin", "end"); false at EOF.
bool read_command(std::string* line) {
  line->clear();
  char ch;
  for (;;) {
    ssize_t n = rt::sys::read(0, &ch, 1);
    if (n <= 0) return false;
    if (ch == '\n') return true;
    *line += ch;
  }
}

}  // namespace

int main(int argc, char** argv) {
  long busy = 0;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--busy=", 7) == 0) {
      busy = strtol(argv[i] + 7, nullptr, 10);
    } else {
      fprintf(stderr, "netpoll_echo server: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  return rt::run(argc, argv, [busy] {
    auto [ln, err] = rt::net::listen("tcp", "127.0.0.1:0");
    if (err) {
      fprintf(stderr, "netpoll_echo server: listen: %s\n", err.message().c_str());
      return 1;
    }
    rt::go([ln]() mutable {
      for (;;) {
        auto [c, err] = ln.accept();
        if (err) {
          fprintf(stderr, "netpoll_echo server: accept: %s\n", err.message().c_str());
          exit(1);
        }
        rt::go(echo, c);
      }
    });
    static std::atomic<bool> stop{false};
    for (long i = 0; i < busy; i++) {
      rt::go([] {
        volatile uint64_t x = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          for (int k = 0; k < 1000; k++) x = x + 1;
          rt::preempt_point();
        }
      });
    }
    printf("ready %s impl=rt variant=%s gomaxprocs=%d\n", ln.addr().c_str(), rt::variant_name().c_str(),
           rt::gomaxprocs(0));
    fflush(stdout);
    std::string cmd;
    rt::SchedStats s0{};
    while (read_command(&cmd)) {
      if (cmd == "begin") {
        s0 = rt::read_sched_stats();
      } else if (cmd == "end") {
        rt::SchedStats s1 = rt::read_sched_stats();
        printf("{\"ctxswitches\":%llu,\"parks\":%llu,\"readies\":%llu,\"steals\":%llu,\"spinning_wakeups\":%llu,"
               "\"preemptions\":%llu,\"netpoll_wakeups\":%llu,\"netpoll_blocking\":%llu,\"netpoll_injected\":%llu,"
               "\"netpoll_breaks\":%llu,\"threads\":%lld}\n",
               (unsigned long long)(s1.ctxswitches - s0.ctxswitches), (unsigned long long)(s1.parks - s0.parks),
               (unsigned long long)(s1.readies - s0.readies), (unsigned long long)(s1.stolen - s0.stolen),
               (unsigned long long)(s1.spinning_wakeups - s0.spinning_wakeups),
               (unsigned long long)(s1.preemptions - s0.preemptions),
               (unsigned long long)(s1.netpoll_wakeups - s0.netpoll_wakeups),
               (unsigned long long)(s1.netpoll_blocking - s0.netpoll_blocking),
               (unsigned long long)(s1.netpoll_injected - s0.netpoll_injected),
               (unsigned long long)(s1.netpoll_breaks - s0.netpoll_breaks), (long long)s1.threads);
        fflush(stdout);
        stop = true;
        return 0;
      }
    }
    return 0;
  });
}

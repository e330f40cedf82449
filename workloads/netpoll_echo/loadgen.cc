// The shared load generator of workload "netpoll_echo": one thread on raw
// epoll (no runtime), so that every server (rt per variant, the Go twin,
// the raw-epoll server) sees exactly the same load.
//
//   loadgen --server=PATH [--connections=16 --msg_size=64 --inflight=1
//           --duration_ms=3000 --warmup_ms=500 --count=0 --busy=0 --pin=1]
//
// It forks the server (PATH --busy=N), opens the perf counters on it
// before it execs (so every server thread is counted, inherit=1), pins the
// server to CPU 0 and itself to CPU 1 (pin=1, two or more CPUs), reads the
// server's first line, opens `connections` TCP connections and keeps
// `inflight` messages of `msg_size` bytes outstanding on each (1 =
// ping-pong). After the warm-up it measures for duration_ms (or until
// `count` round trips), timing every round trip (send of a message to the
// arrival of its last echoed byte; TCP keeps each connection's echoes in
// order). It prints one rtlab record (harness/README.md) whose impl,
// variant and gomaxprocs are the server's, with the server's task-clock
// as cpu_ns and its scheduler counters under runtime.sched.
//
// Server protocol (rt server, Go twin and epoll server alike):
//   stdout line 1: "ready ADDR impl=IMPL variant=VARIANT gomaxprocs=N"
//   stdin "begin\n": the measured window starts (snapshot counters)
//   stdin "end\n":   print one line, a flat JSON object of scheduler
//                    counter deltas over the window (or null), and exit 0
//   --busy=N:        N goroutines (epoll server: threads) that only
//                    compute, to load the CPU (the ready-connection wait
//                    probe, Go issue 51651)
// Parameter errors exit with status 2; a server that fails or a
// connection that breaks exits with status 1 and a message.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "harness/counters.h"
#include "harness/histogram.h"
#include "harness/json.h"
#include "harness/timer.h"

namespace {

[[noreturn]] void die(int status, const std::string& msg) {
  fprintf(stderr, "netpoll_echo loadgen: %s\n", msg.c_str());
  exit(status);
}

struct Params {
  std::string server;
  int64_t connections = 16, msg_size = 64, inflight = 1, duration_ms = 3000, warmup_ms = 500, count = 0,
          busy = 0, pin = 1;
};

Params parse(int argc, char** argv) {
  Params p;
  std::map<std::string, int64_t*> ints = {
      {"connections", &p.connections}, {"msg_size", &p.msg_size}, {"inflight", &p.inflight},
      {"duration_ms", &p.duration_ms}, {"warmup_ms", &p.warmup_ms}, {"count", &p.count},
      {"busy", &p.busy},               {"pin", &p.pin}};
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    size_t eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) die(2, "bad argument '" + a + "' (want --name=value)");
    std::string k = a.substr(2, eq - 2), v = a.substr(eq + 1);
    if (k == "server") {
      p.server = v;
      continue;
    }
    auto it = ints.find(k);
    if (it == ints.end()) die(2, "unknown parameter '" + k + "'");
    char* end = nullptr;
    errno = 0;
    long long x = strtoll(v.c_str(), &end, 0);
    if (errno != 0 || end == v.c_str() || *end != 0) die(2, "parameter " + k + ": '" + v + "' is not an integer");
    *it->second = x;
  }
  if (p.server.empty()) die(2, "--server=PATH is required");
  if (p.connections < 1 || p.connections > 10000) die(2, "connections must be in 1..10000");
  if (p.msg_size < 1 || p.msg_size > (1 << 20)) die(2, "msg_size must be in 1..1048576");
  if (p.inflight < 1 || p.inflight > 1024) die(2, "inflight must be in 1..1024");
  if (p.duration_ms < 1 && p.count < 1) die(2, "give duration_ms >= 1 or count >= 1");
  if (p.warmup_ms < 0 || p.count < 0 || p.busy < 0) die(2, "warmup_ms, count and busy must be >= 0");
  return p;
}

// Raises the descriptor limit as far as allowed; fails clearly when the
// connections cannot fit.
void ensure_fds(int64_t need) {
  rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rlim_t(need) > rl.rlim_cur) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rlim_t(need) > rl.rlim_cur) {
    die(1, "RLIMIT_NOFILE is " + std::to_string(rl.rlim_cur) + " (hard limit " + std::to_string(rl.rlim_max) +
               "), too low for " + std::to_string(need) + " descriptors; raise it (ulimit -n)");
  }
}

struct Server {
  pid_t pid = -1;
  int in = -1;   // its stdin
  int out = -1;  // its stdout
  std::string buffered;
};

// Reads one line from the server within timeout_ms, or dies.
std::string read_line(Server& s, int timeout_ms) {
  int64_t deadline = harness::now_ns() + int64_t(timeout_ms) * 1000000;
  for (;;) {
    size_t nl = s.buffered.find('\n');
    if (nl != std::string::npos) {
      std::string line = s.buffered.substr(0, nl);
      s.buffered.erase(0, nl + 1);
      return line;
    }
    int left = int((deadline - harness::now_ns()) / 1000000);
    if (left <= 0) die(1, "the server printed no line within " + std::to_string(timeout_ms) + " ms");
    pollfd pfd{s.out, POLLIN, 0};
    if (poll(&pfd, 1, left) < 0 && errno != EINTR) die(1, std::string("poll: ") + strerror(errno));
    char buf[4096];
    ssize_t n = read(s.out, buf, sizeof buf);
    if (n == 0) die(1, "the server exited before printing its line");
    if (n > 0) s.buffered.append(buf, size_t(n));
  }
}

void pin_to(pid_t pid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(pid, sizeof set, &set) != 0) die(1, std::string("sched_setaffinity: ") + strerror(errno));
}

// Forks the server; the perf counters are opened on it before it execs.
Server spawn(const Params& p, int server_cpu, std::unique_ptr<harness::Counters>* counters) {
  int in[2], out[2], go[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(go, O_CLOEXEC)) die(1, "pipe failed");
  pid_t pid = fork();
  if (pid < 0) die(1, std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    char c;
    while (read(go[0], &c, 1) < 0 && errno == EINTR) {
    }
    if (server_cpu >= 0) pin_to(0, server_cpu);
    std::string busy = "--busy=" + std::to_string(p.busy);
    execl(p.server.c_str(), p.server.c_str(), busy.c_str(), static_cast<char*>(nullptr));
    fprintf(stderr, "netpoll_echo loadgen: cannot run server %s: %s\n", p.server.c_str(), strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(go[0]);
  *counters = std::make_unique<harness::Counters>(harness::Counters::default_events(), int(pid));
  if (write(go[1], "g", 1) != 1) die(1, "cannot start the server");
  close(go[1]);
  Server s;
  s.pid = pid;
  s.in = in[1];
  s.out = out[0];
  return s;
}

void tell(Server& s, const char* what) {
  size_t n = strlen(what);
  if (write(s.in, what, n) != ssize_t(n)) die(1, std::string("cannot write to the server: ") + strerror(errno));
}

// The server's counters: a flat JSON object of integers, or null.
harness::Json parse_flat(const std::string& line) {
  std::string t = line;
  while (!t.empty() && (t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t == "null") return harness::Json(nullptr);
  harness::Json o = harness::Json::object();
  if (t.size() < 2 || t.front() != '{' || t.back() != '}') die(1, "malformed server counters: " + line);
  size_t i = 1;
  while (i < t.size() - 1) {
    size_t q1 = t.find('"', i), q2 = q1 == std::string::npos ? q1 : t.find('"', q1 + 1);
    size_t colon = q2 == std::string::npos ? q2 : t.find(':', q2);
    if (colon == std::string::npos) die(1, "malformed server counters: " + line);
    char* end = nullptr;
    long long v = strtoll(t.c_str() + colon + 1, &end, 10);
    o.set(t.substr(q1 + 1, q2 - q1 - 1), harness::Json(v));
    i = size_t(end - t.c_str());
    while (i < t.size() - 1 && (t[i] == ',' || t[i] == ' ')) i++;
  }
  return o;
}

int64_t proc_cpu_ns(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = fopen(path.c_str(), "re");
  if (f == nullptr) return -1;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char* p = strrchr(buf, ')');
  if (p == nullptr) return -1;
  unsigned long long ut = 0, st = 0;
  // Fields after the command: state(3) ... utime(14) stime(15).
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return int64_t((ut + st) * (1000000000ULL / uint64_t(sysconf(_SC_CLK_TCK))));
}

struct Conn {
  int fd = -1;
  std::vector<int64_t> sent;  // send times of the messages in flight (a ring)
  size_t head = 0, inflight = 0;
  int64_t rx = 0;             // bytes of the oldest message received so far
  int64_t tx_pending = 0;     // bytes accepted for sending but not yet written
};

enum Phase { kWarmup, kMeasure, kDone };

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Params p = parse(argc, argv);
  ensure_fds(p.connections + 64);
  int ncpu = int(sysconf(_SC_NPROCESSORS_ONLN));
  int server_cpu = p.pin != 0 && ncpu >= 2 ? 0 : -1;
  int client_cpu = p.pin != 0 && ncpu >= 2 ? 1 : -1;

  std::unique_ptr<harness::Counters> counters;
  Server srv = spawn(p, server_cpu, &counters);
  if (client_cpu >= 0) pin_to(0, client_cpu);
  std::string hello = read_line(srv, 60000);
  char addr[128], impl[32], variant[128];
  int procs = 0;
  if (sscanf(hello.c_str(), "ready %127s impl=%31s variant=%127s gomaxprocs=%d", addr, impl, variant, &procs) != 4)
    die(1, "unexpected first line from the server: " + hello);
  std::string a = addr;
  size_t colon = a.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(atoi(a.c_str() + colon + 1)));
  if (inet_pton(AF_INET, a.substr(0, colon).c_str(), &sa.sin_addr) != 1) die(1, "server address " + a + " is not IPv4");

  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> conns(size_t(p.connections));
  for (size_t i = 0; i < conns.size(); i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die(1, std::string("socket: ") + strerror(errno));
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      die(1, "connect " + std::to_string(i) + ": " + strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    conns[i].fd = fd;
    conns[i].sent.assign(size_t(p.inflight), 0);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }

  std::vector<char> msg(size_t(p.msg_size), 'x');
  std::vector<char> rbuf(size_t(std::max<int64_t>(p.msg_size * p.inflight, 64 << 10)));
  harness::Histogram hist(1, 10LL * 1000000000, 3);
  auto flush = [&](Conn& c) {
    while (c.tx_pending > 0) {
      size_t off = size_t((p.msg_size - c.tx_pending % p.msg_size) % p.msg_size);
      size_t len = std::min<size_t>(size_t(p.msg_size) - off, size_t(c.tx_pending));
      ssize_t n = send(c.fd, msg.data() + off, len, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) return;
        if (errno == EINTR) continue;
        die(1, std::string("send: ") + strerror(errno));
      }
      c.tx_pending -= n;
    }
  };
  auto send_one = [&](Conn& c, int64_t now) {
    c.sent[(c.head + c.inflight) % c.sent.size()] = now;
    c.inflight++;
    c.tx_pending += p.msg_size;
    flush(c);
  };

  Phase phase = kWarmup;
  int64_t t_start = harness::now_ns();
  int64_t t_begin = t_start + p.warmup_ms * 1000000;
  int64_t t_stop = 0, t_end = 0;
  int64_t trips = 0, cpu0 = 0, cpu1 = 0;
  for (auto& c : conns)
    for (int64_t k = 0; k < p.inflight; k++) send_one(c, t_start);

  std::vector<epoll_event> evs(1024);
  while (phase != kDone) {
    int n = epoll_wait(ep, evs.data(), int(evs.size()), 1);
    if (n < 0 && errno != EINTR) die(1, std::string("epoll_wait: ") + strerror(errno));
    int64_t now = harness::now_ns();
    for (int i = 0; i < n; i++) {
      Conn& c = conns[evs[size_t(i)].data.u64];
      if (evs[size_t(i)].events & EPOLLOUT) flush(c);
      if (!(evs[size_t(i)].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      for (;;) {
        ssize_t r = read(c.fd, rbuf.data(), rbuf.size());
        if (r < 0) {
          if (errno == EAGAIN) break;
          if (errno == EINTR) continue;
          die(1, std::string("read: ") + strerror(errno));
        }
        if (r == 0) die(1, "the server closed a connection");
        c.rx += r;
        while (c.rx >= p.msg_size && c.inflight > 0) {
          c.rx -= p.msg_size;
          int64_t sent = c.sent[c.head];
          c.head = (c.head + 1) % c.sent.size();
          c.inflight--;
          if (phase == kMeasure) {
            hist.record(now - sent);
            trips++;
          }
          send_one(c, now);
        }
      }
    }
    if (phase == kWarmup && now >= t_begin) {
      tell(srv, "begin\n");
      counters->start();
      cpu0 = proc_cpu_ns(srv.pid);
      t_begin = harness::now_ns();
      phase = kMeasure;
    } else if (phase == kMeasure &&
               ((p.duration_ms > 0 && now >= t_begin + p.duration_ms * 1000000) || (p.count > 0 && trips >= p.count))) {
      t_stop = now;
      counters->stop();
      cpu1 = proc_cpu_ns(srv.pid);
      tell(srv, "end\n");
      phase = kDone;
    }
  }
  t_end = t_stop - t_begin;
  harness::Json sched = parse_flat(read_line(srv, 30000));
  for (auto& c : conns) close(c.fd);
  close(srv.in);
  int status = 0;
  for (int i = 0; i < 1000 && waitpid(srv.pid, &status, WNOHANG) == 0; i++) usleep(10000);
  if (waitpid(srv.pid, &status, WNOHANG) == 0) {
    kill(srv.pid, SIGKILL);
    waitpid(srv.pid, &status, 0);
    die(1, "the server did not exit after \"end\"");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die(1, "the server failed (status " + std::to_string(status) + ")");
  if (trips == 0) die(1, "no round trip completed in the measured window");

  const harness::Counters::Value* tc = counters->find("task-clock");
  int64_t server_cpu_ns = tc != nullptr && tc->supported ? int64_t(tc->value) : cpu1 - cpu0;

  harness::Json params = harness::Json::object();
  params.set("busy", p.busy);
  params.set("connections", p.connections);
  params.set("count", p.count);
  params.set("duration_ms", p.duration_ms);
  params.set("inflight", p.inflight);
  params.set("msg_size", p.msg_size);
  params.set("pin", p.pin);
  params.set("warmup_ms", p.warmup_ms);
  harness::Json metrics = harness::Json::object();
  metrics.set("round_trips_per_sec", double(trips) * 1e9 / double(t_end));
  metrics.set("ns_per_round_trip", double(t_end) / double(trips));
  metrics.set("server_cpu_ns_per_round_trip", double(server_cpu_ns) / double(trips));
  metrics.set("server_cpu_utilisation", double(server_cpu_ns) / double(t_end));
  harness::Json hists = harness::Json::object();
  hists.set("round_trip_ns", hist.to_json());
  harness::Json rtm = harness::Json::object();
  rtm.set("sched", std::move(sched));
  rtm.set("stw_pause_ns", nullptr);
  rtm.set("gc", nullptr);
  rtm.set("memstats", nullptr);

  harness::Json r = harness::Json::object();
  r.set("schema", "rtlab.run");
  r.set("schema_version", 1);
  r.set("workload", "netpoll_echo");
  r.set("impl", std::string(impl));
  r.set("variant", std::string(variant));
  r.set("gomaxprocs", procs);
  r.set("params", std::move(params));
  r.set("ops", trips);
  r.set("wall_ns", t_end);
  r.set("cpu_ns", server_cpu_ns);
  r.set("metrics", std::move(metrics));
  r.set("histograms", std::move(hists));
  r.set("counters", counters->to_json());
  r.set("counter_info", counters->info_json());
  r.set("runtime", std::move(rtm));
  std::string out = r.dump();
  out += '\n';
  fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

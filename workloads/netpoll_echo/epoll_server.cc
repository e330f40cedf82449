// Workload "netpoll_echo", raw-epoll server: the limit, what the kernel
// and hardware give with no runtime at all. One thread, non-blocking
// sockets, edge-triggered epoll; each readable connection is drained and
// echoed at once (a short write leaves the rest for EPOLLOUT). Speaks the
// same protocol as the rt server (see loadgen.cc); it has no scheduler, so
// its counters line is null. --busy=N starts N threads that only compute
// (on the server's CPU): the kernel's scheduler then decides how long a
// ready connection waits, the reference for the runtimes' probe.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
  fprintf(stderr, "netpoll_echo epoll server: %s: %s\n", what, strerror(errno));
  exit(1);
}

struct Conn {
  std::string pending;  // echo bytes the socket did not take yet
};

constexpr uint64_t kListener = ~uint64_t(0);
constexpr uint64_t kStdin = ~uint64_t(0) - 1;

}  // namespace

int main(int argc, char** argv) {
  long busy = 0;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--busy=", 7) != 0) {
      fprintf(stderr, "netpoll_echo epoll server: unknown argument '%s'\n", argv[i]);
      return 2;
    }
    busy = strtol(argv[i] + 7, nullptr, 10);
  }
  for (long i = 0; i < busy; i++) {
    std::thread([] {
      volatile uint64_t x = 0;
      for (;;) x = x + 1;
    }).detach();
  }
  signal(SIGPIPE, SIG_IGN);
  int ln = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ln, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(ln, 4096) != 0) die("listen");
  socklen_t len = sizeof sa;
  getsockname(ln, reinterpret_cast<sockaddr*>(&sa), &len);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListener;
  epoll_ctl(ep, EPOLL_CTL_ADD, ln, &ev);
  ev.data.u64 = kStdin;
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
  // One thread whatever GOMAXPROCS says; the cell's value is reported so
  // that the record matches the cell it was run for.
  const char* procs = getenv("GOMAXPROCS");
  printf("ready 127.0.0.1:%u impl=native variant=epoll gomaxprocs=%d\n", ntohs(sa.sin_port),
         procs != nullptr && atoi(procs) > 0 ? atoi(procs) : 1);
  fflush(stdout);

  std::vector<Conn> conns;
  std::vector<char> buf(64 << 10);
  std::string cmd;
  std::vector<epoll_event> evs(1024);
  for (;;) {
    int n = epoll_wait(ep, evs.data(), int(evs.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      uint64_t id = evs[size_t(i)].data.u64;
      if (id == kListener) {
        for (;;) {
          int c = accept4(ln, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) break;
            die("accept4");
          }
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (size_t(c) >= conns.size()) conns.resize(size_t(c) + 1);
          conns[size_t(c)].pending.clear();
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
          cev.data.u64 = uint64_t(c);
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      if (id == kStdin) {
        char ch;
        ssize_t r = read(0, &ch, 1);
        if (r <= 0) return 0;
        if (ch != '\n') {
          cmd += ch;
          continue;
        }
        if (cmd == "end") {
          printf("null\n");
          fflush(stdout);
          return 0;
        }
        cmd.clear();
        continue;
      }
      int fd = int(id);
      Conn& c = conns[size_t(fd)];
      bool closed = false;
      auto flush = [&] {
        while (!c.pending.empty()) {
          ssize_t w = send(fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
          if (w < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) closed = true;
            return;
          }
          c.pending.erase(0, size_t(w));
        }
      };
      flush();
      while (!closed) {
        ssize_t r = read(fd, buf.data(), buf.size());
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          closed = true;
          break;
        }
        if (r < 0) {
          if (errno == EAGAIN) break;
          continue;
        }
        if (c.pending.empty()) {
          ssize_t w = send(fd, buf.data(), size_t(r), MSG_NOSIGNAL);
          if (w < 0 && errno != EAGAIN && errno != EINTR) {
            closed = true;
            break;
          }
          if (w < 0) w = 0;
          if (w < r) c.pending.append(buf.data() + w, size_t(r - w));
        } else {
          c.pending.append(buf.data(), size_t(r));
          flush();
        }
      }
      if (closed) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
      }
    }
  }
}

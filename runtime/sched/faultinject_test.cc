// The runtime's handling of failing OS calls: thread creation and heap
// growth failing through the test-only injection points (faultinject.h;
// the failure paths that follow are the real ones), and rt::sys calls
// interrupted by a real signal storm.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

#include "rt/rt.h"
#include "runtime/mem/malloc.h"
#include "runtime/sched/faultinject.h"

namespace {

using rt::internal::FaultPoint;
using rt::internal::inject_fault;

TEST(FaultDeathTest, ThreadCreationFailurePrintsGosNewosprocError) {
  // As root, RLIMIT_NPROC does not apply, so the failure is injected.
  EXPECT_EXIT(
      {
        inject_fault(FaultPoint::kThreadCreate, EAGAIN);
        rt::gomaxprocs(2);
        // Each goroutine blocks its thread in the kernel; sysmon hands its
        // P to another thread while runnable goroutines wait, and once the
        // idle threads are used up that thread must be created.
        for (int i = 0; i < 8; i++) rt::go([] { rt::sys::nanosleep(500'000'000); });
        rt::sys::nanosleep(5'000'000'000);
        _exit(0);
      },
      testing::ExitedWithCode(2),
      "runtime: failed to create new OS thread \\(have [0-9]+ already; errno=11\\)\n"
      "runtime: may need to increase max user processes \\(ulimit -u\\)\n"
      "fatal error: newosproc\n");
}

TEST(FaultDeathTest, HeapGrowthFailurePrintsGosOutOfMemoryError) {
  EXPECT_EXIT(
      {
        inject_fault(FaultPoint::kArenaMap, ENOMEM);
        // Larger than the arenas reserved so far: the heap must grow.
        rt::internal::mallocgc(size_t(256) << 20, false);
        _exit(0);
      },
      testing::ExitedWithCode(2),
      "runtime: out of memory: cannot allocate 268435456-byte block \\([0-9]+ in use\\)\nfatal error: out of memory\n");
}

// ---- EINTR ----------------------------------------------------------------

std::atomic<int> signals_caught{0};
void count_signal(int) { signals_caught.fetch_add(1, std::memory_order_relaxed); }

pid_t gettid_now() { return pid_t(syscall(SYS_gettid)); }

TEST(SysEintr, CallsReturnTheirResultsThroughASignalStorm) {
  // A handler without SA_RESTART: a signal that arrives while a call
  // blocks makes the kernel fail it with EINTR.
  struct sigaction sa {}, old {};
  sa.sa_handler = count_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);

  constexpr size_t kBytes = 1 << 20;  // 16 pipe buffers: the writer blocks
  std::atomic<pid_t> reader_tid{0}, writer_tid{0};
  std::atomic<bool> stop{false};
  std::thread storm([&] {
    while (!stop.load()) {
      for (pid_t t : {reader_tid.load(), writer_tid.load()}) {
        if (t != 0) syscall(SYS_tgkill, getpid(), t, SIGUSR1);
      }
      usleep(20);
    }
  });

  std::vector<unsigned char> got;
  int64_t slept_ns = 0;
  int sleep_result = -1;
  bool read_error = false, write_error = false;
  rt::WaitGroup wg;
  wg.add(2);
  rt::go([&] {
    rt::lock_os_thread();  // the storm targets this thread
    reader_tid = gettid_now();
    unsigned char buf[4096];
    while (got.size() < kBytes) {
      // The first read waits about 30 ms for the writer, under the storm.
      ssize_t n = rt::sys::read(fds[0], buf, sizeof buf);
      if (n <= 0) {
        read_error = true;
        break;
      }
      got.insert(got.end(), buf, buf + n);
    }
    reader_tid = 0;
    rt::unlock_os_thread();
    wg.done();
  });
  rt::go([&] {
    rt::lock_os_thread();
    writer_tid = gettid_now();
    int64_t t0 = rt::nanotime();
    sleep_result = rt::sys::nanosleep(30'000'000);
    slept_ns = rt::nanotime() - t0;
    std::vector<unsigned char> data(kBytes);
    for (size_t i = 0; i < kBytes; i++) data[i] = static_cast<unsigned char>(i % 251);
    size_t off = 0;
    while (off < kBytes) {
      ssize_t n = rt::sys::write(fds[1], data.data() + off, kBytes - off);
      if (n <= 0) {
        write_error = true;
        break;
      }
      off += size_t(n);
    }
    writer_tid = 0;
    rt::unlock_os_thread();
    wg.done();
  });
  wg.wait();
  stop = true;
  storm.join();
  sigaction(SIGUSR1, &old, nullptr);
  close(fds[0]);
  close(fds[1]);

  EXPECT_GT(signals_caught.load(), 100) << "the storm did not reach the calls";
  EXPECT_FALSE(read_error);
  EXPECT_FALSE(write_error);
  EXPECT_EQ(sleep_result, 0);
  EXPECT_GE(slept_ns, 30'000'000);
  ASSERT_EQ(got.size(), kBytes);
  for (size_t i = 0; i < kBytes; i++) {
    if (got[i] != static_cast<unsigned char>(i % 251)) {
      ADD_FAILURE() << "byte " << i << " is " << int(got[i]);
      break;
    }
  }
}

}  // namespace

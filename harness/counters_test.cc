// Software counters against independent measurements: a known number of
// fresh pages touched (page faults) and of voluntary sleeps on a thread
// created after the counters were opened (context switches; this also
// checks inherit=1). Hardware counters are either a positive value or
// "unsupported", never 0.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <thread>

#include "harness/counters.h"

namespace {

TEST(Counters, PageFaultsCountFreshPages) {
  constexpr int kPages = 2000;
  const long page = sysconf(_SC_PAGESIZE);
  harness::Counters c({"page-faults"});
  char* mem = static_cast<char*>(mmap(nullptr, kPages * page, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  ASSERT_NE(mem, MAP_FAILED);
  madvise(mem, kPages * page, MADV_NOHUGEPAGE);
  c.start();
  for (int i = 0; i < kPages; i++) mem[i * page] = 1;
  c.stop();
  munmap(mem, kPages * page);
  const auto* v = c.find("page-faults");
  ASSERT_NE(v, nullptr);
  ASSERT_TRUE(v->supported) << v->error;
  EXPECT_GE(v->value, kPages);
  EXPECT_LT(v->value, kPages * 3);
}

TEST(Counters, ContextSwitchesOfAnInheritingThread) {
  constexpr int kSleeps = 50;
  harness::Counters c({"context-switches", "task-clock"});
  c.start();
  struct rusage before, after;
  long nvcsw = 0;
  std::thread t([&] {
    getrusage(RUSAGE_THREAD, &before);
    for (int i = 0; i < kSleeps; i++) usleep(200);
    getrusage(RUSAGE_THREAD, &after);
    nvcsw = after.ru_nvcsw - before.ru_nvcsw;
  });
  t.join();
  c.stop();
  const auto* v = c.find("context-switches");
  ASSERT_TRUE(v->supported) << v->error;
  EXPECT_GE(nvcsw, kSleeps);          // the kernel's own count agrees...
  EXPECT_GE(v->value, kSleeps);       // ...and the inherited counter saw them
  EXPECT_GE(v->value, double(nvcsw));
  const auto* tc = c.find("task-clock");
  ASSERT_TRUE(tc->supported) << tc->error;
  EXPECT_GT(tc->value, 0);
}

TEST(Counters, HardwareIsAValueOrUnsupportedNeverZero) {
  harness::Counters c;  // defaults
  c.start();
  volatile uint64_t x = 0;
  for (int i = 0; i < 1000000; i++) x = x + uint64_t(i);
  c.stop();
  harness::Json j = c.to_json();
  for (const char* name : {"cycles", "instructions", "branch-misses", "cache-misses"}) {
    const auto* v = c.find(name);
    ASSERT_NE(v, nullptr);
    std::string s = j.get(name)->dump();
    if (v->supported) {
      if (std::string(name) == "cycles" || std::string(name) == "instructions") EXPECT_GT(v->value, 0) << name;
    } else {
      EXPECT_EQ(s, "\"unsupported\"") << name;
      EXPECT_FALSE(v->error.empty());
      EXPECT_NE(c.info_json().get(name)->get("error"), nullptr);
    }
  }
}

TEST(Counters, UnknownEventIsUnsupportedWithReason) {
  harness::Counters c({"no-such-event-xyz", "page-faults"});
  c.start();
  c.stop();
  EXPECT_FALSE(c.find("no-such-event-xyz")->supported);
  EXPECT_NE(c.find("no-such-event-xyz")->error.find("libpfm4"), std::string::npos);
  EXPECT_EQ(c.to_json().get("no-such-event-xyz")->dump(), "\"unsupported\"");
  EXPECT_TRUE(c.find("page-faults")->supported);
}

}  // namespace

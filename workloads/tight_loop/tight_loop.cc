// Workload "tight_loop": what asynchronous preemption buys and costs.
//
// Spinners run call-free loops (a 64-bit LCG step per iteration) in chunks
// of chunk_iters iterations, with a safe point (rt::preempt_point; in Go,
// the call of the next chunk) between chunks. Four phases of phase_ms
// each, in one run:
//   probe    the spinners (GOMAXPROCS of them unless --spinners) plus a
//            probe goroutine that sleeps 1 ms in a loop: the probe's
//            wake-up latency (time asleep minus 1 ms), the spinners'
//            iterations per second, preemptions per second;
//   noprobe  the spinners alone: their iterations per second, so that
//            spin_throughput_ratio = probe rate / noprobe rate is the cost
//            of serving the probe;
//   stw      the spinners plus a goroutine that changes GOMAXPROCS from n
//            to n+1 and back every stw_every_ms: the duration of each
//            change (a stop-the-world that must stop every spinner);
//   cost     one spinner alone: every preemption only interrupts and
//            resumes it, so the runtime's signal-to-resume histogram is
//            the cost of one preemption (rt only: preempt_resume_ns).
// Under coop a spinner gives up its P only between chunks, so the probe
// and the stop-the-world wait for a chunk to end; under signal sysmon
// preempts it after its 10 ms slice. signal_roundtrip_ns is the machine's
// raw cost of one signal to the calling thread with an empty handler (the
// floor under any signal-based preemption). Twin: go/main.go.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "harness/histogram.h"
#include "harness/timer.h"
#include "harness/workload.h"
#include "rt/metrics.h"
#include "rt/rt.h"

namespace {

std::atomic<uint64_t> sink{0};

// One chunk of the call-free loop; the asm keeps the compiler from
// computing the recurrence in closed form or vectorising it.
__attribute__((noinline)) uint64_t spin_chunk(uint64_t n, uint64_t x) {
  for (uint64_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    asm volatile("" : "+r"(x));
  }
  return x;
}

struct Phase {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> iterations{0};
  rt::WaitGroup wg;
};

void start_spinners(Phase* ph, int64_t n, uint64_t chunk) {
  for (int64_t i = 0; i < n; i++) {
    ph->wg.add(1);
    rt::go([ph, chunk, i] {
      uint64_t x = uint64_t(i) + 1, done = 0;
      while (!ph->stop.load(std::memory_order_relaxed)) {
        x = spin_chunk(chunk, x);
        done += chunk;
        rt::preempt_point();
      }
      ph->iterations.fetch_add(done);
      sink.fetch_add(x, std::memory_order_relaxed);
      ph->wg.done();
    });
  }
}

// Runs the phase's goroutines for ms, then stops them; returns the
// spinners' iterations per second.
double finish(Phase* ph, int64_t ms) {
  int64_t t0 = harness::now_ns();
  rt::sleep(ms * 1'000'000);
  ph->stop.store(true);
  ph->wg.wait();
  return double(ph->iterations.load()) * 1e9 / double(harness::now_ns() - t0);
}

void on_sigusr1(int) {}

// Nanoseconds per tgkill of the calling thread with an empty handler.
double signal_roundtrip_ns() {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
  constexpr int kRounds = 20000;
  pid_t pid = getpid();
  double best = 1e18;
  for (int rep = 0; rep < 5; rep++) {
    pid_t tid = pid_t(syscall(SYS_gettid));  // the goroutine may have moved
    int64_t t0 = harness::now_ns();
    for (int i = 0; i < kRounds; i++) syscall(SYS_tgkill, pid, tid, SIGUSR1);
    double per = double(harness::now_ns() - t0) / kRounds;
    if (per < best) best = per;
  }
  return best;
}

int64_t median_of(const rt::metrics::HistogramSnapshot& h) {
  uint64_t seen = 0;
  for (const auto& b : h.buckets) {
    seen += b.count;
    if (2 * seen >= h.count) return b.hi;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  harness::Workload w("tight_loop", argc, argv);
  int64_t spinners = w.param_int("spinners", 0);
  const int64_t phase_ms = w.param_int("phase_ms", 2000);
  const uint64_t chunk = uint64_t(w.param_int("chunk_iters", 40'000'000));
  const int64_t stw_every_ms = w.param_int("stw_every_ms", 5);
  w.check_params();
  return rt::run(argc, argv, [&] {
    const int procs = rt::gomaxprocs(0);
    if (spinners <= 0) spinners = procs;
    const double roundtrip = signal_roundtrip_ns();
    harness::Histogram probe_hist(1, 60LL * 1000000000, 3);
    harness::Histogram stw_hist(1, 60LL * 1000000000, 3);
    w.begin();

    Phase probe;
    start_spinners(&probe, spinners, chunk);
    probe.wg.add(1);
    rt::go([&] {
      while (!probe.stop.load()) {
        int64_t t0 = harness::now_ns();
        rt::sleep(1'000'000);
        probe_hist.record(harness::now_ns() - t0 - 1'000'000);
      }
      probe.wg.done();
    });
    const rt::SchedStats s0 = rt::read_sched_stats();
    const int64_t t0 = harness::now_ns();
    const double rate_probe = finish(&probe, phase_ms);
    const double probe_secs = double(harness::now_ns() - t0) / 1e9;
    const rt::SchedStats s1 = rt::read_sched_stats();

    Phase noprobe;
    start_spinners(&noprobe, spinners, chunk);
    const double rate_noprobe = finish(&noprobe, phase_ms);

    Phase stw;
    start_spinners(&stw, spinners, chunk);
    stw.wg.add(1);
    rt::go([&] {
      while (!stw.stop.load()) {
        rt::sleep(stw_every_ms * 1'000'000);
        int64_t a = harness::now_ns();
        rt::gomaxprocs(procs + 1);
        int64_t b = harness::now_ns();
        rt::gomaxprocs(procs);
        stw_hist.record(b - a);
        stw_hist.record(harness::now_ns() - b);
      }
      stw.wg.done();
    });
    finish(&stw, phase_ms);

    Phase cost;
    start_spinners(&cost, 1, chunk);
    const auto p0 = rt::metrics::async_preempts();
    finish(&cost, phase_ms);
    const auto resume = rt::metrics::async_preempts().since(p0);

    w.end(probe.iterations + noprobe.iterations + stw.iterations + cost.iterations);
    w.histogram("probe_wake_ns", probe_hist);
    w.histogram("stw_ns", stw_hist);
    w.metric("probe_p50_ns", double(probe_hist.percentile(50)));
    w.metric("probe_p99_ns", double(probe_hist.percentile(99)));
    w.metric("probe_max_ns", double(probe_hist.max()));
    w.metric("stw_p99_ns", double(stw_hist.percentile(99)));
    w.metric("stw_max_ns", double(stw_hist.max()));
    w.metric("spin_iters_per_sec_probe", rate_probe);
    w.metric("spin_iters_per_sec_noprobe", rate_noprobe);
    w.metric("spin_throughput_ratio", rate_probe / rate_noprobe);
    w.metric("preemptions_per_sec", double(s1.preemptions - s0.preemptions) / probe_secs);
    w.metric("async_preemptions_per_sec", double(s1.async_preemptions - s0.async_preemptions) / probe_secs);
    if (resume.count > 0) {
      w.metric("preempt_resume_p50_ns", double(median_of(resume)));
      w.metric("preempt_resume_mean_ns", double(resume.sum) / double(resume.count));
    }
    w.metric("signal_roundtrip_ns", roundtrip);
    return w.emit();
  });
}

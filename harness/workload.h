// The frame every rtlab workload program uses: parameters from the command
// line, counters opened before the runtime starts (so that inherit=1 covers
// every runtime thread), a measured region, and one JSON record on stdout
// (schema in harness/README.md).
//
//   int main(int argc, char** argv) {
//     harness::Workload w("spawn", argc, argv);
//     int64_t n = w.param_int("goroutines", 100000);
//     w.check_params();
//     return rt::run(argc, argv, [&] {
//       w.begin();
//       ... work ...
//       w.end(n);                      // n operations
//       w.metric("ns_per_goroutine", double(w.wall_ns()) / n);
//       w.histogram("spawn_to_run_ns", hist);
//       return w.emit();
//     });
//   }
//
// Parameters are --name=value arguments; an unknown one, or a value that
// does not parse, ends the program with status 2 and a message on stderr.
// GOMAXPROCS comes from the environment, as for any rt program.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "harness/counters.h"
#include "harness/histogram.h"
#include "harness/json.h"
#include "rt/metrics.h"
#include "rt/rt.h"

namespace harness {

inline constexpr int kSchemaVersion = 1;

// {"layout":"log-linear", "count", "min", "max", "mean", "p50", "p90",
//  "p99", "p999", "buckets": [[lo,hi,count],...]} of a runtime histogram.
Json runtime_histogram_json(const rt::metrics::HistogramSnapshot& s);

// The record's runtime.gc of the collections that ended between two
// snapshots: {cycles, forced_cycles, max_pause_ns, pause_total_ns,
// pause_ns (histogram of the PauseNs ring's last min(cycles, 256)),
// cpu_fraction (GCCPUFraction of m1)}, as the Go twins fill it.
Json gc_json(const rt::MemStats& m0, const rt::MemStats& m1);

// Samples MemStats.HeapAlloc every period on a goroutine of its own and
// keeps the largest (read_mem_stats does not stop the world); the Go twin
// is measure.HeapPeak. Construct and stop inside rt::run.
class HeapPeak {
 public:
  explicit HeapPeak(int64_t period_ns);
  // Ends the sampling (waits for the sampler) and returns the peak in bytes.
  uint64_t stop();

 private:
  void sample();
  const int64_t period_ns_;
  uint64_t peak_;
  std::atomic<bool> stop_{false};
  rt::WaitGroup done_;
};

class Workload {
 public:
  Workload(std::string name, int argc, char** argv);

  int64_t param_int(const std::string& name, int64_t def);
  double param_double(const std::string& name, double def);
  std::string param_str(const std::string& name, const std::string& def);
  // Exits with status 2 if the command line named a parameter no param_*
  // call asked for.
  void check_params();

  // The measured region. Call both from inside rt::run.
  void begin();
  void end(uint64_t ops);
  int64_t wall_ns() const { return wall_ns_; }

  void metric(const std::string& name, double value);
  void histogram(const std::string& name, const Histogram& h);

  // Prints the record as one line on stdout; returns 0 (main's result).
  int emit();
  Json record() const;

 private:
  [[noreturn]] void usage_error(const std::string& msg);

  std::string name_;
  std::map<std::string, std::string> args_;
  std::set<std::string> asked_;
  Json params_ = Json::object();
  Json metrics_ = Json::object();
  Json histograms_ = Json::object();
  std::unique_ptr<Counters> counters_;
  rt::SchedStats sched0_{}, sched1_{};
  rt::MemStats mem0_{}, mem1_{};
  rt::metrics::HistogramSnapshot stw0_, stw1_, stopping0_, stopping1_, lat0_, lat1_;
  int64_t t0_ = 0, wall_ns_ = 0, cpu0_ = 0, cpu_ns_ = 0;
  uint64_t ops_ = 0;
  bool ended_ = false;
};

}  // namespace harness

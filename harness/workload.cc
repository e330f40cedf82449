#include "harness/workload.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <utility>

#include "harness/timer.h"

namespace harness {

Json runtime_histogram_json(const rt::metrics::HistogramSnapshot& s) {
  Json j = Json::object();
  j.set("layout", "log-linear");
  j.set("count", s.count);
  j.set("min", s.buckets.empty() ? int64_t(0) : s.buckets.front().lo);
  // The delta's largest value is only known to its bucket.
  int64_t mx = s.buckets.empty() ? 0 : s.buckets.back().hi;
  if (s.max > 0 && s.max < mx) mx = s.max;
  j.set("max", mx);
  j.set("mean", s.count ? double(s.sum) / double(s.count) : 0.0);
  auto pct = [&](double p) -> int64_t {
    if (s.count == 0) return 0;
    uint64_t want = uint64_t(p / 100.0 * double(s.count) + 0.5);
    if (want < 1) want = 1;
    uint64_t seen = 0;
    for (const auto& b : s.buckets) {
      seen += b.count;
      if (seen >= want) return b.hi < mx ? b.hi : mx;
    }
    return mx;
  };
  j.set("p50", pct(50));
  j.set("p90", pct(90));
  j.set("p99", pct(99));
  j.set("p999", pct(99.9));
  Json b = Json::array();
  for (const auto& x : s.buckets) b.push(Json(Json::Array{Json(x.lo), Json(x.hi), Json(x.count)}));
  j.set("buckets", std::move(b));
  return j;
}

Json gc_json(const rt::MemStats& m0, const rt::MemStats& m1) {
  // The pauses of the collections that ended between m0 and m1, from the
  // PauseNs ring (the last 256 of them), in the layout the Go twins use.
  Histogram pauses(1, 60LL * 1000000000, 3);
  const uint32_t cycles = m1.NumGC - m0.NumGC;
  int64_t max_pause = 0;
  for (uint32_t i = 0; i < cycles && i < 256; i++) {
    const int64_t p = int64_t(m1.PauseNs[(m1.NumGC - 1 - i + 256) % 256]);
    pauses.record(p);
    if (p > max_pause) max_pause = p;
  }
  Json gc = Json::object();
  gc.set("cycles", cycles);
  gc.set("forced_cycles", m1.NumForcedGC - m0.NumForcedGC);
  gc.set("max_pause_ns", max_pause);
  gc.set("pause_total_ns", m1.PauseTotalNs - m0.PauseTotalNs);
  gc.set("pause_ns", pauses.to_json());
  gc.set("cpu_fraction", m1.GCCPUFraction);
  return gc;
}

HeapPeak::HeapPeak(int64_t period_ns) : period_ns_(period_ns), peak_(rt::read_mem_stats().HeapAlloc) {
  done_.add(1);
  rt::go([this] {
    while (!stop_.load(std::memory_order_acquire)) {
      rt::sleep(period_ns_);
      sample();
    }
    done_.done();
  });
}

void HeapPeak::sample() {
  const uint64_t v = rt::read_mem_stats().HeapAlloc;
  if (v > peak_) peak_ = v;
}

uint64_t HeapPeak::stop() {
  stop_.store(true, std::memory_order_release);
  done_.wait();
  sample();
  return peak_;
}

Workload::Workload(std::string name, int argc, char** argv) : name_(std::move(name)) {
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      fprintf(stderr, "usage: %s [--param=value ...]  (prints one JSON record on stdout)\n", argv[0]);
      exit(0);
    }
    if (a.rfind("--", 0) != 0 || a.find('=') == std::string::npos)
      usage_error("bad argument '" + a + "' (want --name=value)");
    size_t eq = a.find('=');
    args_[a.substr(2, eq - 2)] = a.substr(eq + 1);
  }
  // Before rt::run: the runtime's threads inherit the counters.
  counters_ = std::make_unique<Counters>();
}

void Workload::usage_error(const std::string& msg) {
  fprintf(stderr, "%s: %s\n", name_.c_str(), msg.c_str());
  exit(2);
}

int64_t Workload::param_int(const std::string& name, int64_t def) {
  asked_.insert(name);
  int64_t v = def;
  auto it = args_.find(name);
  if (it != args_.end()) {
    char* end = nullptr;
    errno = 0;
    long long x = strtoll(it->second.c_str(), &end, 0);
    if (errno != 0 || end == it->second.c_str() || *end != 0)
      usage_error("parameter " + name + ": '" + it->second + "' is not an integer");
    v = x;
  }
  params_.set(name, v);
  return v;
}

double Workload::param_double(const std::string& name, double def) {
  asked_.insert(name);
  double v = def;
  auto it = args_.find(name);
  if (it != args_.end()) {
    char* end = nullptr;
    v = strtod(it->second.c_str(), &end);
    if (end == it->second.c_str() || *end != 0)
      usage_error("parameter " + name + ": '" + it->second + "' is not a number");
  }
  params_.set(name, v);
  return v;
}

std::string Workload::param_str(const std::string& name, const std::string& def) {
  asked_.insert(name);
  auto it = args_.find(name);
  std::string v = it == args_.end() ? def : it->second;
  params_.set(name, v);
  return v;
}

void Workload::check_params() {
  for (const auto& kv : args_)
    if (!asked_.count(kv.first)) usage_error("unknown parameter '" + kv.first + "'");
}

void Workload::begin() {
  sched0_ = rt::read_sched_stats();
  mem0_ = rt::read_mem_stats();
  stw0_ = rt::metrics::stw_pauses();
  stopping0_ = rt::metrics::stw_stopping();
  lat0_ = rt::metrics::sched_latency();
  cpu0_ = process_cpu_ns();
  counters_->start();
  t0_ = now_ns();
}

void Workload::end(uint64_t ops) {
  wall_ns_ = now_ns() - t0_;
  counters_->stop();
  cpu_ns_ = process_cpu_ns() - cpu0_;
  sched1_ = rt::read_sched_stats();
  mem1_ = rt::read_mem_stats();
  stw1_ = rt::metrics::stw_pauses();
  stopping1_ = rt::metrics::stw_stopping();
  lat1_ = rt::metrics::sched_latency();
  ops_ = ops;
  ended_ = true;
}

void Workload::metric(const std::string& name, double value) { metrics_.set(name, value); }

void Workload::histogram(const std::string& name, const Histogram& h) { histograms_.set(name, h.to_json()); }

Json Workload::record() const {
  Json r = Json::object();
  r.set("schema", "rtlab.run");
  r.set("schema_version", kSchemaVersion);
  r.set("workload", name_);
  r.set("impl", "rt");
  r.set("variant", rt::variant_name());
  r.set("gomaxprocs", rt::gomaxprocs(0));
  // The GOGC and GODEBUG the program saw (null when unset); rtlab checks
  // them against the cell's.
  for (const auto& [field, key] : {std::pair{"gogc", "GOGC"}, {"godebug", "GODEBUG"}}) {
    const char* v = getenv(key);
    r.set(field, v ? Json(std::string(v)) : Json(nullptr));
  }
  r.set("params", params_);
  r.set("ops", ops_);
  r.set("wall_ns", wall_ns_);
  r.set("cpu_ns", cpu_ns_);
  r.set("metrics", metrics_);
  r.set("histograms", histograms_);
  r.set("counters", counters_->to_json());
  r.set("counter_info", counters_->info_json());

  Json sched = Json::object();
  sched.set("ctxswitches", sched1_.ctxswitches - sched0_.ctxswitches);
  sched.set("goroutines_created", sched1_.goroutines_created - sched0_.goroutines_created);
  sched.set("steal_attempts", sched1_.steal_attempts - sched0_.steal_attempts);
  sched.set("steals", sched1_.stolen - sched0_.stolen);
  sched.set("spinning_wakeups", sched1_.spinning_wakeups - sched0_.spinning_wakeups);
  sched.set("parks", sched1_.parks - sched0_.parks);
  sched.set("readies", sched1_.readies - sched0_.readies);
  sched.set("preemptions", sched1_.preemptions - sched0_.preemptions);
  sched.set("stw", sched1_.stw_count - sched0_.stw_count);
  sched.set("preempt_signals", sched1_.preempt_signals - sched0_.preempt_signals);
  sched.set("async_preemptions", sched1_.async_preemptions - sched0_.async_preemptions);
  const auto& r0 = sched0_.preempt_refused;
  const auto& r1 = sched1_.preempt_refused;
  for (const auto& [key, v1, v0] : {std::tuple{"not_user_g", r1.not_user_g, r0.not_user_g},
                                     {"stale", r1.stale, r0.stale},
                                     {"syscall", r1.syscall, r0.syscall},
                                     {"locks", r1.locks, r0.locks},
                                     {"runtime_pc", r1.runtime_pc, r0.runtime_pc},
                                     {"foreign_pc", r1.foreign_pc, r0.foreign_pc},
                                     {"stack", r1.stack, r0.stack},
                                     {"sigmask", r1.sigmask, r0.sigmask}}) {
    sched.set(std::string("preempt_refused_") + key, v1 - v0);
  }
  sched.set("threads", sched1_.threads);
  Json rtm = Json::object();
  rtm.set("sched", std::move(sched));
  rtm.set("stw_pause_ns", runtime_histogram_json(stw1_.since(stw0_)));
  rtm.set("stw_stopping_ns", runtime_histogram_json(stopping1_.since(stopping0_)));
  rtm.set("sched_latency_ns",
          rt::metrics::sched_latency_enabled() ? runtime_histogram_json(lat1_.since(lat0_)) : Json(nullptr));
  rtm.set("gc", gc_json(mem0_, mem1_));
  // The keys the Go twin reports, with rt's span-level figures beside them.
  Json mem = Json::object();
  mem.set("heap_alloc", mem1_.HeapAlloc);
  mem.set("heap_sys", mem1_.HeapSys);
  mem.set("sys", mem1_.Sys);
  mem.set("total_alloc", mem1_.TotalAlloc - mem0_.TotalAlloc);
  mem.set("mallocs", mem1_.Mallocs - mem0_.Mallocs);
  mem.set("frees", mem1_.Frees - mem0_.Frees);
  mem.set("num_gc", mem1_.NumGC);
  mem.set("next_gc", mem1_.NextGC);
  mem.set("heap_inuse", mem1_.HeapInuse);
  mem.set("heap_released", mem1_.HeapReleased);
  mem.set("heap_objects", mem1_.HeapObjects);
  mem.set("stack_inuse", mem1_.StackInuse);
  rtm.set("memstats", std::move(mem));
  r.set("runtime", std::move(rtm));

  Json build = Json::object();
  build.set("compiler", std::string("g++ ") + __VERSION__);
  r.set("build", std::move(build));
  return r;
}

int Workload::emit() {
  if (!ended_) {
    fprintf(stderr, "%s: emit() without begin()/end()\n", name_.c_str());
    return 3;
  }
  std::string s = record().dump();
  s += '\n';
  fwrite(s.data(), 1, s.size(), stdout);
  fflush(stdout);
  return 0;
}

}  // namespace harness

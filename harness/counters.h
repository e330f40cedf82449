// Hardware and software counters through perf_event_open, with events named
// via libpfm4 ("cycles", "instructions", "branch-misses", "cache-misses",
// "task-clock", "context-switches", "cpu-migrations", "page-faults", or any
// name libpfm4 knows, e.g. "perf::PERF_COUNT_HW_CACHE_REFERENCES").
//
// Counters are opened on the calling thread with inherit=1: every thread it
// creates afterwards is counted too, so open them BEFORE rt::run (which
// starts the runtime's threads). They may instead be opened on another
// process (pid), with the same inheritance: a load generator counts the
// server it forked by opening them before the child execs. Hardware events are opened as one group
// (one leader, members scheduled together) where the PMU allows; an event
// the group refuses is retried on its own. Each event is read on its own
// fd (PERF_FORMAT_GROUP does not combine with inherit), scaled by
// time_enabled / time_running when the kernel multiplexed it.
//
// An event that cannot be opened (no PMU in a VM, unknown name, not
// permitted) or was never scheduled is reported as unsupported with the
// reason: its value is never a made-up zero.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "harness/json.h"

namespace harness {

class Counters {
 public:
  struct Value {
    std::string name;
    bool supported = false;
    double value = 0;        // scaled when multiplexed
    uint64_t raw = 0;
    uint64_t time_enabled = 0, time_running = 0;
    std::string group;       // "hw" (grouped hardware events) or "" (alone)
    std::string error;       // why unsupported
  };

  // cycles, instructions, branch-misses, cache-misses, task-clock,
  // context-switches, cpu-migrations, page-faults.
  static std::vector<std::string> default_events();

  // Opens (disabled) every event, on the calling thread (pid 0) or on
  // process pid. Never throws for unsupported events.
  explicit Counters(const std::vector<std::string>& events = default_events(), int pid = 0);
  ~Counters();
  Counters(const Counters&) = delete;
  Counters& operator=(const Counters&) = delete;

  void start();  // reset and enable every counter (and its inherited children)
  void stop();   // disable and read
  const std::vector<Value>& values() const { return values_; }
  const Value* find(const std::string& name) const;

  // {"name": value | "unsupported", ...}
  Json to_json() const;
  // {"name": {"group": ..., "time_enabled": ..., "time_running": ...} |
  //          {"error": "..."}, ...}
  Json info_json() const;

 private:
  struct Event {
    int fd = -1;
    bool hardware = false;
  };
  std::vector<Event> events_;
  std::vector<Value> values_;
};

}  // namespace harness

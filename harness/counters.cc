#include "harness/counters.h"

#include <errno.h>
#include <perfmon/pfmlib_perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace harness {

namespace {

bool pfm_ready() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] { ok = pfm_initialize() == PFM_SUCCESS; });
  return ok;
}

// Software events: opened directly if libpfm4 has no name for them.
struct SwEvent {
  const char* name;
  uint64_t config;
};
constexpr SwEvent kSoftware[] = {
    {"task-clock", PERF_COUNT_SW_TASK_CLOCK},
    {"cpu-clock", PERF_COUNT_SW_CPU_CLOCK},
    {"context-switches", PERF_COUNT_SW_CONTEXT_SWITCHES},
    {"cs", PERF_COUNT_SW_CONTEXT_SWITCHES},
    {"cpu-migrations", PERF_COUNT_SW_CPU_MIGRATIONS},
    {"migrations", PERF_COUNT_SW_CPU_MIGRATIONS},
    {"page-faults", PERF_COUNT_SW_PAGE_FAULTS},
    {"faults", PERF_COUNT_SW_PAGE_FAULTS},
    {"minor-faults", PERF_COUNT_SW_PAGE_FAULTS_MIN},
    {"major-faults", PERF_COUNT_SW_PAGE_FAULTS_MAJ},
};

std::string errno_text(const char* what, int e) {
  std::string s = what;
  s += ": ";
  s += strerror(e);
  const char* n = strerrorname_np(e);
  if (n != nullptr) {
    s += " (";
    s += n;
    s += ")";
  }
  return s;
}

// Fills attr from a name: the built-in software table first (exact perf
// semantics), then libpfm4. Returns "" or an error.
std::string encode(const std::string& name, struct perf_event_attr* attr) {
  memset(attr, 0, sizeof *attr);
  attr->size = sizeof *attr;
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& sw : kSoftware) {
    if (lower == sw.name) {
      attr->type = PERF_TYPE_SOFTWARE;
      attr->config = sw.config;
      return "";
    }
  }
  if (!pfm_ready()) return "libpfm4: pfm_initialize failed";
  pfm_perf_encode_arg_t arg;
  memset(&arg, 0, sizeof arg);
  arg.attr = attr;
  arg.size = sizeof arg;
  int rc = pfm_get_os_event_encoding(name.c_str(), PFM_PLM0 | PFM_PLM3, PFM_OS_PERF_EVENT_EXT, &arg);
  if (rc != PFM_SUCCESS) return std::string("libpfm4: ") + pfm_strerror(rc);
  attr->size = sizeof *attr;
  return "";
}

void prepare(struct perf_event_attr* attr) {
  attr->disabled = 1;
  attr->inherit = 1;
  attr->read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
}

}  // namespace

std::vector<std::string> Counters::default_events() {
  return {"cycles",     "instructions",     "branch-misses",  "cache-misses",
          "task-clock", "context-switches", "cpu-migrations", "page-faults"};
}

Counters::Counters(const std::vector<std::string>& names, int pid) {
  events_.resize(names.size());
  values_.resize(names.size());
  int leader = -1;
  for (size_t i = 0; i < names.size(); i++) {
    Value& v = values_[i];
    v.name = names[i];
    struct perf_event_attr attr;
    std::string err = encode(names[i], &attr);
    if (!err.empty()) {
      v.error = err;
      continue;
    }
    prepare(&attr);
    bool hw = attr.type != PERF_TYPE_SOFTWARE;
    events_[i].hardware = hw;
    int fd = -1;
    int e = 0;
    if (hw && leader >= 0) {
      attr.disabled = 0;  // members follow the leader
      fd = int(perf_event_open(&attr, pid, -1, leader, PERF_FLAG_FD_CLOEXEC));
      if (fd >= 0) {
        v.group = "hw";
      } else {
        attr.disabled = 1;  // the group refused it: count it alone
      }
    }
    if (fd < 0) {
      fd = int(perf_event_open(&attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC));
      e = errno;
      if (fd < 0 && (e == EACCES || e == EPERM)) {
        attr.exclude_kernel = 1;  // perf_event_paranoid: user space only
        attr.exclude_hv = 1;
        fd = int(perf_event_open(&attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC));
        e = errno;
      }
      if (fd >= 0 && hw && leader < 0) {
        leader = fd;
        v.group = "hw";
      }
    }
    if (fd < 0) {
      v.error = errno_text("perf_event_open", e);
      continue;
    }
    events_[i].fd = fd;
  }
}

Counters::~Counters() {
  for (auto& e : events_)
    if (e.fd >= 0) close(e.fd);
}

void Counters::start() {
  for (auto& e : events_) {
    if (e.fd < 0) continue;
    ioctl(e.fd, PERF_EVENT_IOC_RESET, 0);
  }
  for (auto& e : events_) {
    if (e.fd < 0) continue;
    ioctl(e.fd, PERF_EVENT_IOC_ENABLE, 0);
  }
}

void Counters::stop() {
  for (auto& e : events_)
    if (e.fd >= 0) ioctl(e.fd, PERF_EVENT_IOC_DISABLE, 0);
  for (size_t i = 0; i < events_.size(); i++) {
    if (events_[i].fd < 0) continue;
    Value& v = values_[i];
    uint64_t buf[3] = {0, 0, 0};
    ssize_t n = read(events_[i].fd, buf, sizeof buf);
    if (n != ssize_t(sizeof buf)) {
      v.supported = false;
      v.error = n < 0 ? errno_text("read", errno) : "read: short read";
      continue;
    }
    v.raw = buf[0];
    v.time_enabled = buf[1];
    v.time_running = buf[2];
    if (v.time_running == 0) {
      v.supported = false;
      v.error = "never scheduled on the PMU (time_running = 0)";
      continue;
    }
    v.supported = true;
    v.error.clear();
    v.value = v.time_running < v.time_enabled ? double(v.raw) * double(v.time_enabled) / double(v.time_running)
                                               : double(v.raw);
  }
}

const Counters::Value* Counters::find(const std::string& name) const {
  for (const auto& v : values_)
    if (v.name == name) return &v;
  return nullptr;
}

Json Counters::to_json() const {
  Json j = Json::object();
  for (const auto& v : values_) {
    if (v.supported)
      j.set(v.name, v.value);
    else
      j.set(v.name, "unsupported");
  }
  return j;
}

Json Counters::info_json() const {
  Json j = Json::object();
  for (const auto& v : values_) {
    Json o = Json::object();
    if (v.supported) {
      o.set("group", v.group.empty() ? Json(nullptr) : Json(v.group));
      o.set("time_enabled", v.time_enabled);
      o.set("time_running", v.time_running);
      o.set("multiplexed", v.time_running < v.time_enabled);
    } else {
      o.set("error", v.error.empty() ? std::string("not read (stop() not called)") : v.error);
    }
    j.set(v.name, std::move(o));
  }
  return j;
}

}  // namespace harness

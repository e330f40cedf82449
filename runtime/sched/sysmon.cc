// sysmon: the system monitor thread (Go's sysmon in proc.go).
//
// It runs without a P on its own thread, waking every 20 us while it finds
// work and backing off (doubling after 1 ms of idle rounds) to 10 ms.
// Each round it retakes Ps blocked in syscalls, asks goroutines that have
// run for more than 10 ms to yield, starts an M for timers that nobody
// ran (overdue by over 1 ms while a P is idle), polls the network when
// nobody has for 10 ms (injecting what it finds), starts the periodic
// collection when none ran for 2 minutes, and prints the schedtrace when
// asked.
#include <pthread.h>

#include <cstdio>

#include "runtime/gc/mgc.h"
#include "runtime/netpoll/netpoll.h"
#include "runtime/policy/runq.h"
#include "runtime/sched/runtime2.h"
#include "runtime/time/timer.h"

namespace rt::internal {

uint32_t retake(int64_t now);
void startm_idle();
void incidlelocked(int32_t v);

namespace {

struct SysmonConfig {
  int64_t schedtrace_ms;
  bool scheddetail;
};
SysmonConfig config;
constexpr int64_t kTimerOverdueNs = 1000 * 1000;
constexpr int64_t kNetpollIntervalNs = 10 * 1000 * 1000;
int64_t start_time = 0;

void* sysmon_main(void*) {
  int64_t lasttrace = 0;
  int idle = 0;
  int64_t delay_us = 0;
  for (;;) {
    if (idle == 0) {
      delay_us = 20;
    } else if (idle > 50) {
      delay_us *= 2;
    }
    if (delay_us > 10 * 1000) delay_us = 10 * 1000;
    usleep_os(delay_us);
    int64_t now = nanotime();
    if (config.schedtrace_ms > 0 && lasttrace + config.schedtrace_ms * 1000000 <= now) {
      lasttrace = now;
      schedtrace(config.scheddetail);
    }
    bool worked = retake(now) != 0;
    gc_sysmon_check(now);
    // Ready I/O must not wait for Ms that are all busy (or all stopped):
    // poll if nobody has for 10 ms and nobody is blocked in the poller.
    // This is not work that shortens sysmon's sleep (as in Go): a server
    // whose run queues never empty would otherwise keep sysmon waking
    // every 20 us on its CPU.
    int64_t lastpoll = netpoll_lastpoll.load();
    if (lastpoll != 0 && lastpoll + kNetpollIntervalNs < now &&
        netpoll_lastpoll.compare_exchange_strong(lastpoll, now)) {
      // Pretend one more M runs (sysmon is not one checkdead counts) from
      // the poll until the Ms for what it readied are started: a goroutine
      // the poll takes has left netpoll_waiters and reaches a run queue
      // only in injectglist, and an M that went idle in between would
      // report a deadlock ("all goroutines are asleep", or "checkdead:
      // runnable goroutine" once injectglist has made it runnable).
      incidlelocked(-1);
      int32_t n = 0;
      GQueue list = netpoll(0, &n);
      injectglist(&list, n);
      incidlelocked(1);
    }
    // Timers are run by the Ps' own Ms and by the idle M that waits for
    // the next one; this only catches a timer that all of them missed
    // (every M busy or parked when it came due) while a P sits idle.
    int64_t next = timers_next_when();
    if (next != 0 && next < now - kTimerOverdueNs && sched.npidle.load() > 0 &&
        sysmon_timer_rescue.load(std::memory_order_relaxed)) {
      startm_idle();
    }
    if (worked)
      idle = 0;
    else
      idle++;
  }
  return nullptr;
}

}  // namespace

void start_sysmon(int64_t schedtrace_ms, bool scheddetail) {
  config = SysmonConfig{schedtrace_ms, scheddetail};
  start_time = nanotime();
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  if (pthread_create(&t, &attr, sysmon_main, nullptr) != 0) throw_fatal("cannot start sysmon");
  pthread_attr_destroy(&attr);
}

// Go's schedtrace line:
//   SCHED 1004ms: gomaxprocs=2 idleprocs=0 threads=4 spinningthreads=0
//   idlethreads=1 runqueue=0 [3 0]
// With scheddetail, one line per P, M and G follows.
void schedtrace(bool detailed) {
  int64_t now = nanotime();
  LockGuard g(sched.lock);
  int32_t procs = gomaxprocs.load();
  char line[4096];
  int n = snprintf(line, sizeof line, "SCHED %lldms: gomaxprocs=%d idleprocs=%d threads=%lld spinningthreads=%d idlethreads=%d runqueue=%d",
                   static_cast<long long>((now - start_time) / 1000000), procs, sched.npidle.load(),
                   static_cast<long long>(sched.mnext - sched.nmfreed), sched.nmspinning.load(), sched.nmidle, sched.runqsize.load());
  if (!detailed) {
    n += snprintf(line + n, sizeof line - size_t(n), " [");
    for (int32_t i = 0; i < procs && size_t(n) < sizeof line - 16; i++) {
      n += snprintf(line + n, sizeof line - size_t(n), i == 0 ? "%u" : " %u", policy::runq::size(allp[i]));
    }
    snprintf(line + n, sizeof line - size_t(n), "]");
    fprintf(stderr, "%s\n", line);
    return;
  }
  fprintf(stderr, "%s gcwaiting=%u nmidlelocked=%d stopwait=%d\n", line, sched.gcwaiting.load(), sched.nmidlelocked,
          sched.stopwait);
  for (int32_t i = 0; i < procs; i++) {
    P* p = allp[i];
    M* mp = p->m;
    fprintf(stderr, "  P%d: status=%u schedtick=%u syscalltick=%u m=%lld runqsize=%u gfreecnt=%d\n", p->id,
            p->status.load(), p->schedtick.load(), p->syscalltick.load(), mp != nullptr ? static_cast<long long>(mp->id) : -1LL,
            policy::runq::size(p), p->gfreecnt);
  }
  for (M* mp = allm.load(); mp != nullptr; mp = mp->alllink) {
    P* p = mp->p;
    G* curg = mp->curg;
    fprintf(stderr, "  M%lld: p=%d curg=%lld locks=%d spinning=%s blocked=%s lockedg=%lld\n",
            static_cast<long long>(mp->id), p != nullptr ? p->id : -1, curg != nullptr ? static_cast<long long>(curg->goid) : -1LL,
            mp->locks, mp->spinning ? "true" : "false", mp->blocked ? "true" : "false",
            mp->lockedg != nullptr ? static_cast<long long>(mp->lockedg->goid) : -1LL);
  }
  for_each_g(
      [](G* gp, void*) {
        uint32_t s = readgstatus(gp);
        if (gp->issystem || s == kGdead) return;
        fprintf(stderr, "  G%lld: status=%u(%s) m=%lld lockedm=%lld\n", static_cast<long long>(gp->goid), s,
                s == kGwaiting ? gp->waitreason.load() : "", gp->m != nullptr ? static_cast<long long>(gp->m->id) : -1LL,
                gp->lockedm != nullptr ? static_cast<long long>(gp->lockedm->id) : -1LL);
      },
      nullptr);
}

}  // namespace rt::internal

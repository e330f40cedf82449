// The network poller: epoll, pollDescs, and the one M that blocks in the
// kernel for both I/O and timers (Go's netpoll.go, netpoll_epoll.go).
//
// Registration. poll_open registers a non-blocking descriptor once, for
// EPOLLIN|EPOLLOUT|EPOLLRDHUP, edge-triggered: the kernel reports each
// transition to readable or writable once, and rt::net always retries its
// system call until EAGAIN before it waits, so no edge is missed. The
// event's data is the PollDesc's address shifted left 16 bits with the
// low 16 bits of pd->fdseq; poll_open bumps fdseq, so an event that was
// queued (or copied out by a concurrent epoll_wait) for the previous
// descriptor of a reused PollDesc carries an old tag and is dropped.
// PollDescs come from FixAlloc (never malloc) and live forever on the
// pollcache free list, because stale events and timers may name them.
//
// The rg/wg state machine (one word per direction, Go's):
//   0        nothing known
//   pdReady  an event arrived and nobody has consumed it yet
//   pdWait   a goroutine is committing to park (between poll_wait's CAS
//            and gopark's unlock function)
//   G*       that goroutine is parked
// poll_wait: CAS pdReady -> 0 (consume: return at once) or 0 -> pdWait;
// then gopark, whose unlock function CASes pdWait -> G* (if an event, a
// deadline or a close got in first and reset pdWait, the CAS fails and the
// goroutine does not park). Wakers (netpollunblock) swap in pdReady (I/O
// event) or 0 (deadline, close) and ready the G they swapped out. Only one
// goroutine may wait per direction: rt::net serialises readers and
// writers; a second waiter is a fatal "double wait".
//
// Deadlines. pd->rd/wd are 0 (none), < 0 (passed: waits fail at once with
// kPollTimeout) or a nanotime() instant for which a runtime timer is
// armed. A deadline timer carries pd->rseq/wseq at arming; poll_set_deadline
// bumps the seq whenever it re-arms or removes the timer and poll_unblock
// bumps both, so a timer that fires for an older arming, or after the
// descriptor closed (and the PollDesc was reused), sees a different seq
// under pd->lock and does nothing. When the read and write deadlines are
// equal one timer (rt) serves both, as in Go. The three races between a
// timeout and an event resolve through the rg word: whichever of the event
// (pdReady) and the timer (0 + G) swaps the word first wins the G; the
// loser finds nothing to wake. A read that already returned is not
// affected by a later timeout except that rd < 0 fails its next wait.
//
// The polling M (Go's sched.lastpoll / pollUntil). findrunnable polls
// without blocking (netpoll(0)) when goroutines wait for I/O and nobody is
// blocked in epoll_wait. An M that found nothing at all and would stop
// calls netpoll_block: if goroutines wait for I/O or a timer is pending, it
// claims the poll (lastpoll 0), publishes its deadline (until = the
// earliest timer of all Ps), and blocks in epoll_pwait2 until then, an
// I/O event, or netpoll_break. There is at most one such M; the others
// stop. The timers rely on it: wake_netpoller (called by every timer add
// and modify) breaks the poll when the new timer is earlier than until,
// or starts an M (wakep) when nobody polls, and a deleted timer that the
// poller may be waiting for breaks it, so that the poller re-computes its
// deadline (with nothing left it stops, and checkdead can see the M).
// netpoll_break writes the eventfd (registered level-triggered, so a
// write made after the claim and before epoll_wait starts still ends the
// wait); writes between two polls fold into one (wake_sig).
//
// No lost wake-up (all accesses seq_cst):
//   adder:  write timer0_when;  read lastpoll;  if 0: read until, break
//           if until is 0 or later than the timer;  else wakep()
//   poller: xchg lastpoll 0;  read every timer0_when -> until;  store
//           until;  epoll_wait;  store until 0, lastpoll now;  take an
//           idle P and look for work again (or stop when none is idle:
//           then every P has an M that sees the timer)
// If the poller's read missed the timer, the adder's read of lastpoll is
// after the xchg and breaks the poll (the eventfd stays readable until the
// poller reads it). If the adder saw lastpoll != 0 after the poller
// released it, the poller looks again with a P. sysmon polls when nobody
// has for 10 ms, as Go's does.
#include "runtime/netpoll/netpoll.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "runtime/mem/fixalloc.h"

namespace rt::internal {

std::atomic<int32_t> netpoll_waiters{0};
std::atomic<int64_t> netpoll_lastpoll{1};
std::atomic<int64_t> netpoll_until{0};
std::atomic<PollFaultHook> poll_fault_hook{nullptr};

namespace {

int epfd = -1;
int breakfd = -1;
std::atomic<uint32_t> wake_sig{0};  // a break is pending (Go's netpollWakeSig)

std::atomic<uint64_t> stat_polls_with_events{0};
std::atomic<uint64_t> stat_blocking_polls{0};
std::atomic<uint64_t> stat_injected{0};
std::atomic<uint64_t> stat_breaks{0};

constexpr uint64_t kTagBits = 16;
constexpr uint64_t kTagMask = (uint64_t(1) << kTagBits) - 1;

uint64_t pack(PollDesc* pd, uintptr_t seq) {
  return (uint64_t(reinterpret_cast<uintptr_t>(pd)) << kTagBits) | (seq & kTagMask);
}

[[noreturn]] void fatal_errno(const char* what, int err) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s: %s", what, strerror(err));
  throw_fatal(buf);
}

// ---- The pollDesc cache --------------------------------------------------------

struct PollCache {
  Lock lock{LockRank::kPollCache};
  PollDesc* free = nullptr;
  FixAlloc<PollDesc> alloc;
};
PollCache pollcache;

PollDesc* pollcache_get() {
  LockGuard g(pollcache.lock);
  PollDesc* pd = pollcache.free;
  if (pd != nullptr) {
    pollcache.free = pd->link;
    pd->link = nullptr;
    return pd;
  }
  return pollcache.alloc.alloc();
}

void pollcache_put(PollDesc* pd) {
  LockGuard g(pollcache.lock);
  pd->link = pollcache.free;
  pollcache.free = pd;
}

// ---- The state machine -------------------------------------------------------

// Goroutines leave netpoll_waiters here. When the last one leaves, a
// poller blocked without a deadline must look again: it may now have
// nothing to wait for, and then it stops, where checkdead sees it. The
// poller itself (by_poller) is awake already.
void waiters_sub(int32_t n, bool by_poller) {
  if (netpoll_waiters.fetch_sub(n) == n && !by_poller && netpoll_lastpoll.load() == 0 &&
      netpoll_until.load() == kMaxWhen) {
    netpoll_break();
  }
}

void netpoll_goready(G* gp) {
  waiters_sub(1, false);
  goready(gp);
}

// Makes mode's waiter (if parked) runnable: ioready records an event
// (pdReady), otherwise (deadline, close) the word goes back to 0. Returns
// the parked goroutine or nullptr.
G* netpollunblock(PollDesc* pd, int mode, bool ioready) {
  std::atomic<uintptr_t>& gpp = mode == 'r' ? pd->rg : pd->wg;
  for (;;) {
    uintptr_t old = gpp.load();
    if (old == kPdReady) return nullptr;
    if (old == 0 && !ioready) return nullptr;  // only an event sets pdReady
    uintptr_t next = ioready ? kPdReady : 0;
    if (gpp.compare_exchange_strong(old, next)) {
      return old == kPdWait || old == 0 ? nullptr : reinterpret_cast<G*>(old);
    }
  }
}

int netpollcheckerr(PollDesc* pd, int mode) {
  if (pd->closing.load()) return kPollClosing;
  if ((mode == 'r' && pd->rd < 0) || (mode == 'w' && pd->wd < 0)) return kPollTimeout;
  // An error is reported on reads only; a write's own call says more.
  if (mode == 'r' && pd->everr.load()) return kPollError;
  return kPollOK;
}

bool netpollblockcommit(G* gp, void* arg) {
  auto* gpp = static_cast<std::atomic<uintptr_t>*>(arg);
  uintptr_t expected = kPdWait;
  if (gpp->compare_exchange_strong(expected, reinterpret_cast<uintptr_t>(gp))) {
    netpoll_waiters.fetch_add(1);
    return true;
  }
  return false;
}

// Returns true if I/O is ready, false on timeout or close.
bool netpollblock(PollDesc* pd, int mode) {
  std::atomic<uintptr_t>& gpp = mode == 'r' ? pd->rg : pd->wg;
  for (;;) {
    uintptr_t old = kPdReady;
    if (gpp.compare_exchange_strong(old, 0)) return true;
    if (old == 0) {
      if (gpp.compare_exchange_strong(old, kPdWait)) break;
      continue;
    }
    if (old != kPdReady) throw_fatal("runtime: double wait");
  }
  // The deadline or a close may have come between the check and the CAS;
  // netpollunblock then found pdWait and reset it, so the commit fails.
  if (netpollcheckerr(pd, mode) == kPollOK) gopark(netpollblockcommit, &gpp, kWaitReasonIOWait);
  uintptr_t old = gpp.exchange(0);
  if (old > kPdWait) throw_fatal("runtime: corrupted polldesc");
  return old == kPdReady;
}

void deadline_fired(PollDesc* pd, uintptr_t seq, bool read, bool write) {
  G* rg = nullptr;
  G* wg = nullptr;
  pd->lock.lock();
  if (seq != (read ? pd->rseq : pd->wseq)) {
    pd->lock.unlock();  // stale: re-armed, cleared or closed since
    return;
  }
  if (read) {
    if (pd->rd <= 0 || !pd->rtimer_armed) throw_fatal("runtime: inconsistent read deadline");
    pd->rd = -1;
    pd->rtimer_armed = false;
    rg = netpollunblock(pd, 'r', false);
  }
  if (write) {
    if (pd->wd <= 0 || (!pd->wtimer_armed && !read)) throw_fatal("runtime: inconsistent write deadline");
    pd->wd = -1;
    if (!read) pd->wtimer_armed = false;
    wg = netpollunblock(pd, 'w', false);
  }
  pd->lock.unlock();
  if (rg != nullptr) netpoll_goready(rg);
  if (wg != nullptr) netpoll_goready(wg);
}

void read_deadline(void* arg, uintptr_t seq) { deadline_fired(static_cast<PollDesc*>(arg), seq, true, false); }
void write_deadline(void* arg, uintptr_t seq) { deadline_fired(static_cast<PollDesc*>(arg), seq, false, true); }
void rw_deadline(void* arg, uintptr_t seq) { deadline_fired(static_cast<PollDesc*>(arg), seq, true, true); }

}  // namespace

// ---- rt::net side ---------------------------------------------------------------

PollDesc* poll_open(int fd, int* err) {
  PollDesc* pd = pollcache_get();
  {
    LockGuard g(pd->lock);
    uintptr_t r = pd->rg.load(), w = pd->wg.load();
    if ((r != 0 && r != kPdReady) || (w != 0 && w != kPdReady)) throw_fatal("runtime: blocked read on free polldesc");
    pd->fd = fd;
    pd->closing.store(false);
    pd->everr.store(false);
    pd->rseq++;
    pd->wseq++;
    pd->rg.store(0);
    pd->wg.store(0);
    pd->rd = 0;
    pd->wd = 0;
  }
  uintptr_t seq = pd->fdseq.fetch_add(1) + 1;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = pack(pd, seq);
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    *err = errno;
    pd->closing.store(true);
    pollcache_put(pd);
    return nullptr;
  }
  return pd;
}

void poll_unblock(PollDesc* pd) {
  pd->lock.lock();
  if (pd->closing.load()) throw_fatal("runtime: unblock on closing polldesc");
  pd->closing.store(true);
  pd->rseq++;
  pd->wseq++;
  G* rg = netpollunblock(pd, 'r', false);
  G* wg = netpollunblock(pd, 'w', false);
  if (pd->rtimer_armed) {
    deltimer(&pd->rt);
    pd->rtimer_armed = false;
  }
  if (pd->wtimer_armed) {
    deltimer(&pd->wt);
    pd->wtimer_armed = false;
  }
  pd->lock.unlock();
  if (rg != nullptr) netpoll_goready(rg);
  if (wg != nullptr) netpoll_goready(wg);
}

void poll_close(PollDesc* pd) {
  if (!pd->closing.load()) throw_fatal("runtime: close polldesc w/o unblock");
  uintptr_t r = pd->rg.load(), w = pd->wg.load();
  if ((r != 0 && r != kPdReady) || (w != 0 && w != kPdReady)) throw_fatal("runtime: blocked read on closing polldesc");
  epoll_event ev{};
  epoll_ctl(epfd, EPOLL_CTL_DEL, pd->fd, &ev);
  pollcache_put(pd);
}

int poll_reset(PollDesc* pd, int mode) {
  int e = netpollcheckerr(pd, mode);
  if (e != kPollOK) return e;
  (mode == 'r' ? pd->rg : pd->wg).store(0);
  return kPollOK;
}

int poll_wait(PollDesc* pd, int mode) {
  int e = netpollcheckerr(pd, mode);
  if (e != kPollOK) return e;
  while (!netpollblock(pd, mode)) {
    e = netpollcheckerr(pd, mode);
    if (e != kPollOK) return e;
    // Woken by a deadline that was extended or cleared meanwhile (Go's
    // "can happen if timeout has fired and unblocked us, but before we
    // had a chance to run, timeout has been reset"): wait again.
  }
  return kPollOK;
}

bool poll_edge_pending(const PollDesc* pd, int mode) { return (mode == 'r' ? pd->rg : pd->wg).load() == kPdReady; }

void poll_set_deadline(PollDesc* pd, int64_t d, int mode) {
  pd->lock.lock();
  if (pd->closing.load()) {
    pd->lock.unlock();
    return;
  }
  int64_t rd0 = pd->rd, wd0 = pd->wd;
  bool combo0 = rd0 > 0 && rd0 == wd0;
  if (d != 0 && d <= nanotime()) d = -1;  // already passed
  if (mode == 'r' || mode == 'r' + 'w') pd->rd = d;
  if (mode == 'w' || mode == 'r' + 'w') pd->wd = d;
  bool combo = pd->rd > 0 && pd->rd == pd->wd;
  TimerFunc rtf = combo ? rw_deadline : read_deadline;
  if (!pd->rtimer_armed) {
    if (pd->rd > 0) {
      modtimer(&pd->rt, pd->rd, 0, rtf, pd, pd->rseq);
      pd->rtimer_armed = true;
    }
  } else if (pd->rd != rd0 || combo != combo0) {
    pd->rseq++;
    if (pd->rd > 0) {
      modtimer(&pd->rt, pd->rd, 0, rtf, pd, pd->rseq);
    } else {
      deltimer(&pd->rt);
      pd->rtimer_armed = false;
    }
  }
  if (!pd->wtimer_armed) {
    if (pd->wd > 0 && !combo) {
      modtimer(&pd->wt, pd->wd, 0, write_deadline, pd, pd->wseq);
      pd->wtimer_armed = true;
    }
  } else if (pd->wd != wd0 || combo != combo0) {
    pd->wseq++;
    if (pd->wd > 0 && !combo) {
      modtimer(&pd->wt, pd->wd, 0, write_deadline, pd, pd->wseq);
    } else {
      deltimer(&pd->wt);
      pd->wtimer_armed = false;
    }
  }
  // A deadline in the past wakes the waiters now.
  G* rg = pd->rd < 0 ? netpollunblock(pd, 'r', false) : nullptr;
  G* wg = pd->wd < 0 ? netpollunblock(pd, 'w', false) : nullptr;
  pd->lock.unlock();
  if (rg != nullptr) netpoll_goready(rg);
  if (wg != nullptr) netpoll_goready(wg);
}

void poll_mark_ready(PollDesc* pd, int mode) {
  if (G* gp = netpollunblock(pd, mode, true)) netpoll_goready(gp);
}

// ---- Scheduler side -----------------------------------------------------------------

void netpoll_init() {
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fatal_errno("runtime: netpollinit failed: epoll_create1", errno);
  breakfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (breakfd < 0) fatal_errno("runtime: netpollinit failed: eventfd", errno);
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: readable until the poller reads it
  ev.data.u64 = 0;      // no PollDesc lives at address 0
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, breakfd, &ev) != 0) fatal_errno("runtime: netpollinit failed: epoll_ctl", errno);
}

void netpoll_break() {
  uint32_t zero = 0;
  if (!wake_sig.compare_exchange_strong(zero, 1)) return;
  stat_breaks.fetch_add(1, std::memory_order_relaxed);
  uint64_t one = 1;
  for (;;) {
    if (write(breakfd, &one, sizeof one) == sizeof one) return;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return;  // the counter is full: a wake-up is pending anyway
    fatal_errno("runtime: netpollBreak write failed", errno);
  }
}

GQueue netpoll(int64_t delay, int32_t* n) {
  GQueue list;
  *n = 0;
  timespec ts{};
  timespec* tsp = nullptr;
  if (delay >= 0) {
    ts.tv_sec = time_t(delay / 1000000000);
    ts.tv_nsec = long(delay % 1000000000);
    tsp = &ts;
  }
  if (delay != 0) stat_blocking_polls.fetch_add(1, std::memory_order_relaxed);
  epoll_event events[128];
  int ready;
  for (;;) {
    int injected = poll_fault(PollCall::kEpollWait);
    if (injected != 0) {
      ready = -1;
      errno = injected;
    } else {
      ready = epoll_pwait2(epfd, events, 128, tsp, nullptr);
    }
    if (ready >= 0) break;
    if (errno != EINTR && errno != EAGAIN) fatal_errno("runtime: netpoll failed: epoll_pwait2", errno);
    // Interrupted: a timed poll returns so that the caller recomputes its
    // deadline; a blocking or non-blocking one tries again.
    if (delay > 0) return list;
  }
  for (int i = 0; i < ready; i++) {
    const epoll_event& ev = events[i];
    if (ev.data.u64 == 0) {
      if (ev.events != EPOLLIN) throw_fatal("runtime: netpoll: eventfd ready for something unexpected");
      // A non-blocking poll leaves the break for the blocking one.
      if (delay != 0) {
        uint64_t v;
        while (read(breakfd, &v, sizeof v) < 0 && errno == EINTR) {
        }
        wake_sig.store(0);
      }
      continue;
    }
    int mode = 0;
    if (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) mode += 'r';
    if (ev.events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) mode += 'w';
    if (mode == 0) continue;
    auto* pd = reinterpret_cast<PollDesc*>(uintptr_t(ev.data.u64 >> kTagBits));
    if ((pd->fdseq.load() & kTagMask) != (ev.data.u64 & kTagMask)) continue;  // descriptor closed and reused
    if (ev.events & EPOLLERR) pd->everr.store(true);
    G* rg = mode != 'w' ? netpollunblock(pd, 'r', true) : nullptr;
    G* wg = mode != 'r' ? netpollunblock(pd, 'w', true) : nullptr;
    if (rg != nullptr) {
      list.push_back(rg);
      ++*n;
    }
    if (wg != nullptr) {
      list.push_back(wg);
      ++*n;
    }
  }
  if (*n != 0) {
    waiters_sub(*n, delay != 0);
    stat_polls_with_events.fetch_add(1, std::memory_order_relaxed);
  }
  return list;
}

bool netpoll_block(GQueue* list, int32_t* n) {
  int64_t next = timers_next_when();
  if (netpoll_waiters.load() == 0 && next == 0) return false;
  if (netpoll_lastpoll.exchange(0) == 0) {
    // Another M polls: make sure it does not sleep past our timer.
    int64_t until = netpoll_until.load();
    if (next != 0 && (until == 0 || until > next)) netpoll_break();
    return false;
  }
  // Read after the claim: a timer added later sees lastpoll == 0 and
  // breaks the poll if it is earlier than until.
  next = timers_next_when();
  netpoll_until.store(next != 0 ? next : kMaxWhen);
  int64_t delay = -1;
  if (next != 0) {
    delay = next - nanotime();
    if (delay < 0) delay = 0;
  } else if (netpoll_waiters.load() == 0) {
    delay = 0;  // the last waiter left after our first look: nothing to wait for
  }
  *list = netpoll(delay, n);
  netpoll_until.store(0);
  netpoll_lastpoll.store(nanotime());
  return true;
}

void wake_netpoller(int64_t when) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (netpoll_lastpoll.load() == 0) {
    int64_t until = netpoll_until.load();
    if (until == 0 || until > when) netpoll_break();
    return;
  }
  wakep();
}

void netpoll_timer_deleted(int64_t when) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (netpoll_lastpoll.load() != 0) return;
  int64_t until = netpoll_until.load();
  if (until == 0 || when <= until) netpoll_break();
}

NetpollStats netpoll_stats() {
  return NetpollStats{stat_polls_with_events.load(), stat_blocking_polls.load(), stat_injected.load(),
                      stat_breaks.load()};
}

void netpoll_count_injected(int32_t n) { stat_injected.fetch_add(uint64_t(n), std::memory_order_relaxed); }

}  // namespace rt::internal

// select (Go's selectgo in select.go).
//
// Pass 0: choose a random poll order (so no ready case is favoured) and a
// lock order by channel address (so two selects over the same channels
// cannot deadlock); lock every channel, each once.
// Pass 1: poll the cases in poll order; the first that can proceed wins.
// Pass 2: if none can and the select blocks, enqueue one sudog per case on
// its channel, all linked from g->waiting in lock order, and park; the
// channels are unlocked only after the goroutine is marked waiting.
// Pass 3: woken with g->param = the sudog that completed (or that a close
// woke); relock, dequeue the sudogs of every other case, unlock.
// Exactly one case fires: a waker claims a select's sudog only by winning
// the CAS on g->select_done (WaitQ::dequeue).
#include <algorithm>

#include "rt/panic.h"
#include "runtime/chan/chan.h"

namespace rt::internal {

namespace {

constexpr const char kWaitSelect[] = "select";
constexpr const char kWaitSelectNoCases[] = "select (no cases)";

void sellock(SelectCase* cases, const uint16_t* lockorder, int n) {
  HChan* last = nullptr;
  for (int i = 0; i < n; i++) {
    HChan* c = cases[lockorder[i]].c;
    if (c != last) c->lock.lock();
    last = c;
  }
}

void selunlock(SelectCase* cases, const uint16_t* lockorder, int n) {
  // Unlock in reverse so that a channel locked once is unlocked once: the
  // last occurrence of a duplicate run unlocks it.
  for (int i = n - 1; i >= 0; i--) {
    HChan* c = cases[lockorder[i]].c;
    if (i > 0 && c == cases[lockorder[i - 1]].c) continue;
    c->lock.unlock();
  }
}

// gopark's unlock callback: the sudogs hang off gp->waiting in lock order.
bool selparkcommit(G* gp, void*) {
  HChan* last = nullptr;
  for (SudoG* sg = gp->waiting; sg != nullptr; sg = sg->waitlink) {
    if (sg->c != last && last != nullptr) last->lock.unlock();
    last = sg->c;
  }
  if (last != nullptr) last->lock.unlock();
  return true;
}

}  // namespace

int selectgo(SelectCase* cases, int nsends, int nrecvs, bool block, bool* recv_ok) {
  preempt_check();
  *recv_ok = false;
  int ncases = nsends + nrecvs;
  if (ncases > 65535) throw rt::Panic("select: too many cases");
  uint16_t pollorder[ncases > 0 ? ncases : 1];
  uint16_t lockorder[ncases > 0 ? ncases : 1];

  // Random permutation of the cases with a channel (nil channels are never
  // ready and take no part).
  int norder = 0;
  for (int i = 0; i < ncases; i++) {
    if (cases[i].c == nullptr) continue;
    int j = int(fastrandn(uint32_t(norder + 1)));
    pollorder[norder] = pollorder[j];
    pollorder[j] = uint16_t(i);
    norder++;
  }
  if (norder == 0) {
    if (!block) return -1;
    gopark(nullptr, nullptr, kWaitSelectNoCases);
    throw_fatal("unreachable: select with no cases was woken");
  }
  std::copy(pollorder, pollorder + norder, lockorder);
  std::sort(lockorder, lockorder + norder, [&](uint16_t a, uint16_t b) {
    return reinterpret_cast<uintptr_t>(cases[a].c) < reinterpret_cast<uintptr_t>(cases[b].c);
  });

  sellock(cases, lockorder, norder);
  struct LockSet {
    SelectCase* cases;
    const uint16_t* order;
    int n;
  } locks{cases, lockorder, norder};
  auto unlock_all = [](void* a) {
    auto* l = static_cast<LockSet*>(a);
    selunlock(l->cases, l->order, l->n);
  };

  // Pass 1: anything ready?
  for (int k = 0; k < norder; k++) {
    int casi = pollorder[k];
    SelectCase& cas = cases[casi];
    HChan* c = cas.c;
    if (casi >= nsends) {
      if (SudoG* sg = c->sendq.dequeue()) {
        recv_from_waiter(c, sg, cas.elem, unlock_all, &locks);
        *recv_ok = true;
        return casi;
      }
      if (c->qcount > 0) {
        buf_take(c, cas.elem);
        selunlock(cases, lockorder, norder);
        *recv_ok = true;
        return casi;
      }
      if (c->closed.load(std::memory_order_relaxed) != 0) {
        selunlock(cases, lockorder, norder);
        if (cas.elem != nullptr) c->type->zero_construct(cas.elem);
        return casi;
      }
    } else {
      if (c->closed.load(std::memory_order_relaxed) != 0) {
        selunlock(cases, lockorder, norder);
        throw rt::Panic("send on closed channel");
      }
      if (SudoG* sg = c->recvq.dequeue()) {
        send_to_waiter(c, sg, cas.elem, unlock_all, &locks);
        return casi;
      }
      if (c->qcount < c->dataqsiz) {
        buf_put(c, cas.elem);
        selunlock(cases, lockorder, norder);
        return casi;
      }
    }
  }

  if (!block) {
    selunlock(cases, lockorder, norder);
    return -1;
  }

  // Pass 2: enqueue on every channel.
  G* gp = getg();
  if (gp->waiting != nullptr) throw_fatal("gp->waiting != nil");
  gp->select_done.store(0, std::memory_order_relaxed);
  gp->param = nullptr;
  SudoG* sglist[norder];
  SudoG** nextp = &gp->waiting;
  for (int k = 0; k < norder; k++) {
    int casi = lockorder[k];
    SelectCase& cas = cases[casi];
    SudoG* sg = acquire_sudog();
    sg->g = gp;
    sg->is_select = true;
    sg->elem = cas.elem;
    sg->c = cas.c;
    sglist[k] = sg;
    *nextp = sg;
    nextp = &sg->waitlink;
    if (casi < nsends)
      cas.c->sendq.enqueue(sg);
    else
      cas.c->recvq.enqueue(sg);
  }
  gopark(selparkcommit, nullptr, kWaitSelect);

  // Pass 3: dequeue from the losing channels.
  sellock(cases, lockorder, norder);
  SudoG* winner = static_cast<SudoG*>(gp->param);
  gp->param = nullptr;
  int chosen = -1;
  bool success = false;
  gp->waiting = nullptr;
  for (int k = 0; k < norder; k++) {
    int casi = lockorder[k];
    SudoG* sg = sglist[k];
    if (sg == winner) {
      chosen = casi;
      success = sg->success;
    } else if (casi < nsends) {
      cases[casi].c->sendq.remove(sg);
    } else {
      cases[casi].c->recvq.remove(sg);
    }
    sg->waitlink = nullptr;
    sg->elem = nullptr;
    sg->c = nullptr;
    release_sudog(sg);
  }
  if (chosen < 0) throw_fatal("selectgo: bad wakeup");
  selunlock(cases, lockorder, norder);
  if (chosen < nsends) {
    if (!success) throw rt::Panic("send on closed channel");
  } else {
    *recv_ok = success;
  }
  return chosen;
}

}  // namespace rt::internal

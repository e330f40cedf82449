// Allocator benchmarks (Google Benchmark), run inside the main goroutine.
//
//   BM_AllocOnly/<size>          one goroutine: ns per mallocgc of a scan
//                                object (frees happen outside the timed part);
//   BM_AllocFree/<size>/<procs>  GOMAXPROCS goroutines each allocate 1024
//                                objects and free them: ns per alloc+free
//                                pair (wall time / all pairs);
//   BM_GlibcAllocOnly, BM_GlibcAllocFree: the same with glibc malloc/free
//                                in the same process, for comparison;
//   BM_LargeAllocFree/<size>:    a large object (own span) allocated,
//                                touched once and freed;
//   BM_PageReplay<Treap|Radix>/<heap MiB>: the page allocators themselves on
//                                a fragmented heap of 64 MiB, 1 GiB or 8 GiB
//                                (virtual: the allocators never touch
//                                pages): ns per span allocation and per
//                                free, i.e. the time the heap lock is held
//                                per operation (radix without its P cache,
//                                as in proposal 35112's figures).
// Every benchmark reports "ns_per_op" (wall clock per unit of work).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "benchmarks/bench_util.h"
#include "rt/rt.h"
#include "runtime/mem/malloc.h"
#include "variants/pagealloc/radix/radix_pagealloc.h"
#include "variants/pagealloc/treap/treap_pagealloc.h"

namespace {

using rtlab::bench::Clock;
constexpr int kBatch = 1024;

double since_ns(Clock::time_point t0) { return std::chrono::duration<double, std::nano>(Clock::now() - t0).count(); }

void report(benchmark::State& state, double ns, double ops) {
  state.SetItemsProcessed(int64_t(ops));
  state.counters["ns_per_op"] = benchmark::Counter(ops > 0 ? ns / ops : 0);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int s : {8, 16, 32, 64, 128, 512, 1024, 4096, 16384, 32768}) b->Arg(s);
}

void sizes_procs(benchmark::internal::Benchmark* b) {
  for (int s : {16, 64, 512, 4096, 32768}) {
    for (int p : {1, 2}) b->Args({s, p});
  }
}

template <bool kGlibc>
void alloc_only(benchmark::State& state) {
  rt::gomaxprocs(1);
  size_t size = size_t(state.range(0));
  std::vector<void*> objs(kBatch);
  double ns = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    for (int i = 0; i < kBatch; i++) objs[size_t(i)] = kGlibc ? malloc(size) : rt::internal::mallocgc(size, true);
    ns += since_ns(t0);
    for (void* p : objs) kGlibc ? free(p) : rt::internal::free_object(p);
  }
  report(state, ns, double(state.iterations()) * kBatch);
}
void BM_AllocOnly(benchmark::State& state) { alloc_only<false>(state); }
void BM_GlibcAllocOnly(benchmark::State& state) { alloc_only<true>(state); }
BENCHMARK(BM_AllocOnly)->Apply(sizes)->UseRealTime();
BENCHMARK(BM_GlibcAllocOnly)->Apply(sizes)->UseRealTime();

template <bool kGlibc>
void alloc_free(benchmark::State& state) {
  size_t size = size_t(state.range(0));
  int procs = int(state.range(1));
  rt::gomaxprocs(procs);
  auto t0 = Clock::now();
  for (auto _ : state) {
    rt::WaitGroup wg;
    for (int g = 0; g < procs; g++) {
      wg.add(1);
      rt::go([&wg, size] {
        void* objs[kBatch];
        for (int r = 0; r < 16; r++) {
          for (void*& p : objs) p = kGlibc ? malloc(size) : rt::internal::mallocgc(size, true);
          for (void* p : objs) kGlibc ? free(p) : rt::internal::free_object(p);
        }
        wg.done();
      });
    }
    wg.wait();
  }
  report(state, since_ns(t0), double(state.iterations()) * 16 * kBatch * procs);
  rt::gomaxprocs(1);
}
void BM_AllocFree(benchmark::State& state) { alloc_free<false>(state); }
void BM_GlibcAllocFree(benchmark::State& state) { alloc_free<true>(state); }
BENCHMARK(BM_AllocFree)->Apply(sizes_procs)->UseRealTime();
BENCHMARK(BM_GlibcAllocFree)->Apply(sizes_procs)->UseRealTime();

void BM_LargeAllocFree(benchmark::State& state) {
  size_t size = size_t(state.range(0));
  auto t0 = Clock::now();
  for (auto _ : state) {
    auto* p = static_cast<char*>(rt::internal::mallocgc(size, false));
    p[size - 1] = 1;
    rt::internal::free_object(p);
  }
  report(state, since_ns(t0), double(state.iterations()));
}
BENCHMARK(BM_LargeAllocFree)->Arg(32769)->Arg(256 << 10)->Arg(4 << 20)->UseRealTime();

// Span sizes in pages: mostly small spans, as a heap of small objects asks.
size_t span_pages(std::mt19937_64& rng) {
  uint64_t r = rng() % 100;
  if (r < 70) return 1 + rng() % 4;
  if (r < 95) return 1 + rng() % 16;
  return 1 + rng() % 128;
}

struct Span {
  uintptr_t base;
  size_t npages;
};

template <class Alloc>
void page_replay(benchmark::State& state) {
  constexpr uintptr_t kBase = uintptr_t(0xc0) << 32;
  size_t heap_pages = (size_t(state.range(0)) << 20) / rt::policy::kPageSize;
  auto a = std::make_unique<Alloc>();
  a->grow(kBase, heap_pages);
  std::mt19937_64 rng(1);
  // Fill the heap with spans, then free a random half: a fragmented heap.
  std::vector<Span> live;
  for (;;) {
    size_t n = span_pages(rng);
    uintptr_t b = a->alloc(n);
    if (b == 0) break;
    live.push_back({b, n});
  }
  for (size_t i = 0; i < live.size();) {
    if (rng() % 2 == 0) {
      a->free(live[i].base, live[i].npages);
      live[i] = live.back();
      live.pop_back();
    } else {
      i++;
    }
  }
  double alloc_ns = 0, free_ns = 0;
  double allocs = 0, frees = 0;
  std::vector<Span> fresh;
  for (auto _ : state) {
    fresh.clear();
    auto t0 = Clock::now();
    for (int i = 0; i < 256; i++) {
      size_t n = span_pages(rng);
      uintptr_t b = a->alloc(n);
      if (b != 0) fresh.push_back({b, n});
    }
    alloc_ns += since_ns(t0);
    allocs += 256;
    // Free as many random spans as were allocated, keeping the heap's shape.
    std::vector<Span> victims;
    for (size_t i = 0; i < fresh.size(); i++) {
      size_t k = rng() % live.size();
      victims.push_back(live[k]);
      live[k] = fresh[i];
    }
    t0 = Clock::now();
    for (const Span& s : victims) a->free(s.base, s.npages);
    free_ns += since_ns(t0);
    frees += double(victims.size());
  }
  state.counters["ns_per_op"] = benchmark::Counter(alloc_ns / allocs);
  state.counters["ns_per_alloc"] = benchmark::Counter(alloc_ns / allocs);
  state.counters["ns_per_free"] = benchmark::Counter(frees > 0 ? free_ns / frees : 0);
  state.counters["live_spans"] = benchmark::Counter(double(live.size()));
}
void BM_PageReplayTreap(benchmark::State& state) { page_replay<rt::internal::TreapPageAlloc>(state); }
void BM_PageReplayRadix(benchmark::State& state) { page_replay<rt::internal::RadixPageAlloc>(state); }
BENCHMARK(BM_PageReplayTreap)->Arg(64)->Arg(1024)->Arg(8192)->UseRealTime();
BENCHMARK(BM_PageReplayRadix)->Arg(64)->Arg(1024)->Arg(8192)->UseRealTime();

}  // namespace

// The benchmarks hold mallocgc objects in std containers and free them
// explicitly: the collector, which cannot see those references, stays off
// (GOGC is read when the runtime starts).
int main(int argc, char** argv) {
  setenv("GOGC", "off", 1);
  return rtlab::bench::run_benchmarks(argc, argv);
}

// Garbage collector benchmarks (Google Benchmark), run inside the main
// goroutine; Go twin in go/gcbench/ (the same work with Go's collector).
//
//   BM_MakeNode/<procs>:          ns per rt::make of a 32-byte scan object
//                                 that dies at once (allocation plus the
//                                 amortised cost of the collections it
//                                 triggers at the default GOGC);
//   BM_BinaryTrees/<depth>/<procs>: with a long-lived tree of the given
//                                 depth held, procs goroutines build and
//                                 walk trees of depth 14 (binary-trees):
//                                 ns per tree node, collections per run,
//                                 and the stop-the-world pauses (p50, max,
//                                 from MemStats.PauseNs) during the run.
// Every benchmark reports "ns_per_op" (wall clock per unit of work).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "benchmarks/bench_util.h"
#include "rt/rt.h"

namespace {

using rtlab::bench::Clock;

struct TreeNode {
  rt::Ref<TreeNode> left;
  rt::Ref<TreeNode> right;
};

rt::Ref<TreeNode> build(int depth) {
  rt::Ref<TreeNode> n = rt::make<TreeNode>();
  if (depth > 0) {
    n->left = build(depth - 1);
    n->right = build(depth - 1);
  }
  return n;
}

int64_t count(const rt::Ref<TreeNode>& n) { return n ? 1 + count(n->left) + count(n->right) : 0; }

// The pauses of collections [from, to) (to - from <= 256).
std::vector<uint64_t> pauses(const rt::MemStats& st, uint32_t from) {
  std::vector<uint64_t> v;
  for (uint32_t i = from; i < st.NumGC; i++) v.push_back(st.PauseNs[i % 256]);
  std::sort(v.begin(), v.end());
  return v;
}

void report_gc(benchmark::State& state, const rt::MemStats& before, const rt::MemStats& after) {
  state.counters["gc_cycles"] = benchmark::Counter(double(after.NumGC - before.NumGC));
  std::vector<uint64_t> p = pauses(after, after.NumGC - before.NumGC > 256 ? after.NumGC - 256 : before.NumGC);
  state.counters["pause_p50_us"] = benchmark::Counter(p.empty() ? 0 : double(p[p.size() / 2]) / 1000);
  state.counters["pause_max_us"] = benchmark::Counter(p.empty() ? 0 : double(p.back()) / 1000);
}

void BM_MakeNode(benchmark::State& state) {
  rt::gomaxprocs(int(state.range(0)));
  rt::gc();
  rt::MemStats before = rt::read_mem_stats();
  auto t0 = Clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(rt::make<TreeNode>().get());
  rtlab::bench::report(state, t0, 1);
  report_gc(state, before, rt::read_mem_stats());
}
BENCHMARK(BM_MakeNode)->Arg(1)->UseRealTime();

void BM_BinaryTrees(benchmark::State& state) {
  int procs = int(state.range(1));
  rt::gomaxprocs(procs);
  rt::Ref<TreeNode> long_lived = build(int(state.range(0)));
  rt::gc();
  rt::MemStats before = rt::read_mem_stats();
  constexpr int kTreesPerWorker = 8;
  constexpr int kDepth = 14;
  constexpr int64_t kNodesPerTree = (int64_t(1) << (kDepth + 1)) - 1;
  bool ok = true;
  auto t0 = Clock::now();
  for (auto _ : state) {
    rt::WaitGroup wg;
    std::atomic<int64_t> built{0};
    for (int w = 0; w < procs; w++) {
      wg.add(1);
      rt::go([&] {
        for (int i = 0; i < kTreesPerWorker; i++) built += count(build(kDepth));
        wg.done();
      });
    }
    wg.wait();
    ok = ok && built.load() == procs * kTreesPerWorker * kNodesPerTree;
  }
  rtlab::bench::report(state, t0, procs * kTreesPerWorker * kNodesPerTree);
  rt::MemStats after = rt::read_mem_stats();
  if (!ok || count(long_lived) != (int64_t(1) << (state.range(0) + 1)) - 1) state.SkipWithError("a tree was damaged");
  report_gc(state, before, after);
}
BENCHMARK(BM_BinaryTrees)->Args({16, 1})->Args({16, 2})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) { return rtlab::bench::run_benchmarks(argc, argv); }

// Workload "alloc_storm": the collector and the allocator under an
// allocation storm. Twin: go/main.go (same work, same checks, same record).
//
// mode=trees (binary trees): a long-lived tree of depth live_depth is built
// before the measured region and held through it, so every cycle marks a
// large live heap; `workers` goroutines each build trees of depth `depth`,
// count their nodes and drop them, until `objects` nodes were allocated in
// all. Small scan objects (two Refs each): the mark, the sweep and the
// write barrier's cost per store.
// mode=large: the workers allocate large_objects noscan objects of sizes
// drawn log-uniformly from [min_size, max_size] (the same sequence as the
// Go twin's), each kept in a ring of `window` per worker, so span
// allocation and the page allocator (treap vs radix) sit on the critical
// path and the sweeper hands whole spans back to it.
//
// Metrics: ns_per_object (wall time of the region / objects), the heap
// peak (HeapAlloc sampled every ms), the peak resident set; GC cycles,
// pauses (Go's PauseNs: sweep plus mark termination) and GC CPU fraction
// are in the record's runtime.gc. Both trees are counted and the large
// objects' first and last bytes checked: a collector that freed a live
// object fails the run (exit 1).
#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "harness/workload.h"
#include "rt/rt.h"

namespace {

struct Node {
  rt::Ref<Node> left, right;
};

rt::Ref<Node> build(int64_t depth) {
  if (depth == 0) return rt::make<Node>();
  return rt::make<Node>(Node{build(depth - 1), build(depth - 1)});
}

int64_t count(const rt::Ref<Node>& n) { return n->left ? 1 + count(n->left) + count(n->right) : 1; }

// splitmix64, as in the Go twin.
uint64_t next(uint64_t* s) {
  *s += 0x9e3779b97f4a7c15ULL;
  uint64_t z = *s;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A size in [lo, hi], log-uniform: a uniform exponent, then a uniform size
// within that power of two (the Go twin's largeSize).
int64_t large_size(uint64_t* s, int64_t lo, int64_t hi) {
  const int lg = 63 - __builtin_clzll(uint64_t(lo));
  const int hg = 63 - __builtin_clzll(uint64_t(hi));
  for (;;) {
    const int e = lg + int(next(s) % uint64_t(hg - lg + 1));
    const int64_t v = (int64_t(1) << e) + int64_t(next(s) % (uint64_t(1) << e));
    if (v >= lo && v <= hi) return v;
  }
}

int64_t peak_rss() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return int64_t(ru.ru_maxrss) * 1024;
}

[[noreturn]] void fail(const std::string& msg) {
  fprintf(stderr, "alloc_storm: %s\n", msg.c_str());
  exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  harness::Workload w("alloc_storm", argc, argv);
  const std::string mode = w.param_str("mode", "trees");
  const int64_t workers = w.param_int("workers", 2);
  const int64_t live_depth = w.param_int("live_depth", 20);
  const int64_t depth = w.param_int("depth", 14);
  const int64_t objects = w.param_int("objects", 26000000);
  const int64_t large_objects = w.param_int("large_objects", 20000);
  const int64_t min_size = w.param_int("min_size", 8192);
  const int64_t max_size = w.param_int("max_size", 1 << 20);
  const int64_t window = w.param_int("window", 16);
  w.check_params();
  if (mode != "trees" && mode != "large") {
    fprintf(stderr, "alloc_storm: mode must be trees or large, not \"%s\"\n", mode.c_str());
    return 2;
  }
  if (workers < 1 || live_depth < 0 || live_depth > 30 || depth < 0 || depth > 30 || objects < 1 ||
      large_objects < 1 || min_size < 1 || max_size < min_size || window < 1) {
    fprintf(stderr,
            "alloc_storm: want workers, objects, large_objects, min_size, window >= 1, "
            "max_size >= min_size, depths in [0, 30]\n");
    return 2;
  }
  return rt::run(argc, argv, [&] {
    const bool trees_mode = mode == "trees";
    const int64_t per_tree = (int64_t(1) << (depth + 1)) - 1;
    const int64_t trees = (objects + per_tree - 1) / per_tree;
    rt::Ref<Node> live;
    if (trees_mode) live = build(live_depth);
    rt::gc();  // the measured region starts from a collected heap, on both sides
    std::vector<int64_t> counted(size_t(workers), 0), sizes(size_t(workers), 0);
    rt::WaitGroup wg;
    harness::HeapPeak peak(1000000);
    w.begin();
    for (int64_t k = 0; k < workers; k++) {
      wg.add(1);
      rt::go([&, k] {
        if (trees_mode) {
          for (int64_t t = k; t < trees; t += workers) counted[size_t(k)] += count(build(depth));
        } else {
          rt::Slice<rt::Slice<uint8_t>> ring = rt::make_slice<rt::Slice<uint8_t>>(size_t(window));
          uint64_t seed = uint64_t(k + 1);
          for (int64_t i = k; i < large_objects; i += workers) {
            rt::Slice<uint8_t> b = rt::make_slice<uint8_t>(size_t(large_size(&seed, min_size, max_size)));
            b[0] = b[b.len() - 1] = uint8_t(i);
            ring[size_t(i / workers % window)] = b;
            sizes[size_t(k)] += int64_t(b.len());
          }
          for (const auto& b : ring) {
            if (!b.empty() && b[0] != b[b.len() - 1]) fail("a large object lost its contents");
          }
        }
        wg.done();
      });
    }
    wg.wait();
    const uint64_t heap_peak = peak.stop();
    int64_t n = 0;
    if (trees_mode) {
      for (int64_t c : counted) n += c;
      if (n != trees * per_tree)
        fail("counted " + std::to_string(n) + " nodes in " + std::to_string(trees) + " trees of depth " +
             std::to_string(depth) + ", want " + std::to_string(trees * per_tree));
      const int64_t want = (int64_t(1) << (live_depth + 1)) - 1;
      if (int64_t c = count(live); c != want)
        fail("the long-lived tree has " + std::to_string(c) + " nodes, want " + std::to_string(want));
    } else {
      n = large_objects;
    }
    w.end(uint64_t(n));
    w.metric("ns_per_object", double(w.wall_ns()) / double(n));
    w.metric("heap_peak_bytes", double(heap_peak));
    w.metric("peak_rss_bytes", double(peak_rss()));
    if (!trees_mode) {
      int64_t total = 0;
      for (int64_t s : sizes) total += s;
      w.metric("bytes_per_object", double(total) / double(n));
    }
    return w.emit();
  });
}

// Go twin of workloads/alloc_storm/alloc_storm.cc: same work, same checks,
// same JSON record.
//
// mode=trees: a long-lived binary tree of depth live_depth is built before
// the measured region and held through it, while `workers` goroutines each
// build trees of depth `depth`, count their nodes and drop them, until
// `objects` nodes were allocated in all (the binary-trees benchmark: small
// objects, a large live heap the collector marks every cycle).
// mode=large: the workers allocate large_objects objects of sizes drawn
// log-uniformly from [min_size, max_size], each kept in a ring of `window`
// per worker, so span allocation and the page allocator sit on the critical
// path. Reports ns per object, the heap peak (sampled every ms) and the
// peak resident set; GC cycles, pauses and GC CPU fraction are in the
// record's runtime.gc.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	measure "rtlab/harness/go"
)

type node struct{ left, right *node }

func build(depth int64) *node {
	if depth == 0 {
		return &node{}
	}
	return &node{build(depth - 1), build(depth - 1)}
}

func (n *node) count() int64 {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.count() + n.right.count()
}

// splitmix64: the sizes of mode=large, the same sequence as the C++ side's.
func next(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// largeSize is a size in [lo, hi], log-uniform: a uniform exponent, then a
// uniform size within that power of two.
func largeSize(s *uint64, lo, hi int64) int64 {
	for {
		lg := 63 - int64(clz(uint64(lo)))
		hg := 63 - int64(clz(uint64(hi)))
		e := lg + int64(next(s)%uint64(hg-lg+1))
		v := int64(1)<<e + int64(next(s)%uint64(int64(1)<<e))
		if v >= lo && v <= hi {
			return v
		}
	}
}

func clz(x uint64) int {
	n := 0
	for i := 63; i >= 0 && x&(1<<uint(i)) == 0; i-- {
		n++
	}
	return n
}

func peakRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss * 1024
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "alloc_storm: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	w := measure.NewWorkload("alloc_storm")
	mode := w.ParamString("mode", "trees")
	workers := w.ParamInt("workers", 2)
	liveDepth := w.ParamInt("live_depth", 20)
	depth := w.ParamInt("depth", 14)
	objects := w.ParamInt("objects", 26000000)
	largeObjects := w.ParamInt("large_objects", 20000)
	minSize := w.ParamInt("min_size", 8192)
	maxSize := w.ParamInt("max_size", 1<<20)
	window := w.ParamInt("window", 16)
	w.CheckParams()
	if mode != "trees" && mode != "large" {
		fmt.Fprintf(os.Stderr, "alloc_storm: mode must be trees or large, not %q\n", mode)
		os.Exit(2)
	}
	if workers < 1 || liveDepth < 0 || liveDepth > 30 || depth < 0 || depth > 30 || objects < 1 ||
		largeObjects < 1 || minSize < 1 || maxSize < minSize || window < 1 {
		fmt.Fprintln(os.Stderr, "alloc_storm: want workers, objects, large_objects, min_size, window >= 1, "+
			"max_size >= min_size, depths in [0, 30]")
		os.Exit(2)
	}

	var live *node
	perTree := int64(1)<<(depth+1) - 1
	trees := (objects + perTree - 1) / perTree
	if mode == "trees" {
		live = build(liveDepth)
	}
	runtime.GC() // the measured region starts from a collected heap, on both sides
	var wg sync.WaitGroup
	counted := make([]int64, workers)
	var sizes = make([]int64, workers)
	peak := measure.StartHeapPeak(time.Millisecond)
	w.Begin()
	for k := int64(0); k < workers; k++ {
		wg.Add(1)
		go func(k int64) {
			defer wg.Done()
			if mode == "trees" {
				for t := k; t < trees; t += workers {
					counted[k] += build(depth).count()
				}
				return
			}
			ring := make([][]byte, window)
			seed := uint64(k + 1)
			for i := k; i < largeObjects; i += workers {
				b := make([]byte, largeSize(&seed, minSize, maxSize))
				b[0], b[len(b)-1] = byte(i), byte(i)
				ring[i/workers%window] = b
				sizes[k] += int64(len(b))
			}
			for _, b := range ring {
				if b != nil && b[0] != b[len(b)-1] {
					fail("a large object lost its contents")
				}
			}
		}(k)
	}
	wg.Wait()
	heapPeak := peak.Stop()
	var n int64
	if mode == "trees" {
		for _, c := range counted {
			n += c
		}
		if n != trees*perTree {
			fail("counted %d nodes in %d trees of depth %d, want %d", n, trees, depth, trees*perTree)
		}
		if c := live.count(); c != int64(1)<<(liveDepth+1)-1 {
			fail("the long-lived tree has %d nodes, want %d", c, int64(1)<<(liveDepth+1)-1)
		}
	} else {
		n = largeObjects
	}
	w.End(uint64(n))
	w.Metric("ns_per_object", float64(w.WallNs())/float64(n))
	w.Metric("heap_peak_bytes", float64(heapPeak))
	w.Metric("peak_rss_bytes", float64(peakRSS()))
	if mode == "large" {
		var total int64
		for _, s := range sizes {
			total += s
		}
		w.Metric("bytes_per_object", float64(total)/float64(n))
	}
	w.Emit()
}

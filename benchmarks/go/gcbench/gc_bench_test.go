// Go twin of benchmarks/gc_bench.cc: the same allocation and binary-trees
// work with Go's collector. Run with `go test -bench . -cpu 1,2 ./gcbench`
// from benchmarks/go. Each reports ns per object as ns/op2 and, like the
// C++ side, the collections and stop-the-world pauses of the run.
package gcbench

import (
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type treeNode struct {
	left, right *treeNode
}

func build(depth int) *treeNode {
	n := &treeNode{}
	if depth > 0 {
		n.left = build(depth - 1)
		n.right = build(depth - 1)
	}
	return n
}

func count(n *treeNode) int64 {
	if n == nil {
		return 0
	}
	return 1 + count(n.left) + count(n.right)
}

func reportGC(b *testing.B, before, after *runtime.MemStats) {
	b.ReportMetric(float64(after.NumGC-before.NumGC), "gc_cycles")
	from := before.NumGC
	if after.NumGC-from > 256 {
		from = after.NumGC - 256
	}
	var p []uint64
	for i := from; i < after.NumGC; i++ {
		p = append(p, after.PauseNs[i%256])
	}
	sort.Slice(p, func(i, j int) bool { return p[i] < p[j] })
	if len(p) > 0 {
		b.ReportMetric(float64(p[len(p)/2])/1000, "pause_p50_us")
		b.ReportMetric(float64(p[len(p)-1])/1000, "pause_max_us")
	}
}

var sink *treeNode

func BenchmarkMakeNode(b *testing.B) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		sink = &treeNode{}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "ns/op2")
	runtime.ReadMemStats(&after)
	reportGC(b, &before, &after)
}

func BenchmarkBinaryTrees16(b *testing.B) {
	const treesPerWorker, depth = 8, 14
	const nodesPerTree = int64(1)<<(depth+1) - 1
	procs := runtime.GOMAXPROCS(0)
	longLived := build(16)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		var built atomic.Int64
		for w := 0; w < procs; w++ {
			wg.Add(1)
			go func() {
				for t := 0; t < treesPerWorker; t++ {
					built.Add(count(build(depth)))
				}
				wg.Done()
			}()
		}
		wg.Wait()
		if built.Load() != int64(procs*treesPerWorker)*nodesPerTree {
			b.Fatal("a tree was damaged")
		}
	}
	nodes := float64(b.N) * float64(int64(procs*treesPerWorker)*nodesPerTree)
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/nodes, "ns/op2")
	runtime.ReadMemStats(&after)
	reportGC(b, &before, &after)
	if count(longLived) != int64(1)<<17-1 {
		b.Fatal("long-lived tree damaged")
	}
}

// Go twin of workloads/gc_latency/gc_latency.cc: same work, same checks,
// same JSON record.
//
// The shape of golang/benchmarks' gc_latency: a circular buffer of `slots`
// slots, each holding a freshly made slice of `size` bytes filled with the
// push's number; `pushes` pushes in all, each replacing the oldest slice, so
// the live heap stays at slots x size while the collector frees what the
// buffer dropped. Every push (make + fill + store) is timed: the histogram
// alloc_latency_ns (p50 ... p99.99, max) is what a request would see, and
// the worst stop-the-world pause is in the record's runtime.gc.
package main

import (
	"fmt"
	"os"
	"time"

	measure "rtlab/harness/go"
)

func main() {
	w := measure.NewWorkload("gc_latency")
	slots := w.ParamInt("slots", 200000)
	size := w.ParamInt("size", 1024)
	pushes := w.ParamInt("pushes", 2000000)
	w.CheckParams()
	if slots < 1 || size < 1 || pushes < slots {
		fmt.Fprintln(os.Stderr, "gc_latency: want slots >= 1, size >= 1 and pushes >= slots")
		os.Exit(2)
	}
	buf := make([][]byte, slots)
	lat := measure.NewHistogram(1, 60*1000000000, 3)
	peak := measure.StartHeapPeak(time.Millisecond)
	w.Begin()
	for i := int64(0); i < pushes; i++ {
		t0 := time.Now()
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(i)
		}
		buf[i%slots] = b
		lat.Record(int64(time.Since(t0)))
	}
	w.End(uint64(pushes))
	heapPeak := peak.Stop()
	for k := int64(0); k < slots; k++ { // the last `slots` pushes are all there, intact
		i := pushes - slots + k
		b := buf[i%slots]
		if int64(len(b)) != size || b[0] != byte(i) || b[size-1] != byte(i) {
			fmt.Fprintf(os.Stderr, "gc_latency: slot %d does not hold push %d\n", i%slots, i)
			os.Exit(1)
		}
	}
	w.Histogram("alloc_latency_ns", lat)
	w.Metric("alloc_latency_max_ns", float64(lat.Percentile(100)))
	w.Metric("alloc_latency_p9999_ns", float64(lat.Percentile(99.99)))
	w.Metric("ns_per_push", float64(w.WallNs())/float64(pushes))
	w.Metric("heap_peak_bytes", float64(heapPeak))
	w.Emit()
}

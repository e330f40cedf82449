// Go twin of workloads/park/park.cc: same work, same checks, same JSON record.
package main

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	measure "rtlab/harness/go"
)

// rssBytes is the resident set size of this process, from /proc/self/statm.
func rssBytes() int64 {
	var size, resident int64
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return -1
	}
	defer f.Close()
	if n, _ := fmt.Fscan(f, &size, &resident); n != 2 {
		return -1
	}
	return resident * int64(os.Getpagesize())
}

func main() {
	w := measure.NewWorkload("park")
	n := w.ParamInt("goroutines", 1000000)
	w.CheckParams()
	if n <= 0 || n > 1<<31-1 {
		fmt.Fprintf(os.Stderr, "park: goroutines must be in [1, %d]\n", 1<<31-1)
		os.Exit(2)
	}

	seen := make([]uint32, n)
	var invented int64
	values := make(chan int64)
	var waiting, exited sync.WaitGroup
	waiting.Add(int(n))
	exited.Add(int(n))
	rss0 := rssBytes()
	w.Begin()
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		go func() {
			waiting.Done()
			v := <-values
			if v < 0 || v >= n {
				atomic.AddInt64(&invented, 1)
			} else {
				atomic.AddUint32(&seen[v], 1)
			}
			exited.Done()
		}()
	}
	waiting.Wait()
	t1 := time.Now()
	rss1 := rssBytes()
	for v := int64(0); v < n; v++ {
		values <- v
	}
	exited.Wait()
	t2 := time.Now()
	w.End(uint64(n))
	var lost, duplicated int64
	for _, k := range seen {
		if k == 0 {
			lost++
		} else if k > 1 {
			duplicated++
		}
	}
	if lost != 0 || duplicated != 0 || invented != 0 {
		fmt.Fprintf(os.Stderr, "park: of %d values %d were lost, %d delivered more than once, %d invented\n",
			n, lost, duplicated, invented)
		os.Exit(1)
	}
	fn := float64(n)
	w.Metric("ns_per_goroutine", float64(t2.Sub(t0).Nanoseconds())/fn)
	w.Metric("park_ns_per_goroutine", float64(t1.Sub(t0).Nanoseconds())/fn)
	w.Metric("release_ns_per_goroutine", float64(t2.Sub(t1).Nanoseconds())/fn)
	w.Metric("rss_bytes_per_goroutine", float64(rss1-rss0)/fn)
	w.Emit()
}

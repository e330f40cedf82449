// Go twin of workloads/spawn/spawn.cc: same work, same JSON record.
package main

import (
	"sync"
	"time"

	measure "rtlab/harness/go"
)

func main() {
	w := measure.NewWorkload("spawn")
	n := w.ParamInt("goroutines", 100000)
	rounds := w.ParamInt("rounds", 5)
	w.CheckParams()

	ran := make([]int64, n)
	lat := measure.NewHistogram(1, 60*1000000000, 3)
	base := time.Now()
	var spawnNs int64
	w.Begin()
	for r := int64(0); r < rounds; r++ {
		var wg sync.WaitGroup
		wg.Add(int(n))
		t0 := time.Since(base)
		for i := int64(0); i < n; i++ {
			t := time.Since(base)
			go func(i int64, t time.Duration) {
				ran[i] = int64(time.Since(base) - t)
				wg.Done()
			}(i, t)
		}
		spawnNs += int64(time.Since(base) - t0)
		wg.Wait()
		for i := int64(0); i < n; i++ {
			lat.Record(ran[i])
		}
	}
	w.End(uint64(n * rounds))
	ops := float64(n * rounds)
	w.Metric("ns_per_goroutine", float64(w.WallNs())/ops)
	w.Metric("spawn_ns_per_goroutine", float64(spawnNs)/ops)
	w.Histogram("spawn_to_run_ns", lat)
	w.Emit()
}

// Go twin of workloads/chan_pingpong/chan_pingpong.cc: same work, same
// JSON record.
package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	measure "rtlab/harness/go"
)

func main() {
	w := measure.NewWorkload("chan_pingpong")
	trips := w.ParamInt("round_trips", 1000000)
	pairs := w.ParamInt("pairs", 1)
	capacity := 0
	if w.ParamInt("buffered", 0) != 0 {
		capacity = 1
	}
	sampleEvery := w.ParamInt("sample_every", 16)
	w.CheckParams()

	// One histogram for all pairs; sampled trips are rare enough that the
	// mutex costs nothing measurable.
	hist := measure.NewHistogram(1, 10*1000000000, 3)
	var histMu sync.Mutex
	base := time.Now()
	var wg sync.WaitGroup
	wg.Add(int(2 * pairs))
	w.Begin()
	for p := int64(0); p < pairs; p++ {
		ping := make(chan int64, capacity)
		pong := make(chan int64, capacity)
		go func() {
			for i := int64(0); i < trips; i++ {
				pong <- (<-ping) + 1
			}
			wg.Done()
		}()
		go func() {
			v := int64(0)
			for i := int64(0); i < trips; i++ {
				if i%sampleEvery == 0 {
					t := time.Since(base)
					ping <- v
					v = <-pong
					d := int64(time.Since(base) - t)
					histMu.Lock()
					hist.Record(d)
					histMu.Unlock()
				} else {
					ping <- v
					v = <-pong
				}
			}
			if v != trips {
				fmt.Fprintln(os.Stderr, "chan_pingpong: lost a value")
				os.Exit(2)
			}
			wg.Done()
		}()
	}
	wg.Wait()
	w.End(uint64(trips * pairs))
	w.Metric("ns_per_round_trip", float64(w.WallNs())/float64(trips*pairs))
	w.Histogram("round_trip_ns", hist)
	w.Emit()
}

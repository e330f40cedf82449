package measure

import (
	"runtime/metrics"
	"time"
)

// HeapPeak samples the bytes of heap objects (MemStats.HeapAlloc, read
// through runtime/metrics, which does not stop the world as ReadMemStats
// does) every period on a goroutine of its own, and keeps the largest. The
// C++ twin is harness::HeapPeak.
type HeapPeak struct {
	stop, done chan struct{}
	peak       uint64
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func StartHeapPeak(period time.Duration) *HeapPeak {
	h := &HeapPeak{stop: make(chan struct{}), done: make(chan struct{})}
	sample := []metrics.Sample{{Name: heapObjects}}
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > h.peak {
			h.peak = v
		}
	}
	read()
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		defer close(h.done)
		for {
			select {
			case <-h.stop:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return h
}

// Stop ends the sampling and returns the peak in bytes.
func (h *HeapPeak) Stop() uint64 {
	close(h.stop)
	<-h.done
	return h.peak
}

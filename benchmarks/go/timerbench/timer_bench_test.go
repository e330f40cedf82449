// Go twin of benchmarks/timer_bench.cc: the same timer benchmarks with the
// Go runtime. Run with `go test -bench . -cpu 1,2 ./timerbench` from
// benchmarks/go. Each reports ns per operation as the metric ns/op2
// (measured around the whole loop, like the C++ side's ns_per_op).
package timerbench

import (
	"sync"
	"testing"
	"time"
)

func report(b *testing.B, start time.Time, opsPerIter int) {
	ns := float64(time.Since(start).Nanoseconds())
	b.ReportMetric(ns/float64(b.N*opsPerIter), "ns/op2")
}

func BenchmarkAfterFuncStop(b *testing.B) {
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t := time.AfterFunc(time.Hour, func() {})
		if !t.Stop() {
			b.Fatal("stop failed")
		}
	}
	report(b, start, 1)
}

func BenchmarkTimerReset(b *testing.B) {
	t := time.AfterFunc(time.Hour, func() {})
	d := time.Hour
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if !t.Reset(d) {
			b.Fatal("reset found the timer idle")
		}
		d ^= 1
	}
	report(b, start, 1)
	t.Stop()
}

func BenchmarkSleep0(b *testing.B) {
	start := time.Now()
	for i := 0; i < b.N; i++ {
		time.Sleep(0)
	}
	report(b, start, 1)
}

func BenchmarkSleep1us(b *testing.B) {
	start := time.Now()
	for i := 0; i < b.N; i++ {
		time.Sleep(time.Microsecond)
	}
	report(b, start, 1)
}

func BenchmarkSleep1usParallel(b *testing.B) {
	const g, sleeps = 8, 1000
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		wg.Add(g)
		for j := 0; j < g; j++ {
			go func() {
				for k := 0; k < sleeps; k++ {
					time.Sleep(time.Microsecond)
				}
				wg.Done()
			}()
		}
		wg.Wait()
	}
	report(b, start, g*sleeps)
}

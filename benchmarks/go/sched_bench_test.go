// Go twin of benchmarks/sched_bench.cc: the same four scheduler benchmarks,
// run by scripts/bench with `go test -bench . -cpu 1,2` (GOMAXPROCS comes
// from -cpu). Keep the two files doing the same work.
//
// Besides ns/op, each benchmark reports its cost per unit of work as a
// custom metric (ns/spawn, ns/goroutine, ns/yield, ns/handoff).
package schedbench

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

const (
	spawnMany = 1_000_000 // goroutines per BenchmarkSpawn1MWait iteration
	yields    = 1_000     // Gosched calls per goroutine per BenchmarkGoschedPingPong iteration
)

// report records ns per unit of work, measured over the whole timing loop.
func report(b *testing.B, start time.Time, opsPerIter int, unit string) {
	ns := float64(time.Since(start).Nanoseconds())
	b.ReportMetric(ns/float64(b.N*opsPerIter), unit)
}

// Spawn one goroutine and wait for it to exit.
func BenchmarkSpawnExit(b *testing.B) {
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
	report(b, start, 1, "ns/spawn")
}

// Spawn a million goroutines that each call wg.Done(), then wait.
func BenchmarkSpawn1MWait(b *testing.B) {
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		wg.Add(spawnMany)
		for j := 0; j < spawnMany; j++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	report(b, start, spawnMany, "ns/goroutine")
}

// Two goroutines each call runtime.Gosched() `yields` times.
func BenchmarkGoschedPingPong(b *testing.B) {
	var wg sync.WaitGroup
	yielder := func() {
		for i := 0; i < yields; i++ {
			runtime.Gosched()
		}
		wg.Done()
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		wg.Add(2)
		go yielder()
		go yielder()
		wg.Wait()
	}
	report(b, start, 2*yields, "ns/yield")
}

// Park/ready hand-off between two goroutines. The C++ version bounces with
// two runtime semaphores (semrelease(&a); semacquire(&b)); Go has no public
// semaphore (runtime_Semacquire is internal to sync), so this uses two
// unbuffered channels of struct{}: each receive parks the receiver and each
// send readies it, the same one park + one ready per hand-off. One
// iteration is a round trip = 2 hand-offs.
func BenchmarkSemaHandoff(b *testing.B) {
	a := make(chan struct{})
	c := make(chan struct{})
	done := make(chan struct{})
	n := b.N
	go func() {
		for i := 0; i < n; i++ {
			<-a
			c <- struct{}{}
		}
		close(done)
	}()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i++ {
		a <- struct{}{}
		<-c
	}
	report(b, start, 2, "ns/handoff")
	<-done
}

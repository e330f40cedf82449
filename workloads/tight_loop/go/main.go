// Go twin of workloads/tight_loop/tight_loop.cc: the same four phases and
// metrics. Go exposes no preemption counters, so those metrics are rt's
// only. After its own run it reruns itself with GODEBUG=asyncpreemptoff=1
// (Go's cooperative-only mode) and adds that run's metrics to the record
// under "asyncpreemptoff.", so both modes come from the same cell.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	measure "rtlab/harness/go"
)

const childEnv = "RTLAB_TIGHT_LOOP_CHILD"

var sink uint64

// One chunk of the call-free loop. Go inserts no preemption check in a
// loop; the stack check in this function's prologue is the cooperative
// safe point between chunks (the call of keep makes it a non-leaf
// function, which Go's compiler never marks nosplit).
//
//go:noinline
func spinChunk(n, x uint64) uint64 {
	for i := uint64(0); i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return keep(x)
}

//go:noinline
func keep(x uint64) uint64 { return x }

type phase struct {
	stop  atomic.Bool
	iters atomic.Uint64
	wg    sync.WaitGroup
}

func startSpinners(ph *phase, n int64, chunk uint64) {
	for i := int64(0); i < n; i++ {
		ph.wg.Add(1)
		go func(i int64) {
			x, done := uint64(i)+1, uint64(0)
			for !ph.stop.Load() {
				x = spinChunk(chunk, x)
				done += chunk
			}
			ph.iters.Add(done)
			atomic.AddUint64(&sink, x)
			ph.wg.Done()
		}(i)
	}
}

// Runs the phase for ms, stops it, returns the spinners' iterations/s.
func finish(ph *phase, ms int64) float64 {
	t0 := time.Now()
	time.Sleep(time.Duration(ms) * time.Millisecond)
	ph.stop.Store(true)
	ph.wg.Wait()
	return float64(ph.iters.Load()) / time.Since(t0).Seconds()
}

type result struct {
	metrics map[string]float64
	probe   *measure.Histogram
	stw     *measure.Histogram
	iters   uint64
}

func run(spinners, phaseMs int64, chunk uint64, stwEveryMs int64) result {
	procs := runtime.GOMAXPROCS(0)
	if spinners <= 0 {
		spinners = int64(procs)
	}
	probeHist := measure.NewHistogram(1, 60*1000000000, 3)
	stwHist := measure.NewHistogram(1, 60*1000000000, 3)

	var probe phase
	startSpinners(&probe, spinners, chunk)
	probe.wg.Add(1)
	go func() {
		for !probe.stop.Load() {
			t0 := time.Now()
			time.Sleep(time.Millisecond)
			probeHist.Record(int64(time.Since(t0) - time.Millisecond))
		}
		probe.wg.Done()
	}()
	rateProbe := finish(&probe, phaseMs)

	var noprobe phase
	startSpinners(&noprobe, spinners, chunk)
	rateNoprobe := finish(&noprobe, phaseMs)

	var stw phase
	startSpinners(&stw, spinners, chunk)
	stw.wg.Add(1)
	go func() {
		for !stw.stop.Load() {
			time.Sleep(time.Duration(stwEveryMs) * time.Millisecond)
			a := time.Now()
			runtime.GOMAXPROCS(procs + 1)
			b := time.Now()
			runtime.GOMAXPROCS(procs)
			stwHist.Record(int64(b.Sub(a)))
			stwHist.Record(int64(time.Since(b)))
		}
		stw.wg.Done()
	}()
	finish(&stw, phaseMs)

	var cost phase
	startSpinners(&cost, 1, chunk)
	finish(&cost, phaseMs)

	return result{
		metrics: map[string]float64{
			"probe_p50_ns":               float64(probeHist.Percentile(50)),
			"probe_p99_ns":               float64(probeHist.Percentile(99)),
			"probe_max_ns":               float64(probeHist.Percentile(100)),
			"stw_p99_ns":                 float64(stwHist.Percentile(99)),
			"stw_max_ns":                 float64(stwHist.Percentile(100)),
			"spin_iters_per_sec_probe":   rateProbe,
			"spin_iters_per_sec_noprobe": rateNoprobe,
			"spin_throughput_ratio":      rateProbe / rateNoprobe,
		},
		probe: probeHist,
		stw:   stwHist,
		iters: probe.iters.Load() + noprobe.iters.Load() + stw.iters.Load() + cost.iters.Load(),
	}
}

// Reruns this program with GODEBUG=asyncpreemptoff=1; returns its metrics.
func runAsyncPreemptOff() (map[string]float64, error) {
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	godebug := "asyncpreemptoff=1"
	if old := os.Getenv("GODEBUG"); old != "" {
		godebug = old + "," + godebug
	}
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug, childEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var m map[string]float64
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func main() {
	w := measure.NewWorkload("tight_loop")
	spinners := w.ParamInt("spinners", 0)
	phaseMs := w.ParamInt("phase_ms", 2000)
	chunk := uint64(w.ParamInt("chunk_iters", 40000000))
	stwEveryMs := w.ParamInt("stw_every_ms", 5)
	w.CheckParams()

	if os.Getenv(childEnv) == "1" {
		b, _ := json.Marshal(run(spinners, phaseMs, chunk, stwEveryMs).metrics)
		os.Stdout.Write(b)
		return
	}
	w.Begin()
	r := run(spinners, phaseMs, chunk, stwEveryMs)
	w.End(r.iters)
	for k, v := range r.metrics {
		w.Metric(k, v)
	}
	w.Histogram("probe_wake_ns", r.probe)
	w.Histogram("stw_ns", r.stw)
	off, err := runAsyncPreemptOff()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tight_loop: rerun with asyncpreemptoff=1 failed: %v\n", err)
		os.Exit(1)
	}
	for k, v := range off {
		w.Metric("asyncpreemptoff."+k, v)
	}
	w.Emit()
}

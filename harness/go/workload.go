// Package measure is the Go side of the rtlab harness: the same workload
// frame, histogram and JSON record as harness/workload.h, for the Go twins
// in workloads/<name>/go/.
package measure

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const SchemaVersion = 1

type Workload struct {
	name        string
	args        map[string]string
	asked       map[string]bool
	params      map[string]interface{}
	metrics     map[string]interface{}
	histograms  map[string]interface{}
	counters    *Counters
	t0          time.Time
	wallNs      int64
	cpu0, cpuNs int64
	ops         uint64
	ms0, ms1    runtime.MemStats
}

func NewWorkload(name string) *Workload {
	w := &Workload{name: name, args: map[string]string{}, asked: map[string]bool{},
		params: map[string]interface{}{}, metrics: map[string]interface{}{},
		histograms: map[string]interface{}{}}
	for _, a := range os.Args[1:] {
		if a == "--help" || a == "-h" {
			fmt.Fprintf(os.Stderr, "usage: %s [--param=value ...]  (prints one JSON record on stdout)\n", os.Args[0])
			os.Exit(0)
		}
		eq := strings.IndexByte(a, '=')
		if !strings.HasPrefix(a, "--") || eq < 0 {
			w.usageError(fmt.Sprintf("bad argument '%s' (want --name=value)", a))
		}
		w.args[a[2:eq]] = a[eq+1:]
	}
	return w
}

func (w *Workload) usageError(msg string) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", w.name, msg)
	os.Exit(2)
}

func (w *Workload) ParamInt(name string, def int64) int64 {
	w.asked[name] = true
	v := def
	if s, ok := w.args[name]; ok {
		x, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			w.usageError(fmt.Sprintf("parameter %s: '%s' is not an integer", name, s))
		}
		v = x
	}
	w.params[name] = v
	return v
}

func (w *Workload) ParamFloat(name string, def float64) float64 {
	w.asked[name] = true
	v := def
	if s, ok := w.args[name]; ok {
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			w.usageError(fmt.Sprintf("parameter %s: '%s' is not a number", name, s))
		}
		v = x
	}
	w.params[name] = v
	return v
}

func (w *Workload) ParamString(name, def string) string {
	w.asked[name] = true
	v := def
	if s, ok := w.args[name]; ok {
		v = s
	}
	w.params[name] = v
	return v
}

func (w *Workload) CheckParams() {
	for k := range w.args {
		if !w.asked[k] {
			w.usageError(fmt.Sprintf("unknown parameter '%s'", k))
		}
	}
}

func processCPUNs() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func (w *Workload) Begin() {
	w.counters = OpenCounters()
	runtime.ReadMemStats(&w.ms0)
	w.cpu0 = processCPUNs()
	w.counters.Start()
	w.t0 = time.Now()
}

func (w *Workload) End(ops uint64) {
	w.wallNs = int64(time.Since(w.t0))
	w.counters.Stop()
	w.cpuNs = processCPUNs() - w.cpu0
	runtime.ReadMemStats(&w.ms1)
	w.ops = ops
}

func (w *Workload) WallNs() int64 { return w.wallNs }

func (w *Workload) Metric(name string, v float64) { w.metrics[name] = v }

func (w *Workload) Histogram(name string, h *Histogram) { w.histograms[name] = h.JSON() }

func (w *Workload) Record() map[string]interface{} {
	vals, info := w.counters.JSON()
	// GC pauses of the cycles inside the measured region (the last 256 are kept).
	pauses := NewHistogram(1, 60*1000000000, 3)
	n := w.ms1.NumGC - w.ms0.NumGC
	if n > 256 {
		n = 256
	}
	var maxPause int64
	for i := uint32(0); i < n; i++ {
		p := int64(w.ms1.PauseNs[(w.ms1.NumGC-1-i+256)%256])
		pauses.Record(p)
		if p > maxPause {
			maxPause = p
		}
	}
	gc := map[string]interface{}{
		"cycles": w.ms1.NumGC - w.ms0.NumGC, "pause_ns": pauses.JSON(), "max_pause_ns": maxPause,
		"pause_total_ns": w.ms1.PauseTotalNs - w.ms0.PauseTotalNs,
		"forced_cycles":  w.ms1.NumForcedGC - w.ms0.NumForcedGC, "cpu_fraction": w.ms1.GCCPUFraction,
	}
	mem := map[string]interface{}{
		"heap_alloc": w.ms1.HeapAlloc, "heap_sys": w.ms1.HeapSys, "sys": w.ms1.Sys,
		"total_alloc": w.ms1.TotalAlloc - w.ms0.TotalAlloc, "mallocs": w.ms1.Mallocs - w.ms0.Mallocs,
		"frees": w.ms1.Frees - w.ms0.Frees, "num_gc": w.ms1.NumGC, "next_gc": w.ms1.NextGC,
	}
	return map[string]interface{}{
		"schema": "rtlab.run", "schema_version": SchemaVersion, "workload": w.name, "impl": "go",
		"variant": runtime.Version(), "gomaxprocs": runtime.GOMAXPROCS(0), "params": w.params,
		"gogc": envOrNil("GOGC"), "godebug": envOrNil("GODEBUG"),
		"ops": w.ops, "wall_ns": w.wallNs, "cpu_ns": w.cpuNs, "metrics": w.metrics,
		"histograms": w.histograms, "counters": vals, "counter_info": info,
		"runtime": map[string]interface{}{
			// Go exposes no scheduler counters; its STW pauses are the GC pauses.
			"sched": nil, "stw_pause_ns": pauses.JSON(), "sched_latency_ns": nil, "gc": gc, "memstats": mem,
		},
		"build": map[string]interface{}{"compiler": runtime.Version() + " " + runtime.Compiler},
	}
}

// envOrNil is an environment variable's value, nil (JSON null) when unset.
func envOrNil(key string) interface{} {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return nil
}

// Emit prints the record as one line on stdout.
func (w *Workload) Emit() {
	b, err := json.Marshal(w.Record())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", w.name, err)
		os.Exit(3)
	}
	os.Stdout.Write(append(b, '\n'))
}

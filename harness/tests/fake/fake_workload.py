#!/usr/bin/python3
"""A fake rtlab workload for the harness tests. Behaviour from argv[1]:
good (a valid record; latency scaled by RTLAB_FAKE_SCALE), dist (a
controlled distribution, below), crash, hang, badjson, badrecord, flaky
(crashes while the file $RTLAB_FAKE_FAIL_FILE exists, else good), wrongenv
(good, but its record claims GOGC=1), gc (good, with a runtime.gc of 5
collections whose pauses are 10..50 µs x RTLAB_FAKE_GC_SCALE, 1% jitter).
Every record says which GOGC and GODEBUG the program saw.

dist: ns_per_op is 1000 x scale x a lognormal factor (sigma 3%), and one run
in 20 is an outlier 30% slower (a neighbour stealing the CPU); the lat_ns
histogram holds 200 lognormal samples (sigma 30%) of the same scale. scale
is RTLAB_FAKE_SCALE times the number in the file `scale` of the workload's
folder (the current directory), so a commit can change it."""
import json
import math
import os
import random
import sys
import time

mode = sys.argv[1]
params = dict(a[2:].split("=", 1) for a in sys.argv[2:])
if mode == "crash" or (mode == "flaky" and os.path.exists(os.environ.get("RTLAB_FAKE_FAIL_FILE", ""))):
    print("fake: boom", file=sys.stderr)
    sys.exit(3)
if mode == "hang":
    time.sleep(600)
if mode == "badjson":
    print('{"schema": "rtlab.run", "truncated')
    sys.exit(0)
scale = float(os.environ.get("RTLAB_FAKE_SCALE", "1"))
rng = random.Random()
if mode == "dist":
    if os.path.exists("scale"):
        with open("scale") as f:
            scale *= float(f.read())
    factor = math.exp(rng.gauss(0, 0.03)) * (1.3 if rng.random() < 0.05 else 1.0)
    base = int(1000 * scale * factor)
    samples = sorted(int(1000 * scale * math.exp(rng.gauss(0, 0.3))) for _ in range(200))
    counts = {}
    for v in samples:
        counts[v] = counts.get(v, 0) + 1
    buckets = [[v, v, c] for v, c in sorted(counts.items())]
    pct = {q: samples[min(199, int(round(q / 100 * 200)) - 1)] for q in (50, 90, 99, 99.9)}
    hist = {"layout": "hdr", "lowest": 1, "highest": 10 ** 9, "sigfigs": 3, "count": 200, "saturated": 0,
            "min": samples[0], "max": samples[-1], "mean": sum(samples) / 200, "p50": pct[50], "p90": pct[90],
            "p99": pct[99], "p999": pct[99.9], "buckets": buckets}
else:
    base = int(1000 * scale * (1 + rng.uniform(-0.01, 0.01)))
    buckets = [[base, base, 90], [base * 3, base * 3, 10]]
    hist = {"layout": "hdr", "lowest": 1, "highest": 10 ** 9, "sigfigs": 3, "count": 100, "saturated": 0,
            "min": base, "max": base * 3, "mean": base * 1.2, "p50": base, "p90": base, "p99": base * 3,
            "p999": base * 3, "buckets": buckets}
rec = {"schema": "rtlab.run", "schema_version": 1, "workload": os.path.basename(os.getcwd()), "impl": "rt",
       "variant": os.environ.get("RTLAB_VARIANT", "?"), "gomaxprocs": int(os.environ.get("GOMAXPROCS", "1")),
       "params": {k: int(v) for k, v in params.items()}, "ops": 100, "wall_ns": base * 100, "cpu_ns": base * 100,
       "metrics": {"ns_per_op": float(base)}, "histograms": {"lat_ns": hist},
       "counters": {"cycles": "unsupported", "task-clock": float(base * 100), "page-faults": 0},
       "counter_info": {"cycles": {"error": "perf_event_open: No such file or directory (ENOENT)"}},
       "runtime": {"sched": {"ctxswitches": 100}, "stw_pause_ns": None, "sched_latency_ns": None, "gc": None,
                   "memstats": None}}
if mode == "gc":
    gs = float(os.environ.get("RTLAB_FAKE_GC_SCALE", "1"))
    ps = [int(10000 * k * gs * (1 + rng.uniform(-0.01, 0.01))) for k in range(1, 6)]
    rec["runtime"]["gc"] = {
        "cycles": 5, "forced_cycles": 0, "max_pause_ns": max(ps), "pause_total_ns": sum(ps), "cpu_fraction": 0.1,
        "pause_ns": {"layout": "hdr", "lowest": 1, "highest": 60 * 10 ** 9, "sigfigs": 3, "count": 5, "saturated": 0,
                     "min": ps[0], "max": ps[-1], "mean": sum(ps) / 5, "p50": ps[2], "p90": ps[4], "p99": ps[4],
                     "p999": ps[4], "buckets": [[p, p, 1] for p in ps]}}
rec.update(gogc="1" if mode == "wrongenv" else os.environ.get("GOGC"), godebug=os.environ.get("GODEBUG"))
if mode == "badrecord":
    rec["counters"]["cycles"] = "n/a"
print("fake: some human output")
print(json.dumps(rec))

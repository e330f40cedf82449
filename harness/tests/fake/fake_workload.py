#!/usr/bin/python3
"""A fake rtlab workload for the CLI tests. Behaviour from argv[1]:
good (a valid record; latency scaled by RTLAB_FAKE_SCALE), crash, hang,
badjson, badrecord, flaky (crashes while the file $RTLAB_FAKE_FAIL_FILE
exists, else good)."""
import json
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
if mode == "badrecord":
    rec["counters"]["cycles"] = "n/a"
print("fake: some human output")
print(json.dumps(rec))

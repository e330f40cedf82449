#!/usr/bin/python3
"""A fake driver of a server+client workload for the CLI tests: runs the
server given by --server (a program that prints "IMPL VARIANT") and prints
a valid record carrying the server's impl and variant."""
import json
import os
import subprocess
import sys

params = dict(a[2:].split("=", 1) for a in sys.argv[1:])
server = params.pop("server")
impl, variant = subprocess.run([server], capture_output=True, text=True, check=True).stdout.split()
hist = {"count": 1, "min": 5, "max": 5, "mean": 5.0, "p50": 5, "p90": 5, "p99": 5, "p999": 5, "buckets": [[5, 5, 1]]}
print(json.dumps({
    "schema": "rtlab.run", "schema_version": 1, "workload": os.path.basename(os.getcwd()), "impl": impl,
    "variant": variant, "gomaxprocs": int(os.environ.get("GOMAXPROCS", "1")),
    "params": {k: int(v) for k, v in params.items()}, "ops": 1, "wall_ns": 5, "cpu_ns": 5,
    "metrics": {"ns_per_op": 5.0, "server": 1.0}, "histograms": {"lat_ns": hist}, "counters": {},
    "runtime": {"sched": None, "stw_pause_ns": None, "gc": None, "memstats": None}}))

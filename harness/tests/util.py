"""Shared helpers for the rtlab Python tests."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "harness"))
RTLAB = os.path.join(ROOT, "scripts", "rtlab")
PY = "/usr/bin/python3"


def bin_dir():
    """Where the built workload binaries are (the spawn variants)."""
    if os.environ.get("RTLAB_TEST_BIN_DIR"):
        return os.environ["RTLAB_TEST_BIN_DIR"]
    if os.environ.get("TEST_SRCDIR"):
        return ROOT  # runfiles: <root>/workloads/spawn/spawn__<variant>
    return os.path.join(ROOT, "bazel-bin")


def tmpdir():
    return tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))


def make_fake_workloads(d, modes=("good", "crash", "hang", "badjson", "badrecord")):
    """One workload folder per mode, all running fake/fake_workload.py."""
    script = os.path.join(HERE, "fake", "fake_workload.py")
    for m in modes:
        w = os.path.join(d, m)
        os.makedirs(w, exist_ok=True)
        with open(os.path.join(w, "workload.json"), "w") as f:
            json.dump({"name": m, "description": f"fake ({m})", "command": [PY, script, m],
                       "params": {"n": {"default": 10, "smoke": 2}}, "primary_metric": "ns_per_op",
                       "latency_histograms": ["lat_ns"]}, f)
    return d


def rtlab(*args, env=None, timeout=300):
    e = dict(os.environ)
    e.setdefault("MPLCONFIGDIR", tmpdir())
    if env:
        e.update(env)
    return subprocess.run([PY, RTLAB, *args], capture_output=True, text=True, env=e, timeout=timeout)

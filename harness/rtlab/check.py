"""`rtlab baseline` and `rtlab check`: the regression gate.

A baseline is a JSON file holding, for every cell and checked metric, the
values of every repetition. `check` compares a database against it: for
each metric with a threshold, ratio = median(new) / median(old), and the
run-to-run noise = the larger relative spread ((max - min) / median) of the
old and the new repetitions. A metric regresses only when ratio - 1 exceeds
both its threshold and the noise. With fewer than 2 repetitions on either
side the noise is unknown and the verdict is "no noise estimate" (not a
failure).
"""
import datetime
import json

from . import stats
from .gate import DEFAULT_THRESHOLDS, lookup as threshold_for

BASELINE_SCHEMA = "rtlab.baseline"
BASELINE_VERSION = 1

# The stored-baseline check reads no workload.json, so the round-trip
# workloads' inverse throughput (netpoll_echo, chan_pingpong) gets its
# threshold here.
CHECK_THRESHOLDS = dict(DEFAULT_THRESHOLDS, ns_per_round_trip=0.10)


def parse_thresholds(items):
    th = dict(CHECK_THRESHOLDS)
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"--threshold {it!r}: want METRIC=FRACTION (e.g. '*.p99=0.3')")
        k, v = it.split("=", 1)
        try:
            th[k] = float(v)
        except ValueError:
            raise ValueError(f"--threshold {it!r}: {v!r} is not a number")
    return th


def cell_key(row):
    """A cell's key in a baseline; GOGC and GODEBUG appear only when set, so
    baselines from before they were dimensions keep their keys."""
    env = "".join(f"|{k}={row[k.lower()]}" for k in ("GOGC", "GODEBUG") if row.get(k.lower()))
    return f"{row['workload']}|{row['variant']}|P{row['gomaxprocs']}|{row['params_json']}{env}"


def collect(db, thresholds):
    """{cell_key: {metric: [values...]}} of the ok, non-warm-up runs."""
    out = {}
    by_run = db.metrics_by_run()
    for r in db.runs():
        ms = by_run.get(r["run_id"], {})
        d = out.setdefault(cell_key(r), {})
        for k, v in ms.items():
            if threshold_for(k, thresholds) is not None:
                d.setdefault(k, []).append(v)
    return out


def make_baseline(db, thresholds=None):
    th = thresholds or DEFAULT_THRESHOLDS
    envs = db.environments()
    return {
        "schema": BASELINE_SCHEMA, "schema_version": BASELINE_VERSION,
        "created": datetime.datetime.utcnow().isoformat() + "Z",
        "source_db": db.path,
        "environment": {k: envs[-1].get(k) for k in ("hostname", "cpu_model", "cores", "kernel", "git_commit")}
        if envs else {},
        "cells": collect(db, th),
    }


def load_baseline(path):
    with open(path) as f:
        b = json.load(f)
    if not isinstance(b, dict) or b.get("schema") != BASELINE_SCHEMA:
        raise ValueError(f"{path}: not an rtlab baseline")
    if b.get("schema_version") != BASELINE_VERSION:
        raise ValueError(f"{path}: baseline version {b.get('schema_version')}, this rtlab reads {BASELINE_VERSION}")
    return b


def compare(baseline, db, thresholds):
    """Rows (cell, metric, old, new, ratio, threshold, noise, verdict)."""
    new = collect(db, thresholds)
    rows = []
    for cell, metrics in sorted(baseline["cells"].items()):
        for m, old in sorted(metrics.items()):
            th = threshold_for(m, thresholds)
            if th is None:
                continue
            cur = new.get(cell, {}).get(m)
            if not cur:
                rows.append((cell, m, stats.median(old), None, None, th, None, "missing"))
                continue
            mo, mn = stats.median(old), stats.median(cur)
            ratio = mn / mo if mo else (1.0 if mn == 0 else float("inf"))
            so, sn = stats.rel_spread(old), stats.rel_spread(cur)
            noise = None if so is None or sn is None else max(so, sn)
            if ratio - 1 > th:
                if noise is None:
                    verdict = "no noise estimate (need >= 2 reps)"
                elif ratio - 1 > noise:
                    verdict = "REGRESSION"
                else:
                    verdict = "within noise"
            elif ratio < 1 / (1 + th) and (noise is None or 1 - ratio > noise):
                verdict = "improved"
            else:
                verdict = "ok"
            rows.append((cell, m, mo, mn, ratio, th, noise, verdict))
    return rows


def format_rows(rows):
    def f(v):
        if v is None:
            return "-"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"

    hdr = ("cell", "metric", "old", "new", "ratio", "threshold", "noise", "verdict")
    body = [(c, m, f(o), f(n), f"{r:.3f}" if r is not None else "-", f"+{t:.0%}",
             f"{nz:.1%}" if nz is not None else "-", v) for c, m, o, n, r, t, nz, v in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *body)] if body else [len(h) for h in hdr]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(hdr, widths))]
    for b in body:
        lines.append("  ".join(str(x).ljust(w) for x, w in zip(b, widths)))
    return "\n".join(lines)

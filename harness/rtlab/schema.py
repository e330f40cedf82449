"""Validation of the per-run JSON record (schema "rtlab.run", version 1).

The schema is documented in harness/README.md; this is its executable form.
"""
SCHEMA = "rtlab.run"
VERSION = 1

_NUM = (int, float)


def _hist_errors(h, where):
    errs = []
    if not isinstance(h, dict):
        return [f"{where}: not an object"]
    for k in ("count", "min", "max", "p50", "p90", "p99", "p999", "buckets"):
        if k not in h:
            errs.append(f"{where}: missing '{k}'")
    b = h.get("buckets")
    if isinstance(b, list):
        total = 0
        for i, x in enumerate(b):
            if not (isinstance(x, list) and len(x) == 3 and all(isinstance(v, int) for v in x)
                    and x[0] <= x[1] and x[2] >= 0):
                errs.append(f"{where}.buckets[{i}]: want [lo, hi, count] integers with lo <= hi")
                break
            total += x[2]
        else:
            if isinstance(h.get("count"), int) and total != h["count"]:
                errs.append(f"{where}: bucket counts sum to {total}, count is {h['count']}")
    elif "buckets" in h:
        errs.append(f"{where}.buckets: not a list")
    return errs


def validate(rec):
    """List of problems with a record (empty if valid)."""
    if not isinstance(rec, dict):
        return ["record is not a JSON object"]
    errs = []
    if rec.get("schema") != SCHEMA:
        errs.append(f"schema is {rec.get('schema')!r}, want {SCHEMA!r}")
    if rec.get("schema_version") != VERSION:
        errs.append(f"schema_version is {rec.get('schema_version')!r}, this rtlab reads {VERSION}")
    types = {"workload": str, "impl": str, "variant": str, "gomaxprocs": int, "params": dict,
             "ops": int, "wall_ns": int, "metrics": dict, "histograms": dict, "counters": dict,
             "runtime": dict}
    for k, t in types.items():
        if k not in rec:
            errs.append(f"missing '{k}'")
        elif not isinstance(rec[k], t) or isinstance(rec[k], bool):
            errs.append(f"'{k}' is {type(rec[k]).__name__}, want {t.__name__}")
    for k in ("gogc", "godebug"):  # optional: the GOGC / GODEBUG the program saw, null when unset
        if k in rec and not (rec[k] is None or isinstance(rec[k], str)):
            errs.append(f"'{k}' is {type(rec[k]).__name__}, want a string or null")
    if rec.get("impl") not in (None, "rt", "go", "native"):
        errs.append(f"impl is {rec.get('impl')!r}, want 'rt', 'go' or 'native' (a reference without a runtime)")
    for k, v in (rec.get("metrics") or {}).items() if isinstance(rec.get("metrics"), dict) else []:
        if not (v is None or (isinstance(v, _NUM) and not isinstance(v, bool))):
            errs.append(f"metrics.{k}: not a number")
    if isinstance(rec.get("histograms"), dict):
        for k, h in rec["histograms"].items():
            errs += _hist_errors(h, f"histograms.{k}")
    if isinstance(rec.get("counters"), dict):
        for k, v in rec["counters"].items():
            if v != "unsupported" and not (isinstance(v, _NUM) and not isinstance(v, bool)):
                errs.append(f"counters.{k}: {v!r} is neither a number nor \"unsupported\"")
    rt = rec.get("runtime")
    if isinstance(rt, dict):
        for k in ("sched", "stw_pause_ns", "gc", "memstats"):
            if k not in rt:
                errs.append(f"runtime: missing '{k}' (null when not available)")
        # stw_stopping_ns came later: records without it stay valid.
        for k in ("stw_pause_ns", "stw_stopping_ns"):
            if rt.get(k) is not None:
                errs += _hist_errors(rt[k], f"runtime.{k}")
        if rt.get("gc") is not None and not isinstance(rt["gc"], dict):
            errs.append("runtime.gc: not an object or null")
    return errs


def flatten(rec):
    """Scalar metrics of a record, {name: value}, as stored in the metrics table."""
    out = {}

    def put(k, v):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v)

    for k in ("wall_ns", "cpu_ns", "ops"):
        put(k, rec.get(k))
    for k, v in rec.get("metrics", {}).items():
        put(k, v)
    for name, h in rec.get("histograms", {}).items():
        for q in ("p50", "p90", "p99", "p999", "mean", "max", "min", "count"):
            put(f"{name}.{q}", h.get(q))
    rt = rec.get("runtime") or {}
    for k, v in (rt.get("sched") or {}).items():
        put(f"sched.{k}", v)
    for k in ("stw_pause_ns", "stw_stopping_ns"):
        if rt.get(k):
            for q in ("p50", "p99", "max", "count"):
                put(f"{k}.{q}", rt[k].get(q))
    gc = rt.get("gc")
    if gc:
        for k in ("cycles", "forced_cycles", "pause_total_ns", "cpu_fraction"):
            put(f"gc.{k}", gc.get(k))
        # A pause statistic of a run in which no collection ended does not
        # exist (it is not 0): such a run has none, so a gate compares
        # pauses only where every run had some.
        if gc.get("cycles"):
            put("gc.max_pause_ns", gc.get("max_pause_ns"))
            if isinstance(gc.get("pause_ns"), dict):
                for q in ("p50", "p99", "max"):
                    put(f"gc.pause_ns.{q}", gc["pause_ns"].get(q))
    for k, v in (rt.get("memstats") or {}).items():
        put(f"mem.{k}", v)
    return out

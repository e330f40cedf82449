#!/usr/bin/env python3
"""Side-by-side table of the scheduler benchmarks (called by scripts/bench).

Reads Google Benchmark JSON files of benchmarks/sched_bench.cc (one per
variant) and the text output of the Go twin (benchmarks/go), and prints a
Markdown table: one row per benchmark and GOMAXPROCS, one column per
variant and for Go, plus <variant>/go ratio columns (> 1: slower than Go).

Values are ns per unit of work: the C++ counter "ns_per_op" and the Go
custom metric (ns/spawn, ns/goroutine, ns/yield, ns/handoff).

  bench_table.py --cxx global_signal_radix=out/bench/global_signal_radix.json \
      --cxx perp_signal_radix=out/bench/perp_signal_radix.json --go out/bench/go.txt \
      --go-label go1.19 --out out/bench/summary.md
"""
import argparse
import json
import re
import sys

# Benchmark name (without BM_/Benchmark prefix) -> unit of its per-op value.
UNITS = {
    "SpawnExit": "ns/spawn",
    "Spawn1MWait": "ns/goroutine",
    "GoschedPingPong": "ns/yield",
    "SemaHandoff": "ns/handoff",
}


def read_cxx(path):
    """{(bench, gomaxprocs): ns_per_op} from a Google Benchmark JSON file."""
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        parts = b["name"].split("/")
        name = parts[0][3:] if parts[0].startswith("BM_") else parts[0]
        procs = int(parts[1])
        if "ns_per_op" in b:
            out[(name, procs)] = float(b["ns_per_op"])
    return out


GO_LINE = re.compile(r"^Benchmark(\w+?)(?:-(\d+))?\s+\d+\s+(.*)$")
GO_METRIC = re.compile(r"([0-9.eE+-]+)\s+(\S+)")


def read_go(path):
    """{(bench, gomaxprocs): ns per unit} from `go test -bench` text output."""
    out = {}
    with open(path) as f:
        for line in f:
            m = GO_LINE.match(line.strip())
            if not m:
                continue
            name, procs = m.group(1), int(m.group(2) or 1)
            metrics = {unit: float(v) for v, unit in GO_METRIC.findall(m.group(3))}
            unit = UNITS.get(name, "ns/op")
            if unit in metrics:
                out[(name, procs)] = metrics[unit]
            elif "ns/op" in metrics:
                out[(name, procs)] = metrics["ns/op"]
    return out


def fmt(v):
    if v is None:
        return "n/a"
    return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cxx", action="append", default=[], metavar="LABEL=JSON")
    ap.add_argument("--go", metavar="TXT", help="go test -bench text output (omit if go is missing)")
    ap.add_argument("--go-label", default="go")
    ap.add_argument("--out", metavar="MD", help="also write the table here")
    ap.add_argument("--note", action="append", default=[], help="line printed under the table")
    args = ap.parse_args()

    columns = []  # (label, results)
    for spec in args.cxx:
        label, _, path = spec.partition("=")
        try:
            columns.append((label, read_cxx(path)))
        except (OSError, ValueError) as e:
            print(f"bench_table: {label}: cannot read {path}: {e}", file=sys.stderr)
            columns.append((label, {}))
    go = None
    if args.go:
        try:
            go = read_go(args.go)
        except OSError as e:
            print(f"bench_table: cannot read {args.go}: {e}", file=sys.stderr)
            go = {}

    keys = set()
    for _, res in columns:
        keys |= set(res)
    if go:
        keys |= set(go)
    order = list(UNITS)
    keys = sorted(keys, key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0], k[1]))

    header = ["benchmark", "unit", "GOMAXPROCS"] + [label for label, _ in columns] + [args.go_label]
    header += [f"{label.split('_')[0]}/go" for label, _ in reversed(columns)]
    rows = []
    for k in keys:
        name, procs = k
        vals = [res.get(k) for _, res in columns]
        gv = go.get(k) if go is not None else None
        row = [name, UNITS.get(name, "ns/op"), str(procs)] + [fmt(v) for v in vals] + [fmt(gv)]
        row += [ratio(v, gv) for v in reversed(vals)]
        rows.append(row)

    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    right = [i >= 2 for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right)) + "|"
    lines = [line(header), sep] + [line(r) for r in rows]
    notes = ["", "Lower is better; ratio > 1 means slower than Go."] + args.note
    if go is None:
        notes.append("Go column missing: `go` not found (install golang-go).")
    text = "\n".join(lines + notes) + "\n"
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())

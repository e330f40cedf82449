"""rtlab command line: list, run, report, check, baseline, merge, smoke,
compare, bisect, submit, collect.

Exit status: 0 success; 1 some run failed, check/compare found a
regression, or collect found a failed shard; 2 bad input (unknown
workload/variant/parameter, malformed --shard, a database that is corrupt or
not rtlab's, missing files, an unknown revision, cells measured on different
CPU models), nothing could be submitted (no binary, sbatch missing or
refusing), or a comparison that cannot decide (a side fails to build or a
workload crashes).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

from . import check as checkmod
from . import compare as cmpmod
from . import gate
from . import db as dbmod
from . import hosts, runner, slurm, variants, workloads as wlmod

EXIT_FAIL = 1
EXIT_USAGE = 2


class UsageError(Exception):
    pass


def _root(args):
    return os.path.abspath(args.root)


def _workloads(args):
    d = args.workloads_dir or os.environ.get("RTLAB_WORKLOADS_DIR") or os.path.join(_root(args), "workloads")
    try:
        return wlmod.discover(d)
    except wlmod.WorkloadError as e:
        raise UsageError(str(e))


def _matrix(args):
    try:
        return variants.load_matrix(_root(args))
    except (OSError, variants.VariantError) as e:
        raise UsageError(f"cannot read the variant matrix: {e}")


def _open_db(path, create=True):
    try:
        return dbmod.Database(path, create=create)
    except dbmod.DatabaseError as e:
        raise UsageError(str(e))


def cmd_list(args):
    m = _matrix(args)
    ws = _workloads(args)
    if args.json:
        print(json.dumps({
            "axes": [{"axis": a, "variants": vs, "default": d} for a, vs, d in m.axes],
            "variants": [m.name(c) for c in m.all()],
            "default": m.name(m.default()),
            "workloads": {n: {"description": w.description, "target": w.target, "go": w.has_go(),
                              "params": w.params, "primary_metric": w.primary,
                              "lower_is_better": w.lower_is_better, "latency_histograms": w.histograms,
                              "driver": w.driver or w.driver_command, "references": w.references,
                              "targets": [t.spec for t in w.targets],
                              "gated_metrics": {g.name: {"lower_is_better": g.lower_is_better,
                                                         "threshold": g.threshold}
                                                for g in gate.gated_metrics(w)}} for n, w in ws.items()},
        }, indent=2))
        return 0
    print("Axes (from variants/variants.bzl):")
    for a, vs, d in m.axes:
        print(f"  {a:10} {', '.join(vs)}   (default {d})")
    print(f"Variants ({len(m.all())}): " + ", ".join(m.name(c) + (" [default]" if c == m.default() else "")
                                                     for c in m.all()))
    print("Workloads:")
    for n, w in ws.items():
        print(f"  {n}: {w.description}")
        print(f"    binary: {w.target or ' '.join(w.command)}__<variant>   Go twin: {'yes' if w.has_go() else 'no'}"
              f"   primary metric: {w.primary}   histograms: {', '.join(w.histograms) or '-'}")
        if w.has_driver():
            refs = ", ".join(f"{k} ({v if isinstance(v, str) else ' '.join(v)})" for k, v in w.references.items())
            print(f"    server+client: each cell's program is the server of driver "
                  f"{w.driver or ' '.join(w.driver_command)}; references (with --go): {refs or '-'}")
        for k, p in w.params.items():
            print(f"    --param {k}=<{type(p['default']).__name__}>  default {p['default']}, smoke "
                  f"{p.get('smoke', p['default'])}  {p.get('help', '')}")
    return 0


def _plan(args, smoke_params=False):
    """(matrix, shard, cells) of the run options in args."""
    ws = _workloads(args)
    m = _matrix(args)
    try:
        shard = runner.parse_shard(args.shard)
        procs = runner.parse_procs(args.gomaxprocs)
        params = runner.parse_params(args.param)
        cells = runner.plan(ws, args.workload, m, args.variant, procs, params,
                            smoke=smoke_params or args.smoke_params, go=args.go, shard=shard,
                            gogc=runner.parse_gogc(args.gogc), godebug=runner.parse_godebug(args.godebug))
    except (runner.PlanError, variants.VariantError, wlmod.WorkloadError) as e:
        raise UsageError(str(e))
    if args.reps < 1 or args.warmup < 0:
        raise UsageError("--reps must be >= 1 and --warmup >= 0")
    _warn_runtime_env()
    return m, shard, cells


def _warn_runtime_env():
    for k in runner.RUNTIME_ENV:
        if k in os.environ:
            print(f"rtlab: warning: {k}={os.environ[k]} in rtlab's environment is not passed to the runs; "
                  f"give --{k.lower()} {os.environ[k]} to make it a dimension of the matrix", file=sys.stderr)


def _run(args, db_path, smoke_params=False):
    root = _root(args)
    m, shard, cells = _plan(args, smoke_params)
    db = _open_db(db_path)
    try:
        if not cells:
            print(f"rtlab: shard {args.shard} has no cells", file=sys.stderr)
            return 0
        print(f"rtlab: {len(cells)} cells x ({args.warmup} warm-up + {args.reps} reps) -> {db_path}",
              file=sys.stderr)
        failures, session = runner.execute(
            cells, db, root, reps=args.reps, warmup=args.warmup, timeout=args.timeout, seed=args.seed,
            bin_dir=args.bin_dir, no_build=args.no_build, shard=shard,
            out_dir=os.path.dirname(os.path.abspath(db_path)), known_variants=[m.name(c) for c in m.all()])
    finally:
        db.close()
    if failures:
        cells_failed = sorted({c.label() for c, _, _ in failures})
        print(f"rtlab: {len(failures)} failed runs in {len(cells_failed)} cells (recorded in {db_path}):",
              file=sys.stderr)
        for l in cells_failed:
            print(f"  {l}", file=sys.stderr)
        return EXIT_FAIL
    print(f"rtlab: all runs ok; results in {db_path} (session {session})", file=sys.stderr)
    return 0


def cmd_run(args):
    return _run(args, args.db)


def cmd_report(args):
    from reports import report
    db = _open_db(args.db, create=False)
    try:
        try:
            mixed = hosts.check([db], allow=args.allow_mixed_hosts)
        except hosts.MixedHostsError as e:
            raise UsageError(f"report: {args.db}: {e}")
        if mixed:
            print(f"rtlab: warning: {args.db}: {mixed}", file=sys.stderr)
        try:
            m = _matrix(args)
        except UsageError:
            m = None
        try:
            ws = _workloads(args)
        except UsageError:
            ws = {}
        out = report.generate(db, args.out, matrix=m, workloads=ws, root=_root(args))
    finally:
        db.close()
    print(f"rtlab: report written: {out['html']} (Markdown: {out['markdown']}, {len(out['pngs'])} PNGs)")
    return 0


def cmd_baseline(args):
    db = _open_db(args.db, create=False)
    try:
        th = checkmod.parse_thresholds(args.threshold)
        b = checkmod.make_baseline(db, th)
    except ValueError as e:
        raise UsageError(str(e))
    finally:
        db.close()
    n = sum(len(v) for v in b["cells"].values())
    if n == 0:
        raise UsageError(f"{args.db}: no successful runs with checked metrics; no baseline written")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(b, f, indent=1, sort_keys=True)
    print(f"rtlab: baseline of {len(b['cells'])} cells, {n} metrics written to {args.out}")
    return 0


def cmd_check(args):
    try:
        th = checkmod.parse_thresholds(args.threshold)
        base = checkmod.load_baseline(args.baseline)
    except (OSError, ValueError) as e:
        raise UsageError(str(e))
    tmp = None
    db_path = args.db
    if args.smoke:
        tmp = tempfile.mkdtemp(prefix="rtlab-check-")
        db_path = os.path.join(tmp, "check.db")
        args.smoke_params = True
        rc = _run(args, db_path, smoke_params=True)
        if rc != 0:
            print("rtlab check: the smoke matrix had failed runs", file=sys.stderr)
    elif not db_path:
        raise UsageError("check: give --db PATH (or --smoke to run the smoke matrix)")
    db = _open_db(db_path, create=False)
    try:
        rows = checkmod.compare(base, db, th)
    finally:
        db.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(checkmod.format_rows(rows))
    bad = [r for r in rows if r[-1] == "REGRESSION"]
    missing = [r for r in rows if r[-1] == "missing"]
    print(f"rtlab check: {len(rows)} metrics, {len(bad)} regressions, {len(missing)} missing")
    if bad:
        return EXIT_FAIL
    if missing and args.strict:
        return EXIT_FAIL
    return 0


def cmd_merge(args):
    out = _open_db(args.out)
    total = 0
    try:
        for s in args.shards:
            if os.path.abspath(s) == os.path.abspath(args.out):
                raise UsageError(f"merge: {s} is the output database")
            try:
                added, skipped = out.merge_from(s)
            except dbmod.DatabaseError as e:
                raise UsageError(str(e))
            total += added
            print(f"rtlab: {s}: {added} runs added, {skipped} already present")
    finally:
        out.close()
    print(f"rtlab: {args.out}: {total} runs merged")
    return 0


def cmd_submit(args):
    if not args.slurm:
        raise UsageError("submit: name the batch system: --slurm (the only one rtlab knows)")
    if args.shard:
        raise UsageError("submit: --shard is for run; submit splits the matrix with --shards N")
    _, _, cells = _plan(args)
    try:
        job = slurm.submit(args, cells, _root(args))
    except (slurm.SubmitError, slurm.SlurmError) as e:
        raise UsageError(str(e))
    print(job)
    return 0


def cmd_collect(args):
    if args.poll <= 0:
        raise UsageError("--poll must be > 0 seconds")
    try:
        return slurm.collect(args.dir, poll=args.poll, resubmit_failed=args.resubmit_failed)
    except (slurm.SubmitError, slurm.SlurmError) as e:
        raise UsageError(str(e))


def cmd_smoke(args):
    root = _root(args)
    out = os.path.abspath(args.out or os.path.join(root, "out", "smoke"))
    os.makedirs(out, exist_ok=True)
    db_path = os.path.join(out, "smoke.db")
    if os.path.exists(db_path):
        _open_db(db_path).close()  # refuses (and keeps) a file that is not an rtlab database
        os.replace(db_path, db_path + ".prev")
    args.go = not args.no_go
    args.variant = "all"
    args.workload = "all"
    args.shard = None
    args.param = []
    args.gogc, args.godebug = None, []
    args.smoke_params = True
    rc = _run(args, db_path, smoke_params=True)
    report_dir = os.path.join(out, "report")
    from reports import report
    db = _open_db(db_path, create=False)
    try:
        r = report.generate(db, report_dir, matrix=_matrix(args), workloads=_workloads(args),
                            title="rtlab smoke ablation", root=root)
    finally:
        db.close()
    print()
    print(f"rtlab smoke: report: {r['html']}")
    print(f"             Markdown: {r['markdown']} ({len(r['pngs'])} PNG plots beside it)")
    print(f"             database: {db_path}")
    return rc


def _selection(args):
    try:
        sel = {"workloads": args.workload, "variant": args.variant, "procs": runner.parse_procs(args.gomaxprocs),
               "params": runner.parse_params(args.param), "smoke": args.smoke_params,
               "gogc": runner.parse_gogc(args.gogc), "godebug": runner.parse_godebug(args.godebug)}
    except runner.PlanError as e:
        raise UsageError(str(e))
    _warn_runtime_env()
    return sel


def _compare_kwargs(args):
    try:
        overrides = gate.parse_overrides(args.threshold)
    except ValueError as e:
        raise UsageError(str(e))
    flags = [f"--disk_cache={os.path.abspath(args.disk_cache)}"] if args.disk_cache else []
    return dict(pairs=args.pairs, max_pairs=args.max_pairs, step=args.step, overrides=overrides,
                db_path=os.path.abspath(args.db), timeout=args.timeout, seed=args.seed, bazel_flags=flags)


def cmd_compare(args):
    root = _root(args)
    try:
        cmp = cmpmod.run_comparison(root, args.base, args.head, _selection(args), **_compare_kwargs(args))
    except cmpmod.CompareError as e:
        raise UsageError(str(e))
    print(cmpmod.format_text(cmp))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    md = os.path.join(out, "compare.md")
    with open(md, "w") as f:
        f.write(cmpmod.format_markdown(cmp))
    print(f"rtlab compare: Markdown: {md}; runs in {cmp.db_path}")
    for e in cmp.errors:
        print(f"rtlab compare: error: {e}", file=sys.stderr)
    return cmp.exit_code()


def cmd_bisect(args):
    root = _root(args)
    try:
        first, steps = cmpmod.bisect(root, args.good, args.bad, _selection(args), metric=args.metric,
                                     **_compare_kwargs(args))
        subject = cmpmod.git(root, "log", "-1", "--format=%h %s", first)
    except cmpmod.CompareError as e:
        raise UsageError(str(e))
    print(f"rtlab bisect: first bad commit after {len(steps)} comparisons: {first}")
    print(f"  {subject}")
    return 0


def _add_compare_args(p):
    p.add_argument("--pairs", type=int, default=10, help="A/B pairs per cell before the first verdict (10)")
    p.add_argument("--max-pairs", type=int, default=30,
                   help="cap: a cell with an inconclusive metric gets more pairs up to this many (30)")
    p.add_argument("--step", type=int, default=5, help="pairs added per round while inconclusive (5)")
    p.add_argument("--threshold", action="append", default=[],
                   help="[WORKLOAD:]METRIC=FRACTION, METRIC may be a glob; overrides workload.json's thresholds")
    p.add_argument("--db", default="out/compare/compare.db", help="database the runs of both sides go to")
    p.add_argument("--disk-cache", help="Bazel --disk_cache shared by the builds of both sides")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per run before it is killed")
    p.add_argument("--seed", type=int, default=None, help="seed of the randomised order")
    p.add_argument("--param", action="append", default=[], help="name=value or workload.name=value")
    p.add_argument("--smoke-params", action="store_true", help="use the workloads' smoke parameter values")
    _add_runtime_env_args(p)


def _add_runtime_env_args(p):
    p.add_argument("--gogc", help="comma-separated GOGC values, each a dimension value of the matrix: integers "
                                  ">= 0 or off (e.g. 50,100,200); default: GOGC unset (the runtime's 100)")
    p.add_argument("--godebug", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE...]",
                   help="a GODEBUG setting (Go's comma-separated KEY=VALUE list); repeat for several settings, "
                        "each a dimension value of the matrix; default: GODEBUG unset")


def _add_run_args(p, smoke=False):
    if not smoke:
        p.add_argument("--workload", default="all", help="comma-separated workload names, or all (default)")
        p.add_argument("--variant", default="all",
                       help="all (default), default, a combination name (perp_coop), or axis=variant,... "
                            "(unnamed axes take their default; '*' or a|b for several); ';' joins several")
        p.add_argument("--shard", help="run only shard i of n (1-based): i/n")
        p.add_argument("--param", action="append", default=[], help="name=value or workload.name=value")
        p.add_argument("--smoke-params", action="store_true", help="use the workloads' smoke parameter values")
        p.add_argument("--go", action="store_true", help="include the Go twins")
        _add_runtime_env_args(p)
    p.add_argument("--gomaxprocs", default="1,2", help="comma-separated GOMAXPROCS values (default 1,2)")
    p.add_argument("--reps", type=int, default=5, help="measured repetitions per cell (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up runs per cell (not measured)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per run before it is killed")
    p.add_argument("--seed", type=int, default=None, help="seed of the randomised run order")
    p.add_argument("--bin-dir", help="use prebuilt binaries under this bazel-bin-like folder (no build)")
    p.add_argument("--no-build", action="store_true", help="do not run bazel build; use bazel-bin as it is")


def parser():
    ap = argparse.ArgumentParser(prog="rtlab", description="Run workloads over the variant matrix, store, "
                                 "report and check the results (harness/README.md).")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(here)), help=argparse.SUPPRESS)
    ap.add_argument("--workloads-dir", help="folder of workload folders (default: <repo>/workloads)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("list", help="workloads, variants (from variants.bzl AXES), parameters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("run", help="run a matrix into a database")
    _add_run_args(p)
    p.add_argument("--db", default="out/rtlab/results.db", help="SQLite database (created if absent)")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("report", help="PNG plots + Markdown + HTML from a database")
    p.add_argument("--db", default="out/rtlab/results.db")
    p.add_argument("--out", default="out/rtlab/report", help="output folder")
    p.add_argument("--allow-mixed-hosts", action="store_true",
                   help="report even when the cells were measured on different CPU models")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("baseline", help="store a baseline (JSON) from a database")
    p.add_argument("--db", default="out/rtlab/results.db")
    p.add_argument("--out", default="out/rtlab/baseline.json")
    p.add_argument("--threshold", action="append", default=[], help="METRIC=FRACTION: also store this metric")
    p.set_defaults(fn=cmd_baseline)

    p = sub.add_parser("check", help="compare a database with a baseline; exit 1 on regression")
    p.add_argument("--baseline", required=True)
    p.add_argument("--db", help="database to check")
    p.add_argument("--threshold", action="append", default=[],
                   help="METRIC=FRACTION (glob patterns allowed), e.g. '*.p99=0.3'; defaults: "
                        + ", ".join(f"{k}={v}" for k, v in checkmod.DEFAULT_THRESHOLDS.items()))
    p.add_argument("--strict", action="store_true", help="also fail when a baseline metric is missing")
    p.add_argument("--smoke", action="store_true",
                   help="CI mode: run the smoke matrix (rt variants, smoke parameters) into a temporary "
                        "database first and check that")
    _add_run_args(p)
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser("compare", help="A/B of two commits on this machine, interleaved; exit 1 on a regression")
    p.add_argument("--base", required=True, help="base revision (a worktree of it goes under out/compare/trees)")
    p.add_argument("--head", help="head revision (default: the working tree as it is)")
    p.add_argument("--workload", default="all", help="comma-separated workload names, or all (default)")
    p.add_argument("--variant", default="all", help="variants as for run (default all)")
    p.add_argument("--gomaxprocs", default="1,2", help="comma-separated GOMAXPROCS values (default 1,2)")
    p.add_argument("--out", default="out/compare", help="folder for compare.md")
    _add_compare_args(p)
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("bisect", help="first commit between --good and --bad (first parents) that regresses")
    p.add_argument("--good", required=True)
    p.add_argument("--bad", required=True)
    p.add_argument("--workload", required=True)
    p.add_argument("--metric", help="the gated metric to bisect on (default: the workload's primary metric)")
    p.add_argument("--variant", default="default", help="variants as for run (default: the default one)")
    p.add_argument("--gomaxprocs", default="1", help="comma-separated GOMAXPROCS values (default 1)")
    _add_compare_args(p)
    p.set_defaults(fn=cmd_bisect)

    p = sub.add_parser("merge", help="merge shard databases into one")
    p.add_argument("out", help="output database (created if absent)")
    p.add_argument("shards", nargs="+")
    p.set_defaults(fn=cmd_merge)

    p = sub.add_parser("submit", help="run a matrix as a Slurm job array (collect the results with collect)")
    _add_run_args(p)
    p.add_argument("--slurm", action="store_true", help="submit to Slurm with sbatch")
    p.add_argument("--shards", type=int, required=True, help="array tasks: the matrix is split into N shards")
    p.add_argument("--out", required=True, help="new submission folder, on a file system the nodes share")
    p.add_argument("--partition", help="Slurm partition (default: the cluster's default)")
    p.add_argument("--time", help="time limit per task, in sbatch's format (e.g. 2:00:00)")
    p.add_argument("--nodes-exclusive", action="store_true",
                   help="each task gets its node to itself (sbatch --exclusive); otherwise it asks for "
                        "max(GOMAXPROCS) CPUs")
    p.add_argument("--sbatch-option", action="append", default=[],
                   help="one more sbatch option for the script, e.g. --account=proj (repeatable)")
    p.set_defaults(fn=cmd_submit)

    p = sub.add_parser("collect", help="wait for a submitted job array, report failed shards, merge them")
    p.add_argument("dir", help="the folder given to submit --out")
    p.add_argument("--resubmit-failed", action="store_true",
                   help="resubmit the failed shards (once), wait for them, then merge")
    p.add_argument("--poll", type=float, default=10.0, help="seconds between squeue polls (default 10)")
    p.set_defaults(fn=cmd_collect)

    p = sub.add_parser("smoke", help="the default smoke ablation: all variants, all workloads, Go twins, "
                                     "smoke parameters; writes the report")
    _add_run_args(p, smoke=True)
    p.add_argument("--out", help="output folder (default out/smoke)")
    p.add_argument("--no-go", action="store_true", help="leave out the Go twins")
    p.set_defaults(fn=cmd_smoke)
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except UsageError as e:
        print(f"rtlab: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nrtlab: interrupted (completed runs are in the database)", file=sys.stderr)
        return 130

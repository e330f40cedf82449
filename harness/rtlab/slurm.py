"""`rtlab submit --slurm` and `rtlab collect`: a matrix as a Slurm job array.

submit plans the matrix as `rtlab run` does, builds its binaries once on
the submitting machine, and writes a submission folder DIR on a file
system the compute nodes share:

  DIR/submit.json         the submission: shard count, each shard's planned cells, each shard's job ids
  DIR/job.sbatch          the batch script: array task K runs shard K/N of the matrix
  DIR/bundle/             the relocatable bundle (bundle.py) the tasks run from
  DIR/shard-K.db          shard K's results, written by its task
  DIR/logs/shard-K.log    shard K's stdout and stderr
  DIR/status/shard-K.exit the exit status of shard K's `rtlab run`, written when it ends
  DIR/attempts/           what resubmitted shards left from earlier attempts
  DIR/results.db          the merged results, rebuilt by every collect
  DIR/build/              build logs (and the Go twins before they enter the bundle)

The tasks run with DIR as their working directory (sbatch starts in it),
so the script names DIR only through relative paths.

collect waits until squeue lists none of the latest attempt's tasks, then
judges each shard. Its task's state comes from sacct where accounting
exists, else from squeue (which remembers finished jobs for MinJobAge);
its exit status from the status file, which only a task that ran to its
end writes. A shard is good when its task exited 0 and its database opens
as an rtlab database holding exactly the cells planned for it at submit
time; every other shard is reported by number with the reason and its log.
The merged database is rebuilt from scratch from every shard database
that opens (a shard whose runs partly failed still contributes its good
runs), so a resubmitted shard never leaves a previous attempt's runs in
the merge.
"""
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

from . import bundle, hosts, runner
from . import db as dbmod

MANIFEST = "submit.json"
SCRIPT = "job.sbatch"
RESULTS = "results.db"
SLURM_TIMEOUT = 60  # seconds a Slurm client command may take


class SlurmError(Exception):
    """A Slurm command is missing, failed or refused."""


class SubmitError(Exception):
    """submit or collect cannot proceed: bad input, or no binary to submit."""


# ---------------------------------------------------------------- Slurm commands

def _not_found(cmd):
    return SlurmError(f"{cmd} not found on PATH: run rtlab {'submit' if cmd == 'sbatch' else 'collect'} where the "
                      "Slurm client commands are (a login node; Debian: slurm-client)")


def slurm(argv, cwd=None):
    """Runs a Slurm client command; returns (exit status, stdout, stderr)."""
    try:
        p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=SLURM_TIMEOUT,
                           stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise _not_found(argv[0])
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{argv[0]} gave no answer in {SLURM_TIMEOUT} s (is slurmctld up?)")
    return p.returncode, p.stdout, p.stderr.strip()


def sbatch(sub_dir, extra=()):
    """Submits DIR/job.sbatch from DIR; returns the job id."""
    rc, out, err = slurm(["sbatch", "--parsable", *extra, SCRIPT], cwd=sub_dir)
    if rc != 0:
        raise SlurmError(f"sbatch refused the job: {err or f'exit status {rc}'}")
    job = out.strip().split(";")[0]
    if not job.isdigit():
        raise SlurmError(f"sbatch printed no job id: {out.strip()!r} {err}")
    return job


TASK_ID = re.compile(r"^(\d+)_(\d+)$")


def _task_lines(out):
    """{(job, task index): fields} from 'JOB_TASK|field|...' lines."""
    tasks = {}
    for line in out.splitlines():
        f = line.strip().split("|")
        m = TASK_ID.match(f[0])
        if m:
            tasks[(m.group(1), int(m.group(2)))] = f[1:]
    return tasks


def active_tasks(jobs):
    """{(job, task): (state, reason)} of the jobs' tasks that have not ended."""
    rc, out, err = slurm(["squeue", "-h", "-r", "-j", ",".join(jobs), "-o", "%i|%T|%r"])
    if rc != 0:
        if "Invalid job id" in err:  # every job has ended and been purged
            return {}
        raise SlurmError(f"squeue failed: {err or f'exit status {rc}'}")
    return {k: (v[0], v[1] if len(v) > 1 else "") for k, v in _task_lines(out).items()}


def final_states(jobs):
    """{(job, task): state} of ended tasks: sacct's answer, else squeue's
    (empty when accounting is off and the jobs have been purged)."""
    rc, out, _ = slurm(["sacct", "-n", "-P", "-X", "-j", ",".join(jobs), "-o", "JobID,State"])
    if rc != 0:
        rc, out, _ = slurm(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(jobs), "-o", "%i|%T"])
        if rc != 0:
            return {}
    return {k: v[0].split()[0] for k, v in _task_lines(out).items() if v and v[0]}


# ---------------------------------------------------------------- the submission folder

class Submission:
    def __init__(self, path, manifest):
        self.path = path
        self.m = manifest

    @classmethod
    def load(cls, path):
        path = os.path.abspath(path)
        mf = os.path.join(path, MANIFEST)
        try:
            with open(mf) as f:
                m = json.load(f)
        except FileNotFoundError:
            raise SubmitError(f"{path}: no {MANIFEST}: not a folder written by rtlab submit")
        except (OSError, ValueError) as e:
            raise SubmitError(f"{mf}: unreadable ({e})")
        if not isinstance(m, dict) or m.get("rtlab_submit") != 1:
            raise SubmitError(f"{mf}: not an rtlab submission (version 1)")
        return cls(path, m)

    def save(self):
        tmp = os.path.join(self.path, MANIFEST + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.m, f, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(self.path, MANIFEST))

    @property
    def shards(self):
        return self.m["shards"]

    def job(self, k):
        """The job id of shard k's latest attempt."""
        return self.m["attempts"][str(k)][-1]

    def db(self, k):
        return os.path.join(self.path, f"shard-{k}.db")

    def log(self, k):
        return os.path.join(self.path, "logs", f"shard-{k}.log")

    def exit_file(self, k):
        return os.path.join(self.path, "status", f"shard-{k}.exit")

    def cells(self, k):
        # A submission from before GOGC and GODEBUG were dimensions planned them unset.
        return {tuple(c) + ("", "")[len(c) - 5:] for c in self.m["cells"][str(k)]}


def batch_script(n, run_argv, cpus, partition=None, time_limit=None, exclusive=False, options=()):
    """The sbatch script of an n-task array; task K runs run_argv with
    --shard K/n --db shard-K.db, from the submission folder."""
    lines = ["#!/bin/bash",
             "# Written by rtlab submit: array task K runs shard K of the matrix from the",
             "# bundle beside this script. Submit it from its own folder (sbatch starts the",
             "# tasks there); rtlab collect --resubmit-failed resubmits failed shards.",
             "#SBATCH --job-name=rtlab",
             f"#SBATCH --array=1-{n}",
             "#SBATCH --output=logs/shard-%a.log",
             "#SBATCH --ntasks=1"]
    lines.append("#SBATCH --exclusive" if exclusive else f"#SBATCH --cpus-per-task={cpus}")
    if partition:
        lines.append(f"#SBATCH --partition={partition}")
    if time_limit:
        lines.append(f"#SBATCH --time={time_limit}")
    lines += [f"#SBATCH {o}" for o in options]
    lines += [
        "set -u",
        'k="${SLURM_ARRAY_TASK_ID:?rtlab: not started as a Slurm array task}"',
        '[[ -f bundle/bundle.json ]] || { echo "rtlab: $PWD holds no rtlab bundle" >&2; exit 2; }',
        'rm -f "status/shard-$k.exit"',
        f'echo "rtlab: shard $k/{n}, job ${{SLURM_ARRAY_JOB_ID:-?}}_$k, on $(hostname)" >&2',
        " ".join(shlex.quote(a) for a in run_argv)
        + f' --bin-dir "$PWD/bundle/bin" --shard "$k/{n}" --db "shard-$k.db"',
        "rc=$?",
        'echo "$rc" >"status/shard-$k.exit.tmp" && mv -f "status/shard-$k.exit.tmp" "status/shard-$k.exit"',
        'exit "$rc"',
    ]
    return "\n".join(lines) + "\n"


def run_argv(args, cells):
    """The `rtlab run` command line (inside the bundle) that plans the same
    matrix as args did in the checkout, less --bin-dir, --shard and --db."""
    a = ["bundle/scripts/rtlab", "--workloads-dir", "bundle/workloads", "run",
         "--workload", ",".join(sorted({c.workload.name for c in cells})),
         "--variant", args.variant, "--gomaxprocs", args.gomaxprocs,
         "--reps", str(args.reps), "--warmup", str(args.warmup), "--timeout", f"{args.timeout:g}"]
    if args.seed is not None:
        a += ["--seed", str(args.seed)]
    for p in args.param:
        a += ["--param", p]
    if args.gogc is not None:
        a += ["--gogc", args.gogc]
    for g in args.godebug:
        a += ["--godebug", g]
    if args.smoke_params:
        a.append("--smoke-params")
    if args.go:
        a.append("--go")
    return a


# ---------------------------------------------------------------- submit

def _discard(out, created):
    """Removes what submit wrote: the folder, or the contents of the empty
    folder it was given."""
    shutil.rmtree(out, ignore_errors=True)
    if not created:
        os.makedirs(out, exist_ok=True)


def check_request(args, cells):
    """Refuses a shard count or an --out that cannot work; returns --out
    as an absolute path."""
    n = args.shards
    if n < 1:
        raise SubmitError("--shards must be >= 1")
    if n > len(cells):
        raise SubmitError(f"--shards {n}: the matrix has only {len(cells)} cells (every shard needs one)")
    out = os.path.abspath(args.out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise SubmitError(f"--out {out}: exists and is not an empty folder (a new submission needs its own; "
                          "rtlab collect reads an earlier one)")
    return out


def prepare(args, cells, root, out, stream=sys.stderr):
    """Builds the binaries and writes the submission folder out (new or
    empty; check_request said so), all but the manifest. Returns (whether
    it created out, each shard's cells); removes what it wrote when it
    fails."""
    n = args.shards
    created = not os.path.exists(out)
    os.makedirs(out, exist_ok=True)
    try:
        bundle_dir = os.path.join(out, "bundle")
        exe, broken = runner.prepare(cells, root, os.path.join(out, "build"), bin_dir=args.bin_dir,
                                     no_build=args.no_build, copy_to=os.path.join(bundle_dir, "bin"))
        if broken:
            for c in cells:
                if c.key() in broken:
                    print(f"rtlab: FAILED {c.label()}: {broken[c.key()]}", file=stream)
            raise SubmitError(f"{len(broken)} cells have no binary; nothing submitted")
        commit, dirty = runner.git_state(root)
        bundle.make(root, bundle_dir, cells, commit or "unknown", dirty)
        planned = {str(k): [list(c.key()) for c in runner.deal(cells, (k, n))] for k in range(1, n + 1)}
        procs = runner.parse_procs(args.gomaxprocs)
        with open(os.path.join(out, SCRIPT), "w") as f:
            f.write(batch_script(n, run_argv(args, cells), max(procs), args.partition, args.time,
                                 args.nodes_exclusive, args.sbatch_option))
        for d in ("logs", "status", "attempts"):
            os.makedirs(os.path.join(out, d), exist_ok=True)
    except BaseException:
        _discard(out, created)
        raise
    return created, planned


def submit(args, cells, root, stream=sys.stderr):
    """Builds, bundles and submits; returns the job id. Leaves nothing
    behind when something fails."""
    out = check_request(args, cells)
    if not shutil.which("sbatch"):
        raise _not_found("sbatch")
    created, planned = prepare(args, cells, root, out, stream)
    try:
        job = sbatch(out)
    except BaseException:
        _discard(out, created)
        raise
    Submission(out, {"rtlab_submit": 1, "shards": args.shards, "cells": planned,
                     "attempts": {k: [job] for k in planned},
                     "submitted": datetime.datetime.utcnow().isoformat() + "Z"}).save()
    print(f"rtlab: submitted job {job}: {args.shards} array tasks over {len(cells)} cells; bundle, script and "
          f"logs in {out}; then: rtlab collect {out}", file=stream)
    return job


# ---------------------------------------------------------------- collect

STATE_REASONS = {
    "TIMEOUT": "timed out (the job's --time limit)",
    "CANCELLED": "was cancelled",
    "OUT_OF_MEMORY": "ran out of memory",
    "NODE_FAIL": "lost its node",
    "BOOT_FAIL": "its node failed to boot",
    "PREEMPTED": "was preempted",
    "DEADLINE": "passed its deadline",
}


def _exit_reason(rc):
    if rc == 1:
        return "exited with status 1: some runs failed (recorded in its database)"
    if rc == 2:
        return "exited with status 2: rtlab run refused its input (see the log)"
    if rc > 128:
        return f"killed by signal {rc - 128}"
    return f"exited with status {rc}"


def task_problems(state, rc):
    """What went wrong with a task, from its final Slurm state (None when
    Slurm no longer knows) and the exit status its script recorded (None
    when it did not get to record one): [] when nothing did."""
    problems = []
    if state in STATE_REASONS:
        problems.append(STATE_REASONS[state])
    elif rc is None:
        problems.append("ended without recording an exit status (killed, or its node could not run it)"
                        + (f"; Slurm state {state}" if state else ""))
    if rc not in (None, 0) and not (state in STATE_REASONS and rc > 128):
        problems.append(_exit_reason(rc))
    return problems


def _read_exit(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _db_problem(path, expected):
    """(opens, problem or None) for a shard database."""
    if not os.path.exists(path):
        return False, f"wrote no database ({path} is missing)"
    try:
        d = dbmod.Database(path, create=False, readonly=True)
    except dbmod.DatabaseError as e:
        return False, f"database unusable: {e}"
    try:
        present = d.cell_keys()
    finally:
        d.close()

    def names(keys):
        return ", ".join(runner.cell_label(w, v, p, json.loads(pj), gc, gd) for w, _, v, p, pj, gc, gd in sorted(keys))

    if expected - present:
        return True, f"database lacks {len(expected - present)} of its {len(expected)} cells: {names(expected - present)}"
    if present - expected:
        return True, f"database holds cells not planned for this shard: {names(present - expected)}"
    return True, None


class ShardResult:
    def __init__(self, k, job, problems, opens):
        self.k, self.job = k, job
        self.problems = problems  # empty: the shard is good
        self.opens = opens        # its database can be merged


def assess(sub):
    """One ShardResult per shard, for the latest attempts (all ended)."""
    states = final_states(sorted({sub.job(k) for k in range(1, sub.shards + 1)}))
    out = []
    for k in range(1, sub.shards + 1):
        job = sub.job(k)
        rc = _read_exit(sub.exit_file(k))
        problems = task_problems(states.get((job, k)), rc)
        opens = False
        if rc in (0, 1) or os.path.exists(sub.db(k)):
            opens, p = _db_problem(sub.db(k), sub.cells(k))
            if p:
                problems.append(p)
        out.append(ShardResult(k, job, problems, opens))
    return out


def _log_excerpt(path, n=4):
    """The lines of a task's log that say what failed (rtlab's FAILED and
    error lines), else its last lines; at most n."""
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip() for l in f if l.strip()]
    except OSError:
        return ["(no log: the task never started)"]
    errors = [l for l in lines if "FAILED" in l or "error" in l.lower()]
    return [f"| {l[:240]}" for l in (errors or lines)[-n:]]


def wait(sub, poll, stream):
    """Returns once squeue lists no task of the shards' latest attempts."""
    jobs = sorted({sub.job(k) for k in range(1, sub.shards + 1)})
    last = None
    while True:
        tasks = active_tasks(jobs)
        if not tasks:
            return
        counts = {}
        for state, reason in tasks.values():
            key = f"{state.lower()}" + (f" ({reason})" if reason and reason != "None" else "")
            counts[key] = counts.get(key, 0) + 1
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        if summary != last:
            print(f"rtlab: waiting for job {','.join(jobs)}: {summary}", file=stream)
            stream.flush()
            last = summary
        time.sleep(poll)


def resubmit(sub, shards, stream):
    """Moves the failed shards' files into attempts/ and resubmits them."""
    for k in shards:
        n = len(sub.m["attempts"][str(k)])
        for src, ext in ((sub.db(k), "db"), (sub.log(k), "log"), (sub.exit_file(k), "exit")):
            if os.path.exists(src):
                os.replace(src, os.path.join(sub.path, "attempts", f"shard-{k}.try{n}.{ext}"))
    job = sbatch(sub.path, [f"--array={','.join(str(k) for k in shards)}"])
    for k in shards:
        sub.m["attempts"][str(k)].append(job)
    sub.save()
    print(f"rtlab: resubmitted shards {', '.join(map(str, shards))} as job {job} "
          f"(earlier attempts' files are in {os.path.join(sub.path, 'attempts')})", file=stream)


def merge(sub, results):
    """Rebuilds DIR/results.db from the shard databases that open (removes
    it when none does); returns (path or None, runs merged)."""
    final = os.path.join(sub.path, RESULTS)
    tmp = final + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    usable = [r for r in results if r.opens]
    if not usable:
        if os.path.exists(final):
            os.remove(final)
        return None, 0
    out = dbmod.Database(tmp)
    total = 0
    try:
        for r in usable:
            total += out.merge_from(sub.db(r.k))[0]
    finally:
        out.close()
    os.replace(tmp, final)
    return final, total


def collect(path, poll=10.0, resubmit_failed=False, stream=sys.stderr):
    """Waits, judges, (resubmits,) merges; returns the exit status."""
    sub = Submission.load(path)
    wait(sub, poll, stream)
    results = assess(sub)
    bad = [r for r in results if r.problems]
    if bad and resubmit_failed:
        for r in bad:
            print(f"rtlab: shard {r.k}/{sub.shards} (task {r.job}_{r.k}): " + "; ".join(r.problems), file=stream)
        resubmit(sub, [r.k for r in bad], stream)
        wait(sub, poll, stream)
        results = assess(sub)
        bad = [r for r in results if r.problems]
    for r in bad:
        print(f"rtlab: shard {r.k}/{sub.shards} (task {r.job}_{r.k}) failed: " + "; ".join(r.problems), file=stream)
        print(f"    log: {sub.log(r.k)}", file=stream)
        for line in _log_excerpt(sub.log(r.k)):
            print(f"    {line}", file=stream)
    merged, runs = merge(sub, results)
    n_ok = sub.shards - len(bad)
    print(f"rtlab: {n_ok} of {sub.shards} shards good", file=stream)
    if merged:
        print(f"rtlab: merged {sum(r.opens for r in results)} shard databases ({runs} runs) into {merged}",
              file=stream)
        d = dbmod.Database(merged, create=False, readonly=True)
        try:
            mixed = hosts.mixed_models([d])
            seen = sorted({(m, h) for models in hosts.measured_cells(d).values()
                           for m, hs in models.items() for h in hs})
        finally:
            d.close()
        if seen:
            print("rtlab: measured on " + "; ".join(f"{h} ({m})" for m, h in seen), file=stream)
        if mixed:
            print("rtlab: warning: " + mixed, file=stream)
    else:
        print("rtlab: no shard database to merge", file=stream)
    if bad:
        if not resubmit_failed:
            print(f"rtlab: resubmit the failed shards with: rtlab collect {sub.path} --resubmit-failed",
                  file=stream)
        return 1
    return 0

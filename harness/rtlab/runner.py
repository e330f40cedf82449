"""`rtlab run`: plan the matrix, build what it needs, run it, store the results."""
import datetime
import json
import os
import platform
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib

from . import bundle, schema


class PlanError(ValueError):
    pass


# ---------------------------------------------------------------- environment

def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _cmd(argv, cwd=None):
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_state(root):
    """(commit, dirty) of the checkout at root; a submit bundle is no
    checkout and answers with the commit it was built from."""
    source = bundle.provenance(root)
    if source:
        return source["git_commit"], source["git_dirty"]
    commit = _cmd(["git", "rev-parse", "HEAD"], cwd=root)
    dirty = None
    if commit:
        st = _cmd(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root)
        dirty = 1 if st else 0
    return commit, dirty


def environment(root):
    cpu = None
    info = _read("/proc/cpuinfo") or ""
    for line in info.splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    commit, dirty = git_state(root)
    gxx = _cmd(["g++", "--version"])
    gov = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    return {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "cpu_model": cpu or platform.processor() or None,
        "cores": os.cpu_count(),
        "governor": gov,  # None when the VM exposes no cpufreq
        "git_commit": commit or "unknown",
        "git_dirty": dirty,
        "compiler": gxx.splitlines()[0] if gxx else None,
        "go_version": _cmd(["go", "env", "GOVERSION"]),
        "python": platform.python_version(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
    }


# ---------------------------------------------------------------- plan

class Cell:
    def __init__(self, workload, impl, variant, gomaxprocs, params):
        self.workload = workload      # Workload
        self.impl = impl              # "rt" | "go"
        self.variant = variant        # combination name, or "go"
        self.gomaxprocs = gomaxprocs
        self.params = params

    def key(self):
        return (self.workload.name, self.impl, self.variant, self.gomaxprocs, json.dumps(self.params, sort_keys=True))

    def label(self):
        return cell_label(self.workload.name, self.variant, self.gomaxprocs, self.params)


def cell_label(workload, variant, gomaxprocs, params):
    """How messages name a cell: spawn[perp_coop, GOMAXPROCS=2, goroutines=2000]."""
    p = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{workload}[{variant}, GOMAXPROCS={gomaxprocs}, {p}]"


def parse_shard(s):
    if s is None:
        return None
    try:
        i, n = s.split("/")
        i, n = int(i), int(n)
    except ValueError:
        raise PlanError(f"--shard {s!r}: want i/n with integers, e.g. 1/4")
    if n < 1 or not 1 <= i <= n:
        raise PlanError(f"--shard {s!r}: need 1 <= i <= n")
    return i, n


def parse_procs(s):
    try:
        out = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise PlanError(f"--gomaxprocs {s!r}: want a comma-separated list of positive integers")
    if not out or any(p < 1 for p in out):
        raise PlanError(f"--gomaxprocs {s!r}: want a comma-separated list of positive integers")
    return sorted(set(out))


def parse_params(items):
    """--param k=v or workload.k=v -> {workload_or_None: {k: v}}."""
    out = {}
    for it in items or []:
        if "=" not in it:
            raise PlanError(f"--param {it!r}: want name=value")
        k, v = it.split("=", 1)
        wl = None
        if "." in k:
            wl, k = k.split(".", 1)
        out.setdefault(wl, {})[k] = v
    return out


def plan(workloads, names, matrix, variant_spec, procs, params, smoke=False, go=False, shard=None):
    """The cells of a matrix (sorted), after sharding."""
    if names in (None, "", "all"):
        chosen = list(workloads.values())
    else:
        chosen = []
        for n in [x.strip() for x in names.split(",") if x.strip()]:
            if n not in workloads:
                raise PlanError(f"unknown workload '{n}' (known: {', '.join(workloads) or 'none'})")
            chosen.append(workloads[n])
    if not chosen:
        raise PlanError("no workloads to run")
    combos = matrix.parse(variant_spec)
    for wl in params:
        if wl is not None and wl not in workloads:
            raise PlanError(f"--param: unknown workload '{wl}'")
    cells = []
    for w in chosen:
        over = dict(params.get(None, {}))
        over.update(params.get(w.name, {}))
        # A global --param applies to the workloads that have it.
        if None in params:
            unknown = [k for k in params[None] if k not in w.params]
            if len(chosen) == 1 and unknown:
                w.resolve_params({unknown[0]: ""})  # raises the unknown-parameter error
            for k in unknown:
                over.pop(k, None)
        vals = w.resolve_params(over, smoke=smoke)
        for p in procs:
            for c in combos:
                cells.append(Cell(w, "rt", matrix.name(c), p, vals))
            if go:
                if w.has_go():
                    cells.append(Cell(w, "go", "go", p, vals))
                else:
                    print(f"rtlab: workload {w.name} has no Go twin; skipping its Go cells", file=sys.stderr)
    cells.sort(key=lambda c: c.key())
    return deal(cells, shard) if shard else cells


def deal(cells, shard):
    """Shard i of n of the sorted cells: they are dealt round-robin."""
    i, n = shard
    return [c for k, c in enumerate(cells) if k % n == i - 1]


# ---------------------------------------------------------------- build

def bazel_startup():
    home = os.environ.get("HOME")
    if not home or not os.path.isdir(home) or not os.access(home, os.W_OK):
        return [f"--output_user_root={os.environ.get('TMPDIR', '/tmp')}/rtlab-bazel-{os.getuid()}"]
    return []


def build_cxx(root, targets, log):
    """Builds the targets; returns (bazel-bin dir, {target: error or None})."""
    flags = ["--color=no", "--curses=no", "--show_progress_rate_limit=5"]
    base = ["bazel", *bazel_startup()]
    results = {}
    if not targets:
        return None, results
    print(f"rtlab: bazel build {' '.join(targets)}", file=sys.stderr)
    with open(log, "w") as lf:
        rc = subprocess.call(base + ["build", *flags, *targets], cwd=root, stdout=lf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
    if rc != 0:
        # Find which targets failed (one at a time; only on this error path).
        for t in targets:
            with open(log, "a") as lf:
                r = subprocess.call(base + ["build", *flags, t], cwd=root, stdout=lf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            results[t] = None if r == 0 else f"bazel build {t} failed (log: {log})"
    else:
        results = {t: None for t in targets}
    bin_dir = _cmd(base + ["info", "bazel-bin"], cwd=root) or os.path.join(root, "bazel-bin")
    return bin_dir, results


def build_go(workload, out_dir, log):
    """Builds a Go twin; returns (path, error)."""
    os.makedirs(out_dir, exist_ok=True)
    exe = os.path.join(out_dir, workload.name)
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off")
    home = env.get("HOME")
    if "GOCACHE" not in env and (not home or not os.access(home, os.W_OK)):
        env["GOCACHE"] = os.path.join(tempfile.gettempdir(), f"rtlab-gocache-{os.getuid()}")
    try:
        with open(log, "a") as lf:
            rc = subprocess.call(["go", "build", "-o", exe, "."], cwd=workload.go_dir, env=env, stdout=lf,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    except OSError as e:
        return None, f"go build: {e}"
    if rc != 0:
        return None, f"go build of {workload.go_dir} failed (log: {log})"
    return exe, None


# ---------------------------------------------------------------- running

def run_once(argv, env, cwd, timeout):
    """Runs one workload process. Returns (status, error, record, stderr_tail, seconds)."""
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        return "crashed", f"cannot start: {e}", None, None, 0.0
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = p.communicate()
        tail = err.decode(errors="replace")[-2000:]
        return "timeout", f"no result after {timeout:g} s (killed)", None, tail, time.monotonic() - t0
    dt = time.monotonic() - t0
    tail = err.decode(errors="replace")[-2000:]
    if p.returncode != 0:
        if p.returncode < 0:
            try:
                why = f"killed by signal {signal.Signals(-p.returncode).name}"
            except ValueError:
                why = f"killed by signal {-p.returncode}"
        else:
            why = f"exited with status {p.returncode}"
        last = tail.strip().splitlines()[-1] if tail.strip() else ""
        return "crashed", why + (f": {last}" if last else ""), None, tail, dt
    lines = [l for l in out.decode(errors="replace").splitlines() if l.strip()]
    if not lines:
        return "bad_json", "printed no JSON record on stdout", None, tail, dt
    try:
        rec = json.loads(lines[-1])
    except ValueError as e:
        return "bad_json", f"malformed JSON record: {e}: {lines[-1][:120]!r}", None, tail, dt
    errs = schema.validate(rec)
    if errs:
        return "bad_record", "record does not match the schema: " + "; ".join(errs[:5]), rec, tail, dt
    return "ok", None, rec, tail, dt


def _fmt_time(s):
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    def __init__(self, total_cells, total_runs, stream=sys.stderr):
        self.cells_total = total_cells
        self.runs_total = total_runs
        self.runs_done = 0
        self.cells_done = 0
        self.t0 = time.monotonic()
        self.stream = stream
        self.tty = stream.isatty()
        self.last_print = 0

    def update(self, runs_done, cells_done, current=""):
        self.runs_done, self.cells_done = runs_done, cells_done
        el = time.monotonic() - self.t0
        eta = el / runs_done * (self.runs_total - runs_done) if runs_done else 0
        msg = (f"cells {cells_done}/{self.cells_total}  runs {runs_done}/{self.runs_total}  "
               f"elapsed {_fmt_time(el)}  eta {_fmt_time(eta)}")
        if self.tty:
            line = f"{msg}  {current}"[:max(20, os_cols() - 1)]
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
        elif runs_done == self.runs_total or time.monotonic() - self.last_print > 10:
            self.stream.write(msg + "\n")
            self.last_print = time.monotonic()
            self.stream.flush()

    def message(self, text):
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def os_cols():
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except OSError:
        return 100


def resolve_binaries(cells, root, *, bin_dir=None, no_build=False, out_dir):
    """What runs each cell: builds the exact Bazel targets of the rt cells
    (unless bin_dir or no_build) and each Go twin once. A Go twin prebuilt at
    <bin_dir>/go/<workload> (as in a submit bundle) is used as it is.
    Returns ({cell key: argv prefix}, {cell key: error})."""
    exe = {}
    broken = {}
    cmd_cells = [c for c in cells if c.impl == "rt" and c.workload.command]
    tgt_cells = [c for c in cells if c.impl == "rt" and not c.workload.command]
    targets = sorted({c.workload.cxx_target(c.variant) for c in tgt_cells})
    if tgt_cells:
        if bin_dir or no_build:
            root_bin = bin_dir or os.path.join(root, "bazel-bin")
            results = {t: None for t in targets}
        else:
            root_bin, results = build_cxx(root, targets, os.path.join(out_dir, "build.log"))
        for c in tgt_cells:
            err = results.get(c.workload.cxx_target(c.variant))
            path = c.workload.cxx_binary(root_bin, c.variant)
            if err is None and not os.path.isfile(path):
                err = f"binary {path} not found" + (" (built?)" if (bin_dir or no_build) else "")
            if err:
                broken[c.key()] = err
            else:
                exe[c.key()] = [path]
    for c in cmd_cells:
        exe[c.key()] = [a if os.path.isabs(a) or "/" not in a else os.path.join(c.workload.folder, a)
                        for a in c.workload.command]
    go_built = {}
    for c in cells:
        if c.impl != "go":
            continue
        if c.workload.name not in go_built:
            prebuilt = os.path.join(bin_dir, "go", c.workload.name) if bin_dir else None
            if prebuilt and os.path.isfile(prebuilt):
                go_built[c.workload.name] = prebuilt, None
            else:
                print(f"rtlab: go build {c.workload.go_dir}", file=sys.stderr)
                go_built[c.workload.name] = build_go(c.workload, os.path.join(out_dir, "go"),
                                                     os.path.join(out_dir, "go-build.log"))
        path, err = go_built[c.workload.name]
        if err:
            broken[c.key()] = err
        else:
            exe[c.key()] = [path]
    return exe, broken


def execute(cells, db, root, *, reps, warmup, timeout, seed, bin_dir=None, no_build=False, shard=None,
            out_dir=None, known_variants=()):
    """Runs the cells; returns the number of failed runs (and failed cells)."""
    out_dir = out_dir or os.path.join(root, "out", "rtlab")
    os.makedirs(out_dir, exist_ok=True)
    env_info = environment(root)
    session = uuidlib.uuid4().hex
    shard_s = f"{shard[0]}/{shard[1]}" if shard else None
    failures = []
    exe, broken = resolve_binaries(cells, root, bin_dir=bin_dir, no_build=no_build, out_dir=out_dir)

    def store(c, rep, warm, status, error, rec=None, tail=None, dt=0.0, argv=None):
        started = datetime.datetime.utcnow().isoformat() + "Z"
        metrics = schema.flatten(rec) if status == "ok" else None
        counters = rec.get("counters") if status == "ok" else None
        db.add_run(uuid=uuidlib.uuid4().hex, session=session,
                   cell=(c.workload.name, c.impl, c.variant, c.gomaxprocs, c.params),
                   env=env_info,
                   rep=rep, warmup=warm, status=status, error=error, started_at=started, duration_s=dt,
                   shard=shard_s, command=shlex.join(argv) if argv else None, stderr_tail=tail,
                   record=rec, metrics=metrics, counters=counters)

    for c in cells:
        if c.key() in broken:
            msg = f"rtlab: FAILED {c.label()}: {broken[c.key()]}"
            print(msg, file=sys.stderr)
            failures.append((c, "build_failed", broken[c.key()]))
            store(c, 0, False, "build_failed", broken[c.key()])

    runnable = [c for c in cells if c.key() in exe]
    rng = random.Random(seed)
    jobs = [(c, -(w + 1), True) for c in runnable for w in range(warmup)]
    rng.shuffle(jobs)
    measured = [(c, r, False) for c in runnable for r in range(reps)]
    rng.shuffle(measured)
    jobs += measured  # warm-ups first (in random order), then every repetition in random order

    remaining = {c.key(): warmup + reps for c in runnable}
    prog = Progress(len(runnable), len(jobs))
    done_runs = done_cells = 0
    bad_cells = set()
    warned = set()
    known_variants = set(known_variants)
    prog.update(0, 0)
    for c, rep, warm in jobs:
        argv = exe[c.key()] + [f"--{k}={v}" for k, v in sorted(c.params.items())]
        env = dict(os.environ, GOMAXPROCS=str(c.gomaxprocs), RTLAB_VARIANT=c.variant)
        prog.update(done_runs, done_cells, c.label())
        status, err, rec, tail, dt = run_once(argv, env, c.workload.folder, timeout)
        if status == "ok" and (rec.get("workload") != c.workload.name or rec.get("gomaxprocs") != c.gomaxprocs):
            status, err = "bad_record", (f"record says workload={rec.get('workload')!r} "
                                         f"gomaxprocs={rec.get('gomaxprocs')!r}, cell expects "
                                         f"{c.workload.name!r} {c.gomaxprocs}")
        rv = rec.get("variant") if status == "ok" else None
        if c.impl == "rt" and rv not in (c.variant, None) and not c.workload.command:
            if rv in known_variants:  # the binary is another combination: wrong build
                status, err = "bad_record", f"record says variant={rv!r}, cell expects {c.variant!r}"
            elif rv not in warned:
                warned.add(rv)
                prog.message(f"rtlab: warning: {c.label()}: binary reports variant {rv!r} "
                             "(rt::variant_name does not name every axis?)")
        store(c, rep, warm, status, err, rec, tail, dt, argv)
        if status != "ok":
            kind = "warm-up" if warm else f"rep {rep + 1}"
            prog.message(f"rtlab: FAILED {c.label()} ({kind}): {status}: {err}")
            failures.append((c, status, err))
            bad_cells.add(c.key())
        done_runs += 1
        remaining[c.key()] -= 1
        if remaining[c.key()] == 0:
            done_cells += 1
        prog.update(done_runs, done_cells)
    prog.finish()
    return failures, session

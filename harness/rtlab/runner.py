"""`rtlab run`: plan the matrix, build what it needs, run it, store the results."""
import datetime
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib

from . import bundle, schema
from . import workloads as wlmod


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
    def __init__(self, workload, impl, variant, gomaxprocs, params, gogc=None, godebug=None):
        self.workload = workload      # Workload
        self.impl = impl              # "rt" | "go" | "native" (a workload's reference server)
        self.variant = variant        # combination name, "go", or the reference's name
        self.gomaxprocs = gomaxprocs
        self.params = params
        self.gogc = gogc              # GOGC of the run ("100", "off"), None: unset
        self.godebug = godebug        # GODEBUG of the run (canonical, parse_godebug), None: unset

    def key(self):
        """The cell's identity, as the database's cells table spells it (an
        unset GOGC or GODEBUG is "")."""
        return (self.workload.name, self.impl, self.variant, self.gomaxprocs, json.dumps(self.params, sort_keys=True),
                self.gogc or "", self.godebug or "")

    def label(self):
        return cell_label(self.workload.name, self.variant, self.gomaxprocs, self.params, self.gogc, self.godebug)

    def environ(self):
        """The environment of the cell's runs: this process's, less the GOGC
        and GODEBUG it may have (a cell's are the ones it names), plus the
        cell's GOMAXPROCS, GOGC, GODEBUG and variant."""
        env = {k: v for k, v in os.environ.items() if k not in RUNTIME_ENV}
        env.update(GOMAXPROCS=str(self.gomaxprocs), RTLAB_VARIANT=self.variant)
        if self.gogc is not None:
            env["GOGC"] = self.gogc
        if self.godebug is not None:
            env["GODEBUG"] = self.godebug
        return env


def cell_label(workload, variant, gomaxprocs, params, gogc=None, godebug=None):
    """How messages name a cell: spawn[perp_coop, GOMAXPROCS=2, GOGC=50, goroutines=2000]."""
    p = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    env = "".join(f", {k}={v}" for k, v in (("GOGC", gogc), ("GODEBUG", godebug)) if v)
    return f"{workload}[{variant}, GOMAXPROCS={gomaxprocs}{env}, {p}]"


# The runtime settings a cell names; rtlab's own values of them are not passed on.
RUNTIME_ENV = ("GOGC", "GODEBUG")
# GODEBUG keys whose value Go 1.19's runtime (runtime1.go, dbgvars) or rt
# (runtime/sched/runtime.cc) reads as an integer: a value that is not one
# would be ignored there without a word, so rtlab refuses it. Other keys
# (those of net/http, crypto/x509, ...) pass through as they are.
GODEBUG_INT_KEYS = frozenset((
    "allocfreetrace", "clobberfree", "cgocheck", "efence", "gccheckmark", "gcpacertrace", "gcshrinkstackoff",
    "gcstoptheworld", "gctrace", "invalidptr", "madvdontneed", "sbrk", "scavtrace", "scheddetail", "schedtrace",
    "tracebackancestors", "asyncpreemptoff", "inittrace", "harddecommit", "adaptivestackstart",
    "schedlatency", "stacksize", "stackguard"))
_GODEBUG_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")
_GODEBUG_VALUE = re.compile(r"^[^\s,=]+$")
_INT32 = re.compile(r"^-?[0-9]+$")


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


def parse_gogc(s):
    """--gogc 50,100,off -> ["50", "100", "off"] (sorted, off last); None
    (not given) -> [None], GOGC unset. Values as Go 1.19 reads GOGC
    (readGOGC): "off", or a decimal integer that fits an int32, where 0
    collects continuously. A negative integer, which Go also reads as off,
    is refused in favour of "off", so that one setting has one spelling."""
    if s is None:
        return [None]
    out = set()
    for x in s.split(","):
        x = x.strip()
        if x == "off":
            out.add(x)
            continue
        if not _INT32.match(x) or int(x) > 2 ** 31 - 1:
            raise PlanError(f"--gogc {s!r}: {x!r} is not a GOGC value: want off or a decimal integer from 0 "
                            f"to {2 ** 31 - 1} (the heap growth between collections, in percent)")
        if int(x) < 0:
            raise PlanError(f"--gogc {s!r}: {x!r}: Go reads a negative GOGC as off; write off")
        out.add(str(int(x)))
    return sorted(out, key=lambda v: (v == "off", int(v) if v != "off" else 0))


def parse_godebug(items):
    """--godebug values -> the GODEBUG settings of the matrix (each one a
    value of the dimension), canonical: KEY=VALUE pairs joined by commas in
    key order. Each item is one GODEBUG as Go writes it, a comma-separated
    list of KEY=VALUE; repeating --godebug adds another setting. None or []
    -> [None], GODEBUG unset. Refused: an empty item or field, a field
    without '=', an empty or odd key, an empty value or one with spaces, a
    key given twice, a non-integer value for a key the runtime reads as an
    integer (GODEBUG_INT_KEYS). Unknown keys pass through, as in Go."""
    if not items:
        return [None]
    out = []
    for it in items:
        pairs = {}
        for field in it.split(","):
            if "=" not in field:
                raise PlanError(f"--godebug {it!r}: {field!r} is not KEY=VALUE"
                                + (" (empty field)" if not field else ""))
            k, v = field.split("=", 1)
            if not _GODEBUG_KEY.match(k):
                raise PlanError(f"--godebug {it!r}: {k!r} is not a GODEBUG key (letters, digits, '_', '.', '-')")
            if not _GODEBUG_VALUE.match(v):
                raise PlanError(f"--godebug {it!r}: {k}: want a value without spaces, ',' or '=', got {v!r}")
            if k in pairs:
                raise PlanError(f"--godebug {it!r}: {k} is given twice")
            if k in GODEBUG_INT_KEYS and not (_INT32.match(v) and abs(int(v)) <= 2 ** 31 - 1):
                raise PlanError(f"--godebug {it!r}: {k}={v}: the runtime reads {k} as an integer")
            pairs[k] = v
        canon = ",".join(f"{k}={pairs[k]}" for k in sorted(pairs))
        if canon not in out:
            out.append(canon)
    return out


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


def plan(workloads, names, matrix, variant_spec, procs, params, smoke=False, go=False, shard=None,
         gogc=(None,), godebug=(None,)):
    """The cells of a matrix (sorted), after sharding. gogc and godebug are
    the values of those dimensions (parse_gogc, parse_godebug); every rt,
    Go and reference cell is planned with each of them."""
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
        if go and not w.has_go():
            print(f"rtlab: workload {w.name} has no Go twin; skipping its Go cells", file=sys.stderr)
        for p in procs:
            for gc in gogc:
                for gd in godebug:
                    kinds = [("rt", matrix.name(c)) for c in combos]
                    if go:
                        kinds += ([("go", "go")] if w.has_go() else []) + [("native", r) for r in sorted(w.references)]
                    cells += [Cell(w, impl, v, p, vals, gc, gd) for impl, v in kinds]
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


def build_cxx(root, targets, log, extra_flags=()):
    """Builds the targets in the workspace at root; returns (bazel-bin dir,
    {target: error or None})."""
    flags = ["--color=no", "--curses=no", "--show_progress_rate_limit=5", *extra_flags]
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


def prepare(cells, root, out_dir, *, bin_dir=None, no_build=False, bazel_flags=(), copy_to=None):
    """Builds what the cells need: the exact Bazel targets of the rt cells,
    the drivers and references they need, each Go twin once (a Go twin
    prebuilt at <bin_dir>/go/<workload>, as in a submit bundle, is used as it
    is). With copy_to, the built binaries are copied there (plain files, no
    links into bazel-out, so a later build cannot change them), each at its
    bazel-bin path and Go twins at go/<workload>, the layout --bin-dir
    reads. Returns
    ({cell key: argv prefix}, {cell key: error})."""
    exe = {}     # cell key -> argv prefix
    broken = {}  # cell key -> error

    def in_folder(c, argv):
        return [a if os.path.isabs(a) or "/" not in a else os.path.join(c.workload.folder, a) for a in argv]

    cmd_cells = [c for c in cells if c.impl == "rt" and c.workload.command]
    tgt_cells = [c for c in cells if c.impl == "rt" and not c.workload.command]
    ref_cells = [c for c in cells if c.impl == "native"]
    labels = {}  # cell key -> [(label, path suffix)] it needs built
    for c in tgt_cells:
        labels[c.key()] = [(c.workload.target, f"__{c.variant}")]
    for c in ref_cells:
        ref = c.workload.references[c.variant]
        if isinstance(ref, list):
            exe[c.key()] = in_folder(c, ref)
        else:
            labels.setdefault(c.key(), []).append((ref, ""))
    for c in cells:
        if c.workload.driver:
            labels.setdefault(c.key(), []).append((c.workload.driver, ""))
    targets = sorted({lab + suf for ls in labels.values() for lab, suf in ls})
    built = {}  # cell key -> {label: path}
    if targets:
        if bin_dir or no_build:
            root_bin = bin_dir or os.path.join(root, "bazel-bin")
            results = {t: None for t in targets}
        else:
            root_bin, results = build_cxx(root, targets, os.path.join(out_dir, "build.log"), bazel_flags)
        for key, ls in labels.items():
            for lab, suf in ls:
                err = results.get(lab + suf)
                path = wlmod.label_binary(root_bin, lab, suf)
                if err is None and not os.path.isfile(path):
                    err = f"binary {path} not found" + (" (built?)" if (bin_dir or no_build) else "")
                if err:
                    broken[key] = err
                    continue
                if copy_to:
                    dest = wlmod.label_binary(copy_to, lab, suf)
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    shutil.copy2(path, dest)
                    path = dest
                built.setdefault(key, {})[lab] = path
        for c in tgt_cells + ref_cells:
            if c.key() not in broken and c.key() not in exe:
                lab = c.workload.target if c.impl == "rt" else c.workload.references[c.variant]
                exe[c.key()] = [built[c.key()][lab]]
    for c in cmd_cells:
        exe[c.key()] = in_folder(c, c.workload.command)
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
                if copy_to and not err:
                    dest = os.path.join(copy_to, "go", c.workload.name)
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    shutil.copy2(path, dest)
                    go_built[c.workload.name] = dest, None
        path, err = go_built[c.workload.name]
        if err:
            broken.setdefault(c.key(), err)
        else:
            exe[c.key()] = [path]
    # Server+client workloads: the cell's program is the server the driver runs.
    for c in cells:
        if c.key() in broken or c.key() not in exe or not c.workload.has_driver():
            continue
        driver = (built[c.key()][c.workload.driver] if c.workload.driver
                  else in_folder(c, c.workload.driver_command))
        server = exe[c.key()]
        if len(server) != 1:
            broken[c.key()] = f"the server of a driven workload must be one executable, not {shlex.join(server)!r}"
            del exe[c.key()]
            continue
        exe[c.key()] = ([driver] if isinstance(driver, str) else driver) + [f"--server={server[0]}"]
    return exe, broken


class Recorder:
    """Stores runs of one session (one environment, optionally one shard or
    compare side) into a database."""

    def __init__(self, db, env_info, shard=None, side=None, session=None):
        self.db = db
        self.env_info = env_info
        self.shard = f"{shard[0]}/{shard[1]}" if shard else None
        self.side = side
        self.session = session or uuidlib.uuid4().hex

    def store(self, c, rep, warm, status, error, rec=None, tail=None, dt=0.0, argv=None):
        started = datetime.datetime.utcnow().isoformat() + "Z"
        ok = status == "ok"
        self.db.add_run(uuid=uuidlib.uuid4().hex, session=self.session,
                        cell=(c.workload.name, c.impl, c.variant, c.gomaxprocs, c.params, c.gogc, c.godebug),
                        env=self.env_info, rep=rep, warmup=warm, status=status, error=error, started_at=started,
                        duration_s=dt, shard=self.shard, command=shlex.join(argv) if argv else None,
                        stderr_tail=tail, record=rec, metrics=schema.flatten(rec) if ok else None,
                        counters=rec.get("counters") if ok else None, side=self.side)


class Measurer:
    """Runs single repetitions of cells and checks that each record belongs
    to its cell (workload, GOMAXPROCS, variant)."""

    def __init__(self, exe, timeout, known_variants, message):
        self.exe = exe
        self.timeout = timeout
        self.known_variants = set(known_variants)
        self.message = message
        self.warned = set()

    def run(self, c):
        """(status, error, record, stderr tail, seconds, argv) of one run of cell c."""
        argv = self.exe[c.key()] + [f"--{k}={v}" for k, v in sorted(c.params.items())]
        status, err, rec, tail, dt = run_once(argv, c.environ(), c.workload.folder, self.timeout)
        if status == "ok" and (rec.get("workload") != c.workload.name or rec.get("gomaxprocs") != c.gomaxprocs):
            status, err = "bad_record", (f"record says workload={rec.get('workload')!r} "
                                         f"gomaxprocs={rec.get('gomaxprocs')!r}, cell expects "
                                         f"{c.workload.name!r} {c.gomaxprocs}")
        if status == "ok":
            # A record that says what GOGC and GODEBUG its program saw must
            # say the cell's (a driver, for one, must pass them on).
            for key, want in (("gogc", c.gogc), ("godebug", c.godebug)):
                if key in rec and rec[key] != want:
                    status, err = "bad_record", f"record says {key}={rec[key]!r}, cell expects {want!r}"
        rv = rec.get("variant") if status == "ok" else None
        if c.impl == "rt" and rv not in (c.variant, None) and not c.workload.command:
            if rv in self.known_variants:  # the binary is another combination: wrong build
                status, err = "bad_record", f"record says variant={rv!r}, cell expects {c.variant!r}"
            elif rv not in self.warned:
                self.warned.add(rv)
                self.message(f"rtlab: warning: {c.label()}: binary reports variant {rv!r} "
                             "(rt::variant_name does not name every axis?)")
        return status, err, rec, tail, dt, argv


def execute(cells, db, root, *, reps, warmup, timeout, seed, bin_dir=None, no_build=False, shard=None,
            out_dir=None, known_variants=()):
    """Runs the cells; returns (failures, session): failures are (cell, status, error)."""
    out_dir = out_dir or os.path.join(root, "out", "rtlab")
    os.makedirs(out_dir, exist_ok=True)
    rec = Recorder(db, environment(root), shard=shard)
    failures = []
    exe, broken = prepare(cells, root, out_dir, bin_dir=bin_dir, no_build=no_build)
    for c in cells:
        if c.key() in broken:
            exe.pop(c.key(), None)
            print(f"rtlab: FAILED {c.label()}: {broken[c.key()]}", file=sys.stderr)
            failures.append((c, "build_failed", broken[c.key()]))
            rec.store(c, 0, False, "build_failed", broken[c.key()])

    runnable = [c for c in cells if c.key() in exe]
    rng = random.Random(seed)
    jobs = [(c, -(w + 1), True) for c in runnable for w in range(warmup)]
    rng.shuffle(jobs)
    measured = [(c, r, False) for c in runnable for r in range(reps)]
    rng.shuffle(measured)
    jobs += measured  # warm-ups first (in random order), then every repetition in random order

    remaining = {c.key(): warmup + reps for c in runnable}
    prog = Progress(len(runnable), len(jobs))
    measurer = Measurer(exe, timeout, known_variants, prog.message)
    done_runs = done_cells = 0
    prog.update(0, 0)
    for c, rep, warm in jobs:
        prog.update(done_runs, done_cells, c.label())
        status, err, record, tail, dt, argv = measurer.run(c)
        rec.store(c, rep, warm, status, err, record, tail, dt, argv)
        if status != "ok":
            kind = "warm-up" if warm else f"rep {rep + 1}"
            prog.message(f"rtlab: FAILED {c.label()} ({kind}): {status}: {err}")
            failures.append((c, status, err))
        done_runs += 1
        remaining[c.key()] -= 1
        if remaining[c.key()] == 0:
            done_cells += 1
        prog.update(done_runs, done_cells)
    prog.finish()
    return failures, rec.session

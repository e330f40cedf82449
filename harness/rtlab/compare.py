"""`rtlab compare` and `rtlab bisect`: two commits measured against each other
on one machine, in one job (Go's performance dashboard, Chromium's Pinpoint).

Sides. The base (and the head, when it is a revision rather than the working
tree) is checked out as a detached git worktree under out/compare/trees/<sha>,
a separate Bazel workspace and therefore a separate output base: one side's
build never touches the other's binaries. Both sides are built with the same
flags (the head's user.bazelrc is copied into the worktree; --disk-cache adds
one shared disk cache so unchanged actions are built once), and the binaries
are then copied into the session's folder, so the measurement runs plain
files that a rebuild cannot change. Each side's cells are planned from its
own workload.json files and variants.bzl; a cell present on one side only is
listed, not compared. The KEEP_TREES most recently used worktrees stay for
later comparisons; older ones are removed with their output bases.

Measurement. A warm-up of each cell on both sides, then pairs: every pair
round visits the active cells in a random order and runs each cell once per
side, the order within the pair drawn at random, so drift of the machine's
load falls on both sides alike. Every run goes into one database, tagged by
side, with the environment (and so the commit) of its side.

Verdict, per cell and gated metric (gate.py): ratio = median(head) /
median(base), its 95% bootstrap CI, the Mann-Whitney U and Kolmogorov-Smirnov
p-values, p = the smaller of the two, and, with w the worsening factor
(ratio, or 1/ratio when higher is better), t the threshold, and
"significant" meaning p < alpha and a CI of w that excludes 1:
  regression   significant and w > 1 + t
  improvement  significant and w < 1 / (1 + t)
  same         the CI of w lies inside (1 / (1 + t), 1 + t)
  inconclusive otherwise: the cell gets `step` more pairs, up to max_pairs.
alpha is Bonferroni's share of FAMILY_ALPHA, the false-positive budget of the
whole comparison: FAMILY_ALPHA / (2 tests x looks x gated metrics measured),
where looks = the number of evaluations the repetition cap allows. Without it
a comparison of 12 metrics on a noisy machine (run-to-run sd of log time 0.6,
as measured on the shared 2-core VM), looking up to 5 times with either of two
tests at 0.01, flags a regression in about one A/A comparison in five.
A regression becomes "accepted" when the head commit's message has a trailer
`Rtlab-Accept: <workload>.<metric> +N% <reason>` and the CI of w reaches down
to 1 + N% (the measured cost is consistent with the declared one).
"""
import collections
import os
import random
import re
import shutil
import subprocess
import sys
import time
import uuid as uuidlib

from . import db as dbmod
from . import fmt, gate, runner, schema, stats, variants, workloads as wlmod

FAMILY_ALPHA = 0.01
KEEP_TREES = 3  # worktrees kept under out/compare/trees, each with its Bazel output base (~300 MB)
SIDES = ("base", "head")
ACCEPT_RE = re.compile(r"^(?P<wl>[A-Za-z0-9_-]+)\.(?P<metric>\S+)\s+\+(?P<pct>\d+(?:\.\d+)?)%\s+(?P<why>\S.*)$")


class CompareError(Exception):
    """Usage, git or build errors, and crashes: the gate cannot decide (exit 2)."""


def git(repo, *args):
    r = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise CompareError(f"git {' '.join(args)}: {r.stderr.strip() or 'failed'}")
    return r.stdout.strip()


def resolve(repo, rev):
    """The full commit id of a revision; CompareError if the repository lacks it."""
    r = subprocess.run(["git", "-C", repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise CompareError(f"no commit {rev!r} in {repo}")
    return r.stdout.strip()


def checkout(repo, sha, trees):
    """A detached worktree of commit sha at trees/<sha> (reused when it is there)."""
    path = os.path.join(trees, sha)
    if os.path.isdir(path):
        r = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True)
        clean = subprocess.run(["git", "-C", path, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() == sha and clean.returncode == 0 and not clean.stdout.strip():
            os.utime(path)  # recently used: kept by prune_trees
            return path
        shutil.rmtree(path)
    os.makedirs(trees, exist_ok=True)
    # --force: also when the path is still registered but was removed
    git(repo, "worktree", "add", "--detach", "--force", path, sha)
    return path


def prune_trees(repo, trees, keep, in_use):
    """Removes all but the `keep` most recently used worktrees (never one in
    use) with their Bazel output bases, so that a CI machine comparing every
    commit does not fill its disk."""
    if not os.path.isdir(trees):
        return
    paths = sorted((os.path.join(trees, d) for d in os.listdir(trees)), key=os.path.getmtime, reverse=True)
    for path in [p for p in paths if p not in in_use][max(0, keep - len(in_use)):]:
        if os.path.lexists(os.path.join(path, "bazel-out")):
            subprocess.run(["bazel", *runner.bazel_startup(), "clean", "--expunge"], cwd=path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        if subprocess.run(["git", "-C", repo, "worktree", "remove", "--force", path],
                          capture_output=True).returncode != 0:
            shutil.rmtree(path, ignore_errors=True)


class Side:
    """One side of a comparison: a source tree at one commit, its workloads and variants."""

    def __init__(self, name, repo, rev, trees):
        self.name = name
        self.rev = rev
        if rev is None:  # the working tree as it is
            self.root = repo
            self.commit = resolve(repo, "HEAD")
            dirty = git(repo, "status", "--porcelain", "--untracked-files=no")
            self.label = self.commit[:12] + ("+dirty" if dirty else "")
        else:
            self.commit = resolve(repo, rev)
            self.root = checkout(repo, self.commit, trees)
            self.label = self.commit[:12]
            user_rc = os.path.join(repo, "user.bazelrc")
            if os.path.isfile(user_rc):  # the same personal Bazel flags on both sides
                shutil.copy2(user_rc, os.path.join(self.root, "user.bazelrc"))
        self.own_tree = rev is not None
        try:
            self.workloads = wlmod.discover(os.path.join(self.root, "workloads"))
            self.matrix = variants.load_matrix(self.root)
        except (OSError, wlmod.WorkloadError, variants.VariantError) as e:
            raise CompareError(f"{name} ({self.label}): {e}")

    def describe(self):
        return f"{self.name} {self.label}" + (f" ({self.rev})" if self.rev and self.rev != self.label else "")


def accepted_regressions(repo, commit):
    """{(workload, metric): (fraction, reason)} from the Rtlab-Accept trailers of a commit's message."""
    raw = git(repo, "log", "-1", "--format=%(trailers:key=Rtlab-Accept,valueonly,unfold)", commit)
    out = {}
    for line in raw.splitlines():
        line = line.strip()
        if not line:
            continue
        m = ACCEPT_RE.match(line)
        if not m:
            raise CompareError(f"commit {commit[:12]}: malformed trailer 'Rtlab-Accept: {line}' "
                               "(want 'Rtlab-Accept: <workload>.<metric> +N% <reason>')")
        out[(m["wl"], m["metric"])] = (float(m["pct"]) / 100, m["why"])
    return out


Row = collections.namedtuple("Row", "metric base head ratio ci p_mwu p_ks threshold verdict note")


def schedule(pairs, max_pairs, step):
    """The pair counts at which a cell is evaluated: pairs, pairs + step, ... up to max_pairs."""
    return list(range(pairs, max_pairs, step)) + [max_pairs]


def significance_level(metrics, pairs, max_pairs, step):
    """The per-test alpha of a comparison (see the file comment)."""
    return FAMILY_ALPHA / (2 * len(schedule(pairs, max_pairs, step)) * max(1, metrics))


def judge(gm, base, head, alpha):
    """The verdict on one gated metric from the two sides' values."""
    mb, mh = stats.median(base), stats.median(head)
    if mb == 0:
        ratio = 1.0 if mh == 0 else float("inf")
        ci = (ratio, ratio)
    else:
        ratio = mh / mb
        ci = stats.bootstrap_ratio_ci(head, base)
    _, p_mwu = stats.mann_whitney_u(head, base)
    _, p_ks = stats.ks_2samp(head, base)
    w = gm.worsening(ratio)
    w_lo, w_hi = sorted(gm.worsening(x) for x in ci)
    t = gm.threshold
    significant = min(p_mwu, p_ks) < alpha and not w_lo <= 1 <= w_hi
    if significant and w > 1 + t:
        verdict = "regression"
    elif significant and w < 1 / (1 + t):
        verdict = "improvement"
    elif 1 / (1 + t) < w_lo and w_hi < 1 + t:
        verdict = "same"
    else:
        verdict = "inconclusive"
    return Row(gm.name, mb, mh, ratio, ci, p_mwu, p_ks, t, verdict, "")


def accept(row, gm, accepts, workload):
    """A regression the head commit accepts explicitly becomes "accepted"."""
    if row.verdict != "regression" or (workload, gm.name) not in accepts:
        return row
    amount, why = accepts[(workload, gm.name)]
    w_lo = min(gm.worsening(x) for x in row.ci)
    if w_lo <= 1 + amount:
        return row._replace(verdict="accepted", note=f"Rtlab-Accept +{amount:.0%}: {why}")
    return row._replace(note=f"exceeds the accepted +{amount:.0%} ({why})")


class CellResult:
    """One cell measured on both sides: its values per side and metric, and its verdicts."""

    def __init__(self, cells, gms):
        self.cells = cells  # {"base": Cell, "head": Cell}
        self.gms = gms
        self.values = {s: collections.defaultdict(list) for s in SIDES}
        self.pairs = 0
        self.rows = []
        self.error = None

    def label(self):
        return self.cells["head"].label()

    def add(self, side, rec):
        for k, v in schema.flatten(rec).items():
            self.values[side][k].append(v)

    def measured(self):
        """The gated metrics every run of both sides has (GC pauses are absent
        from a run in which no collection ended)."""
        return [gm for gm in self.gms if all(len(self.values[s].get(gm.name, ())) == self.pairs for s in SIDES)]

    def evaluate(self, accepts, alpha):
        self.rows = [accept(judge(gm, self.values["base"][gm.name], self.values["head"][gm.name], alpha), gm,
                            accepts, self.cells["head"].workload.name) for gm in self.measured()]
        return self.rows

    def decided(self):
        return all(r.verdict != "inconclusive" for r in self.rows)


class Comparison:
    """A finished comparison: per cell results, unmatched cells, errors."""

    def __init__(self, base, head, results, only, errors, db_path, seconds, alpha):
        self.base, self.head = base, head
        self.results, self.only, self.errors = results, only, errors
        self.db_path, self.seconds, self.alpha = db_path, seconds, alpha

    def verdicts(self):
        return collections.Counter(r.verdict for c in self.results for r in c.rows)

    def exit_code(self):
        if self.errors:
            return 2
        return 1 if self.verdicts()["regression"] else 0


def plan_side(side, sel):
    try:
        cells = runner.plan(side.workloads, sel["workloads"], side.matrix, sel["variant"], sel["procs"],
                            sel["params"], smoke=sel["smoke"], go=False, gogc=sel.get("gogc", (None,)),
                            godebug=sel.get("godebug", (None,)))
    except (runner.PlanError, variants.VariantError, wlmod.WorkloadError) as e:
        raise CompareError(f"{side.describe()}: {e}")
    return {c.key(): c for c in cells}


def build_side(side, cells, session_dir, bazel_flags, say):
    """Builds a side's cells and copies the binaries into the session folder."""
    out = os.path.join(session_dir, side.name)
    os.makedirs(out, exist_ok=True)
    t0 = time.monotonic()
    say(f"rtlab compare: building {side.describe()} in {side.root}")
    exe, broken = runner.prepare(cells, side.root, out, bazel_flags=bazel_flags,
                                 copy_to=os.path.join(out, "bin"))
    if side.own_tree and any(not c.workload.command for c in cells):
        subprocess.run(["bazel", *runner.bazel_startup(), "shutdown"], cwd=side.root,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    say(f"rtlab compare: {side.name} built in {time.monotonic() - t0:.0f} s")
    return exe, broken


def run_comparison(repo, base_rev, head_rev, sel, *, pairs=10, max_pairs=30, step=5,
                   overrides=(), metric=None, db_path, timeout=120.0, seed=None, bazel_flags=(), say=None,
                   honor_accepts=True):
    """Builds and measures both sides; returns a Comparison.

    sel: {"workloads", "variant", "procs", "params", "smoke", "gogc", "godebug"} as for
    `rtlab run` (gogc and godebug: the dimension values, parse_gogc and parse_godebug).
    honor_accepts: apply the head commit's Rtlab-Accept trailers."""
    say = say or (lambda m: print(m, file=sys.stderr, flush=True))
    if pairs < 2 or max_pairs < pairs or step < 1:
        raise CompareError("want --pairs >= 2, --max-pairs >= --pairs and --step >= 1")
    t_start = time.monotonic()
    out_root = os.path.join(repo, "out", "compare")
    trees = os.path.join(out_root, "trees")
    base = Side("base", repo, base_rev, trees)
    head = Side("head", repo, head_rev, trees)
    accepts = accepted_regressions(repo, head.commit) if honor_accepts else {}
    planned = {"base": plan_side(base, sel), "head": plan_side(head, sel)}
    keys = sorted(set(planned["base"]) & set(planned["head"]))
    only = [(s, c.label()) for s in SIDES for k, c in sorted(planned[s].items()) if k not in keys]
    if not keys:
        raise CompareError("no cell exists on both sides" + (
            f" (only on one side: {', '.join(f'{s}: {l}' for s, l in only)})" if only else ""))
    results = []
    for k in keys:
        hc = planned["head"][k]
        gms = gate.gated_metrics(hc.workload, hc.impl, overrides)
        if metric == gate.PRIMARY:
            gms = gms[:1]
        elif metric:
            gms = [g for g in gms if g.name == metric]
            if not gms:
                raise CompareError(f"workload {hc.workload.name}: {metric!r} is not a gated metric (gated: "
                                   + ", ".join(g.name for g in gate.gated_metrics(hc.workload, hc.impl)) + ")")
        results.append(CellResult({"base": planned["base"][k], "head": hc}, gms))

    session = uuidlib.uuid4().hex
    session_dir = os.path.join(out_root, "sessions", session)
    errors = []
    exes = {}
    alpha = None
    try:
        for side in (head, base):  # the head first: its build fills the shared disk cache
            cells = [r.cells[side.name] for r in results]
            exe, broken = build_side(side, cells, session_dir, bazel_flags, say)
            for r in results:
                c = r.cells[side.name]
                if c.key() in broken:
                    errors.append(f"{side.describe()}: {c.label()}: {broken[c.key()]}")
            exes[side.name] = exe
        if errors:
            raise CompareError("build failed:\n  " + "\n  ".join(errors))
        try:
            db = dbmod.Database(db_path)
        except dbmod.DatabaseError as e:
            raise CompareError(str(e))
        try:
            alpha = measure_pairs(results, {"base": base, "head": head}, exes, db, session, pairs=pairs,
                          max_pairs=max_pairs, step=step, accepts=accepts, timeout=timeout,
                          seed=seed, errors=errors, say=say)
        finally:
            db.close()
    finally:
        shutil.rmtree(session_dir, ignore_errors=True)
        prune_trees(repo, trees, KEEP_TREES, {s.root for s in (base, head) if s.own_tree})
    return Comparison(base, head, results, only, errors, db_path, time.monotonic() - t_start, alpha)


def measure_pairs(results, sides, exes, db, session, *, pairs, max_pairs, step, accepts, timeout, seed,
                  errors, say):
    """The warm-up and the pairs of every cell (see the file comment); a
    failed run ends its cell and is added to errors. Returns the per-test alpha."""
    rng = random.Random(seed)
    recorders = {s: runner.Recorder(db, runner.environment(sides[s].root), side=s, session=session)
                 for s in SIDES}
    measurers = {s: runner.Measurer(exes[s], timeout, [sides[s].matrix.name(c) for c in sides[s].matrix.all()],
                                    say) for s in SIDES}

    def one(r, side, rep, warm):
        c = r.cells[side]
        status, err, rec, tail, dt, argv = measurers[side].run(c)
        recorders[side].store(c, rep, warm, status, err, rec, tail, dt, argv)
        if status != "ok":
            r.error = f"{sides[side].describe()}: {c.label()}: {status}: {err}"
            errors.append(r.error)
            say(f"rtlab compare: FAILED {r.error}")
            return False
        if not warm:
            r.add(side, rec)
        return True

    def pair(r, rep, warm):
        order = list(SIDES)
        rng.shuffle(order)
        for side in order:
            if not one(r, side, rep, warm):
                return
        if not warm:
            r.pairs += 1

    active = list(results)
    rng.shuffle(active)
    for r in active:
        pair(r, -1, True)
    looks = schedule(pairs, max_pairs, step)
    alpha = None
    t0 = time.monotonic()
    for target in looks:
        active = [r for r in active if r.error is None]
        while active and min(r.pairs for r in active) < target:
            batch = [r for r in active if r.pairs < target and r.error is None]
            rng.shuffle(batch)
            for r in batch:
                pair(r, r.pairs, False)
            n = max(r.pairs for r in batch)
            say(f"rtlab compare: pair {n}/{target} of {len(batch)} cells, elapsed {time.monotonic() - t0:.0f} s")
            active = [r for r in active if r.error is None]
        if alpha is None:
            alpha = significance_level(sum(len(r.measured()) for r in active), pairs, max_pairs, step)
        for r in active:
            r.evaluate(accepts, alpha)
        active = [r for r in active if not r.decided()]
        if not active:
            break
        if target != looks[-1]:
            say(f"rtlab compare: {len(active)} cells inconclusive; more pairs for them")
    return alpha


# ---------------------------------------------------------------- output

def _rows(res):
    out = []
    for r in res.rows:
        ci = f"{r.ratio:.3f} [{r.ci[0]:.3f}, {r.ci[1]:.3f}]"
        out.append((r.metric, fmt.value(r.base, r.metric), fmt.value(r.head, r.metric), ci, f"{r.p_mwu:.2g}",
                    f"{r.p_ks:.2g}", f"{r.threshold:.0%}", r.verdict + (f" ({r.note})" if r.note else "")))
    return out


def _alpha(cmp):
    if cmp.alpha is None:
        return "-"
    return f"{cmp.alpha:.2g} ({FAMILY_ALPHA} for the whole comparison, Bonferroni)"


HEADER = ("metric", "base", "head", "ratio [95% CI]", "p MWU", "p KS", "threshold", "verdict")


def summary(cmp):
    v = cmp.verdicts()
    parts = [f"{v[k]} {k}" for k in ("regression", "accepted", "improvement", "same", "inconclusive") if v[k]]
    s = (f"rtlab compare: {cmp.base.label} -> {cmp.head.label}: {len(cmp.results)} cells, "
         f"{sum(v.values())} metrics: {', '.join(parts) or 'nothing compared'}; {cmp.seconds:.0f} s")
    if cmp.errors:
        s += f"; {len(cmp.errors)} errors"
    return s


def format_text(cmp):
    lines = [f"{cmp.base.describe()}    {cmp.head.describe()}    "
             f"head/base ratios; p: two-sided; significant: p < {_alpha(cmp)}", ""]
    for res in cmp.results:
        lines.append(f"{res.label()}  ({res.pairs} pairs)" + (f"  ERROR: {res.error}" if res.error else ""))
        body = _rows(res)
        widths = [max(len(str(x)) for x in col) for col in zip(HEADER, *body)]
        for row in [HEADER] + body:
            lines.append("  " + "  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
        lines.append("")
    for side, label in cmp.only:
        lines.append(f"not compared (only on the {side} side): {label}")
    lines.append(summary(cmp))
    return "\n".join(lines)


def format_markdown(cmp):
    out = [f"# rtlab compare: {cmp.base.label} → {cmp.head.label}", "",
           f"Base `{cmp.base.describe()}`, head `{cmp.head.describe()}`, measured interleaved on one machine "
           f"(database `{cmp.db_path}`). Ratio = median(head) / median(base) with its 95% bootstrap CI; "
           f"p-values: two-sided Mann-Whitney U and Kolmogorov-Smirnov; significant: p < {_alpha(cmp)}.", ""]
    for res in cmp.results:
        out.append(f"## {res.label()}")
        out.append("")
        out.append(f"{res.pairs} pairs." + (f" **Error:** {res.error}" if res.error else ""))
        out.append("")
        out.append("| " + " | ".join(HEADER) + " |")
        out.append("|" + "---|" * len(HEADER))
        for row in _rows(res):
            out.append("| " + " | ".join(str(x).replace("|", "\\|") for x in row) + " |")
        out.append("")
    for side, label in cmp.only:
        out.append(f"- not compared (only on the {side} side): {label}")
    out += ["", summary(cmp), ""]
    return "\n".join(out)


# ---------------------------------------------------------------- bisect

def first_parent_range(repo, good, bad):
    """Commits after good up to bad along bad's first parents, oldest first."""
    g, b = resolve(repo, good), resolve(repo, bad)
    r = subprocess.run(["git", "-C", repo, "merge-base", "--is-ancestor", g, b])
    if r.returncode != 0:
        raise CompareError(f"{good} is not an ancestor of {bad}")
    commits = git(repo, "rev-list", "--first-parent", "--reverse", f"{g}..{b}").split()
    if not commits:
        raise CompareError(f"no commits between {good} and {bad}")
    return g, commits


def bisect(repo, good, bad, sel, metric=None, say=None, **kw):
    """Binary search for the first commit whose comparison against good
    is a regression of the metric (default: each cell's primary metric);
    Rtlab-Accept trailers do not count here (an accepted cost is still where
    the metric changed).
    Returns (first bad commit, [(commit, verdict)])."""
    metric = metric or gate.PRIMARY
    say = say or (lambda m: print(m, file=sys.stderr, flush=True))
    g, commits = first_parent_range(repo, good, bad)
    steps = []

    def is_bad(i):
        c = commits[i]
        cmp = run_comparison(repo, g, c, sel, metric=metric, say=say, honor_accepts=False, **kw)
        if cmp.errors:
            raise CompareError("bisect stopped: " + "; ".join(cmp.errors))
        verdicts = cmp.verdicts()
        bad_here = verdicts["regression"] > 0
        word = "bad (regression)" if bad_here else "good (" + ", ".join(
            f"{n} {v}" for v, n in sorted(verdicts.items())) + ")"
        subject = git(repo, "log", "-1", "--format=%s", c)[:60]
        say(f"rtlab bisect: step {len(steps) + 1}: {c[:12]} {subject}: {word}")
        steps.append((c, word))
        return bad_here

    if not is_bad(len(commits) - 1):
        raise CompareError(f"{bad} shows no regression against {good}: nothing to bisect")
    lo, hi = -1, len(commits) - 1  # invariant: commits[lo] (good when -1) is good, commits[hi] is bad
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if is_bad(mid):
            hi = mid
        else:
            lo = mid
    return commits[hi], steps

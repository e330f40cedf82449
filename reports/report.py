"""`rtlab report`: PNG plots plus a Markdown and an HTML summary of a database.

For each workload (and parameter set), one function per section: an "at a
glance" line, an overview bar chart of the primary metric, one ablation plot
per policy axis (that axis varied, the others at their default), latency
distribution plots (percentile curves of the merged histograms), a ratio
table per key metric (median, 95% bootstrap CI, ratio to the default variant,
to Go and to each reference server with bootstrap CIs, Mann-Whitney
p-value), the registered targets (met or not, from the same runs),
hardware/software counters and runtime counters per operation, pauses; then
trends across commits (trends.py), failures and the environment.

A series is one server kind of a cell: an rt variant (named by its
combination), the Go twin ("go") or a reference server without a runtime
(impl native, named "<reference> (native)", e.g. "epoll (native)"). Every
plot and table shows all of them; the runtime's scheduler counters exist
for rt series only.

A database holding runs of several commits (an `rtlab compare` database, or
runs of several `rtlab run`s) is reported per workload for its newest commit
only (mixing commits in one median would compare nothing), and the trend
section covers every commit.

PNG names are a function of what they show (workload, parameter set, plot),
never of the process: two reports of one database name their files alike.
"""
import hashlib
import json
import math
import os

from rtlab import fmt, gate, stats

from . import trends
from .doc import Doc

SIG = 0.05


def mpl():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _is_time(metric):
    return "_ns" in metric or metric.startswith("ns_")


def time_axis(ax, metric, log=False):
    """Tick labels in ns/µs/ms/s for time metrics."""
    if not _is_time(metric):
        return
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    f = FuncFormatter(lambda v, _pos: fmt.value(v, "x_ns") if v > 0 else "0")
    ax.yaxis.set_major_formatter(f)
    if log:
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(NullFormatter())


def load(db):
    """Every measured run (dicts with metrics, counters and record), oldest
    first; metrics and counters are read in one query each."""
    metrics = db.metrics_by_run()
    counters = db.counters_by_run()
    runs = db.runs()
    for r in runs:
        r["metrics"] = metrics.get(r["run_id"], {})
        r["counters"] = counters.get(r["run_id"], {})
        r["record"] = json.loads(r["record_json"]) if r["record_json"] else {}
    return runs


def series_label(impl, variant):
    """The name a cell's server kind has in the report's plots and tables."""
    if impl == "go":
        return "go"
    if impl == "native":
        return f"{variant} (native)"
    return variant


def _series_order(matrix, kinds):
    """Labels of the (impl, variant) pairs: rt variants in the matrix's
    order, then Go, then the references."""
    known = [matrix.name(c) for c in matrix.all()] if matrix else []
    rt = sorted((v for i, v in kinds if i == "rt"), key=lambda v: (known.index(v) if v in known else 999, v))
    go = ["go"] if any(i == "go" for i, _ in kinds) else []
    native = sorted(series_label(i, v) for i, v in kinds if i == "native")
    return rt + go + native


def _bar_points(vals, variant, procs, metric, index, nseries, width):
    """Grouped-bar geometry for one series: x positions (one group per
    GOMAXPROCS value, this series' slot within it), medians, and the lower
    and upper error-bar lengths of the 95% bootstrap CI. GOMAXPROCS values
    with no data are skipped."""
    xs, ys, lo, hi = [], [], [], []
    for j, p in enumerate(procs):
        d = vals(variant, p, metric)
        if not d:
            continue
        m = stats.median(d)
        ci = stats.bootstrap_ci(d)
        xs.append(j + (index - (nseries - 1) / 2) * width)
        ys.append(m)
        lo.append(m - ci[0])
        hi.append(ci[1] - m)
    return xs, ys, lo, hi


def setting_label(gogc, godebug):
    """How the report names a runtime setting: "GOGC=50, GODEBUG=gctrace=1",
    "default" when neither is set."""
    return ", ".join(f"{k}={v}" for k, v in (("GOGC", gogc), ("GODEBUG", godebug)) if v) or "default"


def slug(workload, params_json, several, gogc="", godebug=""):
    """The file-name stem of a workload's plots: its name, plus a digest of
    the parameters (and of GOGC and GODEBUG when set) when the database has
    several groups of it."""
    if not several:
        return workload
    key = params_json + "".join(f"|{k}={v}" for k, v in (("GOGC", gogc), ("GODEBUG", godebug)) if v)
    return f"{workload}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def _by_workload(runs):
    """{(workload, params_json, gogc, godebug): [runs]}: the report's groups,
    one per parameter set and runtime setting."""
    out = {}
    for r in runs:
        out.setdefault((r["workload"], r["params_json"], r["gogc"], r["godebug"]), []).append(r)
    return out


def _several_param_sets(by_wl):
    """The workloads that have more than one group (parameter set or runtime setting)."""
    seen, several = set(), set()
    for wl, *_ in by_wl:
        (several if wl in seen else seen).add(wl)
    return several


def _gogc_order(v):
    """Unset first (Go's default, 100, is the usual reference), then by value, off last."""
    return (0, 0) if not v else (2, 0) if v == "off" else (1, int(v)) if v.isdigit() else (1, 0)


def _group_order(item):
    (wl, pj, gogc, godebug), _ = item
    return wl, pj, _gogc_order(gogc), godebug


# Metrics a runtime-setting sweep plots beside the primary metric, when the runs have them.
SWEEP_METRICS = ("gc.max_pause_ns", "gc.pause_ns.p99", "gc.cycles", "heap_peak_bytes")


class Group:
    """The runs of one workload, parameter set and runtime setting (GOGC,
    GODEBUG) of one commit."""

    def __init__(self, workload, params_json, runs, reg, matrix, several, gogc="", godebug=""):
        self.wl, self.pj, self.reg = workload, params_json, reg
        self.gogc, self.godebug = gogc, godebug
        self.setting = setting_label(gogc, godebug)
        self.params = json.loads(params_json)
        self.cells = {}
        for r in runs:
            self.cells.setdefault((r["impl"], r["variant"], r["gomaxprocs"]), []).append(r)
        any_rec = runs[0]["record"]
        names = list(any_rec.get("metrics", {}).keys())
        self.primary = reg.primary if reg and reg.primary in names else (names[0] if names else "wall_ns")
        self.lower_is_better = reg.lower_is_better if reg and reg.primary == self.primary else True
        self.hists = [h for h in (reg.histograms if reg else []) if h in any_rec.get("histograms", {})] or \
            list(any_rec.get("histograms", {}).keys())
        self.key_metrics = [self.primary] + [f"{h}.{q}" for h in self.hists for q in ("p50", "p99")]
        self.slug = slug(workload, params_json, several, gogc, godebug)
        self.procs = sorted({k[2] for k in self.cells})
        kinds = {(k[0], k[1]) for k in self.cells}
        self.kind = {series_label(i, v): (i, v) for i, v in kinds}
        if len(self.kind) != len(kinds):
            raise ValueError(f"{workload}: a reference server is named like a variant")
        self.variants = _series_order(matrix, kinds)  # series labels
        self.natives = [v for v in self.variants if self.kind[v][0] == "native"]

    def runs_of(self, series, p):
        impl, variant = self.kind.get(series, (None, None))
        return self.cells.get((impl, variant, p), [])

    def vals(self, series, p, metric):
        return [r["metrics"][metric] for r in self.runs_of(series, p) if metric in r["metrics"]]

    def impl(self, series):
        return self.kind[series][0]

    def better(self, metric):
        """min or max: which median is best for this metric."""
        return max if metric == self.primary and not self.lower_is_better else min

    def direction(self, metric):
        return "lower is better" if metric != self.primary or self.lower_is_better else "higher is better"


class Report:
    def __init__(self, db, out_dir, matrix, workloads, title):
        self.db, self.out_dir, self.matrix, self.workloads = db, out_dir, matrix, workloads or {}
        self.title = title
        self.plt = mpl()
        self.doc = Doc()
        self.pngs = []
        self.default = matrix.name(matrix.default()) if matrix else None
        self.colors = self.plt.rcParams["axes.prop_cycle"].by_key()["color"]

    def style(self, g, series, i):
        """Bar colour, hatch and line style of a series: rt variants in the
        colour cycle, Go grey and hatched, references dark and cross-hatched."""
        if series == "go":
            return {"color": "#555555", "hatch": "//", "line": "--", "edge": "black"}
        if g.impl(series) == "native":
            k = g.natives.index(series)
            return {"color": ("#8b4513", "#2f4f4f", "#6b8e23")[k % 3], "hatch": "xx", "line": ":", "edge": "black"}
        return {"color": self.colors[i % len(self.colors)], "hatch": None, "line": "-", "edge": "white"}

    def save(self, fig, name, alt):
        fig.tight_layout()
        fig.savefig(os.path.join(self.out_dir, name), dpi=110)
        self.plt.close(fig)
        self.pngs.append(name)
        self.doc.img(name, alt)

    # ------------------------------------------------------------ sections

    def intro(self, runs, groups, commits):
        m = self.matrix
        self.doc.h(1, self.title)
        ncells = sum(len(g.cells) for g in groups)
        self.doc.p(f"Database `{self.db.path}`: {len(runs)} measured runs"
                   + (f" of {len(commits)} commits; the sections per workload show its newest commit, the trends "
                      "all of them" if len(commits) > 1 else "")
                   + f"; {ncells} cells reported. Ratios are medians of repetitions; 95% CIs by bootstrap; "
                   f"p = two-sided Mann-Whitney U (significant when p < {SIG}). Time metrics: lower is better. "
                   f"Default variant: `{self.default}`" + (f" ({m.describe(m.default())})." if m else "."))
        if not runs:
            self.doc.p("No successful runs in this database.")

    def glance(self, g):
        lines = []
        for p in g.procs:
            meds = {v: stats.median(g.vals(v, p, g.primary)) for v in g.variants if g.vals(v, p, g.primary)}
            if not meds:
                continue
            best = g.better(g.primary)(meds, key=meds.get)
            parts = []
            for v, m in sorted(meds.items(), key=lambda kv: kv[1], reverse=g.better(g.primary) is max):
                if v == best:
                    continue
                _, pv = stats.mann_whitney_u(g.vals(v, p, g.primary), g.vals(best, p, g.primary))
                parts.append(f"{v} {m / meds[best]:.2f}x" + ("" if pv < SIG else " (not significant)"))
            lines.append(f"GOMAXPROCS={p}: **{best}** wins on {g.primary} ({fmt.value(meds[best], g.primary)})"
                         + (f"; then {', '.join(parts)}" if parts else ""))
        if lines:
            self.doc.p("At a glance: " + " — ".join(lines))

    def overview(self, g):
        plt = self.plt
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(g.variants) * len(g.procs) + 2), 4))
        width = 0.8 / max(1, len(g.variants))
        for i, v in enumerate(g.variants):
            xs, ys, lo, hi = _bar_points(g.vals, v, g.procs, g.primary, i, len(g.variants), width)
            st = self.style(g, v, i)
            bars = ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=v, color=st["color"], hatch=st["hatch"],
                          edgecolor=st["edge"])
            for b, y, p in zip(bars, ys, [p for p in g.procs if g.vals(v, p, g.primary)]):
                ref = g.vals(self.default, p, g.primary)
                if ref and v != self.default:
                    ax.annotate(f"{y / stats.median(ref):.2f}x", (b.get_x() + b.get_width() / 2, y),
                                ha="center", va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")
        ax.set_xticks(range(len(g.procs)))
        ax.set_xticklabels([f"GOMAXPROCS={p}" for p in g.procs])
        ax.set_ylabel(f"{g.primary} ({g.direction(g.primary)})")
        time_axis(ax, g.primary)
        ax.set_title(f"{g.wl}: {g.primary} by server kind (median, 95% CI; labels: ratio to {self.default})")
        ax.legend(fontsize=8, ncol=min(4, len(g.variants)))
        ax.grid(axis="y", alpha=0.3)
        self.save(fig, f"{g.slug}_overview.png", f"{g.wl} overview")

    def ablations(self, g):
        if not self.matrix:
            return
        m = self.matrix
        dflt = m.default()
        for ai, (axis, axis_vs, _) in enumerate(m.axes):
            combos = []
            for av in axis_vs:
                c = list(dflt)
                c[ai] = av
                combos.append(m.name(c))
            present = [c for c in combos if c in g.variants]
            if len(present) < 2:
                self.doc.p(f"Axis `{axis}`: " + (f"only `{present[0]}` measured" if present else "not measured")
                           + f" with the other axes at their default (variants of the axis: {', '.join(axis_vs)});"
                           " no ablation plot.")
                continue
            fig, axs = self.plt.subplots(1, len(g.key_metrics), figsize=(4.2 * len(g.key_metrics), 3.6),
                                         squeeze=False)
            series = present + [v for v in g.variants if g.impl(v) != "rt"]
            for k, metric in enumerate(g.key_metrics):
                a = axs[0][k]
                w = 0.8 / len(series)
                for i, v in enumerate(series):
                    xs, ys, el, eh = _bar_points(g.vals, v, g.procs, metric, i, len(series), w)
                    lab = axis_vs[combos.index(v)] if g.impl(v) == "rt" else v
                    st = self.style(g, v, i)
                    a.bar(xs, ys, w, yerr=[el, eh], capsize=3, label=lab, color=st["color"], hatch=st["hatch"])
                a.set_xticks(range(len(g.procs)))
                a.set_xticklabels([f"P={p}" for p in g.procs])
                a.set_title(f"{metric} ({g.direction(metric)})", fontsize=10)
                time_axis(a, metric)
                a.grid(axis="y", alpha=0.3)
                if k == 0:
                    a.legend(fontsize=8, title=axis, title_fontsize=8)
            others = ", ".join(f"{x}={d}" for (x, _, d) in m.axes if x != axis) or "no other axes"
            fig.suptitle(f"{g.wl}: ablation of {axis} ({others}); median, 95% CI", fontsize=10)
            self.doc.h(3, f"Ablation: {axis}")
            self.save(fig, f"{g.slug}_ablation_{axis}.png", f"{g.wl} ablation {axis}")

    def distributions(self, g):
        for h in g.hists:
            self.doc.h(3, f"Latency distribution: {h}")
            self.dist_plot(g, h, lambda r, h=h: r["record"].get("histograms", {}).get(h), f"{g.slug}_{h}_dist.png")

    def dist_plot(self, g, name, hist_of, png):
        """Percentile curves (p50 .. p99.99) of one histogram of each run,
        merged over the repetitions of each cell: one panel per GOMAXPROCS,
        one line per variant, Go dashed. hist_of(run) -> histogram or None."""
        qs = [50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99]
        fig, axs = self.plt.subplots(1, len(g.procs), figsize=(5 * len(g.procs), 3.8), squeeze=False,
                                     sharey=True)
        for j, p in enumerate(g.procs):
            a = axs[0][j]
            for i, v in enumerate(g.variants):
                merged = stats.merge_buckets([(hist_of(r) or {}).get("buckets", []) for r in g.runs_of(v, p)])
                if not merged:
                    continue
                ys = [stats.hist_percentile(merged, q) for q in qs]
                xs = [-math.log10(1 - q / 100) for q in qs]
                st = self.style(g, v, i)
                a.plot(xs, [max(y, 1) for y in ys], marker="o", ms=3, label=v,
                       color="black" if v == "go" else st["color"], linestyle=st["line"])
            a.set_yscale("log")
            time_axis(a, name, log=True)
            a.set_xticks([-math.log10(1 - q / 100) for q in (50, 90, 99, 99.9, 99.99)])
            a.set_xticklabels(["p50", "p90", "p99", "p99.9", "p99.99"])
            a.set_title(f"GOMAXPROCS={p}", fontsize=10)
            a.grid(alpha=0.3, which="both")
            if j == 0:
                a.set_ylabel(f"{name} (log)")
                a.legend(fontsize=8)
        fig.suptitle(f"{g.wl}: {name} distribution (all repetitions merged)", fontsize=10)
        self.save(fig, png, f"{g.wl} {name}")

    def ratio_tables(self, g):
        refs = [self.default, "go"] + g.natives
        for metric in g.key_metrics:
            self.doc.h(3, f"{metric} ({g.direction(metric)})")
            rows = []
            for p in g.procs:
                meds = {v: stats.median(g.vals(v, p, metric)) for v in g.variants if g.vals(v, p, metric)}
                best = g.better(metric)(meds, key=meds.get) if meds else None
                for v in g.variants:
                    d = g.vals(v, p, metric)
                    if not d:
                        continue
                    m = stats.median(d)
                    lo, hi = stats.bootstrap_ci(d)
                    cols = [p, f"**{v}** (**best**)" if v == best and len(meds) > 1 else v, len(d),
                            fmt.value(m, metric), f"[{fmt.value(lo, metric)}, {fmt.value(hi, metric)}]"]
                    for ref in refs:
                        rd = g.vals(ref, p, metric)
                        if not rd or ref == v:
                            cols += ["—", "—"]
                            continue
                        rm = stats.median(rd)
                        if rm == 0:
                            cols += ["n/a", "n/a"]
                            continue
                        rlo, rhi = stats.bootstrap_ratio_ci(d, rd)
                        _, pv = stats.mann_whitney_u(d, rd)
                        sig = "significant" if pv < SIG else "n.s."
                        cols += [f"{m / rm:.2f}x [{rlo:.2f}, {rhi:.2f}]", f"{pv:.3g} {sig}"]
                    rows.append(cols)
            self.doc.table(["GOMAXPROCS", "variant", "n", "median", "95% CI"]
                           + [h for ref in refs for h in (f"vs {ref}", "p")], rows)

    def targets(self, g):
        """The registered targets of the default variant, each checked per
        GOMAXPROCS from this parameter set's runs: the ratio of medians with
        its bootstrap CI against the bound."""
        ts = g.reg.targets if g.reg else []
        if not ts:
            return
        self.doc.h(3, "Targets")
        applying = [t for t in ts if t.applies(g.params)]
        for t in ts:
            if t not in applying:
                self.doc.p(f"Target `{t.describe()}` is stated for "
                           + ", ".join(f"{k} in {{{', '.join(map(str, vs))}}}" for k, vs in sorted(t.where.items()))
                           + "; not checked for this parameter set.")
        rows = []
        for t in applying:
            vs = next((v for v in g.variants if g.kind[v][1] == t.vs and g.impl(v) != "rt"), None)
            for p in g.procs:
                d = g.vals(self.default, p, t.metric)
                rd = g.vals(vs, p, t.metric) if vs else []
                bound = ("≥ " if t.at_least else "≤ ") + f"{t.bound:g}"
                head = [p, t.metric, f"{self.default} / {vs or t.vs}", bound]
                if not d or not rd:
                    missing = " and ".join(x for x, have in ((self.default, d), (vs or t.vs, rd)) if not have)
                    rows.append(head + ["—", "—", f"not measured ({missing})"])
                    continue
                rm = stats.median(rd)
                if rm == 0:
                    rows.append(head + ["n/a", "—", f"not decidable ({vs} median is 0)"])
                    continue
                ratio = stats.median(d) / rm
                lo, hi = stats.bootstrap_ratio_ci(d, rd)
                verdict = "met" if t.met(ratio) else "**not met**"
                if t.met(lo) != t.met(hi):
                    verdict += " (the CI includes the bound)"
                rows.append(head + [f"{ratio:.2f}x", f"[{lo:.2f}, {hi:.2f}]", verdict])
        if rows:
            self.doc.p("Each target bounds the ratio of the default variant's median to the other server's, "
                       "from this parameter set's runs (n per side as in the tables below); the verdict "
                       "compares the ratio of medians with the bound, and says when its 95% bootstrap CI "
                       "reaches across it.")
            self.doc.table(["GOMAXPROCS", "metric", "ratio of", "target", "measured", "95% CI", "verdict"], rows)

    def counters(self, g):
        cnames = []
        for rs in g.cells.values():
            for r in rs:
                for k in r["counters"]:
                    if k not in cnames:
                        cnames.append(k)
        if not cnames:
            return
        self.doc.h(3, "Counters per operation (median over repetitions)")
        rows = []
        for p in g.procs:
            for v in g.variants:
                rs = g.runs_of(v, p)
                if not rs:
                    continue
                row = [p, v]
                for cn in cnames:
                    per = [r["counters"][cn] / r["metrics"]["ops"] for r in rs
                           if isinstance(r["counters"].get(cn), float) and r["metrics"].get("ops")]
                    row.append(fmt.value(stats.median(per)) if per else "unsupported")
                rows.append(row)
        self.doc.table(["GOMAXPROCS", "variant"] + cnames, rows)
        unsup = sorted({cn for rs in g.cells.values() for r in rs for cn, x in r["counters"].items()
                        if x == "unsupported"})
        if unsup:
            reasons = {e for rs in g.cells.values() for r in rs for cn in unsup
                       for e in [(r["record"].get("counter_info", {}).get(cn) or {}).get("error")] if e}
            self.doc.p("Unsupported on this machine (no value was read; not zero): "
                       + ", ".join(unsup) + (". Reason: " + "; ".join(sorted(reasons)) if reasons else "."))

    def sched_counters(self, g):
        snames = sorted({k for rs in g.cells.values() for r in rs for k in r["metrics"]
                         if k.startswith("sched.") and k != "sched.threads"})
        if not snames:
            return
        self.doc.h(3, "Runtime scheduler counters per operation (rt variants; Go and the references expose none)")
        rows = []
        for p in g.procs:
            for v in g.variants:
                rs = g.runs_of(v, p) if g.impl(v) == "rt" else []
                if not rs:
                    continue
                row = [p, v]
                for sn in snames:
                    per = [r["metrics"][sn] / r["metrics"]["ops"] for r in rs
                           if sn in r["metrics"] and r["metrics"].get("ops")]
                    row.append(fmt.value(stats.median(per)) if per else "n/a")
                rows.append(row)
        self.doc.table(["GOMAXPROCS", "variant"] + [s[6:] for s in snames], rows)

    def pauses(self, g):
        rows = []

        def med(rs, metric, unit=None):
            d = [r["metrics"][metric] for r in rs if metric in r["metrics"]]
            return fmt.value(stats.median(d), unit or metric) if d else "n/a"

        for p in g.procs:
            for v in g.variants:
                rs = g.runs_of(v, p)
                if not rs:
                    continue
                if g.impl(v) == "native":
                    rows.append([p, v, "n/a (no runtime)", "", "", "", "", ""])
                    continue
                stops = [med(rs, "stw_pause_ns.max", "x_ns"), med(rs, "stw_stopping_ns.max", "x_ns")]
                if not any(r["record"].get("runtime", {}).get("gc") for r in rs):
                    rows.append([p, v, "no GC (null)", "", "", ""] + stops)
                    continue
                rows.append([p, v, med(rs, "gc.cycles", "x"), med(rs, "gc.pause_ns.p50", "x_ns"),
                             med(rs, "gc.pause_ns.p99", "x_ns"), med(rs, "gc.max_pause_ns", "x_ns")] + stops)
        if not rows:
            return
        self.doc.h(3, "Pauses (medians over repetitions of each run's figure)")
        self.doc.p("GC pause: the stop-the-world time of one collection (sweep termination plus mark termination, "
                   "Go's PauseNs); n/a where no collection ended in the measured region. Max stopping: the "
                   "longest time one stop-the-world took to reach every P's safe point (rt only; Go 1.19 does "
                   "not report it).")
        self.doc.table(["GOMAXPROCS", "variant", "GC cycles", "GC pause p50", "GC pause p99", "max GC pause",
                        "max stop-the-world pause", "max stopping"], rows)
        if any(r["metrics"].get("gc.cycles") for rs in g.cells.values() for r in rs):
            self.doc.h(3, "GC pause distribution")
            self.dist_plot(g, "gc_pause_ns", lambda r: (r["record"].get("runtime", {}).get("gc") or {}).get("pause_ns"),
                           f"{g.slug}_gc_pause_dist.png")

    def workload(self, g):
        self.doc.h(2, f"Workload {g.wl}" + (f" ({g.setting})" if g.setting != "default" else ""))
        if g.reg and g.reg.description:
            self.doc.p(g.reg.description)
        self.doc.p("Parameters: " + ", ".join(f"`{k}={v}`" for k, v in sorted(g.params.items()))
                   + f". Runtime setting: {g.setting} (rt variants and Go alike).")
        self.glance(g)
        self.overview(g)
        self.ablations(g)
        self.distributions(g)
        self.targets(g)
        self.ratio_tables(g)
        self.counters(g)
        self.sched_counters(g)
        self.pauses(g)

    def setting_sweeps(self, groups):
        """Per workload and parameter set measured under several runtime
        settings (`--gogc`, `--godebug`): the primary metric and the GC
        figures against the setting, one line per variant and GOMAXPROCS."""
        by = {}
        for g in groups:
            by.setdefault((g.wl, g.pj), []).append(g)
        for (wl, pj), gs in sorted(by.items()):
            if len(gs) < 2:
                continue
            metrics = [gs[0].primary] + [m for m in SWEEP_METRICS
                                         if any(m in r["metrics"] for g in gs for rs in g.cells.values() for r in rs)]
            series = []
            for g in gs:
                for k in g.cells:
                    if (k[1], k[2]) not in series:
                        series.append((k[1], k[2]))
            series.sort(key=lambda s: (s[0] == "go", s[0], s[1]))
            fig, axs = self.plt.subplots(1, len(metrics), figsize=(4.4 * len(metrics), 3.8), squeeze=False)
            rows = []
            for k, metric in enumerate(metrics):
                a = axs[0][k]
                for i, (v, p) in enumerate(series):
                    xs, ys = [], []
                    for j, g in enumerate(gs):
                        d = g.vals(v, p, metric)
                        if d:
                            xs.append(j)
                            ys.append(stats.median(d))
                            if k == 0:
                                lo, hi = stats.bootstrap_ci(d)
                                rows.append([g.setting, v, p, len(d), fmt.value(ys[-1], metric),
                                             f"[{fmt.value(lo, metric)}, {fmt.value(hi, metric)}]"])
                    if xs:  # Go dashed in greys; the marker tells GOMAXPROCS apart
                        pi = sorted({q for _, q in series}).index(p)
                        a.plot(xs, ys, marker="os^Dv"[pi % 5], ms=4, label=f"{v} P={p}",
                               color=("black", "dimgray", "darkgray")[pi % 3] if v == "go"
                               else self.colors[i % len(self.colors)],
                               linestyle="--" if v == "go" else "-")
                a.set_xticks(range(len(gs)))
                a.set_xticklabels([g.setting for g in gs], rotation=20, ha="right", fontsize=8)
                a.set_title(metric, fontsize=10)
                time_axis(a, metric)
                a.grid(alpha=0.3)
                if k == 0:
                    a.legend(fontsize=7)
            fig.suptitle(f"{wl}: by runtime setting (medians)", fontsize=10)
            self.doc.h(2, f"Workload {wl}: runtime settings")
            self.doc.p("The same cells under each GOGC / GODEBUG setting of the run (applied to the rt variants "
                       "and the Go twin alike); medians over repetitions.")
            self.save(fig, f"{slug(wl, pj, len({g.pj for g in groups if g.wl == wl}) > 1)}_settings.png",
                      f"{wl} by runtime setting")
            self.doc.table(["setting", "variant", "GOMAXPROCS", "n", f"median {gs[0].primary}", "95% CI"], rows)

    def trend_section(self, runs, commits):
        if len(commits) < 2:
            return
        self.doc.h(2, "Trends across commits")
        self.doc.p(trends.METHOD)
        by_wl = _by_workload(runs)
        several = _several_param_sets(by_wl)
        for (wl, pj, gogc, godebug), rs in sorted(by_wl.items()):
            reg = self.workloads.get(wl)
            if reg is None:
                self.doc.p(f"{wl}: not registered in this checkout's workloads/; no gated metrics, no trend.")
                continue
            for gm in gate.gated_metrics(reg, "rt"):
                t = trends.trend(rs, gm, commits)
                if not t:
                    continue
                name = f"{slug(wl, pj, wl in several, gogc, godebug)}_trend_{gm.name.replace('.', '_')}.png"
                fig = trends.plot(self.plt, t, gm, f"{wl}: {gm.name} across commits", self.colors, commits)
                time_axis(fig.axes[0], gm.name)
                self.doc.h(3, f"Trend: {wl} {gm.name}" + (f" ({setting_label(gogc, godebug)})"
                                                              if gogc or godebug else ""))
                self.save(fig, name, f"{wl} {gm.name} trend")
                self.doc.table(["cell", "change points (first commit of the new level: old -> new median)"],
                               [[cell, "; ".join(trends.describe(c, gm.name) for c in cps) or "none"]
                                for cell, (_, cps) in sorted(t.items())])

    def failures(self):
        fails = self.db.failures()
        self.doc.h(2, "Failures")
        if fails:
            self.doc.table(["workload", "variant", "GOMAXPROCS", "setting", "params", "warm-up", "status", "error"],
                           [[f["workload"], f["variant"], f["gomaxprocs"], setting_label(f["gogc"], f["godebug"]),
                             f["params_json"],
                             "yes" if f["warmup"] else "no", f["status"], (f["error"] or "")[:200]] for f in fails])
        else:
            self.doc.p("None.")

    def environment(self):
        envs = self.db.environments()
        self.doc.h(2, "Environment")
        if envs:
            keys = ["hostname", "kernel", "cpu_model", "cores", "governor", "git_commit", "git_dirty", "compiler",
                    "go_version", "python"]
            self.doc.table(["env"] + keys, [[e["env_id"]] + [e.get(k) if e.get(k) is not None else "n/a"
                                                             for k in keys] for e in envs])

    def write(self):
        md = os.path.join(self.out_dir, "report.md")
        with open(md, "w") as f:
            f.write(self.doc.markdown())
        hp = os.path.join(self.out_dir, "index.html")
        with open(hp, "w") as f:
            f.write(self.doc.html(self.title))
        return {"markdown": md, "html": hp, "pngs": self.pngs}


def generate(db, out_dir, matrix=None, workloads=None, title="rtlab report", root=None):
    """Writes out_dir/index.html, out_dir/report.md and the PNGs; returns their paths.
    root: the git checkout that orders the database's commits (trends)."""
    os.makedirs(out_dir, exist_ok=True)
    rep = Report(db, out_dir, matrix, workloads, title)
    runs = load(db)
    commits = trends.commit_order(runs, root)
    newest = {}
    for r in runs:  # per workload, its newest commit
        c = newest.get(r["workload"])
        if c is None or commits.index(r["git_commit"]) > commits.index(c):
            newest[r["workload"]] = r["git_commit"]
    by_group = _by_workload([r for r in runs if r["git_commit"] == newest[r["workload"]]])
    several = _several_param_sets(by_group)
    groups = [Group(wl, pj, rs, rep.workloads.get(wl), matrix, wl in several, gogc, godebug)
              for (wl, pj, gogc, godebug), rs in sorted(by_group.items(), key=_group_order)]
    rep.intro(runs, groups, commits)
    for g in groups:
        rep.workload(g)
    rep.setting_sweeps(groups)
    rep.trend_section(runs, commits)
    rep.failures()
    rep.environment()
    return rep.write()

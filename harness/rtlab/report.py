"""`rtlab report`: PNG plots plus a Markdown and an HTML summary of a database.

For each workload (and parameter set): an overview bar chart of the primary
metric, one ablation plot per policy axis (that axis varied, the others at
their default), latency distribution plots (percentile curves of the merged
histograms), a ratio table per key metric (median, 95% bootstrap CI, ratio
to the default variant and to Go with bootstrap CIs, Mann-Whitney p-value),
hardware/software counters and runtime counters per operation, failures, and
the environment.
"""
import html
import json
import math
import os

from . import fmt, stats

SIG = 0.05


def _mpl():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _is_time(metric):
    return "_ns" in metric or metric.startswith("ns_")


def _time_axis(ax, metric, log=False):
    """Tick labels in ns/µs/ms/s for time metrics."""
    if not _is_time(metric):
        return
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    f = FuncFormatter(lambda v, _pos: fmt.value(v, "x_ns") if v > 0 else "0")
    ax.yaxis.set_major_formatter(f)
    if log:
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(NullFormatter())


class Doc:
    """Blocks rendered to both Markdown and HTML."""

    def __init__(self):
        self.blocks = []

    def h(self, level, text):
        self.blocks.append(("h", level, text))

    def p(self, text):
        self.blocks.append(("p", text))

    def table(self, header, rows):
        self.blocks.append(("table", header, rows))

    def img(self, path, alt):
        self.blocks.append(("img", path, alt))

    def markdown(self):
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2] + "\n")
            elif b[0] == "p":
                out.append(b[1] + "\n")
            elif b[0] == "table":
                out.append("| " + " | ".join(b[1]) + " |")
                out.append("|" + "|".join("---" for _ in b[1]) + "|")
                for r in b[2]:
                    out.append("| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |")
                out.append("")
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})\n")
        return "\n".join(out)

    def html(self, title):
        def inline(s):
            s = html.escape(str(s))
            # **bold** from the Markdown cells
            parts = s.split("**")
            return "".join(f"<b>{x}</b>" if i % 2 else x for i, x in enumerate(parts))

        out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
               "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
               "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
               "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
               "th{background:#f0f0f0}td:nth-child(-n+2){text-align:left}"
               "tr.best td{background:#e6f5e6}td.sig{color:#b00}img{max-width:100%;border:1px solid #eee}"
               "</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{inline(b[1])}</p>")
            elif b[0] == "table":
                out.append("<table><tr>" + "".join(f"<th>{inline(x)}</th>" for x in b[1]) + "</tr>")
                for r in b[2]:
                    cls = " class='best'" if any("**best**" in str(x) for x in r) else ""
                    out.append(f"<tr{cls}>" + "".join(f"<td>{inline(x)}</td>" for x in r) + "</tr>")
                out.append("</table>")
            elif b[0] == "img":
                out.append(f"<p><img src='{html.escape(b[1])}' alt='{html.escape(b[2])}'></p>")
        out.append("</body></html>")
        return "\n".join(out)


def _load(db):
    """{(workload, params_json): {(impl, variant, procs): [run dict + metrics + record]}}"""
    groups = {}
    for r in db.runs():
        r["metrics"] = db.metrics_of(r["run_id"])
        r["counters"] = db.counters_of(r["run_id"])
        r["record"] = json.loads(r["record_json"]) if r["record_json"] else {}
        groups.setdefault((r["workload"], r["params_json"]), {}).setdefault(
            (r["impl"], r["variant"], r["gomaxprocs"]), []).append(r)
    return groups


def _variant_order(matrix, variants):
    known = [matrix.name(c) for c in matrix.all()] if matrix else []
    rt = sorted((v for v in variants if v != "go"), key=lambda v: (known.index(v) if v in known else 999, v))
    return rt + (["go"] if "go" in variants else [])


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


def generate(db, out_dir, matrix=None, workloads=None, title="rtlab report"):
    plt = _mpl()
    os.makedirs(out_dir, exist_ok=True)
    doc = Doc()
    doc.h(1, title)
    groups = _load(db)
    default = matrix.name(matrix.default()) if matrix else None
    envs = db.environments()
    nruns = sum(len(v) for g in groups.values() for v in g.values())
    doc.p(f"Database `{db.path}`: {nruns} measured runs in {sum(len(g) for g in groups.values())} cells. "
          f"Ratios are medians of repetitions; 95% CIs by bootstrap; p = two-sided Mann-Whitney U "
          f"(significant when p < {SIG}). Lower is better for every time metric. Default variant: "
          f"`{default}`" + (f" ({matrix.describe(matrix.default())})." if matrix else "."))
    if not groups:
        doc.p("No successful runs in this database.")
    pngs = []
    for (wl, pj), cells in sorted(groups.items()):
        reg = (workloads or {}).get(wl)
        any_rec = next(iter(cells.values()))[0]["record"]
        metric_names = list(any_rec.get("metrics", {}).keys())
        primary = reg.primary if reg and reg.primary in metric_names else (metric_names[0] if metric_names else "wall_ns")
        hists = [h for h in (reg.histograms if reg else []) if h in any_rec.get("histograms", {})] or \
            list(any_rec.get("histograms", {}).keys())
        key_metrics = [primary] + [f"{h}.{q}" for h in hists for q in ("p50", "p99")]
        params = json.loads(pj)
        slug = wl + ("" if len([k for k in groups if k[0] == wl]) == 1 else "_" + str(abs(hash(pj)) % 10 ** 6))
        doc.h(2, f"Workload {wl}")
        if reg and reg.description:
            doc.p(reg.description)
        doc.p("Parameters: " + ", ".join(f"`{k}={v}`" for k, v in sorted(params.items())))
        procs = sorted({k[2] for k in cells})
        variants = _variant_order(matrix, {k[1] for k in cells})

        def vals(variant, p, metric):
            impl = "go" if variant == "go" else "rt"
            return [r["metrics"][metric] for r in cells.get((impl, variant, p), []) if metric in r["metrics"]]

        # --- at a glance
        lines = []
        for p in procs:
            meds = {v: stats.median(vals(v, p, primary)) for v in variants if vals(v, p, primary)}
            if not meds:
                continue
            best = min(meds, key=meds.get)
            parts = []
            for v, m in sorted(meds.items(), key=lambda kv: kv[1]):
                if v == best:
                    continue
                _, pv = stats.mann_whitney_u(vals(v, p, primary), vals(best, p, primary))
                parts.append(f"{v} {m / meds[best]:.2f}x" + ("" if pv < SIG else " (not significant)"))
            lines.append(f"GOMAXPROCS={p}: **{best}** wins on {primary} ({fmt.value(meds[best], primary)})"
                         + (f"; then {', '.join(parts)}" if parts else ""))
        doc.p("At a glance: " + " — ".join(lines) if lines else "")

        # --- overview plot
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(variants) * len(procs) + 2), 4))
        width = 0.8 / max(1, len(variants))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, v in enumerate(variants):
            xs, ys, lo, hi = _bar_points(vals, v, procs, primary, i, len(variants), width)
            col = "#555555" if v == "go" else colors[i % len(colors)]
            bars = ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=v, color=col,
                          hatch="//" if v == "go" else None, edgecolor="white" if v != "go" else "black")
            for b, y, p in zip(bars, ys, [p for p in procs if vals(v, p, primary)]):
                ref = vals(default, p, primary)
                if ref and v != default:
                    ax.annotate(f"{y / stats.median(ref):.2f}x", (b.get_x() + b.get_width() / 2, y),
                                ha="center", va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")
        ax.set_xticks(range(len(procs)))
        ax.set_xticklabels([f"GOMAXPROCS={p}" for p in procs])
        ax.set_ylabel(primary + " (lower is better)")
        _time_axis(ax, primary)
        ax.set_title(f"{wl}: {primary} by variant (median, 95% CI; labels: ratio to {default})")
        ax.legend(fontsize=8, ncol=min(4, len(variants)))
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        name = f"{slug}_overview.png"
        fig.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(fig)
        pngs.append(name)
        doc.img(name, f"{wl} overview")

        # --- per-axis ablations
        if matrix:
            dflt = matrix.default()
            for ai, (axis, axis_vs, _) in enumerate(matrix.axes):
                combos = []
                for av in axis_vs:
                    c = list(dflt)
                    c[ai] = av
                    combos.append(matrix.name(c))
                present = [c for c in combos if c in variants]
                if len(present) < 2:
                    doc.p(f"Axis `{axis}`: " + (f"only `{present[0]}` measured" if present else "not measured")
                          + f" with the other axes at their default (variants of the axis: {', '.join(axis_vs)});"
                          " no ablation plot.")
                    continue
                fig, axs = plt.subplots(1, len(key_metrics), figsize=(4.2 * len(key_metrics), 3.6), squeeze=False)
                series = present + (["go"] if "go" in variants else [])
                for k, metric in enumerate(key_metrics):
                    a = axs[0][k]
                    w = 0.8 / len(series)
                    for i, v in enumerate(series):
                        xs, ys, el, eh = _bar_points(vals, v, procs, metric, i, len(series), w)
                        lab = "go" if v == "go" else combos and axis_vs[combos.index(v)]
                        a.bar(xs, ys, w, yerr=[el, eh], capsize=3, label=lab,
                              color="#555555" if v == "go" else colors[i % len(colors)],
                              hatch="//" if v == "go" else None)
                    a.set_xticks(range(len(procs)))
                    a.set_xticklabels([f"P={p}" for p in procs])
                    a.set_title(metric, fontsize=10)
                    _time_axis(a, metric)
                    a.grid(axis="y", alpha=0.3)
                    if k == 0:
                        a.legend(fontsize=8, title=axis, title_fontsize=8)
                others = ", ".join(f"{x}={d}" for (x, _, d) in matrix.axes if x != axis) or "no other axes"
                fig.suptitle(f"{wl}: ablation of {axis} ({others}); median, 95% CI, lower is better", fontsize=10)
                fig.tight_layout()
                name = f"{slug}_ablation_{axis}.png"
                fig.savefig(os.path.join(out_dir, name), dpi=110)
                plt.close(fig)
                pngs.append(name)
                doc.h(3, f"Ablation: {axis}")
                doc.img(name, f"{wl} ablation {axis}")

        # --- latency distributions
        for h in hists:
            fig, axs = plt.subplots(1, len(procs), figsize=(5 * len(procs), 3.8), squeeze=False, sharey=True)
            qs = [50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99]
            for j, p in enumerate(procs):
                a = axs[0][j]
                for i, v in enumerate(variants):
                    impl = "go" if v == "go" else "rt"
                    bls = [r["record"].get("histograms", {}).get(h, {}).get("buckets", [])
                           for r in cells.get((impl, v, p), [])]
                    merged = stats.merge_buckets(bls)
                    if not merged:
                        continue
                    ys = [stats.hist_percentile(merged, q) for q in qs]
                    xs = [-math.log10(1 - q / 100) for q in qs]
                    a.plot(xs, [max(y, 1) for y in ys], marker="o", ms=3, label=v,
                           color="black" if v == "go" else colors[i % len(colors)],
                           linestyle="--" if v == "go" else "-")
                a.set_yscale("log")
                _time_axis(a, h, log=True)
                a.set_xticks([-math.log10(1 - q / 100) for q in (50, 90, 99, 99.9, 99.99)])
                a.set_xticklabels(["p50", "p90", "p99", "p99.9", "p99.99"])
                a.set_title(f"GOMAXPROCS={p}", fontsize=10)
                a.grid(alpha=0.3, which="both")
                if j == 0:
                    a.set_ylabel(f"{h} (log)")
                    a.legend(fontsize=8)
            fig.suptitle(f"{wl}: {h} distribution (all repetitions merged)", fontsize=10)
            fig.tight_layout()
            name = f"{slug}_{h}_dist.png"
            fig.savefig(os.path.join(out_dir, name), dpi=110)
            plt.close(fig)
            pngs.append(name)
            doc.h(3, f"Latency distribution: {h}")
            doc.img(name, f"{wl} {h}")

        # --- ratio tables
        for metric in key_metrics:
            doc.h(3, f"{metric}")
            rows = []
            for p in procs:
                meds = {v: stats.median(vals(v, p, metric)) for v in variants if vals(v, p, metric)}
                best = min(meds, key=meds.get) if meds else None
                for v in variants:
                    d = vals(v, p, metric)
                    if not d:
                        continue
                    m = stats.median(d)
                    lo, hi = stats.bootstrap_ci(d)
                    cols = [p, f"**{v}** (**best**)" if v == best and len(meds) > 1 else v, len(d),
                            fmt.value(m, metric), f"[{fmt.value(lo, metric)}, {fmt.value(hi, metric)}]"]
                    for ref in (default, "go"):
                        rd = vals(ref, p, metric)
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
            doc.table(["GOMAXPROCS", "variant", "n", "median", "95% CI", f"vs {default}", "p",
                       "vs go", "p"], rows)

        # --- counters per operation
        cnames = []
        for rs in cells.values():
            for r in rs:
                for k in r["counters"]:
                    if k not in cnames:
                        cnames.append(k)
        if cnames:
            doc.h(3, "Counters per operation (median over repetitions)")
            rows = []
            for p in procs:
                for v in variants:
                    rs = cells.get(("go" if v == "go" else "rt", v, p), [])
                    if not rs:
                        continue
                    row = [p, v]
                    for cn in cnames:
                        per = [r["counters"][cn] / r["metrics"]["ops"] for r in rs
                               if isinstance(r["counters"].get(cn), float) and r["metrics"].get("ops")]
                        row.append(fmt.value(stats.median(per)) if per else "unsupported")
                    rows.append(row)
            doc.table(["GOMAXPROCS", "variant"] + cnames, rows)
            unsup = sorted({cn for rs in cells.values() for r in rs for cn, x in r["counters"].items()
                            if x == "unsupported"})
            if unsup:
                reasons = set()
                for rs in cells.values():
                    for r in rs:
                        for cn in unsup:
                            e = (r["record"].get("counter_info", {}).get(cn) or {}).get("error")
                            if e:
                                reasons.add(e)
                doc.p("Unsupported on this machine (no value was read; not zero): "
                      + ", ".join(unsup) + (". Reason: " + "; ".join(sorted(reasons)) if reasons else "."))
            snames = sorted({k for rs in cells.values() for r in rs for k in r["metrics"] if k.startswith("sched.") and k != "sched.threads"})
            if snames:
                doc.h(3, "Runtime scheduler counters per operation (rt variants; Go exposes none)")
                rows = []
                for p in procs:
                    for v in variants:
                        if v == "go":
                            continue
                        rs = cells.get(("rt", v, p), [])
                        if not rs:
                            continue
                        row = [p, v]
                        for sn in snames:
                            per = [r["metrics"][sn] / r["metrics"]["ops"] for r in rs
                                   if sn in r["metrics"] and r["metrics"].get("ops")]
                            row.append(fmt.value(stats.median(per)) if per else "n/a")
                        rows.append(row)
                doc.table(["GOMAXPROCS", "variant"] + [s[6:] for s in snames], rows)
            gcrows = []
            for p in procs:
                for v in variants:
                    rs = cells.get(("go" if v == "go" else "rt", v, p), [])
                    gc = [r["metrics"].get("gc.max_pause_ns") for r in rs if "gc.max_pause_ns" in r["metrics"]]
                    stw = [r["metrics"].get("stw_pause_ns.max") for r in rs if "stw_pause_ns.max" in r["metrics"]]
                    if rs:
                        gcrows.append([p, v, fmt.value(stats.median(gc), "x_ns") if gc else "no GC yet (null)",
                                       fmt.value(stats.median(stw), "x_ns") if stw else "n/a"])
            if gcrows:
                doc.h(3, "Pauses (median over repetitions of the per-run maximum)")
                doc.table(["GOMAXPROCS", "variant", "max GC pause", "max stop-the-world pause"], gcrows)

    fails = db.failures()
    doc.h(2, "Failures")
    if fails:
        doc.table(["workload", "variant", "GOMAXPROCS", "params", "warm-up", "status", "error"],
                  [[f["workload"], f["variant"], f["gomaxprocs"], f["params_json"], "yes" if f["warmup"] else "no",
                    f["status"], (f["error"] or "")[:200]] for f in fails])
    else:
        doc.p("None.")
    doc.h(2, "Environment")
    if envs:
        keys = ["hostname", "kernel", "cpu_model", "cores", "governor", "git_commit", "git_dirty", "compiler",
                "go_version", "python"]
        doc.table(["env"] + keys, [[e["env_id"]] + [e.get(k) if e.get(k) is not None else "n/a" for k in keys]
                                   for e in envs])
    md = os.path.join(out_dir, "report.md")
    with open(md, "w") as f:
        f.write(doc.markdown())
    hp = os.path.join(out_dir, "index.html")
    with open(hp, "w") as f:
        f.write(doc.html(title))
    return {"markdown": md, "html": hp, "pngs": pngs}

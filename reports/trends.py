"""Trends of gated metrics across commits, with change points.

Commits are ordered by their committer time in the git checkout when it
knows them, else by their first run (a database merged from another clone).

Change points: binary segmentation with a rank test, a simpler relative of
E-divisive means. For one cell and metric, the runs of commits [lo, hi) are
split at every commit boundary k; the split whose two sides differ most by
the Mann-Whitney U test (smallest p) is a change point when p < 0.01 divided
by the number of candidate splits (Bonferroni) and the medians of the two
sides differ by more than the metric's gate threshold; then both sides are
searched again. A change point is reported at the first commit of the new
level. Invariant: every reported level differs from its neighbours both
significantly and by more than the threshold, so the noise of one commit's
repetitions never makes a change point on its own.
"""
import subprocess

from rtlab import fmt, stats

ALPHA = 0.01
METHOD = ("Each point is the median of a commit's repetitions with its 95% bootstrap CI; commits in committer-time "
          "order. Dashed lines mark change points found by binary segmentation: the split of the commit sequence "
          f"where the runs before and after differ most (Mann-Whitney U, p < {ALPHA} / number of splits) and "
          "whose medians differ by more than the metric's gate threshold, searched again on both sides.")


def commit_order(runs, root=None):
    """The distinct commits of the runs, oldest first."""
    first = {}
    for r in runs:
        c = r["git_commit"]
        if c not in first or r["started_at"] < first[c]:
            first[c] = r["started_at"]
    when = {}
    if root and first:
        out = subprocess.run(["git", "-C", root, "show", "-s", "--format=%H %ct", *sorted(first)],
                             capture_output=True, text=True)
        if out.returncode == 0:
            for line in out.stdout.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] in first:
                    when[parts[0]] = int(parts[1])
    return sorted(first, key=lambda c: (when.get(c, float("inf")), first[c]))


def change_points(samples, threshold, alpha=ALPHA):
    """Indices k (into samples, one list of values per commit in order) where a new level starts."""
    def seg(lo, hi):
        best = None
        for k in range(lo + 1, hi):
            left = [v for s in samples[lo:k] for v in s]
            right = [v for s in samples[k:hi] for v in s]
            if len(left) < 2 or len(right) < 2:
                continue
            _, p = stats.mann_whitney_u(left, right)
            if best is None or p < best[1]:
                best = (k, p, left, right)
        if best is None:
            return []
        k, p, left, right = best
        ml, mr = stats.median(left), stats.median(right)
        ratio = mr / ml if ml else (1.0 if mr == 0 else float("inf"))
        if p < alpha / (hi - lo - 1) and not 1 / (1 + threshold) <= ratio <= 1 + threshold:
            return seg(lo, k) + [k] + seg(k, hi)
        return []

    return seg(0, len(samples))


def trend(runs, gm, commits):
    """{cell label: (points, change points)} for one gated metric: points are
    (commit index, median, CI low, CI high) and change points (commit index,
    commit, median before, median after); cells measured in < 2 commits are left out."""
    cells = {}
    for r in runs:
        if gm.name in r["metrics"]:
            label = f"{r['variant']} P={r['gomaxprocs']}"
            cells.setdefault(label, {}).setdefault(r["git_commit"], []).append(r["metrics"][gm.name])
    out = {}
    for label, by_commit in cells.items():
        order = [c for c in commits if c in by_commit]
        if len(order) < 2:
            continue
        samples = [by_commit[c] for c in order]
        points = []
        for c, s in zip(order, samples):
            lo, hi = stats.bootstrap_ci(s)
            points.append((commits.index(c), stats.median(s), lo, hi))
        cps = [(commits.index(order[k]), order[k], stats.median([v for s in samples[:k] for v in s]),
                stats.median([v for s in samples[k:] for v in s])) for k in change_points(samples, gm.threshold)]
        out[label] = (points, cps)
    return out


def describe(cp, metric):
    _, c, before, after = cp
    ratio = f" ({after / before:.2f}x)" if before else ""
    return f"{c[:12]}: {fmt.value(before, metric)} -> {fmt.value(after, metric)}{ratio}"


def plot(plt, t, gm, title, colors, commits):
    """One line per cell: medians with CI error bars; change points as dashed
    lines of the cell's colour just before the first commit of the new level."""
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(commits) + 3), 3.8))
    for i, (label, (points, cps)) in enumerate(sorted(t.items())):
        col = colors[i % len(colors)]
        ax.errorbar([p[0] for p in points], [p[1] for p in points],
                    yerr=[[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]],
                    marker="o", ms=3, capsize=3, label=label, color=col)
        for x, _, _, _ in cps:
            ax.axvline(x - 0.5, color=col, linestyle="--", alpha=0.8)
    ax.set_xticks(range(len(commits)))
    ax.set_xticklabels([c[:8] for c in commits], rotation=45, ha="right", fontsize=8)
    ax.set_xlim(-0.5, len(commits) - 0.5)
    ax.set_ylabel(f"{gm.name} ({'lower' if gm.lower_is_better else 'higher'} is better)")
    ax.set_title(title + " (median, 95% CI; dashed: change points)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig

"""What the regression gates check: gated metrics, their direction, their threshold.

Every gate (`rtlab compare`, `rtlab bisect`, `rtlab check`, the trend plots
of `rtlab report`) takes its metrics from here, so they agree on what a
regression is.

A workload's gated metrics come from its workload.json:
  - the primary metric (`primary_metric`), in the direction `lower_is_better`
    gives (false for throughput);
  - p50 and p99 of every latency histogram (`latency_histograms`), lower is
    better;
  - the GC pauses of rt cells, `gc.max_pause_ns` and `gc.pause_ns.p99`
    (the record's runtime.gc), lower is better. A run in which no collection
    ended has no pause figure (schema.flatten), and a metric missing from
    any run of either side is not gated, so a cell is gated on its pauses
    when every run collected.

Threshold of a metric = the largest relative worsening that is not a
regression. Precedence: the command line (`--threshold [WORKLOAD:]METRIC=F`,
METRIC may be a glob), then the workload's `thresholds` object (metric name
or glob -> fraction), then DEFAULT_THRESHOLDS (the primary metric has its own
default, PRIMARY_THRESHOLD).
"""
import collections
import fnmatch

PRIMARY = "primary"  # stands for a workload's primary metric where a metric name is asked for
PRIMARY_THRESHOLD = 0.05
# metric pattern -> allowed relative worsening
DEFAULT_THRESHOLDS = {
    "*.p50": 0.10,           # latency histograms' medians
    "*.p99": 0.25,           # tails are noisier
    "gc.max_pause_ns": 0.25,
    "gc.pause_ns.p99": 0.25,
}
GC_METRICS = ("gc.max_pause_ns", "gc.pause_ns.p99")


class GatedMetric(collections.namedtuple("GatedMetric", "name lower_is_better threshold")):
    """A metric a gate checks. `worsening(ratio)` turns head/base into
    a factor > 1 when head is worse, whatever the direction."""

    def worsening(self, ratio):
        if self.lower_is_better:
            return ratio
        return 1 / ratio if ratio else float("inf")


def parse_overrides(items):
    """--threshold values -> [(workload or None, metric pattern, fraction)].

    Forms: METRIC=F (every workload) and WORKLOAD:METRIC=F; METRIC may be a
    glob (`*.p99=0.3`)."""
    out = []
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"--threshold {it!r}: want [WORKLOAD:]METRIC=FRACTION (e.g. '*.p99=0.3')")
        k, v = it.rsplit("=", 1)
        wl = None
        if ":" in k:
            wl, k = k.split(":", 1)
        try:
            f = float(v)
        except ValueError:
            raise ValueError(f"--threshold {it!r}: {v!r} is not a number")
        if not k or f < 0:
            raise ValueError(f"--threshold {it!r}: want a metric and a fraction >= 0")
        out.append((wl, k, f))
    return out


def lookup(metric, patterns):
    """The value of the first pattern (exact name first, then globs) that matches metric."""
    if metric in patterns:
        return patterns[metric]
    for pat, v in patterns.items():
        if fnmatch.fnmatchcase(metric, pat):
            return v
    return None


def threshold(workload, metric, overrides=(), is_primary=False):
    """The threshold of one metric of a workload (a Workload or None)."""
    wname = workload.name if workload else None
    found = None
    for wl, pat, f in overrides:  # later command-line items win
        if (wl is None or wl == wname) and (pat == metric or fnmatch.fnmatchcase(metric, pat)):
            found = f
    if found is not None:
        return found
    if workload is not None:
        v = lookup(metric, workload.thresholds)
        if v is not None:
            return v
    if is_primary:
        return PRIMARY_THRESHOLD
    return lookup(metric, DEFAULT_THRESHOLDS)


def gated_metrics(workload, impl="rt", overrides=()):
    """[GatedMetric] of a workload's cells of one impl ("rt" or "go")."""
    out = [GatedMetric(workload.primary, workload.lower_is_better,
                       threshold(workload, workload.primary, overrides, is_primary=True))]
    for h in workload.histograms:
        for q in ("p50", "p99"):
            m = f"{h}.{q}"
            out.append(GatedMetric(m, True, threshold(workload, m, overrides)))
    if impl == "rt":
        for m in GC_METRICS:
            out.append(GatedMetric(m, True, threshold(workload, m, overrides)))
    return out

"""Statistics for the report and the regression gates.

median/quantile, percentile bootstrap confidence intervals (of a median, and
of a ratio of medians, vectorised with numpy), the Mann-Whitney U test
(exact distribution for small samples without ties, normal approximation
with tie and continuity correction otherwise) and the two-sample
Kolmogorov-Smirnov test (scipy's, exact for small samples).
"""
import math
import random
import warnings

import numpy


def quantile(xs, q):
    """Linear-interpolated quantile (q in [0, 1]) of a non-empty sequence."""
    s = sorted(xs)
    if not s:
        raise ValueError("quantile of an empty sequence")
    if len(s) == 1:
        return float(s[0])
    pos = q * (len(s) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def median(xs):
    return quantile(xs, 0.5)


def bootstrap_ci(xs, stat=median, level=0.95, n_boot=2000, seed=0):
    """Percentile bootstrap CI of stat(xs). With one sample: (x, x)."""
    xs = list(xs)
    if not xs:
        raise ValueError("bootstrap of an empty sequence")
    if len(xs) == 1:
        return (float(xs[0]), float(xs[0]))
    rng = random.Random(seed)
    n = len(xs)
    vals = sorted(stat([xs[rng.randrange(n)] for _ in range(n)]) for _ in range(n_boot))
    a = (1 - level) / 2
    return (quantile(vals, a), quantile(vals, 1 - a))


def bootstrap_ratio_ci(xs, ys, level=0.95, n_boot=2000, seed=0):
    """CI of median(xs) / median(ys) by resampling both independently."""
    rng = numpy.random.default_rng(seed)
    x = numpy.asarray(xs, dtype=float)
    y = numpy.asarray(ys, dtype=float)
    mx = numpy.median(x[rng.integers(0, len(x), (n_boot, len(x)))], axis=1)
    my = numpy.median(y[rng.integers(0, len(y), (n_boot, len(y)))], axis=1)
    ok = my != 0
    if not ok.any():
        return (float("nan"), float("nan"))
    a = (1 - level) / 2
    lo, hi = numpy.quantile(mx[ok] / my[ok], [a, 1 - a])
    return (float(lo), float(hi))


def ks_2samp(xs, ys):
    """Two-sided two-sample Kolmogorov-Smirnov test: (statistic D, p-value)."""
    from scipy import stats as sps
    with warnings.catch_warnings():
        # scipy falls back from the exact distribution to the asymptotic one
        # (and warns) when the exact computation does not converge: fine here.
        warnings.simplefilter("ignore", RuntimeWarning)
        r = sps.ks_2samp(list(xs), list(ys))
    return float(r.statistic), float(r.pvalue)


def _ranks(values):
    """Average ranks (1-based) with ties, and the tie-group sizes."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    ties = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        r = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = r
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def _exact_u_cdf(n1, n2):
    """Counts of each U value (0..n1*n2) over all arrangements, no ties."""
    # f[i][j] = polynomial (list) of U counts for samples of size i, j.
    from functools import lru_cache

    @lru_cache(maxsize=None)
    def f(i, j):
        if i == 0 or j == 0:
            return (1,)
        a = f(i - 1, j)  # largest element from sample 1: contributes j
        b = f(i, j - 1)
        out = [0] * (i * j + 1)
        for u, c in enumerate(a):
            out[u + j] += c
        for u, c in enumerate(b):
            out[u] += c
        return tuple(out)

    return f(n1, n2)


def mann_whitney_u(xs, ys):
    """Two-sided Mann-Whitney U test. Returns (U of xs, p-value).

    Exact p-value when both samples have at most 12 values and no ties;
    otherwise the normal approximation with tie correction and continuity
    correction. Identical samples give p = 1.
    """
    xs, ys = list(xs), list(ys)
    n1, n2 = len(xs), len(ys)
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney needs two non-empty samples")
    ranks, ties = _ranks(xs + ys)
    r1 = sum(ranks[:n1])
    u1 = r1 - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    n = n1 + n2
    if not ties and n1 <= 12 and n2 <= 12:
        counts = _exact_u_cdf(n1, n2)
        total = sum(counts)
        u = int(round(min(u1, u2)))
        p = 2 * sum(counts[: u + 1]) / total
        return u1, min(1.0, p)
    mu = n1 * n2 / 2
    tie_term = sum(t ** 3 - t for t in ties)
    var = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if var <= 0:
        return u1, 1.0
    z = (abs(u1 - mu) - 0.5) / math.sqrt(var)
    if z < 0:
        z = 0.0
    p = math.erfc(z / math.sqrt(2))
    return u1, min(1.0, p)


def rel_spread(xs):
    """Run-to-run noise of repetitions: (max - min) / median; None for < 2 values."""
    xs = list(xs)
    if len(xs) < 2:
        return None
    m = median(xs)
    if m == 0:
        return 0.0 if max(xs) == min(xs) else float("inf")
    return (max(xs) - min(xs)) / abs(m)


def hist_percentile(buckets, p):
    """Percentile p (0..100) of [[lo, hi, count], ...] buckets: the bucket's hi."""
    total = sum(b[2] for b in buckets)
    if total == 0:
        return None
    want = max(1, int(round(p / 100 * total)))
    seen = 0
    for lo, hi, c in sorted(buckets):
        seen += c
        if seen >= want:
            return hi
    return sorted(buckets)[-1][1]


def merge_buckets(bucket_lists):
    """Sums counts of identical [lo, hi] buckets over several histograms."""
    acc = {}
    for bl in bucket_lists:
        for lo, hi, c in bl:
            acc[(lo, hi)] = acc.get((lo, hi), 0) + c
    return [[lo, hi, c] for (lo, hi), c in sorted(acc.items())]

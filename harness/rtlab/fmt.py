"""Numbers as text for tables: time metrics with units, others compact."""
import math


def value(v, metric=""):
    """A number as text; time metrics (names with _ns) in ns, µs, ms or s."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if metric.endswith("_ns") or "_ns." in metric or metric.startswith("ns_") or ".p" in metric and "_ns" in metric:
        a = abs(v)
        if a >= 1e9:
            return f"{v / 1e9:.3g} s"
        if a >= 1e6:
            return f"{v / 1e6:.3g} ms"
        if a >= 1e3:
            return f"{v / 1e3:.3g} µs"
        return f"{v:.3g} ns"
    if abs(v) >= 1e4:
        return f"{v:,.0f}"
    return f"{v:.3g}"

"""Workload registrations: one folder per workload, workloads/<name>/workload.json.

  {
    "name": "spawn",                          # = folder name
    "description": "...",
    "target": "//workloads/spawn:spawn",      # rt_cc_binary; cells use <target>__<combination>
    "go": "go",                               # Go twin folder (go.mod + main.go), optional
    "params": {"goroutines": {"default": 100000, "smoke": 20000, "help": "..."}},
    "primary_metric": "ns_per_goroutine",     # a key of the record's "metrics"
    "lower_is_better": true,                  # direction of the primary metric (false: throughput)
    "latency_histograms": ["spawn_to_run_ns"],# keys of the record's "histograms"
    "thresholds": {"ns_per_goroutine": 0.05}  # optional: metric (or glob) -> allowed worsening
  }

The gates derive their metrics from these fields (gate.py).

Instead of "target", a workload may give "command": [argv...] (relative
paths resolved in its folder) -- used by tests for fake workloads; the
variant is then passed in the environment as RTLAB_VARIANT.

A server+client workload (netpoll_echo) adds:

    "driver": "//workloads/netpoll_echo:loadgen",   # what each cell runs
    "references": {"epoll": "//workloads/netpoll_echo:epoll_echo"}

The cell's own program (the rt binary of its variant, the Go twin, or a
reference) is then the server: the runner starts the driver with
--server=<that program> and the parameters, and the driver prints the
record. References are servers without a runtime (impl "native", variant =
their name); they run wherever Go twins do (--go). Command-style workloads
give "driver_command": [argv...] and {"name": [path]} references instead;
a driven server is always one executable.

Optional "targets" state what the default variant must achieve against a
Go twin or a reference, checked by `rtlab report` from the same run (one
table per parameter set):

    "targets": [
      {"metric": "round_trips_per_sec", "vs": "go", "at_least": 1.25,
       "where": {"connections": [16, 1000]}},
      {"metric": "round_trip_ns.p99", "vs": "go", "at_most": 1.0}
    ]

metric: a metric name of the records (the flattened form: `h.p99` for a
histogram); vs: "go" or a reference's name; exactly one of at_least /
at_most bounds median(default) / median(vs); where (optional): the
parameter values the target is stated for (other parameter sets are not
checked against it).
"""
import json
import os


class WorkloadError(ValueError):
    pass


class Workload:
    def __init__(self, folder, spec):
        self.folder = folder
        self.spec = spec
        self.name = spec["name"]
        self.description = spec.get("description", "")
        self.target = spec.get("target")
        self.command = spec.get("command")
        go = spec.get("go")
        self.go_dir = os.path.join(folder, go) if go else None
        self.params = spec.get("params", {})
        self.primary = spec.get("primary_metric")
        self.lower_is_better = spec.get("lower_is_better", True)
        self.histograms = spec.get("latency_histograms", [])
        self.thresholds = spec.get("thresholds", {})
        self.driver = spec.get("driver")
        self.driver_command = spec.get("driver_command")
        self.references = spec.get("references", {})
        self.targets = [Target(t) for t in spec.get("targets", [])]

    def has_go(self):
        return self.go_dir is not None and os.path.isfile(os.path.join(self.go_dir, "go.mod"))

    def resolve_params(self, overrides, smoke=False):
        """Parameter values: defaults (or smoke values), then overrides."""
        vals = {}
        for k, p in self.params.items():
            vals[k] = p.get("smoke", p.get("default")) if smoke else p.get("default")
        for k, v in overrides.items():
            if k not in self.params:
                raise WorkloadError(
                    f"workload {self.name}: unknown parameter '{k}' (known: {', '.join(self.params) or 'none'})")
            d = self.params[k].get("default")
            try:
                vals[k] = type(d)(v) if isinstance(d, (int, float)) and not isinstance(d, bool) else v
            except ValueError:
                raise WorkloadError(f"workload {self.name}: parameter {k}={v!r} is not a {type(d).__name__}")
        return vals

    def cxx_target(self, combo_name):
        return f"{self.target}__{combo_name}"

    def cxx_binary(self, bin_root, combo_name):
        return label_binary(bin_root, self.target, f"__{combo_name}")

    def has_driver(self):
        return bool(self.driver or self.driver_command)


class Target:
    """One registered target: median(default variant) / median(vs) on
    metric is at least (or at most) bound, at the parameter values of where."""

    def __init__(self, spec):
        self.spec = spec
        self.metric = spec["metric"]
        self.vs = spec["vs"]
        self.at_least = "at_least" in spec
        self.bound = spec["at_least"] if self.at_least else spec["at_most"]
        self.where = spec.get("where", {})

    def applies(self, params):
        """Whether a parameter set is one the target is stated for."""
        return all(params.get(k) in vs for k, vs in self.where.items())

    def met(self, ratio):
        return ratio >= self.bound if self.at_least else ratio <= self.bound

    def describe(self):
        return f"{self.metric}: default / {self.vs} {'>=' if self.at_least else '<='} {self.bound:g}"


def label_binary(bin_root, label, suffix=""):
    """Path of the binary Bazel builds for //pkg:name (plus suffix)."""
    pkg, name = label[2:].split(":")
    return os.path.join(bin_root, pkg, name + suffix)


def _is_label(x):
    return isinstance(x, str) and x.startswith("//") and ":" in x


def _validate(folder, spec):
    where = os.path.join(folder, "workload.json")
    if not isinstance(spec, dict):
        raise WorkloadError(f"{where}: not a JSON object")
    for key in ("name", "params", "primary_metric"):
        if key not in spec:
            raise WorkloadError(f"{where}: missing '{key}'")
    if spec["name"] != os.path.basename(folder):
        raise WorkloadError(f"{where}: name {spec['name']!r} differs from the folder name")
    if not spec.get("target") and not spec.get("command"):
        raise WorkloadError(f"{where}: needs 'target' (Bazel label) or 'command'")
    if spec.get("target") and not (spec["target"].startswith("//") and ":" in spec["target"]):
        raise WorkloadError(f"{where}: target must be a full label //pkg:name")
    for k, p in spec["params"].items():
        if not isinstance(p, dict) or "default" not in p:
            raise WorkloadError(f"{where}: parameter {k} needs a 'default'")
    if not isinstance(spec.get("lower_is_better", True), bool):
        raise WorkloadError(f"{where}: 'lower_is_better' must be true or false")
    hs = spec.get("latency_histograms", [])
    if not (isinstance(hs, list) and all(isinstance(h, str) for h in hs)):
        raise WorkloadError(f"{where}: 'latency_histograms' must be a list of histogram names")
    th = spec.get("thresholds", {})
    if not isinstance(th, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in th.values()):
        raise WorkloadError(f"{where}: 'thresholds' must map metric names (or globs) to fractions >= 0")
    if "driver" in spec and not _is_label(spec["driver"]):
        raise WorkloadError(f"{where}: driver must be a full label //pkg:name")
    if "driver_command" in spec and not (isinstance(spec["driver_command"], list) and spec["driver_command"]):
        raise WorkloadError(f"{where}: driver_command must be a non-empty argv list")
    refs = spec.get("references", {})
    if not isinstance(refs, dict):
        raise WorkloadError(f"{where}: references must be an object {{name: label}}")
    if refs and not (spec.get("driver") or spec.get("driver_command")):
        raise WorkloadError(f"{where}: references need a driver")
    for k, v in refs.items():
        if not (_is_label(v) or (isinstance(v, list) and v)):
            raise WorkloadError(f"{where}: reference {k} must be a full label //pkg:name or an argv list")
        if k in ("go", "all", "default"):
            raise WorkloadError(f"{where}: reference name {k!r} is reserved")
    _validate_targets(where, spec, refs)


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _validate_targets(where, spec, refs):
    targets = spec.get("targets", [])
    if not isinstance(targets, list):
        raise WorkloadError(f"{where}: targets must be a list of objects")
    for i, t in enumerate(targets):
        what = f"{where}: target {i + 1}"
        if not isinstance(t, dict):
            raise WorkloadError(f"{what}: not an object")
        unknown = sorted(set(t) - {"metric", "vs", "at_least", "at_most", "where"})
        if unknown:
            raise WorkloadError(f"{what}: unknown key {unknown[0]!r} (known: metric, vs, at_least, at_most, where)")
        if not isinstance(t.get("metric"), str) or not t["metric"]:
            raise WorkloadError(f"{what}: needs 'metric' (a metric name)")
        if t.get("vs") != "go" and t.get("vs") not in refs:
            raise WorkloadError(f"{what}: 'vs' must be \"go\" or a reference ({', '.join(refs) or 'none'}), "
                                f"not {t.get('vs')!r}")
        bounds = [k for k in ("at_least", "at_most") if k in t]
        if len(bounds) != 1 or not _number(t[bounds[0]]) or t[bounds[0]] <= 0:
            raise WorkloadError(f"{what}: needs exactly one of 'at_least' and 'at_most', a number > 0")
        w = t.get("where", {})
        if not isinstance(w, dict):
            raise WorkloadError(f"{what}: 'where' must map parameter names to lists of values")
        for k, vs in w.items():
            if k not in spec["params"]:
                raise WorkloadError(f"{what}: 'where' names unknown parameter {k!r}")
            if not isinstance(vs, list) or not vs:
                raise WorkloadError(f"{what}: 'where' value of {k} must be a non-empty list")


def discover(workloads_dir):
    """{name: Workload} for every <dir>/<name>/workload.json."""
    out = {}
    if not os.path.isdir(workloads_dir):
        return out
    for name in sorted(os.listdir(workloads_dir)):
        folder = os.path.join(workloads_dir, name)
        path = os.path.join(folder, "workload.json")
        if not os.path.isfile(path):
            continue
        try:
            with open(path) as f:
                spec = json.load(f)
        except ValueError as e:
            raise WorkloadError(f"{path}: malformed JSON: {e}")
        _validate(folder, spec)
        out[name] = Workload(folder, spec)
    return out

"""The report generator (reports/): trends with change points across commits,
deterministic PNG names, the newest commit per workload in its sections;
reference servers (impl native) beside rt and Go in every table and plot;
registered targets checked from the same runs."""
import json
import os
import random
import unittest
from unittest import mock

import util
from rtlab import db as dbmod
from rtlab import gate, schema, variants, workloads
from reports import report, trends

COMMITS = [c * 40 for c in "abcde"]


def record(value, lat):
    return {"schema": "rtlab.run", "schema_version": 1, "workload": "w", "impl": "rt", "variant": "perp_coop_radix",
            "gomaxprocs": 1, "params": {"n": 1}, "ops": 10, "wall_ns": 1000, "metrics": {"ns_per_op": value},
            "histograms": {"lat_ns": {"count": 1, "min": lat, "max": lat, "p50": lat, "p90": lat, "p99": lat,
                                      "p999": lat, "buckets": [[lat, lat, 1]]}},
            "counters": {}, "runtime": {"sched": None, "stw_pause_ns": None, "gc": None, "memstats": None}}


def fill(path, levels, reps=8, seed=1):
    """One commit per level; ns_per_op around the level with 2% noise."""
    rng = random.Random(seed)
    db = dbmod.Database(path)
    for i, (commit, level) in enumerate(zip(COMMITS, levels)):
        env = dict(hostname="h", kernel="k", cpu_model="c", cores=2, governor=None, git_commit=commit, git_dirty=0,
                   compiler="g++", go_version="go1.19", python="3")
        for k in range(reps):
            rec = record(level * rng.gauss(1, 0.02), int(500 * rng.gauss(1, 0.02)))
            db.add_run(uuid=f"{i}-{k}", session=str(i), cell=("w", "rt", "perp_coop_radix", 1, {"n": 1}), env=env,
                       rep=k, warmup=False, status="ok", error=None, started_at=f"2026-01-0{i + 1}T00:00:{k:02d}Z",
                       duration_s=0.1, record=rec, metrics=schema.flatten(rec), counters={})
    return db


def server_record(impl, variant, ops_per_s, p99):
    rec = record(0, p99)
    rec.update(workload="srv", impl=impl, variant=variant, metrics={"ops_per_s": ops_per_s})
    rec["histograms"]["lat_ns"].update(p99=p99, max=p99, buckets=[[p99, p99, 1]])
    return rec


SERVER_SPEC = {
    "name": "srv", "description": "fake server", "command": ["./server.sh"], "driver_command": ["./driver"],
    "references": {"ref": ["./ref.sh"]}, "params": {"n": {"default": 1}},
    "primary_metric": "ops_per_s", "lower_is_better": False, "latency_histograms": ["lat_ns"],
    "targets": [
        {"metric": "ops_per_s", "vs": "go", "at_least": 1.25},
        {"metric": "ops_per_s", "vs": "ref", "at_least": 0.9, "where": {"n": [1, 1000]}},
        {"metric": "lat_ns.p99", "vs": "go", "at_most": 1.0},
        {"metric": "ops_per_s", "vs": "go", "at_least": 2, "where": {"n": [16]}},
    ]}


def server_workloads(spec=SERVER_SPEC):
    d = util.tmpdir()
    os.makedirs(os.path.join(d, spec["name"]))
    with open(os.path.join(d, spec["name"], "workload.json"), "w") as f:
        json.dump(spec, f)
    return workloads.discover(d)


class ReferenceServers(unittest.TestCase):
    """A server workload measured as rt (default variant), Go and a native
    reference: rt is 1.5x Go and 0.75x the reference on throughput, its p99
    equal to Go's within the noise."""

    @classmethod
    def setUpClass(cls):
        cls.matrix = variants.load_matrix(util.ROOT)
        dflt = cls.matrix.name(cls.matrix.default())
        rng = random.Random(3)
        d = util.tmpdir()
        db = dbmod.Database(os.path.join(d, "s.db"))
        env = dict(hostname="h", kernel="k", cpu_model="c", cores=2, governor=None, git_commit="f" * 40,
                   git_dirty=0, compiler="g++", go_version="go1.19", python="3")
        for impl, variant, ops in (("rt", dflt, 150000), ("go", "go", 100000), ("native", "ref", 200000)):
            for p in (1, 2):
                for k in range(8):
                    rec = server_record(impl, variant, ops * rng.gauss(1, 0.01), int(300000 * rng.gauss(1, 0.03)))
                    db.add_run(uuid=f"{impl}-{p}-{k}", session="s", cell=("srv", impl, variant, p, {"n": 1}),
                               env=env, rep=k, warmup=False, status="ok", error=None,
                               started_at=f"2026-01-01T00:{p:02d}:{k:02d}Z", duration_s=0.1, record=rec,
                               metrics=schema.flatten(rec), counters={})
        cls.legends = {}
        real_save = report.Report.save

        def save(rep, fig, name, alt):
            cls.legends[name] = sorted({t.get_text() for a in fig.axes if a.get_legend()
                                        for t in a.get_legend().get_texts()})
            real_save(rep, fig, name, alt)

        with mock.patch.object(report.Report, "save", save):
            out = report.generate(db, os.path.join(d, "r"), matrix=cls.matrix, workloads=server_workloads())
        db.close()
        with open(out["markdown"]) as f:
            cls.md = f.read()
        cls.dflt = dflt

    def test_every_plot_shows_the_reference(self):
        self.assertEqual(set(self.legends), {"srv_overview.png", "srv_lat_ns_dist.png"})
        for name, labels in self.legends.items():
            self.assertEqual(labels, sorted([self.dflt, "go", "ref (native)"]), name)

    def test_ratio_tables_have_the_reference_and_ratios_to_it(self):
        self.assertIn(f"| GOMAXPROCS | variant | n | median | 95% CI | vs {self.dflt} | p | vs go | p "
                      "| vs ref (native) | p |", self.md)
        # the reference's own row (n = 8) and rt's ratio to it, 150K / 200K
        self.assertRegex(self.md, r"\| 1 \| \*\*ref \(native\)\*\* \(\*\*best\*\*\) \| 8 \|")
        self.assertRegex(self.md, rf"\| 2 \| {self.dflt} \| 8 \| [^|]+ \| [^|]+ \| — \| — \| 1\.[45]\dx [^|]+ \| "
                                  r"[^|]+ significant \| 0\.7[45]x \[")

    def test_targets_checked_from_the_same_runs(self):
        rows = [line for line in self.md.splitlines()
                if line.startswith("| ") and (" / go |" in line or " / ref (native) |" in line)]
        self.assertRegex(self.md, rf"\| 1 \| ops_per_s \| {self.dflt} / go \| ≥ 1.25 \| 1\.5\dx \| \[1\.[45]\d, "
                                  r"1\.5\d\] \| met \|")
        self.assertRegex(self.md, rf"\| 2 \| ops_per_s \| {self.dflt} / ref \(native\) \| ≥ 0.9 \| 0\.7[45]x \| "
                                  r"[^|]+ \| \*\*not met\*\* \|")
        # equal p99s: the CI straddles the bound of 1, and the verdict says so
        self.assertRegex(self.md, rf"\| 1 \| lat_ns.p99 \| {self.dflt} / go \| ≤ 1 \| [01]\.\d\dx \| "
                                  r"\[0\.\d\d, 1\.\d\d\] \| (met|\*\*not met\*\*) \(the CI includes the bound\) \|")
        self.assertIn("is stated for n in {16}; not checked for this parameter set.", self.md)
        self.assertEqual(len(rows), 6)  # three applicable targets x two GOMAXPROCS values

    def test_pause_rows_say_a_reference_has_no_runtime(self):
        self.assertRegex(self.md, r"\| 1 \| ref \(native\) \| n/a \(no runtime\) \|")

    def test_target_validation(self):
        for change, msg in (({"vs": "nope"}, "'vs' must be \"go\" or a reference (ref), not 'nope'"),
                            ({"at_most": 1}, "needs exactly one of 'at_least' and 'at_most'"),
                            ({"at_least": -1}, "needs exactly one of 'at_least' and 'at_most'"),
                            ({"where": {"zz": [1]}}, "'where' names unknown parameter 'zz'"),
                            ({"where": {"n": 1}}, "'where' value of n must be a non-empty list"),
                            ({"bound": 1}, "unknown key 'bound'")):
            spec = json.loads(json.dumps(SERVER_SPEC))
            spec["targets"][0].update(change)
            with self.assertRaises(workloads.WorkloadError) as e:
                server_workloads(spec)
            self.assertIn(f"target 1: {msg}", str(e.exception))


class Trends(unittest.TestCase):
    def test_change_points(self):
        flat = [[100 + d for d in (-1, 0, 1, 2)] for _ in range(5)]
        self.assertEqual(trends.change_points(flat, 0.05), [])
        step = flat[:2] + [[130 + d for d in (-1, 0, 1, 2)] for _ in range(3)]
        self.assertEqual(trends.change_points(step, 0.05), [2])
        stairs = [[base + d for d in (-1, 0, 1, 2)] for base in (100, 100, 130, 130, 170, 170)]
        self.assertEqual(trends.change_points(stairs, 0.05), [2, 4])
        # a 3% step is under the 5% threshold: no change point however significant
        small = flat[:2] + [[103 + d / 10 for d in (-1, 0, 1, 2)] for _ in range(3)]
        self.assertEqual(trends.change_points(small, 0.05), [])

    def test_report_of_several_commits(self):
        d = util.tmpdir()
        db = fill(os.path.join(d, "t.db"), [1000, 1000, 1300, 1300, 1300])
        wdir = util.make_fake_workloads(util.tmpdir(), ["w"])
        ws = workloads.discover(wdir)
        m = variants.load_matrix(util.ROOT)
        names = []
        for out in (os.path.join(d, "r1"), os.path.join(d, "r2")):
            r = report.generate(db, out, matrix=m, workloads=ws)
            names.append(sorted(r["pngs"]))
        db.close()
        self.assertEqual(names[0], names[1])  # deterministic names
        self.assertIn("w_trend_ns_per_op.png", names[0])
        self.assertIn("w_trend_lat_ns_p99.png", names[0])
        with open(os.path.join(d, "r1", "report.md")) as f:
            md = f.read()
        self.assertIn("of 5 commits", md)
        # the step, at its first commit, and no other change point
        self.assertRegex(md, rf"\| perp_coop_radix P=1 \| {COMMITS[2][:12]}: 1(\.\d+)? µs -> 1\.\d+ µs \(1\.\d+x\) \|")
        # the ratio table reports the newest commit only: n = 8 repetitions, not 40
        self.assertRegex(md, r"\| 1 \| perp_coop_radix \| 8 \| 1\.[23]\d* µs \|")

    def test_gated_metrics_of_registered_workloads(self):
        ws = workloads.discover(os.path.join(util.ROOT, "workloads"))
        for w in ws.values():
            names = [g.name for g in gate.gated_metrics(w)]
            self.assertEqual(names[0], w.primary)
            for h in w.histograms:
                self.assertIn(f"{h}.p99", names)


if __name__ == "__main__":
    unittest.main()

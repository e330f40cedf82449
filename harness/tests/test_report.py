"""The report generator (reports/): trends with change points across commits,
deterministic PNG names, the newest commit per workload in its sections."""
import os
import random
import unittest

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

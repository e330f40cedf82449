"""GC pauses in the gates and the report: rt cells are gated on their
max and p99 GC pause once the records carry them (rtlab check, the compare
engine's per-cell metrics), runs without a collection have no pause
figure, and the report draws the pause distributions."""
import json
import os
import unittest

import util
from rtlab import compare, gate, runner, schema, workloads as wlmod


class Flatten(unittest.TestCase):
    def test_no_collection_no_pause_figure(self):
        gc = {"cycles": 0, "forced_cycles": 0, "max_pause_ns": 0, "pause_total_ns": 0, "cpu_fraction": 0.0,
              "pause_ns": {"count": 0, "p50": 0, "p99": 0, "max": 0}}
        f = schema.flatten({"runtime": {"gc": gc}})
        self.assertEqual(f["gc.cycles"], 0.0)
        self.assertNotIn("gc.max_pause_ns", f)
        self.assertNotIn("gc.pause_ns.p99", f)
        gc.update(cycles=2, max_pause_ns=900, pause_ns={"count": 2, "p50": 500, "p99": 900, "max": 900})
        f = schema.flatten({"runtime": {"gc": gc}})
        self.assertEqual((f["gc.max_pause_ns"], f["gc.pause_ns.p99"], f["gc.cpu_fraction"]), (900.0, 900.0, 0.0))


class Gates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wdir = util.make_fake_workloads(util.tmpdir(), ("gc",))

    def rtlab(self, *args, env=None):
        return util.rtlab("--workloads-dir", self.wdir, *args, env=env)

    def run_db(self, scale):
        db = os.path.join(util.tmpdir(), "r.db")
        r = self.rtlab("run", "--workload", "gc", "--variant", "default", "--gomaxprocs", "1", "--reps", "3",
                       "--warmup", "0", "--db", db, env={"RTLAB_FAKE_GC_SCALE": str(scale)})
        self.assertEqual(r.returncode, 0, r.stderr)
        return db

    def test_check_gates_max_and_p99_pause(self):
        base = self.run_db(1)
        bl = os.path.join(util.tmpdir(), "b.json")
        r = self.rtlab("baseline", "--db", base, "--out", bl)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.rtlab("check", "--baseline", bl, "--db", self.run_db(1))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"gc\.max_pause_ns .* ok")
        r = self.rtlab("check", "--baseline", bl, "--db", self.run_db(2))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for m in ("gc.max_pause_ns", "gc.pause_ns.p99"):
            self.assertRegex(r.stdout, rf"{m.replace('.', '[.]')} .*REGRESSION")

    def test_compare_judges_pauses_of_rt_cells(self):
        w = wlmod.discover(self.wdir)["gc"]
        gms = gate.gated_metrics(w, "rt")
        self.assertEqual([g.name for g in gms][-2:], ["gc.max_pause_ns", "gc.pause_ns.p99"])
        self.assertNotIn("gc.max_pause_ns", [g.name for g in gate.gated_metrics(w, "go")])
        cell = runner.Cell(w, "rt", "perp_signal_radix", 1, {"n": 10})
        res = compare.CellResult({"base": cell, "head": cell}, gms)
        for side, scale in (("base", 1.0), ("head", 2.0)):
            for k in range(12):
                res.add(side, {"metrics": {"ns_per_op": 1000.0 + k}, "histograms": {}, "runtime": {"gc": {
                    "cycles": 3, "max_pause_ns": 30000 * scale + k, "pause_ns": {"p99": 30000 * scale + k}}}})
        res.pairs = 12
        self.assertIn("gc.max_pause_ns", [g.name for g in res.measured()])
        verdicts = {r.metric: r.verdict for r in res.evaluate({}, alpha=0.01)}
        self.assertEqual(verdicts["gc.max_pause_ns"], "regression")
        self.assertEqual(verdicts["gc.pause_ns.p99"], "regression")
        self.assertEqual(verdicts["ns_per_op"], "same")

    def test_report_draws_pause_distribution(self):
        out = util.tmpdir()
        r = self.rtlab("report", "--db", self.run_db(1), "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("gc_gc_pause_dist.png", os.listdir(out))
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        self.assertIn("### GC pause distribution", md)
        self.assertRegex(md, r"\| 1 \| perp_\w+ \| 5 \| (29|30)(\.\d)? µs \| (49|50)(\.\d)? µs \| (49|50)(\.\d)? µs \| n/a \|")


if __name__ == "__main__":
    unittest.main()

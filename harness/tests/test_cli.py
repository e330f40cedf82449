"""CLI error paths and the matrix machinery, with fake workloads (no build)."""
import json
import os
import sqlite3
import unittest

import util
from rtlab import variants


class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wdir = util.make_fake_workloads(util.tmpdir())

    def run_(self, *args, env=None):
        return util.rtlab("--workloads-dir", self.wdir, *args, env=env)

    def db(self):
        return os.path.join(util.tmpdir(), "r.db")

    def test_list(self):
        r = self.run_("list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        d = json.loads(r.stdout)
        axes = variants.load_matrix(util.ROOT).axes
        self.assertEqual([a["axis"] for a in d["axes"]], [a for a, _, _ in axes])
        self.assertIn("good", d["workloads"])
        self.assertEqual(d["workloads"]["good"]["params"]["n"]["default"], 10)
        self.assertEqual(d["workloads"]["good"]["gated_metrics"]["ns_per_op"],
                         {"lower_is_better": True, "threshold": 0.05})

    def test_unknown_names(self):
        for args, msg in ((["--workload", "nope"], "unknown workload 'nope'"),
                          (["--variant", "runq=nope"], "unknown variant 'nope'"),
                          (["--variant", "bogus=x"], "unknown axis 'bogus'"),
                          (["--variant", "nonsense_combo"], "unknown variant 'nonsense_combo'"),
                          (["--param", "zz=1", "--workload", "good"], "unknown parameter 'zz'"),
                          (["--gomaxprocs", "0"], "--gomaxprocs")):
            db = self.db()
            r = self.run_("run", *args, "--db", db)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(msg, r.stderr, args)
            self.assertFalse(os.path.exists(db), args)

    def test_malformed_shard(self):
        for s in ("x", "3/2", "0/2", "1/0", "1-2", "1/2/3"):
            r = self.run_("run", "--workload", "good", "--shard", s, "--db", self.db())
            self.assertEqual(r.returncode, 2, s)
            self.assertIn("--shard", r.stderr, s)

    def test_variant_spec(self):
        m = variants.load_matrix(util.ROOT)
        self.assertEqual(m.parse("all"), m.all())
        self.assertEqual(m.parse("default"), [m.default()])
        a0, vs0, _ = m.axes[0]
        got = m.parse(f"{a0}={vs0[0]}")
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0][0], vs0[0])
        self.assertEqual(got[0][1:], m.default()[1:])  # unnamed axes default
        self.assertEqual(len(m.parse(f"{a0}=*")), len(vs0))
        # a hypothetical third axis is picked up without code changes
        m3 = variants.Matrix(m.axes + [("pagealloc", ["treap", "radix"], "radix")])
        self.assertEqual(len(m3.all()), 2 * len(m.all()))
        self.assertEqual(m3.parse(f"{a0}={vs0[0]}")[0][-1], "radix")
        self.assertEqual(m3.name(m3.default()).split("_")[-1], "radix")

    def test_failures_recorded_rest_continues(self):
        db = self.db()
        r = self.run_("run", "--workload", "good,crash,hang,badjson,badrecord", "--variant", "default",
                      "--gomaxprocs", "1", "--reps", "1", "--warmup", "0", "--timeout", "2", "--db", db)
        self.assertEqual(r.returncode, 1, r.stderr)
        for name, status in (("crash", "crashed"), ("hang", "timeout"), ("badjson", "bad_json"),
                             ("badrecord", "bad_record")):
            self.assertRegex(r.stderr, rf"FAILED {name}\[.*GOMAXPROCS=1.*\].*{status}")
        self.assertIn("exited with status 3: fake: boom", r.stderr)
        con = sqlite3.connect(db)
        rows = dict(con.execute("SELECT c.workload, r.status FROM runs r JOIN cells c USING (cell_id)"))
        con.close()
        self.assertEqual(rows, {"good": "ok", "crash": "crashed", "hang": "timeout", "badjson": "bad_json",
                                "badrecord": "bad_record"})

    def test_driven_workload_runs_each_server_under_its_driver(self):
        wdir = util.make_fake_driven(util.tmpdir())
        db = self.db()
        r = util.rtlab("--workloads-dir", wdir, "run", "--workload", "driven", "--variant", "default", "--go",
                       "--gomaxprocs", "1", "--reps", "1", "--warmup", "0", "--db", db)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no Go twin", r.stderr)
        con = sqlite3.connect(db)
        rows = con.execute("SELECT c.impl, c.variant, r.status, r.command, r.record_json FROM runs r "
                           "JOIN cells c USING (cell_id) ORDER BY c.impl").fetchall()
        con.close()
        self.assertEqual([(i, s) for i, _, s, _, _ in rows], [("native", "ok"), ("rt", "ok")])
        for impl, variant, _, cmd, rec in rows:
            self.assertIn("fake_driver.py --server=", cmd)
            self.assertIn("ref.sh" if impl == "native" else "server.sh", cmd)
            self.assertEqual((json.loads(rec)["impl"], json.loads(rec)["variant"]), (impl, variant))
        bad = os.path.join(wdir, "driven", "workload.json")
        with open(bad) as f:
            spec = json.load(f)
        spec["references"] = {"go": ["./ref.sh"]}
        with open(bad, "w") as f:
            json.dump(spec, f)
        r = util.rtlab("--workloads-dir", wdir, "list")
        self.assertEqual(r.returncode, 2)
        self.assertIn("reference name 'go' is reserved", r.stderr)

    def test_shards_merge_to_whole_matrix(self):
        d = util.tmpdir()
        whole = os.path.join(d, "whole.db")
        common = ["run", "--workload", "good", "--variant", "all", "--gomaxprocs", "1,2", "--reps", "1",
                  "--warmup", "0"]
        self.assertEqual(self.run_(*common, "--db", whole).returncode, 0)
        parts = []
        for i in (1, 2, 3):
            p = os.path.join(d, f"s{i}.db")
            r = self.run_(*common, "--shard", f"{i}/3", "--db", p)
            self.assertEqual(r.returncode, 0, r.stderr)
            if os.path.exists(p):
                parts.append(p)
        merged = os.path.join(d, "merged.db")
        self.assertEqual(util.rtlab("merge", merged, *parts).returncode, 0)

        def cells(p):
            con = sqlite3.connect(p)
            out = sorted(con.execute("SELECT workload, variant, gomaxprocs FROM cells c JOIN runs USING (cell_id)"))
            con.close()
            return out
        self.assertEqual(cells(merged), cells(whole))
        self.assertEqual(len(cells(whole)), 2 * len(variants.load_matrix(util.ROOT).all()))

    def test_check_and_baseline(self):
        d = util.tmpdir()
        old, new, same = (os.path.join(d, n) for n in ("old.db", "new.db", "same.db"))
        common = ["run", "--workload", "good", "--variant", "default", "--gomaxprocs", "1", "--reps", "3",
                  "--warmup", "0"]
        self.assertEqual(self.run_(*common, "--db", old).returncode, 0)
        self.assertEqual(self.run_(*common, "--db", same).returncode, 0)
        self.assertEqual(self.run_(*common, "--db", new, env={"RTLAB_FAKE_SCALE": "1.5"}).returncode, 0)
        base = os.path.join(d, "base.json")
        r = util.rtlab("baseline", "--db", old, "--out", base)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = util.rtlab("check", "--baseline", base, "--db", same)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("0 regressions", r.stdout)
        r = util.rtlab("check", "--baseline", base, "--db", new)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("REGRESSION", r.stdout)
        for col in ("metric", "old", "new", "ratio", "verdict", "lat_ns.p50", "lat_ns.p99"):
            self.assertIn(col, r.stdout)
        # A threshold above the change: no regression.
        r = util.rtlab("check", "--baseline", base, "--db", new, "--threshold", "*.p50=0.9",
                       "--threshold", "*.p99=0.9")
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_check_noise_guards(self):
        from rtlab import check
        base = {"cells": {"c": {"x.p50": [100, 200, 150]}}}

        class FakeDb:
            def __init__(self, vals):
                self.vals = vals

            def runs(self):
                return [{"run_id": i, "workload": "c", "variant": "", "gomaxprocs": 0, "params_json": ""}
                        for i in range(len(self.vals))]

            def metrics_by_run(self):
                return {i: {"x.p50": v} for i, v in enumerate(self.vals)}
        orig = check.cell_key
        check.cell_key = lambda row: "c"
        try:
            rows = check.compare(base, FakeDb([180, 200, 190]), check.DEFAULT_THRESHOLDS)
            self.assertEqual(rows[0][-1], "within noise")  # +27% but noise is 67%
            rows = check.compare({"cells": {"c": {"x.p50": [100]}}}, FakeDb([300]), check.DEFAULT_THRESHOLDS)
            self.assertTrue(rows[0][-1].startswith("no noise estimate"))
            rows = check.compare({"cells": {"c": {"x.p50": [100, 101]}}}, FakeDb([150, 151]),
                                 check.DEFAULT_THRESHOLDS)
            self.assertEqual(rows[0][-1], "REGRESSION")
        finally:
            check.cell_key = orig


if __name__ == "__main__":
    unittest.main()

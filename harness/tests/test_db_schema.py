import os
import sqlite3
import unittest

import util
from rtlab import db as dbmod
from rtlab import schema

ENV = {"hostname": "h", "kernel": "k", "cpu_model": "c", "cores": 2, "governor": None, "git_commit": "abc",
       "git_dirty": 0, "compiler": "g++", "go_version": "go1.19", "python": "3"}


def record(**over):
    r = {"schema": "rtlab.run", "schema_version": 1, "workload": "w", "impl": "rt", "variant": "perp_coop",
         "gomaxprocs": 1, "params": {"n": 1}, "ops": 10, "wall_ns": 1000, "metrics": {"ns_per_op": 100.0},
         "histograms": {"lat_ns": {"count": 3, "min": 1, "max": 9, "p50": 2, "p90": 9, "p99": 9, "p999": 9,
                                   "buckets": [[1, 1, 1], [2, 2, 1], [9, 9, 1]]}},
         "counters": {"cycles": "unsupported", "page-faults": 3},
         "runtime": {"sched": {"ctxswitches": 5}, "stw_pause_ns": None, "gc": None, "memstats": None}}
    r.update(over)
    return r


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def add(db, uuid, variant="perp_coop", value=100.0):
    rec = record(variant=variant, metrics={"ns_per_op": value})
    db.add_run(uuid=uuid, session="s", cell=("w", "rt", variant, 1, {"n": 1}), env=ENV, rep=0, warmup=False,
               status="ok", error=None, started_at="t", duration_s=0.1, record=rec, metrics=schema.flatten(rec),
               counters=rec["counters"])


class Schema(unittest.TestCase):
    def test_valid(self):
        self.assertEqual(schema.validate(record()), [])

    def test_invalid(self):
        self.assertTrue(schema.validate([]))
        errs = schema.validate(record(schema_version=2))
        self.assertTrue(any("schema_version" in e for e in errs))
        r = record()
        del r["ops"]
        self.assertTrue(any("ops" in e for e in schema.validate(r)))
        r = record(counters={"cycles": "n/a"})
        self.assertTrue(any("counters.cycles" in e for e in schema.validate(r)))
        r = record()
        r["histograms"]["lat_ns"]["count"] = 4
        self.assertTrue(any("sum to 3" in e for e in schema.validate(r)))
        r = record()
        del r["runtime"]["gc"]
        self.assertTrue(any("gc" in e for e in schema.validate(r)))

    def test_flatten(self):
        f = schema.flatten(record())
        self.assertEqual(f["ns_per_op"], 100.0)
        self.assertEqual(f["lat_ns.p99"], 9.0)
        self.assertEqual(f["sched.ctxswitches"], 5.0)
        self.assertNotIn("gc.max_pause_ns", f)
        pauses = dict(record()["histograms"]["lat_ns"], p99=700)
        r = record(runtime={"sched": None, "stw_pause_ns": None, "memstats": None,
                            "gc": {"cycles": 3, "max_pause_ns": 900, "pause_total_ns": 1500, "pause_ns": pauses}})
        f = schema.flatten(r)
        self.assertEqual((f["gc.max_pause_ns"], f["gc.pause_ns.p99"]), (900.0, 700.0))  # both gated
        self.assertNotIn("stw_stopping_ns.max", f)  # records from before the field stay valid
        self.assertEqual(schema.validate(r), [])

    def test_stopping_histogram(self):
        stopping = dict(record()["histograms"]["lat_ns"])
        r = record(runtime={"sched": None, "stw_pause_ns": None, "memstats": None, "gc": None,
                            "stw_stopping_ns": stopping})
        self.assertEqual(schema.validate(r), [])
        self.assertEqual(schema.flatten(r)["stw_stopping_ns.p99"], 9.0)
        r["runtime"]["stw_stopping_ns"] = dict(stopping, count=4)
        self.assertTrue(any("runtime.stw_stopping_ns" in e for e in schema.validate(r)))


class Database(unittest.TestCase):
    def setUp(self):
        self.d = util.tmpdir()

    def test_schema(self):
        p = os.path.join(self.d, "a.db")
        db = dbmod.Database(p)
        add(db, "u1")
        db.close()
        con = sqlite3.connect(p)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        self.assertTrue({"rtlab_schema", "runs", "cells", "metrics", "counters", "environment"} <= tables)
        self.assertEqual(con.execute("SELECT app, version FROM rtlab_schema").fetchone(), ("rtlab", 3))
        self.assertEqual(con.execute("SELECT value, supported FROM counters WHERE name='cycles'").fetchone(),
                         (None, 0))
        self.assertEqual(con.execute("SELECT value FROM counters WHERE name='page-faults'").fetchone(), (3.0,))
        con.close()
        db = dbmod.Database(p, create=False)  # reopens
        self.assertEqual(len(db.runs()), 1)
        db.close()

    def test_version1_file_gains_side_column(self):
        p = os.path.join(self.d, "v1.db")
        db = dbmod.Database(p)
        add(db, "u1")
        db.close()
        con = sqlite3.connect(p)
        con.execute("ALTER TABLE runs DROP COLUMN side")  # what a version 1 file looks like
        con.execute("UPDATE rtlab_schema SET version=1")
        con.commit()
        con.close()
        ro = dbmod.Database(p, create=False, readonly=True)
        self.assertEqual([r["side"] for r in ro.runs()], [None])
        ro.close()
        db = dbmod.Database(p, create=False)
        self.assertEqual([r["uuid"] for r in db.runs()], ["u1"])  # nothing lost
        db.close()
        con = sqlite3.connect(p)
        self.assertEqual(con.execute("SELECT version FROM rtlab_schema").fetchone(), (3,))
        self.assertIn("side", [r[1] for r in con.execute("PRAGMA table_info(runs)")])
        con.close()

    def test_merge_shards(self):
        a, b, out = (os.path.join(self.d, n) for n in ("a.db", "b.db", "out.db"))
        da, dbb = dbmod.Database(a), dbmod.Database(b)
        add(da, "u1", "global_coop", 1)
        add(da, "u2", "global_coop", 2)
        add(dbb, "u3", "perp_coop", 3)
        da.close()
        dbb.close()
        r = util.rtlab("merge", out, a, b)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = util.rtlab("merge", out, b)  # again: nothing new
        self.assertIn("0 runs added, 1 already present", r.stdout)
        m = dbmod.Database(out, create=False)
        runs = m.runs()
        self.assertEqual(sorted(x["uuid"] for x in runs), ["u1", "u2", "u3"])
        self.assertEqual(sorted({x["variant"] for x in runs}), ["global_coop", "perp_coop"])
        self.assertEqual(len(m.environments()), 1)
        by_run = m.metrics_by_run()
        self.assertEqual(sorted(by_run[x["run_id"]]["ns_per_op"] for x in runs), [1, 2, 3])
        m.close()

    def _refused(self, path, how):
        before = _read(path)
        mtime = os.stat(path).st_mtime_ns
        with self.assertRaises(dbmod.DatabaseError) as cm:
            dbmod.Database(path)
        self.assertIn("refusing", str(cm.exception))
        for args in (["run", "--workload", "good", "--db", path], ["report", "--db", path],
                     ["merge", path, path + ".other"]):
            if args[0] == "run":
                args = ["--workloads-dir", util.make_fake_workloads(util.tmpdir(), ["good"])] + args
            r = util.rtlab(*args)
            self.assertEqual(r.returncode, 2, (how, args, r.stdout, r.stderr))
            self.assertIn("refusing", r.stderr, (how, args))
        self.assertEqual(_read(path), before, how)
        self.assertEqual(os.stat(path).st_mtime_ns, mtime, how)

    def test_corrupt_file_refused_untouched(self):
        p = os.path.join(self.d, "corrupt.db")
        with open(p, "wb") as f:
            f.write(b"this is not a database\n" * 100)
        self._refused(p, "text file")
        # A real rtlab database with its pages damaged.
        q = os.path.join(self.d, "damaged.db")
        db = dbmod.Database(q)
        for i in range(50):
            add(db, f"u{i}")
        db.close()
        data = bytearray(_read(q))
        for i in range(200, len(data), 7):
            data[i] = 0xFF
        with open(q, "wb") as f:
            f.write(bytes(data))
        self._refused(q, "damaged pages")

    def test_foreign_sqlite_refused_untouched(self):
        p = os.path.join(self.d, "foreign.db")
        con = sqlite3.connect(p)
        con.execute("CREATE TABLE runs (x)")
        con.commit()
        con.close()
        self._refused(p, "foreign sqlite")


if __name__ == "__main__":
    unittest.main()

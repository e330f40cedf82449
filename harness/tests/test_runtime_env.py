"""GOGC and GODEBUG as dimensions of the matrix: parsing and its error
messages, the environment each run gets, the cells and records stored, the
database migration that added them, submit's command line, the report."""
import json
import os
import sqlite3
import unittest

import util
from rtlab import check, cli, runner, slurm
from rtlab import db as dbmod

ONE = ["--variant", "default", "--gomaxprocs", "1", "--reps", "1", "--warmup", "0"]


class Parse(unittest.TestCase):
    def test_gogc(self):
        self.assertEqual(runner.parse_gogc(None), [None])
        self.assertEqual(runner.parse_gogc("200,off,50,050,0"), ["0", "50", "200", "off"])
        self.assertEqual(runner.parse_gogc(str(2 ** 31 - 1)), [str(2 ** 31 - 1)])
        for bad, msg in (("-1", "Go reads a negative GOGC as off; write off"),
                         ("Off", "'Off' is not a GOGC value"), ("1.5", "'1.5' is not a GOGC value"),
                         ("+5", "'+5' is not a GOGC value"), ("", "'' is not a GOGC value"),
                         ("50,,100", "'' is not a GOGC value"), (str(2 ** 31), "to 2147483647")):
            with self.assertRaises(runner.PlanError) as e:
                runner.parse_gogc(bad)
            self.assertIn(msg, str(e.exception), bad)

    def test_godebug(self):
        self.assertEqual(runner.parse_godebug([]), [None])
        # one setting per item, keys in order; an item given twice is one setting
        self.assertEqual(runner.parse_godebug(["gctrace=1,gcstoptheworld=1", "gcstoptheworld=1,gctrace=1",
                                               "gcstoptheworld=0"]),
                         ["gcstoptheworld=1,gctrace=1", "gcstoptheworld=0"])
        # keys neither Go's runtime nor rt knows pass through, with their string values
        self.assertEqual(runner.parse_godebug(["http2client=0,netdns=go+1,x509sha1=1"]),
                         ["http2client=0,netdns=go+1,x509sha1=1"])
        for bad, msg in (("gctrace", "'gctrace' is not KEY=VALUE"), ("", "(empty field)"),
                         ("gctrace=1,", "(empty field)"), ("=1", "'' is not a GODEBUG key"),
                         ("gc trace=1", "is not a GODEBUG key"), ("gctrace=", "want a value without spaces"),
                         ("a=b=c", "want a value without spaces"), ("gctrace=1,gctrace=2", "gctrace is given twice"),
                         ("gcstoptheworld=yes", "the runtime reads gcstoptheworld as an integer"),
                         ("stacksize=64k", "the runtime reads stacksize as an integer")):
            with self.assertRaises(runner.PlanError) as e:
                runner.parse_godebug([bad])
            self.assertIn(msg, str(e.exception), bad)


class Run(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wdir = util.make_fake_workloads(util.tmpdir(), ("good", "wrongenv"))

    def rtlab(self, *args, env=None):
        return util.rtlab("--workloads-dir", self.wdir, *args, env=env)

    def test_bad_values_exit_2_before_anything_runs(self):
        baseline = os.path.join(util.tmpdir(), "baseline.json")
        with open(baseline, "w") as f:
            json.dump({"schema": "rtlab.baseline", "schema_version": 1, "cells": {}}, f)
        for cmd in ("run", "submit", "compare", "check"):
            for args, msg in ((["--gogc", "-50"], "write off"), (["--godebug", "gctrace"], "is not KEY=VALUE")):
                d = util.tmpdir()
                extra = {"run": ["--db", os.path.join(d, "r.db")], "check": ["--baseline", baseline, "--smoke"],
                         "submit": ["--slurm", "--shards", "1", "--out", os.path.join(d, "s")],
                         "compare": ["--base", "HEAD", "--db", os.path.join(d, "c.db")]}[cmd]
                r = self.rtlab(cmd, "--workload", "good", *args, *extra)
                self.assertEqual(r.returncode, 2, (cmd, args, r.stderr))
                self.assertIn(msg, r.stderr, (cmd, args))
                self.assertEqual(os.listdir(d), [], (cmd, args))

    def test_matrix_environment_and_records(self):
        db = os.path.join(util.tmpdir(), "r.db")
        r = self.rtlab("run", "--workload", "good", *ONE, "--gogc", "off,50", "--godebug", "gctrace=1",
                       "--godebug", "gcstoptheworld=1,gctrace=1", "--db", db,
                       env={"GOGC": "77", "GODEBUG": "schedtrace=5"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("GOGC=77 in rtlab's environment is not passed to the runs; give --gogc 77", r.stderr)
        self.assertIn("GODEBUG=schedtrace=5 in rtlab's environment is not passed", r.stderr)
        d = dbmod.Database(db, create=False)
        runs = d.runs()
        d.close()
        got = sorted((x["gogc"], x["godebug"]) for x in runs)
        want = sorted((g, b) for g in ("50", "off") for b in ("gctrace=1", "gcstoptheworld=1,gctrace=1"))
        self.assertEqual(got, want)
        for x in runs:  # each program saw exactly its cell's settings, never rtlab's own
            rec = json.loads(x["record_json"])
            self.assertEqual((rec["gogc"], rec["godebug"]), (x["gogc"], x["godebug"]))
        # unset: the program sees neither variable, the cell stores ""
        db2 = os.path.join(util.tmpdir(), "r.db")
        r = self.rtlab("run", "--workload", "good", *ONE, "--db", db2, env={"GOGC": "77"})
        self.assertEqual(r.returncode, 0, r.stderr)
        d = dbmod.Database(db2, create=False)
        (x,) = d.runs()
        d.close()
        self.assertEqual((x["gogc"], x["godebug"]), ("", ""))
        self.assertEqual(json.loads(x["record_json"])["gogc"], None)

    def test_record_with_another_setting_is_refused(self):
        db = os.path.join(util.tmpdir(), "r.db")
        r = self.rtlab("run", "--workload", "wrongenv", *ONE, "--gogc", "100", "--db", db)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, r"FAILED wrongenv\[perp_\w+, GOMAXPROCS=1, GOGC=100, n=10\].*bad_record: "
                                   r"record says gogc='1', cell expects '100'")

    def test_report_draws_the_setting_sweep(self):
        db = os.path.join(util.tmpdir(), "r.db")
        r = self.rtlab("run", "--workload", "good", "--variant", "default", "--gomaxprocs", "1", "--reps", "2",
                       "--warmup", "0", "--gogc", "50,200", "--db", db)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = util.tmpdir()
        r = self.rtlab("report", "--db", db, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("good_settings.png", os.listdir(out))
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        self.assertIn("## Workload good (GOGC=50)", md)
        self.assertIn("## Workload good (GOGC=200)", md)
        self.assertLess(md.index("(GOGC=50)"), md.index("(GOGC=200)"))  # numeric order, not text order

    def test_submit_passes_the_dimensions_on(self):
        args = cli.parser().parse_args(["--workloads-dir", self.wdir, "submit", "--slurm", "--workload", "good",
                                        *ONE, "--gogc", "50,100", "--godebug", "gctrace=1", "--shards", "2",
                                        "--out", os.path.join(util.tmpdir(), "s")])
        _, _, cells = cli._plan(args)
        self.assertEqual(len(cells), 2)
        argv = slurm.run_argv(args, cells)
        self.assertEqual(argv[argv.index("--gogc") + 1], "50,100")
        self.assertEqual(argv[argv.index("--godebug") + 1], "gctrace=1")
        # the bundle's run plans the same cells from that command line
        again = cli.parser().parse_args(["--workloads-dir", self.wdir] + argv[3:])
        self.assertEqual([c.key() for c in cli._plan(again)[2]], [c.key() for c in cells])

    def test_baseline_keys_of_unset_cells_unchanged(self):
        row = {"workload": "w", "variant": "v", "gomaxprocs": 1, "params_json": "{}", "gogc": "", "godebug": ""}
        self.assertEqual(check.cell_key(row), "w|v|P1|{}")
        self.assertEqual(check.cell_key(dict(row, gogc="50")), "w|v|P1|{}|GOGC=50")


class Migration(unittest.TestCase):
    def test_version2_file(self):
        p = os.path.join(util.tmpdir(), "v2.db")
        con = sqlite3.connect(p)  # a version 2 file as rtlab wrote it before GOGC and GODEBUG
        con.executescript(dbmod.SCHEMA.replace(
            "  gogc TEXT NOT NULL DEFAULT '', godebug TEXT NOT NULL DEFAULT '',   -- '' when unset\n", "").replace(
            "params_json, gogc, godebug)", "params_json)"))
        con.execute("INSERT INTO rtlab_schema VALUES ('rtlab', 2, 't')")
        con.execute("INSERT INTO cells VALUES (7, 'w', 'rt', 'v', 1, '{}')")
        con.execute("INSERT INTO environment (env_id, fingerprint) VALUES (1, 'f')")
        con.execute("INSERT INTO runs (uuid, session, cell_id, env_id, rep, warmup, status, started_at)"
                    " VALUES ('u1', 's', 7, 1, 0, 0, 'ok', 't')")
        con.commit()
        con.close()
        ro = dbmod.Database(p, create=False, readonly=True)
        self.assertEqual([(r["cell_id"], r["gogc"], r["godebug"]) for r in ro.runs()], [(7, "", "")])
        self.assertEqual(ro.cell_keys(), {("w", "rt", "v", 1, "{}", "", "")})
        ro.close()
        db = dbmod.Database(p, create=False)
        self.assertEqual([(r["uuid"], r["cell_id"], r["gogc"]) for r in db.runs()], [("u1", 7, "")])
        # a cell that differs only by GOGC is a new cell
        self.assertEqual(db.cell_id("w", "rt", "v", 1, {}), 7)
        self.assertNotEqual(db.cell_id("w", "rt", "v", 1, {}, "50"), 7)
        db.con.commit()
        db.close()
        con = sqlite3.connect(p)
        self.assertEqual(con.execute("SELECT version FROM rtlab_schema").fetchone(), (3,))
        self.assertEqual(con.execute("PRAGMA foreign_key_check").fetchall(), [])
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone(), ("ok",))
        con.close()


if __name__ == "__main__":
    unittest.main()

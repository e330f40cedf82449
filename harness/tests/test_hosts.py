"""The mixed-CPU-model refusal: rtlab report (and hosts.check for any set of
databases) refuses cells measured on different CPU models, naming them,
unless --allow-mixed-hosts."""
import os
import shutil
import sqlite3
import unittest

import util
from rtlab import db as dbmod
from rtlab import hosts
from rtlab import variants


def template_db():
    """8 cells (4 variants x GOMAXPROCS 1,2) of the fake 'good' workload, 2 reps."""
    d = util.tmpdir()
    wdir = util.make_fake_workloads(os.path.join(d, "wl"), modes=("good",))
    path = os.path.join(d, "template.db")
    r = util.rtlab("--workloads-dir", wdir, "run", "--gomaxprocs", "1,2", "--reps", "2", "--warmup", "0",
                   "--db", path)
    assert r.returncode == 0, r.stderr
    return path


def move_runs(path, host, cpu, variant, gomaxprocs, limit=-1):
    """Re-labels runs of one cell as measured on another machine (a copy of
    their environment row with another host name and CPU model)."""
    con = sqlite3.connect(path)
    with con:
        e = con.execute("SELECT * FROM environment LIMIT 1").fetchone()
        cols = [c[1] for c in con.execute("PRAGMA table_info(environment)")]
        row = dict(zip(cols, e))
        row.update(env_id=None, hostname=host, cpu_model=cpu, fingerprint=f"{host}/{cpu}")
        con.execute(f"INSERT OR IGNORE INTO environment ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [row[c] for c in cols])
        eid = con.execute("SELECT env_id FROM environment WHERE fingerprint=?", (row["fingerprint"],)).fetchone()[0]
        con.execute("UPDATE runs SET env_id=? WHERE run_id IN (SELECT run_id FROM runs JOIN cells USING (cell_id)"
                    " WHERE variant=? AND gomaxprocs=? ORDER BY run_id LIMIT ?)", (eid, variant, gomaxprocs, limit))
    con.close()


class MixedHosts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = template_db()

    def fake_db(self, d, name="r.db"):
        return shutil.copy(self.template, os.path.join(d, name))

    def test_report_refuses_mixed_cpu_models_and_names_the_cells(self):
        d = util.tmpdir()
        path = self.fake_db(d)
        move_runs(path, "node7", "Other CPU 9000", "global_coop_treap", 2)
        move_runs(path, "node7", "Other CPU 9000", "perp_coop_treap", 1, limit=1)  # one of its 2 reps
        r = util.rtlab("report", "--db", path, "--out", os.path.join(d, "report"))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cells measured on 2 different CPU models", r.stderr)
        self.assertIn("'Other CPU 9000' (host node7): 2 cells: good[global_coop_treap, GOMAXPROCS=2, n=10], "
                      "good[perp_coop_treap, GOMAXPROCS=1, n=10]", r.stderr)
        self.assertIn("measured on several models: good[perp_coop_treap, GOMAXPROCS=1, n=10]", r.stderr)
        self.assertIn("--allow-mixed-hosts", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "report")))

        r = util.rtlab("report", "--db", path, "--out", os.path.join(d, "report"), "--allow-mixed-hosts")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("warning", r.stderr)
        self.assertIn("'Other CPU 9000'", r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(d, "report", "report.md")))

    def test_same_cpu_model_on_several_hosts_is_fine(self):
        d = util.tmpdir()
        path = self.fake_db(d)
        db = dbmod.Database(path, create=False)
        cpu = db.environments()[0]["cpu_model"]
        db.close()
        move_runs(path, "node8", cpu, "global_coop_treap", 2)
        db = dbmod.Database(path, create=False)
        try:
            self.assertEqual(len(db.environments()), 2)
            self.assertIsNone(hosts.check([db]))
        finally:
            db.close()

    def test_check_across_databases_names_each_database(self):
        d = util.tmpdir()
        a, b = self.fake_db(d, "a.db"), self.fake_db(d, "b.db")
        for v, p in (("global_coop_radix", 1), ("global_coop_radix", 2), ("global_coop_treap", 1),
                     ("global_coop_treap", 2), ("perp_coop_radix", 1)):
            move_runs(b, "node9", "Other CPU 9000", v, p)
        dbs = [dbmod.Database(a, create=False), dbmod.Database(b, create=False)]
        listed = hosts.LISTED
        hosts.LISTED = 2
        try:
            with self.assertRaises(hosts.MixedHostsError) as e:
                hosts.check(dbs)
            msg = str(e.exception)
            # The larger group (all of a's cells and the rest of b's) is not listed; the other one is, by database.
            self.assertIn(f"'Other CPU 9000' (host node9): 5 cells: {b}: good[global_coop_radix, GOMAXPROCS=1, n=10], "
                          f"{b}: good[global_coop_radix, GOMAXPROCS=2, n=10], and 3 more", msg)
            per_db = 2 * len(variants.load_matrix(util.ROOT).all())  # every combination at GOMAXPROCS 1 and 2
            self.assertIn(f"(host vm): {2 * per_db - 5} cells\n".replace("vm", dbs[0].environments()[0]["hostname"]), msg)
            self.assertEqual(hosts.check(dbs, allow=True), msg)
            self.assertIsNone(hosts.check(dbs[:1]))
        finally:
            hosts.LISTED = listed
            for x in dbs:
                x.close()

    def test_unknown_cpu_model_is_its_own_group(self):
        d = util.tmpdir()
        path = self.fake_db(d)
        move_runs(path, "node5", None, "perp_coop_radix", 1)
        db = dbmod.Database(path, create=False)
        try:
            msg = hosts.mixed_models([db])
        finally:
            db.close()
        self.assertIn(f"'{hosts.UNKNOWN}' (host node5): 1 cells: good[perp_coop_radix, GOMAXPROCS=1, n=10]", msg)


if __name__ == "__main__":
    unittest.main()

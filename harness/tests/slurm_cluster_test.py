"""rtlab submit --slurm / collect against a real one-node Slurm cluster
(local_slurm.py: munged, slurmctld and slurmd started here, on 127.0.0.1).

When the daemons cannot start (not installed, not root, refused) every test
is skipped and the reason is printed as a line starting with
"rtlab-test-skipped:", which scripts/test repeats in its summary. Whatever
happens, the module cleanup cancels the jobs and stops every daemon it
started.
"""
import os
import socket
import subprocess
import sys
import time
import unittest

import util
from local_slurm import LocalSlurm, Unavailable
from rtlab import db as dbmod

CLUSTER = LocalSlurm()
POLL = ["--poll", "0.3"]
SPAWN = ["--workload", "spawn", "--variant", "all", "--gomaxprocs", "1,2", "--reps", "1", "--warmup", "0",
         "--param", "goroutines=2000", "--param", "rounds=1", "--timeout", "60"]


def setUpModule():
    unittest.addModuleCleanup(CLUSTER.stop)
    try:
        CLUSTER.start()
    except Unavailable as e:
        reason = f"Slurm integration test not run: its daemons cannot start here: {e}"
        print("rtlab-test-skipped: " + reason.replace("\n", " | "), file=sys.stderr, flush=True)
        raise unittest.SkipTest(reason)


def measured(path):
    """{cell key: [status of each measured run]} and the environments of a database."""
    d = dbmod.Database(path, create=False, readonly=True)
    try:
        cells = {}
        for r in d.runs(status=None):
            key = (r["workload"], r["impl"], r["variant"], r["gomaxprocs"], r["params_json"])
            cells.setdefault(key, []).append(r["status"])
        return cells, d.environments()
    finally:
        d.close()


def submit(*args, env=None):
    return util.rtlab("submit", "--slurm", *args, env=env, timeout=120)


def collect(sub, *args, env=None):
    return util.rtlab("collect", sub, *POLL, *args, env=env, timeout=120)


class SlurmCluster(unittest.TestCase):
    def test_matrix_as_job_array_matches_local_run(self):
        d = util.tmpdir()
        sub = os.path.join(d, "sub")
        r = submit(*SPAWN, "--bin-dir", util.bin_dir(), "--shards", "3", "--out", sub)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        job = r.stdout.strip()
        self.assertTrue(job.isdigit(), r.stdout)
        self.assertIn(f"submitted job {job}: 3 array tasks over 16 cells", r.stderr)
        with open(os.path.join(sub, "job.sbatch")) as f:
            self.assertIn("#SBATCH --array=1-3", f.read())
        # The bundle holds its own binaries and harness: nothing points back into the checkout.
        self.assertTrue(os.path.isfile(os.path.join(sub, "bundle", "bin", "workloads", "spawn",
                                                    "spawn__perp_signal_radix")))
        r = collect(sub)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("3 of 3 shards good", r.stderr)
        self.assertIn("merged 3 shard databases (16 runs)", r.stderr)

        local = os.path.join(d, "local.db")
        r = util.rtlab("run", *SPAWN, "--bin-dir", util.bin_dir(), "--db", local)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        merged_cells, merged_env = measured(os.path.join(sub, "results.db"))
        local_cells, local_env = measured(local)
        self.assertEqual(merged_cells, local_cells)  # same cells, one ok run each
        self.assertEqual(len(merged_cells), 16)
        # Each run records the node it ran on, and the commit the bundle was built from.
        self.assertEqual({e["hostname"] for e in merged_env}, {socket.gethostname()})
        self.assertEqual({e["cpu_model"] for e in merged_env}, {e["cpu_model"] for e in local_env})
        self.assertEqual({e["git_commit"] for e in merged_env}, {e["git_commit"] for e in local_env})
        r = util.rtlab("report", "--db", os.path.join(sub, "results.db"), "--out", os.path.join(d, "report"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_failed_and_corrupt_shards_are_named_and_resubmitted(self):
        d = util.tmpdir()
        wl = util.make_fake_workloads(os.path.join(d, "wl"), modes=("flaky", "good"))
        fail_file = os.path.join(d, "fail")
        open(fail_file, "w").close()
        env = {"RTLAB_FAKE_FAIL_FILE": fail_file}
        sub = os.path.join(d, "sub")
        # Cells sorted: flaky (shard 1), good (shard 2).
        r = util.rtlab("--workloads-dir", wl, "submit", "--slurm", "--variant", "default", "--gomaxprocs", "1", "--reps", "2",
                       "--warmup", "0", "--shards", "2", "--out", sub, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = collect(sub, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("shard 1/2", r.stderr)
        self.assertIn("exited with status 1: some runs failed", r.stderr)
        self.assertIn(os.path.join(sub, "logs", "shard-1.log"), r.stderr)
        self.assertIn("fake: boom", r.stderr)  # the tail of the failed shard's log
        self.assertNotIn("shard 2/2", r.stderr)
        self.assertIn("1 of 2 shards good", r.stderr)
        self.assertIn("--resubmit-failed", r.stderr)

        with open(os.path.join(sub, "shard-2.db"), "r+b") as f:  # now shard 2's database is damaged too
            f.write(b"garbage!" * 4)
        os.remove(fail_file)
        r = collect(sub, "--resubmit-failed", env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"shard 2/2 \(task \d+_2\): database unusable: .*not an SQLite database")
        self.assertIn("resubmitted shards 1, 2 as job", r.stderr)
        self.assertIn("2 of 2 shards good", r.stderr)
        cells, _ = measured(os.path.join(sub, "results.db"))
        # Only the new attempts' runs: the first attempt's failed runs are not merged.
        self.assertEqual(sorted((k[0], v) for k, v in cells.items()),
                         [("flaky", ["ok", "ok"]), ("good", ["ok", "ok"])])
        self.assertEqual(sorted(os.listdir(os.path.join(sub, "attempts"))),
                         ["shard-1.try1.db", "shard-1.try1.exit", "shard-1.try1.log",
                          "shard-2.try1.db", "shard-2.try1.exit", "shard-2.try1.log"])

    def test_cancelled_task_is_reported(self):
        d = util.tmpdir()
        wl = util.make_fake_workloads(os.path.join(d, "wl"), modes=("hang",))
        sub = os.path.join(d, "sub")
        r = util.rtlab("--workloads-dir", wl, "submit", "--slurm", "--variant", "default", "--gomaxprocs", "1", "--reps", "1",
                       "--warmup", "0", "--timeout", "300", "--shards", "1", "--out", sub)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        job = r.stdout.strip()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # cancel it once its workload runs
            q = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True)
            if q.stdout.strip() == "RUNNING":
                break
            time.sleep(0.2)
        subprocess.run(["scancel", job], check=True)
        r = collect(sub)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"shard 1/1 (task {job}_1) failed: was cancelled", r.stderr)
        # The cancel may come before or after the shard created its database;
        # either way no run of the hanging workload is merged.
        self.assertRegex(r.stderr, r"no shard database to merge|merged 1 shard databases \(0 runs\)")

    def test_sbatch_refusal_is_reported_and_leaves_nothing(self):
        d = util.tmpdir()
        wl = util.make_fake_workloads(os.path.join(d, "wl"), modes=("good",))
        sub = os.path.join(d, "sub")
        r = util.rtlab("--workloads-dir", wl, "submit", "--slurm", "--variant", "default", "--gomaxprocs", "1", "--shards", "1",
                       "--partition", "nosuchpartition", "--out", sub)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("sbatch refused the job: sbatch: error: invalid partition specified: nosuchpartition",
                      r.stderr)
        self.assertFalse(os.path.exists(sub))


if __name__ == "__main__":
    unittest.main()

"""rtlab submit / collect without a cluster: refusals, and the bundle and
batch script run as a Slurm task would run them (bash, SLURM_ARRAY_TASK_ID)
after the whole submission folder was moved. The cluster itself is
exercised by slurm_cluster_test.py."""
import io
import os
import shutil
import subprocess
import unittest

import util
from rtlab import cli, slurm
from rtlab import db as dbmod

MATRIX = ["--variant", "default", "--gomaxprocs", "1,2", "--reps", "1", "--warmup", "0"]


class Submit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wdir = util.make_fake_workloads(util.tmpdir(), modes=("good", "flaky"))

    def submit(self, *args, env=None):
        return util.rtlab("--workloads-dir", self.wdir, "submit", *args, env=env)

    def test_sbatch_missing(self):
        out = os.path.join(util.tmpdir(), "sub")
        r = self.submit("--slurm", *MATRIX, "--shards", "2", "--out", out, env={"PATH": "/nonexistent"})
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("sbatch not found on PATH", r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_refusals(self):
        d = util.tmpdir()
        full = os.path.join(d, "full")
        os.makedirs(full)
        with open(os.path.join(full, "keep"), "w") as f:
            f.write("mine")
        for args, msg in ((["--shards", "2", "--out", os.path.join(d, "a")], "name the batch system: --slurm"),
                          (["--slurm", "--shards", "0", "--out", os.path.join(d, "b")], "--shards must be >= 1"),
                          (["--slurm", "--shards", "5", "--out", os.path.join(d, "c")],
                           "--shards 5: the matrix has only 4 cells"),
                          (["--slurm", "--shard", "1/2", "--shards", "2", "--out", os.path.join(d, "d")],
                           "--shard is for run"),
                          (["--slurm", "--workload", "nope", "--shards", "2", "--out", os.path.join(d, "e")],
                           "unknown workload 'nope'"),
                          (["--slurm", "--shards", "2", "--out", full], "exists and is not an empty folder")):
            r = self.submit(*MATRIX, *args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(msg, r.stderr, args)
        self.assertEqual(sorted(os.listdir(d)), ["full"])
        self.assertEqual(os.listdir(full), ["keep"])

    def test_bundle_and_script_run_after_the_folder_moved(self):
        d = util.tmpdir()
        args = cli.parser().parse_args(["--workloads-dir", self.wdir, "submit", "--slurm", *MATRIX,
                                        "--shards", "3", "--out", os.path.join(d, "made")])
        _, _, cells = cli._plan(args)
        out = slurm.check_request(args, cells)
        created, planned = slurm.prepare(args, cells, util.ROOT, out)
        self.assertTrue(created)
        self.assertEqual(sorted(len(v) for v in planned.values()), [1, 1, 2])
        moved = os.path.join(d, "moved")
        os.rename(out, moved)  # the bundle names no path outside itself
        for k in (1, 2, 3):
            r = subprocess.run(["bash", slurm.SCRIPT], cwd=moved, capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, SLURM_ARRAY_TASK_ID=str(k), SLURM_ARRAY_JOB_ID="77"))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn(f"rtlab: shard {k}/3, job 77_{k}", r.stderr)
            with open(os.path.join(moved, "status", f"shard-{k}.exit")) as f:
                self.assertEqual(f.read().strip(), "0")
            self.assertEqual(slurm._db_problem(os.path.join(moved, f"shard-{k}.db"),
                                               {tuple(c) for c in planned[str(k)]}), (True, None))
        local = os.path.join(d, "local.db")
        r = util.rtlab("--workloads-dir", self.wdir, "run", *MATRIX, "--db", local)
        self.assertEqual(r.returncode, 0, r.stderr)
        shard_envs = []
        for k in (1, 2, 3):
            s = dbmod.Database(os.path.join(moved, f"shard-{k}.db"), create=False)
            shard_envs += s.environments()
            s.close()
        loc = dbmod.Database(local, create=False)
        local_env = loc.environments()[0]
        loc.close()
        for e in shard_envs:  # runs in the bundle record the checkout's commit, and where they ran
            self.assertEqual((e["git_commit"], e["git_dirty"], e["hostname"], e["cpu_model"]),
                             (local_env["git_commit"], local_env["git_dirty"], local_env["hostname"],
                              local_env["cpu_model"]))

    def test_no_binary_nothing_left(self):
        d = util.tmpdir()
        out = os.path.join(d, "sub")
        args = cli.parser().parse_args(["submit", "--slurm", "--workload", "spawn", *MATRIX, "--bin-dir", d,
                                        "--shards", "1", "--out", out])
        _, _, cells = cli._plan(args)
        said = io.StringIO()
        with self.assertRaises(slurm.SubmitError) as e:
            slurm.prepare(args, cells, util.ROOT, slurm.check_request(args, cells), stream=said)
        self.assertEqual(str(e.exception), "2 cells have no binary; nothing submitted")
        self.assertIn("FAILED spawn[perp_signal_radix, GOMAXPROCS=1, goroutines=", said.getvalue())
        self.assertIn(f"binary {d}/workloads/spawn/spawn__perp_signal_radix not found", said.getvalue())
        self.assertEqual(os.listdir(d), [])

    def test_script_refuses_outside_a_task_or_its_folder(self):
        d = util.tmpdir()
        args = cli.parser().parse_args(["--workloads-dir", self.wdir, "submit", "--slurm", *MATRIX,
                                        "--shards", "1", "--out", os.path.join(d, "sub")])
        _, _, cells = cli._plan(args)
        out = slurm.check_request(args, cells)
        slurm.prepare(args, cells, util.ROOT, out)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        r = subprocess.run(["bash", slurm.SCRIPT], cwd=out, capture_output=True, text=True, env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("rtlab: not started as a Slurm array task", r.stderr)
        r = subprocess.run(["bash", os.path.join(out, slurm.SCRIPT)], cwd=d, capture_output=True, text=True,
                           env=dict(env, SLURM_ARRAY_TASK_ID="1"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("holds no rtlab bundle", r.stderr)

    def test_batch_script_options(self):
        s = slurm.batch_script(4, ["bundle/scripts/rtlab", "run", "--variant", "runq=global;runq=perp"], 8,
                               partition="short", time_limit="1:00:00", exclusive=True,
                               options=["--account=proj"])
        lines = s.splitlines()
        for want in ("#SBATCH --array=1-4", "#SBATCH --exclusive", "#SBATCH --partition=short",
                     "#SBATCH --time=1:00:00", "#SBATCH --account=proj", "#SBATCH --output=logs/shard-%a.log"):
            self.assertIn(want, lines)
        self.assertNotIn("#SBATCH --cpus-per-task=8", lines)  # the node is the task's anyway
        self.assertIn("'runq=global;runq=perp'", s)
        self.assertIn("#SBATCH --cpus-per-task=8", slurm.batch_script(1, ["x"], 8).splitlines())


class Collect(unittest.TestCase):
    def test_not_a_submission(self):
        d = util.tmpdir()
        r = util.rtlab("collect", d)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a folder written by rtlab submit", r.stderr)
        with open(os.path.join(d, slurm.MANIFEST), "w") as f:
            f.write("{not json")
        r = util.rtlab("collect", d)
        self.assertEqual(r.returncode, 2)
        self.assertIn("submit.json: unreadable", r.stderr)

    def test_task_problems(self):
        self.assertEqual(slurm.task_problems("COMPLETED", 0), [])
        self.assertEqual(slurm.task_problems(None, 0), [])  # purged from squeue, no accounting
        self.assertEqual(slurm.task_problems("TIMEOUT", None), ["timed out (the job's --time limit)"])
        self.assertEqual(slurm.task_problems("TIMEOUT", 143), ["timed out (the job's --time limit)"])
        self.assertEqual(slurm.task_problems("CANCELLED", None), ["was cancelled"])
        self.assertEqual(slurm.task_problems("OUT_OF_MEMORY", 137), ["ran out of memory"])
        self.assertEqual(slurm.task_problems("FAILED", 1),
                         ["exited with status 1: some runs failed (recorded in its database)"])
        self.assertEqual(slurm.task_problems("FAILED", 2),
                         ["exited with status 2: rtlab run refused its input (see the log)"])
        self.assertEqual(slurm.task_problems(None, 139), ["killed by signal 11"])
        self.assertEqual(slurm.task_problems("FAILED", None),
                         ["ended without recording an exit status (killed, or its node could not run it); "
                          "Slurm state FAILED"])
        self.assertEqual(slurm.task_problems(None, None),
                         ["ended without recording an exit status (killed, or its node could not run it)"])

    def test_shard_database_problems(self):
        d = util.tmpdir()
        key = ("good", "rt", "perp_coop_radix", 1, '{"n": 10}', "", "")
        path = os.path.join(d, "shard-1.db")
        self.assertEqual(slurm._db_problem(path, {key}), (False, f"wrote no database ({path} is missing)"))
        with open(path, "wb") as f:
            f.write(b"not a database at all")
        opens, why = slurm._db_problem(path, {key})
        self.assertFalse(opens)
        self.assertIn("database unusable", why)
        self.assertIn("not an SQLite database", why)
        os.remove(path)
        dbmod.Database(path).close()  # an empty rtlab database: opens, but lacks the cell
        self.assertEqual(slurm._db_problem(path, {key}),
                         (True, "database lacks 1 of its 1 cells: good[perp_coop_radix, GOMAXPROCS=1, n=10]"))
        shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()

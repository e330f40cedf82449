"""End to end: a tiny real matrix (the spawn workload, two variants, one
repetition, tiny parameters) from prebuilt binaries, then the report."""
import json
import os
import unittest

import util


class EndToEnd(unittest.TestCase):
    def test_tiny_matrix_to_report(self):
        d = util.tmpdir()
        db = os.path.join(d, "e2e.db")
        r = util.rtlab("list", "--json")
        variants = json.loads(r.stdout)["variants"][:2]
        r = util.rtlab("run", "--workload", "spawn", "--variant", ";".join(variants), "--gomaxprocs", "1",
                       "--reps", "1", "--warmup", "0", "--param", "goroutines=2000", "--param", "rounds=1",
                       "--bin-dir", util.bin_dir(), "--timeout", "60", "--db", db)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"cells {len(variants)}/{len(variants)}", r.stderr)
        out = os.path.join(d, "report")
        r = util.rtlab("report", "--db", db, "--out", out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        pngs = [f for f in os.listdir(out) if f.endswith(".png")]
        self.assertIn("spawn_overview.png", pngs)
        self.assertIn("spawn_spawn_to_run_ns_dist.png", pngs)
        for p in pngs:
            with open(os.path.join(out, p), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", p)
        with open(os.path.join(out, "index.html")) as f:
            html = f.read()
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        for p in pngs:
            self.assertIn(p, html)
            self.assertIn(p, md)
        for v in variants:
            self.assertIn(v, md)
        self.assertIn("ns_per_goroutine", md)
        self.assertIn("Counters per operation", md)
        # hardware counters are either numbers or marked unsupported, never a bare 0
        self.assertNotIn("| cycles | 0 |", md)


if __name__ == "__main__":
    unittest.main()

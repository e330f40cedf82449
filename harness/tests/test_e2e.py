"""End to end: a tiny real matrix (the spawn workload, two variants, one
repetition, tiny parameters) from prebuilt binaries, then the report; and
gc_latency's rt binary under a GOGC sweep (the GC fields of its records)."""
import json
import os
import sqlite3
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
        self.check_counter_cells(db, md)

    def check_counter_cells(self, db, md):
        """Each counter cell of the report is what the records hold: "unsupported"
        where no run of that row could read the counter (never a number such as 0),
        a number where one could."""
        from rtlab import db as dbmod
        d = dbmod.Database(db, create=False)
        try:
            counters = {}  # variant -> {counter: [values or "unsupported"]}
            by_run = d.counters_by_run()
            for run in d.runs():
                for name, value in by_run.get(run["run_id"], {}).items():
                    counters.setdefault(run["variant"], {}).setdefault(name, []).append(value)
        finally:
            d.close()
        self.assertTrue(counters, "the runs recorded no counters")
        lines = md.splitlines()
        start = lines.index("### Counters per operation (median over repetitions)")
        header = [c.strip() for c in lines[start + 2].strip("|").split("|")]
        self.assertEqual(header[:2], ["GOMAXPROCS", "variant"])
        rows = []
        for line in lines[start + 4:]:
            if not line.startswith("|"):
                break
            rows.append([c.strip() for c in line.strip("|").split("|")])
        self.assertEqual(sorted(r[1] for r in rows), sorted(counters))
        for row in rows:
            for name, cell in zip(header[2:], row[2:]):
                read = [v for v in counters[row[1]].get(name, []) if isinstance(v, float)]
                if read:
                    self.assertNotEqual(cell, "unsupported", f"{row[1]} {name}: read {read}")
                    float(cell.replace(",", ""))
                else:
                    self.assertEqual(cell, "unsupported", f"{row[1]} {name}: never read, shown as {cell!r}")


    def test_gc_fields_and_gogc_reach_the_rt_binary(self):
        """gc_latency's default combination under three GOGC values: every GC
        field of the record is filled, and GOGC reaches the runtime (off: no
        collection in the region; 25 collects more often than 400)."""
        d = util.tmpdir()
        db = os.path.join(d, "gc.db")
        r = util.rtlab("run", "--workload", "gc_latency", "--variant", "default", "--gomaxprocs", "1",
                       "--reps", "1", "--warmup", "0", "--param", "slots=20000", "--param", "pushes=200000",
                       "--gogc", "25,400,off", "--bin-dir", util.bin_dir(), "--timeout", "60", "--db", db)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        con = sqlite3.connect(db)
        recs = {g: json.loads(j) for g, j in con.execute(
            "SELECT c.gogc, r.record_json FROM runs r JOIN cells c USING (cell_id)")}
        con.close()
        self.assertEqual(sorted(recs), ["25", "400", "off"])
        cycles = {}
        for g, rec in recs.items():
            self.assertEqual(rec["gogc"], g)
            gc, mem = rec["runtime"]["gc"], rec["runtime"]["memstats"]
            for k in ("cycles", "forced_cycles", "max_pause_ns", "pause_total_ns", "pause_ns", "cpu_fraction"):
                self.assertIsNotNone(gc.get(k), (g, k))
            for k in ("heap_alloc", "total_alloc", "num_gc", "next_gc"):
                self.assertIsNotNone(mem.get(k), (g, k))
            self.assertEqual(gc["pause_ns"]["count"], min(gc["cycles"], 256), g)
            self.assertGreaterEqual(mem["num_gc"], gc["cycles"], g)
            self.assertGreaterEqual(mem["total_alloc"], 200000 * 1024, g)  # every push allocated its KiB
            if gc["cycles"]:
                self.assertGreater(gc["max_pause_ns"], 0, g)
                self.assertLessEqual(gc["max_pause_ns"], gc["pause_total_ns"], g)
            cycles[g] = gc["cycles"]
        self.assertEqual(cycles["off"], 0)
        self.assertGreater(cycles["25"], cycles["400"])

if __name__ == "__main__":
    unittest.main()

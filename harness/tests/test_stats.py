import random
import unittest

import util  # noqa: F401  (sets sys.path)
from rtlab import stats


class Stats(unittest.TestCase):
    def test_median_and_quantile(self):
        self.assertEqual(stats.median([3, 1, 2]), 2)
        self.assertEqual(stats.median([4, 1, 3, 2]), 2.5)
        self.assertEqual(stats.quantile(range(101), 0.9), 90)
        rng = random.Random(1)
        self.assertAlmostEqual(stats.median([rng.gauss(5, 1) for _ in range(20001)]), 5, delta=0.03)

    def test_bootstrap_ci_covers_true_median(self):
        rng = random.Random(42)
        covered = 0
        trials = 40
        for t in range(trials):
            xs = [rng.expovariate(1.0) for _ in range(40)]  # true median ln 2
            lo, hi = stats.bootstrap_ci(xs, n_boot=400, seed=t)
            self.assertLessEqual(lo, hi)
            covered += lo <= 0.6931 <= hi
        self.assertGreaterEqual(covered, int(0.85 * trials))  # nominal 95%

    def test_bootstrap_ratio_ci(self):
        rng = random.Random(3)
        a = [rng.gauss(200, 5) for _ in range(30)]
        b = [rng.gauss(100, 2.5) for _ in range(30)]
        lo, hi = stats.bootstrap_ratio_ci(a, b, n_boot=500)
        self.assertLess(lo, 2.0)
        self.assertGreater(hi, 2.0)

    def test_mann_whitney_detects_shift(self):
        rng = random.Random(7)
        a = [rng.gauss(0, 1) for _ in range(30)]
        b = [rng.gauss(1.5, 1) for _ in range(30)]
        _, p = stats.mann_whitney_u(a, b)
        self.assertLess(p, 0.001)

    def test_mann_whitney_same_distribution(self):
        rng = random.Random(8)
        false_pos = 0
        for _ in range(50):
            a = [rng.gauss(0, 1) for _ in range(20)]
            b = [rng.gauss(0, 1) for _ in range(20)]
            false_pos += stats.mann_whitney_u(a, b)[1] < 0.05
        self.assertLessEqual(false_pos, 8)  # ~5% expected
        self.assertEqual(stats.mann_whitney_u([1, 2, 3], [1, 2, 3])[1], 1.0)

    def test_mann_whitney_exact_small(self):
        u, p = stats.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
        self.assertEqual(u, 0)
        self.assertAlmostEqual(p, 2 / 252)
        # ties: normal approximation, symmetric
        _, p1 = stats.mann_whitney_u([1, 1, 2, 2, 3], [2, 3, 3, 4, 4])
        _, p2 = stats.mann_whitney_u([2, 3, 3, 4, 4], [1, 1, 2, 2, 3])
        self.assertAlmostEqual(p1, p2)

    def test_spread_and_histograms(self):
        self.assertIsNone(stats.rel_spread([5]))
        self.assertAlmostEqual(stats.rel_spread([90, 100, 110]), 0.2)
        b = stats.merge_buckets([[[1, 1, 50], [10, 11, 50]], [[10, 11, 100]]])
        self.assertEqual(b, [[1, 1, 50], [10, 11, 150]])
        self.assertEqual(stats.hist_percentile(b, 50), 11)
        self.assertEqual(stats.hist_percentile(b, 20), 1)
        self.assertIsNone(stats.hist_percentile([], 50))


if __name__ == "__main__":
    unittest.main()

"""Speed benchmark of the anomaly detector: many synthetic series x 14 days of 5-minute points.

Usage: ``python bench/anomaly_speed.py [--series 10000] [--days 14] [--baseline-series 200]``

Prints points per second, wall time and peak memory of one :func:`~include.awsgov.anomaly.detector.detect` call over all
series, and the per-series speed ratio against a straightforward per-series pandas implementation (a causal rolling
median / MAD z-score over one day, looped over series) timed in the same run on a subset and extrapolated.
Targets (10,000 series x 4,032 points on a 2-core machine): under 10 s, under 2 GB, at least 20x faster per series.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from include.awsgov.anomaly import detector  # noqa: E402

STEP_SECONDS = 300
START = pd.Timestamp("2024-01-01 00:00:00")


def synthetic(n_series: int, n_points: int, seed: int = 0) -> np.ndarray:
    """CloudWatch-like series: daily seasonality, noise, scales from percent to gigabytes, spikes, shifts and gaps.

    :param n_series: rows.
    :param n_points: 5-minute points per row.
    :param seed: random seed.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    scale = 10.0 ** rng.uniform(0, 9, (n_series, 1))  # percent ... bytes
    phase = rng.uniform(0, 2 * np.pi, (n_series, 1))
    amp = rng.uniform(0, 0.5, (n_series, 1))
    x = np.sin(2 * np.pi * t / 288 + phase)
    x *= amp
    x += 1.0
    x += rng.standard_normal((n_series, n_points)) * 0.05
    x *= scale
    rows = rng.integers(0, n_series, n_series // 10)
    cols = rng.integers(0, n_points, rows.size)
    x[rows, cols] *= 3.0  # spikes
    rows = rng.integers(0, n_series, n_series // 50)
    for r, c in zip(rows, rng.integers(n_points // 2, n_points, rows.size), strict=True):
        x[r, c:] *= 1.5  # level shifts
    x[rng.random((n_series, n_points)) < 0.002] = np.nan  # missing datapoints
    return x


def straightforward(series: np.ndarray) -> np.ndarray:
    """The baseline: per series, a causal one-day rolling median / MAD z-score with pandas; flags |z| > 5.

    :param series: one row of values.
    """
    s = pd.Series(series)
    med = s.rolling(288, min_periods=12).median().shift(1)
    mad = (s - med).abs().rolling(288, min_periods=12).median().shift(1)
    z = (s - med) / (1.4826 * mad)
    return (z.abs() > 5).to_numpy()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures.

    :param argv: command-line arguments (default sys.argv).
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=10_000, help="number of series (default 10000)")
    ap.add_argument("--days", type=int, default=14, help="days of 5-minute points per series (default 14)")
    ap.add_argument("--baseline-series", type=int, default=200, help="series timed for the pandas baseline")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n_points = args.days * 86400 // STEP_SECONDS
    print(f"generating {args.series} series x {n_points} points ...", flush=True)
    X = synthetic(args.series, n_points, args.seed)
    total = X.size
    print(f"machine: {os.cpu_count()} CPUs; input {X.nbytes / 2**20:.0f} MiB (float64)")

    detector.detect(X[: min(50, args.series)], start_time=START)  # warm-up: imports, thread pool, buffers
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    det = detector.detect(X, step_seconds=STEP_SECONDS, start_time=START)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    alerts = int(det.is_anomaly.sum())
    del det
    # Memory in a second run: tracemalloc slows allocation-heavy code, so it stays out of the timed run.
    tracemalloc.start()
    detector.detect(X, step_seconds=STEP_SECONDS, start_time=START)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"detector: {total:,} points in {wall:.2f} s wall ({cpu:.2f} s CPU) = {total / wall:,.0f} points/s")
    print(f"detector: CPU {ru1.ru_utime - ru0.ru_utime:.2f} s user + {ru1.ru_stime - ru0.ru_stime:.2f} s system, "
          f"{ru1.ru_minflt - ru0.ru_minflt:,} page faults")
    print(f"detector: peak memory {peak / 2**20:,.0f} MiB allocated during detect (tracemalloc, second run; input "
          f"excluded), process max RSS {max_rss:,.0f} MiB after the timed run (input and its generation included)")
    print(f"detector: {alerts:,} alerts ({alerts / args.series / args.days:.3f} per series per day)")

    nb = min(args.baseline_series, args.series)
    straightforward(X[0])  # warm-up
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for row in X[:nb]:
        straightforward(row)
    base_wall = time.perf_counter() - t0
    base_cpu = time.process_time() - cpu0
    per_base = base_wall / nb
    per_det = wall / args.series
    print(f"baseline (pandas rolling median/MAD, loop over series): {nb} series timed in {base_wall:.2f} s = "
          f"{per_base * 1e3:.2f} ms/series; extrapolated to {args.series} series: {per_base * args.series:.1f} s")
    ratio = per_base / per_det
    cpu_ratio = (base_cpu / nb) / (cpu / args.series)
    print(f"detector: {per_det * 1e3:.3f} ms/series -> {ratio:.1f}x faster per series than the baseline (wall); "
          f"{cpu_ratio:.1f}x in CPU time (the detector uses {os.cpu_count()} threads, the baseline one)")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} (other processes slow both sides)")
    target = args.series == 10_000 and args.days == 14
    checks = [("wall < 10 s", wall < 10), ("peak < 2 GB", max(peak, max_rss * 2**20) < 2 * 2**30),
              ("ratio >= 20x", ratio >= 20)]
    label = "targets" if target else "targets (defined for 10000 x 14 days)"
    print(f"{label}: " + ", ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in checks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

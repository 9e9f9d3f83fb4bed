"""NAB benchmark of the anomaly detector: stream every CSV of a folder through it and score the alerts.

Usage: ``python bench/nab.py --data /work/shared/benchmarks/nab_aws --out /tmp/nabout``

Each ``*.csv`` (``timestamp,value``) is put on its 5-minute grid (``regularize``) and fed to a
:class:`Detector` one clock hour at a time, carrying the state between hours, as the hourly DAG
sees it; the detector runs at its default settings. ``<out>/<same name>.csv`` gets ``timestamp,value,anomaly_score,
is_anomaly`` for every input row: the score of the row's grid point (>= 1 means out of band) and 1 on the row that
carries an alert (rows sharing a grid point, such as the daylight-saving duplicates, alert once, on the first).

If ``windows.json`` sits in the folder, the alerts are scored with NAB's standard profile (bench/nabscore.py): raw
score per file, then the normalised corpus score. The script also checks that the streamed result equals one batch
:func:`~include.awsgov.anomaly.detector.detect` call.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import nabscore  # noqa: E402
from include.awsgov.anomaly import detector  # noqa: E402

STEP = "5min"


def stream_series(grid: pd.Series) -> dict[str, np.ndarray]:
    """Feed one regular series to a fresh detector in clock-hour chunks; return per-point score and alerts.

    :param grid: the series on its regular grid (NaN where a step has no data).
    """
    det = detector.Detector(1, start_time=grid.index[0], params=detector.Params(step_seconds=300))
    hours = grid.index.floor("h")
    bounds = np.flatnonzero(np.r_[True, hours[1:] != hours[:-1], True])
    scores, alerts = [], []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        res = det.update(grid.to_numpy()[a:b])
        scores.append(res.score)
        alerts.append(res.is_anomaly)
    return {"score": np.concatenate(scores), "is_anomaly": np.concatenate(alerts)}


def run_file(path: Path, out_dir: Path) -> tuple[pd.DataFrame, bool]:
    """Detect on one NAB CSV, write the output CSV, return it and whether streaming matched the batch run.

    :param path: a ``timestamp,value`` CSV.
    :param out_dir: folder for the output CSV of the same name.
    """
    df = pd.read_csv(path)
    grid = detector.regularize(df["timestamp"], df["value"], step=STEP, origin="start")
    streamed = stream_series(grid)
    batch = detector.detect(grid.to_numpy(), step_seconds=300, start_time=grid.index[0])
    same = bool(np.array_equal(batch.score, streamed["score"]) and
                np.array_equal(batch.is_anomaly, streamed["is_anomaly"]))
    pos = detector.grid_positions(df["timestamp"], grid.index[0], STEP)
    first_of_point = np.r_[True, pos[1:] != pos[:-1]]
    out = pd.DataFrame({
        "timestamp": df["timestamp"],
        "value": df["value"],
        "anomaly_score": np.round(streamed["score"][pos].astype(np.float64), 6),
        "is_anomaly": (streamed["is_anomaly"][pos] & first_of_point).astype(int),
    })
    out.to_csv(out_dir / path.name, index=False)
    return out, same


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures.

    :param argv: command-line arguments (default sys.argv).
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="folder of NAB-style *.csv, optionally windows.json")
    ap.add_argument("--out", required=True, type=Path, help="folder for the output CSVs")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    files = sorted(args.data.glob("*.csv"))
    if not files:
        print(f"no *.csv in {args.data}")
        return 1
    windows_path = args.data / "windows.json"
    windows = nabscore.load_windows(windows_path) if windows_path.exists() else None
    print(f"detector defaults: sensitivity={detector.DEFAULT_SENSITIVITY}, {detector.Params()}")
    print("streaming: one clock hour per update, state carried between updates")
    t0 = time.perf_counter()
    total_raw, total_windows, all_same = 0.0, 0, True
    header = f"{'file':<42} {'rows':>5} {'alerts':>6} {'windows':>7} {'hit':>3} {'FP':>3} {'raw':>7}"
    if windows is not None:
        print(header)
    for path in files:
        out, same = run_file(path, args.out)
        all_same &= same
        n_alerts = int(out["is_anomaly"].sum())
        if windows is None or path.name not in windows:
            print(f"{path.name:<42} {len(out):>5} {n_alerts:>6}  (no windows)")
            continue
        wins = nabscore.window_rows(out["timestamp"].astype(str).tolist(), windows[path.name])
        fs = nabscore.score_file(out["is_anomaly"].to_numpy(), wins)
        total_raw += fs.raw
        total_windows += fs.n_windows
        print(f"{path.name:<42} {len(out):>5} {n_alerts:>6} {fs.n_windows:>7} {fs.tp_windows:>3} {fs.fp_rows:>3} "
              f"{fs.raw:>7.3f}")
    elapsed = time.perf_counter() - t0
    print(f"streamed results equal the batch results: {'yes' if all_same else 'NO'}")
    print(f"outputs written to {args.out} ({len(files)} files, {elapsed:.1f} s)")
    if windows is not None and total_windows:
        score = nabscore.normalised_score(total_raw, total_windows)
        print(f"corpus raw score {total_raw:.3f} over {total_windows} windows "
              f"(null {-nabscore.A_FN * total_windows:.1f}, perfect {nabscore.A_TP * total_windows:.1f})")
        print(f"NAB standard score (normalised): {score:.1f}")
    return 0 if all_same else 2


if __name__ == "__main__":
    raise SystemExit(main())

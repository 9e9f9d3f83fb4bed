"""NAB benchmark of the anomaly detector: stream every CSV of each folder through it and score the alerts.

Usage: ``python bench/nab.py [--data FOLDER ...] [--out /tmp/nabout] [--files]``

Without ``--data`` it scores the five NAB folders: ``shared/benchmarks/nab_aws`` and the four folders of
``shared/benchmarks/nab_more`` (realKnownCause, realTraffic, realAdExchange, realTweets).

Each ``*.csv`` (``timestamp,value``) is put on a regular grid whose step the detector picks from the timestamps
(:func:`~include.awsgov.anomaly.detector.infer_step`: 5 minutes for most files, 30 minutes for nyc_taxi, an hour for
the ad exchange, 10-15 minutes for irregular road sensors) and fed to a :class:`Detector` one clock hour at a time,
carrying the state between hours, as the hourly DAG sees it; the detector runs at its default settings, the same for
every file. ``<out>/<folder>/<same name>.csv`` gets ``timestamp,value,anomaly_score,is_anomaly`` for every input row:
the score of the row's grid point (>= 1 means out of band) and 1 on the row that carries an alert (rows sharing a grid
point, such as the daylight-saving duplicates, alert once, on the first).

Alerts are scored with NAB's standard profile (bench/nabscore.py) against ``windows.json`` (in the folder or its
parent): raw score per file, then the score normalised per folder (null 0, perfect 100) and the mean over folders,
next to the published detectors' scores from the folders' READMEs. The script also checks that the streamed result
equals one batch :func:`~include.awsgov.anomaly.detector.detect` call, file by file.
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

BENCHMARKS = REPO.parent / "shared" / "benchmarks"
DEFAULT_FOLDERS = (BENCHMARKS / "nab_more" / "realKnownCause", BENCHMARKS / "nab_more" / "realTraffic",
                   BENCHMARKS / "nab_more" / "realAdExchange", BENCHMARKS / "nab_more" / "realTweets",
                   BENCHMARKS / "nab_aws")
#: Published detectors at NAB's corpus thresholds, standard profile, normalised per folder: from
#: shared/benchmarks/nab_more/README.md and nab_aws/README.md (HTM, ARTime, CAD OSE).
REFERENCES = {
    "realKnownCause": (55.5, 63.9, 41.8),
    "realTraffic": (82.5, 86.9, 91.2),
    "realAdExchange": (76.9, 75.1, 72.0),
    "realTweets": (68.0, 81.8, 74.5),
    "nab_aws": (64.7, 59.9, 65.8),
}
REFERENCE_NAMES = ("Numenta HTM", "ARTime", "CAD OSE")
#: Folders whose scores the default settings were chosen on (issue #21); the others were held out: scored only
#: once the settings were fixed.
TUNED_ON = ("realTraffic", "realTweets", "nab_aws")
#: Held-out folders that three later settings were chosen with in view: the widening of records at coarse steps
#: (``Params.step_growth``; only these have 30-minute and hourly files), ``level_floor`` and ``level_lag_hours``.
SEEN_FOR_STEPS = ("realKnownCause", "realAdExchange")


def stream_series(grid: pd.Series, step_seconds: int) -> dict[str, np.ndarray]:
    """Feed one regular series to a fresh detector in clock-hour chunks; return per-point score and alerts.

    :param grid: the series on its regular grid (NaN where a step has no data).
    :param step_seconds: the grid step.
    """
    det = detector.Detector(1, start_time=grid.index[0], params=detector.Params(step_seconds=step_seconds))
    hours = grid.index.floor("h")
    bounds = np.flatnonzero(np.r_[True, hours[1:] != hours[:-1], True])
    scores, alerts = [], []
    values = grid.to_numpy()
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        res = det.update(values[a:b])
        scores.append(res.score)
        alerts.append(res.is_anomaly)
    return {"score": np.concatenate(scores), "is_anomaly": np.concatenate(alerts)}


def run_file(path: Path, out_dir: Path) -> tuple[pd.DataFrame, bool, int]:
    """Detect on one NAB CSV, write the output CSV; return it, whether streaming matched the batch run, and the step.

    :param path: a ``timestamp,value`` CSV.
    :param out_dir: folder for the output CSV of the same name.
    """
    df = pd.read_csv(path)
    step = detector.infer_step(df["timestamp"])
    grid = detector.regularize(df["timestamp"], df["value"], step=pd.Timedelta(seconds=step), origin="start")
    streamed = stream_series(grid, step)
    batch = detector.detect(grid.to_numpy(), step_seconds=step, start_time=grid.index[0])
    same = bool(np.array_equal(batch.score, streamed["score"]) and
                np.array_equal(batch.is_anomaly, streamed["is_anomaly"]))
    pos = detector.grid_positions(df["timestamp"], grid.index[0], pd.Timedelta(seconds=step))
    first_of_point = np.r_[True, pos[1:] != pos[:-1]]
    out = pd.DataFrame({
        "timestamp": df["timestamp"],
        "value": df["value"],
        "anomaly_score": np.round(streamed["score"][pos].astype(np.float64), 6),
        "is_anomaly": (streamed["is_anomaly"][pos] & first_of_point).astype(int),
    })
    out.to_csv(out_dir / path.name, index=False)
    return out, same, step


def find_windows(folder: Path) -> dict[str, list[list[str]]] | None:
    """windows.json of a folder (its own, else its parent's, keyed by bare file name), or None."""
    for candidate in (folder / "windows.json", folder.parent / "windows.json"):
        if candidate.exists():
            return nabscore.load_windows(candidate)
    return None


def run_folder(folder: Path, out_dir: Path, show_files: bool) -> dict:
    """Run and score every CSV of a folder; return its raw score, windows, alerts and whether streaming matched.

    :param folder: a folder of NAB-style CSVs.
    :param out_dir: where the output CSVs go (a subfolder of the folder's name).
    :param show_files: print one line per file.
    """
    files = sorted(folder.glob("*.csv"))
    windows = find_windows(folder)
    sub = out_dir / folder.name
    sub.mkdir(parents=True, exist_ok=True)
    res = {"raw": 0.0, "windows": 0, "hit": 0, "alerts": 0, "fp": 0, "files": len(files), "same": True,
           "scored": False}
    for path in files:
        out, same, step = run_file(path, sub)
        res["same"] &= same
        n_alerts = int(out["is_anomaly"].sum())
        res["alerts"] += n_alerts
        if windows is None or path.name not in windows:
            if show_files:
                print(f"  {path.name:<42} {len(out):>6} {step:>5} {n_alerts:>6}  (no windows)")
            continue
        wins = nabscore.window_rows(out["timestamp"].astype(str).tolist(), windows[path.name])
        fs = nabscore.score_file(out["is_anomaly"].to_numpy(), wins)
        res["scored"] = True
        res["raw"] += fs.raw
        res["windows"] += fs.n_windows
        res["hit"] += fs.tp_windows
        res["fp"] += fs.fp_rows
        if show_files:
            print(f"  {path.name:<42} {len(out):>6} {step:>5} {n_alerts:>6} {fs.n_windows:>7} {fs.tp_windows:>3} "
                  f"{fs.fp_rows:>3} {fs.raw:>7.3f}")
    return res


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures.

    :param argv: command-line arguments (default sys.argv).
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, action="append",
                    help="folder of NAB-style *.csv (repeatable); default: the five NAB folders")
    ap.add_argument("--out", type=Path, default=Path("/tmp/nabout"), help="folder for the output CSVs")
    ap.add_argument("--files", action="store_true", help="print one line per file")
    args = ap.parse_args(argv)
    folders = args.data or list(DEFAULT_FOLDERS)
    missing = [f for f in folders if not any(f.glob("*.csv"))]
    if missing:
        print(f"no *.csv in {', '.join(map(str, missing))}")
        return 1
    print(f"detector defaults: sensitivity={detector.DEFAULT_SENSITIVITY}, {detector.Params()}")
    print("grid step per file: detector.infer_step; streaming: one clock hour per update, state carried over")
    t0 = time.perf_counter()
    results = {}
    for folder in folders:
        if args.files:
            print(f"{folder.name}:")
            print(f"  {'file':<42} {'rows':>6} {'step':>5} {'alerts':>6} {'windows':>7} {'hit':>3} {'FP':>3} "
                  f"{'raw':>7}")
        results[folder.name] = run_folder(folder, args.out, args.files)
    elapsed = time.perf_counter() - t0
    all_same = all(r["same"] for r in results.values())

    ref_head = " | ".join(REFERENCE_NAMES)
    print()
    print(f"| folder | this detector | {ref_head} | windows hit | false alerts | role |")
    print("|---|---|" + "---|" * len(REFERENCE_NAMES) + "---|---|---|")
    ours, refs = [], []
    for name, r in results.items():
        if not r["scored"]:
            continue
        score = nabscore.normalised_score(r["raw"], r["windows"])
        ref = REFERENCES.get(name)
        ours.append(score)
        if ref is not None:
            refs.append(ref)
        ref_cells = " | ".join(f"{v:.1f}" for v in ref) if ref else " | ".join("-" for _ in REFERENCE_NAMES)
        role = "tuned on" if name in TUNED_ON else ("held out but for 3 settings" if name in SEEN_FOR_STEPS
                                                    else "held out")
        print(f"| {name} ({r['files']} files) | {score:.1f} | {ref_cells} | {r['hit']}/{r['windows']} | {r['fp']} | "
              f"{role} |")
    if len(ours) > 1:
        ref_means = " | ".join(f"{np.mean([r[i] for r in refs]):.1f}" for i in range(len(REFERENCE_NAMES))) \
            if len(refs) == len(ours) else " | ".join("-" for _ in REFERENCE_NAMES)
        print(f"| mean over {len(ours)} folders | {np.mean(ours):.1f} | {ref_means} | | | |")
    print()
    print(f"streamed results equal the batch results: {'yes' if all_same else 'NO'}")
    n_files = sum(r["files"] for r in results.values())
    print(f"outputs written to {args.out} ({n_files} files, {elapsed:.1f} s)")
    return 0 if all_same else 2


if __name__ == "__main__":
    raise SystemExit(main())

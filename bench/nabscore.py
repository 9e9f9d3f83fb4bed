"""NAB standard-profile scorer, reimplemented from the rules in shared/benchmarks/nab_aws/README.md.

Scoring works on CSV row indices, not on time: a window ``[l, r]`` is a pair of inclusive row indices, a detection is a
0/1 flag per row. The rules (standard profile, A_TP = 1.0, A_FP = 0.11, A_FN = 1.0):

- the first ``min(floor(0.15 * n), 750)`` rows (probation) are not scored;
- a detected row ``i`` inside window ``[l, r]`` of width ``w`` is worth ``A_TP * σ(-(r - i + 1) / w) / σ(-1)``;
  a window adds the best worth among its detected rows (its earliest detection), or ``-A_FN`` if none;
- a detected row outside every window is worth ``A_FP * σ((i - r') / (w' - 1))`` after a window ``[l', r']`` of
  width ``w'``, or ``-A_FP`` before any window; note σ(0) = 0, so a flag just after a window costs almost nothing
  and one far after it costs the full ``A_FP`` (NAB treats it as a possibly late detection);
- ``σ(y) = 2 / (1 + e^(5y)) - 1``, and ``-1`` for ``y > 3``;
- corpus: normalised score ``100 * (raw - null) / (perfect - null)`` with ``null = -A_FN * windows`` and
  ``perfect = A_TP * windows``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

A_TP = 1.0
A_FP = 0.11
A_FN = 1.0
PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750


def scaled_sigmoid(y: float) -> float:
    """NAB's scaled sigmoid: 2 / (1 + e^(5y)) - 1, and -1 beyond y = 3.

    :param y: relative position (negative inside a window, positive after it).
    """
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_rows(n_rows: int) -> int:
    """Number of leading rows NAB does not score: min(floor(0.15 * n), 750).

    :param n_rows: rows in the data file.
    """
    return min(math.floor(PROBATION_FRACTION * n_rows), PROBATION_MAX_ROWS)


def window_rows(timestamps: Sequence[str], windows: Iterable[Sequence[str]]) -> list[tuple[int, int]]:
    """Turn windows given as timestamps into inclusive (first_row, last_row) index pairs.

    Only the first 19 characters are compared (windows.json has a ``.000000`` suffix). A window end that matches
    several rows (duplicate timestamps) takes the first row for the start and the last row for the end.

    :param timestamps: the CSV's timestamp column, as strings.
    :param windows: ``[[start, end], ...]`` as in windows.json.
    """
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, ts in enumerate(timestamps):
        key = str(ts)[:19]
        first.setdefault(key, i)
        last[key] = i
    out = []
    for start, end in windows:
        s, e = str(start)[:19], str(end)[:19]
        if s not in first or e not in last:
            raise KeyError(f"window [{start}, {end}] does not match timestamps in the data")
        out.append((first[s], last[e]))
    return sorted(out)


@dataclass
class FileScore:
    """Raw NAB score of one file and its parts."""

    raw: float
    n_windows: int
    tp_windows: int
    fn_windows: int
    fp_rows: int
    tp_score: float
    fp_score: float
    window_scores: list[float] = field(default_factory=list)


def score_file(detections: Sequence[int] | np.ndarray, windows: Sequence[tuple[int, int]],
               probation: int | None = None) -> FileScore:
    """Raw standard-profile score of one file's 0/1 detections.

    :param detections: one 0/1 (or bool) flag per CSV row.
    :param windows: inclusive (first_row, last_row) pairs, sorted and not overlapping.
    :param probation: rows not scored at the start; default min(floor(0.15 * n), 750).
    """
    det = np.asarray(detections).astype(bool)
    n = det.size
    if probation is None:
        probation = probation_rows(n)
    wins = sorted((int(a), int(b)) for a, b in windows)
    max_tp = scaled_sigmoid(-1.0)
    window_best = [-A_FN] * len(wins)
    fp_score = 0.0
    fp_rows = 0
    w_idx = 0
    prev: tuple[int, int] | None = None  # (right index, width) of the last window passed
    for i in np.flatnonzero(det):
        i = int(i)
        while w_idx < len(wins) and wins[w_idx][1] < i:
            prev = (wins[w_idx][1], wins[w_idx][1] - wins[w_idx][0] + 1)
            w_idx += 1
        if i < probation:
            continue
        if w_idx < len(wins) and wins[w_idx][0] <= i:
            left, right = wins[w_idx]
            width = right - left + 1
            worth = A_TP * scaled_sigmoid(-(right - i + 1) / width) / max_tp
            window_best[w_idx] = max(window_best[w_idx], worth)
        else:
            if prev is None:
                worth = -A_FP
            else:
                right, width = prev
                # NAB divides by (width - 1); a one-row window would divide by zero, so treat it as "far after".
                rel = abs(i - right) / (width - 1) if width > 1 else math.inf
                worth = A_FP * scaled_sigmoid(rel)
            fp_score += worth
            fp_rows += 1
    tp_windows = sum(1 for s in window_best if s > -A_FN)
    tp_score = float(sum(window_best))
    return FileScore(
        raw=tp_score + fp_score,
        n_windows=len(wins),
        tp_windows=tp_windows,
        fn_windows=len(wins) - tp_windows,
        fp_rows=fp_rows,
        tp_score=tp_score,
        fp_score=fp_score,
        window_scores=window_best,
    )


def normalised_score(raw_total: float, n_windows: int) -> float:
    """Corpus score 100 * (raw - null) / (perfect - null): 0 for a detector that flags nothing, 100 for a perfect one.

    :param raw_total: sum of the files' raw scores.
    :param n_windows: number of windows in the corpus.
    """
    null = -A_FN * n_windows
    perfect = A_TP * n_windows
    if perfect == null:
        return 0.0
    return 100.0 * (raw_total - null) / (perfect - null)


def score_corpus(
    files: Mapping[str, tuple[Sequence[int], Sequence[tuple[int, int]]]],
) -> tuple[float, dict[str, FileScore]]:
    """Score several files: {name: (detections, windows)} -> (normalised score, {name: FileScore}).

    :param files: per file, its 0/1 detections and its inclusive row windows.
    """
    per_file = {name: score_file(det, wins) for name, (det, wins) in files.items()}
    raw = sum(s.raw for s in per_file.values())
    n_windows = sum(s.n_windows for s in per_file.values())
    return normalised_score(raw, n_windows), per_file


def load_windows(path: str | Path) -> dict[str, list[list[str]]]:
    """Read windows.json and key it by bare file name (NAB keys are ``<corpus dir>/<file>.csv``).

    :param path: the windows.json file.
    """
    data = json.loads(Path(path).read_text())
    return {Path(key).name: value for key, value in data.items()}

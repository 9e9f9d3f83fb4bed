"""CloudWatch alarm semantics on arrays: M-of-N breaching datapoints and the four missing-data treatments.

Reproduces the evaluation AWS documents in "Configuring how CloudWatch alarms treat missing data" (both example
tables and the "premature alarm state" rule), vectorised over series: ``values`` is a (series x time) array with
NaN for missing datapoints, and the state is evaluated at every time step over the evaluation range ending there.

At each step, over the last ``N + EXTRA_EVALUATION_POINTS`` datapoints (the evaluation range; AWS fetches 5 for
N = 3 in its examples):

* at least N real datapoints: the N most recent real ones decide (ALARM if >= M breach); the treatment is unused;
* no real datapoint: missing -> INSUFFICIENT_DATA, ignore -> keep the previous state, breaching -> ALARM,
  notBreaching -> OK;
* some, fewer than N: the shortfall is filled (as few fills as possible) per treatment. breaching adds the fills
  to the breaching count, notBreaching does not; missing goes to ALARM when M real points breach or on the
  premature-alarm rule (no real point in the range is non-breaching and a breaching point within the last N is at
  least M periods old), keeps its state while only a few recent breaching points exist, and is OK otherwise;
  ignore behaves the same but keeps its state where missing would alarm prematurely.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

COMPARISONS = (
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
)
TREATMENTS = ("missing", "notBreaching", "breaching", "ignore")
OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"
# Datapoints fetched beyond the N evaluated, to tolerate gaps (AWS's documented examples: range 5 for N = 3).
EXTRA_EVALUATION_POINTS = 2

_CODES = np.array([OK, ALARM, INSUFFICIENT_DATA])
_OK, _ALARM, _INSUFFICIENT, _KEEP = 0, 1, 2, -1


def breaching(values: np.ndarray, comparison: str, threshold: float) -> np.ndarray:
    """Boolean array: real (non-NaN) datapoints on the wrong side of the threshold.

    :param values: datapoints, NaN where missing.
    :param comparison: one of :data:`COMPARISONS`.
    :param threshold: the alarm threshold.
    """
    with np.errstate(invalid="ignore"):
        if comparison == "GreaterThanThreshold":
            out = values > threshold
        elif comparison == "GreaterThanOrEqualToThreshold":
            out = values >= threshold
        elif comparison == "LessThanThreshold":
            out = values < threshold
        elif comparison == "LessThanOrEqualToThreshold":
            out = values <= threshold
        else:
            raise ValueError(f"unknown comparison {comparison!r}")
    return out & ~np.isnan(values)


def alarm_states(
    values: np.ndarray,
    comparison: str,
    threshold: float,
    datapoints_to_alarm: int,
    evaluation_periods: int,
    treat_missing_data: str = "missing",
    initial: str = INSUFFICIENT_DATA,
    evaluation_range: int | None = None,
) -> np.ndarray:
    """Alarm state (OK | ALARM | INSUFFICIENT_DATA) after evaluating at each datapoint, per series.

    :param values: (T,) or (S, T) datapoints in time order, NaN where missing.
    :param comparison: one of :data:`COMPARISONS`.
    :param threshold: the alarm threshold.
    :param datapoints_to_alarm: M, breaching datapoints needed.
    :param evaluation_periods: N, datapoints evaluated.
    :param treat_missing_data: missing | notBreaching | breaching | ignore.
    :param initial: state before the first step (what ``ignore`` keeps when everything is missing).
    :param evaluation_range: datapoints looked at per step; default N + :data:`EXTRA_EVALUATION_POINTS`.
    """
    m, n = int(datapoints_to_alarm), int(evaluation_periods)
    if not 1 <= m <= n:
        raise ValueError(f"need 1 <= datapoints_to_alarm ({m}) <= evaluation_periods ({n})")
    if treat_missing_data not in TREATMENTS:
        raise ValueError(f"unknown treat_missing_data {treat_missing_data!r}")
    arr = np.asarray(values, dtype=float)
    single = arr.ndim == 1
    arr = np.atleast_2d(arr)
    width = max(n, evaluation_range or n + EXTRA_EVALUATION_POINTS)
    series, steps = arr.shape
    padded = np.concatenate([np.full((series, width - 1), np.nan), arr], axis=1)
    # Every step's evaluation range at once: (series, steps, width), oldest first.
    real = sliding_window_view(~np.isnan(padded), width, axis=1)
    breach = sliding_window_view(breaching(padded, comparison, threshold), width, axis=1)
    # Age of each position in the range (1 = most recent) and whether it is among the last N.
    age = np.arange(width, 0, -1)
    in_last_n = age <= n
    n_real = real.sum(axis=2)
    b_real = breach.sum(axis=2)
    # The N most recent real datapoints: count real points from the right, keep those numbered <= N.
    from_right = np.cumsum(real[:, :, ::-1], axis=2)[:, :, ::-1]
    b_recent = (breach & (from_right <= n)).sum(axis=2)
    all_breach = b_real == n_real
    premature = all_breach & (breach & in_last_n & (age >= m)).any(axis=2)
    # Only breaching real points, too few and too recent to alarm yet: no evidence either way, keep the state.
    undecided = all_breach & ~premature
    if treat_missing_data == "breaching":
        partial = np.where(b_real + (n - n_real) >= m, _ALARM, _OK)
        none = _ALARM
    elif treat_missing_data == "notBreaching":
        partial = np.where(b_real >= m, _ALARM, _OK)
        none = _OK
    elif treat_missing_data == "missing":
        partial = np.where((b_real >= m) | premature, _ALARM, np.where(undecided, _KEEP, _OK))
        none = _INSUFFICIENT
    else:  # ignore
        partial = np.where(b_real >= m, _ALARM, np.where(premature | undecided, _KEEP, _OK))
        none = _KEEP
    code = np.where(n_real >= n, np.where(b_recent >= m, _ALARM, _OK), np.where(n_real == 0, none, partial))
    # A kept state is the last decided one (or the initial state): forward-fill over the _KEEP steps.
    last = np.maximum.accumulate(np.where(code == _KEEP, -1, np.arange(steps)), axis=1)
    initial_code = int(np.flatnonzero(_CODES == initial)[0])
    out = np.where(last >= 0, np.take_along_axis(code, np.maximum(last, 0), axis=1), initial_code)
    states = _CODES[out]
    return states[0] if single else states


def parse_datapoints(text: str) -> np.ndarray:
    """Datapoints written as in the AWS docs (``"0 - X - X"``: 0 not breaching, X breaching, - missing).

    Gives 0.0 / 1.0 / NaN, to be compared with GreaterThanThreshold 0.5. Handy for tests and examples.

    :param text: space-separated symbols, oldest first.
    """
    symbols = {"0": 0.0, "X": 1.0, "-": np.nan}
    return np.array([symbols[s] for s in text.split()], dtype=float)

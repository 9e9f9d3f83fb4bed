"""Learned (dynamic) anomaly detection for CloudWatch metrics, vectorised over many series.

Series sit on a regular grid (``n_series x n_points``, NaN where a datapoint is missing) and are processed in
one-hour blocks, all series at once. For each hour the detector uses, per series, only what it saw before:

- **expected value** = level + seasonal offset. The level is the median of the last 4 hourly medians: a burst shorter
  than 2 h does not move it, a level shift is absorbed within about 2 h. The seasonal offset of an hour is the median
  of (hourly median - level) at the same hour on the last 7 days, used once 3 days are known; the same hour of the
  week takes over once 3 weeks are known (median over the last 4 weeks).
- **spread**: geometric mean of the last 24 hourly half-interquartile ranges, floored at 1 % of the level so that flat
  lines and constant zero still get a band. With one point per hour (1-hour periods) an hour has no quartiles; its
  spread is then 0.8 x the change from the previous hour (the same geometric mean for Gaussian noise, about 0.6 sigma).
- **records**: four views of the residual (the point; the median of 3 points; the 1 h and 6 h means of residuals
  winsorised at 3 spreads, which catch sustained shifts that single points hide) and, for each, the largest
  excursion above and below the expected value seen in the last 28 days.

A point is out of band when a view exceeds its record by 22 % plus 0.28 spreads: further from normal than anything in
the last four weeks. A record is the second-largest daily excursion of those weeks (today so far counting as a day),
or 0.7 x the largest if that is more (the largest alone while fewer than 3 days are known): one incident does not
hide the next one for four weeks, and a pattern seen on two days is learned. The bands thus learn heavy tails (a daily
batch job's spike is flagged on its first two days at most) and any scale (bytes or percent). With less than four
weeks of history the record is first scaled up by how much the maximum of Gaussian noise grows from the points seen to
four weeks' worth, so that a young series is not flagged for each first-time wiggle. At steps coarser than 5 minutes
records are also widened (1.16 at 1 hour, 1.10 at 30 minutes): a day of 24 points has a lower maximum than a day of
288, and hourly white noise passed its band three times as often a day as 5-minute noise; widened, about as often
(on NAB: realAdExchange 66.7 -> 72.4, 37 -> 21 false alerts; realKnownCause 46.6 -> 47.4; the others unchanged).

A fifth view, the **level**, catches what the residuals cannot see because the expected value follows a level within
hours (slow drifts, a plateau never reached before): the mean of the last hour's points against the range (lowest to
highest) of such means over the last 10 days and today's hours until 6 h ago (so a climb over hours does not raise the
range as it goes, and a level shift is learned within the 12 h an episode is silent; on NAB this found a machine
overheating over hours and an ambient-temperature system failure). It is out of band beyond that range by 10 % of its
width (plus 1 % of the level), once a whole day has been seen; a positive series also under half its 10-day low.
That is for falls towards zero (traffic, demand or spend stopping): spikes stretch a positive metric's range, and a
tenth of it below the low is often below zero (on NAB it found the New York blizzard's empty streets in nyc_taxi,
where holidays had taught the residual views large falls, and an ad exchange's cost falling to nothing).

``score`` is view / band (>= 1: out of band; the sensitivity divides the band); ``reason`` names the view that was
furthest out ("point", "15min median", "1h mean", "6h mean", "1h mean outside its 10-day range").

The margins, the record rule and the level view were chosen on three NAB folders (realTraffic, realTweets,
realAWSCloudwatch: ``bench/nab.py``, issue #21) and are the same for every series and step. The widening at coarse
steps, the level view's half-the-low rule and its 6-hour lag were chosen with realKnownCause and realAdExchange in
view too (the first changes only 30-minute and hourly files, which only those two folders have; the other two cost
realTweets 0.8 in all). At these defaults the five folders score 74.5 on average (realKnownCause 62.0, realTraffic
83.0, realAdExchange 79.1, realTweets 76.9, realAWSCloudwatch 71.5; NAB standard profile, each folder normalised).
HTM's anomaly likelihood (Ahmad et al. 2017: a short mean of the score against its distribution over the last days,
alert beyond a Gaussian tail of 1e-5) was tried as a second-level test on the score and not kept: as a gate it removed
as many detected NAB windows as false alerts, as an extra trigger it found none, since the score is already relative
to the series' own records.

Alerts (``is_anomaly``) are episodes: the first out-of-band point raises one; the series is then silent for 12 h and
is re-alerted only if still out of band. No alert is raised before 12 h of history.

Sampling: the detector works on a regular grid of any step that divides an hour or is one hour (``step_seconds``:
60 for 1-minute CloudWatch periods, 3600 for 1-hour ones). :func:`infer_step` picks the step of an irregularly sampled
series (the interval that three quarters of its intervals do not exceed, rounded to a CloudWatch-like period) and
:func:`regularize` puts it on that grid, so that sparse or jittery sampling leaves few empty grid points.

Causality: results at time t use only data at or before t. :class:`Detector` keeps the state between calls (hourly
DAG runs); feeding a series in chunks gives bit for bit the result of one :func:`detect` call, because every sum and
median is anchored on the fixed hour blocks, never on where a chunk starts.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from include.awsgov.anomaly import kernels as kernels

logger = logging.getLogger(__name__)

#: Named sensitivities; a number works too (the band is divided by it: 2.0 = half as wide, more alerts). The steps
#: are small because a band sits just above last week's record, which ordinary data comes close to every week.
SENSITIVITY = {"low": 0.8, "medium": 1.0, "high": 1.1}
DEFAULT_SENSITIVITY = "medium"
#: ``Detection.severity`` indexes this tuple; an out-of-band point is low, medium or high by its score.
SEVERITY_NAMES = ("none", "low", "medium", "high")
SEVERITY_SCORES = (1.0, 1.5, 3.0)
_CHUNK_ELEMENTS = 1 << 19  # series are processed in groups of about this many points (2 MiB per float32 array)
_F = np.float32  # per-point arithmetic: half the memory traffic of float64, ample for a score


@dataclass(frozen=True)
class Params:
    """Detector settings. The defaults are global, chosen for 5-minute CloudWatch metrics (see the module doc)."""

    step_seconds: int = 300
    level_hours: int = 4  # a median of 4 hours ignores a burst under 2 h and follows a level shift within ~2 h
    spread_hours: int = 24
    season_days: int = 7
    season_min_days: int = 3  # fewer days would learn one day's accident as "normal at this hour"
    season_weeks: int = 4
    season_min_weeks: int = 3
    record_days: int = 28  # four weeks: each weekday's usual excursions, and a month's rarer ones, are in the history
    warmup_hours: int = 12  # below that, records say little; longer would miss first-day incidents
    realert_minutes: int = 720  # an episode is one alert, repeated every 12 h while the series stays out of band
    record_margin: float = 0.22  # merely equalling a record is no alert (with spread_margin: chosen on NAB, issue #21)
    record_growth: bool = True  # widen records learned on less than a week (see the module doc)
    # Records are daily maxima: at coarser steps than 5 minutes (where the margins were chosen) a day has fewer points,
    # its maximum is lower and more points pass it. Records are widened by this power of the growth of a Gaussian
    # maximum from a day of such points to a day of 5-minute ones (see _step_widen; 1.16 at 1 hour).
    step_growth: float = 0.5
    spread_margin: float = 0.28  # keeps near-flat series from alerting on their smallest wiggle
    winsor_k: float = 3.0  # one spike moves a 1 h mean by at most 3 spreads / 12
    rel_floor: float = 0.01  # spread floor, as a fraction of the level
    mean_hours: tuple[int, ...] = (1, 6)  # sustained shifts: the 1 h and 6 h means of residuals
    record_top: float = 0.7  # a record is the second-largest day, or 0.7 x the largest if more: see the module doc
    top_days: int = 3
    level_days: int = 10  # the 1 h mean is compared with the range of 1 h means over this many days
    level_margin: float = 0.1  # ... and is out of range beyond it by this fraction of the range
    # ... or, for a positive series, under this fraction of its 10-day low if that comes first: a positive metric's
    # range is stretched by its spikes, so a fall towards zero (traffic, demand or spend stopping) never got a tenth of
    # the range below the low.
    level_floor: float = 0.5
    # ... and today's hours count in that range only from this many hours back: a climb over several hours (a machine
    # overheating, a leak) raised the range with each hour and was never beyond it, while a level shift is still
    # learned within the 12 h an episode is silent, so it is one alert.
    level_lag_hours: int = 6

    @property
    def block(self) -> int:
        """Grid points per block (one hour)."""
        return max(1, round(3600 / self.step_seconds))

    @property
    def view_names(self) -> tuple[str, ...]:
        """Names of the residual views, in ``reason`` code order."""
        return ("point", f"{duration(3 * self.step_seconds)} median", *(f"{h}h mean" for h in self.mean_hours),
                f"{duration(self.block * self.step_seconds)} mean outside its {self.level_days}-day range")


def duration(seconds: int) -> str:
    """A duration as an owner reads it in a reason: "15min", "90min", "3h"."""
    minutes = int(seconds) // 60
    return f"{minutes // 60}h" if minutes >= 60 and minutes % 60 == 0 else f"{minutes}min"


class Detection:
    """Per-point results shaped like the input (series x points, or 1-D for one series).

    ``score`` >= 1 means out of band; ``is_anomaly`` marks alerts (episode starts); ``severity`` indexes
    :data:`SEVERITY_NAMES` (0 inside the band); ``reason`` indexes ``view_names`` where the point is out of band.
    ``expected``/``lower``/``upper`` (metric units, band of the point view) are constant within an hour, so they are
    kept per hour and expanded when read; :meth:`at` reads them for a few points only.
    """

    def __init__(self, values, score, is_anomaly, severity, reason, hourly, block: int, offset: int,
                 view_names: tuple[str, ...]):
        """Hold the arrays; ``hourly`` is (3, n, hours) expected/lower/upper; point i is in hour (offset+i)//block."""
        self.values, self.score, self.is_anomaly = values, score, is_anomaly
        self.severity, self.reason, self.view_names = severity, reason, view_names
        self._hourly, self._block, self._offset = hourly, block, offset

    def _expand(self, which: int) -> np.ndarray:
        k = self.score.shape[-1]
        hour = (self._offset + np.arange(k)) // self._block
        out = self._hourly[which][:, hour]
        return out[0] if self.score.ndim == 1 else out

    @property
    def expected(self) -> np.ndarray:
        """Expected value of every point."""
        return self._expand(0)

    @property
    def lower(self) -> np.ndarray:
        """Lower edge of the band of every point (NaN while the detector is still learning)."""
        return self._expand(1)

    @property
    def upper(self) -> np.ndarray:
        """Upper edge of the band of every point (NaN while the detector is still learning)."""
        return self._expand(2)

    @property
    def out_of_band(self) -> np.ndarray:
        """Points outside their band (the alerts are the first of each episode)."""
        return self.score >= 1.0

    def at(self, rows: np.ndarray, cols: np.ndarray) -> dict[str, np.ndarray]:
        """Expected, lower and upper at a few points (row = series, col = point) without expanding whole arrays.

        :param rows: series indices (zeros for a 1-D detection).
        :param cols: point indices.
        """
        hour = (self._offset + np.asarray(cols)) // self._block
        return {name: self._hourly[i][np.asarray(rows), hour] for i, name in enumerate(("expected", "lower", "upper"))}


def resolve_sensitivity(sensitivity: str | float) -> float:
    """Turn "low"/"medium"/"high" or a positive number into the band divisor.

    :param sensitivity: a name from :data:`SENSITIVITY` or a number > 0.
    """
    if isinstance(sensitivity, str):
        if sensitivity not in SENSITIVITY:
            raise ValueError(f"sensitivity must be one of {sorted(SENSITIVITY)} or a number, not {sensitivity!r}")
        return SENSITIVITY[sensitivity]
    value = float(sensitivity)
    if not value > 0:
        raise ValueError(f"sensitivity must be > 0, not {sensitivity!r}")
    return value


_LOCAL = threading.local()


@functools.cache
def _keep_freed_memory() -> None:
    """Let glibc keep freed memory for reuse instead of returning it to the kernel at once (once per process).

    Each group of series allocates and frees the same few megabytes of temporaries. By default glibc trims a heap as
    soon as its free top exceeds a small adaptive threshold, and the next group faults the same pages in again: in a
    fresh process, 250,000 page faults and 1.5 s of system time for 40 million points. Fixed thresholds (arrays up to
    32 MiB from the heap, trim beyond 128 MiB free) stop that, at the cost of keeping up to that much free memory.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 128 << 20)


def _buffer(name: str, shape: tuple[int, ...], dtype=_F) -> np.ndarray:
    """A per-thread scratch array, reused from one group of series to the next.

    Freshly allocated multi-megabyte temporaries are mapped and faulted in by the kernel every time; at 40 million
    points that system time was larger than the arithmetic.
    """
    cache = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {}
    key = (name, shape, dtype)
    arr = cache.get(key)
    if arr is None:
        for old in [k for k in cache if k[0] == name]:
            del cache[old]
        arr = cache[key] = np.empty(shape, dtype=dtype)
    return arr


@functools.lru_cache(maxsize=8)
def _zeros(shape: tuple[int, ...], dtype=_F) -> np.ndarray:
    """A read-only array of zeros: max and min are several times faster with it than with a scalar 0."""
    arr = np.zeros(shape, dtype)
    arr.flags.writeable = False
    return arr


@functools.cache
def _network(k: int) -> tuple[tuple[int, int], ...]:
    """Compare-exchange pairs of Batcher's odd-even merge sort for k values (16 for 7 values, 42 for 12)."""
    pairs, p = [], 1
    while p < k:
        q = p
        while q >= 1:
            for j in range(q % p, k - q, 2 * q):
                for i in range(min(q, k - j - q)):
                    if (i + j) // (2 * p) == (i + j + q) // (2 * p):
                        pairs.append((i + j, i + j + q))
            q //= 2
        p *= 2
    return tuple(pairs)


def _sort_rows(v: Sequence[np.ndarray], buf: np.ndarray) -> list[int]:
    """Sort k equally shaped arrays element-wise by a sorting network, NaN (missing) last, into rows of ``buf``.

    Sorting millions of rows of 4-12 values with np.sort is dominated by per-row overhead; min/max on whole arrays is
    not. fmin and maximum order NaN as +inf. v is read only; buf has k + 1 rows. Returns the row of buf holding each
    rank.
    """
    k = len(v)
    arr, pos, free = list(v), [None] * k, list(range(k + 1))
    for a, b in _network(k):
        lo = free.pop()
        hi = free.pop() if pos[b] is None else pos[b]
        np.fmin(arr[a], arr[b], out=buf[lo])
        np.maximum(arr[a], arr[b], out=buf[hi])
        if pos[a] is not None:
            free.append(pos[a])
        pos[a], pos[b], arr[a], arr[b] = lo, hi, buf[lo], buf[hi]
    if k == 1:
        buf[0] = v[0]
        pos = [0]
    return pos


def _count(missing: np.ndarray, axis: int) -> np.ndarray:
    """Values present along an axis of a missing-value mask (summed as uint8 when short: several times faster)."""
    k = missing.shape[axis]
    return k - np.add.reduce(missing, axis=axis, dtype=np.uint8 if k < 256 else np.int64).astype(np.int64)


def _at_ranks(buf: np.ndarray, pos: list[int], count: np.ndarray, ranks) -> list[np.ndarray]:
    """Values of sorted rows (``_sort_rows``) at the ranks ``ranks(c)`` for c values present."""
    k = len(pos)
    out = [buf[pos[int(r)]].copy() for r in ranks(np.int64(k))]  # fixed ranks where nothing is missing
    gappy = np.flatnonzero(count < k)  # 1-D: np.nonzero on 2-D arrays is an order of magnitude slower
    if gappy.size:
        row, flat = np.asarray(pos), buf.reshape(k + 1, -1)
        for o, r in zip(out, ranks(count.ravel()[gappy]), strict=True):
            o.ravel()[gappy] = flat[row[r.astype(np.int64)], gappy]
    return out


def _median_ranks(c):
    """Ranks of the two middle values of c sorted values."""
    return np.maximum(c - 1, 0) // 2, np.minimum(c // 2, np.maximum(c - 1, 0))


def _median_of(v: np.ndarray) -> np.ndarray:
    """Element-wise median over the first axis of v (k, ...) ignoring NaN (NaN where all are)."""
    buf = np.empty((len(v) + 1, *v.shape[1:]))
    lo, hi = _at_ranks(buf, _sort_rows(v, buf), _count(np.isnan(v), 0), _median_ranks)
    med = np.add(lo, hi, out=lo)
    med *= 0.5
    return med


def _hour_stats(XT: np.ndarray, rel_floor: float) -> np.ndarray:
    """Per complete hour of XT (B, rows, hours): median, log of (half the interquartile range + floor), point count."""
    B, n, J = XT.shape
    buf = _buffer("hour values", (B + 1, n, J), np.float64)
    pos = _sort_rows(list(XT), buf)
    cnt = _count(np.isnan(XT), 0)

    def ranks(c):
        """Median and quartile ranks of c sorted values (the same formulas for complete and gappy hours)."""
        c1 = np.maximum(c - 1, 0)
        return (*_median_ranks(c), np.floor(c1 * 0.25 + 0.5), np.floor(c1 * 0.75 + 0.5))

    lo, hi, q1, q3 = _at_ranks(buf, pos, cnt, ranks)
    out = np.empty((3, n, J))
    with np.errstate(invalid="ignore", divide="ignore"):
        med = np.add(lo, hi, out=out[0])
        med *= 0.5
        iqr = np.subtract(q3, q1, out=q3)
        iqr *= 0.5
        iqr += rel_floor * np.abs(med)
        iqr += 1e-12
        np.log(iqr, out=out[1])
    out[2] = cnt
    return out


def _lagged(hist: np.ndarray, new: np.ndarray, lags) -> np.ndarray:
    """For each lag L, the (n, k) array of values L steps before each column of ``new`` (``hist`` comes first)."""
    both = np.concatenate([hist, new], axis=1)
    h, k = hist.shape[1], new.shape[1]
    return np.stack([both[:, h - lag: h - lag + k] for lag in lags])


@functools.cache
def _growth(week: int, B: int) -> np.ndarray:
    """Record growth after b blocks seen, b = 0 .. week // B: sqrt(log(points in a week) / log(points seen))."""
    return np.sqrt(np.log(week) / np.log(np.clip(np.arange(week // B + 1) * B, 3, week)))


def _step_widen(step_seconds: int, power: float) -> float:
    """How much wider records are at this step: sqrt(log(points a day at 5 min) / log(points a day)) ** power, at
    least 1 (1.16 at 1 hour, 1.10 at 30 minutes, 1.06 at 15, none at 5 minutes or finer: those keep the bands they were
    tuned with). On white noise, hourly points passed their band 48 times as often as 5-minute ones (3 times as often
    per day); with power 0.5 about as often per day (0.0037 against 0.004 out-of-band points a series-day).
    """
    per_day = max(2.0, 86400 / max(1, step_seconds))
    return max(1.0, float(np.sqrt(np.log(86400 / 300) / np.log(per_day))) ** power)


class Detector:
    """Streaming detector for ``n_series`` aligned series: :meth:`update` scores the next points of every series."""

    def __init__(self, n_series: int, sensitivity: str | float = DEFAULT_SENSITIVITY, start_time=None,
                 params: Params | None = None):
        """Create an empty state.

        :param n_series: number of series (rows) given to :meth:`update`.
        :param sensitivity: "low", "medium" (default) or "high", or a number (the band is divided by it).
        :param start_time: time of the first grid point (UTC), to align hours and days; None = a Monday 00:00.
        :param params: detector settings; None for the defaults.
        """
        p = self.p = params or Params()
        self.n = n = int(n_series)
        self.sensitivity = resolve_sensitivity(sensitivity)
        B = p.block
        if 3600 % p.step_seconds:
            logger.warning("step %ss does not divide an hour; blocks of %s points stand in for hours",
                           p.step_seconds, B)
        self.mean_blocks = tuple(max(1, int(h)) for h in p.mean_hours)
        self.realert = max(1, round(p.realert_minutes * 60 / p.step_seconds))
        self.step_widen = _step_widen(p.step_seconds, p.step_growth)
        self.warmup_blocks = max(1, round(p.warmup_hours * 3600 / (B * p.step_seconds)))
        lead, hour0 = 0, 0
        if start_time is not None:
            ts = pd.Timestamp(start_time)
            ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts
            lead = int((ts.minute * 60 + ts.second) // p.step_seconds) % B
            hour0 = ts.day_of_week * 24 + ts.hour
        self.hour0 = hour0  # hour of the week of block 0
        self.blocks = 0  # complete blocks folded into the state
        # A leading NaN pad puts block starts on the hour; it counts as already returned.
        self.pending = np.full((n, lead), np.nan)
        self.emitted = lead
        nv, tb = 2 + len(self.mean_blocks), max(self.mean_blocks)
        # Histories, oldest first: hourly medians, their offsets from the level, log hourly spreads.
        self.level_hist = np.full((n, max(1, p.level_hours)), np.nan)
        self.last_level = np.full(n, np.nan)
        self.dev_hist = np.full((n, max(24 * p.season_days, 168 * p.season_weeks, 1)), np.nan)
        self.spread_hist = np.full((n, max(1, p.spread_hours)), np.nan)
        self.rec_ring = np.full((2, nv, n, max(1, p.record_days)), -np.inf, dtype=_F)  # [max, -min] per view, day
        self.rec_cur = np.full((2, nv, n), -np.inf, dtype=_F)  # the same for the current day so far
        self.res_tail = np.full((n, 2), np.nan, dtype=_F)  # last two residuals (for the median of 3)
        self.win_tail = np.full((n, B, tb), np.nan, dtype=_F)  # winsorised residuals of the last blocks (means)
        # The level view's [max, -min] 1 h mean per day and today so far, and the last complete block's values.
        self.level_ring = np.full((2, 1, n, max(1, p.level_days)), -np.inf)
        self.level_cur = np.full((2, 1, n, 24), -np.inf)  # running max at each hour of today (see level_lag_hours)
        self.level_tail = np.full((n, B), np.nan)
        self.valid_blocks = np.zeros(n, dtype=np.int64)
        self.last_alert = np.full(n, -(1 << 40), dtype=np.int64)

    def update(self, values) -> Detection:
        """Score the next points of every series and return their results (same shape as ``values``).

        :param values: (n_series, k) array of the next k grid points (NaN = missing), or 1-D when n_series is 1.
        """
        x = np.asarray(values, dtype=np.float64)
        one_d = x.ndim == 1
        if one_d:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[0] != self.n:
            raise ValueError(f"expected {self.n} series, got an array of shape {np.shape(values)}")
        _keep_freed_memory()
        k, B, pend = x.shape[1], self.p.block, self.pending.shape[1]
        m = pend + k
        J, nb = m // B, -(-m // B)  # complete blocks, blocks including a partial last one
        if k == 0:
            empty = np.zeros((self.n, 0))
            arrays = [x, empty.astype(_F), empty.astype(bool), empty.astype(np.int8), empty.astype(np.int8)]
            if one_d:
                arrays = [a[0] for a in arrays]
            return Detection(*arrays, hourly=np.zeros((3, self.n, 0)), block=B, offset=0, view_names=self.p.view_names)
        if pend == 0 and m == nb * B:
            padded = np.ascontiguousarray(x)
        else:
            padded = np.full((self.n, nb * B), np.nan)
            padded[:, :pend] = self.pending
            padded[:, pend:m] = x
        score = np.empty((self.n, nb * B), dtype=_F)
        alerts = np.zeros((self.n, nb * B), dtype=bool)
        reason = np.empty((self.n, nb * B), dtype=np.int8)  # every point written by anomaly_kernels.scores
        severity = np.empty((self.n, nb * B), dtype=np.int8)
        hourly = np.empty((3, self.n, nb))
        X = padded.reshape(self.n, nb, B)
        rows = max(1, _CHUNK_ELEMENTS // max(1, nb * B))
        groups = [slice(r0, min(self.n, r0 + rows)) for r0 in range(0, self.n, rows)]
        infinite = []

        def run(sl):
            # Laid out (B, rows, hours): per-hour quantities broadcast over whole contiguous slabs, and the slab of
            # each position within the hour is contiguous. An infinite reading is no measurement: NaN.
            XT = _buffer("values", (B, sl.stop - sl.start, nb), np.float64)
            if kernels.by_position_in_hour(X[sl], XT):
                infinite.append(sl)
            stats = _hour_stats(XT[:, :, :J], self.p.rel_floor)
            base = self._baseline(sl, stats, nb)
            self._process(sl, XT, J, base, stats[2] > 0, score[sl], alerts[sl], reason[sl], severity[sl],
                          hourly[:, sl])

        # Groups of series are independent, and numpy and the compiled loops release the GIL: use the machine's cores.
        # Groups of 2**19 points measured 5-10 % faster than 2**18 (fewer Python steps) and far faster than 2**16.
        workers = min(len(groups), os.cpu_count() or 1)
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(run, groups))
        else:
            for sl in groups:
                run(sl)
        if infinite:
            x = np.where(np.isinf(x), np.nan, x)
        self.blocks += J
        self.pending = padded[:, J * B:m].copy()
        skip, self.emitted = self.emitted, self.pending.shape[1]
        cut = slice(skip, skip + k)
        score, alerts, reason, severity = score[:, cut], alerts[:, cut], reason[:, cut], severity[:, cut]
        arrays = [x, score, alerts, severity, reason]
        if one_d:
            arrays = [a[0] for a in arrays]
        return Detection(*arrays, hourly=hourly, block=B, offset=skip, view_names=self.p.view_names)

    def _process(self, sl: slice, XT: np.ndarray, J: int, base: np.ndarray, valid_blk: np.ndarray,
                 score_out: np.ndarray, alerts: np.ndarray, reason_out: np.ndarray, severity_out: np.ndarray,
                 hourly: np.ndarray) -> None:
        """Score a group of series: XT is (B, rows, nb) from the first uncommitted block; J blocks are complete.

        Per-point work runs in the compiled loops of ``anomaly_kernels``; the hour-level work (bands) stays here.
        """
        p = self.p
        B, n, nb = XT.shape
        expected, spread = base
        seen = np.empty((n, nb), np.int64)  # blocks with data before each block
        seen[:, 0] = self.valid_blocks[sl] - valid_blk.sum(1)
        np.cumsum(valid_blk[:, :nb - 1], 1, out=seen[:, 1:])
        seen[:, 1:] += seen[:, :1]
        warm = seen >= self.warmup_blocks

        # Residual views (0 point, 1 median of 3, then the means of winsorised residuals) and their block extremes.
        nv, tb = 2 + len(self.mean_blocks), self.win_tail.shape[2]
        view = _buffer("view", (nv, B, n, nb))
        pre = _buffer("pre", (B, n, tb + nb))
        pre[:, :, :tb] = self.win_tail[sl].transpose(1, 0, 2)
        bmax = np.empty((2, nv, n, J), dtype=_F)
        win_tail = np.empty((n, B, tb), dtype=_F)
        res_tail = np.empty((n, 2), dtype=_F)
        kernels.views(XT, expected, (p.winsor_k * spread).astype(_F), self.res_tail[sl], pre,
                      np.asarray(self.mean_blocks, dtype=np.int64), J, view, bmax, win_tail, res_tail)

        # Bands: each view's record, widened by the margins and divided by the sensitivity; score = view / band.
        rec, ring, cur = self._records(bmax, nb, self.rec_ring[:, :, sl], self.rec_cur[:, :, sl], p.record_top, "view",
                                       seen < p.top_days * 24)
        # A record over a short history underestimates one over record_days: scale it by the growth of a Gaussian
        # maximum, sqrt(log(points in record_days) / log(points seen)) (at 5 minutes and 28 days: 1.35 after 12 h,
        # 1.15 after 3 days, 1.09 after a week, 1 after four weeks).
        week = p.record_days * 24 * B
        grow = _growth(week, B)[np.minimum(seen, week // B)] if p.record_growth else 1.0
        if self.step_widen != 1.0:
            grow = grow * self.step_widen
        band = _buffer("band", rec.shape, np.float64)
        inv = _buffer("inverse band", rec.shape)  # 1 / upper band, -1 / lower band; 0 where no band yet
        with np.errstate(divide="ignore", invalid="ignore"):
            np.maximum(rec, _zeros(rec.shape), out=band)
            band *= (1.0 + p.record_margin) * grow
            band += p.spread_margin * spread
            band /= self.sensitivity
            np.divide(1.0, band[0], out=inv[0])
            np.divide(-1.0, band[1], out=inv[1])
        gate = np.isfinite(rec).all(axis=0) & warm[None] & np.isfinite(expected)[None]  # (nv, n, nb)
        np.copyto(inv, 0.0, where=~gate)
        # The level view waits for a whole day of 1 h means: before that, every hour of a daily cycle is "new".
        level, level_inv, level_state = self._level(sl, XT, J, warm & (seen >= 24) & np.isfinite(expected))
        found = _buffer("out of band", (score_out.size,), np.int64)
        k = kernels.scores((*view, level), (*inv[0], level_inv[0]), (*inv[1], level_inv[1]),
                           np.asarray(SEVERITY_SCORES, dtype=_F), score_out, reason_out, severity_out,
                           found)  # SEVERITY_SCORES[0] == 1: out of band
        rr, cc = np.divmod(found[:k], score_out.shape[1])
        last_alert = self._alerts(sl, rr, cc, J * B, alerts)
        with np.errstate(invalid="ignore"):
            hourly[0] = expected
            hourly[1] = expected - np.where(gate[0], band[1, 0], np.nan)
            hourly[2] = expected + np.where(gate[0], band[0, 0], np.nan)

        # Fold the complete blocks into the state (the baseline folded its own part).
        self.rec_ring[:, :, sl] = ring
        self.rec_cur[:, :, sl] = cur
        self.level_ring[:, :, sl], self.level_cur[:, :, sl], self.level_tail[sl] = level_state
        if J:
            self.res_tail[sl] = res_tail
            self.win_tail[sl] = win_tail
        self.last_alert[sl] = last_alert

    def _level(self, sl: slice, XT: np.ndarray, J: int, ok: np.ndarray):
        """The level view: each point's 1 h mean minus the middle of the range of 1 h means over the last
        ``level_days`` days (and today's earlier hours), with its inverse band (0 where ``ok`` is False or there is no
        range yet) and the state to keep.

        Out of band means outside that range by more than ``level_margin`` of its width (plus ``spread_margin``
        spreads, divided by the sensitivity as the other bands): a level the series has not had for days. The views
        of residuals cannot see that, since the expected value follows a level within hours.
        """
        p = self.p
        B, n, nb = XT.shape
        mean = _buffer("level", (B, n, nb), np.float64)
        ext = np.empty((2, 1, n, J))
        tail = np.empty((n, B))
        kernels.levels(XT, J, self.level_tail[sl], mean, ext, tail)
        rec, ring, cur = self._records(ext, nb, self.level_ring[:, :, sl], self.level_cur[:, :, sl], 1.0, "level",
                                       lag=max(1, p.level_lag_hours))
        hi, lo = rec[0, 0], -rec[1, 0]
        view = _buffer("level view", (B, n, nb))
        inv = np.zeros((2, n, nb), dtype=_F)
        with np.errstate(invalid="ignore", divide="ignore"):
            mid = 0.5 * (hi + lo)
            np.subtract(mean, mid, out=view, casting="same_kind")
            floor = p.rel_floor * np.abs(mid) + 1e-12
            band = ((0.5 + p.level_margin) * (hi - lo) + floor) / self.sensitivity
            gate = ok & np.isfinite(mid)
            np.divide(1.0, band, out=inv[0], where=gate, casting="same_kind")
            # Below the range a positive series is also out under level_floor x its low (see Params).
            drop = (1.0 - p.level_floor) * lo
            low = np.where((lo > 0) & (drop < p.level_margin * (hi - lo)),
                           (0.5 * (hi - lo) + drop + floor) / self.sensitivity, band)
            np.divide(-1.0, low, out=inv[1], where=gate, casting="same_kind")
        return view, inv, (ring, cur, tail)

    def _baseline(self, sl: slice, stats: np.ndarray, nb: int) -> np.ndarray:
        """Expected value and spread per hour (2, rows, nb) from hourly medians, seasonal offsets and hourly spreads.

        Vectorised over all hours: it depends on the data only (never on alerts), and every window reads the committed
        history first, so a chunked run computes the very same numbers. Also folds the complete hours into the state.
        """
        p = self.p
        bmed, log_spread, cnt = stats
        n, J = bmed.shape
        valid_blk = cnt > 0
        pad = np.full((n, nb - J), np.nan)

        # Level: median of the previous hours' medians, carried forward over gaps longer than that.
        level = _median_of(_lagged(self.level_hist[sl], np.concatenate([bmed, pad], 1),
                                   range(1, self.level_hist.shape[1] + 1)))
        unknown = np.flatnonzero(np.isnan(level).any(axis=0))
        if unknown.size:  # only the hours up to the last unknown one change
            head = level[:, :unknown[-1] + 1]
            idx = np.maximum.accumulate(np.where(np.isnan(head), -1, np.arange(head.shape[1])), axis=1)
            head[:] = np.where(idx >= 0, np.take_along_axis(head, np.maximum(idx, 0), 1), self.last_level[sl][:, None])
        # Seasonal offset of an hour: median of (hourly median - level) at the same hour on earlier days / weeks.
        dev = bmed - level[:, :J]
        dev_all = np.concatenate([dev, pad], 1)
        season = np.zeros((n, nb))
        for period, count, need in ((24, p.season_days, p.season_min_days), (168, p.season_weeks, p.season_min_weeks)):
            if count < need or self.blocks + nb <= period * need:
                continue  # not enough history for any series yet
            samples = _lagged(self.dev_hist[sl], dev_all, period * np.arange(1, count + 1))
            use = _count(np.isnan(samples), 0) >= need
            cols = np.flatnonzero(use.any(axis=0))  # hours where some series has enough history
            if cols.size:
                c0 = cols[0]
                season[:, c0:] = np.where(use[:, c0:], _median_of(samples[:, :, c0:]), season[:, c0:])
        expected = level + season

        # Spread: geometric mean of the last hours' spreads (a burst hour moves it little). The logs are summed as
        # integers (units of 2**-32), so the rolling sums are exact and a chunked run agrees to the last bit.
        if p.block == 1:
            # One point per hour has no quartiles: use the change from the previous hour (0.8 x |difference| has about
            # the geometric mean of a half-IQR under Gaussian noise), floored like the half-IQR.
            prev = np.concatenate([self.level_hist[sl][:, -1:], bmed[:, :-1]], 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                log_spread = np.log(0.8 * np.abs(bmed - prev) + p.rel_floor * np.abs(bmed) + 1e-12)
        both = np.concatenate([self.spread_hist[sl], log_spread, pad], 1)
        ok = ~np.isnan(both)
        q = np.zeros((n, both.shape[1] + 1), dtype=np.int64)
        fixed = np.where(ok, both, 0.0)
        fixed *= 2.0**32
        np.cumsum(np.rint(fixed, out=fixed).astype(np.int64), axis=1, out=q[:, 1:])
        c = np.zeros((n, both.shape[1] + 1), dtype=np.int64)
        np.cumsum(ok, axis=1, out=c[:, 1:])
        w = self.spread_hist.shape[1]
        tot = (q[:, w: w + nb] - q[:, :nb]).astype(np.float64) * 2.0**-32
        num = c[:, w: w + nb] - c[:, :nb]
        with np.errstate(invalid="ignore", over="ignore"):
            spread = np.where(num > 0, np.exp(tot / np.maximum(num, 1)), 0.0)
        spread = np.fmax(spread, p.rel_floor * np.abs(np.nan_to_num(expected)) + 1e-12)

        if J:
            def keep(old, new):
                return np.concatenate([old, new], 1)[:, -old.shape[1]:]

            self.level_hist[sl] = keep(self.level_hist[sl], bmed)
            self.dev_hist[sl] = keep(self.dev_hist[sl], dev)
            self.spread_hist[sl] = keep(self.spread_hist[sl], log_spread)
            self.last_level[sl] = level[:, J - 1]
            self.valid_blocks[sl] += valid_blk.sum(1)
        return np.stack([expected, spread])

    def _records(self, bmax: np.ndarray, nb: int, ring: np.ndarray, cur: np.ndarray, top: float, name: str,
                 young: np.ndarray | None = None, lag: int = 1):
        """Per block, each view's record excursion above (rec[0]) and below (rec[1]) the expected value over the last
        whole days (as many as ``ring`` holds) and the earlier blocks of the same day; also the new ring and today's.

        The record is the second largest of those days' excursions (today so far counting as a day), or ``top`` times
        the largest if that is more: one incident does not hide the next one for weeks, and a pattern that recurred
        on two days is learned. ``top`` = 1, and blocks marked ``young`` (too few days seen), take the largest.
        Today's blocks count from ``lag`` blocks back (1: all earlier ones).

        :param bmax: (2, nv, rows, J) each complete block's largest excursions (:func:`anomaly_kernels.views`).
        :param nb: blocks including a partial last one.
        :param ring: (2, nv, rows, days) the state's daily maxima; ``cur``: (2, nv, rows) today's so far, or
            (2, nv, rows, 24) today's running maximum at each hour (needed for ``lag`` > 1).
        :param top: weight of the largest day (see above).
        :param name: prefix of the scratch buffers (each caller keeps its own).
        """
        _, nv, n, J = bmax.shape
        dtype = ring.dtype
        # Lay the blocks out as whole days (hour of day on the last axis); `cur` stands for today's earlier blocks.
        first = (self.hour0 + self.blocks) % 24
        ndays = -(-(first + nb) // 24)
        flat = _buffer(f"{name} grid", (2, nv, n, ndays * 24), dtype)
        flat.fill(-np.inf)
        flat[..., first: first + J] = bmax
        hourly = cur.ndim == 4
        if hourly:
            flat[..., :first] = cur[..., :first]
        elif first:
            flat[..., first - 1] = cur
        grid = flat.reshape(2, nv, n, ndays, 24)
        for h in range(1, 24):  # running max over the day; faster than accumulate along a short last axis
            np.maximum(grid[..., h], grid[..., h - 1], out=grid[..., h])
        today = _buffer(f"{name} today", grid.shape, dtype)
        today[..., :lag] = -np.inf
        today[..., lag:] = grid[..., :-lag]  # blocks of the same day at least `lag` before
        rd = ring.shape[3]
        day0 = (self.hour0 + self.blocks) // 24
        days = np.concatenate([ring[..., (day0 - rd + np.arange(rd)) % rd], grid[..., -1]], axis=3)
        past = days[..., 0:ndays].copy()  # largest of the past days, then (with `second`) the two largest
        if top >= 1.0:
            for k in range(1, rd):
                np.maximum(past, days[..., k: k + ndays], out=past)
            np.maximum(today, past[..., None], out=today)
        else:
            second = np.full_like(past, -np.inf)
            for k in range(1, rd):
                d = days[..., k: k + ndays]
                np.maximum(second, np.minimum(past, d), out=second)
                np.maximum(past, d, out=past)
            largest = np.maximum(today, past[..., None])
            np.minimum(today, past[..., None], out=today)
            np.maximum(today, second[..., None], out=today)
            np.maximum(today, top * largest, out=today)
            if young is not None:  # too few days for a second largest: the largest
                y = np.zeros((n, ndays * 24), dtype=bool)
                y[:, first: first + nb] = young
                y = y.reshape(n, ndays, 24)
                np.copyto(today, largest, where=y)
        rec = today.reshape(2, nv, n, -1)[..., first: first + nb].copy()
        # New state: completed days enter the ring; the running max of an unfinished day becomes `cur`.
        ring = ring.copy()
        done = (first + J) // 24
        for i in range(max(0, done - rd), done):
            ring[..., (day0 + i) % rd] = grid[..., i, -1]
        h = (first + J) % 24
        if hourly:
            cur = np.full((2, nv, n, 24), -np.inf, dtype=dtype)
            if h:
                cur[..., :h] = grid[..., done, :h]
        elif h == 0:
            cur = np.full((2, nv, n), -np.inf, dtype=dtype)
        else:
            cur = grid[..., done, h - 1].copy()
        return rec, ring, cur

    def _alerts(self, sl: slice, rr: np.ndarray, cc: np.ndarray, committed: int, alerts: np.ndarray) -> np.ndarray:
        """Mark alerts among out-of-band points (rr, cc sorted by row then column): one per episode, then silence.

        Vectorised over series, one round per alert. Returns each series' last alert in the committed blocks.
        """
        start = self.blocks * self.p.block
        last = self.last_alert[sl].copy()
        if not rr.size:
            return last
        stride = int(cc.max()) + self.realert + 2
        key = rr.astype(np.int64) * stride + cc
        rows = rr[np.r_[True, rr[1:] != rr[:-1]]]  # rr is sorted: np.unique would sort it again
        target = rows * stride + np.clip(last[rows] - start + self.realert + 1, 0, stride - 1)
        while rows.size:
            pos = np.searchsorted(key, target)
            ok = pos < key.size
            ok[ok] = rr[pos[ok]] == rows[ok]
            rows, pos = rows[ok], pos[ok]
            col = cc[pos]
            alerts[rows, col] = True
            inside = col < committed
            last[rows[inside]] = start + col[inside]
            target = rows * stride + col + self.realert + 1
        return last


def detect(values, step_seconds: int = 300, sensitivity: str | float = DEFAULT_SENSITIVITY, start_time=None,
           params: Params | None = None) -> Detection:
    """Run the detector over whole series at once (the same result as streaming them through :class:`Detector`).

    :param values: (n_series, n_points) array on a regular grid (NaN = missing), or a 1-D array for one series.
    :param step_seconds: grid step in seconds; 300 for CloudWatch's 5-minute period.
    :param sensitivity: "low", "medium" (default) or "high", or a number (the band is divided by it).
    :param start_time: time of the first grid point (UTC), to align hours and days; None = a Monday 00:00.
    :param params: detector settings; None for the defaults (``step_seconds`` overrides theirs).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ValueError("values must be 1-D (one series) or 2-D (series x points)")
    p = replace(params or Params(), step_seconds=int(step_seconds))
    det = Detector(1 if x.ndim == 1 else x.shape[0], sensitivity=sensitivity, start_time=start_time, params=p)
    return det.update(x)


#: Grid steps :func:`infer_step` chooses from (seconds): CloudWatch-like periods.
STEPS = (60, 120, 300, 600, 900, 1800, 3600)


def infer_step(timestamps) -> int:
    """The grid step (seconds) for a series sampled at these times: the 75th percentile of the intervals between
    distinct timestamps, rounded (on a log scale) to the nearest of :data:`STEPS`.

    Regular series get their own step (5 minutes, 30 minutes, an hour). For irregular ones (sensors that report every
    1-20 minutes) the median interval would leave most grid points empty; at the interval that three quarters of the
    intervals do not exceed, most grid points hold a value and close readings are averaged. Never keyed on names.

    :param timestamps: the observation times (anything ``pd.to_datetime`` reads); 300 when fewer than two distinct.
    """
    ts = np.unique(pd.to_datetime(pd.Series(timestamps)).to_numpy(dtype="datetime64[ns]").astype(np.int64))
    if ts.size < 2:
        return 300
    q = float(np.quantile(np.diff(ts), 0.75)) / 1e9
    steps = np.asarray(STEPS, dtype=np.float64)
    return int(steps[np.argmin(np.abs(np.log(steps / max(q, 1.0))))])


def grid_positions(timestamps, start, step: str | pd.Timedelta = "5min") -> np.ndarray:
    """Index of each timestamp on the grid ``start + k * step``, rounded to the nearest grid point.

    :param timestamps: the observation times (anything ``pd.to_datetime`` reads).
    :param start: the grid's first point.
    :param step: grid step, e.g. "5min".
    """
    ts = pd.to_datetime(pd.Series(timestamps)).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    origin = np.datetime64(pd.Timestamp(start).to_datetime64(), "ns").astype(np.int64)
    return np.floor((ts - origin) / pd.Timedelta(step).value + 0.5).astype(np.int64)


def regularize(timestamps, values, step: str | pd.Timedelta | None = "5min", origin="start") -> pd.Series:
    """Put one series on a regular grid: steps without data become NaN, points landing on the same step are averaged.

    Rounding to the nearest step absorbs clocks a few minutes off the grid and duplicated stamps such as NAB's
    daylight-saving artefact (12 rows stamped 03:00 become one point next to a one-hour gap).

    :param timestamps: the observation times.
    :param values: the observed values, same length.
    :param step: grid step, e.g. "5min"; None picks it from the timestamps (:func:`infer_step`).
    :param origin: "start" (grid anchored on the first timestamp), "epoch" (multiples of the step) or a timestamp.
    """
    ts = pd.to_datetime(pd.Series(timestamps)).reset_index(drop=True)
    if step is None:
        step = pd.Timedelta(seconds=infer_step(ts))
    vals = np.asarray(values, dtype=np.float64)
    if len(ts) != len(vals):
        raise ValueError("timestamps and values must have the same length")
    step_td = pd.Timedelta(step)
    if ts.empty:
        return pd.Series([], index=pd.DatetimeIndex([]), dtype=np.float64)
    if isinstance(origin, str) and origin == "start":
        start = ts.min()
    elif isinstance(origin, str) and origin == "epoch":
        start = ts.min().floor(step_td)
    else:
        start = pd.Timestamp(origin)
    pos = grid_positions(ts, start, step_td)
    keep = (pos >= 0) & ~np.isnan(vals)
    size = int(pos.max()) + 1 if pos.max() >= 0 else 0
    total = np.bincount(pos[keep], weights=vals[keep], minlength=size)
    count = np.bincount(pos[keep], minlength=size)
    with np.errstate(invalid="ignore"):
        grid = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return pd.Series(grid, index=pd.date_range(start, periods=size, freq=step_td))


def anomalies_frame(detection: Detection, series_ids: Sequence | None = None, timestamps=None) -> pd.DataFrame:
    """One row per alert, ready to store: series_id, timestamp, value, expected, lower, upper, score, severity, reason.

    :param detection: the result of :func:`detect` or :meth:`Detector.update`.
    :param series_ids: one id per series (row); default 0..n-1.
    :param timestamps: the grid's timestamps, one per column; default the column index.
    """
    alert = np.atleast_2d(detection.is_anomaly)
    rows, cols = np.nonzero(alert)
    ids = np.arange(alert.shape[0]) if series_ids is None else np.asarray(list(series_ids), dtype=object)
    when = cols if timestamps is None else pd.DatetimeIndex(pd.to_datetime(timestamps))[cols]
    band = detection.at(rows, cols)

    def pick(a):
        return np.atleast_2d(a)[rows, cols]

    return pd.DataFrame({
        "series_id": ids[rows],
        "timestamp": when,
        "value": pick(detection.values).astype(np.float64),
        "expected": band["expected"],
        "lower": band["lower"],
        "upper": band["upper"],
        "score": pick(detection.score).astype(np.float64),
        "severity": np.asarray(SEVERITY_NAMES, dtype=object)[pick(detection.severity)],
        "reason": np.asarray(detection.view_names, dtype=object)[pick(detection.reason)],
    })

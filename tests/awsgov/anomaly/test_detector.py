"""Tests of the learned anomaly detector on synthetic series: what it flags, what it does not, and its contracts
(causality, streaming equals batch, many series at once equal one at a time)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from include.awsgov.anomaly import detector

DAY = 288  # 5-minute points per day
TEST_START = pd.Timestamp("2024-01-01 00:00:00")  # a Monday, on the hour
TEST_EVENT = 8 * DAY + 100  # a point on day 8, mid-morning


def seasonal(days: int = 10, n: int = 1, seed: int = 0, noise: float = 1.0) -> np.ndarray:
    """Daily sine around 50 with Gaussian noise: one series (1-D) or n series (2-D)."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY)
    x = 50 + 10 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, noise, (n, t.size))
    return x[0] if n == 1 else x


def alerts(values, **kwargs) -> np.ndarray:
    """Indices of the alerts on one series."""
    return np.flatnonzero(detector.detect(values, start_time=TEST_START, **kwargs).is_anomaly)


def assert_same(a: detector.Detection, b: detector.Detection) -> None:
    """Every per-point output of two detections is identical (NaN equal to NaN)."""
    for name in ("score", "is_anomaly", "severity", "reason", "expected", "lower", "upper"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_detect_flags_spike_at_its_point():
    x = seasonal()
    x[TEST_EVENT] += 30
    det = detector.detect(x, start_time=TEST_START)
    assert np.flatnonzero(det.is_anomaly).tolist() == [TEST_EVENT]
    assert det.score[TEST_EVENT] > 2
    assert x[TEST_EVENT] > det.upper[TEST_EVENT] > det.expected[TEST_EVENT]
    assert detector.SEVERITY_NAMES[det.severity[TEST_EVENT]] in ("medium", "high")


def test_detect_flags_dip_below_the_band():
    x = seasonal()
    x[TEST_EVENT] -= 30
    det = detector.detect(x, start_time=TEST_START)
    assert np.flatnonzero(det.is_anomaly).tolist() == [TEST_EVENT]
    assert x[TEST_EVENT] < det.lower[TEST_EVENT]


def test_detect_flags_level_shift_once_then_adapts():
    x = seasonal()
    x[TEST_EVENT:] += 15
    found = alerts(x)
    assert found.size >= 1
    assert TEST_EVENT <= found[0] <= TEST_EVENT + 3
    assert (found < TEST_EVENT + 36).all()  # the new level is learned within 3 h: no alerts after


def test_detect_flags_changed_seasonality():
    x = seasonal()
    x[8 * DAY:] = 100 - x[8 * DAY:]  # the daily curve turns upside down
    found = alerts(x)
    assert found.size >= 1
    assert 8 * DAY <= found[0] < 8 * DAY + DAY // 2


def test_detect_no_flags_on_clean_seasonal_noise_beyond_small_rate():
    det = detector.detect(seasonal(days=14, n=50, seed=3), start_time=TEST_START)
    per_series_day = det.is_anomaly.sum() / 50 / 14
    assert per_series_day < 0.1
    assert det.out_of_band.mean() < 1e-3


def test_detect_flat_line_step_flagged_flat_part_silent():
    x = np.full(5 * DAY, 5.0)
    x[4 * DAY:] = 6.0
    found = alerts(x)
    assert found[0] == 4 * DAY
    assert (found < 4 * DAY + 36).all()


def test_detect_constant_zero_silent_until_nonzero():
    x = np.zeros(3 * DAY)
    det = detector.detect(x, start_time=TEST_START)
    assert not det.is_anomaly.any()
    assert det.score.max() == 0
    x[2 * DAY + 5] = 1.0
    assert alerts(x).tolist() == [2 * DAY + 5]


def test_detect_gaps_and_nan_never_flagged_and_spike_still_found():
    x = seasonal()
    rng = np.random.default_rng(7)
    x[rng.random(x.size) < 0.1] = np.nan
    x[5 * DAY: 5 * DAY + 36] = np.nan  # a 3-hour gap
    x[TEST_EVENT] = 90.0
    det = detector.detect(x, start_time=TEST_START)
    missing = np.isnan(x)
    assert not det.is_anomaly[missing].any()
    assert (det.score[missing] == 0).all()
    assert det.is_anomaly[TEST_EVENT]
    assert np.isfinite(det.expected[5 * DAY + 40])  # the level is carried over the gap


@pytest.mark.parametrize("values", [pytest.param([3.0], id="one-point"), pytest.param([], id="empty")])
def test_detect_tiny_series(values):
    det = detector.detect(np.asarray(values, dtype=float))
    assert det.score.shape == (len(values),)
    assert not det.is_anomaly.any()


@pytest.mark.parametrize(("at", "expected"), [pytest.param(60, [], id="in-warmup"),
                                              pytest.param(200, [200], id="after-warmup")])
def test_detect_series_shorter_than_a_day_alerts_only_after_warmup(at, expected):
    x = seasonal(days=1)[:240]  # 20 hours: no seasonality can be learned yet, the 12 h warm-up applies
    x[at] += 30
    assert alerts(x).tolist() == expected


def test_detect_same_flags_at_any_scale():
    x = seasonal()
    x[TEST_EVENT] += 30
    small = detector.detect(x / 100, start_time=TEST_START)
    large = detector.detect(x * 1e9, start_time=TEST_START)  # percent vs bytes
    np.testing.assert_array_equal(small.is_anomaly, large.is_anomaly)
    np.testing.assert_allclose(small.score, large.score, rtol=1e-4, atol=1e-5)


def test_detect_is_causal_prefix_equals_truncated_full_run():
    x = seasonal(n=3, seed=5)
    x[:, TEST_EVENT] += 25
    full = detector.detect(x, start_time=TEST_START)
    for k in (500, 1001, TEST_EVENT + 1, 2017):
        part = detector.detect(x[:, :k], start_time=TEST_START)
        for name in ("score", "is_anomaly", "expected", "lower", "upper"):
            np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[:, :k], err_msg=f"{name} k={k}")


def test_detector_streaming_equals_batch():
    x = seasonal(n=4, seed=11)
    x[np.random.default_rng(1).random(x.shape) < 0.05] = np.nan
    x[1, TEST_EVENT:] += 12
    x[2, TEST_EVENT] -= 40
    start = TEST_START + pd.Timedelta("7min")  # the first point is not on the hour
    batch = detector.detect(x, start_time=start)
    det = detector.Detector(4, start_time=start)
    rng = np.random.default_rng(2)
    parts, pos = [], 0
    while pos < x.shape[1]:
        size = int(rng.choice([1, 5, 12, 13, 50]))
        parts.append(det.update(x[:, pos: pos + size]))
        pos += size
    for name in ("score", "is_anomaly", "severity", "reason", "expected", "lower", "upper"):
        streamed = np.concatenate([getattr(p, name) for p in parts], axis=1)
        np.testing.assert_array_equal(streamed, getattr(batch, name), err_msg=name)


@pytest.mark.parametrize("step, params", [
    pytest.param(300, None, id="defaults"),
    pytest.param(60, detector.Params(mean_hours=(1, 6)), id="1min-steps-6h-mean"),  # windows of 360 points
])
def test_detect_many_series_equals_one_at_a_time(step, params):
    x = seasonal(n=5, seed=9)
    x[0, TEST_EVENT] += 30
    x[3, 3 * DAY:] *= 2
    x[4] *= 1e6
    x[2, np.random.default_rng(3).random(x.shape[1]) < 0.03] = np.nan  # gaps in one series only
    together = detector.detect(x, step_seconds=step, start_time=TEST_START, params=params)
    for i in range(5):
        alone = detector.detect(x[i], step_seconds=step, start_time=TEST_START, params=params)
        for name in ("score", "is_anomaly", "severity", "reason", "expected", "lower", "upper"):
            np.testing.assert_array_equal(getattr(together, name)[i], getattr(alone, name), err_msg=f"{name} row {i}")


def test_anomalies_frame_describes_each_alert():
    x = seasonal(n=2)
    x[1, TEST_EVENT] += 30
    det = detector.detect(x, start_time=TEST_START)
    index = pd.date_range(TEST_START, periods=x.shape[1], freq="5min")
    frame = detector.anomalies_frame(det, series_ids=["i-0:cpu", "i-1:cpu"], timestamps=index)
    assert list(frame.columns) == ["series_id", "timestamp", "value", "expected", "lower", "upper", "score",
                                   "severity", "reason"]
    assert set(frame.series_id) <= {"i-0:cpu", "i-1:cpu"}
    event = frame[frame.timestamp == index[TEST_EVENT]]
    assert len(event) == 1
    row = event.iloc[0]
    assert row.series_id == "i-1:cpu"
    assert row.value == pytest.approx(x[1, TEST_EVENT])
    assert row.expected == pytest.approx(det.expected[1, TEST_EVENT])
    assert row.lower < row.expected < row.upper < row.value
    assert row.severity in ("medium", "high")
    assert row.reason == "point"


def test_detect_sensitivity_orders_alert_counts():
    x = seasonal(days=14, n=30, seed=4, noise=2.0)
    counts = [detector.detect(x, sensitivity=s).is_anomaly.sum() for s in ("low", "medium", "high", 3.0)]
    assert counts[0] <= counts[1] <= counts[2] <= counts[3]
    assert counts[3] > counts[0]


@pytest.mark.parametrize("bad", [pytest.param("extreme", id="unknown-name"), pytest.param(0, id="zero")])
def test_detect_rejects_bad_sensitivity(bad):
    with pytest.raises(ValueError, match="sensitivity"):
        detector.detect(seasonal(days=1), sensitivity=bad)


def test_regularize_gaps_offgrid_and_duplicates():
    stamps = ["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:05", "2024-01-01 00:21", "2024-01-01 00:26"]
    grid = detector.regularize(stamps, [1.0, 2.0, 4.0, 5.0, 6.0], step="5min")
    assert list(grid.index.strftime("%H:%M")) == ["00:00", "00:05", "00:10", "00:15", "00:20", "00:25"]
    np.testing.assert_array_equal(grid.to_numpy(), [1.0, 3.0, np.nan, np.nan, 5.0, 6.0])


def test_regularize_daylight_saving_duplicates_collapse():
    before = pd.date_range("2014-03-09 01:34", periods=6, freq="5min")
    stamps = list(before) + [pd.Timestamp("2014-03-09 03:00")] * 12 + [pd.Timestamp("2014-03-09 03:04")]
    grid = detector.regularize(stamps, np.arange(19.0), step="5min")
    assert grid.index[-1] == pd.Timestamp("2014-03-09 03:04")
    assert grid[pd.Timestamp("2014-03-09 02:59")] == pytest.approx(np.mean(np.arange(6.0, 18.0)))
    assert grid.isna().sum() == len(grid) - 8


def test_detector_state_is_self_contained_between_runs():
    x = seasonal(n=2, seed=12)
    x[0, TEST_EVENT] += 30
    det = detector.Detector(2, start_time=TEST_START)
    first = det.update(x[:, :TEST_EVENT - 5])
    det = copy.deepcopy(det)  # the hourly DAG keeps the state (plain arrays) between runs
    second = det.update(x[:, TEST_EVENT - 5:])
    batch = detector.detect(x, start_time=TEST_START)
    np.testing.assert_array_equal(np.concatenate([first.score, second.score], 1), batch.score)
    np.testing.assert_array_equal(np.concatenate([first.is_anomaly, second.is_anomaly], 1), batch.is_anomaly)


def test_infinite_readings_count_as_missing():
    x = seasonal(n=3, seed=5)
    x[1, [50, 2000, 2001]] = [np.inf, -np.inf, np.inf]
    gaps = np.where(np.isinf(x), np.nan, x)
    det = detector.detect(x, start_time=TEST_START)
    assert np.isnan(det.values[1, [50, 2000, 2001]]).all()
    assert_same(det, detector.detect(gaps, start_time=TEST_START))


@pytest.mark.parametrize("k", [1, 2, 4, 7, 12])
def test_sorting_network_sorts_every_input(k):
    # 0-1 principle: a comparator network that sorts every 0/1 input sorts every input.
    bits = ((np.arange(2**k)[None, :] >> np.arange(k)[:, None]) & 1).astype(float)
    buf = np.empty((k + 1, 2**k))
    pos = detector._sort_rows(list(bits), buf)
    np.testing.assert_array_equal(buf[pos], np.sort(bits, axis=0))


def test_median_of_ignores_missing_values():
    v = np.random.default_rng(4).normal(size=(7, 30, 20))
    v[np.random.default_rng(5).random(v.shape) < 0.4] = np.nan
    v[:, 0, 0] = np.nan
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(v, axis=0)
    np.testing.assert_array_equal(detector._median_of(v), expected)


# --- Other sampling than a regular 5-minute grid (issue #21) --------------------------------------------------------


@pytest.mark.parametrize("step", [60, 300, 1800, 3600])
def test_infer_step_of_regular_series_is_its_period(step):
    stamps = pd.date_range("2024-01-01 00:03", periods=500, freq=pd.Timedelta(seconds=step))
    assert detector.infer_step(stamps) == step


def test_infer_step_tolerates_jitter_duplicates_and_gaps():
    rng = np.random.default_rng(0)
    stamps = pd.date_range("2024-01-01", periods=2000, freq="5min") + pd.to_timedelta(rng.integers(-40, 40, 2000), "s")
    stamps = stamps.delete(np.arange(700, 900))  # a gap of 16 hours
    stamps = stamps.append(stamps[:12]).sort_values()  # duplicated stamps
    assert detector.infer_step(stamps) == 300


def test_infer_step_of_irregular_sampling_fills_most_grid_points():
    # A road sensor: mostly 5 minutes apart, often 10-20 (realTraffic). The median (5 min) would leave a third of the
    # grid empty and the median-of-3 view missing around every late reading.
    intervals = np.tile([300, 300, 300, 300, 300, 600, 900, 1200], 250)
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.r_[0, np.cumsum(intervals)], "s")
    step = detector.infer_step(stamps)
    assert step == 600
    grid = detector.regularize(stamps, np.ones(stamps.size), step=None)
    assert grid.index.freq == pd.Timedelta(seconds=step)
    assert grid.notna().mean() > 0.75
    five = detector.regularize(stamps, np.ones(stamps.size), step="5min")
    assert five.notna().mean() < 0.65


def test_infer_step_of_too_few_points_is_five_minutes():
    assert detector.infer_step(["2024-01-01 00:00"]) == 300
    assert detector.infer_step([]) == 300


def test_regularize_picks_the_step_when_none():
    stamps = pd.date_range("2014-07-01", periods=100, freq="30min")  # nyc_taxi's step
    grid = detector.regularize(stamps, np.arange(100.0), step=None)
    assert grid.index.freq == pd.Timedelta("30min")
    np.testing.assert_array_equal(grid.to_numpy(), np.arange(100.0))


def noisy_days(step: int, days: int = 30, n: int = 10, seed: int = 0) -> np.ndarray:
    """n series of a daily sine around 100 with Gaussian noise (sigma 3), at any step."""
    per_day = 86400 // step
    t = np.arange(days * per_day)
    rng = np.random.default_rng(seed)
    return 100 + 20 * np.sin(2 * np.pi * t / per_day) + rng.normal(0, 3, (n, t.size))


@pytest.mark.parametrize("step", [3600, 1800, 60])
def test_detect_other_steps_quiet_on_noise_and_find_a_spike(step):
    # The previous defaults raised 41-53 alerts on these 300 series-days of hourly or half-hourly noise.
    x = noisy_days(step)
    assert detector.detect(x, step_seconds=step, start_time=TEST_START).is_anomaly.sum() <= 5
    per_day = 86400 // step
    event = 25 * per_day + per_day // 3
    x[:, event] += 40
    det = detector.detect(x, step_seconds=step, start_time=TEST_START)
    assert det.is_anomaly[:, event].all()
    # With one point an hour, that point is also the hour's mean, which is outside its 10-day range.
    assert {det.view_names[r] for r in det.reason[:, event]} <= {"point", det.view_names[-1]}


def test_coarse_steps_widen_records_to_the_five_minute_false_alarm_rate():
    # A record is a day's largest excursion: a day of 24 hourly points has a lower one than a day of 288, so without
    # widening, hourly white noise passed its band three times as often a day as 5-minute noise (48 times per point).
    rng = np.random.default_rng(1)

    def per_day(step: int, growth: float) -> float:
        x = 100 + rng.normal(0, 1, (300, 40 * 86400 // step))
        det = detector.detect(x, step_seconds=step, start_time=TEST_START, params=detector.Params(step_growth=growth))
        return float((det.score[:, x.shape[1] // 2:] >= 1).mean() * 86400 / step)

    five_minutes, hourly, hourly_unwidened = per_day(300, 0.5), per_day(3600, 0.5), per_day(3600, 0.0)
    assert hourly_unwidened > 2 * five_minutes
    assert hourly < 1.5 * five_minutes
    assert detector._step_widen(300, 0.5) == detector._step_widen(60, 0.5) == 1.0  # finer steps keep their bands
    assert 1.15 < detector._step_widen(3600, 0.5) < 1.16


def test_one_point_hours_get_a_spread_from_hour_to_hour_changes():
    # With one point an hour there are no quartiles; the spread comes from the change between hours, and is about the
    # one 12-point hours get from their quartiles on the same noise (the previous code fell back to the 1 % floor, a
    # third of it). (A steep daily curve adds its hour-to-hour slope to this spread: flat noise here.)
    rng = np.random.default_rng(1)

    def spread(step: int) -> float:
        det = detector.Detector(1, start_time=TEST_START, params=detector.Params(step_seconds=step))
        det.update(100 + rng.normal(0, 3, 30 * 86400 // step))
        return float(np.exp(np.nanmean(det.spread_hist)))

    assert 0.75 < spread(3600) / spread(300) < 1.33


def test_detector_streaming_equals_batch_hourly_with_gaps():
    x = noisy_days(3600, n=3, seed=2)
    x[np.random.default_rng(4).random(x.shape) < 0.05] = np.nan
    x[1, 400:410] += 15
    x[2, 500] -= 40
    batch = detector.detect(x, step_seconds=3600, start_time=TEST_START)
    det = detector.Detector(3, start_time=TEST_START, params=detector.Params(step_seconds=3600))
    rng = np.random.default_rng(5)
    parts, pos = [], 0
    while pos < x.shape[1]:
        size = int(rng.choice([1, 2, 5, 24]))
        parts.append(det.update(x[:, pos: pos + size]))
        pos += size
    for name in ("score", "is_anomaly", "severity", "reason", "expected", "lower", "upper"):
        streamed = np.concatenate([getattr(p, name) for p in parts], axis=1)
        np.testing.assert_array_equal(streamed, getattr(batch, name), err_msg=name)


def test_records_learn_a_dip_seen_on_two_days():
    # One dip does not widen the band for four weeks (the record is the second-largest day's): the same dip a week
    # later alerts again; once it has happened on two days it is within the series' known range.
    x = seasonal(days=24, seed=6)
    dips = [8 * DAY + 100, 14 * DAY + 100, 20 * DAY + 100]
    x[dips] -= 30
    found = alerts(x)
    assert dips[0] in found
    assert dips[1] in found
    assert dips[2] not in found


def test_records_remember_four_weeks():
    # A dip seen on two days is remembered for four weeks: no alert 19 days after the first (a week's memory, an
    # earlier default, forgot it and alerted again).
    x = seasonal(days=24, seed=6)
    dips = [2 * DAY + 100, 3 * DAY + 100, 21 * DAY + 100]
    x[dips] -= 30
    assert dips[2] not in alerts(x)


def test_level_outside_its_range_is_flagged_by_the_level_view():
    # A slow climb (2 units an hour) to a level never seen: each hour's points sit on the expected value, which follows
    # the level within hours, but the hour's mean leaves the 10-day range of hourly means.
    x = seasonal(days=14, seed=4)
    ramp = np.arange(4 * DAY) * (2 / 12)
    x[10 * DAY:] += ramp
    det = detector.detect(x, start_time=TEST_START)
    found = np.flatnonzero(det.is_anomaly)
    assert found.size and (found >= 10 * DAY).all()
    first = found[0]
    assert det.view_names[det.reason[first]] == "1h mean outside its 10-day range"
    assert x[first - 11: first + 1].mean() > 60  # the highest hourly mean of the last 10 days is about 60
    climb = slice(10 * DAY, first + 1)
    assert ((det.lower[climb] < x[climb]) & (x[climb] < det.upper[climb])).all()  # every point within its band


def test_positive_series_falling_under_half_its_low_is_flagged_by_the_level_view():
    # Daily 2-hour bursts to 1,000 stretch the 10-day range of hourly means of a series at 100 to about [98, 1000]: a
    # tenth of that range below the low is 8, so a fall to 30 was never out of range. Two mornings at 35 two weeks
    # earlier made such a fall ordinary for the residual views (their records), but not for the last 10 days' levels.
    rng = np.random.default_rng(0)
    x = 100 + rng.normal(0, 2, 14 * DAY)
    for d in range(14):
        x[d * DAY + 144: d * DAY + 168] = 1000 + rng.normal(0, 20, 24)
    for d in (1, 2):
        x[d * DAY + 24: d * DAY + 96] = 35 + rng.normal(0, 2, 72)
    fall = slice(13 * DAY + 24, 13 * DAY + 96)
    x[fall] = 30 + rng.normal(0, 2, 72)
    det = detector.detect(x, start_time=TEST_START)
    found = np.flatnonzero(det.is_anomaly[fall])
    assert found.size == 1 and found[0] <= 12  # within the hour: its mean passes half the low (49) half-way through
    assert det.view_names[det.reason[fall][found[0]]] == "1h mean outside its 10-day range"
    unfloored = detector.detect(x, start_time=TEST_START, params=detector.Params(level_floor=0.0))
    assert not unfloored.is_anomaly[fall].any()


def test_climb_over_hours_is_flagged_by_the_level_view():
    # A climb of 1.5 an hour from the daily peak: each hour's mean is within a tenth of the 10-day range (20) of the
    # hour before, so when today's last hours counted in the range (level_lag_hours=1) the climb raised it with each
    # hour and was never beyond it. Two older days with a larger sustained excursion keep the residual views quiet.
    rng = np.random.default_rng(3)
    t = np.arange(14 * DAY)
    x = 50 + 10 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 1, t.size)
    for d in (1, 2):
        x[d * DAY + 60: d * DAY + 132] += 25
    start = 13 * DAY + 60
    x[start:] += np.minimum(np.arange(t.size - start) * (1.5 / 12), 15)
    det = detector.detect(x, start_time=TEST_START)
    found = np.flatnonzero(det.is_anomaly[start:])
    assert found.size == 1 and found[0] <= 4 * 12  # within 4 h of the start of the climb
    assert det.view_names[det.reason[start + found[0]]] == "1h mean outside its 10-day range"
    lag1 = detector.detect(x, start_time=TEST_START, params=detector.Params(level_lag_hours=1))
    assert not lag1.is_anomaly[start:].any()


def test_level_view_waits_for_a_day():
    # The first day's hours are each "new" to a 1 h mean; the level view does not score them.
    x = seasonal(days=1, seed=5)
    det = detector.detect(x, start_time=TEST_START)
    assert not det.is_anomaly.any()


@pytest.mark.parametrize("step, names", [
    (60, ("point", "3min median", "1h mean", "6h mean", "1h mean outside its 10-day range")),
    (300, ("point", "15min median", "1h mean", "6h mean", "1h mean outside its 10-day range")),
    (1800, ("point", "90min median", "1h mean", "6h mean", "1h mean outside its 10-day range")),
    (3600, ("point", "3h median", "1h mean", "6h mean", "1h mean outside its 10-day range")),
])
def test_reason_words_at_every_step(step, names):
    assert detector.Params(step_seconds=step).view_names == names

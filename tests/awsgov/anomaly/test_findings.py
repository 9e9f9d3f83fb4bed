"""Anomaly rows from static and dynamic rules, stable ids, de-duplicated merges into the store, run windows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from moto import mock_aws

from include.awsgov.anomaly import findings as mf
from include.awsgov.anomaly.metrics import SeriesKey, floor_time, load_rules, points
from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess
from include.awsgov.core.store import Store

TEST_ACCOUNT = "111122223333"
TEST_REGION = "us-east-1"
TEST_END = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
TEST_WINDOW = (TEST_END - dt.timedelta(hours=1), TEST_END)
WINDOW_CFG = {"manual_hours": 1, "lag_minutes": 10}
STATIC = {
    "id": "ec2_cpu_test_high", "title": "CPU high", "namespace": "AWS/EC2", "metric_name": "CPUUtilization",
    "discover": {"dimension_names": ["InstanceId"]}, "statistic": "Average", "period": 300,
    "static": {"comparison": "GreaterThanThreshold", "threshold": 90, "datapoints_to_alarm": 2,
               "evaluation_periods": 3, "severity": "high"},
}
DYNAMIC = {
    "id": "ec2_cpu_test_anomalous", "title": "CPU band", "namespace": "AWS/EC2", "metric_name": "CPUUtilization",
    "discover": {"dimension_names": ["InstanceId"]}, "statistic": "Average", "period": 300,
    "dynamic": {"sensitivity": "medium", "history_days": 14},
}


def _rule(raw):
    return load_rules(data={"version": 1, "rules": [raw]}).rules[0]


def _key(n: int) -> SeriesKey:
    return SeriesKey("AWS/EC2", "CPUUtilization", (("InstanceId", f"i-{n}"),), "Average", 300)


def _static_data(rule, breach_at=()):
    grid_start = floor_time(TEST_WINDOW[0] - rule.lookback(), 300)
    n = points(grid_start, TEST_END, 300)
    clean = np.full(n, 20.0)
    hot = clean.copy()
    hot[list(breach_at)] = 99.0
    return grid_start, {_key(0): clean, _key(1): hot}


def test_static_rule_reports_each_period_in_alarm_within_the_window():
    rule = _rule(STATIC)
    grid_start, data = _static_data(rule)
    n = len(data[_key(0)])
    data[_key(1)][n - 5 : n - 2] = 99.0  # 3 breaching points, 2-of-3 alarm: ALARM at n-4, n-3, n-2
    rows = mf.static_findings(rule, TEST_ACCOUNT, TEST_REGION, grid_start, data, TEST_WINDOW)
    times = [r["timestamp"] for r in rows]
    assert times == [grid_start + dt.timedelta(minutes=5 * i) for i in (n - 4, n - 3, n - 2)]
    row = rows[0]
    assert row["dimensions_json"] == '{"InstanceId":"i-1"}'
    assert (row["value"], row["expected"], row["upper"], row["lower"]) == (99.0, 90.0, 90.0, None)
    assert row["severity"] == "high" and row["kind"] == "static"
    assert row["score"] == pytest.approx(0.1)
    assert row["reason"] == "Average > 90 in 2 of the last 3 periods of 5min"


def test_static_alarm_before_the_window_is_not_reported():
    rule = _rule(STATIC)
    grid_start, data = _static_data(rule)
    first_in_window = points(grid_start, TEST_WINDOW[0], 300)
    data[_key(1)][first_in_window - 6 : first_in_window - 3] = 99.0
    assert mf.static_findings(rule, TEST_ACCOUNT, TEST_REGION, grid_start, data, TEST_WINDOW) == []


def _dynamic_data(rule, n_series=5):
    grid_start = floor_time(TEST_WINDOW[0] - rule.lookback(), 300)
    n = points(grid_start, TEST_END, 300)
    rng = np.random.default_rng(3)
    t = np.arange(n)
    matrix = 40 + 15 * np.sin(2 * np.pi * t / 288)[None, :] + rng.normal(0, 1, (n_series, n))
    return grid_start, matrix


def test_dynamic_rule_reports_a_spike_in_the_window_with_its_band():
    rule = _rule(DYNAMIC)
    grid_start, matrix = _dynamic_data(rule)
    matrix[2, -6:-3] += 300.0
    rows = mf.dynamic_findings(rule, TEST_ACCOUNT, TEST_REGION, grid_start,
                               {_key(i): matrix[i] for i in range(len(matrix))}, TEST_WINDOW)
    spikes = [r for r in rows if r["dimensions_json"] == '{"InstanceId":"i-2"}']
    assert len(spikes) == 1, rows  # one episode, not one row per datapoint
    spike = spikes[0]
    assert spike["timestamp"] == grid_start + dt.timedelta(minutes=5 * (matrix.shape[1] - 6))
    assert spike["severity"] == "high" and spike["kind"] == "dynamic"
    assert spike["lower"] < spike["expected"] < spike["upper"] < spike["value"]
    assert spike["score"] >= 3.0
    # A 300-point spike on a band of a few points: the single point is the furthest view out, said in words.
    assert spike["reason"] == "the value further above the expected value than at any time in the last 28 days"
    assert not [r for r in rows if r["severity"] == "high" and r is not spike]


def test_dynamic_rule_min_severity_filters_rows():
    rule = _rule({**DYNAMIC, "dynamic": {**DYNAMIC["dynamic"], "min_severity": "high"}})
    grid_start, matrix = _dynamic_data(rule, n_series=20)
    rows = mf.dynamic_findings(rule, TEST_ACCOUNT, TEST_REGION, grid_start,
                               {_key(i): matrix[i] for i in range(len(matrix))}, TEST_WINDOW)
    assert all(r["severity"] == "high" for r in rows)


@pytest.mark.parametrize(("view", "above", "expected"), [
    ("1h mean", False, "the 1h mean further below the expected value than at any time in the last 28 days"),
    ("1h mean outside its 10-day range", True, "the 1h mean outside its 10-day range (above it)"),
])
def test_dynamic_reason_words(view, above, expected):
    assert mf.dynamic_reason(view, above, 28) == expected


def test_anomaly_id_is_stable_and_specific():
    ts = TEST_WINDOW[0]
    first = mf.anomaly_id("r1", TEST_ACCOUNT, TEST_REGION, _key(1), ts)
    elsewhere = ts.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert first == mf.anomaly_id("r1", TEST_ACCOUNT, TEST_REGION, _key(1), elsewhere)
    assert first != mf.anomaly_id("r1", TEST_ACCOUNT, TEST_REGION, _key(2), ts)
    assert first != mf.anomaly_id("r1", TEST_ACCOUNT, "eu-west-1", _key(1), ts)
    assert first != mf.anomaly_id("r1", TEST_ACCOUNT, TEST_REGION, _key(1), ts + dt.timedelta(minutes=5))


def test_merge_keeps_one_row_per_anomaly_across_overlapping_runs(tmp_path):
    store = Store(str(tmp_path))
    rule = _rule(STATIC)
    grid_start, data = _static_data(rule)
    n = len(data[_key(0)])
    data[_key(1)][n - 8 : n - 2] = 99.0
    rows = mf.static_findings(rule, TEST_ACCOUNT, TEST_REGION, grid_start, data, TEST_WINDOW)
    first = mf.merge_anomalies(store, TEST_ACCOUNT, rows[:3])
    second = mf.merge_anomalies(store, TEST_ACCOUNT, rows)  # overlapping run: 3 old + the rest new
    third = mf.merge_anomalies(store, TEST_ACCOUNT, rows)  # rerun: nothing new, nothing rewritten
    assert (len(first), len(second), len(third)) == (3, len(rows) - 3, 0)
    stored = store.read("anomalies", schema=tables.ANOMALIES)
    assert len(stored) == len(rows) == stored["anomaly_id"].nunique()
    assert store.chunks("anomalies", TEST_END.date()) == [TEST_ACCOUNT]


def test_merge_partitions_by_the_anomaly_day(tmp_path):
    store = Store(str(tmp_path))
    rule = _rule(STATIC)
    late = dt.datetime(2026, 11, 20, 23, 55, tzinfo=dt.UTC)
    rows = [mf.anomaly_row(rule, TEST_ACCOUNT, TEST_REGION, _key(1), ts, 99.0, 90.0, None, 90.0, 0.1, "high",
                           "test")
            for ts in (late, late + dt.timedelta(minutes=5))]
    mf.merge_anomalies(store, TEST_ACCOUNT, rows)
    assert store.days("anomalies") == [dt.date(2026, 11, 20), dt.date(2026, 11, 21)]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"interval_start": TEST_END - dt.timedelta(hours=1), "interval_end": TEST_END},
                     (TEST_END - dt.timedelta(minutes=70), TEST_END - dt.timedelta(minutes=10)), id="scheduled"),
        pytest.param({"interval_start": TEST_END, "interval_end": TEST_END},
                     (TEST_END - dt.timedelta(minutes=70), TEST_END - dt.timedelta(minutes=10)), id="manual"),
        pytest.param({"interval_start": None, "interval_end": None, "hours": 3},
                     (TEST_END - dt.timedelta(minutes=190), TEST_END - dt.timedelta(minutes=10)), id="manual-hours"),
        pytest.param({"interval_start": None, "interval_end": None, "end": "2026-11-19T08:00:00", "hours": 2},
                     (dt.datetime(2026, 11, 19, 6, tzinfo=dt.UTC), dt.datetime(2026, 11, 19, 8, tzinfo=dt.UTC)),
                     id="explicit-end"),
    ],
)
def test_run_window(kwargs, expected):
    requested = TEST_END + dt.timedelta(seconds=42)
    assert mf.run_window(WINDOW_CFG, requested_at=requested, **kwargs) == expected


def test_check_account_is_idempotent_and_records_coverage(tmp_path, monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    ruleset = load_rules(data={"version": 1, "rules": [STATIC]})
    store = Store(str(tmp_path))
    with mock_aws():
        access = AwsAccess.from_args(region=TEST_REGION)
        account = access.admin_id()
        cw = access.client("cloudwatch")
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=[
            {"MetricName": "CPUUtilization", "Dimensions": [{"Name": "InstanceId", "Value": f"i-{i}"}],
             "Timestamp": TEST_END - dt.timedelta(minutes=5 * k), "Value": 99.0 if i == 1 and k <= 4 else 10.0}
            for i in range(3) for k in range(1, 13)])
        first = mf.check_account(access, store, ruleset, account, [TEST_REGION], TEST_WINDOW)
        again = mf.check_account(access, store, ruleset, account, [TEST_REGION], TEST_WINDOW)
    assert first["status"] == "ok" and first["series"] == 3
    assert first["new"] == first["anomalies"] == 3  # 4 breaching points, 2-of-3: ALARM from the 2nd on
    assert first["new_by_severity"]["high"] == 3
    assert again["new"] == 0 and again["anomalies"] == 3
    assert first["api_calls"] == 2  # one ListMetrics, one GetMetricData
    assert len(store.read("anomalies", schema=tables.ANOMALIES)) == 3
    coverage = store.read(mf.COVERAGE_TABLE, schema=tables.COVERAGE)
    assert coverage[["account_id", "region", "source", "status"]].values.tolist() == [
        [account, TEST_REGION, "cloudwatch", "ok"]]


def test_throttled_region_is_recorded_and_reported_retryable(tmp_path, clean_sandbox):
    from scripts.localenv import SANDBOX_KEY_ID, SANDBOX_SECRET

    member = next(a["id"] for a in clean_sandbox.info["accounts"] if a.get("read_role") and a["status"] == "ACTIVE")
    access = AwsAccess.from_args(endpoint_url=clean_sandbox.endpoint, aws_access_key_id=SANDBOX_KEY_ID,
                                 aws_secret_access_key=SANDBOX_SECRET, external_id=clean_sandbox.info["external_id"],
                                 max_attempts=2)
    clean_sandbox.set_faults(throttle_rate=1.0, throttle_services=["cloudwatch"])
    summary = mf.check_account(access, Store(str(tmp_path)), load_rules(data={"version": 1, "rules": [STATIC]}),
                               member, [TEST_REGION], TEST_WINDOW)
    assert summary["status"] == "throttled_out" and summary["regions"] == {TEST_REGION: "throttled_out"}
    coverage = Store(str(tmp_path)).read(mf.COVERAGE_TABLE, schema=tables.COVERAGE)
    assert list(coverage["status"]) == ["throttled_out"] and coverage["error"][0].startswith("Throttling")


def test_denied_read_role_is_tried_once_for_all_regions(tmp_path, clean_sandbox):
    from scripts.localenv import SANDBOX_KEY_ID, SANDBOX_SECRET

    member = next(a["id"] for a in clean_sandbox.info["accounts"] if a.get("read_role") and a["status"] == "ACTIVE")
    access = AwsAccess.from_args(endpoint_url=clean_sandbox.endpoint, aws_access_key_id=SANDBOX_KEY_ID,
                                 aws_secret_access_key=SANDBOX_SECRET, external_id=clean_sandbox.info["external_id"])
    clean_sandbox.set_faults(deny_assume_accounts=[member])
    regions = [TEST_REGION, "eu-west-1", "ap-northeast-1"]
    summary = mf.check_account(access, Store(str(tmp_path)), load_rules(data={"version": 1, "rules": [STATIC]}),
                               member, regions, TEST_WINDOW)
    assert summary["regions"] == dict.fromkeys(regions, "access_denied")
    # one attempt: the first ListMetrics triggers the AssumeRole that is refused; no other region is tried
    assert access.calls["sts.AssumeRole"] == 1 and access.calls["cloudwatch.ListMetrics"] == 1

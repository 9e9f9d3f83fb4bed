"""Metric rules (validation messages), series discovery and batched GetMetricData, against in-process moto."""

from __future__ import annotations

import copy
import datetime as dt
import math

import numpy as np
import pytest
import yaml
from moto import mock_aws

from include.awsgov.anomaly import metrics
from include.awsgov.anomaly.metrics import RuleError, SeriesKey, load_rules, plan_batches, retention
from include.awsgov.core.aws import AwsAccess

TEST_NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
TEST_WINDOW = (TEST_NOW - dt.timedelta(hours=1), TEST_NOW)
STATIC_RULE = {
    "id": "ec2_cpu_test_high",
    "title": "CPU high",
    "namespace": "AWS/EC2",
    "metric_name": "CPUUtilization",
    "discover": {"dimension_names": ["InstanceId"]},
    "statistic": "Average",
    "period": 300,
    "static": {"comparison": "GreaterThanThreshold", "threshold": 90, "datapoints_to_alarm": 2,
               "evaluation_periods": 3, "treat_missing_data": "missing", "severity": "high"},
}
DYNAMIC_RULE = {
    "id": "rds_cpu_test_anomalous",
    "title": "RDS CPU",
    "namespace": "AWS/RDS",
    "metric_name": "CPUUtilization",
    "discover": {"dimension_names": ["DBInstanceIdentifier"]},
    "statistic": "Average",
    "period": 300,
    "dynamic": {"sensitivity": "medium", "history_days": 14},
}


def _doc(*rules):
    return {"version": 1, "rules": [copy.deepcopy(r) for r in rules]}


@pytest.fixture
def access(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield AwsAccess.from_args(region="us-east-1")


# -- rules ---------------------------------------------------------------------------------------------------------
def test_shipped_rules_file_is_valid():
    ruleset = load_rules()
    assert ruleset.rules
    assert {r.kind for r in ruleset.rules} == {"static", "dynamic"}
    assert ruleset.alerts["min_severity"] == "high"


def _bad(rule_patch=None, static_patch=None, drop=()):
    rule = copy.deepcopy(STATIC_RULE)
    rule.update(rule_patch or {})
    rule["static"].update(static_patch or {})
    for key in drop:
        rule.pop(key)
    return rule


@pytest.mark.parametrize(
    ("rule", "field", "detail"),
    [
        pytest.param(_bad({"statistic": "Median"}), "statistic", "'Median': unknown statistic", id="unknown-statistic"),
        pytest.param(_bad(static_patch={"datapoints_to_alarm": 4}), "static.datapoints_to_alarm",
                     "greater than static.evaluation_periods 3", id="m-greater-than-n"),
        pytest.param(_bad(static_patch={"comparison": "GreaterThan"}), "static.comparison", "is not one of",
                     id="bad-comparison"),
        pytest.param(_bad({"thresold": 5}), "thresold", "unknown key", id="unknown-rule-key"),
        pytest.param(_bad(static_patch={"treat_missing": "ignore"}), "static.treat_missing", "unknown key",
                     id="unknown-static-key"),
        pytest.param(_bad(static_patch={"treat_missing_data": "zero"}), "static.treat_missing_data",
                     "is not one of", id="bad-missing-treatment"),
        pytest.param(_bad({"dynamic": {"sensitivity": "medium", "history_days": 14}}), "static/dynamic",
                     "exactly one", id="static-and-dynamic"),
        pytest.param(_bad({"dimensions": {"InstanceId": "i-1"}}), "dimensions/discover", "exactly one",
                     id="dimensions-and-discover"),
        pytest.param(_bad({"period": 120}), "period", "is not one of", id="bad-period"),
        pytest.param(_bad({"period": 10}, static_patch={"evaluation_periods": 360, "datapoints_to_alarm": 3}),
                     "static.evaluation_periods", "CloudWatch keeps 10-second data for 3:00:00 only",
                     id="high-resolution-beyond-3-hours"),
        pytest.param(_bad({"period": 60, "dynamic": {"sensitivity": "medium", "history_days": 16}},
                          drop=("static",)), "dynamic.history_days",
                     "CloudWatch keeps 60-second data for 15 days, 0:00:00 only", id="minute-data-beyond-15-days"),
    ],
)
def test_invalid_rule_is_refused_naming_rule_and_field(rule, field, detail):
    with pytest.raises(RuleError) as err:
        load_rules(data=_doc(DYNAMIC_RULE, rule))
    message = str(err.value)
    assert f"rule 'ec2_cpu_test_high' field '{field}'" in message, message
    assert detail in message, message
    assert "rds_cpu_test_anomalous" not in message


@pytest.mark.parametrize(("period", "kept"), [
    pytest.param(10, dt.timedelta(hours=3), id="10s"), pytest.param(30, dt.timedelta(hours=3), id="30s"),
    pytest.param(60, dt.timedelta(days=15), id="60s"), pytest.param(300, dt.timedelta(days=63), id="300s"),
    pytest.param(3600, dt.timedelta(days=455), id="3600s")])
def test_retention_follows_cloudwatch(period, kept):
    assert retention(period) == kept


def test_rules_within_retention_are_accepted():
    minute = {**copy.deepcopy(DYNAMIC_RULE), "period": 60}
    minute["dynamic"]["history_days"] = 15
    assert load_rules(data=_doc(minute, STATIC_RULE)).rules


def test_unknown_top_level_key_is_refused():
    with pytest.raises(RuleError, match="field 'rule': unknown key"):
        load_rules(data={**_doc(STATIC_RULE), "rule": []})


def test_duplicate_rule_ids_are_refused():
    with pytest.raises(RuleError, match="rule 'ec2_cpu_test_high' field 'id': duplicate rule id"):
        load_rules(data=_doc(STATIC_RULE, STATIC_RULE))


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(_doc(_bad({"statistic": "Median"}), {**DYNAMIC_RULE, "period": 7})))
    with pytest.raises(RuleError) as err:
        load_rules(path)
    message = str(err.value)
    assert str(path) in message
    assert "rule 'ec2_cpu_test_high' field 'statistic'" in message
    assert "rule 'rds_cpu_test_anomalous' field 'period'" in message


def test_select_refuses_unknown_rule_ids():
    ruleset = load_rules(data=_doc(STATIC_RULE, DYNAMIC_RULE))
    assert [r.id for r in ruleset.select(["rds_cpu_test_anomalous"]).rules] == ["rds_cpu_test_anomalous"]
    with pytest.raises(RuleError, match="unknown metric rule id.*nope"):
        ruleset.select(["nope"])


def test_disabled_rules_are_skipped():
    ruleset = load_rules(data=_doc({**STATIC_RULE, "enabled": False}, DYNAMIC_RULE))
    assert [r.id for r in ruleset.rules] == ["rds_cpu_test_anomalous"]


# -- batching ------------------------------------------------------------------------------------------------------
def test_batches_respect_the_query_limit():
    sizes = [metrics.points(*TEST_WINDOW, 300)] * 1200
    batches = plan_batches(sizes)
    assert [len(b) for b in batches] == [500, 500, 200]


def test_batches_respect_the_datapoint_limit_for_two_weeks_of_history():
    per_series = metrics.points(TEST_NOW - dt.timedelta(days=14, hours=1), TEST_NOW, 300)
    assert per_series == 4044
    batches = plan_batches([per_series] * 100)
    assert max(len(b) for b in batches) == 100_800 // 4044 == 24
    assert len(batches) == math.ceil(100 / 24)
    assert all(len(b) * per_series <= 100_800 for b in batches)


def test_oversized_series_gets_its_own_call():
    assert plan_batches([10, 200_000, 10]) == [[0], [1], [2]]


# -- discovery and fetching against moto ---------------------------------------------------------------------------
def _put(cw, namespace, metric, dim_name, ids, values_at):
    data = [{"MetricName": metric, "Dimensions": [{"Name": dim_name, "Value": i}], "Timestamp": ts, "Value": v}
            for i in ids for ts, v in values_at(i)]
    for start in range(0, len(data), 1000):
        cw.put_metric_data(Namespace=namespace, MetricData=data[start : start + 1000])


def test_discovery_matches_dimension_names_and_keeps_namespaces_apart(access):
    cw = access.client("cloudwatch")
    _put(cw, "AWS/EC2", "CPUUtilization", "InstanceId", ["i-1", "i-2"], lambda _: [(TEST_NOW, 1.0)])
    _put(cw, "AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", ["db-1"], lambda _: [(TEST_NOW, 1.0)])
    _put(cw, "AWS/EC2", "CPUUtilization", "AutoScalingGroupName", ["asg-1"], lambda _: [(TEST_NOW, 1.0)])
    ruleset = load_rules(data=_doc(STATIC_RULE, DYNAMIC_RULE, {**STATIC_RULE, "id": "ec2_cpu_test_other"}))
    found = metrics.discover_series(cw, ruleset.rules)
    assert [k.dimensions for k in found["ec2_cpu_test_high"]] == [(("InstanceId", "i-1"),), (("InstanceId", "i-2"),)]
    assert [k.dimensions for k in found["rds_cpu_test_anomalous"]] == [(("DBInstanceIdentifier", "db-1"),)]
    assert found["ec2_cpu_test_other"] == found["ec2_cpu_test_high"]
    # one ListMetrics walk per (namespace, metric), shared by the two EC2 rules
    assert access.calls["cloudwatch.ListMetrics"] == 2


def test_fixed_dimensions_need_no_discovery(access):
    rule = {**STATIC_RULE, "dimensions": {"InstanceId": "i-9"}}
    rule.pop("discover")
    found = metrics.discover_series(access.client("cloudwatch"), load_rules(data=_doc(rule)).rules)
    assert [k.dimensions for k in found["ec2_cpu_test_high"]] == [(("InstanceId", "i-9"),)]
    assert access.calls["cloudwatch.ListMetrics"] == 0


def test_1200_series_are_fetched_in_3_calls_on_the_period_grid(access):
    cw = access.client("cloudwatch")
    start = TEST_WINDOW[0]
    # Ten series hold data (one gap each); the other 1,190 are empty: the call count depends on the queries only.
    _put(cw, "AWS/EC2", "CPUUtilization", "InstanceId", [f"i-{n:04d}" for n in range(10)],
         lambda i: [(start + dt.timedelta(minutes=5 * k), float(k)) for k in range(12) if k != int(i[-1])])
    keys = [SeriesKey("AWS/EC2", "CPUUtilization", (("InstanceId", f"i-{n:04d}"),), "Average", 300)
            for n in range(1200)]
    data = metrics.fetch_series(cw, keys, *TEST_WINDOW)
    assert access.calls["cloudwatch.GetMetricData"] == 3
    assert len(data) == 1200
    series_3 = data[keys[3]]
    assert series_3.shape == (12,)
    assert np.isnan(series_3[3])
    assert list(series_3[:3]) == [0.0, 1.0, 2.0] and series_3[11] == 11.0
    assert np.isnan(data[keys[500]]).all()


def test_collect_fetches_shared_series_once_for_the_longest_lookback(access):
    static = load_rules(data=_doc(STATIC_RULE)).rules[0]
    dynamic_ec2 = load_rules(data=_doc({**DYNAMIC_RULE, "namespace": "AWS/EC2", "discover": STATIC_RULE["discover"]}))
    rules = [static, dynamic_ec2.rules[0]]
    keys = [SeriesKey("AWS/EC2", "CPUUtilization", (("InstanceId", f"i-{n}"),), "Average", 300) for n in range(30)]
    series = {r.id: keys for r in rules}
    out = metrics.collect(access.client("cloudwatch"), series, rules, TEST_WINDOW)
    # 30 series x 4,044 points: two calls under the datapoint limit; the static rule reuses the tail.
    assert access.calls["cloudwatch.GetMetricData"] == 2
    grid_start, data = out[static.id]
    assert grid_start == TEST_WINDOW[0] - static.lookback()
    assert len(data[keys[0]]) == metrics.points(grid_start, TEST_WINDOW[1], 300)
    assert len(out[dynamic_ec2.rules[0].id][1][keys[0]]) == 4044


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1_763_640_000, id="epoch-int"),
        pytest.param(1_763_640_000.0, id="epoch-float"),
        pytest.param("2025-11-20T12:00:00Z", id="iso-z"),
        pytest.param("2025-11-20T13:00:00+01:00", id="iso-offset"),
        pytest.param("Thu, 20 Nov 2025 12:00:00 GMT", id="rfc822"),
    ],
)
def test_wire_timestamps_parse_to_utc(value):
    assert metrics.utc_timestamp(value) == dt.datetime(2025, 11, 20, 12, 0, tzinfo=dt.UTC)

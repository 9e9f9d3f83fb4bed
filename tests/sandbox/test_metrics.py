"""CloudWatch metrics: 14 days of 5-minute points per account, seasonality, and the injected anomalies (truth)."""

from __future__ import annotations

import datetime as dt
import statistics

import botocore.exceptions
import pytest


@pytest.fixture(scope="module")
def metrics_truth(sandbox):
    return sandbox.truth(sections=["metrics"])["metrics"]


def _query(metric, stat="Average", period=300, qid="m"):
    dims = [{"Name": k, "Value": v} for k, v in metric["dimensions"].items()]
    return {"Id": qid, "MetricStat": {"Metric": {"Namespace": metric["namespace"], "MetricName": metric["metric"],
                                                 "Dimensions": dims}, "Period": period, "Stat": stat}}


def _series(cw, metric, start, end, stat="Average", period=300):
    result = cw.get_metric_data(MetricDataQueries=[_query(metric, stat, period)], StartTime=start, EndTime=end,
                                ScanBy="TimestampAscending")["MetricDataResults"][0]
    return [(t.astimezone(dt.UTC), v) for t, v in zip(result["Timestamps"], result["Values"], strict=True)]


def test_list_metrics_per_account(sb, members, metrics_truth):
    seen = {}
    for account in members["onboarded"][:2]:
        cw = sb.client("cloudwatch", account_id=account)
        metrics = cw.list_metrics()["Metrics"]
        assert len(metrics) == 6
        expected = {(s["namespace"], s["metric"], tuple(s["dimensions"].items()))
                    for s in metrics_truth["series_by_account"][account]}
        assert {(m["Namespace"], m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"]))
                for m in metrics} == expected
        seen[account] = expected
        # Namespace filter holds with a dimension filter (AWS semantics; moto alone loses it).
        assert cw.list_metrics(Namespace="AWS/RDS", Dimensions=[{"Name": "InstanceId"}])["Metrics"] == []
        assert len(cw.list_metrics(Namespace="AWS/EC2", MetricName="CPUUtilization")["Metrics"]) == 2
    first, second = seen.values()
    assert not first & second
    assert sb.client("cloudwatch", account_id=members["onboarded"][0], region="eu-west-1").list_metrics()[
        "Metrics"] == []


def test_fourteen_days_of_five_minute_points(sb, metrics_truth):
    account = metrics_truth["anomalies"][0]["account"]
    metric = metrics_truth["series_by_account"][account][4]
    start = dt.datetime.fromisoformat(metrics_truth["start"])
    anchor = dt.datetime.fromisoformat(metrics_truth["anchor"])
    points = _series(sb.client("cloudwatch", account_id=account), metric, start - dt.timedelta(days=1),
                     anchor + dt.timedelta(days=1))
    assert len(points) == 14 * 288
    assert points[0][0] == start and points[-1][0] == anchor - dt.timedelta(minutes=5)


def test_daily_and_weekly_seasonality(sb, metrics_truth):
    account = next(iter(metrics_truth["series_by_account"]))
    metric = next(s for s in metrics_truth["series_by_account"][account] if s["key"] == "elb-requests")
    start = dt.datetime.fromisoformat(metrics_truth["start"])
    cw = sb.client("cloudwatch", account_id=account)
    hourly = _series(cw, metric, start, start + dt.timedelta(days=14), stat="Sum", period=3600)
    by_hour = {}
    for t, v in hourly:
        if t.weekday() < 5:
            by_hour.setdefault(t.hour, []).append(v)
    means = {h: statistics.mean(vs) for h, vs in by_hour.items()}
    assert max(means.values()) > 1.5 * min(means.values())
    daily = _series(cw, metric, start, start + dt.timedelta(days=14), stat="Sum", period=86400)
    weekday = statistics.mean(v for t, v in daily if t.weekday() < 5)
    weekend = statistics.mean(v for t, v in daily if t.weekday() >= 5)
    assert weekend < 0.9 * weekday


def test_injected_anomalies_are_where_the_truth_says(sb, metrics_truth):
    kinds = {a["kind"] for a in metrics_truth["anomalies"]}
    assert {"spike", "dip", "level_shift"} <= kinds
    for anomaly in metrics_truth["anomalies"]:
        cw = sb.client("cloudwatch", account_id=anomaly["account"])
        start = dt.datetime.fromisoformat(anomaly["start"])
        end = dt.datetime.fromisoformat(anomaly["end"]) if anomaly["end"] else start + dt.timedelta(hours=6)
        window = [v for _, v in _series(cw, anomaly, start, end)]
        # The same hours one day earlier: the series' normal level at that time of day.
        before = [v for _, v in _series(cw, anomaly, start - dt.timedelta(days=1), end - dt.timedelta(days=1))]
        ratio = statistics.mean(window) / statistics.mean(before)
        if anomaly["kind"] == "spike":
            assert ratio > 2.0, anomaly
        elif anomaly["kind"] == "dip":
            assert ratio < 0.2, anomaly
        else:
            assert 1.4 < ratio < 2.6, anomaly
        outside = [v for _, v in _series(cw, anomaly, start - dt.timedelta(hours=3), start)]
        assert max(outside) < max(window) or anomaly["kind"] == "dip"


def test_percentiles_and_statistics(sb, metrics_truth):
    account = next(iter(metrics_truth["series_by_account"]))
    metric = metrics_truth["series_by_account"][account][0]
    cw = sb.client("cloudwatch", account_id=account)
    anchor = dt.datetime.fromisoformat(metrics_truth["anchor"])
    dims = [{"Name": k, "Value": v} for k, v in metric["dimensions"].items()]
    stats = cw.get_metric_statistics(Namespace=metric["namespace"], MetricName=metric["metric"], Dimensions=dims,
                                     StartTime=anchor - dt.timedelta(hours=6), EndTime=anchor, Period=3600,
                                     Statistics=["Average", "Minimum", "Maximum", "SampleCount"],
                                     ExtendedStatistics=["p90"])["Datapoints"]
    assert len(stats) == 6
    for point in stats:
        assert point["SampleCount"] == 12
        assert point["Minimum"] <= point["Average"] <= point["Maximum"]
        assert point["Minimum"] <= point["ExtendedStatistics"]["p90"] <= point["Maximum"]
        assert point["Unit"] == "Percent"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        cw.get_metric_statistics(Namespace=metric["namespace"], MetricName=metric["metric"], Dimensions=dims,
                                 StartTime=anchor - dt.timedelta(days=14), EndTime=anchor, Period=300,
                                 Statistics=["Average"])
    assert err.value.response["Error"]["Code"] == "InvalidParameterCombination"


def test_put_metric_data_is_merged(sb, members):
    cw = sb.client("cloudwatch", account_id=members["onboarded"][4])
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    cw.put_metric_data(Namespace="Custom/Jobs", MetricData=[
        {"MetricName": "Failures", "Dimensions": [{"Name": "Queue", "Value": "q1"}], "Value": v,
         "Timestamp": now - dt.timedelta(minutes=k)} for k, v in enumerate([1.0, 2.0, 3.0])])
    metric = {"namespace": "Custom/Jobs", "metric": "Failures", "dimensions": {"Queue": "q1"}}
    points = _series(cw, metric, now - dt.timedelta(hours=1), now + dt.timedelta(minutes=1), stat="Sum", period=3600)
    assert sum(v for _, v in points) == 6.0
    assert cw.list_metrics(Namespace="Custom/Jobs")["Metrics"][0]["MetricName"] == "Failures"

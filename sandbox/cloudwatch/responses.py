"""CloudWatch responses: moto's, with GetMetricData, GetMetricStatistics and ListMetrics answered from the seeded
series (plus PutMetricData data) by models.MetricsModel. Parsing and serialising only."""

from __future__ import annotations

from typing import Any

from moto.cloudwatch.responses import CloudWatchResponse as MotoCloudWatchResponse
from moto.core.responses import ActionResult

from ..core import ExtensionResponseMixin, world
from ..paging import page
from .exceptions import InvalidParameterCombination, InvalidParameterValue
from .models import BASIC_STATS, _epoch, _utc, check_stat

MAX_STATISTICS_DATAPOINTS = 1440
MAX_DATA_POINTS = 100_800


class CloudWatchResponse(ExtensionResponseMixin, MotoCloudWatchResponse):
    @property
    def model(self):
        return world().metrics

    def get_metric_data(self) -> ActionResult:
        params = self._get_params()
        t0, t1 = _epoch(params["StartTime"]), _epoch(params["EndTime"])
        if t1 <= t0:
            raise InvalidParameterValue("The parameter EndTime must be greater than StartTime.")
        descending = (params.get("ScanBy") or "TimestampDescending") == "TimestampDescending"
        queries = params.get("MetricDataQueries", [])
        results: dict[str, dict[str, Any]] = {}
        for query in queries:
            stat_spec = query.get("MetricStat")
            if stat_spec is None:
                continue
            metric = stat_spec["Metric"]
            check_stat(stat_spec["Stat"])
            period = int(stat_spec["Period"])
            buckets = self.model.buckets(self.current_account, self.region, metric.get("Namespace"),
                                         metric.get("MetricName"), metric.get("Dimensions", []), t0, t1, period,
                                         stat_spec.get("Unit"))
            points = sorted((t, b.stat(stat_spec["Stat"])) for t, b in buckets.items())
            points = [(t, v) for t, v in points if v is not None]
            if descending:
                points.reverse()
            results[query["Id"]] = {
                "Id": query["Id"],
                "Label": query.get("Label") or f"{metric.get('MetricName')}",
                "Timestamps": [_utc(t) for t, _ in points],
                "Values": [v for _, v in points],
                "StatusCode": "Complete",
                "_return": query.get("ReturnData", True),
            }
        for query in queries:
            if "Expression" in query:
                # As moto: an expression may only name another query's id.
                source = results.get(query["Expression"].strip())
                if source is None:
                    raise InvalidParameterValue(f"Metric math is not supported by the sandbox: {query['Expression']}")
                results[query["Id"]] = {**source, "Id": query["Id"], "Label": query.get("Label") or query["Id"],
                                        "_return": query.get("ReturnData", True)}
        rows = [{k: v for k, v in r.items() if k != "_return"} for r in results.values() if r["_return"]]
        max_points = int(params.get("MaxDatapoints") or MAX_DATA_POINTS)
        for row in rows:
            if len(row["Values"]) > max_points:
                row["Values"], row["Timestamps"] = row["Values"][:max_points], row["Timestamps"][:max_points]
                row["StatusCode"] = "PartialData"
        items, token = page(rows, params.get("NextToken"), 500, ["gmd", self.current_account, str(t0), str(t1)])
        return ActionResult({"MetricDataResults": items, "NextToken": token, "Messages": []})

    def get_metric_statistics(self) -> ActionResult:
        params = self._get_params()
        statistics = params.get("Statistics") or []
        extended = params.get("ExtendedStatistics") or []
        if not statistics and not extended:
            raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics")
        for stat in statistics:
            if stat not in BASIC_STATS:
                raise InvalidParameterValue(f"The parameter Statistics contains an invalid value: {stat}")
        for stat in extended:
            check_stat(stat)
        t0, t1 = _epoch(params["StartTime"]), _epoch(params["EndTime"])
        period = int(params["Period"])
        if (t1 - t0) / period > MAX_STATISTICS_DATAPOINTS:
            raise InvalidParameterCombination(
                f"You have requested up to {int((t1 - t0) / period)} datapoints, which exceeds the limit of "
                f"{MAX_STATISTICS_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or "
                "decreasing the time range.")
        unit = params.get("Unit")
        buckets = self.model.buckets(self.current_account, self.region, params.get("Namespace"),
                                     params.get("MetricName"), params.get("Dimensions", []), t0, t1, period, unit)
        series_unit = unit or self._unit_of(params)
        datapoints = []
        for t, bucket in sorted(buckets.items()):
            point: dict[str, Any] = {"Timestamp": _utc(t), "Unit": series_unit}
            for stat in statistics:
                point[stat] = bucket.stat(stat)
            if extended:
                point["ExtendedStatistics"] = {stat: bucket.stat(stat) for stat in extended}
            datapoints.append(point)
        return ActionResult({"Label": params.get("MetricName"), "Datapoints": datapoints})

    def _unit_of(self, params: dict[str, Any]) -> str:
        found = self.model.matching(self.current_account, self.region, params.get("Namespace"),
                                    params.get("MetricName"), params.get("Dimensions", []), exact=True)
        return found[0].unit if found else "None"

    def list_metrics(self) -> ActionResult:
        params = self._get_params()
        rows = self.model.list_metrics(self.current_account, self.region, params.get("Namespace"),
                                       params.get("MetricName"), params.get("Dimensions"))
        query = ["lm", self.current_account, self.region, params.get("Namespace"), params.get("MetricName"),
                 params.get("Dimensions")]
        items, token = page(rows, params.get("NextToken"), 500, query)
        return ActionResult({"Metrics": items, "NextToken": token})




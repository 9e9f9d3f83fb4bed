"""CloudWatch metric rules: load and validate them, discover series, fetch datapoints in batches, find anomalies.

Rules live in ``include/config/metric_rules.yaml`` (schema in ``schema/metric_rules.schema.json``). Per account
and region a check makes one ``cloudwatch:ListMetrics`` walk per distinct (namespace, metric) to discover series
(dimension names are matched here, not sent: moto drops the namespace filter when dimensions are given, and an
exact dimension-name match is what the rules mean anyway), then ``cloudwatch:GetMetricData`` in as few calls as
the API allows. A call carries at most 500 queries and returns at most 100,800 datapoints per page, and all its
queries share one time range, so series are grouped by the range they need and packed greedily under both limits:
an hourly static check (~27 points a series) fits 500 series a call; a dynamic rule learning from 14 days of
5-minute data (4,032 + the window's points) fits 24. Pages beyond the first (``NextToken``) are followed.

Static rules are then evaluated with CloudWatch alarm semantics (``alarm.py``) and dynamic ones with the learned
band of ``detector.py``, into ``tables.ANOMALIES`` rows (``findings.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import yaml

from include.awsgov.anomaly.alarm import EXTRA_EVALUATION_POINTS
from include.awsgov.core import notify
from include.awsgov.core.aws import paginate

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
RULES_PATH = CONFIG_DIR / "metric_rules.yaml"
SCHEMA_PATH = CONFIG_DIR / "schema" / "metric_rules.schema.json"

# GetMetricData limits (CloudWatch quotas, not tunable): queries per request and datapoints per response page.
MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800
SEVERITIES = ("low", "medium", "high")
# How long CloudWatch keeps datapoints of a period (CloudWatch User Guide, "Metrics retention"; GetMetricData API
# reference): under 60 s for 3 hours, 60 s for 15 days, 300 s for 63 days, 3600 s for 455 days. A rule whose history
# is older than its period's retention would be answered with nothing for that part: refused at load.
RETENTION = ((60, dt.timedelta(hours=3)), (300, dt.timedelta(days=15)), (3600, dt.timedelta(days=63)))
LONGEST_RETENTION = dt.timedelta(days=455)
# Static rules fetch this many evaluation ranges before the window, so that a state kept by `ignore` (and the
# first evaluations of the window) rest on real history rather than on the start of the fetch.
STATIC_WARMUP_RANGES = 2
# (start, end) of a run's recent window, UTC, end exclusive.
Window = tuple[dt.datetime, dt.datetime]


class RuleError(ValueError):
    """Invalid metric rules; the message names the file, each offending rule and field."""


@dataclass(frozen=True)
class Rule:
    """One validated metric rule (see metric_rules.yaml for the fields)."""

    id: str
    title: str
    namespace: str
    metric_name: str
    statistic: str
    period: int
    kind: str  # static | dynamic
    params: Mapping[str, Any]
    dimensions: tuple[tuple[str, str], ...] | None = None
    dimension_names: frozenset[str] | None = None
    regions: tuple[str, ...] | None = None
    description: str = ""
    # Where its alerts go (core/notify.py; the rule's `notify`, default the account's owners by e-mail).
    targets: tuple[notify.Target, ...] = tuple(notify.targets(None))

    def lookback(self) -> dt.timedelta:
        """How much data before the window this rule needs (learning history, or alarm evaluation range)."""
        if self.kind == "dynamic":
            return dt.timedelta(days=int(self.params["history_days"]))
        points = int(self.params["evaluation_periods"]) + EXTRA_EVALUATION_POINTS
        return dt.timedelta(seconds=self.period * points * (1 + STATIC_WARMUP_RANGES))


@dataclass(frozen=True)
class RuleSet:
    """The rules file: rules plus the window and alert sections, defaults filled in."""

    rules: tuple[Rule, ...]
    window: Mapping[str, Any] = field(default_factory=dict)
    alerts: Mapping[str, Any] = field(default_factory=dict)

    def select(self, rule_ids: Iterable[str] | None) -> RuleSet:
        """Only the given rules (all enabled ones when None); unknown ids are refused.

        :param rule_ids: rule ids from a run Param.
        """
        if not rule_ids:
            return self
        wanted = list(rule_ids)
        known = {r.id: r for r in self.rules}
        unknown = [r for r in wanted if r not in known]
        if unknown:
            raise RuleError(f"unknown metric rule id(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return RuleSet(tuple(known[r] for r in wanted), self.window, self.alerts)


@dataclass(frozen=True, order=True)
class SeriesKey:
    """One CloudWatch series as GetMetricData queries it."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    period: int

    def query(self, query_id: str) -> dict[str, Any]:
        """A ``MetricDataQueries`` item for this series."""
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric_name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
                },
                "Period": self.period,
                "Stat": self.statistic,
            },
            "ReturnData": True,
        }

    def dimensions_json(self) -> str:
        """Dimensions as canonical JSON text (sorted keys), as stored and hashed."""
        return json.dumps(dict(self.dimensions), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- rules ---------------------------------------------------------------------------------------------------------
def _field(path: Sequence[Any]) -> str:
    return ".".join(str(p) for p in path) or "<rule>"


def _rule_label(raw_rules: Sequence[Any], index: int) -> str:
    raw = raw_rules[index] if index < len(raw_rules) else None
    rule_id = raw.get("id") if isinstance(raw, Mapping) else None
    return f"rule {rule_id!r}" if isinstance(rule_id, str) else f"rule #{index + 1}"


def _messages(err: jsonschema.ValidationError) -> list[tuple[list[Any], str]]:
    """(path, message) pairs for one schema error, worded for people: unknown keys one by one, own texts."""
    path = list(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, Mapping):
        allowed = set(err.schema.get("properties", {}))
        return [([*path, key], f"unknown key (allowed: {', '.join(sorted(allowed))})")
                for key in err.instance if key not in allowed]
    custom = err.schema.get("x-message") if isinstance(err.schema, Mapping) else None
    return [(path, f"{err.instance!r}: {custom}" if custom else err.message)]


def _schema_problems(data: Any) -> list[str]:
    schema = json.loads(SCHEMA_PATH.read_text())
    problems = []
    validator = notify.validator(schema)  # resolves the rules' shared notify schema
    raw_rules = data.get("rules") if isinstance(data, Mapping) and isinstance(data.get("rules"), list) else []
    for err in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        for path, message in _messages(err):
            if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
                problems.append(f"{_rule_label(raw_rules, path[1])} field {_field(path[2:])!r}: {message}")
            else:
                problems.append(f"field {_field(path) if path else '<top level>'!r}: {message}")
    return problems


def _cross_problems(raw_rules: Sequence[Mapping[str, Any]]) -> list[str]:
    problems, seen = [], set()
    for index, raw in enumerate(raw_rules):
        label = _rule_label(raw_rules, index)
        if raw["id"] in seen:
            problems.append(f"{label} field 'id': duplicate rule id")
        seen.add(raw["id"])
        if ("static" in raw) == ("dynamic" in raw):
            problems.append(f"{label} field 'static/dynamic': give exactly one of 'static' or 'dynamic'")
        if ("dimensions" in raw) == ("discover" in raw):
            problems.append(f"{label} field 'dimensions/discover': give exactly one of 'dimensions' or 'discover'")
        static = raw.get("static") or {}
        if static and static["datapoints_to_alarm"] > static["evaluation_periods"]:
            problems.append(
                f"{label} field 'static.datapoints_to_alarm': {static['datapoints_to_alarm']} is greater than "
                f"static.evaluation_periods {static['evaluation_periods']} (M must be <= N)"
            )
        if static and raw["period"] * static["evaluation_periods"] > 86_400:
            problems.append(f"{label} field 'static.evaluation_periods': period x evaluation_periods exceeds one day")
        problems += _retention_problems(raw, label)
    return problems


def retention(period: int) -> dt.timedelta:
    """How long CloudWatch keeps datapoints of this period (``RETENTION``)."""
    return next((kept for below, kept in RETENTION if period < below), LONGEST_RETENTION)


def _retention_problems(raw: Mapping[str, Any], label: str) -> list[str]:
    period, static, dynamic = int(raw["period"]), raw.get("static") or {}, raw.get("dynamic") or {}
    if dynamic:
        field, needed = "dynamic.history_days", dt.timedelta(days=int(dynamic["history_days"]))
    elif static:
        points = int(static["evaluation_periods"]) + EXTRA_EVALUATION_POINTS
        field, needed = "static.evaluation_periods", dt.timedelta(seconds=period * points * (1 + STATIC_WARMUP_RANGES))
    else:
        return []
    kept = retention(period)
    if needed <= kept:
        return []
    return [f"{label} field '{field}': needs {needed} of {period}-second data, CloudWatch keeps {period}-second "
            f"data for {kept} only (GetMetricData cannot serve older datapoints)"]


def _rule(raw: Mapping[str, Any]) -> Rule:
    kind = "static" if "static" in raw else "dynamic"
    params = dict(raw[kind])
    if kind == "static":
        params.setdefault("treat_missing_data", "missing")
    else:
        params.setdefault("min_severity", "low")
    dims = raw.get("dimensions")
    return Rule(
        id=raw["id"],
        title=raw["title"],
        namespace=raw["namespace"],
        metric_name=raw["metric_name"],
        statistic=raw["statistic"],
        period=int(raw["period"]),
        kind=kind,
        params=params,
        dimensions=tuple(sorted(dims.items())) if dims else None,
        dimension_names=frozenset(raw["discover"]["dimension_names"]) if "discover" in raw else None,
        regions=tuple(raw["regions"]) if raw.get("regions") else None,
        description=raw.get("description", ""),
        targets=tuple(notify.targets(raw.get("notify"))),
    )


def _read_yaml(path: Path) -> Any:
    # libyaml's loader when PyYAML has it: every task of a run reads the rules, the pure-Python one is 10x slower.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(), Loader=loader)  # noqa: S506 - a safe loader


def load_rules(path: str | Path | None = None, data: Mapping[str, Any] | None = None) -> RuleSet:
    """Load and validate the rules file; raise :class:`RuleError` naming every bad rule and field.

    :param path: YAML file (default include/config/metric_rules.yaml).
    :param data: an already-parsed mapping instead of a file (tests, tools).
    """
    source = "<data>" if data is not None else str(path or RULES_PATH)
    if data is None:
        try:
            data = _read_yaml(Path(source))
        except (OSError, yaml.YAMLError) as exc:
            raise RuleError(f"metric rules {source}: cannot read: {exc}") from exc
    problems = _schema_problems(data)
    if not problems:
        problems = _cross_problems(data["rules"])
    if problems:
        raise RuleError(f"invalid metric rules in {source}: " + "; ".join(problems))
    rules = tuple(_rule(raw) for raw in data["rules"] if raw.get("enabled", True))
    # Sections another rules file leaves out (or leaves partly out) keep the shipped file's values and wording.
    shipped = _read_yaml(RULES_PATH) or {}
    return RuleSet(
        rules=rules,
        window={**shipped.get("window", {}), **(data.get("window") or {})},
        alerts={**shipped.get("alerts", {}), **(data.get("alerts") or {})},
    )


# -- discovery -----------------------------------------------------------------------------------------------------
def discover_series(client: Any, rules: Iterable[Rule]) -> dict[str, list[SeriesKey]]:
    """Series of each rule in one account and region: fixed dimensions, or ``ListMetrics`` matched by names.

    One ListMetrics walk per distinct (namespace, metric name), shared by the rules that watch it.

    :param client: CloudWatch client of the account and region.
    :param rules: the rules to resolve.
    """
    listed: dict[tuple[str, str], list[tuple[tuple[str, str], ...]]] = {}
    out: dict[str, list[SeriesKey]] = {}
    for rule in rules:
        if rule.dimensions is not None:
            dims_list = [rule.dimensions]
        else:
            key = (rule.namespace, rule.metric_name)
            if key not in listed:
                metrics = paginate(client, "list_metrics", "Metrics", Namespace=rule.namespace,
                                   MetricName=rule.metric_name)
                listed[key] = sorted(
                    {tuple(sorted((d["Name"], d["Value"]) for d in m.get("Dimensions", []))) for m in metrics
                     if m.get("Namespace", rule.namespace) == rule.namespace}
                )
            dims_list = [d for d in listed[key] if frozenset(n for n, _ in d) == rule.dimension_names]
        out[rule.id] = [SeriesKey(rule.namespace, rule.metric_name, d, rule.statistic, rule.period) for d in dims_list]
    return out


# -- fetching ------------------------------------------------------------------------------------------------------
def floor_time(when: dt.datetime, seconds: int) -> dt.datetime:
    """Round a UTC datetime down to a multiple of ``seconds`` since the epoch (CloudWatch's period grid)."""
    epoch = int(when.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, dt.UTC)


def points(start: dt.datetime, end: dt.datetime, period: int) -> int:
    """Datapoints a series of ``period`` seconds has in [start, end)."""
    return max(0, -(-int((end - start).total_seconds()) // period))


def plan_batches(
    sizes: Sequence[int], max_queries: int = MAX_QUERIES_PER_CALL, max_datapoints: int = MAX_DATAPOINTS_PER_CALL
) -> list[list[int]]:
    """Pack series (by index) into GetMetricData calls under both the query and the datapoint limit.

    A series larger than ``max_datapoints`` on its own gets its own call (its pages follow NextToken).

    :param sizes: datapoints each series can return in the call's time range.
    :param max_queries: queries per call.
    :param max_datapoints: datapoints per response page.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if current and (len(current) >= max_queries or used + size > max_datapoints):
            batches.append(current)
            current, used = [], 0
        current.append(index)
        used += size
    if current:
        batches.append(current)
    return batches


def utc_timestamp(value: Any) -> dt.datetime:
    """Parse a wire timestamp (epoch number or ISO 8601 text) into an aware UTC datetime, fast.

    :param value: what the protocol carries.
    """
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        from botocore.utils import parse_timestamp

        parsed = parse_timestamp(value)
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def fast_timestamps(client: Any) -> Any:
    """Make a client parse timestamps with :func:`utc_timestamp` instead of botocore's local-time conversion.

    botocore turns every timestamp into a local-time datetime through dateutil, ~60 us each: a full GetMetricData
    page (100,800 datapoints) spends ~6 s of CPU on that alone, 13x what this parser needs (bench/metric_fetch.py).
    botocore has no public per-client switch (only the session-wide parser factory, shared by every client of the
    session), so this client's endpoint gets its own factory; if a botocore version renames the attribute, the
    client keeps its slower, equivalent parser.

    :param client: a boto3 CloudWatch client.
    """
    from botocore.parsers import ResponseParserFactory

    endpoint = getattr(client, "_endpoint", None)
    if endpoint is not None and hasattr(endpoint, "_response_parser_factory"):
        if not getattr(endpoint, "_awsgov_fast_timestamps", False):
            factory = ResponseParserFactory()
            factory.set_parser_defaults(timestamp_parser=utc_timestamp)
            endpoint._response_parser_factory = factory
            endpoint._awsgov_fast_timestamps = True
    return client


def fetch_series(
    client: Any, keys: Sequence[SeriesKey], start: dt.datetime, end: dt.datetime
) -> dict[SeriesKey, np.ndarray]:
    """Datapoints of each series on its period grid from ``start`` (aligned) to ``end``; NaN where missing.

    :param client: CloudWatch client of the account and region.
    :param keys: series sharing this time range.
    :param start: range start (UTC), aligned to every key's period by the caller.
    :param end: range end (exclusive).
    """
    keys = list(dict.fromkeys(keys))
    fast_timestamps(client)
    sizes = [points(start, end, k.period) for k in keys]
    out = {k: np.full(n, np.nan) for k, n in zip(keys, sizes, strict=True)}
    t0 = start.timestamp()
    status: dict[SeriesKey, str] = {}
    for batch in plan_batches(sizes):
        queries = [keys[i].query(f"q{i}") for i in batch]
        results = paginate(client, "get_metric_data", "MetricDataResults", MetricDataQueries=queries,
                           StartTime=start, EndTime=end, ScanBy="TimestampAscending")
        for res in results:
            key = keys[int(res["Id"][1:])]
            # A series split over pages is PartialData until its last page says Complete.
            status[key] = res.get("StatusCode", "Complete")
            arr = out[key]
            for ts, value in zip(res.get("Timestamps", []), res.get("Values", []), strict=False):
                idx = int((ts.timestamp() - t0) // key.period)
                if 0 <= idx < len(arr):
                    arr[idx] = value
    incomplete = [f"{k.metric_name} {k.dimensions_json()}: {v}" for k, v in status.items() if v != "Complete"]
    if incomplete:
        log.warning("GetMetricData left %d series incomplete (gaps read as missing): %s", len(incomplete),
                    "; ".join(incomplete[:5]))
    return out


def collect(
    client: Any, series: Mapping[str, Sequence[SeriesKey]], rules: Iterable[Rule], window: Window
) -> dict[str, tuple[dt.datetime, dict[SeriesKey, np.ndarray]]]:
    """Fetch what every rule needs, each series once for the longest lookback any rule asks of it.

    :param client: CloudWatch client of the account and region.
    :param series: rule id -> its series (from :func:`discover_series`).
    :param rules: the rules.
    :param window: (start, end) of the recent window.
    :return: rule id -> (grid start, series -> datapoints) for the rule's series.
    """
    start, end = window
    need: dict[SeriesKey, dt.datetime] = {}
    for rule in rules:
        rule_start = floor_time(start - rule.lookback(), rule.period)
        for key in series.get(rule.id, []):
            need[key] = min(need.get(key, rule_start), rule_start)
    by_range: dict[dt.datetime, list[SeriesKey]] = defaultdict(list)
    for key, key_start in sorted(need.items()):
        by_range[key_start].append(key)
    data: dict[SeriesKey, tuple[dt.datetime, np.ndarray]] = {}
    for range_start, keys in by_range.items():
        range_end = max(floor_time(end, k.period) for k in keys)
        for key, arr in fetch_series(client, keys, range_start, range_end).items():
            data[key] = (range_start, arr)
    out = {}
    for rule in rules:
        rule_start = floor_time(start - rule.lookback(), rule.period)
        rule_data = {}
        for key in series.get(rule.id, []):
            fetched_start, arr = data[key]
            offset = points(fetched_start, rule_start, key.period)
            rule_data[key] = arr[offset:]
        out[rule.id] = (rule_start, rule_data)
    return out


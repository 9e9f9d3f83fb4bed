"""Metric anomalies of one account: rules evaluated on fetched series, turned into ``tables.ANOMALIES`` rows and
merged into the store without duplicates.

A finding's ``anomaly_id`` hashes the rule, account, region, series and datapoint time, so overlapping hourly runs
(and reruns) compute the same id for the same anomaly. Rows are partitioned by the anomaly's own day and written
per account (chunk = account id); a run reads the account's chunk of each day it touches, adds only ids not yet
there, and rewrites the chunk atomically, or leaves it alone when nothing is new. Rows already stored are kept as
first written, so a rerun changes nothing. Coverage (what could be read per account and region) goes to the
``metric_coverage`` table (schema ``tables.COVERAGE``, source ``cloudwatch``, chunk = account id, day of the
window's end; a later run of the same day replaces it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from include.awsgov.anomaly.alarm import ALARM, alarm_states
from include.awsgov.anomaly.metrics import (
    SEVERITIES,
    Rule,
    RuleSet,
    SeriesKey,
    Window,
    collect,
    discover_series,
    floor_time,
    points,
)
from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess, classify_error, error_code
from include.awsgov.core.store import Store

log = logging.getLogger(__name__)

ANOMALIES_TABLE = "anomalies"
# Not the collection's `coverage` table: governance_collection prunes that table's chunks to the accounts it
# collected and counts every row as its own gap. Same schema (tables.COVERAGE), own table, chunk = account id.
COVERAGE_TABLE = "metric_coverage"
COVERAGE_SOURCE = "cloudwatch"


# -- findings ------------------------------------------------------------------------------------------------------
def anomaly_id(rule_id: str, account_id: str, region: str, key: SeriesKey, timestamp: dt.datetime) -> str:
    """Stable id of one anomaly: the same rule, series and datapoint time always give the same id.

    :param timestamp: start of the anomalous datapoint's period (UTC).
    """
    parts = ("anomaly", rule_id, account_id, region, key.namespace, key.metric_name, key.dimensions_json(),
             key.statistic, str(key.period), timestamp.astimezone(dt.UTC).isoformat())
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


def window_slice(grid_start: dt.datetime, period: int, window: Window) -> slice:
    """Grid positions whose period starts inside the window.

    :param grid_start: time of position 0.
    :param period: seconds between positions.
    :param window: (start, end) of the recent window.
    """
    lo = points(grid_start, floor_time(window[0], period), period)
    hi = points(grid_start, floor_time(window[1], period), period)
    return slice(lo, max(lo, hi))


def _num(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) or np.isinf(value) else value


def static_findings(
    rule: Rule, account_id: str, region: str, grid_start: dt.datetime, data: Mapping[SeriesKey, np.ndarray],
    window: Window,
) -> list[dict[str, Any]]:
    """ANOMALIES rows for a static rule: one per datapoint of the window at which the alarm is in ALARM.

    expected = the threshold; the band is the allowed side of it; score = relative exceedance of the threshold.

    :param rule: a static rule.
    :param grid_start: time of the first datapoint of every series in ``data``.
    :param data: series -> datapoints (NaN missing), all on the same grid.
    :param window: (start, end) of the recent window.
    """
    if not data:
        return []
    keys = list(data)
    matrix = np.vstack([data[k] for k in keys])
    p = rule.params
    states = alarm_states(matrix, p["comparison"], p["threshold"], p["datapoints_to_alarm"],
                          p["evaluation_periods"], p["treat_missing_data"])
    span = window_slice(grid_start, rule.period, window)
    threshold = float(p["threshold"])
    above = p["comparison"].startswith("GreaterThan")
    scale = max(abs(threshold), 1e-9)
    rows = []
    for s, j in zip(*np.nonzero(states[:, span] == ALARM), strict=True):
        t = span.start + int(j)
        key, value = keys[int(s)], float(matrix[s, t])
        ts = grid_start + dt.timedelta(seconds=rule.period * t)
        rows.append(anomaly_row(rule, account_id, region, key, ts, value, threshold,
                                None if above else threshold, threshold if above else None,
                                ((value - threshold) if above else (threshold - value)) / scale, p["severity"],
                                static_reason(rule, key.statistic)))
    return rows


_SYMBOLS = {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": ">=", "LessThanThreshold": "<",
            "LessThanOrEqualToThreshold": "<="}


def static_reason(rule: Rule, statistic: str) -> str:
    """Why a static rule fired, as the alarm reads: "Average > 80 in 3 of the last 3 periods of 5min"."""
    from include.awsgov.anomaly.detector import duration

    p = rule.params
    return (f"{statistic} {_SYMBOLS.get(p['comparison'], p['comparison'])} {float(p['threshold']):g} in "
            f"{p['datapoints_to_alarm']} of the last {p['evaluation_periods']} periods of {duration(rule.period)}")


def dynamic_reason(view: str, above: bool, record_days: int) -> str:
    """Why the learned detector fired, from the name of its view that was furthest out (detector.Params.view_names).

    :param view: "point", "15min median", "1h mean", ... or the level view ("1h mean outside its 10-day range").
    :param above: the value is above the expected value.
    :param record_days: how far back the records reach.
    """
    side = "above" if above else "below"
    if "outside" in view:  # the level view says its own comparison
        return f"the {view} ({side} it)"
    subject = "the value" if view == "point" else f"the {view}"
    return f"{subject} further {side} the expected value than at any time in the last {record_days} days"



def detect_rule(matrix: np.ndarray, grid_start: dt.datetime, rule: Rule) -> dict[str, np.ndarray]:
    """Run the dynamic detector (detector.py) over a (series x time) matrix; the one place that adapts to its API.

    :param matrix: datapoints on the rule's period grid, NaN where missing.
    :param grid_start: time of the first column (aligns the detector's hours and days with the clock).
    :param rule: a dynamic rule (period, sensitivity).
    :return: arrays shaped like ``matrix``: expected, lower, upper, score, severity (name), is_anomaly (bool),
        view_code (which of ``view_names`` was furthest out, where out of band), view_names, record_days.
    """
    from include.awsgov.anomaly import detector

    result = detector.detect(matrix, step_seconds=rule.period, sensitivity=rule.params["sensitivity"],
                            start_time=grid_start)
    return {
        "view_code": np.asarray(result.reason),  # indexes view_names where out of band, undefined elsewhere
        "view_names": tuple(result.view_names),
        "record_days": detector.Params().record_days,
        "expected": result.expected,
        "lower": result.lower,
        "upper": result.upper,
        "score": result.score,
        "severity": np.asarray(detector.SEVERITY_NAMES, dtype=object)[np.asarray(result.severity, dtype=int)],
        # Alerts are episode starts: a long excursion is one anomaly, not one per datapoint.
        "is_anomaly": np.asarray(result.is_anomaly, dtype=bool),
    }


def dynamic_findings(
    rule: Rule, account_id: str, region: str, grid_start: dt.datetime, data: Mapping[SeriesKey, np.ndarray],
    window: Window,
) -> list[dict[str, Any]]:
    """ANOMALIES rows for a dynamic rule: datapoints of the window outside the band learned from the history.

    :param rule: a dynamic rule.
    :param grid_start: time of the first datapoint of every series in ``data``.
    :param data: series -> datapoints (NaN missing), history then window, all on the same grid.
    :param window: (start, end) of the recent window.
    """
    if not data:
        return []
    keys = list(data)
    matrix = np.vstack([data[k] for k in keys])
    out = detect_rule(matrix, grid_start, rule)
    span = window_slice(grid_start, rule.period, window)
    floor = SEVERITIES.index(rule.params["min_severity"])
    severity = out["severity"][:, span]
    keep = out["is_anomaly"][:, span].astype(bool) & np.isin(severity, SEVERITIES[floor:])
    rows = []
    for s, j in zip(*np.nonzero(keep), strict=True):
        t = span.start + int(j)
        ts = grid_start + dt.timedelta(seconds=rule.period * t)
        value, expected = float(matrix[s, t]), out["expected"][s, t]
        view = out["view_names"][int(out["view_code"][s, t])]
        rows.append(anomaly_row(rule, account_id, region, keys[int(s)], ts, value, expected,
                                out["lower"][s, t], out["upper"][s, t], out["score"][s, t], str(out["severity"][s, t]),
                                dynamic_reason(view, value >= expected, out["record_days"])))
    return rows


def anomaly_row(rule: Rule, account_id: str, region: str, key: SeriesKey, ts: dt.datetime, value: float,
                expected: Any, lower: Any, upper: Any, score: Any, severity: str, reason: str) -> dict[str, Any]:
    """One ``tables.ANOMALIES`` row (static and dynamic rules alike); its id is stable across overlapping runs."""
    return {
        "anomaly_id": anomaly_id(rule.id, account_id, region, key, ts),
        "rule_id": rule.id,
        "kind": rule.kind,
        "account_id": account_id,
        "region": region,
        "namespace": key.namespace,
        "metric_name": key.metric_name,
        "dimensions_json": key.dimensions_json(),
        "statistic": key.statistic,
        "timestamp": ts,
        "value": _num(value),
        "expected": None if expected is None else _num(expected),
        "lower": None if lower is None else _num(lower),
        "upper": None if upper is None else _num(upper),
        "score": None if score is None else _num(score),
        "severity": severity,
        "reason": reason,
    }


def findings(
    rules: Iterable[Rule], account_id: str, region: str,
    collected: Mapping[str, tuple[dt.datetime, Mapping[SeriesKey, np.ndarray]]], window: Window,
) -> list[dict[str, Any]]:
    """ANOMALIES rows of every rule for one account and region.

    :param collected: output of :func:`collect`.
    """
    rows = []
    for rule in rules:
        grid_start, data = collected[rule.id]
        evaluate = static_findings if rule.kind == "static" else dynamic_findings
        rows.extend(evaluate(rule, account_id, region, grid_start, data, window))
    return rows


def run_window(
    window_cfg: Mapping[str, Any], *, interval_start: dt.datetime | None, interval_end: dt.datetime | None,
    requested_at: dt.datetime, end: str | dt.datetime | None = None, hours: int | None = None,
) -> Window:
    """The recent window a run reports on, in UTC, aligned to the minute.

    An explicit ``end`` (re-checking a past hour) is taken as is; a scheduled run's data interval and a manual
    run's request time are shifted back by ``lag_minutes`` so that the last period has been published.

    :param window_cfg: the rules file's ``window`` section.
    :param interval_start: the run's data interval start (None or equal to the end for manual runs).
    :param interval_end: the run's data interval end.
    :param requested_at: when the run was requested (``run_after``).
    :param end: ``end`` Param, ISO datetime (naive means UTC).
    :param hours: ``hours`` Param: window length for manual runs and explicit ends.
    """
    lag = dt.timedelta(minutes=int(window_cfg.get("lag_minutes", 0)))
    length = dt.timedelta(hours=int(hours or window_cfg.get("manual_hours", 1)))
    if end:
        stop = end if isinstance(end, dt.datetime) else dt.datetime.fromisoformat(str(end))
        stop = stop if stop.tzinfo else stop.replace(tzinfo=dt.UTC)
        start = stop - length
    elif interval_start is not None and interval_end is not None and interval_end > interval_start and not hours:
        start, stop = interval_start - lag, interval_end - lag
    else:
        stop = requested_at - lag
        start = stop - length
    return floor_time(start.astimezone(dt.UTC), 60), floor_time(stop.astimezone(dt.UTC), 60)


# -- store ---------------------------------------------------------------------------------------------------------
def merge_anomalies(store: Store, account_id: str, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Add rows whose anomaly_id is not stored yet to the account's chunk of each day; return the new rows.

    :param store: the history store.
    :param account_id: the chunk written (every row belongs to this account).
    :param rows: ANOMALIES rows, possibly already stored by an overlapping run.
    """
    frame = pd.DataFrame(list(rows), columns=tables.ANOMALIES.names)
    if frame.empty:
        return frame
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame = frame.drop_duplicates("anomaly_id")
    fresh_parts = []
    for day, part in frame.groupby(frame["timestamp"].dt.date, sort=True):
        found: list[pd.DataFrame] = []

        def add_fresh(existing: pa.Table, part: pd.DataFrame = part, found: list = found) -> pd.DataFrame | None:
            # Under the chunk's lock (or retried on a conflict): concurrent runs of this DAG and the activity
            # checks of governance_events add to the same file, and neither may drop the other's rows.
            existing = existing.to_pandas()
            fresh = part[~part["anomaly_id"].isin(set(existing["anomaly_id"]))]
            found[:] = [fresh]
            if fresh.empty:
                return None
            return pd.concat([existing, fresh], ignore_index=True) if len(existing) else fresh

        store.update(ANOMALIES_TABLE, day, account_id, add_fresh, schema=tables.ANOMALIES,
                     sort_by=["timestamp", "rule_id", "anomaly_id"])
        if not found[0].empty:
            fresh_parts.append(found[0])
    if not fresh_parts:
        return frame.iloc[0:0]
    return pd.concat(fresh_parts, ignore_index=True)


def write_coverage(store: Store, day: dt.date, account_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record what could be read per region for this account (source cloudwatch, own chunk).

    :param day: partition day (the window's day).
    :param rows: COVERAGE rows.
    """
    frame = pd.DataFrame(list(rows), columns=tables.COVERAGE.names)
    store.write(COVERAGE_TABLE, day, frame, chunk=account_id, schema=tables.COVERAGE, sort_by=["region"])


# -- one account ---------------------------------------------------------------------------------------------------
def check_account(
    access: AwsAccess, store: Store, ruleset: RuleSet, account_id: str, regions: Sequence[str],
    window: Window,
) -> dict[str, Any]:
    """Discover, fetch, evaluate and store the metric anomalies of one account in every region.

    A region that cannot be read (denied, throttled out, failing) is logged and recorded in COVERAGE; the other
    regions are still checked. Returns a small, XCom-sized summary.

    :param access: access layer (the read role is assumed for member accounts).
    :param store: the history store.
    :param ruleset: validated rules.
    :param account_id: the account to check.
    :param regions: regions for rules that do not name their own.
    :param window: (start, end) of the recent window, UTC.
    """
    rows: list[dict[str, Any]] = []
    coverage = []
    series_total = 0
    denied: tuple[str, str] | None = None
    for region in _regions(ruleset.rules, regions):
        rules = [r for r in ruleset.rules if region in (r.regions or regions)]
        before = access.total_calls()
        status, error = denied or ("ok", "")
        try:
            if denied is None:
                client = access.client("cloudwatch", region, account_id)
                series = discover_series(client, rules)
                series_total += sum(len(v) for v in series.values())
                rows.extend(findings(rules, account_id, region, collect(client, series, rules, window), window))
        except (ClientError, BotoCoreError) as exc:
            status = classify_error(exc)
            error = f"{error_code(exc) or type(exc).__name__}: {exc}"[:500]
            log.warning("cloudwatch %s %s: %s", account_id, region, error)
            if status == "access_denied" and getattr(exc, "operation_name", "") == "AssumeRole":
                # The read role itself is refused: every other region would fail the same way.
                denied = (status, error)
        coverage.append({"account_id": account_id, "region": region, "source": COVERAGE_SOURCE, "status": status,
                         "error": error, "api_calls": access.total_calls() - before})
    new = merge_anomalies(store, account_id, rows)
    write_coverage(store, (window[1] - dt.timedelta(microseconds=1)).date(), account_id, coverage)
    statuses = {c["region"]: c["status"] for c in coverage}
    summary = {
        "account_id": account_id,
        "status": _worst(statuses.values()),
        "regions": statuses,
        "series": series_total,
        "anomalies": len(rows),
        "new": len(new),
        "new_by_severity": {s: int((new["severity"] == s).sum()) for s in SEVERITIES} if len(new) else {},
        "api_calls": sum(c["api_calls"] for c in coverage),
    }
    log.info("cloudwatch %s: %d series, %d anomalies in window, %d new, %d API calls, regions %s",
             account_id, series_total, len(rows), len(new), summary["api_calls"], statuses)
    return summary


def _regions(rules: Iterable[Rule], default: Sequence[str]) -> list[str]:
    out = dict.fromkeys(default)
    for rule in rules:
        out.update(dict.fromkeys(rule.regions or ()))
    return list(out)


def _worst(statuses: Iterable[str]) -> str:
    statuses = set(statuses)
    for status in ("access_denied", "error", "throttled_out", "no_support_plan"):
        if status in statuses:
            return status
    return "ok"

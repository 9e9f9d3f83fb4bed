"""Account activity: hourly API-call counts per account and event type, watched for bursts.

``account_activity`` is recomputed from the ``events`` table for each day a run touched (so it is idempotent and a
late event corrects its hour). Bursts are found by the learned detector of anomaly.py (unchanged, hourly grid,
missing hours = 0 calls) on one series per account and category (events.yaml ``activity.categories``: e.g. IAM
changes, security-group changes); an alert at or above ``activity.min_count`` calls in one of the hours the run
touched becomes an ``anomalies`` row (namespace ``AWSGov/AccountActivity``), so the existing alert path and the
weekly report see it like a metric anomaly.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from include.awsgov.anomaly.findings import merge_anomalies
from include.awsgov.core import tables
from include.awsgov.events.ingest import API_CALL, CHUNK, EVENTS_TABLE

log = logging.getLogger(__name__)

ACTIVITY_TABLE = "account_activity"
NAMESPACE = "AWSGov/AccountActivity"
RULE_ID = "events_activity_burst"


def hourly_counts(events: pd.DataFrame) -> pd.DataFrame:
    """ACCOUNT_ACTIVITY rows from ``events`` rows: API calls per hour, account and event type."""
    calls = events[events["detail_type"] == API_CALL]
    if calls.empty:
        return pd.DataFrame({name: pd.Series(dtype="object") for name in tables.ACCOUNT_ACTIVITY.names})
    hour = pd.to_datetime(calls["time"], utc=True).dt.floor("h")
    out = (calls.assign(hour=hour).groupby(["hour", "account_id", "type"], sort=True).size()
           .reset_index(name="count").rename(columns={"type": "event_type"}))
    out["count"] = out["count"].astype("int64")
    return out[tables.ACCOUNT_ACTIVITY.names]


def refresh_activity(store: Any, days: Iterable[str | dt.date]) -> int:
    """Rewrite ``account_activity`` for these days from ``events``; returns the rows written."""
    written = 0
    for day in sorted({dt.date.fromisoformat(str(d)) for d in days}):
        events = store.read(EVENTS_TABLE, day, day, schema=tables.EVENTS)
        counts = hourly_counts(events)
        store.write(ACTIVITY_TABLE, day, counts, chunk=CHUNK, schema=tables.ACCOUNT_ACTIVITY,
                    sort_by=["hour", "account_id", "event_type"])
        written += len(counts)
    return written


def _category_series(activity: pd.DataFrame, categories: Mapping[str, Sequence[str]], start: pd.Timestamp,
                     hours: int) -> tuple[list[tuple[str, str]], np.ndarray]:
    keys: list[tuple[str, str]] = []
    rows: list[np.ndarray] = []
    if activity.empty:
        return keys, np.zeros((0, hours))
    activity = activity.assign(pos=((pd.to_datetime(activity["hour"], utc=True) - start)
                                    // pd.Timedelta(hours=1)).astype(int))
    activity = activity[(activity["pos"] >= 0) & (activity["pos"] < hours)]
    for account_id, part in activity.groupby("account_id", sort=True):
        for category, patterns in categories.items():
            mask = part["event_type"].map(lambda t, p=patterns: any(fnmatch.fnmatchcase(t, x) for x in p))
            chosen = part[mask]
            if chosen.empty:
                continue
            series = np.zeros(hours)
            np.add.at(series, chosen["pos"].to_numpy(), chosen["count"].to_numpy(dtype=float))
            keys.append((str(account_id), category))
            rows.append(series)
    return keys, (np.vstack(rows) if rows else np.zeros((0, hours)))


def burst_id(account_id: str, category: str, hour: dt.datetime) -> str:
    """Stable id of one burst (the same account, category and hour always give the same id)."""
    key = "\x1f".join(("activity", account_id, category, hour.astimezone(dt.UTC).isoformat()))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def detect_bursts(store: Any, hours: Iterable[str | dt.datetime], cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """ANOMALIES rows for bursts of activity in the given hours (learned from the hours before them).

    :param store: the history store (reads ``account_activity``).
    :param hours: hour starts (UTC) the run added activity to.
    :param cfg: events.yaml ``activity`` section.
    """
    from include.awsgov.anomaly.detector import anomalies_frame, detect

    wanted = sorted({pd.Timestamp(h).tz_convert("UTC") if pd.Timestamp(h).tzinfo else
                     pd.Timestamp(h).tz_localize("UTC") for h in hours})
    if not wanted:
        return []
    start = wanted[0] - pd.Timedelta(hours=int(cfg["history_hours"]))
    n = int((wanted[-1] - start) / pd.Timedelta(hours=1)) + 1
    activity = store.read(ACTIVITY_TABLE, start.date(), wanted[-1].date(), schema=tables.ACCOUNT_ACTIVITY)
    keys, matrix = _category_series(activity, cfg["categories"], start, n)
    if not keys:
        return []
    detection = detect(matrix, step_seconds=3600, sensitivity=cfg["sensitivity"], start_time=start.to_pydatetime())
    grid = pd.date_range(start, periods=n, freq="h")
    found = anomalies_frame(detection, series_ids=range(len(keys)), timestamps=grid)
    found = found[found["timestamp"].isin(wanted) & (found["value"] >= float(cfg["min_count"]))]
    rows = []
    for rec in found.to_dict("records"):
        account_id, category = keys[int(rec["series_id"])]
        hour = pd.Timestamp(rec["timestamp"]).to_pydatetime()
        rows.append({
            "anomaly_id": burst_id(account_id, category, hour), "rule_id": RULE_ID, "kind": "dynamic",
            "account_id": account_id, "region": "global", "namespace": NAMESPACE, "metric_name": category,
            "dimensions_json": json.dumps({"AccountId": account_id}), "statistic": "Sum", "timestamp": hour,
            "value": float(rec["value"]), "expected": float(rec["expected"]), "lower": float(rec["lower"]),
            "upper": float(rec["upper"]), "score": float(rec["score"]), "severity": rec["severity"],
        })
    log.info("activity: %d series, %d bursts in %d hour(s)", len(keys), len(rows), len(wanted))
    return rows


def store_bursts(store: Any, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Merge burst rows into ``anomalies`` (one chunk per account, as metric anomalies); return the new ones."""
    fresh: list[dict[str, Any]] = []
    for account_id in sorted({r["account_id"] for r in rows}):
        new = merge_anomalies(store, account_id, [r for r in rows if r["account_id"] == account_id])
        fresh.extend(new.to_dict("records"))
    return fresh

"""Account activity: hourly API-call counts per account, event type and principal type, from the CloudTrail log
files, watched for bursts.

Every account's trail writes gzip'd JSON log files (``{"Records": [...]}``) to the central bucket, one file per
five-minute window, named by its delivery time (CloudTrail User Guide, "CloudTrail log file examples")::

    [<trail prefix>/]AWSLogs/[<o-id>/]<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<UniqueString>.json.gz

Each hour the DAG reads, in bulk, the files *delivered* in every complete hour not read yet (:func:`read_hour`:
one ``ListObjectsV2`` per account and region with the hour's file-name prefix, then the files, in threads), counts
their records per hour (of the record's ``eventTime``), account, event type (``<service>:<eventName>``) and
principal type (``userIdentity.type``: Root, IAMUser, AssumedRole, AWSService, FederatedUser, ...), and writes the
counts as the chunk ``h<delivery hour>`` of ``account_activity`` (partition = the records' day; an empty chunk in
the delivery hour's own day marks the hour as read, so a rerun rewrites the same chunks and the next run skips it).
No API call travels through SQS or Airflow for this.

Late files. "CloudTrail typically delivers logs within an average of about 5 minutes of an API call. This time is
not guaranteed." (CloudTrail User Guide, "Getting and viewing your CloudTrail log files"): a file can land in a
delivery hour's prefix after that hour was read. So each delivery hour is read again ``recount_hours`` times, once
per hour after its first read (:func:`hours_to_read` says which pass is due; :func:`store_hour` records pass
``k`` >= 1 as the empty chunk ``h<hour>-r<k>``). Every pass lists the whole prefix again and overwrites the hour's
chunks, so the counts converge to those of every file delivered so far, and a file is never counted twice (it
belongs to one delivery hour, whose chunks are replaced, not added to). Files later than ``recount_hours`` hours
after the first read are not counted.

Bursts are found by the learned detector of anomaly/detector.py (unchanged, hourly grid, missing hours = 0 calls) on
one series per account and category (events.yaml ``activity.categories``: e.g. IAM changes, security-group
changes; a pattern ``principal:<type>`` matches the principal type instead, e.g. ``principal:Root`` for the calls
of the root user); an alert at or above ``activity.min_count`` calls in one of the hours just read becomes an
``anomalies`` row (namespace ``AWSGov/AccountActivity``), so the existing alert path and the weekly report see it
like a metric anomaly.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from include.awsgov.anomaly.findings import dynamic_reason, merge_anomalies
from include.awsgov.core import tables
from include.awsgov.events import trail_files

log = logging.getLogger(__name__)

ACTIVITY_TABLE = "account_activity"
NAMESPACE = "AWSGov/AccountActivity"
RULE_ID = "events_activity_burst"


def hour_chunk(hour: dt.datetime) -> str:
    """Chunk name of the counts read from the files delivered in ``hour``."""
    return f"h{hour.astimezone(dt.UTC):%Y%m%dT%H}"


def recount_chunk(hour: dt.datetime, recount: int) -> str:
    """Chunk name of the (empty) marker of the ``recount``-th re-reading of delivery hour ``hour``."""
    return f"{hour_chunk(hour)}-r{int(recount)}"


def key_prefix(trail_prefix: str, org_id: str | None, account_id: str, region: str, hour: dt.datetime) -> str:
    """The S3 key prefix of the log files an account's trail delivered in ``hour`` for ``region``.

    :param trail_prefix: the trail's S3KeyPrefix ("" for none; ``{account_id}`` is filled in).
    :param org_id: the organization id for an organization trail, else None.
    """
    h = hour.astimezone(dt.UTC)
    return (trail_files.day_prefix(trail_prefix, org_id, account_id, region, h.date())
            + f"{account_id}_CloudTrail_{region}_{h:%Y%m%dT%H}")


def count_records(records: Iterable[Any], counts: Counter) -> int:
    """Add API calls to ``counts`` keyed (hour, account, ``<service>:<eventName>``, principal type); returns the
    records skipped (not an object, or without a readable eventTime)."""
    skipped = 0
    for r in records:
        if not isinstance(r, dict):
            skipped += 1
            continue
        try:
            when = dt.datetime.fromisoformat(str(r.get("eventTime")).replace("Z", "+00:00"))
            hour = when.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        except (TypeError, ValueError, OverflowError):
            skipped += 1
            continue
        identity = r.get("userIdentity") if isinstance(r.get("userIdentity"), dict) else {}
        account = str(r.get("recipientAccountId") or identity.get("accountId") or "")
        service = str(r.get("eventSource") or "unknown").split(".", 1)[0]
        principal = str(identity.get("type") or "Unknown")
        counts[(hour, account, f"{service}:{r.get('eventName') or 'unknown'}", principal)] += 1
    return skipped


def read_hour(s3: Any, bucket: str, accounts: Sequence[str], regions: Sequence[str], hour: dt.datetime, *,
              trail_prefix: str = "", org_id: str | None = None, workers: int = 16,
              max_file_bytes: int = 64 * 1024 * 1024) -> tuple[pd.DataFrame, dict[str, int]]:
    """Counts of the API calls in the log files delivered in ``hour`` (ACCOUNT_ACTIVITY rows), and what was read.

    :param s3: an S3 client of the admin account (the central bucket).
    :param accounts: the organization's account ids.
    :param regions: the trail's regions.
    :returns: (rows, {"files", "records", "skipped"}).
    """
    def keys(pair: tuple[str, str]) -> list[str]:
        prefix = key_prefix(trail_prefix, org_id, pair[0], pair[1], hour)
        out = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", []) if trail_files.delivered_at(o["Key"])]
        return out

    pairs = [(a, r) for a in sorted(set(accounts)) for r in sorted(set(regions))]
    counts: Counter = Counter()
    stats = {"files": 0, "records": 0, "skipped": 0}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        files = [k for found in pool.map(keys, pairs) for k in found]
        for records in pool.map(lambda k: trail_files.read_log_file(s3, bucket, k, max_file_bytes), files):
            stats["files"] += 1
            stats["records"] += len(records)
            stats["skipped"] += count_records(records, counts)
    rows = pd.DataFrame([{"hour": h, "account_id": a, "event_type": t, "count": n, "principal_type": p}
                         for (h, a, t, p), n in sorted(counts.items())], columns=tables.ACCOUNT_ACTIVITY.names)
    rows["count"] = rows["count"].astype("int64")
    return rows, stats


def recount_due(hour: dt.datetime, now: dt.datetime, settle_minutes: int, recount_hours: int) -> int:
    """Which reading of delivery hour ``hour`` is due at ``now``: 0 (the first, ``settle_minutes`` after the hour's
    end), then 1, 2 ... one hour apart, at most ``recount_hours``."""
    first = hour + dt.timedelta(hours=1, minutes=int(settle_minutes))
    return max(0, min(int(recount_hours), int((now - first) // dt.timedelta(hours=1))))


def hours_to_read(store: Any, now: dt.datetime, lookback_hours: int, settle_minutes: int,
                  recount_hours: int = 0) -> list[tuple[dt.datetime, int]]:
    """(delivery hour, reading due) of the hours within ``lookback_hours`` that are complete (``settle_minutes``
    past their end) and whose due reading (:func:`recount_due`) or a later one is not done yet, oldest first.

    :param recount_hours: how many times an hour is read again after its first reading (late files).
    """
    last = (now - dt.timedelta(minutes=settle_minutes)).astimezone(dt.UTC).replace(
        minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    hours = [last - dt.timedelta(hours=k) for k in range(int(lookback_hours))]
    done: dict[dt.date, set[str]] = {}
    out = []
    for hour in sorted(hours):
        if hour.date() not in done:
            done[hour.date()] = set(store.chunks(ACTIVITY_TABLE, hour.date()))
        due, chunks = recount_due(hour, now, settle_minutes, recount_hours), done[hour.date()]
        if hour_chunk(hour) not in chunks or (
                due >= 1 and not any(recount_chunk(hour, k) in chunks for k in range(due, int(recount_hours) + 1))):
            out.append((hour, due))
    return out


def store_hour(store: Any, hour: dt.datetime, rows: pd.DataFrame, recount: int = 0) -> int:
    """Write one delivery hour's counts as chunk ``h<hour>`` of each day they fall in (replacing what an earlier
    reading wrote), and the (maybe empty) marker in the delivery hour's own day; returns the rows written.

    :param recount: which reading this is (:func:`hours_to_read`); from 1 on, its marker chunk is written last.
    """
    chunk = hour_chunk(hour)
    days = {hour.date()} | set(pd.to_datetime(rows["hour"], utc=True).dt.date)
    for day in sorted(days):
        part = rows[pd.to_datetime(rows["hour"], utc=True).dt.date == day] if len(rows) else rows
        store.write(ACTIVITY_TABLE, day, part, chunk=chunk, schema=tables.ACCOUNT_ACTIVITY,
                    sort_by=["hour", "account_id", "event_type", "principal_type"])
    if recount >= 1:
        store.write(ACTIVITY_TABLE, hour.date(), rows.iloc[0:0], chunk=recount_chunk(hour, recount),
                    schema=tables.ACCOUNT_ACTIVITY)
    return len(rows)


def _category_series(activity: pd.DataFrame, categories: Mapping[str, Sequence[str]], start: pd.Timestamp,
                     hours: int) -> tuple[list[tuple[str, str]], np.ndarray]:
    keys: list[tuple[str, str]] = []
    rows: list[np.ndarray] = []
    if activity.empty:
        return keys, np.zeros((0, hours))
    activity = activity.assign(pos=((pd.to_datetime(activity["hour"], utc=True) - start)
                                    // pd.Timedelta(hours=1)).astype(int))
    activity = activity[(activity["pos"] >= 0) & (activity["pos"] < hours)]
    principals = (activity["principal_type"] if "principal_type" in activity else pd.Series(None, index=activity.index))
    activity = activity.assign(principal=principals.fillna("").astype(str))
    for account_id, part in activity.groupby("account_id", sort=True):
        for category, patterns in categories.items():
            mask = [any(fnmatch.fnmatchcase(p, x.removeprefix("principal:")) if x.startswith("principal:")
                        else fnmatch.fnmatchcase(t, x) for x in patterns)
                    for t, p in zip(part["event_type"], part["principal"], strict=True)]
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
    from include.awsgov.anomaly.detector import Params, anomalies_frame, detect

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
            "reason": dynamic_reason(rec["reason"], rec["value"] >= rec["expected"], Params().record_days),
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

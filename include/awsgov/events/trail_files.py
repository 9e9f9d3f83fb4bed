"""CloudTrail log files in the central bucket, read for one account, region and time window.

Every account's trail writes gzip'd JSON files (``{"Records": [...]}``) to the central bucket (baseline.yaml
``Trail``), about one per five minutes, named by their delivery time (CloudTrail User Guide, "Finding your
CloudTrail log files" and "CloudTrail log file examples")::

    [<trail prefix>/]AWSLogs/[<o-id>/]<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<UniqueString>.json.gz

The date folders are those of the delivery, not of the records: a record of 23:58 is in the next day's folder. A
window's records are in the files delivered from its start until a little after its end (:data:`DELIVERY_LAG`), so
:func:`window_keys` lists only the delivery days the window touches (one ``ListObjectsV2`` per day, at most a few
hundred keys each) and keeps the files delivered in that span; :func:`window_records` reads them (``GetObject``,
bounded in number and size). Unlike ``LookupEvents`` (two calls a second per account and region), reading the bucket
has no per-account rate limit and needs no read role: the admin account owns the bucket.

Global services (IAM, STS, CloudFront) record their events in us-east-1, in trails and in LookupEvents alike, since
22 November 2021 (CloudTrail User Guide, "Using the update-trail command": "events created by Amazon CloudFront,
AWS Identity and Access Management, and AWS STS are recorded in the Region in which they were created, the US East
(N. Virginia) Region"): :func:`trail_region` gives the region to read for a resource type.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# CloudTrail delivers a file within about 5 minutes of its last record, usually well within 15 (CloudTrail User
# Guide, "How CloudTrail works"): files delivered up to this long after a window's end may still hold its records.
DELIVERY_LAG = dt.timedelta(minutes=20)
GLOBAL_EVENTS_REGION = "us-east-1"
GLOBAL_SERVICES = ("AWS::IAM::", "AWS::CloudFront::")
_STAMP = re.compile(r"_CloudTrail_([a-z0-9-]+)_(\d{8}T\d{4})Z_[A-Za-z0-9]+\.json\.gz\Z")


@dataclass(frozen=True)
class TrailLocation:
    """Where the organization's trails deliver, and how much one lookup may read.

    :param s3: an S3 client of the admin account (owner of the bucket).
    :param bucket: the central bucket.
    :param trail_prefix: the trails' S3KeyPrefix ("" for none; ``{account_id}`` is filled in).
    :param org_id: the organization id for organization trails (an ``o-...`` level in the key), else None.
    :param max_files: files read per lookup at most (a busy account delivers several per five minutes).
    :param max_file_bytes: a larger file is skipped (logged).
    :param workers: threads reading files.
    """

    s3: Any
    bucket: str
    trail_prefix: str = ""
    org_id: str | None = None
    max_files: int = 200
    max_file_bytes: int = 64 * 1024 * 1024
    workers: int = 8


def trail_region(resource_type: str, region: str) -> str:
    """The region folder holding the events of a resource: us-east-1 for global services (IAM), else its region."""
    return GLOBAL_EVENTS_REGION if resource_type.startswith(GLOBAL_SERVICES) else region


def day_prefix(trail_prefix: str, org_id: str | None, account_id: str, region: str, day: dt.date) -> str:
    """The key prefix of the files an account's trail delivered on ``day`` for ``region`` (ends with '/')."""
    parts = [trail_prefix.format(account_id=account_id).strip("/")] if trail_prefix.strip("/") else []
    parts += ["AWSLogs", *([org_id] if org_id else []), account_id, "CloudTrail", region, f"{day:%Y}", f"{day:%m}",
              f"{day:%d}"]
    return "/".join(parts) + "/"


def delivered_at(key: str) -> dt.datetime | None:
    """The delivery time a log file's name records, None for a key that is not a log file."""
    found = _STAMP.search(key)
    if not found:
        return None
    try:
        return dt.datetime.strptime(found.group(2), "%Y%m%dT%H%M").replace(tzinfo=dt.UTC)
    except ValueError:  # digits that are no time (month 13...): not a file CloudTrail wrote
        return None


def window_keys(where: TrailLocation, account_id: str, region: str, start: dt.datetime,
                end: dt.datetime) -> tuple[list[str], int, int]:
    """Log files that may hold records of ``start..end``: delivered from ``start`` to ``end`` + :data:`DELIVERY_LAG`.

    :returns: (keys, oldest first and at most ``max_files``; files found in the days listed, 0 meaning the trail
        delivered nothing there; ``ListObjectsV2`` calls made).
    """
    first, last = start.astimezone(dt.UTC), (end + DELIVERY_LAG).astimezone(dt.UTC)
    keys: list[tuple[dt.datetime, str]] = []
    found = calls = 0
    day = first.date()
    while day <= last.date():
        prefix = day_prefix(where.trail_prefix, where.org_id, account_id, region, day)
        token = None
        while True:
            calls += 1
            page = where.s3.list_objects_v2(Bucket=where.bucket, Prefix=prefix,
                                            **({"ContinuationToken": token} if token else {}))
            for obj in page.get("Contents") or []:
                when = delivered_at(obj["Key"])
                if when is None:
                    continue
                found += 1
                if first <= when <= last:
                    keys.append((when, obj["Key"]))
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                break
        day += dt.timedelta(days=1)
    keys.sort()
    if len(keys) > where.max_files:
        log.warning("trail files: %d files of %s/%s in %s..%s, reading the first %d", len(keys), account_id, region,
                    first, last, where.max_files)
    return [k for _, k in keys[: where.max_files]], found, calls


def read_log_file(s3: Any, bucket: str, key: str, max_bytes: int) -> list[Any]:
    """The ``Records`` list of one log file, as written (items unchecked); a file that is too big or cannot be read
    as gzip'd JSON is skipped (logged), never an error.

    :param s3: an S3 client of the bucket's owner.
    :param max_bytes: a larger file is skipped.
    """
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(max_bytes + 1)
    try:
        if len(body) > max_bytes:
            raise ValueError(f"larger than {max_bytes} bytes")
        records = json.loads(gzip.decompress(body)).get("Records")
    except (OSError, EOFError, ValueError, RecursionError, AttributeError) as exc:
        log.warning("trail files: %s skipped: %s: %s", key, type(exc).__name__, exc)
        return []
    return records if isinstance(records, list) else []


def read_records(where: TrailLocation, key: str) -> list[dict[str, Any]]:
    """The records (objects) of one log file (:func:`read_log_file`)."""
    return [r for r in read_log_file(where.s3, where.bucket, key, where.max_file_bytes) if isinstance(r, dict)]


def event_time(record: dict[str, Any]) -> dt.datetime | None:
    """A record's ``eventTime`` as an aware UTC datetime, None when missing or unreadable."""
    try:
        return dt.datetime.fromisoformat(str(record.get("eventTime")).replace("Z", "+00:00")).astimezone(dt.UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def window_records(where: TrailLocation, keys: Sequence[str], start: dt.datetime,
                   end: dt.datetime) -> list[dict[str, Any]]:
    """The records of ``keys`` whose eventTime falls in ``start..end`` (files read in threads)."""
    out = []
    with ThreadPoolExecutor(max_workers=max(1, min(where.workers, len(keys) or 1))) as pool:
        for records in pool.map(lambda k: read_records(where, k), keys):
            for record in records:
                when = event_time(record)
                if when is not None and start <= when <= end:
                    out.append(record)
    return out

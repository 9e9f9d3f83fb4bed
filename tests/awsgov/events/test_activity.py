"""activity.py: hourly API-call counts read in bulk from CloudTrail log files in AWS's layout, and bursts."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from include.awsgov.core import tables
from include.awsgov.core.store import Store
from include.awsgov.events import activity, ingest

CFG = ingest.events_config()
MEMBER = "210987654321"
OTHER = "310987654321"
BUCKET = "governance-logs-123456789012"
HOUR = dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC)


def _record(account: str, when: dt.datetime, service: str, name: str, principal: str = "AssumedRole") -> dict:
    return {"eventVersion": "1.09", "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": f"{service}.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
            "userIdentity": {"type": principal, "accountId": account}, "recipientAccountId": account,
            "eventType": "AwsApiCall"}


def _put_file(s3, account: str, delivered: dt.datetime, records: list, *, prefix: str = "",
              unique: str = "AbCdEfGh12345678", body: bytes | None = None) -> str:
    """One log file as CloudTrail names and writes it (delivery time in the name, gzip'd {"Records": [...]})."""
    key = (f"{prefix + '/' if prefix else ''}AWSLogs/{account}/CloudTrail/us-east-1/{delivered:%Y/%m/%d}/"
           f"{account}_CloudTrail_us-east-1_{delivered:%Y%m%dT%H%M}Z_{unique}.json.gz")
    s3.put_object(Bucket=BUCKET, Key=key, Body=body if body is not None else
                  gzip.compress(json.dumps({"Records": records}).encode()))
    return key


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_an_hour_of_files_is_counted_per_record_hour_account_and_event_type(s3):
    # Files delivered in 10:00-10:59; the one at 10:00 holds the last records of 09:55-10:00.
    _put_file(s3, MEMBER, HOUR, [_record(MEMBER, HOUR - dt.timedelta(minutes=2), "iam", "CreateUser")])
    _put_file(s3, MEMBER, HOUR + dt.timedelta(minutes=35), [
        _record(MEMBER, HOUR + dt.timedelta(minutes=31), "iam", "AttachUserPolicy"),
        _record(MEMBER, HOUR + dt.timedelta(minutes=32), "iam", "AttachUserPolicy", "IAMUser"),
        _record(MEMBER, HOUR + dt.timedelta(minutes=33), "ec2", "AuthorizeSecurityGroupIngress")], unique="x" * 16)
    _put_file(s3, OTHER, HOUR + dt.timedelta(minutes=5), [_record(OTHER, HOUR, "s3", "PutBucketPolicy")])
    # Not this hour's deliveries: 11:00, and 09:55.
    _put_file(s3, MEMBER, HOUR + dt.timedelta(hours=1), [_record(MEMBER, HOUR, "iam", "DeleteUser")])
    _put_file(s3, MEMBER, HOUR - dt.timedelta(minutes=5), [_record(MEMBER, HOUR, "iam", "DeleteUser")])

    rows, stats = activity.read_hour(s3, BUCKET, [MEMBER, OTHER], ["us-east-1"], HOUR)
    assert stats == {"files": 3, "records": 5, "skipped": 0}
    got = {(r["hour"], r["account_id"], r["event_type"]): r["count"] for r in rows.to_dict("records")}
    assert got == {(HOUR - dt.timedelta(hours=1), MEMBER, "iam:CreateUser"): 1,
                   (HOUR, MEMBER, "iam:AttachUserPolicy"): 2,
                   (HOUR, MEMBER, "ec2:AuthorizeSecurityGroupIngress"): 1,
                   (HOUR, OTHER, "s3:PutBucketPolicy"): 1}


def test_a_trail_prefix_and_an_organization_trail_are_found(s3):
    key = activity.key_prefix("{account_id}", "o-abc", MEMBER, "us-east-1", HOUR)
    assert key == (f"{MEMBER}/AWSLogs/o-abc/{MEMBER}/CloudTrail/us-east-1/2026/11/27/"
                   f"{MEMBER}_CloudTrail_us-east-1_20261127T10")
    _put_file(s3, MEMBER, HOUR, [_record(MEMBER, HOUR, "iam", "CreateUser")], prefix=MEMBER)
    rows, stats = activity.read_hour(s3, BUCKET, [MEMBER], ["us-east-1"], HOUR, trail_prefix="{account_id}")
    assert stats["files"] == 1 and int(rows["count"].sum()) == 1


@pytest.mark.parametrize("body", [
    pytest.param(b"not gzip", id="not-gzip"),
    pytest.param(gzip.compress(b"[" * 100_000), id="deeply-nested"),
    pytest.param(gzip.compress(b'{"Records": 3}'), id="records-not-a-list"),
])
def test_an_unreadable_file_is_skipped_and_the_rest_counted(s3, body):
    _put_file(s3, MEMBER, HOUR, [], body=body)
    _put_file(s3, MEMBER, HOUR + dt.timedelta(minutes=5), [_record(MEMBER, HOUR, "iam", "CreateUser"), "junk",
                                                           {"eventTime": "yesterday"}], unique="y" * 16)
    rows, stats = activity.read_hour(s3, BUCKET, [MEMBER], ["us-east-1"], HOUR)
    assert int(rows["count"].sum()) == 1 and stats["skipped"] == 2


def test_a_read_hour_is_marked_rewritten_on_rerun_and_not_read_again(s3, tmp_path):
    store = Store(str(tmp_path))
    now = HOUR + dt.timedelta(hours=2, minutes=30)
    assert activity.hours_to_read(store, now, 3, 20) == [HOUR - dt.timedelta(hours=1), HOUR,
                                                         HOUR + dt.timedelta(hours=1)]
    _put_file(s3, MEMBER, HOUR, [_record(MEMBER, HOUR - dt.timedelta(minutes=1), "iam", "CreateUser")])
    for _ in range(2):  # a rerun writes the same chunks
        rows, _ = activity.read_hour(s3, BUCKET, [MEMBER], ["us-east-1"], HOUR)
        activity.store_hour(store, HOUR, rows)
    stored = store.read("account_activity", schema=tables.ACCOUNT_ACTIVITY)
    assert stored[["event_type", "count"]].values.tolist() == [["iam:CreateUser", 1]]
    assert HOUR not in activity.hours_to_read(store, now, 3, 20)
    # An hour whose files are not all in yet (settle time) is not read.
    assert activity.hours_to_read(store, HOUR + dt.timedelta(hours=1, minutes=10), 3, 20)[-1] == \
        HOUR - dt.timedelta(hours=1)


# --- bursts -------------------------------------------------------------------------------------------------------
def _activity(store: Store, start: dt.datetime, counts: list[int], event_type: str = "iam:AttachUserPolicy"):
    frame = pd.DataFrame({"hour": [start + dt.timedelta(hours=i) for i in range(len(counts))],
                          "account_id": MEMBER, "event_type": event_type, "count": counts})
    for day, part in frame.groupby(frame["hour"].dt.date):
        store.write("account_activity", day, part, schema=tables.ACCOUNT_ACTIVITY)


def test_a_burst_of_iam_changes_is_detected_in_the_hour_it_happened(tmp_path):
    store = Store(str(tmp_path))
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    quiet = [(i * 7) % 3 for i in range(24 * 6)]  # 0-2 calls an hour for six days
    _activity(store, start, [*quiet, 40])
    burst_hour = start + dt.timedelta(hours=len(quiet))
    rows = activity.detect_bursts(store, [burst_hour], CFG["activity"])
    assert {(r["metric_name"], r["timestamp"], r["value"]) for r in rows} >= {("iam_changes", burst_hour, 40.0)}
    assert all(r["namespace"] == activity.NAMESPACE and r["account_id"] == MEMBER for r in rows)
    assert activity.store_bursts(store, rows) and not activity.store_bursts(store, rows)


def test_ordinary_activity_is_no_burst(tmp_path):
    store = Store(str(tmp_path))
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    counts = [(i * 7) % 3 for i in range(24 * 6 + 1)]
    _activity(store, start, counts)
    assert activity.detect_bursts(store, [start + dt.timedelta(hours=24 * 6)], CFG["activity"]) == []

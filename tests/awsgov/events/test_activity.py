"""activity.py: hourly API-call counts read in bulk from CloudTrail log files in AWS's layout, and bursts."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import Counter

import boto3
import pandas as pd
import pyarrow as pa
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


def test_an_hour_of_files_is_counted_per_record_hour_account_event_type_and_principal_type(s3):
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
    got = {(r["hour"], r["account_id"], r["event_type"], r["principal_type"]): r["count"]
           for r in rows.to_dict("records")}
    assert got == {(HOUR - dt.timedelta(hours=1), MEMBER, "iam:CreateUser", "AssumedRole"): 1,
                   (HOUR, MEMBER, "iam:AttachUserPolicy", "AssumedRole"): 1,
                   (HOUR, MEMBER, "iam:AttachUserPolicy", "IAMUser"): 1,
                   (HOUR, MEMBER, "ec2:AuthorizeSecurityGroupIngress", "AssumedRole"): 1,
                   (HOUR, OTHER, "s3:PutBucketPolicy", "AssumedRole"): 1}


@pytest.mark.parametrize(("identity", "expected"), [
    pytest.param({"type": "Root", "accountId": MEMBER}, "Root", id="root"),
    pytest.param({"type": "AWSService", "invokedBy": "config.amazonaws.com"}, "AWSService", id="aws-service"),
    pytest.param({"type": "FederatedUser", "accountId": MEMBER}, "FederatedUser", id="federated"),
    pytest.param({}, "Unknown", id="no-type"),
    pytest.param("not an object", "Unknown", id="not-an-object"),
])
def test_the_principal_type_comes_from_user_identity_type(identity, expected):
    counts = Counter()
    record = {**_record(MEMBER, HOUR, "iam", "CreateUser"), "userIdentity": identity}
    assert activity.count_records([record], counts) == 0
    assert list(counts) == [(HOUR, MEMBER, "iam:CreateUser", expected)]


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
    assert [h for h, _ in activity.hours_to_read(store, now, 3, 20)] == [HOUR - dt.timedelta(hours=1), HOUR,
                                                                         HOUR + dt.timedelta(hours=1)]
    _put_file(s3, MEMBER, HOUR, [_record(MEMBER, HOUR - dt.timedelta(minutes=1), "iam", "CreateUser")])
    for _ in range(2):  # a rerun writes the same chunks
        rows, _ = activity.read_hour(s3, BUCKET, [MEMBER], ["us-east-1"], HOUR)
        activity.store_hour(store, HOUR, rows)
    stored = store.read("account_activity", schema=tables.ACCOUNT_ACTIVITY)
    assert stored[["event_type", "count"]].values.tolist() == [["iam:CreateUser", 1]]
    assert HOUR not in [h for h, _ in activity.hours_to_read(store, now, 3, 20)]
    # An hour whose files are not all in yet (settle time) is not read.
    assert activity.hours_to_read(store, HOUR + dt.timedelta(hours=1, minutes=10), 3, 20)[-1] == \
        (HOUR - dt.timedelta(hours=1), 0)


def _read_due(s3, store: Store, now: dt.datetime, recount_hours: int) -> list[tuple[dt.datetime, int]]:
    """What check_activity does at ``now`` for one account: read and store every due hour."""
    due = activity.hours_to_read(store, now, 4, 20, recount_hours)
    for hour, recount in due:
        rows, _ = activity.read_hour(s3, BUCKET, [MEMBER], ["us-east-1"], hour)
        activity.store_hour(store, hour, rows, recount)
    return due


def _counted(store: Store) -> int:
    return int(store.read("account_activity", schema=tables.ACCOUNT_ACTIVITY)["count"].sum())


def test_a_file_landing_after_its_hour_was_read_is_counted_by_the_next_reading_once(s3, tmp_path):
    store = Store(str(tmp_path))
    _put_file(s3, MEMBER, HOUR + dt.timedelta(minutes=5), [_record(MEMBER, HOUR, "iam", "CreateUser")])
    first = HOUR + dt.timedelta(hours=1, minutes=25)
    assert (HOUR, 0) in _read_due(s3, store, first, recount_hours=2)
    assert _counted(store) == 1
    # A file named in 10:55 (its delivery time) lands at 11:40, after 10:00-10:59 was read at 11:25.
    _put_file(s3, MEMBER, HOUR + dt.timedelta(minutes=55),
              [_record(MEMBER, HOUR + dt.timedelta(minutes=50), "iam", "AttachUserPolicy", "Root")] * 3,
              unique="L" * 16)
    assert HOUR not in [h for h, _ in _read_due(s3, store, first + dt.timedelta(minutes=20), recount_hours=2)]
    assert _counted(store) == 1  # not due again before an hour has passed
    assert (HOUR, 1) in _read_due(s3, store, first + dt.timedelta(hours=1), recount_hours=2)
    stored = store.read("account_activity", schema=tables.ACCOUNT_ACTIVITY)
    assert _counted(store) == 4  # 1 + 3: the hour recounted, not added to
    assert stored.loc[stored["principal_type"] == "Root", "count"].sum() == 3
    # The second re-reading changes nothing; after recount_hours readings the hour is left alone.
    assert (HOUR, 2) in _read_due(s3, store, first + dt.timedelta(hours=2), recount_hours=2)
    assert _counted(store) == 4
    assert HOUR not in [h for h, _ in _read_due(s3, store, first + dt.timedelta(hours=3), recount_hours=2)]


def test_an_hour_first_read_late_is_not_read_again_for_the_readings_it_skipped(s3, tmp_path):
    store = Store(str(tmp_path))
    _put_file(s3, MEMBER, HOUR + dt.timedelta(minutes=5), [_record(MEMBER, HOUR, "iam", "CreateUser")])
    late = HOUR + dt.timedelta(hours=3, minutes=25)  # the DAG was down: the hour is read first at reading 2
    assert (HOUR, 2) in _read_due(s3, store, late, recount_hours=2)
    assert HOUR not in [h for h, _ in activity.hours_to_read(store, late + dt.timedelta(hours=1), 4, 20, 2)]
    assert _counted(store) == 1


# --- bursts -------------------------------------------------------------------------------------------------------
def _activity(store: Store, start: dt.datetime, counts: list[int], event_type: str = "iam:AttachUserPolicy",
              principal_type: str | None = "AssumedRole", chunk: str = "part"):
    frame = pd.DataFrame({"hour": [start + dt.timedelta(hours=i) for i in range(len(counts))],
                          "account_id": MEMBER, "event_type": event_type, "count": counts})
    if principal_type is None:  # as written before the principal_type column existed
        schema = pa.schema([f for f in tables.ACCOUNT_ACTIVITY if f.name != "principal_type"])
    else:
        frame["principal_type"], schema = principal_type, tables.ACCOUNT_ACTIVITY
    for day, part in frame.groupby(frame["hour"].dt.date):
        store.write("account_activity", day, part, chunk=chunk, schema=schema)


def test_a_burst_of_iam_changes_is_detected_in_the_hour_it_happened(tmp_path):
    store = Store(str(tmp_path))
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    quiet = [(i * 7) % 3 for i in range(24 * 6)]  # 0-2 calls an hour for six days
    _activity(store, start, [*quiet, 40])
    burst_hour = start + dt.timedelta(hours=len(quiet))
    rows = activity.detect_bursts(store, [burst_hour], CFG["activity"])
    assert {(r["metric_name"], r["timestamp"], r["value"]) for r in rows} >= {("iam_changes", burst_hour, 40.0)}
    assert all(r["namespace"] == activity.NAMESPACE and r["account_id"] == MEMBER for r in rows)
    burst = next(r for r in rows if r["metric_name"] == "iam_changes")
    assert "above" in burst["reason"] and "expected value" in burst["reason"] or "range" in burst["reason"], burst
    assert activity.store_bursts(store, rows) and not activity.store_bursts(store, rows)


def test_ordinary_activity_is_no_burst(tmp_path):
    store = Store(str(tmp_path))
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    counts = [(i * 7) % 3 for i in range(24 * 6 + 1)]
    _activity(store, start, counts)
    assert activity.detect_bursts(store, [start + dt.timedelta(hours=24 * 6)], CFG["activity"]) == []


def test_files_written_before_the_principal_type_column_still_read_and_feed_the_detector(tmp_path):
    store = Store(str(tmp_path))
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    quiet = [(i * 7) % 3 for i in range(24 * 6)]
    _activity(store, start, quiet, principal_type=None, chunk="old")
    burst_hour = start + dt.timedelta(hours=len(quiet))
    _activity(store, burst_hour, [40], chunk="new")
    stored = store.read("account_activity", schema=tables.ACCOUNT_ACTIVITY)
    assert stored["principal_type"].isna().sum() == len(quiet)
    assert set(stored["principal_type"].dropna()) == {"AssumedRole"}
    rows = activity.detect_bursts(store, [burst_hour], CFG["activity"])
    assert ("iam_changes", burst_hour, 40.0) in {(r["metric_name"], r["timestamp"], r["value"]) for r in rows}


def test_a_principal_pattern_watches_the_root_users_calls(tmp_path):
    store = Store(str(tmp_path))
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    quiet = [(i * 7) % 3 for i in range(24 * 6)]
    burst_hour = start + dt.timedelta(hours=len(quiet))
    _activity(store, start, [*quiet, 40], event_type="s3:GetObject", principal_type="AssumedRole", chunk="roles")
    _activity(store, burst_hour, [30], event_type="s3:PutBucketPolicy", principal_type="Root", chunk="root")
    cfg = {**CFG["activity"], "categories": {"root_activity": ["principal:Root"], "iam_changes": ["iam:*"]}}
    rows = activity.detect_bursts(store, [burst_hour], cfg)
    assert [(r["metric_name"], r["value"]) for r in rows] == [("root_activity", 30.0)]

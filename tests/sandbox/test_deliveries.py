"""Central-bucket deliveries in AWS's layouts: Config snapshots, SSM inventory resource data sync, CloudTrail files."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re

import pytest

from tests.fixtures.sandbox import TEST_DATE

REGION = "eu-west-1"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _keys(s3, bucket, prefix):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _body(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture
def central(sb):
    return sb.client("s3", retries=8), sb.info["central_bucket"]


@pytest.fixture
def member(members):
    return members["onboarded"][0]


def test_config_snapshot_key_is_awss_layout(sb, central, member):
    s3, bucket = central
    day = dt.date.fromisoformat(TEST_DATE)
    prefix = f"AWSLogs/{member}/Config/{REGION}/{day.year}/{day.month}/{day.day}/ConfigSnapshot/"
    keys = _keys(s3, bucket, prefix)
    assert len(keys) == 1
    name = keys[0].rsplit("/", 1)[1]
    assert re.fullmatch(rf"{member}_Config_{REGION}_ConfigSnapshot_{day:%Y%m%d}T\d{{6}}Z_{UUID}\.json\.gz", name)


def test_config_snapshot_resource_compliance_matches_the_api(sb, central, member):
    s3, bucket = central
    day = dt.date.fromisoformat(TEST_DATE)
    prefix = f"AWSLogs/{member}/Config/{REGION}/{day.year}/{day.month}/{day.day}/ConfigSnapshot/"
    snapshot = json.loads(gzip.decompress(_body(s3, bucket, _keys(s3, bucket, prefix)[0])))
    assert snapshot["fileVersion"] == "1.0"
    assert snapshot["configSnapshotId"] in _keys(s3, bucket, prefix)[0]
    compliance_items = [i for i in snapshot["configurationItems"]
                        if i["resourceType"] == "AWS::Config::ResourceCompliance"]
    assert compliance_items
    assert {i["configurationItemVersion"] for i in snapshot["configurationItems"]} == {"1.3"}
    in_snapshot = {}
    for item in compliance_items:
        for rule in item["configuration"]["configRuleList"]:
            in_snapshot.setdefault(rule["configRuleName"], set()).add(
                (item["configuration"]["resourceId"], rule["complianceType"]))
    config = sb.client("config", account_id=member, region=REGION, retries=8)
    rule_name = sorted(in_snapshot)[0]
    from_api = set()
    for page in config.get_paginator("get_compliance_details_by_config_rule").paginate(ConfigRuleName=rule_name):
        from_api |= {(r["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceId"], r["ComplianceType"])
                     for r in page["EvaluationResults"]}
    assert in_snapshot[rule_name] == from_api


def test_inventory_sync_layout_and_records_match_the_api(sb, central, members):
    s3, bucket = central
    prefix = sb.info["inventory_sync_prefix"]
    keys = _keys(s3, bucket, f"{prefix}/AWS:Application/")
    assert keys
    pattern = (rf"{prefix}/AWS:Application/accountid=(\d{{12}})/region=([a-z0-9-]+)/"
               r"resourcetype=ManagedInstanceInventory/(i-[0-9a-f]{17})\.json")
    match = re.fullmatch(pattern, keys[0])
    assert match
    account, region, instance = match.groups()
    assert account in members["onboarded"]
    lines = _body(s3, bucket, keys[0]).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert {r["resourceId"] for r in records} == {instance}
    ssm = sb.client("ssm", account_id=account, region=region, retries=8)
    entries = ssm.list_inventory_entries(InstanceId=instance, TypeName="AWS:Application", MaxResults=50)
    api = {(e["Name"], e["Version"]) for e in entries["Entries"]}
    while entries.get("NextToken"):
        entries = ssm.list_inventory_entries(InstanceId=instance, TypeName="AWS:Application", MaxResults=50,
                                             NextToken=entries["NextToken"])
        api |= {(e["Name"], e["Version"]) for e in entries["Entries"]}
    assert {(r["Name"], r["Version"]) for r in records} == api
    assert {r["captureTime"] for r in records} == {entries["CaptureTime"]}
    assert _keys(s3, bucket, f"{prefix}/AWS:InstanceInformation/accountid={account}/region={region}/"
                             f"resourcetype=ManagedInstanceInventory/{instance}.json")


def test_cloudtrail_files_are_awss_layout_and_hold_the_previous_days_events(sb, central, member):
    s3, bucket = central
    day = dt.date.fromisoformat(TEST_DATE) - dt.timedelta(days=1)  # the last complete day
    prefix = f"AWSLogs/{member}/CloudTrail/{REGION}/{day:%Y/%m/%d}/"
    keys = _keys(s3, bucket, prefix)
    assert keys
    records = []
    for key in keys:
        name = key.rsplit("/", 1)[1]
        match = re.fullmatch(rf"{member}_CloudTrail_{REGION}_({day:%Y%m%d}T\d{{4}}Z)_[A-Za-z0-9]{{16}}\.json\.gz",
                             name)
        assert match
        delivered = dt.datetime.strptime(match.group(1), "%Y%m%dT%H%MZ")
        for record in json.loads(gzip.decompress(_body(s3, bucket, key)))["Records"]:
            event_time = dt.datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
            assert event_time <= delivered
            records.append(record)
    assert {r["recipientAccountId"] for r in records} == {member}
    assert {r["awsRegion"] for r in records} == {REGION}
    trail = sb.client("cloudtrail", account_id=member, region=REGION, retries=8)
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)
    looked_up = set()
    # Records of the day's last five minutes are delivered at midnight, into the next day's folder.
    end = start + dt.timedelta(hours=23, minutes=54, seconds=59)
    for page in trail.get_paginator("lookup_events").paginate(StartTime=start, EndTime=end):
        looked_up |= {e["EventId"] for e in page["Events"]}
    assert {r["eventID"] for r in records} == looked_up


def test_a_new_sandbox_date_gets_its_own_delivery(sb, central, member):
    s3, bucket = central
    sb.set_date("2026-11-24")
    prefix = f"AWSLogs/{member}/Config/{REGION}/2026/11/24/ConfigSnapshot/"
    assert len(_keys(s3, bucket, prefix)) == 1
    delivered = sb.deliveries()
    assert {TEST_DATE, "2026-11-24"} <= set(delivered)
    assert delivered["2026-11-24"]["objects"]["config_snapshots"] >= 1

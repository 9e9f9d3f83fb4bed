"""Who changed it, from the CloudTrail log files in the central bucket (events/trail_files.py): files written in AWS's
layout into the sandbox's bucket, an IAM role found by its roleName, its ARN or its id (never by the principal or a
similar name), failed and read-only calls skipped, and LookupEvents answering where the trail delivered nothing."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest
from botocore.stub import Stubber

from include.awsgov.core.aws import AwsAccess
from include.awsgov.events import trail_files
from include.awsgov.report import change_history as ch

TEST_ROLE = "app-deployer"
TEST_ROLE_ID = "AROAEXAMPLEDEPLOYER01"
TEST_CONFIG_REGION = "eu-west-1"  # Config records IAM in the global region; CloudTrail logs IAM in us-east-1
WINDOW = dt.timedelta(minutes=30)


def _access(sandbox) -> AwsAccess:
    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTTRAILFILES01",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-trail-files", retry_mode="standard")


def _role_arn(account: str, name: str = TEST_ROLE, path: str = "/") -> str:
    return f"arn:aws:iam::{account}:role{path}{name}"


def _record(account: str, when: dt.datetime, name: str, who: str, *, read_only: bool = False,
            params: dict | None = None, response: dict | None = None, resources: list | None = None,
            error: str | None = None) -> dict:
    record = {"eventVersion": "1.09", "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "eventSource": "iam.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
              "sourceIPAddress": "198.51.100.7", "readOnly": read_only, "eventType": "AwsApiCall",
              "eventID": f"{name}-{when:%H%M%S}", "recipientAccountId": account,
              "userIdentity": {"type": "IAMUser", "userName": who, "arn": f"arn:aws:iam::{account}:user/{who}",
                               "accountId": account},
              "requestParameters": params, "responseElements": response}
    if resources is not None:
        record["resources"] = resources
    if error:
        record["errorCode"] = error
    return record


def _put_files(sandbox, account: str, records: list[dict]) -> list[str]:
    """Write the records as a trail would: one gzip'd file per five-minute window, named by its delivery time."""
    s3 = sandbox.client("s3")
    bucket = sandbox.info["central_bucket"]
    by_file: dict[dt.datetime, list[dict]] = {}
    for r in records:
        t = dt.datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00"))
        delivered = t.replace(minute=t.minute - t.minute % 5, second=0) + dt.timedelta(minutes=5)
        by_file.setdefault(delivered, []).append(r)
    keys = []
    for delivered, batch in sorted(by_file.items()):
        key = (trail_files.day_prefix("", None, account, "us-east-1", delivered.date())
               + f"{account}_CloudTrail_us-east-1_{delivered:%Y%m%dT%H%M}Z_{delivered:%H%M}TESTUNIQUE01.json.gz")
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(json.dumps({"Records": batch}).encode()))
        keys.append(key)
    return keys


def _lookup(sandbox, changed_at: dt.datetime, *, trail: bool = True) -> dict:
    """``change_history.lookup`` of the test role in the admin account: Config's history item from a Stubber (the
    sandbox's Config records no IAM role), everything else from the sandbox over HTTP."""
    access = _access(sandbox)
    admin = access.admin_id()
    config = access.client("config", TEST_CONFIG_REGION)
    stub = Stubber(config)
    stub.add_response("get_resource_config_history", {"configurationItems": [{
        "resourceType": "AWS::IAM::Role", "resourceId": TEST_ROLE_ID, "resourceName": TEST_ROLE,
        "arn": _role_arn(admin), "configurationItemCaptureTime": changed_at, "awsRegion": TEST_CONFIG_REGION}]})
    where = ch.trail_location(access, {"central": {"log_bucket": sandbox.info["central_bucket"]}}) if trail else None
    with stub:
        return ch.lookup(access, admin, TEST_CONFIG_REGION, "AWS::IAM::Role", TEST_ROLE_ID,
                         changed_at + dt.timedelta(hours=1), WINDOW, trail=where)


@pytest.mark.parametrize(
    ("day", "naming"),
    [
        pytest.param("2026-10-05", {"params": {"roleName": TEST_ROLE,
                                               "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}},
                     id="by-role-name"),
        pytest.param("2026-10-06", {"params": {"policyDocument": "{}"},
                                    "resources": [{"ARN": "{role_arn}", "type": "AWS::IAM::Role"}]}, id="by-arn"),
        pytest.param("2026-10-07", {"params": {"description": "deployer"},
                                    "response": {"role": {"roleId": TEST_ROLE_ID, "arn": "{role_arn}"}}},
                     id="by-role-id"),
    ],
)
def test_an_iam_role_change_is_found_in_the_trail_files(sandbox, day, naming):
    admin = sandbox.info["management_account_id"]
    changed_at = dt.datetime.fromisoformat(f"{day}T21:40:00+00:00")
    arn = _role_arn(admin)
    naming = json.loads(json.dumps(naming).replace("{role_arn}", arn))
    other = _role_arn(admin, f"{TEST_ROLE}-2", "/team/")
    _put_files(sandbox, admin, [
        _record(admin, changed_at - dt.timedelta(minutes=20), "AttachRolePolicy", "alice", **naming),
        # Closer to the change, but none of them changed the role: read-only, refused, another role (a name that
        # merely starts with ours, and an ARN whose name does), and the role acting as the principal.
        _record(admin, changed_at - dt.timedelta(minutes=12), "GetRole", "scanner", read_only=True,
                params={"roleName": TEST_ROLE}),
        _record(admin, changed_at - dt.timedelta(minutes=9), "UpdateRole", "mallory", params={"roleName": TEST_ROLE},
                error="AccessDenied"),
        _record(admin, changed_at - dt.timedelta(minutes=6), "PutRolePolicy", "bob",
                params={"roleName": f"{TEST_ROLE}-old"}),
        _record(admin, changed_at - dt.timedelta(minutes=4), "TagRole", "carol", params={"roleName": f"{TEST_ROLE}-2"},
                resources=[{"ARN": other, "type": "AWS::IAM::Role"}]),
        {**_record(admin, changed_at - dt.timedelta(minutes=2), "CreateBucket", TEST_ROLE,
                   params={"bucketName": "artifacts"}),
         "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{admin}:assumed-role/{TEST_ROLE}/ci",
                          "sessionContext": {"sessionIssuer": {"arn": arn}}}},
        # An hour before the window: never read.
        _record(admin, changed_at - dt.timedelta(minutes=95), "DeleteRolePolicy", "dave",
                params={"roleName": TEST_ROLE}),
    ])
    sandbox.reset_calls()
    row = _lookup(sandbox, changed_at)
    assert (row["status"], row["source"]) == (ch.OK, ch.TRAIL_FILES), row
    assert (row["principal"], row["user_name"], row["event_name"]) == (
        f"arn:aws:iam::{admin}:user/alice", "alice", "AttachRolePolicy")
    assert row["event_time"] == changed_at - dt.timedelta(minutes=20)
    actions = {c["action"]: c["count"] for c in sandbox.calls()["calls"]
               if c["service"] in ("s3", "cloudtrail") and c["account"] == admin}
    assert "LookupEvents" not in actions
    # One listing of the delivery day, one read per file delivered from 30 minutes before the change to 25 after.
    assert actions.get("ListObjectsV2") == 1 and actions.get("GetObject") == 4
    assert row["api_calls"] == 1 + 1 + 4  # Config history, the listing, the files


def test_without_files_for_the_account_region_and_day_lookup_events_answers(sandbox):
    admin = sandbox.info["management_account_id"]
    changed_at = dt.datetime(2026, 9, 14, 20, 0, tzinfo=dt.UTC)  # no file delivered that day
    sandbox.reset_calls()
    row = _lookup(sandbox, changed_at)
    assert row["source"] == ch.LOOKUP_EVENTS and row["status"] == ch.NO_EVENT, row
    lookups = [c for c in sandbox.calls()["calls"] if c["action"] == "LookupEvents" and c["account"] == admin]
    assert sum(c["count"] for c in lookups) == 1
    assert row["api_calls"] == 1 + 1 + 1  # Config history, the empty listing, LookupEvents


def test_with_trail_files_switched_off_lookup_events_answers(sandbox):
    changed_at = dt.datetime(2026, 10, 5, 21, 40, tzinfo=dt.UTC)  # files exist (by-role-name above, or not: same)
    sandbox.reset_calls()
    row = _lookup(sandbox, changed_at, trail=False)
    assert row["source"] == ch.LOOKUP_EVENTS
    assert not [c for c in sandbox.calls()["calls"] if c["service"] == "s3"]


@pytest.mark.parametrize(
    ("record", "names", "rtype", "expected"),
    [
        pytest.param({"requestParameters": {"bucketName": "logs"}}, {"logs"}, "AWS::S3::Bucket", True, id="bucket"),
        pytest.param({"requestParameters": {"groupId": "sg-1"}}, {"sg-1", "web"}, "AWS::EC2::SecurityGroup", True,
                     id="group-id"),
        pytest.param({"requestParameters": {"groupId": "sg-12"}}, {"sg-1"}, "AWS::EC2::SecurityGroup", False,
                     id="no-prefix-match"),
        pytest.param({"resources": [{"ARN": "arn:aws:iam::1:role/a/b/app"}]}, {"app"}, "AWS::IAM::Role", True,
                     id="arn-with-path"),
        pytest.param({"resources": [{"ARN": "arn:aws:s3:::app"}]}, {"app"}, "AWS::IAM::Role", False,
                     id="arn-of-another-service"),
        pytest.param({"userIdentity": {"arn": "arn:aws:iam::1:role/app"}, "requestParameters": {"x": "y"}}, {"app"},
                     "AWS::IAM::Role", False, id="principal-only"),
        pytest.param({"requestParameters": {"instancesSet": {"items": [{"instanceId": "i-9"}]}}}, {"i-9"},
                     "AWS::EC2::Instance", True, id="nested"),
        pytest.param({"requestParameters": None, "responseElements": None}, {"i-9"}, "AWS::EC2::Instance", False,
                     id="nothing"),
    ],
)
def test_mentions_matches_names_and_ids_never_the_principal(record, names, rtype, expected):
    assert ch.mentions(record, frozenset(names), rtype) is expected


def test_global_service_events_are_read_in_us_east_1():
    assert trail_files.trail_region("AWS::IAM::Role", "eu-west-1") == "us-east-1"
    assert trail_files.trail_region("AWS::S3::Bucket", "eu-west-1") == "eu-west-1"
    assert ch.identifiers({"resourceId": "AROA1", "resourceName": "r", "arn": "arn:aws:iam::1:role/r"}, "AROA1") == {
        "AROA1", "r", "arn:aws:iam::1:role/r"}
    # Every VPC has a security group named "default": a security group is matched by id and ARN only.
    assert ch.identifiers({"resourceType": "AWS::EC2::SecurityGroup", "resourceId": "sg-1",
                           "resourceName": "default"}, "sg-1") == {"sg-1"}

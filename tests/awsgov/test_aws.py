"""The access layer: assumed-role sessions with ExternalId, cached clients, retries, call counting, errors."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from include.awsgov.aws import AwsAccess, classify_error, paginate, retry_config, role_session_name

TEST_MEMBER = "210987654321"
TEST_EXTERNAL_ID = "ext-id-for-tests"


@pytest.fixture
def access(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield AwsAccess.from_args(region="us-east-1", external_id=TEST_EXTERNAL_ID, session_name="awsgov-test")


def test_member_client_assumes_read_role_with_external_id(access):
    seen = []
    access.client("sts").meta.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: seen.append(params)
    )
    identity = access.client("sts", account_id=TEST_MEMBER).get_caller_identity()
    assert identity["Account"] == TEST_MEMBER
    assert identity["Arn"].endswith("assumed-role/GovernanceReadRole/awsgov-test")
    assert seen[0]["ExternalId"] == TEST_EXTERNAL_ID
    assert seen[0]["RoleArn"] == f"arn:aws:iam::{TEST_MEMBER}:role/GovernanceReadRole"


def test_clients_are_cached_per_account_region_service(access):
    assert access.client("s3", "eu-west-1") is access.client("s3", "eu-west-1")
    assert access.client("s3", "eu-west-1") is not access.client("s3", "us-east-1")
    assert access.client("s3", account_id=TEST_MEMBER) is not access.client("s3")


def test_admin_account_is_never_assumed(access):
    admin = access.admin_id()
    assert access.client("s3", account_id=admin) is access.client("s3")
    access.client("s3", account_id=admin).list_buckets()
    assert access.calls["s3.ListBuckets"] == 1
    assert access.calls["sts.AssumeRole"] == 0


def test_member_clients_share_admin_handlers_and_one_connection_pool(access):
    member = access.client("sts", "eu-west-1", account_id=TEST_MEMBER)
    other = access.client("sts", "eu-west-1", account_id="123412341234")
    assert member.get_caller_identity()["Account"] == TEST_MEMBER
    assert other.get_caller_identity()["Account"] == "123412341234"
    assert member._endpoint.http_session is other._endpoint.http_session
    # Member sessions copy the admin session: the model loader does not grow per account.
    loader = access.session._session.get_component("data_loader")
    paths = list(loader.search_paths)
    access.client("sts", "eu-west-1", account_id="999988887777")
    assert loader.search_paths == paths


def test_forget_drops_a_members_clients(access):
    member = access.client("sts", account_id=TEST_MEMBER)
    access.forget(TEST_MEMBER)
    assert access.client("sts", account_id=TEST_MEMBER) is not member
    assert access.client("sts", account_id=TEST_MEMBER).get_caller_identity()["Account"] == TEST_MEMBER


def test_calls_are_counted_per_operation(access):
    s3 = access.client("s3")
    s3.create_bucket(Bucket="bucket-one")
    s3.list_buckets()
    s3.list_buckets()
    assert access.calls["s3.ListBuckets"] == 2
    assert access.total_calls() == 3


def test_paginate_yields_every_page(access):
    s3 = access.client("s3")
    s3.create_bucket(Bucket="bucket-one")
    for i in range(7):
        s3.put_object(Bucket="bucket-one", Key=f"k{i}", Body=b"x")
    pages = paginate(s3, "list_objects_v2", "Contents", Bucket="bucket-one", PaginationConfig={"PageSize": 2})
    keys = [o["Key"] for o in pages]
    assert keys == [f"k{i}" for i in range(7)]


def test_retry_config_is_adaptive_and_bounded():
    cfg = retry_config(5)
    assert cfg.retries == {"mode": "adaptive", "max_attempts": 5}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        pytest.param("AccessDenied", "access_denied", id="sts-denied"),
        pytest.param("AccessDeniedException", "access_denied", id="json-denied"),
        pytest.param("SubscriptionRequiredException", "no_support_plan", id="no-support"),
        pytest.param("ThrottlingException", "throttled_out", id="throttled"),
        pytest.param("InternalFailure", "error", id="other"),
    ],
)
def test_classify_error_maps_codes_to_coverage_status(code, status):
    exc = ClientError({"Error": {"Code": code, "Message": "m"}}, "Op")
    assert classify_error(exc) == status
    assert classify_error(RuntimeError("x")) == "error"


def test_role_session_name_is_valid_for_sts():
    name = role_session_name("awsgov", "governance_collection", "manual__2026-11-29T05:00:00+00:00")
    assert len(name) <= 64
    assert all(c.isalnum() or c in "_+=,.@-" for c in name)

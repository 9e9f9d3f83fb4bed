"""The access layer: assumed-role sessions with ExternalId, cached clients, retries, call counting, errors."""

from __future__ import annotations

import inspect
import threading

import boto3
import pytest
from botocore.client import ClientCreator
from botocore.exceptions import ClientError
from moto import mock_aws

from include.awsgov.core import aws
from include.awsgov.core.aws import AwsAccess, classify_error, paginate, retry_config, role_session_name

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


# -- client classes shared between accounts (aws.share_client_classes) -----------------------------------------
@pytest.fixture
def builds(monkeypatch):
    """Counts of client classes botocore really built, per service, while the test runs."""
    counts: dict[str, int] = {}

    def counting(creator, service_name, service_model):
        counts[service_name] = counts.get(service_name, 0) + 1
        return build(creator, service_name, service_model)

    build = aws._build_client_class
    monkeypatch.setattr(aws, "_build_client_class", counting)
    return counts


def test_botocore_still_has_the_hooks_we_replace():
    # The cache replaces private botocore methods: fail loudly here if botocore renames them or changes arguments.
    assert list(inspect.signature(aws._build_client_class).parameters) == ["self", "service_name", "service_model"]
    assert list(inspect.signature(aws._build_service_model).parameters) == ["self", "service_name", "api_version"]
    AwsAccess.from_args(region="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    assert ClientCreator._create_client_class is aws._create_client_class
    assert ClientCreator._load_service_model is aws._load_service_model


def test_clients_of_accounts_share_one_class_but_keep_their_own_credentials_region_and_endpoint(access, builds):
    member = access.client("sts", "eu-west-1", account_id=TEST_MEMBER)
    other = access.client("sts", "us-east-1", account_id="123412341234")
    local = access._botocore_session("999988887777").create_client("sts", "eu-west-1", endpoint_url="http://localhost:1")
    assert builds == {"sts": 1}  # the admin's STS client (for AssumeRole) built it; members hit the cache
    assert (local.meta.endpoint_url, member.meta.endpoint_url) == ("http://localhost:1", "https://sts.eu-west-1.amazonaws.com")
    assert type(member) is type(other) is type(local) is type(access.client("sts"))
    assert (member.meta.region_name, other.meta.region_name) == ("eu-west-1", "us-east-1")
    assert member.get_caller_identity()["Account"] == TEST_MEMBER
    assert other.get_caller_identity()["Account"] == "123412341234"
    assert access.client("sts").get_caller_identity()["Account"] == access.admin_id()
    assert member._request_signer._credentials is not other._request_signer._credentials
    assert member.meta.service_model is other.meta.service_model
    access.client("s3", account_id=TEST_MEMBER)
    assert builds == {"sts": 1, "s3": 1}


def test_accounts_read_their_own_data_through_shared_classes(access, builds):
    one, two = access.client("guardduty", account_id=TEST_MEMBER), access.client("guardduty", account_id="123412341234")
    assert type(one) is type(two) and builds == {"sts": 1, "guardduty": 1}
    detector = one.create_detector(Enable=True)["DetectorId"]
    assert one.list_detectors()["DetectorIds"] == [detector]
    assert two.list_detectors()["DetectorIds"] == []  # signed as the other account: its own (empty) GuardDuty


def test_other_sessions_keep_botocore_own_classes(access):
    # Only sessions of an AwsAccess opt in; any other boto3 session in the process builds its classes as before.
    plain = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")
    assert type(plain.client("sts")) is not type(plain.client("sts"))
    assert type(plain.client("sts")) is not type(access.client("sts"))
    assert plain.client("sts").meta.service_model is not plain.client("sts").meta.service_model


def test_client_classes_are_built_once_under_concurrent_creation(access, builds):
    members = [f"1000000000{i:02d}" for i in range(16)]
    clients: dict[str, object] = {}
    barrier = threading.Barrier(8)

    def make(accounts):
        barrier.wait()
        for account in accounts:
            clients[account] = access.client("guardduty", "eu-west-1", account_id=account)

    threads = [threading.Thread(target=make, args=(members[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Racing threads may each build one before the first is stored; every client ends up with the stored class.
    assert len({type(c) for c in clients.values()}) == 1 and 1 <= builds["guardduty"] <= 8
    assert access.client("guardduty", "eu-west-1", account_id="999900001111").__class__ is type(clients[members[0]])


def test_clients_share_one_cache_of_event_alias_names(access):
    one, two = access.client("sts", account_id=TEST_MEMBER), access.client("sts", "eu-west-1")
    # botocore's private attribute: if it is renamed, the clients keep their own caches and this fails.
    assert one.meta.events._alias_name_cache is two.meta.events._alias_name_cache
    assert one.get_caller_identity()["Account"] == TEST_MEMBER
    assert "before-call.sts.GetCallerIdentity" in two.meta.events._alias_name_cache


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


def test_paginators_are_made_once_per_client_and_operation(access):
    s3 = access.client("s3")
    s3.create_bucket(Bucket="bucket-one")
    s3.put_object(Bucket="bucket-one", Key="k", Body=b"x")
    for _ in range(2):
        assert [o["Key"] for o in paginate(s3, "list_objects_v2", "Contents", Bucket="bucket-one")] == ["k"]
    assert list(s3._awsgov_paginators) == ["list_objects_v2"]
    other = access.client("s3", "eu-west-1")
    assert [b["Name"] for b in paginate(other, "list_buckets", "Buckets")] == ["bucket-one"]
    assert list(other._awsgov_paginators) == ["list_buckets"]  # each client its own, bound to its own calls


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


def test_the_external_id_is_not_in_the_repr(access):
    # The dataclass repr printed every field, so a log line or a traceback showing the access object leaked it.
    assert access.external_id == TEST_EXTERNAL_ID
    assert TEST_EXTERNAL_ID not in repr(access) and TEST_EXTERNAL_ID not in str(access)

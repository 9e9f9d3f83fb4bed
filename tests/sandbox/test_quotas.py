"""Request-rate quotas: token buckets per account x region x operation, each service's throttling answer, the
docs table, and the control endpoint a bench reads the model from."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import botocore.exceptions
import botocore.session
import pytest
from botocore import xform_name

from sandbox import quotas
from sandbox.errors import JSON, QUERY, REST_JSON

REPO = Path(__file__).resolve().parents[2]
TEST_ACCOUNT, TEST_REGION = "111122223333", "eu-west-1"
# Names that look like botocore operations in include/awsgov but are not AWS calls.
NOT_AWS_CALLS = {
    "get_template": "jinja2 Environment.get_template (core/render.py)",
    "enable_macie": "an onboarding form field (onboarding/threat_options.py)",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def quota_sb(sb):
    """The session sandbox with every bucket full at the start and the model restored to AWS's rates after."""
    sb.set_quotas(scale=1.0, enabled=True)
    yield sb
    sb.set_quotas(scale=1.0, enabled=True)


# --- the model, in-process ----------------------------------------------------------------------------------------
def test_bucket_lets_the_burst_through_then_throttles(clock):
    model = quotas.QuotaModel(clock=clock)
    admitted = [model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents") for _ in range(3)]
    assert admitted == [True, True, False]


def test_bucket_refills_at_the_rate(clock):
    model = quotas.QuotaModel(clock=clock)
    for _ in range(2):
        model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents")
    clock.now += 0.4  # 0.8 of a token at 2/s
    assert not model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents")
    clock.now += 0.1  # a refused call takes nothing: 1.0 token now
    assert model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents")
    assert not model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents")


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(("222233334444", TEST_REGION, "cloudtrail", "LookupEvents"), id="other-account"),
        pytest.param((TEST_ACCOUNT, "us-east-1", "cloudtrail", "LookupEvents"), id="other-region"),
        pytest.param((TEST_ACCOUNT, TEST_REGION, "cloudtrail", "DescribeTrails"), id="other-operation"),
    ],
)
def test_buckets_are_per_account_region_and_operation(clock, other):
    model = quotas.QuotaModel(clock=clock)
    for _ in range(2):
        model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents")
    assert not model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents")
    assert model.admit(*other)


def test_scale_multiplies_rate_and_burst(clock):
    model = quotas.QuotaModel(scale=10, clock=clock)
    admitted = sum(model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents") for _ in range(25))
    assert admitted == 20  # burst 2 x 10


@pytest.mark.parametrize("switch", [pytest.param({"scale": 0}, id="scale-0"),
                                    pytest.param({"enabled": False}, id="disabled")])
def test_switched_off_model_admits_everything(clock, switch):
    model = quotas.QuotaModel(clock=clock)
    model.configure(**switch)
    assert all(model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents") for _ in range(100))


def test_sqs_is_not_throttled(clock):
    model = quotas.QuotaModel(clock=clock)
    assert all(model.admit(TEST_ACCOUNT, TEST_REGION, "sqs", "ReceiveMessage") for _ in range(10_000))


def test_buckets_count_the_calls_they_admitted_and_refused(clock):
    model = quotas.QuotaModel(clock=clock)
    for _ in range(5):
        model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents")  # burst 2: 2 in, 3 refused
    clock.now += 1.0  # 2 tokens at 2/s
    for _ in range(3):
        model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents")
    model.admit(TEST_ACCOUNT, "us-east-1", "config", "DescribeConfigRules")
    model.admit(TEST_ACCOUNT, TEST_REGION, "sqs", "ReceiveMessage")  # not throttled: no bucket
    assert model.buckets() == [
        {"account": TEST_ACCOUNT, "region": TEST_REGION, "service": "cloudtrail", "operation": "LookupEvents",
         "admitted": 4, "throttled": 4},
        {"account": TEST_ACCOUNT, "region": "us-east-1", "service": "config", "operation": "DescribeConfigRules",
         "admitted": 1, "throttled": 0},
    ]


@pytest.mark.parametrize("reset", [pytest.param(lambda m: m.refill(), id="refill"),
                                   pytest.param(lambda m: m.configure(scale=2.0), id="configure")])
def test_bucket_counts_start_again_with_the_buckets(clock, reset):
    model = quotas.QuotaModel(clock=clock)
    for _ in range(3):
        model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents")
    reset(model)
    assert model.buckets() == []
    model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents")
    assert [(b["admitted"], b["throttled"]) for b in model.buckets()] == [(1, 0)]


def test_switched_off_model_counts_nothing(clock):
    model = quotas.QuotaModel(clock=clock)
    model.configure(enabled=False)
    model.admit(TEST_ACCOUNT, TEST_REGION, "cloudtrail", "LookupEvents")
    assert model.buckets() == []


def test_bucket_counts_lose_no_call_across_threads(clock):
    model = quotas.QuotaModel(scale=1000, clock=clock)  # burst 2,000 per LookupEvents bucket, the clock stands still
    accounts = [f"{i:012d}" for i in range(4)]

    def hammer(account: str) -> None:
        for _ in range(2500):
            model.admit(account, TEST_REGION, "cloudtrail", "LookupEvents")

    threads = [threading.Thread(target=hammer, args=(a,)) for a in accounts for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # two threads per bucket, 5,000 calls each bucket: exactly the burst admitted, the rest refused
    assert [(b["account"], b["admitted"], b["throttled"]) for b in model.buckets()] == [
        (a, 2000, 3000) for a in accounts]


def test_unlisted_operation_falls_back_to_the_service_default():
    assert quotas.quota_for("config", "GetAggregateComplianceDetailsByConfigRule") == quotas.quota_for(
        "config", "DescribeConfigRules")
    assert quotas.quota_for("config", "DescribeConfigRules").kind == "assumption"
    assert quotas.quota_for("cloudtrail", "LookupEvents") == quotas.Quota(
        2.0, 2.0, "published", quotas.table()["services"]["cloudtrail"]["operations"]["LookupEvents"]["source"])


# --- throttling answers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("service", "protocol", "code", "status"),
    [
        pytest.param("config", JSON, "ThrottlingException", 400, id="config"),
        pytest.param("support", JSON, "ThrottlingException", 400, id="support"),
        pytest.param("cloudtrail", JSON, "ThrottlingException", 400, id="cloudtrail"),
        pytest.param("organizations", JSON, "TooManyRequestsException", 400, id="organizations"),
        pytest.param("cloudwatch", "smithy-rpc-v2-cbor", "Throttling", 400, id="cloudwatch"),
        pytest.param("sts", QUERY, "Throttling", 400, id="sts"),
        pytest.param("ses", QUERY, "Throttling", 400, id="ses"),
        pytest.param("macie2", REST_JSON, "ThrottlingException", 429, id="macie2"),
        pytest.param("securityhub", REST_JSON, "LimitExceededException", 429, id="securityhub"),
        pytest.param("guardduty", REST_JSON, "TooManyRequestsException", 429, id="guardduty"),
    ],
)
def test_throttle_error_is_the_services_own(service, protocol, code, status):
    error = quotas.throttle_error(service, protocol)
    assert (error.code, error.status) == (code, status)


def test_throttle_errors_match_the_botocore_models_where_they_declare_one():
    session = botocore.session.get_session()
    checked = 0
    for service in quotas.table()["product_calls"]:
        if service.startswith("_"):
            continue
        model = session.get_service_model(service)
        error = quotas.throttle_error(service, model.protocol)
        for shape in model.error_shapes:
            code = shape.metadata.get("error", {}).get("code", shape.name)
            if code == error.code:
                assert shape.metadata.get("error", {}).get("httpStatusCode", 400) == error.status, service
                checked += 1
    assert checked >= 4  # support, organizations, macie2, securityhub declare theirs


# --- the docs table -----------------------------------------------------------------------------------------------
def test_docs_table_is_the_quota_table():
    docs = (REPO / "docs" / "quotas.md").read_text(encoding="utf-8")
    assert quotas.markdown() in docs


def test_product_calls_list_every_operation_the_product_calls():
    session = botocore.session.get_session()
    listed = quotas.table()["product_calls"]
    names: dict[str, set[tuple[str, str]]] = {}
    for service in listed:
        if service.startswith("_"):
            continue
        for operation in session.get_service_model(service).operation_names:
            names.setdefault(xform_name(operation), set()).add((service, operation))
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "include" / "awsgov").rglob("*.py"))
    missing = []
    for name, candidates in names.items():
        if name in NOT_AWS_CALLS or not re.search(rf"(\.{name}\b|\"{name}\")", source):
            continue
        if not any(op in listed[svc] for svc, op in candidates):
            missing.append(name)
    assert missing == []


# --- against the server -------------------------------------------------------------------------------------------
def test_lookup_events_is_throttled_above_two_per_second(quota_sb, members):
    client = quota_sb.client("cloudtrail", account_id=members["onboarded"][0], region="eu-west-1", retries=0)
    quota_sb.reset_calls()
    outcomes = []
    for _ in range(3):
        try:
            client.lookup_events(MaxResults=1)
            outcomes.append("ok")
        except botocore.exceptions.ClientError as exc:
            outcomes.append((exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]))
    assert outcomes[:2] == ["ok", "ok"]
    assert outcomes[2] == ("ThrottlingException", 400)
    calls = quota_sb.calls()
    row = next(r for r in calls["calls"] if r["action"] == "LookupEvents")
    assert (calls["throttled"], row["throttled"], row["quota_throttled"]) == (1, 1, 1)
    assert quota_sb.quotas()["throttled_calls"] == 1
    time.sleep(0.6)
    client.lookup_events(MaxResults=1)
    # The bucket itself: the calls it admitted (not the refusal), keyed as the call was signed.
    buckets = quota_sb.quota_buckets()
    mine = [b for b in buckets["buckets"] if b["operation"] == "LookupEvents"]
    assert mine == [{"account": members["onboarded"][0], "region": "eu-west-1", "service": "cloudtrail",
                     "operation": "LookupEvents", "admitted": 3, "throttled": 1}]
    quota_sb.refill_quotas()
    assert quota_sb.quota_buckets() == {"admitted": 0, "throttled": 0, "buckets": []}


def test_botocore_standard_retries_get_through_the_quota(quota_sb, members):
    client = quota_sb.client("cloudtrail", account_id=members["onboarded"][0], region="us-east-1", retries=7)
    quota_sb.reset_calls()
    for _ in range(6):
        client.lookup_events(MaxResults=1)
    calls = quota_sb.calls()
    refused = quota_sb.quotas()["throttled_calls"]
    assert refused >= 1
    assert calls["total"] - refused == 6
    # botocore's retries of a refused call are refusals too; each call is admitted once, when it gets through.
    bucket = next(b for b in quota_sb.quota_buckets()["buckets"] if b["operation"] == "LookupEvents")
    assert (bucket["admitted"], bucket["throttled"]) == (6, refused)


def test_macie_throttle_is_429(quota_sb, members):
    quota_sb.set_quotas(scale=0.05)  # burst 20 x 0.05 = 1 call
    client = quota_sb.client("macie2", account_id=members["onboarded"][0], region="us-east-1", retries=0)
    client.get_macie_session()
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.get_macie_session()
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_control_endpoint_exposes_the_model(quota_sb):
    model = quota_sb.quotas()
    assert (model["enabled"], model["scale"], model["active"]) == (True, 1.0, True)
    assert model["services"]["cloudtrail"]["operations"]["LookupEvents"]["rate"] == 2
    assert quota_sb.set_quotas(enabled=False)["active"] is False


def test_switched_off_quotas_let_a_burst_through(quota_sb, members):
    quota_sb.set_quotas(scale=0)
    client = quota_sb.client("cloudtrail", account_id=members["onboarded"][0], region="eu-west-1", retries=0)
    for _ in range(10):
        client.lookup_events(MaxResults=1)
    assert quota_sb.quotas()["throttled_calls"] == 0

"""Injected faults: latency, throttling (recognised by botocore for every protocol), no support plan."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions
import pytest
from botocore.retries.standard import ThrottledRetryableChecker

THROTTLE_CODES = set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)

# One cheap call per service, covering the wire protocols: query (sts, iam, ses), JSON (support,
# config, organizations, events, cloudwatch), rest-xml (s3), rest-json (sesv2).
CALLS = {
    "sts": lambda c: c.get_caller_identity(),
    "iam": lambda c: c.list_roles(),
    "ses": lambda c: c.list_identities(),
    "support": lambda c: c.describe_trusted_advisor_checks(language="en"),
    "config": lambda c: c.describe_config_rules(),
    "organizations": lambda c: c.list_roots(),
    "events": lambda c: c.list_event_buses(),
    "cloudwatch": lambda c: c.list_metrics(Namespace="AWS/EC2"),
    "s3": lambda c: c.list_buckets(),
    "sesv2": lambda c: c.list_email_identities(),
}


@pytest.mark.parametrize("service", list(CALLS))
def test_throttling_is_recognised_by_botocore(sb, service):
    client = sb.client(service, retries=0)
    sb.set_faults(throttle_rate=1.0)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        CALLS[service](client)
    sb.clear_faults()
    assert err.value.response["Error"]["Code"] in THROTTLE_CODES
    CALLS[service](client)


def test_throttle_rate_is_roughly_as_set(sb):
    client = sb.client("sts", retries=0)
    sb.set_faults(throttle_rate=0.3, seed=1)
    throttled = 0
    for _ in range(80):
        try:
            client.get_caller_identity()
        except botocore.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == "Throttling"
            throttled += 1
    assert 10 <= throttled <= 40  # 24 expected
    assert sb.calls()["throttled"] == throttled


def test_botocore_retries_through_throttling(sb):
    sb.set_faults(throttle_rate=0.5, seed=2)
    client = sb.client("organizations", retries=10)
    assert client.list_roots()["Roots"]


def test_latency_is_added_and_does_not_serialise_calls(sb):
    latency = 0.4
    clients = [sb.client("sts") for _ in range(8)]
    clients[0].get_caller_identity()
    sb.set_faults(latency_ms=latency * 1000)

    start = time.perf_counter()
    clients[0].get_caller_identity()
    one = time.perf_counter() - start
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: c.get_caller_identity(), clients))
    eight = time.perf_counter() - start

    assert latency <= one < latency + 1.0
    assert eight < 8 * latency / 2  # concurrent: far below 8 calls one after another


def test_control_endpoints_are_not_delayed_or_counted(sb):
    sb.set_faults(latency_ms=2000, throttle_rate=1.0)
    start = time.perf_counter()
    sb.health()
    sb.faults()
    assert time.perf_counter() - start < 1.0
    assert sb.calls()["total"] == 0


def test_no_support_plan(sb, members):
    account, other = members["onboarded"][:2]
    sb.set_faults(no_support_accounts=[account])
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sb.client("support", account_id=account).describe_trusted_advisor_checks(language="en")
    assert err.value.response["Error"]["Code"] == "SubscriptionRequiredException"
    assert sb.client("support", account_id=other).describe_trusted_advisor_checks(language="en")["checks"]


def test_unknown_fault_field_is_refused(sb):
    from sandbox.runner import SandboxError

    with pytest.raises(SandboxError, match="unknown fault fields: throttle"):
        sb.set_faults(throttle=0.3)

"""Bucket policies in the sandbox apply their conditions as S3 does for a request over HTTPS (sandbox/s3/policy.py);
moto alone ignores conditions, so a deny-insecure-transport statement denied every request, the owner's reads too."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest

from sandbox.s3.policy import condition_holds

BUCKET = "test-policy-conditions"


def _deny(condition: dict | None) -> dict:
    statement = {"Sid": "Deny", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}
    return {"Version": "2012-10-17", "Statement": [statement | ({"Condition": condition} if condition else {})]}


@pytest.fixture
def bucket(sb):
    s3 = sb.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"v")
    yield s3
    s3.delete_bucket_policy(Bucket=BUCKET)
    s3.delete_object(Bucket=BUCKET, Key="k")
    s3.delete_bucket(Bucket=BUCKET)


@pytest.mark.parametrize(("condition", "allowed"), [
    pytest.param({"Bool": {"aws:SecureTransport": "false"}}, True, id="deny-insecure-transport-does-not-apply"),
    pytest.param({"StringEquals": {"aws:SourceVpce": "vpce-1"}}, True, id="key-the-request-lacks-does-not-apply"),
    pytest.param(None, False, id="unconditional-deny-applies"),
    pytest.param({"Bool": {"aws:SecureTransport": "true"}}, False, id="deny-over-tls-applies"),
])
def test_a_deny_applies_only_when_its_conditions_hold(bucket, condition, allowed):
    bucket.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(_deny(condition)))
    if allowed:
        assert bucket.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"v"
    else:
        with pytest.raises(botocore.exceptions.ClientError) as err:
            bucket.get_object(Bucket=BUCKET, Key="k")
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    bucket.delete_bucket_policy(Bucket=BUCKET)


def test_condition_operators():
    assert condition_holds({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}})  # missing key, IfExists
    assert condition_holds({"Null": {"aws:SourceVpce": "true"}})
    assert not condition_holds({"Null": {"aws:SourceVpce": "false"}})
    assert not condition_holds({"NumericLessThan": {"s3:max-keys": "10"}})  # not modelled: never holds

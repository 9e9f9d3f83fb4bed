"""The AssumeRole trust-policy decision, in-process (no server)."""

from __future__ import annotations

import json

import pytest

from sandbox.sts.models import trust_allows

MGMT = "123456789012"


def policy(principal, condition=None, effect="Allow", action="sts:AssumeRole"):
    statement = {"Effect": effect, "Principal": principal, "Action": action}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.mark.parametrize(
    ("document", "external_id", "allowed"),
    [
        pytest.param(policy({"AWS": f"arn:aws:iam::{MGMT}:root"}), None, True, id="root-no-condition"),
        pytest.param(policy({"AWS": MGMT}), None, True, id="bare-account-id"),
        pytest.param(policy({"AWS": "arn:aws:iam::999999999999:root"}), None, False, id="other-account"),
        pytest.param(policy({"Service": "cloudformation.amazonaws.com"}), None, False, id="service-only"),
        pytest.param(policy({"AWS": MGMT}, {"StringEquals": {"sts:ExternalId": "abc"}}), "abc", True, id="ext-ok"),
        pytest.param(policy({"AWS": MGMT}, {"StringEquals": {"sts:ExternalId": "abc"}}), "abd", False, id="ext-bad"),
        pytest.param(policy({"AWS": MGMT}, {"StringEquals": {"sts:ExternalId": "abc"}}), None, False, id="ext-none"),
        pytest.param(policy({"AWS": MGMT}, {"StringLike": {"sts:ExternalId": "ab*"}}), "abz", True, id="ext-like"),
        pytest.param(policy({"AWS": [MGMT, "arn:aws:iam::1:root"]}, {"StringEqualsIfExists": {
            "sts:ExternalId": "abc"}}), None, True, id="if-exists"),
        pytest.param(policy("*", {"StringEquals": {"aws:PrincipalOrgID": "o-x"}}), None, True, id="org-condition"),
        pytest.param(policy({"AWS": MGMT}, action="s3:GetObject"), None, False, id="wrong-action"),
    ],
)
def test_trust_policy(document, external_id, allowed):
    assert trust_allows(document, MGMT, f"arn:aws:iam::{MGMT}:user/admin", external_id) is allowed


def test_assumed_role_principal_matches_role_arn():
    document = policy({"AWS": f"arn:aws:iam::{MGMT}:role/Deployer"})
    assert trust_allows(document, MGMT, f"arn:aws:sts::{MGMT}:assumed-role/Deployer/session", None)
    assert not trust_allows(document, MGMT, f"arn:aws:sts::{MGMT}:assumed-role/Other/session", None)


def test_explicit_deny_wins():
    document = json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": MGMT}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "Principal": {"AWS": MGMT}, "Action": "sts:AssumeRole"},
    ]})
    assert not trust_allows(document, MGMT, f"arn:aws:iam::{MGMT}:user/admin", None)

"""AssumeRole as AWS does it: the role must exist and its trust policy (with ExternalId) must allow the caller."""

from __future__ import annotations

import botocore.exceptions
import pytest


def _assume(sb, account_id, external_id=None, role=None):
    kwargs = {"ExternalId": external_id} if external_id is not None else {}
    return sb.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{role or sb.info['read_role_name']}", RoleSessionName="test-session",
        **kwargs,
    )


def test_assumed_credentials_act_in_the_target_account(sb, members):
    account = members["onboarded"][0]
    session = sb.session(account)
    identity = session.client("sts", endpoint_url=sb.endpoint).get_caller_identity()
    assert identity["Account"] == account
    assert identity["Arn"].endswith(f":assumed-role/{sb.info['read_role_name']}/sandbox")


@pytest.mark.parametrize("external_id", [pytest.param("wrong-id", id="wrong"), pytest.param(None, id="missing")])
def test_external_id_must_match(sb, members, external_id):
    account = members["onboarded"][0]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        _assume(sb, account, external_id)
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert f"is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{account}:role/" in (
        err.value.response["Error"]["Message"])


def test_missing_role_in_new_accounts_is_denied(sb, members):
    for account in members["new"]:
        with pytest.raises(botocore.exceptions.ClientError) as err:
            _assume(sb, account, sb.info["external_id"])
        assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_suspended_account_is_denied(sb, members):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        _assume(sb, members["suspended"][0], sb.info["external_id"])
    assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_deny_assume_fault(sb, members):
    denied, allowed = members["onboarded"][:2]
    sb.set_faults(deny_assume_accounts=[denied])
    with pytest.raises(botocore.exceptions.ClientError) as err:
        _assume(sb, denied, sb.info["external_id"])
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    assert _assume(sb, allowed, sb.info["external_id"])["Credentials"]["AccessKeyId"].startswith("ASIA")
    sb.clear_faults()
    assert _assume(sb, denied, sb.info["external_id"])["Credentials"]


def test_organization_access_role_trusts_management_without_external_id(sb, members):
    # AWS creates OrganizationAccountAccessRole in accounts created by Organizations; moto does too.
    assert _assume(sb, members["new"][0], role="OrganizationAccountAccessRole")["Credentials"]

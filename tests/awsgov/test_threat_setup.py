"""Onboarding's threat-detection options (include/awsgov/threat_setup.py through onboarding.py and stacksets.py):
validated on the form, passed as ParameterOverrides of new stack instances only, and the delegated administrator
registered per region from the management account (moto implements both registrations)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from include.awsgov import onboarding, stacksets, threat_setup
from include.awsgov.aws import AwsAccess

TEST_GLOBAL = "us-east-1"
GOOD = {"account_ids": ["210987654321"], "regions": ["us-east-1", "eu-west-1"], "owner_email": "owner@example.com",
        "team": "Payments", "environment": "prod"}


def _static(**changes):
    return onboarding.validate_static({**GOOD, **changes}, default_regions=["us-east-1"], global_region=TEST_GLOBAL)


def test_options_default_to_off_and_become_explicit_overrides():
    request = _static()
    assert {f: request[f] for f in threat_setup.FLAGS} == dict.fromkeys(threat_setup.FLAGS, False)
    assert threat_setup.overrides(_static(enable_guardduty=True, findings_import_role=True)) == {
        "EnableGuardDuty": "true", "EnableMacie": "false", "EnableFindingsImport": "true"}


def test_option_must_be_a_boolean():
    with pytest.raises(onboarding.InvalidRequest) as err:
        _static(enable_macie="yes")
    assert "enable_macie: 'yes' must be true or false" in str(err.value)


def test_macie_refused_in_a_region_without_macie():
    missing = sorted(onboarding.known_regions() - threat_setup.service_regions("macie2"))
    if not missing:
        pytest.skip("botocore lists Macie in every region")
    with pytest.raises(onboarding.InvalidRequest) as err:
        _static(enable_macie=True, regions=["us-east-1", missing[0]])
    assert f"enable_macie: macie2 is not available in {[missing[0]]!r}" in str(err.value)
    assert _static(regions=["us-east-1", missing[0]])["regions"] == ["us-east-1", missing[0]]  # option off: fine


def test_only_new_instances_get_the_overrides():
    request = _static(enable_guardduty=True)
    plan = {"create": [{"accounts": ["210987654321"], "regions": ["us-east-1"]}],
            "update": [{"accounts": ["310987654321"], "regions": ["us-east-1"]}]}
    steps = onboarding.operation_steps(request, plan, None, ("dag", "run"))
    assert [s.get("overrides") for s in steps] == [threat_setup.overrides(request), None]


def test_create_step_sends_parameter_overrides():
    cf = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    step = {"action": "create", "op_id": "op-1", "accounts": ["210987654321"], "regions": ["us-east-1"],
            "preferences": {"FailureTolerancePercentage": 10}, "ou_ids": [],
            "overrides": {"EnableGuardDuty": "true", "EnableMacie": "false"}}
    with Stubber(cf) as stub:
        stub.add_response("create_stack_instances", {"OperationId": "op-1"}, {
            "StackSetName": "baseline", "Accounts": ["210987654321"], "Regions": ["us-east-1"],
            "OperationPreferences": {"FailureTolerancePercentage": 10}, "OperationId": "op-1",
            "ParameterOverrides": [{"ParameterKey": "EnableGuardDuty", "ParameterValue": "true"},
                                   {"ParameterKey": "EnableMacie", "ParameterValue": "false"}]})
        assert stacksets.start_step(cf, "baseline", step) == "op-1"
        stub.add_response("update_stack_instances", {"OperationId": "op-2"}, {
            "StackSetName": "baseline", "Accounts": ANY, "Regions": ANY, "OperationPreferences": ANY,
            "OperationId": "op-2"})  # no ParameterOverrides: other accounts keep their values
        assert stacksets.start_step(cf, "baseline", {**step, "action": "update", "op_id": "op-2",
                                                     "overrides": None}) == "op-2"


def test_delegated_admin_registered_once_per_region_and_service():
    with mock_aws():
        boto3.client("organizations", region_name="us-east-1").create_organization(FeatureSet="ALL")
        access = AwsAccess.from_args(aws_access_key_id="testing", aws_secret_access_key="testing")
        first = threat_setup.register_delegated_admin(access, ["us-east-1", "eu-west-1"], "123456789012")
        again = threat_setup.register_delegated_admin(access, ["us-east-1", "eu-west-1"], "123456789012")
        listed = access.client("guardduty", "eu-west-1").list_organization_admin_accounts()["AdminAccounts"]
    assert first == {s: {"us-east-1": "registered", "eu-west-1": "registered"} for s in ("guardduty", "macie2")}
    assert again == {s: {"us-east-1": "already", "eu-west-1": "already"} for s in ("guardduty", "macie2")}
    assert [a["AdminAccountId"] for a in listed] == ["123456789012"]

"""Onboarding's threat-detection options (onboarding/threat_options.py via workflow.py, stacksets.py):
validated on the form, passed as ParameterOverrides of new stack instances only, and the delegated administrator
registered per region from the management account (moto implements both registrations)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from moto import mock_aws

from include.awsgov.core.aws import AwsAccess
from include.awsgov.onboarding import stacksets, threat_options, workflow

TEST_GLOBAL = "us-east-1"
GOOD = {"account_ids": ["210987654321"], "regions": ["us-east-1", "eu-west-1"], "owner_email": "owner@example.com",
        "team": "Payments", "environment": "prod"}


def _static(**changes):
    return workflow.validate_static({**GOOD, **changes}, default_regions=["us-east-1"], global_region=TEST_GLOBAL)


def test_options_default_to_off_and_become_explicit_overrides():
    request = _static()
    assert {f: request[f] for f in threat_options.FLAGS} == dict.fromkeys(threat_options.FLAGS, False)
    assert threat_options.overrides(_static(enable_guardduty=True, findings_import_role=True)) == {
        "EnableGuardDuty": "true", "EnableMacie": "false", "EnableFindingsImport": "true"}


def test_option_must_be_a_boolean():
    with pytest.raises(workflow.InvalidRequest) as err:
        _static(enable_macie="yes")
    assert "enable_macie: 'yes' must be true or false" in str(err.value)


def test_macie_refused_in_a_region_without_macie():
    missing = sorted(workflow.known_regions() - threat_options.service_regions("macie2"))
    if not missing:
        pytest.skip("botocore lists Macie in every region")
    with pytest.raises(workflow.InvalidRequest) as err:
        _static(enable_macie=True, regions=["us-east-1", missing[0]])
    assert f"enable_macie: macie2 is not available in {[missing[0]]!r}" in str(err.value)
    assert _static(regions=["us-east-1", missing[0]])["regions"] == ["us-east-1", missing[0]]  # option off: fine


def test_only_new_instances_get_the_overrides():
    request = _static(enable_guardduty=True)
    plan = {"create": [{"accounts": ["210987654321"], "regions": ["us-east-1"]}],
            "update": [{"accounts": ["310987654321"], "regions": ["us-east-1"]}]}
    steps = workflow.operation_steps(request, plan, None, ("dag", "run"))
    assert [s.get("overrides") for s in steps] == [threat_options.overrides(request), None]


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
        first = threat_options.register_delegated_admin(access, ["us-east-1", "eu-west-1"], "123456789012")
        again = threat_options.register_delegated_admin(access, ["us-east-1", "eu-west-1"], "123456789012")
        listed = access.client("guardduty", "eu-west-1").list_organization_admin_accounts()["AdminAccounts"]
    assert first == {s: {"us-east-1": "registered", "eu-west-1": "registered"} for s in ("guardduty", "macie2")}
    assert again == {s: {"us-east-1": "already", "eu-west-1": "already"} for s in ("guardduty", "macie2")}
    assert [a["AdminAccountId"] for a in listed] == ["123456789012"]


def test_delegated_admin_refused_in_a_region_without_macie():
    missing = sorted((workflow.known_regions() & threat_options.service_regions("guardduty"))
                     - threat_options.service_regions("macie2"))
    if not missing:
        pytest.skip("botocore lists Macie wherever GuardDuty is")
    with pytest.raises(workflow.InvalidRequest) as err:
        _static(delegated_admin=True, regions=["us-east-1", missing[0]])
    assert f"delegated_admin: macie2 is not available in {[missing[0]]!r}" in str(err.value)
    assert "delegated_admin: guardduty" not in str(err.value)


def _sandbox_access(sandbox, **kwargs):
    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTTHREATS00001",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-threat-setup", retry_mode="standard", **kwargs)


def test_delegated_admin_failure_fails_after_trying_every_region(clean_sandbox):
    regions = clean_sandbox.info["regions"][:2]
    clean_sandbox.set_faults(throttle_rate=1.0, throttle_services=["macie2"])  # Macie refuses every call
    access = _sandbox_access(clean_sandbox, max_attempts=1)
    with pytest.raises(threat_options.DelegatedAdminFailed) as err:
        threat_options.register_delegated_admin(access, regions, clean_sandbox.info["management_account_id"])
    message = str(err.value)
    assert all(f"macie2 in {region}: " in message for region in regions), message
    # Macie's own throttling error (botocore model macie2: ThrottlingException, HTTP 429).
    assert "ThrottlingException" in message and "guardduty in" not in message
    clean_sandbox.clear_faults()
    for region in regions:  # GuardDuty was still registered in every region
        listed = access.client("guardduty", region).list_organization_admin_accounts()["AdminAccounts"]
        assert [a["AdminAccountId"] for a in listed] == [clean_sandbox.info["management_account_id"]]


def test_sandbox_refuses_a_second_detector_or_macie_session_as_aws_does(sandbox):
    truth = sandbox.truth(sections=["guardduty", "macie"])
    member = next(a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE")
    region = next(r for r in sandbox.info["regions"] if truth["guardduty"]["accounts"][member][r]["enabled"]
                  and truth["macie"]["accounts"][member][r]["enabled"])
    with pytest.raises(ClientError) as gd:
        sandbox.client("guardduty", account_id=member, region=region).create_detector(Enable=True)
    assert gd.value.response["Error"]["Code"] == "BadRequestException"
    assert "detector already exists" in gd.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as mc:
        sandbox.client("macie2", account_id=member, region=region).enable_macie()
    assert mc.value.response["Error"]["Code"] == "ConflictException"
    assert len(sandbox.client("guardduty", account_id=member, region=region).list_detectors()["DetectorIds"]) == 1


def test_new_instances_skip_a_detector_or_session_that_exists_already(sandbox):
    """Read through the read role: "false" where the sandbox's truth says the service is on, the form's "true"
    where it is off, and the form's value for an account whose read role does not exist yet."""
    truth = sandbox.truth(sections=["guardduty", "macie"])
    members = [a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    new = next(a["id"] for a in sandbox.info["accounts"] if not a["read_role"] and a["status"] == "ACTIVE")
    regions = sandbox.info["regions"]
    request = {**_static(enable_guardduty=True, enable_macie=True, regions=regions), "global_region": regions[0]}
    accounts = [members[1], new]  # the second member always lacks both in the last region
    pairs = [(a, r) for a in accounts for r in regions]
    on = threat_options.services_on(_sandbox_access(sandbox), request, pairs)
    for region in regions:
        expected = [p for p, section in (("EnableGuardDuty", "guardduty"), ("EnableMacie", "macie"))
                    if truth[section]["accounts"][members[1]][region]["enabled"]]
        assert on[(members[1], region)] == expected, region
        assert on[(new, region)] is None
    assert on[(members[1], regions[-1])] == []

    groups = threat_options.per_instance_groups(request, [{"accounts": sorted(accounts), "regions": regions}], on)
    got = {(a, r): g["overrides"] for g in groups for a in g["accounts"] for r in g["regions"]}
    assert sorted(got) == sorted(pairs)  # every instance once
    for account, region in pairs:
        values = got[(account, region)]
        if account == new or region == regions[-1]:
            assert (values["EnableGuardDuty"], values["EnableMacie"]) == ("true", "true")
        else:
            assert values == threat_options.overrides(request, on[(account, region)])
    assert regions[0] in groups[0]["regions"]  # the global region's instances first (the others use its roles)
    steps = workflow.operation_steps(request, {"create": groups, "update": []}, None, ("dag", "run"))
    assert [s["overrides"] for s in steps] == [g["overrides"] for g in groups]

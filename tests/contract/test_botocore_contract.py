"""The contract plugin's checks (tests/contract/botocore_contract.py), on real botocore service models."""

from __future__ import annotations

import botocore.session
import pytest

from tests.contract.botocore_contract import Recorder, check

MODELS = botocore.session.get_session()


def _input(service: str, operation: str):
    return MODELS.get_service_model(service).operation_model(operation).input_shape


def _issues(service: str, operation: str, params: dict) -> list[str]:
    return list(check(params, _input(service, operation), operation, Recorder()))


@pytest.mark.parametrize(("service", "operation", "params", "expected"), [
    pytest.param("guardduty", "ListFindings", {"DetectorId": "d" * 32, "MaxResults": 51},
                 "ListFindings.MaxResults: 51 is above the maximum 50", id="page-size-over-max"),
    pytest.param("cloudtrail", "LookupEvents", {"MaxResults": 0}, "LookupEvents.MaxResults: 0 is below the minimum 1",
                 id="page-size-under-min"),
    pytest.param("cloudformation", "CreateStackSet", {"StackSetName": "ok", "PermissionModel": "SELFISH"},
                 "CreateStackSet.PermissionModel: 'SELFISH' is not one of ['SELF_MANAGED', 'SERVICE_MANAGED']",
                 id="enum"),
    pytest.param("sts", "AssumeRole", {"RoleArn": "arn:aws:iam::123456789012:role/r", "RoleSessionName": "dag run!"},
                 "AssumeRole.RoleSessionName: 'dag run!' does not match the pattern", id="pattern"),
    pytest.param("sts", "AssumeRole", {"RoleArn": "arn:aws:iam::123456789012:role/r", "RoleSessionName": "s" * 65},
                 "AssumeRole.RoleSessionName: 65 characters, the model allows at most 64", id="max-length"),
    pytest.param("guardduty", "GetFindings", {"DetectorId": "d" * 32, "FindingIds": ["f"] * 51},
                 "GetFindings.FindingIds: 51 items, the model allows at most 50", id="list-max"),
])
def test_model_constraints_botocore_leaves_to_the_server_are_reported(service, operation, params, expected):
    issues = _issues(service, operation, params)
    assert any(issue.startswith(expected) for issue in issues), issues


def test_a_valid_request_has_no_issue():
    assert _issues("guardduty", "ListFindings", {"DetectorId": "d" * 32, "MaxResults": 50}) == []
    assert _issues("sts", "AssumeRole", {"RoleArn": "arn:aws:iam::123456789012:role/GovernanceReadRole",
                                         "RoleSessionName": "awsgov-collection", "ExternalId": "x" * 32}) == []


def test_calls_from_tests_are_not_checked_only_the_products():
    import boto3
    from botocore.stub import Stubber

    from tests.contract.botocore_contract import RECORDER

    client = boto3.client("guardduty", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    before = len(RECORDER.violations)
    with Stubber(client) as stub:
        stub.add_response("list_detectors", {"DetectorIds": []}, {"MaxResults": 51})
        client.list_detectors(MaxResults=51)  # a test may break the model on purpose
    assert len(RECORDER.violations) == before

"""patterns.py: the alert rules compiled into EventBridge patterns agree with the Python routing, and the templates
carry exactly the compiled pattern.

Patterns are evaluated by moto's EventBridge pattern matcher (``moto.events.models.EventPattern``, the one moto and
the sandbox use to route PutEvents), on a corpus built from the event shapes AWS documents: GuardDuty findings
(GuardDuty User Guide, "EventBridge event format for GuardDuty"), Config "Config Rules Compliance Change" (Config
Developer Guide, "Example Amazon EventBridge events for AWS Config"), Trusted Advisor "Check Item Refresh
Notification" (Trusted Advisor docs, "Monitoring Trusted Advisor check results with EventBridge"), console sign-ins
("AWS Console Sign In via CloudTrail", CloudTrail User Guide, "AWS Management Console sign-in events") and
"AWS API Call via CloudTrail" events (EventBridge User Guide, "Events from AWS services": CloudTrail).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import yaml
from moto.events.models import EventPattern

from include.awsgov.events import ingest, patterns

CFG = ingest.events_config()
MEMBER = "210987654321"
TEMPLATES = Path(__file__).resolve().parents[3] / "include" / "templates" / "cloudformation"


def _event(source: str, detail_type: str, detail: dict, n: int) -> dict:
    return {"version": "0", "id": f"ev-{n}", "detail-type": detail_type, "source": source, "account": MEMBER,
            "time": "2026-11-27T10:15:00Z", "region": "us-east-1", "resources": [], "detail": detail}


def _guardduty(severity, finding_type: str) -> tuple[str, str, dict]:
    return "aws.guardduty", "GuardDuty Finding", {
        "schemaVersion": "2.0", "accountId": MEMBER, "region": "us-east-1", "partition": "aws",
        "id": "16afba5c5c43e07c9e3e5e2e544e95df", "arn": f"arn:aws:guardduty:us-east-1:{MEMBER}:detector/x/finding/y",
        "type": finding_type, "severity": severity, "title": "EC2 instance querying a domain",
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-99999999"}},
        "service": {"serviceName": "guardduty", "count": 1}, "createdAt": "2026-11-27T10:10:00Z",
        "updatedAt": "2026-11-27T10:10:00Z"}


def _config(new: str | None, old: str | None) -> tuple[str, str, dict]:
    detail = {"resourceId": "my-bucket", "awsRegion": "us-east-1", "awsAccountId": MEMBER,
              "configRuleName": "s3-bucket-public-read-prohibited", "recordVersion": "1.0",
              "configRuleARN": f"arn:aws:config:us-east-1:{MEMBER}:config-rule/config-rule-abc",
              "messageType": "ComplianceChangeNotification", "notificationCreationTime": "2026-11-27T10:10:00Z",
              "resourceType": "AWS::S3::Bucket"}
    for key, value in (("newEvaluationResult", new), ("oldEvaluationResult", old)):
        if value is not None:
            detail[key] = {"complianceType": value, "resultRecordedTime": "2026-11-27T10:09:00Z",
                           "configRuleInvokedTime": "2026-11-27T10:08:00Z", "annotation": "x"}
    return "aws.config", "Config Rules Compliance Change", detail


def _trusted_advisor(check: str, status: str) -> tuple[str, str, dict]:
    return "aws.trustedadvisor", "Trusted Advisor Check Item Refresh Notification", {
        "check-name": check, "check-item-detail": {"Status": "Red", "Region": "us-east-1"}, "status": status,
        "resource_id": "arn:aws:ec2:us-east-1:1:security-group/sg-1", "uuid": "aa12345f-55c7-498e-b7ac-123456789012"}


def _signin(identity: str, mfa: str | None, result: str) -> tuple[str, str, dict]:
    detail = {"eventVersion": "1.08", "userIdentity": {"type": identity, "principalId": "AIDA", "accountId": MEMBER,
                                                       "arn": f"arn:aws:iam::{MEMBER}:user/alice"},
              "eventTime": "2026-11-27T10:15:00Z", "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
              "awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.1", "userAgent": "Mozilla/5.0",
              "requestParameters": None, "responseElements": {"ConsoleLogin": result},
              "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/", "MobileVersion": "No"},
              "eventID": "3fcfb586-8b42-4f2b-9b8a-1234567890ab", "eventType": "AwsConsoleSignIn"}
    if mfa is not None:
        detail["additionalEventData"]["MFAUsed"] = mfa
    return "aws.signin", "AWS Console Sign In via CloudTrail", detail


def _api(service: str, name: str, identity: str = "AssumedRole", error: str | None = None) -> tuple[str, str, dict]:
    detail = {"eventVersion": "1.08", "userIdentity": {"type": identity, "principalId": "AROA:alice",
                                                       "arn": f"arn:aws:sts::{MEMBER}:assumed-role/dev/alice"},
              "eventTime": "2026-11-27T10:15:00Z", "eventSource": f"{service}.amazonaws.com", "eventName": name,
              "awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.1", "userAgent": "aws-cli/2",
              "requestParameters": {"userName": "bob", "name": "trail-1"}, "responseElements": None,
              "eventID": "0b1c2d3e", "eventType": "AwsApiCall", "managementEvent": True}
    if error:
        detail["errorCode"] = error
    return f"aws.{service}", ingest.API_CALL, detail


def _create_account_result(state: str) -> tuple[str, str, dict]:
    """Organizations' CreateAccountResult (Organizations User Guide, "Logging AWS Organizations API calls with AWS
    CloudTrail": a service event, eventType AwsServiceEvent, serviceEventDetails.createAccountStatus)."""
    status = {"id": "car-0123456789abcdef", "state": state, "accountName": "****",
              "requestedTimestamp": "Nov 27, 2026 10:14:00 AM", "completedTimestamp": "Nov 27, 2026 10:15:00 AM"}
    status.update({"accountId": "123456789012"} if state == "SUCCEEDED" else {"failureReason": "EMAIL_ALREADY_EXISTS"})
    return "aws.organizations", "AWS Service Event via CloudTrail", {
        "eventVersion": "1.08", "userIdentity": {"accountId": MEMBER, "invokedBy": "AWS Internal"},
        "eventTime": "2026-11-27T10:15:00Z", "eventSource": "organizations.amazonaws.com",
        "eventName": "CreateAccountResult", "awsRegion": "us-east-1", "sourceIPAddress": "AWS Internal",
        "userAgent": "AWS Internal", "requestParameters": None, "responseElements": None, "eventID": "5f1e",
        "readOnly": False, "eventType": "AwsServiceEvent", "managementEvent": True,
        "serviceEventDetails": {"createAccountStatus": status}}


def corpus() -> list[dict]:
    shapes = (
        [_guardduty(s, t) for s, t in itertools.product(
            [1.0, 4.0, 5.5, 6.9, 7.0, 8.0, 8.9],
            ["Recon:EC2/PortProbeUnprotectedPort", "CryptoCurrency:EC2/BitcoinTool.B!DNS"])]
        + [_config(n, o) for n, o in itertools.product(
            ["NON_COMPLIANT", "COMPLIANT", "NOT_APPLICABLE", "INSUFFICIENT_DATA", None],
            ["NON_COMPLIANT", "COMPLIANT", "NOT_APPLICABLE", None])]
        + [_trusted_advisor(c, s) for c, s in itertools.product(
            ["Exposed Access Keys", "Security Groups - Unrestricted Access", "Low Utilization Amazon EC2 Instances",
             "Service Limits"], ["ERROR", "WARN", "OK"])]
        + [_signin(i, m, r) for i, m, r in itertools.product(
            ["Root", "IAMUser", "AssumedRole", "FederatedUser"], ["Yes", "No", None], ["Success", "Failure"])]
        + [_api(s, n, i) for (s, n), i in itertools.product(
            [("iam", "CreateUser"), ("iam", "AttachUserPolicy"), ("iam", "DeleteUser"), ("cloudtrail", "StopLogging"),
             ("cloudtrail", "DeleteTrail"), ("cloudtrail", "StartLogging"), ("ec2", "RunInstances"),
             ("ec2", "AuthorizeSecurityGroupIngress"), ("s3", "PutBucketPolicy"), ("kms", "ScheduleKeyDeletion"),
             ("signin", "ConsoleLogin")], ["AssumedRole", "Root", "IAMUser"])]
        + [_api("iam", "CreateUser", error="AccessDenied")]
        + [_create_account_result(state) for state in ("SUCCEEDED", "FAILED")]
        + [_api("organizations", n) for n in ("MoveAccount", "CreateAccount", "TagResource")]
        + [("aws.health", "AWS Health Event", {"service": "EC2"}), ("custom.app", "Order Placed", {"id": 1}),
           ("aws.s3", "Object Created", {"bucket": {"name": "b"}}), ("aws.iam", "Unknown Kind", {})]
    )
    return [_event(source, detail_type, detail, n) for n, (source, detail_type, detail) in enumerate(shapes)]


@pytest.fixture(scope="module")
def matcher() -> EventPattern:
    return EventPattern.load(json.dumps(patterns.compile_pattern(CFG)))


def test_the_pattern_and_the_python_routing_agree_on_every_event_of_the_corpus(matcher):
    events = corpus()
    disagree = [(e["source"], e["detail-type"], e["detail"]) for e in events
                if matcher.matches_event(e) != patterns.is_candidate({"MessageId": e["id"], "Body": json.dumps(e)},
                                                                     CFG)]
    assert disagree == []
    # The corpus exercises both sides: every rule has a candidate, and most events are filtered out at the bus.
    candidates = [e for e in events if matcher.matches_event(e)]
    assert 10 <= len(candidates) <= len(events) // 2
    routed = {rule["id"] for e in candidates
              for rule in ingest.route(ingest.normalise(e, CFG), admin_account_id="", environment="prod",
                                       rules=CFG["alerts"]["rules"])}
    assert routed == {rule["id"] for rule in CFG["alerts"]["rules"]}


def test_the_pattern_keeps_sources_the_dag_does_not_know_off_the_queue(matcher):
    for source in ("custom.app", "aws.health", "aws.ec2x", "aws"):
        event = _event(source, ingest.API_CALL, _api("cloudtrail", "StopLogging")[2], 0)
        assert not matcher.matches_event(event)


def test_a_rule_the_compiler_cannot_express_is_refused():
    cfg = {**CFG, "alerts": {**CFG["alerts"], "rules": [{"id": "r", "title": "t", "severity": "high",
                                                        "match": {"type": "iam:*User"}}]}}
    with pytest.raises(patterns.PatternError, match="glob"):
        patterns.compile_pattern(cfg)


class _Loader(yaml.SafeLoader):
    """CloudFormation's short tags (!Ref, !Sub...) read as plain values."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: (
    loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else
    loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode) else
    loader.construct_mapping(node, deep=True)))


@pytest.mark.parametrize(("template", "resource"), [
    pytest.param("central.yaml", "EventsToQueueRule", id="central-queue-rule"),
    pytest.param("baseline.yaml", "ForwardRule", id="member-forwarding-rule"),
])
def test_templates_carry_the_compiled_pattern(template, resource):
    body = yaml.load((TEMPLATES / template).read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    assert body["Resources"][resource]["Properties"]["EventPattern"] == patterns.compile_pattern(CFG), (
        f"regenerate: .venv/bin/python -m include.awsgov.events.patterns {template}")

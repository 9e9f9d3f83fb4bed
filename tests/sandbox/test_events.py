"""EventBridge as AWS delivers it: forwarding keeps the event's envelope, bus and queue policies are enforced."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from sandbox.events.models import bus_policy_allows, queue_policy_allows

CENTRAL = "governance-central"
BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-bus/governance-central"


@pytest.fixture
def central_queue(sb):
    """A queue fed by a rule on the central bus matching only this test's events (marker in the detail)."""
    marker = uuid.uuid4().hex
    sqs, events = sb.client("sqs"), sb.client("events")
    url = sqs.create_queue(QueueName=f"test-{marker[:12]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule_arn = events.put_rule(Name=f"test-{marker[:12]}", EventBusName=CENTRAL,
                               EventPattern=json.dumps({"detail": {"marker": [marker]}}))["RuleArn"]
    events.put_targets(Rule=f"test-{marker[:12]}", EventBusName=CENTRAL, Targets=[{"Id": "q", "Arn": queue_arn}])
    yield {"url": url, "queue_arn": queue_arn, "rule_arn": rule_arn, "marker": marker}
    events.remove_targets(Rule=f"test-{marker[:12]}", EventBusName=CENTRAL, Ids=["q"])
    events.delete_rule(Name=f"test-{marker[:12]}", EventBusName=CENTRAL)
    sqs.delete_queue(QueueUrl=url)


def _allow(sb, queue, source_arn: str) -> None:
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue["queue_arn"], "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}}}]}
    sb.client("sqs").set_queue_attributes(QueueUrl=queue["url"], Attributes={"Policy": json.dumps(policy)})


def _forward(sb, account: str, marker: str) -> str:
    """A GuardDuty finding put in a member account: its forwarding rule sends it to the central bus."""
    entry = {"Source": "aws.guardduty", "DetailType": "GuardDuty Finding", "Time": dt.datetime(2026, 11, 20, 8, 30),
             "Detail": json.dumps({"marker": marker, "severity": 8}), "Resources": ["arn:aws:ec2:::instance/i-1"]}
    return sb.client("events", account_id=account).put_events(Entries=[entry])["Entries"][0]["EventId"]


def _bodies(sb, url: str) -> list[dict]:
    got = sb.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def test_forwarded_event_keeps_its_envelope(sb, members, central_queue):
    _allow(sb, central_queue, central_queue["rule_arn"])
    account = members["onboarded"][0]
    event_id = _forward(sb, account, central_queue["marker"])
    [body] = _bodies(sb, central_queue["url"])
    assert {k: body[k] for k in ("id", "account", "region", "time", "resources", "source", "detail-type")} == {
        "id": event_id, "account": account, "region": "us-east-1", "time": "2026-11-20T08:30:00Z",
        "resources": ["arn:aws:ec2:::instance/i-1"], "source": "aws.guardduty", "detail-type": "GuardDuty Finding"}


def test_queue_without_a_policy_for_the_rule_gets_nothing(sb, members, central_queue):
    _forward(sb, members["onboarded"][0], central_queue["marker"])
    assert _bodies(sb, central_queue["url"]) == []  # no policy at all
    _allow(sb, central_queue, central_queue["rule_arn"] + "-other")
    _forward(sb, members["onboarded"][0], central_queue["marker"])
    assert _bodies(sb, central_queue["url"]) == []  # a policy for another rule


def test_bus_without_a_policy_refuses_other_accounts(sb, members):
    sender, receiver = members["onboarded"][0], members["onboarded"][1]
    marker = uuid.uuid4().hex
    receiving = sb.client("events", account_id=receiver)
    receiving.create_event_bus(Name=f"b-{marker[:8]}")
    sqs = sb.client("sqs", account_id=receiver)
    url = sqs.create_queue(QueueName=f"q-{marker[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule_arn = receiving.put_rule(Name="r", EventBusName=f"b-{marker[:8]}", EventPattern=json.dumps(
        {"detail": {"marker": [marker]}}))["RuleArn"]
    receiving.put_targets(Rule="r", EventBusName=f"b-{marker[:8]}", Targets=[{"Id": "q", "Arn": queue_arn}])
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]})})
    entry = {"Source": "aws.test", "DetailType": "t", "Detail": json.dumps({"marker": marker}),
             "EventBusName": f"arn:aws:events:us-east-1:{receiver}:event-bus/b-{marker[:8]}"}
    sb.client("events", account_id=sender).put_events(Entries=[entry])
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    receiving.put_events(Entries=[{**entry, "EventBusName": f"b-{marker[:8]}"}])  # same account: no policy needed
    assert len(sqs.receive_message(QueueUrl=url)["Messages"]) == 1


@pytest.mark.parametrize(("statement", "sender", "allowed"), [
    pytest.param({"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-x"}}}, "111122223333",
                 False, id="org-condition-outsider"),
    pytest.param({"Principal": {"AWS": "arn:aws:iam::111122223333:root"}}, "111122223333", True, id="account"),
    pytest.param({"Principal": {"AWS": ["444455556666"]}}, "111122223333", False, id="other-account"),
    pytest.param({"Principal": "*", "Condition": {"StringEquals": {"aws:SourceVpc": "v"}}}, "111122223333", False,
                 id="unknown-condition-denies"),
])
def test_bus_policy_statements(statement, sender, allowed):
    policy = json.dumps({"Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": BUS_ARN,
                                        **statement}]})
    assert bus_policy_allows(policy, sender, BUS_ARN) is allowed


def test_queue_policy_needs_the_events_service_and_the_rule():
    queue = "arn:aws:sqs:us-east-1:1:q"
    rule = "arn:aws:events:us-east-1:1:rule/bus/r"
    base = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule}}}
    assert queue_policy_allows(json.dumps({"Statement": [{**base, "Principal": {"Service": "events.amazonaws.com"}}]}),
                               rule, queue)
    assert not queue_policy_allows(json.dumps({"Statement": [{**base, "Principal": {"Service": "sns.amazonaws.com"}}]}),
                                   rule, queue)
    assert not queue_policy_allows(None, rule, queue)


def test_central_bus_takes_only_the_forwarding_roles_puts(sb, members, central_queue):
    """The central bus admits the organization's accounts acting as the baseline's forwarding role (issue #19 item
    8): a member account's forwarding rule gets through, a direct PutEvents by the same account does not."""
    _allow(sb, central_queue, central_queue["rule_arn"])
    account = members["onboarded"][0]
    direct = {"Source": "aws.guardduty", "DetailType": "GuardDuty Finding", "EventBusName": BUS_ARN,
              "Detail": json.dumps({"marker": central_queue["marker"], "severity": 8})}
    sb.client("events", account_id=account).put_events(Entries=[direct])
    assert _bodies(sb, central_queue["url"]) == []
    event_id = _forward(sb, account, central_queue["marker"])
    assert [b["id"] for b in _bodies(sb, central_queue["url"])] == [event_id]


@pytest.mark.parametrize(("principal_arn", "allowed"), [
    pytest.param("arn:aws:iam::111122223333:role/governance-events-forward", True, id="forwarding-role"),
    pytest.param("arn:aws:iam::111122223333:role/admin", False, id="other-role"),
    pytest.param(None, False, id="direct-put"),
])
def test_bus_policy_principal_arn(principal_arn, allowed, monkeypatch):
    import sandbox.events.models as models

    monkeypatch.setattr(models, "_org_of", lambda account: "o-x")
    condition = {"StringEquals": {"aws:PrincipalOrgID": "o-x"},
                 "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/governance-events-forward"}}
    policy = json.dumps({"Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": BUS_ARN,
                                        "Principal": "*", "Condition": condition}]})
    assert bus_policy_allows(policy, "111122223333", BUS_ARN, principal_arn) is allowed


# --- target input (Input, InputPath, InputTransformer) ---------------------------------------------------------------
class _Rule:
    arn = "arn:aws:events:us-east-1:123456789012:rule/governance-central/wake"
    name = "wake"


EVENT = {"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "EC2 Instance State-change "
         "Notification", "source": "aws.ec2", "account": "123456789012", "time": "2015-11-11T21:29:54Z",
         "region": "us-east-1", "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
         "detail": {"instance-id": "i-0123456789", "state": "RUNNING", "count": 3}}


@pytest.mark.parametrize(("target", "body"), [
    pytest.param({}, json.dumps(EVENT), id="whole-event"),
    pytest.param({"Input": '{"fixed": true}'}, '{"fixed": true}', id="input"),
    pytest.param({"InputPath": "$.detail.state"}, '"RUNNING"', id="input-path"),
    pytest.param({"InputTransformer": {"InputPathsMap": {"id": "$.id"}, "InputTemplate": '{"wake": <id>}'}},
                 '{"wake": "7bf73129-1428-4cd3-a780-95db273d1602"}', id="central-stack-wake"),
    pytest.param({"InputTransformer": {"InputPathsMap": {"i": "$.detail.instance-id", "s": "$.detail.state"},
                                       "InputTemplate": "<i> is in state <s>"}},
                 "i-0123456789 is in state RUNNING", id="text-template"),
    pytest.param({"InputTransformer": {"InputPathsMap": {"i": "$.detail.instance-id", "s": "$.detail.state"},
                                       "InputTemplate": '{"myInstance": <i>,"myStatus": "<i> is in state \\"<s>\\""}'}},
                 '{"myInstance": "i-0123456789","myStatus": "i-0123456789 is in state \\"RUNNING\\""}',
                 id="json-template-in-and-out-of-quotes"),
    pytest.param({"InputTransformer": {"InputPathsMap": {"n": "$.detail.count", "r": "$.resources[0]"},
                                       "InputTemplate": '{"n": <n>, "r": "<r>", "rule": <aws.events.rule-name>}'}},
                 '{"n": 3, "r": "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111", "rule": "wake"}',
                 id="number-array-index-predefined"),
    pytest.param({"InputTransformer": {"InputPathsMap": {"x": "$.detail.absent"}, "InputTemplate": "x=<x>."}},
                 "x=.", id="absent-path-disappears"),
])
def test_target_input(target, body):
    from sandbox.events.models import target_input

    assert target_input(EVENT, _Rule(), target) == body


def test_the_central_stacks_wake_queue_gets_the_event_id_only(sb, members):
    """The central stack's wake target (InputTransformer {"wake": <id>}) puts no event body in the wake queue."""
    from scripts.check_event_watcher import deploy_central

    outputs = deploy_central(sb)
    sqs = sb.client("sqs")
    wake_url = outputs["EventsQueueUrl"] + "-wake"
    sqs.purge_queue(QueueUrl=wake_url)
    detail = {"eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
              "requestParameters": {"userName": f"wake-{uuid.uuid4().hex[:8]}"},
              "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/ci/test"}}
    event_id = sb.client("events", account_id=members["onboarded"][0]).put_events(Entries=[
        {"Source": "aws.iam", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(detail)}],
    )["Entries"][0]["EventId"]
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=wake_url, MaxNumberOfMessages=10).get("Messages", [])]
    assert bodies == [json.dumps({"wake": event_id})]

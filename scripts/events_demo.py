"""Events for `make demo`: put in member accounts of the sandbox, they travel forwarding rule -> central bus ->
central rule -> SQS like on AWS, for governance_events to store, route and count.

A few of each kind the DAG alerts on at once (root sign-in, console sign-in without MFA, high GuardDuty finding,
Config rule turning NON_COMPLIANT in a prod account, red Trusted Advisor security check, trail stopped, IAM user
created in a member account), some that only go to the weekly report, four days of ordinary IAM activity with a
burst at the end, and one poison message. The buses forward only alert candidates (events/patterns.py), so the
ordinary API calls stop at the member bus, as on AWS; account activity is counted from the trail files in the central
bucket instead (events/activity.py).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any


def _entry(source: str, detail_type: str, detail: dict, when: dt.datetime) -> dict[str, Any]:
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "Time": when}


def _api(service: str, name: str, params: dict, when: dt.datetime, actor: str = "deployer") -> dict[str, Any]:
    detail = {"eventSource": f"{service}.amazonaws.com", "eventName": name, "requestParameters": params,
              "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::000000000000:assumed-role/{actor}/ci"}}
    return _entry(f"aws.{service}", "AWS API Call via CloudTrail", detail, when)


def entries(week_start: dt.datetime, prod: bool) -> list[dict[str, Any]]:
    """One member account's events in the week starting ``week_start`` (a Monday, UTC)."""
    t = week_start + dt.timedelta(days=1, hours=9)
    out = [
        _entry("aws.signin", "AWS Console Sign In via CloudTrail",
               {"eventName": "ConsoleLogin", "userIdentity": {"type": "Root", "arn": "arn:aws:iam::1:root"},
                "additionalEventData": {"MFAUsed": "No"}, "responseElements": {"ConsoleLogin": "Success"}}, t),
        _entry("aws.guardduty", "GuardDuty Finding",
               {"id": "gd-1", "type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": 8.0,
                "title": "<b>SSH brute force</b> against i-0abc",
                "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0abc"}}},
               t + dt.timedelta(hours=2)),
        _entry("aws.guardduty", "GuardDuty Finding",
               {"id": "gd-2", "type": "Recon:EC2/PortProbeUnprotectedPort", "severity": 2.0,
                "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0def"}}},
               t + dt.timedelta(hours=3)),
        _entry("aws.config", "Config Rules Compliance Change",
               {"configRuleName": "s3-bucket-public-read-prohibited", "resourceType": "AWS::S3::Bucket",
                "resourceId": "customer-exports", "newEvaluationResult": {"complianceType": "NON_COMPLIANT"},
                "oldEvaluationResult": {"complianceType": "COMPLIANT"}}, t + dt.timedelta(days=1)),
        _entry("aws.trustedadvisor", "Trusted Advisor Check Item Refresh Notification",
               {"check-name": "Security Groups - Specific Ports Unrestricted", "status": "ERROR",
                "resource_id": "sg-0123"}, t + dt.timedelta(days=1, hours=1)),
        _api("cloudtrail", "StopLogging", {"name": "governance-trail"}, t + dt.timedelta(days=2)),
        _api("iam", "CreateUser", {"userName": "<script>alert('svc')</script>"}, t + dt.timedelta(days=2, hours=1)),
        _api("ec2", "AuthorizeSecurityGroupIngress", {"groupId": "sg-0123"}, t + dt.timedelta(days=2, hours=2)),
        _api("ec2", "RevokeSecurityGroupIngress", {"groupId": "sg-0123"}, t + dt.timedelta(days=2, hours=3)),
    ]
    if not prod:
        out = [e for e in out if e["Source"] != "aws.config"]
    return out


def activity(week_start: dt.datetime) -> list[dict[str, Any]]:
    """Four days of 0-2 IAM calls an hour, then 40 in one hour: a burst for the anomaly detector."""
    out = []
    for hour in range(4 * 24):
        when = week_start + dt.timedelta(hours=hour, minutes=10)
        out += [_api("iam", "AttachRolePolicy", {"roleName": f"app-{hour}"}, when) for _ in range((hour * 7) % 3)]
    burst = week_start + dt.timedelta(days=4, hours=1)
    out += [_api("iam", "AttachRolePolicy", {"roleName": f"burst-{k}"}, burst + dt.timedelta(minutes=k), "intruder")
            for k in range(40)]
    return out


def publish(sb: Any, week_start: dt.datetime) -> int:
    """Put the demo events in three member accounts (and one poison message on the queue); returns how many."""
    members = [a for a in sb.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    prod = [a for a in members if a["tags"].get("Environment") == "prod"][:1]
    chosen = prod + [a for a in members if a not in prod][:2]
    count = 0
    for i, account in enumerate(chosen):
        batch = entries(week_start, account in prod) + (activity(week_start) if i == 0 else [])
        client = sb.client("events", account_id=account["id"])
        for k in range(0, len(batch), 10):
            client.put_events(Entries=batch[k:k + 10])
        count += len(batch)
    sqs = sb.client("sqs")
    url = sqs.get_queue_url(QueueName="governance-events")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"truncated": ')
    return count + 1

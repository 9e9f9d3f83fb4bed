"""The call counter: every AWS call per (account, service, action); reset; nothing counted when nothing called."""

from __future__ import annotations


def _count(calls, account, service, action):
    return sum(r["count"] for r in calls["calls"] if (r["account"], r["service"], r["action"]) == (account, service,
                                                                                                   action))


def test_counts_per_account_service_action(sb, members):
    account = members["onboarded"][0]
    org = sb.client("organizations")
    org.list_roots()
    org.list_roots()
    member_config = sb.client("config", account_id=account, region="eu-west-1")
    member_config.describe_config_rules()

    calls = sb.calls()

    mgmt = sb.info["management_account_id"]
    assert _count(calls, mgmt, "organizations", "ListRoots") == 2
    assert _count(calls, mgmt, "sts", "AssumeRole") == 1
    assert _count(calls, account, "config", "DescribeConfigRules") == 1
    assert calls["total"] == 4


def test_rest_calls_are_named_by_operation(sb):
    s3 = sb.client("s3")
    s3.list_objects_v2(Bucket=sb.info["central_bucket"])
    s3.put_object(Bucket=sb.info["central_bucket"], Key="x/y.txt", Body=b"1")
    actions = {r["action"] for r in sb.calls()["calls"] if r["service"] == "s3"}
    assert actions == {"ListObjectsV2", "PutObject"}


def test_reset_and_zero(sb):
    sb.client("sts").get_caller_identity()
    assert sb.calls()["total"] == 1
    sb.reset_calls()
    assert sb.calls() == {"total": 0, "throttled": 0, "calls": []}

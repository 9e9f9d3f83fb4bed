"""The seeded organization, read through boto3 as the product reads it."""

from __future__ import annotations

from sandbox.seed import plan_organization
from sandbox.settings import SandboxSettings


def test_accounts_listed_with_status_and_ous(sb, members):
    org = sb.client("organizations")
    accounts = [a for page in org.get_paginator("list_accounts").paginate() for a in page["Accounts"]]
    by_id = {a["Id"]: a for a in accounts}

    assert set(members["all"]) | {"123456789012"} == set(by_id)
    assert [by_id[a]["Status"] for a in members["suspended"]] == ["SUSPENDED"]
    roots = org.list_roots()["Roots"]
    ous = org.list_organizational_units_for_parent(ParentId=roots[0]["Id"])["OrganizationalUnits"]
    assert sorted(o["Name"] for o in ous) == ["Dev", "Prod", "Sandbox"]


def test_tags_match_ou_and_carry_hostile_values(sb):
    org = sb.client("organizations")
    values = []
    for account in sb.info["accounts"]:
        tags = {t["Key"]: t["Value"] for t in org.list_tags_for_resource(ResourceId=account["id"])["Tags"]}
        assert tags["Environment"] == {"Prod": "prod", "Dev": "dev", "Sandbox": "sandbox"}[account["ou"]]
        parents = org.list_parents(ChildId=account["id"])["Parents"]
        assert parents[0]["Id"] == account["ou_id"]
        values += list(tags.values()) + [account["name"]]
    text = "\n".join(values)
    assert "<script>alert(1)</script>" in text
    assert '"' in text and "'" in text and "日本語" in text
    assert any(len(v) == 256 for v in values)
    assert any("\n" in v for v in values)


def test_some_owners_own_several_accounts(sb):
    owners = [a["tags"]["Owner"] for a in sb.info["accounts"]]
    assert len(set(owners)) < len(owners)


def test_plan_is_deterministic_and_matches_server(sb):
    plan = plan_organization(SandboxSettings(accounts=12))
    assert [a.id for a in plan.accounts] == sb.info["member_account_ids"]
    assert plan_organization(SandboxSettings(accounts=12, seed=8)).accounts[0].id != plan.accounts[0].id


def test_central_resources_exist(sb):
    info = sb.info
    assert info["central_bucket"] in [b["Name"] for b in sb.client("s3").list_buckets()["Buckets"]]
    assert info["central_event_bus"] in [b["Name"] for b in sb.client("events").list_event_buses()["EventBuses"]]
    ses = sb.client("ses")
    assert {info["ses_sender"], "example.com"} <= set(ses.list_identities()["Identities"])
    aggregators = sb.client("config").describe_configuration_aggregators()["ConfigurationAggregators"]
    assert [a["ConfigurationAggregatorName"] for a in aggregators] == [info["config_aggregator"]]


def test_any_example_com_sender_can_send(sb):
    ses = sb.client("ses")
    ses.send_email(Source="reports@example.com", Destination={"ToAddresses": ["o'connor@example.com"]},
                   Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}})

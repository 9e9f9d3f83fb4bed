"""AWS Config rule compliance per account and region, the organization aggregator, pagination; equal to the truth."""

from __future__ import annotations

import datetime as dt
import re

import botocore.exceptions
import pytest


def plain(evaluation):
    q = evaluation["EvaluationResultIdentifier"]["EvaluationResultQualifier"]
    return {
        "resource_type": q["ResourceType"],
        "resource_id": q["ResourceId"],
        "compliance": evaluation["ComplianceType"],
        "annotation": evaluation.get("Annotation"),
        "ordering_timestamp": evaluation["EvaluationResultIdentifier"]["OrderingTimestamp"].astimezone(dt.UTC)
        .isoformat(),
    }


def rule_summary(evaluations):
    nc = sum(e["compliance"] == "NON_COMPLIANT" for e in evaluations)
    if nc:
        return "NON_COMPLIANT", nc
    if any(e["compliance"] == "COMPLIANT" for e in evaluations):
        return "COMPLIANT", None
    return "INSUFFICIENT_DATA", None


@pytest.fixture(scope="module")
def config_truth(sandbox):
    return sandbox.truth(sections=["config"])["config"]


def test_rules_are_registered_in_moto(sb, members):
    us = sb.client("config", account_id=members["onboarded"][0])
    eu = sb.client("config", account_id=members["onboarded"][0], region="eu-west-1")
    us_rules = {r["ConfigRuleName"] for r in us.describe_config_rules()["ConfigRules"]}
    eu_rules = {r["ConfigRuleName"] for r in eu.describe_config_rules()["ConfigRules"]}
    assert {"root-account-mfa-enabled", "iam-password-policy", "s3-bucket-public-read-prohibited"} <= us_rules
    assert us_rules - eu_rules == {"root-account-mfa-enabled", "iam-password-policy"}


def test_compliance_by_rule_per_account_and_region_equals_truth(sb, members, config_truth):
    answers = {}
    for account in members["onboarded"][:2]:
        for region in ("us-east-1", "ap-northeast-1"):
            client = sb.client("config", account_id=account, region=region)
            pages = client.get_paginator("describe_compliance_by_config_rule").paginate()
            rows = [r for p in pages for r in p["ComplianceByConfigRules"]]
            got = {r["ConfigRuleName"]: (r["Compliance"]["ComplianceType"],
                                         r["Compliance"].get("ComplianceContributorCount", {}).get("CappedCount"))
                   for r in rows}
            expected = {rule: rule_summary(evs) for rule, evs in config_truth[account][region].items()}
            assert got == expected
            answers[(account, region)] = got
    assert len({tuple(sorted(a.items())) for a in answers.values()}) == len(answers)


def test_details_paginate_and_equal_truth(sb, members, config_truth):
    account = members["onboarded"][1]
    client = sb.client("config", account_id=account, region="eu-west-1")
    for rule, expected in config_truth[account]["eu-west-1"].items():
        pages = list(client.get_paginator("get_compliance_details_by_config_rule").paginate(
            ConfigRuleName=rule, PaginationConfig={"PageSize": 2}))
        got = [plain(e) for p in pages for e in p["EvaluationResults"]]
        assert got == expected
        assert all(len(p["EvaluationResults"]) <= 2 for p in pages)
    nc = client.get_compliance_details_by_config_rule(ConfigRuleName="encrypted-volumes",
                                                      ComplianceTypes=["NON_COMPLIANT"], Limit=100)
    assert [plain(e) for e in nc["EvaluationResults"]] == [
        e for e in config_truth[account]["eu-west-1"]["encrypted-volumes"] if e["compliance"] == "NON_COMPLIANT"]


def test_compliance_by_resource_pagination(sb, members, config_truth):
    account = members["onboarded"][0]
    client = sb.client("config", account_id=account)
    first = client.describe_compliance_by_resource(Limit=3)
    assert len(first["ComplianceByResources"]) == 3 and first["NextToken"]
    rows = list(first["ComplianceByResources"])
    token = first["NextToken"]
    while token:
        page = client.describe_compliance_by_resource(Limit=3, NextToken=token)
        rows += page["ComplianceByResources"]
        token = page.get("NextToken")
    expected = {(e["resource_type"], e["resource_id"]) for evs in config_truth[account]["us-east-1"].values()
                for e in evs}
    assert {(r["ResourceType"], r["ResourceId"]) for r in rows} == expected
    volumes = client.describe_compliance_by_resource(ResourceType="AWS::EC2::Volume", Limit=100)
    assert {r["ResourceType"] for r in volumes["ComplianceByResources"]} == {"AWS::EC2::Volume"}


def test_bad_tokens_and_limits_are_refused(sb, members):
    client = sb.client("config", account_id=members["onboarded"][0])
    token = client.describe_compliance_by_resource(Limit=1)["NextToken"]
    for kwargs in ({"NextToken": "garbage"}, {"NextToken": token, "ResourceType": "AWS::EC2::Volume"}):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            client.describe_compliance_by_resource(Limit=1, **kwargs)
        assert err.value.response["Error"]["Code"] == "InvalidNextTokenException"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.get_compliance_details_by_config_rule(ConfigRuleName="no-such-rule")
    assert err.value.response["Error"]["Code"] == "NoSuchConfigRuleException"


def test_evaluations_change_fix_and_reopen_over_days(sb, members):
    account = members["onboarded"][0]
    history: dict[tuple, str] = {}
    start = dt.date(2026, 11, 1)
    for k in range(21):
        day = (start + dt.timedelta(days=k)).isoformat()
        cfg = sb.truth(date=day, sections=["config"], accounts=[account])["config"][account]
        for region, rules in cfg.items():
            for rule, evs in rules.items():
                for e in evs:
                    state = {"NON_COMPLIANT": "N", "COMPLIANT": "C"}.get(e["compliance"], "-")
                    key = (region, rule, e["resource_id"])
                    history[key] = history.get(key, "") + state
    flips = [k for k, states in history.items() if len(set(states)) > 1]
    reopened = [k for k, states in history.items() if re.search("N+C+N", states)]
    assert len(flips) > 5
    assert reopened


def test_served_evaluations_follow_the_sandbox_date(sb, members):
    account = members["onboarded"][0]
    client = sb.client("config", account_id=account)
    by_day = {}
    for day in ("2026-11-10", "2026-11-17"):
        sb.set_date(day)
        by_day[day] = [plain(e) for e in client.get_compliance_details_by_config_rule(
            ConfigRuleName="ec2-instance-no-public-ip", Limit=100)["EvaluationResults"]]
        truth = sb.truth(date=day, sections=["config"], accounts=[account])["config"][account]
        assert by_day[day] == truth["us-east-1"]["ec2-instance-no-public-ip"]
    assert by_day["2026-11-10"] != by_day["2026-11-17"]


def test_hostile_ids_and_annotations_present(config_truth):
    evs = [e for regions in config_truth.values() for rules in regions.values() for es in rules.values() for e in es]
    assert any("<script>" in e["resource_id"] or "\n" in e["resource_id"] for e in evs)
    assert any(e["annotation"] and ("<script>" in e["annotation"] or '"' in e["annotation"]) for e in evs)


def test_aggregator_covers_member_accounts_with_filters(sb, members, config_truth):
    client = sb.client("config")
    name = sb.info["config_aggregator"]
    pages = client.get_paginator("describe_aggregate_compliance_by_config_rules").paginate(
        ConfigurationAggregatorName=name, PaginationConfig={"PageSize": 50})
    rows = [r for p in pages for r in p["AggregateComplianceByConfigRules"]]
    expected = {(a, reg, rule): rule_summary(evs)[0] for a, regions in config_truth.items()
                for reg, rules in regions.items() for rule, evs in rules.items()}
    assert {(r["AccountId"], r["AwsRegion"], r["ConfigRuleName"]): r["Compliance"]["ComplianceType"]
            for r in rows} == expected
    assert {r["AccountId"] for r in rows} == set(members["onboarded"])

    account = members["onboarded"][1]
    filtered = client.describe_aggregate_compliance_by_config_rules(
        ConfigurationAggregatorName=name,
        Filters={"AccountId": account, "AwsRegion": "eu-west-1", "ComplianceType": "NON_COMPLIANT"})
    got = {(r["AccountId"], r["AwsRegion"], r["ConfigRuleName"]) for r in filtered["AggregateComplianceByConfigRules"]}
    assert got == {k for k, v in expected.items() if k[0] == account and k[1] == "eu-west-1" and v == "NON_COMPLIANT"}


def test_aggregate_details_equal_truth(sb, members, config_truth):
    client = sb.client("config")
    account = members["onboarded"][2]
    rows = [r for p in client.get_paginator("get_aggregate_compliance_details_by_config_rule").paginate(
        ConfigurationAggregatorName=sb.info["config_aggregator"], ConfigRuleName="s3-bucket-public-read-prohibited",
        AccountId=account, AwsRegion="ap-northeast-1", PaginationConfig={"PageSize": 1})
        for r in p["AggregateEvaluationResults"]]
    expected = [e for e in config_truth[account]["ap-northeast-1"]["s3-bucket-public-read-prohibited"]
                if e["compliance"] != "NOT_APPLICABLE"]
    assert [plain(r) for r in rows] == expected
    assert {(r["AccountId"], r["AwsRegion"]) for r in rows} <= {(account, "ap-northeast-1")}


def test_unknown_aggregator(sb):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sb.client("config").describe_aggregate_compliance_by_config_rules(ConfigurationAggregatorName="nope")
    assert err.value.response["Error"]["Code"] == "NoSuchConfigurationAggregatorException"

"""``--profile realistic``: 100-300 Config rules per account and region over hundreds of resources, Trusted
Advisor results of several ages, aggregator sources in every state, a delegated GuardDuty/Macie administrator with
members in every relationship state."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path

import botocore.exceptions
import pytest

from sandbox.runner import Sandbox

TEST_DATE = "2026-11-23"
REALISTIC = json.loads((Path(__file__).resolve().parents[2] / "sandbox" / "resources" / "realistic.json").read_text())


@pytest.fixture(scope="module")
def rsb():
    """A realistic sandbox of 14 accounts (11 onboarded and active: enough members for every relationship state)."""
    sb = Sandbox(accounts=14, port=0, date=TEST_DATE, profile="realistic", time_scale=0.2).start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture(scope="module")
def onboarded(rsb):
    return [a["id"] for a in rsb.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_every_account_has_100_to_300_config_rules(rsb, onboarded, region):
    counts = []
    for account in onboarded[:3]:
        config = rsb.client("config", account_id=account, region=region, retries=8)
        names = [r["ConfigRuleName"] for page in config.get_paginator("describe_config_rules").paginate()
                 for r in page["ConfigRules"]]
        counts.append(len(names))
        assert any(n.startswith("securityhub-") for n in names)
    assert all(100 <= n <= 300 for n in counts), counts


def test_an_account_holds_hundreds_of_resources(rsb, onboarded):
    resources = set()
    for region in rsb.info["regions"]:
        config = rsb.client("config", account_id=onboarded[0], region=region, retries=8)
        for page in config.get_paginator("describe_compliance_by_resource").paginate():
            resources |= {(region, r["ResourceType"], r["ResourceId"]) for r in page["ComplianceByResources"]}
    assert len(resources) >= 200


def test_trusted_advisor_results_have_several_ages(rsb, onboarded):
    support = rsb.client("support", account_id=onboarded[1], retries=8)
    checks = {c["id"] for c in support.describe_trusted_advisor_checks(language="en")["checks"]}
    seeded = set(rsb.truth(sections=["trusted_advisor"])["trusted_advisor"]["checks"])
    summaries = support.describe_trusted_advisor_check_summaries(checkIds=sorted(checks & seeded))["summaries"]
    days = Counter(s["timestamp"][:10] for s in summaries)
    assert TEST_DATE in days
    assert len(days) >= 3
    assert min(days) >= str(dt.date.fromisoformat(TEST_DATE) - dt.timedelta(days=REALISTIC["trusted_advisor"][
        "max_age_days"]))


def test_auto_refreshed_checks_are_current_and_refuse_a_refresh(rsb, onboarded):
    truth = rsb.truth(sections=["trusted_advisor"], accounts=[onboarded[2]])["trusted_advisor"]
    auto = sorted(cid for cid, c in truth["checks"].items() if not c["refreshable"])
    assert auto
    support = rsb.client("support", account_id=onboarded[2], retries=8)
    for summary in support.describe_trusted_advisor_check_summaries(checkIds=auto)["summaries"]:
        assert summary["timestamp"].startswith(TEST_DATE)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        support.refresh_trusted_advisor_check(checkId=auto[0])
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_refreshing_an_old_result_makes_it_current(rsb, onboarded):
    account = onboarded[3]
    truth = rsb.truth(sections=["trusted_advisor"], accounts=[account])["trusted_advisor"]
    old = sorted(cid for cid, r in truth["results"][account].items()
                 if truth["checks"][cid]["refreshable"] and not r["timestamp"].startswith(TEST_DATE))
    assert old
    support = rsb.client("support", account_id=account, retries=8)
    before = support.describe_trusted_advisor_check_result(checkId=old[0], language="en")["result"]["timestamp"]
    assert before == truth["results"][account][old[0]]["timestamp"]
    support.refresh_trusted_advisor_check(checkId=old[0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status = support.describe_trusted_advisor_check_refresh_statuses(checkIds=[old[0]])["statuses"][0]
        if status["status"] == "success":
            break
        time.sleep(0.2)
    after = support.describe_trusted_advisor_check_result(checkId=old[0], language="en")["result"]["timestamp"]
    # The refreshed result is the sandbox date's, stamped with the refresh's completion (the real clock).
    assert after > before
    assert after[:10] >= TEST_DATE


def test_aggregator_sources_are_in_every_state(rsb):
    config = rsb.client("config", region="us-east-1", retries=8)
    rows = []
    for page in config.get_paginator("describe_configuration_aggregator_sources_status").paginate(
            ConfigurationAggregatorName=rsb.info["config_aggregator"]):
        rows += page["AggregatedSourceStatusList"]
    assert {r["LastUpdateStatus"] for r in rows} == {"SUCCEEDED", "FAILED", "OUTDATED"}
    off = REALISTIC["aggregator_sources"]["config_off_region"]
    assert off not in rsb.info["regions"]
    off_rows = [r for r in rows if r["AwsRegion"] == off]
    assert off_rows
    assert {(r["LastUpdateStatus"], r["LastErrorCode"]) for r in off_rows} == {
        ("FAILED", REALISTIC["aggregator_sources"]["config_off_error"]["code"])}
    failed = config.describe_configuration_aggregator_sources_status(
        ConfigurationAggregatorName=rsb.info["config_aggregator"], UpdateStatus=["OUTDATED"])
    assert {r["LastUpdateStatus"] for r in failed["AggregatedSourceStatusList"]} == {"OUTDATED"}


def test_guardduty_has_a_delegated_member_administrator_and_every_relationship_state(rsb, onboarded):
    management = rsb.client("guardduty", region="us-east-1", retries=8)
    admins = management.list_organization_admin_accounts()["AdminAccounts"]
    assert [a["AdminAccountId"] for a in admins] == [onboarded[0]]
    states = set()
    for region in rsb.info["regions"]:  # a member without GuardDuty in a region shows Disabled there
        admin = rsb.client("guardduty", account_id=onboarded[0], region=region, retries=8)
        detector = admin.list_detectors()["DetectorIds"][0]
        members = admin.get_members(DetectorId=detector,
                                    AccountIds=[rsb.info["management_account_id"], *onboarded[1:]])["Members"]
        states |= {m["RelationshipStatus"] for m in members}
    assert states == set(REALISTIC["threat_detection"]["guardduty_states"])


def test_macie_members_are_in_every_relationship_state(rsb, onboarded):
    states = set()
    for region in rsb.info["regions"]:  # a member without Macie in a region shows RegionDisabled there
        admin = rsb.client("macie2", account_id=onboarded[0], region=region, retries=8)
        for account in [rsb.info["management_account_id"], *onboarded[1:]]:
            states.add(admin.get_member(id=account)["relationshipStatus"])
    assert states == set(REALISTIC["threat_detection"]["macie2_states"])


def _sources(rsb, status):
    config = rsb.client("config", region="us-east-1", retries=8)
    off = REALISTIC["aggregator_sources"]["config_off_region"]
    rows = config.describe_configuration_aggregator_sources_status(
        ConfigurationAggregatorName=rsb.info["config_aggregator"], UpdateStatus=[status])["AggregatedSourceStatusList"]
    return [(r["SourceId"], r["AwsRegion"]) for r in rows if r["AwsRegion"] != off]


def _aggregated(rsb, account, region, rule):
    config = rsb.client("config", region="us-east-1", retries=8)
    found = set()
    for page in config.get_paginator("get_aggregate_compliance_details_by_config_rule").paginate(
            ConfigurationAggregatorName=rsb.info["config_aggregator"], ConfigRuleName=rule, AccountId=account,
            AwsRegion=region):
        found |= {(r["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceId"], r["ComplianceType"])
                  for r in page["AggregateEvaluationResults"]}
    return found


def _truth(rsb, account, region, date):
    rules = rsb.truth(date=date, sections=["config"], accounts=[account])["config"][account][region]
    return {rule: {(e["resource_id"], e["compliance"]) for e in evaluations if e["compliance"] != "NOT_APPLICABLE"}
            for rule, evaluations in rules.items()}


def test_a_failed_source_contributes_nothing_to_the_aggregator(rsb):
    account, region = _sources(rsb, "FAILED")[0]
    rules = _truth(rsb, account, region, TEST_DATE)
    rule = next(r for r, found in sorted(rules.items()) if found)
    assert _aggregated(rsb, account, region, rule) == set()


def test_an_outdated_source_contributes_its_last_update(rsb):
    account, region = _sources(rsb, "OUTDATED")[0]
    two_days_ago = str(dt.date.fromisoformat(TEST_DATE) - dt.timedelta(days=2))
    then, now = _truth(rsb, account, region, two_days_ago), _truth(rsb, account, region, TEST_DATE)
    rule = next(r for r in sorted(then) if then[r] != now[r])  # a rule whose results changed since
    assert _aggregated(rsb, account, region, rule) == then[rule]

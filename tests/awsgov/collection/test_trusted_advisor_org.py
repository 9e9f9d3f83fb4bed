"""Trusted Advisor read organization-wide (the Trusted Advisor API's organization view): the split per account and
its coverage rules, the refresh plan, the paging of the real response shapes (botocore Stubber validates them
against the trustedadvisor service model), then the collection against the sandbox under faults, equal to the
sandbox's truth and to what each account's Support API gives, and the fallback when AWS refuses the view."""

from __future__ import annotations

import datetime as dt
import json
import logging

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from include.awsgov.collection import trusted_advisor as ta
from include.awsgov.core import tables
from tests.fixtures.store_files import store_files

DAY = dt.date(2026, 12, 6)
A, B, C = "111111111111", "222222222222", "333333333333"
SAVINGS = ("Estimated Monthly Savings",)
CHECKS = [
    {"id": "hjLMh88uM8", "name": "Idle Load Balancers", "category": "cost_optimizing",
     "metadata": ["Region", "Load Balancer Name", "Reason", "Estimated Monthly Savings"]},
    {"id": "7DAFEmoDos", "name": "MFA on Root Account", "category": "security", "metadata": []},
    {"id": "0Xc6LMYG8P", "name": "EC2 On-Demand Instances", "category": "service_limits",
     "metadata": ["Region", "Service", "Limit Name", "Limit Amount", "Current Usage", "Status"]},
    {"id": "Qch7DwouX1", "name": "Low Utilization Amazon EC2 Instances", "category": "cost_optimizing",
     "metadata": ["Region/AZ", "Instance ID", "Estimated Monthly Savings"]},
]


def _res(account, rid, status, cells=None, region="eu-west-1", excluded=False):
    return {"id": rid, "accountId": account, "status": status, "regionCode": region,
            "metadata": {str(i): v for i, v in enumerate(cells or [])},
            "exclusionStatus": "excluded" if excluded else "included"}


def _acct(account, when):
    return {"accountId": account, "lastUpdatedAt": when}


def _listings():
    fresh = dt.datetime(2026, 12, 6, 4, 5, 6, tzinfo=dt.UTC)
    old = dt.datetime(2026, 12, 3, 4, 0, 0, tzinfo=dt.UTC)
    return {
        "hjLMh88uM8": ([_acct(A, fresh), _acct(B, old)], [
            _res(A, "r1", "warning", ["eu-west-1", "lb-1", "Low request count", "$1,200.50"]),
            _res(A, "r2", "warning", ["eu-west-1", "lb-2", "Low request count", "$19.25"]),
            _res(A, "ok1", "ok"), _res(A, "ok2", "ok"),
            _res(B, "r3", "warning", ["eu-west-1", "lb-3", "x", "$5.00"], excluded=True),
            _res(B, "ok3", "ok")]),
        "7DAFEmoDos": ([_acct(A, fresh), _acct(B, old)], [_res(A, "acct-a", "error"), _res(B, "acct-b", "ok")]),
        "0Xc6LMYG8P": ([_acct(A, fresh)], [_res(A, "l1", "error", ["us-east-1", "EC2", "On-Demand", "5", "5", "Red"]),
                                          _res(A, "l2", "ok")]),
    }


def test_split_gives_support_shaped_rows_counts_and_savings():
    out = ta.split_organization(CHECKS, _listings(), [A, B, C], DAY, SAVINGS, max_age_days=7)
    checks = {r["check_id"]: r for r in out[A]["checks"]}
    # The checks with an organization recommendation, in the catalogue's order; no other (see below).
    assert [r["check_id"] for r in out[A]["checks"]] == ["hjLMh88uM8", "7DAFEmoDos", "0Xc6LMYG8P"]
    idle = checks["hjLMh88uM8"]
    assert (idle["status"], idle["resources_processed"], idle["resources_flagged"], idle["checked_at"]) == (
        "warning", 4, 2, "2026-12-06T04:05:06Z")
    assert idle["estimated_monthly_savings"] == 1219.75
    # An account-level check: the account is its one resource, whose status is the check's; no flagged resource.
    mfa = checks["7DAFEmoDos"]
    assert (mfa["status"], mfa["resources_processed"], mfa["resources_flagged"]) == ("error", 1, 0)
    assert checks["0Xc6LMYG8P"]["status"] == "error" and checks["0Xc6LMYG8P"]["estimated_monthly_savings"] is None
    # A check without a recommendation (not prioritized) is unknown to the view: no row, never a silent
    # not_available; the collection reads it through the account's Support API.
    assert "Qch7DwouX1" not in checks
    # A listed check without a result for a listed account is not available there, as its own summaries would say.
    limits = next(r for r in out[B]["checks"] if r["check_id"] == "0Xc6LMYG8P")
    assert (limits["status"], limits["checked_at"], limits["estimated_monthly_savings"]) == ("not_available", "",
                                                                                             None)
    findings = {(f["check_id"], f["resource_id"]) for f in out[A]["findings"]}
    assert findings == {("hjLMh88uM8", "r1"), ("hjLMh88uM8", "r2"), ("0Xc6LMYG8P", "l1")}
    r1 = next(f for f in out[A]["findings"] if f["resource_id"] == "r1")
    assert json.loads(r1["details_json"])["Load Balancer Name"] == "lb-1" and r1["estimated_monthly_savings"] == 1200.5
    assert r1["finding_id"] == tables.finding_id("trusted_advisor", A, "eu-west-1", "hjLMh88uM8", "r1")


def test_an_excluded_resource_is_suppressed_not_flagged():
    out = ta.split_organization(CHECKS, _listings(), [B], DAY, SAVINGS, max_age_days=7)
    idle = next(r for r in out[B]["checks"] if r["check_id"] == "hjLMh88uM8")
    assert (idle["status"], idle["resources_flagged"], idle["resources_suppressed"]) == ("ok", 0, 1)
    assert idle["estimated_monthly_savings"] == 0.0
    (finding,) = out[B]["findings"]
    assert finding["is_suppressed"] is True


def test_coverage_an_unlisted_account_is_a_gap_not_ok_and_an_old_one_is_stale():
    out = ta.split_organization(CHECKS, _listings(), [A, B, C], DAY, SAVINGS, max_age_days=2)
    assert (out[A]["status"], out[A]["error"]) == ("ok", "")
    assert out[B]["status"] == ta.STALE and "2026-12-03" in out[B]["error"] and out[B]["checks"]  # rows kept
    assert out[C]["status"] == ta.NOT_COVERED and "organization view" in out[C]["error"]
    assert out[C]["checks"] == [] and out[C]["findings"] == []  # nothing read is not "all checks not available"
    assert ta.split_organization(CHECKS, _listings(), [B], DAY, SAVINGS, max_age_days=3)[B]["status"] == "ok"


def test_accounts_outside_the_run_are_left_out():
    out = ta.split_organization(CHECKS, _listings(), [A], DAY, SAVINGS, max_age_days=7)
    assert set(out) == {A}


def test_refresh_plan_is_stale_refreshable_bounded_oldest_first():
    out = ta.split_organization(CHECKS, _listings(), [A, B], DAY + dt.timedelta(days=1), SAVINGS, max_age_days=7)
    summaries = {a: p["summaries"] for a, p in out.items()}
    plan = ta.plan_refreshes(CHECKS, summaries, DAY + dt.timedelta(days=1), ["service_limits"], 1, 10)
    assert plan == {A: ["7DAFEmoDos"], B: ["7DAFEmoDos"]}  # service limits never; the oldest result of each
    assert ta.plan_refreshes(CHECKS, summaries, DAY + dt.timedelta(days=1), ["service_limits"], 1, 1) == {
        B: ["7DAFEmoDos"]}  # the account with the oldest result first
    assert ta.plan_refreshes(CHECKS, summaries, DAY + dt.timedelta(days=1), ["service_limits"], 5, 10)[A] == [
        "7DAFEmoDos", "hjLMh88uM8"]
    # Results of the collected day are not stale: nothing to refresh.
    fresh = ta.split_organization(CHECKS, _listings(), [A], DAY, SAVINGS, max_age_days=7)
    assert ta.plan_refreshes(CHECKS, {A: fresh[A]["summaries"]}, DAY, ["service_limits"], 5, 10) == {}
    assert ta.plan_refreshes(CHECKS, summaries, DAY + dt.timedelta(days=1), [], 1, 0) == {}


@pytest.fixture
def trustedadvisor():
    client = boto3.client("trustedadvisor", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def test_catalogue_and_listing_page_through_every_page(trustedadvisor):
    client, stub = trustedadvisor
    summary = {"id": "hjLMh88uM8", "arn": "arn:aws:trustedadvisor:::check/hjLMh88uM8", "name": "Idle Load Balancers",
               "description": "d", "pillars": ["cost_optimizing"], "awsServices": ["elb"], "source": "ta_check",
               "metadata": {"1": "Load Balancer Name", "0": "Region"}}
    stub.add_response("list_checks", {"checkSummaries": [summary], "nextToken": "tok1"},
                      {"source": "ta_check", "language": "en", "maxResults": 200})
    stub.add_response("list_checks", {"checkSummaries": [{**summary, "id": "x" * 10, "pillars": ["security"]}]},
                      {"source": "ta_check", "language": "en", "maxResults": 200, "nextToken": "tok1"})
    arn = "arn:aws:trustedadvisor:::organization-recommendation/abc123"
    stub.add_response("list_organization_recommendations", {"organizationRecommendationSummaries": [{
        "id": "abc123", "type": "standard", "checkArn": summary["arn"], "status": "warning",
        "pillars": ["cost_optimizing"], "source": "ta_check", "name": "Idle Load Balancers", "arn": arn,
        "resourcesAggregates": {"okCount": 1, "warningCount": 1, "errorCount": 0}}]},
        {"source": "ta_check", "maxResults": 200})
    stub.add_response("list_organization_recommendation_accounts", {"accountRecommendationLifecycleSummaries": [
        {"accountId": A, "lastUpdatedAt": dt.datetime(2026, 12, 6, 4, tzinfo=dt.UTC)}], "nextToken": "tok2"},
        {"organizationRecommendationIdentifier": arn, "maxResults": 200})
    stub.add_response("list_organization_recommendation_accounts", {"accountRecommendationLifecycleSummaries": [
        {"accountId": B, "lastUpdatedAt": dt.datetime(2026, 12, 6, 4, tzinfo=dt.UTC)}]},
        {"organizationRecommendationIdentifier": arn, "maxResults": 200, "nextToken": "tok2"})
    resource = {"id": "r1", "arn": f"arn:aws:trustedadvisor::{A}:recommendation-resource/abc123/r1",
                "awsResourceId": "lb-1", "regionCode": "eu-west-1", "status": "warning",
                "metadata": {"0": "eu-west-1", "1": "lb-1"}, "lastUpdatedAt": dt.datetime(2026, 12, 6, tzinfo=dt.UTC),
                "recommendationArn": arn, "accountId": A}
    stub.add_response("list_organization_recommendation_resources",
                      {"organizationRecommendationResourceSummaries": [resource]},
                      {"organizationRecommendationIdentifier": arn, "maxResults": 200})

    catalogue = ta.org_catalogue(client)
    assert [(c["id"], c["category"]) for c in catalogue] == [("hjLMh88uM8", "cost_optimizing"),
                                                             ("x" * 10, "security")]
    assert catalogue[0]["metadata"] == ["Region", "Load Balancer Name"]  # by the keys' numbers, not their text
    assert ta.org_recommendations(client) == {"hjLMh88uM8": arn}
    accounts, resources = ta.org_listing(client, arn)
    assert [a["accountId"] for a in accounts] == [A, B] and [r["id"] for r in resources] == ["r1"]


def test_only_the_documented_refusal_means_fall_back():
    def error(code):
        return ClientError({"Error": {"Code": code, "Message": "m"}}, "ListOrganizationRecommendations")

    assert ta.org_refused(error("AccessDeniedException"))
    assert not ta.org_refused(error("ThrottlingException")) and not ta.org_refused(error("InternalServerException"))


# -- against the sandbox ---------------------------------------------------------------------------------------------
def _access(sandbox):
    from include.awsgov.core.aws import AwsAccess

    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTTRUSTEDADV02",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-trusted-advisor-org", retry_mode="standard")


def _collect(sandbox, store, day, account_ids, **options):
    from include.awsgov.collection import runner

    opts = runner.Options(regions=(), sources=("trusted_advisor",), **options)
    aggregate = runner.collect_aggregate(_access(sandbox), store, day, account_ids, opts)
    return aggregate, runner.collect_accounts(_access(sandbox), store, day, account_ids, opts)


@pytest.fixture(scope="module")
def org_run(sandbox, tmp_path_factory):
    """Trusted Advisor of the whole organization from the organization view, twice on the same day, under
    throttling and latency, with two accounts whose read role refuses AssumeRole and two without a support plan."""
    from include.awsgov.core import accounts
    from include.awsgov.core.store import Store

    logging.getLogger("botocore.credentials").setLevel(logging.CRITICAL)
    members = [a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    denied, no_support = members[:2], members[2:4]
    # Active accounts without the read role refuse AssumeRole as the denied ones do.
    denied += [a["id"] for a in sandbox.info["accounts"] if not a["read_role"] and a["status"] == "ACTIVE"]
    day = sandbox.today()
    store = Store(tmp_path_factory.mktemp("trusted-advisor-org") / "store")
    sandbox.set_faults(throttle_rate=0.3, latency_ms=10, deny_assume_accounts=denied, no_support_accounts=no_support,
                       seed=7)
    try:
        targets = [a["account_id"] for a in accounts.collectable(accounts.snapshot_accounts(_access(sandbox), store,
                                                                                           day))]
        sandbox.reset_calls()
        first = _collect(sandbox, store, day, targets)
        calls = sandbox.calls()["calls"]
        files = store_files(store.root)
        second = _collect(sandbox, store, day, targets)
        truth = sandbox.truth(date=day, sections=["trusted_advisor"])
    finally:
        sandbox.clear_faults()
    return {"store": store, "day": day, "targets": targets, "denied": denied, "no_support": no_support,
            "runs": (first, second), "files": files, "calls": calls, "truth": truth,
            "mgmt": sandbox.info["management_account_id"]}


def _table(run, name):
    return run["store"].read(name, run["day"], run["day"], schema=getattr(tables, name.upper()))


def _prioritized(run):
    return set(run["truth"]["trusted_advisor"]["organization_view"]["prioritized"])


def test_prioritized_checks_from_the_view_the_others_once_per_account_through_support(org_run):
    calls = org_run["calls"]
    org = [c for c in calls if c["service"] == "trustedadvisor"]
    assert {c["account"] for c in org} == {org_run["mgmt"]}
    answered = {c["action"]: c["count"] - c["throttled"] for c in org}
    assert answered["ListChecks"] == 1 and answered["ListOrganizationRecommendations"] == 1
    assert org_run["runs"][0][0]["trusted_advisor"]["source"] == "organization"
    support = {}
    for c in calls:
        if c["service"] == "support":
            support.setdefault(c["action"], {})[c["account"]] = c["count"] - c["throttled"]
    reachable = set(org_run["targets"]) - set(org_run["denied"])
    # The summaries of the checks the view does not list, once per account whose read role works (the catalogue is
    # the run's: no DescribeTrustedAdvisorChecks); results are today's, so nothing is refreshed.
    assert support["DescribeTrustedAdvisorCheckSummaries"] == dict.fromkeys(reachable, 1)
    assert "DescribeTrustedAdvisorChecks" not in support and "RefreshTrustedAdvisorCheck" not in support
    # A check's result only where it is flagged and the view did not already give it.
    results = org_run["truth"]["trusted_advisor"]["results"]
    expected = {a: n for a in reachable - set(org_run["no_support"])
                if (n := sum(ta.has_flagged(r) for cid, r in results[a].items() if cid not in _prioritized(org_run)))}
    assert support.get("DescribeTrustedAdvisorCheckResult", {}) == expected


def test_coverage_says_what_is_missing_and_why(org_run):
    cov = _table(org_run, "coverage")
    assert set(cov["source"]) == {"trusted_advisor"} and set(cov["region"]) == {"global"}
    status = {r.account_id: (r.status, r.error) for r in cov.itertuples()}
    assert set(status) == set(org_run["targets"])
    for account, (state, error) in status.items():
        if account in org_run["no_support"]:  # nothing in the view, and its Support API says why
            assert state == "no_support_plan" and error.startswith("organization view: not in"), (account, error)
        elif account in org_run["denied"]:  # the prioritized checks from the view, the gap for the others
            assert state == "access_denied" and "prioritized checks read from the organization view" in error, (
                account, error)
        else:
            assert (state, error) == ("ok", ""), account
    assert org_run["runs"][0][1]["gaps"] == len(org_run["no_support"]) + len(org_run["denied"])


def test_every_check_equals_the_truth_nothing_lost_nothing_duplicated(org_run):
    truth = org_run["truth"]["trusted_advisor"]
    prioritized = _prioritized(org_run)
    checks, findings = _table(org_run, "ta_checks"), _table(org_run, "ta_findings")
    covered = set(org_run["targets"]) - set(org_run["no_support"])
    assert covered == set(truth["organization_view"]["accounts"]) & set(org_run["targets"])
    assert set(checks["account_id"]) == covered
    assert not findings["finding_id"].duplicated().any()
    for account in sorted(covered):
        whole = account not in org_run["denied"]  # a refused read role: the prioritized checks only
        mine = checks[checks["account_id"] == account].set_index("check_id")
        assert len(mine) == (104 if whole else len(prioritized))  # the whole catalogue, as the per-account path
        wanted = {cid: r for cid, r in truth["results"][account].items() if whole or cid in prioritized}
        assert set(mine.index) >= set(wanted)
        for check_id, result in wanted.items():
            row = mine.loc[check_id]
            counts = result["resourcesSummary"]
            savings = result["categorySpecificSummary"].get("costOptimizing", {}).get("estimatedMonthlySavings")
            if result["status"] == "not_available" and check_id in prioritized:
                savings, result = None, {**result, "timestamp": ""}  # not listed in the view: no time, no savings
            assert (row["status"], row["checked_at"], row["resources_processed"], row["resources_flagged"],
                    row["category"]) == (result["status"], result["timestamp"], counts["resourcesProcessed"],
                                         counts["resourcesFlagged"], truth["checks"][check_id]["category"])
            assert (None if pd.isna(row["estimated_monthly_savings"]) else row["estimated_monthly_savings"]) == savings
        others = mine.drop(index=list(wanted))
        assert set(others["status"]) <= {"not_available"}
        expected = {(cid, r["region"], r["resourceId"], r["status"],
                     json.dumps(dict(zip(truth["checks"][cid]["metadata"], r["metadata"], strict=True)),
                                sort_keys=True, ensure_ascii=False))
                    for cid, result in wanted.items() for r in result["flaggedResources"]}
        got = findings[findings["account_id"] == account]
        assert len(got) == len(expected)
        assert set(zip(got["check_id"], got["region"], got["resource_id"], got["status"], got["details_json"],
                       strict=True)) == expected


def test_rerun_of_the_day_under_throttling_writes_identical_files(org_run):
    assert store_files(org_run["store"].root) == org_run["files"]


def test_same_rows_as_each_accounts_support_api(clean_sandbox, tmp_path):
    """Both paths on one clean sandbox: every row of a reachable account is the same, but for what the view cannot
    know of a prioritized check not available in an account (when it was evaluated, its savings)."""
    from include.awsgov.core.store import Store

    sb = clean_sandbox
    day = sb.today()
    targets = sorted([sb.info["management_account_id"], *(a["id"] for a in sb.info["accounts"]
                                                          if a["read_role"] and a["status"] == "ACTIVE")])[:6]
    frames = {}
    for source in ("accounts", "organization"):
        store = Store(tmp_path / source)
        _collect(sb, store, day, targets, ta_source=source, refresh=False)
        frames[source] = {t: store.read(t, day, day, schema=getattr(tables, t.upper()))
                          for t in ("ta_checks", "ta_findings")}
    support, org = frames["accounts"], frames["organization"]
    prioritized = sb.truth(sections=["trusted_advisor"])["trusted_advisor"]["organization_view"]["prioritized"]
    gone = (support["ta_checks"]["status"] == "not_available") & support["ta_checks"]["check_id"].isin(prioritized)
    support["ta_checks"].loc[gone, ["checked_at"]] = ""
    support["ta_checks"].loc[gone, ["estimated_monthly_savings"]] = None
    for table, key in (("ta_checks", ["account_id", "check_id"]), ("ta_findings", ["finding_id"])):
        left = support[table].sort_values(key).reset_index(drop=True)
        right = org[table].sort_values(key).reset_index(drop=True)
        assert len(left) and left.equals(right), table


def test_a_refused_organization_view_falls_back_to_each_account(clean_sandbox, tmp_path):
    from include.awsgov.core.store import Store

    sb = clean_sandbox
    day = sb.today()
    account = next(a["id"] for a in sb.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE")
    sb.set_faults(no_ta_organization_view=True)
    try:
        aggregate, _ = _collect(sb, Store(tmp_path / "store"), day, [account])
    finally:
        sb.clear_faults()
    assert aggregate["trusted_advisor"]["source"] == "accounts"
    assert "AccessDeniedException" in aggregate["trusted_advisor"]["fallback"]
    asked = {(c["account"], c["action"]) for c in sb.calls()["calls"]}
    assert (account, "DescribeTrustedAdvisorCheckSummaries") in asked
    rows = Store(tmp_path / "store").read("ta_checks", day, day)
    assert set(rows["account_id"]) == {account} and (rows["status"] != "not_available").any()


def test_stale_results_are_refreshed_in_a_bounded_number_of_accounts(clean_sandbox, tmp_path):
    import time

    from include.awsgov.collection import runner
    from include.awsgov.core.store import Store

    sb = clean_sandbox
    targets = sorted(a["id"] for a in sb.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE")[:5]
    tomorrow = dt.date.fromisoformat(sb.today()) + dt.timedelta(days=1)  # today's results are stale for it
    store = Store(tmp_path / "store")
    truth = sb.truth(date=tomorrow, sections=["trusted_advisor"])["trusted_advisor"]
    sb.reset_calls()
    aggregate, _ = _collect(sb, store, tomorrow, targets, refresh_accounts=2, refresh_per_account=1)
    plan = runner._load_ta_source(store, tomorrow, runner.Options(regions=()))["refresh"]
    refreshed = {c["account"]: c["count"] for c in sb.calls()["calls"] if c["action"] == "RefreshTrustedAdvisorCheck"}
    assert aggregate["trusted_advisor"]["source"] == "organization"
    assert len(plan) == 2 and all(len(cids) == 1 for cids in plan.values())
    categories = {cid: c["category"] for cid, c in truth["checks"].items()}
    prioritized = set(truth["organization_view"]["prioritized"])
    assert all(set(cids) <= prioritized for cids in plan.values())  # the plan: checks read from the view
    # The other checks are read through each account's Support API, which refreshes its stale ones as the
    # per-account path does (refresh_per_account in every account); the view's plan adds its bounded accounts.
    others = {a: any(cid not in prioritized and categories[cid] != "service_limits" and r["status"] != "not_available"
                     for cid, r in truth["results"][a].items()) for a in targets}
    assert refreshed == {a: len(plan.get(a, [])) + others[a] for a in targets if plan.get(a) or others[a]}
    deadline = time.monotonic() + 30
    for account, cids in plan.items():
        assert all(categories[c] != "service_limits" for c in cids)  # AWS refreshes those itself
        support = sb.client("support", account_id=account)
        while True:  # requested, not awaited by the run; settled here so that later tests read settled results
            (status,) = support.describe_trusted_advisor_check_refresh_statuses(checkIds=cids)["statuses"]
            assert status["status"] != "none"
            if status["status"] == "success" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status["status"] == "success"


def test_settings_choose_the_source_and_bounds():
    from include.awsgov.collection import runner
    from include.awsgov.core.settings import SettingsError, load_settings

    default = runner.Options.from_settings(load_settings())
    assert (default.ta_source, default.ta_max_age_days, default.refresh_accounts) == ("organization", 7, 20)
    mine = runner.Options.from_settings(load_settings({"collection": {"trusted_advisor": {
        "source": "accounts", "max_age_days": 3, "refresh_accounts_per_run": 0}}}))
    assert (mine.ta_source, mine.ta_max_age_days, mine.refresh_accounts) == ("accounts", 3, 0)
    with pytest.raises(SettingsError):
        load_settings({"collection": {"trusted_advisor": {"source": "everywhere"}}})
    with pytest.raises(ValueError):
        runner.Options(regions=(), ta_source="everywhere")

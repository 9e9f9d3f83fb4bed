"""Trusted Advisor: parsing of real response shapes and the refresh rules (botocore Stubber validates requests and
responses against the Support service model; moto answers only describe_trusted_advisor_checks), then the
collection's Trusted Advisor part against the sandbox under faults, compared with the sandbox's truth."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from include.awsgov.collection import trusted_advisor as ta
from include.awsgov.core import tables
from tests.fixtures.store_files import store_files

TEST_ACCOUNT = "210987654321"
TEST_SAVINGS = ("Estimated Monthly Savings",)
TEST_CHECK = {
    "id": "hjLMh88uM8",
    "name": "Idle Load Balancers",
    "description": "Checks your load balancers",
    "category": "cost_optimizing",
    "metadata": ["Region", "Load Balancer Name", "Reason", "Estimated Monthly Savings"],
}


@pytest.fixture
def support():
    client = boto3.client("support", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def test_describe_checks_reads_moto_catalogue_with_categories(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        checks = ta.describe_checks(boto3.client("support", region_name="us-east-1"))
    assert len(checks) > 100
    assert {c["category"] for c in checks} == {"cost_optimizing", "security", "fault_tolerance", "performance",
                                               "service_limits"}


def test_request_refresh_tolerates_non_refreshable_check(support):
    client, stub = support
    stub.add_client_error("refresh_trusted_advisor_check", "InvalidParameterValueException",
                          "The check is refreshed automatically", expected_params={"checkId": "x"})
    stub.add_response("refresh_trusted_advisor_check",
                      {"status": {"checkId": "y", "status": "enqueued", "millisUntilNextRefreshable": 0}},
                      expected_params={"checkId": "y"})
    assert ta.request_refresh(client, "x") is False
    assert ta.request_refresh(client, "y") is True


def test_request_refresh_raises_other_errors(support):
    client, stub = support
    stub.add_client_error("refresh_trusted_advisor_check", "InternalServerError", "boom",
                          expected_params={"checkId": "x"})
    with pytest.raises(ClientError) as info:
        ta.request_refresh(client, "x")
    assert info.value.response["Error"] == {"Code": "InternalServerError", "Message": "boom"}


def test_check_rows_from_summaries_with_savings_and_not_available(support):
    client, stub = support
    other = {"id": "Pfx0RwqBli", "name": "Amazon S3 Bucket Permissions", "category": "security", "description": "",
             "metadata": []}
    stub.add_response("describe_trusted_advisor_check_summaries", {"summaries": [{
        "checkId": TEST_CHECK["id"], "timestamp": "2026-11-23T05:00:00Z", "status": "warning",
        "hasFlaggedResources": True,
        "resourcesSummary": {"resourcesProcessed": 9, "resourcesFlagged": 2, "resourcesIgnored": 0,
                             "resourcesSuppressed": 1},
        "categorySpecificSummary": {"costOptimizing": {"estimatedMonthlySavings": 36.5,
                                                       "estimatedPercentMonthlySavings": 0.2}}}]},
        expected_params={"checkIds": [TEST_CHECK["id"], other["id"]]})
    found = ta.summaries(client, [TEST_CHECK["id"], other["id"]])
    rows = {r["check_id"]: r for r in ta.check_rows(TEST_ACCOUNT, [TEST_CHECK, other], found)}
    assert rows[TEST_CHECK["id"]] == {
        "account_id": TEST_ACCOUNT, "check_id": TEST_CHECK["id"], "check_name": "Idle Load Balancers",
        "category": "cost_optimizing", "status": "warning", "resources_processed": 9, "resources_flagged": 2,
        "resources_suppressed": 1, "estimated_monthly_savings": 36.5, "checked_at": "2026-11-23T05:00:00Z"}
    assert rows[other["id"]]["status"] == "not_available"
    assert rows[other["id"]]["estimated_monthly_savings"] is None
    assert ta.has_flagged(found[TEST_CHECK["id"]])


def test_finding_rows_map_metadata_columns_to_names(support):
    client, stub = support
    stub.add_response("describe_trusted_advisor_check_result", {"result": {
        "checkId": TEST_CHECK["id"], "timestamp": "2026-11-23T05:00:00Z", "status": "warning",
        "resourcesSummary": {"resourcesProcessed": 9, "resourcesFlagged": 2, "resourcesIgnored": 0,
                             "resourcesSuppressed": 0},
        "categorySpecificSummary": {"costOptimizing": {"estimatedMonthlySavings": 36.5,
                                                       "estimatedPercentMonthlySavings": 0.2}},
        "flaggedResources": [
            {"status": "warning", "region": "eu-west-1", "resourceId": "r-1", "isSuppressed": False,
             "metadata": ["eu-west-1", "<lb>\"one\"", "No active back-end instances", "$1,018.25"]},
            {"status": "warning", "resourceId": "r-2", "isSuppressed": True,
             "metadata": ["global", "two", "Low request count", "", "extra"]},
        ]}}, expected_params={"checkId": TEST_CHECK["id"], "language": "en"})
    result = ta.check_result(client, TEST_CHECK["id"], "en")
    rows = ta.finding_rows(TEST_ACCOUNT, TEST_CHECK, result, TEST_SAVINGS)
    first, second = rows
    assert json.loads(first["details_json"]) == {"Region": "eu-west-1", "Load Balancer Name": "<lb>\"one\"",
                                                 "Reason": "No active back-end instances",
                                                 "Estimated Monthly Savings": "$1,018.25"}
    assert first["estimated_monthly_savings"] == 1018.25
    assert first["finding_id"] == tables.finding_id("trusted_advisor", TEST_ACCOUNT, "eu-west-1", TEST_CHECK["id"],
                                                    "r-1")
    assert (second["region"], second["is_suppressed"], second["estimated_monthly_savings"]) == ("global", True, None)
    assert json.loads(second["details_json"])["column_4"] == "extra"


@pytest.mark.parametrize(
    ("cell", "amount"),
    [
        pytest.param("$1,234.50", 1234.5, id="dollars"),
        pytest.param("12", 12.0, id="bare"),
        pytest.param(7.25, 7.25, id="number"),
        pytest.param("n/a", None, id="text"),
        pytest.param(None, None, id="none"),
    ],
)
def test_parse_money(cell, amount):
    assert ta.parse_money(cell) == amount


@pytest.mark.parametrize(("cell", "amount"), [
    pytest.param("-1", None, id="negative"), pytest.param("$0.00", 0.0, id="zero"),
    pytest.param("$12.5", 12.5, id="dollars"),
])
def test_a_negative_savings_cell_is_no_saving(cell, amount):
    """Found by the property test: a cell of "-1" became -1 dollars of savings, lowering the report's totals."""
    assert ta.savings_amount(cell) == amount


def test_savings_column_matches_variants_by_prefix():
    columns = ["Region", "DB Instance Name", "Estimated Monthly Savings (On Demand)"]
    assert ta.savings_column(columns, TEST_SAVINGS) == 2
    assert ta.savings_column(["Region", "Bucket Name"], TEST_SAVINGS) is None


# -- against the sandbox: the collection's Trusted Advisor part under faults ------------------------------------------
def _access(sandbox):
    from include.awsgov.core.aws import AwsAccess

    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTTRUSTEDADV01",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-trusted-advisor", retry_mode="standard")


def _collect(sandbox, store, day, account_ids, **options):
    from include.awsgov.collection import runner

    options.setdefault("ta_source", "accounts")  # each account's Support API; the organization view further down
    opts = runner.Options(regions=(), sources=("trusted_advisor",), **options)
    runner.collect_aggregate(_access(sandbox), store, day, account_ids, opts)  # the run's check catalogue
    return runner.collect_accounts(_access(sandbox), store, day, account_ids, opts)


def _parquet(store) -> dict:
    return store_files(store.root)


@pytest.fixture(scope="module")
def faulted(sandbox, tmp_path_factory):
    """Trusted Advisor of the whole organization, twice on the same day, under throttling, latency, two accounts
    whose read role refuses AssumeRole and two without a support plan; and the truth of the day."""
    from include.awsgov.core import accounts
    from include.awsgov.core.store import Store

    logging.getLogger("botocore.credentials").setLevel(logging.CRITICAL)  # tracebacks of refused AssumeRole
    members = [a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    denied, no_support = members[:2], members[2:4]
    day = sandbox.today()
    store = Store(tmp_path_factory.mktemp("trusted-advisor") / "store")
    sandbox.set_faults(throttle_rate=0.3, latency_ms=10, deny_assume_accounts=denied, no_support_accounts=no_support,
                       seed=5)
    try:
        targets = [a["account_id"] for a in accounts.collectable(accounts.snapshot_accounts(_access(sandbox), store,
                                                                                           day))]
        sandbox.reset_calls()
        first = _collect(sandbox, store, day, targets)
        first_calls = sandbox.calls()["calls"]
        files = _parquet(store)
        second = _collect(sandbox, store, day, targets)
    finally:
        sandbox.clear_faults()
    no_role = [a["id"] for a in sandbox.info["accounts"] if not a["read_role"] and a["status"] == "ACTIVE"]
    return {"store": store, "day": day, "targets": targets, "denied": denied + no_role, "no_support": no_support,
            "runs": (first, second), "files": files, "truth": sandbox.truth(date=day, sections=["trusted_advisor"]),
            "first_calls": first_calls, "mgmt": sandbox.info["management_account_id"]}


def _table(faulted, name):
    return faulted["store"].read(name, faulted["day"], faulted["day"], schema=getattr(tables, name.upper()))


def test_check_catalogue_is_read_once_per_run_in_the_admin_account(faulted):
    described = [c for c in faulted["first_calls"] if c["action"] == "DescribeTrustedAdvisorChecks"]
    assert sum(c["count"] - c["throttled"] for c in described) == 1
    assert {c["account"] for c in described} == {faulted["mgmt"]}
    summaries = [c for c in faulted["first_calls"] if c["action"] == "DescribeTrustedAdvisorCheckSummaries"]
    assert len({c["account"] for c in summaries}) > 3  # each account still answers for its own checks


def test_collection_skips_suspended_and_includes_management(faulted, sandbox):
    suspended = {a["id"] for a in sandbox.info["accounts"] if a["status"] != "ACTIVE"}
    assert suspended and not suspended & set(faulted["targets"])
    assert sandbox.info["management_account_id"] in faulted["targets"]


def test_denied_and_unsupported_accounts_are_coverage_gaps_with_reasons(faulted):
    cov = _table(faulted, "coverage")
    assert set(cov["source"]) == {"trusted_advisor"} and set(cov["region"]) == {"global"}
    status = {r.account_id: (r.status, r.error) for r in cov.itertuples()}
    assert set(status) == set(faulted["targets"])
    for account, (state, error) in status.items():
        if account in faulted["denied"]:
            assert state == "access_denied" and "AssumeRole" in error, (account, error)
        elif account in faulted["no_support"]:
            assert state == "no_support_plan" and "SubscriptionRequiredException" in error, (account, error)
        else:
            assert (state, error) == ("ok", ""), account
    assert faulted["runs"][0]["gaps"] == len(faulted["denied"]) + len(faulted["no_support"])


def test_reachable_accounts_equal_the_truth_nothing_lost_nothing_duplicated(faulted):
    truth = faulted["truth"]["trusted_advisor"]
    checks, findings = _table(faulted, "ta_checks"), _table(faulted, "ta_findings")
    reachable = set(faulted["targets"]) - set(faulted["denied"]) - set(faulted["no_support"])
    assert set(checks["account_id"]) == reachable
    assert not findings["finding_id"].duplicated().any()
    for account in sorted(reachable):
        mine = checks[checks["account_id"] == account].set_index("check_id")
        for check_id, result in truth["results"][account].items():
            row = mine.loc[check_id]
            counts = result["resourcesSummary"]
            savings = result["categorySpecificSummary"].get("costOptimizing", {}).get("estimatedMonthlySavings")
            assert (row["status"], row["checked_at"], row["resources_processed"], row["resources_flagged"],
                    row["category"]) == (result["status"], result["timestamp"], counts["resourcesProcessed"],
                                         counts["resourcesFlagged"], truth["checks"][check_id]["category"])
            assert (None if pd.isna(row["estimated_monthly_savings"]) else row["estimated_monthly_savings"]) == savings
        others = mine.drop(index=list(truth["results"][account]))
        assert set(others["status"]) <= {"not_available"}
        expected = {(cid, r["region"], r["resourceId"], r["status"],
                     json.dumps(dict(zip(truth["checks"][cid]["metadata"], r["metadata"], strict=True)),
                                sort_keys=True, ensure_ascii=False))
                    for cid, result in truth["results"][account].items() for r in result["flaggedResources"]}
        got = findings[findings["account_id"] == account]
        assert len(got) == len(expected)
        assert set(zip(got["check_id"], got["region"], got["resource_id"], got["status"], got["details_json"],
                       strict=True)) == expected


def test_savings_of_cost_findings_add_up_to_the_check_summary(faulted):
    checks, findings = _table(faulted, "ta_checks"), _table(faulted, "ta_findings")
    columns = {cid: c["metadata"] for cid, c in faulted["truth"]["trusted_advisor"]["checks"].items()}
    with_savings = [cid for cid, cols in columns.items() if ta.savings_column(cols, TEST_SAVINGS) is not None]
    cost = findings[findings["check_id"].isin(with_savings)]
    assert len(cost) and cost["estimated_monthly_savings"].notna().all()
    assert findings[~findings["check_id"].isin(with_savings)]["estimated_monthly_savings"].isna().all()
    per_check = cost.groupby(["account_id", "check_id"])["estimated_monthly_savings"].sum()
    summary = checks.set_index(["account_id", "check_id"])["estimated_monthly_savings"]
    for key, total in per_check.items():
        assert total == pytest.approx(summary[key], abs=0.01)


def test_rerun_of_the_day_under_throttling_writes_identical_files(faulted):
    assert _parquet(faulted["store"]) == faulted["files"]
    first, second = faulted["runs"]
    assert (first["accounts"], first["gaps"]) == (second["accounts"], second["gaps"])


def test_refresh_asks_only_for_stale_refreshable_checks_and_does_not_wait(clean_sandbox, tmp_path):
    from include.awsgov.core.store import Store

    sb = clean_sandbox
    account = next(a["id"] for a in sb.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE")
    results = sb.truth(sections=["trusted_advisor"], accounts=[account])["trusted_advisor"]
    expected = sorted(cid for cid, c in results["checks"].items()
                      if c["refreshable"] and results["results"][account][cid]["status"] != "not_available")
    today = dt.date.fromisoformat(sb.today())
    store = Store(tmp_path / "store")

    _collect(sb, store, today, [account])  # results are from today: nothing to refresh
    refresh_actions = {"RefreshTrustedAdvisorCheck", "DescribeTrustedAdvisorCheckRefreshStatuses"}
    assert not [c for c in sb.calls()["calls"] if c["action"] in refresh_actions]

    tomorrow = today + dt.timedelta(days=1)  # the same results are stale for the next day
    summaries = sb.client("support", account_id=account).describe_trusted_advisor_check_summaries(
        checkIds=expected)["summaries"]
    oldest = [c for _, c in sorted((s["timestamp"], s["checkId"]) for s in summaries)]
    sb.reset_calls()
    _collect(sb, store, tomorrow, [account], refresh_per_account=2)
    calls = {c["action"]: c["count"] for c in sb.calls()["calls"] if c["account"] == account}
    # The two oldest results, asked directly (the answer is the refresh status): service limits never asked.
    assert calls["RefreshTrustedAdvisorCheck"] == 2 and "DescribeTrustedAdvisorCheckRefreshStatuses" not in calls
    support = sb.client("support", account_id=account)
    statuses = {s["checkId"]: s["status"] for s in
                support.describe_trusted_advisor_check_refresh_statuses(checkIds=expected)["statuses"]}
    assert {c for c, st_ in statuses.items() if st_ != "none"} == set(oldest[:2])
    assert {statuses[c] for c in oldest[:2]} <= {"enqueued", "processing"}  # requested, not awaited

    _collect(sb, store, tomorrow, [account], refresh_per_account=len(expected))  # the rest of the stale checks
    expected_statuses = support.describe_trusted_advisor_check_refresh_statuses(checkIds=expected)["statuses"]
    assert "none" not in {s["status"] for s in expected_statuses}
    # Let the refreshes finish so later tests on this sandbox read settled results.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        statuses = support.describe_trusted_advisor_check_refresh_statuses(checkIds=expected)["statuses"]
        if {s["status"] for s in statuses} == {"success"}:
            break
        time.sleep(0.5)
    assert {s["status"] for s in statuses} == {"success"}


# -- properties (Hypothesis, issue #19): any Trusted Advisor payload gives rows, never a crash ------------------------

_CELL = st.one_of(st.none(), st.text(max_size=20), st.from_regex(r"\$[0-9]{1,3}(,[0-9]{3})*(\.[0-9]{2})?",
                                                                  fullmatch=True))
_FLAGGED = st.fixed_dictionaries({}, optional={
    "status": st.text(max_size=10), "region": st.one_of(st.none(), st.text(max_size=15)),
    "resourceId": st.text(max_size=40), "isSuppressed": st.booleans(), "metadata": st.lists(_CELL, max_size=6)})


@settings(max_examples=300, deadline=None)
@given(columns=st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=5),
       flagged=st.lists(_FLAGGED, max_size=6))
def test_any_flagged_resources_become_rows_with_json_details(columns, flagged):
    check = {"id": "abc123", "name": "Check", "category": "cost_optimizing",
             "metadata": [*columns, "Estimated Monthly Savings"]}
    rows = ta.finding_rows("111111111111", check, {"flaggedResources": flagged}, ["Estimated Monthly Savings"])
    assert len(rows) == len(flagged)
    for row, res in zip(rows, flagged, strict=True):
        assert isinstance(json.loads(row["details_json"]), dict)
        assert row["estimated_monthly_savings"] is None or row["estimated_monthly_savings"] >= 0
        assert row["region"] == (res.get("region") or ta.GLOBAL_REGION)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.none(), st.text(max_size=40), st.integers(0, 10**9), st.floats(0, 1e9)))
def test_any_money_cell_is_an_amount_or_none(text):
    amount = ta.parse_money(text)
    assert amount is None or isinstance(amount, float)


@settings(max_examples=200, deadline=None)
@given(stamp=st.text(max_size=40))
def test_any_summary_timestamp_is_stale_or_not(stamp):
    assert ta.is_stale({"timestamp": stamp}, dt.date(2026, 12, 6)) in (True, False)

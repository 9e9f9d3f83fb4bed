"""Trusted Advisor through the Support API, per account over assumed-role credentials, equal to the truth."""

from __future__ import annotations

import time

import botocore.exceptions
import pytest

CATEGORIES = {"cost_optimizing", "security", "fault_tolerance", "performance", "service_limits"}


@pytest.fixture(scope="module")
def ta_truth(sandbox):
    return sandbox.truth(sections=["trusted_advisor"])["trusted_advisor"]


def test_results_per_account_equal_truth_and_differ(sb, members, ta_truth):
    answers = {}
    for account in members["onboarded"][:3]:
        support = sb.client("support", account_id=account)
        answers[account] = {
            check_id: support.describe_trusted_advisor_check_result(checkId=check_id, language="en")["result"]
            for check_id in ta_truth["checks"]
        }
        assert answers[account] == ta_truth["results"][account]
    first, second, third = answers.values()
    assert first != second and second != third


def test_checks_cover_all_categories_with_real_metadata_columns(sb, ta_truth):
    catalogue = {c["id"]: c for c in sb.client("support").describe_trusted_advisor_checks(language="en")["checks"]}
    assert len(catalogue) == 104
    by_category = {}
    for check_id, check in ta_truth["checks"].items():
        assert catalogue[check_id]["category"] == check["category"]
        by_category.setdefault(check["category"], []).append(check_id)
    assert set(by_category) == CATEGORIES
    assert all(len(ids) >= 3 for ids in by_category.values())
    for results in ta_truth["results"].values():
        for check_id, result in results.items():
            for resource in result["flaggedResources"]:
                assert len(resource["metadata"]) == len(catalogue[check_id]["metadata"])
                assert resource["status"] in ("warning", "error")
            assert result["status"] in ("ok", "warning", "error", "not_available")


def test_cost_checks_carry_savings(ta_truth):
    savings = []
    for results in ta_truth["results"].values():
        for check_id, result in results.items():
            if ta_truth["checks"][check_id]["category"] == "cost_optimizing":
                summary = result["categorySpecificSummary"]["costOptimizing"]
                savings.append(summary["estimatedMonthlySavings"])
                if not result["flaggedResources"]:
                    assert summary["estimatedMonthlySavings"] == 0.0
    assert any(s > 0 for s in savings)


def test_statuses_cover_ok_warning_error_not_available(ta_truth):
    statuses = {r["status"] for results in ta_truth["results"].values() for r in results.values()}
    assert statuses == {"ok", "warning", "error", "not_available"}


def test_results_vary_day_to_day_deterministically(sb, members):
    account = members["onboarded"][0]
    days = [f"2026-11-{d:02d}" for d in range(16, 24)]
    flagged = []
    for day in days:
        results = sb.truth(date=day, sections=["trusted_advisor"], accounts=[account])["trusted_advisor"]["results"]
        flagged.append({(c, r["resourceId"]) for c, res in results[account].items() for r in res["flaggedResources"]})
    assert len({frozenset(f) for f in flagged}) > 3
    assert flagged[-1] == {
        (c, r["resourceId"])
        for c, res in sb.truth(date=days[-1], sections=["trusted_advisor"], accounts=[account])[
            "trusted_advisor"]["results"][account].items()
        for r in res["flaggedResources"]
    }
    sb.set_date(days[0])
    support = sb.client("support", account_id=account)
    served = {(c, r["resourceId"])
              for c in ("Qch7DwouX1", "HCP4007jGY", "H7IgTzjTYb", "R365s2Qddf", "Pfx0RwqBli", "DqdJqYeRm5",
                        "hjLMh88uM8", "Z4AUBRNSmz", "f2iK5R6Dep", "ZRxQlPsb6c", "tfg86AVHAZ", "Bh2xRR2FGH",
                        "0Xc6LMYG8P", "jL7PP0l7J9", "oQ7TT0l7J9", "7DAFEmoDos")
              for r in support.describe_trusted_advisor_check_result(checkId=c)["result"]["flaggedResources"]}
    assert served == flagged[0]


def test_hostile_metadata_values_present(ta_truth):
    values = [v for results in ta_truth["results"].values() for r in results.values()
              for res in r["flaggedResources"] for v in res["metadata"] if v]
    assert any("<script>" in v or "<img" in v for v in values)


def test_summaries_match_results(sb, members, ta_truth):
    account = members["onboarded"][1]
    ids = list(ta_truth["checks"])
    summaries = sb.client("support", account_id=account).describe_trusted_advisor_check_summaries(checkIds=ids)
    for summary in summaries["summaries"]:
        result = ta_truth["results"][account][summary["checkId"]]
        assert summary["status"] == result["status"]
        assert summary["resourcesSummary"] == result["resourcesSummary"]
        assert summary["hasFlaggedResources"] == bool(result["flaggedResources"])


def test_refresh_moves_enqueued_processing_success(sb, members):
    support = sb.client("support", account_id=members["onboarded"][2])
    check = "HCP4007jGY"
    assert support.describe_trusted_advisor_check_refresh_statuses(checkIds=[check])["statuses"][0]["status"] == "none"
    assert support.refresh_trusted_advisor_check(checkId=check)["status"]["status"] == "enqueued"
    seen = ["enqueued"]
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        status = support.describe_trusted_advisor_check_refresh_statuses(checkIds=[check])["statuses"][0]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "success":
            break
        time.sleep(0.1)
    assert seen == ["enqueued", "processing", "success"]


@pytest.mark.parametrize("call", ["refresh", "statuses"])
def test_auto_refreshed_checks_cannot_be_refreshed(sb, members, call):
    support = sb.client("support", account_id=members["onboarded"][0])
    with pytest.raises(botocore.exceptions.ClientError) as err:
        if call == "refresh":
            support.refresh_trusted_advisor_check(checkId="0Xc6LMYG8P")
        else:
            support.describe_trusted_advisor_check_refresh_statuses(checkIds=["0Xc6LMYG8P"])
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_unknown_check_is_refused(sb):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sb.client("support").describe_trusted_advisor_check_result(checkId="nope")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"

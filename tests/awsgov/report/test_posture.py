"""Tests of include/awsgov/report/posture.py on a store written in a tmp dir with the real table schemas.

``seed_store`` is also used by tests/plugins/test_governance_ui.py (rendering and the live api-server).
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from include.awsgov.core import owners, tables
from include.awsgov.core.store import Store
from include.awsgov.report import posture

TEST_AS_OF = dt.date(2026, 11, 23)  # a Monday: week 2026-W48
TEST_WEEKS = 8
TEST_SKIPPED_WEEK = 2  # index (oldest first) of a week without any collection
TEST_EVIL = "<script>alert(1)</script>"
TEST_ACCT_A, TEST_ACCT_B, TEST_ACCT_C = "111111111111", "222222222222", "333333333333"
TEST_OWNER_A = "alice@example.com"
TEST_OWNER_B = "bob@example.com;<img src=x onerror=alert(2)>"
TEST_RUN_ID = "scheduled__2026-11-23T06:00:00+00:00"
UTC = dt.UTC


def _ts(day: dt.date, hour: int = 6) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def seed_store(root) -> Store:
    """Write 8 weeks of history (one week skipped), hostile strings included, and two archived reports.

    :param root: the store's folder.
    """
    store = Store(str(root))
    days = [TEST_AS_OF - dt.timedelta(weeks=TEST_WEEKS - 1 - i) for i in range(TEST_WEEKS)]
    for i, day in enumerate(days):
        if i == TEST_SKIPPED_WEEK:
            continue
        store.write("accounts", day, pd.DataFrame([
            {"account_id": TEST_ACCT_A, "name": TEST_EVIL, "email": "a@example.com", "status": "ACTIVE", "ou": "Prod",
             "owner": TEST_OWNER_A, "team": "t", "environment": "prod", "tags_json": "{}", "is_management": False,
             "onboarded": True, "baseline_version": "1.2.0"},
            {"account_id": TEST_ACCT_B, "name": "bob-dev", "email": "b@example.com", "status": "ACTIVE",
             "ou": TEST_EVIL, "owner": TEST_OWNER_B, "team": "t", "environment": "dev", "tags_json": "{}",
             "is_management": False, "onboarded": True, "baseline_version": "1.1.0"},
            {"account_id": TEST_ACCT_C, "name": "orphan", "email": "c@example.com", "status": "ACTIVE", "ou": "Root",
             "owner": "", "team": "", "environment": "", "tags_json": "{}", "is_management": False,
             "onboarded": False, "baseline_version": ""},
        ]), schema=tables.ACCOUNTS)
        cov = [(TEST_ACCT_A, "trusted_advisor", "ok", ""), (TEST_ACCT_A, "config", "ok", ""),
               (TEST_ACCT_B, "trusted_advisor", "ok", ""), (TEST_ACCT_B, "config", "error", TEST_EVIL),
               (TEST_ACCT_C, "trusted_advisor", "access_denied", "AccessDenied"),
               (TEST_ACCT_C, "config", "access_denied", "AccessDenied")]
        for acct in (TEST_ACCT_A, TEST_ACCT_B, TEST_ACCT_C):
            store.write("coverage", day, pd.DataFrame(
                [{"account_id": a, "region": "us-east-1", "source": s, "status": st, "error": e, "api_calls": 3}
                 for a, s, st, e in cov if a == acct]), chunk=acct, schema=tables.COVERAGE)
        rules = ([(TEST_ACCT_A, f"rule-{k}", "COMPLIANT") for k in range(i + 1)]
                 + [(TEST_ACCT_A, TEST_EVIL, "NON_COMPLIANT"), (TEST_ACCT_A, "na", "NOT_APPLICABLE"),
                    (TEST_ACCT_B, "rule-0", "COMPLIANT"), (TEST_ACCT_B, "rule-x", "NON_COMPLIANT")])
        store.write("config_rules", day, pd.DataFrame(
            [{"account_id": a, "region": "us-east-1", "rule_name": r, "compliance": c,
              "noncompliant_resources": 2 if c == "NON_COMPLIANT" else 0, "via": "aggregator"}
             for a, r, c in rules]), schema=tables.CONFIG_RULES)
        checks = [(TEST_ACCT_A, "c1", "MFA on root", "security", "error"),
                  (TEST_ACCT_A, "c2", "Idle instances", "cost_optimizing", "warning"),
                  (TEST_ACCT_A, "c3", "ok check", "security", "ok"),
                  (TEST_ACCT_B, "c4", TEST_EVIL, "fault_tolerance", "warning" if i % 2 else "ok")]
        store.write("ta_checks", day, pd.DataFrame(
            [{"account_id": a, "check_id": cid, "check_name": n, "category": cat, "status": st,
              "resources_processed": 5, "resources_flagged": 1, "resources_suppressed": 0,
              "estimated_monthly_savings": 0.0, "checked_at": day.isoformat()} for a, cid, n, cat, st in checks]),
            schema=tables.TA_CHECKS)
        store.write("anomalies", day, pd.DataFrame([
            {"anomaly_id": f"an-{i}", "rule_id": TEST_EVIL, "kind": "static", "account_id": TEST_ACCT_A,
             "region": "us-east-1", "namespace": "AWS/EC2", "metric_name": "CPUUtilization", "dimensions_json": "{}",
             "statistic": "Average", "timestamp": _ts(day, 3), "value": 99.0, "expected": 20.0, "lower": 0.0,
             "upper": 80.0, "score": 4.0, "severity": "high",
             "reason": "Average > 80 in 3 of the last 3 periods of 5min"}]), schema=tables.ANOMALIES)
        store.write("collection_runs", day, pd.DataFrame([
            {"run_id": TEST_RUN_ID if day == TEST_AS_OF else f"scheduled__{day.isoformat()}T06:00:00+00:00",
             "started_at": _ts(day), "finished_at": _ts(day, 7), "accounts": 3, "regions": ["us-east-1"],
             "gaps": 3, "api_calls": 40}]), schema=tables.COLLECTION_RUNS)
    inv = [(TEST_ACCT_A, TEST_OWNER_A, "1.2.0", "onboarded", {"us-east-1": {"trail_logging": True}}),
           (TEST_ACCT_B, TEST_OWNER_B, "1.1.0", "verify_failed",
            {"eu-west-1": {"trail_logging": False, "config_recorder": True}, "us-east-1": {TEST_EVIL: False}})]
    for acct, owner, version, status, verification in inv:
        # An older onboarding of the same account first: the latest row must win.
        for day, ver in ((days[0], "0.9.0"), (days[4], version)):
            store.write("inventory", day, pd.DataFrame([
                {"account_id": acct, "owner_email": owner, "team": "t", "environment": "prod",
                 "regions": ["us-east-1", "eu-west-1"], "baseline_version": ver, "stackset_name": "governance-baseline",
                 "operation_id": "op-1", "onboarded_at": _ts(day), "verified_at": _ts(day, 8),
                 "verification_json": json.dumps(verification), "status": status}]),
                chunk=acct, schema=tables.ONBOARDED_ACCOUNTS)
    store.put_text(f"reports/week=2026-W48/{owners.slug(TEST_OWNER_A)}.html", "<p>report of alice W48</p>")
    store.put_text(f"reports/week=2026-W47/{owners.slug(TEST_OWNER_A)}.html", "<p>report of alice W47</p>")
    store.put_text("reports/week=2026-W48/org-summary.html", "<p>org summary W48</p>")
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return seed_store(tmp_path_factory.mktemp("posture-store"))


def test_org_view_current_figures(store):
    view = posture.org_posture(store)
    cur = view["current"]
    assert cur["day"] == TEST_AS_OF.isoformat()
    assert (cur["accounts"], cur["covered"], cur["gaps"]) == (3, 2, 3)
    assert cur["not_covered"] == [TEST_ACCT_C]
    # A: 8 compliant + 1 non-compliant, B: 1 + 1; NOT_APPLICABLE ignored -> 9 / 11.
    assert cur["config_pct"] == pytest.approx(round(100 * 9 / 11, 1))
    assert (cur["ta_red"], cur["ta_yellow"]) == (1, 2)
    assert cur["ta_by_category"] == {"cost_optimizing": {"red": 0, "yellow": 1},
                                     "fault_tolerance": {"red": 0, "yellow": 1}, "security": {"red": 1, "yellow": 0}}
    assert cur["anomalies"] == 1


def test_org_view_trends_have_one_point_per_week_and_gaps(store):
    view = posture.org_posture(store)
    assert view["weeks"] == [f"2026-W{n}" for n in range(41, 49)]
    trend = view["trends"]["config_pct"]
    assert len(trend) == TEST_WEEKS and trend[TEST_SKIPPED_WEEK] is None
    assert trend[0] == pytest.approx(round(100 * 2 / 4, 1))
    assert view["trends"]["covered"] == [2, 2, None, 2, 2, 2, 2, 2]
    assert view["trends"]["ta_by_category"]["fault_tolerance"]["yellow"] == [0, 1, None, 1, 0, 1, 0, 1]


def test_org_view_lists_owners_reports_and_runs(store):
    view = posture.org_posture(store)
    assert [o["owner"] for o in view["owners"]] == ["", owners.canonical(TEST_OWNER_B), TEST_OWNER_A]
    assert view["org_reports"] == ["2026-W48"]
    assert view["runs"][0]["run_id"] == TEST_RUN_ID
    assert len(view["runs"]) == TEST_WEEKS - 1


def test_as_of_limits_history(store):
    view = posture.org_posture(store, as_of=TEST_AS_OF - dt.timedelta(weeks=1))
    assert view["weeks"][-1] == "2026-W47"
    assert view["current"]["day"] == (TEST_AS_OF - dt.timedelta(weeks=1)).isoformat()


def test_onboarding_latest_row_and_failures(store):
    rows = {r["account_id"]: r for r in posture.onboarding(store)}
    assert set(rows) == {TEST_ACCT_A, TEST_ACCT_B}
    assert rows[TEST_ACCT_A]["baseline_version"] == "1.2.0" and rows[TEST_ACCT_A]["failures"] == []
    assert rows[TEST_ACCT_B]["status"] == "verify_failed"
    assert rows[TEST_ACCT_B]["failures"] == ["eu-west-1: trail_logging", f"us-east-1: {TEST_EVIL}"]
    assert rows[TEST_ACCT_B]["verified_at"] == pd.Timestamp(_ts(TEST_AS_OF - dt.timedelta(weeks=3), 8))


def test_account_view_details(store):
    view = posture.account_view(store, TEST_ACCT_A)
    assert view["account"]["name"] == TEST_EVIL
    assert [c["check_name"] for c in view["ta_checks"]] == ["MFA on root", "Idle instances"]
    assert [r["rule_name"] for r in view["config_rules"]] == [TEST_EVIL]
    assert view["reports"] == ["2026-W48", "2026-W47"]
    assert view["onboarding"]["baseline_version"] == "1.2.0"
    assert view["current"]["config_pct"] == pytest.approx(round(100 * 8 / 9, 1))


def test_account_view_unknown_account_is_none(store):
    assert posture.account_view(store, "999999999999") is None


def test_owner_view_by_slug(store):
    slug = owners.slug(owners.canonical(TEST_OWNER_B))
    view = posture.owner_posture(store, slug)
    assert view["owner"] == owners.canonical(TEST_OWNER_B)
    assert [a["account_id"] for a in view["accounts"]] == [TEST_ACCT_B]
    assert view["reports"] == []
    assert view["trends"]["ta_yellow"] == [0, 1, None, 1, 0, 1, 0, 1]


@pytest.mark.parametrize("slug", [pytest.param("../../etc", id="traversal"), pytest.param("A B", id="bad-chars"),
                                  pytest.param("no-such-owner", id="unknown")])
def test_owner_view_refuses_bad_or_unknown_slug(store, slug):
    assert posture.owner_posture(store, slug) is None


@pytest.mark.parametrize(("week", "slug"), [pytest.param("2026-W48/..", "org-summary", id="week-traversal"),
                                            pytest.param("2026-W48", "../secret", id="slug-traversal"),
                                            pytest.param("latest", "org-summary", id="not-a-week")])
def test_report_path_refuses_malformed_names(week, slug):
    assert posture.report_path(week, slug) is None


def test_empty_store_gives_empty_views(tmp_path):
    view = posture.org_posture(Store(str(tmp_path)))
    assert view["current"] is None and view["accounts"] == [] and view["onboarding"] == []
    assert view["trends"]["covered"] == [None] * TEST_WEEKS

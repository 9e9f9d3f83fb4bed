"""The weekly report's data, built from a store of several weeks: counts, deltas, ages, scores, ranking, CSV."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io

import pandas as pd
import pytest

from include.awsgov.core import tables
from include.awsgov.core.render import csv_cell
from include.awsgov.report import catalog as rules_catalog
from include.awsgov.report import suppressions, views
from include.awsgov.report import week as report
from include.awsgov.report.catalog import CatalogError, load_catalog
from tests.fixtures import report_store as rs

TEST_OPTIONS = {"governance_address": rs.GOVERNANCE, "max_actions": 10, "max_resources_per_action": 3,
                "max_list_items": 20, "expiry_warning_days": 14, "exceptions_file": "exceptions.yaml"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return rs.scenario_copy(tmp_path_factory.mktemp("report") / "store")


@pytest.fixture(scope="module")
def data(store):
    return report.build_week(store, report.Week.parse(rs.WEEK), catalog=load_catalog(),
                             exceptions=suppressions.parse(rs.EXCEPTIONS), ou_owners=rs.SETTINGS["ou_owners"],
                             fallback=rs.GOVERNANCE)


@pytest.fixture(scope="module")
def recs(data):
    return views.Records(data)


def _row(data, key):
    rows = data.findings[data.findings["finding_id"] == rs.BY_KEY[key].finding_id]
    assert len(rows) == 1, key
    return rows.iloc[0]


# -- weeks --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("reference", "week"), [
    pytest.param(dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC), "2026-W48", id="monday-run-reports-last-week"),
    pytest.param(dt.date(2026, 11, 29), "2026-W47", id="sunday-week-not-complete"),
    pytest.param(dt.date(2027, 1, 4), "2026-W53", id="year-with-53-weeks"),
])
def test_last_complete_week(reference, week):
    assert report.last_complete_week(reference).label == week


@pytest.mark.parametrize("label", ["2026-48", "2026-W54", "2025-W53", "W48", ""])
def test_week_parse_refuses_non_iso_weeks(label):
    with pytest.raises(ValueError, match="ISO week"):
        report.Week.parse(label)


def test_week_bounds():
    week = report.Week.parse("2026-W48")
    assert (week.monday, week.sunday, week.shift(-1).label) == (dt.date(2026, 11, 23), dt.date(2026, 11, 29),
                                                                "2026-W47")


def test_week_without_collection_raises_naming_it(store):
    with pytest.raises(report.NoDataError, match=r"2026-W50 .* last collection: 2026-11-29"):
        report.build_week(store, report.Week.parse("2026-W50"), catalog=load_catalog(),
                          exceptions=suppressions.Exceptions(()), ou_owners={}, fallback=rs.GOVERNANCE)


# -- counts equal the store's -----------------------------------------------------------------------------------
def test_snapshot_days(data):
    assert (data.as_of, data.prev_as_of) == (rs.AS_OF, rs.PREV_AS_OF)
    assert data.trend_weeks == [f"2026-W{w}" for w in range(40, 49)]


def test_open_findings_equal_the_stores_open_rows(store, data):
    ta = store.read("ta_findings", rs.AS_OF, rs.AS_OF, schema=tables.TA_FINDINGS)
    cf = store.read("config_findings", rs.AS_OF, rs.AS_OF, schema=tables.CONFIG_FINDINGS)
    open_ids = set(ta.loc[ta["status"].isin(["error", "warning"]) & ~ta["is_suppressed"], "finding_id"]) | set(
        cf.loc[cf["compliance"] == "NON_COMPLIANT", "finding_id"])
    assert set(data.findings["finding_id"]) == open_ids
    suppressed = {rs.BY_KEY["F5"].finding_id, rs.BY_KEY["F9"].finding_id}
    assert set(data.findings.loc[~data.findings["counted"], "finding_id"]) == suppressed
    per_account = data.findings[data.findings["counted"]].groupby("account_id").size().to_dict()
    assert data.accounts.set_index("account_id")["open"].to_dict() == per_account


@pytest.mark.parametrize(("owner", "expected"), [
    pytest.param("alice@example.com", {"open": 5, "new": 1, "new_critical": 1, "reopened": 1, "persisting": 3,
                                       "resolved": 1, "overdue": 2, "suppressed": 1, "expiring": 0, "expired": 0},
                 id="alice-two-accounts"),
    pytest.param("o'connor@example.com", {"open": 2, "new": 1, "new_critical": 0, "reopened": 0, "persisting": 1,
                                          "resolved": 0, "overdue": 1, "suppressed": 1, "expiring": 1, "expired": 1},
                 id="oconnor-exceptions"),
    pytest.param("dave@example.com", {"open": 1, "new": 0, "persisting": 1, "overdue": 1}, id="dave-resource-tag"),
    pytest.param(rs.SANDBOX_OWNERS, {"open": 1, "new": 1, "resolved": 0}, id="ou-default"),
    pytest.param(rs.GOVERNANCE, {"open": 1, "persisting": 1, "overdue": 1}, id="fallback-unowned"),
])
def test_owner_counts(recs, owner, expected):
    counts = views.owner_view(recs, owner, TEST_OPTIONS)["counts"]
    assert {k: counts[k] for k in expected} == expected


def test_owners_are_every_resolved_owner(data):
    assert data.owners == sorted(["alice@example.com", "dave@example.com", "o'connor@example.com",
                                  rs.SANDBOX_OWNERS, rs.GOVERNANCE, "bad-owner\r\nbcc: evil@example.net"])


def test_org_counts_sum_the_owners(recs):
    org = views.org_view(recs, TEST_OPTIONS)
    assert org["counts"]["open"] == sum(o["open"] for o in org["owners"]) == 11
    assert org["counts"]["resolved"] == 1 and org["counts"]["unverified"] == 1
    assert org["unowned_count"] == 1


# -- deltas across weeks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "delta"), [
    pytest.param("F1", report.NEW, id="first-seen-this-week"),
    pytest.param("F11", report.NEW, id="first-seen-on-as-of"),
    pytest.param("F4", report.REOPENED, id="open-weeks-ago-closed-then-open"),
    pytest.param("F2", report.PERSISTING, id="open-last-week"),
])
def test_delta(data, key, delta):
    assert _row(data, key)["delta"] == delta


def test_resolved_needs_a_scan_to_count_as_fixed(data):
    assert set(data.resolved["finding_id"]) == {rs.BY_KEY["F3"].finding_id}
    assert rs.BY_KEY["F15"].finding_id not in set(data.findings["finding_id"])  # not scanned on as_of
    assert data.unverified == 1


def test_age_overdue_and_capped_age(data):
    f2, f7, f8 = _row(data, "F2"), _row(data, "F7"), _row(data, "F8")
    assert (f2["age_days"], f2["overdue"]) == (53, True)  # high, SLA 30 days
    assert (f8["age_days"], f8["overdue"]) == (11, False)
    assert f7["age_capped"] and not _row(data, "F1")["age_capped"]  # seen since the first day read


def test_expired_exception_counts_again_and_suppressed_ones_do_not(data, recs):
    assert _row(data, "F10")["counted"] and _row(data, "F10")["exception_status"] == "expired"
    assert not _row(data, "F9")["counted"] and _row(data, "F9")["exception_status"] == "expiring"
    alice = views.owner_view(recs, "alice@example.com", TEST_OPTIONS)
    assert rs.BY_KEY["F5"].check not in {a["check"] for a in alice["actions"]}
    assert [e["finding_id"] for e in alice["exceptions"]] == [rs.BY_KEY["F5"].finding_id]
    assert [e.id for e in data.unused_exceptions] == ["EXC-UNUSED"]


# -- score cards --------------------------------------------------------------------------------------------------
def test_scorecard_of_an_account(store, data):
    card = data.accounts.set_index("account_id").loc["111111111111"]
    rules = store.read("config_rules", rs.AS_OF, rs.AS_OF, schema=tables.CONFIG_RULES)
    mine = rules[rules["account_id"] == "111111111111"]
    assert card["config_pct"] == round(100 * (mine["compliance"] == "COMPLIANT").mean(), 1) == 90.0
    assert card["ta_red"] == {"security": 1} and card["ta_yellow"] == {"cost_optimizing": 1}
    assert card["savings"] == 42.5
    assert len(card["trend_pct"]) == len(card["trend_open"]) == 9
    assert card["trend_open"][-1] == card["open"] == 4 and card["trend_open"][0] == 0


def test_scorecard_owner_layers(data):
    layers = data.accounts.set_index("account_id")["owner_layer"].to_dict()
    assert layers["444444444444"] == "ou" and layers["555555555555"] == "fallback"


def test_gaps_and_anomalies_of_the_week(data):
    assert set(zip(data.gaps["account_id"], data.gaps["status"], strict=True)) == {
        ("444444444444", "access_denied"), ("555555555555", "no_support_plan")}
    assert sorted(data.anomalies["anomaly_id"]) == ["an-0", "an-1", "an-2"]  # an-3 is last week's
    assert data.last_run["run_id"].startswith("scheduled__2026-11-29")


# -- ranking ------------------------------------------------------------------------------------------------------
def test_actions_rank_severity_then_prod_then_age(recs):
    acts = views.actions(recs.findings, 20, 3)
    order = [rules_catalog.SEVERITIES.index(a["severity"]) for a in acts]
    assert order == sorted(order)
    critical = [a for a in acts if a["severity"] == "critical"]
    assert [a["check"] for a in critical][0] == "Pfx0RwqBli"  # prod, 18 days
    assert critical[-1]["check"] == "root-account-mfa-enabled"  # the only non-prod critical


def test_actions_group_one_fix_across_resources(tmp_path):
    store = rs.build_scaled(tmp_path / "store", owners=4, per_account=12)
    data = report.build_week(store, report.Week.parse(rs.WEEK), catalog=load_catalog(),
                             exceptions=suppressions.Exceptions(()), ou_owners={}, fallback=rs.GOVERNANCE)
    acts = views.actions(views.Records(data).findings, 100, 2)
    keys = [(a["source"], a["check"]) for a in acts]
    assert len(keys) == len(set(keys))
    assert sum(a["count"] for a in acts) == int(data.findings["counted"].sum()) == 48
    big = max(acts, key=lambda a: a["count"])
    assert big["count"] > 2 and len(big["resources"]) == 2 and big["more"] == big["count"] - 2
    assert big["accounts"] == 4


# -- catalog ------------------------------------------------------------------------------------------------------
def test_catalog_matches_deployed_rule_names_by_longest_contained_name():
    catalog = load_catalog()
    assert catalog.info("config", "securityhub-s3-bucket-public-read-prohibited-1a2b").severity == "critical"
    unknown = catalog.info("trusted_advisor", "nope", check_name="Some check", category="security", status="error")
    assert (unknown.known, unknown.title, unknown.severity) == (False, "Some check", "high")
    assert unknown.remediation.endswith("security-checks.html")


def test_catalog_rejects_a_severity_outside_the_closed_list(tmp_path):
    import yaml

    doc = yaml.safe_load(rules_catalog.CATALOG_PATH.read_text())
    bad = copy.deepcopy(doc)
    bad["config_rules"]["restricted-ssh"]["severity"] = "urgent"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(CatalogError, match="config_rules.restricted-ssh.severity"):
        load_catalog(path)


def test_console_links_encode_hostile_resource_ids():
    url = load_catalog().console_url("config", region="eu-west-1\"><x", resource_type="AWS::S3::Bucket",
                                     resource_id="a\"><script>&b=1")
    assert url.startswith("https://us-east-1.console.aws.amazon.com/")
    assert '"' not in url and "<" not in url and "&b=1" not in url


# -- CSV ----------------------------------------------------------------------------------------------------------
def test_csv_has_every_open_finding_of_the_owner_and_defuses_formulas(data, recs):
    rows = list(csv.DictReader(io.StringIO(views.findings_csv(recs, "alice@example.com").decode("utf-8-sig"))))
    assert len(rows) == 6  # 5 counted + 1 under exception
    assert {r["finding_id"] for r in rows} == set(data.findings.loc[data.findings["owner"] == "alice@example.com",
                                                                      "finding_id"])
    assert csv_cell("=HYPERLINK(\"http://evil\")") == "'=HYPERLINK(\"http://evil\")"
    assert csv_cell("@SUM(A1)").startswith("'") and csv_cell("plain") == "plain"


# -- ages beyond the window -----------------------------------------------------------------------------------------
def test_first_seen_index_makes_ages_exact_beyond_the_window(store):
    def week(first_seen, since=None):
        return report.build_week(store, report.Week.parse(rs.WEEK), catalog=load_catalog(),
                                 exceptions=suppressions.Exceptions(()), ou_owners={}, fallback=rs.GOVERNANCE,
                                 history_weeks=2, first_seen=first_seen, first_seen_since=since)

    short = week(None)
    f2 = short.findings.set_index("finding_id").loc[rs.BY_KEY["F2"].finding_id]
    assert (f2["age_days"], bool(f2["age_capped"]), bool(f2["overdue"])) == (18, True, False)  # window: W46..W48
    known = {rs.BY_KEY["F2"].finding_id: "2026-10-07"}
    f2 = week(known, "2026-09-30").findings.set_index("finding_id").loc[rs.BY_KEY["F2"].finding_id]
    assert (f2["age_days"], bool(f2["age_capped"]), bool(f2["overdue"])) == (53, False, True)


def test_first_seen_index_keeps_the_earliest_day(tmp_path):
    from include.awsgov.core.store import Store

    scratch = Store(str(tmp_path / "s"))
    assert report.load_first_seen(scratch) == ({}, None)
    report.save_first_seen(scratch, {}, None, {"a": "2026-11-20", "b": "2026-11-22"}, "2026-11-18")
    known, since = report.load_first_seen(scratch)
    size = report.save_first_seen(scratch, known, since, {"a": "2026-11-25", "b": "2026-11-01", "c": "2026-11-29"},
                                  "2026-10-28")
    assert size == 3
    assert report.load_first_seen(scratch) == ({"a": "2026-11-20", "b": "2026-11-01", "c": "2026-11-29"},
                                               "2026-10-28")


def test_first_open_days_read_a_day_at_a_time_equal_the_whole_window(store, data):
    # build_week reads the window's days one at a time as ids (memory: one day, not nine weeks of rows); the first
    # day each finding was open must be what grouping the whole window's open findings gave.
    whole = report._open_findings(store, data.window_start, data.as_of)
    assert not whole.empty and whole["dt"].nunique() > 2
    want = whole.groupby("finding_id")["dt"].min().to_dict()
    assert report._first_open_days(store, data.window_start, data.as_of) == want
    assert data.observed_first_seen == want
    for day in sorted({dt.date.fromisoformat(d) for d in whole["dt"]}):
        one = report._open_findings(store, day, day)
        assert report._open_ids(store, day) == list(one["finding_id"])
        pd.testing.assert_frame_equal(one, whole[whole["dt"] == day.isoformat()].reset_index(drop=True))

"""Exceptions file: schema, matching by id and by pattern, and expiry (active, expiring, expired)."""

from __future__ import annotations

import copy
import datetime as dt

import pandas as pd
import pytest
import yaml

from include.awsgov.report import suppressions as sup
from tests.fixtures import report_store as rs

TEST_DAY = dt.date(2026, 11, 29)
TEST_WARN_DAYS = 14


def _findings():
    return pd.DataFrame([
        {"finding_id": rs.BY_KEY[k].finding_id, "account_id": rs.BY_KEY[k].account, "region": rs.BY_KEY[k].region,
         "check": rs.BY_KEY[k].check,
         "resource": (f"{rs.BY_KEY[k].rtype}/{rs.BY_KEY[k].resource}" if rs.BY_KEY[k].source == "config"
                      else rs.BY_KEY[k].resource)}
        for k in ("F1", "F5", "F9", "F10")])


def test_apply_marks_active_expiring_expired_and_none():
    out = sup.parse(rs.EXCEPTIONS).apply(_findings(), TEST_DAY, TEST_WARN_DAYS).set_index("finding_id")
    status = {k: out.loc[rs.BY_KEY[k].finding_id, "exception_status"] for k in ("F1", "F5", "F9", "F10")}
    assert status == {"F1": "", "F5": sup.ACTIVE, "F9": sup.EXPIRING, "F10": sup.EXPIRED}
    assert out.loc[rs.BY_KEY["F10"].finding_id, "exception_id"] == "EXC-EXPIRED"
    assert out.loc[rs.BY_KEY["F9"].finding_id, "exception_expires"] == "2026-12-09"


@pytest.mark.parametrize(("expires", "status"), [
    pytest.param("2026-11-29", sup.EXPIRING, id="last-day-still-applies"),
    pytest.param("2026-11-28", sup.EXPIRED, id="day-after-expiry"),
    pytest.param("2026-12-13", sup.EXPIRING, id="exactly-14-days"),
    pytest.param("2026-12-14", sup.ACTIVE, id="15-days"),
])
def test_expiry_boundaries(expires, status):
    doc = {"version": 1, "exceptions": [{"id": "E", "finding_id": rs.BY_KEY["F1"].finding_id, "reason": "why",
                                         "approver": "a@example.com", "ticket": "T-1", "expires": expires}]}
    assert sup.parse(doc).items[0].status(TEST_DAY, TEST_WARN_DAYS) == status


def test_suppressing_exception_wins_over_an_expired_one():
    doc = copy.deepcopy(rs.EXCEPTIONS)
    doc["exceptions"].append({"id": "EXC-RENEWED", "match": {"check": "rds-storage-encrypted"}, "reason": "renewed",
                              "approver": "a@example.com", "ticket": "T-9", "expires": "2027-01-31"})
    out = sup.parse(doc).apply(_findings(), TEST_DAY, TEST_WARN_DAYS).set_index("finding_id")
    assert out.loc[rs.BY_KEY["F10"].finding_id, "exception_id"] == "EXC-RENEWED"


def test_unused_lists_exceptions_matching_nothing():
    exceptions = sup.parse(rs.EXCEPTIONS)
    assert [e.id for e in exceptions.unused(exceptions.apply(_findings(), TEST_DAY, TEST_WARN_DAYS))] == ["EXC-UNUSED"]


def test_yaml_dates_unquoted_are_accepted(tmp_path):
    path = tmp_path / "exc.yaml"
    path.write_text("version: 1\nexceptions:\n  - id: E1\n    match: {region: eu-*}\n    reason: ok ok\n"
                    "    approver: a@example.com\n    ticket: T-1\n    expires: 2027-01-01\n")
    assert sup.load_exceptions(path).items[0].expires == dt.date(2027, 1, 1)


@pytest.mark.parametrize(("change", "message"), [
    pytest.param({"expires": "2026-02-30"}, "expires", id="impossible-date"),
    pytest.param({"finding_id": "abc"}, "finding_id", id="bad-finding-id"),
    pytest.param({"match": {}}, "match", id="empty-pattern"),
    pytest.param({"match": {"colour": "red"}}, "colour", id="unknown-pattern-field"),
    pytest.param({"approver": ""}, "approver", id="no-approver"),
    pytest.param({"extra": 1}, "extra", id="unknown-key"),
])
def test_invalid_entries_are_refused_naming_the_field(change, message):
    doc = copy.deepcopy(rs.EXCEPTIONS)
    doc["exceptions"][0].update(change)
    with pytest.raises(sup.ExceptionsError, match=message):
        sup.parse(doc)


def test_finding_id_and_match_together_are_refused():
    doc = copy.deepcopy(rs.EXCEPTIONS)
    doc["exceptions"][2]["match"] = {"region": "*"}
    with pytest.raises(sup.ExceptionsError, match="exceptions.2"):
        sup.parse(doc)


def test_duplicate_ids_are_refused():
    doc = copy.deepcopy(rs.EXCEPTIONS)
    doc["exceptions"][1]["id"] = doc["exceptions"][0]["id"]
    with pytest.raises(sup.ExceptionsError, match="duplicate id EXC-ACTIVE"):
        sup.parse(doc)


def test_packaged_example_file_is_valid():
    exceptions = sup.load_exceptions()
    assert exceptions.items and all(e.approver and e.ticket for e in exceptions.items)
    assert yaml.safe_load(sup.EXCEPTIONS_PATH.read_text())["version"] == 1


def test_missing_file_means_no_exceptions(tmp_path):
    assert sup.load_exceptions(tmp_path / "absent.yaml").items == ()

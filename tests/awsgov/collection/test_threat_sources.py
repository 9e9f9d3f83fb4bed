"""GuardDuty and Macie collection (collection/guardduty.py, macie.py via runner.py) against the sandbox
under throttling, latency and refused read roles, per account and through the delegated administrator, compared
with the sandbox's truth; a rerun writes identical files."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from include.awsgov.collection import guardduty, macie
from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess
from tests.fixtures.store_files import store_files

SOURCES = ("guardduty", "macie")


def test_severity_bands_follow_guardduty():
    assert [guardduty.severity_label(s) for s in (1.0, 3.9, 4.0, 6.9, 7.0, 8.9, 9.0, 10.0)] == [
        "low", "low", "medium", "medium", "high", "high", "critical", "critical"]


def test_guardduty_row_keeps_hostile_names_and_stable_id():
    finding = {"AccountId": "210987654321", "Region": "eu-west-1", "Id": "abc",
               "Type": "Backdoor:EC2/C&CActivity.B!DNS",
               "Title": "t", "Severity": 8.0, "Resource": {"ResourceType": "Instance", "InstanceDetails": {
                   "InstanceId": "i-1", "Tags": [{"Key": "Name", "Value": "<script>alert(1)</script>"}]}},
               "Service": {"Count": 3, "EventFirstSeen": "2026-11-20T01:00:00.000Z",
                           "EventLastSeen": "2026-11-23T01:00:00.000Z"}}
    row = guardduty.finding_row(finding, "account")
    assert row["resource_name"] == "<script>alert(1)</script>" and row["resource_id"] == "i-1"
    assert row["finding_id"] == tables.finding_id("guardduty", "210987654321", "eu-west-1",
                                                  "Backdoor:EC2/C&CActivity.B!DNS", "abc")
    assert (row["severity_label"], row["count"]) == ("high", 3)
    assert row["first_seen"] == dt.datetime(2026, 11, 20, 1, tzinfo=dt.UTC)


def test_macie_row_lists_sensitive_categories_and_detections():
    finding = {"accountId": "210987654321", "region": "us-east-1", "id": "m1",
               "type": "SensitiveData:S3Object/Multiple",
               "category": "CLASSIFICATION", "severity": {"description": "High", "score": 3}, "count": 2,
               "resourcesAffected": {"s3Bucket": {"name": "line one\nline two"}, "s3Object": {"key": "a.csv"}},
               "classificationDetails": {"result": {"sensitiveData": [
                   {"category": "PERSONAL_INFORMATION", "totalCount": 5},
                   {"category": "FINANCIAL_INFORMATION", "totalCount": 2}]}}}
    row = macie.finding_row(finding, "admin")
    assert row["sensitive_data"] == ["FINANCIAL_INFORMATION", "PERSONAL_INFORMATION"]
    assert (row["detections"], row["severity"], row["bucket"], row["via"]) == (7, "high", "line one\nline two",
                                                                              "admin")


# -- against the sandbox ----------------------------------------------------------------------------------------
def _access(sandbox):
    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTTHREATS00001",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-threats", retry_mode="standard")


def _run(sandbox, store, day, targets, admin: str | None) -> None:
    from include.awsgov.collection import runner

    admins = tuple((s, admin) for s in SOURCES) if admin else ()
    opts = runner.Options(regions=tuple(sandbox.info["regions"]), sources=SOURCES, delegated_admins=admins)
    runner.collect_aggregate(_access(sandbox), store, day, targets, opts)  # the delegated administrators' listings
    runner.collect_accounts(_access(sandbox), store, day, targets, opts)


def _files(store) -> dict:
    return store_files(store.root)


@pytest.fixture(scope="module")
def threats(sandbox, tmp_path_factory):
    """GuardDuty and Macie of the organization per account (twice) and through the delegated administrator, under
    30 % throttling, latency and two accounts refusing AssumeRole; with the truth of the day."""
    from include.awsgov.core.store import Store

    logging.getLogger("botocore.credentials").setLevel(logging.CRITICAL)
    accounts = sandbox.info["accounts"]
    members = [a["id"] for a in accounts if a["read_role"] and a["status"] == "ACTIVE"]
    active = [a["id"] for a in accounts if a["status"] == "ACTIVE"]
    mgmt = sandbox.info["management_account_id"]
    targets = sorted([mgmt, *active])
    denied = set(members[:2]) | {a["id"] for a in accounts if not a["read_role"]}
    day = sandbox.today()
    stores = {k: Store(tmp_path_factory.mktemp(k) / "store") for k in ("account", "rerun", "admin")}
    sandbox.set_faults(throttle_rate=0.3, latency_ms=10, deny_assume_accounts=members[:2], seed=11)
    try:
        _run(sandbox, stores["account"], day, targets, None)
        _run(sandbox, stores["rerun"], day, targets, None)
        sandbox.reset_calls()
        _run(sandbox, stores["admin"], day, targets, mgmt)
        admin_calls = sandbox.calls()["calls"]
    finally:
        sandbox.clear_faults()
    truth = sandbox.truth(date=day, sections=list(SOURCES))
    return {"stores": stores, "day": day, "targets": targets, "denied": denied, "mgmt": mgmt, "truth": truth,
            "regions": sandbox.info["regions"], "admin_calls": admin_calls}


def _read(threats, mode, table):
    day = threats["day"]
    return threats["stores"][mode].read(table, day, day, schema=getattr(tables, table.upper()))


def _truth_ids(threats, source, accounts_regions):
    truth = threats["truth"][source]["accounts"]
    return {(a, r, f["id"]) for a, r in accounts_regions for f in truth[a][r]["findings"]
            if not (f["service"]["archived"] if source == "guardduty" else f["archived"])}


def _expected_status(threats, source, account, region, mode):
    state = threats["truth"][source]["accounts"][account][region]
    if mode == "admin":
        if account == threats["mgmt"]:
            return "ok" if state["enabled"] else "not_enabled"
        return "ok" if state["relationship"] == "Enabled" else "not_enabled"
    if account in threats["denied"]:
        return "access_denied"
    return "ok" if state["enabled"] else "not_enabled"


@pytest.mark.parametrize("mode", [pytest.param("account", id="per-account"), pytest.param("admin", id="admin")])
def test_coverage_records_every_account_region_and_source_with_the_right_status(threats, mode):
    cov = _read(threats, mode, "coverage")
    got = {(r.account_id, r.region, r.source): (r.status, r.error) for r in cov.itertuples()}
    want = {(a, r, s): _expected_status(threats, s, a, r, mode) for a in threats["targets"]
            for r in threats["regions"] for s in SOURCES}
    assert {k: v[0] for k, v in got.items()} == want
    assert {"ok", "not_enabled"} <= set(want.values())  # the sandbox seeds both
    for (_account, _region, _source), (status, error) in got.items():
        if status == "access_denied":
            assert "AssumeRole" in error
        if status == "not_enabled":
            assert "not enabled" in error.lower()


@pytest.mark.parametrize("mode", [pytest.param("account", id="per-account"), pytest.param("admin", id="admin")])
@pytest.mark.parametrize("source,table,id_column", [
    pytest.param("guardduty", "guardduty_findings", "guardduty_id", id="guardduty"),
    pytest.param("macie", "macie_findings", "macie_id", id="macie")])
def test_collected_findings_equal_the_truth_where_covered(threats, mode, source, table, id_column):
    cov = _read(threats, mode, "coverage")
    ok = {(r.account_id, r.region) for r in cov.itertuples() if r.source == source and r.status == "ok"}
    rows = _read(threats, mode, table)
    want = _truth_ids(threats, source, ok)
    assert want, "the sandbox seeds open findings in covered accounts"
    assert set(zip(rows["account_id"], rows["region"], rows[id_column], strict=True)) == want
    assert len(rows) == len(want) and not rows["finding_id"].duplicated().any()
    assert set(rows["via"]) == {"admin" if mode == "admin" else "account"}


def test_guardduty_rows_carry_severity_resource_and_times_as_seeded(threats):
    rows = _read(threats, "admin", "guardduty_findings")
    truth = {f["id"]: f for acc in threats["truth"]["guardduty"]["accounts"].values() for reg in acc.values()
             for f in reg["findings"]}
    for row in rows.to_dict("records"):
        f = truth[row["guardduty_id"]]
        assert (row["type"], row["severity"], row["count"]) == (f["type"], f["severity"], f["service"]["count"])
        assert row["severity_label"] == guardduty.severity_label(f["severity"])
        assert row["first_seen"].isoformat().startswith(f["service"]["eventFirstSeen"][:19])
        assert row["last_seen"].isoformat().startswith(f["service"]["eventLastSeen"][:19])
        assert row["resource_name"] and row["resource_type"] == f["resource"]["resourceType"]
    hostile = [n for n in rows["resource_name"] if any(c in n for c in "<\"\n")]
    assert hostile, "hostile resource names reach the store unchanged"


def test_delegated_administrator_reads_accounts_whose_role_is_refused(threats):
    admin = _read(threats, "admin", "coverage")
    refused = [a for a in threats["denied"] if a in threats["targets"]]
    rows = admin[admin["account_id"].isin(refused)]
    assert not rows.empty and "access_denied" not in set(rows["status"])


def test_delegated_administrator_lists_each_region_once_not_each_account(threats):
    calls = [c for c in threats["admin_calls"] if c["service"] in ("guardduty", "macie2")]
    assert {c["account"] for c in calls} == {threats["mgmt"]}  # nothing through the members' read roles
    served: dict[tuple[str, str], int] = {}
    for c in calls:
        key = (c["service"], c["action"])
        served[key] = served.get(key, 0) + c["count"] - c["throttled"]
    regions = len(threats["regions"])
    pages = {"guardduty": 50, "macie2": 25}  # the models' largest page
    for service in ("guardduty", "macie2"):
        # The members listed once per region, paged: ceil(members / page) calls, not one per account.
        assert regions <= served[(service, "ListMembers")] <= regions * -(-len(threats["targets"]) // pages[service])
        # One listing per region for the whole organization: pages of 50, not one listing per account.
        assert served[(service, "ListFindings")] < len(threats["targets"]) * regions / 2, served
    assert ("guardduty", "GetMembers") not in served
    assert ("macie2", "GetMember") not in served


def test_rerun_of_the_day_under_throttling_writes_identical_files(threats):
    assert _files(threats["stores"]["account"]) == _files(threats["stores"]["rerun"])

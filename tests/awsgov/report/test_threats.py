"""GuardDuty and Macie in the weekly report (report/threats.py via week.py, views.py): owner
resolution, exceptions, deltas, a gap is not a fix, the threats section puts new high/critical first, and the
rendered sections escape hostile names."""

from __future__ import annotations

import copy
import datetime as dt

import pandas as pd
import pytest

from include.awsgov.core import render, tables
from include.awsgov.report import suppressions, week
from include.awsgov.report import views as views
from include.awsgov.report.catalog import load_catalog
from tests.fixtures import report_store as rs

TEST_OPTIONS = {"governance_address": rs.GOVERNANCE, "max_actions": 10, "max_resources_per_action": 3,
                "max_list_items": 20, "expiry_warning_days": 14, "exceptions_file": "exceptions.yaml"}
ALICE_ACCOUNT, HOSTILE_ACCOUNT = "111111111111", "222222222222"
IMG = "<img src=x onerror=alert(2)>"
# key: (account, region, type, severity score, resource name, days open)
GUARDDUTY = {
    "persist": (ALICE_ACCOUNT, "us-east-1", "UnauthorizedAccess:EC2/SSHBruteForce", 7.5, "web-1", ("prev", "now")),
    "fixed": (ALICE_ACCOUNT, "us-east-1", "Exfiltration:S3/AnomalousBehavior", 5.0, "logs", ("prev",)),
    "gap": (HOSTILE_ACCOUNT, "eu-west-1", "Policy:S3/BucketBlockPublicAccessDisabled", 2.0, "b", ("prev",)),
    "new_critical": (ALICE_ACCOUNT, "eu-west-1", "AttackSequence:S3/CompromisedData", 9.4, "data", ("now",)),
    "new_low": (ALICE_ACCOUNT, "us-east-1", "UnauthorizedAccess:EC2/SSHBruteForce", 2.0, "batch-7", ("now",)),
    "new_high_hostile": (HOSTILE_ACCOUNT, "us-east-1", "Backdoor:EC2/C&CActivity.B!DNS", 8.0, rs.HOSTILE, ("now",)),
    "suppressed": (ALICE_ACCOUNT, "us-east-1", "Recon:EC2/PortProbeUnprotectedPort", 5.0, "bastion", ("now",)),
}
MACIE = {
    "personal": (ALICE_ACCOUNT, "us-east-1", "SensitiveData:S3Object/Personal", "high", IMG,
                 ["PERSONAL_INFORMATION"], 17),
    "public": (HOSTILE_ACCOUNT, "us-east-1", "Policy:IAMUser/S3BucketPublic", "low", "public-site", [], 0),
}


def _gd_row(key: str, day: dt.date) -> dict:
    account, region, ftype, score, name, _ = GUARDDUTY[key]
    from include.awsgov.collection import guardduty

    seen = dt.datetime.combine(day, dt.time(1), tzinfo=dt.UTC)
    return {"finding_id": tables.finding_id("guardduty", account, region, ftype, f"gd-{key}"), "account_id": account,
            "region": region, "guardduty_id": f"gd-{key}", "type": ftype, "title": f"{ftype} on {name}",
            "severity": score, "severity_label": guardduty.severity_label(score), "resource_type": "Instance",
            "resource_id": f"i-{key}", "resource_name": name, "first_seen": seen - dt.timedelta(days=3),
            "last_seen": seen, "count": 4, "via": "account"}


def _macie_row(key: str, day: dt.date) -> dict:
    account, region, ftype, sev, bucket, kinds, detections = MACIE[key]
    seen = dt.datetime.combine(day, dt.time(2), tzinfo=dt.UTC)
    return {"finding_id": tables.finding_id("macie", account, region, ftype, f"m-{key}"), "account_id": account,
            "region": region, "macie_id": f"m-{key}", "type": ftype,
            "category": "CLASSIFICATION" if kinds else "POLICY", "sensitive_data": kinds, "detections": detections,
            "severity": sev, "bucket": bucket, "object_key": "dump/users.csv" if kinds else "", "first_seen": seen,
            "last_seen": seen, "count": 1, "via": "account"}


def _add_coverage(store, day: dt.date, account: str, rows: list[dict]) -> None:
    old = store.read("coverage", day, day, schema=tables.COVERAGE)
    old = old[old["account_id"] == account].drop(columns=["dt"], errors="ignore")
    frame = pd.concat([old, pd.DataFrame(rows)], ignore_index=True)
    store.write("coverage", day, frame, chunk=account, schema=tables.COVERAGE)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    store = rs.scenario_copy(tmp_path_factory.mktemp("threats") / "store")
    for label, day in (("prev", rs.PREV_AS_OF), ("now", rs.AS_OF)):
        for account in (ALICE_ACCOUNT, HOSTILE_ACCOUNT):
            gd = [_gd_row(k, day) for k, v in GUARDDUTY.items() if v[0] == account and label in v[5]]
            mc = [_macie_row(k, day) for k, v in MACIE.items() if v[0] == account and label == "now"]
            store.write("guardduty_findings", day, pd.DataFrame(gd, columns=tables.GUARDDUTY_FINDINGS.names),
                        chunk=account, schema=tables.GUARDDUTY_FINDINGS)
            store.write("macie_findings", day, pd.DataFrame(mc, columns=tables.MACIE_FINDINGS.names),
                        chunk=account, schema=tables.MACIE_FINDINGS)
            cov = [{"account_id": account, "region": r, "source": s, "status": "ok", "error": "", "api_calls": 3}
                   for r in rs.REGIONS for s in ("guardduty", "macie")]
            if account == HOSTILE_ACCOUNT and label == "now":  # GuardDuty switched off there: not a fix
                cov = [c if (c["region"], c["source"]) != ("eu-west-1", "guardduty") else
                       {**c, "status": "not_enabled", "error": "GuardDuty is not enabled in eu-west-1"} for c in cov]
            _add_coverage(store, day, account, cov)
    exceptions = copy.deepcopy(rs.EXCEPTIONS)
    exceptions["exceptions"].append({"id": "EXC-RECON", "match": {"check": "Recon:EC2/*"},
                                     "reason": "Bastion probes are expected", "approver": "sec@example.com",
                                     "ticket": "SEC-9", "expires": "2027-02-01"})
    return week.build_week(store, week.Week.parse(rs.WEEK), catalog=load_catalog(),
                             exceptions=suppressions.parse(exceptions), ou_owners=rs.SETTINGS["ou_owners"],
                             fallback=rs.GOVERNANCE)


@pytest.fixture(scope="module")
def recs(data):
    return views.Records(data)


def _fid(key: str) -> str:
    account, region, ftype, *_ = GUARDDUTY[key]
    return tables.finding_id("guardduty", account, region, ftype, f"gd-{key}")


def _row(data, key: str):
    rows = data.findings[data.findings["finding_id"] == _fid(key)]
    assert len(rows) == 1, key
    return rows.iloc[0]


def test_threat_findings_get_owner_severity_delta_and_console_link(data):
    row = _row(data, "new_critical")
    assert (row["owner"], row["severity"], row["delta"], row["counted"]) == ("alice@example.com", "critical", "new",
                                                                            True)
    assert row["console_url"].startswith("https://eu-west-1.console.aws.amazon.com/guardduty/")
    assert _row(data, "persist")["delta"] == "persisting"
    macie_rows = data.findings[data.findings["source"] == "macie"]
    assert set(macie_rows["severity"]) == {"high", "low"} and set(macie_rows["category"]) == {"sensitive_data"}


def test_exception_by_finding_type_suppresses_a_threat(data):
    row = _row(data, "suppressed")
    assert (row["exception_id"], bool(row["counted"])) == ("EXC-RECON", False)


def test_gone_threat_is_fixed_only_where_guardduty_was_read(data):
    resolved = set(data.resolved["finding_id"])
    assert _fid("fixed") in resolved and _fid("gap") not in resolved
    assert data.unverified >= 1


def test_threats_section_lists_new_high_and_critical_first(recs):
    view = views.owner_view(recs, "alice@example.com", TEST_OPTIONS)
    section = view["threats"]
    order = [i["finding_id"] for i in section["items"]]
    # Alice owns both accounts (the second by its Owner tag in other letter case).
    assert order == [_fid("new_critical"), _fid("new_high_hostile"), _fid("persist"), _fid("new_low")]
    assert (section["count"], section["urgent_new"], section["accounts"]) == (4, 2, 2)
    assert views.owner_view(recs, "o'connor@example.com", TEST_OPTIONS)["threats"]["count"] == 0
    org = views.org_view(recs, TEST_OPTIONS)["threats"]
    assert [i["finding_id"] for i in org["items"]] == order
    assert views.owner_view(recs, "alice@example.com", TEST_OPTIONS)["sensitive"]["items"][0]["extra"][
        "sensitive_data"] == ["PERSONAL_INFORMATION"]


def test_rendered_sections_escape_hostile_names(recs):
    view = views.org_view(recs, TEST_OPTIONS)
    html = render.render("org_summary", "html", **view)
    assert "Threats (GuardDuty)" in html and "Sensitive data (Macie)" in html
    assert rs.HOSTILE not in html and IMG not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    text = render.render("owner_report", "txt", **views.owner_view(recs, "alice@example.com", TEST_OPTIONS))
    assert "THREATS (GUARDDUTY)" in text and "SENSITIVE DATA (MACIE)" in text and "[CRITICAL] NEW" in text

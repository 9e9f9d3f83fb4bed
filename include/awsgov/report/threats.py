"""GuardDuty and Macie findings in the weekly report: the rows report.py reads next to Trusted Advisor and Config,
and the threats and sensitive-data sections of a report.

Rows go through the same machinery as the other findings (owner resolution, exceptions, deltas, ages, ranks): they
carry their own wording (``own_*`` columns, which report.py prefers to the rules catalog's defaults), so severity is
GuardDuty's band or Macie's severity, and the console link opens the finding itself. A GuardDuty or Macie finding
gone since last week counts as fixed only where the source was read for the account and region (coverage ``ok``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import pandas as pd

from include.awsgov.core import tables
from include.awsgov.core.detectors import GUARDDUTY_SOURCE, MACIE_SOURCE

SOURCES = (GUARDDUTY_SOURCE, MACIE_SOURCE)
THREAT, SENSITIVE = "threat", "sensitive_data"  # the findings' category column
URGENT = ("critical", "high")
NEW_DELTAS = ("new", "reopened")
_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "informational": 4}
WHY = {
    GUARDDUTY_SOURCE: "GuardDuty saw activity that matches a known threat pattern in this account; until someone "
                      "looks, assume the resource may be compromised.",
    MACIE_SOURCE: "Macie found sensitive data (or a policy exposing it) in this bucket; exposure or misuse is a "
                  "data breach.",
}
REMEDIATION = {
    GUARDDUTY_SOURCE: "https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_remediate.html",
    MACIE_SOURCE: "https://docs.aws.amazon.com/macie/latest/user/findings-action.html",
}
_REGION_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _region(region: str) -> str:
    return region if region and set(region) <= _REGION_OK else "us-east-1"


def guardduty_url(region: str, finding: str) -> str:
    """Console page of one GuardDuty finding (every value URL-encoded)."""
    r = _region(region)
    return f"https://{r}.console.aws.amazon.com/guardduty/home?region={r}#/findings?fId={quote(finding, safe='')}"


def macie_url(region: str, finding: str) -> str:
    """Console page of one Macie finding."""
    r = _region(region)
    return f"https://{r}.console.aws.amazon.com/macie/home?region={r}#findings?itemId={quote(finding, safe='')}"


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[*columns, "own_title", "own_severity", "own_why", "own_remediation",
                                       "own_console_url"])


def open_findings(store: Any, start: dt.date, end: dt.date, columns: list[str]) -> list[pd.DataFrame]:
    """GuardDuty and Macie findings of days start..end in report.py's finding shape (plus ``own_*`` wording).

    :param store: the history store.
    :param start: first day.
    :param end: last day.
    :param columns: report.FINDING_COLUMNS.
    """
    out = []
    gd = store.read("guardduty_findings", start, end, schema=tables.GUARDDUTY_FINDINGS)
    if not gd.empty:
        rows = []
        for r in gd.to_dict("records"):
            name = r["resource_name"] or r["resource_id"]
            detail = {"type": r["type"], "severity": r["severity"], "count": int(r["count"] or 0),
                      "resource_type": r["resource_type"], "resource_id": r["resource_id"], "resource_name": name,
                      "last_seen": str(r["last_seen"])[:19], "first_seen": str(r["first_seen"])[:19]}
            rows.append({
                "finding_id": r["finding_id"], "source": GUARDDUTY_SOURCE, "account_id": r["account_id"],
                "region": r["region"], "check": r["type"], "check_name": r["type"], "category": THREAT,
                "resource_type": r["resource_type"], "resource_id": r["resource_id"],
                "resource": f"{r['resource_type']}/{name}", "status": r["severity_label"],
                "detail": f"{r['type']}: seen {int(r['count'] or 0)} times, last {str(r['last_seen'])[:16]} UTC",
                "details_json": json.dumps(detail, ensure_ascii=False, sort_keys=True), "savings": float("nan"),
                "dt": r["dt"], "own_title": r["title"] or r["type"], "own_severity": r["severity_label"],
                "own_why": WHY[GUARDDUTY_SOURCE], "own_remediation": REMEDIATION[GUARDDUTY_SOURCE],
                "own_console_url": guardduty_url(r["region"], r["guardduty_id"])})
        out.append(_frame(rows, columns))
    mc = store.read("macie_findings", start, end, schema=tables.MACIE_FINDINGS)
    if not mc.empty:
        rows = []
        for r in mc.to_dict("records"):
            kinds = [str(k) for k in (r["sensitive_data"] if r["sensitive_data"] is not None else [])]
            what = ", ".join(k.replace("_", " ").lower() for k in kinds) or r["type"].split("/")[-1]
            where = r["bucket"] + (f"/{r['object_key']}" if r["object_key"] else "")
            detail = {"type": r["type"], "category": r["category"], "sensitive_data": kinds,
                      "detections": int(r["detections"] or 0), "bucket": r["bucket"], "object_key": r["object_key"]}
            rows.append({
                "finding_id": r["finding_id"], "source": MACIE_SOURCE, "account_id": r["account_id"],
                "region": r["region"], "check": r["type"], "check_name": r["type"], "category": SENSITIVE,
                "resource_type": "AWS::S3::Bucket", "resource_id": r["bucket"], "resource": f"s3://{where}",
                "status": r["severity"], "detail": f"{what} ({int(r['detections'] or 0)} occurrences)" if kinds
                else f"{r['type']} on the bucket",
                "details_json": json.dumps(detail, ensure_ascii=False, sort_keys=True), "savings": float("nan"),
                "dt": r["dt"], "own_title": f"Sensitive data: {what}" if kinds else f"Bucket policy: {r['type']}",
                "own_severity": r["severity"] or "medium", "own_why": WHY[MACIE_SOURCE],
                "own_remediation": REMEDIATION[MACIE_SOURCE], "own_console_url": macie_url(r["region"], r["macie_id"])})
        out.append(_frame(rows, columns))
    return out


def scanned(coverage: pd.DataFrame) -> set[tuple[str, str, str]]:
    """(source, account, region) where GuardDuty or Macie was read on the day (a gone finding there is fixed)."""
    ok = coverage[(coverage["status"] == "ok") & coverage["source"].isin(SOURCES)]
    return set(zip(ok["source"], ok["account_id"], ok["region"], strict=True))


def _order(row: Mapping[str, Any]) -> tuple:
    urgent_new = row.get("delta") in NEW_DELTAS and row.get("severity") in URGENT
    return (not urgent_new, _SEVERITY_ORDER.get(row.get("severity"), 9), -(row.get("rank") or 0.0),
            str(row.get("finding_id")))


def section(rows: Iterable[Mapping[str, Any]], source: str, limit: int, fields: Iterable[str]) -> dict[str, Any]:
    """One report section (threats: GuardDuty; sensitive data: Macie) from the finding records of a view.

    New (or reopened) high and critical findings come first, then by severity and rank. Findings under an exception
    are left out, as in the other lists.

    :param rows: finding records (report_views.Records rows of one owner, or of all).
    :param source: guardduty | macie.
    :param limit: items listed.
    :param fields: the fields an item keeps (report_views.ITEM_FIELDS).
    """
    fields = tuple(fields)
    mine = sorted((r for r in rows if r["source"] == source and r["counted"]), key=_order)
    keep = [{**{k: r.get(k) for k in fields}, "details_json": r.get("details_json")} for r in mine[:limit]]
    for item in keep:
        item["extra"] = json.loads(item.pop("details_json") or "{}")
    by_severity = {s: sum(r["severity"] == s for r in mine) for s in _SEVERITY_ORDER if s != "informational"}
    return {"items": keep, "count": len(mine), "by_severity": by_severity,
            "urgent_new": sum(r.get("delta") in NEW_DELTAS and r["severity"] in URGENT for r in mine),
            "accounts": len({r["account_id"] for r in mine})}

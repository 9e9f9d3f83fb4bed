"""Prohibited-package findings: the rules (settings ``inventory.prohibited_packages``), the findings an instance's
installed applications raise, and their shape in the weekly report.

The collection (collection/ssm_inventory.py) writes ``package_findings`` with :func:`finding_rows`; the report
(report/week.py) reads them back with :func:`open_findings` and :func:`scanned`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from packaging.version import Version

from include.awsgov.core import tables
from include.awsgov.software import search as ps

COVERAGE_SOURCE = "ssm_inventory"  # coverage rows of the SSM inventory
FINDING_SOURCE = "inventory"  # report source of prohibited-package findings
RESOURCE_TYPE = "AWS::SSM::ManagedInstanceInventory"
# The report's "why" of a rule that gives no reason.
DEFAULT_REASON = "The package is on the organization's prohibited-packages list (settings inventory)."


@dataclass(frozen=True)
class ProhibitedRule:
    """One entry of ``inventory.prohibited_packages``.

    :param id: stable rule id (the finding's check; exceptions match it).
    :param name: glob on the application name.
    :param versions: PEP 440 constraint, or None for any version.
    :param severity: closed severity scale (rules_catalog.SEVERITIES).
    :param title: report title.
    :param reason: why it is prohibited (report wording).
    """

    id: str
    name: str
    versions: str | None
    severity: str
    title: str
    reason: str

    def matches(self, name: str, version: str) -> bool:
        return bool(ps.compile_pattern(self.name).fullmatch(name or "")) and ps.version_matches(
            ps.parse_constraint(self.versions), version)


def prohibited_rules(section: Mapping[str, Any] | None) -> list[ProhibitedRule]:
    """The prohibited-package rules of the settings' ``inventory`` section (patterns validated here too).

    :param section: settings ``inventory``.
    """
    section = section or {}
    out = []
    for entry in section.get("prohibited_packages") or []:
        ps.compile_pattern(entry["name"])
        ps.parse_constraint(entry.get("versions"))
        out.append(ProhibitedRule(entry["id"], entry["name"], entry.get("versions"), entry["severity"],
                                  entry.get("title") or f"Prohibited package {entry['name']}",
                                  entry.get("reason") or DEFAULT_REASON))
    return out


def finding_rows(rows: Iterable[Mapping[str, Any]], rules: list[ProhibitedRule]) -> list[dict[str, Any]]:
    """``package_findings`` of inventory rows: one per rule x instance x application name that matches, listing
    every matched version.

    One finding per package name, not per version: the finding is "this package is installed on this instance", so
    its id stays the same when a prohibited version is replaced by another prohibited one (not "fixed" + "new"), and
    two installed versions (kernels, Windows redistributables) are one finding, not two rows with one id.
    """
    grouped: dict[tuple[str, str, str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        for rule in rules:
            if rule.matches(row["name"], row["version"]):
                key = (row["account_id"], row["region"], rule.id, row["instance_id"], row["name"])
                grouped.setdefault(key, []).append(row)
    by_id = {rule.id: rule for rule in rules}
    out = []
    for (account_id, region, rule_id, instance_id, name), matched in grouped.items():
        rule, first = by_id[rule_id], matched[0]
        out.append({
            "finding_id": tables.finding_id(FINDING_SOURCE, account_id, region, rule_id, f"{instance_id}/{name}"),
            "account_id": account_id, "region": region, "rule_id": rule_id, "title": rule.title,
            "severity": rule.severity, "reason": rule.reason, "instance_id": instance_id,
            "platform_name": first["platform_name"], "name": name,
            "version": ", ".join(sorted({str(r["version"] or "") for r in matched}, key=_version_key)),
            "publisher": ", ".join(sorted({str(r["publisher"] or "") for r in matched} - {""})),
        })
    return out


def _version_key(version: str) -> tuple:
    # Oldest first, by version where one parses; the text breaks ties, so the order never depends on row order.
    parsed = ps.loose_version(version)
    return (parsed is None, parsed or Version("0"), version)


# -- the weekly report -------------------------------------------------------------------------------------------
def open_findings(frame: pd.DataFrame, section: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """``package_findings`` rows (with ``dt``) in the report's finding shape (report.FINDING_COLUMNS), plus
    ``own_*`` columns carrying the settings' wording (title, severity, why, remediation, console link).

    :param frame: rows of ``package_findings``.
    :param section: settings ``inventory`` (console link template); default the packaged settings.
    """
    if section is None:
        from include.awsgov.core.settings import load_settings

        section = load_settings().get("inventory") or {}
    console = str(section.get("console_url") or "")
    resource = frame["instance_id"].fillna("") + "/" + frame["name"].fillna("")
    detail = (frame["name"].fillna("") + " " + frame["version"].fillna("") + " (" + frame["publisher"].fillna("")
              + ") — " + frame["reason"].fillna(""))
    return pd.DataFrame({
        "finding_id": frame["finding_id"], "source": FINDING_SOURCE, "account_id": frame["account_id"],
        "region": frame["region"], "check": frame["rule_id"], "check_name": frame["title"], "category": "inventory",
        "resource_type": RESOURCE_TYPE, "resource_id": frame["instance_id"], "resource": resource,
        "status": "installed", "detail": detail, "details_json": "", "savings": float("nan"), "dt": frame["dt"],
        "own_title": frame["title"], "own_severity": frame["severity"], "own_why": frame["reason"],
        "own_remediation": [str(section.get("remediation") or "")] * len(frame),
        "own_console_url": [console.format(region=r, instance_id=i) if console else ""
                            for r, i in zip(frame["region"], frame["instance_id"], strict=True)],
    })


def scanned(coverage: pd.DataFrame) -> set[tuple[str, str]]:
    """(account, region) pairs whose inventory was read on a day (a finding gone there is really fixed)."""
    ok = coverage[(coverage["source"] == COVERAGE_SOURCE) & (coverage["status"] == "ok")]
    return set(zip(ok["account_id"], ok["region"], strict=True))

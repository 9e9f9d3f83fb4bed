"""The governance posture read back from the store, for the Airflow UI's Governance pages (plugins/governance_ui.py).

Airflow-free. Everything is computed from the history store's tables (tables.py) on "snapshot days": for each of
the last ``weeks`` ISO weeks, the latest day of that week with a coverage partition (the collection's output),
so a sparkline has one point per week and a gap where a week was never collected. Definitions:

- covered account: at least one ``ok`` coverage row on the day; gaps: coverage rows that are not ``ok``;
- Config compliance %: COMPLIANT / (COMPLIANT + NON_COMPLIANT) Config rules (NOT_APPLICABLE and
  INSUFFICIENT_DATA are not counted either way);
- Trusted Advisor red / yellow: checks with status ``error`` / ``warning``;
- open anomalies: anomalies whose timestamp falls in the seven days ending on the snapshot day (the anomaly
  table has no open/closed state: a recent anomaly is what needs a look).

Values come out as plain Python (str, int, float, None); rendering and escaping are the caller's job.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from include.awsgov.core import owners, tables
from include.awsgov.core.accounts import latest_onboarding
from include.awsgov.core.store import Store

WEEK_RE = re.compile(r"^\d{4}-W\d{2}\Z")
SLUG_RE = re.compile(r"^[a-z0-9-]{1,80}\Z")
ANOMALY_WINDOW_DAYS = 7
RED, YELLOW = "error", "warning"
# Slug of the organization summary in the report archive (report_delivery.ORG_SLUG).
ORG_SLUG = "org-summary"


def _week(day: dt.date) -> str:
    year, num, _ = day.isocalendar()
    return f"{year:04d}-W{num:02d}"


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


@dataclass
class Snapshot:
    """One snapshot day of the tables the posture reads."""

    day: dt.date
    accounts: pd.DataFrame
    coverage: pd.DataFrame
    ta_checks: pd.DataFrame
    config_rules: pd.DataFrame
    anomalies: pd.DataFrame
    runs: pd.DataFrame


@dataclass
class History:
    """The snapshot days of the last weeks, oldest first (``None`` for a week without data)."""

    weeks: list[str]
    snapshots: list[Snapshot | None] = field(default_factory=list)

    @property
    def latest(self) -> Snapshot | None:
        """The most recent snapshot, if any."""
        return next((s for s in reversed(self.snapshots) if s is not None), None)


def _latest_on_or_before(store: Store, table: str, day: dt.date) -> dt.date | None:
    return next((d for d in reversed(store.days(table)) if d <= day), None)


def read_days(store: Store, table: str, days: Iterable[dt.date], schema: pa.Schema,
              columns: list[str] | None = None) -> pd.DataFrame:
    """Rows of some days of a table (:meth:`Store.scan` day by day: compact files, chunks as one dataset).

    :param store: the history store.
    :param table: table name.
    :param days: the days to read.
    :param schema: the table's schema (files are cast to it on write).
    :param columns: only these columns.
    """
    present = set(store.days(table))
    parts = [t for day in sorted(set(days) & present)
             if (t := store.scan(table, day, day, columns=columns, schema=schema)) is not None]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in [*(columns or schema.names), "dt"]})
    return pa.concat_tables(parts).to_pandas()


def load_snapshot(store: Store, day: dt.date) -> Snapshot:
    """Read the tables of one snapshot day (accounts: the latest partition on or before it).

    :param store: the history store.
    :param day: the snapshot day.
    """
    acc_day = _latest_on_or_before(store, "accounts", day) or day
    window = [day - dt.timedelta(days=n) for n in range(ANOMALY_WINDOW_DAYS)]
    return Snapshot(
        day=day,
        accounts=read_days(store, "accounts", [acc_day], tables.ACCOUNTS),
        coverage=read_days(store, "coverage", [day], tables.COVERAGE),
        ta_checks=read_days(store, "ta_checks", [day], tables.TA_CHECKS,
                            ["account_id", "check_id", "check_name", "category", "status", "resources_flagged"]),
        config_rules=read_days(store, "config_rules", [day], tables.CONFIG_RULES),
        anomalies=read_days(store, "anomalies", window, tables.ANOMALIES),
        runs=read_days(store, "collection_runs", [day], tables.COLLECTION_RUNS),
    )


def history(store: Store, as_of: dt.date | None = None, weeks: int = 8) -> History:
    """Snapshots of the last ``weeks`` ISO weeks ending with the week of ``as_of`` (default: latest coverage day).

    :param store: the history store.
    :param as_of: last day considered.
    :param weeks: number of weeks.
    """
    days = store.days("coverage")
    if as_of is None:
        as_of = days[-1] if days else dt.date.today()
    monday = as_of - dt.timedelta(days=as_of.weekday())
    mondays = [monday - dt.timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    hist = History(weeks=[_week(m) for m in mondays])
    for m in mondays:
        in_week = [d for d in days if m <= d <= min(m + dt.timedelta(days=6), as_of)]
        hist.snapshots.append(load_snapshot(store, in_week[-1]) if in_week else None)
    return hist


def _only(frame: pd.DataFrame, account_ids: set[str] | None) -> pd.DataFrame:
    return frame if account_ids is None else frame[frame["account_id"].isin(account_ids)]


def metrics(snap: Snapshot | None, account_ids: Iterable[str] | None = None) -> dict[str, Any] | None:
    """Posture figures of a snapshot, for all accounts or a subset.

    :param snap: the snapshot (None gives None).
    :param account_ids: restrict to these accounts.
    """
    if snap is None:
        return None
    ids = None if account_ids is None else set(account_ids)
    cov = _only(snap.coverage, ids)
    ok = cov["status"] == "ok"
    scanned = set(cov["account_id"])
    covered = set(cov.loc[ok, "account_id"])
    known = set(_only(snap.accounts, ids)["account_id"]) | scanned
    rules = _only(snap.config_rules, ids)
    compliant = int((rules["compliance"] == "COMPLIANT").sum())
    noncompliant = int((rules["compliance"] == "NON_COMPLIANT").sum())
    checks = _only(snap.ta_checks, ids)
    by_cat: dict[str, dict[str, int]] = {}
    for cat, grp in checks.groupby("category", sort=True):
        by_cat[_text(cat) or "unknown"] = {"red": int((grp["status"] == RED).sum()),
                                           "yellow": int((grp["status"] == YELLOW).sum())}
    return {
        "day": snap.day.isoformat(),
        "accounts": len(known),
        "covered": len(covered),
        "not_covered": sorted(known - covered),
        "gaps": int((~ok).sum()),
        "config_pct": round(100.0 * compliant / (compliant + noncompliant), 1) if compliant + noncompliant else None,
        "config_noncompliant": noncompliant,
        "ta_red": int((checks["status"] == RED).sum()),
        "ta_yellow": int((checks["status"] == YELLOW).sum()),
        "ta_by_category": by_cat,
        "anomalies": int(_only(snap.anomalies, ids)["anomaly_id"].nunique()),
    }


TREND_KEYS = ("covered", "gaps", "config_pct", "ta_red", "ta_yellow", "anomalies")


def trends(hist: History, account_ids: Iterable[str] | None = None) -> dict[str, list[Any]]:
    """One value per week (None where a week has no data) for each figure in TREND_KEYS, and per TA category.

    :param hist: the history.
    :param account_ids: restrict to these accounts.
    """
    ids = None if account_ids is None else list(account_ids)
    per_week = [metrics(s, ids) for s in hist.snapshots]
    out: dict[str, Any] = {k: [m[k] if m else None for m in per_week] for k in TREND_KEYS}
    cats = sorted({c for m in per_week if m for c in m["ta_by_category"]})
    out["ta_by_category"] = {
        c: {color: [(m["ta_by_category"].get(c, {}).get(color, 0) if m else None) for m in per_week]
            for color in ("red", "yellow")}
        for c in cats}
    return out


def _owner_key(value: Any) -> str:
    return owners.canonical(value)


def account_rows(snap: Snapshot | None) -> list[dict[str, Any]]:
    """One row per account known on the snapshot day: identity, owner (and its report slug) and figures.

    :param snap: the latest snapshot.
    """
    if snap is None:
        return []
    meta = {r["account_id"]: r for r in snap.accounts.to_dict("records")}
    ids = sorted(set(meta) | set(snap.coverage["account_id"]))
    # Counted per account with one groupby per table (a filter per account would be quadratic in accounts).
    cov, rules, checks = snap.coverage, snap.config_rules, snap.ta_checks

    def count(frame: pd.DataFrame, mask: pd.Series, name: str) -> pd.Series:
        return frame[mask].groupby("account_id").size().rename(name)

    stats = pd.concat(
        [count(cov, cov["status"] == "ok", "ok_rows"), count(cov, cov["status"] != "ok", "gaps"),
         count(rules, rules["compliance"] == "COMPLIANT", "compliant"),
         count(rules, rules["compliance"] == "NON_COMPLIANT", "noncompliant"),
         count(checks, checks["status"] == RED, "ta_red"), count(checks, checks["status"] == YELLOW, "ta_yellow"),
         snap.anomalies.groupby("account_id")["anomaly_id"].nunique().rename("anomalies")],
        axis=1).reindex(ids).fillna(0).astype(int)
    rows = []
    for acc, st in zip(ids, stats.to_dict("records"), strict=True):
        info = meta.get(acc, {})
        owner = _owner_key(info.get("owner"))
        judged = st["compliant"] + st["noncompliant"]
        rows.append({"account_id": acc, "name": _text(info.get("name")), "ou": _text(info.get("ou")),
                     "environment": _text(info.get("environment")), "owner": owner,
                     "owner_slug": owners.slug(owner) if owner else "", "day": snap.day.isoformat(),
                     "covered": int(st["ok_rows"] > 0), "gaps": st["gaps"],
                     "config_pct": round(100.0 * st["compliant"] / judged, 1) if judged else None,
                     "config_noncompliant": st["noncompliant"], "ta_red": st["ta_red"],
                     "ta_yellow": st["ta_yellow"], "anomalies": st["anomalies"]})
    return rows


def owner_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Accounts grouped by canonical owner, sorted by owner (unowned accounts under the empty owner).

    :param rows: from :func:`account_rows`.
    """
    groups: dict[str, list[str]] = {}
    for r in rows:
        groups.setdefault(r["owner"], []).append(r["account_id"])
    return [{"owner": o, "slug": owners.slug(o) if o else "", "accounts": a} for o, a in sorted(groups.items())]


def report_weeks(store: Store, slug: str, limit: int = 8) -> list[str]:
    """Weeks (newest first) whose archive holds the weekly report ``reports/week=<week>/<slug>.html``.

    :param store: the history store.
    :param slug: an owner slug (owners.slug) or ``org`` style name; refused unless ``[a-z0-9-]``.
    :param limit: at most this many weeks.
    """
    if not SLUG_RE.match(slug) or not store.exists("reports"):
        return []
    weeks = []
    for entry in store.fs.ls(store.path("reports"), detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith("week=") and WEEK_RE.match(name[5:]):
            weeks.append(name[5:])
    found = [w for w in sorted(weeks, reverse=True) if store.exists(f"reports/week={w}/{slug}.html")]
    return found[:limit]


def report_path(week: str, slug: str) -> str | None:
    """Store-relative path of an archived weekly report, or None if ``week``/``slug`` are malformed.

    :param week: ``YYYY-Www``.
    :param slug: owner slug.
    """
    if not WEEK_RE.match(week) or not SLUG_RE.match(slug):
        return None
    return f"reports/week={week}/{slug}.html"


def _failures(verification_json: Any) -> list[str]:
    """``region: check`` for every false value of an inventory's verification record."""
    try:
        data = json.loads(verification_json) if verification_json else {}
    except (TypeError, ValueError):
        return ["verification record unreadable"]
    out = []
    if isinstance(data, dict):
        for region, checks in sorted(data.items()):
            if isinstance(checks, dict):
                out.extend(f"{region}: {name}" for name, ok in sorted(checks.items()) if ok is False)
            elif checks is False:
                out.append(str(region))
    return out


def onboarding(store: Store, account_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The latest onboarding inventory row per account: baseline version, verification time and failures.

    :param store: the history store.
    :param account_ids: restrict to these accounts.
    """
    inv = store.read(tables.ONBOARDED_ACCOUNTS_TABLE, schema=tables.ONBOARDED_ACCOUNTS)
    if account_ids is not None:
        inv = inv[inv["account_id"].isin(set(account_ids))]
    if inv.empty:
        return []
    rows = []
    for r in latest_onboarding(inv).values():
        verified = r.get("verified_at")
        rows.append({"account_id": r["account_id"], "owner": _owner_key(r.get("owner_email")),
                     "status": _text(r.get("status")), "baseline_version": _text(r.get("baseline_version")),
                     "stackset_name": _text(r.get("stackset_name")), "operation_id": _text(r.get("operation_id")),
                     "regions": [str(x) for x in (r.get("regions") if r.get("regions") is not None else [])],
                     "onboarded_day": r["dt"],
                     "verified_at": None if verified is None or pd.isna(verified) else pd.Timestamp(verified),
                     "failures": _failures(r.get("verification_json"))})
    return rows


def last_runs(hist: History) -> list[dict[str, Any]]:
    """Collection runs of the snapshot days (newest first): run id, day, times, gaps, API calls.

    :param hist: the history.
    """
    out = []
    for snap in reversed([s for s in hist.snapshots if s is not None]):
        for r in snap.runs.sort_values("started_at", ascending=False).to_dict("records"):
            out.append({"run_id": _text(r.get("run_id")), "day": snap.day.isoformat(),
                        "started_at": r.get("started_at"), "finished_at": r.get("finished_at"),
                        "gaps": int(r["gaps"]) if pd.notna(r.get("gaps")) else None,
                        "api_calls": int(r["api_calls"]) if pd.notna(r.get("api_calls")) else None})
    return out


def org_posture(store: Store, as_of: dt.date | None = None, weeks: int = 8) -> dict[str, Any]:
    """Everything the posture page shows.

    :param store: the history store.
    :param as_of: last day considered (default: the latest collected day).
    :param weeks: weeks of trend.
    """
    hist = history(store, as_of, weeks)
    snap = hist.latest
    rows = account_rows(snap)
    return {"weeks": hist.weeks, "current": metrics(snap), "trends": trends(hist), "accounts": rows,
            "owners": owner_groups(rows), "onboarding": onboarding(store), "runs": last_runs(hist),
            "org_reports": report_weeks(store, ORG_SLUG)}


def account_view(store: Store, account_id: str, as_of: dt.date | None = None, weeks: int = 8) -> dict[str, Any] | None:
    """The drill-down of one account, or None if the store never saw it.

    :param store: the history store.
    :param account_id: the account.
    """
    hist = history(store, as_of, weeks)
    snap = hist.latest
    row = next((r for r in account_rows(snap) if r["account_id"] == account_id), None)
    inv = onboarding(store, [account_id])
    if row is None and not inv:
        return None

    def mine(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return frame[frame["account_id"] == account_id].to_dict("records") if snap else []

    checks = [c for c in mine(snap.ta_checks) if c["status"] in (RED, YELLOW)] if snap else []
    rules = [r for r in mine(snap.config_rules) if r["compliance"] == "NON_COMPLIANT"] if snap else []
    if row is None:
        owner = inv[0]["owner"]
        row = {"account_id": account_id, "owner": owner, "owner_slug": owners.slug(owner) if owner else "",
               "name": "", "ou": "", "environment": ""}
    return {"weeks": hist.weeks, "account": row,
            "reports": report_weeks(store, row["owner_slug"]) if row["owner_slug"] else [],
            "current": metrics(snap, [account_id]), "trends": trends(hist, [account_id]),
            "coverage": mine(snap.coverage) if snap else [],
            "ta_checks": sorted(checks, key=lambda c: (c["status"] != RED, _text(c["category"]),
                                                       _text(c["check_name"]))),
            "config_rules": sorted(rules, key=lambda r: (_text(r["region"]), _text(r["rule_name"]))),
            "anomalies": mine(snap.anomalies) if snap else [], "onboarding": inv[0] if inv else None,
            "runs": last_runs(hist)}


def owner_posture(store: Store, slug: str, as_of: dt.date | None = None, weeks: int = 8) -> dict[str, Any] | None:
    """The drill-down of one owner (by report slug), or None if no account has that owner.

    :param store: the history store.
    :param slug: the owner's slug (owners.slug).
    """
    if not SLUG_RE.match(slug):
        return None
    hist = history(store, as_of, weeks)
    rows = [r for r in account_rows(hist.latest) if r["owner_slug"] == slug]
    if not rows:
        return None
    ids = [r["account_id"] for r in rows]
    return {"weeks": hist.weeks, "owner": rows[0]["owner"], "slug": slug, "accounts": rows,
            "current": metrics(hist.latest, ids), "trends": trends(hist, ids), "reports": report_weeks(store, slug),
            "onboarding": onboarding(store, ids)}

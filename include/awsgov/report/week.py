"""The weekly report's data, built from the history store only: findings of the week, deltas, scores, owners.

A week is an ISO week (``2026-W48``). Its snapshot is the last collected day inside it (``as_of``); the previous
snapshot is the last collected day before its Monday (``prev_as_of``). A finding is open when Trusted Advisor flags
it red or yellow (and it is not suppressed in Trusted Advisor itself) or Config evaluates it NON_COMPLIANT. Finding
ids are stable across days (``tables.finding_id``), so against the previous snapshot an open finding is ``new``
(first seen after it), ``reopened`` (seen before, but not open then) or ``persisting``; a finding open then and not
now is ``resolved`` only if its account and source were scanned on ``as_of`` (a coverage gap is not a fix). Age is
counted from the first day the finding was seen open: within the history window read (``history_weeks``) or, for
older findings, from the first-seen index earlier runs kept (:data:`FIRST_SEEN_PATH`); an age that starts on the
earliest day ever looked at is a lower bound ("at least"). Findings under an active exception are not counted
(see suppressions.py).

:func:`build_week` returns :class:`WeekData` for the whole organization; report_views.py slices it per owner and
for the org-wide summary.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import include.awsgov.report.threats as threats
from include.awsgov.core import owners as own
from include.awsgov.core import tables
from include.awsgov.core.mail import SES
from include.awsgov.core.store import Store
from include.awsgov.report import events_of_week
from include.awsgov.report.catalog import CONFIG, SEVERITIES, TA, Catalog, load_catalog
from include.awsgov.report.suppressions import COLUMNS as EXCEPTION_COLUMNS
from include.awsgov.report.suppressions import SUPPRESSING, Exceptions, load_exceptions
from include.awsgov.software import findings as package_findings

log = logging.getLogger(__name__)

NEW, REOPENED, PERSISTING, RESOLVED = "new", "reopened", "persisting", "resolved"
# First day each finding was ever seen open, kept by the report itself so that ages (and overdue) are exact beyond
# the history window it reads: every run folds what it saw into it (a running minimum, so reruns and backfills agree).
FIRST_SEEN_PATH = "reports/state/first_seen.parquet"
# Tables whose day partitions mark a collected day.
SNAPSHOT_TABLES = ("coverage", "ta_findings", "config_findings", "collection_runs")
# language: the report language the account's Language tag names (owners.tag_language; '' for none).
SCORECARD_COLUMNS = ["account_id", "name", "ou", "environment", "team", "status", "owner", "owner_layer", "language",
                     "regions", "config_pct", "ta_red", "ta_yellow", "savings", "open", "by_severity", "suppressed",
                     "gaps", "trend_pct", "trend_open"]
FINDING_COLUMNS = ["finding_id", "source", "account_id", "region", "check", "check_name", "category",
                   "resource_type", "resource_id", "resource", "status", "detail", "details_json", "savings", "dt"]


class NoDataError(LookupError):
    """Nothing was collected in the requested week; the message names the week and the last collected day."""


@dataclass(frozen=True)
class Week:
    """An ISO week.

    :param label: e.g. ``2026-W48``.
    """

    label: str

    @classmethod
    def parse(cls, label: str) -> Week:
        """Validate ``YYYY-Www`` (an existing ISO week) and return it."""
        try:
            year, num = str(label).split("-W")
            dt.date.fromisocalendar(int(year), int(num), 1)
        except (ValueError, TypeError):
            raise ValueError(f"not an ISO week (YYYY-Www): {label!r}") from None
        return cls(f"{int(year):04d}-W{int(num):02d}")

    @classmethod
    def of(cls, day: dt.date) -> Week:
        """The ISO week containing ``day``."""
        year, num, _ = day.isocalendar()
        return cls(f"{year:04d}-W{num:02d}")

    @property
    def monday(self) -> dt.date:
        year, num = self.label.split("-W")
        return dt.date.fromisocalendar(int(year), int(num), 1)

    @property
    def sunday(self) -> dt.date:
        return self.monday + dt.timedelta(days=6)

    def shift(self, weeks: int) -> Week:
        """The week ``weeks`` later (negative: earlier)."""
        return Week.of(self.monday + dt.timedelta(weeks=weeks))


def last_complete_week(reference: dt.datetime | dt.date) -> Week:
    """The last ISO week that ended before ``reference`` (a Monday 06:00 run reports the week that just ended).

    :param reference: the run's data interval end, or when it was triggered.
    """
    day = reference.date() if isinstance(reference, dt.datetime) else reference
    return Week.of(day - dt.timedelta(days=day.isoweekday()))


@dataclass
class WeekData:
    """Everything the reports of one week show, for the whole organization (see the module docstring)."""

    week: Week
    as_of: dt.date
    prev_as_of: dt.date | None
    window_start: dt.date
    findings: pd.DataFrame  # open on as_of, enriched; `counted` is False under an active exception
    resolved: pd.DataFrame  # counted on prev_as_of, gone on as_of, scanned
    unverified: int  # gone on as_of but not scanned: not counted as fixed
    accounts: pd.DataFrame  # one scorecard row per account
    gaps: pd.DataFrame  # coverage rows not ok on as_of
    last_run: dict[str, Any]
    anomalies: pd.DataFrame
    unused_exceptions: list = field(default_factory=list)
    trend_weeks: list[str] = field(default_factory=list)
    observed_first_seen: dict[str, str] = field(default_factory=dict, repr=False)  # within the window read
    observed_since: str = ""  # first collected day of the window read
    events: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=events_of_week.COLUMNS))  # central bus

    @property
    def owners(self) -> list[str]:
        """Every owner with an account or a finding this week, sorted."""
        return sorted(set(self.accounts["owner"]) | set(self.findings["owner"]) | set(self.resolved["owner"]))


# -- reading ------------------------------------------------------------------------------------------------------
def snapshot_days(store: Store) -> list[dt.date]:
    """Days on which anything was collected, ascending."""
    return sorted({d for t in SNAPSHOT_TABLES for d in store.days(t)})


def _open_findings(store: Store, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Open findings of both sources for days start..end, in one shape (:data:`FINDING_COLUMNS`)."""
    # Filtered while reading: a realistic organization's Config findings are millions of rows a day, most compliant.
    ta = store.read("ta_findings", start, end, schema=tables.TA_FINDINGS, where=tables.open_ta_findings())
    ta = pd.DataFrame({
        "finding_id": ta["finding_id"], "source": TA, "account_id": ta["account_id"], "region": ta["region"],
        "check": ta["check_id"], "check_name": ta["check_name"], "category": ta["category"], "resource_type": "",
        "resource_id": ta["resource_id"], "resource": ta["resource_id"], "status": ta["status"], "detail": "",
        "details_json": ta["details_json"], "savings": ta["estimated_monthly_savings"], "dt": ta["dt"]})
    cf = store.read("config_findings", start, end, schema=tables.CONFIG_FINDINGS, where=tables.open_config_findings())
    cf = pd.DataFrame({
        "finding_id": cf["finding_id"], "source": CONFIG, "account_id": cf["account_id"], "region": cf["region"],
        "check": cf["rule_name"], "check_name": cf["rule_name"], "category": "config",
        "resource_type": cf["resource_type"], "resource_id": cf["resource_id"],
        "resource": cf["resource_type"].fillna("") + "/" + cf["resource_id"].fillna(""), "status": cf["compliance"],
        "detail": cf["annotation"], "details_json": "", "savings": float("nan"), "dt": cf["dt"]})
    frames = [f for f in (ta, cf) if not f.empty]
    packages = store.read("package_findings", start, end, schema=tables.PACKAGE_FINDINGS)  # prohibited packages
    frames += [package_findings.open_findings(packages)] if not packages.empty else []
    frames += threats.open_findings(store, start, end, FINDING_COLUMNS)  # GuardDuty, Macie (threats.py)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FINDING_COLUMNS)
    for col in ("region", "check", "check_name", "category", "resource_type", "resource_id", "resource", "detail",
                "details_json"):
        out[col] = out[col].fillna("").astype(str)
    return out


# Tables _open_findings reads: a day of any of them is a day whose open findings count.
FINDING_TABLES = ("ta_findings", "config_findings", "package_findings", "guardduty_findings", "macie_findings")


def _open_ids(store: Store, day: dt.date) -> list[str]:
    """The ids of :func:`_open_findings` of one day, without the rest of its rows: Trusted Advisor and Config (the
    millions) read as one column, filtered while reading; packages and threats (few) through their own shape."""
    ids = []
    for table, schema, where in (("ta_findings", tables.TA_FINDINGS, tables.open_ta_findings()),
                                 ("config_findings", tables.CONFIG_FINDINGS, tables.open_config_findings())):
        scanned = store.scan(table, day, day, columns=["finding_id"], schema=schema, where=where)
        ids += scanned.column("finding_id").to_pylist() if scanned is not None else []
    packages = store.read("package_findings", day, day, schema=tables.PACKAGE_FINDINGS)
    frames = [package_findings.open_findings(packages)] if not packages.empty else []
    frames += threats.open_findings(store, day, day, FINDING_COLUMNS)
    return ids + [fid for f in frames for fid in f["finding_id"]]


def _first_open_days(store: Store, start: dt.date, end: dt.date) -> dict[str, str]:
    """First day (ISO) each finding was seen open in days start..end: what ``_open_findings(store, start,
    end).groupby("finding_id")["dt"].min()`` gives, read a day at a time as ids only. The whole window's rows at once
    were about 0.6 GB a day at 100 realistic accounts (9 weeks: more than most machines hold)."""
    days = sorted({d for t in FINDING_TABLES for d in store.days(t) if start <= d <= end})
    first: dict[str, str] = {}
    for day in days:
        label = day.isoformat()
        for fid in _open_ids(store, day):
            first.setdefault(fid, label)
    return dict(sorted(first.items()))  # by id, as groupby gave it


def load_first_seen(store: Store) -> tuple[dict[str, str], str | None]:
    """The first-seen index: (finding id -> ISO day first seen open, earliest day any run looked at).

    Both are empty/None before the first run.
    """
    if not store.exists(FIRST_SEEN_PATH):
        return {}, None
    table = pq.read_table(io.BytesIO(store.get_bytes(FIRST_SEEN_PATH)))
    since = (table.schema.metadata or {}).get(b"observed_since", b"").decode() or None
    return dict(zip(table.column("finding_id").to_pylist(), table.column("first_seen").to_pylist(), strict=True)), since


def save_first_seen(store: Store, known: Mapping[str, str], since: str | None, observed: Mapping[str, str],
                    observed_since: str) -> int:
    """Fold a run's observations into the first-seen index (earliest day wins); returns its size.

    :param store: the history store.
    :param known: the index as loaded.
    :param since: the earliest day looked at so far, as loaded.
    :param observed: first day seen open within the window a run read.
    :param observed_since: first collected day of that window.
    """
    merged = dict(known)
    for fid, day in observed.items():
        if fid not in merged or day < merged[fid]:
            merged[fid] = day
    ids = sorted(merged)
    table = pa.table({"finding_id": ids, "first_seen": [merged[i] for i in ids]})
    table = table.replace_schema_metadata({"observed_since": min(filter(None, (since, observed_since)))})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    store.put_bytes(FIRST_SEEN_PATH, buf.getvalue())
    return len(ids)


class _OpenOn:
    """``_open_findings`` of one day, a fresh frame each call; the days to ``keep`` (this snapshot and the previous
    one, both read again for the trend) are read once, any other day when asked."""

    def __init__(self, store: Store, keep: Iterable[dt.date | None]) -> None:
        self.store, self.kept = store, dict.fromkeys(d for d in keep if d is not None)

    def __call__(self, day: dt.date) -> pd.DataFrame:
        if day not in self.kept:
            return _open_findings(self.store, day, day)
        if self.kept[day] is None:
            self.kept[day] = _open_findings(self.store, day, day)
        return self.kept[day].copy()


def _latest(store: Store, table: str, schema: Any, day: dt.date) -> pd.DataFrame:
    """A table's last partition on or before ``day`` (accounts are written per collected day)."""
    days = [d for d in store.days(table) if d <= day]
    return store.read(table, days[-1], days[-1], schema=schema) if days else store.read(table, schema=schema)


def _scanned(coverage: pd.DataFrame) -> tuple[set, set, bool]:
    """(ok TA accounts, ok Config (account, region)s, whether coverage was recorded at all) of one day."""
    ok = coverage[coverage["status"] == "ok"]
    ta_ok = set(ok.loc[ok["source"] == TA, "account_id"])
    cf_ok = set(zip(ok.loc[ok["source"] == CONFIG, "account_id"], ok.loc[ok["source"] == CONFIG, "region"],
                    strict=True))
    return ta_ok, cf_ok, not coverage.empty


# -- enrichment ---------------------------------------------------------------------------------------------------
def _enrich(frame: pd.DataFrame, catalog: Catalog, accounts: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Add catalog wording, severity, account name/environment and console link to finding rows."""
    out = frame.copy()
    infos = {}
    for key in set(zip(out["source"], out["check"], out["check_name"], out["category"], out["status"], strict=True)):
        infos[key] = catalog.info(key[0], key[1], check_name=key[2], category=key[3], status=key[4])
    keys = list(zip(out["source"], out["check"], out["check_name"], out["category"], out["status"], strict=True))
    out["title"] = [infos[k].title for k in keys]
    out["severity"] = [infos[k].severity for k in keys]
    out["why"] = [infos[k].why for k in keys]
    out["remediation"] = [infos[k].remediation for k in keys]
    out["account_name"] = [str((accounts.get(a) or {}).get("name") or "") for a in out["account_id"]]
    out["environment"] = [str((accounts.get(a) or {}).get("environment") or "") for a in out["account_id"]]
    out["console_url"] = [
        catalog.console_url(s, region=r, resource_type=t, resource_id=i, category=c)
        for s, r, t, i, c in zip(out["source"], out["region"], out["resource_type"], out["resource_id"],
                                 out["category"], strict=True)]
    # Findings that carry their own wording (GuardDuty, Macie; prohibited packages) override the catalog defaults.
    for col in ("title", "severity", "why", "remediation", "console_url"):
        if f"own_{col}" in out:
            mine = out[f"own_{col}"].fillna("").astype(str) != ""
            out.loc[mine, col] = out.loc[mine, f"own_{col}"]
    return out


def _counted(frame: pd.DataFrame, exceptions: Exceptions, day: dt.date, warn_days: int) -> pd.DataFrame:
    out = exceptions.apply(frame, day, warn_days)
    out["counted"] = ~out["exception_status"].isin(SUPPRESSING)
    return out


# -- the week -----------------------------------------------------------------------------------------------------
def build_week(store: Store, week: Week, *, catalog: Catalog, exceptions: Exceptions, ou_owners: Mapping[str, str],
               fallback: str, history_weeks: int = 8, warn_days: int = 14,
               first_seen: Mapping[str, str] | None = None, first_seen_since: str | None = None) -> WeekData:
    """Read the store and build the organization's data for one week.

    :param store: the history store.
    :param week: the ISO week to report.
    :param catalog: rule wording and rank factors.
    :param exceptions: approved exceptions.
    :param ou_owners: settings ``ou_owners``.
    :param fallback: settings ``mail.governance_address``.
    :param history_weeks: weeks before this one read for trends and ages.
    :param warn_days: exceptions expiring within this many days are flagged.
    :param first_seen: the first-seen index (:func:`load_first_seen`); None: ages from the window only.
    :param first_seen_since: the earliest day the index has looked at.
    """
    days = snapshot_days(store)
    in_week = [d for d in days if week.monday <= d <= week.sunday]
    if not in_week:
        last = days[-1].isoformat() if days else "never"
        raise NoDataError(f"nothing collected in {week.label} ({week.monday}..{week.sunday}); last collection: {last}")
    as_of = in_week[-1]
    window_start = week.shift(-history_weeks).monday
    earlier = [d for d in days if window_start <= d < week.monday]
    prev_as_of = earlier[-1] if earlier else None
    # One snapshot day per week of the trend (its last collected day), oldest first, this week last.
    trend = {}
    for back in range(history_weeks, -1, -1):
        w = week.shift(-back)
        found = [d for d in days if w.monday <= d <= min(w.sunday, as_of)]
        trend[w.label] = found[-1] if found else None

    accounts_frame = _latest(store, "accounts", tables.ACCOUNTS, as_of)
    accounts = {r["account_id"]: r for r in accounts_frame.to_dict("records")}
    onboarded = store.read(tables.ONBOARDED_ACCOUNTS_TABLE, None, as_of, schema=tables.ONBOARDED_ACCOUNTS)
    resolver = own.OwnerResolver(accounts_frame, onboarded, ou_owners, fallback)

    # The window's open findings are needed whole only on a few days (this snapshot, the previous one, the trend's
    # snapshot days); for the others their ids (first seen) are enough. One day in memory at a time.
    open_on = _OpenOn(store, (as_of, prev_as_of))
    coverage = store.read("coverage", as_of, as_of, schema=tables.COVERAGE)
    observed = _first_open_days(store, window_start, as_of)
    known = first_seen or {}
    first_seen = {fid: min(day, known.get(fid, day)) for fid, day in observed.items()}
    # Ages starting on the earliest day anyone looked at are lower bounds ("at least N days").
    window_first = days[[d >= window_start for d in days].index(True)].isoformat()
    horizon = min(filter(None, (window_first, first_seen_since)))

    cur = _counted(_enrich(open_on(as_of), catalog, accounts), exceptions, as_of, warn_days)
    cur = resolver.resolve(cur)
    cur["first_seen"] = cur["finding_id"].map(first_seen)
    cur["age_days"] = (pd.Timestamp(as_of) - pd.to_datetime(cur["first_seen"])).dt.days.astype("int64")
    cur["age_capped"] = cur["first_seen"] == horizon
    prev_open = set()
    resolved = cur.iloc[0:0].copy()
    unverified = 0
    if prev_as_of is not None:
        prev = open_on(prev_as_of)
        prev = _counted(prev, exceptions, prev_as_of, warn_days)
        prev_open = set(prev["finding_id"])
        gone = prev[prev["counted"] & ~prev["finding_id"].isin(set(cur["finding_id"]))]
        ta_ok, cf_ok, recorded = _scanned(coverage)
        if recorded:
            scanned = [(s == TA and a in ta_ok) or (s == CONFIG and (a, r) in cf_ok)
                       for s, a, r in zip(gone["source"], gone["account_id"], gone["region"], strict=True)]
            inv_ok = package_findings.scanned(coverage)  # fixed only where inventory was read
            scanned = [ok or (s == package_findings.FINDING_SOURCE and (a, r) in inv_ok)
                       for ok, s, a, r in zip(scanned, gone["source"], gone["account_id"], gone["region"], strict=True)]
            threat_ok = threats.scanned(coverage)  # GuardDuty/Macie: fixed only where read on as_of
            scanned = [ok or (s, a, r) in threat_ok
                       for ok, s, a, r in zip(scanned, gone["source"], gone["account_id"], gone["region"], strict=True)]
            unverified = len(gone) - sum(scanned)
            gone = gone[pd.Series(scanned, index=gone.index, dtype=bool)]
        resolved = resolver.resolve(_enrich(gone.drop(columns=[*EXCEPTION_COLUMNS, "counted"]), catalog, accounts))
        resolved["first_seen"] = resolved["finding_id"].map(first_seen)
        resolved["age_days"] = (pd.Timestamp(as_of) - pd.to_datetime(resolved["first_seen"])).dt.days
        resolved["age_capped"] = resolved["first_seen"] == horizon
    cur["delta"] = [
        PERSISTING if fid in prev_open else (REOPENED if prev_as_of and seen <= prev_as_of.isoformat() else NEW)
        for fid, seen in zip(cur["finding_id"], cur["first_seen"], strict=True)]
    cur["overdue"] = cur["counted"] & (cur["age_days"] > cur["severity"].map(catalog.sla_days))
    cur["rank"] = [catalog.rank(s, e, a) for s, e, a in zip(cur["severity"], cur["environment"], cur["age_days"],
                                                              strict=True)]

    gaps = coverage[coverage["status"] != "ok"].copy()
    gaps["account_name"] = [str((accounts.get(a) or {}).get("name") or "") for a in gaps["account_id"]]
    gaps["owner"] = [resolver.account_owner(a)[0] for a in gaps["account_id"]]
    runs = store.read("collection_runs", week.monday, as_of, schema=tables.COLLECTION_RUNS)
    last_run = runs.sort_values("finished_at").iloc[-1].to_dict() if not runs.empty else {}
    anomalies = store.read("anomalies", week.monday, week.sunday, schema=tables.ANOMALIES)
    anomalies["owner"] = [resolver.account_owner(a)[0] for a in anomalies["account_id"]]
    anomalies["account_name"] = [str((accounts.get(a) or {}).get("name") or "") for a in anomalies["account_id"]]

    scorecards = _scorecards(store, accounts_frame, cur, coverage, resolver, trend, open_on, exceptions, warn_days)
    return WeekData(week=week, as_of=as_of, prev_as_of=prev_as_of, window_start=window_start, findings=cur,
                    resolved=resolved, unverified=unverified, accounts=scorecards, gaps=gaps, last_run=last_run,
                    anomalies=anomalies, unused_exceptions=exceptions.unused(cur), trend_weeks=list(trend),
                    observed_first_seen=observed, observed_since=window_first,
                    events=events_of_week.read_week(
                        store, week.monday, week.sunday, owner_of=lambda a: resolver.account_owner(a)[0],
                        name_of=lambda a: str((accounts.get(a) or {}).get("name") or "")))


def _compliance_pct(rules: pd.DataFrame) -> dict[str, float]:
    """Config compliance % per account: compliant rules / evaluated rules (NOT_APPLICABLE etc. left out)."""
    judged = rules[rules["compliance"].isin(("COMPLIANT", "NON_COMPLIANT"))]
    if judged.empty:
        return {}
    share = judged.assign(ok=judged["compliance"] == "COMPLIANT").groupby("account_id")["ok"].mean()
    return {k: round(float(v) * 100, 1) for k, v in share.items()}


def _nested(series: pd.Series) -> dict[str, dict[str, int]]:
    """{account: {key: count}} from a Series indexed by (account_id, key)."""
    out: dict[str, dict[str, int]] = {}
    for (account_id, key), value in series.items():
        out.setdefault(account_id, {})[key] = int(value)
    return out


def _scorecards(store: Store, accounts_frame: pd.DataFrame, cur: pd.DataFrame, coverage: pd.DataFrame,
                resolver: own.OwnerResolver, trend: Mapping[str, dt.date | None], open_on: Any,
                exceptions: Exceptions, warn_days: int) -> pd.DataFrame:
    """One row per account known on as_of or with findings: owner, scores, counts and the weekly trend.

    Everything is grouped once per table (not filtered per account), so a thousand accounts cost what ten do.
    """
    as_of = max(d for d in trend.values() if d)
    ids = sorted(set(accounts_frame["account_id"]) | set(cur["account_id"]) | set(coverage["account_id"]))
    known = {r["account_id"]: r for r in accounts_frame.to_dict("records")}
    checks = store.read("ta_checks", as_of, as_of, schema=tables.TA_CHECKS)
    rule_columns = ["account_id", "compliance"]
    pct_now = _compliance_pct(store.read("config_rules", as_of, as_of, schema=tables.CONFIG_RULES,
                                         columns=rule_columns))
    # Trend points: compliance % and counted open findings per account on each week's snapshot day.
    pct_trend, open_trend = {}, {}
    for label, day in trend.items():
        if day is None:
            continue
        pct_trend[label] = pct_now if day == as_of else _compliance_pct(
            store.read("config_rules", day, day, schema=tables.CONFIG_RULES, columns=rule_columns))
        rows = open_on(day)
        hidden = exceptions.suppressed(rows, day, warn_days)
        open_trend[label] = rows.loc[[not h for h in hidden], "account_id"].value_counts().to_dict()
    counted_now = cur[cur["counted"]]
    open_now = counted_now.groupby("account_id").size().to_dict()
    by_sev = _nested(counted_now.groupby(["account_id", "severity"]).size())
    suppressed = cur[~cur["counted"]].groupby("account_id").size().to_dict()
    red = _nested(checks[checks["status"] == "error"].groupby(["account_id", "category"]).size())
    yellow = _nested(checks[checks["status"] == "warning"].groupby(["account_id", "category"]).size())
    savings = pd.to_numeric(checks["estimated_monthly_savings"], errors="coerce").fillna(0).groupby(
        checks["account_id"]).sum().to_dict()
    ok = coverage[(coverage["status"] == "ok") & (coverage["region"] != "global")]
    regions = ok.groupby("account_id")["region"].agg(lambda r: sorted(set(r))).to_dict()
    gaps = (coverage["status"] != "ok").groupby(coverage["account_id"]).sum().to_dict()
    rows = []
    for account_id in ids:
        acc = known.get(account_id, {})
        owner, layer = resolver.account_owner(account_id)
        sev = by_sev.get(account_id, {})
        rows.append({
            "account_id": account_id, "name": str(acc.get("name") or ""), "ou": str(acc.get("ou") or ""),
            "environment": str(acc.get("environment") or ""), "team": str(acc.get("team") or ""),
            "status": str(acc.get("status") or ""), "owner": owner, "owner_layer": layer,
            "language": own.tag_language(acc.get("tags_json")),
            "regions": regions.get(account_id, []), "config_pct": pct_now.get(account_id),
            "ta_red": red.get(account_id, {}), "ta_yellow": yellow.get(account_id, {}),
            "savings": float(savings.get(account_id, 0.0)), "open": int(open_now.get(account_id, 0)),
            "by_severity": {s: sev.get(s, 0) for s in SEVERITIES},
            "suppressed": int(suppressed.get(account_id, 0)), "gaps": int(gaps.get(account_id, 0)),
            "trend_pct": [pct_trend[w].get(account_id) if w in pct_trend else None for w in trend],
            "trend_open": [open_trend[w].get(account_id, 0) if w in open_trend else None for w in trend],
        })
    return pd.DataFrame(rows, columns=SCORECARD_COLUMNS)


def report_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The report knobs of the settings (``report`` and ``mail`` sections) in one flat dict.

    :param cfg: validated settings.
    """
    rep = cfg.get("report") or {}
    return {"governance_address": cfg["mail"]["governance_address"], "sender": cfg["mail"]["sender"],
            "transport": cfg["mail"].get("transport", SES), **rep}


def week_for_settings(store: Store, week: Week, cfg: Mapping[str, Any], *, catalog: Catalog | None = None,
                      exceptions: Exceptions | None = None) -> tuple[WeekData, dict[str, str], str | None]:
    """The week's data built as the weekly report builds it, from the settings: (data, first-seen index, its start).

    The one place that turns settings into :func:`build_week`'s arguments (report delivery, change history).

    :param store: the history store.
    :param week: the ISO week.
    :param cfg: validated settings (``report``, ``mail``, ``ou_owners``).
    :param catalog: the rules catalogue (default: the packaged one).
    :param exceptions: the approved exceptions (default: the report settings' exceptions file).
    :raises NoDataError: nothing was collected in or before the week.
    """
    opts = report_options(cfg)
    if exceptions is None:
        exceptions = load_exceptions(opts.get("exceptions_file"))
    known, since = load_first_seen(store)
    data = build_week(store, week, catalog=catalog or load_catalog(), exceptions=exceptions,
                      ou_owners=cfg.get("ou_owners") or {}, fallback=opts["governance_address"],
                      history_weeks=int(opts["history_weeks"]), warn_days=int(opts["expiry_warning_days"]),
                      first_seen=known, first_seen_since=since)
    return data, known, since

"""What one report shows: the week's data (report.py) sliced for one owner, or summed up for the organization.

Views are plain dicts, lists, strings and numbers handed to the templates (render.py); nothing here formats HTML.
The week's frames are turned into records once and grouped by owner and account once (:class:`Records`), so a
view costs what its own rows cost, whether the organization has ten owners or a thousand. Top actions group the
counted findings by fix (one Config rule or Trusted Advisor check), ranked by their best finding's rank (severity
x environment x age, rules_catalog.py), so a rule broken on 40 resources is one action with a count. The CSV
attachment holds every open finding of the owner, suppressed ones included.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

import include.awsgov.report.threats as threats
from include.awsgov.core import i18n
from include.awsgov.core import owners as own
from include.awsgov.core.render import csv_cell, plain_value
from include.awsgov.report import events_of_week
from include.awsgov.report.catalog import CONFIG, SEVERITIES, TA, Catalog
from include.awsgov.report.suppressions import EXPIRED, EXPIRING
from include.awsgov.report.week import NEW, PERSISTING, REOPENED, WeekData

ITEM_FIELDS = ("finding_id", "source", "severity", "title", "why", "remediation", "console_url", "account_id",
               "account_name", "environment", "region", "check", "resource", "detail", "status", "first_seen",
               "age_days", "age_capped", "delta", "overdue", "owner", "exception_id", "exception_status",
               "exception_expires", "exception_reason", "exception_approver", "exception_ticket",
               "change")  # change: when/who of a non-compliant Config resource (change_history.py), else None
CSV_FIELDS = ("finding_id", "severity", "title", "account_id", "account_name", "environment", "region", "source",
              "check", "resource", "status", "detail", "first_seen", "age_days", "delta", "overdue",
              "exception_id", "exception_status", "exception_expires", "remediation", "console_url")
# A spreadsheet treats cells starting with these as formulas; prefix them so the CSV stays data.
_ANOMALY_ORDER = {"high": 0, "medium": 1, "low": 2}
Row = dict[str, Any]


def records(frame: pd.DataFrame) -> list[Row]:
    """Rows of a frame as dicts of plain Python values (NaN as None).

    Frames of plain scalar columns go through Arrow (several times faster than pandas' per-value iteration of
    Arrow-backed strings); frames holding lists or dicts (score cards) take the Python path.
    """
    if not any(pd.api.types.is_object_dtype(dtype) for dtype in frame.dtypes):
        return pa.Table.from_pandas(frame, preserve_index=False).to_pylist()
    # Column by column (tolist converts a whole column at once) rather than to_dict's per-value boxing.
    names = [str(c) for c in frame.columns]
    columns = [frame[c].tolist() for c in frame.columns]
    return [{k: plain_value(v) for k, v in zip(names, row, strict=True)} for row in zip(*columns, strict=True)]


class Records:
    """The week's frames as records, grouped once by owner and by account.

    :param data: the week.
    """

    def __init__(self, data: WeekData) -> None:
        self.data = data
        self.findings = records(data.findings)
        self.resolved = records(data.resolved)
        self.accounts = records(data.accounts)
        self.gaps = records(data.gaps.sort_values(["account_id", "source", "region"]))
        self.anomalies = records(data.anomalies.sort_values(["timestamp", "anomaly_id"]))
        self._by_owner = {name: _group(getattr(self, name), "owner") for name in ("findings", "resolved", "accounts")}
        self._by_account = {name: _group(getattr(self, name), "account_id") for name in ("gaps", "anomalies")}
        self.account_index = {a["account_id"]: a for a in self.accounts}

    def of_owner(self, name: str, owner: str) -> list[Row]:
        """Rows of ``findings``, ``resolved`` or ``accounts`` belonging to ``owner``."""
        return self._by_owner[name].get(owner, [])

    def of_accounts(self, name: str, account_ids: Iterable[str]) -> list[Row]:
        """Rows of ``gaps`` or ``anomalies`` of these accounts, in their stored order."""
        wanted = set(account_ids)
        return [r for r in getattr(self, name) if r["account_id"] in wanted]


def account_languages(recs: Records, owner: str) -> list[str]:
    """The report language each of an owner's accounts names by its Language tag ('' for none); see
    owners.Languages.

    :param recs: the week's records.
    :param owner: a canonical owner key.
    """
    return [str(a.get("language") or "") for a in recs.of_owner("accounts", owner)]


def _group(rows: list[Row], key: str) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        out[row[key]].append(row)
    return dict(out)


def _sev(row: Row) -> int:
    return SEVERITIES.index(row["severity"]) if row.get("severity") in SEVERITIES else len(SEVERITIES)


def items(rows: Iterable[Row], limit: int | None = None) -> list[Row]:
    """Finding rows as template items: best rank first (by severity when unranked), at most ``limit``.

    :param rows: finding records.
    :param limit: at most this many.
    """
    ordered = sorted(rows, key=lambda r: (-(r.get("rank") or 0.0), _sev(r), r["finding_id"]))
    return [{k: r.get(k) for k in ITEM_FIELDS} for r in ordered[:limit]]


def actions(rows: Iterable[Row], max_actions: int, max_resources: int) -> list[Row]:
    """Top actions: counted findings grouped by fix, best rank first.

    :param rows: current finding records (only ``counted`` ones are used).
    :param max_actions: groups to return.
    :param max_resources: resources listed per group (the count covers all).
    """
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if row["counted"]:
            groups[(row["source"], row["check"])].append(row)
    ranked = sorted(groups.items(), key=lambda kv: (-max(r["rank"] for r in kv[1]), kv[0]))
    out = []
    for (source, check), group in ranked[:max_actions]:
        listed = items(group)
        top = listed[0]
        out.append({
            "source": source, "check": check, "title": top["title"], "severity": top["severity"], "why": top["why"],
            "remediation": top["remediation"], "count": len(group),
            "accounts": len({r["account_id"] for r in group}), "prod": sum(r["environment"] == "prod" for r in group),
            "max_age_days": max(r["age_days"] for r in group), "overdue": sum(bool(r["overdue"]) for r in group),
            "new": sum(r["delta"] in (NEW, REOPENED) for r in group), "rank": max(r["rank"] for r in group),
            "resources": listed[:max_resources], "more": max(0, len(group) - max_resources),
        })
    return out


def counts(rows: Sequence[Row], resolved: Sequence[Row], unverified: int = 0) -> dict[str, int]:
    """The headline numbers of a set of findings (suppressed ones are only counted as such).

    :param rows: current finding records.
    :param resolved: finding records fixed since the previous snapshot.
    :param unverified: findings gone but not scanned.
    """
    counted = [r for r in rows if r["counted"]]
    by_sev = Counter(r["severity"] for r in counted)
    new = [r for r in counted if r["delta"] == NEW]
    return {
        "open": len(counted), "new": len(new), "new_critical": sum(r["severity"] == "critical" for r in new),
        "reopened": sum(r["delta"] == REOPENED for r in counted),
        "persisting": sum(r["delta"] == PERSISTING for r in counted),
        "resolved": len(resolved), "overdue": sum(bool(r["overdue"]) for r in counted),
        "suppressed": len(rows) - len(counted),
        "expiring": sum(r["exception_status"] == EXPIRING for r in rows),
        "expired": sum(r["exception_status"] == EXPIRED for r in rows),
        "unverified": int(unverified), **{f"sev_{s}": by_sev.get(s, 0) for s in SEVERITIES},
    }


def _label(accounts: Sequence[Row], owner: str, fallback: str) -> str:
    """What a subject calls an owner: their team(s), else the address."""
    if owner == fallback:
        return "Unowned resources"
    names = [t for t, _ in Counter(a["team"] for a in accounts if a["team"]).most_common()]
    if not names:
        return owner
    return names[0] if len(names) == 1 else f"{names[0]}, {names[1]}" + (f" +{len(names) - 2}" if len(names) > 2
                                                                          else "")


def _scorecards(accounts: Iterable[Row]) -> list[Row]:
    return sorted(accounts, key=lambda a: (a["environment"] != "prod", a["environment"], a["name"], a["account_id"]))


def _common(data: WeekData, options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "week": data.week.label, "monday": data.week.monday.isoformat(), "sunday": data.week.sunday.isoformat(),
        "as_of": data.as_of.isoformat(), "prev_as_of": data.prev_as_of.isoformat() if data.prev_as_of else None,
        "trend_weeks": data.trend_weeks, "last_run": {k: plain_value(v) for k, v in data.last_run.items()},
        "options": dict(options),
    }


def owner_view(recs: Records, owner: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Template context of one owner's report.

    :param recs: the week's records.
    :param owner: a canonical owner key (see owners.py).
    :param options: settings-derived knobs: max_actions, max_resources_per_action, max_list_items,
        governance_address, expiry_warning_days, exceptions_file.
    """
    fallback = own.canonical(options["governance_address"])
    rows = recs.of_owner("findings", owner)
    resolved = recs.of_owner("resolved", owner)
    mine = recs.of_owner("accounts", owner)
    owned = {a["account_id"] for a in mine}
    extra = sorted({r["account_id"] for r in rows} - owned)
    accounts = _scorecards(mine + [recs.account_index[a] for a in extra if a in recs.account_index])
    limit = int(options["max_list_items"])
    scope = owned | set(extra)
    return {
        **_common(recs.data, options), "kind": "owner", "owner": owner, "recipients": own.recipients(owner),
        "label": _label(mine, owner, fallback), "is_fallback": owner == fallback,
        "counts": counts(rows, resolved), "accounts": accounts,
        "regions": sorted({g for a in accounts for g in a["regions"]} | {r["region"] for r in rows} - {"global", ""}),
        "gaps": recs.of_accounts("gaps", scope),
        "new": items([r for r in rows if r["counted"] and r["delta"] == NEW], limit),
        "reopened": items([r for r in rows if r["counted"] and r["delta"] == REOPENED], limit),
        "resolved": items(resolved, limit),
        "actions": actions(rows, int(options["max_actions"]), int(options["max_resources_per_action"])),
        "anomalies": recs.of_accounts("anomalies", owned),
        "events": events_of_week.view(recs.data.events, owned, limit),
        "exceptions": items([r for r in rows if r["exception_id"]]),
        "list_limit": limit,
        # GuardDuty and Macie sections (threats.py; templates _threats.*.j2): new high/critical first.
        "threats": threats.section(rows, "guardduty", limit, ITEM_FIELDS),
        "sensitive": threats.section(rows, "macie", limit, ITEM_FIELDS),
    }


def org_view(recs: Records, options: Mapping[str, Any], delivery: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Template context of the organization-wide summary for the governance team.

    :param recs: the week's records.
    :param options: as for :func:`owner_view`.
    :param delivery: per-owner delivery results (owner, status, refused, error), if known.
    """
    data = recs.data
    fallback = own.canonical(options["governance_address"])
    by_owner = {d["owner"]: d for d in delivery}
    owners = []
    for owner in data.owners:
        accs = recs.of_owner("accounts", owner)
        owners.append({"owner": owner, "label": _label(accs, owner, fallback), "accounts": len(accs),
                       "is_fallback": owner == fallback,
                       **counts(recs.of_owner("findings", owner), recs.of_owner("resolved", owner)),
                       "delivery": by_owner.get(owner, {})})
    rows = recs.findings
    unowned = [r for r in recs.of_owner("findings", fallback) if r["counted"]]
    limit = int(options["max_list_items"])
    anomalies = sorted(recs.anomalies, key=lambda a: (_ANOMALY_ORDER.get(a["severity"], 3), str(a["timestamp"])))
    # A summary of a thousand accounts is unreadable: the ones needing most attention, every finding in the CSV.
    attention = sorted(recs.accounts, key=lambda a: (-a["by_severity"]["critical"], -a["by_severity"]["high"],
                                                     a["config_pct"] if a["config_pct"] is not None else 101.0,
                                                     -a["open"], a["account_id"]))
    return {
        **_common(data, options), "kind": "org", "label": "Organization",
        "counts": counts(rows, recs.resolved, data.unverified), "owners": owners, "owner_count": len(owners),
        "accounts": _scorecards(attention[:limit]), "account_count": len(recs.accounts),
        "regions": sorted({g for a in recs.accounts for g in a["regions"]}),
        "gaps": recs.gaps,
        "actions": actions(rows, int(options["max_actions"]), int(options["max_resources_per_action"])),
        "anomalies": anomalies[:limit], "anomaly_count": len(anomalies),
        "anomaly_by_severity": dict(Counter(a["severity"] for a in anomalies)),
        "events": events_of_week.view(data.events, None, limit),
        "exceptions": items([r for r in rows if r["exception_status"] in (EXPIRING, EXPIRED)]),
        "unused_exceptions": [{"id": e.id, "expires": e.expires.isoformat(), "ticket": e.ticket}
                              for e in data.unused_exceptions],
        "unowned": items(unowned, limit), "unowned_count": len(unowned),
        "delivery": list(delivery), "delivery_counts": dict(Counter(d.get("status", "") for d in delivery)),
        "list_limit": limit,
        "threats": threats.section(rows, "guardduty", limit, ITEM_FIELDS),
        "sensitive": threats.section(rows, "macie", limit, ITEM_FIELDS),
    }


def with_delivery(view: Mapping[str, Any], delivery: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The org summary's view completed with each owner's delivery outcome; the owners table keeps the owners whose
    mail failed or was refused, then those with the most open findings, up to the view's list limit.

    :param view: from :func:`org_view` (possibly through JSON).
    :param delivery: per-owner outcomes (owner, status, refused, error).
    """
    by_owner = {d["owner"]: d for d in delivery}
    owners = [{**o, "delivery": by_owner.get(o["owner"], {})} for o in view["owners"]]
    owners.sort(key=lambda o: (o["delivery"].get("status") not in ("failed", "refused"), -o["open"], o["owner"]))
    return {**view, "owners": owners[: int(view["list_limit"])], "owner_count": len(owners),
            "delivery": list(delivery), "delivery_counts": dict(Counter(d.get("status", "") for d in delivery))}


def in_language(view: Mapping[str, Any], lang: str, catalog: Catalog) -> dict[str, Any]:
    """A view with every Config and Trusted Advisor finding's title and why in the report's language.

    Views are built once per owner, in the catalog's English, and rendered once per language: this copies the view
    and rewords each finding item and top action (any dict with source, check, title and why, wherever the view
    nests it, so a new section needs no change here) with :meth:`Catalog.wording`; English returns the view as is.

    :param view: from :func:`owner_view` or :func:`org_view` (possibly through JSON).
    :param lang: report language (i18n.LANGUAGES).
    :param catalog: the rules catalog the week was built with.
    """
    if lang == i18n.SOURCE_LANGUAGE:
        return dict(view)
    seen: dict[tuple[str, str, str, str], tuple[str, str]] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(v) for v in value]
        if not isinstance(value, dict):
            return value
        out = {k: walk(v) for k, v in value.items()}
        if out.get("source") in (CONFIG, TA) and {"check", "title", "why"} <= out.keys():
            key = (out["source"], str(out["check"]), str(out["title"]), str(out["why"]))
            if key not in seen:
                seen[key] = catalog.wording(*key, lang)
            out["title"], out["why"] = seen[key]
        return out

    return walk(dict(view))


def findings_csv(recs: Records, owner: str | None = None) -> bytes:
    """The open findings (suppressed ones included) of an owner, or of everyone, as UTF-8 CSV with a BOM.

    :param recs: the week's records.
    :param owner: a canonical owner key; None: all.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for row in items(recs.findings if owner is None else recs.of_owner("findings", owner)):
        writer.writerow([csv_cell(row.get(k)) for k in CSV_FIELDS])
    # The BOM lets spreadsheet programs recognise UTF-8 (account names in Japanese, emoji).
    return buf.getvalue().encode("utf-8-sig")

"""Trusted Advisor through the Support API (us-east-1), one account at a time through its read role, and, further
down, organization-wide through the Trusted Advisor API (``trustedadvisor``) from the management account, split per
account into the same rows (settings ``collection.trusted_advisor.source``). The organization view lists only
prioritized recommendations, so with it the Support API still reads the checks it does not list.

Calls per account: ``describe_trusted_advisor_check_summaries`` (status, counts and savings of every check in one call;
with the run's catalogue from the admin account it is also the probe that tells whether the account has a
Business/Enterprise plan: ``SubscriptionRequiredException`` otherwise), ``describe_trusted_advisor_check_result`` only
for checks that have flagged resources, and, when refresh is on, ``refresh_trusted_advisor_check`` for the oldest stale
results (``refresh_per_account`` a run). A refresh request is answered with the check's refresh status
(``none``/``enqueued``/``processing``/``success``/``abandoned`` and ``millisUntilNextRefreshable``, Support API
Reference, RefreshTrustedAdvisorCheck), so no ``describe_trusted_advisor_check_refresh_statuses`` is asked first; a
rerun of the day may ask again for a check whose refresh is still running, one call. Refreshes are fire-and-forget:
their results show up in a later run. Only checks whose result is older than the day being collected are refreshed: a
check already refreshed that day is left alone, and a rerun or backfill of a day does not disturb the data it reads.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from include.awsgov.core import tables
from include.awsgov.core.aws import error_code

log = logging.getLogger(__name__)

SUPPORT_REGION = "us-east-1"
# Region recorded for account-level Trusted Advisor coverage rows (the check results carry their own regions).
GLOBAL_REGION = "global"
# Auto-refreshed checks answer refresh and refresh-status requests with this code.
NOT_REFRESHABLE_CODES = frozenset({"InvalidParameterValue", "InvalidParameterValueException"})
_MONEY = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def describe_checks(client: Any, language: str = "en") -> list[dict[str, Any]]:
    """All checks with id, name, category and metadata column names (``support:DescribeTrustedAdvisorChecks``).

    :param client: a Support client of the account.
    :param language: ISO 639-1 language of names and columns.
    """
    return client.describe_trusted_advisor_checks(language=language)["checks"]


def request_refresh(client: Any, check_id: str) -> bool:
    """Ask for a refresh (``support:RefreshTrustedAdvisorCheck``) without waiting; False if not refreshable.

    :param client: a Support client of the account.
    :param check_id: the check.
    """
    try:
        client.refresh_trusted_advisor_check(checkId=check_id)
    except ClientError as exc:
        if error_code(exc) in NOT_REFRESHABLE_CODES:
            log.debug("check %s is refreshed automatically", check_id)
            return False
        raise
    return True


def summaries(client: Any, check_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Summary of each check (``support:DescribeTrustedAdvisorCheckSummaries``), by check id.

    :param client: a Support client of the account.
    :param check_ids: the checks.
    """
    if not check_ids:
        return {}
    found = client.describe_trusted_advisor_check_summaries(checkIds=list(check_ids))["summaries"]
    return {s["checkId"]: s for s in found}


def check_result(client: Any, check_id: str, language: str = "en") -> dict[str, Any]:
    """A check's result with its flagged resources (``support:DescribeTrustedAdvisorCheckResult``).

    :param client: a Support client of the account.
    :param check_id: the check.
    :param language: ISO 639-1 language.
    """
    return client.describe_trusted_advisor_check_result(checkId=check_id, language=language)["result"]


def has_flagged(summary: Mapping[str, Any]) -> bool:
    """Whether a check summary says there are flagged resources to fetch.

    :param summary: one item of :func:`summaries`.
    """
    flagged = (summary.get("resourcesSummary") or {}).get("resourcesFlagged") or 0
    return bool(summary.get("hasFlaggedResources")) or flagged > 0


def is_stale(summary: Mapping[str, Any] | None, day: dt.date) -> bool:
    """Whether a check's result predates ``day`` (or has no readable timestamp), so a refresh is worth asking for.

    :param summary: the check's summary (None when the account has none).
    :param day: the day being collected.
    """
    stamp = (summary or {}).get("timestamp") or ""
    try:
        checked = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return True
    return checked.astimezone(dt.UTC).date() < day


def parse_money(text: Any) -> float | None:
    """Dollar amount in a Trusted Advisor cell ("$1,234.50" -> 1234.5); None when there is none.

    :param text: the cell value.
    """
    if text is None:
        return None
    if isinstance(text, int | float):
        return float(text)
    match = _MONEY.search(str(text))
    return float(match.group(0).replace(",", "")) if match else None


def savings_amount(text: Any) -> float | None:
    """A resource's estimated monthly savings from its cell: a dollar amount of at least 0, else None.

    The cell is data from the account (Trusted Advisor's metadata): a negative number there is no saving, and summing
    it into the report's totals would lower them.
    """
    amount = parse_money(text)
    return amount if amount is not None and amount >= 0 else None


def _savings(summary: Mapping[str, Any]) -> float | None:
    cost = (summary.get("categorySpecificSummary") or {}).get("costOptimizing")
    return float(cost["estimatedMonthlySavings"]) if cost and "estimatedMonthlySavings" in cost else None


def check_rows(account_id: str, checks: Iterable[Mapping[str, Any]], found: Mapping[str, Mapping[str, Any]]):
    """Rows of ``tables.TA_CHECKS``: one per check, ``not_available`` when the account has no summary for it.

    :param account_id: the account.
    :param checks: from :func:`describe_checks`.
    :param found: from :func:`summaries`.
    """
    rows = []
    for check in checks:
        summary = found.get(check["id"], {})
        counts = summary.get("resourcesSummary") or {}
        rows.append(
            {
                "account_id": account_id,
                "check_id": check["id"],
                "check_name": check.get("name", ""),
                "category": check.get("category", ""),
                "status": summary.get("status") or "not_available",
                "resources_processed": int(counts.get("resourcesProcessed") or 0),
                "resources_flagged": int(counts.get("resourcesFlagged") or 0),
                "resources_suppressed": int(counts.get("resourcesSuppressed") or 0),
                "estimated_monthly_savings": _savings(summary),
                "checked_at": summary.get("timestamp") or "",
            }
        )
    return rows


def savings_column(columns: Sequence[str | None], prefixes: Sequence[str]) -> int | None:
    """Index of the column holding a resource's estimated monthly savings, if the check has one.

    :param columns: the check's metadata column names.
    :param prefixes: column-name prefixes that mean "estimated monthly savings" (from settings).
    """
    for i, name in enumerate(columns):
        if name and any(str(name).casefold().startswith(p.casefold()) for p in prefixes):
            return i
    return None


def finding_rows(
    account_id: str, check: Mapping[str, Any], result: Mapping[str, Any], savings_prefixes: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows of ``tables.TA_FINDINGS`` for one check's flagged resources, metadata cells mapped to column names.

    :param account_id: the account.
    :param check: the check's metadata (from :func:`describe_checks`).
    :param result: from :func:`check_result`.
    :param savings_prefixes: see :func:`savings_column`.
    """
    columns = [c if c else f"column_{i}" for i, c in enumerate(check.get("metadata") or [])]
    money = savings_column(columns, savings_prefixes)
    rows = []
    for res in result.get("flaggedResources") or []:
        cells = list(res.get("metadata") or [])
        names = columns + [f"column_{i}" for i in range(len(columns), len(cells))]
        details = dict(zip(names, cells, strict=False))
        region = res.get("region") or GLOBAL_REGION
        resource_id = res.get("resourceId", "")
        rows.append(
            {
                "finding_id": tables.finding_id("trusted_advisor", account_id, region, check["id"], resource_id),
                "account_id": account_id,
                "region": region,
                "check_id": check["id"],
                "check_name": check.get("name", ""),
                "category": check.get("category", ""),
                "status": res.get("status", ""),
                "resource_id": resource_id,
                "is_suppressed": bool(res.get("isSuppressed", False)),
                "details_json": json.dumps(details, sort_keys=True, ensure_ascii=False),
                "estimated_monthly_savings": savings_amount(cells[money]) if money is not None and money < len(cells)
                else None,
            }
        )
    return rows


# -- organization-wide: the Trusted Advisor API (``trustedadvisor``) from the management account -------------------
# ListChecks and ListOrganizationRecommendations/-Accounts/-Resources (Trusted Advisor API Reference, 2022-09-15),
# one listing per check for the whole organization instead of a summary and a result per flagged check per account.
# The organization operations "only support prioritized recommendations" (API Reference): the checks they do not
# list are read through each account's Support API (runner._ta_from_organization).
# The API needs a Business/Enterprise plan and, for the organization operations, the management account with the
# organizational view; otherwise AccessDeniedException (AWS Support User Guide, *Get started with the Trusted Advisor
# API*), on which the collection falls back to reading each account through the Support API.
ORG_SERVICE = "trustedadvisor"
ORG_REGION = "us-east-1"
ORG_PAGE = 200  # maxResults of the organization operations and ListChecks: 1-200 (botocore service model)
ORG_REFUSED_CODES = frozenset({"AccessDeniedException"})
# Coverage statuses of the organization source.
NOT_COVERED = "not_covered"  # no organization recommendation lists the account
STALE = "stale"  # the account's newest result in the organization view is older than max_age_days
_RANK = {"ok": 0, "warning": 1, "error": 2}


def org_refused(exc: BaseException) -> bool:
    """Whether the organization view was refused as AWS documents it (no plan, not the management account, no
    organizational view): the per-account path is then the way to read Trusted Advisor."""
    return isinstance(exc, ClientError) and error_code(exc) in ORG_REFUSED_CODES


def _pages(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    return [item for page in client.get_paginator(operation).paginate(**params, PaginationConfig={"PageSize": ORG_PAGE})
            for item in page[key]]


def _columns(metadata: Mapping[str, str] | None) -> list[str | None]:
    """A StringMap keyed "0", "1", ... (ListChecks' column names, a resource's cells) as a list; gaps are None."""
    cells = {int(k): v for k, v in (metadata or {}).items() if str(k).isdigit()}
    return [cells.get(i) for i in range(max(cells) + 1)] if cells else []


def org_catalogue(client: Any, language: str = "en") -> list[dict[str, Any]]:
    """The Trusted Advisor checks (``trustedadvisor:ListChecks``, source ta_check) in :func:`describe_checks`'s shape:
    id, name, description, category (the check's first pillar) and metadata column names.

    :param client: a ``trustedadvisor`` client.
    :param language: ISO 639-1 language of names and columns.
    """
    found = _pages(client, "list_checks", "checkSummaries", source="ta_check", language=language)
    return [{"id": c["id"], "name": c.get("name", ""), "description": c.get("description", ""),
             "category": (c.get("pillars") or [""])[0], "metadata": _columns(c.get("metadata"))} for c in found]


def org_recommendations(client: Any) -> dict[str, str]:
    """{check id: organization recommendation ARN} of the Trusted Advisor checks
    (``trustedadvisor:ListOrganizationRecommendations``, source ta_check).

    :param client: a ``trustedadvisor`` client of the management account.
    """
    out = {}
    for rec in _pages(client, "list_organization_recommendations", "organizationRecommendationSummaries",
                      source="ta_check"):
        check_id = str(rec.get("checkArn") or "").rsplit("/", 1)[-1]
        if check_id:
            out[check_id] = rec["arn"]
    return out


def org_listing(client: Any, arn: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One recommendation across the organization: the accounts it has a result for
    (``ListOrganizationRecommendationAccounts``) and every resource (``ListOrganizationRecommendationResources``).

    :param client: a ``trustedadvisor`` client of the management account.
    :param arn: the organization recommendation's ARN.
    """
    accounts = _pages(client, "list_organization_recommendation_accounts", "accountRecommendationLifecycleSummaries",
                      organizationRecommendationIdentifier=arn)
    resources = _pages(client, "list_organization_recommendation_resources",
                       "organizationRecommendationResourceSummaries", organizationRecommendationIdentifier=arn)
    return accounts, resources


def _stamp(value: Any) -> str:
    """A timestamp as the Support API writes it (``2026-11-23T04:05:06Z``): the stored ``checked_at``."""
    if isinstance(value, dt.datetime):
        when = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value or "")


def _account_check(check: Mapping[str, Any], stamp: str, resources: Sequence[Mapping[str, Any]],
                   savings_prefixes: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One account's summary and result of one check, in the Support API's shapes, from its organization resources.

    Every processed resource is listed (ok ones too), so the counts are those of the account's own summary. An
    account-level check (no metadata columns, e.g. MFA on Root Account) lists the account as its one resource: its
    status is the check's, and, as in the Support API, it is no flagged resource.
    """
    columns = check.get("metadata") or []
    included = [r for r in resources if r.get("exclusionStatus") != "excluded"]
    flagged = [] if not columns else [r for r in resources if r.get("status") in ("warning", "error")]
    worst = max((str(r.get("status")) for r in (included if not columns else
                                                 [r for r in flagged if r.get("exclusionStatus") != "excluded"])),
                key=lambda s: _RANK.get(s, 0), default="ok")
    result = {"flaggedResources": [
        {"status": r.get("status", ""), "region": r.get("regionCode") or GLOBAL_REGION, "resourceId": r.get("id", ""),
         "isSuppressed": r.get("exclusionStatus") == "excluded", "metadata": _columns(r.get("metadata"))}
        for r in flagged]}
    summary: dict[str, Any] = {
        "checkId": check["id"], "timestamp": stamp, "status": worst, "hasFlaggedResources": bool(flagged),
        "resourcesSummary": {"resourcesProcessed": len(resources),
                             "resourcesFlagged": sum(not f["isSuppressed"] for f in result["flaggedResources"]),
                             "resourcesSuppressed": sum(f["isSuppressed"] for f in result["flaggedResources"])},
        "categorySpecificSummary": {},
    }
    if check.get("category") == "cost_optimizing":
        money = savings_column(columns, savings_prefixes)
        amounts = [savings_amount(f["metadata"][money]) if money is not None and money < len(f["metadata"]) else None
                   for f in result["flaggedResources"] if not f["isSuppressed"]]
        total = 0.0
        for amount in amounts:  # in the resources' order, as the account's own summary adds them up
            total += amount or 0.0
        summary["categorySpecificSummary"] = {"costOptimizing": {"estimatedMonthlySavings": round(total, 2)}}
    return summary, result


def split_organization(checks: Sequence[Mapping[str, Any]],
                       listings: Mapping[str, tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]],
                       account_ids: Iterable[str], day: dt.date, savings_prefixes: Sequence[str],
                       max_age_days: int) -> dict[str, dict[str, Any]]:
    """The organization view cut per account into what the per-account path writes: ``ta_checks`` and
    ``ta_findings`` rows, the coverage of the account, and its summaries (for the refresh plan).

    An account no recommendation lists is not in the organization view (:data:`NOT_COVERED`, no rows: nothing was
    read for it, which is not "every check not available"); one whose newest result is older than ``max_age_days``
    before ``day`` is :data:`STALE` (rows written, the gap says how old). Rows are written for the checks with an
    organization recommendation only: the view lists only prioritized recommendations (Trusted Advisor API
    Reference, ListOrganizationRecommendations), so a check it does not list is unknown here, not ``not_available``;
    the collection reads those through each account's Support API. A listed check with no result for a covered
    account is ``not_available`` there, as the account's own summaries would say.

    :param checks: the catalogue (:func:`org_catalogue`).
    :param listings: {check id: (accounts, resources)} from :func:`org_listing`.
    :param account_ids: the accounts collected this run.
    :param day: the day being collected.
    :param savings_prefixes: see :func:`savings_column`.
    :param max_age_days: age of an account's newest result beyond which its data is stale.
    :returns: {account: {"status", "error", "checks", "findings", "summaries"}}.
    """
    wanted = set(account_ids)
    by_id = {c["id"]: c for c in checks}
    summaries: dict[str, dict[str, dict[str, Any]]] = {a: {} for a in wanted}
    results: dict[str, dict[str, dict[str, Any]]] = {a: {} for a in wanted}
    for check_id, (accounts, resources) in sorted(listings.items()):
        check = by_id.get(check_id)
        if check is None:  # a recommendation for a check the catalogue does not have: nothing to name it by
            log.warning("organization recommendation of check %s, not in the catalogue: skipped", check_id)
            continue
        grouped: dict[str, list[Mapping[str, Any]]] = {}
        for res in resources:
            grouped.setdefault(str(res.get("accountId") or ""), []).append(res)
        for entry in accounts:
            account = str(entry.get("accountId") or "")
            if account not in wanted:
                continue
            summary, result = _account_check(check, _stamp(entry.get("lastUpdatedAt")), grouped.get(account, []),
                                             savings_prefixes)
            summaries[account][check_id], results[account][check_id] = summary, result
    oldest_allowed = day - dt.timedelta(days=max_age_days)
    listed = [c for c in checks if c["id"] in listings]  # the checks the view has rows for, in every account
    out: dict[str, dict[str, Any]] = {}
    for account in sorted(wanted):
        found = summaries[account]
        if not found:
            out[account] = {"status": NOT_COVERED, "checks": [], "findings": [], "summaries": {},
                            "error": "not in Trusted Advisor's organization view: no organization recommendation "
                                     "lists the account (no Business/Enterprise support plan there, or not yet "
                                     "evaluated)"}
            continue
        newest = max(s["timestamp"] for s in found.values())
        status, error = "ok", ""
        if is_stale({"timestamp": newest}, oldest_allowed):
            status, error = STALE, (f"newest Trusted Advisor result in the organization view is from {newest[:10]}, "
                                    f"more than {max_age_days} days before {day}")
        findings = [row for cid, result in sorted(results[account].items())
                    for row in finding_rows(account, by_id[cid], result, savings_prefixes)]
        out[account] = {"status": status, "error": error, "checks": check_rows(account, listed, found),
                        "findings": findings, "summaries": found}
    return out


def plan_refreshes(checks: Sequence[Mapping[str, Any]], summaries: Mapping[str, Mapping[str, Mapping[str, Any]]],
                   day: dt.date, skip_categories: Sequence[str], per_account: int,
                   max_accounts: int) -> dict[str, list[str]]:
    """Which stale, refreshable results to refresh this run, through each account's Support API (the Trusted
    Advisor API has no refresh operation; the organization view shows each account's latest check results, which a
    refresh in the account renews). Only results older than ``day``, never a category AWS refreshes itself, at most
    ``per_account`` checks in each of at most ``max_accounts`` accounts: the accounts whose oldest stale result is
    oldest first, so that over a few runs every account gets its turn.

    :param checks: the catalogue.
    :param summaries: {account: {check id: summary}} (:func:`split_organization`).
    :param day: the day being collected.
    :param skip_categories: categories never refreshed on request.
    :param per_account: refreshes per account and run.
    :param max_accounts: accounts refreshed per run.
    :returns: {account: [check id, ...]}, oldest results first.
    """
    category = {c["id"]: c.get("category") for c in checks}
    stale = []
    for account, found in summaries.items():
        todo = sorted((str(s.get("timestamp") or ""), cid) for cid, s in found.items()
                      if category.get(cid) not in skip_categories and s.get("status") != "not_available"
                      and is_stale(s, day))
        if todo and per_account > 0:
            stale.append((todo[0][0], account, [cid for _, cid in todo[:per_account]]))
    return {account: cids for _, account, cids in sorted(stale)[:max(0, max_accounts)]}

"""Trusted Advisor through the Support API (us-east-1), one account at a time through its read role.

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

"""The Trusted Advisor API's organization view, computed from the same per-account results the Support API answers
(support/models.py), so that reading an account's checks either way gives the same statuses, counts, resources and
ages.

What AWS documents and the sandbox enforces:
- every operation needs a Business, Enterprise On-Ramp or Enterprise Support plan in the calling account, else
  AccessDeniedException ("If you call the AWS Trusted Advisor API from an account that doesn't have a Business,
  Enterprise On-Ramp, or Enterprise Support plan, then you receive an Access Denied exception", AWS Support User
  Guide, *Get started with the Trusted Advisor API*);
- the ``ListOrganization*`` operations read the organization: the management account only (organizational view,
  Trusted Advisor Priority); another caller gets AccessDeniedException (assumption: AWS also allows a delegated
  administrator for Trusted Advisor Priority, which the sandbox does not model);
- page sizes ``maxResults`` 1-200, opaque ``nextToken`` of 4-10000 characters (botocore trustedadvisor/2022-09-15
  service-2.json; API Reference, ListOrganizationRecommendationAccounts: "Valid Range: Minimum value of 1. Maximum
  value of 200"); out of range is ValidationException 400; an unknown recommendation is ResourceNotFoundException.

Assumptions (no AWS text seen): an account without a support plan (fault ``no_support_accounts``) is absent from the
organization view; ``ListOrganizationRecommendationAccounts`` lists the accounts the check has a result for (ok,
warning or error; an account where the check is not available is not listed);
``ListOrganizationRecommendationResources`` lists every processed resource of those accounts (ok ones too, as
``resourcesAggregates.okCount`` counts them), a
flagged resource with the Support API's ``resourceId`` as its ``id`` and its metadata cells keyed "0", "1", ... as
``ListChecks`` keys the column names; an account-level check (no metadata columns, e.g. MFA on Root Account) has one
resource per account, the account itself, without ``awsResourceId`` ("There are certain checks that generate
recommendation resources without an awsResourceId", service model). The default page size when ``maxResults`` is
omitted is not documented: 100 here.

Only prioritized recommendations: ListOrganizationRecommendations, -Accounts, -Resources and
GetOrganizationRecommendation "only support prioritized recommendations" (Trusted Advisor API Reference, e.g.
API_ListOrganizationRecommendations; the same words in botocore's trustedadvisor service-2.json). Which checks are
prioritized is decided by AWS (the account team and AWS services, Trusted Advisor Priority, Enterprise Support), not
by the organization's data; the sandbox's assumption is a seeded subset of the security and fault-tolerance checks
(:meth:`OrganizationView.prioritized`, in the truth), listed with ``type`` priority. Any other check has no
organization recommendation (ResourceNotFoundException by ARN). ListChecks, the catalogue, keeps every check.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

from .. import det
from ..settings import HOME_REGION
from .exceptions import AccessDeniedException, ResourceNotFoundException, ValidationException

MAX_RESULTS = 200
DEFAULT_RESULTS = 100
PILLARS = ("cost_optimizing", "performance", "security", "service_limits", "fault_tolerance", "operational_excellence")
SOURCES = ("aws_config", "compute_optimizer", "cost_explorer", "lse", "manual", "pse", "rds", "resilience",
           "resilience_hub", "security_hub", "stir", "ta_check", "well_architected", "cost_optimization_hub")
STATUSES = ("ok", "warning", "error")
LANGUAGES = ("en", "ja", "zh", "fr", "de", "ko", "zh_TW", "it", "es", "pt_BR", "id")
_RANK = {"ok": 0, "warning": 1, "error": 2}
CREATED_AT = "2024-01-15T00:00:00Z"
# Pillars the sandbox's prioritized checks are drawn from (an assumption: see the module's docstring).
PRIORITIZED_PILLARS = ("security", "fault_tolerance")


def check_arn(check_id: str) -> str:
    return f"arn:aws:trustedadvisor:::check/{check_id}"


class OrganizationView:
    """ListChecks and the organization recommendations of the seeded Trusted Advisor world.

    :param world: the running world (its ``trusted_advisor`` model answers every account's results).
    """

    def __init__(self, world: Any) -> None:
        self.world = world
        self._cache: dict[tuple, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def ta(self) -> Any:
        return self.world.trusted_advisor

    # --- which checks are prioritized ---------------------------------------------------------------------------
    def prioritized(self) -> list[str]:
        """The seeded checks with an organization recommendation, in the catalogue's order: about half of the
        security and fault-tolerance checks, picked by the seed (the sandbox's assumption; on AWS the account team
        and AWS services prioritize, see the module's docstring); never none, so the view is there to read."""
        seed = self.world.settings.seed
        pool = sorted((det.unit(seed, "ta-prioritized", cid), cid) for cid, c in self.ta.seeded.items()
                      if c["category"] in PRIORITIZED_PILLARS)
        chosen = {cid for _, cid in pool[:max(1, (len(pool) + 1) // 2)]}
        return [cid for cid in self.ta.seeded if cid in chosen]

    # --- identities ---------------------------------------------------------------------------------------------
    def rec_id(self, check_id: str) -> str:
        return det.hexid(20, self.world.settings.seed, "org-recommendation", check_id)

    def rec_arn(self, check_id: str) -> str:
        return f"arn:aws:trustedadvisor:::organization-recommendation/{self.rec_id(check_id)}"

    def check_of(self, identifier: str) -> str:
        """The check behind an organization recommendation ARN (ValidationException / ResourceNotFoundException)."""
        prefix = "arn:aws:trustedadvisor:::organization-recommendation/"
        if not 20 <= len(identifier) <= 200 or not identifier.startswith(prefix):
            raise ValidationException(f"1 validation error detected: Value '{identifier}' at "
                                      "'organizationRecommendationIdentifier' failed to satisfy constraint: Member "
                                      "must satisfy regular expression pattern: "
                                      r"arn:[\w-]+:trustedadvisor:::organization-recommendation\/[\w-]+")
        wanted = identifier[len(prefix):]
        for check_id in self.prioritized():  # a check nobody prioritized has no organization recommendation
            if self.rec_id(check_id) == wanted:
                return check_id
        raise ResourceNotFoundException(f"Organization recommendation {identifier} not found")

    # --- who may call -------------------------------------------------------------------------------------------
    def authorize(self, caller: str, *, organization: bool) -> None:
        faults = self.world.faults
        if faults.support_denied(caller):
            raise AccessDeniedException("You must have a Business, Enterprise On-Ramp, or Enterprise Support plan to "
                                        "use the Trusted Advisor API.")
        if not organization:
            return
        if caller != self.world.settings.management_account_id:
            raise AccessDeniedException("Organization recommendations can only be read by the management account "
                                        "of the organization.")
        if faults.current.no_ta_organization_view:
            raise AccessDeniedException("Trusted Advisor organizational view is not enabled for this organization "
                                        "(trusted access for Trusted Advisor in AWS Organizations).")

    def covered(self) -> list[str]:
        """Accounts in the organization view: the management account and active members with a support plan."""
        faults = self.world.faults
        return [a for a in self.ta.accounts() if not faults.support_denied(a)]

    # --- the catalogue ------------------------------------------------------------------------------------------
    def checks(self) -> list[dict[str, Any]]:
        """ListChecks' CheckSummary of every Trusted Advisor check (source ta_check), in the Support catalogue's
        order, metadata column names keyed "0", "1", ..."""
        return [{"id": cid, "arn": check_arn(cid), "name": c["name"], "description": c.get("description", ""),
                 "pillars": [c["category"]], "awsServices": [], "source": "ta_check",
                 "metadata": {str(i): name for i, name in enumerate(c.get("metadata") or [])}}
                for cid, c in self.ta.all_checks.items()]

    # --- per recommendation -------------------------------------------------------------------------------------
    def data(self, check_id: str, date: dt.date) -> dict[str, Any]:
        """Accounts, resources and aggregates of one recommendation on ``date`` (cached while nothing changes)."""
        covered = tuple(self.covered())
        with self.ta._lock:
            refreshed = frozenset(a for (a, c), s in self.ta._refresh.items() if c == check_id
                                  and s.reached("success"))
        key = (check_id, date, covered, refreshed)
        with self._lock:
            found = self._cache.get(key)
        if found is not None:
            return found
        found = self._build(check_id, date, covered)
        with self._lock:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _build(self, check_id: str, date: dt.date, covered: tuple[str, ...]) -> dict[str, Any]:
        rec_id, rec_arn = self.rec_id(check_id), self.rec_arn(check_id)
        category = self.ta.seeded[check_id]["category"]
        account_level = not self.ta.seeded[check_id]["metadata"]
        accounts: list[dict[str, Any]] = []
        resources: list[tuple[str, str, str, str, str]] = []  # (account, status, region, exclusion, json)
        counts = {"ok": 0, "warning": 0, "error": 0, "excluded": 0}
        savings, spend, latest = 0.0, 0, ""
        seed = self.world.settings.seed
        regions = list(self.world.settings.regions)
        for account in covered:
            result = self.ta.result(account, check_id, date)
            if result["status"] == "not_available":
                continue
            stamp = result["timestamp"]
            latest = max(latest, stamp)
            accounts.append({"accountId": account,
                             "accountRecommendationArn": f"arn:aws:trustedadvisor::{account}:recommendation/{rec_id}",
                             "lastUpdatedAt": stamp})
            cost = (result["categorySpecificSummary"] or {}).get("costOptimizing")
            if cost:
                savings += cost["estimatedMonthlySavings"]
                spend += det.integer(1500, 25000, seed, "spend", account)
            items = []
            if account_level:  # the account is the one resource; the check's status is its status
                items.append((det.hexid(43, seed, account, check_id, "account"), result["status"], HOME_REGION,
                              False, {}, ""))
            else:
                for r in result["flaggedResources"]:
                    items.append((r["resourceId"], r["status"], r["region"], r["isSuppressed"],
                                  {str(i): v for i, v in enumerate(r["metadata"])}, r["resourceId"]))
                ok = result["resourcesSummary"]["resourcesProcessed"] - len(result["flaggedResources"])
                for k in range(max(0, ok)):
                    rid = det.hexid(43, seed, account, check_id, "ok", k)
                    items.append((rid, "ok", det.pick(regions, seed, account, check_id, "ok-region", k), False, {},
                                  rid))
            for rid, status, region, suppressed, metadata, aws_id in items:
                exclusion = "excluded" if suppressed else "included"
                counts["excluded" if suppressed else status] += 1
                body = {"id": rid, "arn": f"arn:aws:trustedadvisor::{account}:recommendation-resource/{rec_id}/{rid}",
                        "awsResourceId": aws_id, "regionCode": region, "status": status, "metadata": metadata,
                        "lastUpdatedAt": stamp, "exclusionStatus": exclusion, "accountId": account,
                        "recommendationArn": rec_arn}
                resources.append((account, status, region, exclusion, json.dumps(body, ensure_ascii=False)))
        worst = max((r[1] for r in resources if r[3] == "included"), key=_RANK.__getitem__, default="ok")
        summary: dict[str, Any] = {
            "id": rec_id, "type": "priority", "checkArn": check_arn(check_id), "status": worst,
            "pillars": [category], "source": "ta_check", "awsServices": [], "name": self.ta.seeded[check_id]["name"],
            "resourcesAggregates": {"okCount": counts["ok"], "warningCount": counts["warning"],
                                    "errorCount": counts["error"], "excludedCount": counts["excluded"]},
            "createdAt": CREATED_AT, "lastUpdatedAt": latest or CREATED_AT, "arn": rec_arn,
        }
        if category == "cost_optimizing":
            summary["pillarSpecificAggregates"] = {"costOptimizing": {
                "estimatedMonthlySavings": round(savings, 2),
                "estimatedPercentMonthlySavings": round(100.0 * savings / spend, 2) if spend else 0.0}}
        return {"summary": summary, "accounts": accounts, "resources": resources}

    def recommendations(self, date: dt.date, filters: dict[str, str]) -> list[dict[str, Any]]:
        """ListOrganizationRecommendations: the summaries matching every given filter."""
        _enum(filters, "type", ("standard", "priority"))
        _enum(filters, "status", STATUSES)
        _enum(filters, "pillar", PILLARS)
        _enum(filters, "source", SOURCES)
        after, before = _when(filters, "afterLastUpdatedAt"), _when(filters, "beforeLastUpdatedAt")
        out = []
        for check_id in self.prioritized():  # only prioritized recommendations (module docstring)
            s = self.data(check_id, date)["summary"]
            updated = _parse(s["lastUpdatedAt"])
            if (filters.get("type", s["type"]) != s["type"] or filters.get("status", s["status"]) != s["status"]
                    or filters.get("pillar", s["pillars"][0]) not in s["pillars"]
                    or filters.get("source", s["source"]) != s["source"]
                    or ("awsService" in filters and filters["awsService"] not in s["awsServices"])
                    or filters.get("checkIdentifier", s["checkArn"]) != s["checkArn"]
                    or (after and updated <= after) or (before and updated >= before)):
                continue
            out.append(s)
        return out

    # --- truth --------------------------------------------------------------------------------------------------
    def truth(self) -> dict[str, Any]:
        """What the organization view covers under the faults in force: its accounts, the prioritized checks (the
        only ones it lists) and their recommendation ARNs."""
        prioritized = self.prioritized()
        return {"management_account_id": self.world.settings.management_account_id, "accounts": self.covered(),
                "enabled": not self.world.faults.current.no_ta_organization_view, "prioritized": prioritized,
                "recommendations": {cid: self.rec_arn(cid) for cid in prioritized}}


def _enum(filters: dict[str, str], name: str, allowed: tuple[str, ...]) -> None:
    if name in filters and filters[name] not in allowed:
        raise ValidationException(f"1 validation error detected: Value '{filters[name]}' at '{name}' failed to "
                                  f"satisfy constraint: Member must satisfy enum value set: [{', '.join(allowed)}]")


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _when(filters: dict[str, str], name: str) -> dt.datetime | None:
    if name not in filters:
        return None
    try:
        when = _parse(filters[name])
    except ValueError:
        raise ValidationException(f"1 validation error detected: Value '{filters[name]}' at '{name}' is not a "
                                  "valid timestamp") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)

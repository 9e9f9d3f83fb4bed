"""Macie findings of one account and region: from the delegated administrator, else in the account itself.

Calls: ``macie2:GetMacieSession`` (Macie answers AccessDeniedException "Macie is not enabled" where it is off),
``ListFindings`` (archived findings left out), ``GetFindings`` (50 ids a call) and, through the delegated
administrator, ``ListMembers`` once per region (is each account an enabled member there?; ``GetMember`` when one
account is read alone). Off, or not an enabled member, is
``not_enabled``: a coverage gap, not an absence of sensitive data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from include.awsgov.collection.delegated import NOT_ENABLED, member_outcomes, not_member
from include.awsgov.collection.guardduty import utc_time
from include.awsgov.core import tables
from include.awsgov.core.aws import error_code, paginate
from include.awsgov.core.detectors import MACIE_SOURCE, session_status

SOURCE = MACIE_SOURCE
SERVICE = "macie2"
TABLE = "macie_findings"
VIA_ADMIN, VIA_ACCOUNT = "admin", "account"
GET_BATCH = 50


def member_status(client: Any, account_id: str) -> str | None:
    """The account's relationshipStatus with the administrator (``GetMember``), None when not a member.

    :param client: the administrator's Macie client.
    :param account_id: the member account.
    """
    try:
        return client.get_member(id=account_id).get("relationshipStatus")
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def finding_ids(client: Any, account_id: str | None = None) -> list[str]:
    """Ids of the findings that are not archived (``ListFindings``), of one account when given (administrator).

    :param client: a Macie client.
    :param account_id: only this account's findings.
    """
    criterion: dict[str, Any] = {"archived": {"eq": ["false"]}}
    if account_id:
        criterion["accountId"] = {"eq": [account_id]}
    return list(paginate(client, "list_findings", "findingIds", findingCriteria={"criterion": criterion}))


def get_findings(client: Any, ids: Iterable[str]) -> list[dict[str, Any]]:
    """The findings (``GetFindings``, 50 ids a call).

    :param client: a Macie client.
    :param ids: finding ids.
    """
    ids = list(ids)
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), GET_BATCH):
        out += client.get_findings(findingIds=ids[start:start + GET_BATCH]).get("findings", [])
    return out


def finding_row(finding: Mapping[str, Any], via: str) -> dict[str, Any]:
    """A ``tables.MACIE_FINDINGS`` row from a GetFindings item.

    :param finding: the finding.
    :param via: admin | account.
    """
    account_id, region, ftype = finding["accountId"], finding["region"], finding["type"]
    affected = finding.get("resourcesAffected") or {}
    sensitive = ((finding.get("classificationDetails") or {}).get("result") or {}).get("sensitiveData") or []
    return {
        "finding_id": tables.finding_id(SOURCE, account_id, region, ftype, finding["id"]),
        "account_id": account_id,
        "region": region,
        "macie_id": finding["id"],
        "type": ftype,
        "category": finding.get("category") or "",
        "sensitive_data": sorted({str(s.get("category")) for s in sensitive if s.get("category")}),
        "detections": int(sum(int(s.get("totalCount") or 0) for s in sensitive)),
        "severity": str((finding.get("severity") or {}).get("description") or "").lower(),
        "bucket": str((affected.get("s3Bucket") or {}).get("name") or ""),
        "object_key": str((affected.get("s3Object") or {}).get("key") or ""),
        "first_seen": utc_time(finding.get("createdAt")),
        "last_seen": utc_time(finding.get("updatedAt")),
        "count": int(finding.get("count") or 1),
        "via": via,
    }


def collect_region(client: Any, account_id: str, region: str, admin_id: str | None) -> tuple[str, str, list[dict]]:
    """Macie findings of one account and region.

    :param client: the account's client, or the delegated administrator's.
    :param account_id: the account whose findings are wanted.
    :param region: the region.
    :param admin_id: the delegated administrator's account id when ``client`` is its; None when it is the account's.
    :returns: (coverage status ``ok`` or ``not_enabled``, why not, rows).
    """
    status = session_status(client)
    if status != "ENABLED":
        where = f"the delegated administrator {admin_id}" if admin_id else "this account"
        return NOT_ENABLED, f"Macie is not enabled in {region} in {where} (status: {status or 'none'})", []
    if admin_id and admin_id != account_id:
        relation = member_status(client, account_id)
        if relation != "Enabled":
            return not_member("Macie", admin_id, region, relation)
    via = VIA_ADMIN if admin_id else VIA_ACCOUNT
    found = get_findings(client, finding_ids(client, account_id if admin_id else None))
    return "ok", "", [finding_row(f, via) for f in found if f.get("accountId") == account_id]


def members(client: Any) -> dict[str, str]:
    """Every member of the administrator with its relationshipStatus (``ListMembers``, paged 25 a page, the model's
    maximum, associated or not).

    :param client: the administrator's Macie client.
    """
    return {str(m["accountId"]): str(m.get("relationshipStatus") or "")
            for m in paginate(client, "list_members", "members", onlyAssociated="false",
                              PaginationConfig={"PageSize": 25})}


def collect_org_region(client: Any, region: str, admin_id: str,
                       account_ids: Iterable[str]) -> dict[str, tuple[str, str, list[dict]]]:
    """Macie findings of every account in one region through the delegated administrator: members listed once,
    findings listed once for the organization.

    :param client: the delegated administrator's Macie client in ``region``.
    :param region: the region.
    :param admin_id: the delegated administrator's account id.
    :param account_ids: accounts collected this run.
    :returns: {account: (coverage status ``ok`` or ``not_enabled``, why not, rows)}.
    """
    accounts = sorted(set(account_ids))
    status = session_status(client)
    if status != "ENABLED":
        why = f"Macie is not enabled in {region} in the delegated administrator {admin_id} (status: {status or 'none'})"
        return {a: (NOT_ENABLED, why, []) for a in accounts}
    # ListMembers with onlyAssociated=false names every account associated with the administrator, whatever its
    # state: an account it does not name is not a member (no GetMember per account).
    relation = members(client)
    rows = [finding_row(f, VIA_ADMIN) for f in get_findings(client, finding_ids(client))]
    return member_outcomes("Macie", region, admin_id, accounts, relation, rows)

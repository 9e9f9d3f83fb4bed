"""GuardDuty findings of one account and region: from the delegated administrator, else in the account itself.

Calls: ``guardduty:ListDetectors``, ``ListFindings`` (archived findings left out), ``GetFindings`` (50 ids a call,
the API limit) and, through the delegated administrator, ``GetMembers`` (is the account an enabled member there?).
A region without a detector, or an account that is not an enabled member of the administrator, is ``not_enabled``:
a coverage gap, not an absence of threats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from include.awsgov.collection.delegated import NOT_ENABLED, member_outcomes, not_member
from include.awsgov.core import tables
from include.awsgov.core.aws import paginate
from include.awsgov.core.detectors import GUARDDUTY_SOURCE, detector_id

SOURCE = SERVICE = GUARDDUTY_SOURCE
TABLE = "guardduty_findings"
VIA_ADMIN, VIA_ACCOUNT = "admin", "account"
GET_BATCH = 50  # GetFindings takes at most 50 ids
# GuardDuty's severity bands (https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings-severity.html).
SEVERITY_BANDS = ((9.0, "critical"), (7.0, "high"), (4.0, "medium"), (0.0, "low"))


def severity_label(score: float) -> str:
    """critical, high, medium or low for a GuardDuty severity score.

    :param score: 1.0-10.0.
    """
    return next(label for floor, label in SEVERITY_BANDS if float(score) >= floor)


def member_status(client: Any, detector: str, account_id: str) -> str | None:
    """The account's RelationshipStatus with the administrator (``GetMembers``), None when not a member.

    :param client: the administrator's GuardDuty client.
    :param detector: the administrator's detector id.
    :param account_id: the member account.
    """
    members = client.get_members(DetectorId=detector, AccountIds=[account_id]).get("Members") or []
    return next((m.get("RelationshipStatus") for m in members if m.get("AccountId") == account_id), None)


def finding_ids(client: Any, detector: str, account_id: str | None = None) -> list[str]:
    """Ids of the findings that are not archived (``ListFindings``), of one account when given (administrator).

    :param client: a GuardDuty client.
    :param detector: the detector id.
    :param account_id: only this account's findings (reading through the administrator).
    """
    criterion: dict[str, Any] = {"service.archived": {"Eq": ["false"]}}
    if account_id:
        criterion["accountId"] = {"Eq": [account_id]}
    return list(paginate(client, "list_findings", "FindingIds", DetectorId=detector,
                         FindingCriteria={"Criterion": criterion}))


def get_findings(client: Any, detector: str, ids: Iterable[str]) -> list[dict[str, Any]]:
    """The findings (``GetFindings``, 50 ids a call).

    :param client: a GuardDuty client.
    :param detector: the detector id.
    :param ids: finding ids.
    """
    ids = list(ids)
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), GET_BATCH):
        out += client.get_findings(DetectorId=detector, FindingIds=ids[start:start + GET_BATCH]).get("Findings", [])
    return out


def utc_time(value: Any) -> dt.datetime | None:
    """A finding timestamp (datetime or ISO text, Z allowed) in UTC; None when empty (shared with macie.py)."""
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(dt.UTC)


def resource_of(resource: Mapping[str, Any]) -> tuple[str, str, str]:
    """(type, id, name) of a finding's resource: instance id and Name tag, access key and user, bucket name...

    :param resource: the finding's ``Resource``.
    """
    kind = str(resource.get("ResourceType") or "")
    if "InstanceDetails" in resource:
        inst = resource["InstanceDetails"]
        name = next((t.get("Value", "") for t in inst.get("Tags") or [] if t.get("Key") == "Name"), "")
        return kind, str(inst.get("InstanceId") or ""), str(name)
    if "AccessKeyDetails" in resource:
        key = resource["AccessKeyDetails"]
        return kind, str(key.get("AccessKeyId") or ""), str(key.get("UserName") or "")
    buckets = resource.get("S3BucketDetails") or []
    if buckets:
        return kind, str(buckets[0].get("Name") or ""), str(buckets[0].get("Name") or "")
    for field, id_key in (("EksClusterDetails", "Name"), ("LambdaDetails", "FunctionName"),
                          ("RdsDbInstanceDetails", "DbInstanceIdentifier"), ("EcsClusterDetails", "Name")):
        if field in resource:
            value = str(resource[field].get(id_key) or "")
            return kind, value, value
    return kind, "", ""


def finding_row(finding: Mapping[str, Any], via: str) -> dict[str, Any]:
    """A ``tables.GUARDDUTY_FINDINGS`` row from a GetFindings item.

    :param finding: the finding.
    :param via: admin | account.
    """
    account_id, region, ftype = finding["AccountId"], finding["Region"], finding["Type"]
    service = finding.get("Service") or {}
    rtype, rid, name = resource_of(finding.get("Resource") or {})
    return {
        "finding_id": tables.finding_id(SOURCE, account_id, region, ftype, finding["Id"]),
        "account_id": account_id,
        "region": region,
        "guardduty_id": finding["Id"],
        "type": ftype,
        "title": finding.get("Title") or "",
        "severity": float(finding.get("Severity") or 0.0),
        "severity_label": severity_label(finding.get("Severity") or 0.0),
        "resource_type": rtype,
        "resource_id": rid,
        "resource_name": name,
        "first_seen": utc_time(service.get("EventFirstSeen") or finding.get("CreatedAt")),
        "last_seen": utc_time(service.get("EventLastSeen") or finding.get("UpdatedAt")),
        "count": int(service.get("Count") or 1),
        "via": via,
    }


def collect_region(client: Any, account_id: str, region: str, admin_id: str | None) -> tuple[str, str, list[dict]]:
    """GuardDuty findings of one account and region.

    :param client: the account's client, or the delegated administrator's.
    :param account_id: the account whose findings are wanted.
    :param region: the region.
    :param admin_id: the delegated administrator's account id when ``client`` is its; None when it is the account's.
    :returns: (coverage status ``ok`` or ``not_enabled``, why not, rows).
    """
    detector = detector_id(client)
    if detector is None:
        where = f"the delegated administrator {admin_id}" if admin_id else "this account"
        return NOT_ENABLED, f"GuardDuty is not enabled in {region} in {where}", []
    if admin_id and admin_id != account_id:
        status = member_status(client, detector, account_id)
        if status != "Enabled":
            return not_member("GuardDuty", admin_id, region, status)
    via = VIA_ADMIN if admin_id else VIA_ACCOUNT
    found = get_findings(client, detector, finding_ids(client, detector, account_id if admin_id else None))
    return "ok", "", [finding_row(f, via) for f in found if f.get("AccountId") == account_id]


def members(client: Any, detector: str) -> dict[str, str]:
    """Every member of the administrator with its RelationshipStatus (``ListMembers``, paged, 50 a page; associated
    or not, so that an invited or removed account is seen as such).

    :param client: the administrator's GuardDuty client.
    :param detector: the administrator's detector id.
    """
    return {str(m["AccountId"]): str(m.get("RelationshipStatus") or "")
            for m in paginate(client, "list_members", "Members", DetectorId=detector, OnlyAssociated="false",
                              PaginationConfig={"PageSize": 50})}


def collect_org_region(client: Any, region: str, admin_id: str,
                       account_ids: Iterable[str]) -> dict[str, tuple[str, str, list[dict]]]:
    """GuardDuty findings of every account in one region through the delegated administrator: the members listed
    once, the findings listed once for the organization (not per account).

    :param client: the delegated administrator's GuardDuty client in ``region``.
    :param region: the region.
    :param admin_id: the delegated administrator's account id.
    :param account_ids: accounts collected this run.
    :returns: {account: (coverage status ``ok`` or ``not_enabled``, why not, rows)}.
    """
    accounts = sorted(set(account_ids))
    detector = detector_id(client)
    if detector is None:
        why = f"GuardDuty is not enabled in {region} in the delegated administrator {admin_id}"
        return {a: (NOT_ENABLED, why, []) for a in accounts}
    rows = [finding_row(f, VIA_ADMIN) for f in get_findings(client, detector, finding_ids(client, detector))]
    return member_outcomes("GuardDuty", region, admin_id, accounts, members(client, detector), rows)

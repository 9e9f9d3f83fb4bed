"""Macie findings per account, region and day: deterministic functions of (seed, account, region, date).

Whether Macie is enabled is moto's session state: seeded enabled in the management account and onboarded members
except a few regions (disabled there, so "not enabled" gaps exist), disabled in accounts not yet onboarded;
``enable_macie`` by the product turns it on and findings follow. The management account is the delegated
administrator and sees the findings of members where Macie is enabled. Generation, visibility and paging are the
GuardDuty extension's :class:`~sandbox.guardduty.models.FindingsModel`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from .. import det
from ..guardduty.models import NOT_ASSOCIATED, FindingsModel, iso, stretch
from ..paging import page
from .exceptions import AccessDeniedException, ResourceNotFoundException

RESOURCES = Path(__file__).resolve().parent / "resources"
SEVERITY_SCORES = {"Low": 1, "Medium": 2, "High": 3}



class MacieModel(FindingsModel):
    """Macie findings; sessions in moto."""

    service = "macie2"
    resource_file = RESOURCES / "findings.json"
    criteria = frozenset({"accountId", "region", "type", "id", "category", "archived", "severity.description",
                          "resourcesAffected.s3Bucket.name"})
    disabled_status = "RegionDisabled"

    def seed(self) -> None:
        """Disable Macie where the seed says it is off and in accounts not onboarded (moto enables it by default)."""
        from moto.macie2.models import macie2_backends

        on = set(self.seeded_accounts())
        for account_id in [self.admin, *(a.id for a in self.world.plan.accounts)]:
            for region in self.world.settings.regions:
                if account_id not in on or self.seeded_off(account_id, region):
                    macie2_backends[account_id][region].disable_macie()
        mgmt = self.world.settings.management_account_id
        macie2_backends[mgmt][self.world.settings.regions[0]].enable_organization_admin_account(self.admin)

    def enabled(self, account_id: str, region: str) -> bool:
        from moto.macie2.models import macie2_backends

        session = macie2_backends[account_id][region].macie_session
        return bool(session) and session.get("status") == "ENABLED"

    def has_session(self, account_id: str, region: str) -> bool:
        """Whether the account has a Macie session in the region (enabled or paused)."""
        from moto.macie2.models import macie2_backends

        return bool(macie2_backends[account_id][region].macie_session)

    def require_enabled(self, account_id: str, region: str) -> None:
        if not self.enabled(account_id, region):
            raise AccessDeniedException()

    def member(self, caller: str, region: str, account_id: str) -> dict[str, Any]:
        """GetMember: the member's relationship with the administrator."""
        status = self.relationship(account_id, region) if caller == self.admin else None
        if status is None:
            raise ResourceNotFoundException("The request failed because the specified resource wasn't found.")
        return {"accountId": account_id, "administratorAccountId": caller, "masterAccountId": caller,
                "arn": f"arn:aws:macie2:{region}:{caller}:member/{account_id}", "email": f"{account_id}@example.com",
                "relationshipStatus": status, "invitedAt": "2026-01-05T09:00:00.000Z",
                "updatedAt": "2026-01-05T09:00:00.000Z"}

    def member_list(self, caller: str, region: str, only_associated: bool, limit: int,
                    next_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """ListMembers: one page of the administrator's members with their relationshipStatus (an account that
        administers nothing lists none).

        AWS (Macie API Reference, *Members*, ListMembers): "Retrieves information about the accounts that are
        associated with an Amazon Macie administrator account", ``maxResults`` 1-25 (botocore macie2 model),
        ``onlyAssociated``: "By default, the response includes only current member accounts. To include all
        accounts, set this value to false." Which states count as not current is not listed there; as GuardDuty's
        ListMembers words it ("members who haven't been invited yet or have been disassociated"), the sandbox leaves
        out Created, Removed and Resigned unless ``onlyAssociated`` is false.
        """
        ids = self.members() if caller == self.admin else []
        found = [self.member(caller, region, a) for a in ids]
        if only_associated:
            found = [m for m in found if m["relationshipStatus"] not in NOT_ASSOCIATED]
        return page(found, next_token, limit, ["macie-members", caller, region, only_associated])

    def _generate(self, account_id: str, region: str, date: dt.date) -> list[dict[str, Any]]:
        seed = self.world.settings.seed
        data = self.data
        day = (date - dt.date(1970, 1, 1)).days
        n = det.integer(*data["findings_per_region"], seed, "macie-n", account_id, region)
        out = []
        for j in range(n):
            is_open, since = stretch(seed, day, data["open_rate"], "macie", account_id, region, j)
            if not is_open:
                continue
            key = (seed, "macie", account_id, region, j, since)
            spec = det.pick(data["types"], *key, "type")
            purpose = det.pick(data["purposes"], *key, "p")
            bucket = self.hostile(key, f"{purpose}-{account_id}-{det.hexid(6, *key, 'b')}")
            created = dt.datetime.combine(dt.date(1970, 1, 1) + dt.timedelta(days=since), dt.time(2), tzinfo=dt.UTC)
            created += dt.timedelta(seconds=det.integer(0, 20000, *key, "first"))
            updated = dt.datetime.combine(date, dt.time(2), tzinfo=dt.UTC)
            updated += dt.timedelta(seconds=det.integer(0, 3600, *key, "last"))
            finding = {
                "accountId": account_id,
                "archived": det.unit(*key, "archived") < data["archived_rate"],
                "category": spec["category"],
                "count": day - since + 1,
                "createdAt": iso(created),
                "id": det.hexid(32, *key, "id"),
                "partition": "aws",
                "region": region,
                "resourcesAffected": {"s3Bucket": {"arn": f"arn:aws:s3:::{bucket}", "name": bucket,
                                                   "ownerAccountId": account_id}},
                "schemaVersion": "1.0",
                "severity": {"description": spec["severity"], "score": SEVERITY_SCORES[spec["severity"]]},
                "title": f"{spec['type'].split('/')[-1]} finding in S3 bucket {bucket}",
                "description": f"Macie found {spec['type']} in S3 bucket {bucket}.",
                "type": spec["type"],
                "updatedAt": iso(updated),
            }
            if spec["category"] == "CLASSIFICATION":
                key_name = det.pick(data["objects"], *key, "o")
                sensitive = []
                for category, kinds in sorted(spec["data"].items()):
                    detections = [{"type": kind, "count": det.integer(1, 500, *key, kind)} for kind in kinds]
                    sensitive.append({"category": category, "detections": detections,
                                      "totalCount": sum(d["count"] for d in detections)})
                finding["resourcesAffected"]["s3Object"] = {"bucketArn": f"arn:aws:s3:::{bucket}", "key": key_name,
                                                           "path": f"{bucket}/{key_name}"}
                finding["classificationDetails"] = {
                    "originType": "AUTOMATED_SENSITIVE_DATA_DISCOVERY",
                    "result": {"mimeType": "text/plain", "sensitiveData": sensitive, "status": {"code": "COMPLETE"}}}
            out.append(finding)
        return out

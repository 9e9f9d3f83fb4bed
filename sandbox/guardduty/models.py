"""GuardDuty findings per account, region and day: deterministic functions of (seed, account, region, date).

Detectors live in moto (seeded in every onboarded account and region except a few, so "not enabled" gaps exist;
``create_detector`` by the product adds one and findings follow). A finding lives on stretches of a few days; while
open its count grows and its last-seen time follows the day; some are archived. The management account is the
delegated administrator: there, ``ListFindings`` also sees the findings of member accounts whose detector is enabled
in the region, as GuardDuty does for an administrator. :class:`FindingsModel` is shared with the Macie extension.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

from .. import det
from ..paging import page
from .exceptions import BadRequestException

RESOURCES = Path(__file__).resolve().parent / "resources"
# Comparison operators of a finding criterion, both services' spellings.
OPERATORS = {
    "eq": "eq", "equals": "eq", "eqExactMatch": "eq", "neq": "neq", "notEquals": "neq",
    "gt": "gt", "greaterThan": "gt", "gte": "gte", "greaterThanOrEqual": "gte",
    "lt": "lt", "lessThan": "lt", "lte": "lte", "lessThanOrEqual": "lte",
}


# Member relationship states a ListMembers leaves out unless OnlyAssociated / onlyAssociated is "false": not invited
# yet (Created) or disassociated (Removed, Resigned); GuardDuty's and Macie's API references word it so.
NOT_ASSOCIATED = frozenset({"Created", "Removed", "Resigned"})

def stretch(seed: int, day: int, rate: float, *key: object) -> tuple[bool, int]:
    """Whether a finding is open on ``day`` (days since epoch) and the first day of its current stretch (2-6 days,
    each open with probability ``rate``)."""
    length = det.integer(2, 6, seed, "stretch", *key)
    offset = det.integer(0, length - 1, seed, "offset", *key)
    number = (day + offset) // length
    return det.unit(seed, "open", *key, number) < rate, number * length - offset


def field_value(finding: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a finding (``service.archived``), booleans as AWS compares them."""
    value: Any = finding
    for part in path.split("."):
        if isinstance(value, list):
            value = value[0] if value else None
        value = value.get(part) if isinstance(value, dict) else None
    return str(value).lower() if isinstance(value, bool) else value


def matches(finding: dict[str, Any], criterion: dict[str, Any], known: frozenset[str]) -> bool:
    """Whether a finding meets every condition of a FindingCriteria ``criterion``.

    :param known: the criterion keys this sandbox filters on; others are refused so product bugs show.
    """
    for key, condition in (criterion or {}).items():
        if key not in known:
            raise BadRequestException(f"The sandbox does not filter on '{key}' (known: {', '.join(sorted(known))}).")
        value = field_value(finding, key)
        for op, operand in (condition or {}).items():
            kind = OPERATORS.get(op)
            if kind is None:
                raise BadRequestException(f"Unknown condition operator '{op}'.")
            if kind in ("eq", "neq"):
                hit = str(value) in {str(v) for v in operand}
                if hit != (kind == "eq"):
                    return False
                continue
            try:
                number, limit = float(value), float(operand)
            except (TypeError, ValueError):
                return False
            if not {"gt": number > limit, "gte": number >= limit, "lt": number < limit, "lte": number <= limit}[kind]:
                return False
    return True


def iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class FindingsModel:
    """Findings of one service for every account: generation, visibility (administrator and members), paging.

    Subclasses set ``service``, ``resources`` and implement :meth:`enabled` and :meth:`_generate`.

    :param world: the running world.
    """

    service = ""
    resource_file = RESOURCES / "findings.json"
    criteria: frozenset[str] = frozenset()

    def __init__(self, world: Any) -> None:
        self.world = world
        self.data = json.loads(self.resource_file.read_text(encoding="utf-8"))
        self._cache: dict[tuple[str, str, dt.date], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    # --- who -------------------------------------------------------------------------------------------------
    @cached_property
    def admin(self) -> str:
        """The delegated administrator: the management account, or (realistic profile) the first onboarded active
        member, a security-tooling account as organizations usually delegate to."""
        if self.world.settings.realistic:
            for account in self.world.plan.accounts:
                if account.read_role and account.status == "ACTIVE":
                    return account.id
        return self.world.settings.management_account_id

    def members(self) -> list[str]:
        """Member accounts of the administrator: accounts onboarded (read role) and active at seed time."""
        return list(self._members)

    @cached_property
    def _members(self) -> dict[str, None]:
        # Fixed at seed time; a dict for order and O(1) membership (relationship() runs per member per request).
        # With a delegated member administrator, the management account is a member too.
        mgmt = self.world.settings.management_account_id
        first = [mgmt] if self.admin != mgmt else []
        return dict.fromkeys([*first, *(a.id for a in self.world.plan.accounts
                                        if a.read_role and a.status == "ACTIVE" and a.id != self.admin)])

    @cached_property
    def _states(self) -> dict[str, str]:
        """Realistic profile: the first members' relationship states, one of each the service reports."""
        if not self.world.settings.realistic:
            return {}
        from ..config.models import realistic

        states = realistic()["threat_detection"][f"{self.service}_states"]
        return dict(zip(self._members, states, strict=False))

    def seeded_accounts(self) -> list[str]:
        """Accounts where the service is seeded enabled (before the seeded gaps)."""
        return [self.admin, *self.members()]

    def seeded_off(self, account_id: str, region: str) -> bool:
        """A seeded gap: the service is not enabled in this member account and region. The second member always
        lacks it in the last region, so every sandbox has one."""
        if account_id == self.admin:
            return False
        members = list(self._members)
        if len(members) > 1 and account_id == members[1] and region == self.world.settings.regions[-1]:
            return True
        return det.unit(self.world.settings.seed, self.service, "off", account_id, region) < self.data["disabled_rate"]

    def enabled(self, account_id: str, region: str) -> bool:
        raise NotImplementedError

    def relationship(self, account_id: str, region: str) -> str | None:
        """RelationshipStatus of a member in a region, None for accounts that are not members."""
        if account_id not in self._members:
            return None
        if not self.enabled(account_id, region):
            return self.disabled_status
        return self._states.get(account_id, "Enabled")

    disabled_status = "Disabled"

    def visible_accounts(self, caller: str, region: str) -> list[str]:
        """Accounts whose findings ``caller`` sees in ``region``: its own, plus enabled members for the admin."""
        if caller != self.admin:
            return [caller]
        return [caller, *(m for m in self._members if self.relationship(m, region) == "Enabled")]

    # --- findings ----------------------------------------------------------------------------------------------
    def findings(self, account_id: str, region: str, date: dt.date) -> list[dict[str, Any]]:
        """Every finding (archived ones included) of an account and region on ``date``; [] where not enabled."""
        if self.world.account_status(account_id) not in ("ACTIVE", None) or not self.enabled(account_id, region):
            return []
        key = (account_id, region, date)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            cached = self._generate(account_id, region, date)
            with self._lock:
                if len(self._cache) > 50_000:
                    self._cache.clear()
                self._cache[key] = cached
        return cached

    def _generate(self, account_id: str, region: str, date: dt.date) -> list[dict[str, Any]]:
        raise NotImplementedError

    def visible(self, caller: str, region: str, date: dt.date) -> list[dict[str, Any]]:
        """Findings ``caller`` can list in ``region``, ordered by id."""
        out = [f for a in self.visible_accounts(caller, region) for f in self.findings(a, region, date)]
        return sorted(out, key=lambda f: f["id"])

    def list_ids(self, caller: str, region: str, date: dt.date, criterion: dict[str, Any] | None,
                 limit: int, token: str | None) -> tuple[list[str], str | None]:
        """One page of ids of the visible findings that meet ``criterion``."""
        ids = [f["id"] for f in self.visible(caller, region, date) if matches(f, criterion or {}, self.criteria)]
        return page(ids, token, limit, {"criterion": criterion, "region": region})

    def get(self, caller: str, region: str, date: dt.date, ids: list[str]) -> list[dict[str, Any]]:
        """The visible findings with these ids (unknown ids are left out, as AWS does)."""
        wanted = set(ids)
        return [f for f in self.visible(caller, region, date) if f["id"] in wanted]

    def hostile(self, key: tuple, fallback: str) -> str:
        """A hostile value (markup, quotes, newlines, non-ASCII) in a share of resource names."""
        if det.unit(*key, "hostile") < self.data["hostile_rate"]:
            return det.pick(self.data["hostile_values"], *key, "hv")
        return fallback

    # --- truth -------------------------------------------------------------------------------------------------
    def truth(self, date: dt.date, accounts: list[str] | None = None) -> dict[str, Any]:
        """{account: {region: {"enabled", "relationship", "findings"}}} for the management account and members."""
        every = [self.admin, *(a.id for a in self.world.plan.accounts)]
        wanted = every if accounts is None else [a for a in every if a in accounts]
        return {
            "admin": self.admin,
            "accounts": {a: {r: {"enabled": self.enabled(a, r), "relationship": self.relationship(a, r),
                                 "findings": self.findings(a, r, date)}
                             for r in self.world.settings.regions} for a in wanted},
        }


class GuardDutyModel(FindingsModel):
    """GuardDuty findings; detectors in moto."""

    service = "guardduty"
    criteria = frozenset({"accountId", "region", "type", "id", "severity", "service.archived"})

    def seed(self) -> None:
        """Enabled detectors in the management account and onboarded members, except the seeded gaps."""
        from moto.guardduty.models import guardduty_backends

        for account_id in self.seeded_accounts():
            for region in self.world.settings.regions:
                if not self.seeded_off(account_id, region):
                    guardduty_backends[account_id][region].create_detector(True, "SIX_HOURS", {}, {}, [])
        # The management account designates the delegated administrator (itself unless realistic).
        mgmt = self.world.settings.management_account_id
        guardduty_backends[mgmt][self.world.settings.regions[0]].enable_organization_admin_account(self.admin)

    def detector_id(self, account_id: str, region: str) -> str | None:
        """Id of the account's enabled detector in the region (moto state), else None."""
        from moto.guardduty.models import guardduty_backends

        if account_id not in guardduty_backends or region not in guardduty_backends[account_id].keys():
            return None
        for detector in guardduty_backends[account_id][region].detectors.values():
            if detector.enabled:
                return detector.id
        return None

    def enabled(self, account_id: str, region: str) -> bool:
        return self.detector_id(account_id, region) is not None

    def has_detector(self, account_id: str, region: str) -> bool:
        """Whether the account has a detector in the region, enabled or not (AWS allows only one)."""
        from moto.guardduty.models import guardduty_backends

        return (account_id in guardduty_backends and region in guardduty_backends[account_id].keys()
                and bool(guardduty_backends[account_id][region].detectors))

    def check_detector(self, caller: str, region: str, detector_id: str) -> None:
        if detector_id != self.detector_id(caller, region):
            raise BadRequestException("The request is rejected because the input detectorId is not owned by the "
                                      "current account.")

    def members_of(self, caller: str, region: str, account_ids: list[str] | None) -> tuple[list, list]:
        """(Members, UnprocessedAccounts) as GetMembers/ListMembers answer them for the administrator."""
        found, unprocessed = [], []
        for account_id in (self.members() if account_ids is None else account_ids):
            status = self.relationship(account_id, region) if caller == self.admin else None
            if status is None:
                unprocessed.append({"accountId": account_id, "result": "The request is rejected because the input "
                                    "account ID is not associated with the administrator account."})
                continue
            found.append({"accountId": account_id, "detectorId": self.detector_id(account_id, region) or "",
                          "masterId": caller, "administratorId": caller, "email": f"{account_id}@example.com",
                          "relationshipStatus": status, "updatedAt": "2026-01-05T09:00:00.000Z"})
        return found, unprocessed

    def _generate(self, account_id: str, region: str, date: dt.date) -> list[dict[str, Any]]:
        seed = self.world.settings.seed
        data = self.data
        day = (date - dt.date(1970, 1, 1)).days
        n = det.integer(*data["findings_per_region"], seed, "gd-n", account_id, region)
        out = []
        for j in range(n):
            is_open, since = stretch(seed, day, data["open_rate"], "gd", account_id, region, j)
            if not is_open:
                continue
            key = (seed, "gd", account_id, region, j, since)
            spec = det.pick(data["types"], *key, "type")
            lo, hi = spec["severity"]
            severity = round(det.between(lo, hi, *key, "sev"), 1)
            resource, name = self._resource(spec["resource"], account_id, region, key)
            first = dt.datetime.combine(dt.date(1970, 1, 1) + dt.timedelta(days=since), dt.time(0), tzinfo=dt.UTC)
            first += dt.timedelta(seconds=det.integer(0, 20000, *key, "first"))
            last = dt.datetime.combine(date, dt.time(1), tzinfo=dt.UTC)
            last += dt.timedelta(seconds=det.integer(0, 3600, *key, "last"))
            finding_id = det.hexid(32, *key, "id")
            detector = self.detector_id(account_id, region) or ""
            out.append({
                "accountId": account_id,
                "arn": f"arn:aws:guardduty:{region}:{account_id}:detector/{detector}/finding/{finding_id}",
                "createdAt": iso(first),
                "updatedAt": iso(last),
                "description": spec["title"].format(name=name),
                "id": finding_id,
                "partition": "aws",
                "region": region,
                "resource": resource,
                "schemaVersion": "2.0",
                "service": {"archived": det.unit(*key, "archived") < data["archived_rate"],
                            "count": (day - since + 1) * det.integer(1, 25, *key, "count"),
                            "detectorId": detector, "eventFirstSeen": iso(first), "eventLastSeen": iso(last),
                            "resourceRole": "TARGET", "serviceName": "guardduty"},
                "severity": severity,
                "title": spec["title"].format(name=name),
                "type": spec["type"],
            })
        return out

    def _resource(self, kind: str, account_id: str, region: str, key: tuple) -> tuple[dict[str, Any], str]:
        base = f"{det.pick(self.data['names'], *key, 'name')}-{det.hexid(4, *key, 'n')}"
        name = self.hostile(key, base)
        if kind == "instance":
            return {"resourceType": "Instance", "instanceDetails": {
                "instanceId": f"i-{det.hexid(17, *key, 'i')}",
                "instanceType": det.pick(self.data["instance_types"], *key, "it"),
                "availabilityZone": f"{region}a", "tags": [{"key": "Name", "value": name}]}}, name
        if kind == "access_key":
            return {"resourceType": "AccessKey", "accessKeyDetails": {
                "accessKeyId": f"ASIA{det.hexid(16, *key, 'ak').upper()}", "principalId": f"AROA{det.hexid(17, *key)}",
                "userName": name, "userType": "AssumedRole"}}, name
        bucket = self.hostile(key, f"{base}-{account_id}")
        return {"resourceType": "S3Bucket", "s3BucketDetails": [{
            "arn": f"arn:aws:s3:::{bucket}", "name": bucket, "type": "Destination"}]}, bucket

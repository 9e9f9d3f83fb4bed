"""Systems Manager inventory per account and region: managed instances with a platform and installed applications.

Instances and applications are a pure function of (seed, account, region): the same in every process, so the truth
API and the responses agree. Only onboarded, active member accounts have managed instances; capture times follow
the sandbox date. The Config aggregator's advanced query serves the same data as ``AWS::SSM::ManagedInstanceInventory``
configuration items (see :meth:`InventoryModel.config_items`).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from .. import det
from ..paging import checked_limit, page
from .exceptions import (
    InvalidInstanceId,
    InvalidResultAttributeException,
    InvalidTypeNameException,
    ValidationException,
)

RESOURCES = Path(__file__).resolve().parent / "resources"
INSTANCE_INFORMATION, APPLICATION = "AWS:InstanceInformation", "AWS:Application"
TYPES = (INSTANCE_INFORMATION, APPLICATION)
SCHEMA_VERSIONS = {INSTANCE_INFORMATION: "1.0", APPLICATION: "1.1"}


class InventoryModel:
    """Managed instances and their inventory.

    :param world: the running world.
    """

    def __init__(self, world: Any) -> None:
        self.world = world
        self.data = json.loads((RESOURCES / "inventory.json").read_text(encoding="utf-8"))
        self._cache: dict[tuple[str, str], list[dict[str, Any]]] = {}

    # --- the seeded fleet -------------------------------------------------------------------------------------------
    def has_fleet(self, account_id: str) -> bool:
        """Only onboarded member accounts that are active run managed instances."""
        plan = self.world.plan.by_id().get(account_id)
        return plan is not None and plan.read_role and self.world.account_status(account_id) == "ACTIVE"

    def instances(self, account_id: str, region: str) -> list[dict[str, Any]]:
        """[{instance_id, computer_name, platform_name, platform_type, platform_version, applications: [...]}]."""
        if not self.has_fleet(account_id) or region not in self.world.settings.regions:
            return []
        key = (account_id, region)
        if key not in self._cache:
            self._cache[key] = self._compute(account_id, region)
        return self._cache[key]

    def _compute(self, account_id: str, region: str) -> list[dict[str, Any]]:
        seed = self.world.settings.seed
        n = det.integer(0, int(self.data["max_instances"]), seed, "ssm-n", account_id, region)
        out = []
        for j in range(n):
            key = (seed, "ssm", account_id, region, j)
            platform = det.pick(self.data["platforms"], *key, "platform")
            apps = [{"name": p["name"], "publisher": p["publisher"],
                     "version": det.pick(p["versions"], *key, p["name"])} for p in platform["base"]]
            for p in self.data["optional"]:
                if p["platform_type"] not in (None, platform["type"]):
                    continue
                if det.unit(*key, "opt", p["name"]) < p["rate"]:
                    version = det.pick(p["versions"], *key, "v", p["name"])
                    apps.append({"name": p["name"], "publisher": p["publisher"], "version": version})
                    # A second version of the same package side by side (kernels, redistributables).
                    others = [v for v in p["versions"] if v != version]
                    if others and det.unit(*key, "second", p["name"]) < p.get("second_rate", 0):
                        apps.append({"name": p["name"], "publisher": p["publisher"],
                                     "version": det.pick(others, *key, "v2", p["name"])})
            for h in self.data["hostile"]:
                if det.unit(*key, "hostile", h["name"]) < self.data["hostile_rate"]:
                    apps.append(dict(h))
            apps.sort(key=lambda a: (a["name"], a["version"]))
            instance_id = f"i-{det.hexid(17, *key, 'id')}"
            out.append({
                "instance_id": instance_id,
                "computer_name": f"ip-10-{det.integer(0, 255, *key, 'a')}-{det.integer(0, 255, *key, 'b')}"
                                 f"-{det.integer(1, 254, *key, 'c')}.{region}.compute.internal",
                "platform_name": platform["name"],
                "platform_type": platform["type"],
                "platform_version": platform["version"],
                "applications": apps,
            })
        out.sort(key=lambda i: i["instance_id"])
        return out

    def _instance(self, account_id: str, region: str, instance_id: str) -> dict[str, Any]:
        for inst in self.instances(account_id, region):
            if inst["instance_id"] == instance_id:
                return inst
        raise InvalidInstanceId(instance_id)

    def capture_time(self, date: dt.date, account_id: str, instance_id: str) -> str:
        """When the agent last reported: early on the sandbox date (ISO 8601, as SSM writes it)."""
        seconds = det.integer(0, 4 * 3600, self.world.settings.seed, "ssm-capture", account_id, instance_id)
        moment = dt.datetime.combine(date, dt.time(0, 0), tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def information(inst: dict[str, Any], account_id: str) -> dict[str, str]:
        return {"AgentType": "amazon-ssm-agent", "ComputerName": inst["computer_name"],
                "InstanceId": inst["instance_id"], "InstanceStatus": "Active", "PlatformName": inst["platform_name"],
                "PlatformType": inst["platform_type"], "PlatformVersion": inst["platform_version"],
                "ResourceType": "EC2Instance"}

    @staticmethod
    def application(app: dict[str, Any]) -> dict[str, str]:
        return {"Name": app["name"], "Version": app["version"], "Publisher": app["publisher"],
                "ApplicationType": "", "Architecture": "x86_64"}

    # --- APIs -------------------------------------------------------------------------------------------------------
    def get_inventory(self, account_id: str, region: str, date: dt.date, filters: list[dict] | None,
                      result_attributes: list[dict] | None, max_results: Any, next_token: str | None) -> dict:
        """GetInventory: one entity per managed instance with the requested type (default AWS:InstanceInformation).

        Filters supported: ``AWS:InstanceInformation.InstanceId`` and ``AWS:InstanceInformation.PlatformType``
        with Equal (others are refused, rather than silently ignored).
        """
        attrs = result_attributes or [{"TypeName": INSTANCE_INFORMATION}]
        if len(attrs) != 1:
            raise ValidationException("1 validation error detected: Value at 'resultAttributes' failed to satisfy "
                                      "constraint: Member must have length less than or equal to 1")
        type_name = attrs[0].get("TypeName", "")
        if type_name not in TYPES:
            raise InvalidResultAttributeException(f"The inventory result attribute {type_name} is not valid.")
        size = checked_limit(max_results, 50, 50, ValidationException)
        rows = self.instances(account_id, region)
        for f in filters or []:
            key, values, kind = f.get("Key", ""), set(f.get("Values") or []), f.get("Type", "Equal")
            field = {"AWS:InstanceInformation.InstanceId": "instance_id",
                     "AWS:InstanceInformation.PlatformType": "platform_type"}.get(key)
            if field is None or kind != "Equal":
                raise ValidationException(f"The sandbox supports Equal filters on InstanceId and PlatformType, not "
                                          f"{key} {kind}")
            rows = [r for r in rows if r[field] in values]
        entities = []
        for inst in rows:
            content = ([self.information(inst, account_id)] if type_name == INSTANCE_INFORMATION
                       else [self.application(a) for a in inst["applications"]])
            entities.append({"Id": inst["instance_id"], "Data": {type_name: {
                "TypeName": type_name, "SchemaVersion": SCHEMA_VERSIONS[type_name],
                "CaptureTime": self.capture_time(date, account_id, inst["instance_id"]),
                "ContentHash": det.hexid(32, json.dumps(content, sort_keys=True)), "Content": content}}})
        items, token = page(entities, next_token, size, ["inv", account_id, region, filters, type_name])
        return {"Entities": items, **({"NextToken": token} if token else {})}

    def list_inventory_entries(self, account_id: str, region: str, date: dt.date, instance_id: str, type_name: str,
                               max_results: Any, next_token: str | None) -> dict:
        """ListInventoryEntries of one instance and type."""
        if type_name not in TYPES:
            raise InvalidTypeNameException(type_name)
        inst = self._instance(account_id, region, instance_id)
        size = checked_limit(max_results, 50, 50, ValidationException)
        entries = ([self.information(inst, account_id)] if type_name == INSTANCE_INFORMATION
                   else [self.application(a) for a in inst["applications"]])
        items, token = page(entries, next_token, size, ["entries", account_id, region, instance_id, type_name])
        return {"TypeName": type_name, "InstanceId": instance_id, "SchemaVersion": SCHEMA_VERSIONS[type_name],
                "CaptureTime": self.capture_time(date, account_id, instance_id), "Entries": items,
                **({"NextToken": token} if token else {})}

    # --- AWS Config's view --------------------------------------------------------------------------------------
    def config_items(self, account_id: str, region: str, date: dt.date) -> list[dict[str, Any]]:
        """``AWS::SSM::ManagedInstanceInventory`` configuration items, shaped as AWS Config records them."""
        out = []
        for inst in self.instances(account_id, region):
            captured = self.capture_time(date, account_id, inst["instance_id"])
            names = [a["name"] for a in inst["applications"]]
            # Keyed by name; a name installed twice gets its version in the key, so no entry is lost.
            apps = {a["name"] if names.count(a["name"]) == 1 else f"{a['name']} {a['version']}": self.application(a)
                    for a in inst["applications"]}
            out.append({
                "resourceId": inst["instance_id"], "resourceType": "AWS::SSM::ManagedInstanceInventory",
                "accountId": account_id, "awsRegion": region, "configurationItemCaptureTime": captured,
                "configuration": {
                    INSTANCE_INFORMATION: {"SchemaVersion": "1.0", "CaptureTime": captured,
                                           "Content": {inst["instance_id"]: self.information(inst, account_id)}},
                    APPLICATION: {"SchemaVersion": "1.1", "CaptureTime": captured,
                                  "Content": {k: v for k, v in sorted(apps.items())}},
                },
            })
        return out

    # --- truth ------------------------------------------------------------------------------------------------------
    def truth(self, accounts: list[str] | None = None) -> dict[str, Any]:
        """{account: {region: [instance, ...]}} of every account with managed instances."""
        out: dict[str, Any] = {}
        for acct in self.world.member_ids():
            if accounts is not None and acct not in accounts:
                continue
            for region in self.world.settings.regions:
                found = self.instances(acct, region)
                if found:
                    out.setdefault(acct, {})[region] = found
        return out

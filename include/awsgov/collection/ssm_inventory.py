"""SSM inventory across accounts and regions: what is installed on each managed instance, daily, into the store.

Two bulk sources in the central bucket, both read with the admin account's own credentials (no read role, no SSM
API call):

1. The daily AWS Config snapshot (config_rules.py) that the collection reads anyway: AWS Config records each managed
   instance's inventory as an ``AWS::SSM::ManagedInstanceInventory`` configuration item whose ``configuration`` holds
   one block per inventory type (``AWS:InstanceInformation``, ``AWS:Application``...), each with ``SchemaVersion``,
   ``CaptureTime`` and ``Content`` keyed by entry, an entry a list when one name has several versions (Config
   Developer Guide, *Supported Resource Types*: "Managed instance inventory AWS::SSM::ManagedInstanceInventory"; the
   block shape is the one consumers of Config's items parse, ``configuration['AWS:Application']['Content']``: the
   material at hand showed no AWS example). The baseline template's recorder records all supported types. No extra
   call at all.
2. The SSM resource data sync (Systems Manager User Guide, *Configuring resource data sync for Inventory*): one object
   per managed instance and inventory type, ``<sync prefix>/<type>/accountid=<account>/region=<region>/
   resourcetype=ManagedInstanceInventory/<instance id>.json``, one JSON record a line; ``ListObjectsV2`` per type
   and one ``GetObject`` per instance and type. Read for an account and region whose Config snapshot is missing (Config
   off there, or no rule) and for every account when Config is not collected.

Why not the Config aggregator's advanced query: ``AWS::SSM::ManagedInstanceInventory`` has no queryable
``configuration.*`` property in AWS's published schema (../shared/reference/aws-config-resource-schema/), so
``SELECT configuration WHERE resourceType = 'AWS::SSM::ManagedInstanceInventory'`` cannot return the applications on
real AWS.

Every account/region collected gets a ``coverage`` row with source ``ssm_inventory``: ``ok`` when the snapshot was
read or the sync's folders could be listed (an empty folder cannot be told from "no managed instance there"), else
the S3 error. Rows go to ``software_inventory`` (one per instance and application, stable ``item_id``; ``via`` says
which source); applications matching the settings' ``inventory.prohibited_packages`` become ``package_findings``
that the weekly report treats like Config and Trusted Advisor findings (source ``inventory``: owners, exceptions,
deltas, ranking).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from include.awsgov.collection.units import Outcome, Unit, error_text
from include.awsgov.core import tables
from include.awsgov.core.aws import paginate
from include.awsgov.software.findings import (
    COVERAGE_SOURCE,
    ProhibitedRule,
    finding_rows,
    prohibited_rules,
)

log = logging.getLogger(__name__)

SOURCE = COVERAGE_SOURCE  # coverage source
VIA_SYNC, VIA_SNAPSHOT = "data_sync", "config_snapshot"
MANAGED_INSTANCE_INVENTORY = "AWS::SSM::ManagedInstanceInventory"
INSTANCE_INFORMATION, APPLICATION = "AWS:InstanceInformation", "AWS:Application"
SYNC_RESOURCE_TYPE = "ManagedInstanceInventory"
# Per-account tables (chunk = account id), registered with collection.py's writer and pruning.
ACCOUNT_TABLES = {
    "software_inventory": (tables.SOFTWARE_INVENTORY, ["region", "instance_id", "name", "version", "item_id"]),
    "package_findings": (tables.PACKAGE_FINDINGS, ["region", "rule_id", "instance_id", "name", "finding_id"]),
}


def enabled(opts: Any) -> bool:
    """Whether a collection run's options ask for the inventory (settings ``inventory.collect``)."""
    section = getattr(opts, "inventory", None) or {}
    return bool(section.get("collect", False))


# -- rows ---------------------------------------------------------------------------------------------------------
def item_id(account_id: str, region: str, instance_id: str, name: str, version: str) -> str:
    """Stable id of one installed application on one instance."""
    key = "\x1f".join((account_id, region, instance_id, name or "", version or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def application_rows(account_id: str, region: str, info: Mapping[str, Any], apps: Iterable[Mapping[str, Any]],
                     captured_at: str, via: str) -> list[dict[str, Any]]:
    """``software_inventory`` rows of one instance.

    :param info: the instance's ``AWS:InstanceInformation`` content (InstanceId, PlatformName...).
    :param apps: ``AWS:Application`` entries (Name, Version, Publisher).
    """
    instance_id = str(info.get("InstanceId") or "")
    return [{
        "item_id": item_id(account_id, region, instance_id, str(a.get("Name") or ""), str(a.get("Version") or "")),
        "account_id": account_id, "region": region, "instance_id": instance_id,
        "computer_name": str(info.get("ComputerName") or ""), "platform_name": str(info.get("PlatformName") or ""),
        "platform_type": str(info.get("PlatformType") or ""),
        "platform_version": str(info.get("PlatformVersion") or ""),
        "name": str(a.get("Name") or ""), "version": str(a.get("Version") or ""),
        "publisher": str(a.get("Publisher") or ""), "captured_at": captured_at or "", "via": via,
    } for a in apps]


# -- the Config snapshot's ManagedInstanceInventory items -------------------------------------------------------------
def snapshot_rows(account_id: str, region: str, items: Iterable[Mapping[str, Any]],
                  rules: list[ProhibitedRule]) -> dict[str, list[dict[str, Any]]]:
    """``software_inventory`` and ``package_findings`` rows of one Config snapshot's managed instances.

    :param items: the snapshot's configuration items (other types are skipped).
    :param rules: prohibited packages (:func:`include.awsgov.software.findings.prohibited_rules`).
    """
    rows: list[dict[str, Any]] = []
    for item in items:
        if item.get("resourceType") != MANAGED_INSTANCE_INVENTORY:
            continue
        conf = item.get("configuration") or {}
        info_block, app_block = conf.get(INSTANCE_INFORMATION) or {}, conf.get(APPLICATION) or {}
        infos = [v for v in (info_block.get("Content") or {}).values() if isinstance(v, Mapping)]
        info = {"InstanceId": str(item.get("resourceId") or ""), **(infos[0] if infos else {})}
        apps: list[Mapping[str, Any]] = []
        for entry in (app_block.get("Content") or {}).values():  # one entry per name, a list when several versions
            apps += [e for e in (entry if isinstance(entry, list) else [entry]) if isinstance(e, Mapping)]
        captured = str(app_block.get("CaptureTime") or info_block.get("CaptureTime")
                       or item.get("configurationItemCaptureTime") or "")
        rows += application_rows(account_id, region, info, apps, captured, VIA_SNAPSHOT)
    return {"software_inventory": rows, "package_findings": finding_rows(rows, rules)}


# -- the resource data sync in the central bucket ---------------------------------------------------------------------
def sync_folder(prefix: str, type_name: str, account_id: str) -> str:
    """The sync's folder of one inventory type and account (every region below it).

    :param prefix: the sync's S3 prefix ('' for none).
    :param type_name: ``AWS:Application`` or ``AWS:InstanceInformation``.
    """
    parts = [prefix.strip("/")] if prefix and prefix.strip("/") else []
    return "/".join([*parts, type_name, f"accountid={account_id}", ""])


def region_and_instance(key: str) -> tuple[str, str] | None:
    """(region, instance id) of a sync object key, None for a key of another layout."""
    parts = key.split("/")
    if len(parts) < 3 or not parts[-3].startswith("region=") or parts[-2] != f"resourcetype={SYNC_RESOURCE_TYPE}" \
            or not parts[-1].endswith(".json"):
        return None
    return parts[-3][len("region="):], parts[-1][: -len(".json")]


def list_sync(s3: Any, bucket: str, folder: str) -> list[str]:
    """Object keys under one sync folder (``s3:ListObjectsV2``, paged)."""
    return [o["Key"] for o in paginate(s3, "list_objects_v2", "Contents", Bucket=bucket, Prefix=folder)]


def read_records(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    """The JSON records of one sync object (``s3:GetObject``, one record a line)."""
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- collection (called from runner.py) -----------------------------------------------------------------------------
def add_units(job: Any, s3: Callable[[], Any], bucket: str, account_id: str, opts: Any) -> None:
    """Add an account's inventory to its collection job: one unit listing the sync's folders of the account, then one
    unit per instance reading its objects. No-op unless the inventory is enabled.

    :param job: the account's units.Job.
    :param s3: returns the admin account's S3 client (counted).
    :param bucket: the central bucket.
    :param account_id: the account.
    :param opts: runner.Options (regions, inventory, inventory_sync_prefix).
    """
    if not enabled(opts):
        return
    rules = prohibited_rules(opts.inventory)
    regions = tuple(opts.regions)
    for region in regions:
        job.record(region, SOURCE, "ok")  # the coverage row exists even if the listing fails

    def then(status: str, exc: BaseException | None) -> list[Unit]:
        # The listing covers every region at once: its failure is each region's gap (the runner records the first).
        for region in regions[1:]:
            job.record(region, SOURCE, status, error_text(exc))
        return []

    job.units.append(Unit(regions[0], SOURCE, partial(_list_unit, s3, bucket, account_id, regions, rules,
                                                      opts.inventory_sync_prefix), then=then))


def sync_unit(s3: Callable[[], Any], bucket: str, account_id: str, region: str, opts: Any) -> Unit:
    """The unit reading one account's and region's inventory from the data sync (two ``ListObjectsV2`` under the
    region's folders, then one unit per instance): where the account's Config snapshot of the region is missing.

    :param s3: returns the admin account's S3 client (counted).
    :param bucket: the central bucket.
    :param opts: runner.Options (inventory, inventory_sync_prefix).
    """
    rules = prohibited_rules(opts.inventory)
    return Unit(region, SOURCE, partial(_list_unit, s3, bucket, account_id, (region,), rules,
                                        opts.inventory_sync_prefix, f"region={region}/"))


def _list_unit(s3: Callable[[], Any], bucket: str, account_id: str, regions: tuple[str, ...],
               rules: list[ProhibitedRule], prefix: str, below: str = "") -> Outcome:
    found: dict[tuple[str, str], dict[str, str]] = {}
    client = s3()
    for type_name in (INSTANCE_INFORMATION, APPLICATION):
        for key in list_sync(client, bucket, sync_folder(prefix, type_name, account_id) + below):
            where = region_and_instance(key)
            if where is not None and where[0] in regions:
                found.setdefault(where, {})[type_name] = key
    return Outcome(follow=[Unit(region, SOURCE, partial(_instance_unit, s3, bucket, account_id, region, keys, rules))
                           for (region, _), keys in sorted(found.items())])


def _instance_unit(s3: Callable[[], Any], bucket: str, account_id: str, region: str, keys: Mapping[str, str],
                   rules: list[ProhibitedRule]) -> Outcome:
    client = s3()
    info_records = read_records(client, bucket, keys[INSTANCE_INFORMATION]) if INSTANCE_INFORMATION in keys else []
    apps = read_records(client, bucket, keys[APPLICATION]) if APPLICATION in keys else []
    instance_id = keys.get(APPLICATION, keys.get(INSTANCE_INFORMATION, "")).rsplit("/", 1)[-1][: -len(".json")]
    info = {"InstanceId": instance_id, **(info_records[0] if info_records else {})}
    captured = str((apps[0] if apps else info).get("captureTime") or "")
    rows = application_rows(account_id, region, info, apps, captured, VIA_SYNC)
    return Outcome(rows={"software_inventory": rows, "package_findings": finding_rows(rows, rules)})

"""SSM inventory across accounts and regions: what is installed on each managed instance, daily, into the store.

Two ways in, like Config compliance (collection.py):

1. Through the admin account's Config aggregator, once per run: the advanced query
   ``SelectAggregateResourceConfig`` over ``AWS::SSM::ManagedInstanceInventory`` returns every instance's
   ``AWS:InstanceInformation`` and ``AWS:Application`` for all accounts and regions the aggregator covers, with no
   read role involved. The rows are staged per account under ``_staging/`` (hidden from queries) together with the
   account/region pairs served.
2. For account/region pairs the aggregator did not serve (no aggregator, an aggregator error, regions it does not
   cover): SSM in the account through the read role, ``GetInventory`` (instances) then ``ListInventoryEntries``
   (``AWS:Application``) per instance.

Every account/region gets a ``coverage`` row with source ``ssm_inventory``. Rows go to ``software_inventory`` (one per
instance and application, stable ``item_id``); applications matching the settings' ``inventory.prohibited_packages``
become ``package_findings`` that the weekly report treats like Config and Trusted Advisor findings (source
``inventory``: owners, exceptions, deltas, ranking).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from functools import partial
from typing import Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from include.awsgov.collection import config_rules as cfgc
from include.awsgov.collection.units import Outcome, Unit, counted_client
from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess, classify_error, paginate, paginate_token
from include.awsgov.core.store import Store
from include.awsgov.software.findings import (
    COVERAGE_SOURCE,
    RESOURCE_TYPE,
    ProhibitedRule,
    finding_rows,
    prohibited_rules,
)

log = logging.getLogger(__name__)

SOURCE = COVERAGE_SOURCE  # coverage source
VIA_AGGREGATOR, VIA_ACCOUNT = "aggregator", "account"
QUERY = (f"SELECT resourceId, accountId, awsRegion, configuration WHERE resourceType = '{RESOURCE_TYPE}'")
INSTANCE_INFORMATION, APPLICATION = "AWS:InstanceInformation", "AWS:Application"
# Per-account tables (chunk = account id), registered with collection.py's writer and pruning.
ACCOUNT_TABLES = {
    "software_inventory": (tables.SOFTWARE_INVENTORY, ["region", "instance_id", "name", "version", "item_id"]),
    "package_findings": (tables.PACKAGE_FINDINGS, ["region", "rule_id", "instance_id", "name", "finding_id"]),
}
STAGED_ROWS, STAGED_COVERAGE = "_staging/software_inventory", "_staging/inventory_coverage"


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


def rows_from_config_item(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``software_inventory`` rows of one ``AWS::SSM::ManagedInstanceInventory`` configuration item."""
    conf = item.get("configuration") or {}
    if isinstance(conf, str):
        conf = json.loads(conf)
    info_block = conf.get(INSTANCE_INFORMATION) or {}
    infos = list((info_block.get("Content") or {}).values()) or [{"InstanceId": item.get("resourceId", "")}]
    info = {"InstanceId": item.get("resourceId", ""), **infos[0]}
    app_block = conf.get(APPLICATION) or {}
    content = app_block.get("Content") or {}
    apps = content.values() if isinstance(content, dict) else content
    captured = str(app_block.get("CaptureTime") or info_block.get("CaptureTime") or "")
    return application_rows(str(item.get("accountId", "")), str(item.get("awsRegion", "")), info, apps, captured,
                            VIA_AGGREGATOR)


# -- AWS reads ------------------------------------------------------------------------------------------------------
def aggregate_items(access: AwsAccess, agg: cfgc.Aggregator) -> Iterator[dict[str, Any]]:
    """Inventory configuration items of every account/region of the aggregator
    (``config:SelectAggregateResourceConfig``)."""
    client = access.client("config", agg.region)
    for result in paginate_token(client, "select_aggregate_resource_config", "Results", Expression=QUERY,
                                 ConfigurationAggregatorName=agg.name, Limit=100):
        yield json.loads(result)


def instance_infos(client: Any) -> list[dict[str, Any]]:
    """Managed instances of one account and region with their ``AWS:InstanceInformation`` and capture time
    (``ssm:GetInventory``)."""
    out = []
    for entity in paginate(client, "get_inventory", "Entities",
                           ResultAttributes=[{"TypeName": INSTANCE_INFORMATION}]):
        block = (entity.get("Data") or {}).get(INSTANCE_INFORMATION) or {}
        content = (block.get("Content") or [{}])[0]
        out.append({"InstanceId": entity.get("Id", ""), **content, "_captured": block.get("CaptureTime", "")})
    return out


def application_entries(client: Any, instance_id: str) -> tuple[list[dict[str, Any]], str]:
    """(applications, capture time) of one instance (``ssm:ListInventoryEntries``, AWS:Application)."""
    entries: list[dict[str, Any]] = []
    captured, token = "", None
    while True:
        page = client.list_inventory_entries(InstanceId=instance_id, TypeName=APPLICATION, MaxResults=50,
                                             **({"NextToken": token} if token else {}))
        entries += page.get("Entries") or []
        captured = page.get("CaptureTime") or captured
        token = page.get("NextToken")
        if not token:
            return entries, captured


# -- collection phases (called from collection.py) -----------------------------------------------------------------
def _write(store: Store, table: str, day: Any, chunk: str, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    data = [{c: r.get(c) for c in schema.names} for r in rows]
    store.write(table, day, pa.Table.from_pylist(data, schema=schema), chunk=chunk, schema=schema)


def stage_aggregate(access: AwsAccess, store: Store, day: Any, account_ids: Iterable[str],
                    opts: Any) -> dict[str, Any]:
    """Stage, per account, the inventory the admin account's aggregator holds (once per run).

    :param access: the admin account's access layer.
    :param store: the history store.
    :param day: partition day.
    :param account_ids: accounts collected this run.
    :param opts: collection.Options (regions, aggregator, home_region, use_aggregator).
    :returns: a small summary (aggregator, status, accounts staged, rows, error).
    """
    account_ids = sorted(account_ids)
    summary: dict[str, Any] = {"aggregator": None, "status": "absent", "accounts": 0, "rows": 0, "error": ""}
    staged: list[str] = []
    try:
        agg = cfgc.find_aggregator(access, opts.home_region, opts.aggregator) if opts.use_aggregator else None
        items = list(aggregate_items(access, agg)) if agg else []
    except (ClientError, BotoCoreError) as exc:
        log.warning("config aggregator unusable for the inventory, reading SSM per account: %s", exc)
        agg, items = None, []
        summary.update(status=classify_error(exc), error=str(exc).splitlines()[0][:300])
    if agg is not None:
        wanted = set(account_ids)
        per_account: dict[str, list[dict[str, Any]]] = {a: [] for a in account_ids}
        for item in items:
            if item.get("accountId") in wanted and item.get("awsRegion") in opts.regions:
                per_account[item["accountId"]] += rows_from_config_item(item)
        for account_id in account_ids:
            served = [r for r in opts.regions if agg.covers(account_id, r)]
            if not served:
                continue
            _write(store, STAGED_ROWS, day, account_id, per_account[account_id], tables.SOFTWARE_INVENTORY)
            _write(store, STAGED_COVERAGE, day, account_id,
                   [{"account_id": account_id, "region": r, "source": SOURCE, "status": "ok", "error": "",
                     "api_calls": 0} for r in served], tables.COVERAGE)
            staged.append(account_id)
            summary["rows"] += len(per_account[account_id])
        summary.update(aggregator=agg.name, status="ok")
    for table in (STAGED_ROWS, STAGED_COVERAGE):
        store.prune(table, day, staged)
    summary["accounts"] = len(staged)
    log.info("inventory via aggregator %s: staged %d accounts, %d rows", summary["aggregator"], len(staged),
             summary["rows"])
    return summary


def add_units(job: Any, access: AwsAccess, store: Store, day: Any, account_id: str, opts: Any) -> None:
    """Add an account's inventory to its collection job: the staged aggregator slice, and SSM units (through the
    read role) for the regions the aggregator did not serve. No-op unless the inventory is enabled.

    :param job: the account's collection.Job.
    :param access: the admin account's access layer.
    :param store: the history store (staged slice).
    :param day: partition day.
    :param account_id: the account.
    :param opts: collection.Options.
    """
    if not enabled(opts):
        return
    rules = prohibited_rules(opts.inventory)
    served = {r["region"] for r in store.read_chunk(STAGED_COVERAGE, day, account_id).to_pylist()
              if r["status"] == "ok" and r["region"] in opts.regions}
    staged = [r for r in store.read_chunk(STAGED_ROWS, day, account_id).to_pylist() if r["region"] in served]
    for region in sorted(served):
        job.record(region, SOURCE, "ok")
    job.rows["software_inventory"] += staged
    job.rows["package_findings"] += finding_rows(staged, rules)
    for region in (r for r in opts.regions if r not in served):
        job.record(region, SOURCE, "ok")  # the coverage row exists even if the region's unit never runs
        job.units.append(Unit(region, SOURCE, partial(_region_unit, access, account_id, region, rules)))


def _region_unit(access: AwsAccess, account_id: str, region: str, rules: list[ProhibitedRule]) -> Any:
    client = counted_client(access, "ssm", region, account_id)
    out = Outcome()
    out.follow = [Unit(region, SOURCE, partial(_instance_unit, client, account_id, region, info, rules))
                  for info in instance_infos(client)]
    return out


def _instance_unit(client: Any, account_id: str, region: str, info: Mapping[str, Any],
                   rules: list[ProhibitedRule]) -> Any:
    apps, captured = application_entries(client, str(info["InstanceId"]))
    rows = application_rows(account_id, region, info, apps, captured or info.get("_captured", ""), VIA_ACCOUNT)
    return Outcome(rows={"software_inventory": rows, "package_findings": finding_rows(rows, rules)})



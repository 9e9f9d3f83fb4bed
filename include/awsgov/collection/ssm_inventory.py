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
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd
import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError
from packaging.version import Version

from include.awsgov.collection import config_rules as cfgc
from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess, classify_error, paginate, paginate_token
from include.awsgov.core.store import Store
from include.awsgov.software import search as ps

log = logging.getLogger(__name__)

SOURCE = "ssm_inventory"  # coverage source
FINDING_SOURCE = "inventory"  # report source of prohibited-package findings
VIA_AGGREGATOR, VIA_ACCOUNT = "aggregator", "account"
RESOURCE_TYPE = "AWS::SSM::ManagedInstanceInventory"
QUERY = (f"SELECT resourceId, accountId, awsRegion, configuration WHERE resourceType = '{RESOURCE_TYPE}'")
INSTANCE_INFORMATION, APPLICATION = "AWS:InstanceInformation", "AWS:Application"
# Per-account tables (chunk = account id), registered with collection.py's writer and pruning.
ACCOUNT_TABLES = {
    "software_inventory": (tables.SOFTWARE_INVENTORY, ["region", "instance_id", "name", "version", "item_id"]),
    "package_findings": (tables.PACKAGE_FINDINGS, ["region", "rule_id", "instance_id", "name", "finding_id"]),
}
# The report's "why" of a rule that gives no reason.
DEFAULT_REASON = "The package is on the organization's prohibited-packages list (settings inventory)."
STAGED_ROWS, STAGED_COVERAGE = "_staging/software_inventory", "_staging/inventory_coverage"


@dataclass(frozen=True)
class ProhibitedRule:
    """One entry of ``inventory.prohibited_packages``.

    :param id: stable rule id (the finding's check; exceptions match it).
    :param name: glob on the application name.
    :param versions: PEP 440 constraint, or None for any version.
    :param severity: closed severity scale (rules_catalog.SEVERITIES).
    :param title: report title.
    :param reason: why it is prohibited (report wording).
    """

    id: str
    name: str
    versions: str | None
    severity: str
    title: str
    reason: str

    def matches(self, name: str, version: str) -> bool:
        return bool(ps.compile_pattern(self.name).fullmatch(name or "")) and ps.version_matches(
            ps.parse_constraint(self.versions), version)


def enabled(opts: Any) -> bool:
    """Whether a collection run's options ask for the inventory (settings ``inventory.collect``)."""
    section = getattr(opts, "inventory", None) or {}
    return bool(section.get("collect", False))


def prohibited_rules(section: Mapping[str, Any] | None) -> list[ProhibitedRule]:
    """The prohibited-package rules of the settings' ``inventory`` section (patterns validated here too).

    :param section: settings ``inventory``.
    """
    section = section or {}
    out = []
    for entry in section.get("prohibited_packages") or []:
        ps.compile_pattern(entry["name"])
        ps.parse_constraint(entry.get("versions"))
        out.append(ProhibitedRule(entry["id"], entry["name"], entry.get("versions"), entry["severity"],
                                  entry.get("title") or f"Prohibited package {entry['name']}",
                                  entry.get("reason") or DEFAULT_REASON))
    return out


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


def finding_rows(rows: Iterable[Mapping[str, Any]], rules: list[ProhibitedRule]) -> list[dict[str, Any]]:
    """``package_findings`` of inventory rows: one per rule x instance x application name that matches, listing
    every matched version.

    One finding per package name, not per version: the finding is "this package is installed on this instance", so
    its id stays the same when a prohibited version is replaced by another prohibited one (not "fixed" + "new"), and
    two installed versions (kernels, Windows redistributables) are one finding, not two rows with one id.
    """
    grouped: dict[tuple[str, str, str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        for rule in rules:
            if rule.matches(row["name"], row["version"]):
                key = (row["account_id"], row["region"], rule.id, row["instance_id"], row["name"])
                grouped.setdefault(key, []).append(row)
    by_id = {rule.id: rule for rule in rules}
    out = []
    for (account_id, region, rule_id, instance_id, name), matched in grouped.items():
        rule, first = by_id[rule_id], matched[0]
        out.append({
            "finding_id": tables.finding_id(FINDING_SOURCE, account_id, region, rule_id, f"{instance_id}/{name}"),
            "account_id": account_id, "region": region, "rule_id": rule_id, "title": rule.title,
            "severity": rule.severity, "reason": rule.reason, "instance_id": instance_id,
            "platform_name": first["platform_name"], "name": name,
            "version": ", ".join(sorted({str(r["version"] or "") for r in matched}, key=_version_key)),
            "publisher": ", ".join(sorted({str(r["publisher"] or "") for r in matched} - {""})),
        })
    return out


def _version_key(version: str) -> tuple:
    # Oldest first, by version where one parses; the text breaks ties, so the order never depends on row order.
    parsed = ps.loose_version(version)
    return (parsed is None, parsed or Version("0"), version)


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
    from include.awsgov.collection import runner as col  # collection.py calls this module: imported late

    rules = prohibited_rules(opts.inventory)
    served = {r["region"] for r in col._read_chunk(store, STAGED_COVERAGE, day, account_id)
              if r["status"] == "ok" and r["region"] in opts.regions}
    staged = [r for r in col._read_chunk(store, STAGED_ROWS, day, account_id) if r["region"] in served]
    for region in sorted(served):
        job.record(region, SOURCE, "ok")
    job.rows["software_inventory"] += staged
    job.rows["package_findings"] += finding_rows(staged, rules)
    for region in (r for r in opts.regions if r not in served):
        job.record(region, SOURCE, "ok")  # the coverage row exists even if the region's unit never runs
        job.units.append(col.Unit(region, SOURCE, partial(_region_unit, access, account_id, region, rules)))


def _region_unit(access: AwsAccess, account_id: str, region: str, rules: list[ProhibitedRule]) -> Any:
    from include.awsgov.collection import runner as col

    client = col._client(access, "ssm", region, account_id)
    out = col.Outcome()
    out.follow = [col.Unit(region, SOURCE, partial(_instance_unit, client, account_id, region, info, rules))
                  for info in instance_infos(client)]
    return out


def _instance_unit(client: Any, account_id: str, region: str, info: Mapping[str, Any],
                   rules: list[ProhibitedRule]) -> Any:
    from include.awsgov.collection import runner as col

    apps, captured = application_entries(client, str(info["InstanceId"]))
    rows = application_rows(account_id, region, info, apps, captured or info.get("_captured", ""), VIA_ACCOUNT)
    return col.Outcome(rows={"software_inventory": rows, "package_findings": finding_rows(rows, rules)})


# -- the weekly report -------------------------------------------------------------------------------------------
def open_findings(frame: pd.DataFrame, section: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """``package_findings`` rows (with ``dt``) in the report's finding shape (report.FINDING_COLUMNS), plus
    ``own_*`` columns carrying the settings' wording (title, severity, why, remediation, console link).

    :param frame: rows of ``package_findings``.
    :param section: settings ``inventory`` (console link template); default the packaged settings.
    """
    if section is None:
        from include.awsgov.core.settings import load_settings

        section = load_settings().get("inventory") or {}
    console = str(section.get("console_url") or "")
    resource = frame["instance_id"].fillna("") + "/" + frame["name"].fillna("")
    detail = (frame["name"].fillna("") + " " + frame["version"].fillna("") + " (" + frame["publisher"].fillna("")
              + ") — " + frame["reason"].fillna(""))
    return pd.DataFrame({
        "finding_id": frame["finding_id"], "source": FINDING_SOURCE, "account_id": frame["account_id"],
        "region": frame["region"], "check": frame["rule_id"], "check_name": frame["title"], "category": "inventory",
        "resource_type": RESOURCE_TYPE, "resource_id": frame["instance_id"], "resource": resource,
        "status": "installed", "detail": detail, "details_json": "", "savings": float("nan"), "dt": frame["dt"],
        "own_title": frame["title"], "own_severity": frame["severity"], "own_why": frame["reason"],
        "own_remediation": [str(section.get("remediation") or "")] * len(frame),
        "own_console_url": [console.format(region=r, instance_id=i) if console else ""
                            for r, i in zip(frame["region"], frame["instance_id"], strict=True)],
    })


def scanned(coverage: pd.DataFrame) -> set[tuple[str, str]]:
    """(account, region) pairs whose inventory was read on a day (a finding gone there is really fixed)."""
    ok = coverage[(coverage["source"] == SOURCE) & (coverage["status"] == "ok")]
    return set(zip(ok["account_id"], ok["region"], strict=True))

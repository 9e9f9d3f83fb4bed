"""AWS Config rule compliance of the whole organization from the daily configuration snapshots in the central bucket.

Every account's delivery channel writes one configuration snapshot a day per region into the central bucket
(``<prefix>/AWSLogs/<account>/Config/<region>/<y>/<m>/<d>/ConfigSnapshot/...json.gz``, AWS Config Developer Guide,
*Delivering Configuration Snapshots*). It holds one ``AWS::Config::ResourceCompliance`` configuration item per
evaluated resource, listing every rule that evaluated it and the result (``configRuleList``). Reading it costs two
S3 calls per account and region (``ListObjectsV2`` of the day's folder, ``GetObject``) whatever the number of rules,
with the admin account's own credentials: no read role, no per-rule call, no throttled Config endpoint. The former
design (``GetAggregateComplianceDetailsByConfigRule`` per account x region x rule) made 400-1,200 calls per account
at 100-300 rules.

What the bulk source lacks, and why no per-rule detail call is made for it:

- ``Annotation`` (the rule's free-text reason) is not part of a ResourceCompliance item. Only
  ``GetComplianceDetailsByConfigRule`` / ``GetAggregateComplianceDetailsByConfigRule`` return it, one call per rule
  (per account and region): the cost this design removes. ``config_findings.annotation`` stays empty; the report and
  the exports fall back to "Non-compliant with <rule>".
- ``ResultRecordedTime`` of each rule's result: the item's ``configurationItemCaptureTime`` (when Config recorded
  the resource's compliance state) is stored in ``recorded_at`` instead.
- Rules that evaluated no resource at all appear in no ResourceCompliance item, so they get no ``config_rules`` row
  (an API read would call them INSUFFICIENT_DATA).

The aggregator is still read once per run, for coverage only: ``DescribeConfigurationAggregatorSourcesStatus``
(paged, 100 rows a page) tells why an account and region has no snapshot (a FAILED source, Config off there).

Advanced queries: this module sends none. Any query string the collection sends must name only properties AWS
lists for its resource type (tests/awsgov/collection/test_query_schema.py checks every ``SELECT`` in the package
against ../shared/reference/aws-config-resource-schema/).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from include.awsgov.collection.units import Columns
from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess, paginate

log = logging.getLogger(__name__)

VIA_SNAPSHOT = "snapshot"
RESOURCE_COMPLIANCE = "AWS::Config::ResourceCompliance"
# A resource's or rule's compliance from its results, worst first (AWS's rule summary: NON_COMPLIANT when one
# resource is, COMPLIANT when one is and none is not, else INSUFFICIENT_DATA).
RESULT_TYPES = ("COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE", "INSUFFICIENT_DATA")


@dataclass(frozen=True)
class Aggregator:
    """What an aggregator in the admin account covers.

    :param name: ConfigurationAggregatorName.
    :param region: region the aggregator lives in (where its API is called).
    :param org_wide: an organization source (every account of the Organization).
    :param account_ids: accounts of its account sources.
    :param regions: source regions; None means all regions.
    """

    name: str
    region: str
    org_wide: bool
    account_ids: frozenset[str]
    regions: frozenset[str] | None

    def covers(self, account_id: str, region: str) -> bool:
        """Whether this aggregator collects the account's Config data in this region."""
        in_region = self.regions is None or region in self.regions
        return in_region and (self.org_wide or account_id in self.account_ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (an XCom value)."""
        regions = None if self.regions is None else sorted(self.regions)
        return {"name": self.name, "region": self.region, "org_wide": self.org_wide,
                "account_ids": sorted(self.account_ids), "regions": regions}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Aggregator:
        """Inverse of :meth:`to_dict`."""
        regions = data.get("regions")
        return cls(data["name"], data["region"], bool(data["org_wide"]), frozenset(data.get("account_ids") or ()),
                   None if regions is None else frozenset(regions))


def _aggregator(item: Mapping[str, Any], region: str) -> Aggregator:
    org = item.get("OrganizationAggregationSource")
    accounts: set[str] = set()
    regions: set[str] = set()
    all_regions = False
    if org:
        all_regions = bool(org.get("AllAwsRegions"))
        regions.update(org.get("AwsRegions") or [])
    for source in item.get("AccountAggregationSources") or []:
        accounts.update(source.get("AccountIds") or [])
        all_regions = all_regions or bool(source.get("AllAwsRegions"))
        regions.update(source.get("AwsRegions") or [])
    return Aggregator(item["ConfigurationAggregatorName"], region, bool(org), frozenset(accounts),
                      None if all_regions else frozenset(regions))


def find_aggregator(access: AwsAccess, region: str, preferred: str | None = None) -> Aggregator | None:
    """The admin account's aggregator (``config:DescribeConfigurationAggregators``): the preferred name, else
    the first organization-wide one, else the first one; None when there is none.

    :param access: the admin account's access layer.
    :param region: the region the aggregator lives in.
    :param preferred: name from settings (``central.config_aggregator``).
    """
    client = access.client("config", region)
    items = list(paginate(client, "describe_configuration_aggregators", "ConfigurationAggregators"))
    if not items:
        return None
    found = [_aggregator(i, region) for i in items]
    for agg in found:
        if agg.name == preferred:
            return agg
    return next((a for a in found if a.org_wide), found[0])


def source_statuses(access: AwsAccess, agg: Aggregator) -> dict[tuple[str, str], dict[str, Any]]:
    """Every source's last update (``config:DescribeConfigurationAggregatorSourcesStatus``, paged), by
    (account, region).

    :param access: the admin account's access layer.
    :param agg: the aggregator.
    """
    client = access.client("config", agg.region)
    return {(str(s.get("SourceId")), str(s.get("AwsRegion"))): dict(s)
            for s in paginate(client, "describe_configuration_aggregator_sources_status",
                              "AggregatedSourceStatusList", ConfigurationAggregatorName=agg.name,
                              PaginationConfig={"PageSize": 100})}


def source_problem(status: Mapping[str, Any] | None) -> str:
    """Why an aggregator source is not current, in one line; '' when it SUCCEEDED (or is unknown).

    :param status: one row of :func:`source_statuses`.
    """
    if not status or status.get("LastUpdateStatus") == "SUCCEEDED":
        return ""
    text = f"aggregator source {status.get('LastUpdateStatus')}"
    if status.get("LastErrorCode"):
        text += f" ({status['LastErrorCode']}: {status.get('LastErrorMessage') or ''})".rstrip(": )") + ")"
    return text


# -- snapshots in the central bucket ---------------------------------------------------------------------------------
def snapshot_folder(key_prefix: str, account_id: str, region: str, day: dt.date) -> str:
    """The S3 folder of one account's, region's and day's configuration snapshot (month and day not zero-padded,
    as AWS writes them).

    :param key_prefix: the delivery channel's s3KeyPrefix ('' for none); ``{account_id}`` is filled in.
    """
    prefix = key_prefix.format(account_id=account_id).strip("/")
    parts = ([prefix] if prefix else []) + ["AWSLogs", account_id, "Config", region, str(day.year), str(day.month),
                                             str(day.day), "ConfigSnapshot", ""]
    return "/".join(parts)


def find_snapshot(s3: Any, bucket: str, folder: str) -> str | None:
    """The key of the day's snapshot in ``folder`` (the latest when there are several), None when none was delivered
    (``s3:ListObjectsV2``).

    :param s3: an S3 client of the bucket's account.
    """
    keys = [o["Key"] for o in paginate(s3, "list_objects_v2", "Contents", Bucket=bucket, Prefix=folder)
            if o["Key"].endswith(".json.gz") and "_ConfigSnapshot_" in o["Key"]]
    return max(keys) if keys else None


def read_snapshot(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    """The configuration items of one snapshot (``s3:GetObject``, gzip'd JSON)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return list(json.loads(gzip.decompress(body)).get("configurationItems") or [])


def _target(item: Mapping[str, Any]) -> tuple[str, str]:
    conf = item.get("configuration") or {}
    rtype = conf.get("targetResourceType") or conf.get("resourceType")
    rid = conf.get("targetResourceId") or conf.get("resourceId")
    if not rtype or rid is None:  # the item's own id is "<type>/<id>"; a type holds no "/"
        rtype, _, rid = str(item.get("resourceId") or "").partition("/")
    return str(rtype), str(rid)


def _time(text: Any) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(dt.UTC)


# The fields of a config_findings row, in tables.CONFIG_FINDINGS' order.
FINDING_FIELDS = ("finding_id", "account_id", "region", "rule_name", "resource_type", "resource_id", "compliance",
                  "annotation", "recorded_at", "via")


def _findings(account_id: str, region: str, items: Iterable[Mapping[str, Any]]) -> dict[str, tuple[Any, ...]]:
    # One tuple of FINDING_FIELDS per finding id; a result listed twice is one finding, its last result kept.
    findings: dict[str, tuple[Any, ...]] = {}
    finding_id = tables.finding_ids("config", account_id, region)
    for item in items:
        if item.get("resourceType") != RESOURCE_COMPLIANCE:
            continue
        rtype, rid = _target(item)
        resource = f"{rtype}/{rid}"
        recorded = _time(item.get("configurationItemCaptureTime"))
        for result in (item.get("configuration") or {}).get("configRuleList") or []:
            rule = str(result.get("configRuleName") or "")
            fid = finding_id(rule, resource)
            findings[fid] = (fid, account_id, region, rule, rtype, rid, str(result.get("complianceType") or ""), "",
                             recorded, VIA_SNAPSHOT)
    return findings


def _rules(account_id: str, region: str, findings: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    per_rule: dict[str, list[str]] = {}
    for finding in findings:
        per_rule.setdefault(finding[3], []).append(finding[6])
    rules = []
    for rule, kinds in sorted(per_rule.items()):
        bad = kinds.count("NON_COMPLIANT")
        compliance = "NON_COMPLIANT" if bad else "COMPLIANT" if "COMPLIANT" in kinds else "INSUFFICIENT_DATA"
        rules.append({"account_id": account_id, "region": region, "rule_name": rule, "compliance": compliance,
                      "noncompliant_resources": bad, "via": VIA_SNAPSHOT})
    return rules


def compliance_rows(account_id: str, region: str,
                    items: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(``config_rules`` rows, ``config_findings`` rows) of one snapshot's ResourceCompliance items.

    :param account_id: the account.
    :param region: the region.
    :param items: the snapshot's configuration items (other types are skipped).
    """
    findings = _findings(account_id, region, items)
    return _rules(account_id, region, findings.values()), [dict(zip(FINDING_FIELDS, f, strict=True))
                                                           for f in findings.values()]


def compliance_columns(account_id: str, region: str, items: Iterable[Mapping[str, Any]]) -> tuple[
        list[dict[str, Any]], Columns]:
    """:func:`compliance_rows` with the ``config_findings`` rows as one block of columns (the same rows).

    :param account_id: the account.
    :param region: the region.
    :param items: the snapshot's configuration items (other types are skipped).
    """
    findings = _findings(account_id, region, items)
    values = list(zip(*findings.values(), strict=True)) or [() for _ in FINDING_FIELDS]
    return _rules(account_id, region, findings.values()), Columns(
        {name: list(column) for name, column in zip(FINDING_FIELDS, values, strict=True)})

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
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import msgspec

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


class _RuleResult(msgspec.Struct, gc=False):  # no cycles: untracked by the GC, 20% less decoding
    # One entry of a ResourceCompliance item's configRuleList. Fields typed Any: what is not text is kept as
    # json.loads gives it and turned into text below, as before.
    configRuleName: Any = None
    complianceType: Any = None


class _ComplianceConf(msgspec.Struct, gc=False):
    configRuleList: list[_RuleResult] | None = None
    resourceType: Any = None
    resourceId: Any = None
    targetResourceType: Any = None
    targetResourceId: Any = None


class _Item(msgspec.Struct, gc=False):
    # A configuration item with its configuration left undecoded: only ResourceCompliance items and the types the
    # caller keeps are decoded (on AWS most items are resources whose configuration can be kilobytes each).
    resourceType: Any = None
    resourceId: Any = None
    configurationItemCaptureTime: Any = None
    configuration: msgspec.Raw = msgspec.Raw(b"null")


class _Snapshot(msgspec.Struct):
    configurationItems: list[_Item] | None = None


# One ResourceCompliance item as the collection reads it: (resource type, resource id, configurationItemCaptureTime,
# [(rule name, compliance type), ...]).
Compliance = tuple[str, str, Any, list[tuple[str, str]]]
_SNAPSHOT = msgspec.json.Decoder(_Snapshot)
_CONF = msgspec.json.Decoder(_ComplianceConf | None)


@dataclass
class Snapshot:
    """What the collection reads of one configuration snapshot.

    :param compliance: its ResourceCompliance items (:data:`Compliance`), in the file's order.
    :param items: its items of the types asked for (e.g. the SSM inventory's), as dicts like ``json.loads`` gives.
    """

    compliance: list[Compliance]
    items: list[dict[str, Any]]


def _text(value: Any) -> str:
    return value if value.__class__ is str else str(value or "")


def _target(conf: Any, item_id: Any) -> tuple[str, str]:
    # ``conf``: the item's configuration (a Mapping or a _ComplianceConf); the item's own id is "<type>/<id>".
    get = conf.get if isinstance(conf, Mapping) else partial(getattr, conf)
    rtype = get("targetResourceType", None) or get("resourceType", None)
    rid = get("targetResourceId", None) or get("resourceId", None)
    if not rtype or rid is None:  # a type holds no "/"
        rtype, _, rid = str(item_id or "").partition("/")
    return str(rtype), str(rid)


def read_snapshot(s3: Any, bucket: str, key: str, keep: Iterable[str] = ()) -> Snapshot:
    """One snapshot (``s3:GetObject``, gzip'd JSON): its ResourceCompliance items and its items of the types in
    ``keep``. Decoded with msgspec against the few fields read (the same values as ``json.loads``; a property test
    compares the two), at about a third of the CPU: a realistic account holds ~25,000 rule results.

    :param keep: resource types whose items are also returned whole (e.g. ``AWS::SSM::ManagedInstanceInventory``).
    """
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return parse_snapshot(gzip.decompress(body), keep)


def parse_snapshot(data: bytes, keep: Iterable[str] = ()) -> Snapshot:
    """:func:`read_snapshot` of a snapshot's JSON bytes."""
    kept = set(keep)
    compliance: list[Compliance] = []
    items: list[dict[str, Any]] = []
    for item in _SNAPSHOT.decode(data).configurationItems or []:
        if item.resourceType == RESOURCE_COMPLIANCE:
            conf = _CONF.decode(item.configuration)
            rtype, rid = _target(conf or {}, item.resourceId)
            results = conf.configRuleList if conf is not None else None
            compliance.append((rtype, rid, item.configurationItemCaptureTime,
                               [(_text(r.configRuleName), _text(r.complianceType)) for r in results or []]))
        if kept and isinstance(item.resourceType, str) and item.resourceType in kept:
            items.append({"resourceType": item.resourceType, "resourceId": item.resourceId,
                          "configurationItemCaptureTime": item.configurationItemCaptureTime,
                          "configuration": msgspec.json.decode(item.configuration)})
    return Snapshot(compliance, items)


def compliance_of(items: Iterable[Mapping[str, Any]]) -> list[Compliance]:
    """The ResourceCompliance items among configuration items given as dicts (``json.loads`` of a snapshot)."""
    out: list[Compliance] = []
    for item in items:
        if item.get("resourceType") != RESOURCE_COMPLIANCE:
            continue
        conf = item.get("configuration") or {}
        out.append((*_target(conf, item.get("resourceId")), item.get("configurationItemCaptureTime"),
                    [(_text(r.get("configRuleName")), _text(r.get("complianceType")))
                     for r in conf.get("configRuleList") or []]))
    return out


def _time(text: Any) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(dt.UTC)


# The fields of a config_findings row, in tables.CONFIG_FINDINGS' order.
FINDING_FIELDS = ("finding_id", "account_id", "region", "rule_name", "resource_type", "resource_id", "compliance",
                  "annotation", "recorded_at", "via")


def _findings(account_id: str, region: str, compliance: Iterable[Compliance]) -> dict[str, list[Any]]:
    # FINDING_FIELDS' columns, one row per finding id; a result listed twice is one finding: its last result, in the
    # place of its first.
    finding_id = tables.finding_ids("config", account_id, region)
    at: dict[str, int] = {}
    ids: list[str] = []
    rule_col: list[str] = []
    kind_col: list[str] = []
    type_col: list[str] = []
    id_col: list[str] = []
    when_col: list[dt.datetime | None] = []
    times: dict[Any, dt.datetime | None] = {}  # items of one snapshot share few capture times
    for rtype, rid, captured, results in compliance:
        resource = f"{rtype}/{rid}"
        recorded = times[captured] if captured in times else times.setdefault(captured, _time(captured))
        for rule, kind in results:
            fid = finding_id(rule, resource)
            i = at.get(fid)
            if i is None:
                at[fid] = len(ids)
                ids.append(fid)
                rule_col.append(rule)
                kind_col.append(kind)
                type_col.append(rtype)
                id_col.append(rid)
                when_col.append(recorded)
            else:
                rule_col[i], kind_col[i], type_col[i], id_col[i], when_col[i] = rule, kind, rtype, rid, recorded
    n = len(ids)
    return {"finding_id": ids, "account_id": [account_id] * n, "region": [region] * n, "rule_name": rule_col,
            "resource_type": type_col, "resource_id": id_col, "compliance": kind_col, "annotation": [""] * n,
            "recorded_at": when_col, "via": [VIA_SNAPSHOT] * n}


def _rules(account_id: str, region: str, columns: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    per_rule: dict[str, list[str]] = {}
    for rule, kind in zip(columns["rule_name"], columns["compliance"], strict=True):
        per_rule.setdefault(rule, []).append(kind)
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
    :param items: the snapshot's configuration items as dicts (other types are skipped).
    """
    rules, block = compliance_columns(account_id, region, compliance_of(items))
    return rules, [block.row(i) for i in range(block.length)]


def compliance_columns(account_id: str, region: str, compliance: Iterable[Compliance]) -> tuple[
        list[dict[str, Any]], Columns]:
    """(``config_rules`` rows, the ``config_findings`` rows as one block of columns) of a snapshot's
    ResourceCompliance items (:attr:`Snapshot.compliance` or :func:`compliance_of`).

    :param account_id: the account.
    :param region: the region.
    """
    columns = _findings(account_id, region, compliance)
    return _rules(account_id, region, columns), Columns(columns)

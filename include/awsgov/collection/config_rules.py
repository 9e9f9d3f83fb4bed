"""AWS Config rule compliance, per rule and per resource: through the admin account's aggregator, else per account.

The aggregator path (``describe_configuration_aggregators``, ``describe_aggregate_compliance_by_config_rules``,
``get_aggregate_compliance_details_by_config_rule``) runs in the admin account once per run and serves every
account and region the aggregator's sources cover. Whatever it does not cover (or failed on) is read in the account
itself through the read role (``describe_compliance_by_config_rule``, ``get_compliance_details_by_config_rule``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess, paginate

log = logging.getLogger(__name__)

# Evaluation results worth keeping; INSUFFICIENT_DATA cannot be used as a filter (the API refuses it).
DETAIL_COMPLIANCE_TYPES = ("COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE")
# Rule compliance values that have evaluations behind them in the aggregate API.
EVALUATED = frozenset({"COMPLIANT", "NON_COMPLIANT"})
VIA_AGGREGATOR = "aggregator"
VIA_ACCOUNT = "account"


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


def aggregate_rule_compliance(access: AwsAccess, agg: Aggregator) -> Iterator[dict[str, Any]]:
    """Compliance of every rule in every source account and region
    (``config:DescribeAggregateComplianceByConfigRules``).

    :param access: the admin account's access layer.
    :param agg: the aggregator.
    """
    client = access.client("config", agg.region)
    yield from paginate(client, "describe_aggregate_compliance_by_config_rules", "AggregateComplianceByConfigRules",
                        ConfigurationAggregatorName=agg.name)


def aggregate_rule_details(
    access: AwsAccess, agg: Aggregator, rule_name: str, account_id: str, region: str
) -> Iterator[dict[str, Any]]:
    """Evaluation results of one rule in one source account and region
    (``config:GetAggregateComplianceDetailsByConfigRule``).

    :param access: the admin account's access layer.
    :param agg: the aggregator.
    :param rule_name: the Config rule.
    :param account_id: source account.
    :param region: source region.
    """
    client = access.client("config", agg.region)
    yield from paginate(client, "get_aggregate_compliance_details_by_config_rule", "AggregateEvaluationResults",
                        ConfigurationAggregatorName=agg.name, ConfigRuleName=rule_name, AccountId=account_id,
                        AwsRegion=region, PaginationConfig={"PageSize": 100})


def account_rule_compliance(client: Any) -> Iterator[dict[str, Any]]:
    """Compliance of every rule of one account and region (``config:DescribeComplianceByConfigRule``).

    :param client: a Config client of the account and region.
    """
    yield from paginate(client, "describe_compliance_by_config_rule", "ComplianceByConfigRules")


def account_rule_details(client: Any, rule_name: str) -> Iterator[dict[str, Any]]:
    """Evaluation results of one rule in one account and region (``config:GetComplianceDetailsByConfigRule``).

    :param client: a Config client of the account and region.
    :param rule_name: the Config rule.
    """
    yield from paginate(client, "get_compliance_details_by_config_rule", "EvaluationResults",
                        ConfigRuleName=rule_name, ComplianceTypes=list(DETAIL_COMPLIANCE_TYPES),
                        PaginationConfig={"PageSize": 100})


def rule_row(account_id: str, region: str, item: Mapping[str, Any], via: str) -> dict[str, Any]:
    """A ``tables.CONFIG_RULES`` row from a ComplianceByConfigRule (or aggregate) item.

    :param account_id: the account.
    :param region: the region.
    :param item: ``{"ConfigRuleName", "Compliance": {"ComplianceType", "ComplianceContributorCount"}}``.
    :param via: aggregator | account.
    """
    compliance = item.get("Compliance") or {}
    ctype = compliance.get("ComplianceType") or "INSUFFICIENT_DATA"
    count = (compliance.get("ComplianceContributorCount") or {}).get("CappedCount") or 0
    return {"account_id": account_id, "region": region, "rule_name": item["ConfigRuleName"], "compliance": ctype,
            "noncompliant_resources": int(count) if ctype == "NON_COMPLIANT" else 0, "via": via}


def finding_row(account_id: str, region: str, result: Mapping[str, Any], via: str) -> dict[str, Any]:
    """A ``tables.CONFIG_FINDINGS`` row from an EvaluationResult (or AggregateEvaluationResult).

    :param account_id: the account.
    :param region: the region.
    :param result: the evaluation result.
    :param via: aggregator | account.
    """
    qualifier = result["EvaluationResultIdentifier"]["EvaluationResultQualifier"]
    rule, rtype, rid = qualifier["ConfigRuleName"], qualifier.get("ResourceType", ""), qualifier.get("ResourceId", "")
    return {
        "finding_id": tables.finding_id("config", account_id, region, rule, f"{rtype}/{rid}"),
        "account_id": account_id,
        "region": region,
        "rule_name": rule,
        "resource_type": rtype,
        "resource_id": rid,
        "compliance": result.get("ComplianceType", ""),
        "annotation": result.get("Annotation") or "",
        "recorded_at": result.get("ResultRecordedTime"),
        "via": via,
    }


def group_by_account(items: Iterable[Mapping[str, Any]], agg: Aggregator, accounts: Iterable[str],
                     regions: Iterable[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Aggregate rule items grouped as account -> region -> items, for the accounts and regions to collect that the
    aggregator covers; every covered pair is present, even with no rules (so "nothing there" is recorded).

    :param items: from :func:`aggregate_rule_compliance`.
    :param agg: the aggregator.
    :param accounts: accounts to collect.
    :param regions: regions to collect.
    """
    regions = list(regions)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for account_id in accounts:
        covered = [r for r in regions if agg.covers(account_id, r)]
        if covered:
            out[account_id] = {r: [] for r in covered}
    for item in items:
        slot = out.get(item.get("AccountId", ""), {}).get(item.get("AwsRegion", ""))
        if slot is not None:
            slot.append(dict(item))
    for per_region in out.values():
        for rules in per_region.values():
            rules.sort(key=lambda i: i["ConfigRuleName"])
    return out

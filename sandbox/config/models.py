"""AWS Config rule compliance per account, region and day, and the organization aggregator over it.

Rules live in moto (``put_config_rule``, so ``describe_config_rules`` lists them); evaluations are a deterministic
function of (seed, account, region, rule, resource, date): resources become non-compliant, get fixed and reopen on
stretches of a few days, so week-over-week deltas exist. Any AWS-managed rule of the catalogue that exists in moto
(seeded, or created later by the product) gets evaluations.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from array import array
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from .. import det
from ..paging import checked_limit, page
from ..settings import HOME_REGION
from .exceptions import (
    InvalidParameterValueException,
    NoSuchConfigRuleException,
    NoSuchConfigurationAggregatorException,
    ValidationException,
)

RESOURCES = Path(__file__).resolve().parent / "resources"
RULE_COMPLIANCE = ("COMPLIANT", "NON_COMPLIANT", "INSUFFICIENT_DATA")
EVALUATION_COMPLIANCE = ("COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE")
# Paging through a big aggregate query reuses its rows for this long (rules rarely change meanwhile).
ROWS_CACHE_SECONDS = 30.0
MAX_RULES = 1000
# Bounds of the evaluation caches (cleared when over): a packed rule-day is ~0.5 KB (key and ~37 evaluations), so
# 2,000,000 are ~1 GB: 1,000 realistic accounts x 4 regions x 100-300 rules (800,000) fit with two days.
ROWS_CACHE_KEYS = 2_000_000
IDS_CACHE_KEYS = 1_000_000
_ID_PREFIX = {"volume": "vol", "security_group": "sg", "instance": "i"}


def _day(date: dt.date) -> int:
    return (date - dt.date(1970, 1, 1)).days


class ComplianceModel:
    """Evaluations and compliance summaries of AWS-managed Config rules.

    :param world: the running world.
    """

    def __init__(self, world: Any) -> None:
        self.world = world
        self.data = json.loads((RESOURCES / "rules.json").read_text(encoding="utf-8"))
        self.rules = {r["name"]: r for r in self.data["rules"]}
        # --profile realistic: a pool of Security Hub-style control rules, 100-300 of them per account and region.
        self.pool = realistic_pool(world.settings.seed) if world.settings.realistic else []
        self.rules.update({r["name"]: r for r in self.pool})
        self.by_identifier = {r["identifier"]: r for r in [*self.data["rules"], *self.pool]}
        # Evaluations are a pure function of their key: cached (results are never mutated by callers).
        self._cache: dict[tuple, tuple[bytes, array]] = {}
        self._ids_cache: dict[tuple, list[str]] = {}
        self._rows_cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    # --- seeding --------------------------------------------------------------------------------------------------
    def rules_for(self, region: str) -> list[dict[str, Any]]:
        return [r for r in self.data["rules"] if not r.get("global") or region == HOME_REGION]

    def rules_for_account(self, account_id: str, region: str) -> list[dict[str, Any]]:
        """The rules seeded in one account and region: the catalogue's, plus (realistic profile) enough of the pool
        to make 100-300 in all."""
        rules = self.rules_for(region)
        if not self.pool:
            return rules
        seed = self.world.settings.seed
        low, high = realistic()["config"]["rules_per_account_region"]
        wanted = det.integer(low, high, seed, "rule-count", account_id, region) - len(rules)
        chosen = sorted(self.pool, key=lambda r: det.digest(seed, "rule-pick", account_id, region, r["name"]))
        return [*rules, *chosen[:max(0, wanted)]]

    def seed_rules(self) -> None:
        """put_config_rule (in-process) for every onboarded active member account and region."""
        from moto.config.models import ConfigRule, config_backends

        # moto stops at 150 rules, AWS's old quota; the default is now 1000 rules per account and region (Config API
        # Reference, DescribeConfigRuleEvaluationStatus: "the rule limit for your account is more than the default
        # of 1000 rules").
        ConfigRule.MAX_RULES = max(ConfigRule.MAX_RULES, MAX_RULES)

        for account in self.world.plan.accounts:
            if not account.read_role or account.status != "ACTIVE":
                continue
            for region in self.world.settings.regions:
                backend = config_backends[account.id][region]
                for rule in self.rules_for_account(account.id, region):
                    backend.put_config_rule(
                        {
                            "ConfigRuleName": rule["name"],
                            "Description": rule["annotation"],
                            "Source": {"Owner": "AWS", "SourceIdentifier": rule["identifier"]},
                            **({"Scope": {"ComplianceResourceTypes": [rule["resource_type"]]}}
                               if not rule["resource_type"].startswith("AWS::::") else {}),
                        },
                        [],
                    )

    # --- evaluations ----------------------------------------------------------------------------------------------
    def active_rules(self, account_id: str, region: str) -> dict[str, dict[str, Any]]:
        """{rule name: catalogue spec} of the catalogue's rules that exist in moto for this account and region."""
        from moto.config.models import config_backends

        if account_id not in config_backends or self.world.account_status(account_id) not in ("ACTIVE", None):
            return {}
        if region not in config_backends[account_id].keys():
            return {}
        out = {}
        for name, rule in config_backends[account_id][region].config_rules.items():
            spec = self.rules.get(name) or self.by_identifier.get(getattr(rule.source, "source_identifier", ""))
            if spec is not None and getattr(rule.source, "owner", "") == "AWS":
                out[name] = spec
        return out

    def rule_names(self, account_id: str, region: str) -> list[str]:
        """All Config rule names in moto for the account and region (the catalogue's and any others)."""
        from moto.config.models import config_backends

        if account_id not in config_backends or region not in config_backends[account_id].keys():
            return []
        return sorted(config_backends[account_id][region].config_rules)

    def _resource_id(self, account_id: str, region: str, spec: dict[str, Any], j: int) -> str:
        return self._resource_ids(account_id, region, spec, j + 1)[j]

    def _resource_ids(self, account_id: str, region: str, spec: dict[str, Any], n: int) -> list[str]:
        """The first ``n`` resource ids of the rule's id scope (at least; cached per account, region and scope)."""
        # Rules sharing an id scope (the pool's: their resource type) evaluate the same resources.
        scope = spec.get("id_scope", spec["name"])
        kind = spec["id_kind"]
        cache_key = (account_id, region, scope, kind)
        # Never extended in place: requests are served by several threads, and a list another thread is reading
        # or extending stays as it was; a longer one replaces it (the same ids, in the same order).
        ids = self._ids_cache.get(cache_key, [])
        if len(ids) >= n:
            return ids
        more: list[str] = []
        if kind == "account":
            more = [account_id] * (n - len(ids))
        else:
            # Every value hashes (seed, account, region, scope, j, ...): the prefix is hashed once (det.Prefix).
            p = det.Prefix(self.world.settings.seed, account_id, region, scope)
            hostile_rate, hostile_values = self.data["hostile_rate"], self.data["hostile_values"]
            for j in range(len(ids), n):
                if p.unit(j, "hostile") < hostile_rate:
                    more.append(p.pick(hostile_values, j, "hv"))
                elif kind == "bucket":
                    more.append(f"{p.pick(self.data['bucket_purposes'], j, 'p')}-{account_id}-{region}-"
                                f"{p.hexid(4, j)}")
                elif kind == "db":
                    more.append("db-" + p.hexid(26, j).upper())
                else:
                    more.append(f"{_ID_PREFIX[kind]}-{p.hexid(17, j)}")
        if len(self._ids_cache) > IDS_CACHE_KEYS:
            self._ids_cache.clear()
        ids = self._ids_cache[cache_key] = [*ids, *more]
        return ids

    def evaluations(self, account_id: str, region: str, rule_name: str, date: dt.date) -> list[dict[str, Any]]:
        """EvaluationResults of one rule on ``date`` (all compliance types), ordered by resource."""
        spec = self.active_rules(account_id, region).get(rule_name)
        if spec is None:
            return []
        return self._evaluations(account_id, region, rule_name, spec, date)

    def _evaluations(self, account_id: str, region: str, rule_name: str, spec: dict[str, Any],
                     date: dt.date) -> list[dict[str, Any]]:
        """The API's EvaluationResults, built from :meth:`rows` (not cached: a page's worth is cheap to build)."""
        midnight = dt.datetime.combine(date, dt.time(0, 0), tzinfo=dt.UTC)
        out = []
        for resource_id, compliance, annotation, seconds in self.rows(account_id, region, rule_name, spec, date):
            ordering = midnight + dt.timedelta(seconds=seconds)
            result: dict[str, Any] = {
                "EvaluationResultIdentifier": {
                    "EvaluationResultQualifier": {
                        "ConfigRuleName": rule_name,
                        "ResourceType": spec["resource_type"],
                        "ResourceId": resource_id,
                        "EvaluationMode": "DETECTIVE",
                    },
                    "OrderingTimestamp": ordering,
                },
                "ComplianceType": compliance,
                "ResultRecordedTime": ordering + dt.timedelta(seconds=60),
                "ConfigRuleInvokedTime": ordering + dt.timedelta(seconds=30),
            }
            if annotation:
                result["Annotation"] = annotation
            out.append(result)
        return out

    def rows(self, account_id: str, region: str, rule_name: str, spec: dict[str, Any],
             date: dt.date) -> list[tuple[str, str, str | None, int]]:
        """One rule's evaluations on ``date`` as compact rows (resource id, compliance type, annotation or None,
        ordering timestamp in seconds after midnight UTC), ordered by resource; shared by the API, the snapshots
        and the truth.

        Cached packed, ~5 bytes per evaluation (a code and the seconds; the resource ids are shared by the rules of
        an id scope), so that a whole realistic day of 1,000 accounts stays cached between the delivery and the
        truth: the dicts of :meth:`_evaluations`, with their datetimes, took ~1 KB per evaluation (6 GB at 500
        realistic accounts with a bounded cache, whose misses then computed everything again)."""
        key = (account_id, region, rule_name, spec["name"], date)
        packed = self._cache.get(key)
        if packed is None:
            packed = self._compute(account_id, region, spec, date)
            if len(self._cache) > ROWS_CACHE_KEYS:
                self._cache.clear()
            self._cache[key] = packed
        codes, seconds = packed
        ids = self._resource_ids(account_id, region, spec, len(codes))
        annotation = spec["annotation"]
        # An empty annotation is none, as in _evaluations (AWS omits Annotation then).
        decoded = [("NOT_APPLICABLE", None), ("COMPLIANT", None), ("NON_COMPLIANT", annotation or None),
                   *(("NON_COMPLIANT", f"{annotation} {v}") for v in self.data["hostile_values"])]
        # ids: the scope's, at least as many as this rule evaluates (the longest rule of the scope's count).
        return [(rid, *decoded[c], t) for rid, c, t in zip(ids, codes, seconds, strict=False)]

    def _compute(self, account_id: str, region: str, spec: dict[str, Any], date: dt.date) -> tuple[bytes, array]:
        """(a code per resource: 0 NOT_APPLICABLE, 1 COMPLIANT, 2 NON_COMPLIANT, 3 + k NON_COMPLIANT with the
        hostile value k in its annotation; the ordering timestamps in seconds after midnight)."""
        seed = self.world.settings.seed
        day = _day(date)
        n = det.integer(spec["resources"][0], spec["resources"][1], seed, "n", account_id, region, spec["name"])
        # Every value hashes (seed, account, region, rule, j, ...): the prefix is hashed once (det.Prefix).
        h = det.Prefix(seed, account_id, region, spec["name"]).text  # h(f"{j}{SEP}na") == det.digest(..., j, "na")
        na_rate, nc_rate = spec["not_applicable_rate"], spec["noncompliant_rate"]
        hostile_rate3, n_hostile = self.data["hostile_rate"] * 3, len(self.data["hostile_values"])
        sep, top = det.SEP, 2**64
        t_tail = f"{sep}t{sep}{day}"
        codes = bytearray(n)
        seconds = array("H", bytes(2 * n))  # 0..18000 (five hours)
        for j in range(n):
            js = f"{j}{sep}"
            if h(js + "na") / top < na_rate:
                code = 0
            else:
                length = 2 + h(js + "len") % 5  # det.integer(2, 6, ...)
                offset = h(js + "off") % length  # det.integer(0, length - 1, ...)
                stretch = (day + offset) // length
                if h(f"{js}open{sep}{stretch}") / top < nc_rate:
                    code = 2
                    if h(js + "hostile-annotation") / top < hostile_rate3:
                        code = 3 + h(js + "ha") % n_hostile
                else:
                    code = 1
            codes[j] = code
            seconds[j] = h(f"{j}{t_tail}") % (5 * 3600 + 1)  # det.integer(0, 5 * 3600, ..., "t", day)
        return bytes(codes), seconds

    @staticmethod
    def _summary(types: list[str]) -> dict[str, Any]:
        """A rule's or resource's Compliance from its evaluations' compliance types."""
        noncompliant = types.count("NON_COMPLIANT")
        if noncompliant:
            count = {"CappedCount": min(noncompliant, 100), "CapExceeded": noncompliant > 100}
            return {"ComplianceType": "NON_COMPLIANT", "ComplianceContributorCount": count}
        if "COMPLIANT" in types:
            return {"ComplianceType": "COMPLIANT"}
        return {"ComplianceType": "INSUFFICIENT_DATA"}

    # --- per-account APIs ---------------------------------------------------------------------------------------
    def compliance_by_config_rule(self, account_id: str, region: str, date: dt.date, rule_names: list[str] | None,
                                  compliance_types: list[str] | None, next_token: str | None) -> dict[str, Any]:
        """DescribeComplianceByConfigRule."""
        existing = self.rule_names(account_id, region)
        for name in rule_names or []:
            if name not in existing:
                raise NoSuchConfigRuleException(name)
        _check_types(compliance_types, RULE_COMPLIANCE)
        rows = []
        for name in rule_names or existing:
            summary = self._summary([e["ComplianceType"] for e in self.evaluations(account_id, region, name, date)])
            if compliance_types and summary["ComplianceType"] not in compliance_types:
                continue
            rows.append({"ConfigRuleName": name, "Compliance": summary})
        size = self.data["describe_compliance_by_config_rule_page_size"]
        items, token = page(rows, next_token, size, ["rule", account_id, region, rule_names, compliance_types])
        return {"ComplianceByConfigRules": items, "NextToken": token}

    def compliance_details_by_config_rule(self, account_id: str, region: str, date: dt.date, rule_name: str,
                                          compliance_types: list[str] | None, limit: Any,
                                          next_token: str | None) -> dict[str, Any]:
        """GetComplianceDetailsByConfigRule."""
        if rule_name not in self.rule_names(account_id, region):
            raise NoSuchConfigRuleException(rule_name)
        _check_types(compliance_types, EVALUATION_COMPLIANCE)
        size = checked_limit(limit, 10, 100, InvalidParameterValueException)
        rows = [e for e in self.evaluations(account_id, region, rule_name, date)
                if not compliance_types or e["ComplianceType"] in compliance_types]
        items, token = page(rows, next_token, size, ["details", account_id, region, rule_name, compliance_types])
        return {"EvaluationResults": items, "NextToken": token}

    def compliance_by_resource(self, account_id: str, region: str, date: dt.date, resource_type: str | None,
                               resource_id: str | None, compliance_types: list[str] | None, limit: Any,
                               next_token: str | None) -> dict[str, Any]:
        """DescribeComplianceByResource."""
        if resource_id and not resource_type:
            raise InvalidParameterValueException("You must specify a resource type when you specify a resource ID.")
        _check_types(compliance_types, RULE_COMPLIANCE)
        size = checked_limit(limit, 10, 100, InvalidParameterValueException)
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for name in self.active_rules(account_id, region):
            for e in self.evaluations(account_id, region, name, date):
                q = e["EvaluationResultIdentifier"]["EvaluationResultQualifier"]
                grouped.setdefault((q["ResourceType"], q["ResourceId"]), []).append(e)
        rows = []
        for (rtype, rid), evaluations in sorted(grouped.items()):
            if resource_type and rtype != resource_type or resource_id and rid != resource_id:
                continue
            summary = self._summary([e["ComplianceType"] for e in evaluations])
            if compliance_types and summary["ComplianceType"] not in compliance_types:
                continue
            rows.append({"ResourceType": rtype, "ResourceId": rid, "Compliance": summary})
        query = ["resource", account_id, region, resource_type, resource_id, compliance_types]
        items, token = page(rows, next_token, size, query)
        return {"ComplianceByResources": items, "NextToken": token}

    # --- aggregator ---------------------------------------------------------------------------------------------
    def _aggregator_scope(self, account_id: str, region: str, name: str) -> tuple[list[str], list[str]]:
        """(accounts, regions) an aggregator of ``account_id`` in ``region`` covers; raises if it does not exist."""
        from moto.config.models import config_backends

        aggregator = None
        if region in config_backends[account_id].keys():
            aggregator = config_backends[account_id][region].config_aggregators.get(name)
        if aggregator is None:
            raise NoSuchConfigurationAggregatorException(name)
        regions = list(self.world.settings.regions)
        org_source = aggregator.organization_aggregation_source
        if org_source is not None:
            accounts = [self.world.settings.management_account_id, *self.world.active_member_ids()]
            if not org_source.all_aws_regions and org_source.aws_regions:
                regions = [r for r in org_source.aws_regions if r in regions]
        else:
            accounts, wanted = [], []
            for source in aggregator.account_aggregation_sources or []:
                accounts += list(source.account_ids)
                if not source.all_aws_regions and source.aws_regions:
                    wanted += list(source.aws_regions)
            if wanted:
                regions = [r for r in wanted if r in regions]
        return accounts, regions

    def _source_days(self, accounts: list[str], regions: list[str], date: dt.date) -> dict[tuple[str, str], Any]:
        """Realistic profile: the day each aggregator source's data is from (None: FAILED), see sources.py;
        default profile: every source is current."""
        if not self.world.settings.realistic:
            return {}
        from .sources import source_day

        return source_day(self.world, accounts, regions, date)

    def aggregate_compliance_by_config_rules(self, account_id: str, region: str, date: dt.date, name: str,
                                             filters: dict[str, Any] | None, limit: Any,
                                             next_token: str | None) -> dict[str, Any]:
        """DescribeAggregateComplianceByConfigRules."""
        accounts, regions = self._aggregator_scope(account_id, region, name)
        filters = filters or {}
        wanted_type = filters.get("ComplianceType")
        if wanted_type and wanted_type not in ("COMPLIANT", "NON_COMPLIANT"):
            raise ValidationException(f"Value '{wanted_type}' at 'filters.complianceType' failed to satisfy "
                                      "constraint: Member must satisfy enum value set: [COMPLIANT, NON_COMPLIANT]")
        size = checked_limit(limit, 1000, 1000)
        cache_key = json.dumps([account_id, region, name, filters, date.isoformat()], sort_keys=True)
        cached = self._rows_cache.get(cache_key)
        if cached is not None and time.monotonic() - cached[0] < ROWS_CACHE_SECONDS:
            items, token = page(cached[1], next_token, size, ["agg", account_id, region, name, filters])
            return {"AggregateComplianceByConfigRules": items, "NextToken": token}
        rows = []
        days = self._source_days(accounts, regions, date)
        for acct in sorted(accounts):
            if filters.get("AccountId") and acct != filters["AccountId"]:
                continue
            for reg in regions:
                if filters.get("AwsRegion") and reg != filters["AwsRegion"]:
                    continue
                day = days.get((acct, reg), date)
                if day is None:
                    continue  # a FAILED source: the aggregator has nothing from it
                for rule_name, spec in sorted(self.active_rules(acct, reg).items()):
                    if filters.get("ConfigRuleName") and rule_name != filters["ConfigRuleName"]:
                        continue
                    summary = self._summary([r[1] for r in self.rows(acct, reg, rule_name, spec, day)])
                    if wanted_type and summary["ComplianceType"] != wanted_type:
                        continue
                    rows.append({"ConfigRuleName": rule_name, "Compliance": summary, "AccountId": acct,
                                 "AwsRegion": reg})
        self._rows_cache = {cache_key: (time.monotonic(), rows)}  # the last query only: paging through it
        items, token = page(rows, next_token, size, ["agg", account_id, region, name, filters])
        return {"AggregateComplianceByConfigRules": items, "NextToken": token}

    def aggregate_compliance_details(self, account_id: str, region: str, date: dt.date, name: str, rule_name: str,
                                     member: str, member_region: str, compliance_type: str | None, limit: Any,
                                     next_token: str | None) -> dict[str, Any]:
        """GetAggregateComplianceDetailsByConfigRule."""
        accounts, regions = self._aggregator_scope(account_id, region, name)
        if compliance_type and compliance_type not in ("COMPLIANT", "NON_COMPLIANT"):
            raise ValidationException(f"Value '{compliance_type}' at 'complianceType' failed to satisfy constraint: "
                                      "Member must satisfy enum value set: [COMPLIANT, NON_COMPLIANT]")
        size = checked_limit(limit, 50, 100)
        rows = []
        day = self._source_days(accounts, regions, date).get((member, member_region), date)
        if member in accounts and member_region in regions and day is not None:
            for e in self.evaluations(member, member_region, rule_name, day):
                if e["ComplianceType"] == "NOT_APPLICABLE":
                    continue
                if compliance_type and e["ComplianceType"] != compliance_type:
                    continue
                rows.append({**e, "AccountId": member, "AwsRegion": member_region})
        query = ["aggd", account_id, region, name, rule_name, member, member_region, compliance_type]
        items, token = page(rows, next_token, size, query)
        return {"AggregateEvaluationResults": items, "NextToken": token}

    def aggregator_sources_status(self, account_id: str, region: str, date: dt.date, name: str,
                                  update_status: list[str] | None, limit: Any,
                                  next_token: str | None) -> dict[str, Any]:
        """DescribeConfigurationAggregatorSourcesStatus (sources.py)."""
        from .sources import describe_sources_status

        accounts, regions = self._aggregator_scope(account_id, region, name)
        return describe_sources_status(self.world, accounts, regions, date, update_status, limit, next_token,
                                       ["sources", account_id, region, name])

    # --- truth ------------------------------------------------------------------------------------------------------
    def truth(self, date: dt.date, accounts: list[str] | None = None) -> dict[str, Any]:
        """{account: {region: {rule: [evaluation, ...]}}} for every account and region with evaluations."""
        out: dict[str, Any] = {}
        stamps = day_stamps(date)
        candidates = [self.world.settings.management_account_id, *self.world.member_ids()]
        for acct in candidates:
            if accounts is not None and acct not in accounts:
                continue
            for region in self.world.settings.regions:
                for rule_name, spec in sorted(self.active_rules(acct, region).items()):
                    rtype = spec["resource_type"]
                    out.setdefault(acct, {}).setdefault(region, {})[rule_name] = [
                        {"resource_type": rtype, "resource_id": rid, "compliance": compliance,
                         "annotation": annotation, "ordering_timestamp": stamps[seconds]}
                        for rid, compliance, annotation, seconds in self.rows(acct, region, rule_name, spec, date)]
        return out


@cache
def realistic() -> dict[str, Any]:
    """sandbox/resources/realistic.json."""
    return json.loads((RESOURCES.parent.parent / "resources" / "realistic.json").read_text(encoding="utf-8"))


def managed_rules() -> dict[str, Any]:
    """AWS's managed Config rules as moto ships them (moto refuses other SourceIdentifiers for Owner AWS)."""
    import gzip

    import moto.config

    path = Path(moto.config.__file__).parent / "resources" / "aws_managed_rules.json.gz"
    with gzip.open(path) as fh:
        return json.load(fh)["ManagedRules"]


def realistic_pool(seed: int) -> list[dict[str, Any]]:
    """The realistic profile's pool of control rules: AWS managed rules of the modelled resource types, named as
    Security Hub names its service-linked rules (``securityhub-<rule>-<suffix>``), in rules.json's shape. The same
    managed rule appears several times (as with rules of different parameters) to fill the pool."""
    spec = realistic()["config"]
    families = {f["resource_type"]: f for f in spec["families"]}
    candidates = []
    for identifier, rule in sorted(managed_rules().items()):
        if any(not p.get("Optional", True) for p in rule.get("Parameters", [])):
            continue  # a rule with required parameters needs values we would have to invent
        types = rule.get("Resource Types") or []
        for rtype in [types] if isinstance(types, str) else types:
            if rtype in families:
                candidates.append((identifier, families[rtype]))
                break
    pool = []
    for i in range(int(spec["pool_size"])):
        identifier, family = candidates[i % len(candidates)]
        pool.append({
            "name": f"securityhub-{identifier.lower().replace('_', '-')}-{det.hexid(8, seed, 'control', i)}",
            "identifier": identifier,
            "resource_type": family["resource_type"], "id_kind": family["id_kind"],
            "id_scope": family["resource_type"], "resources": family["resources"],
            "noncompliant_rate": family["noncompliant_rate"], "not_applicable_rate": family["not_applicable_rate"],
            "annotation": family["annotation"],
        })
    return pool


def _check_types(values: list[str] | None, allowed: tuple[str, ...]) -> None:
    for value in values or []:
        if value not in allowed:
            raise InvalidParameterValueException(f"Value '{value}' at 'complianceTypes' failed to satisfy constraint: "
                                                 f"Member must satisfy enum value set: [{', '.join(allowed)}]")


@lru_cache(maxsize=4)
def day_stamps(date: dt.date) -> list[str]:
    """``datetime.isoformat()`` of every second of the evaluations' first five hours of ``date`` (UTC), by
    second: the truth formats ~6,300 timestamps per account and region without building a datetime for each."""
    day = date.isoformat()
    return [f"{day}T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}+00:00" for t in range(5 * 3600 + 1)]

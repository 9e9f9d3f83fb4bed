"""Onboarding member accounts: validate trigger input, plan the StackSet work, verify accounts, inventory rows.

Validation runs in three stages so that bad input costs nothing: static checks (format, regions, e-mail,
duplicates: no I/O at all), then the inventory in the store (already onboarded at this baseline version), and only
then the one AWS look-up, Organizations membership. Every refusal names the field and the value
(messages in include/config/onboarding.yaml). Planning is a pure function of what AWS reports, so dry runs and
tests share it with the real run. Verification goes through the read role the baseline deployed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import yaml

from include.awsgov.core.accounts import latest_onboarding
from include.awsgov.core.aws import AwsAccess, classify_error, paginate
from include.awsgov.onboarding import threat_options
from include.awsgov.onboarding.form import INCLUDE, config
from include.awsgov.onboarding.stacksets import (
    CALL_AS,
    CURRENT,
    DELEGATED_ADMIN,
    actual_concurrency,
    describe_stack,
    describe_stack_set,
    failure_tolerance,
    group_targets,
    list_stack_instances,
    max_concurrent,
    operation_id,
    recorded_version,
    region_order,
    stack_set_action,
)

log = logging.getLogger(__name__)

_ACCOUNT_RE = re.compile(r"^\d{12}\Z")
_TEAM_RE = re.compile(r"^[\w .-]{1,64}\Z")
_OU_RE = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}\Z")
ENVIRONMENTS = ("prod", "dev", "sandbox")
PERMISSION_MODELS = ("SELF_MANAGED", "SERVICE_MANAGED")
CONCURRENCY_MODES = ("STRICT_FAILURE_TOLERANCE", "SOFT_FAILURE_TOLERANCE")


class InvalidRequest(ValueError):
    """Trigger input refused; ``errors`` holds one message per problem, each naming the field and the value."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("onboarding request refused: " + "; ".join(errors))
        self.errors = list(errors)


def load_template(kind: str) -> tuple[str, str]:
    """Text and baseline version of a CloudFormation template (``baseline`` or ``central``).

    :param kind: key under ``templates`` in onboarding.yaml.
    """
    body = (INCLUDE / "templates" / config()["templates"][kind]).read_text()
    version = str(yaml.load(body, Loader=_CfnLoader)["Metadata"]["awsgov"]["baseline_version"])  # noqa: S506
    return body, version


class _CfnLoader(yaml.SafeLoader):
    """Safe YAML loader that accepts CloudFormation's short-form tags (!Ref, !Sub, ...)."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


@lru_cache(maxsize=4)
def known_regions(partition_of: str = "us-east-1") -> frozenset[str]:
    """Regions of the partition that ``partition_of`` belongs to, from botocore's bundled endpoint data (no call)."""
    import botocore.session

    session = botocore.session.get_session()
    for partition in session.get_available_partitions():
        regions = set(session.get_available_regions("cloudformation", partition_name=partition))
        if partition_of in regions:
            return frozenset(regions)
    return frozenset()


def _msg(key: str, field: str, value: Any = None, **extra: Any) -> str:
    return config()["messages"][key].format(field=field, value=value, **extra)


def _string_list(params: Mapping[str, Any], field: str, errors: list[str]) -> list[str]:
    value = params.get(field)
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        errors.append(_msg("not_a_list", field, value))
        return []
    return list(value)


def _duplicates(values: Iterable[str], field: str, errors: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            errors.append(_msg("duplicate", field, value))
        seen.add(value)


def validate_static(
    params: Mapping[str, Any], *, default_regions: Sequence[str], global_region: str
) -> dict[str, Any]:
    """Check the trigger input without any I/O; return the normalized request (a small, XCom-safe dict).

    :param params: the run's params (Airflow has already applied the form's JSON schema; we check again so the
        library refuses bad input on its own and with precise messages).
    :param default_regions: the settings' regions, used when ``regions`` is empty.
    :param global_region: where global resources live; it must be among the regions.
    :raises InvalidRequest: listing every problem found.
    """
    from email_validator import EmailNotValidError, validate_email

    errors: list[str] = []
    specs = config()["params"]
    errors += [_msg("unknown", key) for key in params if key not in specs]
    accounts = _string_list(params, "account_ids", errors)
    if not accounts and not any(e.startswith("account_ids") for e in errors):
        errors.append(_msg("required", "account_ids"))
    errors += [_msg("account_id", "account_ids", a) for a in accounts if not _ACCOUNT_RE.match(str(a))]
    _duplicates(accounts, "account_ids", errors)

    regions = _string_list(params, "regions", errors) or list(default_regions)
    valid = known_regions(global_region)
    errors += [_msg("region", "regions", r) for r in regions if r not in valid]
    _duplicates(regions, "regions", errors)
    if regions and global_region not in regions:
        errors.append(_msg("global_region", "regions", regions, region=global_region))

    email = params.get("owner_email")
    if not email:
        errors.append(_msg("required", "owner_email"))
    else:
        try:
            email = validate_email(str(email), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            errors.append(_msg("email", "owner_email", params.get("owner_email"), reason=exc))
    team = params.get("team")
    if not isinstance(team, str) or not _TEAM_RE.match(team):
        errors.append(_msg("team", "team", team))
    for field, allowed in (("environment", ENVIRONMENTS), ("permission_model", PERMISSION_MODELS),
                           ("concurrency_mode", CONCURRENCY_MODES)):
        value = params.get(field)
        value = specs[field].get("default") if value is None else value
        if value not in allowed:
            errors.append(_msg("enum", field, value, allowed=", ".join(allowed)))
    model = params.get("permission_model") or "SELF_MANAGED"
    ou_ids = _string_list(params, "ou_ids", errors)
    errors += [_msg("ou_id", "ou_ids", o) for o in ou_ids if not _OU_RE.match(str(o))]
    if model == "SERVICE_MANAGED" and not ou_ids:
        errors.append(_msg("ou_required", "ou_ids"))
    if model == "SELF_MANAGED" and ou_ids:
        errors.append(_msg("ou_unexpected", "ou_ids", ou_ids))
    percents = {}
    for field in ("failure_tolerance_percent", "max_concurrency_percent"):
        # A field cleared in the form arrives as null (optional fields accept it): it means the default.
        value = params.get(field)
        value = specs[field]["default"] if value is None else value
        low, high = specs[field]["minimum"], specs[field]["maximum"]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            errors.append(_msg("percent", field, value, low=low, high=high))
        percents[field] = value
    flags = {}
    for field in ("dry_run", "force", *threat_options.FLAGS):
        flags[field] = False if params.get(field) is None else params.get(field)
        if not isinstance(flags[field], bool):
            errors.append(_msg("boolean", field, flags[field]))
    if isinstance(regions, list) and all(isinstance(r, str) for r in regions):
        errors += [_msg("service_region", field, missing, service=service)
                   for field, service, missing in threat_options.unsupported({**flags, "regions": regions})]
    if errors:
        raise InvalidRequest(errors)
    return {"account_ids": accounts, "regions": regions, "owner_email": email, "team": team,
            "environment": params["environment"], "permission_model": model, "ou_ids": ou_ids,
            "concurrency_mode": params.get("concurrency_mode") or specs["concurrency_mode"]["default"],
            **percents, **flags, "global_region": global_region}


def check_call_as(request: Mapping[str, Any], cfg: Mapping[str, Any]) -> str:
    """The StackSet calls' CallAs (settings ``stackset.call_as``), refused with a SELF_MANAGED request: a delegated
    administrator can only run SERVICE_MANAGED StackSets (CloudFormation API Reference, CreateStackSet CallAs: "Valid
    only if the permissions model is SERVICE_MANAGED"). No I/O.

    :param request: :func:`validate_static`'s result.
    :param cfg: governance settings.
    :raises InvalidRequest: naming the permission model.
    """
    call_as = (cfg.get("stackset") or {}).get("call_as") or "SELF"
    if call_as not in CALL_AS:
        raise InvalidRequest([_msg("enum", "stackset.call_as", call_as, allowed=", ".join(CALL_AS))])
    if call_as == DELEGATED_ADMIN and request["permission_model"] != "SERVICE_MANAGED":
        raise InvalidRequest([_msg("delegated_admin_model", "permission_model", request["permission_model"])])
    return call_as


def check_inventory(request: Mapping[str, Any], inventory: Mapping[str, Mapping[str, Any]], version: str) -> None:
    """Refuse accounts already onboarded at ``version`` unless the request says ``force`` (no AWS call).

    :param inventory: latest inventory row per account (``core.accounts.latest_onboarding``).
    :raises InvalidRequest: naming each such account.
    """
    if request.get("force"):
        return
    errors = []
    for account in request["account_ids"]:
        row = inventory.get(account)
        if row and row.get("status") == "onboarded" and row.get("baseline_version") == version:
            when = str(row.get("onboarded_at"))[:10]
            errors.append(_msg("onboarded", "account_ids", account, version=version, when=when))
    if errors:
        raise InvalidRequest(errors)


def organization(access: AwsAccess) -> dict[str, Any]:
    """The organization's id, management account and every account's status (DescribeOrganization, ListAccounts)."""
    orgs = access.client("organizations")
    org = orgs.describe_organization()["Organization"]
    statuses = {a["Id"]: a.get("Status", "ACTIVE") for a in paginate(orgs, "list_accounts", "Accounts")}
    return {"organization_id": org["Id"], "management_account_id": org["MasterAccountId"], "accounts": statuses}


def check_organization(request: Mapping[str, Any], org: Mapping[str, Any], admin_account_id: str = "") -> None:
    """Refuse accounts outside the organization, not ACTIVE, or the management/admin account itself.

    :param org: :func:`organization` result.
    :param admin_account_id: the account running the StackSets (the management or a delegated admin account).
    :raises InvalidRequest: naming each such account.
    """
    errors = []
    for account in request["account_ids"]:
        status = org["accounts"].get(account)
        if account in (org["management_account_id"], admin_account_id):
            errors.append(_msg("management", "account_ids", account))
        elif status is None:
            errors.append(_msg("not_in_org", "account_ids", account))
        elif status != "ACTIVE":
            errors.append(_msg("not_active", "account_ids", account, status=status))
    if errors:
        raise InvalidRequest(errors)


def validate_request(
    params: Mapping[str, Any], cfg: Mapping[str, Any], *, access: AwsAccess, inventory: Any, version: str
) -> dict[str, Any]:
    """All checks in cost order: static (no I/O), inventory (the store), then Organizations (AWS, 1 + N/20 calls).

    :param params: the run's params.
    :param cfg: governance settings (regions, home_region).
    :param access: access layer for the admin account; untouched if an earlier stage refuses.
    :param inventory: ``Store.read(INVENTORY)`` frame (or None).
    :param version: the baseline version about to be deployed.
    :returns: the request plus version, organization id and admin account id.
    :raises InvalidRequest: naming the field and value of each problem.
    """
    request = validate_static(params, default_regions=cfg["regions"], global_region=cfg["home_region"])
    request["call_as"] = check_call_as(request, cfg)
    check_inventory(request, latest_onboarding(inventory), version)
    org = organization(access)
    admin = access.admin_id()
    check_organization(request, org, admin_account_id=admin)
    return {**request, "version": version, "organization_id": org["organization_id"], "admin_account_id": admin}


def operation_preferences(request: Mapping[str, Any], regions: Sequence[str] | None = None) -> dict[str, Any]:
    """OperationPreferences for one operation (failure tolerance and concurrency from the form).

    :param regions: the operation's regions, deployed global region first; None (a StackSet update touching
        every existing instance) leaves the order to CloudFormation.
    """
    prefs: dict[str, Any] = {
        "RegionConcurrencyType": config()["region_concurrency"],
        "FailureTolerancePercentage": int(request["failure_tolerance_percent"]),
        "MaxConcurrentPercentage": int(request["max_concurrency_percent"]),
        "ConcurrencyMode": request.get("concurrency_mode") or CONCURRENCY_MODES[0],
    }
    if regions:
        prefs["RegionOrder"] = region_order(regions, request["global_region"])
    return prefs


def plan_for_request(access: AwsAccess, cfg: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """Read what exists (central stack, StackSet, its instances) and plan the request's deployment; log the plan.

    With GuardDuty or Macie asked for, new instances whose account and region already run the service get "false"
    for it (one detector / Macie session per account and region), read through the read role.

    :param access: the admin account's access layer.
    :param cfg: validated settings (``stackset.name``).
    :param request: the validated request.
    :raises ValueError: the request cannot be planned (the message says why).
    """
    cf = access.client("cloudformation")
    name = cfg["stackset"]["name"]
    call_as = request.get("call_as") or "SELF"
    stack_set = describe_stack_set(cf, name, call_as=call_as)
    plan = plan_deployment(request, version=request["version"],
                           central_stack=describe_stack(cf, config()["central_stack_name"]), stack_set=stack_set,
                           instances=list_stack_instances(cf, name, call_as=call_as) if stack_set else [])
    if plan["create"] and (request.get("enable_guardduty") or request.get("enable_macie")):
        pairs = [(a, r) for g in plan["create"] for a in g["accounts"] for r in g["regions"]]
        on = threat_options.services_on(access, request, pairs)
        plan["create"] = threat_options.per_instance_groups(request, plan["create"], on)
        for group in plan["create"]:
            log.info("plan: threat options %s for %s x %s", group["overrides"], group["accounts"], group["regions"])
    for line in describe_plan(plan, name, request):
        log.info("plan: %s", line)
    return plan


def plan_deployment(
    request: Mapping[str, Any],
    *,
    version: str,
    central_stack: Mapping[str, Any] | None,
    stack_set: Mapping[str, Any] | None,
    instances: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Decide what to create and update (pure): the central stack, the StackSet, and the instance operations.

    Instances already CURRENT are skipped; missing ones are created; OUTDATED ones are updated, unless the
    StackSet itself is being updated (that re-deploys every instance anyway).

    :param request: the validated request.
    :param version: baseline version of the templates.
    :param central_stack: ``describe_stack`` of the central stack, or None.
    :param stack_set: ``describe_stack_set`` result, or None.
    :param instances: ``list_stack_instances`` summaries.
    :raises ValueError: when the StackSet's permission model differs or an instance is INOPERABLE.
    """
    if stack_set and stack_set.get("PermissionModel", "SELF_MANAGED") != request["permission_model"]:
        raise ValueError(f"permission_model: {request['permission_model']!r} differs from the StackSet's "
                         f"{stack_set.get('PermissionModel')!r}")
    existing = {(i["Account"], i["Region"]): i for i in instances}
    targets = [(a, r) for a in request["account_ids"] for r in request["regions"]]
    inoperable = [f"{a}/{r}" for a, r in targets if existing.get((a, r), {}).get("Status") == "INOPERABLE"]
    if inoperable:
        raise ValueError(f"stack instances INOPERABLE (delete them with RetainStacks first): {inoperable}")
    stackset_update = stack_set is not None and recorded_version(stack_set) != version
    missing = [t for t in targets if t not in existing]
    outdated = [t for t in targets if t in existing and existing[t].get("Status") != CURRENT]
    current = [t for t in targets if t in existing and existing[t].get("Status") == CURRENT]
    central_action = stack_set_action(central_stack, version, {}) if central_stack is not None else "create"
    return {
        "version": version,
        "central": central_action,
        "stackset": "create" if stack_set is None else ("update" if stackset_update else "none"),
        "stackset_version": recorded_version(stack_set),
        "create": group_targets(missing, request["global_region"]),
        "update": [] if stackset_update else group_targets(outdated, request["global_region"]),
        "current": [f"{a}/{r}" for a, r in current],
        "targets": len(targets),
    }


def operation_steps(
    request: Mapping[str, Any], plan: Mapping[str, Any], stackset_operation: str | None, run_key: Sequence[str]
) -> list[dict[str, Any]]:
    """The run's StackSet operations in the order they must run (one at a time), each with a deterministic id.

    :param stackset_operation: id of the StackSet update already started, if any (it goes first).
    :param run_key: e.g. (dag_id, run_id): names the operation ids so a retried task finds its own operations.
    """
    steps: list[dict[str, Any]] = []
    if stackset_operation:
        steps.append({"action": "stackset-update", "op_id": stackset_operation})
    for action in ("create", "update"):
        for i, group in enumerate(plan[action]):
            steps.append({"action": action, "op_id": operation_id(*run_key, action, str(i)), **group,
                          "preferences": operation_preferences(request, group["regions"]),
                          "ou_ids": list(request["ou_ids"])})
            if action == "create":  # the form's threat-detection options, for the run's new instances only
                steps[-1].setdefault("overrides", threat_options.overrides(request))  # per group, if split
    return steps


def describe_plan(plan: Mapping[str, Any], stack_set_name: str, request: Mapping[str, Any] | None = None) -> list[str]:
    """Human-readable lines for the run log (and the whole output of a dry run).

    :param request: the validated request: each operation's line then says how many accounts per region really
        deploy at once (:func:`concurrency_note`) and the StackSet calls' CallAs.
    """
    call_as = f", called as {request['call_as']}" if request and request.get("call_as") == DELEGATED_ADMIN else ""
    lines = [f"baseline version {plan['version']}: central stack {plan['central']}, StackSet {stack_set_name} "
             f"{plan['stackset']} (recorded version {plan['stackset_version'] or '-'}){call_as}"]
    for verb, key in (("create", "create"), ("update", "update")):
        for group in plan[key]:
            note = f"; {concurrency_note(request, len(group['accounts']))}" if request else ""
            lines.append(f"would {verb} {len(group['accounts'])} account(s) x {len(group['regions'])} region(s) "
                         f"in one operation: accounts {group['accounts']} regions {group['regions']}{note}")
    lines.append(f"{len(plan['current'])} of {plan['targets']} instance(s) already CURRENT, left as they are")
    return lines


def concurrency_note(request: Mapping[str, Any], accounts: int) -> str:
    """What the form's concurrency really becomes for an operation over ``accounts`` accounts per region.

    With STRICT_FAILURE_TOLERANCE (AWS's default) CloudFormation starts with min(max concurrent, failure tolerance
    + 1) accounts at a time and lowers that as accounts fail (:func:`stacksets.actual_concurrency`).

    :param request: the validated request (percentages and concurrency mode).
    """
    prefs = operation_preferences(request)
    k, asked = actual_concurrency(accounts, prefs), max_concurrent(accounts, prefs)
    tolerated = failure_tolerance(accounts, prefs)
    head = f"{k} account(s) at a time per region"
    if prefs["ConcurrencyMode"] == "SOFT_FAILURE_TOLERANCE":
        return (f"{head} (SOFT_FAILURE_TOLERANCE: max concurrency {request['max_concurrency_percent']}% = {asked}), "
                f"a region stops after {tolerated + 1} failure(s)")
    return (f"{head} (STRICT_FAILURE_TOLERANCE: min(max concurrency {request['max_concurrency_percent']}% = "
            f"{asked}, failure tolerance {request['failure_tolerance_percent']}% = {tolerated} + 1)), fewer after "
            f"failures")


def stack_set_values(
    cfg: Mapping[str, Any], *, admin_account_id: str, central_outputs: Mapping[str, str], external_id: str
) -> dict[str, str]:
    """Baseline template parameters (the ExternalId is NoEcho in the template: never log the result).

    :param cfg: governance settings.
    :param central_outputs: the central stack's outputs (bucket, KMS key, event bus).
    """
    return {
        "AdminAccountId": admin_account_id,
        "GlobalRegion": cfg["home_region"],
        "ExternalId": external_id,
        "ReadRoleName": cfg["read_role_name"],
        "ReaderPrincipalArn": cfg.get("read_role_trusted_principal") or "",
        "LogBucketName": central_outputs["LogBucketName"],
        "TrailKmsKeyArn": central_outputs["TrailKmsKeyArn"],
        "CentralEventBusArn": central_outputs["CentralEventBusArn"],
        "TrailName": config()["trail_name"],
        "ForwardRuleName": config()["forward_rule_name"],
        **inventory_sync_values(cfg),
    }


def inventory_sync_values(cfg: Mapping[str, Any]) -> dict[str, str]:
    """InventorySyncName / InventorySyncPrefix of both templates: where the SSM resource data sync writes and the
    collection reads (settings ``collection.inventory_sync_prefix``).

    :param cfg: governance settings.
    """
    prefix = (cfg.get("collection") or {}).get("inventory_sync_prefix", "inventory")
    return {"InventorySyncName": config()["inventory_sync_name"], "InventorySyncPrefix": str(prefix).strip("/")}


def central_values(cfg: Mapping[str, Any], *, admin_account_id: str, organization_id: str) -> dict[str, str]:
    """Central template parameters from the settings' ``central`` section.

    :param cfg: governance settings.
    """
    central = cfg.get("central", {})
    bucket = central.get("log_bucket", "governance-logs-{admin_account_id}").format(admin_account_id=admin_account_id)
    return {"OrganizationId": organization_id, "LogBucketName": bucket,
            "EventBusName": central.get("event_bus", "governance-central"),
            "AggregatorName": central.get("config_aggregator", "governance-org-aggregator"),
            **inventory_sync_values(cfg)}


def central_create_flags(access: AwsAccess, values: Mapping[str, str], stack: Mapping[str, Any] | None) -> dict:
    """CreateLogBucket / CreateEventBus / CreateAggregator for the central stack.

    An existing stack keeps its choices; on the first deployment a resource that already exists under its name
    (made by another tool) is adopted instead of created (S3 HeadBucket, EventBridge DescribeEventBus, Config
    DescribeConfigurationAggregators).

    :param values: :func:`central_values`.
    :param stack: the central stack (``describe_stack``) or None.
    """
    from botocore.exceptions import ClientError

    keys = ("CreateLogBucket", "CreateEventBus", "CreateAggregator")
    if stack is not None:
        current = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters") or []}
        return {k: current.get(k, "true") for k in keys}
    probes = (
        lambda: access.client("s3").head_bucket(Bucket=values["LogBucketName"]),
        lambda: access.client("events").describe_event_bus(Name=values["EventBusName"]),
        lambda: access.client("config").describe_configuration_aggregators(
            ConfigurationAggregatorNames=[values["AggregatorName"]]),
    )
    flags = {}
    for key, probe in zip(keys, probes, strict=True):
        try:
            probe()
            flags[key] = "false"
            log.info("central: %s exists already and is adopted, not created", key[len("Create"):])
        except ClientError:
            flags[key] = "true"
    return flags


def verify_account(
    access: AwsAccess, account_id: str, regions: Sequence[str], *, global_region: str, admin_account_id: str,
    central_bus_arn: str,
) -> dict[str, Any]:
    """Check through the read role that the baseline works: trail logging, recorder recording, aggregation
    authorization for the admin account, forwarding rule targeting the central bus.

    Trail: the multi-region trail lives in the global region and is checked there once; every region reports it.

    :param access: access layer (assumes the read role in ``account_id``).
    :param regions: regions deployed.
    :returns: {"account_id", "ok", "regions": {region: {check: bool}}, "error"}.
    """
    names = config()
    try:
        trail = access.client("cloudtrail", region=global_region, account_id=account_id)
        trails = trail.describe_trails(trailNameList=[names["trail_name"]], includeShadowTrails=False)["trailList"]
        trail_ok = any(t.get("IsMultiRegionTrail") and trail.get_trail_status(Name=t.get("TrailARN") or t["Name"])
                       .get("IsLogging") for t in trails)
        result: dict[str, dict[str, bool]] = {}
        for region in regions:
            cfg = access.client("config", region=region, account_id=account_id)
            recorders = cfg.describe_configuration_recorder_status().get("ConfigurationRecordersStatus", [])
            auths = cfg.describe_aggregation_authorizations().get("AggregationAuthorizations", [])
            events = access.client("events", region=region, account_id=account_id)
            targets = _rule_targets(events, names["forward_rule_name"])
            result[region] = {
                "trail_logging": bool(trail_ok),
                "recorder_recording": any(r.get("recording") for r in recorders),
                "aggregation_authorized": any(a.get("AuthorizedAccountId") == admin_account_id
                                              and a.get("AuthorizedAwsRegion") == global_region for a in auths),
                "forward_rule": central_bus_arn in targets,
            }
    except Exception as exc:
        kind = classify_error(exc)
        if kind in ("access_denied", "throttled_out"):
            raise  # may clear up (role propagation, throttling): let the task retry
        log.warning("verify %s: %s (%s)", account_id, kind, exc)
        return {"account_id": account_id, "ok": False, "regions": {}, "error": f"{kind}: {exc}"}
    ok = all(all(checks.values()) for checks in result.values())
    for region, checks in result.items():
        failed = [k for k, v in checks.items() if not v]
        log.info("verify %s %s: %s", account_id, region, "ok" if not failed else f"FAILED {failed}")
    return {"account_id": account_id, "ok": ok, "regions": result, "error": ""}


def verification_failures(checks: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per account that did not verify: the error, or each region with the checks that failed."""
    lines = []
    for check in checks:
        if check["ok"]:
            continue
        bad = [f"{region} {', '.join(k for k, v in items.items() if not v)}" for region, items in
               sorted(check["regions"].items()) if not all(items.values())]
        lines.append(f"account {check['account_id']}: {check.get('error') or '; '.join(bad)}")
    return lines


def _rule_targets(events: Any, rule: str) -> list[str]:
    from botocore.exceptions import ClientError

    try:
        if events.describe_rule(Name=rule).get("State") != "ENABLED":
            return []
        return [t["Arn"] for t in events.list_targets_by_rule(Rule=rule).get("Targets", [])]
    except ClientError as exc:
        if "ResourceNotFound" in str(exc):
            return []
        raise


def inventory_rows(
    request: Mapping[str, Any],
    verifications: Iterable[Mapping[str, Any]],
    *,
    version: str,
    stack_set_name: str,
    operation_ids: Sequence[str],
    previous: Mapping[str, Mapping[str, Any]],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """One row per account (tables.ONBOARDED_ACCOUNTS); ``onboarded_at`` is kept from an earlier row at the same
    version so a rerun does not move it.

    :param verifications: :func:`verify_account` results.
    :param previous: latest inventory row per account.
    :param now: the time to record.
    """
    rows = []
    for check in sorted(verifications, key=lambda c: c["account_id"]):
        account = check["account_id"]
        prior = previous.get(account) or {}
        kept = prior.get("onboarded_at") if prior.get("baseline_version") == version else None
        rows.append({
            "account_id": account,
            "owner_email": request["owner_email"],
            "team": request["team"],
            "environment": request["environment"],
            "regions": list(request["regions"]),
            "baseline_version": version,
            "stackset_name": stack_set_name,
            "operation_id": ",".join(operation_ids) or str(prior.get("operation_id") or ""),
            "onboarded_at": kept if kept is not None and str(kept) != "NaT" else now,
            "verified_at": now,
            "verification_json": json.dumps(check["regions"] or {"error": check.get("error", "")}, sort_keys=True),
            "status": "onboarded" if check["ok"] else "verify_failed",
        })
    return rows


def write_inventory(store: Any, day: dt.date, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Write each account's row as its own chunk of ``day`` (a rerun replaces it); return a small summary.

    :param store: the history store.
    :param day: the onboarding day (partition).
    :param rows: :func:`inventory_rows` output.
    """
    import pandas as pd

    from include.awsgov.core.tables import ONBOARDED_ACCOUNTS, ONBOARDED_ACCOUNTS_TABLE

    for row in rows:
        store.write(ONBOARDED_ACCOUNTS_TABLE, day, pd.DataFrame([row]), chunk=row["account_id"],
                    schema=ONBOARDED_ACCOUNTS)
    statuses = {row["account_id"]: row["status"] for row in rows}
    log.info("inventory: %d account(s) recorded for %s: %s", len(rows), day, statuses)
    return {"day": day.isoformat(), "accounts": statuses}

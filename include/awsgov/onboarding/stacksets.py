"""Thin CloudFormation StackSet service functions: ensure a StackSet, list and deploy its instances, watch operations.

Each function wraps the boto3 call it names and takes the admin account's ``cloudformation`` client. The baseline
version is recorded on the StackSet twice: in its tags (``awsgov:baseline-version``, propagated to every stack
instance) and in the ``BaselineVersion`` template parameter. Operation ids are derived from the DAG run, so a
retried task finds the operation it already started instead of starting a second one.

Run from a delegated administrator account (settings ``stackset.call_as: DELEGATED_ADMIN``), every call that
takes ``CallAs`` passes it (:func:`call_as_args`): AWS refuses a SERVICE_MANAGED StackSet call from a member account
without it ("You must be the management account or delegated admin account of an organization before operating a
SERVICE_MANAGED stack set"), since CallAs defaults to SELF.

Operations are watched with a botocore waiter model (success / failure / retry acceptors, in
include/config/onboarding.yaml) evaluated once per poke, so a reschedule-mode sensor or a trigger can drive it
without holding a worker between polls.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from secrets import token_hex as secrets_token
from typing import Any

import botocore.waiter
import yaml
from botocore.exceptions import ClientError

from include.awsgov.core.aws import error_code, paginate

WAITER_MODEL = Path(__file__).with_name("waiters") / "stack_set_operation.json"

log = logging.getLogger(__name__)

VERSION_TAG = "awsgov:baseline-version"
# Fingerprint of the NoEcho parameters (the ExternalId) the StackSet was last given: DescribeStackSet masks their
# values, so without it a rotated ExternalId never reached the member accounts. A salted, slow hash (PBKDF2), never
# the value: the tag is readable by anyone who may describe the StackSet.
SECRETS_TAG = "awsgov:noecho-digest"
_DIGEST_SCHEME, _DIGEST_ITERATIONS = "pbkdf2-sha256", 200_000
MASKED = "****"
CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
# Instance statuses; failed results of an operation (per instance) and what counts as "done" for an instance.
CURRENT = "CURRENT"
FAILED_RESULTS = frozenset({"FAILED", "CANCELLED"})
_OP_ID_BAD = re.compile(r"[^a-zA-Z0-9-]")
# CallAs values (CloudFormation API Reference, e.g. CreateStackSet): SELF from the management account (and for
# SELF_MANAGED StackSets), DELEGATED_ADMIN from the account registered as the StackSets delegated administrator.
SELF, DELEGATED_ADMIN = "SELF", "DELEGATED_ADMIN"
CALL_AS = (SELF, DELEGATED_ADMIN)


def call_as_args(call_as: str | None) -> dict[str, str]:
    """The ``CallAs`` argument of a StackSet call: none for SELF (the API's default), else ``{"CallAs": call_as}``.

    :param call_as: ``SELF`` or ``DELEGATED_ADMIN`` (None: SELF).
    """
    if call_as not in (None, *CALL_AS):
        raise ValueError(f"CallAs {call_as!r} is not one of {', '.join(CALL_AS)}")
    return {"CallAs": call_as} if call_as == DELEGATED_ADMIN else {}


class StackSetOperationFailed(RuntimeError):
    """A StackSet operation ended badly; ``failures`` lists (account, region, status, reason)."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str, str, str]] = ()) -> None:
        super().__init__(message)
        self.failures = list(failures)


@lru_cache(maxsize=1)
def _waiter_model() -> botocore.waiter.WaiterModel:
    # Success / failure / retry acceptors of DescribeStackSetOperation, as data beside the code (botocore's format).
    return botocore.waiter.WaiterModel(json.loads(WAITER_MODEL.read_text()))


@lru_cache(maxsize=1)
def _waiter_config() -> botocore.waiter.SingleWaiterConfig:
    return _waiter_model().get_waiter("StackSetOperationComplete")


def region_order(regions: Iterable[str], global_region: str) -> list[str]:
    """Regions with the global one first (its IAM roles are referenced by the others), then as given."""
    regions = list(dict.fromkeys(regions))
    return sorted(regions, key=lambda r: r != global_region)


def group_targets(pairs: Iterable[tuple[str, str]], global_region: str) -> list[dict[str, list[str]]]:
    """Group (account, region) pairs into operations: accounts sharing the same region set share one operation.

    New accounts all miss the same regions, so onboarding them is a single operation whatever their number.
    """
    by_account: dict[str, set[str]] = defaultdict(set)
    for account, region in pairs:
        by_account[account].add(region)
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for account, regions in by_account.items():
        groups[tuple(region_order(sorted(regions), global_region))].append(account)
    return [{"accounts": sorted(accounts), "regions": list(regions)}
            for regions, accounts in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


def operation_id(*parts: str) -> str:
    """A deterministic OperationId (``[a-zA-Z0-9-]``, at most 128 chars) naming the run and the step.

    :param parts: e.g. (dag_id, run_id, "create", "0").
    """
    readable = _OP_ID_BAD.sub("-", "-".join(parts))[:90].strip("-") or "op"
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
    return f"{readable}-{digest}"


def failure_tolerance(accounts: int, preferences: Mapping[str, Any]) -> int:
    """Failed accounts of one region an operation tolerates: FailureToleranceCount, or FailureTolerancePercentage of
    ``accounts`` rounded down (CloudFormation API Reference, StackSetOperationPreferences); 0 by default."""
    if preferences.get("FailureToleranceCount") is not None:
        return int(preferences["FailureToleranceCount"])
    return int(preferences.get("FailureTolerancePercentage") or 0) * accounts // 100


def max_concurrent(accounts: int, preferences: Mapping[str, Any]) -> int:
    """Accounts of one region asked to deploy at once: MaxConcurrentCount, or MaxConcurrentPercentage of ``accounts``
    rounded down but at least 1 (1 by default), never more than ``accounts``."""
    if preferences.get("MaxConcurrentCount") is not None:
        asked = int(preferences["MaxConcurrentCount"])
    elif preferences.get("MaxConcurrentPercentage") is not None:
        asked = int(preferences["MaxConcurrentPercentage"]) * accounts // 100
    else:
        asked = 1
    return min(max(1, asked), max(accounts, 1))


def actual_concurrency(accounts: int, preferences: Mapping[str, Any]) -> int:
    """Accounts of one region an operation really deploys at once when it starts: :func:`max_concurrent`, but with
    ConcurrencyMode STRICT_FAILURE_TOLERANCE (the default) at most :func:`failure_tolerance` + 1 (CloudFormation API
    Reference, StackSetOperationPreferences: "The initial actual concurrency is set to the lower of either the value
    of the MaxConcurrentCount, or the value of FailureToleranceCount +1. The actual concurrency is then reduced
    proportionally by the number of failures").

    :param accounts: the operation's accounts in the region.
    :param preferences: OperationPreferences.
    """
    if accounts <= 0:
        return 0
    asked = max_concurrent(accounts, preferences)
    if preferences.get("ConcurrencyMode") == "SOFT_FAILURE_TOLERANCE":
        return asked
    return min(asked, failure_tolerance(accounts, preferences) + 1)


def parameters(values: Mapping[str, str]) -> list[dict[str, str]]:
    """CloudFormation ``Parameters`` list from a mapping (sorted, so calls are reproducible)."""
    return [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in sorted(values.items())]


def describe_stack_set(cf: Any, name: str, *, call_as: str = SELF) -> dict | None:
    """``DescribeStackSet``; None when the StackSet does not exist.

    :param cf: admin-account cloudformation client.
    :param name: StackSet name.
    :param call_as: ``SELF`` or ``DELEGATED_ADMIN`` (:func:`call_as_args`).
    """
    try:
        stack_set = cf.describe_stack_set(StackSetName=name, **call_as_args(call_as))["StackSet"]
    except ClientError as exc:
        if error_code(exc) == "StackSetNotFoundException":
            return None
        raise
    return None if stack_set.get("Status") == "DELETED" else stack_set


def recorded_version(stack_set: Mapping[str, Any] | None) -> str | None:
    """Baseline version a StackSet (or stack) records: its version tag, else its BaselineVersion parameter."""
    if not stack_set:
        return None
    for tag in stack_set.get("Tags") or []:
        if tag.get("Key") == VERSION_TAG:
            return tag.get("Value")
    for param in stack_set.get("Parameters") or []:
        if param.get("ParameterKey") == "BaselineVersion":
            return param.get("ParameterValue")
    return None


def _visible_params(items: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    # NoEcho values come back masked ("****"): they are compared through SECRETS_TAG instead.
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in items if p.get("ParameterValue") != MASKED}


class _IgnoreTags(yaml.SafeLoader):
    """YAML loader for CloudFormation templates: intrinsic-function tags (!Ref, !Sub ...) load as None."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)


def noecho_parameters(template_body: str) -> frozenset[str]:
    """Names of the template's parameters declared ``NoEcho: true`` (their values come back masked).

    :param template_body: CloudFormation YAML or JSON.
    """
    params = (yaml.load(template_body, Loader=_IgnoreTags) or {}).get("Parameters") or {}  # noqa: S506 - SafeLoader
    return frozenset(k for k, v in params.items() if isinstance(v, Mapping) and str(v.get("NoEcho")).lower() == "true")


def secrets_digest(secrets: Mapping[str, str], salt: str | None = None) -> str:
    """The tag value fingerprinting ``secrets``: ``pbkdf2-sha256:<iterations>:<salt hex>:<digest hex>``.

    :param secrets: NoEcho parameter values by name.
    :param salt: hex salt (a new random one when None).
    """
    salt = salt or secrets_token(16)
    material = "\n".join(f"{k}={secrets[k]}" for k in sorted(secrets)).encode("utf-8")
    digest = hashlib.pbkdf2_hmac("sha256", material, bytes.fromhex(salt), _DIGEST_ITERATIONS).hex()
    return f"{_DIGEST_SCHEME}:{_DIGEST_ITERATIONS}:{salt}:{digest}"


def secrets_match(tag_value: str | None, secrets: Mapping[str, str]) -> bool:
    """Whether a recorded :func:`secrets_digest` was made from exactly ``secrets`` (False without a record)."""
    scheme, _, rest = (tag_value or "").partition(":")
    iterations, _, rest = rest.partition(":")
    salt, _, _ = rest.partition(":")
    if scheme != _DIGEST_SCHEME or iterations != str(_DIGEST_ITERATIONS) or not salt:
        return False
    try:
        expected = secrets_digest(secrets, salt)
    except ValueError:  # a salt that is not hex: not ours
        return False
    return hmac.compare_digest(expected, str(tag_value))


def _tag(stack_set: Mapping[str, Any], key: str) -> str | None:
    return next((t.get("Value") for t in stack_set.get("Tags") or [] if t.get("Key") == key), None)


def stack_set_action(stack_set: Mapping[str, Any] | None, version: str, values: Mapping[str, str],
                     secret_keys: Iterable[str] = ()) -> str:
    """What ensuring the StackSet would do: ``create``, ``update`` (new version, changed parameters, or changed
    NoEcho parameters) or ``none``.

    :param stack_set: ``describe_stack_set`` result or None.
    :param version: the template's baseline version.
    :param values: the parameters we would pass.
    :param secret_keys: the NoEcho ones among them: compared with the StackSet's :data:`SECRETS_TAG`, since their
        values come back masked; a StackSet without that tag is updated once to record it.
    """
    if stack_set is None:
        return "create"
    if recorded_version(stack_set) != version:
        return "update"
    secrets = {k: str(values[k]) for k in secret_keys if k in values}
    if secrets and not secrets_match(_tag(stack_set, SECRETS_TAG), secrets):
        return "update"
    current = _visible_params(stack_set.get("Parameters") or [])
    wanted = {k: str(v) for k, v in values.items() if k in current and k not in secrets}
    return "update" if wanted != {k: current[k] for k in wanted} else "none"


def ensure_stack_set(
    cf: Any,
    name: str,
    *,
    template_body: str,
    version: str,
    values: Mapping[str, str],
    permission_model: str = "SELF_MANAGED",
    admin_role_arn: str | None = None,
    execution_role_name: str | None = None,
    preferences: Mapping[str, Any] | None = None,
    op_id: str | None = None,
    call_as: str = SELF,
) -> dict[str, Any]:
    """Create the StackSet, or update it when its version or parameters differ (``CreateStackSet``/``UpdateStackSet``);
    a rotated NoEcho parameter (the ExternalId) counts as a difference (:data:`SECRETS_TAG`).

    An update re-deploys every existing instance (one operation); its id is returned so it can be waited for
    before the run's next operation starts (:func:`drive_operations`).

    :param cf: admin-account cloudformation client.
    :param name: StackSet name.
    :param template_body: baseline template text.
    :param version: its baseline version (tag, description and BaselineVersion parameter).
    :param values: template parameters (BaselineVersion is added).
    :param permission_model: SELF_MANAGED or SERVICE_MANAGED.
    :param op_id: OperationId for an update (idempotency across task retries).
    :param call_as: ``SELF`` or ``DELEGATED_ADMIN`` (:func:`call_as_args`), on every call.
    :returns: {"action": "created" | "updated" | "unchanged", "operation_id": str | None, "version": str}.
    """
    values = {**values, "BaselineVersion": version}
    existing = describe_stack_set(cf, name, call_as=call_as)
    secret_keys = noecho_parameters(template_body) & set(values)
    action = stack_set_action(existing, version, values, secret_keys)
    tags = [{"Key": VERSION_TAG, "Value": version}, {"Key": "awsgov:managed-by", "Value": "account_onboarding"}]
    if secret_keys:
        tags.append({"Key": SECRETS_TAG, "Value": secrets_digest({k: str(values[k]) for k in secret_keys})})
    common: dict[str, Any] = {
        "StackSetName": name,
        "TemplateBody": template_body,
        "Description": f"Governance baseline v{version} (managed by the account_onboarding DAG)",
        "Parameters": parameters(values),
        "Capabilities": CAPABILITIES,
        "Tags": tags,
        **call_as_args(call_as),
    }
    if permission_model == "SELF_MANAGED":
        if admin_role_arn:
            common["AdministrationRoleARN"] = admin_role_arn
        if execution_role_name:
            common["ExecutionRoleName"] = execution_role_name
    if action == "create":
        extra = {"AutoDeployment": {"Enabled": False}} if permission_model == "SERVICE_MANAGED" else {}
        cf.create_stack_set(**common, PermissionModel=permission_model, **extra)
        log.info("stackset %s: created at baseline version %s", name, version)
        return {"action": "created", "operation_id": None, "version": version}
    if action == "none":
        log.info("stackset %s: already at baseline version %s, unchanged", name, version)
        return {"action": "unchanged", "operation_id": None, "version": version}
    if existing.get("PermissionModel", "SELF_MANAGED") != permission_model:
        raise ValueError(f"stackset {name} uses {existing.get('PermissionModel')}, not {permission_model}")
    kwargs = {**common, "OperationPreferences": dict(preferences or {})}
    if op_id:
        kwargs["OperationId"] = op_id
    try:
        started = cf.update_stack_set(**kwargs)["OperationId"]
    except ClientError as exc:
        if op_id and error_code(exc) == "OperationIdAlreadyExistsException":
            started = op_id  # a retry of the task: the update is already under way
        else:
            raise
    log.info("stackset %s: updating from %s to %s (operation %s)", name, recorded_version(existing), version,
             started)
    return {"action": "updated", "operation_id": started, "version": version}


def list_stack_instances(cf: Any, name: str, *, call_as: str = SELF) -> list[dict]:
    """``ListStackInstances`` (all pages): one summary per account x region with Status and StatusReason."""
    return list(paginate(cf, "list_stack_instances", "Summaries", StackSetName=name, **call_as_args(call_as)))


def _start(call: Any, op_id: str | None, **kwargs: Any) -> str:
    if op_id:
        kwargs["OperationId"] = op_id
    try:
        return call(**kwargs)["OperationId"]
    except ClientError as exc:
        if op_id and error_code(exc) == "OperationIdAlreadyExistsException":
            return op_id
        raise


def _instances_request(
    name: str, accounts: Sequence[str], regions: Sequence[str], preferences: Mapping[str, Any], ou_ids: Sequence[str],
    overrides: Mapping[str, str] | None = None, call_as: str = SELF,
) -> dict[str, Any]:
    """Arguments shared by Create/UpdateStackInstances: SELF_MANAGED names accounts, SERVICE_MANAGED OUs."""
    kwargs: dict[str, Any] = {"StackSetName": name, "Regions": list(regions),
                              "OperationPreferences": dict(preferences), **call_as_args(call_as)}
    if overrides:
        kwargs["ParameterOverrides"] = parameters(overrides)
    if ou_ids:
        kwargs["DeploymentTargets"] = {"OrganizationalUnitIds": list(ou_ids), "Accounts": list(accounts),
                                       "AccountFilterType": "INTERSECTION"}
    else:
        kwargs["Accounts"] = list(accounts)
    return kwargs


def create_stack_instances(
    cf: Any,
    name: str,
    accounts: Sequence[str],
    regions: Sequence[str],
    preferences: Mapping[str, Any],
    *,
    ou_ids: Sequence[str] = (),
    op_id: str | None = None,
    overrides: Mapping[str, str] | None = None,
    call_as: str = SELF,
) -> str:
    """``CreateStackInstances`` for accounts x regions in ONE operation; returns its OperationId.

    :param accounts: target accounts (SERVICE_MANAGED: intersected with ``ou_ids``).
    :param regions: target regions, in deployment order.
    :param preferences: OperationPreferences (failure tolerance, concurrency, region order).
    :param ou_ids: organizational units for SERVICE_MANAGED StackSets.
    :param op_id: OperationId, so a retried task does not start a second operation.
    :param overrides: template parameter values of these instances only (the onboarding form's options).
    :param call_as: ``SELF`` or ``DELEGATED_ADMIN`` (:func:`call_as_args`).
    """
    kwargs = _instances_request(name, accounts, regions, preferences, ou_ids, overrides, call_as)
    started = _start(cf.create_stack_instances, op_id, **kwargs)
    log.info("stackset %s: create operation %s for %d accounts x %d regions", name, started, len(accounts),
             len(regions))
    return started


def update_stack_instances(
    cf: Any,
    name: str,
    accounts: Sequence[str],
    regions: Sequence[str],
    preferences: Mapping[str, Any],
    *,
    ou_ids: Sequence[str] = (),
    op_id: str | None = None,
    call_as: str = SELF,
) -> str:
    """``UpdateStackInstances`` (re-deploy OUTDATED instances) in ONE operation; returns its OperationId.

    :param accounts: accounts whose instances exist in every one of ``regions``.
    :param regions: regions to update.
    :param call_as: ``SELF`` or ``DELEGATED_ADMIN`` (:func:`call_as_args`).
    """
    kwargs = _instances_request(name, accounts, regions, preferences, ou_ids, call_as=call_as)
    started = _start(cf.update_stack_instances, op_id, **kwargs)
    log.info("stackset %s: update operation %s for %d accounts x %d regions", name, started, len(accounts),
             len(regions))
    return started


def describe_operation(cf: Any, name: str, op_id: str, *, call_as: str = SELF) -> dict:
    """``DescribeStackSetOperation``: Action, Status (QUEUED|RUNNING|SUCCEEDED|FAILED|STOPPING|STOPPED), reason."""
    return cf.describe_stack_set_operation(StackSetName=name, OperationId=op_id,
                                           **call_as_args(call_as))["StackSetOperation"]


def list_operation_results(cf: Any, name: str, op_id: str, *, call_as: str = SELF) -> list[dict]:
    """``ListStackSetOperationResults`` (all pages): Account, Region, Status, StatusReason per instance."""
    return list(paginate(cf, "list_stack_set_operation_results", "Summaries", StackSetName=name,
                         OperationId=op_id, **call_as_args(call_as)))


def operation_waiter(cf: Any) -> botocore.waiter.Waiter:
    """A blocking botocore waiter for one operation (scripts, benchmarks): ``.wait(StackSetName=, OperationId=)``,
    plus ``**call_as_args(call_as)`` from a delegated administrator account."""
    return botocore.waiter.create_waiter_with_client("StackSetOperationComplete", _waiter_model(), cf)


def operation_state(response: Mapping[str, Any]) -> str:
    """Evaluate the waiter model's acceptors on one DescribeStackSetOperation response: success|failure|retry."""
    for acceptor in _waiter_config().acceptors:
        if acceptor.matcher_func(response):
            return acceptor.state
    return "retry"


@dataclass
class OperationsProgress:
    """One poke's view of a set of operations.

    :param done: every operation reached a terminal state.
    :param statuses: operation id -> operation status.
    :param instances: (account, region) -> (result status, reason) across all operations (latest wins).
    """

    done: bool
    statuses: dict[str, str] = field(default_factory=dict)
    instances: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Instance result statuses counted, e.g. {"SUCCEEDED": 5, "RUNNING": 1}."""
        return dict(Counter(status for status, _ in self.instances.values()))

    def failures(self) -> list[tuple[str, str, str, str]]:
        """(account, region, status, reason) of every failed or cancelled instance, sorted."""
        return sorted((a, r, s, why) for (a, r), (s, why) in self.instances.items() if s in FAILED_RESULTS)


def poke_operations(cf: Any, name: str, op_ids: Sequence[str], *, call_as: str = SELF) -> OperationsProgress:
    """Look once at operations (for a sensor or a trigger): statuses, per-instance results, progress logged.

    Raises :class:`StackSetOperationFailed` once all are terminal and any operation failed or any instance
    failed (an operation with failure tolerance can succeed with failed instances); the message lists account,
    region, status and reason of each failed instance.

    :param cf: admin-account cloudformation client.
    :param name: StackSet name.
    :param op_ids: operations started by this run, in start order.
    :param call_as: ``SELF`` or ``DELEGATED_ADMIN`` (:func:`call_as_args`).
    """
    progress = OperationsProgress(done=True)
    failed_ops = []
    for op_id in op_ids:
        response = cf.describe_stack_set_operation(StackSetName=name, OperationId=op_id, **call_as_args(call_as))
        operation = response["StackSetOperation"]
        state = operation_state(response)
        progress.statuses[op_id] = operation["Status"]
        if state == "retry":
            progress.done = False
        elif state == "failure":
            failed_ops.append(f"{op_id} {operation['Status']}: {operation.get('StatusReason') or 'no reason given'}")
        for result in list_operation_results(cf, name, op_id, call_as=call_as):
            key = (result["Account"], result["Region"])
            progress.instances[key] = (result["Status"], result.get("StatusReason") or "")
    by_status: dict[str, list[str]] = defaultdict(list)
    for (account, region), (status, _) in sorted(progress.instances.items()):
        by_status[status].append(f"{account}/{region}")
    log.info("stackset %s: operations %s", name, ", ".join(f"{k}={v}" for k, v in progress.statuses.items()))
    for status, instances in sorted(by_status.items()):
        log.info("stackset %s: %s (%d): %s", name, status, len(instances), " ".join(instances))
    if progress.done and (failed_ops or progress.failures()):
        lines = [f"account {a} region {r}: {s} - {why or 'no reason given'}" for a, r, s, why in progress.failures()]
        message = f"stackset {name}: {len(lines)} stack instance(s) failed: " + "; ".join(lines or failed_ops)
        raise StackSetOperationFailed(message, progress.failures())
    return progress


def operation_exists(cf: Any, name: str, op_id: str, *, call_as: str = SELF) -> bool:
    """Whether an operation with this id was started (``DescribeStackSetOperation``, OperationNotFoundException)."""
    try:
        describe_operation(cf, name, op_id, call_as=call_as)
    except ClientError as exc:
        if error_code(exc) == "OperationNotFoundException":
            return False
        raise
    return True


def start_step(cf: Any, name: str, step: Mapping[str, Any], *, call_as: str = SELF) -> str:
    """Start one planned step: ``create`` or ``update`` of stack instances (a StackSet update starts elsewhere).

    :param step: {"action", "op_id", "accounts", "regions", "preferences", "ou_ids"}.
    :param call_as: ``SELF`` or ``DELEGATED_ADMIN`` (:func:`call_as_args`).
    """
    start = {"create": create_stack_instances, "update": update_stack_instances}[step["action"]]
    extra = {"overrides": step["overrides"]} if step.get("overrides") else {}
    return start(cf, name, step["accounts"], step["regions"], step["preferences"], ou_ids=step.get("ou_ids") or (),
                 op_id=step["op_id"], call_as=call_as, **extra)


def drive_operations(cf: Any, name: str, steps: Sequence[Mapping[str, Any]], *,
                     call_as: str = SELF) -> OperationsProgress:
    """Poke a run's operations in order, starting the next planned one when all before it have succeeded.

    A StackSet runs one operation at a time, so a run's operations (a StackSet update, one create, one update of
    OUTDATED instances) follow one another; each poke moves the queue on. Raises
    :class:`StackSetOperationFailed` as :func:`poke_operations` does; later steps are then never started.

    :param steps: planned steps with deterministic ``op_id`` (see :func:`start_step`), in order.
    :param call_as: ``SELF`` or ``DELEGATED_ADMIN`` (:func:`call_as_args`), on every call.
    """
    started: list[str] = []
    for step in steps:
        if operation_exists(cf, name, step["op_id"], call_as=call_as):
            started.append(step["op_id"])
            continue
        progress = poke_operations(cf, name, started, call_as=call_as)
        if progress.done:
            started.append(start_step(cf, name, step, call_as=call_as))
            progress.statuses[started[-1]] = "QUEUED"
            progress.done = False
        return progress
    return poke_operations(cf, name, started, call_as=call_as)


def describe_stack(cf: Any, name: str) -> dict | None:
    """``DescribeStacks`` for one stack; None when it does not exist."""
    try:
        stacks = cf.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


def stack_outputs(stack: Mapping[str, Any]) -> dict[str, str]:
    """A stack's Outputs as {OutputKey: OutputValue}."""
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def ensure_stack(cf: Any, name: str, *, template_body: str, version: str, values: Mapping[str, str]) -> dict:
    """Create or update a plain stack (``CreateStack``/``UpdateStack``) to ``version`` and wait; returns its outputs.

    Used for the central resources in the admin account, which change rarely: the waiter blocks (bounded).

    :param cf: admin-account cloudformation client.
    :param name: stack name.
    :param template_body: template text.
    :param version: baseline version (tag and BaselineVersion parameter).
    :param values: template parameters.
    """
    values = {**values, "BaselineVersion": version}
    existing = describe_stack(cf, name)
    if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        # A failed first create leaves a stack that can only be deleted.
        cf.delete_stack(StackName=name)
        cf.get_waiter("stack_delete_complete").wait(StackName=name)
        existing = None
    action = stack_set_action(existing, version, values)
    kwargs = {"StackName": name, "TemplateBody": template_body, "Parameters": parameters(values),
              "Capabilities": CAPABILITIES, "Tags": [{"Key": VERSION_TAG, "Value": version}]}
    if action == "create":
        cf.create_stack(**kwargs)
        cf.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 5, "MaxAttempts": 180})
    elif action == "update":
        cf.update_stack(**kwargs)
        cf.get_waiter("stack_update_complete").wait(StackName=name, WaiterConfig={"Delay": 5, "MaxAttempts": 180})
    log.info("stack %s: %s at baseline version %s", name, {"none": "unchanged"}.get(action, action + "d"), version)
    stack = describe_stack(cf, name) or {}
    return {"action": action, "outputs": stack_outputs(stack)}

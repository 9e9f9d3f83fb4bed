"""StackSet operation lifecycle: QUEUED -> RUNNING -> SUCCEEDED / FAILED (or STOPPED) on a timer (rule 17).

moto's StackSet operations are synchronous and always SUCCEEDED. Here every create/update/delete of stack
instances (and update_stack_set) becomes an operation whose instances are processed in batches over a few seconds,
honouring OperationPreferences (MaxConcurrent*, FailureTolerance*, RegionConcurrencyType, RegionOrder). Instances
named in the ``stackset_fail_instances`` fault end FAILED with a reason and stay OUTDATED; the others really deploy
their stack in the target account through moto (plus the resource types moto skips, see supplements.py) and become
CURRENT. A ticker thread advances operations; reads advance them too, so answers are always current.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from . import supplements
from .delegation import STACKSETS_PRINCIPAL
from .exceptions import (
    NotDelegatedAdministrator,
    NotOrganizationAdministrator,
    OperationIdAlreadyExistsException,
    OperationInProgressException,
    OperationNotFoundException,
    StackInstanceNotFoundException,
    StackSetNotEmptyException,
    ValidationError,
)
from .operations import Instance, Operation, Target, plan
from .operations import preferences as checked_preferences

log = logging.getLogger(__name__)
RESOURCES = Path(__file__).resolve().parent / "resources"


class StackSetModel:
    """Stack instances and operations of every stack set, per (admin account, region) of the stack set.

    :param world: the running world.
    """

    def __init__(self, world: Any) -> None:
        self.world = world
        self.timing = json.loads((RESOURCES / "lifecycle.json").read_text(encoding="utf-8"))
        for key in ("queued_seconds", "batch_seconds", "min_running_seconds", "max_running_seconds"):
            self.timing[key] *= world.settings.time_scale
        self.instances: dict[str, dict[tuple[str, str], Instance]] = {}
        self.operations: dict[str, list[Operation]] = {}
        self._plain: dict[str, list[Any]] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # --- ticker -------------------------------------------------------------------------------------------------
    def _ensure_ticker(self) -> None:
        if self._ticker is None or not self._ticker.is_alive():
            self._ticker = threading.Thread(target=self._tick, name="stackset-ticker", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.advance_all()
            except Exception:
                log.exception("advancing StackSet operations failed")

    def stop(self) -> None:
        self._stop.set()

    def advance_all(self) -> None:
        with self._lock:
            for ops in self.operations.values():
                for op in ops:
                    if op.active:
                        self._advance(op)

    # --- lookups ----------------------------------------------------------------------------------------------------
    def stackset(self, account: str, region: str, name: str) -> Any:
        """moto's StackSet (raises moto's StackSetNotFoundException)."""
        from moto.cloudformation.models import cloudformation_backends

        return cloudformation_backends[account][region].describe_stack_set(name)

    def authorized_stackset(self, account: str, region: str, name: str, call_as: str | None) -> Any:
        """:meth:`stackset`, once :meth:`authorize` has accepted the caller and its CallAs (None: SELF)."""
        stackset = self.stackset(account, region, name)
        self.authorize(account, call_as, stackset.permission_model)
        return stackset

    def is_delegated_admin(self, account: str) -> bool:
        """Whether ``account`` is registered as the organization's StackSets delegated administrator."""
        from moto.organizations.models import organizations_backends

        org = organizations_backends[self.world.settings.management_account_id]["aws"]
        return any(a.account.id == account and STACKSETS_PRINCIPAL in a.services for a in org.admins)

    def authorize(self, account: str, call_as: str | None, permission_model: str | None) -> None:
        """Refuse a StackSet call as AWS does (CloudFormation API Reference, every StackSet action's CallAs: "If you
        are signed in to a delegated administrator account, specify DELEGATED_ADMIN. Your AWS account must be
        registered as a delegated admin in the management account"):

        - CallAs=DELEGATED_ADMIN from an account not registered for :data:`STACKSETS_PRINCIPAL` (the management
          account included): :class:`NotDelegatedAdministrator`;
        - a SERVICE_MANAGED StackSet from any account but the management account without CallAs=DELEGATED_ADMIN:
          :class:`NotOrganizationAdministrator`.

        SELF_MANAGED StackSets are the caller's own: any account may run them with CallAs SELF (the default).
        Delegated-admin StackSets are kept in the caller's account here (AWS stores them in the management account;
        the caller sees no difference).

        :param permission_model: the StackSet's (None: a call naming no StackSet, e.g. ListStackSets).
        """
        if (call_as or "SELF") == "DELEGATED_ADMIN":
            if not self.is_delegated_admin(account):
                raise NotDelegatedAdministrator()
            return
        if permission_model == "SERVICE_MANAGED" and account != self.world.settings.management_account_id:
            raise NotOrganizationAdministrator()

    def _active_op(self, stackset: Any) -> Operation | None:
        return next((op for op in self.operations.get(stackset.id, []) if op.active), None)

    def operation(self, stackset: Any, operation_id: str) -> Operation:
        with self._lock:
            for op in self.operations.get(stackset.id, []):
                if op.id == operation_id:
                    self._advance(op)
                    return op
        raise OperationNotFoundException(operation_id)

    # --- targets and plans -------------------------------------------------------------------------------------
    def _resolve_targets(self, stackset: Any, accounts: list[str] | None, regions: list[str],
                         deployment_targets: dict[str, Any] | None) -> list[Target]:
        deployment_targets = deployment_targets or {}
        ous = deployment_targets.get("OrganizationalUnitIds") or []
        listed = list(accounts or deployment_targets.get("Accounts") or [])
        by_account: dict[str, str | None] = {}
        if stackset.permission_model == "SERVICE_MANAGED":
            if not ous:
                raise ValidationError("StackSets with SERVICE_MANAGED permission model can only have "
                                      "OrganizationalUnit as target")
            in_ous = self._accounts_in_ous(ous)
            mode = deployment_targets.get("AccountFilterType") or "NONE"
            if mode == "INTERSECTION":
                in_ous = {a: o for a, o in in_ous.items() if a in listed}
            elif mode == "DIFFERENCE":
                in_ous = {a: o for a, o in in_ous.items() if a not in listed}
            elif mode == "UNION":
                in_ous = {**in_ous, **{a: None for a in listed if a not in in_ous}}
            by_account = in_ous
        else:
            if ous:
                raise ValidationError("StackSets with SELF_MANAGED permission model can only have accounts as target")
            by_account = {a: None for a in listed}
        if not by_account or not regions:
            raise ValidationError("Accounts (or DeploymentTargets) and Regions must not be empty")
        return [Target(a, r, ou) for r in regions for a, ou in by_account.items()]

    def _accounts_in_ous(self, ou_ids: list[str]) -> dict[str, str]:
        from moto.organizations.models import organizations_backends

        org = organizations_backends[self.world.settings.management_account_id]["aws"]
        wanted = set(ou_ids)
        changed = True
        while changed:  # include child OUs
            changed = False
            for ou in org.ou:
                if ou.parent_id in wanted and ou.id not in wanted:
                    wanted.add(ou.id)
                    changed = True
        mgmt = self.world.settings.management_account_id
        return {a.id: a.parent_id for a in org.accounts if a.parent_id in wanted and a.id != mgmt}

    # --- starting operations ---------------------------------------------------------------------------------------
    def start(self, account: str, region: str, stackset: Any, action: str, targets: list[Target],
              preferences: dict[str, Any] | None, operation_id: str | None, retain_stacks: bool = False,
              deployment_targets: dict[str, Any] | None = None) -> Operation:
        """Create an operation (QUEUED now); raises OperationInProgressException while another one runs."""
        prefs = checked_preferences(preferences)
        with self._lock:
            active = self._active_op(stackset)
            if active is not None:
                self._advance(active)
                if active.active:
                    raise OperationInProgressException(stackset.arn)
            operation_id = operation_id or str(uuid.uuid4())
            if any(op.id == operation_id for ops in self.operations.values() for op in ops):
                raise OperationIdAlreadyExistsException(operation_id)
            batches, tolerance = plan(targets, prefs)
            running = min(max(len(batches) * self.timing["batch_seconds"], self.timing["min_running_seconds"]),
                          self.timing["max_running_seconds"])
            planned = {}
            for t in targets:
                reason = self.world.faults.stackset_failure(t.account, t.region)
                if reason:
                    planned[t.key] = reason
            op = Operation(
                id=operation_id, action=action, stackset=stackset, admin_account=account, admin_region=region,
                targets=targets, batches=batches, batch_seconds=running / max(1, len(batches)),
                queued_seconds=self.timing["queued_seconds"], preferences=prefs, tolerance=tolerance,
                failures_planned=planned, retain_stacks=retain_stacks, deployment_targets=deployment_targets,
            )
            op.results = {t.key: {"Account": t.account, "Region": t.region, "Status": "PENDING"} for t in targets}
            for t in targets:
                if t.ou_id:
                    op.results[t.key]["OrganizationalUnitId"] = t.ou_id
            instances = self.instances.setdefault(stackset.id, {})
            for t in targets:
                inst = instances.get(t.key)
                if inst is None and action == "CREATE":
                    inst = instances[t.key] = Instance(stackset.id, stackset.name, t.account, t.region, t.ou_id)
                if inst is not None and action != "CREATE":
                    inst.status = "OUTDATED" if action == "UPDATE" else inst.status
                    inst.detailed = "PENDING"
                if inst is not None:
                    inst.last_operation_id = operation_id
            self.operations.setdefault(stackset.id, []).append(op)
        self._ensure_ticker()
        return op

    def create_instances(self, account: str, region: str, name: str, accounts: list[str] | None,
                         regions: list[str], overrides: list[dict[str, Any]] | None,
                         deployment_targets: dict[str, Any] | None, preferences: dict[str, Any] | None,
                         operation_id: str | None) -> Operation:
        stackset = self.stackset(account, region, name)
        targets = self._resolve_targets(stackset, accounts, regions, deployment_targets)
        with self._lock:
            op = self.start(account, region, stackset, "CREATE", targets, preferences, operation_id,
                            deployment_targets=deployment_targets)
            if overrides:
                for t in targets:
                    self.instances[stackset.id][t.key].overrides = list(overrides)
        return op

    def update_instances(self, account: str, region: str, name: str, accounts: list[str] | None,
                         regions: list[str], overrides: list[dict[str, Any]] | None,
                         deployment_targets: dict[str, Any] | None, preferences: dict[str, Any] | None,
                         operation_id: str | None) -> Operation:
        stackset = self.stackset(account, region, name)
        targets = self._resolve_targets(stackset, accounts, regions, deployment_targets)
        with self._lock:
            existing = self.instances.get(stackset.id, {})
            for t in targets:
                if t.key not in existing:
                    raise StackInstanceNotFoundException(name, t.account, t.region)
            op = self.start(account, region, stackset, "UPDATE", targets, preferences, operation_id,
                            deployment_targets=deployment_targets)
            if overrides is not None:
                for t in targets:
                    existing[t.key].overrides = list(overrides)
        return op

    def delete_instances(self, account: str, region: str, name: str, accounts: list[str] | None,
                         regions: list[str], deployment_targets: dict[str, Any] | None,
                         preferences: dict[str, Any] | None, retain_stacks: bool,
                         operation_id: str | None) -> Operation:
        stackset = self.stackset(account, region, name)
        targets = self._resolve_targets(stackset, accounts, regions, deployment_targets)
        with self._lock:
            existing = self.instances.get(stackset.id, {})
            targets = [t for t in targets if t.key in existing]
            if not targets:
                raise ValidationError("No stack instances match the accounts and regions given")
            return self.start(account, region, stackset, "DELETE", targets, preferences, operation_id,
                              retain_stacks=retain_stacks, deployment_targets=deployment_targets)

    def update_stackset(self, account: str, region: str, name: str, changes: dict[str, Any],
                        accounts: list[str] | None, regions: list[str] | None,
                        deployment_targets: dict[str, Any] | None, preferences: dict[str, Any] | None,
                        operation_id: str | None) -> Operation:
        stackset = self.stackset(account, region, name)
        with self._lock:
            active = self._active_op(stackset)
            if active is not None:
                self._advance(active)
                if active.active:
                    raise OperationInProgressException(stackset.arn)
            existing = self.instances.get(stackset.id, {})
            if accounts or deployment_targets:
                targets = self._resolve_targets(stackset, accounts, regions or [], deployment_targets)
                for t in targets:
                    if t.key not in existing:
                        raise StackInstanceNotFoundException(name, t.account, t.region)
            else:
                targets = [Target(i.account, i.region, i.ou_id) for i in existing.values()]
            if changes.get("template"):
                stackset.template = changes["template"]
            if changes.get("parameters") is not None:
                previous = dict(stackset.parameters or {})
                params = {}
                for p in changes["parameters"]:
                    if p.get("UsePreviousValue"):
                        params[p["ParameterKey"]] = previous.get(p["ParameterKey"])
                    else:
                        params[p["ParameterKey"]] = p.get("ParameterValue")
                stackset.parameters = params
            if changes.get("description") is not None:
                stackset.description = changes["description"]
            if changes.get("tags"):
                stackset.tags = changes["tags"]
            if changes.get("admin_role"):
                stackset.administration_role_arn = changes["admin_role"]
            if changes.get("execution_role"):
                stackset.execution_role_name = changes["execution_role"]
            if not targets:
                # Nothing deployed: the update is recorded and succeeds at once.
                op = self.start(account, region, stackset, "UPDATE", [], preferences, operation_id)
                return op
            return self.start(account, region, stackset, "UPDATE", targets, preferences, operation_id,
                              deployment_targets=deployment_targets)

    def stop_operation(self, account: str, region: str, name: str, operation_id: str) -> None:
        stackset = self.stackset(account, region, name)
        op = self.operation(stackset, operation_id)
        with self._lock:
            if op.active:
                op.stop_requested = True
                op.status = "STOPPING"

    def delete_stackset_allowed(self, account: str, region: str, name: str) -> None:
        """Raise if the stack set still has instances or a running operation (AWS refuses to delete it)."""
        stackset = self.stackset(account, region, name)
        with self._lock:
            active = self._active_op(stackset)
            if active is not None:
                self._advance(active)
                if active.active:
                    raise OperationInProgressException(stackset.arn)
            if self.instances.get(stackset.id):
                raise StackSetNotEmptyException(name)

    # --- advancing ----------------------------------------------------------------------------------------------------
    def _advance(self, op: Operation, now: float | None = None) -> None:
        if not op.active and op.status != "STOPPING":
            return
        now = time.monotonic() if now is None else now
        elapsed = now - op.started
        if elapsed < op.queued_seconds and not op.stop_requested:
            return
        if op.status == "QUEUED":
            op.status = "RUNNING"
        due = len(op.batches) if op.stop_requested else int((elapsed - op.queued_seconds) / op.batch_seconds)
        while op.done_batches < min(due, len(op.batches)):
            batch = op.batches[op.done_batches]
            op.done_batches += 1
            if op.stop_requested or op.halted:
                self._cancel(op, batch, "Cancelled since the operation was stopped" if op.stop_requested else None)
                continue
            runnable = [t for t in batch if t.region not in op.halted_regions]
            self._cancel(op, [t for t in batch if t.region in op.halted_regions])
            for target in runnable:
                self._execute(op, target)
            for region in {t.region for t in runnable}:
                if op.failed_by_region.get(region, 0) > op.tolerance.get(region, 0):
                    op.halted_regions.add(region)
                    if op.preferences.get("RegionConcurrencyType") != "PARALLEL":
                        op.halted = True
        if op.done_batches < len(op.batches):
            for t in op.batches[op.done_batches]:
                if op.results[t.key]["Status"] == "PENDING":
                    op.results[t.key]["Status"] = "RUNNING"
                    inst = self.instances.get(op.stackset.id, {}).get(t.key)
                    if inst is not None:
                        inst.detailed = "RUNNING"
            return
        exceeded = any(op.failed_by_region.get(r, 0) > tol for r, tol in op.tolerance.items())
        if op.stop_requested:
            op.status = "STOPPED"
        elif exceeded:
            op.status = "FAILED"
            op.status_reason = "The Operation failed: failure tolerance exceeded"
        else:
            op.status = "SUCCEEDED"
        op.ended_at = op.created_at + dt.timedelta(seconds=now - op.started)

    def _cancel(self, op: Operation, targets: list[Target], reason: str | None = None) -> None:
        for t in targets:
            op.results[t.key].update(Status="CANCELLED", StatusReason=reason or self.timing["cancelled_reason"])
            inst = self.instances.get(op.stackset.id, {}).get(t.key)
            if inst is not None:
                inst.detailed = "CANCELLED"
                inst.status = "OUTDATED"
                inst.reason = reason or self.timing["cancelled_reason"]

    def _fail(self, op: Operation, target: Target, reason: str, inst: Instance | None) -> None:
        op.results[target.key].update(Status="FAILED", StatusReason=reason)
        op.failed_by_region[target.region] = op.failed_by_region.get(target.region, 0) + 1
        if inst is not None:
            inst.status, inst.detailed, inst.reason = "OUTDATED", "FAILED", reason

    def _execute(self, op: Operation, target: Target) -> None:
        instances = self.instances.setdefault(op.stackset.id, {})
        inst = instances.get(target.key)
        gate = self.timing["account_gate_reason"].format(region=target.region, account=target.account)
        op.results[target.key]["AccountGateResult"] = {"Status": "SKIPPED", "StatusReason": gate}
        planned = op.failures_planned.get(target.key)
        if planned:
            self._fail(op, target, planned, inst)
            return
        status = self.world.account_status(target.account)
        if status == "SUSPENDED":
            reason = self.timing["suspended_reason"].format(account=target.account)
            if op.stackset.permission_model == "SERVICE_MANAGED":
                op.results[target.key].update(Status="SUCCEEDED", StatusReason=reason)
                if inst is not None:
                    inst.status, inst.detailed, inst.reason = "OUTDATED", "SKIPPED_SUSPENDED_ACCOUNT", reason
                return
            self._fail(op, target, reason, inst)
            return
        if op.stackset.permission_model != "SERVICE_MANAGED" and not self.world.has_role(
                target.account, op.stackset.execution_role_name):
            role_name = op.stackset.administration_role_arn.rsplit("/", 1)[-1]
            reason = (f"Account {target.account} should have '{op.stackset.execution_role_name}' role with trust "
                      f"relationship to Role '{role_name}'.")
            self._fail(op, target, reason, inst)
            return
        try:
            if op.action == "DELETE":
                self._delete_stack(op, inst)
                instances.pop(target.key, None)
            elif op.action == "CREATE" and inst is not None and inst.status == "CURRENT" and inst.stack_id:
                pass  # already deployed: AWS treats re-creating an existing instance as a no-op
            else:
                self._deploy(op, inst)
        except Exception as exc:  # moto refusing the template is a real deployment failure
            log.info("stack instance %s/%s failed: %s", target.account, target.region, exc)
            self._fail(op, target, f"ResourceLogicalId:{type(exc).__name__}, ResourceStatusReason:{exc}", inst)
            return
        op.results[target.key]["Status"] = "SUCCEEDED"
        if inst is not None and op.action != "DELETE":
            inst.status, inst.detailed, inst.reason = "CURRENT", "SUCCEEDED", None

    def _parameters(self, op: Operation, inst: Instance) -> dict[str, Any]:
        params = dict(op.stackset.parameters or {})
        for p in inst.overrides or []:
            if not p.get("UsePreviousValue"):
                params[p["ParameterKey"]] = p.get("ParameterValue")
        return params

    def _deploy(self, op: Operation, inst: Instance) -> None:
        from moto.cloudformation.models import cloudformation_backends

        backend = cloudformation_backends[inst.account][inst.region]
        params = self._parameters(op, inst)
        supplements.undo(inst.created)
        inst.created = []
        if inst.stack_id and inst.stack_id in backend.stacks:
            stack = backend.stacks[inst.stack_id]
            stack.update(op.stackset.template, parameters=params)
        else:
            name = f"StackSet-{op.stackset.name}-{uuid.uuid4()}"
            try:
                stack = backend.create_stack(name=name, template=op.stackset.template, parameters=params)
            except Exception:
                for stack_id, stack in list(backend.stacks.items()):
                    if stack.name == name:
                        backend.stacks.pop(stack_id, None)
                raise
            inst.stack_id, inst.stack_name = stack.stack_id, name
        inst.created = supplements.apply(stack)

    def _delete_stack(self, op: Operation, inst: Instance | None) -> None:
        from moto.cloudformation.models import cloudformation_backends

        if inst is None or op.retain_stacks:
            return
        supplements.undo(inst.created)
        if inst.stack_id:
            backend = cloudformation_backends[inst.account][inst.region]
            if inst.stack_id in backend.stacks:
                backend.delete_stack(inst.stack_id)

    # --- plain stacks -------------------------------------------------------------------------------------------------
    def after_stack_change(self, account: str, region: str, name_or_id: str, deleted: bool = False) -> None:
        """Create (or, on delete, remove) what moto skipped in a plain stack (CreateStack / UpdateStack)."""
        from moto.cloudformation.models import cloudformation_backends

        backend = cloudformation_backends[account][region]
        with self._lock:
            stack = backend.stacks.get(name_or_id) or next(
                (s for s in backend.stacks.values() if s.name == name_or_id), None)
            if stack is None:
                return
            supplements.undo(self._plain.pop(stack.stack_id, []))
            if not deleted:
                self._plain[stack.stack_id] = supplements.apply(stack)

    # --- reads ------------------------------------------------------------------------------------------------------
    def list_instances(self, stackset: Any) -> list[Instance]:
        with self._lock:
            for op in self.operations.get(stackset.id, []):
                self._advance(op)
            return sorted(self.instances.get(stackset.id, {}).values(), key=lambda i: (i.region, i.account))

    def list_operations(self, stackset: Any) -> list[Operation]:
        with self._lock:
            ops = self.operations.get(stackset.id, [])
            for op in ops:
                self._advance(op)
            return sorted(ops, key=lambda o: o.created_at, reverse=True)

    def truth(self) -> dict[str, Any]:
        """Every stack set's instances and operations, as the API would describe them."""
        with self._lock:
            out = {}
            for stackset_id, ops in self.operations.items():
                for op in ops:
                    self._advance(op)
                out[stackset_id] = {
                    "name": ops[0].stackset.name if ops else None,
                    "instances": [i.describe() for i in self.instances.get(stackset_id, {}).values()],
                    "operations": [
                        {**o.summary(), "Results": list(o.results.values())} for o in ops
                    ],
                }
            return out

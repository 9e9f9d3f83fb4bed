"""StackSet instances, targets and operations (data), and how an operation is planned from its
OperationPreferences: batches of MaxConcurrent instances per region (at most failure tolerance + 1 unless
ConcurrencyMode is SOFT_FAILURE_TOLERANCE), regions one after another unless RegionConcurrencyType is PARALLEL, and a
failure tolerance per region."""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import Any

from .exceptions import ValidationError

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass
class Instance:
    """A stack instance: one (account, region) of a stack set."""

    stackset_id: str
    stackset_name: str
    account: str
    region: str
    ou_id: str | None = None
    status: str = "OUTDATED"
    detailed: str = "PENDING"
    reason: str | None = None
    overrides: list[dict[str, Any]] = field(default_factory=list)
    stack_id: str | None = None
    stack_name: str | None = None
    last_operation_id: str | None = None
    created: list[Any] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "StackSetId": self.stackset_id,
            "Region": self.region,
            "Account": self.account,
            "Status": self.status,
            "StackInstanceStatus": {"DetailedStatus": self.detailed},
            "DriftStatus": "NOT_CHECKED",
        }
        if self.stack_id:
            out["StackId"] = self.stack_id
        if self.reason:
            out["StatusReason"] = self.reason
        if self.ou_id:
            out["OrganizationalUnitId"] = self.ou_id
        if self.last_operation_id:
            out["LastOperationId"] = self.last_operation_id
        return out

    def describe(self) -> dict[str, Any]:
        return {**self.summary(), "ParameterOverrides": self.overrides}


@dataclass
class Target:
    account: str
    region: str
    ou_id: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.account, self.region)


@dataclass
class Operation:
    """One StackSet operation and its timeline."""

    id: str
    action: str
    stackset: Any
    admin_account: str
    admin_region: str
    targets: list[Target]
    batches: list[list[Target]]
    batch_seconds: float
    queued_seconds: float
    preferences: dict[str, Any]
    tolerance: dict[str, int]
    failures_planned: dict[tuple[str, str], str]
    retain_stacks: bool = False
    deployment_targets: dict[str, Any] | None = None
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    started: float = field(default_factory=time.monotonic)
    status: str = "QUEUED"
    ended_at: dt.datetime | None = None
    done_batches: int = 0
    results: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    failed_by_region: dict[str, int] = field(default_factory=dict)
    halted_regions: set[str] = field(default_factory=set)
    halted: bool = False
    stop_requested: bool = False
    status_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.status not in TERMINAL

    def _stats(self) -> dict[str, Any]:
        failed = sum(r["Status"] == "FAILED" for r in self.results.values())
        return {
            "TotalStackInstancesCount": len(self.targets),
            "FailedStackInstancesCount": failed,
            "TotalAccountsCount": len({t.account for t in self.targets}),
        }

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "OperationId": self.id,
            "Action": self.action,
            "Status": self.status,
            "CreationTimestamp": self.created_at,
            "OperationPreferences": self.preferences,
            "StatusDetails": self._stats(),
        }
        if self.ended_at:
            out["EndTimestamp"] = self.ended_at
        if self.status_reason:
            out["StatusReason"] = self.status_reason
        return out

    def describe(self) -> dict[str, Any]:
        out = {
            **self.summary(),
            "StackSetId": self.stackset.id,
            "RetainStacks": self.retain_stacks,
            "AdministrationRoleARN": self.stackset.administration_role_arn,
            "ExecutionRoleName": self.stackset.execution_role_name,
        }
        if self.deployment_targets:
            out["DeploymentTargets"] = self.deployment_targets
        return out


def preferences(prefs: dict[str, Any] | None) -> dict[str, Any]:
    prefs = dict(prefs or {})
    for key in ("FailureToleranceCount", "FailureTolerancePercentage", "MaxConcurrentCount",
                "MaxConcurrentPercentage"):
        if key in prefs and prefs[key] is not None:
            prefs[key] = int(prefs[key])
    if "FailureToleranceCount" in prefs and "FailureTolerancePercentage" in prefs:
        raise ValidationError("You can specify either FailureToleranceCount or FailureTolerancePercentage, "
                              "but not both")
    if "MaxConcurrentCount" in prefs and "MaxConcurrentPercentage" in prefs:
        raise ValidationError("You can specify either MaxConcurrentCount or MaxConcurrentPercentage, but not both")
    return prefs

def plan(targets: list[Target], prefs: dict[str, Any]) -> tuple[list[list[Target]], dict[str, int]]:
    order = [r for r in prefs.get("RegionOrder") or [] if any(t.region == r for t in targets)]
    order += [t.region for t in targets if t.region not in order]
    order = list(dict.fromkeys(order))
    per_region = {r: [t for t in targets if t.region == r] for r in order}
    tolerance, chunks = {}, {}
    for region, items in per_region.items():
        n = len(items)
        if "FailureToleranceCount" in prefs:
            tolerance[region] = prefs["FailureToleranceCount"]
        else:
            tolerance[region] = math.floor(prefs.get("FailureTolerancePercentage", 0) * n / 100)
        if "MaxConcurrentCount" in prefs:
            size = prefs["MaxConcurrentCount"]
        elif "MaxConcurrentPercentage" in prefs:
            size = math.floor(prefs["MaxConcurrentPercentage"] * n / 100)
        else:
            size = 1
        size = max(1, size)
        # ConcurrencyMode STRICT_FAILURE_TOLERANCE, AWS's default (CloudFormation API Reference,
        # StackSetOperationPreferences): "The initial actual concurrency is set to the lower of either the value of
        # the MaxConcurrentCount, or the value of FailureToleranceCount +1" (percentages alike). The further lowering
        # after failures is not modelled: a region stops at its first failure beyond tolerance anyway.
        if prefs.get("ConcurrencyMode") != "SOFT_FAILURE_TOLERANCE":
            size = min(size, tolerance[region] + 1)
        chunks[region] = [items[i:i + size] for i in range(0, n, size)]
    batches: list[list[Target]] = []
    if prefs.get("RegionConcurrencyType") == "PARALLEL" and chunks:
        for k in range(max(len(c) for c in chunks.values())):
            batches.append([t for r in order for t in (chunks[r][k] if k < len(chunks[r]) else [])])
    else:
        for region in order:
            batches.extend(chunks[region])
    return batches, tolerance

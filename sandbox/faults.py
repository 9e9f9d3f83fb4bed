"""Fault injection: latency, throttling, denied AssumeRole, accounts without a support plan, failing StackSet
instances. Set per run over ``POST /_sandbox/faults`` (JSON) or ``Sandbox.set_faults``; ``DELETE`` clears.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_STACKSET_FAILURE_REASON = (
    "Account {account} should have 'AWSCloudFormationStackSetExecutionRole' role with trust relationship to Role "
    "'AWSCloudFormationStackSetAdministrationRole'."
)


class FaultsError(ValueError):
    """A fault specification that cannot be applied; the message names the field."""


@dataclass
class Faults:
    """The faults in force. Every field's default means "no fault".

    :param latency_ms: milliseconds added to every AWS call (control endpoints excluded).
    :param throttle_rate: fraction (0..1) of AWS calls answered with the protocol's throttling error.
    :param throttle_services: limit throttling to these botocore service names (empty: all services).
    :param deny_assume_accounts: AssumeRole into these accounts is refused with AccessDenied.
    :param no_support_accounts: Support API calls from these accounts get SubscriptionRequiredException (Trusted
        Advisor API calls AccessDeniedException), and they are absent from Trusted Advisor's organization view.
    :param no_ta_organization_view: the organization has no Trusted Advisor organizational view (trusted access off,
        no Enterprise Support): the Trusted Advisor API's organization operations answer AccessDeniedException.
    :param stackset_fail_instances: StackSet instances that fail: account ids, or [account, region] pairs.
    :param stackset_failure_reason: StatusReason of failing instances ({account} and {region} are filled in).
    :param seed: seed of the throttling dice, for reproducible runs.
    """

    latency_ms: float = 0.0
    throttle_rate: float = 0.0
    throttle_services: list[str] = field(default_factory=list)
    deny_assume_accounts: list[str] = field(default_factory=list)
    no_support_accounts: list[str] = field(default_factory=list)
    no_ta_organization_view: bool = False
    stackset_fail_instances: list[Any] = field(default_factory=list)
    stackset_failure_reason: str = DEFAULT_STACKSET_FAILURE_REASON
    seed: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        """Build and validate from a JSON object; unknown keys are refused.

        :param data: e.g. ``{"throttle_rate": 0.3, "latency_ms": 20}``.
        """
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultsError(f"unknown fault fields: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        faults = cls(**data)
        faults.validate()
        return faults

    def validate(self) -> None:
        """Check ranges and shapes; raise FaultsError naming the bad field."""
        try:
            self.latency_ms = float(self.latency_ms)
            self.throttle_rate = float(self.throttle_rate)
        except (TypeError, ValueError) as exc:
            raise FaultsError(f"latency_ms and throttle_rate must be numbers: {exc}") from None
        if self.latency_ms < 0:
            raise FaultsError("latency_ms must be >= 0")
        if not isinstance(self.no_ta_organization_view, bool):
            raise FaultsError("no_ta_organization_view must be true or false")
        if not 0.0 <= self.throttle_rate <= 1.0:
            raise FaultsError("throttle_rate must be between 0 and 1")
        for name in ("throttle_services", "deny_assume_accounts", "no_support_accounts", "stackset_fail_instances"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list):
                raise FaultsError(f"{name} must be a list")
            setattr(self, name, [v if isinstance(v, list) else str(v) for v in value])
        for item in self.stackset_fail_instances:
            if isinstance(item, list) and (len(item) != 2 or not all(isinstance(x, str) for x in item)):
                raise FaultsError("stackset_fail_instances items are account ids or [account, region] pairs")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultState:
    """The current faults plus the throttling dice, shared by all request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults = Faults()
        self._rng = random.Random()

    @property
    def current(self) -> Faults:
        return self._faults

    def set(self, data: dict[str, Any], *, merge: bool = False) -> Faults:
        """Replace (or, with merge, update) the faults from a JSON object.

        :param data: fault fields.
        :param merge: keep fields not named in ``data``.
        """
        base = self._faults.to_dict() if merge else {}
        faults = Faults.from_dict({**base, **data})
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)
        return faults

    def clear(self) -> Faults:
        with self._lock:
            self._faults = Faults()
        return self._faults

    def should_throttle(self, service: str) -> bool:
        """Roll the dice for one AWS call of ``service``."""
        faults = self._faults
        if faults.throttle_rate <= 0:
            return False
        if faults.throttle_services and service not in faults.throttle_services:
            return False
        with self._lock:
            return self._rng.random() < faults.throttle_rate

    def assume_denied(self, account_id: str) -> bool:
        return account_id in self._faults.deny_assume_accounts

    def support_denied(self, account_id: str) -> bool:
        return account_id in self._faults.no_support_accounts

    def stackset_failure(self, account_id: str, region: str) -> str | None:
        """The failure reason if the instance (account, region) must fail, else None."""
        for item in self._faults.stackset_fail_instances:
            if item == account_id or (isinstance(item, list) and item == [account_id, region]):
                return self._faults.stackset_failure_reason.format(account=account_id, region=region)
        return None

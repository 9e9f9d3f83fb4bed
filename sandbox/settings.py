"""Sandbox settings: the shape of the seeded organization and the names of its central resources."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from . import det

MANAGEMENT_ACCOUNT_ID = "123456789012"  # moto's default account: plain `testing` keys land here
DEFAULT_REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
HOME_REGION = "us-east-1"
# Beyond this many accounts, metrics are seeded for the first METRICS_ACCOUNTS_CAP accounts unless told otherwise.
METRICS_ACCOUNTS_CAP = 50
PROFILES = ("default", "realistic")


@dataclass
class SandboxSettings:
    """Everything that determines the seeded world; two sandboxes with equal settings answer alike.

    :param accounts: number of member accounts (the management account comes on top).
    :param seed: seed of every generated value (names, ids, findings, metrics).
    :param regions: regions with Config data (and the region list written to sandbox.json).
    :param read_role_name: the cross-account read role assumed by the product.
    :param external_id: ExternalId required by the read role's trust policy (derived from the seed if empty).
    :param new_accounts: how many of the last accounts lack the read role (to be onboarded).
    :param suspended_accounts: how many accounts are SUSPENDED.
    :param seed_metrics_accounts: metrics for the first N member accounts (None: all up to 50, else 50).
    :param date: the sandbox's fixed "today" (None: the real UTC date).
    :param time_scale: multiplies every timed state transition (Trusted Advisor refresh, StackSet operations);
        below 1 for fast tests.
    :param inventory_sync_prefix: S3 prefix of the SSM resource data sync in the central bucket (delivery.py).
    :param profile: ``default`` (small, for tests) or ``realistic`` (resources/realistic.json: 100-300 Config rules
        per account and region, Trusted Advisor results of several ages, aggregator sources in every state, a
        delegated GuardDuty/Macie administrator with members in every relationship state).
    :param quota_scale: multiplies every modelled request-rate quota (sandbox/quotas.py, docs/quotas.md); 1 is
        AWS's rates, 0 switches the quota model off.
    """

    accounts: int = 12
    seed: int = 7
    regions: list[str] = field(default_factory=lambda: list(DEFAULT_REGIONS))
    read_role_name: str = "GovernanceReadRole"
    external_id: str = ""
    new_accounts: int = 2
    suspended_accounts: int = 1
    seed_metrics_accounts: int | None = None
    date: str | None = None
    time_scale: float = 1.0
    quota_scale: float = 1.0
    profile: str = "default"
    management_account_id: str = MANAGEMENT_ACCOUNT_ID
    central_bucket: str = "governance-logs-{management_account_id}"
    central_event_bus: str = "governance-central"
    inventory_sync_prefix: str = "inventory"
    config_aggregator: str = "governance-org-aggregator"
    ses_sender: str = "governance@example.com"
    ses_domain: str = "example.com"
    stackset_admin_role: str = "AWSCloudFormationStackSetAdministrationRole"
    stackset_execution_role: str = "AWSCloudFormationStackSetExecutionRole"

    def __post_init__(self) -> None:
        if self.accounts < 1:
            raise ValueError("accounts must be >= 1")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        if self.quota_scale < 0:
            raise ValueError("quota_scale must be >= 0")
        if not self.external_id:
            self.external_id = f"sandbox-{det.hexid(16, self.seed, 'external-id')}"
        self.central_bucket = self.central_bucket.format(management_account_id=self.management_account_id)
        if HOME_REGION not in self.regions:
            self.regions = [HOME_REGION, *self.regions]

    @property
    def metrics_accounts(self) -> int:
        """How many member accounts (from the first) get CloudWatch metrics."""
        if self.seed_metrics_accounts is not None:
            return max(0, min(self.seed_metrics_accounts, self.accounts))
        return min(self.accounts, METRICS_ACCOUNTS_CAP)

    @property
    def fixed_date(self) -> dt.date | None:
        return dt.date.fromisoformat(self.date) if self.date else None

    @property
    def realistic(self) -> bool:
        return self.profile == "realistic"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxSettings:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

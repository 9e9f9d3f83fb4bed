"""The world: settings, seeded organization, clock, faults, call counter and the extension's service models.

One world per server process, built (and seeded into moto) before the server accepts requests.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from typing import Any

from . import core
from .calls import CallCounter
from .clock import Clock
from .faults import FaultState
from .quotas import QuotaModel
from .seed import OrgPlan, seed
from .settings import HOME_REGION, SandboxSettings

log = logging.getLogger(__name__)


class World:
    """Everything the server answers from, beyond moto's own backends.

    :param settings: sandbox settings.
    """

    def __init__(self, settings: SandboxSettings) -> None:
        from .cloudformation.models import StackSetModel
        from .cloudwatch.models import MetricsModel
        from .config.models import ComplianceModel
        from .support.models import TrustedAdvisorModel

        self.settings = settings
        self._statuses: tuple[float, dict[str, str]] | None = None
        self._active: list[str] = []
        self.clock = Clock(settings.fixed_date)
        self.faults = FaultState()
        self.calls = CallCounter()
        self.quotas = QuotaModel(settings.quota_scale)
        from .delivery import Deliveries

        self.deliveries = Deliveries(self)  # Config snapshots, SSM data sync, CloudTrail files: a day at a time
        self.started_at = dt.datetime.now(dt.UTC)
        self.timings: dict[str, float] = {}
        t0 = time.perf_counter()
        self.plan: OrgPlan = seed(settings)
        self.timings["seed_organization_s"] = round(time.perf_counter() - t0, 3)
        self.trusted_advisor = TrustedAdvisorModel(self)
        from .trustedadvisor.models import OrganizationView

        self.trusted_advisor_org = OrganizationView(self)  # the Trusted Advisor API's organization view of it
        self.compliance = ComplianceModel(self)
        t1 = time.perf_counter()
        self.compliance.seed_rules()
        self.timings["seed_config_rules_s"] = round(time.perf_counter() - t1, 3)
        self.metrics = MetricsModel(self)
        self.stacksets = StackSetModel(self)
        from .cloudtrail.models import ChangeModel
        from .ssm.models import InventoryModel

        self.inventory = InventoryModel(self)  # SSM inventory (also the aggregator's advanced query)
        self.changes = ChangeModel(self)  # Config resource history + CloudTrail events of the changes
        from .guardduty.models import GuardDutyModel
        from .macie2.models import MacieModel

        self.guardduty = GuardDutyModel(self)  # detectors seeded in moto, findings per day
        self.macie = MacieModel(self)  # Macie sessions seeded in moto, findings per day
        t2 = time.perf_counter()
        self.guardduty.seed()
        self.macie.seed()
        self.timings["seed_threat_detection_s"] = round(time.perf_counter() - t2, 3)
        self.endpoint = ""

    # --- live views of moto state -------------------------------------------------------------------------------
    def account_statuses(self) -> dict[str, str]:
        """{account id: Organizations status} of every account in the organization (cached for a second)."""
        from moto.organizations.models import organizations_backends

        now = time.monotonic()
        cached = self._statuses
        if cached is not None and now - cached[0] < 1.0:
            return cached[1]
        org = organizations_backends[self.settings.management_account_id]["aws"]
        statuses = {account.id: account.status for account in org.accounts}
        self._active = [a.id for a in self.plan.accounts if statuses.get(a.id) == "ACTIVE"]
        self._statuses = (now, statuses)
        return statuses

    def account_status(self, account_id: str) -> str | None:
        """Organizations status of an account (ACTIVE, SUSPENDED), None if not in the organization."""
        return self.account_statuses().get(account_id)

    def has_role(self, account_id: str, role_name: str | None = None) -> bool:
        """Whether IAM role ``role_name`` (default: the read role) exists in the account."""
        from moto.iam.models import iam_backends

        name = role_name or self.settings.read_role_name
        if account_id not in iam_backends:
            return False
        return any(r.name == name for r in iam_backends[account_id]["global"].roles.values())

    def member_ids(self) -> list[str]:
        return [a.id for a in self.plan.accounts]

    def active_member_ids(self) -> list[str]:
        """Member accounts ACTIVE in Organizations (same one-second cache as the statuses; do not modify)."""
        self.account_statuses()
        return self._active

    # --- sandbox.json ---------------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The content of ``sandbox.json``: everything a client needs to talk to this sandbox."""
        s = self.settings
        accounts = []
        for a in self.plan.accounts:
            accounts.append(
                {
                    "id": a.id,
                    "name": a.name,
                    "email": a.email,
                    "ou": a.ou,
                    "ou_id": self.plan.ou_ids.get(a.ou, ""),
                    "tags": a.tags,
                    "status": self.account_status(a.id),
                    "read_role": self.has_role(a.id),
                    "metrics": a.index < s.metrics_accounts,
                }
            )
        return {
            "endpoint": self.endpoint,
            "pid": os.getpid(),
            "started_at": self.started_at.isoformat(),
            "seed": s.seed,
            "date": self.clock.today().isoformat(),
            "date_fixed": self.clock.fixed,
            "home_region": HOME_REGION,
            "regions": list(s.regions),
            "management_account_id": s.management_account_id,
            "organization_id": self.plan.organization_id,
            "root_id": self.plan.root_id,
            "ou_ids": dict(self.plan.ou_ids),
            "read_role_name": s.read_role_name,
            "external_id": s.external_id,
            "central_bucket": s.central_bucket,
            "inventory_sync_prefix": s.inventory_sync_prefix,
            "central_event_bus": s.central_event_bus,
            "central_event_bus_arn": f"arn:aws:events:{HOME_REGION}:{s.management_account_id}:event-bus/"
            f"{s.central_event_bus}",
            "config_aggregator": s.config_aggregator,
            "ses_sender": s.ses_sender,
            "ses_domain": s.ses_domain,
            "stackset_admin_role_arn": f"arn:aws:iam::{s.management_account_id}:role/{s.stackset_admin_role}",
            "stackset_execution_role": s.stackset_execution_role,
            "credentials": {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
            "member_account_ids": [a.id for a in self.plan.accounts],
            "accounts": accounts,
            "metrics": self.metrics.describe(),
            "timings": dict(self.timings),
            "settings": s.to_dict(),
        }


def build(settings: SandboxSettings) -> World:
    """Seed moto and install the world for the extension's responses."""
    world = World(settings)
    core.install(world)
    return world

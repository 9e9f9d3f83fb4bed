"""Trusted Advisor results per account and day: deterministic functions of (seed, account, check, resource, date).

Resources come and go: each candidate resource of a check is flagged or not on stretches of a few days, so day to
day some findings appear, get fixed and reopen. Refresh requests move enqueued -> processing -> success on a timer.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import moto.support

from .. import det
from ..settings import HOME_REGION
from ..timed import TimedState
from .exceptions import InvalidParameterValueException

RESOURCES = Path(__file__).resolve().parent / "resources"
CATEGORIES = ("cost_optimizing", "security", "fault_tolerance", "performance", "service_limits")


def moto_checks() -> dict[str, dict[str, Any]]:
    """moto's list of the 104 real Trusted Advisor checks, by id."""
    path = Path(moto.support.__file__).parent / "resources" / "describe_trusted_advisor_checks.json.gz"
    with gzip.open(path) as fh:
        return {c["id"]: c for c in json.load(fh)["checks"]}


def _stretch_state(seed: int, day: int, rate: float, *key: object) -> tuple[bool, int]:
    """Whether a finding is open on ``day`` (days since epoch) and the first day of its current stretch.

    Each resource lives on stretches of 2-6 days; each stretch is open with probability ``rate``.
    """
    length = det.integer(2, 6, seed, "stretch", *key)
    offset = det.integer(0, length - 1, seed, "offset", *key)
    stretch = (day + offset) // length
    return det.unit(seed, "open", *key, stretch) < rate, stretch * length - offset


class TrustedAdvisorModel:
    """Trusted Advisor results of every account, computed on demand; refresh statuses held per account.

    :param world: the running world.
    """

    def __init__(self, world: Any) -> None:
        self.world = world
        self.data = json.loads((RESOURCES / "checks.json").read_text(encoding="utf-8"))
        self.all_checks = moto_checks()
        self.seeded = {c["id"]: {**c, **self.all_checks[c["id"]]} for c in self.data["checks"]}
        self._refresh: dict[tuple[str, str], TimedState] = {}
        # Results without their timestamp are a pure function of (account, check, date): cached.
        self._cache: dict[tuple[str, str, dt.date], dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def cooldown(self) -> float:
        return self.data["refresh_cooldown_seconds"] * self.world.settings.time_scale

    @cached_property
    def phases(self) -> list[tuple[str, float | None]]:
        scale = self.world.settings.time_scale
        return [(name, None if seconds is None else seconds * scale) for name, seconds in self.data["refresh_phases"]]

    # --- which accounts ----------------------------------------------------------------------------------------
    def accounts(self) -> list[str]:
        """Accounts with Trusted Advisor data: the management account and every active member."""
        return [self.world.settings.management_account_id, *self.world.active_member_ids()]

    def check_known(self, check_id: str) -> dict[str, Any]:
        if check_id not in self.all_checks:
            raise InvalidParameterValueException(f"Check with id {check_id} does not exist.")
        return self.all_checks[check_id]

    # --- results ------------------------------------------------------------------------------------------------
    def result(self, account_id: str, check_id: str, date: dt.date) -> dict[str, Any]:
        """The DescribeTrustedAdvisorCheckResult ``result`` of one check in one account on ``date``."""
        self.check_known(check_id)
        refreshed = self.refreshed_on(account_id, check_id, date)
        key = (account_id, check_id, refreshed)
        core = self._cache.get(key)
        if core is None:
            core = self._compute(account_id, check_id, refreshed)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = core
        return {**core, "timestamp": self._timestamp(account_id, check_id, refreshed)}

    def refreshed_on(self, account_id: str, check_id: str, date: dt.date) -> dt.date:
        """The day whose result is served on ``date``: ``date`` itself, except in the realistic profile, where a
        check AWS does not refresh itself was last refreshed every 1 to max_age_days + 1 days (so 0 to max_age_days
        days ago), unless a refresh requested on the sandbox date has completed."""
        spec = self.seeded.get(check_id)
        if not self.world.settings.realistic or spec is None or spec.get("refreshable", True) is False:
            return date
        with self._lock:
            state = self._refresh.get((account_id, check_id))
        if state is not None and state.reached("success") and date == self.world.clock.today():
            return date
        from ..config.models import realistic

        seed = self.world.settings.seed
        period = det.integer(1, int(realistic()["trusted_advisor"]["max_age_days"]) + 1, seed, "ta-period",
                             account_id, check_id)
        offset = det.integer(0, period - 1, seed, "ta-offset", account_id, check_id)
        return date - dt.timedelta(days=((date - dt.date(1970, 1, 1)).days + offset) % period)

    def _compute(self, account_id: str, check_id: str, date: dt.date) -> dict[str, Any]:
        check = self.all_checks[check_id]
        seed = self.world.settings.seed
        timestamp = ""
        spec = self.seeded.get(check_id)
        not_available = spec is None or det.unit(seed, "na", account_id, check_id) < self.data["not_available_rate"]
        if not_available:
            return self._result(check_id, timestamp, "not_available", 0, [], check["category"], 0.0, 0.0)
        day = (date - dt.date(1970, 1, 1)).days
        n = det.integer(spec["candidates"][0], spec["candidates"][1], seed, "candidates", account_id, check_id)
        flagged = []
        savings = 0.0
        for j in range(n):
            is_open, since = _stretch_state(seed, day, spec["flag_rate"], account_id, check_id, j)
            if not is_open:
                continue
            error = det.unit(seed, "sev", account_id, check_id, j, since) < spec["error_share"]
            resource = self._resource(account_id, spec, j, "error" if error else "warning", date)
            savings += resource.pop("_savings", 0.0)
            flagged.append(resource)
        if not spec["metadata"]:
            is_open, since = _stretch_state(seed, day, spec["flag_rate"], account_id, check_id, "account")
            status = "error" if is_open else "ok"
        elif any(r["status"] == "error" for r in flagged):
            status = "error"
        elif flagged:
            status = "warning"
        else:
            status = "ok"
        # An account-level check (no metadata columns, e.g. MFA on Root Account) looks at one resource: the account.
        processed = n + det.integer(0, 12, seed, "healthy", account_id, check_id) if spec["metadata"] else 1
        spend = det.integer(1500, 25000, seed, "spend", account_id)
        return self._result(check_id, timestamp, status, processed, flagged, spec["category"], round(savings, 2),
                            round(100.0 * savings / spend, 2))

    @staticmethod
    def _result(check_id: str, timestamp: str, status: str, processed: int, flagged: list[dict[str, Any]],
                category: str, savings: float, percent: float) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        if category == "cost_optimizing":
            summary["costOptimizing"] = {"estimatedMonthlySavings": savings, "estimatedPercentMonthlySavings": percent}
        return {
            "checkId": check_id,
            "timestamp": timestamp,
            "status": status,
            "resourcesSummary": {
                "resourcesProcessed": processed,
                "resourcesFlagged": len(flagged),
                "resourcesIgnored": 0,
                "resourcesSuppressed": 0,
            },
            "categorySpecificSummary": summary,
            "flaggedResources": flagged,
        }

    def summary(self, account_id: str, check_id: str, date: dt.date) -> dict[str, Any]:
        """The DescribeTrustedAdvisorCheckSummaries entry of one check."""
        result = self.result(account_id, check_id, date)
        return {
            "checkId": check_id,
            "timestamp": result["timestamp"],
            "status": result["status"],
            "hasFlaggedResources": bool(result["flaggedResources"]),
            "resourcesSummary": result["resourcesSummary"],
            "categorySpecificSummary": result["categorySpecificSummary"],
        }

    def _timestamp(self, account_id: str, check_id: str, date: dt.date) -> str:
        when = dt.datetime.combine(date, dt.time(4, 0), tzinfo=dt.UTC)
        when += dt.timedelta(seconds=det.integer(0, 7200, self.world.settings.seed, "ts", account_id, check_id))
        with self._lock:
            state = self._refresh.get((account_id, check_id))
        if state is not None and state.reached("success") and date == self.world.clock.today():
            done = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=time.monotonic() - state.time_of("success"))
            when = max(when, done.replace(microsecond=0))
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    # --- flagged resource metadata ------------------------------------------------------------------------------
    def _resource(self, account_id: str, spec: dict[str, Any], j: int, status: str, date: dt.date) -> dict[str, Any]:
        seed = self.world.settings.seed
        regions = self.world.settings.regions
        key = (seed, account_id, spec["id"], j)
        region = regions[j % len(regions)] if spec["category"] == "service_limits" else det.pick(regions, *key, "r")
        if spec["id"] == "oQ7TT0l7J9":
            region = "-"
        values: dict[str, Any] = {"region": region, "status": status}
        metadata = [self._value(column, values, spec, key, date) for column in spec["metadata"]]
        resource = {
            "status": status,
            "region": region if region != "-" else HOME_REGION,
            "resourceId": det.hexid(43, *key, "rid"),
            "isSuppressed": False,
            "metadata": metadata,
        }
        if "_savings" in values:
            resource["_savings"] = values["_savings"]
        return resource

    def _hostile(self, key: tuple, column: str, fallback: str) -> str:
        if det.unit(*key, "hostile", column) < self.data["hostile_rate"]:
            return det.pick(self.data["hostile_values"], *key, "hv", column)
        return fallback

    def _value(self, column: str, values: dict[str, Any], spec: dict[str, Any], key: tuple, date: dt.date) -> str:
        region, status = values["region"], values["status"]
        color = "Red" if status == "error" else "Yellow"
        seed = key[0]
        if column in ("Region", "Region Name", "Region API Parameter"):
            return region
        if column == "Region/AZ":
            return f"{region}{det.pick('abc', *key, 'az')}"
        if column in ("Instance ID",):
            return f"i-{det.hexid(17, *key, 'instance')}"
        if column in ("Instance Name", "Volume Name", "Snapshot Name", "Load Balancer Name", "Security Group Name",
                      "DB Instance", "IAM User"):
            kind = det.pick(["web", "api", "batch", "etl", "cache", "db"], *key, column)
            base = f"{kind}-{det.hexid(4, *key, column)}"
            return self._hostile(key, column, base)
        if column == "Instance Type":
            return det.pick(self.data["instance_types"], *key, "itype")
        if column.startswith("Estimated Monthly Savings"):
            lo, hi = spec.get("savings", [0, 0])
            amount = round(det.between(lo, hi, *key, "savings"), 2)
            values["_savings"] = amount
            return f"${amount:,.2f}"
        if column.startswith("Day "):
            day = int(column.split()[1])
            base = 2.0 if spec["category"] == "cost_optimizing" else 91.0
            return f"{base + det.between(0, 7, *key, date.isoformat(), day):.1f}%"
        if column == "14-Day Average CPU Utilization":
            return f"{(3.5 if spec['category'] == 'cost_optimizing' else 94.0) + det.between(0, 4, *key, 'avg'):.1f}%"
        if column == "14-Day Average Network I/O":
            return f"{det.between(0.1, 4.9, *key, 'net'):.2f}MB"
        if column.startswith("Number of Days"):
            return f"{det.integer(4, 14, *key, 'days')} days"
        if column == "Reason":
            reasons = {
                "hjLMh88uM8": "Low request count",
                "DqdJqYeRm5": "Key has not been rotated in over 2 years",
                "H7IgTzjTYb": "No snapshot",
            }
            return self._hostile(key, column, reasons.get(spec["id"], "Flagged by Trusted Advisor"))
        if column == "IP Address":
            return ".".join(["52", *(str(det.integer(1, 254, *key, "ip", k)) for k in range(3))])
        if column in ("Security Group ID", "Group ID"):
            return f"sg-{det.hexid(17, *key, 'sg')}"
        if column == "Protocol":
            return "tcp"
        if column == "Status":
            return color
        if column == "Ports":
            return det.pick(["22", "3389", "22,3389", "3306", "5432"], *key, "ports")
        if column in ("Bucket Name", "Ignored Bucket Name"):
            if column == "Ignored Bucket Name":
                return ""
            return self._hostile(key, column, f"{det.pick(['logs', 'assets', 'backup', 'exports'], *key, 'b')}-"
                                              f"{key[1]}-{det.hexid(6, *key, 'bucket')}")
        if column in ("ACL Allows List", "ACL Allows Upload/Delete", "Policy Allows Access"):
            return "Yes" if status == "error" and column != "ACL Allows Upload/Delete" else "No"
        if column == "Access Key":
            return f"AKIA{det.hexid(16, *key, 'ak').upper()}"
        if column == "Key Last Rotated":
            return (date - dt.timedelta(days=det.integer(400, 1200, *key, 'rot'))).isoformat()
        if column == "Volume ID":
            return f"vol-{det.hexid(17, *key, 'vol')}"
        if column == "Snapshot ID":
            return f"snap-{det.hexid(17, *key, 'snap')}" if status == "warning" else ""
        if column == "Snapshot Age":
            return str(det.integer(8, 60, *key, "age")) if status == "warning" else ""
        if column == "Volume Attachment":
            return f"i-{det.hexid(17, *key, 'attach')}"
        if column == "VPC ID":
            return f"vpc-{det.hexid(17, *key, 'vpc')}"
        if column in ("Multi-AZ", "Versioning", "MFA Delete Enabled"):
            return "Not enabled" if column != "Multi-AZ" else "false"
        if column == "Description":
            return self._hostile(key, column, "Security group for the application tier")
        if column == "Instance Count":
            return str(det.integer(1, 40, *key, "ic"))
        if column in ("Total Inbound Rules", "Total Outbound Rules"):
            return str(det.integer(50, 120, *key, column))
        if column == "Time Near Maximum":
            return f"{det.integer(10, 60, *key, 'tnm')}%"
        limits = self.data["limits"].get(spec["id"])
        if limits:
            if column == "Service":
                return limits["service"]
            if column == "Limit Name":
                return limits["limit_name"]
            if column == "Limit Amount":
                return str(limits["limit"])
            if column == "Current Usage":
                share = 1.0 if status == "error" else det.between(0.8, 0.99, *key, "usage")
                return str(max(1, int(limits["limit"] * share)))
        return f"value-{det.hexid(6, seed, column)}"

    # --- refresh --------------------------------------------------------------------------------------------------
    def _refreshable(self, check_id: str) -> None:
        self.check_known(check_id)
        spec = self.seeded.get(check_id)
        if spec is not None and spec.get("refreshable", True) is False:
            raise InvalidParameterValueException(
                f"The check {check_id} is refreshed automatically by AWS and cannot be refreshed on request."
            )

    def _status(self, account_id: str, check_id: str) -> dict[str, Any]:
        with self._lock:
            state = self._refresh.get((account_id, check_id))
        if state is None:
            return {"checkId": check_id, "status": "none", "millisUntilNextRefreshable": 0}
        status = state.status()
        cooldown = state.time_of("success") + self.cooldown - time.monotonic()
        return {"checkId": check_id, "status": status, "millisUntilNextRefreshable": max(0, int(cooldown * 1000))}

    def refresh(self, account_id: str, check_id: str) -> dict[str, Any]:
        """RefreshTrustedAdvisorCheck: enqueue a refresh unless one is running or cooling down."""
        self._refreshable(check_id)
        with self._lock:
            state = self._refresh.get((account_id, check_id))
            ready = state is None or time.monotonic() >= state.time_of("success") + self.cooldown
            if ready:
                self._refresh[(account_id, check_id)] = TimedState(self.phases)
        return self._status(account_id, check_id)

    def refresh_statuses(self, account_id: str, check_ids: list[str]) -> list[dict[str, Any]]:
        for check_id in check_ids:
            self._refreshable(check_id)
        return [self._status(account_id, c) for c in check_ids]

    # --- truth ------------------------------------------------------------------------------------------------------
    def truth(self, date: dt.date, accounts: list[str] | None = None) -> dict[str, Any]:
        """{account: {check_id: result}} for the seeded checks, plus the check catalogue."""
        wanted = self.accounts() if accounts is None else [a for a in self.accounts() if a in accounts]
        return {
            "checks": {cid: {"name": c["name"], "category": c["category"], "metadata": c["metadata"],
                             "refreshable": c.get("refreshable", True)} for cid, c in self.seeded.items()},
            "results": {a: {cid: self.result(a, cid, date) for cid in self.seeded} for a in wanted},
        }

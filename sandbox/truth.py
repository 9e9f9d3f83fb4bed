"""The truth: for a date, exactly what the extension answers (barring injected faults), for tests to compare.

Served at ``GET /_sandbox/truth?date=YYYY-MM-DD[&account=ID,ID][&sections=accounts,trusted_advisor,config,metrics]``
and by :func:`build_truth` in-process.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

SECTIONS = ("accounts", "trusted_advisor", "config", "metrics", "stacksets", "inventory", "changes", "guardduty",
            "macie")


def build_truth(
    world: Any, date: dt.date, *, sections: list[str] | None = None, accounts: list[str] | None = None
) -> dict[str, Any]:
    """Everything the sandbox answers for ``date``.

    :param world: the running world.
    :param date: the sandbox date to describe.
    :param sections: subset of SECTIONS (default all).
    :param accounts: only these account ids (default all).
    """
    wanted = set(sections or SECTIONS)
    unknown = wanted - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown truth sections: {sorted(unknown)} (known: {list(SECTIONS)})")
    s = world.settings
    member = [a for a in world.plan.accounts if accounts is None or a.id in accounts]
    out: dict[str, Any] = {
        "date": date.isoformat(),
        "seed": s.seed,
        "management_account_id": s.management_account_id,
        "regions": list(s.regions),
        "read_role_name": s.read_role_name,
        "external_id": s.external_id,
    }
    if "accounts" in wanted:
        out["accounts"] = [
            {
                **a.to_dict(),
                "ou_id": world.plan.ou_ids.get(a.ou, ""),
                "status": world.account_status(a.id),
                "read_role": world.has_role(a.id),
                "assumable": world.account_status(a.id) == "ACTIVE" and world.has_role(a.id),
            }
            for a in member
        ]
    if "trusted_advisor" in wanted and hasattr(world.trusted_advisor, "truth"):
        out["trusted_advisor"] = world.trusted_advisor.truth(date, accounts)
        out["trusted_advisor"]["organization_view"] = world.trusted_advisor_org.truth()
    if "config" in wanted and hasattr(world.compliance, "truth"):
        out["config"] = world.compliance.truth(date, accounts)
    if "metrics" in wanted and hasattr(world.metrics, "truth"):
        out["metrics"] = world.metrics.truth(accounts)
    if "stacksets" in wanted and hasattr(world.stacksets, "truth"):
        out["stacksets"] = world.stacksets.truth()
    if "inventory" in wanted and hasattr(world, "inventory"):
        out["inventory"] = world.inventory.truth(accounts)
    if "changes" in wanted and hasattr(world, "changes"):
        out["changes"] = world.changes.truth(date, accounts)
    for name in ("guardduty", "macie"):
        if name in wanted and hasattr(world, name):
            out[name] = getattr(world, name).truth(date, accounts)
    return out

"""The truth: for a date, exactly what the extension answers (barring injected faults), for tests to compare.

Served at ``GET /_sandbox/truth?date=YYYY-MM-DD[&account=ID,ID][&sections=accounts,trusted_advisor,config,metrics]``
and by :func:`build_truth` in-process.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

SECTIONS = ("accounts", "trusted_advisor", "config", "metrics", "stacksets", "inventory", "changes", "guardduty",
            "macie")


class _Spliced:
    """Stands for a section that :func:`truth_json` writes as JSON text itself; json.dumps writes its marker."""

    def __init__(self) -> None:
        self.marker = f"spliced-{uuid.uuid4().hex}"

    def __str__(self) -> str:
        return self.marker


def truth_json(
    world: Any, date: dt.date, *, sections: list[str] | None = None, accounts: list[str] | None = None
) -> str:
    """``json.dumps(build_truth(...), ensure_ascii=False, default=str)`` (what ``GET /_sandbox/truth`` answers),
    with the Config section written as text by the compliance model rather than as ~220,000 dicts per slice of 10
    realistic accounts."""
    out = build_truth(world, date, sections=sections, accounts=accounts, _splice_config=True)
    text = json.dumps(out, ensure_ascii=False, default=str)
    spliced = out.get("config")
    if isinstance(spliced, _Spliced):
        quoted = json.dumps(spliced.marker)
        if text.count(quoted) != 1:
            raise RuntimeError("truth: the Config section's marker is not unique")
        text = text.replace(quoted, world.compliance.truth_json(date, accounts), 1)
    return text


def build_truth(
    world: Any, date: dt.date, *, sections: list[str] | None = None, accounts: list[str] | None = None,
    _splice_config: bool = False,
) -> dict[str, Any]:
    """Everything the sandbox answers for ``date``.

    :param world: the running world.
    :param date: the sandbox date to describe.
    :param sections: subset of SECTIONS (default all).
    :param accounts: only these account ids (default all).
    :param _splice_config: the Config section is left to :func:`truth_json` (a marker in its place).
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
        if _splice_config and hasattr(world.compliance, "truth_json"):
            out["config"] = _Spliced()
        else:
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

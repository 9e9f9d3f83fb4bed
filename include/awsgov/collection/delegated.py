"""Member accounts read through a delegated administrator, GuardDuty and Macie alike: each account's coverage from its
membership, its findings from the organization-wide listing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

NOT_ENABLED = "not_enabled"
Outcome = tuple[str, str, list[dict[str, Any]]]  # (coverage status ok | not_enabled, why not, rows)


def not_member(service: str, admin_id: str, region: str, relationship: str | None) -> Outcome:
    """The outcome of an account that is not an enabled member of the administrator: a gap, not an absence of findings.

    :param service: the service's name in the message (GuardDuty, Macie).
    :param relationship: the member's relationship status (None: not a member at all).
    """
    return (NOT_ENABLED, f"{service} is not enabled for the account as a member of {admin_id} in {region} "
                         f"(relationship: {relationship or 'none'})", [])


def member_outcomes(service: str, region: str, admin_id: str, accounts: Iterable[str],
                    relation: Mapping[str, str], rows: Iterable[dict[str, Any]]) -> dict[str, Outcome]:
    """Each account's outcome: its rows when it is the administrator or an ``Enabled`` member, else a gap.

    :param service: the service's name in messages.
    :param region: the region.
    :param admin_id: the delegated administrator's account id.
    :param accounts: accounts collected this run.
    :param relation: member account -> relationship status, from the administrator's member listing.
    :param rows: finding rows of the whole organization (each with ``account_id``).
    """
    by_account: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_account.setdefault(str(row["account_id"]), []).append(row)
    out = {}
    for account in sorted(set(accounts)):
        status = "Enabled" if account == admin_id else relation.get(account)
        out[account] = ("ok", "", by_account.get(account, [])) if status == "Enabled" else \
            not_member(service, admin_id, region, status)
    return out

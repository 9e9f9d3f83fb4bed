"""The accounts of the Organization as seen today, merged with the onboarding inventory.

Organizations calls run in the admin (management or delegated-admin) account, once per collection run:
``list_accounts`` for the list (the management account included), a walk of the OU tree (``list_roots``,
``list_organizational_units_for_parent``, ``list_accounts_for_parent``) for each account's parent OU name in
O(OUs) calls rather than one ``list_parents`` per account, and ``list_tags_for_resource`` per account (there is no
bulk tag read for accounts). Suspended accounts are recorded in the ACCOUNTS table but not collected from.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess, classify_error, paginate
from include.awsgov.core.store import Store

log = logging.getLogger(__name__)

ACTIVE = "ACTIVE"
# Tag keys (compared case-insensitively) that name an account's owner, team and environment.
OWNER_KEYS = ("owner",)
TEAM_KEYS = ("team",)
ENVIRONMENT_KEYS = ("environment", "env")


def list_org_accounts(access: AwsAccess) -> list[dict[str, Any]]:
    """Every account of the Organization (``organizations:ListAccounts``), management account included.

    :param access: the admin account's access layer.
    """
    return list(paginate(access.client("organizations"), "list_accounts", "Accounts"))


def management_account_id(access: AwsAccess) -> str:
    """Id of the Organization's management account (``organizations:DescribeOrganization``).

    :param access: the admin account's access layer.
    """
    return access.client("organizations").describe_organization()["Organization"]["MasterAccountId"]


def parent_ou_names(access: AwsAccess) -> dict[str, str]:
    """Map account id -> name of its parent OU ("Root" for accounts at the top), by walking the OU tree.

    :param access: the admin account's access layer.
    """
    org = access.client("organizations")
    parents: list[tuple[str, str]] = [(root["Id"], "Root") for root in paginate(org, "list_roots", "Roots")]
    out: dict[str, str] = {}
    while parents:
        parent_id, parent_name = parents.pop()
        for account in paginate(org, "list_accounts_for_parent", "Accounts", ParentId=parent_id):
            out[account["Id"]] = parent_name
        for ou in paginate(org, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent_id):
            parents.append((ou["Id"], ou["Name"]))
    return out


# Attempts of one account's tag read when Organizations throttles beyond botocore's own retries, and the first pause.
TAG_READ_ATTEMPTS = 6
TAG_READ_BACKOFF = 1.0


def account_tags(access: AwsAccess, account_ids: Iterable[str], workers: int = 8) -> dict[str, dict[str, str]]:
    """Tags of each account (``organizations:ListTagsForResource``), fetched with a few threads.

    :param access: the admin account's access layer.
    :param account_ids: accounts to read.
    :param workers: concurrent requests.
    """
    org = access.client("organizations")

    def one(account_id: str) -> tuple[str, dict[str, str]]:
        # Organizations serves every account's tags from one throttled endpoint (one call per account): at hundreds
        # of accounts botocore's retries (and its client-wide retry quota, shared by these threads) run out, so a
        # throttled read waits and tries again here rather than failing the whole listing.
        for attempt in range(TAG_READ_ATTEMPTS):
            try:
                tags = list(paginate(org, "list_tags_for_resource", "Tags", ResourceId=account_id))
                return account_id, {t["Key"]: t["Value"] for t in tags}
            except ClientError as exc:
                if classify_error(exc) != "throttled_out" or attempt == TAG_READ_ATTEMPTS - 1:
                    raise
                time.sleep(min(TAG_READ_BACKOFF * 2 ** attempt, 30.0))
        raise AssertionError("unreachable")

    ids = list(account_ids)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(ids) or 1))) as pool:
        return dict(pool.map(one, ids))


def latest_onboarding(frame: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """The newest onboarding row per account, from a read of the onboarded-accounts table.

    The one rule every reader uses: the latest partition day, then the latest verification (``verified_at``, set
    each time onboarding records an account; rows without one count as oldest). Keyed and ordered by account id.

    :param frame: ``Store.read`` of the table (with ``dt``), or None.
    """
    if frame is None or frame.empty:
        return {}
    ordered = frame.sort_values(["account_id", "dt", "verified_at"], kind="mergesort", na_position="first")
    return {row["account_id"]: row for row in ordered.drop_duplicates("account_id", keep="last").to_dict("records")}


def onboarded_accounts(store: Store) -> dict[str, dict[str, Any]]:
    """:func:`latest_onboarding` of the whole onboarded-accounts table in the store."""
    return latest_onboarding(store.read(tables.ONBOARDED_ACCOUNTS_TABLE, schema=tables.ONBOARDED_ACCOUNTS))


def _tag(tags: Mapping[str, str], keys: tuple[str, ...]) -> str:
    for key, value in sorted(tags.items()):
        if key.casefold() in keys and value:
            return value
    return ""


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def account_rows(
    accounts: Iterable[Mapping[str, Any]],
    ous: Mapping[str, str],
    tags: Mapping[str, Mapping[str, str]],
    inventory: Mapping[str, Mapping[str, Any]],
    management_id: str,
) -> list[dict[str, Any]]:
    """Rows of ``tables.ACCOUNTS``: Organizations data first, the inventory filling what tags do not say.

    :param accounts: ``list_accounts`` items.
    :param ous: account id -> parent OU name.
    :param tags: account id -> tags.
    :param inventory: account id -> latest inventory row.
    :param management_id: the management account's id.
    """
    rows = []
    for account in accounts:
        account_id = account["Id"]
        account_tags_ = dict(tags.get(account_id, {}))
        inv = inventory.get(account_id, {})
        rows.append(
            {
                "account_id": account_id,
                "name": account.get("Name", ""),
                "email": account.get("Email", ""),
                "status": account.get("Status", ""),
                "ou": ous.get(account_id, ""),
                "owner": _tag(account_tags_, OWNER_KEYS) or _text(inv.get("owner_email")),
                "team": _tag(account_tags_, TEAM_KEYS) or _text(inv.get("team")),
                "environment": _tag(account_tags_, ENVIRONMENT_KEYS) or _text(inv.get("environment")),
                "tags_json": json.dumps(account_tags_, sort_keys=True, ensure_ascii=False),
                "is_management": account_id == management_id,
                "onboarded": _text(inv.get("status")) == "onboarded",
                "baseline_version": _text(inv.get("baseline_version")),
            }
        )
    return sorted(rows, key=lambda r: r["account_id"])


def snapshot_accounts(access: AwsAccess, store: Store, day: Any, workers: int = 8,
                      accounts: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Read the Organization, merge the inventory, write ``tables.ACCOUNTS`` for the day and return its rows.

    :param access: the admin account's access layer.
    :param store: the history store.
    :param day: partition day.
    :param workers: concurrent tag reads.
    :param accounts: ``list_accounts`` items already read this run (None: listed here).
    """
    accounts = list_org_accounts(access) if accounts is None else accounts
    management_id = management_account_id(access)
    ous = parent_ou_names(access)
    tags = account_tags(access, [a["Id"] for a in accounts], workers)
    rows = account_rows(accounts, ous, tags, onboarded_accounts(store), management_id)
    if management_id not in {r["account_id"] for r in rows}:
        # list_accounts always includes the management account; if it ever does not, say so rather than guess.
        log.warning("management account %s is missing from list_accounts", management_id)
    store.write("accounts", day, pd.DataFrame(rows, columns=tables.ACCOUNTS.names), schema=tables.ACCOUNTS,
                sort_by=["account_id"])
    skipped = [r["account_id"] for r in rows if r["status"] != ACTIVE]
    if skipped:
        log.info("accounts: %d not ACTIVE, recorded but not collected: %s", len(skipped), ", ".join(skipped))
    return rows


def collectable(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The accounts to collect from: ACTIVE ones, as small ``{"account_id", "name"}`` dicts (XCom-sized).

    :param rows: ACCOUNTS rows.
    """
    return [{"account_id": r["account_id"], "name": r["name"]} for r in rows if r["status"] == ACTIVE]


def collectable_listed(accounts: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """:func:`collectable` straight from ``list_accounts`` items, before the tags are read: the same accounts,
    names and order as from the rows :func:`snapshot_accounts` writes (so a run can start collecting while the
    tags, one call per account at Organizations' low rate, are still being read).

    :param accounts: ``list_accounts`` items.
    """
    return collectable(account_rows(accounts, {}, {}, {}, ""))


def batches(accounts: list[dict[str, str]], max_tasks: int) -> list[list[dict[str, str]]]:
    """Split accounts into at most ``max_tasks`` batches of consecutive accounts (one account each when few).

    :param accounts: collectable accounts, in a stable order.
    :param max_tasks: upper bound on mapped task instances.
    """
    if not accounts:
        return []
    size = -(-len(accounts) // max(1, max_tasks))
    return [accounts[i : i + size] for i in range(0, len(accounts), size)]

"""Who owns a finding: resource tag, then account, then OU default, then the governance address.

Layers, first non-empty wins:

1. ``resource``: an ``Owner`` tag on the flagged resource, when the finding row carries tags (a ``tags_json``
   column, or ``Owner`` / ``Tags`` keys in Trusted Advisor's ``details_json``; Config evaluations carry none).
2. ``account``: the account's owner in the day's ``accounts`` table (its Owner tag, else the onboarding
   inventory's owner), or, for an account missing there, the latest ``inventory`` row's ``owner_email``.
3. ``ou``: the settings' ``ou_owners`` default for the account's OU.
4. ``fallback``: the settings' ``mail.governance_address``; these are the unowned resources.

Each owner's report language comes from :class:`Languages` (owners' settings, the accounts' ``Language`` tag).

An owner value may name several addresses separated by ``,`` or ``;``: the owner is that set, written canonically
(lower case, sorted, ``", "``-joined) so that the same people always get one report. Values are not validated
here: a malformed or header-injecting value stays as it is so that delivery refuses it and reports it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from include.awsgov.core import i18n
from include.awsgov.core.accounts import latest_onboarding

RESOURCE, ACCOUNT, INVENTORY, OU, FALLBACK = "resource", "account", "inventory", "ou", "fallback"
# Tag keys (case-insensitive) naming an owner, and keys under which a resource's tags may be nested.
OWNER_KEYS = frozenset({"owner", "tag:owner", "tags:owner", "tag.owner"})
TAG_CONTAINERS = frozenset({"tags", "resourcetags", "tag"})
_SPLIT = re.compile(r"[,;]")
_SLUG_BAD = re.compile(r"[^a-z0-9]+")


def canonical(value: Any) -> str:
    """The canonical owner key of a raw owner value ('' when empty).

    Splits on ``,`` and ``;`` only: never on whitespace or line breaks, so that ``"x\\r\\nBcc: y@z"`` stays one
    (invalid) value instead of smuggling ``y@z`` in as a recipient.

    :param value: a tag or inventory value.
    """
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    parts = {p.strip().lower() for p in _SPLIT.split(str(value)) if p.strip()}
    return ", ".join(sorted(parts))


def recipients(owner: str) -> list[str]:
    """The addresses of a canonical owner key.

    :param owner: from :func:`canonical`.
    """
    return [p for p in owner.split(", ") if p]


def slug(owner: str) -> str:
    """A file-name-safe, collision-free name for an owner (``[a-z0-9-]``, at most 80 characters).

    :param owner: a canonical owner key.
    """
    readable = _SLUG_BAD.sub("-", owner.lower()).strip("-")[:60] or "owner"
    digest = hashlib.sha256(owner.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"


def owner_from_tags(obj: Any) -> str:
    """The Owner value found in a tag structure ('' if none).

    Understands ``{"Owner": v}``, ``{"tag:Owner": v}``, ``{"Tags": {...}}`` and
    ``{"Tags": [{"Key": .., "Value": ..}]}``.

    :param obj: a parsed ``tags_json`` / ``details_json`` value.
    """
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if str(key).casefold() in OWNER_KEYS and isinstance(value, str) and value.strip():
                return value
        for key, value in obj.items():
            if str(key).casefold() in TAG_CONTAINERS:
                found = owner_from_tags(value)
                if found:
                    return found
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, Mapping) and str(item.get("Key", "")).casefold() in OWNER_KEYS:
                value = item.get("Value")
                if isinstance(value, str) and value.strip():
                    return value
    return ""


def _json(text: Any) -> Any:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


class OwnerResolver:
    """Resolve owners of accounts and findings.

    :param accounts: the ``accounts`` table of the report's day (account_id, owner, ou, ...).
    :param inventory: the ``inventory`` table (latest row per account wins), or None.
    :param ou_owners: the settings' OU name -> owner default.
    :param fallback: the settings' ``mail.governance_address``.
    """

    def __init__(self, accounts: pd.DataFrame, inventory: pd.DataFrame | None, ou_owners: Mapping[str, str],
                 fallback: str) -> None:
        self.fallback = canonical(fallback)
        self.ou_owners = {str(k).casefold(): canonical(v) for k, v in (ou_owners or {}).items()}
        self._accounts = {r["account_id"]: r for r in accounts.to_dict("records")} if not accounts.empty else {}
        self._inventory: dict[str, str] = {}
        if inventory is not None and not inventory.empty:
            for row in latest_onboarding(inventory).values():
                if canonical(row.get("owner_email")):
                    self._inventory[row["account_id"]] = canonical(row["owner_email"])
        self._cache: dict[str, tuple[str, str]] = {}

    def account_owner(self, account_id: str) -> tuple[str, str]:
        """(owner, layer) of an account: account, inventory, ou or fallback.

        :param account_id: the account.
        """
        if account_id not in self._cache:
            row = self._accounts.get(account_id) or {}
            owner, layer = canonical(row.get("owner")), ACCOUNT
            if not owner:
                owner, layer = self._inventory.get(account_id, ""), INVENTORY
            if not owner:
                owner, layer = self.ou_owners.get(str(row.get("ou") or "").casefold(), ""), OU
            if not owner:
                owner, layer = self.fallback, FALLBACK
            self._cache[account_id] = (owner, layer)
        return self._cache[account_id]

    def resolve(self, findings: pd.DataFrame) -> pd.DataFrame:
        """Return ``findings`` with ``owner`` and ``owner_layer`` columns.

        :param findings: rows with ``account_id`` and optionally ``tags_json`` / ``details_json``.
        """
        out = findings.copy()
        owners, layers = [], []
        tag_cols = [c for c in ("tags_json", "details_json") if c in out.columns]
        for row in out[["account_id", *tag_cols]].itertuples(index=False):
            tagged = ""
            for text in row[1:]:
                # Most rows carry no owner at all: skip the JSON parse unless the word is there.
                if not isinstance(text, str) or "owner" not in text.casefold():
                    continue
                tagged = canonical(owner_from_tags(_json(text)))
                if tagged:
                    break
            if tagged:
                owners.append(tagged)
                layers.append(RESOURCE)
            else:
                owner, layer = self.account_owner(row[0])
                owners.append(owner)
                layers.append(layer)
        out["owner"] = owners
        out["owner_layer"] = layers
        return out


# Account tag keys (case-insensitive) naming the language the account's owner reads.
LANGUAGE_KEYS = frozenset({"language", "lang", "locale"})


def tag_language(tags_json: Any) -> str:
    """The supported report language an account's tags name ('' for none, another language, or a hostile value).

    Tag values are set by whoever may tag the account: only a value that :func:`i18n.language` maps onto a
    supported language counts.

    :param tags_json: the ``accounts`` table's ``tags_json`` (a JSON object of tag key -> value).
    """
    tags = _json(tags_json)
    if not isinstance(tags, Mapping):
        return ""
    for key, value in sorted(tags.items(), key=lambda kv: str(kv[0])):
        if str(key).casefold() in LANGUAGE_KEYS:
            return i18n.language(value) or ""
    return ""


class Languages:
    """The report language of each recipient: the owners' settings, else the owner's accounts' Language tag, else
    the default.

    1. ``owners.<address>.language`` in the settings (schema-checked), for one address; or for a whole canonical
       owner key (``"a@x, b@x"``), which then applies to each of its addresses not named on their own.
    2. The ``Language`` tag of the accounts the owner owns, when they name one supported language (tags that
       disagree, or name nothing supported, say nothing).
    3. ``report.language`` in the settings, else English.

    :param owners: the settings' ``owners`` mapping (address or owner key -> {language: ..}).
    :param default: the settings' ``report.language``.
    """

    def __init__(self, owners: Mapping[str, Any] | None = None, default: str | None = None) -> None:
        self.default = i18n.checked(default)
        self._settings: dict[str, str] = {}
        for key, entry in (owners or {}).items():
            lang = i18n.language(entry.get("language")) if isinstance(entry, Mapping) else None
            if lang:
                self._settings[canonical(key)] = lang

    @classmethod
    def from_settings(cls, cfg: Mapping[str, Any]) -> Languages:
        """The resolver of validated settings (``owners``, ``report.language``)."""
        return cls(cfg.get("owners"), (cfg.get("report") or {}).get("language"))

    def _from_accounts(self, account_languages: Sequence[str]) -> str | None:
        found = {lang for lang in (i18n.language(v) for v in account_languages) if lang}
        return found.pop() if len(found) == 1 else None

    def split(self, owner: str, account_languages: Sequence[str] = ()) -> list[tuple[str, str]]:
        """The recipients of an owner grouped by language: ``[(language, owner key of that group's addresses)]``,
        sorted by language; one group when everyone reads the same language (the common case).

        :param owner: a canonical owner key.
        :param account_languages: the ``language`` of each account the owner owns (:func:`tag_language`).
        """
        fallback = self._settings.get(owner) or self._from_accounts(account_languages) or self.default
        groups: dict[str, list[str]] = {}
        for address in recipients(owner):
            groups.setdefault(self._settings.get(address, fallback), []).append(address)
        if not groups:  # an empty owner key: nobody to group, keep one (empty) report as before
            return [(fallback, owner)]
        return [(lang, canonical(",".join(addresses))) for lang, addresses in sorted(groups.items())]

    def of(self, owner: str, account_languages: Sequence[str] = ()) -> str:
        """The one language of a report that goes out once (the org summary): the recipients' common language, else
        the default.

        :param owner: a canonical owner key.
        :param account_languages: as for :func:`split`.
        """
        groups = self.split(owner, account_languages)
        return groups[0][0] if len(groups) == 1 else self.default

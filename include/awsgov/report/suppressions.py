"""Approved exceptions of the weekly report: load the exceptions file and apply it to findings.

The file (``include/config/exceptions.yaml`` by default, schema ``schema/exceptions.schema.json``) lists exceptions
by finding id or by pattern (shell wildcards on account, region, check and resource). On the report's day an
exception is ``active`` through its ``expires`` date, ``expiring`` when that date is within the warning window, and
``expired`` after it. Active and expiring exceptions suppress a finding (not counted, not an action, but listed);
an expired one no longer suppresses: the finding counts again and the report flags it.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pyarrow as pa
import yaml

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
EXCEPTIONS_PATH = CONFIG_DIR / "exceptions.yaml"
SCHEMA_PATH = CONFIG_DIR / "schema" / "exceptions.schema.json"

ACTIVE, EXPIRING, EXPIRED = "active", "expiring", "expired"
# Statuses that keep a finding out of counts and actions.
SUPPRESSING = (ACTIVE, EXPIRING)
# Pattern fields and the finding columns they are matched against.
_MATCH_COLUMNS = {"account_id": "account_id", "region": "region", "check": "check", "resource": "resource"}
# Columns added to findings by :meth:`Exceptions.apply`.
COLUMNS = ("exception_id", "exception_status", "exception_expires", "exception_reason", "exception_approver",
           "exception_ticket")


class ExceptionsError(ValueError):
    """The exceptions file is invalid; the message names each offending entry and field."""


@dataclass(frozen=True)
class ExceptionEntry:
    """One approved exception.

    :param id: its id.
    :param expires: last day it applies.
    :param finding_id: exact finding id, or None for a pattern.
    :param match: pattern fields (account_id, region, check, resource) -> shell wildcard.
    """

    id: str
    reason: str
    approver: str
    ticket: str
    expires: dt.date
    finding_id: str | None = None
    match: tuple[tuple[str, str], ...] = ()

    def status(self, day: dt.date, warn_days: int) -> str:
        """``active``, ``expiring`` (within ``warn_days`` of ``day``) or ``expired`` on ``day``."""
        if self.expires < day:
            return EXPIRED
        return EXPIRING if (self.expires - day).days <= warn_days else ACTIVE

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Whether a finding (a mapping with finding_id, account_id, region, check, resource) is covered."""
        if self.finding_id is not None:
            return row.get("finding_id") == self.finding_id
        return all(fnmatch.fnmatchcase(str(row.get(_MATCH_COLUMNS[k]) or ""), pattern) for k, pattern in self.match)


def _dates_to_text(value: Any) -> Any:
    # YAML turns 2026-12-31 into a date; the schema (and humans writing quotes or not) see text.
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _dates_to_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_to_text(v) for v in value]
    return value


@dataclass(frozen=True)
class Exceptions:
    """All exceptions of a file.

    :param items: the exceptions, in file order.
    """

    items: tuple[ExceptionEntry, ...]

    def chosen(self, findings: pd.DataFrame, day: dt.date, warn_days: int) -> list[ExceptionEntry | None]:
        """The exception covering each row (None when none).

        When several match, a suppressing one wins over an expired one, then the one that expires last.

        :param findings: frame with finding_id, account_id, region, check, resource.
        :param day: the report's day (expiry is judged on it).
        :param warn_days: days before expiry an exception is flagged.
        """
        if findings.empty or not self.items:
            return [None] * len(findings)
        # Column-wise: each exception is matched against whole columns (pulled out once through Arrow), then each
        # row keeps its best exception. Row-by-row dicts were most of the time at a thousand accounts.
        columns = {c: pa.array(findings[c]).to_pylist() if c in findings.columns else [""] * len(findings)
                   for c in ("finding_id", *_MATCH_COLUMNS.values())}
        best: list[ExceptionEntry | None] = [None] * len(findings)
        best_key: list[tuple | None] = [None] * len(findings)
        for exc in self.items:
            if exc.finding_id is not None:
                hits = [i for i, fid in enumerate(columns["finding_id"]) if fid == exc.finding_id]
            else:
                hits = range(len(findings))
                for field, pattern in exc.match:
                    regex = re.compile(fnmatch.translate(pattern))
                    values = columns[_MATCH_COLUMNS[field]]
                    hits = [i for i in hits if regex.match(values[i] or "")]
            key = (exc.status(day, warn_days) != EXPIRED, exc.expires)
            for i in hits:
                if best_key[i] is None or key > best_key[i]:
                    best[i], best_key[i] = exc, key
        return best

    def suppressed(self, findings: pd.DataFrame, day: dt.date, warn_days: int) -> list[bool]:
        """Whether each row is kept out of counts on ``day`` (an active or expiring exception covers it)."""
        chosen = self.chosen(findings, day, warn_days)
        return [e is not None and e.status(day, warn_days) in SUPPRESSING for e in chosen]

    def apply(self, findings: pd.DataFrame, day: dt.date, warn_days: int) -> pd.DataFrame:
        """Return ``findings`` with the :data:`COLUMNS` of the exception covering each row ('' when none).

        :param findings: frame with finding_id, account_id, region, check, resource.
        :param day: the report's day (expiry is judged on it).
        :param warn_days: days before expiry an exception is flagged.
        """
        chosen = self.chosen(findings, day, warn_days)
        return findings.assign(
            exception_id=[e.id if e else "" for e in chosen],
            exception_status=[e.status(day, warn_days) if e else "" for e in chosen],
            exception_expires=[e.expires.isoformat() if e else "" for e in chosen],
            exception_reason=[e.reason if e else "" for e in chosen],
            exception_approver=[e.approver if e else "" for e in chosen],
            exception_ticket=[e.ticket if e else "" for e in chosen],
        )

    def unused(self, findings: pd.DataFrame) -> list[ExceptionEntry]:
        """Exceptions that cover none of ``findings`` (candidates for removal).

        :param findings: frame returned by :meth:`apply`.
        """
        used = set(findings["exception_id"]) if "exception_id" in findings else set()
        return [e for e in self.items if e.id not in used]


def parse(data: Any, source: str = "<exceptions>") -> Exceptions:
    """Validate a parsed exceptions document and build :class:`Exceptions`.

    :param data: the YAML document.
    :param source: file name for error messages.
    """
    data = _dates_to_text(data)
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        detail = "; ".join(f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors)
        raise ExceptionsError(f"invalid exceptions file {source}: {detail}")
    items = []
    seen: set[str] = set()
    for entry in data["exceptions"]:
        if entry["id"] in seen:
            raise ExceptionsError(f"invalid exceptions file {source}: duplicate id {entry['id']}")
        seen.add(entry["id"])
        items.append(ExceptionEntry(
            id=entry["id"], reason=entry["reason"], approver=entry["approver"], ticket=entry["ticket"],
            expires=dt.date.fromisoformat(entry["expires"]), finding_id=entry.get("finding_id"),
            match=tuple(sorted((entry.get("match") or {}).items())),
        ))
    return Exceptions(tuple(items))


def load_exceptions(path: str | Path | None = None) -> Exceptions:
    """Load and validate an exceptions file; a missing file means no exceptions.

    :param path: the file; relative paths are taken from include/config; None: the packaged example.
    """
    file = Path(path) if path else EXCEPTIONS_PATH
    if not file.is_absolute():
        file = CONFIG_DIR / file
    if not file.exists():
        log.warning("exceptions: %s does not exist; no findings are suppressed", file)
        return Exceptions(())
    return parse(yaml.safe_load(file.read_text(encoding="utf-8")) or {"version": 1, "exceptions": []}, str(file))


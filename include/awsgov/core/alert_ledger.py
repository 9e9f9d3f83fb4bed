"""The alert ledger: what each immediate alert (metric anomaly or event) was sent to, per channel and recipient.

One row per (``alert_id``, ``channel``, ``recipient``): ``channel`` is ``email`` (one row per address, so that a
message the SMTP server accepted for some recipients and refused for others is recorded as such, and only the
refused ones are tried again) or a notifier target (``sns:<topic arn>``, ``slack:<conn id>:<channel>``, with the
target as recipient). ``sent`` and ``refused`` (permanent: bad address, 5xx, rejected) close a row; ``failed``
(transient: network, 4xx, throttling) stays open and the next attempt sends to that channel and recipient only,
never again to one that succeeded. Table ``tables.ALERT_LEDGER``, partitioned by the alert's day, chunk ``all``;
rows change through :meth:`Store.update`, so the metric and the event alerts, which may run at the same moment,
never drop each other's rows.

Files written before issue #20 name the key ``anomaly_id`` and have no channel: :func:`read` takes them as e-mail
rows of that id, one per address of their recipient (a message was recorded as a whole then).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from include.awsgov.core import owners, tables

TABLE = "alert_ledger"
CHUNK = "all"
EMAIL = "email"
# Statuses that close a row; "failed" stays open and is retried.
DONE_STATUSES = ("sent", "refused")
KEY = ["alert_id", "channel", "recipient"]
LEGACY_KEY = "anomaly_id"
COLUMNS = [c for c in tables.ALERT_LEDGER.names if c != LEGACY_KEY]


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Ledger rows in the current shape: legacy rows get their ``alert_id`` from ``anomaly_id``, channel ``email``
    and one row per address of their recipient.

    :param frame: rows as stored (any mix of old and new files).
    """
    frame = frame.copy()
    if LEGACY_KEY in frame:
        legacy = frame["alert_id"].isna() | (frame["alert_id"] == "")
        frame.loc[legacy, "alert_id"] = frame.loc[legacy, LEGACY_KEY]
        if legacy.any():
            frame.loc[legacy, "channel"] = EMAIL
            frame["recipient"] = [owners.recipients(owners.canonical(r)) or [r] if old else [r]
                                  for r, old in zip(frame["recipient"], legacy, strict=True)]
            frame = frame.explode("recipient", ignore_index=True)
    frame["channel"] = frame["channel"].fillna(EMAIL).replace("", EMAIL)
    frame["recipient"] = frame["recipient"].fillna("")
    return frame[[c for c in COLUMNS if c in frame]]


def read(store: Any, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The ledger rows of these days, normalised (:func:`normalise`).

    :param store: the history store.
    :param start: first day.
    :param end: last day.
    """
    return normalise(store.read(TABLE, start, end, schema=tables.ALERT_LEDGER))


def closed(ledger: pd.DataFrame) -> set[tuple[str, str, str]]:
    """The (alert_id, channel, recipient) rows that need nothing more (sent or refused).

    :param ledger: from :func:`read`.
    """
    done = ledger[ledger["status"].isin(DONE_STATUSES)]
    return set(zip(done["alert_id"], done["channel"], done["recipient"], strict=True))


def open_rows(ledger: pd.DataFrame) -> set[tuple[str, str, str]]:
    """The (alert_id, channel, recipient) rows whose last attempt failed and that no later attempt closed.

    :param ledger: from :func:`read`.
    """
    failed = ledger[~ledger["status"].isin(DONE_STATUSES)]
    return set(zip(failed["alert_id"], failed["channel"], failed["recipient"], strict=True)) - closed(ledger)


def record(store: Any, entries: Sequence[Mapping[str, Any]]) -> None:
    """Merge rows into the ledger (a newer row for the same alert, channel and recipient replaces the older one).

    :param store: the history store.
    :param entries: rows with the ALERT_LEDGER columns (``anomaly_id`` may be left out) and ``day`` (partition).
    """
    if not entries:
        return
    frame = pd.DataFrame(list(entries))
    frame[LEGACY_KEY] = None
    for day, part in frame.groupby("day", sort=True):
        rows = part[tables.ALERT_LEDGER.names]

        def merge(existing: pa.Table, rows: pd.DataFrame = rows) -> pd.DataFrame:
            current = normalise(existing.to_pandas())
            current[LEGACY_KEY] = None
            keys = set(zip(*(rows[k] for k in KEY), strict=True))
            stale = pd.Series([k in keys for k in zip(*(current[k] for k in KEY), strict=True)],
                              index=current.index, dtype=bool)
            current = current[~stale]
            both = [f for f in (current[tables.ALERT_LEDGER.names], rows) if len(f)]
            return pd.concat(both, ignore_index=True) if len(both) > 1 else both[0]

        store.update(TABLE, day, CHUNK, merge, schema=tables.ALERT_LEDGER, sort_by=KEY)


def days_of(values: Iterable[Any]) -> tuple[dt.date, dt.date]:
    """First and last day (UTC) of some timestamps, for reading the ledger partitions they fall in."""
    days = pd.to_datetime(pd.Series(list(values)), utc=True).dt.date
    return days.min(), days.max()


def finished(ledger: pd.DataFrame) -> set[str]:
    """Alert ids that every row of which is closed (sent or refused): nothing is owed for them any more.

    An alert with no row, or with one failed row (a target or a recipient still owed), is not finished.

    :param ledger: from :func:`read`.
    """
    if ledger.empty:
        return set()
    open_ids = {alert_id for alert_id, _, _ in open_rows(ledger)}
    return set(ledger.loc[ledger["status"].isin(DONE_STATUSES), "alert_id"]) - open_ids

"""The weekly report's "events of the week": what the central bus brought that was not urgent enough to mail at once.

report.py reads the week's ``events`` into ``WeekData.events`` (:func:`read_week`, with owner and account name);
report_views.py puts :func:`view` of an owner's accounts (or of the whole organization) into the template context
as ``events``; include/templates/email/_events_of_week.html.j2 renders it. API calls are many and alike, so they are
counted per type; other events (GuardDuty, Config, Trusted Advisor, sign-ins) are listed, most severe first.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from include.awsgov.core import tables
from include.awsgov.events.ingest import API_CALL, EVENTS_TABLE, SEVERITIES

COLUMNS = ["event_id", "time", "account_id", "account_name", "owner", "source", "type", "resource", "actor",
           "severity", "route", "alert_rules", "detail_type"]


def read_week(store: Any, monday: dt.date, sunday: dt.date, *, owner_of: Callable[[str], str],
              name_of: Callable[[str], str]) -> pd.DataFrame:
    """The week's ``events`` with ``owner`` and ``account_name`` (empty when nothing was received).

    :param store: the history store.
    :param monday: first day of the week.
    :param sunday: last day of the week.
    :param owner_of: account id -> canonical owner (the report's resolver).
    :param name_of: account id -> account name.
    """
    frame = store.read(EVENTS_TABLE, monday, sunday, schema=tables.EVENTS)
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame["owner"] = [owner_of(a) for a in frame["account_id"]]
    frame["account_name"] = [name_of(a) for a in frame["account_id"]]
    return frame[COLUMNS].sort_values(["time", "event_id"], kind="mergesort").reset_index(drop=True)


def view(events: pd.DataFrame, account_ids: Iterable[str] | None = None, limit: int = 15) -> dict[str, Any]:
    """Template context of the section: counts, API calls per type, the notable other events.

    :param events: ``WeekData.events``.
    :param account_ids: an owner's accounts (None: the whole organization).
    :param limit: rows listed per table.
    """
    if events is None or events.empty:
        rows: list[Mapping[str, Any]] = []
    else:
        part = events if account_ids is None else events[events["account_id"].isin(set(account_ids))]
        rows = part.to_dict("records")
    calls = [r for r in rows if r["detail_type"] == API_CALL]
    others = sorted((r for r in rows if r["detail_type"] != API_CALL),
                    key=lambda r: (-SEVERITIES.index(r["severity"]) if r["severity"] in SEVERITIES else 1,
                                   -pd.Timestamp(r["time"]).value))
    by_type = Counter((r["type"], r["account_id"], r["account_name"]) for r in calls)
    return {
        "total": len(rows),
        "alerted": sum(1 for r in rows if r["route"] == "alert"),
        "api_calls": len(calls),
        "by_type": [{"type": t, "account_id": a, "account_name": n, "count": c}
                    for (t, a, n), c in sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]],
        "items": [{**r, "time": pd.Timestamp(r["time"]).to_pydatetime()} for r in others[:limit]],
        "more_items": max(0, len(others) - limit),
    }

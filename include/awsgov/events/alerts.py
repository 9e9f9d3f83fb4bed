"""Immediate mail to an account's owner for events routed to ``alert``, de-duplicated within a window.

The same path as metric anomaly alerts (alerts.py): recipient = the account's ``Owner`` tag, else
``mail.governance_address``; delivery by mail.py (SES or SMTP per settings); each alert recorded in the alert ledger
(``alert_ledger``, chunk ``all``, partition = the event's day) as soon as it is sent. The ledger key of an event
alert is ``evt-`` + a hash of (rule, account, resource, window): the same rule firing again for the same resource
within ``alerts.dedup_minutes`` (fixed windows from the epoch) maps to the same key and is not mailed twice, and a
redelivered or re-processed event never is. Failed (transient) sends stay open: every run looks again at
the alert events of the last ``alerts.retry_hours`` and sends what the ledger has not closed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from include.awsgov.anomaly.alerts import DONE_STATUSES, LEDGER_TABLE, mail_and_record, owner_addresses
from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess
from include.awsgov.core.mail import mailer_from_settings

log = logging.getLogger(__name__)


def alert_key(rule_id: str, account_id: str, resource: str, when: dt.datetime, dedup_minutes: int) -> str:
    """Ledger key of an event alert: equal for the same rule, account and resource within one window."""
    window = int(when.timestamp() // (max(1, int(dedup_minutes)) * 60))
    key = "\x1f".join(("event-alert", rule_id, account_id, resource or "", str(window)))
    return "evt-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


def pending(store: Any, events: pd.DataFrame, alerts_cfg: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (event, matched rule) not yet closed in the ledger, first event of each key only.

    :param store: the history store.
    :param events: ``events`` rows routed to ``alert``.
    :param alerts_cfg: events.yaml ``alerts``.
    """
    if events.empty:
        return events.assign(rule_id=[], key=[])
    rules = {r["id"]: r for r in alerts_cfg["rules"]}
    rows = []
    for rec in events.sort_values(["time", "event_id"]).to_dict("records"):
        when = pd.Timestamp(rec["time"]).to_pydatetime()
        for rule_id in filter(None, str(rec["alert_rules"]).split(",")):
            if rule_id not in rules:
                continue
            rows.append({**rec, "rule_id": rule_id, "rule_title": rules[rule_id]["title"],
                         "rule_severity": rules[rule_id]["severity"],
                         "key": alert_key(rule_id, rec["account_id"], rec["resource"], when,
                                          alerts_cfg["dedup_minutes"])})
    if not rows:  # no rule of these events is configured any more
        return events.iloc[0:0].assign(rule_id=[], key=[])
    frame = pd.DataFrame(rows).drop_duplicates("key")
    days = pd.to_datetime(frame["time"], utc=True).dt.date
    ledger = store.read(LEDGER_TABLE, days.min(), days.max(), schema=tables.ALERT_LEDGER)
    done = set(ledger.loc[ledger["status"].isin(DONE_STATUSES), "anomaly_id"])
    return frame[~frame["key"].isin(done)]


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def compose(alerts_cfg: Mapping[str, Any], account_id: str, account_name: str, rows: pd.DataFrame) -> tuple[str, str]:
    """Subject and plain-text body of one account's event alert (wording from events.yaml ``alerts``)."""
    names = {"account_id": account_id, "account_name": _one_line(account_name or account_id), "count": len(rows)}
    subject = _one_line(alerts_cfg["subject"].format(**names))
    lines = [alerts_cfg["intro"].format(**names), ""]
    limit = int(alerts_cfg["max_lines"])
    for row in rows.head(limit).to_dict("records"):
        lines.append(_one_line(alerts_cfg["line"].format(
            time=pd.Timestamp(row["time"]).strftime("%Y-%m-%d %H:%M UTC"), region=row["region"],
            severity=row["rule_severity"], title=row["rule_title"], resource=row["resource"] or "-",
            actor=row["actor"] or "-", event_id=row["event_id"])))
    if len(rows) > limit:
        lines.append(f"... and {len(rows) - limit} more")
    lines += ["", alerts_cfg["footer"].format(**names)]
    return subject, "\n".join(lines).strip() + "\n"


def send_event_alerts(access: AwsAccess, store: Any, cfg: Mapping[str, Any], alerts_cfg: Mapping[str, Any],
                      events: pd.DataFrame, account_names: Mapping[str, str], smtp: Any = None) -> dict[str, int]:
    """Mail each account owner its new alert events, once per key, and record every message in the ledger.

    :param access: admin-account access (Organizations tags; SES when it is the transport).
    :param store: the history store.
    :param cfg: settings (``mail``).
    :param alerts_cfg: events.yaml ``alerts``.
    :param events: ``events`` rows routed to ``alert`` (:func:`alert_events`); those already closed in the ledger
        are left alone.
    :param account_names: account id -> name, for the subject.
    :param smtp: SMTP parameters when the transport is smtp.
    """
    todo = pending(store, events, alerts_cfg)
    summary = {"pending": len(todo), "messages": 0, "sent": 0, "failed": 0, "refused": 0}
    if todo.empty:
        return summary
    mail_cfg = cfg["mail"]
    accounts = sorted(todo["account_id"].unique())
    owners = owner_addresses(access, accounts, mail_cfg["governance_address"])
    with mailer_from_settings(cfg, access, smtp) as mailer:
        for account_id in accounts:
            rows = todo[todo["account_id"] == account_id]
            subject, text = compose(alerts_cfg, account_id, account_names.get(account_id, ""), rows)
            mail_and_record(mailer, store, mail_cfg, summary, account_id=account_id, recipient=owners[account_id],
                            subject=subject, text=text, kind="event", entries=[
                                {"anomaly_id": r["key"], "rule_id": r["rule_id"], "severity": r["rule_severity"],
                                 "anomaly_day": pd.Timestamp(r["time"]).date()}
                                for r in rows.to_dict("records")])
    return summary


def alert_events(store: Any, event_ids: Sequence[str], days: Sequence[str], now: dt.datetime,
                 retry_hours: float) -> pd.DataFrame:
    """The alert events a run must look at: those it stored (these ids, read from the given days) and every alert
    event younger than ``retry_hours``, so that an alert whose send failed, or never happened (a crashed task), is
    sent by a later run; :func:`pending` drops what the ledger has closed.

    :param store: the history store.
    :param event_ids: ids of the alert events the run stored.
    :param days: the days (ISO) of the events the run stored.
    :param now: the run's time.
    :param retry_hours: alerts.retry_hours.
    """
    since = now - dt.timedelta(hours=float(retry_hours))
    parts = [store.read("events", since.date(), now.date(), schema=tables.EVENTS)]
    if event_ids and days:  # the run's own events may be older (late delivery) or stamped ahead of now
        parts.append(store.read("events", min(days), max(days), schema=tables.EVENTS))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=tables.EVENTS.names)
    frame = pd.concat(parts, ignore_index=True)
    recent = (frame["route"] == "alert") & (pd.to_datetime(frame["time"], utc=True) >= pd.Timestamp(since))
    return frame[frame["event_id"].isin(set(event_ids)) | recent].drop_duplicates("event_id")

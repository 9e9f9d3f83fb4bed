"""Immediate alerts for events routed to ``alert``, to each target of the rule, de-duplicated within a window.

A rule's ``notify`` (events.yaml, schema include/config/schema/events_alerts.schema.json) lists its targets: e-mail
to the account's owners (the default; recipient = the account's ``Owner`` tag, else ``mail.governance_address``,
delivery by mail.py, SES or SMTP per settings), an SNS topic, a Slack channel (core/notify.py; the notifiers are
Airflow's, built by airflow_conn.py and passed in as ``send``). Each alert is recorded in the alert ledger
(core/alert_ledger.py, partition = the event's day) per target and recipient as soon as it is sent. The ledger key
of an event alert is ``evt-`` + a hash of (rule, account, resource, window): the same rule firing again for the same
resource within ``alerts.dedup_minutes`` (fixed windows from the epoch) maps to the same key and is not sent twice,
and a redelivered or re-processed event never is. Failed (transient) sends stay open, for that target or recipient
only: every run looks again at the alert events of the last ``alerts.retry_hours`` and sends what the ledger has
not closed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from include.awsgov.anomaly.alerts import owner_addresses
from include.awsgov.core import alert_ledger, notify, tables
from include.awsgov.core.aws import AwsAccess
from include.awsgov.core.mail import mailer_from_settings

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema" / "events_alerts.schema.json"


class AlertsConfigError(ValueError):
    """The ``alerts`` section of events.yaml does not match its schema; the message names the key."""


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def rule_targets(alerts_cfg: Mapping[str, Any]) -> dict[str, list[notify.Target]]:
    """Rule id -> its notify targets, after checking the section against its schema (unknown keys refused).

    :param alerts_cfg: events.yaml ``alerts``.
    """
    errors = sorted(notify.validator(_schema()).iter_errors(alerts_cfg), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "alerts"
        raise AlertsConfigError(f"events.yaml alerts: {where}: {errors[0].message}")
    return {rule["id"]: notify.targets(rule.get("notify")) for rule in alerts_cfg["rules"]}


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
            if rule_id not in rules or rules[rule_id].get("notify") == []:
                continue  # a rule no longer configured, or one that sends nothing (onboard rules)
            rows.append({**rec, "rule_id": rule_id, "rule_title": rules[rule_id]["title"],
                         "rule_severity": rules[rule_id]["severity"],
                         "key": alert_key(rule_id, rec["account_id"], rec["resource"], when,
                                          alerts_cfg["dedup_minutes"])})
    if not rows:  # no rule of these events is configured any more
        return events.iloc[0:0].assign(rule_id=[], key=[])
    frame = pd.DataFrame(rows).drop_duplicates("key")
    done = alert_ledger.finished(alert_ledger.read(store, *alert_ledger.days_of(frame["time"])))
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
                      events: pd.DataFrame, account_names: Mapping[str, str], smtp: Any = None,
                      send: notify.Send | None = None) -> dict[str, int]:
    """Send each account's new alert events to the targets of their rules, once per key and target, and record
    every send in the ledger.

    :param access: admin-account access (Organizations tags; SES when it is the transport).
    :param store: the history store.
    :param cfg: settings (``mail``).
    :param alerts_cfg: events.yaml ``alerts``.
    :param events: ``events`` rows routed to ``alert`` (:func:`alert_events`); those already closed in the ledger
        are left alone.
    :param account_names: account id -> name, for the subject.
    :param smtp: SMTP parameters when the transport is smtp.
    :param send: ``send(target, subject, text) -> message id`` for SNS and Slack targets (airflow_conn.py).
    """
    targets = rule_targets(alerts_cfg)
    todo = pending(store, events, alerts_cfg)
    summary = {"pending": len(todo), "messages": 0, "sent": 0, "failed": 0, "refused": 0}
    if todo.empty:
        return summary
    mail_cfg = cfg["mail"]
    todo = todo.assign(alert_id=todo["key"], severity=todo["rule_severity"],
                       day=pd.to_datetime(todo["time"], utc=True).dt.date)
    closed = alert_ledger.closed(alert_ledger.read(store, todo["day"].min(), todo["day"].max()))
    accounts = sorted(todo["account_id"].unique())
    owners = owner_addresses(access, accounts, mail_cfg["governance_address"])
    with mailer_from_settings(cfg, access, smtp) as mailer:
        for account_id in accounts:
            name = account_names.get(account_id, "")
            notify.deliver(store, todo[todo["account_id"] == account_id], account_id=account_id,
                           owner=owners[account_id], kind="event",
                           compose=lambda part, a=account_id, n=name: compose(alerts_cfg, a, n, part),
                           targets_of=lambda row: targets.get(row["rule_id"], []), closed=closed, mailer=mailer,
                           mail_cfg=mail_cfg, send=send, summary=summary)
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

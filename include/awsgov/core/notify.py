"""Where an immediate alert goes, and sending one account's alerts to every target once, recorded in the ledger.

An alert rule names its targets (events.yaml ``alerts.rules[].notify``, default ``[{type: email}]``):

- ``{type: email}``: a message to the account's owners by mail.py (SES or SMTP per the settings);
- ``{type: sns, topic_arn: ...}``: a message published to an SNS topic (the Amazon provider's ``SnsNotifier``);
- ``{type: slack, channel: ..., conn_id: ...}``: a Slack message (the Slack provider's ``SlackNotifier``, token and
  API URL from the Airflow connection ``conn_id``).

This module decides what is sent where and records it (core/alert_ledger.py); the notifiers themselves are built by
``airflow_conn.notifier_sender`` and reach here as a ``send(target, subject, text)`` callable, so the package stays
free of Airflow. Each (alert, target, recipient) is a ledger row: a target that failed is tried again on the next
attempt (task retry or later run) while the others, already sent, are not sent again.

Text sent to SNS and Slack is plain: the subject is reduced to what SNS accepts (ASCII, one line, under 100
characters) and Slack's control characters ``& < >`` are escaped, so that a value from an event (a resource name,
an actor) cannot mention ``@channel`` or make a link. Nothing but the alert's wording is sent (no connection, no
token, no URL of a webhook).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
from referencing import Registry, Resource

from include.awsgov.core import alert_ledger, owners
from include.awsgov.core.mail import InvalidRecipient, build_message, is_transient

log = logging.getLogger(__name__)

EMAIL, SNS, SLACK = "email", "sns", "slack"
TYPES = (EMAIL, SNS, SLACK)
DEFAULT_TARGETS: tuple[Mapping[str, str], ...] = ({"type": EMAIL},)
# SNS Publish: Subject is ASCII, starts with a letter, number or punctuation, has no line break or control
# character and is under 100 characters (Amazon SNS API Reference, Publish, Subject).
SNS_SUBJECT_MAX = 99
# Slack: "&", "<" and ">" are the three characters to escape in message text (api.slack.com, Formatting text:
# Escaping text); a text over 40,000 characters is truncated by Slack (chat.postMessage, text).
SLACK_TEXT_MAX = 39_000

Send = Callable[["Target", str, str], str]
# The one schema of a rule's notify list; events_alerts.schema.json and metric_rules.schema.json refer to it by name.
NOTIFY_SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema" / "notify.schema.json"


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry().with_resource(NOTIFY_SCHEMA_PATH.name,
                                    Resource.from_contents(json.loads(NOTIFY_SCHEMA_PATH.read_text())))


def validator(schema: Mapping[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator of ``schema`` whose ``{"$ref": "notify.schema.json"}`` resolves to the notify list's schema.

    :param schema: a config file's schema (events alerts, metric rules).
    """
    return jsonschema.Draft202012Validator(schema, registry=_registry())


@dataclass(frozen=True)
class Target:
    """One destination of a rule's alerts.

    :param type: ``email``, ``sns`` or ``slack``.
    :param topic_arn: the SNS topic (sns).
    :param channel: the Slack channel (slack).
    :param conn_id: the Airflow connection of the Slack API (slack).
    """

    type: str
    topic_arn: str = ""
    channel: str = ""
    conn_id: str = ""

    @property
    def key(self) -> str:
        """The ledger's channel of this target (``email``, ``sns:<arn>``, ``slack:<conn id>:<channel>``)."""
        if self.type == SNS:
            return f"{SNS}:{self.topic_arn}"
        if self.type == SLACK:
            return f"{SLACK}:{self.conn_id}:{self.channel}"
        return EMAIL


def targets(notify: Iterable[Mapping[str, Any]] | None) -> list[Target]:
    """The targets of a rule's ``notify`` list (validated by the config schema; absent: e-mail only).

    :param notify: the rule's ``notify``.
    """
    out: list[Target] = []
    for item in notify if notify is not None else DEFAULT_TARGETS:
        kind = str(item["type"])
        if kind not in TYPES:
            raise ValueError(f"unknown notify type {kind!r}")
        target = Target(kind, str(item.get("topic_arn") or ""), str(item.get("channel") or ""),
                        str(item.get("conn_id") or ""))
        if target not in out:
            out.append(target)
    return out


def sns_subject(subject: str) -> str:
    """``subject`` as SNS accepts it: one line of printable ASCII, under 100 characters."""
    text = "".join(c if " " <= c <= "~" else "?" for c in " ".join(str(subject).split()))
    text = text.lstrip(" ") or "Governance alert"
    return text if len(text) <= SNS_SUBJECT_MAX else text[: SNS_SUBJECT_MAX - 3] + "..."


def slack_escape(text: str) -> str:
    """Slack message text with ``&``, ``<`` and ``>`` escaped (no mention, link or channel reference from data)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(subject: str, text: str) -> str:
    """The Slack message of an alert: the subject in bold on the first line, then the plain text, escaped."""
    body = f"*{slack_escape(' '.join(str(subject).split()))}*\n{slack_escape(text)}"
    return body if len(body) <= SLACK_TEXT_MAX else body[: SLACK_TEXT_MAX - 4] + "\n..."


def notifier_transient(exc: BaseException) -> bool:
    """Whether a notifier failure may succeed when retried: the same rules as mail for AWS errors; a Slack answer
    with status 429 or 5xx; anything else that is not a definite refusal (network, a missing connection) too.

    :param exc: what the notifier raised.
    """
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError (SNS)
        return is_transient(exc)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):  # slack_sdk SlackApiError: its SlackResponse
        return status == 429 or status >= 500
    return True


def _recipient_status(address: str, refused: Mapping[str, tuple[int, Any]]) -> tuple[str, str]:
    if address not in refused:
        return "sent", ""
    code, reason = refused[address]
    reason = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    return ("failed" if 400 <= int(code) < 500 else "refused"), f"{code} {reason}"[:500]


def _email(mailer: Any, mail_cfg: Mapping[str, Any], recipients: Sequence[str], subject: str, text: str,
           headers: Mapping[str, str]) -> tuple[str, dict[str, tuple[str, str]]]:
    """Send one message; the message id and (status, error) per recipient."""
    try:
        message = build_message(mail_cfg["sender"], list(recipients), subject, text, headers=headers)
        message_id = mailer.send(message)
    except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused (or outside the allowed domains)
        return "", {a: _recipient_status(a, exc.recipients) if a in exc.recipients else ("refused", str(exc)[:500])
                    for a in recipients}
    except InvalidRecipient as exc:
        return "", {a: ("refused", str(exc)[:500]) for a in recipients}
    except Exception as exc:  # noqa: BLE001 - any transport failure is recorded, not raised
        status = "failed" if is_transient(exc) else "refused"
        return "", {a: (status, f"{type(exc).__name__}: {exc}"[:500]) for a in recipients}
    refused = dict(getattr(mailer, "last_refused", {}) or {})
    return message_id, {a: _recipient_status(a, refused) for a in recipients}


def deliver(store: Any, rows: pd.DataFrame, *, account_id: str, owner: str, kind: str,
            compose: Callable[[pd.DataFrame], tuple[str, str]], targets_of: Callable[[Mapping[str, Any]], list[Target]],
            closed: set[tuple[str, str, str]], mailer: Any, mail_cfg: Mapping[str, Any], send: Send | None,
            summary: dict[str, int]) -> None:
    """Send one account's alerts to each of their targets, except where the ledger has them closed, and record
    every (alert, target, recipient) in the ledger.

    E-mail goes as one message per distinct set of recipients still owed the same alerts (normally one; after a
    partial SMTP refusal, a message to the refused addresses only). Each other target gets one message with the
    alerts it is owed.

    :param store: the history store.
    :param rows: the account's alerts: ``alert_id``, ``rule_id``, ``severity``, ``day`` and what ``compose`` reads.
    :param account_id: the account.
    :param owner: its owner key (``", "``-joined valid addresses, or the governance address).
    :param kind: value of the mail's alert header (``metric-anomaly``, ``event``).
    :param compose: alerts -> (subject, plain text).
    :param targets_of: an alert row -> its rule's targets.
    :param closed: ledger rows already closed (:func:`alert_ledger.closed`).
    :param mailer: an open mail.py mailer (None when no alert goes by e-mail).
    :param mail_cfg: settings ``mail``.
    :param send: ``send(target, subject, text) -> message id`` for sns and slack targets.
    :param summary: counters ``messages``, ``sent``, ``failed``, ``refused`` (per ledger row), updated.
    """
    addresses = owners.recipients(owner)
    email_groups: dict[tuple[str, ...], list[int]] = {}
    other: dict[Target, list[int]] = {}
    for pos, row in enumerate(rows.to_dict("records")):
        for target in targets_of(row):
            if target.type == EMAIL:
                owed = tuple(a for a in addresses if (row["alert_id"], EMAIL, a) not in closed)
                if owed:
                    email_groups.setdefault(owed, []).append(pos)
            elif (row["alert_id"], target.key, target.key) not in closed:
                other.setdefault(target, []).append(pos)
    now = dt.datetime.now(dt.UTC)
    entries: list[dict[str, Any]] = []

    def add(part: pd.DataFrame, channel: str, recipient: str, transport: str, subject: str, message_id: str,
            status: str, error: str) -> None:
        summary[status] += len(part)
        entries.extend({"alert_id": r["alert_id"], "channel": channel, "account_id": account_id,
                        "rule_id": r["rule_id"], "severity": r["severity"], "recipient": recipient,
                        "subject": subject, "message_id": message_id, "transport": transport, "status": status,
                        "error": error, "sent_at": now, "day": r["day"]} for r in part.to_dict("records"))

    headers = {"X-Awsgov-Alert": kind, "X-Awsgov-Account": account_id}
    for recipients, positions in email_groups.items():
        part = rows.iloc[positions]
        subject, text = compose(part)
        message_id, outcome = _email(mailer, mail_cfg, recipients, subject, text, headers)
        summary["messages"] += 1
        for address, (status, error) in outcome.items():
            add(part, EMAIL, address, mail_cfg["transport"], subject, message_id, status, error)
        log.info("alerts (%s): %s -> %s: %d alerts, %s", kind, account_id, ", ".join(recipients), len(part),
                 ", ".join(f"{a} {s}" for a, (s, _) in sorted(outcome.items())))
    for target, positions in other.items():
        part = rows.iloc[positions]
        subject, text = compose(part)
        message_id, status, error = "", "sent", ""
        try:
            if send is None:
                raise RuntimeError(f"no notifier for {target.type} targets")
            message_id = send(target, subject, text) or ""
        except Exception as exc:  # noqa: BLE001 - a failed notifier is recorded like a failed mail
            status = "failed" if notifier_transient(exc) else "refused"
            error = f"{type(exc).__name__}: {exc}"[:500]
        summary["messages"] += 1
        add(part, target.key, target.key, target.type, subject, message_id, status, error)
        log.info("alerts (%s): %s -> %s: %d alerts, %s %s", kind, account_id, target.key, len(part), status, error)
    alert_ledger.record(store, entries)

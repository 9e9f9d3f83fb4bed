"""Immediate alerts (mail to the account's owner, or the rule's SNS / Slack targets) for new high-severity metric
anomalies, at most once per anomaly and target.

After the accounts of a run are checked, the anomalies stored within the last ``alerts.max_age_hours`` (rules file)
at or above ``alerts.min_severity`` that the alert ledger does not list as sent (or refused) are grouped per
account into one short plain-text message to the account's ``Owner`` tag (Organizations
``ListTagsForResource``), or to the settings' ``mail.governance_address`` when the account has no usable owner.
Each recipient of each message is recorded in the alert ledger (core/alert_ledger.py, key ``alert_id`` = the
anomaly id) as soon as it is sent, so a rerun, a retry or an overlapping hourly run never mails an anomaly twice to
anyone. A send that may succeed later (network, throttling, SMTP 4xx, also for some recipients only) is recorded as
``failed`` and tried again, to those recipients only, by the next run while the anomaly is younger than
``max_age_hours``; a permanent refusal (bad address, SMTP 5xx, SES rejection) is recorded as ``refused`` and not
retried. Delivery itself is ``mail.py``'s, the per-recipient bookkeeping core/notify.py's.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from include.awsgov.anomaly.metrics import SEVERITIES, RuleSet
from include.awsgov.core import alert_ledger, notify, owners, tables
from include.awsgov.core.accounts import OWNER_KEYS, account_tags
from include.awsgov.core.aws import AwsAccess, error_code
from include.awsgov.core.mail import InvalidRecipient, mailer_from_settings, validate_address
from include.awsgov.core.store import Store

log = logging.getLogger(__name__)

EMAIL_ONLY = notify.targets(None)


def pending_alerts(
    store: Store, ruleset: RuleSet, window_end: dt.datetime, account_ids: Iterable[str] | None = None
) -> pd.DataFrame:
    """Stored anomalies that deserve an immediate alert and have not been mailed yet.

    :param store: the history store.
    :param ruleset: rules (its ``alerts`` section sets min_severity and max_age_hours).
    :param window_end: end of the run's window; anomalies older than max_age_hours before it are not alerted.
    :param account_ids: limit to these accounts (None: all).
    """
    cfg = ruleset.alerts
    since = window_end - dt.timedelta(hours=int(cfg["max_age_hours"]))
    frame = store.read("anomalies", since.date(), window_end.date(), schema=tables.ANOMALIES)
    if frame.empty:
        return frame
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    keep = frame["severity"].isin(SEVERITIES[SEVERITIES.index(cfg["min_severity"]) :])
    keep &= frame["timestamp"] >= pd.Timestamp(since)
    if account_ids is not None:
        keep &= frame["account_id"].isin(set(account_ids))
    targets = {r.id: r.targets for r in ruleset.rules}
    keep &= frame["rule_id"].map(lambda rule_id: bool(targets.get(rule_id, EMAIL_ONLY)))  # notify: [] sends none
    frame = frame[keep]
    done = alert_ledger.finished(alert_ledger.read(store, since.date(), window_end.date()))
    frame = frame[~frame["anomaly_id"].isin(done)]
    return frame.sort_values(["account_id", "timestamp", "rule_id", "anomaly_id"], kind="mergesort")


def owner_addresses(access: AwsAccess, account_ids: Sequence[str], fallback: str) -> dict[str, str]:
    """Alert recipients per account: the valid addresses of its Owner tag, else ``fallback`` (also when tags
    cannot be read).

    A tag may list several owners (``a@x.com, b@x.com`` or ``;``): it is split as the weekly report splits owners
    (owners.py), each address is checked and every valid one receives the alert; invalid ones are logged and left
    out. The value is the canonical owner key (``", "``-joined, :func:`owners.recipients` splits it again).

    :param access: the admin account's access layer (Organizations).
    :param account_ids: accounts to resolve.
    :param fallback: the settings' mail.governance_address.
    """
    try:
        tags = account_tags(access, account_ids)
    except (ClientError, BotoCoreError) as exc:
        log.warning("alerts: cannot read account tags (%s); using the governance address", error_code(exc) or exc)
        tags = {}
    out = {}
    for account_id in account_ids:
        tag = next((v for k, v in sorted(tags.get(account_id, {}).items()) if k.casefold() in OWNER_KEYS and v), "")
        valid = []
        for address in owners.recipients(owners.canonical(tag)):
            try:
                valid.append(validate_address(address))
            except InvalidRecipient as exc:
                log.warning("alerts: owner of %s: %s; left out", account_id, exc)
        out[account_id] = owners.canonical(", ".join(valid)) or fallback
    return out


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{float(value):.4g}"


def _one_line(text: Any) -> str:
    # Names come from Organizations and tags: never let them break a header or a line.
    return " ".join(str(text).split())


def _reason(value: Any) -> str:
    # Rows stored before the reason column read it as null.
    return _one_line(value) if isinstance(value, str) and value else "n/a"


def compose(
    cfg: Mapping[str, Any], account_id: str, account_name: str, rows: pd.DataFrame, titles: Mapping[str, str]
) -> tuple[str, str]:
    """Subject and plain-text body of one account's alert, worded by the rules file's ``alerts`` section.

    :param cfg: the ``alerts`` section.
    :param account_id: the account.
    :param account_name: its name in Organizations.
    :param rows: its new anomalies.
    :param titles: rule id -> rule title.
    """
    names = {"account_id": account_id, "account_name": _one_line(account_name or account_id), "count": len(rows)}
    subject = _one_line(cfg["subject"].format(**names))
    lines = [cfg["intro"].format(**names), ""]
    limit = int(cfg["max_lines"])
    for row in rows.head(limit).to_dict("records"):
        dims = json.loads(row["dimensions_json"] or "{}")
        lines.append(_one_line(cfg["line"].format(
            timestamp=pd.Timestamp(row["timestamp"]).strftime("%Y-%m-%d %H:%M UTC"),
            region=row["region"], namespace=row["namespace"], metric_name=row["metric_name"],
            dimensions=" ".join(f"{k}={v}" for k, v in sorted(dims.items())), statistic=row["statistic"],
            value=_fmt(row["value"]), expected=_fmt(row["expected"]), lower=_fmt(row["lower"]),
            upper=_fmt(row["upper"]), severity=row["severity"], rule_id=row["rule_id"],
            title=titles.get(row["rule_id"], row["rule_id"]), reason=_reason(row.get("reason")),
        )))
    if len(rows) > limit:
        lines.append(cfg["more"].format(count=len(rows) - limit))
    lines += ["", cfg["footer"].format(**names)]
    return subject, "\n".join(lines).strip() + "\n"


def send_alerts(
    access: AwsAccess, store: Store, cfg: Mapping[str, Any], ruleset: RuleSet, window_end: dt.datetime,
    account_names: Mapping[str, str], smtp: Any = None, send: notify.Send | None = None,
) -> dict[str, int]:
    """Send every account's new high-severity anomalies to the targets of their rules (default: its owners by
    mail), once per target and recipient, and record each send in the ledger.

    :param access: the admin account's access layer (Organizations tags; SES when it is the transport).
    :param store: the history store.
    :param cfg: settings (``mail`` section).
    :param ruleset: rules (``alerts`` section and rule titles).
    :param window_end: end of the run's window.
    :param account_names: the run's accounts, id -> name; anomalies of other accounts are left alone.
    :param smtp: SMTP connection parameters for mail.py when the transport is smtp.
    :param send: ``send(target, subject, text) -> message id`` for SNS and Slack targets (airflow_conn.py).
    """
    pending = pending_alerts(store, ruleset, window_end, account_names)
    summary = {"pending": len(pending), "messages": 0, "sent": 0, "failed": 0, "refused": 0}
    if pending.empty:
        log.info("alerts: nothing new to send")
        return summary
    mail_cfg = cfg["mail"]
    accounts = sorted(pending["account_id"].unique())
    owners = owner_addresses(access, accounts, mail_cfg["governance_address"])
    titles = {r.id: r.title for r in ruleset.rules}
    targets = {r.id: list(r.targets) for r in ruleset.rules}
    pending = pending.assign(alert_id=pending["anomaly_id"],
                             day=pd.to_datetime(pending["timestamp"], utc=True).dt.date)
    closed = alert_ledger.closed(alert_ledger.read(store, pending["day"].min(), pending["day"].max()))
    with mailer_from_settings(cfg, access, smtp) as mailer:
        for account_id in accounts:
            name = account_names.get(account_id, "")
            # The mail's X-Awsgov-Alert header lets mail rules file these apart from the weekly report.
            notify.deliver(store, pending[pending["account_id"] == account_id], account_id=account_id,
                           owner=owners[account_id], kind="metric-anomaly",
                           compose=lambda part, a=account_id, n=name: compose(ruleset.alerts, a, n, part, titles),
                           targets_of=lambda row: targets.get(row["rule_id"], EMAIL_ONLY), closed=closed,
                           mailer=mailer, mail_cfg=mail_cfg, send=send, summary=summary)
    return summary

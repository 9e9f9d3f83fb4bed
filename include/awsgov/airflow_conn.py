"""Airflow glue: the only module of the package that imports Airflow (the SDK at import, the rest lazily).

It turns an Airflow AWS connection (``aws_default``: extras ``endpoint_url``, ``service_config.<svc>.endpoint_url``,
``role_arn``, ``config_kwargs``) into an :class:`AwsAccess`, reads the ``awsgov_settings`` and
``awsgov_external_id`` Variables, picks the partition day of a run, and holds what every DAG shares: the AWS pool,
the default task arguments, failing a task without retries, and the mailer the settings choose.

Light at import (DAG files import it at parse time): no boto3, pandas or numpy until a task calls in.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import Asset

from include.awsgov.core.settings import load_settings

if TYPE_CHECKING:
    from include.awsgov.core.aws import AwsAccess
    from include.awsgov.core.mail import Mailer

# Assets that chain the DAGs: onboarding -> inventory, collection -> findings, anomaly checks -> anomalies;
# the weekly report is scheduled on findings. Names are stable ids; URIs say where the data lives by default.
ONBOARDED_ACCOUNTS_ASSET = Asset(name="awsgov_inventory", uri="file:///awsgov/store/inventory")
FINDINGS_ASSET = Asset(name="awsgov_findings", uri="file:///awsgov/store/findings")
ANOMALIES_ASSET = Asset(name="awsgov_anomalies", uri="file:///awsgov/store/anomalies")


# Every governance task: an owner the UI shows, retries with exponential backoff for transient AWS trouble, and an
# execution_timeout so that no input (a hostile package name, a server that never answers) holds a worker slot for
# ever: one hour is about 15 times the longest task measured (collection of 500 accounts x 4 regions, 243 s in the
# README's figures). A task that needs longer sets its own ``execution_timeout``.
DEFAULT_EXECUTION_TIMEOUT = dt.timedelta(hours=1)
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "governance",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=10),
    "execution_timeout": DEFAULT_EXECUTION_TIMEOUT,
}

# The pool every AWS-calling task runs in: read from the settings file at parse time (never a Variable there).
AWS_POOL: str = load_settings()["aws_pool"]


def fail_now(exc: BaseException) -> NoReturn:
    """Fail the running task without retries: bad input or a refused deployment does not get better by retrying.

    :param exc: the cause; its message is the task's failure message.
    """
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(str(exc)) from exc


def run_outcome(*upstream: Any) -> Any:
    """A leaf task downstream of ``upstream`` (every other task of the DAG) that fails the run when any of them
    failed: a run is green only if its work was done.

    Airflow takes a run's state from its leaf tasks, so a run whose failure is absorbed by an ``all_done`` task
    (the weekly org summary, the metric alerts) or ends in a skipped leaf would otherwise show green. Trigger rule
    ``one_failed``: it runs (and fails) as soon as one upstream task failed or could not
    run because of a failure, and is skipped, leaving the run green, when none did.
    """
    from airflow.sdk import task
    from airflow.sdk.exceptions import AirflowFailException

    @task(task_id="check_run_outcome", trigger_rule="one_failed", retries=0)
    def run_outcome_task() -> None:
        """Fail the run: a task of it failed (the red task in the grid says why)."""
        raise AirflowFailException("this run did not do its work: a task of it failed or could not run")

    watcher = run_outcome_task()
    for item in upstream:
        item >> watcher
    return watcher


def settings() -> dict[str, Any]:
    """Validated settings: file defaults overridden by the Airflow Variable ``awsgov_settings`` (JSON)."""
    from airflow.sdk import Variable

    raw = Variable.get("awsgov_settings", default=None)
    overrides = json.loads(raw) if isinstance(raw, str) and raw.strip() else (raw or None)
    return load_settings(overrides)


def external_id() -> str | None:
    """The read role's ExternalId: Variable ``awsgov_external_id`` or env ``AWSGOV_EXTERNAL_ID``; masked in logs."""
    from airflow.sdk import Variable
    from airflow.sdk.log import mask_secret

    value = Variable.get("awsgov_external_id", default=None) or os.environ.get("AWSGOV_EXTERNAL_ID")
    if value:
        mask_secret(value)
    return value


def aws_access(cfg: dict[str, Any] | None = None, context: dict[str, Any] | None = None,
               **options: Any) -> AwsAccess:
    """Access layer built from the settings' Airflow AWS connection through the Amazon provider's hook.

    :param cfg: settings (default: :func:`settings`).
    :param context: the task context; its dag_id and run_id name the assumed-role sessions.
    :param options: more AwsAccess fields, e.g. ``retry_mode="standard"``.
    """
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    from include.awsgov.core.aws import AwsAccess, role_session_name

    cfg = cfg or settings()
    hook = AwsBaseHook(aws_conn_id=cfg["aws_conn_id"], client_type="sts")
    conn = hook.conn_config
    region = conn.region_name or cfg["home_region"]
    endpoints = {
        svc: svc_cfg["endpoint_url"]
        for svc, svc_cfg in (conn.service_config or {}).items()
        if isinstance(svc_cfg, dict) and svc_cfg.get("endpoint_url")
    }
    dag_id = run_id = ""
    if context:
        dag_id = context["dag"].dag_id if context.get("dag") else ""
        run_id = context["run_id"] if context.get("run_id") else ""
    return AwsAccess(
        session=hook.get_session(region_name=region),
        region=region,
        endpoint_url=conn.endpoint_url,
        service_endpoints=endpoints,
        read_role_name=cfg["read_role_name"],
        external_id=external_id(),
        session_name=role_session_name("awsgov", dag_id, run_id),
        botocore_config=conn.botocore_config,
        **options,
    )


def partition_day(context: dict[str, Any], explicit: str | None = None) -> dt.date:
    """The day a run's data belongs to.

    Order: an explicit ``date`` Param (backfills and reruns of a past day), then the scheduled run's logical date,
    then, for manual/CLI runs that have no logical date in Airflow 3, the day the run was requested (``run_after``).

    :param context: the task context.
    :param explicit: ``YYYY-MM-DD`` from a Param, or None.
    """
    if explicit:
        return dt.date.fromisoformat(explicit)
    logical = context.get("logical_date")
    if logical is not None:
        return logical.date()
    return context["dag_run"].run_after.date()


def smtp_params(cfg: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """SMTP parameters for mail.py from the Airflow connection ``mail.smtp_conn_id``; None when mail goes by SES.

    Follows the SMTP provider's conventions for the connection's extras: implicit TLS unless ``disable_ssl``,
    STARTTLS (without implicit TLS) unless ``disable_tls``, ``timeout`` seconds. The password is masked in logs and
    must not be put in XCom: call this inside the task that sends.

    :param cfg: settings (default: :func:`settings`).
    """
    from airflow.sdk import Connection
    from airflow.sdk.log import mask_secret

    cfg = cfg or settings()
    mail = cfg.get("mail") or {}
    if mail.get("transport", "ses") != "smtp":
        return None
    conn = Connection.get(mail.get("smtp_conn_id") or "smtp_default")
    extra = conn.extra_dejson or {}
    if conn.password:
        mask_secret(conn.password)
    use_ssl = not bool(extra.get("disable_ssl", False))
    return {
        "host": conn.host or "",
        "port": int(conn.port or (465 if use_ssl else 25)),
        "login": conn.login or None,
        "password": conn.password or None,
        "ssl": use_ssl,
        "starttls": not use_ssl and not bool(extra.get("disable_tls", False)),
        "timeout": float(extra.get("timeout", 30)),
    }


def mailer(cfg: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> Mailer:
    """The mail transport the settings choose: SES through the admin account, or SMTP through ``mail.smtp_conn_id``.

    Built inside the task that sends (the SMTP password never travels through XCom).

    :param cfg: settings (default: :func:`settings`).
    :param context: the task context (names the AWS session).
    """
    from include.awsgov.core.mail import SES, mailer_from_settings

    cfg = cfg or settings()
    if (cfg.get("mail") or {}).get("transport", SES) == SES:
        return mailer_from_settings(cfg, aws_access(cfg, context))
    return mailer_from_settings(cfg, None, smtp_params(cfg))


def notifier(target: Any, subject: str, text: str, cfg: dict[str, Any] | None = None) -> Any:
    """The Airflow notifier of one SNS or Slack alert target (core/notify.py ``Target``), holding its message.

    SNS: the Amazon provider's ``SnsNotifier`` through the settings' AWS connection, in the topic's region. Slack: the
    Slack provider's ``SlackNotifier`` (``chat.postMessage``) through the target's connection (the token is the
    connection's password, an API URL other than Slack's its ``base_url`` extra); nothing of the connection is in
    the message.

    :param target: the target (``type`` sns or slack).
    :param subject: the alert's one-line subject.
    :param text: the alert's plain text.
    :param cfg: settings (default: :func:`settings`).
    """
    from include.awsgov.core import notify

    if target.type == notify.SNS:
        from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

        cfg = cfg or settings()
        return SnsNotifier(aws_conn_id=cfg["aws_conn_id"], target_arn=target.topic_arn,
                           region_name=target.topic_arn.split(":")[3], subject=notify.sns_subject(subject),
                           message=text)
    if target.type == notify.SLACK:
        from airflow.providers.slack.notifications.slack import SlackNotifier

        return SlackNotifier(slack_conn_id=target.conn_id, channel=target.channel,
                             text=notify.slack_text(subject, text), unfurl_links=False, unfurl_media=False)
    raise ValueError(f"no Airflow notifier for {target.type!r} targets")


def notifier_sender(cfg: dict[str, Any] | None = None) -> Any:
    """``send(target, subject, text)`` for core/notify.py: builds the target's notifier and runs it.

    The notifier's ``notify`` is called directly rather than through ``__call__``, which would first render the
    message as a Jinja template: an alert's text holds values from events (resource names, actors) that must be
    sent as they are, never evaluated.

    :param cfg: settings (default: :func:`settings`).
    """
    cfg = cfg or settings()

    def send(target: Any, subject: str, text: str) -> str:
        notifier(target, subject, text, cfg).notify({})
        return ""

    return send

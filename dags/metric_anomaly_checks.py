"""
### Metric anomaly checks: CloudWatch metrics of every account against static and learned thresholds, hourly

1. **validate_rules** (no AWS call): loads `include/config/metric_rules.yaml`, checks it against its schema and
   the cross-field rules (M <= N, one of static/dynamic, one of dimensions/discover) and fails the run with a
   message naming each bad rule and field. Also fixes the run's window (below) and the rules to run.
2. **list_accounts** (admin account): the ACTIVE accounts of the Organization (or the `accounts` param), in
   **batches**: at most `collection.max_mapped_tasks` (the `aws_api` pool's slots) mapped tasks, so that each task
   process pays its start-up once for many accounts; a run of few accounts keeps one account per task.
3. **check_account** (mapped over the batches, `aws_pool`): for each account of its batch, through the read role,
   in every region, discovers series with `ListMetrics`, fetches them with batched `GetMetricData` (500 queries
   and 100,800 datapoints per call at most), evaluates static rules with CloudWatch alarm semantics and dynamic
   rules with the learned band (`include/awsgov/anomaly/detector.py`), and merges the window's anomalies into
   `anomalies` (one file per account and anomaly day; an anomaly seen by an earlier, overlapping run is not stored
   twice). Denied accounts
   are recorded in `metric_coverage` and succeed; throttling or errors beyond botocore's retries are recorded,
   then, after the rest of the batch is checked, the task fails and is retried with backoff (a rerun stores no
   anomaly twice). To redo one account, trigger with the `accounts` param.
4. **send_alerts**: new anomalies at or above `alerts.min_severity` (high) go at once to their rule's `notify`
   targets: by default mail to the account's `Owner` tag (else `mail.governance_address`), or an SNS topic or a Slack
   channel (the providers' notifiers); one message per account and target, each anomaly at most once per target and
   recipient (alert ledger). Updates the `awsgov_anomalies` asset; the weekly report reads every stored anomaly.
5. **check_run_outcome** (trigger rule `one_failed`): fails the run when any task failed (an account whose check failed
   after its retries, or the alerts), so a run is green only when every account was checked and alerted.

**Window.** A scheduled run checks its data interval (the previous hour), shifted back by `window.lag_minutes`
so the last 5-minute period is published. A manual run checks the `hours` (default `window.manual_hours`) before
the moment it was requested, or before the `end` param (UTC ISO datetime, not shifted) to re-check a past hour.
Dynamic rules learn from `history_days` before the window. Reruns are harmless: same anomalies, no new rows, no
second mail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from include.awsgov.airflow_conn import ANOMALIES_ASSET, AWS_POOL, DEFAULT_ARGS, run_outcome

# Statuses of check_account worth a retry (transient); denied accounts and missing plans are not.
RETRYABLE = ("throttled_out", "error")


@dag(
    dag_id="metric_anomaly_checks",
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC", interval=timedelta(hours=1)),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    # Runs one after the other: the alert ledger and the per-account anomaly files are read-merge-written.
    max_active_runs=1,
    doc_md=__doc__,
    tags=["governance", "metrics", "anomaly"],
    params={
        "end": Param(None, type=["null", "string"], format="date-time", title="Window end",
                     description="UTC ISO datetime ending the window to (re)check; empty: the run's own hour."),
        "hours": Param(None, type=["null", "integer"], minimum=1, maximum=168, title="Window hours",
                       description="Window length in hours for manual runs; empty: window.manual_hours."),
        "accounts": Param(None, type=["null", "array"], items={"type": "string", "pattern": r"^[0-9]{12}\Z"},
                          title="Accounts", description="Only these account ids; empty: every ACTIVE account."),
        "rules": Param(None, type=["null", "array"], items={"type": "string", "pattern": r"^[a-z][a-z0-9_]{2,63}\Z"},
                       title="Rules", description="Only these rule ids; empty: every enabled rule."),
    },
    default_args=DEFAULT_ARGS,
)
def metric_anomaly_checks():
    @task(retries=0)
    def validate_rules(params: dict | None = None) -> dict:
        """Refuse invalid rules before any AWS call; fix the window and the rules of this run."""
        from include.awsgov.anomaly import findings, metrics

        params = params or {}
        context = get_current_context()
        ruleset = metrics.load_rules().select(params.get("rules"))
        run = context["dag_run"]
        start, end = findings.run_window(
            ruleset.window, interval_start=context.get("data_interval_start"),
            interval_end=context.get("data_interval_end"), requested_at=run.run_after,
            end=params.get("end"), hours=params.get("hours"))
        return {"start": start.isoformat(), "end": end.isoformat(), "rules": [r.id for r in ruleset.rules]}

    @task(pool=AWS_POOL)
    def list_accounts(params: dict | None = None) -> list[list[dict]]:
        """ACTIVE accounts of the Organization (optionally only those of the `accounts` param), in batches."""
        from include.awsgov.airflow_conn import aws_access, settings
        from include.awsgov.core import accounts
        from include.awsgov.core.batches import batches

        wanted = set((params or {}).get("accounts") or [])
        cfg = settings()
        access = aws_access(cfg, get_current_context())
        listed = [a for a in accounts.list_org_accounts(access) if a.get("Status") == accounts.ACTIVE]
        chosen = [{"account_id": a["Id"], "name": a.get("Name", "")} for a in listed
                  if not wanted or a["Id"] in wanted]
        return batches(sorted(chosen, key=lambda a: a["account_id"]), cfg["collection"]["max_mapped_tasks"])

    @task(pool=AWS_POOL, map_index_template="{{ account_label }}")
    def check_account(batch: list[dict], plan: dict) -> list[dict]:
        """Check each account of the batch in every region and merge its new anomalies into the store."""
        from include.awsgov.airflow_conn import aws_access, settings
        from include.awsgov.anomaly import findings, metrics
        from include.awsgov.core.batches import batch_label, each
        from include.awsgov.core.store import Store

        context = get_current_context()
        context["account_label"] = batch_label(batch)
        cfg = settings()
        access = aws_access(cfg, context)
        access.admin_id()  # so that the admin account itself is read with its own credentials, not a role
        window = (datetime.fromisoformat(plan["start"]), datetime.fromisoformat(plan["end"]))
        store, ruleset = Store(cfg["store_url"]), metrics.load_rules().select(plan["rules"])
        summaries, failures = each(
            batch, lambda a: findings.check_account(access, store, ruleset, a["account_id"], cfg["regions"], window),
            lambda a: f"account {a['account_id']}")
        failures += [f"account {s['account_id']}: {s['regions']} (recorded)" for s in summaries
                     if s["status"] in RETRYABLE]
        if failures:
            raise RuntimeError("; ".join(failures) + " -- retrying the batch")
        return summaries

    @task(pool=AWS_POOL, outlets=[ANOMALIES_ASSET], trigger_rule="all_done_min_one_success")
    def send_alerts(accounts: list[list[dict]], plan: dict) -> dict:
        """Send new high-severity anomalies to their rules' targets (owners by mail by default), once each."""
        from include.awsgov.airflow_conn import aws_access, notifier_sender, settings, smtp_params
        from include.awsgov.anomaly import alerts, metrics
        from include.awsgov.core.store import Store

        cfg = settings()
        access = aws_access(cfg, get_current_context())
        names = {a["account_id"]: a["name"] for batch in accounts for a in batch}
        return alerts.send_alerts(access, Store(cfg["store_url"]), cfg, metrics.load_rules().select(plan["rules"]),
                                  datetime.fromisoformat(plan["end"]), names, smtp=smtp_params(cfg),
                                  send=notifier_sender(cfg))

    plan = validate_rules()
    accounts = list_accounts()
    plan >> accounts
    checked = check_account.partial(plan=plan).expand(batch=accounts)
    alerted = send_alerts(accounts, plan)
    checked >> alerted
    # send_alerts also runs when some accounts failed (their alerts must not wait): without this, such a run is green.
    run_outcome(plan, accounts, checked, alerted)


metric_anomaly_checks()

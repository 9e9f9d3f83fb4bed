"""
### Governance events: the central event bus drives this DAG (event-based monitoring)

Member accounts forward security events and API calls to the admin account's central bus (baseline StackSet); the
central stack's rule delivers each event to two SQS queues: the **events queue** `governance-events` (dead-letter
queue attached by its redrive policy) and the **wake queue** `governance-events-wake` (a small message per event,
no event in it). This DAG is scheduled on the asset `awsgov_events_queue` **or** every 10 minutes (a sweep). The
asset's **AssetWatcher** (`include/awsgov/airflow_triggers.py` `QueueReadyTrigger`: the Amazon provider's SQS
trigger, in the triggerer, through the `aws_default` connection) polls only the wake queue: it deletes wake messages
and starts a run; it never touches an event, and no event body enters Airflow's metadata DB. Until the first
`account_onboarding` run has created the queues, the watcher checks every `wake_absent_poll_seconds` and logs one
warning in the triggerer's log saying so (no error every 2 s); the sweep's runs skip `store_events` with the same
advice in its log (skipped, not failed: nothing is broken, the setup is not finished). The events queue URL is read
at parse time from `AWSGOV_EVENTS_QUEUE_URL` or `include/config/events.yaml` `queue_url` (the wake queue is that
URL + `-wake`); without one the DAG has no watcher and runs on its sweep and by hand.

1. **store_events** (`aws_pool`): every run (woken, sweep, manual) drains the events queue until it is empty (up to
   `max_messages`, receiving for at most `drain_max_seconds`), chunk by chunk: receive, store, then delete. Nothing
   is deleted before it is stored; a chunk whose storing fails stays in the queue, fails the run, and comes back
   (dead-letter queue after 5 receives). A run that empties the queue strands nothing when Airflow's scheduler
   leaves a wake without a run (apache/airflow#56050, `max_active_runs=1`): the run that skipped it started after
   its event was queued; under a steady stream the time bound mails what a run has and leaves the rest to the next
   run (the wakes of those events) or, at worst, the sweep. Poison messages
   (oversized, not parseable, unknown source) go to the dead-letter queue and are counted in `event_rejects`; the
   rest are normalised, routed by the rules of `include/config/events.yaml`, and stored by event id (a redelivered
   message is stored once).
2. **send_event_alerts** (`aws_pool`): events routed to `alert` (root sign-in, console sign-in without MFA,
   high-severity GuardDuty finding, Config rule turning NON_COMPLIANT in a prod account, red Trusted Advisor
   security check, CloudTrail trail stopped or deleted, IAM user created in a member account) are sent at once
   to each target of the rule's `notify` (the account's owner by mail, an SNS topic, a Slack channel: Airflow's
   `SnsNotifier` / `SlackNotifier`), once per rule, account and resource within `alerts.dedup_minutes` (alert
   ledger, per target and recipient). A send that failed is tried again by Airflow's retries (the task fails after
   recording it), to that target only, and by every run while the event is younger than `alerts.retry_hours`.
   Everything else appears in the weekly report's "events of the week".
   **request_onboarding** / **start_account_onboarding**: an account created in the organization (Organizations
   `CreateAccountResult`, state SUCCEEDED) or moved into an OU listed in `include/config/onboarding.yaml`
   `ou_defaults` starts one `account_onboarding` run for it with that OU's defaults (run id
   `onboard_new_account__<account>`: a duplicate is skipped); failed creations, accounts already onboarded and
   accounts outside a governed OU are left alone.
API activity (every account's CloudTrail files in the central bucket, counted per hour, bursts alerted) is the DAG
`account_activity`, hourly and apart from this one, so that reading an hour of files never delays an alert.

See docs/events.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    AssetWatcher,
    CronTriggerTimetable,
    Param,
    dag,
    get_current_context,
    task,
)

from include.awsgov.airflow_conn import AWS_POOL, DEFAULT_ARGS
from include.awsgov.airflow_triggers import QueueReadyTrigger
from include.awsgov.core.settings import load_settings
from include.awsgov.events.ingest import events_config, watcher_queue_url

# Parse time reads only files and the environment (no Variable, no connection, no AWS call).
_SETTINGS = load_settings()
_CFG = events_config()
WAKE_QUEUE_URL = watcher_queue_url(_CFG)
EVENTS_QUEUE_ASSET = Asset(
    name="awsgov_events_queue",
    uri=f"sqs://awsgov/{_CFG['queue_name']}",
    watchers=[
        AssetWatcher(
            name="awsgov_events_sqs",
            # Wake messages only: deleting them on reception loses nothing (the events stay in the events queue).
            # Until onboarding creates the queue, the trigger waits quietly and warns once (issue #20).
            trigger=QueueReadyTrigger(
                sqs_queue=WAKE_QUEUE_URL, aws_conn_id=_SETTINGS["aws_conn_id"],
                absent_poll_seconds=int(_CFG["wake_absent_poll_seconds"]),
                max_messages=int(_CFG["wake_max_messages"]), num_batches=int(_CFG["wake_num_batches"]),
                wait_time_seconds=int(_CFG["wake_wait_seconds"]), waiter_delay=int(_CFG["poll_seconds"]),
            ),
        )
    ] if WAKE_QUEUE_URL else [],
)


@dag(
    dag_id="governance_events",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(_CFG["sweep_cron"], timezone="UTC"), assets=[EVENTS_QUEUE_ASSET]),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # one drainer at a time; wakes that arrive meanwhile become the next run
    default_args=DEFAULT_ARGS,
    tags=["governance", "events", "security"],
    params={
        "max_messages": Param(
            int(_CFG["drain_max_messages"]), type="integer", minimum=1, maximum=100000,
            description="Drain at most this many messages from the events queue (the rest: the next run).",
        ),
    },
)
def governance_events():
    @task(pool=AWS_POOL)
    def store_events() -> dict:
        """Drain the events queue until empty: each chunk -> `events` (normalised, routed, once per id) or the
        dead-letter queue (poison), then deleted from SQS; a failed store fails the task (red run)."""
        import logging

        from include.awsgov.airflow_conn import aws_access, settings
        from include.awsgov.core.store import Store
        from include.awsgov.events import ingest

        log = logging.getLogger("airflow.task")
        context = get_current_context()
        cfg, ecfg = settings(), ingest.events_config()
        wakes = ingest.wake_count(e.extra for evs in context["triggering_asset_events"].values() for e in evs)
        access = aws_access(cfg, context)
        store = Store(cfg["store_url"])
        try:
            received, rows, fresh, rejects = ingest.drain_and_ingest(
                access, store, ecfg, int(context["params"]["max_messages"]), datetime.now(UTC))
        except ingest.QueueMissing as exc:  # before the first onboarding: nothing failed, nothing to do yet
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(str(exc)) from exc
        log.info("events: %d wake message(s); %d messages drained from %s", wakes, received, ecfg["queue_name"])
        summary = ingest.summarise(rows, fresh, rejects, received)
        log.info("events: %s; %d alert events, %d day(s), %d hour(s) of API activity",
                 {k: summary[k] for k in ("received", "stored", "duplicates", "rejected")},
                 len(summary["alert_event_ids"]), len(summary["days"]), len(summary["hours"]))
        return summary

    @task(pool=AWS_POOL)
    def send_event_alerts(summary: dict) -> dict:
        """Mail the owners of accounts with alert events not yet mailed (this run's, and recent ones whose send
        failed), de-duplicated within the window (alert ledger); fail after recording a failed send."""
        from include.awsgov.airflow_conn import aws_access, notifier_sender, settings, smtp_params
        from include.awsgov.core import accounts
        from include.awsgov.core.store import Store
        from include.awsgov.events import alerts, ingest

        cfg, alerts_cfg = settings(), ingest.events_config()["alerts"]
        context = get_current_context()
        store = Store(cfg["store_url"])
        rows = alerts.alert_events(store, summary["alert_event_ids"], summary["days"], datetime.now(UTC),
                                          alerts_cfg["retry_hours"])
        if alerts.pending(store, rows, alerts_cfg).empty:
            return {"pending": 0, "messages": 0}
        access = aws_access(cfg, context)
        names = {a["Id"]: a.get("Name", "") for a in accounts.list_org_accounts(access)}
        out = alerts.send_event_alerts(access, store, cfg, alerts_cfg, rows, names, smtp_params(cfg),
                                       send=notifier_sender(cfg))
        if out.get("failed"):
            # Recorded as failed (the ledger keeps what was sent from being sent twice): Airflow's retries and the
            # next runs try again; a failed task shows that alerts are not going out.
            raise RuntimeError(f"event alerts: {out['failed']} alert(s) could not be sent; see the task log")
        return out

    @task(pool=AWS_POOL)
    def request_onboarding(summary: dict) -> list[dict]:
        """New accounts of this run's events (Organizations account created, or moved into an OU) in a governed OU
        and not onboarded yet -> one account_onboarding trigger each (run id, conf = the OU's defaults)."""
        from include.awsgov.airflow_conn import aws_access, settings
        from include.awsgov.core import tables
        from include.awsgov.core.store import Store
        from include.awsgov.events import ingest, new_accounts

        cfg, ecfg = settings(), ingest.events_config()
        onboard_rules = {r["id"] for r in ecfg["alerts"]["rules"] if r.get("onboard")}
        store = Store(cfg["store_url"])
        ids = set(summary["alert_event_ids"])
        rows = [r for r in (store.read("events", min(summary["days"]), max(summary["days"]), schema=tables.EVENTS)
                            .to_dict("records") if summary["days"] else []) if r["event_id"] in ids]
        candidates = new_accounts.subjects(rows, onboard_rules)
        if not candidates:
            return []
        inventory = store.read(tables.ONBOARDED_ACCOUNTS_TABLE, schema=tables.ONBOARDED_ACCOUNTS)
        org = aws_access(cfg, get_current_context()).client("organizations")
        requests = new_accounts.onboarding_requests(org, candidates, set(inventory["account_id"]),
                                                    new_accounts.ou_defaults())
        return [{"trigger_run_id": r["trigger_run_id"], "conf": r["conf"]} for r in requests]

    summary = store_events()
    send_event_alerts(summary)
    # One account_onboarding run per new account: its run id names the account, so a second request for it (a
    # redelivered event, a creation then a move) is skipped. Triggered with a conf rather than through an asset:
    # the onboarding Params (owner, team, environment) have no defaults, which Airflow allows only on unscheduled DAGs,
    # and a conf is checked by them like the form.
    TriggerDagRunOperator.partial(
        task_id="start_account_onboarding", trigger_dag_id="account_onboarding", skip_when_already_exists=True,
        wait_for_completion=False, logical_date=None,
    ).expand_kwargs(request_onboarding(summary))


governance_events()

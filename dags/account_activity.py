"""
### Account activity: every account's API calls per hour, from the CloudTrail files in the central bucket

Every account's trail (baseline StackSet) writes its log files to the central bucket. Once an hour, after
`activity.settle_minutes` (`include/config/events.yaml`, schedule `activity.schedule_cron`), **check_activity**
(`aws_pool`) reads in bulk every complete delivery hour not read yet within `activity.lookback_hours` (one listing
per account and region, then the files), and again `activity.recount_hours` times an hour apart (CloudTrail's
delivery time is not guaranteed: a late file is counted once, the hour's chunk is replaced). It stores API calls per
hour, account, event type and principal type in `account_activity`, runs the anomaly detector on each account's
categories (IAM changes, security-group changes, root activity...), stores bursts in `anomalies` (asset
`awsgov_anomalies`) and mails them through the metric alert path (alert ledger: once each).

No API call travels through SQS for this (the bus forwards alert candidates only), and it is its own DAG so that
reading an hour of files for a large organization never holds up `governance_events`' alerts. A rerun reads and
replaces the same hours: nothing is counted twice. See docs/events.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from include.awsgov.airflow_conn import ANOMALIES_ASSET, AWS_POOL, DEFAULT_ARGS
from include.awsgov.events.ingest import events_config

_CFG = events_config()["activity"]


@dag(
    dag_id="account_activity",
    doc_md=__doc__,
    schedule=CronTriggerTimetable(_CFG["schedule_cron"], timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # a run reads every hour not read yet; two at once would read the same hours
    default_args=DEFAULT_ARGS,
    tags=["governance", "events", "anomaly"],
)
def account_activity():
    @task(pool=AWS_POOL, outlets=[ANOMALIES_ASSET])
    def check_activity() -> dict:
        """Hourly API activity read in bulk from the CloudTrail log files of every hour not read yet; bursts ->
        `anomalies` -> the metric alert path."""
        from include.awsgov.airflow_conn import aws_access, settings, smtp_params
        from include.awsgov.anomaly import alerts
        from include.awsgov.anomaly.metrics import load_rules
        from include.awsgov.core import accounts
        from include.awsgov.core.store import Store
        from include.awsgov.events import activity, ingest

        cfg, acfg = settings(), ingest.events_config()["activity"]
        store = Store(cfg["store_url"])
        hours = activity.hours_to_read(store, datetime.now(UTC), int(acfg["lookback_hours"]),
                                       int(acfg["settle_minutes"]), int(acfg["recount_hours"]))
        if not hours:
            return {"hours": 0, "activity_rows": 0, "bursts": 0, "new_bursts": 0}
        access = aws_access(cfg, get_current_context())
        org_accounts = accounts.list_org_accounts(access)
        org_id = (access.client("organizations").describe_organization()["Organization"]["Id"]
                  if acfg["organization_trail"] else None)
        bucket = cfg["central"]["log_bucket"].format(admin_account_id=access.admin_id())
        s3, written, files = access.client("s3"), 0, 0
        for hour, recount in hours:
            rows, stats = activity.read_hour(s3, bucket, [a["Id"] for a in org_accounts], cfg["regions"], hour,
                                             trail_prefix=acfg["trail_prefix"], org_id=org_id,
                                             workers=int(acfg["workers"]))
            written += activity.store_hour(store, hour, rows, recount)
            files += stats["files"]
        bursts = activity.detect_bursts(store, [hour for hour, _ in hours], acfg)
        fresh = activity.store_bursts(store, bursts)
        out = {"hours": len(hours), "files": files, "activity_rows": written, "bursts": len(bursts),
               "new_bursts": len(fresh)}
        if fresh:
            names = {a["Id"]: a.get("Name", "") for a in org_accounts if a["Id"] in {r["account_id"] for r in fresh}}
            end = max(r["timestamp"] for r in fresh)
            out["alerts"] = alerts.send_alerts(access, store, cfg, load_rules(), end, names, smtp_params(cfg))
        return out

    check_activity()


account_activity()

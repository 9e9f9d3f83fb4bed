"""
### Weekly compliance report: one HTML report per owner, e-mailed once, plus an org-wide summary

Reads **only the history store** (no AWS call except SES when that is the transport, and the change lookup below).

0. **lookup_changes** (pool `aws_api`): for the report's best-ranked non-compliant Config resources
   (`report.change_history.max_items`), when each last changed (Config resource history) and who changed it
   (CloudTrail event history: principal, event name, source IP), written to the store (`change_history`) and shown
   next to the item. Bounded and cached per resource; AWS errors and answers of an unexpected shape become the item's
   status, and `build_reports` runs whatever became of this task (trigger rule `all_done`): the enrichment never
   blocks the report (`include/awsgov/report/change_history.py`, `docs/inventory.md`).
1. **build_reports**: the week's findings, deltas against the previous week, score cards with 8-week trends,
   coverage gaps, anomalies and exceptions (`include/awsgov/report/week.py`); one report per owner (resource `Owner`
   tag, else account owner, else the OU default `ou_owners`, else `mail.governance_address`), rendered as HTML
   (autoescaped), plain text and a CSV of the owner's open findings, archived in the store under
   `reports/week=YYYY-Www/<owner-slug>.html`. Owners the send ledger already lists for the week are skipped.
2. **send_reports** (mapped over batches of `report.send_batch_size` owners, one SMTP connection per batch): one
   message per owner over SES or SMTP (`mail.transport`; SMTP parameters from the Airflow connection
   `mail.smtp_conn_id`). Malformed or header-injecting addresses are refused and recorded, the others still
   sent; transient failures are retried with backoff, then recorded as failed and the task fails so that Airflow
   retries it: the retry reads the ledger first and sends only what is missing, never an address already sent or
   refused.
3. **send_org_summary** (trigger rule `all_done`): the organization summary, including each owner's delivery
   outcome read from the ledger, to `mail.governance_address`, once per week. It runs even when sending failed, so
   failures are reported; it is skipped only when `build_reports` failed.
4. **check_run_outcome** (trigger rule `one_failed`): fails the run when any task failed, so a run is green only when
   its reports went out (the summary above runs whatever happened, and would otherwise leave a failed run green).

**No data.** A week in which nothing was collected (a fresh install catching up) fails `build_reports` at once,
without retries, with a message naming the week and the last collected day.

**Which week.** The `week` Param (ISO week, e.g. `2026-W48`) wins: any past week can be (re)sent. Otherwise the
last complete ISO week before the run: the Monday 06:00 run reports the week that just ended.

**Schedule: time or asset.** `AssetOrTimeSchedule`: Monday 06:00 UTC (a 7-day interval) *or* whenever the
collection DAG updates `awsgov_findings`. This is safe only because sending is once per owner per week whatever
triggers the run: the send ledger (`send_ledger`, one chunk per owner and week) makes every later run of the same
week skip owners already sent, without even re-rendering them. What it buys: the week's reports go out right
after the first collection of the new week has finished (fresh data, not a fixed hour that may race the
collection), the 06:00 run still mails if collection is broken (the report shows how stale its data is), and a
week whose sending failed (SMTP down) is retried by the next day's asset-triggered run without anyone stepping in.
`max_active_runs=1` keeps two runs from sending the same week at once.

**Params.** `week`; `resend` (send again even if the ledger says sent); `dry_run` (render and archive under
`dry-run/`, write .eml files, send nothing, leave the ledger alone); `out_dir` (also write `reports/*.html` and
`emails/*.eml` there; default: settings `report.out_dir`; it must be inside that folder, and without it set the Param
is refused).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, get_current_context, task

from include.awsgov.airflow_conn import AWS_POOL, DEFAULT_ARGS, FINDINGS_ASSET, fail_now, run_outcome


def _context(params: dict | None) -> tuple:
    """Settings, store, the week to report, the output folder and the task context of the running task."""
    from include.awsgov.airflow_conn import settings
    from include.awsgov.core.store import Store
    from include.awsgov.report.delivery import checked_out_dir
    from include.awsgov.report.week import Week, last_complete_week

    context = get_current_context()
    params = params or {}
    cfg = settings()
    if params.get("week"):
        week = Week.parse(params["week"])
    else:
        reference = (context.get("data_interval_end") or context.get("logical_date")
                     or context["dag_run"].run_after)
        week = last_complete_week(reference)
    try:
        out_dir = checked_out_dir(params.get("out_dir"), (cfg.get("report") or {}).get("out_dir"))
    except ValueError as exc:
        fail_now(exc)  # every task starts here: a refused folder stops the run before any work
    return cfg, Store(cfg["store_url"]), week, out_dir, context


def _mailer_factory(cfg: dict, context: dict):
    """Opens the configured transport inside the sending task (credentials never leave it)."""
    from include.awsgov.airflow_conn import mailer

    return lambda: mailer(cfg, context)


@dag(
    dag_id="weekly_compliance_report",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * 1", timezone="UTC", interval=timedelta(days=7)),
        assets=[FINDINGS_ASSET],
    ),
    start_date=datetime(2026, 1, 5, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["governance", "report", "email"],
    params={
        "week": Param(None, type=["null", "string"], pattern=r"^\d{4}-W(0[1-9]|[1-4][0-9]|5[0-3])\Z",
                      title="ISO week", description="e.g. 2026-W48; empty: the last complete week before the run."),
        "resend": Param(False, type="boolean", title="Resend",
                        description="Send again to owners the ledger lists as already sent for that week."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Render and archive everything (under dry-run/), send nothing."),
        "out_dir": Param(None, type=["null", "string"], title="Output folder",
                         description="Also write reports/*.html and emails/*.eml here: a folder inside the "
                         "settings' report.out_dir (others are refused before any work)."),
    },
    default_args={**DEFAULT_ARGS, "retry_delay": timedelta(minutes=1), "max_retry_delay": timedelta(minutes=30)},
)
def weekly_compliance_report():
    # all_done: the change lookup only enriches the report; whatever became of it, the report is built (it shows
    # whatever change_history holds for the day, possibly nothing).
    @task(inlets=[FINDINGS_ASSET], trigger_rule="all_done")
    def build_reports(params: dict | None = None) -> list[int]:
        """Render and archive every pending owner's report and its manifest; return the send batches."""
        from include.awsgov.report.delivery import build_reports as build
        from include.awsgov.report.week import NoDataError

        cfg, store, week, _, context = _context(params)
        try:
            summary = build(store, week, cfg, resend=bool((params or {}).get("resend")),
                            dry_run=bool((params or {}).get("dry_run")))
        except NoDataError as exc:  # retrying cannot create a week's data: say so at once
            fail_now(NoDataError(f"no report: {exc}. Reports need governance_collection to have run in the week"))
        context["ti"].xcom_push(key="summary", value=summary)
        size = int(cfg["report"]["send_batch_size"])
        return list(range((summary["rendered"] + size - 1) // size))

    @task(pool=AWS_POOL, map_index_template="{{ batch_label }}")
    def send_reports(batch: int, params: dict | None = None) -> dict:
        """Send one batch of owner reports over one connection and record each in the ledger."""
        from include.awsgov.report.delivery import manifest_path
        from include.awsgov.report.delivery import send_reports as send

        cfg, store, week, out_dir, context = _context(params)
        size = int(cfg["report"]["send_batch_size"])
        context["batch_label"] = f"owners {batch * size + 1}-{(batch + 1) * size}"
        manifest = manifest_path(week, bool((params or {}).get("dry_run")))
        summary = send(store, manifest, cfg, _mailer_factory(cfg, context), batch=batch, out_dir=out_dir)
        if summary["failed"]:
            # Recorded as failed in the ledger; failing the task lets Airflow retry just those owners.
            raise RuntimeError(f"{summary['failed']} report(s) not delivered after retries: {summary['failed_slugs']}")
        return summary

    # all_done: the summary also goes out when sending failed (it reports the failures) or had nothing to send.
    @task(pool=AWS_POOL, trigger_rule="all_done")
    def send_org_summary(params: dict | None = None) -> dict:
        """Send the org-wide summary with every owner's delivery outcome to the governance address."""
        from airflow.sdk.exceptions import AirflowSkipException

        from include.awsgov.report.delivery import manifest_path
        from include.awsgov.report.delivery import send_org_summary as send

        cfg, store, week, out_dir, context = _context(params)
        if context["ti"].xcom_pull(task_ids="build_reports", key="summary") is None:
            # This run built nothing (build_reports failed): no summary of a stale manifest.
            raise AirflowSkipException("build_reports produced no manifest in this run")
        manifest = manifest_path(week, bool((params or {}).get("dry_run")))
        return send(store, manifest, cfg, _mailer_factory(cfg, context), out_dir=out_dir)

    @task(pool=AWS_POOL)
    def lookup_changes(params: dict | None = None) -> dict:
        """When and by whom the report's top non-compliant Config resources last changed (Config + CloudTrail)."""
        from include.awsgov.airflow_conn import aws_access
        from include.awsgov.report.change_history import lookup_for_report

        cfg, store, week, _, context = _context(params)
        return lookup_for_report(aws_access(cfg, context), store, week, cfg)

    batches = build_reports()
    lookup_changes() >> batches
    sent = send_reports.expand(batch=batches)
    summary = send_org_summary()
    [batches, sent] >> summary
    run_outcome(batches, sent, summary)  # the summary runs whatever happened: without this a failed run is green


weekly_compliance_report()

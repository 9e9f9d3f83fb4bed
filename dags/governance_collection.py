"""
### Governance collection: Trusted Advisor, AWS Config, GuardDuty, Macie and SSM inventory of every account, daily

1. **list_accounts** (admin account, once): the Organization's accounts (`ListAccounts`). Suspended accounts are not
   collected; the management account is collected like any other. Then, in the same task (one process start less on
   the run's path), the organization-level reads -- the Config aggregator's source status (the reason shown when a
   snapshot is missing), the Trusted Advisor check catalogue, GuardDuty and Macie through their delegated
   administrators (one org-wide listing per region) -- read at once (three threads) and staged as one file per
   table with every account's rows, which each batch reads once and cuts per account. Returns the accounts to
   collect in **batches**: by default as many batches as `collection.max_mapped_tasks` (size it to the `aws_api`
   pool's slots) with at least `collection.max_workers` accounts each, so that every task keeps its threads busy and
   pays its start-up once for many accounts; `collection.accounts_per_task` fixes the batch size instead.
   **account_tags**, beside the whole collection: the accounts with their tags (owner, team, environment) and
   parent OU, merged with the onboarding inventory, written to `accounts` (suspended ones recorded too). The tags
   are one Organizations call per account at its low request rate (10/s: 100 s at 1,000 accounts), the slowest
   read of a run; nothing collected needs them, so no batch waits for them. It makes few, rate-bound calls, so it
   takes no slot of the `aws_api` pool, which sizes the batches.
2. **collect_account** (mapped over the batches): Config compliance from the day's configuration snapshots and the
   SSM inventory from the resource data sync (central bucket, admin credentials), the staged slices, and Trusted
   Advisor through each account's read role (refreshes requested, never awaited). AWS errors and missing deliveries
   (AccessDenied, no support plan, no snapshot, service off) become `coverage` rows with their reason and the task
   succeeds: a denied account is a coverage gap, not a failure. Only bugs fail a batch, and a failed batch fails
   the run (red): clear it in the grid to rerun it.
3. **finish_run**: drops chunks of accounts that are no longer collected, compacts each per-account table's day
   into one read-cache file (`_compact.parquet`, see docs/store.md), writes the `collection_runs` row and updates
   the `awsgov_findings` asset, which schedules the weekly report. A source that failed in every account and
   region (no `ok` coverage row; errors, throttling or refusals only) fails the run after storing: a broken bucket
   policy or a missing permission is red, not a quiet page of gaps.
4. **export_findings**: the day's open findings (Trusted Advisor, Config, anomalies, GuardDuty, Macie) as OCSF and
   ASFF files in the store (`exports.export`) and, when `exports.securityhub_import` is on, imported into Security
   Hub with BatchImportFindings (docs/threats.md).

**Rerun of some accounts**: trigger with the `accounts` param (account ids) and the `date` of the day to redo: only
those accounts are collected again (their chunks replaced), every other account's data of the day is kept.

**SSM inventory** (`inventory.collect`, `docs/inventory.md`): tables `software_inventory` and `package_findings`
(settings `inventory.prohibited_packages`), coverage source `ssm_inventory`.

**Which day a run writes.** The `date` param (YYYY-MM-DD) wins, so any past day can be re-collected; otherwise the
scheduled run's logical date; otherwise (manual and CLI runs have no logical date in Airflow 3) the day the run was
requested (`run_after`). A rerun of a day replaces that day's data (one file per account and table), it never adds
to it.

Tables and columns: `docs/store.md`. Concurrency: the `aws_pool` pool bounds tasks, `collection.max_workers`
bounds calls inside a task.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from airflow.sdk import Param, dag, get_current_context, task

from include.awsgov.airflow_conn import AWS_POOL, DEFAULT_ARGS, FINDINGS_ASSET, fail_now

log = logging.getLogger(__name__)


def _run_context(params: dict) -> tuple:
    """The settings, store, partition day and context of the running task."""
    from include.awsgov.airflow_conn import partition_day, settings
    from include.awsgov.core.store import Store

    context = get_current_context()
    cfg = settings()
    return cfg, Store(cfg["store_url"]), partition_day(context, (params or {}).get("date")), context


@dag(
    dag_id="governance_collection",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["governance", "collection", "trusted-advisor", "config"],
    params={
        "date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Partition day",
            description="YYYY-MM-DD to (re)collect into; empty: the run's own day.",
        ),
        "accounts": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "pattern": r"^[0-9]{12}\Z"},
            uniqueItems=True,
            title="Only these accounts",
            description="Account ids to collect again (e.g. one that failed); empty: every account. The other "
                        "accounts' data of the day is kept.",
        ),
    },
    default_args=DEFAULT_ARGS,
)
def governance_collection():
    @task(pool=AWS_POOL)
    def list_accounts(params: dict | None = None) -> list[list[dict]]:
        """Write the day's accounts table and stage the organization-level reads; return the accounts to collect in
        batches (the mapping input)."""
        from include.awsgov.airflow_conn import aws_access, fail_now
        from include.awsgov.collection import runner
        from include.awsgov.core import accounts

        cfg, store, day, context = _run_context(params)
        access = aws_access(cfg, context, retry_mode=cfg["collection"]["retry_mode"])
        targets = accounts.collectable_listed(accounts.list_org_accounts(access))  # tags: account_tags, beside
        try:
            chosen = runner.rerun_targets(targets, (params or {}).get("accounts"))
        except ValueError as exc:
            fail_now(exc)
        aggregate = runner.collect_aggregate(access, store, day, [a["account_id"] for a in chosen],
                                             runner.Options.from_settings(cfg))
        log.info("organization-level reads staged: %s", aggregate)
        context["ti"].xcom_push(key="api_calls", value=access.total_calls())
        context["ti"].xcom_push(key="collectable", value=[a["account_id"] for a in targets])
        return runner.account_batches(chosen, cfg["collection"])

    @task
    def account_tags(params: dict | None = None) -> int:
        """Write the day's accounts table (tags, parent OU, the onboarding inventory); returns its AWS calls."""
        from include.awsgov.airflow_conn import aws_access
        from include.awsgov.core import accounts

        cfg, store, day, context = _run_context(params)
        access = aws_access(cfg, context, retry_mode=cfg["collection"]["retry_mode"])
        accounts.snapshot_accounts(access, store, day, workers=cfg["collection"]["max_workers"])
        return access.total_calls()

    @task(pool=AWS_POOL, map_index_template="{{ account_label }}")
    def collect_account(batch: list[dict], params: dict | None = None) -> dict:
        """Collect one account (or one batch) and write its chunk of every per-account table."""
        from include.awsgov.airflow_conn import aws_access
        from include.awsgov.collection import runner
        from include.awsgov.core.batches import batch_label

        cfg, store, day, context = _run_context(params)
        context["account_label"] = batch_label(batch)
        access = aws_access(cfg, context, retry_mode=cfg["collection"]["retry_mode"])
        return runner.collect_accounts(access, store, day, [a["account_id"] for a in batch],
                                           runner.Options.from_settings(cfg))

    @task(outlets=[FINDINGS_ASSET])
    def finish_run(results: list[dict], batches: list[list[dict]], tag_calls: int,
                   params: dict | None = None) -> dict:
        """Prune accounts that left, compact the day, write the run row and update the findings asset."""
        from include.awsgov.collection import runner

        cfg, store, day, context = _run_context(params)
        started = context["dag_run"].start_date or datetime.now(UTC)
        listed_calls = context["ti"].xcom_pull(task_ids="list_accounts", key="api_calls") or 0
        # Index by position: iterating a mapped task's lazy results probes one past the end (a logged 404).
        calls = listed_calls + tag_calls + sum(results[i]["api_calls"] for i in range(len(results)))
        # Every collectable account is kept, also those a rerun of some accounts did not collect again.
        account_ids = context["ti"].xcom_pull(task_ids="list_accounts", key="collectable") or [
            a["account_id"] for batch in batches for a in batch]
        run = runner.finish_run(store, day, account_ids, run_id=context["run_id"], started_at=started,
                                regions=cfg["regions"], api_calls=calls)
        if run["failed_sources"]:  # stored and recorded; the run is red, a retry would read the same failures
            fail_now(RuntimeError(f"sources that failed in every account: {run['failed_sources']}"))
        return run

    @task(pool=AWS_POOL)
    def export_findings(run: dict, params: dict | None = None) -> dict:
        """Export the day's open findings as OCSF and ASFF; import them into Security Hub when enabled (settings
        ``interop``, off by default)."""
        from include.awsgov.airflow_conn import aws_access
        from include.awsgov.report import exports

        cfg, store, day, context = _run_context(params)
        wants_import = (cfg.get("interop") or {}).get("securityhub_import", False)
        return exports.export_day(store, day, cfg, aws_access(cfg, context) if wants_import else None)

    batches = list_accounts()
    results = collect_account.expand(batch=batches)
    export_findings(finish_run(results, batches, account_tags()))


governance_collection()

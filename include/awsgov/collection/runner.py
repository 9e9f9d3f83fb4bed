"""Daily collection: Trusted Advisor and AWS Config compliance of accounts, streamed to the store per account.

Work is cut into small units (one Trusted Advisor probe, one check result, one region's rule list, one rule's
details) run by a bounded thread pool; each account's rows are written as soon as its last unit finishes, so
memory holds only the accounts in flight. Three phases, each usable alone (the DAG maps the second over accounts):

1. :func:`collect_aggregate` (admin account, once per run): the Config aggregator's data, staged per account under
   ``_staging/`` (hidden from queries) together with which account/region pairs it served.
2. :func:`collect_accounts`: per account, Trusted Advisor through the read role, the staged aggregator slice, and
   per-account Config reads for regions the aggregator did not serve. Expected AWS errors become COVERAGE rows;
   anything else is a bug and raises.
3. :func:`finish_run`: prune chunks of accounts that are not in this run and write the COLLECTION_RUNS row.

Rows are sorted and carry no wall-clock time, so a rerun of a day writes identical data.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import queue
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd
import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

import include.awsgov.collection.ssm_inventory as inv
from include.awsgov.collection import config_rules as cfgc
from include.awsgov.collection import guardduty, macie
from include.awsgov.collection import trusted_advisor as ta
from include.awsgov.collection.units import MAX_ERROR_CHARS, Job, Outcome, Unit, counted_client, error_text, run_counted
from include.awsgov.core import accounts as org
from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess, classify_error
from include.awsgov.core.store import Store

log = logging.getLogger(__name__)

TA, CONFIG = "trusted_advisor", "config"
# Per-account tables: chunk = account id; finish_run prunes accounts that left.
ACCOUNT_TABLES = {
    "ta_checks": (tables.TA_CHECKS, ["check_id"]),
    "ta_findings": (tables.TA_FINDINGS, ["check_id", "region", "resource_id", "finding_id"]),
    "config_rules": (tables.CONFIG_RULES, ["region", "rule_name"]),
    "config_findings": (tables.CONFIG_FINDINGS, ["region", "rule_name", "resource_type", "resource_id"]),
    "coverage": (tables.COVERAGE, ["source", "region"]),
    "guardduty_findings": (tables.GUARDDUTY_FINDINGS, ["region", "type", "finding_id"]),
    "macie_findings": (tables.MACIE_FINDINGS, ["region", "type", "finding_id"]),
}
# Threat and sensitive-data sources (docs/threats.md): source name -> module with collect_region().
THREAT_SOURCES = {guardduty.SOURCE: guardduty, macie.SOURCE: macie}
STAGING = {name: f"_staging/{name}" for name in ("config_rules", "config_findings", "coverage")}
# SSM inventory (inventory.py): per-account tables like the others, written and pruned with them.
ACCOUNT_TABLES.update(inv.ACCOUNT_TABLES)


@dataclass(frozen=True)
class Options:
    """Knobs of a collection run (from settings ``collection``, see include/config/settings.yaml).

    :param regions: regions to collect Config from.
    :param workers: threads issuing AWS calls.
    :param unit_retries: extra attempts of a unit that ran out of botocore retries while throttled.
    :param language: Trusted Advisor language.
    :param refresh: request refreshes of stale, refreshable checks (not awaited).
    :param refresh_skip_categories: check categories AWS refreshes by itself (never asked).
    :param savings_columns: metadata column prefixes holding a resource's estimated monthly savings.
    :param aggregator: preferred aggregator name; None picks the organization-wide one.
    :param use_aggregator: read Config through the admin account's aggregator when there is one.
    :param home_region: region of the admin account's aggregator.
    :param inventory: settings ``inventory`` (SSM inventory, prohibited packages); None: no inventory collected.
    :param sources: what to collect: trusted_advisor, config, guardduty, macie.
    :param delegated_admins: per threat source, the delegated administrator account read instead of each account.
    """

    regions: tuple[str, ...]
    workers: int = 8
    unit_retries: int = 2
    language: str = "en"
    refresh: bool = True
    refresh_skip_categories: tuple[str, ...] = ("service_limits",)
    savings_columns: tuple[str, ...] = ("Estimated Monthly Savings",)
    aggregator: str | None = None
    use_aggregator: bool = True
    home_region: str = "us-east-1"
    inventory: Mapping[str, Any] | None = None
    sources: tuple[str, ...] = ("trusted_advisor", "config")
    delegated_admins: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_settings(cls, cfg: Mapping[str, Any], regions: Iterable[str] | None = None) -> Options:
        """Options from validated settings.

        :param cfg: settings (``load_settings``).
        :param regions: override of ``cfg["regions"]``.
        """
        col = cfg.get("collection", {})
        tav = col.get("trusted_advisor", {})
        return cls(
            regions=tuple(regions or cfg["regions"]),
            workers=int(col.get("max_workers", 8)),
            unit_retries=int(col.get("unit_retries", 2)),
            language=tav.get("language", "en"),
            refresh=bool(tav.get("refresh", True)),
            refresh_skip_categories=tuple(tav.get("refresh_skip_categories", cls.refresh_skip_categories)),
            savings_columns=tuple(tav.get("savings_columns", cls.savings_columns)),
            aggregator=(cfg.get("central") or {}).get("config_aggregator"),
            use_aggregator=bool(col.get("use_aggregator", True)),
            home_region=cfg.get("home_region", "us-east-1"),
            inventory=cfg.get("inventory"),
            sources=tuple(col.get("sources", cls.sources)),
            delegated_admins=tuple((s, str(col[s]["delegated_admin"])) for s in THREAT_SOURCES
                                   if (col.get(s) or {}).get("delegated_admin")),
        )


def _run(unit: Unit, backoff: float) -> tuple[Outcome | None, BaseException | None, int]:
    if unit.attempt:
        time.sleep(backoff * 2 ** (unit.attempt - 1))
    return run_counted(unit.fn)


def run_jobs(jobs: Iterable[Job], finalize: Callable[[Job], None], *, workers: int, unit_retries: int = 2,
             in_flight: int | None = None, backoff: float = 1.0) -> None:
    """Run every job's units on a bounded pool, finalizing (writing) each job as soon as its last unit ends.

    :param jobs: jobs, consumed lazily so that only ``in_flight`` of them are held at a time.
    :param finalize: called in this thread with each finished job.
    :param workers: threads issuing AWS calls.
    :param unit_retries: re-runs of a unit that ended throttled_out.
    :param in_flight: jobs admitted at once (default ``2 * workers``).
    :param backoff: seconds before the first re-run of a throttled unit, doubled each time.
    """
    source: Iterator[Job] = iter(jobs)
    limit = in_flight or 2 * workers
    # Finished futures arrive on a queue (O(1) each); wait(FIRST_COMPLETED) over hundreds of pending futures cost
    # a tenth of the GIL in a profile of a 60-account run.
    finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
    owners: dict[Future, tuple[Job, Unit]] = {}
    active = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="awsgov-collect") as pool:

        def submit(job: Job, unit: Unit) -> None:
            job.pending += 1
            fut = pool.submit(_run, unit, backoff)
            owners[fut] = (job, unit)
            fut.add_done_callback(finished.put)

        def admit() -> None:
            nonlocal active
            while active < limit:
                job = next(source, None)
                if job is None:
                    return
                if not job.units:
                    finalize(job)
                    continue
                active += 1
                for unit in job.units:
                    submit(job, unit)

        try:
            admit()
            while owners:
                fut = finished.get()
                job, unit = owners.pop(fut)
                job.pending -= 1
                out, exc, calls = fut.result()  # anything but an AWS error is a bug: let it raise
                status = "ok" if exc is None else classify_error(exc)
                if status == "throttled_out" and unit.attempt < unit_retries:
                    unit.attempt += 1
                    submit(job, unit)
                    continue
                if unit.best_effort:
                    if exc is not None:
                        log.warning("account %s: best-effort %s call failed: %s", job.account_id, unit.source, exc)
                else:
                    job.record(unit.region, unit.source, status, error_text(exc), calls)
                if out is not None:
                    for table, rows in out.rows.items():
                        job.rows[table].extend(rows)
                    for follow in out.follow:
                        submit(job, follow)
                for follow in unit.then(status, exc) if unit.then else []:
                    submit(job, follow)
                if job.pending == 0:
                    finalize(job)
                    active -= 1
                    admit()
        finally:
            for fut in owners:
                fut.cancel()


# -- phase 1: the aggregator, once per run ----------------------------------------------------------------------
def _aggregate_details(access: AwsAccess, agg: cfgc.Aggregator, account_id: str, region: str, rule: str) -> Outcome:
    counted_client(access, "config", agg.region, None)
    found = [cfgc.finding_row(account_id, region, r, cfgc.VIA_AGGREGATOR)
             for r in cfgc.aggregate_rule_details(access, agg, rule, account_id, region)]
    return Outcome(rows={"config_findings": found})


def collect_aggregate(access: AwsAccess, store: Store, day: Any, account_ids: Iterable[str],
                      opts: Options) -> dict[str, Any]:
    """Stage, per account, the Config data the admin account's aggregator holds for the accounts and regions.

    :param access: the admin account's access layer.
    :param store: the history store.
    :param day: partition day.
    :param account_ids: accounts collected this run.
    :param opts: run options.
    :returns: a small summary (aggregator name, status, accounts staged, error).
    """
    account_ids = sorted(account_ids)
    staged: list[str] = []
    summary: dict[str, Any] = {"aggregator": None, "status": "absent", "accounts": 0, "error": ""}
    try:
        wanted = opts.use_aggregator and CONFIG in opts.sources
        agg = cfgc.find_aggregator(access, opts.home_region, opts.aggregator) if wanted else None
        items = list(cfgc.aggregate_rule_compliance(access, agg)) if agg else []
    except (ClientError, BotoCoreError) as exc:
        # No usable aggregator: every account falls back to its own Config reads.
        log.warning("config aggregator unusable, falling back to per-account reads: %s", exc)
        agg, items = None, []
        summary.update(status=classify_error(exc), error=error_text(exc))
    if agg is not None:
        grouped = cfgc.group_by_account(items, agg, account_ids, opts.regions)
        del items
        summary.update(aggregator=agg.name, status="ok")

        def jobs() -> Iterator[Job]:
            for account_id, per_region in grouped.items():
                job = Job(account_id, [], [(r, CONFIG) for r in per_region])
                for region, rules in per_region.items():
                    job.rows["config_rules"] += [cfgc.rule_row(account_id, region, i, cfgc.VIA_AGGREGATOR)
                                                 for i in rules]
                    # The aggregate details hold COMPLIANT and NON_COMPLIANT evaluations only, and a rule with
                    # neither is INSUFFICIENT_DATA: nothing to fetch for it.
                    job.units += [Unit(region, CONFIG, partial(_aggregate_details, access, agg, account_id, region,
                                                              i["ConfigRuleName"]))
                                  for i in rules if (i.get("Compliance") or {}).get("ComplianceType") in cfgc.EVALUATED]
                yield job

        def finalize(job: Job) -> None:
            _write_account(store, day, job, staging=True)
            staged.append(job.account_id)

        run_jobs(jobs(), finalize, workers=opts.workers, unit_retries=opts.unit_retries)
    for table in STAGING.values():
        store.prune(table, day, staged)
    summary["accounts"] = len(staged)
    log.info("config aggregator %s: staged %d accounts", summary["aggregator"], len(staged))
    if inv.enabled(opts):
        summary["inventory"] = inv.stage_aggregate(access, store, day, account_ids, opts)
    return summary


# -- phase 2: per account ---------------------------------------------------------------------------------------
def _as_date(day: Any) -> dt.date:
    return day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)[:10])


def _ta_probe(access: AwsAccess, account_id: str, day: dt.date, opts: Options) -> Outcome:
    client = counted_client(access, "support", ta.SUPPORT_REGION, account_id)
    checks = ta.describe_checks(client, opts.language)
    found = ta.summaries(client, [c["id"] for c in checks])
    out = Outcome(rows={"ta_checks": ta.check_rows(account_id, checks, found)})
    for check in checks:
        if ta.has_flagged(found.get(check["id"], {})):
            out.follow.append(Unit(ta.GLOBAL_REGION, TA, partial(_ta_result, access, account_id, check, opts)))
    # Refresh what is older than the day, unless AWS refreshes it itself or it does not apply to the account.
    stale = [c["id"] for c in checks if c.get("category") not in opts.refresh_skip_categories
             and (found.get(c["id"]) or {}).get("status") != "not_available" and ta.is_stale(found.get(c["id"]), day)]
    if opts.refresh and stale:
        out.follow.append(Unit(ta.GLOBAL_REGION, TA, partial(_ta_refresh, client, stale), best_effort=True))
    return out


def _ta_result(access: AwsAccess, account_id: str, check: dict[str, Any], opts: Options) -> Outcome:
    client = counted_client(access, "support", ta.SUPPORT_REGION, account_id)
    result = ta.check_result(client, check["id"], opts.language)
    return Outcome(rows={"ta_findings": ta.finding_rows(account_id, check, result, opts.savings_columns)})


def _ta_refresh(client: Any, check_ids: list[str]) -> Outcome:
    todo = ta.refreshable(ta.refresh_statuses(client, check_ids))
    done = sum(ta.request_refresh(client, cid) for cid in todo)
    log.debug("requested %d Trusted Advisor refreshes", done)
    return Outcome()


def _config_region(access: AwsAccess, account_id: str, region: str) -> Outcome:
    client = counted_client(access, "config", region, account_id)
    items = list(cfgc.account_rule_compliance(client))
    out = Outcome(rows={"config_rules": [cfgc.rule_row(account_id, region, i, cfgc.VIA_ACCOUNT) for i in items]})
    out.follow = [Unit(region, CONFIG, partial(_config_rule, client, account_id, region, i["ConfigRuleName"]))
                  for i in items]
    return out


def _config_rule(client: Any, account_id: str, region: str, rule: str) -> Outcome:
    found = [cfgc.finding_row(account_id, region, r, cfgc.VIA_ACCOUNT) for r in cfgc.account_rule_details(client, rule)]
    return Outcome(rows={"config_findings": found})


def _threat_region(access: AwsAccess, job: Job, source: str, region: str, admin_id: str | None) -> Unit:
    module = THREAT_SOURCES[source]

    def fn() -> Outcome:
        client = counted_client(access, module.SERVICE, region, admin_id or job.account_id)
        status, why, rows = module.collect_region(client, job.account_id, region, admin_id)
        if status != "ok":
            gaps[region] = why
        return Outcome(rows={module.TABLE: rows})

    def then(status: str, exc: BaseException | None) -> list[Unit]:
        if region in gaps:  # read fine, but the service is off there: a gap with its reason
            job.record(region, source, "not_enabled", gaps[region][:MAX_ERROR_CHARS])
        return []

    gaps: dict[str, str] = {}
    return Unit(region, source, fn, then=then)


def _threat_units(access: AwsAccess, job: Job, opts: Options) -> tuple[list[Unit], list[Unit]]:
    """GuardDuty and Macie units of an account: (read through a delegated administrator, read in the account)."""
    admins = dict(opts.delegated_admins)
    direct, own = [], []
    for source in (s for s in THREAT_SOURCES if s in opts.sources):
        units = [_threat_region(access, job, source, r, admins.get(source)) for r in opts.regions]
        (direct if source in admins else own).extend(units)
    return direct, own


def _role_unreachable(exc: BaseException | None) -> bool:
    # AssumeRole itself was refused: nothing can be read in the account, so other reads are not attempted.
    return isinstance(exc, ClientError) and exc.operation_name == "AssumeRole"


def account_job(access: AwsAccess, store: Store, day: Any, account_id: str, opts: Options) -> Job:
    """The units of one account: the Trusted Advisor probe first, then Config for regions the aggregator missed.

    :param access: the admin account's access layer.
    :param store: the history store (for the staged aggregator slice).
    :param day: partition day.
    :param account_id: the account.
    :param opts: run options.
    """
    regions = list(opts.regions) if CONFIG in opts.sources else []
    staged_cov = {r["region"]: r for r in store.read_chunk(STAGING["coverage"], day, account_id).to_pylist()
                  if r["status"] == "ok" and r["region"] in regions}
    own_regions = [r for r in regions if r not in staged_cov]
    keys = ([(ta.GLOBAL_REGION, TA)] if TA in opts.sources else []) + [(r, CONFIG) for r in regions]
    keys += [(r, s) for s in THREAT_SOURCES if s in opts.sources for r in opts.regions]
    job = Job(account_id, [], keys)
    # Through a delegated administrator nothing waits for the read role; in the account, after the probe.
    threat_direct, threat_own = _threat_units(access, job, opts)
    job.units += threat_direct
    for region, cov in staged_cov.items():
        job.record(region, CONFIG, "ok", calls=int(cov["api_calls"] or 0))
    for table in ("config_rules", "config_findings"):
        staged = store.read_chunk(STAGING[table], day, account_id).to_pylist()
        job.rows[table] += [r for r in staged if r["region"] in staged_cov]
    inv.add_units(job, access, store, day, account_id, opts)  # SSM inventory: staged aggregator slice, else SSM
    config_units = [Unit(r, CONFIG, partial(_config_region, access, account_id, r)) for r in own_regions]
    if TA not in opts.sources:
        job.units += config_units + threat_own
        return job

    def then(status: str, exc: BaseException | None) -> list[Unit]:
        if _role_unreachable(exc):
            for region in own_regions:
                job.record(region, CONFIG, status, error_text(exc))
            for unit in threat_own:
                job.record(unit.region, unit.source, status, error_text(exc))
            return []
        return config_units + threat_own

    probe = partial(_ta_probe, access, account_id, _as_date(day), opts)
    job.units.append(Unit(ta.GLOBAL_REGION, TA, probe, then=then))
    return job


def sorted_rows(rows: Iterable[dict[str, Any]], sort_by: list[str]) -> list[dict[str, Any]]:
    """Rows in a stable order (by ``sort_by``, then every other column), duplicates of a ``finding_id`` dropped.

    :param rows: rows of one table.
    :param sort_by: the table's key columns.
    """
    def key(row: dict[str, Any]) -> tuple[str, ...]:
        return tuple("" if (v := row.get(k)) is None else str(v) for k in sort_by)

    def rest(row: dict[str, Any]) -> list[tuple[str, str]]:
        return sorted((k, str(v)) for k, v in row.items() if k not in sort_by)

    # The same order as sorting by (key, rest) at once, but the other columns are only looked at where the key
    # columns tie, which is rare: building them for every row was most of the cost of writing an account.
    ordered = sorted(((key(row), row) for row in rows), key=lambda pair: pair[0])
    out, seen = [], set()
    for _, tie in itertools.groupby(ordered, key=lambda pair: pair[0]):
        group = [row for _, row in tie]
        for row in group if len(group) == 1 else sorted(group, key=rest):  # sorted() would call rest() on one row too
            fid = row.get("finding_id")
            if fid is not None:
                if fid in seen:
                    continue
                seen.add(fid)
            out.append(row)
    return out


def written_tables(opts: Options) -> list[str]:
    """The per-account tables a run with these options writes: a source that is off writes nothing, so a day
    without it has no chunk of its tables (an empty one would read as "looked, found nothing": package_search
    would then answer 0 of 0 instead of using the last day that has an inventory)."""
    off = set() if inv.enabled(opts) else set(inv.ACCOUNT_TABLES)
    off |= {module.TABLE for source, module in THREAT_SOURCES.items() if source not in opts.sources}
    return [t for t in ACCOUNT_TABLES if t not in off]


def _drop_chunk(store: Store, table: str, day: Any, chunk: str) -> None:
    # An earlier run of the day that had the source on left this account's chunk: the rerun replaces the day.
    if store.exists(f"{table}/dt={_as_date(day).isoformat()}/part-{chunk}.parquet"):
        store.prune(table, day, [c for c in store.chunks(table, day) if c != chunk])


def _write_account(store: Store, day: Any, job: Job, *, staging: bool = False,
                   only: Iterable[str] | None = None) -> None:
    job.rows["coverage"] = job.coverage_rows()
    names = STAGING if staging else {t: t for t in ACCOUNT_TABLES}
    if only is not None:
        wanted = set(only)
        for table in [t for t in names if t not in wanted]:
            _drop_chunk(store, names.pop(table), day, job.account_id)
    for name, table in names.items():
        schema, sort_by = ACCOUNT_TABLES[name]
        # Straight to Arrow: a pandas round trip cost four times as much per chunk (36 ms against 8.5 ms). With a
        # schema, from_pylist takes the schema's columns of each row (None where missing) and ignores the others.
        rows = sorted_rows(job.rows.get(name, []), sort_by)
        store.write(table, day, pa.Table.from_pylist(rows, schema=schema), chunk=job.account_id, schema=schema)


def collect_accounts(access: AwsAccess, store: Store, day: Any, account_ids: Iterable[str],
                     opts: Options) -> dict[str, Any]:
    """Collect accounts and write each one's chunk of every per-account table as soon as it is complete.

    :param access: the admin account's access layer.
    :param store: the history store.
    :param day: partition day.
    :param account_ids: accounts to collect (ACTIVE ones).
    :param opts: run options.
    :returns: ``{"accounts": n, "gaps": coverage rows not ok, "api_calls": calls issued by ``access``}``.
    """
    access.admin_id()  # so the admin account itself is read with its own credentials, not through the role
    done = {"accounts": 0, "gaps": 0}

    only = written_tables(opts)

    def finalize(job: Job) -> None:
        _write_account(store, day, job, only=only)
        access.forget(job.account_id)
        done["accounts"] += 1
        done["gaps"] += sum(c["status"] != "ok" for c in job.coverage.values())

    run_jobs((account_job(access, store, day, a, opts) for a in account_ids), finalize, workers=opts.workers,
             unit_retries=opts.unit_retries)
    return {**done, "api_calls": access.total_calls()}


# -- phase 3: the run row ---------------------------------------------------------------------------------------
def finish_run(store: Store, day: Any, account_ids: Iterable[str], *, run_id: str, started_at: dt.datetime,
               regions: Iterable[str], api_calls: int) -> dict[str, Any]:
    """Drop chunks of accounts not collected in this run, compact the day and write the run's COLLECTION_RUNS row.

    :param store: the history store.
    :param day: partition day.
    :param account_ids: the accounts this run collected.
    :param run_id: Airflow run id (or any label).
    :param started_at: when the run started.
    :param regions: regions collected.
    :param api_calls: AWS calls of the whole run.
    """
    keep = set(account_ids)
    dropped = {t: store.prune(t, day, keep) for t in ACCOUNT_TABLES}
    for table in ACCOUNT_TABLES:  # one file per table and day for readers (store.py: the read cache)
        store.compact(table, day)
    coverage = store.read("coverage", day, day, schema=tables.COVERAGE)
    row = {"run_id": run_id, "started_at": started_at, "finished_at": dt.datetime.now(dt.UTC),
           "accounts": len(keep), "regions": sorted(regions), "gaps": int((coverage["status"] != "ok").sum()),
           "api_calls": int(api_calls)}
    store.write("collection_runs", day, pd.DataFrame([row]), schema=tables.COLLECTION_RUNS)
    if any(dropped.values()):
        log.info("pruned chunks of accounts not in this run: %s", {t: d for t, d in dropped.items() if d})
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}


def collect_org(access: AwsAccess, store: Store, day: Any, opts: Options, run_id: str = "manual") -> dict[str, Any]:
    """A whole run in one process (scripts, tests, benchmarks): accounts, aggregator, every account, run row.

    :param access: the admin account's access layer.
    :param store: the history store.
    :param day: partition day.
    :param opts: run options.
    :param run_id: label of the run.
    """
    started = dt.datetime.now(dt.UTC)
    rows = org.collect_accounts(access, store, day, workers=opts.workers)
    targets = [a["account_id"] for a in org.collectable(rows)]
    aggregate = collect_aggregate(access, store, day, targets, opts)
    result = collect_accounts(access, store, day, targets, opts)
    run = finish_run(store, day, targets, run_id=run_id, started_at=started, regions=opts.regions,
                     api_calls=access.total_calls())
    return {**run, "aggregate": aggregate, "accounts_seen": len(rows), "collected": result["accounts"]}

"""Daily collection: Trusted Advisor, AWS Config compliance, GuardDuty, Macie and the SSM inventory of every account,
streamed to the store per account.

Work is cut into small units (one Trusted Advisor probe, one check result, one region's snapshot, one instance's
inventory) run by a bounded thread pool; each account's rows are written as soon as its last unit finishes, so
memory holds only the accounts in flight. Three phases, each usable alone (the DAG maps the second over batches):

1. :func:`collect_aggregate` (admin account, once per run): organization-level reads whose cost does not grow with
   the accounts' contents -- the Config aggregator's source status (coverage reasons), Trusted Advisor's prioritized
   checks from the Trusted Advisor API's organization view and the check catalogue for reading the others in each
   account (or, where AWS refuses the view, for reading every check there), GuardDuty and Macie through their
   delegated administrators (one org-wide listing per region). The three parts run at once; each staged table is
   one file of every account's rows under ``_staging/`` (hidden from queries). A run of some accounts (a rerun)
   stages only those.
2. :func:`collect_accounts`: per account, Config compliance from the day's configuration snapshots and the SSM
   inventory from the resource data sync, both in the central bucket (admin credentials, a fixed number of S3 calls
   whatever the number of rules), the account's slices of the staged tables (:class:`Staged`: each file read once
   per call, i.e. once per DAG batch), and through the read role what is read per account: Trusted
   Advisor's checks the organization view does not list (all of them without the view; the view lists only
   prioritized recommendations) and the refresh of stale results, GuardDuty/Macie where no delegated administrator
   is configured. Expected AWS errors and missing deliveries become COVERAGE rows with their reason; anything else
   is a bug and raises.
3. :func:`finish_run`: prune chunks of accounts that are not in this run, compact the day (the read cache) and write
   the COLLECTION_RUNS row.

Rows are sorted and carry no wall-clock time, so a rerun of a day writes identical data.
"""

from __future__ import annotations

import bisect
import collections
import datetime as dt
import itertools
import json
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
import pyarrow.compute as pc
from botocore.exceptions import BotoCoreError, ClientError

import include.awsgov.collection.ssm_inventory as inv
from include.awsgov.collection import config_rules as cfgc
from include.awsgov.collection import guardduty, macie
from include.awsgov.collection import trusted_advisor as ta
from include.awsgov.collection.units import (
    MAX_ERROR_CHARS,
    Columns,
    Job,
    Outcome,
    Unit,
    counted_client,
    error_text,
    run_counted,
)
from include.awsgov.core import accounts as org
from include.awsgov.core import batches, tables
from include.awsgov.core.aws import AwsAccess, classify_error
from include.awsgov.core.store import Store
from include.awsgov.software.findings import prohibited_rules

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
# Staged by phase 1 for phase 2: one file per table and day (chunk STAGED_CHUNK) holding every account's rows, sorted
# by account; the catalogue and the Trusted Advisor source are JSON files. Phase 2 reads each once per process
# (:class:`Staged`) and gives every account its slice. One file per account and table was about 7,000 files at 1,000
# accounts: 20 of phase 1's 50 s went to writing them, and phase 2 spent 12 ms per account reading them back.
STAGING = {name: f"_staging/{name}" for name in ("config_sources", "threat_coverage", "ta_catalogue", "ta_checks",
                                                  "ta_findings", "ta_coverage",
                                                  *(m.TABLE for m in THREAT_SOURCES.values()))}
STAGED_CHUNK = "all"
# Where Trusted Advisor is read from (settings collection.trusted_advisor.source): the Trusted Advisor API's
# organization view, once per run from the management account, for the prioritized checks it lists and each
# account's Support API for the others (a hybrid), or each account's Support API for every check.
TA_SOURCES = ("organization", "accounts")
# Coverage status of an account and region whose source delivered nothing for the day (no Config snapshot).
NOT_DELIVERED = "not_delivered"
# SSM inventory (inventory.py): per-account tables like the others, written and pruned with them.
ACCOUNT_TABLES.update(inv.ACCOUNT_TABLES)
# Schema of each staged table (the catalogue is JSON): coverage rows, or the table the rows are written to.
_STAGED_SCHEMAS = {name: ACCOUNT_TABLES[name][0] if name in ACCOUNT_TABLES else tables.COVERAGE
                   for name in STAGING if name != "ta_catalogue"}


@dataclass(frozen=True)
class Options:
    """Knobs of a collection run (from settings ``collection``, see include/config/settings.yaml).

    :param regions: regions to collect Config from.
    :param workers: threads issuing AWS calls.
    :param unit_retries: extra attempts of a unit that ran out of botocore retries while throttled.
    :param language: Trusted Advisor language.
    :param refresh: request refreshes of stale, refreshable checks (not awaited).
    :param refresh_per_account: refreshes requested per account and run, the oldest results first.
    :param refresh_skip_categories: check categories AWS refreshes by itself (never asked).
    :param savings_columns: metadata column prefixes holding a resource's estimated monthly savings.
    :param aggregator: preferred aggregator name; None picks the organization-wide one.
    :param use_aggregator: read the aggregator's source status (why a snapshot is missing) when there is one.
    :param central_bucket: the central bucket (``{admin_account_id}`` filled in): Config snapshots, SSM data sync.
    :param snapshot_prefix: the Config delivery channels' s3KeyPrefix (``{account_id}`` filled in).
    :param inventory_sync_prefix: the SSM resource data sync's prefix in the central bucket.
    :param home_region: region of the admin account's aggregator.
    :param inventory: settings ``inventory`` (SSM inventory, prohibited packages); None: no inventory collected.
    :param sources: what to collect: trusted_advisor, config, guardduty, macie.
    :param delegated_admins: per threat source, the delegated administrator account read instead of each account.
    :param ta_source: ``organization`` (the Trusted Advisor API's organization view, falling back to ``accounts``
        when AWS refuses it) or ``accounts`` (each account's Support API).
    :param refresh_accounts: with the organization view, accounts whose stale results are refreshed per run
        (through their read role, ``refresh_per_account`` checks each).
    :param ta_max_age_days: with the organization view, an account whose newest result is older is a ``stale`` gap.
    """

    regions: tuple[str, ...]
    workers: int = 8
    unit_retries: int = 2
    language: str = "en"
    refresh: bool = True
    refresh_per_account: int = 1
    refresh_skip_categories: tuple[str, ...] = ("service_limits",)
    savings_columns: tuple[str, ...] = ("Estimated Monthly Savings",)
    aggregator: str | None = None
    use_aggregator: bool = True
    home_region: str = "us-east-1"
    inventory: Mapping[str, Any] | None = None
    sources: tuple[str, ...] = ("trusted_advisor", "config")
    delegated_admins: tuple[tuple[str, str], ...] = ()
    central_bucket: str = "governance-logs-{admin_account_id}"
    snapshot_prefix: str = ""
    inventory_sync_prefix: str = "inventory"
    ta_source: str = "organization"
    refresh_accounts: int = 20
    ta_max_age_days: int = 7

    def __post_init__(self) -> None:
        if self.ta_source not in TA_SOURCES:
            raise ValueError(f"collection.trusted_advisor.source must be one of {TA_SOURCES}, not {self.ta_source!r}")

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
            refresh_per_account=int(tav.get("refresh_per_account", cls.refresh_per_account)),
            refresh_skip_categories=tuple(tav.get("refresh_skip_categories", cls.refresh_skip_categories)),
            savings_columns=tuple(tav.get("savings_columns", cls.savings_columns)),
            aggregator=(cfg.get("central") or {}).get("config_aggregator"),
            use_aggregator=bool(col.get("use_aggregator", True)),
            home_region=cfg.get("home_region", "us-east-1"),
            inventory=cfg.get("inventory"),
            sources=tuple(col.get("sources", cls.sources)),
            delegated_admins=tuple((s, str(col[s]["delegated_admin"])) for s in THREAT_SOURCES
                                   if (col.get(s) or {}).get("delegated_admin")),
            central_bucket=(cfg.get("central") or {}).get("log_bucket", cls.central_bucket),
            snapshot_prefix=col.get("config_snapshot_prefix", cls.snapshot_prefix),
            inventory_sync_prefix=col.get("inventory_sync_prefix", cls.inventory_sync_prefix),
            ta_source=str(tav.get("source", cls.ta_source)),
            refresh_accounts=int(tav.get("refresh_accounts_per_run", cls.refresh_accounts)),
            ta_max_age_days=int(tav.get("max_age_days", cls.ta_max_age_days)),
        )


def _run(unit: Unit, backoff: float) -> tuple[Outcome | None, BaseException | None, int]:
    if unit.attempt:
        time.sleep(backoff * 2 ** (unit.attempt - 1))
    return run_counted(unit.fn)


def run_jobs(jobs: Iterable[Job], finalize: Callable[[Job], None], *, workers: int, unit_retries: int = 2,
             in_flight: int | None = None, backoff: float = 1.0) -> None:
    """Run every job's units on a bounded pool, finalizing (writing) each job as soon as its last unit ends.

    :param jobs: jobs, consumed lazily so that only ``in_flight`` of them are held at a time.
    :param finalize: called with each finished job, one job at a time in one writer thread, so that writing
        (Parquet, fsync) never holds up the dispatch of units: in a profile of an 80-account run the dispatching
        thread spent most of its time in the writes while the workers waited for units. Its exceptions propagate.
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
    writes: collections.deque[Future] = collections.deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="awsgov-collect") as pool, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="awsgov-write") as writer:

        def hand_off(job: Job) -> None:
            writes.append(writer.submit(finalize, job))
            while writes and (writes[0].done() or len(writes) > limit):  # at most `limit` jobs wait for their write
                writes.popleft().result()

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
                    hand_off(job)
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
                    why = (unit.note + error_text(exc))[:MAX_ERROR_CHARS] if exc is not None else ""
                    job.record(unit.region, unit.source, status, why, calls)
                if out is not None:
                    for table, rows in out.rows.items():
                        job.rows[table].extend(rows)
                    for follow in out.follow:
                        submit(job, follow)
                for follow in unit.then(status, exc) if unit.then else []:
                    submit(job, follow)
                if job.pending == 0:
                    hand_off(job)
                    active -= 1
                    admit()
            while writes:
                writes.popleft().result()
        finally:
            for fut in owners:
                fut.cancel()


# -- phase 1: org-level sources, once per run -------------------------------------------------------------------
def central_bucket(access: AwsAccess, opts: Options) -> str:
    """The central bucket (settings ``central.log_bucket``, ``{admin_account_id}`` filled in)."""
    return opts.central_bucket.format(admin_account_id=access.admin_id())


def _stage(store: Store, day: Any, name: str, per_account: Mapping[str, list[dict[str, Any]]],
           schema: pa.Schema) -> None:
    """Write one staged table of the run: every account's rows in one file, accounts in order, each account's rows
    in the order given (so a rerun over the same answers writes the same bytes). An account absent from
    ``per_account`` has no rows, as an account with none. Chunks of other names (the per-account files of older
    code) are dropped: the day's staging is this run's."""
    rows = [row for account in sorted(per_account) for row in per_account[account]]
    store.write(STAGING[name], day, pa.Table.from_pylist(rows, schema=schema), chunk=STAGED_CHUNK, schema=schema)
    store.prune(STAGING[name], day, [STAGED_CHUNK])


class Staged:
    """Phase 1's staged tables as phase 2 reads them: each file read once (per process: a DAG batch is its own
    process), its rows grouped by account; :meth:`rows` is an account's slice, the rows its per-account file held.

    :param store: the history store.
    :param day: partition day.
    :param names: staged tables to read (keys of :data:`STAGING`); a table not staged this day has no rows.
    """

    def __init__(self, store: Store, day: Any, names: Iterable[str]) -> None:
        self._by_account: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for name in names:
            grouped: dict[str, list[dict[str, Any]]] = {}
            for row in store.read_chunk(STAGING[name], day, STAGED_CHUNK, schema=_STAGED_SCHEMAS[name]).to_pylist():
                grouped.setdefault(row["account_id"], []).append(row)
            self._by_account[name] = grouped

    def rows(self, name: str, account_id: str) -> list[dict[str, Any]]:
        """The account's rows of one staged table (a new list of the stored dicts: callers extend their own)."""
        return list(self._by_account.get(name, {}).get(account_id, ()))


def _stage_config_sources(access: AwsAccess, store: Store, day: Any, account_ids: list[str],
                          opts: Options) -> dict[str, Any]:
    # DescribeConfigurationAggregatorSourcesStatus, once: why an account and region has no snapshot (coverage).
    summary: dict[str, Any] = {"aggregator": None, "status": "absent", "error": "", "sources": 0}
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        agg = cfgc.find_aggregator(access, opts.home_region, opts.aggregator) if opts.use_aggregator else None
        statuses = cfgc.source_statuses(access, agg) if agg else {}
    except (ClientError, BotoCoreError) as exc:
        log.warning("config aggregator source status unreadable: %s", exc)
        agg, statuses = None, {}
        summary.update(status=classify_error(exc), error=error_text(exc))
    if agg is not None:
        summary.update(aggregator=agg.name, status="ok", sources=len(statuses))
        wanted = set(account_ids)
        for (account, region), row in statuses.items():
            if account in wanted and region in opts.regions:
                rows.setdefault(account, []).append(
                    {"account_id": account, "region": region, "source": CONFIG,
                     "status": str(row.get("LastUpdateStatus") or ""), "error": cfgc.source_problem(row),
                     "api_calls": 0})
    _stage(store, day, "config_sources", rows, tables.COVERAGE)
    return summary


def _stage_ta_catalogue(access: AwsAccess, store: Store, day: Any, opts: Options) -> dict[str, Any]:
    # DescribeTrustedAdvisorChecks once per run (the catalogue is the same for every account), in the admin account.
    path = _catalogue_path(day, opts)
    try:
        checks = ta.describe_checks(access.client("support", ta.SUPPORT_REGION), opts.language)
    except (ClientError, BotoCoreError) as exc:
        # e.g. no support plan in the admin account: each account then reads the catalogue itself.
        log.warning("Trusted Advisor catalogue unreadable in the admin account, read per account: %s", exc)
        if store.exists(path):
            store.put_text(path, "null")
        return {"status": classify_error(exc), "checks": 0, "error": error_text(exc)}
    store.put_text(path, json.dumps(checks, sort_keys=True))
    return {"status": "ok", "checks": len(checks), "error": ""}


def _ta_source_path(day: Any, opts: Options) -> str:
    return f"{STAGING['ta_catalogue']}/dt={_as_date(day).isoformat()}/source-{opts.language}.json"


def _stage_ta(access: AwsAccess, store: Store, day: Any, account_ids: list[str], opts: Options) -> dict[str, Any]:
    """Trusted Advisor's part of phase 1: the organization view split per account, or the catalogue for reading
    each account (``accounts``, or the organization view refused). Phase 2 learns which from the staged source."""
    summary: dict[str, Any] = {"source": "accounts"}
    if opts.ta_source == "organization":
        summary = _stage_ta_organization(access, store, day, account_ids, opts)
    state = {"source": summary["source"], "refresh": summary.pop("refresh", {})}
    store.put_text(_ta_source_path(day, opts), json.dumps(state, sort_keys=True))
    if summary["source"] == "accounts":
        summary.update(_stage_ta_catalogue(access, store, day, opts))
    return summary


def _stage_ta_organization(access: AwsAccess, store: Store, day: Any, account_ids: list[str],
                           opts: Options) -> dict[str, Any]:
    """Trusted Advisor of the whole organization through the Trusted Advisor API from the management account: the
    catalogue, the recommendations, and per recommendation its accounts and resources (paged, 200 a page), staged
    per account as the rows the per-account path writes. The view lists only prioritized recommendations (API
    Reference, ListOrganizationRecommendations), so the catalogue is staged too: phase 2 reads every other check
    through each account's Support API."""
    client = access.client(ta.ORG_SERVICE, ta.ORG_REGION)
    date = _as_date(day)
    try:
        checks = ta.org_catalogue(client, opts.language)
        # The run's catalogue for phase 2, which reads the checks the view does not list through each account.
        store.put_text(_catalogue_path(day, opts), json.dumps(checks, sort_keys=True))
        recs = ta.org_recommendations(client)
        if not recs:
            # Nothing of Trusted Advisor's checks in the organization view (AWS documents these operations for
            # prioritized recommendations): reading each account is the way to their results.
            log.warning("Trusted Advisor organization view lists no check recommendation: reading each account")
            return {"source": "accounts", "fallback": "no check recommendation in the organization view"}
        with ThreadPoolExecutor(max_workers=max(1, min(opts.workers, len(recs)))) as pool:
            listings = dict(zip(recs, pool.map(partial(ta.org_listing, client), recs.values()), strict=True))
    except (ClientError, BotoCoreError) as exc:
        if ta.org_refused(exc):
            log.warning("Trusted Advisor organization view refused, reading each account instead: %s", exc)
            return {"source": "accounts", "fallback": error_text(exc)}
        log.warning("Trusted Advisor organization view unreadable: %s", exc)
        status, why = classify_error(exc), f"organization view: {error_text(exc)}"
        per_account = {a: {"status": status, "error": why, "checks": [], "findings": [], "summaries": {}}
                       for a in account_ids}
        checks, listings = [], {}
    else:
        per_account = ta.split_organization(checks, listings, account_ids, date, opts.savings_columns,
                                            opts.ta_max_age_days)
    for name, key in (("ta_checks", "checks"), ("ta_findings", "findings")):
        schema, sort_by = ACCOUNT_TABLES[name]
        _stage(store, day, name, {a: sorted_rows(p[key], sort_by) for a, p in per_account.items()}, schema)
    _stage(store, day, "ta_coverage", {a: [{"account_id": a, "region": ta.GLOBAL_REGION, "source": TA,
                                            "status": p["status"], "error": p["error"][:MAX_ERROR_CHARS],
                                            "api_calls": 0}] for a, p in per_account.items()}, tables.COVERAGE)
    refresh = ta.plan_refreshes(checks, {a: p["summaries"] for a, p in per_account.items()}, date,
                                opts.refresh_skip_categories, opts.refresh_per_account,
                                opts.refresh_accounts) if opts.refresh else {}
    gaps = collections.Counter(p["status"] for p in per_account.values() if p["status"] != "ok")
    return {"source": "organization", "checks": len(checks), "recommendations": len(listings),
            "gaps": dict(sorted(gaps.items())), "refresh": refresh}


def _load_ta_source(store: Store, day: Any, opts: Options) -> dict[str, Any]:
    path = _ta_source_path(day, opts)
    # No staged source (phase 2 run alone, as some tests and older runs do): each account is read.
    return json.loads(store.get_text(path)) if store.exists(path) else {"source": "accounts", "refresh": {}}


def _catalogue_path(day: Any, opts: Options) -> str:
    return f"{STAGING['ta_catalogue']}/dt={_as_date(day).isoformat()}/checks-{opts.language}.json"


def _load_catalogue(store: Store, day: Any, opts: Options) -> list[dict[str, Any]] | None:
    path = _catalogue_path(day, opts)
    return json.loads(store.get_text(path)) if store.exists(path) else None


def _stage_threats(access: AwsAccess, store: Store, day: Any, account_ids: list[str],
                   opts: Options) -> dict[str, Any]:
    """GuardDuty and Macie through their delegated administrators: one org-wide listing per source and region."""
    admins = {s: a for s, a in opts.delegated_admins if s in opts.sources}
    pairs = [(source, region) for source in admins for region in opts.regions]
    per_account: dict[str, dict[str, Any]] = {a: {"rows": {}, "coverage": []} for a in account_ids}

    def one(pair: tuple[str, str]) -> tuple[str, str, dict[str, tuple[str, str, list[dict]]] | BaseException]:
        source, region = pair
        module = THREAT_SOURCES[source]
        try:
            client = access.client(module.SERVICE, region, account_id=admins[source])
            return source, region, module.collect_org_region(client, region, admins[source], account_ids)
        except (ClientError, BotoCoreError) as exc:
            return source, region, exc

    with ThreadPoolExecutor(max_workers=max(1, min(opts.workers, len(pairs) or 1))) as pool:
        results = list(pool.map(one, pairs))
    summary: dict[str, Any] = {}
    for source, region, found in results:
        module = THREAT_SOURCES[source]
        summary.setdefault(source, {"admin": admins[source], "regions": 0, "errors": 0})
        for account in account_ids:
            if isinstance(found, BaseException):
                status, why, rows = classify_error(found), f"delegated administrator: {error_text(found)}", []
            else:
                status, why, rows = found[account]
            slot = per_account[account]
            slot["rows"].setdefault(module.TABLE, []).extend(rows)
            slot["coverage"].append({"account_id": account, "region": region, "source": source, "status": status,
                                     "error": why[:MAX_ERROR_CHARS], "api_calls": 0})
        summary[source]["errors" if isinstance(found, BaseException) else "regions"] += 1
    staged = {a: slot for a, slot in per_account.items() if slot["coverage"]}  # none without an administrator
    for source, module in THREAT_SOURCES.items():
        schema, sort_by = ACCOUNT_TABLES[module.TABLE]
        _stage(store, day, module.TABLE, {a: sorted_rows(slot["rows"].get(module.TABLE, []), sort_by)
                                          for a, slot in staged.items() if source in admins}, schema)
    _stage(store, day, "threat_coverage", {a: slot["coverage"] for a, slot in staged.items()}, tables.COVERAGE)
    return summary


def collect_aggregate(access: AwsAccess, store: Store, day: Any, account_ids: Iterable[str],
                      opts: Options) -> dict[str, Any]:
    """The organization-level reads, once per run in the admin account, staged under ``_staging/`` (one file per
    table, every account's rows: :func:`_stage`, read back by :class:`Staged`): the Config aggregator's source status
    (coverage reasons), Trusted Advisor's organization view and check catalogue, and GuardDuty and Macie through
    their delegated administrators.

    The three parts share nothing (their calls go to different services' quotas, their files are their own), so they
    run at once, each on its own thread (Trusted Advisor's recommendations and the threat listings add their own
    bounded pools): the stage takes about as long as its slowest part, not their sum.

    :param access: the admin account's access layer.
    :param store: the history store.
    :param day: partition day.
    :param account_ids: accounts collected this run.
    :param opts: run options.
    :returns: a small summary per part (an XCom value).
    """
    account_ids = sorted(account_ids)
    access.admin_id()  # so that a delegated administrator that is the admin account is read with its own credentials
    summary: dict[str, Any] = {"aggregator": None, "status": "absent", "accounts": len(account_ids), "error": ""}
    parts: dict[str, Callable[[], dict[str, Any]]] = {}
    if CONFIG in opts.sources:
        parts[CONFIG] = partial(_stage_config_sources, access, store, day, account_ids, opts)
    if TA in opts.sources:
        parts[TA] = partial(_stage_ta, access, store, day, account_ids, opts)
    parts["threats"] = partial(_stage_threats, access, store, day, account_ids, opts)
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="awsgov-aggregate") as pool:
        running = {name: pool.submit(fn) for name, fn in parts.items()}
        done = {name: fut.result() for name, fut in running.items()}  # a part's bug raises here, as before
    if CONFIG in done:
        summary.update(done[CONFIG])
    if TA in done:
        summary["trusted_advisor"] = done[TA]
    summary["threats"] = done["threats"]
    log.info("organization-level reads: %s", summary)
    return summary


# -- phase 2: per account ---------------------------------------------------------------------------------------
def _as_date(day: Any) -> dt.date:
    return day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)[:10])


def _ta_probe(access: AwsAccess, account_id: str, day: dt.date, opts: Options,
              catalogue: list[dict[str, Any]] | None, skip: frozenset[str] = frozenset(), note: str = "") -> Outcome:
    """The account's Trusted Advisor through its Support API: every check of the catalogue but those in ``skip``
    (read from the organization view), ``note`` on the coverage of a failed result read."""
    client = counted_client(access, "support", ta.SUPPORT_REGION, account_id)
    # With the run's catalogue, the summaries call is the probe (SubscriptionRequiredException without a plan).
    checks = catalogue if catalogue is not None else ta.describe_checks(client, opts.language)
    checks = [c for c in checks if c["id"] not in skip]
    found = ta.summaries(client, [c["id"] for c in checks])
    out = Outcome(rows={"ta_checks": ta.check_rows(account_id, checks, found)})
    for check in checks:
        if ta.has_flagged(found.get(check["id"], {})):
            out.follow.append(Unit(ta.GLOBAL_REGION, TA, partial(_ta_result, access, account_id, check, opts),
                                   note=note))
    # Refresh what is older than the day, unless AWS refreshes it itself or it does not apply to the account: the
    # oldest results first, refresh_per_account of them a run (each request is one call in the account).
    stale = sorted((str((found.get(c["id"]) or {}).get("timestamp") or ""), c["id"]) for c in checks
                   if c.get("category") not in opts.refresh_skip_categories
                   and (found.get(c["id"]) or {}).get("status") != "not_available"
                   and ta.is_stale(found.get(c["id"]), day))
    todo = [cid for _, cid in stale[:max(0, opts.refresh_per_account)]]
    if opts.refresh and todo:
        out.follow.append(Unit(ta.GLOBAL_REGION, TA, partial(_ta_refresh, client, todo), best_effort=True))
    return out


def _ta_result(access: AwsAccess, account_id: str, check: dict[str, Any], opts: Options) -> Outcome:
    client = counted_client(access, "support", ta.SUPPORT_REGION, account_id)
    result = ta.check_result(client, check["id"], opts.language)
    return Outcome(rows={"ta_findings": ta.finding_rows(account_id, check, result, opts.savings_columns)})


def _ta_refresh_account(access: AwsAccess, account_id: str, check_ids: list[str]) -> Outcome:
    return _ta_refresh(counted_client(access, "support", ta.SUPPORT_REGION, account_id), check_ids)


def _ta_refresh(client: Any, check_ids: list[str]) -> Outcome:
    # RefreshTrustedAdvisorCheck answers with the check's refresh status (Support API Reference): no
    # DescribeTrustedAdvisorCheckRefreshStatuses first (trusted_advisor.py).
    done = sum(ta.request_refresh(client, cid) for cid in check_ids)
    log.debug("requested %d Trusted Advisor refreshes", done)
    return Outcome()


def _config_snapshot(job: Job, access: AwsAccess, bucket: str, day: dt.date, region: str, opts: Options,
                     why_not: str) -> Unit:
    """The unit reading one account's and region's configuration snapshot of the day from the central bucket: Config
    compliance and, with the inventory on, the managed instances' inventory it records (the data sync is read instead
    where there is no snapshot)."""
    gaps: dict[str, str] = {}
    read: set[str] = set()
    inventory = inv.enabled(opts)
    prohibited = prohibited_rules(opts.inventory) if inventory else []
    s3_client = partial(counted_client, access, "s3", opts.home_region, None)

    def fn() -> Outcome:
        s3 = counted_client(access, "s3", opts.home_region, None)
        folder = cfgc.snapshot_folder(opts.snapshot_prefix, job.account_id, region, day)
        key = cfgc.find_snapshot(s3, bucket, folder)
        if key is None:
            # AWS delivers each channel's snapshot once in 24 hours, at an hour of its own: a run early in the day
            # (the daily schedule starts at midnight) reads the one delivered the day before, the latest state there
            # is. Its items carry their own capture times (recorded_at).
            key = cfgc.find_snapshot(s3, bucket, cfgc.snapshot_folder(opts.snapshot_prefix, job.account_id, region,
                                                                       day - dt.timedelta(days=1)))
        if key is None:
            gaps[region] = f"no Config snapshot for {day} or the day before under s3://{bucket}/{folder}" + (
                f"; {why_not}" if why_not else "")
            return Outcome()
        snap = cfgc.read_snapshot(s3, bucket, key, keep=[inv.MANAGED_INSTANCE_INVENTORY] if inventory else [])
        rules, found = cfgc.compliance_columns(job.account_id, region, snap.compliance)
        rows: dict[str, list] = {"config_rules": rules, "config_findings": [found]}  # one block: units.Columns
        if inventory:
            rows.update(inv.snapshot_rows(job.account_id, region, snap.items, prohibited))
            read.add(region)
        return Outcome(rows=rows)

    def then(status: str, exc: BaseException | None) -> list[Unit]:
        if region in gaps:
            job.record(region, CONFIG, NOT_DELIVERED, gaps[region][:MAX_ERROR_CHARS])
        if not inventory or region in read:
            return []
        if status != "ok":  # the bucket refused or failed: the inventory of the region is not known either
            job.record(region, inv.SOURCE, status, error_text(exc))
            return []
        return [inv.sync_unit(s3_client, bucket, job.account_id, region, opts)]  # no snapshot: the data sync

    return Unit(region, CONFIG, fn, then=then)


def _threat_region(access: AwsAccess, job: Job, source: str, region: str) -> Unit:
    module = THREAT_SOURCES[source]

    def fn() -> Outcome:
        client = counted_client(access, module.SERVICE, region, job.account_id)
        status, why, rows = module.collect_region(client, job.account_id, region, None)
        if status != "ok":
            gaps[region] = why
        return Outcome(rows={module.TABLE: rows})

    def then(status: str, exc: BaseException | None) -> list[Unit]:
        if region in gaps:  # read fine, but the service is off there: a gap with its reason
            job.record(region, source, "not_enabled", gaps[region][:MAX_ERROR_CHARS])
        return []

    gaps: dict[str, str] = {}
    return Unit(region, source, fn, then=then)


def _role_unreachable(exc: BaseException | None) -> bool:
    # AssumeRole itself was refused: nothing can be read in the account, so other reads are not attempted.
    return isinstance(exc, ClientError) and exc.operation_name == "AssumeRole"


def staged_names(opts: Options, ta_source: Mapping[str, Any] | None = None) -> list[str]:
    """The staged tables phase 2 reads with these options (``ta_source``: :func:`_load_ta_source`)."""
    names = ["config_sources"] if CONFIG in opts.sources and opts.regions else []
    delegated = [s for s, _ in opts.delegated_admins if s in opts.sources and s in THREAT_SOURCES]
    if delegated:
        names += ["threat_coverage", *(THREAT_SOURCES[s].TABLE for s in delegated)]
    if TA in opts.sources and (ta_source or {}).get("source") == "organization":
        names += ["ta_coverage", "ta_checks", "ta_findings"]
    return names


def account_job(access: AwsAccess, store: Store, day: Any, account_id: str, opts: Options,
                catalogue: list[dict[str, Any]] | None = None, ta_source: Mapping[str, Any] | None = None,
                staged: Staged | None = None) -> Job:
    """The units of one account: Config snapshots and the SSM inventory from the central bucket (admin
    credentials), the staged delegated-administrator slices, and, through the read role, Trusted Advisor and the
    threat sources read per account (after the Trusted Advisor probe, which tells whether the role works).

    :param access: the admin account's access layer.
    :param store: the history store (for the staged slices).
    :param day: partition day.
    :param account_id: the account.
    :param opts: run options.
    :param catalogue: the run's Trusted Advisor catalogue; None: read in the account.
    :param ta_source: where phase 1 read Trusted Advisor (``_load_ta_source``); None: each account.
    :param staged: the run's staged tables, read once for all the process's accounts; None: read here.
    """
    date = _as_date(day)
    if staged is None:
        staged = Staged(store, day, staged_names(opts, ta_source))
    admins = dict(opts.delegated_admins)
    regions = list(opts.regions) if CONFIG in opts.sources else []
    keys = ([(ta.GLOBAL_REGION, TA)] if TA in opts.sources else []) + [(r, CONFIG) for r in regions]
    keys += [(r, s) for s in THREAT_SOURCES if s in opts.sources for r in opts.regions]
    job = Job(account_id, [], keys)
    bucket = central_bucket(access, opts) if regions or inv.enabled(opts) else ""
    if regions:
        sources = {r["region"]: r["error"] for r in staged.rows("config_sources", account_id)}
        job.units += [_config_snapshot(job, access, bucket, date, r, opts, sources.get(r, "")) for r in regions]
    if regions:  # the inventory comes with each region's snapshot (ssm_inventory.py)
        for region in regions if inv.enabled(opts) else []:
            job.record(region, inv.SOURCE, "ok")
    else:
        inv.add_units(job, partial(counted_client, access, "s3", opts.home_region, None), bucket, account_id, opts)
    delegated = [s for s in THREAT_SOURCES if s in opts.sources and s in admins]
    if delegated:
        coverage = staged.rows("threat_coverage", account_id)
        for row in coverage:
            if row["source"] in delegated:
                job.record(row["region"], row["source"], row["status"], row["error"])
        for source in delegated:
            job.rows[THREAT_SOURCES[source].TABLE] += staged.rows(THREAT_SOURCES[source].TABLE, account_id)
        missing = {(r, s) for r in opts.regions for s in delegated} - {(c["region"], c["source"]) for c in coverage}
        for region, source in sorted(missing):  # staging did not run for this account: never a silent "ok"
            job.record(region, source, "error", "delegated administrator listing missing for this run")
    threat_own = [_threat_region(access, job, s, r) for s in THREAT_SOURCES
                  if s in opts.sources and s not in admins for r in opts.regions]
    if TA not in opts.sources:
        job.units += threat_own
        return job
    skip, note = frozenset(), ""
    if ta_source is not None and ta_source.get("source") == "organization":
        skip, note = _ta_from_organization(job, access, staged, opts, ta_source)
        if catalogue is not None and {c["id"] for c in catalogue} <= skip:
            # Every check from the organization view: no probe through the role; each threat unit meets it itself.
            job.units += threat_own
            return job

    def then(status: str, exc: BaseException | None) -> list[Unit]:
        if _role_unreachable(exc):
            for unit in threat_own:
                job.record(unit.region, unit.source, status, error_text(exc))
            return []
        return threat_own

    probe = partial(_ta_probe, access, account_id, date, opts, catalogue, skip, note)
    job.units.append(Unit(ta.GLOBAL_REGION, TA, probe, then=then, note=note))
    return job


def _ta_from_organization(job: Job, access: AwsAccess, staged: Staged, opts: Options,
                          ta_source: Mapping[str, Any]) -> tuple[frozenset[str], str]:
    """The account's slice of the organization view staged by phase 1, and the refresh of its stale results when
    the run's plan names it (through its read role; best effort, not awaited).

    The organization view lists only prioritized recommendations (Trusted Advisor API Reference,
    ListOrganizationRecommendations), so it is half of a hybrid: the other checks are read through the account's
    Support API, as is every check of an account the view has nothing of (not covered, unreadable, not staged).

    :returns: the checks read from the view (the Support API skips them) and the note for a Support API failure.
    """
    coverage = staged.rows("ta_coverage", job.account_id)
    rows = {name: staged.rows(name, job.account_id) for name in ("ta_checks", "ta_findings")}
    read = frozenset(r["check_id"] for r in rows["ta_checks"])
    if not read:  # nothing of the account in the view: its Support API for every check decides the coverage
        why = "; ".join(r["error"] for r in coverage if r["error"]) or "not staged for this account in this run"
        # Cut short: the coverage row keeps MAX_ERROR_CHARS, and the Support API's error after it says what failed.
        return frozenset(), f"organization view: {why[:100]}; Support API: "
    for row in coverage:
        job.record(row["region"], TA, row["status"], row["error"])
    for name, found in rows.items():
        job.rows[name] += found
    todo = list((ta_source.get("refresh") or {}).get(job.account_id) or [])
    if opts.refresh and todo:
        job.units.append(Unit(ta.GLOBAL_REGION, TA, partial(_ta_refresh_account, access, job.account_id, todo),
                              best_effort=True))
    return read, (f"{len(read)} prioritized checks read from the organization view; the others (not prioritized, "
                  "read through the account's Support API) are missing: ")


def _order(key_columns: list[list[Any]], rest: Callable[[int], list[tuple[str, str]]], ids: list[Any]) -> list[int]:
    """Row indices in a stable order: by the key columns (as text, None as ""), then ``rest(i)`` (the other columns)
    where the keys tie; only the first row of each non-null id in ``ids`` is kept.

    The keys are built a column at a time (a generator per row was most of the cost of writing an account: ~25,000
    Config rows per account on the realistic profile), and the other columns are only looked at where the key
    columns tie, which is rare: the same order as sorting by (key, rest) at once.
    """
    keys = (list(zip(*[["" if v is None else v if type(v) is str else str(v) for v in column]
                       for column in key_columns], strict=True)) if key_columns else [()] * len(ids))
    order = sorted(range(len(ids)), key=keys.__getitem__)
    if any(keys[a] == keys[b] for a, b in itertools.pairwise(order)):  # ties: ordered by the other columns
        ranked = []
        for _, tie in itertools.groupby(order, key=keys.__getitem__):
            group = list(tie)
            ranked += group if len(group) == 1 else sorted(group, key=rest)  # sorted() would call rest() on one too
        order = ranked
    present = [i for i in ids if i is not None]
    if len(set(present)) == len(present):
        return order
    kept, seen = [], set()
    for i in order:  # the first of each id, in order
        if ids[i] is not None:
            if ids[i] in seen:
                continue
            seen.add(ids[i])
        kept.append(i)
    return kept


def _rest(row: Mapping[str, Any], sort_by: list[str]) -> list[tuple[str, str]]:
    return sorted((k, str(v)) for k, v in row.items() if k not in sort_by)


def sorted_rows(rows: Iterable[dict[str, Any]], sort_by: list[str]) -> list[dict[str, Any]]:
    """Rows in a stable order (by ``sort_by``, then every other column), duplicates of a ``finding_id`` dropped.

    :param rows: rows of one table.
    :param sort_by: the table's key columns.
    """
    rows = list(rows)
    order = _order([[row.get(k) for row in rows] for k in sort_by], lambda i: _rest(rows[i], sort_by),
                   [row.get("finding_id") for row in rows])
    return [rows[i] for i in order]


def arrow_rows(rows: list[dict[str, Any] | Columns], schema: pa.Schema, sort_by: list[str]) -> pa.Table:
    """The Arrow table of ``sorted_rows(rows, sort_by)`` where ``rows`` may hold blocks of columns
    (:class:`units.Columns`) beside dict rows: the same rows in the same order, built a column at a time.

    :param rows: rows of one table: dicts and Columns blocks.
    :param schema: the table's schema.
    :param sort_by: the table's key columns.
    """
    blocks = [r for r in rows if isinstance(r, Columns)]
    if not blocks:
        return pa.Table.from_pylist(sorted_rows(rows, sort_by), schema=schema)
    dicts = [r for r in rows if not isinstance(r, Columns)]
    starts = list(itertools.accumulate([len(dicts), *(b.length for b in blocks)]))  # where each block begins

    def column(name: str) -> list[Any]:  # a field of every row: the dict rows', then each block's
        out = [d.get(name) for d in dicts]
        for b in blocks:
            out += b.columns.get(name) or [None] * b.length
        return out

    def row(i: int) -> dict[str, Any]:
        if i < len(dicts):
            return dicts[i]
        k = bisect.bisect_right(starts, i) - 1
        return blocks[k].row(i - starts[k])

    parts = [pa.Table.from_pylist(dicts, schema=schema)] + [
        pa.Table.from_arrays([_array(b.columns.get(f.name) or [None] * b.length, f.type) for f in schema],
                             schema=schema) for b in blocks]
    table = pa.concat_tables(parts)
    order = arrow_order(table, sort_by)
    if order is None:  # ties or repeated ids: the rows' other fields decide, as in sorted_rows
        order = pa.array(_order([column(k) for k in sort_by], lambda i: _rest(row(i), sort_by),
                                column("finding_id")), type=pa.int64())
    return table.take(order).combine_chunks()


def _array(values: list[Any], type_: pa.DataType) -> pa.Array:
    """``pa.array(values, type_)``; a timestamp column through its distinct objects (a snapshot's rows share a few
    capture times, and converting an aware datetime costs about a microsecond: 29 ms for one account's rows)."""
    if not pa.types.is_timestamp(type_) or len(values) < 64:
        return pa.array(values, type=type_)
    slots: dict[int, int] = {}  # by identity: equal values in distinct objects only make more slots
    index = [slots.setdefault(id(v), len(slots)) for v in values]
    if len(slots) * 4 > len(values):
        return pa.array(values, type=type_)
    distinct = list({id(v): v for v in values}.values())  # in the order of slots: first appearances
    return pa.array(distinct, type=type_).take(pa.array(index, type=pa.int32()))


def arrow_order(table: pa.Table, sort_by: list[str]) -> pa.Array | None:
    """:func:`_order` computed by Arrow where it is certainly the same (a realistic account has ~25,000 Config
    rows: sorting them in Python was a fifth of the collector's CPU): text key columns, no two rows with the same
    keys, no finding id twice; None otherwise. Nulls sort as "", and UTF-8's byte order is Python's str order."""
    if not sort_by or any(k not in table.column_names or not pa.types.is_string(table.schema.field(k).type)
                          for k in sort_by):
        return None
    keys = pa.table({k: pc.fill_null(table[k], "") for k in sort_by})
    order = pc.sort_indices(keys, sort_keys=[(k, "ascending") for k in sort_by])
    n = len(order)
    if n > 1:
        ordered = keys.take(order)
        same = None
        for k in sort_by:
            equal = pc.equal(ordered[k].slice(1), ordered[k].slice(0, n - 1))
            same = equal if same is None else pc.and_(same, equal)
        if pc.any(same).as_py():
            return None
    if "finding_id" in table.column_names:
        ids = table["finding_id"]
        if pc.count_distinct(ids, mode="only_valid").as_py() != len(ids) - ids.null_count:
            return None
    return order


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


def _write_account(store: Store, day: Any, job: Job, *, only: Iterable[str] | None = None) -> None:
    job.rows["coverage"] = job.coverage_rows()
    names = {t: t for t in ACCOUNT_TABLES}
    if only is not None:
        wanted = set(only)
        for table in [t for t in names if t not in wanted]:
            _drop_chunk(store, names.pop(table), day, job.account_id)
    for name, table in names.items():
        schema, sort_by = ACCOUNT_TABLES[name]
        # Straight to Arrow: a pandas round trip cost four times as much per chunk (36 ms against 8.5 ms). With a
        # schema, from_pylist takes the schema's columns of each row (None where missing) and ignores the others.
        store.write(table, day, arrow_rows(job.rows.get(name, []), schema, sort_by), chunk=job.account_id,
                    schema=schema)


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
    catalogue = _load_catalogue(store, day, opts) if TA in opts.sources else None
    ta_source = _load_ta_source(store, day, opts) if TA in opts.sources else None
    staged = Staged(store, day, staged_names(opts, ta_source))  # once for the batch, not per account

    def finalize(job: Job) -> None:
        _write_account(store, day, job, only=only)
        access.forget(job.account_id)
        done["accounts"] += 1
        done["gaps"] += sum(c["status"] != "ok" for c in job.coverage.values())

    run_jobs((account_job(access, store, day, a, opts, catalogue, ta_source, staged) for a in account_ids), finalize,
             workers=opts.workers, unit_retries=opts.unit_retries)
    return {**done, "api_calls": access.total_calls()}


# -- the DAG's mapping: batches and reruns -------------------------------------------------------------------------
def account_batches(accounts: list[dict[str, str]], col: Mapping[str, Any]) -> list[list[dict[str, str]]]:
    """The accounts cut into the DAG's mapped tasks: ``accounts_per_task`` each when set, else at most
    ``max_mapped_tasks`` batches (size it to the aws_api pool's slots) of at least ``max_workers`` accounts, so that
    a task keeps its threads busy and pays its process start-up (about 1 CPU-s) once for many accounts.

    :param accounts: collectable accounts, in a stable order.
    :param col: settings ``collection``.
    """
    min_size = col.get("accounts_per_task") or col.get("max_workers") or 1
    return batches.batches(accounts, int(col.get("max_mapped_tasks") or 1), int(min_size))


def rerun_targets(accounts: list[dict[str, str]], wanted: Iterable[str] | None) -> list[dict[str, str]]:
    """The accounts a run collects: all, or only ``wanted`` (a rerun of some accounts).

    :param accounts: collectable accounts.
    :param wanted: account ids from the DAG's ``accounts`` param; None or empty: all.
    :raises ValueError: an id that is not a collectable (ACTIVE, organization) account.
    """
    wanted = sorted(set(wanted or ()))
    if not wanted:
        return accounts
    known = {a["account_id"] for a in accounts}
    unknown = [a for a in wanted if a not in known]
    if unknown:
        raise ValueError(f"not collectable (not an ACTIVE account of the organization): {', '.join(unknown)}")
    return [a for a in accounts if a["account_id"] in set(wanted)]


# -- phase 3: the run row ---------------------------------------------------------------------------------------
# Coverage statuses that mean the collector could not read what exists (not "the service is off there").
FAILING = ("error", "throttled_out", "access_denied")


def failed_sources(coverage: pd.DataFrame) -> dict[str, str]:
    """Sources that failed in every account and region of a day: no ``ok`` row and at least one failing one.

    One broken account is a coverage gap; a source broken everywhere (a bucket policy, a missing permission of the
    admin role, an outage) means the run did not do its work, and the run must say so, not only the coverage rows.

    :param coverage: the day's ``tables.COVERAGE`` rows.
    :returns: source -> "<n> of <m> account x regions failed, e.g. <first error>".
    """
    out: dict[str, str] = {}
    for source, rows in coverage.groupby("source", sort=True):
        failing = rows[rows["status"].isin(FAILING)]
        if (rows["status"] == "ok").any() or failing.empty:
            continue
        first = failing.sort_values(["account_id", "region"]).iloc[0]
        out[str(source)] = (f"{len(failing)} of {len(rows)} account x regions failed, e.g. {first['account_id']} "
                            f"{first['region']}: {first['status']} {first['error']}".rstrip())
    return out


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
    # One file per table and day for readers (store.py: the read cache). Two tables at a time: a small table's
    # compaction is mostly opening its thousand files, config_findings' mostly Arrow decoding and encoding millions
    # of rows outside the GIL, so the small ones go by while the large one is written.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="awsgov-compact") as pool:
        list(pool.map(partial(store.compact, day=day), ACCOUNT_TABLES))
    coverage = store.read("coverage", day, day, schema=tables.COVERAGE)
    row = {"run_id": run_id, "started_at": started_at, "finished_at": dt.datetime.now(dt.UTC),
           "accounts": len(keep), "regions": sorted(regions), "gaps": int((coverage["status"] != "ok").sum()),
           "api_calls": int(api_calls)}
    store.write("collection_runs", day, pd.DataFrame([row]), schema=tables.COLLECTION_RUNS)
    if any(dropped.values()):
        log.info("pruned chunks of accounts not in this run: %s", {t: d for t, d in dropped.items() if d})
    failed = failed_sources(coverage) if not coverage.empty else {}
    for source, why in failed.items():
        log.error("collection: %s failed everywhere: %s", source, why)
    return {**{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()},
            "failed_sources": failed}


def collect_org(access: AwsAccess, store: Store, day: Any, opts: Options, run_id: str = "manual") -> dict[str, Any]:
    """A whole run in one process (scripts, tests, benchmarks): accounts, aggregator, every account, run row.

    :param access: the admin account's access layer.
    :param store: the history store.
    :param day: partition day.
    :param opts: run options.
    :param run_id: label of the run.
    """
    started = dt.datetime.now(dt.UTC)
    listed = org.list_org_accounts(access)
    targets = [a["account_id"] for a in org.collectable_listed(listed)]
    # The account tags (owners) are one Organizations call per account at its low request rate, the slowest part of
    # a run at hundreds of accounts, and nothing collected needs them: they are read alongside the collection.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="awsgov-accounts") as side:
        snapshot = side.submit(org.snapshot_accounts, access, store, day, opts.workers, listed)
        aggregate = collect_aggregate(access, store, day, targets, opts)
        result = collect_accounts(access, store, day, targets, opts)
        rows = snapshot.result()
    run = finish_run(store, day, targets, run_id=run_id, started_at=started, regions=opts.regions,
                     api_calls=access.total_calls())
    return {**run, "aggregate": aggregate, "accounts_seen": len(rows), "collected": result["accounts"]}

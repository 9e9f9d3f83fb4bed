"""Phase 1's staging (runner.collect_aggregate, runner.Staged): one file per staged table and run, cut per account by
phase 2. Each account's slice must be exactly its own organization-level rows, a retry must write the same files, and
a rerun of some accounts must stage only those and leave every other account's stored data as it was."""

from __future__ import annotations

import datetime as dt
import logging
import shutil

import pytest

from include.awsgov.collection import guardduty, macie, runner
from include.awsgov.collection import trusted_advisor as ta
from include.awsgov.core.aws import AwsAccess
from tests.fixtures.store_files import store_files

SOURCES = ("trusted_advisor", "config", "guardduty", "macie")


def _access(sandbox):
    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTSTAGING00001",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-staging", retry_mode="standard")


def _staging_files(store) -> dict:
    return {k: v for k, v in store_files(store.root).items() if k.startswith("_staging/")}


@pytest.fixture(scope="module")
def staged_run(sandbox, tmp_path_factory):
    """A whole collection of every source with GuardDuty and Macie through their delegated administrator (the
    management account) and Trusted Advisor from the organization view; then phase 1 once more (a retry), and a
    rerun of three accounts in a copy of the store."""
    from include.awsgov.core import accounts
    from include.awsgov.core.store import Store

    logging.getLogger("botocore.credentials").setLevel(logging.CRITICAL)
    sandbox.clear_faults()
    mgmt = sandbox.info["management_account_id"]
    day = sandbox.today()
    # No refresh requests: they change the sandbox's Trusted Advisor results, and the retry and the rerun must read
    # the same day as the first run.
    opts = runner.Options(regions=tuple(sandbox.info["regions"]), sources=SOURCES, refresh=False,
                          delegated_admins=(("guardduty", mgmt), ("macie", mgmt)))
    root = tmp_path_factory.mktemp("staging")
    store = Store(root / "store")
    targets = [a["account_id"] for a in accounts.collectable_listed(accounts.list_org_accounts(_access(sandbox)))]
    aggregate = runner.collect_aggregate(_access(sandbox), store, day, targets, opts)
    runner.collect_accounts(_access(sandbox), store, day, targets, opts)
    runner.finish_run(store, day, targets, run_id="full", started_at=dt.datetime.now(dt.UTC),
                      regions=opts.regions, api_calls=0)
    full = store_files(store.root, skip=("collection_runs",))
    staged_first = _staging_files(store)
    runner.collect_aggregate(_access(sandbox), store, day, targets, opts)  # a retry of list_accounts
    staged_retry = _staging_files(store)
    # A rerun of some accounts (the DAG's `accounts` param): staged and collected alone, every account kept.
    rerun_store = Store(root / "rerun")
    shutil.copytree(store.root, rerun_store.root)
    chosen = targets[1:4]
    runner.collect_aggregate(_access(sandbox), rerun_store, day, chosen, opts)
    runner.collect_accounts(_access(sandbox), rerun_store, day, chosen, opts)
    runner.finish_run(rerun_store, day, targets, run_id="rerun", started_at=dt.datetime.now(dt.UTC),
                      regions=opts.regions, api_calls=0)
    return {"store": store, "rerun_store": rerun_store, "day": day, "opts": opts, "targets": targets,
            "chosen": chosen, "mgmt": mgmt, "aggregate": aggregate, "full": full, "staged_first": staged_first,
            "staged_retry": staged_retry}


def test_one_staged_file_per_table_and_run(staged_run):
    names = {path.split("/")[1] for path in staged_run["staged_first"]}
    assert names == set(runner.STAGING) - {"ta_catalogue"}
    assert all(path.endswith(f"/part-{runner.STAGED_CHUNK}.parquet") for path in staged_run["staged_first"])
    assert staged_run["aggregate"]["trusted_advisor"]["source"] == "organization"


def test_a_retry_of_phase_1_writes_the_same_staged_files(staged_run):
    assert staged_run["staged_retry"] == staged_run["staged_first"]


def test_each_account_gets_exactly_its_delegated_administrators_rows(sandbox, staged_run):
    """Read the delegated administrator's org-wide listings again, split them per account independently, and compare
    with each account's slice: nothing lost, nothing of another account, in the order the account's file held."""
    day, opts, mgmt, targets = staged_run["day"], staged_run["opts"], staged_run["mgmt"], staged_run["targets"]
    staged = runner.Staged(staged_run["store"], day, runner.staged_names(opts, {"source": "organization"}))
    access = _access(sandbox)
    for module in (guardduty, macie):
        want_rows = {a: [] for a in targets}
        want_coverage = {a: [] for a in targets}
        for region in opts.regions:
            found = module.collect_org_region(access.client(module.SERVICE, region), region, mgmt, targets)
            for account, (status, why, rows) in found.items():
                want_rows[account] += rows
                want_coverage[account].append((region, status, why))
        _, sort_by = runner.ACCOUNT_TABLES[module.TABLE]
        for account in targets:
            assert staged.rows(module.TABLE, account) == runner.sorted_rows(want_rows[account], sort_by), account
            got = [(r["region"], r["status"], r["error"]) for r in staged.rows("threat_coverage", account)
                   if r["source"] == module.SOURCE]
            assert got == want_coverage[account], account
        assert sum(len(v) for v in want_rows.values()) > 0  # the sandbox seeds findings: the check compares rows


def test_each_account_gets_exactly_its_trusted_advisor_view(sandbox, staged_run):
    day, opts, targets = staged_run["day"], staged_run["opts"], staged_run["targets"]
    staged = runner.Staged(staged_run["store"], day, ["ta_checks", "ta_findings", "ta_coverage"])
    client = _access(sandbox).client(ta.ORG_SERVICE, ta.ORG_REGION)
    checks = ta.org_catalogue(client, opts.language)
    listings = {cid: ta.org_listing(client, arn) for cid, arn in ta.org_recommendations(client).items()}
    split = ta.split_organization(checks, listings, targets, runner._as_date(day), opts.savings_columns,
                                  opts.ta_max_age_days)
    for account in targets:
        part = split[account]
        assert staged.rows("ta_checks", account) == runner.sorted_rows(part["checks"], ["check_id"])
        assert staged.rows("ta_findings", account) == runner.sorted_rows(
            part["findings"], runner.ACCOUNT_TABLES["ta_findings"][1])
        assert [(r["status"], r["error"]) for r in staged.rows("ta_coverage", account)] == [
            (part["status"], part["error"][:runner.MAX_ERROR_CHARS])]
    assert any(split[a]["checks"] for a in targets)


def test_slices_partition_the_staged_table(staged_run):
    """Every staged row belongs to one collected account's slice: the slices together are the file, in its order."""
    import pyarrow.parquet as pq

    day, targets = staged_run["day"], staged_run["targets"]
    for name in set(runner.STAGING) - {"ta_catalogue"}:
        staged = runner.Staged(staged_run["store"], day, [name])
        whole = pq.read_table(staged_run["store"].partition_path(runner.STAGING[name], day)
                              + f"/part-{runner.STAGED_CHUNK}.parquet").to_pylist()
        assert [row for a in targets for row in staged.rows(name, a)] == whole, name
        assert all(row["account_id"] == a for a in targets for row in staged.rows(name, a))


def test_a_rerun_of_some_accounts_stages_only_them_and_keeps_the_others(staged_run):
    day, chosen = staged_run["day"], staged_run["chosen"]
    rerun = staged_run["rerun_store"]
    staged = runner.Staged(rerun, day, ["threat_coverage", "ta_coverage", "config_sources"])
    for name in ("threat_coverage", "ta_coverage"):
        assert {a for a in staged_run["targets"] if staged.rows(name, a)} == set(chosen)
    # Every account's stored chunk (the chosen ones collected again, the others kept) and every read cache: the same
    # data as after the full run.
    assert store_files(rerun.root, skip=("collection_runs",)).keys() >= staged_run["full"].keys()
    after = store_files(rerun.root, skip=("collection_runs",))
    assert {k: after[k] for k in staged_run["full"] if not k.startswith("_staging/")} == {
        k: v for k, v in staged_run["full"].items() if not k.startswith("_staging/")}


def test_an_account_staged_by_no_run_is_a_gap_not_an_ok(sandbox, staged_run, tmp_path):
    """Phase 2 for an account phase 1 did not stage (a batch of another run's accounts): its delegated sources are an
    error gap that says so, as with the per-account files."""
    from include.awsgov.core.store import Store

    day, opts, targets = staged_run["day"], staged_run["opts"], staged_run["targets"]
    store = Store(tmp_path / "store")
    shutil.copytree(staged_run["rerun_store"].root, store.root, dirs_exist_ok=True)  # staged: the 3 chosen only
    outsider = next(a for a in targets if a not in staged_run["chosen"])
    job = runner.account_job(_access(sandbox), store, day, outsider, opts, None, {"source": "organization"})
    gaps = {key: (cov["status"], cov["error"]) for key, cov in job.coverage.items() if key[1] in ("guardduty", "macie")}
    assert len(gaps) == 2 * len(opts.regions)
    assert set(gaps.values()) == {("error", "delegated administrator listing missing for this run")}

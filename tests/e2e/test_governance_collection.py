"""governance_collection end to end: the real Airflow (``dag.test()``) against the session sandbox over HTTP.

One run of the DAG with two faults (an account whose read role refuses AssumeRole, one without a support plan),
one mapped task per account; then a rerun of the same day with the default batching (sized to max_mapped_tasks and
max_workers), and a rerun of one account through the ``accounts`` param, which must leave byte-identical partitions
(chunks are per account whatever the batching, and a rerun of one account keeps every other account's data); an
account that is not collectable is refused and the run is red. The library's behaviour under
heavier faults (30 % throttling, latency) is tested against the sandbox's truth in tests/awsgov (no Airflow).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_dag
from tests.fixtures.store_files import store_files

pytestmark = pytest.mark.e2e
DATA_TABLES = ("accounts", "ta_checks", "ta_findings", "config_rules", "config_findings", "coverage")


def _files(store_url: str) -> dict:
    """Every data file of the store (``collection_runs`` holds run timing, so it differs by design)."""
    return store_files(store_url, tables=DATA_TABLES)


def _states(run) -> dict[str, tuple[str, str | None]]:
    """{task_id[map_index]: (state, rendered map index)} of a run, read at once (the next dag.test() clears it)."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == run.dag_id,
                                                 TaskInstance.run_id == run.run_id).all()
        return {(ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"):
                (str(ti.state), ti.rendered_map_index) for ti in tis}


def _settings(env: dict, monkeypatch, **collection) -> None:
    """Point the awsgov_settings Variable at one region (a shorter run) and the given collection settings."""
    settings = {**env["settings"], "regions": ["us-east-1"], "collection": collection}
    monkeypatch.setenv("AIRFLOW_VAR_AWSGOV_SETTINGS", json.dumps(settings))


def test_dag_run_collects_every_account_and_a_rerun_writes_identical_partitions(airflow_sandbox_env, sandbox,
                                                                                  monkeypatch):
    from include.awsgov.core import tables
    from include.awsgov.core.store import Store

    members = [a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    denied, no_support = members[0], members[1]
    active = [a for a in sandbox.info["accounts"] if a["status"] == "ACTIVE"]
    sandbox.set_faults(deny_assume_accounts=[denied], no_support_accounts=[no_support])
    day = sandbox.today()
    try:
        _settings(airflow_sandbox_env, monkeypatch, accounts_per_task=1)
        first = run_dag("governance_collection", {"date": day})
        first_states = _states(first)
        files = _files(airflow_sandbox_env["store_url"])
        assert f"coverage/dt={day}/_compact.parquet" in files  # finish_run compacted the day for readers
        _settings(airflow_sandbox_env, monkeypatch)
        second = run_dag("governance_collection", {"date": day})
        second_states = _states(second)
        second_files = _files(airflow_sandbox_env["store_url"])
        third = run_dag("governance_collection", {"date": day, "accounts": [denied]})
        third_states = _states(third)
        refused = run_dag("governance_collection", {"date": day, "accounts": ["999999999999"]})
        refused_states = _states(refused)
    finally:
        sandbox.clear_faults()

    for run, states in ((first, first_states), (second, second_states), (third, third_states)):
        assert str(run.state) == "success", states
        assert {state for state, _ in states.values()} == {"success"}, states
    labels = [label for key, (_, label) in first_states.items() if key.startswith("collect_account[")]
    assert len(labels) == len(active) + 1  # one mapped task per account, the management account included
    assert f"{sandbox.info['management_account_id']} management" in labels
    batches = [label for key, (_, label) in second_states.items() if key.startswith("collect_account[")]
    # Default: batches of at least max_workers (8) accounts, so a task process serves many accounts.
    assert len(batches) == -(-(len(active) + 1) // 8) and "(8 accounts)" in batches[0], batches
    assert second_files == files
    (one,) = [label for key, (_, label) in third_states.items() if key.startswith("collect_account[")]
    assert one.startswith(denied)
    assert _files(airflow_sandbox_env["store_url"]) == files  # the other accounts' data of the day is kept
    assert str(refused.state) == "failed" and refused_states["list_accounts"][0] == "failed", refused_states

    store = Store(airflow_sandbox_env["store_url"])
    runs = store.read("collection_runs", day, day, schema=tables.COLLECTION_RUNS)
    assert list(runs["run_id"]) == [third.run_id]
    cov = store.read("coverage", day, day, schema=tables.COVERAGE)
    gaps = {(r.account_id, r.source, r.status) for r in cov.itertuples() if r.status != "ok"}
    # Trusted Advisor (settings default source: organization): the prioritized checks from the organization view,
    # the others through the read role; the refused role is a gap for those only, and an account without a support
    # plan is in neither.
    assert (denied, "trusted_advisor", "access_denied") in gaps
    assert (no_support, "trusted_advisor", "no_support_plan") in gaps
    assert int(runs["gaps"].iloc[0]) == len(gaps)
    truth = sandbox.truth(date=day, sections=["trusted_advisor"])["trusted_advisor"]
    prioritized = set(truth["organization_view"]["prioritized"])
    checks = store.read("ta_checks", day, day, schema=tables.TA_CHECKS)
    assert no_support not in set(checks["account_id"])
    for account in (denied, sandbox.info["management_account_id"]):  # the read role refused, and the caller itself
        mine = checks[checks["account_id"] == account].set_index("check_id")
        read = prioritized if account == denied else set(truth["checks"])
        assert set(mine.index) >= read and (account != denied or set(mine.index) == prioritized)
        for check_id, result in truth["results"][account].items():
            if check_id not in read:
                continue
            counts = result["resourcesSummary"]
            # A prioritized check the view does not list for the account: no time known.
            stamp = "" if result["status"] == "not_available" and check_id in prioritized else result["timestamp"]
            assert (mine.loc[check_id, "status"], mine.loc[check_id, "checked_at"],
                    mine.loc[check_id, "resources_processed"], mine.loc[check_id, "resources_flagged"]) == (
                result["status"], stamp, counts["resourcesProcessed"], counts["resourcesFlagged"]), check_id
    findings = store.read("config_findings", day, day, schema=tables.CONFIG_FINDINGS)
    assert len(findings) and not findings["finding_id"].duplicated().any()
    assert set(findings["region"]) == {"us-east-1"}


def test_a_source_that_fails_in_every_account_makes_the_run_red(airflow_sandbox_env, sandbox, monkeypatch):
    """The Trusted Advisor and Support APIs throttle every call (the admin account's too): Trusted Advisor fails
    everywhere. What could be read is stored and every account's gap recorded, and the run is red and names the
    source, not green with gaps."""
    from include.awsgov.core import tables
    from include.awsgov.core.store import Store

    sandbox.set_faults(throttle_rate=1.0, throttle_services=["support", "trustedadvisor"])
    day = sandbox.today()
    try:
        _settings(airflow_sandbox_env, monkeypatch, sources=["trusted_advisor"], unit_retries=0)
        # Two accounts keep the run short (each throttled call is retried with backoff before it counts).
        two = [sandbox.info["management_account_id"], sandbox.info["member_account_ids"][0]]
        run = run_dag("governance_collection", {"date": day, "accounts": two})
        states = _states(run)
    finally:
        sandbox.clear_faults()
    assert str(run.state) == "failed", states
    assert states["finish_run"][0] == "failed" and states["export_findings"][0] == "upstream_failed", states
    coverage = Store(airflow_sandbox_env["store_url"]).read("coverage", day, day, schema=tables.COVERAGE)
    ta = coverage[coverage["source"] == "trusted_advisor"]
    assert len(ta) and "ok" not in set(ta["status"]), set(ta["status"])  # every gap recorded all the same

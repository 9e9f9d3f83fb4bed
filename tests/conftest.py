"""Shared fixtures: Airflow's environment (set before Airflow is imported), one sandbox per test session, and a
helper that runs a DAG for real with ``dag.test()``.

Each xdist worker gets its own AIRFLOW_HOME (SQLite DB) and its own sandbox port, so workers never share state.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Every botocore call the product makes is checked against the service model (max lengths, enums, patterns, ranges).
pytest_plugins = ["tests.contract.botocore_contract", "tests.fixtures.notify_targets"]
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
AIRFLOW_HOME = REPO / ".airflow" / f"test-{_WORKER}"

# Airflow reads its configuration at import time: set it here, before any test module imports airflow.
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB for this worker (dag.test() needs one)."""
    from scripts.localenv import migrate_db

    migrate_db({"AIRFLOW_HOME": str(AIRFLOW_HOME)})
    return AIRFLOW_HOME


# Fixtures that start the emulated AWS; a test using any of them (directly or through another fixture) is marked
# ``sandbox`` at collection, so ``make test-fast`` (``-m "not sandbox"``) runs everything else.
SANDBOX_FIXTURES = {"sandbox", "clean_sandbox", "airflow_sandbox_env", "sb", "members"}
# Fixtures that start a real Airflow api-server or a browser (tests/plugins): marked ``server``, also left out of
# the fast loop (they are end-to-end tests of the UI).
SERVER_FIXTURES = {"server", "onboarding_server", "browser_page"}


def pytest_collection_modifyitems(config, items):
    """Mark every test that needs the emulated AWS (a sandbox fixture, tests/sandbox, tests/e2e) as ``sandbox``, and
    every test that starts an Airflow api-server or a browser as ``server``."""
    for item in items:
        path = Path(str(item.fspath)).resolve().relative_to(REPO).parts
        if SANDBOX_FIXTURES & set(getattr(item, "fixturenames", ())) or path[:2] in {("tests", "sandbox"),
                                                                                    ("tests", "e2e")}:
            item.add_marker(pytest.mark.sandbox)
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def sandbox():
    """The one running sandbox organization of the session (12 accounts, "today" = TEST_DATE), stopped at the end.

    Each xdist worker has its own session, hence its own sandbox on its own free port.
    """
    from tests.fixtures.sandbox import start_sandbox

    sb = start_sandbox()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def clean_sandbox(sandbox):
    """The session sandbox with faults cleared, calls reset and the test date restored, before and after the test."""
    from tests.fixtures.sandbox import TEST_DATE

    sandbox.clear_faults()
    sandbox.reset_calls()
    sandbox.set_date(TEST_DATE)
    yield sandbox
    sandbox.clear_faults()
    sandbox.set_date(TEST_DATE)


@pytest.fixture
def airflow_sandbox_env(airflow_db, sandbox, tmp_path, monkeypatch):
    """Point Airflow's aws_default connection and Variables at the sandbox, with a fresh store per test.

    Connections and Variables from the environment are read at lookup time, so setting them now is enough.
    """
    from scripts.localenv import airflow_env

    store_url = str(tmp_path / "store")
    env = airflow_env(sandbox.info, AIRFLOW_HOME, store_url)
    for key, value in env.items():
        if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AWS_")):
            monkeypatch.setenv(key, value)
    return {"store_url": store_url, "env": env, "settings": json.loads(env["AIRFLOW_VAR_AWSGOV_SETTINGS"])}


def run_dag(dag_id: str, conf: dict | None = None, logical_date=None):
    """Run one DAG in-process with Airflow's dag.test() and return the finished DagRun.

    :param dag_id: id of a DAG in dags/.
    :param conf: run conf (validated against the DAG's Params, as a UI trigger would be).
    :param logical_date: the run's logical date; None for a manual-style run.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    return dag.test(run_conf=conf, logical_date=logical_date)


def task_states(dag_run) -> dict[str, str]:
    """{task_id[map_index]: state} of a finished run, for assertions."""
    out = {}
    for ti in dag_run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        out[key] = str(ti.state)
    return out

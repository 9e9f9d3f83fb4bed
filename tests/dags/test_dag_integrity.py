"""Every DAG file parses through Airflow's DagBag cleanly, fast, and carries what operators need in the UI."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
APPROVED_TAGS = {"governance", "onboarding", "collection", "trusted-advisor", "config", "metrics", "anomaly",
                 "report", "email", "events", "stacksets", "security"}
MAX_PARSE_SECONDS = 3.0


def _parse(path: Path):
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(path))
        elapsed = time.perf_counter() - started
    return bag, elapsed, caught


def test_dags_folder_has_the_core_dags():
    stems = {p.stem for p in DAG_FILES}
    assert {"account_onboarding", "governance_collection", "metric_anomaly_checks",
            "weekly_compliance_report"} <= stems, stems


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_without_errors_or_deprecations(path):
    bag, elapsed, caught = _parse(path)
    assert not bag.import_errors, bag.import_errors
    assert bag.dags, f"{path.name} defines no DAG"
    deprecated = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)
                  and ("airflow" in str(w.message).lower() or "airflow" in (w.filename or ""))]
    assert not deprecated, deprecated
    assert elapsed < MAX_PARSE_SECONDS, f"{path.name} took {elapsed:.2f}s to parse"
    print(f"{path.name}: parsed in {elapsed * 1000:.0f} ms")


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_has_id_tags_doc_owner_retries(path):
    bag, _, _ = _parse(path)
    for dag_id, dag in bag.dags.items():
        assert dag_id == path.stem, "dag_id must equal the file stem"
        assert dag.tags and set(dag.tags) <= APPROVED_TAGS, dag.tags
        assert dag.doc_md and len(dag.doc_md) > 80, f"{dag_id} needs a doc_md"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 1 or getattr(task, "is_setup", False) or task.task_id.startswith(
                ("validate", "check_")), f"{dag_id}.{task.task_id} has no retries"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_has_no_heavy_top_level_imports(path):
    heavy = ("pandas", "boto3", "numpy", "pyarrow", "moto", "botocore")
    for line in path.read_text().splitlines():
        if line.startswith(("import ", "from ")):
            module = line.split()[1].split(".")[0]
            assert module not in heavy, f"{path.name}: top-level import of {module}"

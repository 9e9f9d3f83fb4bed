"""A run is green only if its work was done (issue #19, item 2): in these DAGs a task that fails, after its
retries, always makes the run fail.

Airflow takes a run's state from its leaf tasks. A failure reaches a leaf when every task below it, down to some
leaf, waits for all its upstream tasks to succeed (``all_success``: it becomes ``upstream_failed``); a task whose
failure is absorbed on the way (``all_done``, ``all_done_min_one_success``, a skip) must instead be watched by a
leaf ``one_failed`` task (``airflow_conn.run_outcome``). The real runs are in tests/e2e (a failed build, a failed
account, no data).
"""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
CHECKED = ["weekly_compliance_report", "metric_anomaly_checks", "account_onboarding", "package_search"]


def unreported_failures(dag) -> list[str]:
    """Tasks of ``dag`` whose failure could leave the run green."""
    watchers = [t for t in dag.tasks if not t.downstream_list and t.trigger_rule == "one_failed"]
    watched = set().union(*(w.get_flat_relative_ids(upstream=True) for w in watchers)) if watchers else set()

    def reaches_a_leaf(task) -> bool:
        return not task.downstream_list or any(
            d.trigger_rule == "all_success" and reaches_a_leaf(d) for d in task.downstream_list)

    return sorted(t.task_id for t in dag.tasks if t not in watchers and t.task_id not in watched
                  and not reaches_a_leaf(t))


@pytest.mark.parametrize("dag_id", CHECKED)
def test_every_failure_reaches_the_run_state(dag_id, airflow_db):
    # airflow_db: DagBag.get_dag reads Airflow's metadata DB; without it a fresh checkout has no `dag` table yet
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS_DIR / f"{dag_id}.py")).get_dag(dag_id)
    assert unreported_failures(dag) == []

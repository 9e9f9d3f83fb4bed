"""account_onboarding's threat options end to end (dag.test against the session sandbox, dry run: nothing written):
new instances get EnableGuardDuty / EnableMacie "false" where the account already has a detector / Macie session
(read through the read role), "true" where it has none."""

from __future__ import annotations

import pytest

from tests.conftest import run_dag, task_states

pytestmark = pytest.mark.e2e


def _plan(run) -> dict:
    """plan_deployment's result (XCom) of a finished run."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        (row,) = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id,
                                                    task_ids="plan_deployment", key="return_value")).all()
        return XComModel.deserialize_value(row)


def test_dry_run_plans_false_where_the_service_is_on_already(airflow_sandbox_env, sandbox):
    truth = sandbox.truth(sections=["guardduty", "macie"])
    members = [a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    account, regions = members[1], sandbox.info["regions"]  # the second member lacks both in the last region
    run = run_dag("account_onboarding", {
        "account_ids": [account], "regions": regions, "owner_email": "payments-lead@example.com", "team": "Payments",
        "environment": "prod", "enable_guardduty": True, "enable_macie": True, "dry_run": True})
    assert str(run.state) == "success", task_states(run)
    planned = {}
    for group in _plan(run)["create"]:
        assert group["accounts"] == [account]
        planned.update(dict.fromkeys(group["regions"], group["overrides"]))
    assert sorted(planned) == sorted(regions)
    for region in regions:
        for param, section in (("EnableGuardDuty", "guardduty"), ("EnableMacie", "macie")):
            on = truth[section]["accounts"][account][region]["enabled"]
            assert planned[region][param] == ("false" if on else "true"), (region, param)
    assert planned[regions[-1]]["EnableGuardDuty"] == "true"
    assert any(v["EnableGuardDuty"] == "false" for v in planned.values())

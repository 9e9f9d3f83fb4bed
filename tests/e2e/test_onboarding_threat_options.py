"""account_onboarding's threat options end to end (dag.test against the session sandbox, dry run: nothing written):
new instances get EnableGuardDuty / EnableMacie "false" where the account already has a detector / Macie session
(read through the read role), "true" where it has none."""

from __future__ import annotations

import ast
import re

import pytest

from tests.conftest import run_dag, task_states

pytestmark = pytest.mark.e2e
PLANNED = re.compile(r"plan: threat options (\{[^}]*\}) for (\[[^\]]*\]) x (\[[^\]]*\])")


def test_dry_run_plans_false_where_the_service_is_on_already(airflow_sandbox_env, sandbox, capfd):
    truth = sandbox.truth(sections=["guardduty", "macie"])
    members = [a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    account, regions = members[1], sandbox.info["regions"]  # the second member lacks both in the last region
    run = run_dag("account_onboarding", {
        "account_ids": [account], "regions": regions, "owner_email": "payments-lead@example.com", "team": "Payments",
        "environment": "prod", "enable_guardduty": True, "enable_macie": True, "dry_run": True})
    assert str(run.state) == "success", task_states(run)
    captured = capfd.readouterr()
    planned = {}
    for values, accounts, where in PLANNED.findall(captured.out + captured.err):
        for region in ast.literal_eval(where):
            assert ast.literal_eval(accounts) == [account]
            planned[region] = ast.literal_eval(values)
    assert sorted(planned) == sorted(regions)
    for region in regions:
        for param, section in (("EnableGuardDuty", "guardduty"), ("EnableMacie", "macie")):
            on = truth[section]["accounts"][account][region]["enabled"]
            assert planned[region][param] == ("false" if on else "true"), (region, param)
    assert planned[regions[-1]]["EnableGuardDuty"] == "true"
    assert any(v["EnableGuardDuty"] == "false" for v in planned.values())

"""account_onboarding end to end: the real Airflow (dag.test) against the sandbox over HTTP.

One sandbox for this module (its own, because onboarding changes the accounts other tests read): 8 member
accounts, the last 5 without the read role. The tests run in file order (``--dist loadfile``) and use disjoint
accounts: NEW[0:3] are onboarded in two regions, NEW[3] fails once, NEW[4] is only dry-run.
"""

from __future__ import annotations

import json

import pytest

from sandbox.runner import Sandbox
from tests.conftest import AIRFLOW_HOME, run_dag, task_states

pytestmark = pytest.mark.e2e
REGIONS = ["us-east-1", "eu-west-1"]




@pytest.fixture(scope="module")
def env(airflow_db, tmp_path_factory):
    """A dedicated sandbox and Airflow pointed at it (connection, Variables, a fresh store)."""
    from scripts.localenv import airflow_env

    sb = Sandbox(accounts=8, new_accounts=5, regions=REGIONS, time_scale=0.5).start()
    store_url = str(tmp_path_factory.mktemp("onboarding") / "store")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in airflow_env(sb.info, AIRFLOW_HOME, store_url).items():
            if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AWS_")):
                mp.setenv(key, value)
        new = [a["id"] for a in sb.info["accounts"] if not a.get("read_role")]
        assert len(new) == 5, sb.info["accounts"]
        try:
            yield {"sb": sb, "store_url": store_url, "new": new}
        finally:
            sb.stop()


def _conf(accounts, **extra) -> dict:
    return {"account_ids": accounts, "regions": REGIONS, "owner_email": "payments-lead@example.com",
            "team": "Payments", "environment": "prod", **extra}


def _calls(sb, action: str | None = None) -> int:
    rows = sb.calls()["calls"]
    return sum(r["count"] for r in rows if action is None or r["action"] == action)


def _inventory(store_url: str):
    from include.awsgov.core.store import Store
    from include.awsgov.core.tables import ONBOARDED_ACCOUNTS

    return Store(store_url).read("inventory", schema=ONBOARDED_ACCOUNTS)


def test_param_form_refuses_an_id_that_is_not_12_digits(env):
    from airflow.sdk.exceptions import ParamValidationError

    env["sb"].reset_calls()
    with pytest.raises(ParamValidationError, match="12345"):
        run_dag("account_onboarding", _conf(["12345"]))
    assert _calls(env["sb"]) == 0


def test_unknown_region_is_refused_before_any_aws_call(env):
    sb = env["sb"]
    sb.reset_calls()
    run = run_dag("account_onboarding", _conf(env["new"][:1], regions=["us-east-1", "xx-mars-1"]))
    assert str(run.state) == "failed"
    assert task_states(run)["validate_request"] == "failed"
    assert _calls(sb) == 0


def test_dry_run_plans_and_writes_nothing(env):
    sb = env["sb"]
    sb.reset_calls()
    run = run_dag("account_onboarding", _conf(env["new"][4:5], dry_run=True))
    states = task_states(run)
    assert str(run.state) == "success"
    assert states["plan_deployment"] == "success" and states["ensure_stackset"] == "skipped"
    writes = [r for r in sb.calls()["calls"] if r["action"].startswith(("Create", "Update", "Put", "Delete"))]
    assert writes == []
    assert len(_inventory(env["store_url"])) == 0


def test_onboards_three_accounts_in_two_regions(env):
    sb, accounts = env["sb"], env["new"][:3]
    sb.reset_calls()
    run = run_dag("account_onboarding", _conf(accounts))
    states = task_states(run)
    assert str(run.state) == "success", states
    assert all(states[f"verify_account[{i}]"] == "success" for i in range(3))
    assert _calls(sb, "CreateStackInstances") == 1  # one operation for 3 accounts x 2 regions
    cf = sb.client("cloudformation")
    instances = cf.list_stack_instances(StackSetName="governance-baseline")["Summaries"]
    deployed = {(i["Account"], i["Region"]): i["Status"] for i in instances}
    assert {(a, r): "CURRENT" for a in accounts for r in REGIONS}.items() <= deployed.items()
    # The read role now exists with the ExternalId: the sandbox lets the admin account in.
    assert sb.client("sts", account_id=accounts[0]).get_caller_identity()["Account"] == accounts[0]
    inventory = _inventory(env["store_url"]).set_index("account_id")
    assert sorted(inventory.index) == sorted(accounts)
    row = inventory.loc[accounts[0]]
    assert (row["status"], row["owner_email"], row["team"], row["environment"]) == (
        "onboarded", "payments-lead@example.com", "Payments", "prod")
    checks = json.loads(row["verification_json"])
    assert set(checks) == set(REGIONS) and all(all(c.values()) for c in checks.values())


def test_rerun_for_onboarded_accounts_changes_nothing(env):
    sb, accounts = env["sb"], env["new"][:3]
    before = _inventory(env["store_url"]).set_index("account_id")
    sb.reset_calls()
    refused = run_dag("account_onboarding", _conf(accounts))
    assert task_states(refused)["validate_request"] == "failed"
    assert _calls(sb) == 0  # refused from the inventory, before any AWS call
    run = run_dag("account_onboarding", _conf(accounts, force=True))
    assert str(run.state) == "success", task_states(run)
    operations = [r for r in sb.calls()["calls"] if r["action"] in (
        "CreateStackSet", "UpdateStackSet", "CreateStackInstances", "UpdateStackInstances", "CreateStack",
        "UpdateStack")]
    assert operations == []
    after = _inventory(env["store_url"]).set_index("account_id")
    assert sorted(after.index) == sorted(accounts)
    assert (after["onboarded_at"] == before["onboarded_at"]).all()


def test_failing_instance_fails_the_run_naming_it_then_a_rerun_finishes(env, capfd):
    sb, account = env["sb"], env["new"][3]
    sb.set_faults(stackset_fail_instances=[[account, "eu-west-1"]],
                  stackset_failure_reason="Trail in {account}/{region}: quota of 5 trails exceeded")
    try:
        run = run_dag("account_onboarding", _conf([account]))
    finally:
        sb.clear_faults()
    states = task_states(run)
    assert str(run.state) == "failed" and states["wait_for_operations"] == "failed", states
    output = capfd.readouterr()
    assert (f"account {account} region eu-west-1: FAILED - Trail in {account}/eu-west-1: quota of 5 trails "
            "exceeded") in output.out + output.err
    instances = sb.client("cloudformation").list_stack_instances(StackSetName="governance-baseline")["Summaries"]
    status = {(i["Account"], i["Region"]): i["Status"] for i in instances}
    assert status[(account, "us-east-1")] == "CURRENT"  # what succeeded stays
    assert status[(account, "eu-west-1")] == "OUTDATED"
    sb.reset_calls()
    rerun = run_dag("account_onboarding", _conf([account]))
    assert str(rerun.state) == "success", task_states(rerun)
    calls = {r["action"]: r["count"] for r in sb.calls()["calls"] if r["action"].endswith("StackInstances")}
    assert calls == {"ListStackInstances": calls.get("ListStackInstances", 0), "UpdateStackInstances": 1}


def test_newer_version_updates_every_instance_before_creating_new_ones(env):
    """Library level (no Airflow): a StackSet update and a create in one run follow one another. Runs last: it
    leaves the StackSet at a version the templates do not have."""
    import time

    from include.awsgov.onboarding import stacksets, workflow

    sb, account = env["sb"], env["new"][4]
    cf = sb.client("cloudformation")
    name = "governance-baseline"
    before = stacksets.describe_stack_set(cf, name)
    instances = stacksets.list_stack_instances(cf, name)
    request = workflow.validate_static(_conf([account]), default_regions=REGIONS, global_region="us-east-1")
    plan = workflow.plan_deployment(request, version="9.0.0", central_stack=None, stack_set=before,
                                      instances=instances)
    assert (plan["stackset"], plan["create"]) == ("update", [{"accounts": [account], "regions": REGIONS}])
    values = {p["ParameterKey"]: p["ParameterValue"] for p in before["Parameters"]}
    values["ExternalId"] = sb.info["external_id"]  # NoEcho: not readable back
    body, _ = workflow.load_template("baseline")
    update = stacksets.ensure_stack_set(cf, name, template_body=body, version="9.0.0", values=values,
                                        preferences={"MaxConcurrentPercentage": 100})
    steps = workflow.operation_steps(request, plan, update["operation_id"], ("test", "version-bump"))
    deadline = time.monotonic() + 60
    while not stacksets.drive_operations(cf, name, steps).done:
        assert time.monotonic() < deadline, "operations did not finish"
        time.sleep(0.5)
    operations = {o["OperationId"]: o for o in cf.list_stack_set_operations(StackSetName=name)["Summaries"]}
    update_op, create_op = operations[steps[0]["op_id"]], operations[steps[1]["op_id"]]
    assert (update_op["Action"], update_op["Status"]) == ("UPDATE", "SUCCEEDED")
    assert (create_op["Action"], create_op["Status"]) == ("CREATE", "SUCCEEDED")
    assert update_op["EndTimestamp"] <= create_op["CreationTimestamp"]
    assert stacksets.recorded_version(stacksets.describe_stack_set(cf, name)) == "9.0.0"
    after = {(i["Account"], i["Region"]): i["Status"] for i in stacksets.list_stack_instances(cf, name)}
    assert len(after) == len(instances) + 2 and set(after.values()) == {"CURRENT"}

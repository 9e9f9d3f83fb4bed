"""An account created in the organization onboards itself, end to end on the sandbox with the real Airflow: the
sandbox's Organizations emits CreateAccountResult and MoveAccount on the management account's default bus, the
central stack's account rule queues them, governance_events (dag.test) stores them, request_onboarding picks the
account and start_account_onboarding asks for one account_onboarding run with the defaults of its OU; a second
request for the same account is skipped, a failed creation asks for nothing."""

from __future__ import annotations

import uuid

import pytest

from sandbox.runner import Sandbox
from tests.conftest import AIRFLOW_HOME, run_dag, task_states

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(airflow_db, tmp_path_factory):
    """A dedicated sandbox with the central stack deployed and Airflow pointed at it."""
    from scripts.check_event_watcher import deploy_central
    from scripts.localenv import airflow_env

    sb = Sandbox(accounts=3, new_accounts=0, regions=["us-east-1"]).start()
    store_url = str(tmp_path_factory.mktemp("accounts") / "store")
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in airflow_env(sb.info, AIRFLOW_HOME, store_url).items():
                if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AWS_")):
                    mp.setenv(key, value)
            outputs = deploy_central(sb)
            mp.setenv("AWSGOV_EVENTS_QUEUE_URL", outputs["EventsQueueUrl"])
            yield {"sb": sb, "store_url": store_url}
    finally:
        sb.stop()


def _onboarding_run(run_id: str):
    from airflow.models.dagrun import DagRun

    runs = DagRun.find(dag_id="account_onboarding", run_id=run_id)
    return runs[0] if runs else None


def test_created_account_in_prod_starts_one_onboarding_run_with_prod_defaults(env):
    from include.awsgov.events.new_accounts import RUN_ID_PREFIX, ou_defaults
    from scripts.demo import new_account_in, onboarding_request

    org = env["sb"].client("organizations")
    account = new_account_in(env["sb"], "Prod")  # what the demo does: create, then move into Prod
    email = org.describe_account(AccountId=account)["Account"]["Email"]
    failed = org.create_account(AccountName=f"dup-{uuid.uuid4().hex[:6]}", Email=email)["CreateAccountStatus"]
    assert failed["State"] == "FAILED"
    root = org.list_roots()["Roots"][0]["Id"]
    prod = next(ou["Id"] for ou in org.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]
                if ou["Name"] == "Prod")

    first = run_dag("governance_events")
    states = task_states(first)
    assert states["store_events"] == "success" and states["request_onboarding"] == "success"
    assert states["start_account_onboarding[0]"] == "success" and "start_account_onboarding[1]" not in states
    run = _onboarding_run(f"{RUN_ID_PREFIX}{account}")
    assert run is not None
    assert run.conf == {**ou_defaults()["Prod"], "account_ids": [account]}
    assert onboarding_request(account).startswith(f"{RUN_ID_PREFIX}{account} (queued) conf {{")

    # The account moves again (Prod -> Prod's sibling and back): the same run id is asked for, and skipped.
    dev = next(ou["Id"] for ou in org.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]
               if ou["Name"] == "Dev")
    org.move_account(AccountId=account, SourceParentId=prod, DestinationParentId=dev)
    second = task_states(run_dag("governance_events"))
    assert second["start_account_onboarding[0]"] == "skipped"

"""Check Airflow's real event-driven path on the sandbox: `airflow standalone` (scheduler, triggerer, dag-processor,
api-server) with only governance_events; an event put in a member account must come out of the store through an
asset-triggered run started by the DAG's AssetWatcher (which watches the wake queue; the run drains the events
queue). Too heavy for the test suite (about 2 minutes on 2 cores);
run it by hand after changing the Airflow, provider, aiobotocore or moto pins:

    .venv/bin/python scripts/check_event_watcher.py [--port 18093] [--timeout 240]

Exit status 0 when the event was stored by an ``asset_triggered__`` run. Everything it starts is stopped at the end;
its files are under a temporary directory (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.localenv import REPO, VENV_BIN, airflow_env, migrate_db  # noqa: E402

# What the triggerer logs once the AssetWatcher polls the wake queue (the common-messaging trigger's, the Amazon
# provider's SQS trigger's).
WATCHING = ("Starting SQS sensor trigger", "SqsSensor checking for message on queue")


def deploy_central(sb) -> dict:
    """The central stack (bus -> SQS rule, queues), deployed by the product's own code."""
    from include.awsgov.onboarding import stacksets, workflow

    info = sb.info
    cf = sb.client("cloudformation")
    body, version = workflow.load_template("central")
    values = workflow.central_values({"central": {}}, admin_account_id=info["management_account_id"],
                                       organization_id=info["organization_id"])
    # The sandbox seeds the bucket, bus and aggregator: adopt them, as onboarding does.
    values.update({"CreateLogBucket": "false", "CreateEventBus": "false", "CreateAggregator": "false"})
    return stacksets.ensure_stack(cf, "governance-central", template_body=body, version=version,
                                  values=values)["outputs"]


def runs_of(env: dict) -> list[dict]:
    """governance_events' runs (run_id, state...) as `airflow dags list-runs` lists them."""
    out = subprocess.run([str(VENV_BIN / "airflow"), "dags", "list-runs", "governance_events", "-o", "json"],
                         env=env, capture_output=True, text=True).stdout
    # The JSON array starts on its own line; log lines before it may hold brackets too.
    lines = out.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    try:
        return json.loads("\n".join(lines[start:]) or "[]")
    except ValueError:
        return []


def start_standalone(sb, root: Path, port: int, extra_settings: dict | None = None,
                     extra_env: dict | None = None,
                     first_run_timeout: int = 240) -> tuple[subprocess.Popen, dict, dict]:
    """Deploy the central stack on the sandbox and start `airflow standalone` with only governance_events (its
    dags folder, metadata DB and log under ``root``); waits until the triggerer polls the wake queue and the first
    sweep run has ended. Returns (process, environment, central stack outputs); stop it with :func:`stop`.

    :param extra_settings: more keys for the ``awsgov_settings`` Variable (e.g. ``mail``).
    :param extra_env: more environment (e.g. an ``AIRFLOW_CONN_SMTP_DEFAULT``).
    :param first_run_timeout: seconds the first sweep run may take.
    """
    (root / "dags").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dags" / "governance_events.py", root / "dags")
    outputs = deploy_central(sb)
    env = {**os.environ, **airflow_env(sb.info, root / "home", str(root / "store"), extra_settings)}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",  # standalone starts `airflow` subprocesses
        "AWSGOV_EVENTS_QUEUE_URL": outputs["EventsQueueUrl"],
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        **(extra_env or {}),
    })
    migrate_db(env)
    subprocess.run([str(VENV_BIN / "airflow"), "pools", "set", "aws_api", "8", "AWS API concurrency"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    with open(root / "standalone.log", "w") as log:
        proc = subprocess.Popen([str(VENV_BIN / "airflow"), "standalone"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    print(f"airflow standalone (pid {proc.pid}); waiting for the triggerer to poll {outputs['EventsQueueUrl']}")
    try:
        wait_until_watching(proc, env, root, first_run_timeout)
    except BaseException:
        stop(proc)
        raise
    return proc, env, outputs


def wait_until_watching(proc: subprocess.Popen, env: dict, root: Path, first_run_timeout: int = 240) -> None:
    """Wait until the triggerer polls the wake queue and no run of governance_events is queued or running."""
    deadline = time.monotonic() + 180
    while not any(mark in (root / "standalone.log").read_text(errors="replace") for mark in WATCHING):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"the triggerer never started the watcher; see {root / 'standalone.log'}")
        time.sleep(2)
    # The DAG's sweep schedule starts a run as soon as the DAG exists; with max_active_runs=1 a woken run waits
    # for it. Return once no run is active, so that what is put next is stored by a woken run.
    deadline = time.monotonic() + first_run_timeout
    while any(r["state"] in ("queued", "running") for r in runs_of(env)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the first sweep run did not finish within {first_run_timeout} s")
        time.sleep(3)


def stop(proc: subprocess.Popen | None) -> None:
    """Stop `airflow standalone` and everything it started (its process group)."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18093, help="api-server port")
    parser.add_argument("--timeout", type=int, default=240, help="seconds to wait for the stored event")
    args = parser.parse_args()
    from include.awsgov.core import tables
    from include.awsgov.core.store import Store
    from sandbox.runner import Sandbox

    root = Path(tempfile.mkdtemp(prefix="awsgov-watcher-"))
    store_url = str(root / "store")
    print(f"working in {root}")
    sb = Sandbox(accounts=4, new_accounts=0, regions=["us-east-1"]).start()
    proc = None
    try:
        try:
            proc, env, _ = start_standalone(sb, root, args.port)
        except RuntimeError as exc:
            print(f"FAILED: {exc}")
            return 1
        detail = {"eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
                  "requestParameters": {"userName": "watcher-check"},
                  "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/ci/check"}}
        member = sb.info["member_account_ids"][0]
        response = sb.client("events", account_id=member).put_events(Entries=[
            {"Source": "aws.iam", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(detail)}])
        event_id = response["Entries"][0]["EventId"]
        started = time.monotonic()
        print(f"put event {event_id} in {member}")
        while time.monotonic() - started < args.timeout:
            stored = Store(store_url).read("events", schema=tables.EVENTS)
            if event_id in set(stored["event_id"]):
                row = stored[stored["event_id"] == event_id].iloc[0]
                run_ids = [r["run_id"] for r in runs_of(env)]
                print(f"stored after {time.monotonic() - started:.0f}s: {row['type']} in {row['account_id']}, "
                      f"route {row['route']} ({row['alert_rules']}); runs {run_ids}")
                return 0 if any(r.startswith("asset_triggered__") for r in run_ids) else 1
            time.sleep(3)
        print(f"FAILED: event not stored within {args.timeout}s; see {root / 'standalone.log'}")
        return 1
    finally:
        stop(proc)
        sb.stop()


if __name__ == "__main__":
    sys.exit(main())

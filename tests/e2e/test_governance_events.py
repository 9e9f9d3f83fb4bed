"""governance_events end to end: events put in member accounts of the sandbox travel forwarding rule -> central bus
-> central rule -> SQS for real, the DAG's own AssetWatcher trigger receives them, and the real Airflow (dag.test)
stores and routes them.

dag.test() runs no triggerer and no scheduler, so the two halves of Airflow's event-driven scheduling are exercised
separately: (1) the MessageQueueTrigger declared in the DAG file is run as the triggerer runs it (``run()`` until
its first TriggerEvent) against the sandbox queue, through the ``aws_default`` connection's endpoint; (2) its
payload becomes an asset event consumed by the DAG run, which is what the triggerer (``Trigger.submit_event`` ->
``register_asset_change``) and the scheduler (an asset-triggered run consuming the queued events) do: here a
listener attaches the event to the run dag.test() creates. The central resources are deployed by the product's
own path (the central CloudFormation template through ``stacksets.ensure_stack``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json

import pytest

from sandbox.runner import Sandbox
from tests.conftest import AIRFLOW_HOME, REPO, run_dag, task_states

pytestmark = pytest.mark.e2e
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def env(airflow_db, tmp_path_factory):
    """A dedicated sandbox with the central stack deployed, Airflow pointed at it, the watcher's queue URL set."""
    import boto3

    from include.awsgov.core.aws import AwsAccess
    from include.awsgov.onboarding import stacksets, workflow
    from scripts.localenv import airflow_env

    sb = Sandbox(accounts=5, new_accounts=0, regions=["us-east-1"]).start()
    store_url = str(tmp_path_factory.mktemp("events") / "store")
    try:
        with pytest.MonkeyPatch.context() as mp:
            env_vars = airflow_env(sb.info, AIRFLOW_HOME, store_url)
            for key, value in env_vars.items():
                if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AWS_")):
                    mp.setenv(key, value)
            access = AwsAccess(session=boto3.Session(aws_access_key_id=env_vars["AWS_ACCESS_KEY_ID"],
                                                     aws_secret_access_key=env_vars["AWS_SECRET_ACCESS_KEY"]),
                               endpoint_url=sb.endpoint, service_endpoints={"sts": sb.endpoint})
            mgmt = sb.info["management_account_id"]
            cfg = {"central": {}}
            cf = access.client("cloudformation")
            body, version = workflow.load_template("central")
            values = workflow.central_values(cfg, admin_account_id=mgmt, organization_id=sb.info["organization_id"])
            values.update(workflow.central_create_flags(access, values, stacksets.describe_stack(cf, "central")))
            outputs = stacksets.ensure_stack(cf, "governance-central", template_body=body, version=version,
                                             values=values)["outputs"]
            mp.setenv("AWSGOV_EVENTS_QUEUE_URL", outputs["EventsQueueUrl"])
            members = [a for a in sb.info["accounts"] if a["status"] == "ACTIVE"]
            yield {"sb": sb, "store_url": store_url, "outputs": outputs, "mgmt": mgmt, "members": members}
    finally:
        sb.stop()


def _put(sb, account_id: str, entries: list[dict]) -> list[str]:
    client = sb.client("events", account_id=account_id)
    ids = []
    for i in range(0, len(entries), 10):
        response = client.put_events(Entries=entries[i:i + 10])
        assert response["FailedEntryCount"] == 0, response
        ids += [e["EventId"] for e in response["Entries"]]
    return ids


def _api(service: str, name: str, params: dict, when: dt.datetime = NOW) -> dict:
    detail = {"eventSource": f"{service}.amazonaws.com", "eventName": name, "requestParameters": params,
              "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/dev/x"}}
    return {"Source": f"aws.{service}", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(detail),
            "Time": when}


def _signin_root() -> dict:
    detail = {"eventName": "ConsoleLogin", "userIdentity": {"type": "Root", "arn": "arn:aws:iam::1:root"},
              "additionalEventData": {"MFAUsed": "Yes"}, "responseElements": {"ConsoleLogin": "Success"}}
    return {"Source": "aws.signin", "DetailType": "AWS Console Sign In via CloudTrail", "Detail": json.dumps(detail),
            "Time": NOW}


def _guardduty(severity: float) -> dict:
    detail = {"id": "gd-1", "type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "severity": severity,
              "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0<b>"}}}
    return {"Source": "aws.guardduty", "DetailType": "GuardDuty Finding", "Detail": json.dumps(detail),
            "Time": NOW, "Resources": ["arn:aws:ec2:us-east-1:1:instance/i-0"]}


def _config_noncompliant() -> dict:
    detail = {"configRuleName": "s3-bucket-public-read-prohibited", "resourceType": "AWS::S3::Bucket",
              "resourceId": "logs", "newEvaluationResult": {"complianceType": "NON_COMPLIANT"},
              "oldEvaluationResult": {"complianceType": "COMPLIANT"}}
    return {"Source": "aws.config", "DetailType": "Config Rules Compliance Change", "Detail": json.dumps(detail),
            "Time": NOW}


async def _first_event(trigger, timeout: float):
    async def first():
        async for event in trigger.run():
            return event
    return await asyncio.wait_for(first(), timeout)


def _watcher_trigger():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "governance_events.py"))
    assert not bag.import_errors, bag.import_errors
    [asset] = bag.get_dag("governance_events").timetable.asset_condition.objects
    [watcher] = asset.watchers
    return asset, watcher.trigger


@contextlib.contextmanager
def asset_event_attached(extra: dict):
    """Attach one asset event (``extra`` = the trigger's payload) to the next governance_events run dag.test()
    creates, as the scheduler attaches the queued asset events to an asset-triggered run."""
    from airflow.models.asset import AssetEvent, AssetModel, association_table
    from airflow.models.dagrun import DagRun
    from sqlalchemy import event as sa_event
    from sqlalchemy import insert, select

    pending = [extra]

    def attach(mapper, connection, run):
        if run.dag_id != "governance_events" or not pending:
            return
        extra = pending.pop(0)
        asset_id = connection.execute(select(AssetModel.id).where(AssetModel.name == "awsgov_events_queue")).scalar()
        result = connection.execute(insert(AssetEvent.__table__).values(
            asset_id=asset_id, extra=extra, timestamp=dt.datetime.now(dt.UTC)))
        connection.execute(insert(association_table).values(dag_run_id=run.id,
                                                            event_id=result.inserted_primary_key[0]))

    sa_event.listen(DagRun, "after_insert", attach)
    try:
        yield
    finally:
        sa_event.remove(DagRun, "after_insert", attach)


def _queue_depth(sb, url: str) -> int:
    attrs = sb.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                                 "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def _read(store_url: str, table: str):
    from include.awsgov.core import tables
    from include.awsgov.core.store import Store

    return Store(store_url).read(table, schema=getattr(tables, table.upper()))


@pytest.fixture(scope="module")
def delivered(env):
    """Events put in member accounts (and poison on the central bus and queue), taken from SQS by the watcher's
    trigger: what was sent, the trigger's payload, the queue depth before and the accounts used."""
    sb, members, url = env["sb"], env["members"], env["outputs"]["EventsQueueUrl"]
    prod = next(a for a in members if a["tags"].get("Environment") == "prod")
    dev = next(a for a in members if a["tags"].get("Environment") != "prod")
    sent = {
        "root": _put(sb, dev["id"], [_signin_root()])[0],
        "iam_user": _put(sb, dev["id"], [_api("iam", "CreateUser", {"userName": "bob<script>"})])[0],
        "guardduty": _put(sb, dev["id"], [_guardduty(8.0)])[0],
        "config_prod": _put(sb, prod["id"], [_config_noncompliant()])[0],
        "report_only": _put(sb, prod["id"], [_api("ec2", "RunInstances", {"instanceId": "i-1"})])[0],
    }
    # Poison: an unknown source put on the central bus by the admin account, and bodies no rule would send.
    admin_events = sb.client("events")
    admin_events.put_events(Entries=[{"Source": "custom.app", "DetailType": "Order", "Detail": "{}",
                                      "EventBusName": "governance-central"}])
    sqs = sb.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody="{not json")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"pad": "x" * 70_000}))
    depth_before = _queue_depth(sb, url)

    wake_url = env["outputs"]["EventsWakeQueueUrl"]
    wakes_before = _queue_depth(sb, wake_url)
    asset, trigger = _watcher_trigger()
    assert trigger.serialize()[1]["sqs_queue"] == wake_url
    event = asyncio.run(_first_event(trigger, timeout=60))
    return {"sent": sent, "payload": event.payload, "dev": dev["id"], "prod": prod["id"], "depth_before": depth_before,
            "depth_after": _queue_depth(sb, url), "wakes_before": wakes_before,
            "wakes_after": _queue_depth(sb, wake_url)}


def test_watcher_trigger_is_woken_by_events_forwarded_from_member_accounts_and_leaves_them_queued(delivered):
    # The bus filters: of the five member events the four alert candidates reach the central rule (the EC2 call
    # stays in its account, the unknown source on the central bus goes nowhere): four wakes, which the trigger
    # takes; the six messages of the events queue (those four and two poison bodies sent to it directly) stay.
    assert delivered["depth_before"] == 6 and delivered["wakes_before"] == 4
    assert len(delivered["payload"]["message_batch"]) == 4 and delivered["wakes_after"] == 0
    assert delivered["depth_after"] == 6


@pytest.fixture(scope="module")
def first_run(env, delivered):
    """The asset-triggered governance_events run that gets the watcher's batch (state of the run)."""
    with asset_event_attached({"from_trigger": True, "payload": delivered["payload"]}):
        run = run_dag("governance_events")
    return str(run.state), task_states(run)


def test_dag_stores_routes_and_dead_letters_the_watchers_messages(env, delivered, first_run):
    state, states = first_run
    assert state == "success", states
    sb, sent = env["sb"], delivered["sent"]

    stored = _read(env["store_url"], "events").set_index("event_id")
    assert set(sent.values()) - {sent["report_only"]} == set(stored.index)  # filtered at the member's bus
    routes = {name: (stored.loc[eid, "route"], stored.loc[eid, "alert_rules"]) for name, eid in sent.items()
              if name != "report_only"}
    assert routes == {
        "root": ("alert", "events_root_signin"),
        "iam_user": ("alert", "events_iam_user_in_member_account"),
        "guardduty": ("alert", "events_guardduty_high"),
        "config_prod": ("alert", "events_config_noncompliant_prod"),
    }
    # EventBridge's envelope survives the forwarding: the member's event id and account.
    assert stored.loc[sent["iam_user"], "account_id"] == delivered["dev"]
    assert stored.loc[sent["config_prod"], "account_id"] == delivered["prod"]
    assert _queue_depth(sb, env["outputs"]["EventsQueueUrl"]) == 0  # deleted once stored

    rejects = _read(env["store_url"], "event_rejects")
    assert sorted(rejects["reason"]) == ["malformed", "oversized"]
    assert _queue_depth(sb, env["outputs"]["EventsDeadLetterQueueUrl"]) == 2

    ledger = _read(env["store_url"], "alert_ledger")
    assert len(ledger) == 4 and set(ledger["status"]) == {"sent"}
    assert set(ledger["rule_id"]) == {"events_root_signin", "events_iam_user_in_member_account",
                                      "events_guardduty_high", "events_config_noncompliant_prod"}


def test_redelivered_messages_are_stored_and_mailed_once(env, delivered, first_run):
    """SQS delivers at least once: the same events again (new message ids, same event ids) are stored and mailed
    once."""
    sqs = env["sb"].client("sqs")
    for name in ("root", "iam_user"):
        account = delivered["dev"]
        again = {"version": "0", "id": delivered["sent"][name], "detail-type": "AWS API Call via CloudTrail",
                 "source": "aws.iam", "account": account, "time": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "region": "us-east-1", "resources": [],
                 "detail": {"eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
                            "requestParameters": {"userName": "bob<script>"}}}
        sqs.send_message(QueueUrl=env["outputs"]["EventsQueueUrl"], MessageBody=json.dumps(again))
    with asset_event_attached({"from_trigger": True, "payload": delivered["payload"]}):
        run = run_dag("governance_events")
    assert str(run.state) == "success", task_states(run)
    assert len(_read(env["store_url"], "events")) == 4
    assert len(_read(env["store_url"], "event_rejects")) == 2
    assert len(_read(env["store_url"], "alert_ledger")) == 4


def test_a_failed_alert_fails_the_task_and_a_later_run_sends_it_once(env, delivered, first_run, monkeypatch):
    """A root sign-in alert that the mail server refuses for now (451) is recorded as failed and fails the task; the
    next run, with no new event, sends it; the run after sends nothing (alert ledger)."""
    import os

    from tests.fixtures.smtp_sink import SmtpSink

    sb, url = env["sb"], env["outputs"]["EventsQueueUrl"]
    dev = next(a for a in env["members"] if a["id"] == delivered["dev"])
    earlier = NOW - dt.timedelta(hours=3)  # another de-duplication window than the first root sign-in's
    _put(sb, dev["id"], [{**_signin_root(), "Time": earlier}])
    with SmtpSink() as sink:
        settings = json.loads(os.environ["AIRFLOW_VAR_AWSGOV_SETTINGS"])
        monkeypatch.setenv("AIRFLOW_VAR_AWSGOV_SETTINGS", json.dumps({**settings, "mail": {"transport": "smtp"}}))
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
            "conn_type": "smtp", "host": sink.host, "port": sink.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10}}))
        for address in (dev["tags"].get("Owner", ""), "governance-team@example.com"):
            sink.flaky[address] = 1000  # "try again later", for as long as this first run lasts

        # Without Airflow's retries (their delays are minutes; they run the same task code as the next run).
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(REPO / "dags" / "governance_events.py")).get_dag("governance_events")
        dag.get_task("send_event_alerts").retries = 0
        failed = dag.test(run_conf={"max_messages": 100})
        states = task_states(failed)
        assert states["store_events"] == "success" and states["send_event_alerts"] != "success", states
        assert str(failed.state) == "failed" and sink.messages == []
        ledger = _read(env["store_url"], "alert_ledger")
        assert list(ledger.loc[ledger["status"] != "sent", "status"]) == ["failed"]
        assert _queue_depth(sb, url) == 0  # the event itself is stored and its message deleted

        sink.flaky.clear()
        for _ in range(2):  # nothing new arrives; the open alert is sent by the first of these runs only
            run = run_dag("governance_events", conf={"max_messages": 100})
            assert str(run.state) == "success", task_states(run)
        assert len(sink.messages) == 1
        body = sink.parsed()[0].get_body(("plain",)).get_content()
        assert "Root user signed in to the console" in body and earlier.strftime("%H:%M UTC") in body
        ledger = _read(env["store_url"], "alert_ledger")
        assert len(ledger) == 5 and set(ledger["status"]) == {"sent"}


def test_activity_is_read_from_the_trail_files_and_a_burst_of_iam_changes_is_found(env, monkeypatch, tmp_path):
    """account_activity (its own DAG): API calls do not travel through SQS: a member's trail files in the central
    bucket (AWS's key layout and format) are read in bulk per delivery hour, counted, and a burst of IAM changes is
    found in its hour. (A store of its own: other runs may have read the recent hours already.)"""
    import gzip

    from include.awsgov.events import ingest

    sb, member = env["sb"], env["members"][0]["id"]
    monkeypatch.setitem(ingest.events_config()["activity"], "lookback_hours", 120)
    burst_hour = NOW.replace(minute=0, second=0) - dt.timedelta(hours=2)
    start = burst_hour - dt.timedelta(days=4)
    counts = {start + dt.timedelta(hours=i): (i * 7) % 3 for i in range(4 * 24)} | {burst_hour: 40}
    # A bucket of the test's own: the central bucket's policy admits only the organization's trails and recorders.
    import os

    from include.awsgov.core.settings import load_settings

    s3 = sb.client("s3")
    bucket = f"activity-check-{env['mgmt']}"
    s3.create_bucket(Bucket=bucket)
    settings = json.loads(os.environ["AIRFLOW_VAR_AWSGOV_SETTINGS"])
    central = {**load_settings()["central"], **settings.get("central", {}), "log_bucket": bucket}
    store_url = str(tmp_path / "store")
    monkeypatch.setenv("AIRFLOW_VAR_AWSGOV_SETTINGS", json.dumps({**settings, "central": central,
                                                                  "store_url": store_url}))
    for hour, n in counts.items():
        delivered = hour + dt.timedelta(minutes=30)
        records = [{"eventTime": (hour + dt.timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "eventSource": "iam.amazonaws.com", "eventName": "AttachUserPolicy", "awsRegion": "us-east-1",
                    "recipientAccountId": member, "userIdentity": {"type": "AssumedRole", "accountId": member}}
                   for k in range(n)]
        key = (f"AWSLogs/{member}/CloudTrail/us-east-1/{delivered:%Y/%m/%d}/"
               f"{member}_CloudTrail_us-east-1_{delivered:%Y%m%dT%H%M}Z_AbCdEfGh12345678.json.gz")
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(json.dumps({"Records": records}).encode()))

    run = run_dag("account_activity")
    assert str(run.state) == "success", task_states(run)

    activity = _read(store_url, "account_activity")
    mine = activity[(activity["account_id"] == member) & (activity["event_type"] == "iam:AttachUserPolicy")]
    assert int(mine["count"].sum()) == sum(counts.values())
    anomalies = _read(store_url, "anomalies")
    bursts = anomalies[(anomalies["namespace"] == "AWSGov/AccountActivity") & (anomalies["account_id"] == member)]
    assert "iam_changes" in set(bursts["metric_name"])
    assert set(bursts["timestamp"].dt.to_pydatetime()) == {burst_hour}

    again = run_dag("account_activity")  # every hour is read: nothing is counted twice
    assert str(again.state) == "success", task_states(again)
    activity = _read(store_url, "account_activity")
    assert int(activity.loc[activity["account_id"] == member, "count"].sum()) == sum(counts.values())


def test_manual_run_refuses_a_bad_param_before_any_aws_call(env):
    from airflow.sdk.exceptions import ParamValidationError

    env["sb"].reset_calls()
    with pytest.raises(ParamValidationError, match="max_messages"):
        run_dag("governance_events", conf={"max_messages": 0})
    assert sum(r["count"] for r in env["sb"].calls()["calls"]) == 0


def test_a_burst_then_nothing_is_stored_whole_by_one_woken_run(env):
    """The stuck batch (apache/airflow#56050, open in 3.3): with max_active_runs=1, asset events that arrive while a
    run is queued or running are past the next run's cut-off and their queue row is deleted with it, so no run is
    created for them until another event arrives. A burst is put, then nothing: the scheduler gives a run only the
    watcher's first asset event (the later ones are the stranded ones). That run must store the whole burst, and
    nothing may be left in the queue or sent to the dead-letter queue."""
    sb, outputs = env["sb"], env["outputs"]
    member = env["members"][1]["id"]
    dlq_before = _queue_depth(sb, outputs["EventsDeadLetterQueueUrl"])
    ids = _put(sb, member, [_api("iam", "CreateUser", {"userName": f"burst-{k}"}) for k in range(120)])

    _asset, trigger = _watcher_trigger()
    first = asyncio.run(_first_event(trigger, timeout=60))
    with asset_event_attached({"from_trigger": True, "payload": first.payload}):
        run = run_dag("governance_events")
    assert str(run.state) == "success", task_states(run)

    stored = _read(env["store_url"], "events")
    assert set(ids) <= set(stored["event_id"])
    assert _queue_depth(sb, outputs["EventsQueueUrl"]) == 0
    assert _queue_depth(sb, outputs["EventsDeadLetterQueueUrl"]) == dlq_before

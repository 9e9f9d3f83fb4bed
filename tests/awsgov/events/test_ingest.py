"""ingest.py, activity.py, alerts.py: checking, normalising, routing, draining and storing central-bus events."""

from __future__ import annotations

import datetime as dt
import json
import time

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.awsgov.core import tables
from include.awsgov.core.store import Store
from include.awsgov.events import alerts, ingest

ADMIN = "123456789012"
MEMBER = "210987654321"
T0 = dt.datetime(2026, 11, 27, 10, 15, tzinfo=dt.UTC)
CFG = ingest.events_config()


def envelope(source: str, detail_type: str, detail: dict, *, account: str = MEMBER, event_id: str = "e-1",
             when: dt.datetime = T0, resources: list | None = None) -> dict:
    return {"version": "0", "id": event_id, "detail-type": detail_type, "source": source, "account": account,
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1", "resources": resources or [],
            "detail": detail}


def message(event: dict | str, message_id: str = "m-1") -> dict:
    return {"MessageId": message_id, "Body": event if isinstance(event, str) else json.dumps(event)}


def api_call(service: str, name: str, params: dict | None = None, **kw) -> dict:
    detail = {"eventSource": f"{service}.amazonaws.com", "eventName": name, "requestParameters": params or {},
              "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{kw.get('account', MEMBER)}:x/dev"}}
    return envelope(f"aws.{service}", ingest.API_CALL, detail, **kw)


def signin(identity_type: str, mfa: str, result: str = "Success", **kw) -> dict:
    detail = {"eventName": "ConsoleLogin", "userIdentity": {"type": identity_type, "arn": "arn:aws:iam::1:root"},
              "additionalEventData": {"MFAUsed": mfa}, "responseElements": {"ConsoleLogin": result}}
    return envelope("aws.signin", "AWS Console Sign In via CloudTrail", detail, **kw)


def guardduty(severity: float, **kw) -> dict:
    detail = {"id": "f1", "type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": severity,
              "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0abc"}}}
    return envelope("aws.guardduty", "GuardDuty Finding", detail, **kw)


def config_change(new: str, old: str, **kw) -> dict:
    detail = {"configRuleName": "s3-bucket-public-read-prohibited", "resourceType": "AWS::S3::Bucket",
              "resourceId": "logs", "newEvaluationResult": {"complianceType": new},
              "oldEvaluationResult": {"complianceType": old}}
    return envelope("aws.config", "Config Rules Compliance Change", detail, **kw)


def trusted_advisor(check: str, status: str, **kw) -> dict:
    detail = {"check-name": check, "status": status, "resource_id": "sg-123", "uuid": "u"}
    return envelope("aws.trustedadvisor", "Trusted Advisor Check Item Refresh Notification", detail, **kw)


def run(*evs: dict, environment: str = "dev", admin: str = ADMIN):
    msgs = [message(e, f"m-{i}") for i, e in enumerate(evs)]
    return ingest.process(msgs, admin_account_id=admin, environments={MEMBER: environment, ADMIN: ""}, cfg=CFG,
                          received_at=T0)


# --- routing: every immediate alert of the issue, and what stays for the report --------------------------------------
@pytest.mark.parametrize(("event", "environment", "rule"), [
    pytest.param(signin("Root", "Yes"), "dev", "events_root_signin", id="root-signin"),
    pytest.param(signin("IAMUser", "No"), "dev", "events_console_signin_without_mfa", id="signin-no-mfa"),
    pytest.param(guardduty(8.0), "dev", "events_guardduty_high", id="guardduty-high"),
    pytest.param(config_change("NON_COMPLIANT", "COMPLIANT"), "prod", "events_config_noncompliant_prod",
                 id="config-noncompliant-prod"),
    pytest.param(trusted_advisor("Exposed Access Keys", "ERROR"), "dev", "events_trusted_advisor_security_red",
                 id="ta-security-red"),
    pytest.param(api_call("cloudtrail", "StopLogging", {"name": "governance-trail"}), "dev",
                 "events_cloudtrail_stopped", id="trail-stopped"),
    pytest.param(api_call("cloudtrail", "DeleteTrail", {"name": "governance-trail"}), "dev",
                 "events_cloudtrail_stopped", id="trail-deleted"),
    pytest.param(api_call("iam", "CreateUser", {"userName": "bob"}), "dev", "events_iam_user_in_member_account",
                 id="iam-user-in-member"),
])
def test_alert_event_is_routed_to_its_rule(event, environment, rule):
    rows, rejects = run(event, environment=environment)
    assert not rejects
    assert rows[0]["route"] == "alert"
    assert rows[0]["alert_rules"].split(",")[0] == rule
    assert rows[0]["severity"] == "high"


@pytest.mark.parametrize("event", [
    pytest.param(signin("IAMUser", "Yes"), id="signin-with-mfa"),
    pytest.param(signin("IAMUser", "No", result="Failure"), id="failed-signin-without-mfa"),
    pytest.param(guardduty(5.0), id="guardduty-medium"),
    pytest.param(config_change("NON_COMPLIANT", "NON_COMPLIANT"), id="config-already-noncompliant"),
    pytest.param(trusted_advisor("Low Utilization Amazon EC2 Instances", "ERROR"), id="ta-red-not-security"),
    pytest.param(trusted_advisor("Exposed Access Keys", "WARN"), id="ta-security-yellow"),
    pytest.param(api_call("cloudtrail", "StartLogging"), id="trail-started"),
    pytest.param(api_call("ec2", "AuthorizeSecurityGroupIngress", {"groupId": "sg-1"}), id="sg-change"),
])
def test_other_events_go_to_the_report(event):
    rows, _ = run(event, environment="prod")
    assert (rows[0]["route"], rows[0]["alert_rules"]) == ("report", "")


def test_config_noncompliant_outside_prod_is_not_an_alert():
    rows, _ = run(config_change("NON_COMPLIANT", "COMPLIANT"), environment="dev")
    assert rows[0]["route"] == "report"


def test_iam_user_created_in_the_admin_account_is_allowed():
    rows, _ = run(api_call("iam", "CreateUser", {"userName": "bob"}, account=ADMIN))
    assert rows[0]["route"] == "report"


# --- normalisation ------------------------------------------------------------------------------------------------
def test_api_call_is_normalised_to_the_common_fields():
    rows, _ = run(api_call("iam", "CreateUser", {"userName": "bob"}, event_id="abc"))
    row = rows[0]
    assert {k: row[k] for k in ("event_id", "source", "account_id", "region", "type", "resource", "actor_type")} == {
        "event_id": "abc", "source": "aws.iam", "account_id": MEMBER, "region": "us-east-1",
        "type": "iam:CreateUser", "resource": "bob", "actor_type": "AssumedRole"}
    assert row["actor"] == f"arn:aws:sts::{MEMBER}:x/dev"
    assert row["time"] == T0.replace(second=0, microsecond=0)
    assert set(row) == set(tables.EVENTS.names)


def test_guardduty_finding_keeps_type_resource_and_score():
    rows, _ = run(guardduty(7.5))
    assert (rows[0]["type"], rows[0]["resource"]) == ("guardduty:UnauthorizedAccess:EC2/SSHBruteForce", "i-0abc")
    assert json.loads(rows[0]["attributes_json"])["guardduty_severity"] == 7.5


def test_hostile_text_is_kept_on_one_line_and_bounded():
    rows, _ = run(api_call("iam", "CreateUser", {"userName": "<script>\r\nBcc: x@evil" + "a" * 2000}))
    assert "\n" not in rows[0]["resource"] and len(rows[0]["resource"]) == 512


# --- poison -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "reason"), [
    pytest.param("{not json", "malformed", id="not-json"),
    pytest.param("[1, 2]", "malformed", id="json-array"),
    pytest.param(json.dumps({"id": "x", "source": "aws.iam"}), "malformed", id="missing-envelope"),
    pytest.param(json.dumps({**signin("Root", "No"), "account": "12"}), "malformed", id="bad-account"),
    pytest.param(json.dumps({**signin("Root", "No"), "time": "yesterday"}), "malformed", id="bad-time"),
    pytest.param(json.dumps(envelope("custom.app", "Order Placed", {})), "unknown_source", id="unknown-source"),
    pytest.param(json.dumps(envelope("aws.iam", "x", {"pad": "x" * 70000})), "oversized", id="oversized"),
])
def test_poison_message_is_rejected_with_its_reason(body, reason):
    rows, rejects = ingest.process([message(body)], admin_account_id=ADMIN, environments={}, cfg=CFG,
                                   received_at=T0)
    assert rows == []
    assert [(r.reason, r.message_id) for r in rejects] == [(reason, "m-1")]
    assert rejects[0].size_bytes == len(body.encode())


@pytest.mark.parametrize("detail", [
    pytest.param({"check-name": ["a", "list"], "status": "ERROR"}, id="unhashable-check-name"),
    pytest.param({"severity": {"n": 1}, "resource": []}, id="odd-guardduty-shapes"),
])
def test_detail_of_an_unexpected_shape_is_poison_not_a_crash(detail):
    source, kind = (("aws.trustedadvisor", "Trusted Advisor Check Item Refresh Notification")
                    if "check-name" in detail else ("aws.guardduty", "GuardDuty Finding"))
    rows, rejects = ingest.process([message(envelope(source, kind, detail))], admin_account_id=ADMIN,
                                   environments={}, cfg=CFG, received_at=T0)
    assert len(rows) + len(rejects) == 1
    assert all(r.reason == "malformed" for r in rejects)


@pytest.mark.parametrize("body", [
    pytest.param("[" * 30_000 + "]" * 30_000, id="nested-arrays"),
    pytest.param("{\"a\":" * 10_000 + "1" + "}" * 10_000, id="nested-objects"),
    pytest.param(json.dumps({**signin("Root", "No")})[:-1] + ', "x": ' + "[" * 30_000 + "]" * 30_000 + "}",
                 id="nested-inside-an-envelope"),
])
def test_deeply_nested_body_is_poison_not_a_crash(body):
    """json.loads raises RecursionError (not ValueError) on deep nesting: the message is dead-lettered, the batch
    goes on (issue #19 item 7)."""
    assert len(body.encode()) <= CFG["max_message_bytes"]
    msgs = [message(body, "deep"), message(guardduty(8.0), "fine")]
    assert ingest.accounts_in(msgs) == {MEMBER}
    rows, rejects = ingest.process(msgs, admin_account_id=ADMIN, environments={}, cfg=CFG, received_at=T0)
    assert [r["message_id"] for r in rows] == ["fine"]
    assert [(r.message_id, r.reason) for r in rejects] == [("deep", "malformed")]
    assert rejects[0].body == body  # kept whole for the dead-letter queue


@pytest.mark.parametrize("patch", [
    pytest.param({"account": MEMBER + "\n"}, id="account-with-trailing-newline"),
    pytest.param({"time": "0001-01-01T00:00:00+01:00"}, id="time-before-year-one-in-utc"),
    pytest.param({"id": ""}, id="empty-id"),
    pytest.param({"id": {"not": "a string"}}, id="id-not-a-string"),
])
def test_envelope_field_out_of_range_is_poison_not_a_crash(patch):
    rows, rejects = ingest.process([message({**guardduty(8.0), **patch})], admin_account_id=ADMIN, environments={},
                                   cfg=CFG, received_at=T0)
    assert (rows, [r.reason for r in rejects]) == ([], ["malformed"])


def test_poison_is_counted_once_per_message_id(tmp_path):
    store = Store(str(tmp_path))
    _, rejects = ingest.process([message("{oops", "m-9")], admin_account_id=ADMIN, environments={}, cfg=CFG,
                                received_at=T0)
    assert ingest.store_rejects(store, rejects, T0) == 1
    assert ingest.store_rejects(store, rejects, T0) == 0
    stored = store.read("event_rejects", schema=tables.EVENT_REJECTS)
    assert stored[["message_id", "reason"]].values.tolist() == [["m-9", "malformed"]]


# --- idempotency ----------------------------------------------------------------------------------------------------
def test_redelivered_event_is_stored_once(tmp_path):
    store = Store(str(tmp_path))
    first, _ = run(api_call("iam", "CreateUser", event_id="e-1"), guardduty(8.0, event_id="e-2"))
    assert len(ingest.store_events(store, first)) == 2
    again, _ = run(api_call("iam", "CreateUser", event_id="e-1"), guardduty(3.0, event_id="e-3"))
    fresh = ingest.store_events(store, again)
    assert [r["event_id"] for r in fresh] == ["e-3"]
    stored = store.read("events", schema=tables.EVENTS)
    assert sorted(stored["event_id"]) == ["e-1", "e-2", "e-3"]


def test_each_batch_is_its_own_chunk_and_earlier_files_are_not_rewritten(tmp_path):
    """#22: no read-and-rewrite of the day's file per run; a batch adds a chunk, de-duplicated by event id."""
    store = Store(str(tmp_path))
    first, _ = run(guardduty(8.0, event_id="e-1"), guardduty(8.0, event_id="e-2"))
    assert len(ingest.store_events(store, first)) == 2
    [chunk] = store.chunks("events", T0.date())
    path = tmp_path / "events" / f"dt={T0.date()}" / f"part-{chunk}.parquet"
    before = (path.stat().st_mtime_ns, path.read_bytes())
    second, _ = run(guardduty(8.0, event_id="e-2"), guardduty(8.0, event_id="e-3"))
    assert [r["event_id"] for r in ingest.store_events(store, second)] == ["e-3"]
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before
    assert len(store.chunks("events", T0.date())) == 2
    assert sorted(store.read("events", schema=tables.EVENTS)["event_id"]) == ["e-1", "e-2", "e-3"]


def test_a_day_of_many_batch_chunks_is_compacted_and_reads_the_same(tmp_path):
    store = Store(str(tmp_path))
    for k in range(ingest.COMPACT_EVERY_CHUNKS):
        rows, _ = run(guardduty(8.0, event_id=f"e-{k}"))
        ingest.store_events(store, rows)
    assert (tmp_path / "events" / f"dt={T0.date()}" / "_compact.parquet").exists()
    assert sorted(store.read("events", schema=tables.EVENTS)["event_id"]) == sorted(
        f"e-{k}" for k in range(ingest.COMPACT_EVERY_CHUNKS))


def test_same_event_twice_in_one_batch_is_one_row():
    rows, _ = run(guardduty(8.0, event_id="dup"), guardduty(8.0, event_id="dup"))
    assert len(rows) == 1


def test_wake_messages_are_only_counted():
    batch = [{"MessageId": "a", "Body": '{"wake": "e-1"}', "ReceiptHandle": "r"}, {"MessageId": "b", "Body": "x"}]
    extras = [{"from_trigger": True, "payload": {"status": "success", "message_batch": batch}},
              {"from_trigger": True, "payload": {"status": "success", "message_batch": batch[:1]}}, None]
    assert ingest.wake_count(extras) == 3


def test_watcher_polls_the_wake_queue_of_the_events_queue(monkeypatch):
    monkeypatch.setenv(ingest.QUEUE_URL_ENV, "https://sqs.us-east-1.amazonaws.com/123456789012/governance-events")
    assert ingest.watcher_queue_url(CFG) == "https://sqs.us-east-1.amazonaws.com/123456789012/governance-events-wake"
    monkeypatch.delenv(ingest.QUEUE_URL_ENV)
    assert ingest.watcher_queue_url({**CFG, "queue_url": None}) is None


# --- draining: receive, store, then delete ------------------------------------------------------------------------
@pytest.fixture
def events_queue():
    """An in-process moto SQS events queue (and its DLQ) and an admin access layer pointed at it."""
    import boto3
    from moto import mock_aws

    from include.awsgov.core.aws import AwsAccess

    with mock_aws():
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                region_name="us-east-1")
        sqs = session.client("sqs")
        url = sqs.create_queue(QueueName=CFG["queue_name"])["QueueUrl"]
        sqs.create_queue(QueueName=f"{CFG['queue_name']}-dlq")
        yield AwsAccess(session=session, admin_account_id=ADMIN), sqs, url


def _depth(sqs, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


class _FailingStore(Store):
    def write(self, *args, **kwargs):
        raise OSError("store unavailable")


def test_drain_stores_every_message_then_deletes_it(events_queue, tmp_path):
    access, sqs, url = events_queue
    for k in range(23):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(api_call("iam", "CreateUser", {"userName": f"u{k}"},
                                                                       event_id=f"e-{k}")))
    cfg = {**CFG, "drain_chunk_messages": 10}
    received, rows, fresh, rejects = ingest.drain_and_ingest(access, Store(str(tmp_path)), cfg, 1000, T0)
    assert (received, len(fresh), rejects) == (23, 23, [])
    assert sorted(Store(str(tmp_path)).read("events", schema=tables.EVENTS)["event_id"]) == \
        sorted(f"e-{k}" for k in range(23))
    assert _depth(sqs, url) == (0, 0)


def test_drain_deletes_nothing_whose_storing_failed(events_queue, tmp_path):
    access, sqs, url = events_queue
    for k in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(api_call("iam", "CreateUser", event_id=f"e-{k}")))
    with pytest.raises(OSError, match="store unavailable"):
        ingest.drain_and_ingest(access, _FailingStore(str(tmp_path)), CFG, 1000, T0)
    assert _depth(sqs, url) == (0, 3)  # received, in flight, not deleted: back after the visibility timeout


class _EndlessQueue:
    """An SQS client whose queue never empties (a steady stream of events): every receive gets a new message."""

    def __init__(self) -> None:
        self.sent = 0

    def receive_message(self, **kwargs):
        time.sleep(0.01)
        self.sent += 1
        return {"Messages": [{"MessageId": f"m-{self.sent}", "ReceiptHandle": f"h-{self.sent}", "Body": "{}"}]}


def test_a_steady_stream_is_drained_for_max_seconds_then_handed_on():
    sqs = _EndlessQueue()
    started = time.monotonic()
    chunks = list(ingest.drain_chunks(sqs, "url", 100000, 5, wait_seconds=1, max_seconds=0.3))
    assert time.monotonic() - started < 2  # unbounded, it would receive for visibility_timeout / 3 = 100 s
    received = sum(len(m) for m, _ in chunks)
    assert 0 < received == sqs.sent and all(len(m) <= 5 for m, _ in chunks)


def test_drain_and_ingest_honours_drain_max_seconds(events_queue, tmp_path):
    access, sqs, url = events_queue
    for k in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(api_call("iam", "CreateUser", event_id=f"e-{k}")))
    received, *_ = ingest.drain_and_ingest(access, Store(str(tmp_path)), {**CFG, "drain_max_seconds": 0}, 1000, T0)
    assert received == 0 and _depth(sqs, url) == (3, 0)  # left for the next run, untouched
    assert CFG["drain_max_seconds"] > 0



def test_drain_before_the_queue_exists_says_to_onboard_first(tmp_path):
    """Before the first onboarding there is no queue: a plain-words QueueMissing (the DAG skips its task with it),
    not botocore's QueueDoesNotExist."""
    import boto3
    from moto import mock_aws

    from include.awsgov.core.aws import AwsAccess

    with mock_aws():
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                region_name="us-east-1")
        with pytest.raises(ingest.QueueMissing, match="run the account_onboarding DAG first"):
            ingest.drain_and_ingest(AwsAccess(session=session, admin_account_id=ADMIN), Store(str(tmp_path)), CFG,
                                    10, T0)

# --- alert de-duplication -----------------------------------------------------------------------------------------
def test_alert_key_is_shared_within_the_window_only():
    key = alerts.alert_key("r", MEMBER, "bob", dt.datetime(2026, 11, 27, 10, 5, tzinfo=dt.UTC), 60)
    assert key == alerts.alert_key("r", MEMBER, "bob", dt.datetime(2026, 11, 27, 10, 55, tzinfo=dt.UTC), 60)
    assert key != alerts.alert_key("r", MEMBER, "bob", dt.datetime(2026, 11, 27, 11, 5, tzinfo=dt.UTC), 60)
    assert key != alerts.alert_key("r", MEMBER, "eve", dt.datetime(2026, 11, 27, 10, 5, tzinfo=dt.UTC), 60)


def test_pending_drops_repeats_in_the_window_and_what_the_ledger_closed(tmp_path):
    from include.awsgov.core.alert_ledger import record

    store = Store(str(tmp_path))
    rows, _ = run(api_call("iam", "CreateUser", {"userName": "bob"}, event_id="1"),
                  api_call("iam", "CreateUser", {"userName": "bob"}, event_id="2", when=T0 + dt.timedelta(minutes=20)),
                  signin("Root", "Yes", event_id="3"))
    frame = pd.DataFrame(rows)
    todo = alerts.pending(store, frame, CFG["alerts"])
    assert sorted(todo["event_id"]) == ["1", "3"]
    first = todo[todo["event_id"] == "1"].iloc[0]
    record(store, [{"alert_id": first["key"], "channel": "email", "account_id": MEMBER, "rule_id": first["rule_id"],
                    "severity": "high", "recipient": "a@example.com", "subject": "s", "message_id": "x",
                    "transport": "ses", "status": "sent", "error": "", "sent_at": T0, "day": T0.date()}])
    assert list(alerts.pending(store, frame, CFG["alerts"])["event_id"]) == ["3"]


def test_alert_mail_names_rule_resource_and_actor():
    rows, _ = run(api_call("iam", "CreateUser", {"userName": "bob"}, event_id="1"))
    todo = alerts.pending(Store("/nonexistent-store"), pd.DataFrame(rows), CFG["alerts"])
    subject, text = alerts.compose(CFG["alerts"], MEMBER, "payments\r\nprod", todo)
    assert subject == f"[governance] 1 security event(s) in payments prod ({MEMBER})"
    assert "IAM user created in a member account" in text and "bob" in text and "event 1" in text


# --- properties of the event-body parser (Hypothesis) -------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)
_KINDS = [("aws.signin", "AWS Console Sign In via CloudTrail"), ("aws.guardduty", "GuardDuty Finding"),
          ("aws.config", "Config Rules Compliance Change"),
          ("aws.trustedadvisor", "Trusted Advisor Check Item Refresh Notification"),
          ("aws.iam", ingest.API_CALL), ("aws.ec2", ingest.API_CALL), ("custom.app", "Order")]
_PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _accounted_for(msgs: list[dict]) -> tuple[list, list]:
    """Run a batch; every message must end as exactly one row (or a duplicate of one) or one reject."""
    rows, rejects = ingest.process(msgs, admin_account_id=ADMIN, environments={}, cfg=CFG, received_at=T0)
    stored = {r["message_id"] for r in rows}
    rejected = {r.message_id for r in rejects}
    assert not stored & rejected
    assert {r.reason for r in rejects} <= set(ingest.REASONS)
    assert len(rows) + len(rejects) <= len(msgs)
    return rows, rejects


@_PROPERTY
@given(st.text(max_size=300))
def test_any_text_body_is_a_row_or_poison(body):
    rows, rejects = _accounted_for([message(body)])
    assert len(rows) + len(rejects) == 1


@_PROPERTY
@given(st.integers(min_value=1, max_value=40_000), st.sampled_from(["[", '{"a":']))
def test_any_nesting_depth_is_a_row_or_poison(depth, opener):
    body = opener * depth + ("1" if opener != "[" else "") + ("]" if opener == "[" else "}") * depth
    rows, rejects = _accounted_for([message(body)])
    assert rows == [] and [r.reason for r in rejects] in (["malformed"], ["oversized"])


@_PROPERTY
@given(st.sampled_from(["id", "source", "detail-type", "account", "time", "region", "detail", "resources"]), _JSON)
def test_any_value_in_an_envelope_field_is_a_row_or_poison(key, value):
    rows, rejects = _accounted_for([message({**guardduty(8.0), key: value})])
    assert len(rows) + len(rejects) == 1
    if rows:  # what is stored keeps the envelope's identity
        assert rows[0]["event_id"] == guardduty(8.0, **({"event_id": value} if key == "id" else {}))["id"]


@_PROPERTY
@given(st.sampled_from(_KINDS), st.dictionaries(st.text(max_size=12), _JSON, max_size=8))
def test_any_detail_of_a_known_kind_is_a_row_or_malformed(kind, detail):
    source, detail_type = kind
    rows, rejects = _accounted_for([message(envelope(source, detail_type, detail))])
    assert len(rows) + len(rejects) == 1
    if source.startswith("aws."):
        assert {r.reason for r in rejects} <= {"malformed"}
        assert all(r["severity"] in ingest.SEVERITIES and r["route"] in ("alert", "report") for r in rows)
    else:
        assert [r.reason for r in rejects] == ["unknown_source"]


@_PROPERTY
@given(st.lists(st.sampled_from(["e-1", "e-2", "e-3"]), min_size=1, max_size=12))
def test_redelivered_events_in_one_batch_are_one_row_each(ids):
    rows, rejects = _accounted_for([message(guardduty(8.0, event_id=i), f"m-{k}") for k, i in enumerate(ids)])
    assert rejects == [] and sorted(r["event_id"] for r in rows) == sorted(set(ids))

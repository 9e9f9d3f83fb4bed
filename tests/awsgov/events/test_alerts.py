"""events.py / events_alerts.py against the sandbox and a real SMTP server: who the admin account is, accounts whose
tags cannot be read, SQS deletes that fail, chunked drains, and event alerts whose send failed being sent later."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from include.awsgov.anomaly import alerts
from include.awsgov.core import alert_ledger, tables
from include.awsgov.core.aws import AwsAccess
from include.awsgov.core.store import Store
from include.awsgov.events import alerts as events_alerts
from include.awsgov.events import ingest as events
from tests.fixtures.smtp_sink import SmtpSink

CFG = events.events_config()
GOVERNANCE = "governance-team@example.com"


def _access(sb, account_id: str | None = None, **kw) -> AwsAccess:
    return AwsAccess(session=sb.session(account_id), endpoint_url=sb.endpoint, service_endpoints={"sts": sb.endpoint},
                     **kw)


def _members(sb) -> list[dict]:
    return [a for a in sb.info["accounts"] if a["status"] == "ACTIVE" and a["id"] != sb.info["management_account_id"]]


def _event(account: str, event_id: str, detail: dict, source: str, detail_type: str, when: dt.datetime) -> dict:
    return {"MessageId": f"m-{event_id}", "Body": json.dumps({
        "version": "0", "id": event_id, "detail-type": detail_type, "source": source, "account": account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1", "resources": [], "detail": detail})}


def _create_user(account: str, event_id: str, when: dt.datetime) -> dict:
    detail = {"eventSource": "iam.amazonaws.com", "eventName": "CreateUser", "requestParameters": {"userName": "bob"},
              "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/x/y"}}
    return _event(account, event_id, detail, "aws.iam", events.API_CALL, when)


def _root_signin(account: str, event_id: str, when: dt.datetime) -> dict:
    detail = {"eventName": "ConsoleLogin", "userIdentity": {"type": "Root", "arn": "arn:aws:iam::1:root"},
              "additionalEventData": {"MFAUsed": "Yes"}, "responseElements": {"ConsoleLogin": "Success"}}
    return _event(account, event_id, detail, "aws.signin", "AWS Console Sign In via CloudTrail", when)


def test_iam_users_are_allowed_in_the_delegated_admin_account_not_the_management_account(clean_sandbox, tmp_path):
    sb = clean_sandbox
    delegated, other = (a["id"] for a in _members(sb)[:2])
    access = _access(sb, delegated)  # the run holds a delegated administrator's credentials
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    messages = [_create_user(delegated, "u-admin", now), _create_user(other, "u-member", now),
                _create_user(sb.info["management_account_id"], "u-mgmt", now)]
    rows, fresh, rejects = events.ingest(access, Store(str(tmp_path)), messages, CFG, now)
    routes = {r["event_id"]: r["route"] for r in rows}
    assert routes == {"u-admin": "report", "u-member": "alert", "u-mgmt": "alert"}
    assert len(fresh) == 3 and rejects == []


def test_an_account_whose_tags_cannot_be_read_loses_only_its_environment(clean_sandbox, caplog):
    sb = clean_sandbox
    prod = next(a for a in _members(sb) if a["tags"].get("Environment") == "prod")
    access = _access(sb, max_attempts=1)
    gone = "999999999999"  # not (or no longer) in the organization
    assert events.account_environments(access, [prod["id"], gone]) == {prod["id"]: "prod", gone: ""}
    assert gone in caplog.text
    sb.set_faults(throttle_rate=1.0, throttle_services=["organizations"])
    assert events.account_environments(access, [prod["id"]]) == {prod["id"]: ""}


def test_delete_counts_the_entries_sqs_refuses(clean_sandbox):
    sqs = clean_sandbox.client("sqs")
    url = sqs.create_queue(QueueName="events-delete-test")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a")
    messages, handles = events.drain(sqs, url, 10)
    assert len(messages) == 1
    handles.append({"Id": "bad", "ReceiptHandle": "not-a-receipt-handle"})
    assert events.delete(sqs, url, handles) == 1
    assert events.drain(sqs, url, 10) == ([], [])


def test_a_long_drain_is_stored_and_deleted_chunk_by_chunk(clean_sandbox):
    sqs = clean_sandbox.client("sqs")
    url = sqs.create_queue(QueueName="events-chunk-test")["QueueUrl"]
    for i in range(25):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    seen = []
    for messages, handles in events.drain_chunks(sqs, url, limit=100, chunk=10):
        assert len(messages) <= 10
        seen += [m["Body"] for m in messages]
        assert events.delete(sqs, url, handles) == 0  # deleted before the next chunk is received
    assert sorted(seen, key=int) == [str(i) for i in range(25)]
    assert events.drain(sqs, url, 10) == ([], [])


def test_pending_is_empty_when_no_rule_of_the_events_is_configured(tmp_path):
    frame = pd.DataFrame([{"event_id": "1", "time": pd.Timestamp("2026-11-27 10:00", tz="UTC"), "account_id": "1",
                           "resource": "x", "alert_rules": "a_rule_since_removed"}])
    assert events_alerts.pending(Store(str(tmp_path)), frame, CFG["alerts"]).empty


def test_an_alert_whose_send_failed_is_sent_by_a_later_run_once(clean_sandbox, tmp_path):
    sb = clean_sandbox
    access = _access(sb)
    account = _members(sb)[0]["id"]
    store = Store(str(tmp_path))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rows, fresh, _ = events.ingest(access, store, [_root_signin(account, "root-1", now)], CFG, now)
    summary = events.summarise(rows, fresh, [], 1)
    cfg = {"home_region": "us-east-1", "mail": {"transport": "smtp", "sender": "governance@example.com",
                                                "governance_address": GOVERNANCE}}
    recipient = alerts.owner_addresses(access, [account], GOVERNANCE)[account]
    retry_hours = CFG["alerts"]["retry_hours"]
    with SmtpSink() as sink:
        sink.flaky[recipient] = 1  # 451 once: a transient failure
        sink.flaky[GOVERNANCE] = 1
        todo = events_alerts.alert_events(store, summary["alert_event_ids"], summary["days"], now, retry_hours)
        first = events_alerts.send_event_alerts(access, store, cfg, CFG["alerts"], todo, {}, sink.params)
        assert (first["failed"], first["sent"], sink.messages) == (1, 0, [])
        ledger = store.read(alert_ledger.TABLE, schema=tables.ALERT_LEDGER)
        assert list(ledger["status"]) == ["failed"]
        # A later run stored nothing new: it still finds the open alert and sends it, once.
        later = now + dt.timedelta(minutes=5)
        for _ in range(2):
            todo = events_alerts.alert_events(store, [], [], later, retry_hours)
            events_alerts.send_event_alerts(access, store, cfg, CFG["alerts"], todo, {}, sink.params)
        assert len(sink.messages) == 1 and "Root user signed in" in sink.parsed()[0].get_content()
        ledger = store.read(alert_ledger.TABLE, schema=tables.ALERT_LEDGER)
        assert list(ledger["status"]) == ["sent"]
        # Past retry_hours a failed alert is no longer looked at (the task's failure showed it at the time).
        assert events_alerts.alert_events(store, [], [], now + dt.timedelta(hours=retry_hours + 1), retry_hours).empty

"""Immediate anomaly alerts: who gets them, what they say, and that each anomaly is mailed once (real SMTP server)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket

import pandas as pd
import pytest
from moto import mock_aws

from include.awsgov.anomaly import alerts, metrics
from include.awsgov.anomaly import findings as mf
from include.awsgov.anomaly.metrics import SeriesKey, load_rules
from include.awsgov.core import alert_ledger, tables
from include.awsgov.core.aws import AwsAccess
from include.awsgov.core.store import Store

TEST_END = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
TEST_ACCOUNT = "111122223333"
TEST_OTHER = "444455556666"
TEST_GOVERNANCE = "governance-team@example.com"
RULE = {
    "id": "ec2_cpu_test_high", "title": "CPU high", "namespace": "AWS/EC2", "metric_name": "CPUUtilization",
    "discover": {"dimension_names": ["InstanceId"]}, "statistic": "Average", "period": 300,
    "static": {"comparison": "GreaterThanThreshold", "threshold": 90, "datapoints_to_alarm": 1,
               "evaluation_periods": 1, "severity": "high"},
}


@pytest.fixture
def ruleset():
    return load_rules(data={"version": 1, "rules": [RULE], "alerts": {"max_age_hours": 6}})


def _rows(account_id, minutes_before_end, severity="high", instance="i-1"):
    rule = load_rules(data={"version": 1, "rules": [RULE]}).rules[0]
    key = SeriesKey("AWS/EC2", "CPUUtilization", (("InstanceId", instance),), "Average", 300)
    why = "Average > 90 in 1 of the last 1 periods of 5min"
    return [mf.anomaly_row(rule, account_id, "us-east-1", key, TEST_END - dt.timedelta(minutes=m), 99.5, 90.0, None,
                           90.0, 0.1, severity, why) for m in minutes_before_end]


def _stored(tmp_path, rows_by_account):
    store = Store(str(tmp_path / "store"))
    for account_id, rows in rows_by_account.items():
        mf.merge_anomalies(store, account_id, rows)
    return store


def test_pending_keeps_new_high_severity_recent_anomalies(tmp_path, ruleset):
    store = _stored(tmp_path, {
        TEST_ACCOUNT: _rows(TEST_ACCOUNT, [5, 10]) + _rows(TEST_ACCOUNT, [15], severity="medium")
        + _rows(TEST_ACCOUNT, [60 * 7], instance="i-old"),
        TEST_OTHER: _rows(TEST_OTHER, [5]),
    })
    pending = alerts.pending_alerts(store, ruleset, TEST_END, [TEST_ACCOUNT])
    assert len(pending) == 2
    assert set(pending["severity"]) == {"high"} and set(pending["account_id"]) == {TEST_ACCOUNT}


def test_pending_skips_sent_and_refused_but_retries_failed(tmp_path, ruleset):
    rows = _rows(TEST_ACCOUNT, [5, 10, 15])
    store = _stored(tmp_path, {TEST_ACCOUNT: rows})
    ledger = [{"alert_id": r["anomaly_id"], "channel": "email", "account_id": TEST_ACCOUNT, "rule_id": r["rule_id"],
               "severity": "high", "recipient": "x@example.com", "subject": "s", "message_id": "", "transport": "smtp",
               "status": status, "error": "", "sent_at": TEST_END, "day": TEST_END.date()}
              for r, status in zip(rows, ["sent", "refused", "failed"], strict=True)]
    alert_ledger.record(store, ledger)
    pending = alerts.pending_alerts(store, ruleset, TEST_END)
    assert list(pending["anomaly_id"]) == [rows[2]["anomaly_id"]]


def test_compose_is_short_plain_text_and_keeps_names_on_one_line(ruleset):
    rows = pd.DataFrame(_rows(TEST_ACCOUNT, [5, 10, 15]))
    cfg = {**ruleset.alerts, "max_lines": 2}
    subject, text = alerts.compose(cfg, TEST_ACCOUNT, "prod\r\nBcc: evil@example.com", rows, {RULE["id"]: "CPU high"})
    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("[awsgov] 3 new high-severity metric anomalies in account 111122223333")
    assert "InstanceId=i-1" in text and "value 99.5 (expected 90, band n/a .. 90)" in text
    assert "CPU high" in text and "... and 1 more." in text
    assert text.count("\n- ") == 2


def test_owner_tag_is_the_recipient_with_governance_fallback(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        access = AwsAccess.from_args(region="us-east-1")
        org = access.client("organizations")
        org.create_organization(FeatureSet="ALL")
        owned = org.create_account(AccountName="owned", Email="owned@example.com",
                                   Tags=[{"Key": "owner", "Value": "alice@example.com"}])
        unowned = org.create_account(AccountName="unowned", Email="unowned@example.com")
        # Several owners in one tag, split as the weekly report splits them; an invalid one among them is left out.
        shared = org.create_account(AccountName="shared", Email="shared@example.com", Tags=[
            {"Key": "Owner", "Value": "Bob@Example.com; alice@example.com,not-an-address"}])
        ids = [owned["CreateAccountStatus"]["AccountId"], unowned["CreateAccountStatus"]["AccountId"],
               shared["CreateAccountStatus"]["AccountId"]]
        owners = alerts.owner_addresses(access, ids, TEST_GOVERNANCE)
    assert owners == {ids[0]: "alice@example.com", ids[1]: TEST_GOVERNANCE,
                      ids[2]: "alice@example.com, bob@example.com"}


def test_an_alert_to_an_account_with_several_owners_reaches_each_of_them(tmp_path, ruleset, org, smtp_server):
    access, (prod, _) = org
    access.client("organizations").tag_resource(ResourceId=prod, Tags=[
        {"Key": "Owner", "Value": "alice@example.com, bob@example.com"}])
    inbox, smtp = smtp_server
    store = _stored(tmp_path, {prod: _rows(prod, [5])})
    summary = alerts.send_alerts(access, store, _settings(), ruleset, TEST_END, {prod: "prod"}, smtp=smtp)
    assert (summary["messages"], summary["sent"]) == (1, 2)  # one message, one ledger row per recipient
    assert [sorted(rcpt) for rcpt, _ in inbox.messages] == [["alice@example.com", "bob@example.com"]]
    ledger = alert_ledger.read(store, TEST_END.date(), TEST_END.date())
    assert sorted(ledger["recipient"]) == ["alice@example.com", "bob@example.com"]


class _Inbox:
    """Collects what a real aiosmtpd server on loopback receives; refuses recipients in ``refuse``."""

    def __init__(self):
        self.messages = []
        self.refuse = set()
        self.defer = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        if address in self.defer:
            return "450 4.2.1 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # aiosmtpd's start-up check cannot use port 0: take a free one first
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, {"host": "127.0.0.1", "port": port, "ssl": False}
    finally:
        controller.stop()


@pytest.fixture
def org(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        access = AwsAccess.from_args(region="us-east-1")
        client = access.client("organizations")
        client.create_organization(FeatureSet="ALL")
        ids = []
        for name, tags in (("prod", [{"Key": "Owner", "Value": "alice@example.com"}]),
                           ("bad-owner", [{"Key": "Owner", "Value": "not an address\nBcc: x@example.com"}])):
            created = client.create_account(AccountName=name, Email=f"{name}@example.com", Tags=tags)
            ids.append(created["CreateAccountStatus"]["AccountId"])
        yield access, ids


def _settings(transport="smtp"):
    return {"home_region": "us-east-1", "mail": {"transport": transport, "sender": "governance@example.com",
                                                 "smtp_conn_id": "smtp_default",
                                                 "governance_address": TEST_GOVERNANCE}}


def test_new_anomalies_are_mailed_once_to_the_owner(tmp_path, ruleset, org, smtp_server):
    access, (prod, bad_owner) = org
    inbox, smtp = smtp_server
    store = _stored(tmp_path, {prod: _rows(prod, [5, 10]), bad_owner: _rows(bad_owner, [5])})
    names = {prod: "prod", bad_owner: "bad-owner"}
    first = alerts.send_alerts(access, store, _settings(), ruleset, TEST_END, names, smtp=smtp)
    assert first == {"pending": 3, "messages": 2, "sent": 3, "failed": 0, "refused": 0}
    recipients = sorted(r for rcpt, _ in inbox.messages for r in rcpt)
    assert recipients == ["alice@example.com", TEST_GOVERNANCE]  # an unusable Owner tag falls back
    to_alice = next(m for rcpt, m in inbox.messages if rcpt == ["alice@example.com"])
    assert "2 new high-severity metric anomalies in account" in to_alice["Subject"]
    assert to_alice.get_body(("plain",)).get_content().count("\n- ") == 2
    assert "Why: Average > 90 in 1 of the last 1 periods of 5min." in to_alice.get_body(("plain",)).get_content()
    # A rerun and an overlapping run (one more anomaly) mail only what is new.
    assert alerts.send_alerts(access, store, _settings(), ruleset, TEST_END, names, smtp=smtp)["messages"] == 0
    mf.merge_anomalies(store, prod, _rows(prod, [0]))
    third = alerts.send_alerts(access, store, _settings(), ruleset, TEST_END + dt.timedelta(minutes=5), names,
                               smtp=smtp)
    assert (third["messages"], third["sent"]) == (1, 1)
    assert len(inbox.messages) == 3
    ledger = store.read(alert_ledger.TABLE, schema=tables.ALERT_LEDGER)
    assert len(ledger) == 4 and set(ledger["status"]) == {"sent"} and ledger["alert_id"].is_unique
    assert ledger["anomaly_id"].isna().all() and set(ledger["channel"]) == {"email"}


def test_failed_send_is_recorded_and_retried_by_the_next_run(tmp_path, ruleset, org, smtp_server):
    access, (prod, _) = org
    inbox, smtp = smtp_server
    store = _stored(tmp_path, {prod: _rows(prod, [5])})
    closed_port = {**smtp, "port": 1, "timeout": 2}
    failed = alerts.send_alerts(access, store, _settings(), ruleset, TEST_END, {prod: "prod"}, smtp=closed_port)
    assert (failed["messages"], failed["failed"]) == (1, 1)
    ledger = store.read(alert_ledger.TABLE, schema=tables.ALERT_LEDGER)
    assert list(ledger["status"]) == ["failed"] and ledger["error"][0]
    retried = alerts.send_alerts(access, store, _settings(), ruleset, TEST_END, {prod: "prod"}, smtp=smtp)
    assert retried["sent"] == 1 and len(inbox.messages) == 1
    assert list(store.read(alert_ledger.TABLE, schema=tables.ALERT_LEDGER)["status"]) == ["sent"]


def test_permanent_refusal_is_recorded_and_not_retried(tmp_path, ruleset, org, smtp_server):
    access, (prod, _) = org
    inbox, smtp = smtp_server
    inbox.refuse.add("alice@example.com")
    store = _stored(tmp_path, {prod: _rows(prod, [5])})
    refused = alerts.send_alerts(access, store, _settings(), ruleset, TEST_END, {prod: "prod"}, smtp=smtp)
    assert (refused["messages"], refused["refused"]) == (1, 1)
    ledger = store.read(alert_ledger.TABLE, schema=tables.ALERT_LEDGER)
    assert list(ledger["status"]) == ["refused"] and "550" in ledger["error"][0]
    again = alerts.send_alerts(access, store, _settings(), ruleset, TEST_END, {prod: "prod"}, smtp=smtp)
    assert again["messages"] == 0 and inbox.messages == []


def test_ses_transport_sends_through_the_admin_account(tmp_path, ruleset, org):
    access, (prod, _) = org
    access.client("ses").verify_email_identity(EmailAddress="governance@example.com")
    store = _stored(tmp_path, {prod: _rows(prod, [5])})
    summary = alerts.send_alerts(access, store, _settings("ses"), ruleset, TEST_END, {prod: "prod"})
    assert summary["sent"] == 1
    ledger = store.read(alert_ledger.TABLE, schema=tables.ALERT_LEDGER)
    assert ledger["transport"][0] == "ses" and ledger["message_id"][0]
    from moto.ses.models import ses_backends

    sent = ses_backends[access.admin_id()]["us-east-1"].sent_messages
    # moto lists a raw message's recipients twice (Destinations and the To header): compare as a set
    assert len(sent) == 1 and set(sent[0].destinations) == {"alice@example.com"}


def test_partial_smtp_refusal_is_recorded_per_recipient_and_only_the_deferred_one_retried(
        tmp_path, ruleset, org, smtp_server):
    access, (prod, _) = org
    access.client("organizations").tag_resource(ResourceId=prod, Tags=[
        {"Key": "Owner", "Value": "alice@example.com, bob@example.com, carol@example.com"}])
    inbox, smtp = smtp_server
    inbox.defer.add("bob@example.com")  # 450: try again later
    inbox.refuse.add("carol@example.com")  # 550: never
    store = _stored(tmp_path, {prod: _rows(prod, [5])})
    first = alerts.send_alerts(access, store, _settings(), ruleset, TEST_END, {prod: "prod"}, smtp=smtp)
    assert {k: first[k] for k in ("messages", "sent", "failed", "refused")} == {
        "messages": 1, "sent": 1, "failed": 1, "refused": 1}
    ledger = alert_ledger.read(store, TEST_END.date(), TEST_END.date()).set_index("recipient")
    assert ledger.loc["alice@example.com", "status"] == "sent"
    assert ledger.loc["bob@example.com", "status"] == "failed" and "450" in ledger.loc["bob@example.com", "error"]
    assert ledger.loc["carol@example.com", "status"] == "refused" and "550" in ledger.loc["carol@example.com", "error"]
    inbox.defer.clear()
    again = alerts.send_alerts(access, store, _settings(), ruleset, TEST_END, {prod: "prod"}, smtp=smtp)
    assert (again["messages"], again["sent"]) == (1, 1)
    assert [rcpt for rcpt, _ in inbox.messages] == [["alice@example.com"], ["bob@example.com"]]
    assert set(alert_ledger.read(store, TEST_END.date(), TEST_END.date())["status"]) == {"sent", "refused"}
    assert alerts.send_alerts(access, store, _settings(), ruleset, TEST_END, {prod: "prod"}, smtp=smtp)["messages"] == 0


def test_ledger_written_before_the_rename_is_still_read(tmp_path, ruleset):
    """A ledger file of the old shape (key ``anomaly_id``, no channel, one row per message) still closes its
    anomalies, and new rows merge into its chunk without losing it."""
    import pyarrow as pa

    rows = _rows(TEST_ACCOUNT, [5, 10])
    store = _stored(tmp_path, {TEST_ACCOUNT: rows})
    old_schema = pa.schema([(n, tables.ALERT_LEDGER.field(n).type) for n in (
        "anomaly_id", "account_id", "rule_id", "severity", "recipient", "subject", "message_id", "transport",
        "status", "error", "sent_at")])
    old = pd.DataFrame([{"anomaly_id": rows[0]["anomaly_id"], "account_id": TEST_ACCOUNT, "rule_id": RULE["id"],
                         "severity": "high", "recipient": "alice@example.com, bob@example.com", "subject": "s",
                         "message_id": "<m@x>", "transport": "smtp", "status": "sent", "error": "",
                         "sent_at": TEST_END}])
    store.write(alert_ledger.TABLE, TEST_END.date(), old, chunk=alert_ledger.CHUNK, schema=old_schema)
    ledger = alert_ledger.read(store, TEST_END.date(), TEST_END.date())
    assert sorted(zip(ledger["alert_id"], ledger["channel"], ledger["recipient"], strict=True)) == [
        (rows[0]["anomaly_id"], "email", "alice@example.com"), (rows[0]["anomaly_id"], "email", "bob@example.com")]
    assert list(alerts.pending_alerts(store, ruleset, TEST_END)["anomaly_id"]) == [rows[1]["anomaly_id"]]
    alert_ledger.record(store, [{"alert_id": rows[1]["anomaly_id"], "channel": "email", "account_id": TEST_ACCOUNT,
                                 "rule_id": RULE["id"], "severity": "high", "recipient": "alice@example.com",
                                 "subject": "s", "message_id": "", "transport": "smtp", "status": "sent",
                                 "error": "", "sent_at": TEST_END, "day": TEST_END.date()}])
    assert len(alert_ledger.read(store, TEST_END.date(), TEST_END.date())) == 3
    assert alerts.pending_alerts(store, ruleset, TEST_END).empty


def test_rule_notify_targets_are_read_and_checked():
    sns = "arn:aws:sns:us-east-1:111122223333:governance-alerts"
    rules = load_rules(data={"version": 1, "rules": [
        RULE, {**RULE, "id": "ec2_cpu_test_sns", "notify": [{"type": "sns", "topic_arn": sns}, {"type": "email"}]},
        {**RULE, "id": "ec2_cpu_test_quiet", "notify": []}]})
    assert [[t.key for t in r.targets] for r in rules.rules] == [["email"], [f"sns:{sns}", "email"], []]
    with pytest.raises(metrics.RuleError, match=r"rule 'ec2_cpu_test_sms' field 'notify.0'"):
        load_rules(data={"version": 1, "rules": [{**RULE, "id": "ec2_cpu_test_sms", "notify": [{"type": "sms"}]}]})


def test_metric_alerts_go_to_the_rules_sns_topic_and_mail_once_each(tmp_path, aws):
    """A rule's notify targets (Airflow's SnsNotifier against a moto server, and mail to the owner): each anomaly is
    sent once per target; a rule with ``notify: []`` sends nothing and is not left pending."""
    from include.awsgov import airflow_conn
    from tests.fixtures.smtp_sink import SmtpSink

    rules = load_rules(data={"version": 1, "alerts": {"max_age_hours": 6}, "rules": [
        {**RULE, "notify": [{"type": "sns", "topic_arn": aws["topic"]}, {"type": "email"}]},
        {**RULE, "id": "ec2_cpu_test_quiet", "notify": []}]})
    quiet = rules.rules[1]
    key = SeriesKey("AWS/EC2", "CPUUtilization", (("InstanceId", "i-9"),), "Average", 300)
    store = _stored(tmp_path, {TEST_ACCOUNT: _rows(TEST_ACCOUNT, [5, 10]) + [mf.anomaly_row(
        quiet, TEST_ACCOUNT, "us-east-1", key, TEST_END - dt.timedelta(minutes=5), 99.5, 90.0, None, 90.0, 0.1,
        "high", "test")]})
    assert len(alerts.pending_alerts(store, rules, TEST_END)) == 2
    cfg = {**_settings(), "aws_conn_id": "aws_test"}
    with SmtpSink() as sink:
        first = alerts.send_alerts(aws["access"], store, cfg, rules, TEST_END, {TEST_ACCOUNT: "prod"},
                                   smtp=sink.params, send=airflow_conn.notifier_sender(cfg))
        assert (first["messages"], first["sent"], first["failed"]) == (2, 4, 0)  # 2 anomalies x (sns, mail)
        [(_, rcpt, _)] = sink.messages
        assert rcpt == [TEST_GOVERNANCE]  # no Owner tag readable here: the governance address
        again = alerts.send_alerts(aws["access"], store, cfg, rules, TEST_END, {TEST_ACCOUNT: "prod"},
                                   smtp=sink.params, send=airflow_conn.notifier_sender(cfg))
        assert again["messages"] == 0 and len(sink.messages) == 1
    [envelope] = aws["received"]()
    assert envelope["TopicArn"] == aws["topic"]
    assert envelope["Subject"].startswith("[awsgov] 2 new high-severity metric anomalies in account 111122223333")
    assert envelope["Message"].count("\n- ") == 2 and "i-9" not in envelope["Message"]
    ledger = store.read(alert_ledger.TABLE, schema=tables.ALERT_LEDGER)
    assert sorted(ledger["channel"].unique()) == ["email", f"sns:{aws['topic']}"] and set(ledger["status"]) == {"sent"}

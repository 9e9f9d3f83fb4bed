"""Event alerts to SNS and Slack through Airflow's notifiers (airflow_conn.notifier_sender): SNS against a moto
server (the message arrives in an SQS queue subscribed to the topic), Slack against a local HTTP server standing
in for slack.com/api; a failed notifier is recorded, retried, and the targets that succeeded are not sent again."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pandas as pd
import pytest

from include.awsgov import airflow_conn
from include.awsgov.core import alert_ledger, notify
from include.awsgov.core.store import Store
from include.awsgov.events import alerts as events_alerts
from include.awsgov.events import ingest
from tests.fixtures.notify_targets import TEST_REGION, TEST_TOKEN
from tests.fixtures.smtp_sink import SmtpSink

TEST_ACCOUNT = "111122223333"
TEST_GOVERNANCE = "governance-team@example.com"
TEST_CHANNEL = "#sec-alerts"
TEST_NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _alerts_cfg(notify_list: list[dict]) -> dict:
    cfg = copy.deepcopy(ingest.events_config()["alerts"])
    for rule in cfg["rules"]:
        rule["notify"] = notify_list
    return cfg


def _events(resource: str = "i-123") -> pd.DataFrame:
    return pd.DataFrame([{"event_id": "e-1", "time": pd.Timestamp(TEST_NOW), "account_id": TEST_ACCOUNT,
                          "region": TEST_REGION, "resource": resource, "actor": "root",
                          "alert_rules": "events_root_signin", "route": "alert"}])


def _settings() -> dict:
    return {"aws_conn_id": "aws_test", "home_region": TEST_REGION,
            "mail": {"transport": "smtp", "sender": "governance@example.com", "governance_address": TEST_GOVERNANCE}}


def _send(aws, store, cfg, alerts_cfg, sink, events=None) -> dict:
    return events_alerts.send_event_alerts(aws["access"], store, cfg, alerts_cfg,
                                           _events() if events is None else events, {TEST_ACCOUNT: "prod"},
                                           sink.params, send=airflow_conn.notifier_sender(cfg))


def test_sns_notifier_publishes_to_the_topic(aws, tmp_path):
    store, cfg = Store(str(tmp_path)), _settings()
    alerts_cfg = _alerts_cfg([{"type": "sns", "topic_arn": aws["topic"]}])
    with SmtpSink() as sink:
        summary = _send(aws, store, cfg, alerts_cfg, sink)
        assert sink.messages == []  # the rule names no e-mail target
    assert (summary["messages"], summary["sent"], summary["failed"]) == (1, 1, 0)
    [envelope] = aws["received"]()
    assert envelope["TopicArn"] == aws["topic"]
    assert envelope["Subject"] == "[governance] 1 security event(s) in prod (111122223333)"
    assert "Root user signed in to the console: i-123 by root (event e-1)" in envelope["Message"]
    ledger = alert_ledger.read(store, TEST_NOW.date(), TEST_NOW.date())
    assert list(zip(ledger["channel"], ledger["status"], ledger["transport"], strict=True)) == [
        (f"sns:{aws['topic']}", "sent", "sns")]
    assert _send(aws, store, cfg, alerts_cfg, sink)["messages"] == 0 and aws["received"]() == []


def test_slack_notifier_posts_escaped_text_to_the_api(aws, slack, tmp_path):
    store, cfg = Store(str(tmp_path)), _settings()
    alerts_cfg = _alerts_cfg([{"type": "slack", "channel": TEST_CHANNEL, "conn_id": "slack_test"}])
    with SmtpSink() as sink:
        summary = _send(aws, store, cfg, alerts_cfg, sink, events=_events("<!channel> & <http://x|y>"))
    assert summary["sent"] == 1
    [post] = slack.posts
    assert post["path"] == "/api/chat.postMessage" and post["auth"] == f"Bearer {TEST_TOKEN}"
    assert post["json"]["channel"] == TEST_CHANNEL
    text = post["json"]["text"]
    assert text.startswith("*[governance] 1 security event(s) in prod (111122223333)*\n")
    assert "&lt;!channel&gt; &amp; &lt;http://x|y&gt;" in text and "<!channel>" not in text
    assert TEST_TOKEN not in json.dumps(post["json"])


def test_failed_notifier_is_retried_and_successful_targets_are_not_sent_again(aws, slack, tmp_path):
    store, cfg = Store(str(tmp_path)), _settings()
    alerts_cfg = _alerts_cfg([{"type": "email"}, {"type": "sns", "topic_arn": aws["topic"]},
                              {"type": "slack", "channel": TEST_CHANNEL, "conn_id": "slack_test"}])
    slack.fail = 1  # Slack answers 500 once
    with SmtpSink() as sink:
        first = _send(aws, store, cfg, alerts_cfg, sink)
        assert {k: first[k] for k in ("messages", "sent", "failed", "refused")} == {
            "messages": 3, "sent": 2, "failed": 1, "refused": 0}
        ledger = alert_ledger.read(store, TEST_NOW.date(), TEST_NOW.date()).set_index("channel")
        assert ledger.loc[f"slack:slack_test:{TEST_CHANNEL}", "status"] == "failed"
        assert "internal_error" in ledger.loc[f"slack:slack_test:{TEST_CHANNEL}", "error"]
        # The retry (task retry or next run) sends to Slack only.
        second = _send(aws, store, cfg, alerts_cfg, sink)
        assert (second["messages"], second["sent"], second["failed"]) == (1, 1, 0)
        assert _send(aws, store, cfg, alerts_cfg, sink)["messages"] == 0
        assert len(sink.messages) == 1
    assert len(aws["received"]()) == 1
    assert [p["json"]["channel"] for p in slack.posts] == [TEST_CHANNEL, TEST_CHANNEL]  # the 500, then the post
    ledger = alert_ledger.read(store, TEST_NOW.date(), TEST_NOW.date())
    assert set(ledger["status"]) == {"sent"} and len(ledger) == 3


def test_a_refused_sns_publish_is_not_retried(aws, tmp_path):
    store, cfg = Store(str(tmp_path)), _settings()
    missing = aws["topic"].replace("governance-alerts", "no-such-topic")
    alerts_cfg = _alerts_cfg([{"type": "sns", "topic_arn": missing}])
    with SmtpSink() as sink:
        first = _send(aws, store, cfg, alerts_cfg, sink)
        assert (first["refused"], first["failed"]) == (1, 0)
        assert _send(aws, store, cfg, alerts_cfg, sink)["messages"] == 0
    assert "NotFound" in alert_ledger.read(store, TEST_NOW.date(), TEST_NOW.date())["error"][0]


@pytest.mark.parametrize(("notify_list", "where"), [
    pytest.param([{"type": "sns"}], "topic_arn", id="sns-without-topic"),
    pytest.param([{"type": "slack", "channel": "#x", "conn_id": "c", "webhook": "https://x"}], "webhook",
                 id="unknown-key"),
    pytest.param([{"type": "pager"}], "pager", id="unknown-type"),
    pytest.param([{"type": "sns", "topic_arn": "arn:aws:sns:us-east-1:1:x"}], "topic_arn", id="bad-arn"),
])
def test_notify_lists_are_checked_by_the_schema(notify_list, where):
    with pytest.raises(events_alerts.AlertsConfigError, match="rules/0/notify"):
        events_alerts.rule_targets(_alerts_cfg(notify_list))


def test_shipped_rules_compile_to_targets_email_by_default():
    alerts_cfg = ingest.events_config()["alerts"]
    targets = events_alerts.rule_targets(alerts_cfg)
    onboard = {r["id"] for r in alerts_cfg["rules"] if r.get("onboard")}
    assert onboard and all(targets[rule_id] == [] for rule_id in onboard)  # notify: [] sends nothing
    assert all(t == [notify.Target("email")] for rule_id, t in targets.items() if rule_id not in onboard)


def test_sns_subject_is_one_short_ascii_line():
    subject = notify.sns_subject("[governance] 3 events in pröd\r\nBcc: x " + "y" * 200)
    assert subject.isascii() and "\n" not in subject and "\r" not in subject and len(subject) < 100
    assert subject.startswith("[governance] 3 events in pr?d Bcc: x yyy")

"""bench/events.py's measuring parts: its alert candidates alert with distinct ledger keys, a mail the product
composes names each event id the sink finds, and the percentile."""

from __future__ import annotations

import asyncio
import json
import uuid
from types import SimpleNamespace

import pandas as pd
import pytest

from bench.events import MailSink, candidate, percentile
from include.awsgov.core import mail
from include.awsgov.events import alerts, ingest

CFG = ingest.events_config()
MEMBER = "210987654321"


def _event(k: int) -> dict:
    entry = candidate(k)
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"], "source": entry["Source"],
            "account": MEMBER, "time": "2026-12-06T18:00:00Z", "region": "us-east-1", "resources": [],
            "detail": json.loads(entry["Detail"])}


def test_every_candidate_alerts_under_its_own_ledger_key():
    keys, rules = set(), set()
    for k in range(20):
        record = ingest.normalise(_event(k), CFG)
        matched = [r["id"] for r in ingest.route(record, admin_account_id="123456789012", environment="dev",
                                                 rules=CFG["alerts"]["rules"])]
        assert matched, record
        rules.update(matched)
        keys.add(alerts.alert_key(matched[0], MEMBER, record["resource"], pd.Timestamp("2026-12-06T18:00Z"),
                                  CFG["alerts"]["dedup_minutes"]))
    assert len(keys) == 20
    assert rules == {"events_iam_user_in_member_account", "events_guardduty_high"}


def test_the_sink_finds_every_event_id_of_a_composed_alert_mail():
    ids = [str(uuid.uuid4()) for _ in range(3)]
    rows = pd.DataFrame({"time": pd.Timestamp("2026-12-06T18:00Z"), "region": "us-east-1", "rule_severity": "high",
                         "rule_title": "IAM user created", "resource": [f"u{k}" for k in range(3)], "actor": "ci",
                         "event_id": ids})
    subject, text = alerts.compose(CFG["alerts"], MEMBER, "Payments", rows)
    msg = mail.build_message("governance@example.com", "owner@example.com", subject, text)
    sink = MailSink()
    reply = asyncio.run(sink.handle_DATA(None, None, SimpleNamespace(content=mail.to_bytes(msg))))
    assert reply.startswith("250") and set(sink.first_seen) == set(ids) and sink.mails == 1


@pytest.mark.parametrize(("q", "expected"), [(50, 50.0), (95, 95.0), (100, 100.0), (1, 1.0)])
def test_percentile_is_the_nearest_rank(q, expected):
    assert percentile([float(v) for v in range(100, 0, -1)], q) == expected

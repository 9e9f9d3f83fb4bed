"""The weekly report's "events of the week": read from the store, sliced per owner, rendered escaped."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from include.awsgov.core import render
from include.awsgov.events import ingest
from include.awsgov.report import suppressions, week
from include.awsgov.report import views as views
from include.awsgov.report.catalog import load_catalog
from tests.fixtures import report_store as rs

ALICE_ACCOUNT = "111111111111"  # payments-prod, alice@example.com
OTHER_ACCOUNT = "333333333333"  # o'connor@example.com
WHEN = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)  # inside 2026-W48
OPTIONS = {"governance_address": rs.GOVERNANCE, "max_actions": 10, "max_resources_per_action": 3,
           "max_list_items": 20, "expiry_warning_days": 14, "exceptions_file": "exceptions.yaml"}


def _envelope(event_id: str, account: str, source: str, detail_type: str, detail: dict, minutes: int = 0) -> dict:
    return {"version": "0", "id": event_id, "source": source, "detail-type": detail_type, "account": account,
            "time": (WHEN + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1",
            "resources": [], "detail": detail}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    store = rs.scenario_copy(tmp_path_factory.mktemp("events-report") / "store")
    gd = {"type": "Recon:EC2/PortProbeUnprotectedPort", "severity": 5.0,
          "resource": {"instanceDetails": {"instanceId": rs.HOSTILE}}}
    call = {"eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress",
            "requestParameters": {"groupId": "sg-1"}, "userIdentity": {"arn": f"arn:aws:iam::1:user/{rs.HOSTILE}"}}
    root = {"eventName": "ConsoleLogin", "userIdentity": {"type": "Root"}, "additionalEventData": {"MFAUsed": "Yes"},
            "responseElements": {"ConsoleLogin": "Success"}}
    msgs = [_envelope("gd", ALICE_ACCOUNT, "aws.guardduty", "GuardDuty Finding", gd),
            _envelope("root", ALICE_ACCOUNT, "aws.signin", "AWS Console Sign In via CloudTrail", root),
            *[_envelope(f"c{i}", ALICE_ACCOUNT, "aws.ec2", ingest.API_CALL, call, i) for i in range(3)],
            _envelope("other", OTHER_ACCOUNT, "aws.guardduty", "GuardDuty Finding", gd)]
    rows, rejects = ingest.process([{"MessageId": m["id"], "Body": json.dumps(m)} for m in msgs],
                                   admin_account_id="123456789012", environments={}, cfg=ingest.events_config(),
                                   received_at=WHEN)
    assert not rejects
    ingest.store_events(store, rows)
    return week.build_week(store, week.Week.parse(rs.WEEK), catalog=load_catalog(),
                             exceptions=suppressions.parse(rs.EXCEPTIONS), ou_owners=rs.SETTINGS["ou_owners"],
                             fallback=rs.GOVERNANCE)


def test_owner_sees_only_the_events_of_their_accounts(data):
    view = views.owner_view(views.Records(data), "alice@example.com", OPTIONS)["events"]
    assert (view["total"], view["alerted"], view["api_calls"]) == (5, 1, 3)
    assert [e["event_id"] for e in view["items"]] == ["root", "gd"]  # most severe first
    assert view["by_type"] == [{"type": "ec2:AuthorizeSecurityGroupIngress", "account_id": ALICE_ACCOUNT,
                                "account_name": "payments-prod", "count": 3}]


def test_owner_report_renders_the_section_escaped(data):
    view = views.owner_view(views.Records(data), "alice@example.com", OPTIONS)
    page = render.render("owner_report", "html", **view)
    assert "Events of the week" in page
    assert "5 events from the central bus" in page and "1 mailed at once" in page
    assert "guardduty:Recon:EC2/PortProbeUnprotectedPort" in page
    assert rs.HOSTILE not in page and "&lt;script&gt;" in page


def test_org_summary_counts_every_account(data):
    view = views.org_view(views.Records(data), OPTIONS)
    assert view["events"]["total"] == 6
    assert "Events of the week" in render.render("org_summary", "html", **view)


def test_a_week_without_events_says_so(data):
    view = views.owner_view(views.Records(data), "o'connor@example.com", OPTIONS)
    view["events"] = views.events_of_week.view(data.events.iloc[0:0], [OTHER_ACCOUNT])
    assert "No events from the central bus this week." in render.render("owner_report", "html", **view)

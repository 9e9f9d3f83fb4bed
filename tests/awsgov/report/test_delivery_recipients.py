"""The weekly pipeline under an allowed-recipient-domains policy: owners from resource data (Owner tags, Trusted
Advisor details) outside the allowed domains get nothing, and the send ledger says why (issue #19 item 10)."""

from __future__ import annotations

import yaml

from include.awsgov.core import mail, tables
from include.awsgov.core.settings import load_settings
from include.awsgov.report import delivery as rd
from include.awsgov.report.week import Week
from tests.fixtures import report_store as rs
from tests.fixtures.smtp_sink import SmtpSink

WEEK = Week.parse(rs.WEEK)


def test_reports_to_owners_outside_the_allowed_domains_are_refused_and_recorded(tmp_path):
    store = rs.scenario_copy(tmp_path / "store")
    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text(yaml.safe_dump(rs.EXCEPTIONS))
    # Every owner of the scenario is @example.com: allow only another domain, as if the tags named outsiders.
    cfg = load_settings({**rs.SETTINGS, "store_url": str(tmp_path / "store"),
                         "mail": {**rs.SETTINGS["mail"], "allowed_recipient_domains": ["corp.example"]},
                         "report": {"send_retry_seconds": 0, "history_weeks": 2, "exceptions_file": str(exceptions)}})
    with SmtpSink() as sink:
        built = rd.build_reports(store, WEEK, cfg)
        factory = lambda: mail.mailer_from_settings(cfg, None, sink.params)  # noqa: E731
        sent = rd.send_reports(store, built["manifest"], cfg, factory)
        org = rd.send_org_summary(store, built["manifest"], cfg, factory)
        delivered = list(sink.messages)
    assert delivered == []
    assert sent["sent"] == 0 and sent["failed"] == 0 and org["status"] == "refused"
    ledger = store.read(rd.LEDGER_TABLE, WEEK.monday, WEEK.monday, schema=tables.SEND_LEDGER)
    assert set(ledger["status"]) == {"refused"}
    outside = ledger[ledger["recipient"].str.endswith("@example.com")]
    assert len(outside) >= 4
    assert outside["error"].str.contains("domain not in the allowed recipient domains").all()

"""package_search's answer is mailed once per search: a retry of the mailing task sends nothing already sent or
refused (issue #19, item 1), through a real SMTP server on loopback."""

from __future__ import annotations

import json

from include.awsgov.core import mail
from include.awsgov.core.store import Store
from include.awsgov.software import search as ps
from tests.fixtures.smtp_sink import SmtpSink

SID = "manual__2026-11-20T12_00_00"


def _msg(to: str):
    return mail.build_message("governance@example.com", [to], "package search", "answer\n",
                              headers={"X-Awsgov-Search": SID})


def test_a_retry_mails_the_answer_only_if_it_was_not_sent_or_refused(tmp_path):
    store = Store(tmp_path / "store")
    with SmtpSink() as sink:
        opener = lambda: mail.mailer_from_settings({"mail": {"transport": "smtp"}}, None, sink.params)  # noqa: E731
        sink.flaky["requester@example.com"] = 1  # 451 once
        tries = [ps.mail_once(store, SID, _msg("requester@example.com"), opener) for _ in range(3)]
        assert [t["status"] for t in tries] == ["failed", "sent", "sent"]
        assert [t["already"] for t in tries] == [False, False, True]
        assert len(sink.messages) == 1  # the third try (a retry after the send) sent nothing

        other = SID + "_2"
        sink.reject["gone@example.com"] = "550 5.1.1 no such user"
        refused = [ps.mail_once(store, other, _msg("gone@example.com"), opener) for _ in range(2)]
        assert [(t["status"], t["already"]) for t in refused] == [("refused", False), ("refused", True)]
        assert sink.connections == 3  # the refused address was not tried again
    record = json.loads(store.get_text(f"{ps.PREFIX}/{SID}/{ps.MAIL_RECORD}"))
    assert record["status"] == "sent" and record["message_id"] == tries[1]["message_id"]

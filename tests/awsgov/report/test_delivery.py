"""The weekly pipeline over a real SMTP server: one message per owner, refusals, retries, the ledger, dry runs.

To stay fast, one module-level history runs the pipeline three times on one store (first run, rerun, resend) and
the tests read what each run did; the other scenarios get their own store.
"""

from __future__ import annotations

import email
import email.policy

import pytest
import yaml

from include.awsgov.core import mail, tables
from include.awsgov.core.settings import load_settings
from include.awsgov.report import delivery as rd
from include.awsgov.report.week import Week
from tests.fixtures import report_store as rs
from tests.fixtures.smtp_sink import SmtpSink

WEEK = Week.parse(rs.WEEK)
OWNER_SLUGS = 6  # alice, dave, o'connor, sandbox owners, governance (unowned), the injected owner
ALICE = "alice-example-com-ff8d9819"


def _setup(tmp_path, **settings):
    store = rs.scenario_copy(tmp_path / "store")
    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text(yaml.safe_dump(rs.EXCEPTIONS))
    # Two weeks of history are enough here (report.py's tests cover the trends) and read faster.
    cfg = load_settings({**rs.SETTINGS, "store_url": str(tmp_path / "store"), **settings,
                         "report": {"send_retry_seconds": 0, "history_weeks": 2, "exceptions_file": str(exceptions)}})
    return store, cfg


def _run(store, cfg, sink, **kw):
    out_dir = kw.pop("out_dir", None)
    built = rd.build_reports(store, WEEK, cfg, **kw)
    base = rd.prefix(WEEK, kw.get("dry_run", False))
    factory = lambda: mail.mailer_from_settings(cfg, None, sink.params)  # noqa: E731
    sent = rd.send_reports(store, built["manifest"], cfg, factory, out_dir=out_dir)
    org = rd.send_org_summary(store, built["manifest"], cfg, factory, out_dir=out_dir)
    return {"built": built, "sent": sent, "org": org, "messages": len(sink.messages),
            "connections": sink.connections, "parsed": sink.parsed(),
            "ledger": store.read(rd.LEDGER_TABLE, WEEK.monday, WEEK.monday, schema=tables.SEND_LEDGER),
            "alice_html": store.get_text(f"{base}/{ALICE}.html")}


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("delivery")
    store, cfg = _setup(tmp_path)
    with SmtpSink() as sink:
        first = _run(store, cfg, sink, out_dir=str(tmp_path / "out"))
        rerun = _run(store, cfg, sink)
        resend = _run(store, cfg, sink, resend=True)
    return {"store": store, "out": tmp_path / "out", "first": first, "rerun": rerun, "resend": resend}


def test_one_message_per_owner_then_the_org_summary(history):
    first = history["first"]
    assert (first["built"]["owners"], first["built"]["rendered"]) == (OWNER_SLUGS, OWNER_SLUGS)
    assert (first["sent"]["sent"], first["sent"]["refused"], first["sent"]["failed"]) == (5, 1, 0)
    assert first["org"]["status"] == "sent"
    assert first["messages"] == 6 and first["connections"] == 2  # one for the owners, one for the summary
    to = sorted(addr for m in first["parsed"] for addr in m["To"].split(", "))
    assert to == sorted(["alice@example.com", "dave@example.com", "o'connor@example.com", rs.SANDBOX_OWNERS,
                         rs.GOVERNANCE, rs.GOVERNANCE])
    summary = [m for m in first["parsed"] if m["X-Awsgov-Report"] == rd.ORG_SLUG][0]
    assert summary["Subject"].startswith("Organization: 11 open")
    assert "refused" in summary.get_body(("html",)).get_content()


def test_ledger_records_sent_and_refused(history):
    ledger, parsed = history["first"]["ledger"], history["first"]["parsed"]
    assert sorted(ledger["status"]) == ["refused"] + ["sent"] * 6
    refused = ledger[ledger["status"] == "refused"].iloc[0]
    assert refused["recipient"] == "bad-owner\r\nbcc: evil@example.net" and "line break" in refused["error"]
    assert set(ledger["week"]) == {rs.WEEK} and set(ledger["transport"]) == {"smtp"}
    assert set(ledger.loc[ledger["status"] == "sent", "message_id"]) == {m["Message-ID"] for m in parsed}


def test_rerun_sends_zero_and_keeps_the_archive(history):
    rerun = history["rerun"]
    assert (rerun["built"]["rendered"], rerun["built"]["skipped"]) == (0, OWNER_SLUGS)
    assert (rerun["sent"]["messages"], rerun["org"]["status"], rerun["messages"]) == (0, "skipped", 6)
    assert rerun["alice_html"] == history["first"]["alice_html"]
    assert rerun["ledger"].equals(history["first"]["ledger"])


def test_resend_overrides_the_ledger_and_replaces_its_rows(history):
    resend = history["resend"]
    assert (resend["built"]["rendered"], resend["sent"]["sent"], resend["org"]["status"]) == (OWNER_SLUGS, 5, "sent")
    assert resend["messages"] == 12
    assert len(resend["ledger"]) == 7  # replaced per owner, never appended: 5 sent + 1 refused + the summary


def test_archive_holds_html_text_and_csv_per_owner(history):
    store, base = history["store"], f"reports/week={rs.WEEK}"
    for slug in (ALICE, rd.ORG_SLUG):
        assert store.get_text(f"{base}/{slug}.html").startswith("<!DOCTYPE html>")
        assert store.exists(f"{base}/{slug}.txt") and store.exists(f"{base}/{slug}.csv")
    assert (history["out"] / "reports" / f"{ALICE}.html").read_text() == history["first"]["alice_html"]
    assert len(list((history["out"] / "emails").glob("*.eml"))) == 6  # the refused owner has no message
    # Plain text: one line per anomaly, ending with why it fired.
    texts = [store.get_text(f"{base}/{p.rsplit('/', 1)[-1]}") for p in store.fs.ls(store.path(base))
             if p.endswith(".txt")]
    why = [line for text in texts for line in text.splitlines() if "than at any time in the last 28 days" in line]
    assert why and all(line.startswith("- ") and line.count(" UTC ") == 1 and line.endswith("days)") for line in why)


def test_bad_addresses_are_refused_and_the_others_still_sent(tmp_path):
    owners = "sandbox-owners@example.com; not-an-address; gone@example.com"
    store, cfg = _setup(tmp_path, ou_owners={"Sandbox": owners})
    with SmtpSink() as sink:
        sink.reject["gone@example.com"] = "550 5.1.1 no such user"  # refused by the server, not by us
        sink.reject["dave@example.com"] = "550 5.1.1 no such user"  # dave's only address
        run = _run(store, cfg, sink)
    mine = [m for m in run["parsed"] if "sandbox-owners@example.com" in m["To"]]
    assert len(mine) == 1 and mine[0]["To"] == "gone@example.com, sandbox-owners@example.com"
    assert [r for _, rcpts, _ in sink.messages for r in rcpts if r != rs.GOVERNANCE].count("gone@example.com") == 0
    status = dict(zip(run["ledger"]["recipient"], run["ledger"]["status"], strict=True))
    assert (status["sandbox-owners@example.com"], status["not-an-address"], status["gone@example.com"],
            status["dave@example.com"]) == ("sent", "refused", "refused", "refused")
    errors = dict(zip(run["ledger"]["recipient"], run["ledger"]["error"], strict=True))
    assert errors["gone@example.com"].startswith("550") and "@-sign" in errors["not-an-address"]
    assert run["sent"]["refused"] == 2  # dave, and the injected owner


def test_transient_failures_are_retried_then_recorded_and_the_next_run_sends_only_them(tmp_path):
    store, cfg = _setup(tmp_path)
    with SmtpSink() as sink:
        sink.flaky["alice@example.com"] = 4  # 451 four times: more than the 3 attempts of one run
        first = _run(store, cfg, sink)
        second = _run(store, cfg, sink)
        alice_messages = sum("alice@example.com" in rcpts for _, rcpts, _ in sink.messages)
    assert (first["sent"]["sent"], first["sent"]["failed"]) == (4, 1) and first["sent"]["failed_slugs"] == [ALICE]
    assert first["org"]["delivery"]["failed"] == 1
    assert (second["built"]["rendered"], second["sent"]["sent"]) == (1, 1)  # only alice, whose 4th attempt works
    assert alice_messages == 1


def test_dry_run_renders_and_writes_emails_but_sends_nothing(tmp_path):
    store, cfg = _setup(tmp_path)
    out = tmp_path / "out"
    with SmtpSink() as sink:
        run = _run(store, cfg, sink, dry_run=True, out_dir=str(out))
    assert run["messages"] == 0 and run["connections"] == 0
    assert (run["sent"]["dry-run"], run["sent"]["refused"], run["org"]["status"]) == (5, 1, "dry-run")
    assert run["ledger"].empty and store.chunks(rd.LEDGER_TABLE, WEEK.monday) == []
    assert run["built"]["manifest"] == f"reports/week={rs.WEEK}/dry-run/manifest.json"
    emls = sorted(p.name for p in (out / "emails").glob("*.eml"))
    assert len(emls) == 6 and f"{rd.ORG_SLUG}.eml" in emls
    assert len(list((out / "reports").glob("*.html"))) == OWNER_SLUGS + 1
    msg = email.message_from_bytes((out / "emails" / emls[0]).read_bytes(), policy=email.policy.default)
    assert msg.get_body(("plain",)) is not None
    assert [a.get_filename() for a in msg.iter_attachments()] == [f"findings-{rs.WEEK}.csv"]


def test_failures_after_the_body_are_charged_to_their_own_message(tmp_path):
    # The server's verdict on a body is read only after the next message is built (Mailer.begin): a rejection or a
    # 451 there must land on the right owner, and the connection must carry on with the others.
    store, cfg = _setup(tmp_path)
    with SmtpSink() as sink:
        sink.data_reject["alice@example.com"] = "554 5.6.0 message refused"
        first = _run(store, cfg, sink)
        del sink.data_reject["alice@example.com"]
        sink.data_flaky["alice@example.com"] = 2  # 451 twice at the end of DATA, then accepted (3 attempts)
        second = _run(store, cfg, sink)
    assert (first["sent"]["sent"], first["sent"]["failed"], first["sent"]["failed_slugs"]) == (4, 1, [ALICE])
    errors = first["ledger"].set_index("recipient")["error"]
    assert errors["alice@example.com"].startswith("SMTPDataError: (554")
    assert (second["sent"]["sent"], second["sent"]["failed"]) == (1, 0)
    assert (first["connections"], second["connections"]) == (2, 3)  # one per send task (+1 for the first summary)


def _sent_twice(sink) -> int:
    """Messages an address received more than once for the same report (the number the README quotes)."""
    seen: dict[tuple[str, str], int] = {}
    for msg, (_, rcpts, _) in zip(sink.parsed(), sink.messages, strict=True):
        for rcpt in rcpts:
            key = (msg["X-Awsgov-Report"], rcpt)
            seen[key] = seen.get(key, 0) + 1
    return sum(n - 1 for n in seen.values())


def test_a_retry_of_a_send_task_sends_nothing_already_sent_or_refused(tmp_path):
    # A batch with a flaky owner fails the task (Airflow retries it); the retry is the same call on the same
    # manifest. Before: every report of the batch went out again (4 duplicates here).
    store, cfg = _setup(tmp_path)
    with SmtpSink() as sink:
        sink.flaky["alice@example.com"] = 4  # more than the 3 attempts of one try
        built = rd.build_reports(store, WEEK, cfg)
        factory = lambda: mail.mailer_from_settings(cfg, None, sink.params)  # noqa: E731
        first = rd.send_reports(store, built["manifest"], cfg, factory, batch=0)
        retry = rd.send_reports(store, built["manifest"], cfg, factory, batch=0)
        again = rd.send_reports(store, built["manifest"], cfg, factory, batch=0)
        org = [rd.send_org_summary(store, built["manifest"], cfg, factory) for _ in range(2)]  # and its retry
        assert (first["sent"], first["failed"], first["refused"]) == (4, 1, 1)
        assert (retry["sent"], retry["failed"], retry["already-done"]) == (1, 0, 5)  # alice only; refused not redone
        assert (again["sent"], again["failed"], again["already-done"]) == (0, 0, 6)
        assert [o["status"] for o in org] == ["sent", "skipped"]
        assert len(sink.messages) == 6 and _sent_twice(sink) == 0
    ledger = store.read(rd.LEDGER_TABLE, WEEK.monday, WEEK.monday, schema=tables.SEND_LEDGER)
    assert sorted(ledger["status"]) == ["refused"] + ["sent"] * 6  # one row per owner address and the summary


def test_an_address_the_server_defers_is_retried_alone_and_the_others_are_not_mailed_again(tmp_path):
    # One owner with two addresses: the server takes one and answers 451 for the other, more often than the tries.
    owners = "sandbox-owners@example.com; later@example.com"
    store, cfg = _setup(tmp_path, ou_owners={"Sandbox": owners})
    with SmtpSink() as sink:
        sink.flaky["later@example.com"] = 1
        built = rd.build_reports(store, WEEK, cfg)
        factory = lambda: mail.mailer_from_settings(cfg, None, sink.params)  # noqa: E731
        first = rd.send_reports(store, built["manifest"], cfg, factory)
        retry = rd.send_reports(store, built["manifest"], cfg, factory)
        to_sandbox = [rcpts for _, rcpts, _ in sink.messages if set(rcpts) & {"sandbox-owners@example.com",
                                                                              "later@example.com"}]
        assert _sent_twice(sink) == 0
    assert first["failed"] == 1 and retry["sent"] == 1  # a deferred address fails the task (so it is retried)
    assert to_sandbox == [["sandbox-owners@example.com"], ["later@example.com"]]
    ledger = store.read(rd.LEDGER_TABLE, WEEK.monday, WEEK.monday, schema=tables.SEND_LEDGER)
    status = dict(zip(ledger["recipient"], ledger["status"], strict=True))
    assert status["sandbox-owners@example.com"] == status["later@example.com"] == "sent"


def test_a_resend_run_sends_once_even_when_its_send_task_is_retried(tmp_path):
    store, cfg = _setup(tmp_path)
    with SmtpSink() as sink:
        _run(store, cfg, sink)
        built = rd.build_reports(store, WEEK, cfg, resend=True)
        factory = lambda: mail.mailer_from_settings(cfg, None, sink.params)  # noqa: E731
        resent = rd.send_reports(store, built["manifest"], cfg, factory)
        retry = rd.send_reports(store, built["manifest"], cfg, factory)
        assert (resent["sent"], retry["sent"], retry["already-done"]) == (5, 0, 6)
        assert len(sink.messages) == 6 + 5

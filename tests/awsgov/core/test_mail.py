"""Mail delivery: header and address validation, SMTP against a real aiosmtpd server, SES against moto."""

from __future__ import annotations

import email
import email.policy
import smtplib
import socket

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from include.awsgov.core import mail
from include.awsgov.core.aws import AwsAccess
from tests.fixtures.smtp_sink import SmtpSink

TEST_SENDER = "AWS Governance <governance@example.com>"
TEST_CSV = b"finding_id,resource\r\n1,<script>\r\n"
TEST_HTML = "<p>Hello &amp; welcome</p>"
TEST_REGION = "us-east-1"
TEST_ACCOUNT = "123456789012"


def _message(to=("alice@example.com",), subject="Payments: 1 new critical — 2026-W48", **kw):
    return mail.build_message(TEST_SENDER, list(to), subject, "Hello\n", TEST_HTML,
                              [("findings-2026-W48.csv", TEST_CSV, "text/csv")], **kw)


@pytest.fixture
def sink():
    with SmtpSink() as server:
        yield server


# -- building -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    pytest.param("x@example.com\r\nBcc: evil@example.net", id="crlf-bcc-injection"),
    pytest.param("x@example.com\nBcc: evil@example.net", id="lf-injection"),
    pytest.param("evil@example.net, x@example.com", id="two-addresses-in-one"),
    pytest.param("not-an-address", id="no-at-sign"),
    pytest.param("a b@example.com", id="space"),
    pytest.param("x@localhost", id="no-dot-in-domain"),
    pytest.param("<script>@example.com", id="markup"),
    pytest.param("ünï@example.com", id="non-ascii-local-part"),
    pytest.param("", id="empty"),
])
def test_build_message_refuses_bad_recipient_naming_it(bad):
    with pytest.raises(mail.InvalidRecipient) as caught:
        mail.build_message(TEST_SENDER, ["ok@example.com", bad], "s", "t")
    assert caught.value.value == bad and repr(bad)[1:-1][:10] in str(caught.value)


@pytest.mark.parametrize(("kwargs", "match"), [
    pytest.param({"subject": "a\r\nBcc: evil@example.net"}, "Subject", id="subject-crlf"),
    pytest.param({"subject": "a\nb"}, "Subject", id="subject-lf"),
    pytest.param({"headers": {"Bcc": "evil@example.net"}}, "not allowed", id="reserved-header"),
    pytest.param({"headers": {"X-Week": "1\r\nBcc: evil@example.net"}}, "X-Week", id="header-value-crlf"),
    pytest.param({"headers": {"X Week": "1"}}, "not allowed", id="header-name-space"),
])
def test_build_message_refuses_unsafe_headers(kwargs, match):
    with pytest.raises(mail.InvalidHeader, match=match):
        _message(**kwargs)


def test_build_message_refuses_path_like_attachment_names():
    with pytest.raises(mail.InvalidHeader, match="file name"):
        mail.build_message(TEST_SENDER, "a@example.com", "s", "t", attachments=[("../x.csv", b"", "text/csv")])


def test_message_is_alternative_text_html_plus_csv():
    msg = _message(headers={"X-Awsgov-Week": "2026-W48"})
    assert msg.get_content_type() == "multipart/mixed"
    body, attachment = list(msg.iter_parts())
    assert body.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in body.iter_parts()] == ["text/plain", "text/html"]
    assert attachment.get_filename() == "findings-2026-W48.csv"
    assert attachment.get_payload(decode=True) == TEST_CSV and attachment.get_content_charset() == "utf-8"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["X-Awsgov-Week"] == "2026-W48"
    assert mail.message_recipients(msg) == ["alice@example.com"]


# -- SMTP ---------------------------------------------------------------------------------------------------------
def test_smtp_reuses_one_connection_and_messages_parse_back(sink):
    with mail.mailer_from_settings({"mail": {"transport": "smtp"}}, None, sink.params) as mailer:
        ids = [mailer.send(_message(to=[f"user{i}@example.com"])) for i in range(3)]
    assert sink.connections == 1 and mailer.connections == 1 and len(sink.messages) == 3
    parsed = sink.parsed()
    assert [m["Message-ID"] for m in parsed] == ids
    first = parsed[0]
    assert first["Subject"] == "Payments: 1 new critical — 2026-W48"  # UTF-8 subject survives the round trip
    alt = first.get_body(("html",))
    assert alt.get_content().strip() == TEST_HTML
    attachments = list(first.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["findings-2026-W48.csv"]
    assert attachments[0].get_payload(decode=True) == TEST_CSV
    assert sink.messages[0][1] == ["user0@example.com"]


def test_non_ascii_names_long_subjects_and_dot_lines_survive_the_round_trip(sink):
    subject = "Équipe Paiements: 3 new critical, 7 fixed, 2 overdue — 2026-W48 " + "x" * 120
    text = ".starts with a dot\n..two dots\nend"
    msg = mail.build_message("Gouvernance Sécurité <governance@example.com>", ["alice@example.com"], subject, text,
                             TEST_HTML)
    raw = mail.to_bytes(msg)
    assert raw == msg.as_bytes() and raw.isascii() and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # RFC 5322 line limit, headers folded
    with mail.mailer_from_settings({"mail": {"transport": "smtp"}}, None, sink.params) as mailer:
        mailer.send(msg)
    got = sink.parsed()[0]
    assert got["Subject"] == subject and got["From"].addresses[0].display_name == "Gouvernance Sécurité"
    assert got.get_body(("plain",)).get_content() == text


def test_smtp_reconnects_once_when_the_server_dropped_the_connection(sink):
    with mail.SmtpMailer(sink.host, sink.port) as mailer:
        mailer.send(_message())
        mailer._conn.sock.shutdown(socket.SHUT_RDWR)  # the connection dies, as a server-side idle timeout does
        mailer.send(_message())
    assert mailer.connections == 2 and len(sink.messages) == 2


def test_smtp_partial_refusal_delivers_to_the_others(sink):
    sink.reject["gone@example.com"] = "550 5.1.1 no such user"
    with mail.SmtpMailer(sink.host, sink.port) as mailer:
        mailer.send(_message(to=["alice@example.com", "gone@example.com"]))
    assert sink.messages[0][1] == ["alice@example.com"]
    assert mailer.last_refused == {"gone@example.com": (550, "5.1.1 no such user")}


def test_smtp_refusals_classified_permanent_or_transient(sink):
    sink.reject["gone@example.com"] = "550 5.1.1 no such user"
    sink.flaky["busy@example.com"] = 1
    with mail.SmtpMailer(sink.host, sink.port) as mailer:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as permanent:
            mailer.send(_message(to=["gone@example.com"]))
        with pytest.raises(smtplib.SMTPRecipientsRefused) as transient:
            mailer.send(_message(to=["busy@example.com"]))
        mailer.send(_message(to=["busy@example.com"]))  # the retry is accepted
    assert not mail.is_transient(permanent.value) and mail.is_transient(transient.value)
    assert len(sink.messages) == 1


def test_smtp_connection_refused_is_transient():
    with mail.SmtpMailer("127.0.0.1", 1, timeout=2) as mailer, pytest.raises(OSError) as caught:
        mailer.send(_message())
    assert mail.is_transient(caught.value)


# -- SES ----------------------------------------------------------------------------------------------------------
@mock_aws
def test_ses_sends_raw_message_through_the_admin_account():
    access = AwsAccess.from_args(region=TEST_REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    access.client("ses", region=TEST_REGION).verify_email_identity(EmailAddress="governance@example.com")
    cfg = {"mail": {"transport": "ses"}, "home_region": TEST_REGION}
    with mail.mailer_from_settings(cfg, access) as mailer:
        message_id = mailer.send(_message(to=["alice@example.com", "bob@example.com"]))
    from moto.ses.models import ses_backends

    sent = ses_backends[TEST_ACCOUNT][TEST_REGION].sent_messages
    assert [m.id for m in sent] == [message_id]
    assert {"alice@example.com", "bob@example.com"} <= set(sent[0].destinations)
    parsed = email.message_from_string(sent[0].raw_data, policy=email.policy.default)
    assert parsed.get_body(("html",)).get_content().strip() == TEST_HTML
    assert [a.get_filename() for a in parsed.iter_attachments()] == ["findings-2026-W48.csv"]


@mock_aws
def test_ses_unverified_sender_is_rejected_for_good():
    access = AwsAccess.from_args(region=TEST_REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    with mail.mailer_from_settings({"mail": {"transport": "ses"}, "home_region": TEST_REGION}, access) as mailer:
        with pytest.raises(ClientError) as caught:
            mailer.send(_message())
    assert caught.value.response["Error"]["Code"] == "MessageRejected"
    assert "Did not have authority to send from email governance@example.com" in str(caught.value)
    assert not mail.is_transient(caught.value)


@pytest.mark.parametrize(("code", "status", "transient"), [
    pytest.param("Throttling", 400, True, id="throttling"),
    pytest.param("ServiceUnavailable", 503, True, id="5xx"),
    pytest.param("MessageRejected", 400, False, id="rejected"),
])
def test_ses_error_classification(code, status, transient):
    exc = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                      "SendRawEmail")
    assert mail.is_transient(exc) is transient


# -- choosing the transport ---------------------------------------------------------------------------------------
def test_mailer_from_settings_needs_what_its_transport_needs():
    with pytest.raises(mail.MailError, match="smtp needs SMTP parameters"):
        mail.mailer_from_settings({"mail": {"transport": "smtp"}}, None, {"port": 25})
    with pytest.raises(mail.MailError, match="ses needs AWS access"):
        mail.mailer_from_settings({"mail": {"transport": "ses"}}, None)
    smtp = mail.mailer_from_settings({"mail": {"transport": "smtp"}}, None,
                                     {"host": "mail.example.com", "port": 587, "starttls": True, "password": "pw"})
    assert isinstance(smtp, mail.SmtpMailer) and smtp.starttls and "pw" not in repr(smtp)


@pytest.mark.parametrize(("headers", "attachment"), [
    pytest.param({"X-Week\n": "1"}, ("report.csv", b"", "text/csv"), id="header-name"),
    pytest.param({}, ("report.csv\n", b"", "text/csv"), id="attachment-name"),
    pytest.param({}, ("report.csv", b"", "text/csv\n"), id="attachment-type"),
])
def test_build_message_refuses_a_trailing_newline_in_names(headers, attachment):
    # `$` in the validating regexes matched before a final newline, so these passed the check (issue #19 item 9).
    with pytest.raises(mail.InvalidHeader, match="not allowed"):
        mail.build_message(TEST_SENDER, "a@example.com", "s", "t", headers=headers, attachments=[attachment])


# -- allowed recipient domains (issue #19 item 10) --------------------------------------------------------------------
TEST_POLICY = {"mail": {"transport": "smtp", "sender": "governance@example.com",
                        "governance_address": "governance-team@example.com"}}


@pytest.mark.parametrize(("cfg", "domains"), [
    pytest.param(TEST_POLICY, {"example.com"}, id="default-sender-and-governance-domains"),
    pytest.param({"mail": {**TEST_POLICY["mail"], "allowed_recipient_domains": ["Corp.Example", "example.org."]}},
                 {"corp.example", "example.org"}, id="listed"),
    pytest.param({"mail": {"sender": "AWS Governance <gov@Ops.Example.com>"}}, {"ops.example.com"}, id="named-sender"),
])
def test_allowed_domains_come_from_the_settings(cfg, domains):
    assert mail.allowed_recipient_domains(cfg) == domains


@pytest.mark.parametrize(("address", "allowed"), [
    pytest.param("alice@example.com", True, id="listed"),
    pytest.param("bob@eu.example.com", True, id="subdomain"),
    pytest.param("eve@notexample.com", False, id="suffix-without-dot"),
    pytest.param("eve@example.com.attacker.net", False, id="listed-as-prefix"),
    pytest.param("eve@attacker.net", False, id="elsewhere"),
])
def test_domain_allowed(address, allowed):
    assert mail.domain_allowed(address, frozenset({"example.com"})) is allowed


def test_smtp_sends_only_to_allowed_domains_and_reports_the_others(sink):
    with mail.mailer_from_settings(TEST_POLICY, None, sink.params) as mailer:
        mailer.send(_message(to=["alice@example.com", "eve@attacker.net"]))
        refused = dict(mailer.last_refused)
    assert [rcpts for _, rcpts, _ in sink.messages] == [["alice@example.com"]]
    assert sink.parsed()[0]["To"] == "alice@example.com"  # the refused address is not shown to the others either
    assert list(refused) == ["eve@attacker.net"]
    code, reason = refused["eve@attacker.net"]
    assert code == 550 and "allowed recipient domains (example.com" in reason


def test_smtp_refuses_a_message_with_no_allowed_recipient_for_good(sink):
    with mail.mailer_from_settings(TEST_POLICY, None, sink.params) as mailer, \
            pytest.raises(mail.RecipientsNotAllowed) as caught:
        mailer.send(_message(to=["eve@attacker.net"]))
    assert sink.messages == [] and mail.is_transient(caught.value) is False
    assert "eve@attacker.net: domain not in the allowed recipient domains" in str(caught.value)


@mock_aws
def test_ses_sends_only_to_allowed_domains():
    access = AwsAccess.from_args(region=TEST_REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    access.client("ses", region=TEST_REGION).verify_email_identity(EmailAddress="governance@example.com")
    cfg = {"mail": {**TEST_POLICY["mail"], "transport": "ses"}, "home_region": TEST_REGION}
    with mail.mailer_from_settings(cfg, access) as mailer:
        mailer.send(_message(to=["alice@example.com", "eve@attacker.net"]))
        with pytest.raises(mail.RecipientsNotAllowed):
            mailer.send(_message(to=["eve@attacker.net"]))
    from moto.ses.models import ses_backends

    sent = ses_backends[TEST_ACCOUNT][TEST_REGION].sent_messages
    assert [set(m.destinations) for m in sent] == [{"alice@example.com"}]  # moto lists the To header's too
    assert list(mailer.last_refused) == ["eve@attacker.net"]


def test_a_requested_address_outside_the_domains_is_refused_before_anything_runs():
    with pytest.raises(mail.InvalidRecipient, match="allowed recipient domains"):
        mail.check_recipient_allowed("eve@attacker.net", mail.allowed_recipient_domains(TEST_POLICY))
    assert mail.check_recipient_allowed("alice@example.com", frozenset({"example.com"})) == "alice@example.com"


def test_smtp_without_a_port_uses_the_port_of_its_tls_mode():
    """Implicit TLS listens on 465 and plain/STARTTLS on 25: a connection without a port gets its mode's port."""
    from include.awsgov.core.mail import mailer_from_settings

    cfg = {"mail": {"transport": "smtp"}}
    assert mailer_from_settings(cfg, None, {"host": "mail.example.com", "ssl": True}).port == 465
    assert mailer_from_settings(cfg, None, {"host": "mail.example.com", "ssl": False}).port == 25

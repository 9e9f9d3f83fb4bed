"""Mail delivery: build safe messages and send them over Amazon SES or SMTP.

``build_message`` is the one way to make a message: every address is validated (``email-validator``, ASCII
only) and every header value is refused if it holds a line break, so no value from a tag or an account name can
add a header or a recipient. Transports are context managers with ``send(msg) -> message id``: SES through the
admin account's ``ses`` client (``ses:SendRawEmail``), SMTP over one connection that is opened on first use and
reused for every message until ``close()`` (reopened once if the server drops it between messages). Failures are
classified by :func:`is_transient` so that callers retry only what a retry can fix. Nothing is written to disk.

Recipients are screened in the transport, the one place every message passes (weekly reports, alerts, package
search): an address whose domain is not in the settings' ``mail.allowed_recipient_domains`` (default: the domains of
``mail.sender`` and ``mail.governance_address``; a listed domain also allows its subdomains) is never sent to. Owner
addresses come from resource data (Owner tags, Trusted Advisor details) that member accounts control, so without
this a tag could redirect an account's findings anywhere. The refused addresses are reported the way an SMTP server's
refusals are (``last_refused``, or :class:`RecipientsNotAllowed` when no recipient is left), so the send ledger and
the alert ledger record them as ``refused`` with the reason.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.generator
import email.policy
import email.utils
import functools
import io
import logging
import re
import secrets
import smtplib
import ssl
from collections.abc import Callable, Iterable, Mapping
from email.message import EmailMessage, MIMEPart
from typing import Any

from email_validator import EmailNotValidError, validate_email

log = logging.getLogger(__name__)

SES, SMTP = "ses", "smtp"
# Headers build_message sets itself: callers may not override them through ``headers``.
RESERVED_HEADERS = frozenset({"from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version",
                              "content-type", "content-transfer-encoding", "content-disposition", "sender",
                              "reply-to", "return-path"})
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,75}\Z")
# C0 controls and DEL: a line break adds a header; the others have no business in a header either.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Headers are stored as the strings we checked (compat32) rather than parsed by the header registry of the newer
# policies, which re-parses a value at every read and cost more than sending the message; non-ASCII values are
# still RFC 2047-encoded when the message is written. CRLF line ends, as SMTP and SES want them.
class _Compat32(email.policy.Compat32):
    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        # A short ASCII value is written as it is, which is what the Header class makes of it (checked on 200,000
        # random values) after many times the work.
        if isinstance(value, str) and value.isascii() and len(name) + len(value) + 2 <= self.max_line_length:
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


_POLICY = _Compat32(linesep="\r\n")
_NEWLINE = re.compile(r"\r\n|\r|\n")  # what email.generator splits lines on
_FILENAME = re.compile(r"^[\w .()+-]{1,120}\Z")
_MIME_TYPE = re.compile(r"^[a-z]+/[a-z0-9.+-]+\Z")
# SES errors a retry cannot fix (the message or an address is refused for good).
SES_PERMANENT_CODES = frozenset({"MessageRejected", "MailFromDomainNotVerifiedException",
                                 "ConfigurationSetDoesNotExistException", "AccountSendingPausedException",
                                 "InvalidParameterValue", "AccessDenied", "AccessDeniedException"})


class MailError(Exception):
    """A message could not be built or sent."""


class InvalidHeader(MailError, ValueError):
    """A header name or value is unsafe (line break, control character, reserved name)."""


class InvalidRecipient(InvalidHeader):
    """An address is malformed or tries to inject headers; ``value`` is the offending input.

    :param value: the refused address as given.
    :param reason: why it was refused.
    """

    def __init__(self, value: str, reason: str) -> None:
        self.value = value
        super().__init__(f"invalid address {value!r}: {reason}")


def validate_address(value: str) -> str:
    """Return the normalized ASCII form of one e-mail address, or raise :class:`InvalidRecipient`.

    :param value: a bare address such as ``alice@example.com``.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecipient(str(value), "empty")
    if _CONTROL.search(value):
        raise InvalidRecipient(value, "contains a line break or control character")
    return _normalized(value.strip())


@functools.lru_cache(maxsize=4096)  # the sender and each owner recur in every message of a run
def _normalized(value: str) -> str:
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidRecipient(value, str(exc)) from None
    return result.ascii_email or result.normalized


def _check_header_value(name: str, value: str) -> str:
    if _CONTROL.search(str(value)):
        raise InvalidHeader(f"header {name} contains a line break or control character: {str(value)[:80]!r}")
    return str(value)


def _sender(sender: str) -> tuple[str, str]:
    name, addr = email.utils.parseaddr(sender)
    if _CONTROL.search(sender) or not addr:
        raise InvalidRecipient(sender, "sender is not an address")
    return _check_header_value("From", name), validate_address(addr)


def _leaf(ctype: str, data: bytes, charset: str | None = None, filename: str | None = None) -> MIMEPart:
    part = MIMEPart(policy=_POLICY)
    part["Content-Type"] = f'{ctype}; charset="{charset}"' if charset else ctype
    part["Content-Transfer-Encoding"] = "base64"
    if filename:
        part["Content-Disposition"] = f'attachment; filename="{filename}"'
    part.set_payload(base64.encodebytes(data).decode("ascii"))
    return part


def _container(subtype: str, parts: list[MIMEPart]) -> MIMEPart:
    part = MIMEPart(policy=_POLICY)
    # A boundary holding "-" never occurs in base64 text (every leaf is base64), so it needs no search of the
    # content: the generator's own choice scans the whole message for a collision.
    part["Content-Type"] = f'multipart/{subtype}; boundary="=_{secrets.token_hex(12)}-{subtype}"'
    part.set_payload(parts)
    return part


def build_message(
    sender: str,
    to: list[str] | str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Iterable[tuple[str, bytes, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """Build a validated message: text, optional HTML alternative, optional attachments.

    With HTML the body is ``multipart/alternative`` (text first, so clients prefer the HTML); attachments wrap it
    in ``multipart/mixed``.

    :param sender: ``addr`` or ``Name <addr>``.
    :param to: one address or a list; every one is validated.
    :param subject: one line.
    :param text: the plain-text body.
    :param html: the HTML body, or None.
    :param attachments: (filename, content, mime type such as ``text/csv``).
    :param headers: extra headers (e.g. ``X-Awsgov-Week``); reserved names and line breaks are refused.
    """
    name, from_addr = _sender(sender)
    addresses = [to] if isinstance(to, str) else list(to)
    if not addresses:
        raise InvalidRecipient("", "no recipient")
    valid = [validate_address(a) for a in addresses]
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = email.utils.formataddr((name, from_addr)) if name else from_addr
    msg["To"] = ", ".join(valid)
    msg["Subject"] = _check_header_value("Subject", subject)
    msg["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = email.utils.make_msgid(domain=from_addr.rsplit("@", 1)[1])
    # RFC 3834: out-of-office robots must not answer a report.
    msg["Auto-Submitted"] = "auto-generated"
    for key, value in (headers or {}).items():
        if not _HEADER_NAME.match(str(key)) or str(key).casefold() in RESERVED_HEADERS:
            raise InvalidHeader(f"header name not allowed: {str(key)[:80]!r}")
        msg[key] = _check_header_value(key, value)
    # The MIME tree is assembled directly (leaves base64-encoded by binascii) rather than through set_content /
    # add_alternative / add_attachment: those re-parse headers at every conversion and pick each part's transfer
    # encoding by trial, which made building a report message several times slower than sending it.
    body = _leaf("text/plain", text.encode("utf-8"), charset="utf-8")
    if html is not None:
        body = _container("alternative", [body, _leaf("text/html", html.encode("utf-8"), charset="utf-8")])
    parts = []
    for filename, content, mime in attachments:
        if not _FILENAME.match(filename) or not filename.isascii():
            raise InvalidHeader(f"attachment file name not allowed: {filename[:80]!r}")
        if not _MIME_TYPE.match(mime):
            raise InvalidHeader(f"attachment type not allowed: {mime[:80]!r}")
        maintype, _, subtype = mime.partition("/")
        parts.append(_leaf(f"{maintype}/{subtype or 'octet-stream'}", content,
                           charset="utf-8" if maintype == "text" else None, filename=filename))
    root = _container("mixed", [body, *parts]) if parts else body
    msg["MIME-Version"] = "1.0"
    for key in ("Content-Type", "Content-Transfer-Encoding"):
        if root[key] is not None:
            msg[key] = root[key]
    msg.set_payload(root.get_payload())
    return msg


class _Generator(email.generator.BytesGenerator):
    """The standard generator, except that a text payload is written in one piece instead of line by line: the same
    bytes, without the million small writes a thousand base64 report bodies cost."""

    def _write_lines(self, lines: str) -> None:
        if lines:
            self.write(lines.replace("\n", self._NL) if "\r" not in lines else _NEWLINE.sub(self._NL, lines))


def to_bytes(msg: EmailMessage) -> bytes:
    """The message as sent (CRLF line ends): what ``msg.as_bytes()`` returns, faster."""
    buf = io.BytesIO()
    _Generator(buf, mangle_from_=False, policy=msg.policy.clone(linesep="\r\n")).flatten(msg, unixfrom=False)
    return buf.getvalue()


def message_sender(msg: EmailMessage) -> str:
    """Bare address of a message's From header."""
    return email.utils.parseaddr(str(msg["From"]))[1]


def message_recipients(msg: EmailMessage) -> list[str]:
    """Bare addresses of a message's To and Cc headers."""
    return [addr for _, addr in email.utils.getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))]


def is_transient(exc: BaseException) -> bool:
    """Whether a send failure may succeed when retried (network, 4xx, throttling) rather than never (5xx, rejected).

    :param exc: what ``Mailer.send`` raised.
    """
    if isinstance(exc, InvalidHeader | smtplib.SMTPNotSupportedError):
        return False  # a bad message or a server without what the settings ask for (AUTH, STARTTLS)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return any(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError | TimeoutError | OSError):
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code not in SES_PERMANENT_CODES and (status >= 500 or status == 429 or "Throttl" in code)
    return type(exc).__module__.startswith(("botocore", "urllib3"))  # connection errors of the SDK


class RecipientsNotAllowed(smtplib.SMTPRecipientsRefused):
    """Every recipient of a message is outside the allowed recipient domains: nothing was sent (a permanent refusal,
    shaped like an SMTP server's 550 for all recipients so that every caller records it as ``refused``).

    :param refused: ``{address: (550, reason bytes)}``.
    """

    def __str__(self) -> str:
        return "; ".join(f"{addr}: {text.decode('utf-8', 'replace')}" for addr, (_, text) in self.recipients.items())


NOT_ALLOWED_CODE = 550


def address_domain(address: str) -> str:
    """The lower-cased domain of a bare address ('' without one)."""
    return address.rpartition("@")[2].strip().rstrip(".").lower() if "@" in address else ""


def allowed_recipient_domains(cfg: Mapping[str, Any]) -> frozenset[str] | None:
    """The domains mail may go to (settings ``mail.allowed_recipient_domains``; empty or absent: the domains of
    ``mail.sender`` and ``mail.governance_address``); None only when the settings name none of them at all.

    :param cfg: settings (``mail``).
    """
    mail = cfg.get("mail") or {}
    listed = [str(d) for d in mail.get("allowed_recipient_domains") or []]
    if not listed:
        listed = [address_domain(email.utils.parseaddr(str(mail.get(key) or ""))[1])
                  for key in ("sender", "governance_address")]
    domains = frozenset(d.strip().strip(".").lower() for d in listed if d and d.strip().strip("."))
    return domains or None


def domain_allowed(address: str, domains: Iterable[str] | None) -> bool:
    """Whether ``address`` is in one of ``domains`` or a subdomain of one (always, for ``None``: no policy).

    :param address: a bare address.
    :param domains: from :func:`allowed_recipient_domains`.
    """
    if domains is None:
        return True
    domain = address_domain(address)
    return bool(domain) and any(domain == d or domain.endswith("." + d) for d in domains)


def check_recipient_allowed(address: str, domains: Iterable[str] | None) -> str:
    """Return ``address`` if its domain is allowed, else raise :class:`InvalidRecipient` saying so (for refusing a
    requested address, such as package_search's ``mail_to``, before anything runs)."""
    if not domain_allowed(address, domains):
        raise InvalidRecipient(address, _not_allowed_reason(domains))
    return address


def _not_allowed_reason(domains: Iterable[str] | None) -> str:
    return (f"domain not in the allowed recipient domains ({', '.join(sorted(domains or ()))}; settings "
            "mail.allowed_recipient_domains)")


class Mailer:
    """A transport; use as a context manager so that its connection is closed.

    :param transport: ``ses`` or ``smtp``.
    :param allowed_domains: recipient domains mail may go to (None: any); set by :func:`mailer_from_settings`.
    """

    transport = ""
    allowed_domains: frozenset[str] | None = None
    # Recipients of the last message that were not sent to, with (code, reason): screened out here or refused by
    # the server while it accepted the others.
    last_refused: dict[str, tuple[int, str]] = {}  # noqa: RUF012 - replaced, never mutated

    def screen(self, msg: EmailMessage) -> dict[str, tuple[int, str]]:
        """Drop the recipients outside :attr:`allowed_domains` from ``msg`` (its To header); return them with the
        reason. Raise :class:`RecipientsNotAllowed` when none is left.

        :param msg: a message from :func:`build_message` (changed in place when a recipient is dropped).
        """
        recipients = message_recipients(msg)
        refused = {a: (NOT_ALLOWED_CODE, _not_allowed_reason(self.allowed_domains))
                   for a in recipients if not domain_allowed(a, self.allowed_domains)}
        if refused:
            kept = [a for a in recipients if a not in refused]
            log.warning("mail: %d recipient(s) outside the allowed domains not sent to: %s", len(refused),
                        ", ".join(sorted(refused)))
            if not kept:
                raise RecipientsNotAllowed({a: (c, t.encode()) for a, (c, t) in refused.items()})
            del msg["Cc"]
            msg.replace_header("To", ", ".join(kept))
        return refused

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, msg: EmailMessage) -> str:
        """Send one message to its To/Cc recipients; return its message id."""
        raise NotImplementedError

    def begin(self, msg: EmailMessage) -> Callable[[], str]:
        """Start sending one message; the returned callable completes it and returns what :meth:`send` returns.

        Work done between the two calls (building the next message) overlaps the server's processing of this one.
        Only one message may be in flight. The default sends at once.
        """
        message_id = self.send(msg)
        return lambda: message_id

    def close(self) -> None:
        """Release the connection (idempotent)."""


class SesMailer(Mailer):
    """Amazon SES ``SendRawEmail`` through a boto3 ``ses`` client.

    :param client: the admin account's SES client (its sender identity must be verified).
    """

    transport = SES

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sent = 0

    def send(self, msg: EmailMessage) -> str:
        """Send one message to its allowed recipients; returns the SES MessageId (screened-out recipients are in
        ``last_refused``)."""
        refused = self.screen(msg)
        response = self.client.send_raw_email(Source=message_sender(msg), Destinations=message_recipients(msg),
                                              RawMessage={"Data": to_bytes(msg)})
        self.sent += 1
        self.last_refused = refused
        return str(response["MessageId"])


class _DeferredReplySMTP(smtplib.SMTP):
    """smtplib's client, except that ``data`` does not wait for the server's reply to the message body.

    The reply (250 once the server has taken the message) is read by :meth:`final_reply`, or before the next
    command, so the client can build its next message while the server digests this one: over a thousand messages
    that wait was a fifth of the sending time. Plain RFC 5321 ordering; no PIPELINING extension needed.
    """

    _owed = False

    def data(self, msg: bytes | str) -> tuple[int, bytes]:
        self.putcmd("data")
        code, repl = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, repl)
        q = msg.encode("ascii") if isinstance(msg, str) else msg
        if q.startswith(b".") or b"\n." in q:  # dot-stuffing, as smtplib does (its regex scan costs more than this)
            q = smtplib._quote_periods(q)
        if q[-2:] != smtplib.bCRLF:
            q += smtplib.bCRLF
        self.send(q + b"." + smtplib.bCRLF)
        self._owed = True
        return 250, b"reply deferred"

    def final_reply(self) -> tuple[int, bytes]:
        """The server's reply to the last message body ((250, b"") when none is owed)."""
        if not self._owed:
            return 250, b""
        self._owed = False
        return self.getreply()

    def putcmd(self, cmd: str, args: str = "") -> None:
        if self._owed:  # keep replies in order: the body's reply comes before the next command's
            code, text = self.final_reply()
            if code != 250:
                raise smtplib.SMTPDataError(code, text)
        super().putcmd(cmd, args)


class _DeferredReplySMTPSSL(_DeferredReplySMTP, smtplib.SMTP_SSL):
    """The same over implicit TLS."""


class SmtpMailer(Mailer):
    """SMTP over one connection reused for every message.

    :param host: server name.
    :param port: server port.
    :param login: user name, or None for no AUTH.
    :param password: password (never logged).
    :param starttls: upgrade a plain connection with STARTTLS.
    :param use_ssl: connect with implicit TLS (SMTPS).
    :param timeout: socket timeout in seconds.
    """

    transport = SMTP

    def __init__(self, host: str, port: int = 25, login: str | None = None, password: str | None = None,
                 starttls: bool = False, use_ssl: bool = False, timeout: float = 30.0) -> None:
        self.host, self.port = host, int(port)
        self.login, self._password = login, password
        self.starttls, self.use_ssl, self.timeout = starttls, use_ssl, timeout
        self._conn: _DeferredReplySMTP | None = None
        self.connections = 0
        self.sent = 0
        self.last_refused: dict[str, tuple[int, str]] = {}

    def __repr__(self) -> str:
        return f"SmtpMailer({self.host}:{self.port}, starttls={self.starttls}, ssl={self.use_ssl})"

    def _connect(self) -> _DeferredReplySMTP:
        if self._conn is not None:
            return self._conn
        if self.use_ssl:
            conn: _DeferredReplySMTP = _DeferredReplySMTPSSL(self.host, self.port, timeout=self.timeout,
                                                             context=ssl.create_default_context())
        else:
            conn = _DeferredReplySMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                conn.starttls(context=ssl.create_default_context())
        if self.login:
            conn.login(self.login, self._password or "")
        self.connections += 1
        log.info("mail: connected to %s:%d (connection %d)", self.host, self.port, self.connections)
        self._conn = conn
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def send(self, msg: EmailMessage) -> str:
        """Send one message; returns its Message-ID. Recipients the server refused while accepting others are in
        ``last_refused``; all refused raises ``SMTPRecipientsRefused``."""
        return self.begin(msg)()

    def begin(self, msg: EmailMessage) -> Callable[[], str]:
        """Send one message up to the end of its data, leaving the server's final reply to the returned callable."""
        screened = self.screen(msg)
        for attempt in (1, 2):
            conn = self._connect()
            try:
                # sendmail with the flattened bytes: what send_message does for our messages (no Bcc, ASCII
                # addresses), without its copy of the message and its slower generator.
                refused = conn.sendmail(message_sender(msg), message_recipients(msg), to_bytes(msg))
                break
            except smtplib.SMTPServerDisconnected:
                # An idle connection the server closed: reopen once; a second drop is a real failure.
                self._drop()
                if attempt == 2:
                    raise

        def finish() -> str:
            try:
                code, text = conn.final_reply()
            except smtplib.SMTPServerDisconnected:
                self._drop()
                raise
            if code != 250:
                raise smtplib.SMTPDataError(code, text)
            self.last_refused = {**screened,
                                 **{k: (c, t.decode("utf-8", "replace")) for k, (c, t) in refused.items()}}
            self.sent += 1
            return str(msg["Message-ID"])

        return finish

    def close(self) -> None:
        """QUIT and close the connection if one is open."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.final_reply()  # a message whose completion was never asked for: its reply precedes QUIT's
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


def mailer_from_settings(cfg: Mapping[str, Any], access: Any | None, smtp: Mapping[str, Any] | None = None) -> Mailer:
    """The transport the settings choose: SES (``mail.transport: ses``) or SMTP.

    :param cfg: settings (``mail``, ``home_region``).
    :param access: an ``AwsAccess`` for SES (the admin account's ``ses`` client in ``home_region``).
    :param smtp: SMTP parameters (host, port, login, password, starttls, ssl, timeout), e.g. from an Airflow SMTP
        connection; required for SMTP.
    :returns: the mailer, screening recipients by :func:`allowed_recipient_domains` of ``cfg``.
    """
    mail = cfg.get("mail") or {}
    mailer: Mailer
    if mail.get("transport", SES) == SES:
        if access is None:
            raise MailError("mail transport ses needs AWS access")
        mailer = SesMailer(access.client("ses", region=cfg.get("home_region")))
    else:
        if not smtp or not smtp.get("host"):
            raise MailError("mail transport smtp needs SMTP parameters with a host (the smtp_conn_id connection)")
        mailer = SmtpMailer(
            host=str(smtp["host"]),
            port=int(smtp.get("port") or (465 if smtp.get("ssl") else 25)),  # implicit TLS listens on 465
            login=smtp.get("login") or None,
            password=smtp.get("password") or None,
            starttls=bool(smtp.get("starttls", False)),
            use_ssl=bool(smtp.get("ssl", False)),
            timeout=float(smtp.get("timeout") or 30),
        )
    mailer.allowed_domains = allowed_recipient_domains(cfg)
    return mailer

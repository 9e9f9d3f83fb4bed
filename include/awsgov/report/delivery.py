"""The weekly report pipeline: build and archive every owner's report, send them once, then the org-wide summary.

1. :func:`build_reports` reads the store (report.py), renders each owner's HTML, text and CSV (render.py) in the
   owner's language (owners.Languages; an owner whose addresses read different languages gets one report per
   language, each mailed to its own addresses: one message per recipient set and language), archives
   them under ``reports/week=YYYY-Www/<owner-slug>.{html,txt,csv}`` (``dry-run/`` below it for dry runs) and writes
   ``manifest.json`` there: the owners to send, and the org summary's view for the last step. Owners the ledger
   already lists as done for the week are skipped (not even re-rendered, so the archive keeps what was sent),
   unless ``resend``. It also folds the week's observations into report.py's first-seen index (not in dry runs).
2. :func:`send_reports` sends one slice of the manifest over one transport connection. Each address is validated
   first: malformed or header-injecting ones are refused and recorded, the others still get the message.
   Transient failures (4xx, throttling, network) are retried with backoff, permanent ones are not; recipients a
   server refuses (5xx) are recorded as refused, those it defers (4xx) as failed; after three failed messages in a
   row the rest of the slice is recorded as failed without trying (transport down). The ledger is read first: an
   address it lists as sent or refused (for this manifest, when ``resend``) is never mailed again, so a retry of
   the task sends only what is missing. Every outcome is written to the send ledger
   (``tables.SEND_LEDGER``, partition = the week's Monday, one chunk per owner slug, written right after each
   message so that a crash never causes a second mail; parallel tasks never write the same file and a rerun
   replaces rather than adds). A ``failed`` owner is tried again by the next run; ``sent`` and ``refused`` are done.
3. :func:`send_org_summary` renders the organization summary with every owner's delivery outcome read back from
   the ledger and sends it to the governance address (ledger chunk ``org-summary``), unless the ledger lists it as
   done (a retry after it went out).

Optionally (``out_dir``) the HTML reports and the messages (``.eml``, also in dry runs) are written to a local folder.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from include.awsgov.core import mail, render, tables
from include.awsgov.core import owners as own
from include.awsgov.core.store import Store
from include.awsgov.report import views as views
from include.awsgov.report.catalog import Catalog, load_catalog
from include.awsgov.report.change_history import attach as attach_changes
from include.awsgov.report.suppressions import Exceptions, load_exceptions
from include.awsgov.report.week import Week, report_options, save_first_seen, week_for_settings

log = logging.getLogger(__name__)

LEDGER_TABLE = "send_ledger"
ORG_SLUG = "org-summary"
SENT, FAILED, REFUSED, DRY_RUN = "sent", "failed", "refused", "dry-run"
ALREADY = "already-done"  # an outcome, never a ledger status: the ledger listed the report as delivered
# Ledger statuses that close an owner's report for the week ("failed" is tried again by the next run).
DONE = (SENT, REFUSED)
# After this many messages in a row failed (transport down, credentials refused), the rest of the batch is not
# attempted: it is recorded as failed at once and left to the task's retry instead of timing out owner by owner.
MAX_CONSECUTIVE_FAILURES = 3
VIEW_OPTIONS = ("max_actions", "max_resources_per_action", "max_list_items", "expiry_warning_days", "exceptions_file")


def prefix(week: Week, dry_run: bool = False) -> str:
    """Store folder of a week's archived reports."""
    return f"reports/week={week.label}" + ("/dry-run" if dry_run else "")


def manifest_path(week: Week, dry_run: bool = False) -> str:
    """Store path of a week's manifest (every task of a run derives the same one from its week and dry-run flag)."""
    return f"{prefix(week, dry_run)}/manifest.json"


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def ledger_status(store: Store, week: Week) -> dict[str, list[dict[str, Any]]]:
    """Ledger rows of a week by report slug (the chunk name), read as one Arrow dataset.

    :param store: the history store.
    :param week: the week.
    """
    chunks = store.chunks(LEDGER_TABLE, week.monday)
    if not chunks:
        return {}
    base = store.partition_path(LEDGER_TABLE, week.monday)
    dataset = ds.dataset([f"{base}/part-{c}.parquet" for c in chunks], format="parquet", filesystem=store.arrow_fs(),
                         schema=tables.SEND_LEDGER)
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in chunks}
    for row in dataset.to_table(columns=["__filename", *tables.SEND_LEDGER.names]).to_pylist():
        out[row.pop("__filename").rsplit("/part-", 1)[1][: -len(".parquet")]].append(row)
    return out


def done_slugs(store: Store, week: Week) -> set[str]:
    """Report slugs already delivered (or refused for good) in a week: a rerun skips them."""
    return {slug for slug, rows in ledger_status(store, week).items()
            if rows and all(r["status"] in DONE for r in rows)}


def done_addresses(rows: Sequence[Mapping[str, Any]], since: dt.datetime | None = None) -> set[str]:
    """Addresses of one report's ledger rows that are closed (sent or refused), recorded at or after ``since``.

    :param rows: the report's ledger rows (:func:`ledger_status`).
    :param since: only rows this recent count (a ``resend`` run: what this run's manifest already sent).
    """
    return {r["recipient"] for r in rows
            if r["status"] in DONE and (since is None or (r["sent_at"] is not None and r["sent_at"] >= since))}


def build_reports(store: Store, week: Week, cfg: Mapping[str, Any], *, resend: bool = False, dry_run: bool = False,
                  catalog: Catalog | None = None, exceptions: Exceptions | None = None) -> dict[str, Any]:
    """Build the week, render and archive each pending owner's report and write the manifest; return a summary.

    :param store: the history store.
    :param week: the week to report.
    :param cfg: settings.
    :param resend: render (and later send) owners the ledger lists as done.
    :param dry_run: render everyone under ``dry-run/``; nothing will be sent.
    :param catalog: rules catalog (default: the packaged one).
    :param exceptions: exceptions (default: the settings' ``report.exceptions_file``).
    """
    opts = report_options(cfg)
    started = time.perf_counter()
    catalog = catalog if catalog is not None else load_catalog()
    exceptions = exceptions if exceptions is not None else load_exceptions(opts.get("exceptions_file"))
    data, known, since = week_for_settings(store, week, cfg, catalog=catalog, exceptions=exceptions)
    attach_changes(store, data)  # when/who of the top Config items, looked up by the DAG's lookup_changes task
    if not dry_run:
        save_first_seen(store, known, since, data.observed_first_seen, data.observed_since)
    built = time.perf_counter()
    view_opts = {"governance_address": opts["governance_address"], **{k: opts[k] for k in VIEW_OPTIONS}}
    recs = views.Records(data)
    done = set() if (resend or dry_run) else done_slugs(store, week)
    base = prefix(week, dry_run)
    languages = own.Languages.from_settings(cfg)
    entries, skipped, owners = [], [], []
    for owner in data.owners:
        # One message per recipient set and language: an owner whose addresses read different languages gets one
        # report per language, each sent to its own addresses (slug suffixed with the language).
        groups = languages.split(owner, views.account_languages(recs, owner))
        slugs = report_slugs(owner, groups)
        owners.append({"slug": own.slug(owner), "owner": owner, "slugs": slugs})
        view = None
        for (lang, addresses), slug in zip(groups, slugs, strict=True):
            if slug in done:
                skipped.append(slug)
                continue
            view = view or views.owner_view(recs, owner, view_opts)
            worded = views.in_language(view, lang, catalog)  # the rules' titles and why lines in the owner's language
            store.put_text(f"{base}/{slug}.html", render.render("owner_report", "html", lang, **worded))
            store.put_text(f"{base}/{slug}.txt", render.render("owner_report", "txt", lang, **worded))
            store.put_bytes(f"{base}/{slug}.csv", views.findings_csv(recs, owner))
            entries.append({"slug": slug, "owner": addresses, "language": lang,
                            "subject": render.subject("owner_report", lang, **worded), "counts": view["counts"]})
    org = views.org_view(recs, view_opts)
    store.put_bytes(f"{base}/{ORG_SLUG}.csv", views.findings_csv(recs))
    manifest = {"week": week.label, "as_of": data.as_of.isoformat(), "dry_run": dry_run, "resend": resend,
                "owners": owners, "entries": entries,
                "skipped": skipped, "org_view": org, "org_done": ORG_SLUG in done,
                "built_at": dt.datetime.now(dt.UTC).isoformat()}
    path = manifest_path(week, dry_run)
    store.put_text(path, json.dumps(manifest, default=_json_default, ensure_ascii=False))
    log.info("report %s: %d owners, %d rendered, %d already sent; read %.1fs, rendered %.1fs", week.label,
             len(data.owners), len(entries), len(skipped), built - started, time.perf_counter() - built)
    return {"week": week.label, "as_of": data.as_of.isoformat(), "manifest": path, "owners": len(data.owners),
            "rendered": len(entries), "skipped": len(skipped), "dry_run": dry_run,
            "seconds_read": round(built - started, 2), "seconds_render": round(time.perf_counter() - built, 2),
            "counts": {k: org["counts"][k] for k in ("open", "new", "resolved", "overdue", "suppressed")}}


def report_slugs(owner: str, groups: Sequence[tuple[str, str]]) -> list[str]:
    """The archive and ledger names of an owner's reports: its slug for one language group (as before languages), else
    ``<slug>-<language>`` per group (a language code never ends in the slug's hex digest, so no owner's slug is
    another's).

    :param owner: a canonical owner key.
    :param groups: from owners.Languages.split.
    """
    slug = own.slug(owner)
    return [slug] if len(groups) == 1 else [f"{slug}-{lang}" for lang, _ in groups]


def load_manifest(store: Store, path: str) -> dict[str, Any]:
    """The manifest written by :func:`build_reports`."""
    return json.loads(store.get_text(path))


def _message(store: Store, base: str, entry: Mapping[str, Any], week: str, sender: str,
             to: Sequence[str]) -> EmailMessage:
    return mail.build_message(
        sender, list(to), entry["subject"], store.get_text(f"{base}/{entry['slug']}.txt"),
        store.get_text(f"{base}/{entry['slug']}.html"),
        [(f"findings-{week}.csv", store.get_bytes(f"{base}/{entry['slug']}.csv"), "text/csv")],
        {"X-Awsgov-Week": week, "X-Awsgov-Report": entry["slug"]},
    )


def _begin(mailer: mail.Mailer, msg: EmailMessage) -> Callable[[], str]:
    """Start sending; a failure to start is raised when the returned callable is called (as the first attempt)."""
    try:
        return mailer.begin(msg)
    except Exception as exc:  # noqa: BLE001 - re-raised by the callable, where _deliver classifies it
        error = exc  # `exc` itself is unbound when the except block ends

        def fail() -> str:
            raise error

        return fail


def _deliver(mailer: mail.Mailer, msg: EmailMessage, attempts: int, pause: float,
             started: Callable[[], str] | None = None) -> tuple[str, str, str]:
    """(status, message id, error) of one message after retrying transient failures.

    :param started: completes a send begun with :func:`_begin` (the first attempt); retries send afresh.
    """
    for attempt in range(1, max(attempts, 1) + 1):
        try:
            first, started = started, None
            return SENT, first() if first is not None else mailer.send(msg), ""
        except Exception as exc:  # noqa: BLE001 - every transport error is classified, recorded, never lost
            error = f"{type(exc).__name__}: {exc}"[:500]
            if isinstance(exc, smtplib.SMTPRecipientsRefused) and not mail.is_transient(exc):
                return REFUSED, "", error  # the server refused every recipient for good (550 no such user)
            if not mail.is_transient(exc) or attempt >= attempts:
                log.warning("mail: %s not delivered after %d attempt(s): %s", msg["To"], attempt, error)
                return FAILED, "", error
            log.info("mail: transient failure (attempt %d/%d), retrying: %s", attempt, attempts, error)
            time.sleep(pause * 2 ** (attempt - 1))
    return FAILED, "", "no attempt made"


def checked_out_dir(requested: str | None, base: str | None) -> str | None:
    """The folder a run may write its HTML and .eml copies to: ``requested`` (the DAG's ``out_dir`` Param) only when
    it lies inside ``base`` (settings ``report.out_dir``), else ``base`` itself; None for neither.

    The Param is a path on the worker: without this, anyone who can trigger the DAG could have files written
    anywhere the worker may write.

    :raises ValueError: ``requested`` is outside ``base``, or there is no ``base`` to hold it.
    """
    if not requested:
        return base or None
    if not base:
        raise ValueError(f"out_dir {requested!r} refused: set the folder that may hold report copies in the "
                         "settings (report.out_dir) first; out_dir must be inside it")
    root, path = Path(base).resolve(), (Path(base) / requested).resolve()  # a relative out_dir is inside base
    if not path.is_relative_to(root):
        raise ValueError(f"out_dir {requested!r} refused: it must be a folder inside {str(root)!r} "
                         "(settings report.out_dir)")
    return str(path)


def _write_out(out_dir: str | None, folder: str, name: str, data: Callable[[], bytes]) -> None:
    """Write ``data()`` to ``<out_dir>/<folder>/<name>``; ``data`` is only called when there is an out_dir."""
    if not out_dir:
        return
    path = Path(out_dir) / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data())


def _write_ledger(store: Store, week: Week, slug: str, rows: list[dict[str, Any]]) -> None:
    # Straight to Arrow: one small write per message, so the pandas round trip would dominate sending.
    table = pa.Table.from_pylist(sorted(rows, key=lambda r: r["recipient"]), schema=tables.SEND_LEDGER)
    store.write(LEDGER_TABLE, week.monday, table, chunk=slug, schema=tables.SEND_LEDGER)


@dataclass
class _Prepared:
    """A report ready to go: its checked addresses and its message (None when every address was refused)."""

    entry: Mapping[str, Any]
    valid: list[str]
    refused: list[tuple[str, str]]
    msg: EmailMessage | None
    kept: list[dict[str, Any]]  # the report's ledger rows already closed: kept as they are, never sent again

    @property
    def done(self) -> bool:
        """Nothing left to send or record: every address is already closed in the ledger."""
        return not self.valid and not self.refused and bool(self.kept)


def _pending_addresses(owner: str, closed: Sequence[Mapping[str, Any]]) -> list[str]:
    """The addresses of an owner key that the closed ledger rows do not list (raw or as validated)."""
    done = {r["recipient"] for r in closed}
    out = []
    for address in own.recipients(owner):
        try:
            checked = mail.validate_address(address)
        except mail.InvalidRecipient:
            checked = address
        if address not in done and checked not in done:
            out.append(address)
    return out


def _prepare(store: Store, base: str, entry: Mapping[str, Any], week: Week, opts: Mapping[str, Any],
             out_dir: str | None, closed: Sequence[Mapping[str, Any]] = ()) -> _Prepared:
    """Validate the addresses of one report and build its message (and the out_dir copies).

    :param closed: the report's ledger rows that are closed (sent or refused): their addresses are left out.
    """
    valid, refused = [], []
    for address in _pending_addresses(entry["owner"], closed):
        try:
            valid.append(mail.validate_address(address))
        except mail.InvalidRecipient as exc:
            refused.append((address, str(exc)))
    kept = [dict(r) for r in closed]
    if not valid and not refused and kept:  # a retry after this report went out: nothing to build or write
        return _Prepared(entry, [], [], None, kept)
    msg = _message(store, base, entry, week.label, opts["sender"], valid) if valid else None
    if msg is not None:
        _write_out(out_dir, "emails", f"{entry['slug']}.eml", lambda: mail.to_bytes(msg))
    _write_out(out_dir, "reports", f"{entry['slug']}.html", lambda: store.get_bytes(f"{base}/{entry['slug']}.html"))
    return _Prepared(entry, valid, refused, msg, kept)


def _finish(store: Store, prep: _Prepared, week: Week, opts: Mapping[str, Any], mailer: mail.Mailer | None,
            dry_run: bool, started: Callable[[], str] | None = None) -> dict[str, Any]:
    """Send (or not) one prepared report and record every address's outcome in the ledger."""
    entry, valid, refused = prep.entry, list(prep.valid), list(prep.refused)
    if prep.done:
        log.info("mail: report %s already delivered (ledger): not sent again", entry["slug"])
        return {"slug": entry["slug"], "status": ALREADY, "refused": [], "error": ""}
    deferred: list[tuple[str, str]] = []  # addresses the server deferred (4xx) while accepting the others
    status, message_id, error = REFUSED, "", "; ".join(e for _, e in refused)[:500]
    if prep.msg is not None:
        if dry_run or mailer is None:
            status, message_id, error = DRY_RUN, str(prep.msg["Message-ID"]), ""
        else:
            status, message_id, error = _deliver(mailer, prep.msg, int(opts["send_attempts"]),
                                                 float(opts["send_retry_seconds"]), started)
            if status == SENT:
                # Recipients an SMTP server refused while accepting the others.
                for address, (code, text) in (getattr(mailer, "last_refused", None) or {}).items():
                    if address in valid:
                        valid.remove(address)
                        (deferred if 400 <= int(code) < 500 else refused).append((address, f"{code} {text}"))
    if refused:
        log.warning("mail: report %s: refused %d address(es): %s", entry["slug"], len(refused),
                    "; ".join(e for _, e in refused))
    if not dry_run:
        now = dt.datetime.now(dt.UTC)
        rows = [{"week": week.label, "recipient": a, "subject": entry["subject"], "message_id": message_id,
                 "transport": opts["transport"], "status": status, "error": error, "sent_at": now} for a in valid]
        rows += [{"week": week.label, "recipient": a, "subject": entry["subject"], "message_id": "",
                  "transport": opts["transport"], "status": REFUSED, "error": e[:500], "sent_at": now}
                 for a, e in refused]
        rows += [{"week": week.label, "recipient": a, "subject": entry["subject"], "message_id": "",
                  "transport": opts["transport"], "status": FAILED, "error": e[:500], "sent_at": now}
                 for a, e in deferred]
        _write_ledger(store, week, entry["slug"], prep.kept + rows)
    if deferred:  # sent to the others; the deferred addresses make the task fail and be retried
        status, error = FAILED, "; ".join(e for _, e in deferred)[:500]
    return {"slug": entry["slug"], "status": status, "refused": [a for a, _ in refused], "error": error}


def _not_attempted(store: Store, prep: _Prepared, week: Week, opts: Mapping[str, Any]) -> dict[str, Any]:
    entry = prep.entry
    error = f"not attempted: the previous {MAX_CONSECUTIVE_FAILURES} messages failed"
    rows = [{"week": week.label, "recipient": a, "subject": entry["subject"], "message_id": "",
             "transport": opts["transport"], "status": FAILED, "error": error, "sent_at": dt.datetime.now(dt.UTC)}
            for a in prep.valid + [a for a, _ in prep.refused]]
    _write_ledger(store, week, entry["slug"], prep.kept + rows)
    return {"slug": entry["slug"], "status": FAILED, "refused": [], "error": error}


def send_reports(store: Store, manifest: str, cfg: Mapping[str, Any], mailer_factory: Callable[[], mail.Mailer],
                 *, batch: int | None = None, out_dir: str | None = None) -> dict[str, Any]:
    """Send the manifest's reports (or one batch of them) over one transport connection.

    :param store: the history store.
    :param manifest: store path of the manifest (:func:`manifest_path`).
    :param cfg: settings.
    :param mailer_factory: opens the transport (not called in dry runs).
    :param batch: index of the ``report.send_batch_size`` slice to send; None: all.
    :param out_dir: also write HTML and .eml files here.
    """
    manifest = load_manifest(store, manifest)
    opts = report_options(cfg)
    week, dry_run = Week.parse(manifest["week"]), bool(manifest["dry_run"])
    entries = manifest["entries"]
    if batch is not None:
        size = int(opts["send_batch_size"])
        entries = entries[batch * size:(batch + 1) * size]
    base = prefix(week, dry_run)
    outcomes = []
    started = time.perf_counter()
    closed = {} if dry_run else _closed(store, week, manifest)
    # One thread, one message in flight: the next message is built while the server digests the previous one
    # (Mailer.begin). A helper thread building ahead was measured slower: the two threads convoy on the GIL.
    prepared = (_prepare(store, base, e, week, opts, out_dir, closed.get(e["slug"], ())) for e in entries)
    if dry_run or not entries:
        outcomes = [_finish(store, p, week, opts, None, dry_run) for p in prepared]
    else:
        with mailer_factory() as mailer:
            inflight: tuple[_Prepared, Callable[[], str]] | None = None
            for prep in prepared:  # building this one overlaps the server's work on the one in flight
                if inflight is not None:
                    outcomes.append(_finish(store, inflight[0], week, opts, mailer, False, inflight[1]))
                    inflight = None
                if prep.done:
                    outcomes.append(_finish(store, prep, week, opts, mailer, False))
                elif len(outcomes) >= MAX_CONSECUTIVE_FAILURES and all(
                        o["status"] == FAILED for o in outcomes[-MAX_CONSECUTIVE_FAILURES:]):
                    outcomes.append(_not_attempted(store, prep, week, opts))
                elif prep.msg is None:
                    outcomes.append(_finish(store, prep, week, opts, mailer, False))  # every address refused
                else:
                    inflight = (prep, _begin(mailer, prep.msg))
            if inflight is not None:
                outcomes.append(_finish(store, inflight[0], week, opts, mailer, False, inflight[1]))
    summary = {s: sum(o["status"] == s for o in outcomes) for s in (SENT, FAILED, REFUSED, DRY_RUN, ALREADY)}
    summary.update({"week": week.label, "batch": batch, "messages": len(entries),
                    "seconds": round(time.perf_counter() - started, 2),
                    "failed_slugs": [o["slug"] for o in outcomes if o["status"] == FAILED][:50]})
    log.info("report %s batch %s: %s", week.label, batch, summary)
    return summary


def _closed(store: Store, week: Week, manifest: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Closed ledger rows by report slug that a send of this manifest must not send again: every closed row, or
    with ``resend`` only those recorded since the manifest was built (an earlier try of this run)."""
    built_at = manifest.get("built_at")  # absent from manifests of older code: then every closed row counts
    since = dt.datetime.fromisoformat(built_at) if manifest.get("resend") and built_at else None
    out = {}
    for slug, rows in ledger_status(store, week).items():
        done = done_addresses(rows, since)
        if done:
            out[slug] = [r for r in rows if r["recipient"] in done]
    return out


def delivery_by_owner(store: Store, manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each owner's delivery outcome for the week, from the ledger (``pending`` when it has no row).

    :param store: the history store.
    :param manifest: from :func:`load_manifest`.
    """
    week = Week.parse(manifest["week"])
    ledger = ledger_status(store, week)
    out = []
    for o in manifest["owners"]:
        rows = [r for slug in o.get("slugs") or [o["slug"]] for r in ledger.get(slug, [])]
        statuses = {r["status"] for r in rows}
        status = (SENT if SENT in statuses else FAILED if FAILED in statuses else REFUSED if rows else
                  (DRY_RUN if manifest["dry_run"] else "pending"))
        out.append({"owner": o["owner"], "slug": o["slug"], "status": status,
                    "refused": sorted(r["recipient"] for r in rows if r["status"] == REFUSED),
                    "error": "; ".join(sorted({r["error"] for r in rows if r["status"] == FAILED and r["error"]}))})
    return out


def send_org_summary(store: Store, manifest: str, cfg: Mapping[str, Any],
                     mailer_factory: Callable[[], mail.Mailer], *, out_dir: str | None = None,
                     catalog: Catalog | None = None) -> dict[str, Any]:
    """Render the org-wide summary with the owners' delivery outcomes and send it to the governance address.

    :param store: the history store.
    :param manifest: store path of the manifest (:func:`manifest_path`).
    :param cfg: settings.
    :param mailer_factory: opens the transport (not called in dry runs or when already sent).
    :param out_dir: also write HTML and .eml files here.
    :param catalog: rules catalog of the rules' wording in the summary's language (default: the packaged one).
    """
    manifest = load_manifest(store, manifest)
    opts = report_options(cfg)
    week, dry_run = Week.parse(manifest["week"]), bool(manifest["dry_run"])
    view = views.with_delivery(manifest["org_view"], delivery_by_owner(store, manifest))
    base = prefix(week, dry_run)
    owner = own.canonical(opts["governance_address"])
    closed = [] if dry_run else _closed(store, week, manifest).get(ORG_SLUG, [])
    if closed and _pending_addresses(owner, closed) == []:
        log.info("report %s: org summary already sent", week.label)
        return {"week": week.label, "status": "skipped", "delivery": view["delivery_counts"]}
    lang = own.Languages.from_settings(cfg).of(owner)
    view = views.in_language(view, lang, catalog if catalog is not None else load_catalog())
    store.put_text(f"{base}/{ORG_SLUG}.html", render.render("org_summary", "html", lang, **view))
    store.put_text(f"{base}/{ORG_SLUG}.txt", render.render("org_summary", "txt", lang, **view))
    entry = {"slug": ORG_SLUG, "owner": owner, "language": lang,
             "subject": render.subject("org_summary", lang, **view)}
    prep = _prepare(store, base, entry, week, opts, out_dir, closed)
    if dry_run:
        outcome = _finish(store, prep, week, opts, None, True)
    else:
        with mailer_factory() as mailer:
            outcome = _finish(store, prep, week, opts, mailer, False)
    return {"week": week.label, "status": outcome["status"], "error": outcome["error"],
            "delivery": view["delivery_counts"]}

"""A send task killed mid-batch (SIGKILL, a separate process) and run again: every report is sent exactly once and
the send ledger says exactly that (issue #19, beyond the list).

The kill lands while the server holds the next message's RCPT unanswered: by then the previous message's final
reply was read and its ledger row written (send_reports records each message before it begins the next). A kill
inside a message's DATA exchange, after the server took the body but before the sender read the reply, is the one
window no sender can close over SMTP; docs/store.md says how the ledger treats it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from include.awsgov.report import delivery as rd
from tests.awsgov.report.test_delivery import WEEK, _setup
from tests.fixtures.smtp_sink import SmtpSink

REPO = Path(__file__).resolve().parents[3]
KILL_AT = 3  # the RCPT of the 3rd owner message

_SENDER = """
import json, sys
from include.awsgov.core import mail
from include.awsgov.core.store import Store
from include.awsgov.report import delivery as rd
cfg, manifest, params = json.load(open(sys.argv[1]))
summary = rd.send_reports(Store(cfg["store_url"]), manifest, cfg,
                          lambda: mail.mailer_from_settings(cfg, None, params), batch=0)
print(json.dumps(summary))
"""


def _send_in_a_process(args_file: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SENDER, str(args_file)], cwd=REPO, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_a_send_task_killed_mid_batch_and_rerun_sends_each_report_once(tmp_path):
    store, cfg = _setup(tmp_path)
    built = rd.build_reports(store, WEEK, cfg)
    owners = rd.load_manifest(store, built["manifest"])["entries"]
    with SmtpSink() as sink:
        args = tmp_path / "args.json"
        args.write_text(json.dumps([cfg, built["manifest"], sink.params]))
        handler = sink._controller.handler
        real_rcpt = handler.handle_RCPT
        seen: list[str] = []
        first: list[subprocess.Popen] = []

        async def rcpt_then_kill(server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd hook
            seen.append(address)
            if len(seen) == KILL_AT and first:
                os.kill(first[0].pid, signal.SIGKILL)  # the task dies; this RCPT is never answered
                first[0].wait()
            return await real_rcpt(server, session, envelope, address, rcpt_options)

        handler.handle_RCPT = rcpt_then_kill
        first.append(_send_in_a_process(args))
        assert first[0].wait(timeout=600) == -signal.SIGKILL
        killed_after = len(sink.messages)
        handler.handle_RCPT = real_rcpt
        rerun = _send_in_a_process(args)  # Airflow's retry of the task: a fresh process, the same manifest
        out, _ = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, out
        summary = json.loads(out)

    assert killed_after == KILL_AT - 1
    slugs = {e["slug"] for e in owners}
    ledger = rd.ledger_status(store, WEEK)
    refused = {slug for slug, rows in ledger.items() if {r["status"] for r in rows} == {"refused"}}
    sent = [m["X-Awsgov-Report"] for m in sink.parsed()]
    assert len(sent) == len(set(sent))  # no report twice
    assert set(sent) | refused == slugs and len(refused) == 1  # none lost (one owner's only address is invalid)
    # The rerun sent what the killed try had not; everything the ledger had closed it left alone.
    assert summary["sent"] == len(sent) - killed_after
    assert summary["sent"] + summary["refused"] + summary["already-done"] == len(slugs)
    assert {slug: {r["status"] for r in rows} for slug, rows in ledger.items()} == {
        **{slug: {"sent"} for slug in sent}, **{slug: {"refused"} for slug in refused}}
    sent_ids = {r["message_id"] for rows in ledger.values() for r in rows if r["status"] == "sent"}
    assert sent_ids == {m["Message-ID"] for m in sink.parsed()}  # the ledger names exactly the mails that went out

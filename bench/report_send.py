"""Benchmark: build, render and send 1,000 owners' weekly reports over SMTP to a loopback aiosmtpd server.

    python bench/report_send.py [--owners 1000] [--findings 12]

Writes a store with ``--owners`` accounts (one owner each, ``--findings`` open findings each, two collected days,
one Parquet chunk per account and table as the collection DAG writes them), then times the real pipeline
(report_delivery.build_reports -> send_reports -> send_org_summary) with the SMTP transport of mail.py. Prints the
wall time of each phase, messages per second and how many TCP connections the SMTP server accepted (the target is
one for all owner reports, plus one for the summary). Target: under 30 s.

``--batches N`` sends in N parallel processes, each with its own connection, as the DAG's mapped ``send_reports``
tasks do with ``report.send_batch_size``; ``--store PATH`` keeps the generated store for the next run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from include.awsgov.core import mail  # noqa: E402
from include.awsgov.core.settings import load_settings  # noqa: E402
from include.awsgov.core.store import Store  # noqa: E402
from include.awsgov.report import delivery as rd  # noqa: E402
from include.awsgov.report.week import Week  # noqa: E402
from tests.fixtures import report_store as rs  # noqa: E402
from tests.fixtures.smtp_sink import free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 30.0


@contextlib.contextmanager
def smtp_server(tmp: Path):
    """aiosmtpd in its own process (so it does not compete with the sender for the GIL); yields its params and a
    dict filled with its counts when it stops."""
    port, stats = free_port(), tmp / "smtp-stats.json"
    proc = subprocess.Popen([sys.executable, "-m", "tests.fixtures.smtp_sink", "--port", str(port), "--stats",
                             str(stats)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    result: dict = {}
    try:
        assert proc.stdout is not None and "listening" in proc.stdout.readline()
        yield {"host": "127.0.0.1", "port": port, "ssl": False, "starttls": False, "timeout": 30}, result
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if stats.exists():
            result.update(json.loads(stats.read_text()))


def _send_batch(store_url: str, manifest: str, cfg: dict, params: dict, batch: int) -> dict:
    """One mapped send_reports task: its own process, its own SMTP connection."""
    store = Store(store_url)
    return rd.send_reports(store, manifest, cfg, lambda: mail.mailer_from_settings(cfg, None, params), batch=batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owners", type=int, default=1000)
    parser.add_argument("--findings", type=int, default=12, help="open findings per account")
    parser.add_argument("--batches", type=int, default=1,
                        help="send in this many parallel batches, as the DAG's mapped send tasks do (1: one "
                             "connection for every owner report)")
    parser.add_argument("--store", type=Path, help="reuse (a copy of) the store built by an earlier run here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = Path(tmp) / "store"
        started = time.perf_counter()
        if args.store and args.store.exists():
            shutil.copytree(args.store, root)
            store = Store(str(root))
        else:
            store = rs.build_scaled(root, owners=args.owners, per_account=args.findings)
            if args.store:
                shutil.copytree(root, args.store)
        os.sync()  # the setup's 10,000 file writes must not be flushed to disk during the timed phases
        files = sum(1 for _ in root.rglob("*.parquet"))
        print(f"store: {args.owners} accounts/owners, {args.owners * args.findings} open findings, {files} Parquet "
              f"files, ready in {time.perf_counter() - started:.1f}s (setup, not timed below)")
        cfg = load_settings({"store_url": str(root), "mail": {**rs.SETTINGS["mail"]},
                             "report": {"send_batch_size": -(-args.owners // args.batches)}})
        week = Week.parse(rs.WEEK)
        with smtp_server(Path(tmp)) as (params, server):
            factory = lambda: mail.mailer_from_settings(cfg, None, params)  # noqa: E731
            t0 = time.perf_counter()
            built = rd.build_reports(store, week, cfg)
            t1 = time.perf_counter()
            if args.batches == 1:
                results = [rd.send_reports(store, built["manifest"], cfg, factory)]
            else:
                spawn = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(args.batches, mp_context=spawn) as pool:
                    results = list(pool.map(_send_batch, *zip(*[(str(root), built["manifest"], cfg, params, b)
                                                                 for b in range(args.batches)], strict=True)))
            t2 = time.perf_counter()
            org = rd.send_org_summary(store, built["manifest"], cfg, factory)
            t3 = time.perf_counter()
    sent = {k: sum(r[k] for r in results) for k in ("sent", "failed", "refused")}
    messages, connections, size = server["messages"], server["connections"], server["bytes"]
    total = t3 - t0
    print(f"build_reports: {t1 - t0:.1f}s = read the store and build the week {built['seconds_read']:.1f}s + render "
          f"and archive {built['rendered']} reports {built['seconds_render']:.1f}s")
    print(f"send_reports in {args.batches} batch(es) ({sent['sent']} sent, {sent['failed']} failed, "
          f"{sent['refused']} refused): {t2 - t1:.1f}s = {sent['sent'] / max(t2 - t1, 1e-9):.0f} messages/s")
    print(f"send_org_summary ({org['status']}): {t3 - t2:.1f}s")
    print(f"total: {total:.1f}s for {messages} messages = {messages / total:.0f} messages/s "
          f"(target < {TARGET_SECONDS:.0f}s: {'met' if total < TARGET_SECONDS else 'MISSED'}); render + send without "
          f"the store read: {total - built['seconds_read']:.1f}s")
    print(f"SMTP server: {messages} messages, {size / 1e6:.1f} MB, {connections} TCP connections "
          f"({connections - 1} for the owner reports, 1 for the summary)")
    return 0 if total < TARGET_SECONDS and sent["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: build, render and send 1,000 owners' weekly reports over SMTP to a loopback aiosmtpd server.

    python bench/report_send.py [--owners 1000] [--findings 12]

Writes a store with ``--owners`` accounts (one owner each, ``--findings`` open findings each, two collected days,
one Parquet chunk per account and table as the collection DAG writes them), then times the real pipeline
(report_delivery.build_reports -> send_reports -> send_org_summary) with the SMTP transport of mail.py. Prints the
wall time of each phase, messages per second and how many TCP connections the SMTP server accepted (the target is
one for all owner reports, plus one for the summary). Target: render + send under 30 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from include.awsgov import mail  # noqa: E402
from include.awsgov import report_delivery as rd  # noqa: E402
from include.awsgov.report import Week  # noqa: E402
from include.awsgov.settings import load_settings  # noqa: E402
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owners", type=int, default=1000)
    parser.add_argument("--findings", type=int, default=12, help="open findings per account")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = Path(tmp) / "store"
        started = time.perf_counter()
        store = rs.build_scaled(root, owners=args.owners, per_account=args.findings)
        files = sum(1 for _ in root.rglob("*.parquet"))
        print(f"store: {args.owners} accounts/owners, {args.owners * args.findings} open findings, {files} Parquet "
              f"files, written in {time.perf_counter() - started:.1f}s (setup, not timed below)")
        cfg = load_settings({"store_url": str(root), "mail": {**rs.SETTINGS["mail"]},
                             "report": {"send_batch_size": args.owners + 1}})
        week = Week.parse(rs.WEEK)
        with smtp_server(Path(tmp)) as (params, server):
            factory = lambda: mail.mailer_from_settings(cfg, None, params)  # noqa: E731
            t0 = time.perf_counter()
            built = rd.build_reports(store, week, cfg)
            t1 = time.perf_counter()
            sent = rd.send_reports(store, built["manifest"], cfg, factory)
            t2 = time.perf_counter()
            org = rd.send_org_summary(store, built["manifest"], cfg, factory)
            t3 = time.perf_counter()
    messages, connections, size = server["messages"], server["connections"], server["bytes"]
    total = t3 - t0
    print(f"build_reports (read store, render {built['rendered']} reports, archive): {t1 - t0:.1f}s")
    print(f"send_reports ({sent['sent']} sent, {sent['failed']} failed, {sent['refused']} refused): {t2 - t1:.1f}s "
          f"= {sent['sent'] / max(t2 - t1, 1e-9):.0f} messages/s")
    print(f"send_org_summary ({org['status']}): {t3 - t2:.1f}s")
    print(f"total render + send: {total:.1f}s for {messages} messages = {messages / total:.0f} messages/s "
          f"(target < {TARGET_SECONDS:.0f}s: {'met' if total < TARGET_SECONDS else 'MISSED'})")
    print(f"SMTP server: {messages} messages, {size / 1e6:.1f} MB, {connections} TCP connections "
          f"({connections - 1} for the owner reports, 1 for the summary)")
    return 0 if total < TARGET_SECONDS and sent["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

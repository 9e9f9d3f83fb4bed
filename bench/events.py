"""Benchmark of issue #22: event-based monitoring at organization scale, through the real path.

    python bench/events.py [--accounts 1000] [--alerts 300] [--rate 1.0] [--calls-per-hour 600]
                           [--port 8791] [--sandbox-port 5791] [--smtp-port 8026] [--skip-activity|--skip-standalone]

Part 1, alerts, through ``airflow standalone`` (scripts/check_event_watcher.start_standalone: scheduler,
triggerer, dag-processor, api-server, LocalExecutor, SQLite, only governance_events) on a sandbox organization of
``--accounts`` accounts with the central stack deployed by the product's own code, mail by SMTP to a real SMTP
server (aiosmtpd) in this process. ``--alerts`` alert candidates are put at ``--rate`` per second, each with
PutEvents *in a member account* (a random onboarded one), so it travels as on AWS: the member's forwarding rule
(baseline) -> the central bus (its policy admits the forwarding role only) -> the central rule -> the events queue
and the wake queue -> the AssetWatcher -> a run that stores, routes and mails. Half are ``iam:CreateUser`` (rule
events_iam_user_in_member_account), half GuardDuty findings of severity 8 (events_guardduty_high), each with its
own resource so the ledger's de-duplication does not merge them. A mail line names its event id: latency = the
SMTP server's reception of the first mail naming an event - the moment PutEvents was called for it.
Printed: put -> mail p50/p95/max, events lost (put ids not in the store), duplicates stored (rows per id > 1),
the metadata DB's growth (file size and rows per table, before the first put and after the last run) scaled to
10,000 alert candidates from the measured count.

Rate of alert candidates: an assumption stated here, not a published figure. The rules (events.yaml ``alerts``)
fire on rare events (root and MFA-less console sign-ins, high GuardDuty findings, Config rules turning
NON_COMPLIANT in prod, red Trusted Advisor security checks, trails stopped, IAM users in member accounts); a
1,000-account organization sees a handful to tens a day. The default 1.0 a second (3,600 an hour, 3.6 per account
and hour for 1,000 accounts) is a storm (a leaked key used everywhere, a bad StackSet rollout), chosen so the path
is measured loaded. The quick default puts 300; ``--alerts 10000 --rate 3`` (about an hour) is the large run.

Part 2, the hourly activity job (``check_activity``'s reading and counting), in process on moto S3: one hour of log
files of ``--accounts`` accounts at ``--calls-per-hour`` API calls (CloudTrail management events) per account and
region, in AWS's key layout and format (one gzip'd ``{"Records": [...]}`` file per account, region and
five-minute window, named by its delivery time), read by ``activity.read_hour`` and written by
``activity.store_hour``. Rate: an assumption stated here, not a published figure: 600 an hour (10 a minute) stands
for an account with automation (deploy pipelines, scanners, the governance read role itself); quiet accounts write
far fewer, busy ones more. Measure yours with CloudTrail Lake or Athena
(``SELECT count(*) ... GROUP BY recipientaccountid, date_trunc('hour', eventtime)``).

Everything started is stopped at the end; files are under ``--root`` (default a new /tmp/evbench-* directory).
"""

from __future__ import annotations

import argparse
import datetime as dt
import email
import gzip
import json
import math
import random
import re
import sqlite3
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from include.awsgov.core.store import Store  # noqa: E402
from include.awsgov.events import activity  # noqa: E402

BUCKET = "governance-logs-123456789012"
HOUR = dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC)
NAMES = [("iam", "AttachUserPolicy"), ("ec2", "DescribeInstances"), ("s3", "GetBucketAcl"), ("sts", "AssumeRole"),
         ("kms", "Decrypt"), ("ec2", "AuthorizeSecurityGroupIngress"), ("cloudtrail", "LookupEvents")]


def write_hour(s3, accounts: list[str], regions: list[str], calls_per_hour: int) -> tuple[int, int, int]:
    """One hour of log files; returns (files, records, bytes)."""
    files = records = size = 0
    per_file = max(1, calls_per_hour // 12)
    for account in accounts:
        for region in regions:
            for window in range(12):
                delivered = HOUR + dt.timedelta(minutes=5 * window + 5) - dt.timedelta(minutes=5)
                recs = [{"eventVersion": "1.09", "eventTime": (delivered - dt.timedelta(seconds=k % 300))
                         .strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": f"{NAMES[k % 7][0]}.amazonaws.com",
                         "eventName": NAMES[k % 7][1], "awsRegion": region, "recipientAccountId": account,
                         "userIdentity": {"type": "AssumedRole", "accountId": account,
                                          "arn": f"arn:aws:sts::{account}:assumed-role/ci/run"},
                         "sourceIPAddress": "192.0.2.1", "userAgent": "aws-cli/2", "eventType": "AwsApiCall",
                         "requestParameters": {"resourceId": f"r-{k}"}} for k in range(per_file)]
                body = gzip.compress(json.dumps({"Records": recs}, separators=(",", ":")).encode())
                key = (f"AWSLogs/{account}/CloudTrail/{region}/{delivered:%Y/%m/%d}/"
                       f"{account}_CloudTrail_{region}_{delivered:%Y%m%dT%H%M}Z_AbCdEfGh1234567{window % 10}.json.gz")
                s3.put_object(Bucket=BUCKET, Key=key, Body=body)
                files, records, size = files + 1, records + len(recs), size + len(body)
    return files, records, size


# --- part 1: alerts through airflow standalone ---------------------------------------------------------------------
EVENT_ID = re.compile(r"\(event ([0-9a-f-]{36})\)")


class MailSink:
    """Handler of the aiosmtpd server: when each event id was first named in a received mail."""

    def __init__(self) -> None:
        self.first_seen: dict[str, float] = {}
        self.mails = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        now = time.time()
        msg = email.message_from_bytes(envelope.content)
        text = "".join(part.get_payload(decode=True).decode("utf-8", "replace") for part in msg.walk()
                       if part.get_content_type() == "text/plain")
        with self.lock:
            self.mails += 1
            for event_id in EVENT_ID.findall(text):
                self.first_seen.setdefault(event_id, now)
        return "250 OK"


def db_snapshot(path: Path) -> tuple[int, dict[str, int]]:
    """(bytes of the SQLite metadata DB with its WAL, rows per table)."""
    size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}  # noqa: S608
    return size, rows


def candidate(k: int) -> dict:
    """The k-th alert candidate: a PutEvents entry with its own resource."""
    if k % 2 == 0:
        detail = {"eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
                  "requestParameters": {"userName": f"bench-user-{k}"},
                  "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/ci/bench"}}
        return {"Source": "aws.iam", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(detail)}
    detail = {"id": f"bench-finding-{k}", "type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": 8.0,
              "title": "SSH brute force", "resource": {"resourceType": "Instance",
                                                       "instanceDetails": {"instanceId": f"i-bench{k:08d}"}}}
    return {"Source": "aws.guardduty", "DetailType": "GuardDuty Finding", "Detail": json.dumps(detail)}


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (the smallest value with at least q % of the values at or below it)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def alerts_bench(args: argparse.Namespace, root: Path) -> bool:
    from aiosmtpd.controller import Controller

    from include.awsgov.core import tables
    from sandbox.runner import Sandbox
    from scripts.check_event_watcher import runs_of, start_standalone, stop

    sink = MailSink()
    smtp = Controller(sink, hostname="127.0.0.1", port=args.smtp_port)
    smtp.start()
    sb = Sandbox(accounts=args.accounts, new_accounts=0, regions=["us-east-1"], port=args.sandbox_port,
                 seed_metrics_accounts=0, state_dir=root / "sandbox").start()
    proc = None
    try:
        conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": args.smtp_port,
                "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 30}}
        t0 = time.monotonic()
        proc, env, _ = start_standalone(
            sb, root, args.port, {"mail": {"transport": "smtp", "smtp_conn_id": "smtp_default"}},
            {"AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(conn)}, first_run_timeout=args.first_run_timeout)
        print(f"standalone up and first sweep run done in {time.monotonic() - t0:.0f} s")
        db = root / "home" / "airflow.db"
        size0, rows0 = db_snapshot(db)
        runs0 = {r["run_id"] for r in runs_of(env)}
        members = [a["id"] for a in sb.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
        rng = random.Random(22)
        clients: dict[str, object] = {}
        lock = threading.Lock()
        put_at: dict[str, float] = {}
        failed: list[str] = []

        def put(k: int, account: str) -> None:
            with lock:
                if account not in clients:
                    clients[account] = sb.client("events", account_id=account)
            when = time.time()
            entry = clients[account].put_events(Entries=[candidate(k)])["Entries"][0]
            if "EventId" in entry:
                with lock:
                    put_at[entry["EventId"]] = when
            else:
                failed.append(entry.get("ErrorCode", "?"))

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = []
            for k in range(args.alerts):
                delay = start + k / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(put, k, rng.choice(members)))
            for f in futures:
                f.result()
        put_seconds = time.monotonic() - start
        print(f"put {len(put_at)} alert candidates ({len(failed)} refused) from {len(set(members))} member accounts "
              f"in {put_seconds:.0f} s ({len(put_at) / put_seconds:.2f}/s)")
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            if set(put_at) <= set(sink.first_seen) and not any(
                    r["state"] in ("queued", "running") for r in runs_of(env)):
                break
            time.sleep(5)
        size1, rows1 = db_snapshot(db)
        runs = [r for r in runs_of(env) if r["run_id"] not in runs0]
    finally:
        stop(proc)
        sb.stop()
        smtp.stop()
    stored = Store(str(root / "store")).read("events", schema=tables.EVENTS)
    ours = stored[stored["event_id"].isin(set(put_at))]
    lost = len(set(put_at) - set(ours["event_id"]))
    dups = len(ours) - ours["event_id"].nunique()
    latencies = [sink.first_seen[i] - put_at[i] for i in put_at if i in sink.first_seen]
    (root / "latencies.json").write_text(json.dumps(sorted(latencies)))
    n = len(put_at)
    print(f"runs: {len(runs)} ({sum(r['run_id'].startswith('asset_triggered__') for r in runs)} woken by the "
          f"watcher, {sum(r['state'] == 'success' for r in runs)} success); mails received: {sink.mails}")
    if latencies:
        print(f"put -> mail latency over {len(latencies)} of {n} events: p50 {percentile(latencies, 50):.1f} s, "
              f"p95 {percentile(latencies, 95):.1f} s, max {max(latencies):.1f} s (goal: p95 < 60 s)")
    print(f"events lost: {lost}; duplicates stored: {dups}; put but never named in a mail: {n - len(latencies)}")
    growth = {t: rows1.get(t, 0) - rows0.get(t, 0) for t in rows1}
    top = sorted(((v, t) for t, v in growth.items() if v), reverse=True)[:8]
    scale = 10000 / max(1, n)
    print(f"metadata DB: {size0 / 1e6:.2f} MB -> {size1 / 1e6:.2f} MB (+{(size1 - size0) / 1e6:.2f} MB for {n} "
          f"candidates = {(size1 - size0) * scale / 1e6:.1f} MB per 10,000, scaled from {n}; "
          f"{(size1 - size0) / max(1, len(runs)) / 1e3:.0f} kB per run); rows added: "
          + ", ".join(f"{t} {v} ({v * scale:,.0f}/10k)" for v, t in top))
    print("  (the growth follows the runs, not the events: a run adds the same XCom, task and log rows whether it "
          "stores 1 event or 1,000; no event body enters the DB, the wake messages carry only the event id)")
    return lost == 0 and dups == 0 and len(latencies) == n


# --- part 2: the hourly activity job --------------------------------------------------------------------------------
def activity_bench(args: argparse.Namespace) -> bool:
    accounts = [f"{100000000000 + i:012d}" for i in range(args.accounts)]
    regions = ["us-east-1", "eu-west-1", "ap-northeast-1", "us-west-2"][: args.regions]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        t0 = time.perf_counter()
        files, records, size = write_hour(s3, accounts, regions, args.calls_per_hour)
        print(f"wrote {files} files, {records} records, {size / 1e6:.1f} MB gzip'd in {time.perf_counter() - t0:.1f} s "
              f"({args.accounts} accounts x {len(regions)} region(s) x {args.calls_per_hour} calls/hour)")
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rows, stats = activity.read_hour(s3, BUCKET, accounts, regions, HOUR, workers=args.workers)
            t_read = time.perf_counter() - t0
            t0 = time.perf_counter()
            written = activity.store_hour(Store(tmp), HOUR, rows)
            t_store = time.perf_counter() - t0
    counted = int(rows["count"].sum())
    print(f"read_hour: {stats['files']} files, {stats['records']} records in {t_read:.1f} s "
          f"({stats['records'] / t_read:,.0f} records/s); store_hour: {written} rows in {t_store:.2f} s")
    print(f"counted {counted} of {records} records (lost {records - counted}); hourly job {t_read + t_store:.1f} s "
          f"(target: well under 3600 s)")
    return counted == records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000, help="accounts of the organization")
    parser.add_argument("--alerts", type=int, default=300, help="alert candidates to put")
    parser.add_argument("--rate", type=float, default=1.0, help="alert candidates put per second")
    parser.add_argument("--drain-timeout", type=int, default=300, help="seconds to wait for the mails after the puts")
    parser.add_argument("--first-run-timeout", type=int, default=1200,
                        help="seconds the first (sweep) run may take")
    parser.add_argument("--calls-per-hour", type=int, default=600, help="API calls per account, region and hour")
    parser.add_argument("--regions", type=int, default=1, help="trail regions in the activity part")
    parser.add_argument("--workers", type=int, default=16, help="threads reading log files")
    parser.add_argument("--port", type=int, default=8791, help="Airflow api-server port")
    parser.add_argument("--sandbox-port", type=int, default=5791)
    parser.add_argument("--smtp-port", type=int, default=8026)
    parser.add_argument("--root", type=Path, default=None, help="working directory (default: new /tmp/evbench-*)")
    parser.add_argument("--skip-standalone", action="store_true", help="only the activity part")
    parser.add_argument("--skip-activity", action="store_true", help="only the alerts part")
    args = parser.parse_args()
    ok = True
    if not args.skip_standalone:
        root = args.root or Path(tempfile.mkdtemp(prefix="evbench-"))
        print(f"working in {root}")
        ok = alerts_bench(args, root) and ok
    if not args.skip_activity:
        ok = activity_bench(args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

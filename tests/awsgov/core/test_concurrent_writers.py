"""Writers that add to the same store file at the same moment lose no row (issue #19, item 3), and a writer killed
mid-write (SIGKILL) leaves the store readable and exact.

The shared files are the alert ledger (``alert_ledger/dt=.../part-all``: metric anomaly alerts and the event alerts
of governance_events) and an account's anomalies (``anomalies/dt=.../part-<account>``: metric_anomaly_checks and the
activity checks of governance_events). The writers here are the real functions those tasks call
(``findings.merge_anomalies``, ``alert_ledger.record``), run in threads and in separate processes, and every row is
counted.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from include.awsgov.anomaly import findings as mf
from include.awsgov.core import alert_ledger, tables
from include.awsgov.core.store import STALE_TEMP_SECONDS, Store

DAY = dt.date(2026, 11, 20)
ACCOUNT = "111122223333"
THREADS, PROCESSES, WRITES = 4, 4, 12  # writers of each kind, and writes per writer
REPO = Path(__file__).resolve().parents[3]


def _anomaly(writer: str, n: int) -> dict:
    return {"anomaly_id": f"{writer}-{n}", "rule_id": "cpu_high", "kind": "static", "account_id": ACCOUNT,
            "region": "us-east-1", "namespace": "AWS/EC2", "metric_name": "CPUUtilization",
            "dimensions_json": "{}", "statistic": "Average",
            "timestamp": dt.datetime.combine(DAY, dt.time(12, n % 60), tzinfo=dt.UTC),
            "value": 99.0, "expected": 50.0, "lower": None, "upper": 90.0, "score": 1.0, "severity": "high",
            "reason": "Average > 90 in 1 of the last 1 periods of 5min"}


def _ledger(writer: str, n: int) -> dict:
    return {"alert_id": f"{writer}-{n}", "channel": "email", "account_id": ACCOUNT, "rule_id": "cpu_high",
            "severity": "high",
            "recipient": "owner@example.com", "subject": "s", "message_id": f"<{writer}.{n}@x>",
            "transport": "smtp", "status": "sent", "error": "", "sent_at": dt.datetime.now(dt.UTC),
            "day": DAY}


def write_many(store_url: str, writer: str, start: threading.Barrier | None = None) -> int:
    """One writer: WRITES merges of one new anomaly and WRITES ledger records, as the tasks do them."""
    store = Store(store_url)
    if start is not None:
        start.wait()
    for n in range(WRITES):
        mf.merge_anomalies(store, ACCOUNT, [_anomaly(writer, n)])
        alert_ledger.record(store, [_ledger(writer, n)])
    return WRITES


def test_concurrent_writers_in_threads_and_processes_lose_no_row(tmp_path):
    store_url = str(tmp_path / "store")
    Store(store_url).write("anomalies", DAY, pd.DataFrame([_anomaly("seed", 0)]), chunk=ACCOUNT,
                           schema=tables.ANOMALIES)
    barrier = threading.Barrier(THREADS)
    # spawn, not fork: the test process has threads (pyarrow's), which a fork would copy mid-lock.
    with cf.ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn")) as procs, \
            cf.ThreadPoolExecutor(THREADS) as threads:
        futures = [procs.submit(write_many, store_url, f"proc{i}") for i in range(PROCESSES)]
        futures += [threads.submit(write_many, store_url, f"thread{i}", barrier) for i in range(THREADS)]
        written = sum(f.result() for f in futures)
    store = Store(store_url)
    anomalies = store.read("anomalies", DAY, DAY, schema=tables.ANOMALIES)
    ledger = store.read("alert_ledger", DAY, DAY, schema=tables.ALERT_LEDGER)
    expected = (THREADS + PROCESSES) * WRITES
    assert written == expected == 96
    lost_anomalies = expected + 1 - len(anomalies)  # + the seed row
    lost_ledger = expected - len(ledger)
    print(f"\nconcurrent writers: {expected + 1} anomaly rows and {expected} ledger rows written by "
          f"{THREADS} threads + {PROCESSES} processes; lost {lost_anomalies} and {lost_ledger}")
    assert (lost_anomalies, lost_ledger) == (0, 0)
    assert anomalies["anomaly_id"].is_unique and ledger["alert_id"].is_unique


_KILLED_WRITER = """
import sys, pandas as pd
from include.awsgov.core import alert_ledger, tables
from include.awsgov.core.store import Store
store = Store(sys.argv[1])
rows = [{"account_id": "1", "region": f"r{i}", "source": "config", "status": "ok", "error": "x" * 200,
         "api_calls": i} for i in range(20000)]
n = 0
while True:
    n += 1
    for row in rows:
        row["api_calls"] = n
    store.write("coverage", "2026-11-20", pd.DataFrame(rows), chunk="a", schema=tables.COVERAGE)
    print(n, flush=True)
"""


def test_a_writer_killed_mid_write_leaves_the_store_readable_and_exact(tmp_path):
    store_url = str(tmp_path / "store")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, store_url], cwd=REPO, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        done = [int(proc.stdout.readline()) for _ in range(3)]  # three complete versions written
        folder = Path(Store(store_url).partition_path("coverage", DAY))
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".part-a") for p in folder.iterdir()):  # caught inside a write
            assert time.monotonic() < deadline, "the writer never showed a temporary"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    store = Store(store_url)
    frame = store.read("coverage", DAY, DAY, schema=tables.COVERAGE)
    # Exactly one whole version: every row of it, all from the same write, not older than the last one reported.
    assert len(frame) == 20000 and frame["api_calls"].nunique() == 1 and int(frame["api_calls"][0]) >= done[-1]
    pq.read_table(folder / "part-a.parquet")  # the file itself is whole
    leftovers = [p for p in folder.iterdir() if p.name.startswith(".part-a.parquet.tmp-")]
    if leftovers:  # killed between its temporary and the rename: the next write cleans it once it is stale
        old = time.time() - STALE_TEMP_SECONDS - 1
        for p in leftovers:
            os.utime(p, (old, old))
        store.write("coverage", DAY, frame.drop(columns=["dt"]), chunk="a", schema=tables.COVERAGE)
        assert not [p for p in folder.iterdir() if p.name.startswith(".part-a.parquet.tmp-")]

"""Metric fetching: GetMetricData calls and time per account, batching at scale, timestamp parsing cost.

Three figures:

1. **Sandbox, real calls**: every account of a local sandbox checked with the shipped rules over a 1-hour window
   (dynamic rules fetch 14 days of history): API calls by operation, datapoints, seconds per account, and the
   calls one GetMetricData per series would have made instead.
2. **Batching at scale (no network)**: how many GetMetricData calls ``plan_batches`` makes for N series, for an
   hourly static check and for 14 days of history (both API limits: 500 queries, 100,800 datapoints per call).
3. **Timestamp parsing**: botocore's default parser against ``metrics.utc_timestamp`` on one full page (100,800).

Usage: ``python bench/metric_fetch.py [--accounts 12]``. Prints figures only; never part of ``make test``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from include.awsgov.anomaly import metrics  # noqa: E402
from include.awsgov.anomaly.metrics import MAX_DATAPOINTS_PER_CALL, points  # noqa: E402


def sandbox_figures(accounts: int) -> None:
    """Check every account of a fresh sandbox and print calls, datapoints and time."""
    import tempfile

    from include.awsgov.anomaly import findings
    from include.awsgov.core.aws import AwsAccess
    from include.awsgov.core.store import Store
    from sandbox.runner import Sandbox
    from scripts.localenv import SANDBOX_KEY_ID, SANDBOX_SECRET

    ruleset = metrics.load_rules()
    with Sandbox(accounts=accounts).start() as sb, tempfile.TemporaryDirectory() as tmp:
        info = sb.info
        access = AwsAccess.from_args(endpoint_url=sb.endpoint, aws_access_key_id=SANDBOX_KEY_ID,
                                     aws_secret_access_key=SANDBOX_SECRET, external_id=info["external_id"])
        access.admin_id()
        anchor = dt.datetime.fromisoformat(sb.truth(sections=["metrics"])["metrics"]["anchor"])
        window = (anchor - dt.timedelta(hours=1), anchor)
        store = Store(tmp)
        ids = [info["management_account_id"], *[a["id"] for a in info["accounts"]]]
        timings, series, statuses = [], 0, Counter()
        started = time.perf_counter()
        for account_id in ids:
            t0 = time.perf_counter()
            summary = findings.check_account(access, store, ruleset, account_id, info["regions"], window)
            timings.append(time.perf_counter() - t0)
            series += summary["series"]
            statuses[summary["status"]] += 1
        total = time.perf_counter() - started
    fetched = {r.id: points(window[0] - r.lookback(), window[1], r.period) for r in ruleset.rules}
    print(f"sandbox: {len(ids)} accounts ({dict(statuses)}), {len(info['regions'])} regions, "
          f"{len(ruleset.rules)} rules, {series} rule series")
    print(f"  API calls: {dict(sorted(access.calls.items()))}")
    print(f"  GetMetricData calls: {access.calls['cloudwatch.GetMetricData']} "
          f"(one call per rule series would be {series})")
    print(f"  datapoints per series fetched: {sorted(set(fetched.values()))}")
    print(f"  time: {total:.1f}s total, {total / len(ids):.2f}s per account (max {max(timings):.2f}s)")


def scale_figures() -> None:
    """GetMetricData calls for many series, from the batch planner alone."""
    now = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    static = points(now - dt.timedelta(minutes=60 + 5 * 5 * 3), now, 300)
    dynamic = points(now - dt.timedelta(days=14, hours=1), now, 300)
    print("batching (GetMetricData calls per account and region, one page each):")
    for n in (25, 100, 500, 1200, 5000):
        calls_static = len(metrics.plan_batches([static] * n))
        calls_dynamic = len(metrics.plan_batches([dynamic] * n))
        print(f"  {n:>5} series: hourly static ({static} points) {calls_static:>4} calls; "
              f"14 days dynamic ({dynamic} points) {calls_dynamic:>4} calls")
    print(f"  series per dynamic call: {MAX_DATAPOINTS_PER_CALL // dynamic}")


def parse_figures() -> None:
    """Seconds to parse one full page of timestamps, botocore's way and ours."""
    from botocore.utils import parse_timestamp

    base = 1_700_000_000
    values = [base + 300 * i for i in range(MAX_DATAPOINTS_PER_CALL)]
    t0 = time.perf_counter()
    for v in values:
        parse_timestamp(v)
    botocore_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for v in values:
        metrics.utc_timestamp(v)
    ours = time.perf_counter() - t0
    print(f"timestamp parsing, one page of {MAX_DATAPOINTS_PER_CALL:,}: botocore {botocore_s:.2f}s, "
          f"utc_timestamp {ours:.2f}s ({botocore_s / ours:.0f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=12, help="sandbox member accounts")
    parser.add_argument("--no-sandbox", action="store_true", help="only the figures that need no sandbox")
    args = parser.parse_args()
    scale_figures()
    parse_figures()
    if not args.no_sandbox:
        sandbox_figures(args.accounts)
    return 0


if __name__ == "__main__":
    sys.exit(main())

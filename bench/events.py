"""Benchmark (part of issue #22's): the hourly activity job on one hour of CloudTrail log files of many accounts.

    python bench/events.py [--accounts 1000] [--calls-per-hour 600] [--regions 1] [--workers 16]

Writes one hour of log files into an in-process moto S3 bucket in AWS's key layout and format (one gzip'd
``{"Records": [...]}`` file per account, region and five-minute window, named by its delivery time), then times
``activity.read_hour`` (one ListObjectsV2 per account and region, the files read in ``--workers`` threads, records
counted) and ``activity.store_hour`` into a local store, as the DAG's ``check_activity`` does for one hour.

Rate: ``--calls-per-hour`` API calls (CloudTrail management events) per account and region, an assumption stated
here, not a published figure: 600 an hour (10 a minute) stands for an account with automation (deploy pipelines,
scanners, the governance read role itself); quiet accounts write far fewer, busy ones more. Change it to yours
(CloudTrail Lake or Athena: ``SELECT count(*) ... GROUP BY recipientaccountid, date_trunc('hour', eventtime)``).

Not measured here (see the report of issue #22): put -> mail latency and metadata DB growth through
``airflow standalone``; scripts/check_event_watcher.py runs that path for one event.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import sys
import tempfile
import time
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--calls-per-hour", type=int, default=600)
    parser.add_argument("--regions", type=int, default=1)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
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
    return 0 if counted == records else 1


if __name__ == "__main__":
    sys.exit(main())

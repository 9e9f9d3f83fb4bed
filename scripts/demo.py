"""`make demo`: the governance DAGs end to end, with the real Airflow (dag.test), on the local sandbox.

Starts a sandbox organization, onboards its two new accounts, collects several weeks of history (the sandbox's
clock is moved day by day, as if the daily DAG had been running), runs the anomaly checks, renders and sends the
weekly reports, and leaves in out/ what a person opens: HTML reports, the sent e-mails (.eml), a screenshot and the
collected data (Parquet). Nothing reaches real AWS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.localenv import REPO, VENV_BIN, airflow_env, migrate_db  # noqa: E402

log = logging.getLogger("demo")


def run_dag(dag_id: str, conf: dict | None = None, logical_date: dt.datetime | None = None) -> str:
    """Run one DAG with dag.test() and return its final state (raises if the file does not parse)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
    if bag.import_errors:
        raise SystemExit(f"{dag_id}: {bag.import_errors}")
    started = time.perf_counter()
    run = bag.get_dag(dag_id).test(run_conf=conf, logical_date=logical_date)
    state = str(run.state)
    print(f"  {dag_id} {json.dumps(conf or {})[:90]} -> {state} in {time.perf_counter() - started:.1f}s")
    return state


def history_days(today: dt.date, weeks: int) -> list[dt.date]:
    """Days to collect: one per week for the previous weeks (for trends), then every day of the last week."""
    weekly = [today - dt.timedelta(days=7 * w) for w in range(weeks, 1, -1)]
    daily = [today - dt.timedelta(days=d) for d in range(7, -1, -1)]
    return weekly + daily


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="output folder (replaced)")
    parser.add_argument("--accounts", type=int, default=12)
    parser.add_argument("--weeks", type=int, default=8, help="weeks of history to collect for the trends")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    out = (REPO / args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    home = REPO / ".airflow" / "demo"
    shutil.rmtree(home, ignore_errors=True)

    from sandbox.runner import Sandbox

    today = dt.datetime.now(dt.UTC).date()
    sb = Sandbox(accounts=args.accounts).start()
    try:
        info = sb.info
        print(f"sandbox: {info['endpoint']} management account {info['management_account_id']}, "
              f"{len(info['member_account_ids'])} member accounts")
        env = airflow_env(info, home, str(out / "store"), {"mail": {"transport": "ses"}})
        os.environ.update(env)
        migrate_db(env)

        dags = {p.stem for p in (REPO / "dags").glob("*.py")}
        states: dict[str, str] = {}

        if "account_onboarding" in dags:
            print("1. onboarding the two new accounts (StackSets, verification, inventory)")
            new = [a["id"] for a in info["accounts"] if not a["read_role"] and a["status"] == "ACTIVE"]
            conf = {
                "account_ids": new,
                "regions": ["us-east-1", "eu-west-1"],
                "owner_email": "new-team@example.com",
                "team": "Payments",
                "environment": "prod",
            }
            states["account_onboarding"] = run_dag("account_onboarding", conf)

        if "governance_collection" in dags:
            days = history_days(today, args.weeks)
            print(f"2. daily collection for {len(days)} days ({days[0]} .. {days[-1]}), "
                  "with a no-support-plan account and an access-denied account")
            members = [a["id"] for a in info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
            sb.set_faults(no_support_accounts=members[-1:], deny_assume_accounts=members[-2:-1])
            for day in days:
                sb.set_date(day.isoformat())
                states["governance_collection"] = run_dag("governance_collection", {"date": day.isoformat()})
            sb.clear_faults()
            sb.set_date(today.isoformat())

        if "metric_anomaly_checks" in dags:
            # Re-check last week's 168 hours, the week the report covers (the hourly schedule would have done it).
            week_start = today - dt.timedelta(days=today.weekday())
            end = dt.datetime.combine(week_start, dt.time(), dt.UTC)
            print("3. anomaly checks on CloudWatch metrics (static thresholds + learned detector), last week")
            states["metric_anomaly_checks"] = run_dag("metric_anomaly_checks", {"end": end.isoformat(), "hours": 168})

        if "governance_events" in dags and "account_onboarding" in dags:
            # Needs the central stack (bus -> SQS rule and queue) that onboarding deployed. dag.test() runs no
            # triggerer: the run drains the queue itself, as a manual run does (the AssetWatcher does it in Airflow).
            from scripts.events_demo import publish

            week_start = dt.datetime.combine(today - dt.timedelta(days=today.weekday() + 7), dt.time(), dt.UTC)
            sent = publish(sb, week_start)
            print(f"3b. {sent} events put in member accounts -> central bus -> SQS; governance_events stores, "
                  "routes (alerts mailed at once), dead-letters the poison and checks activity bursts")
            states["governance_events"] = run_dag("governance_events")

        if "weekly_compliance_report" in dags:
            print("4. weekly compliance reports, sent through SES, archived and written to out/")
            states["weekly_compliance_report"] = run_dag("weekly_compliance_report", {"out_dir": str(out)})
            reports = sorted(out.glob("reports/*.html"))
            if reports:
                subprocess.run([str(VENV_BIN / "python"), str(REPO / "scripts" / "screenshot.py"),
                                str(reports[0]), str(out / "report.png")], check=False)

        if "package_search" in dags and "governance_collection" in dags:
            print("5. package search over the collected SSM inventory: log4j older than 2.17.1, answer mailed")
            states["package_search"] = run_dag("package_search", {"pattern": "log4j*", "versions": "<2.17.1",
                                                                  "mail_to": "requester@example.com"})
            for answer in sorted((out / "store" / "package_search").glob("*/results.html")):
                print(f"  answer: {answer} (and results.csv)")
    finally:
        sb.stop()

    print("\nOutputs:")
    for pattern, what in [("reports/*.html", "HTML reports"), ("emails/*.eml", "sent e-mails"),
                          ("report.png", "screenshot"), ("store/*", "history store tables")]:
        found = sorted(out.glob(pattern))
        if found:
            print(f"  {what}: {len(found)} under {found[0].parent}")
    print(f"  open: {out / 'reports'}")
    failed = {k: v for k, v in states.items() if v != "success"}
    if failed:
        print(f"FAILED: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`: the governance DAGs end to end, with the real Airflow (dag.test), on the local sandbox.

Starts a sandbox organization, onboards its two new accounts, collects several weeks of history (the sandbox's
clock is moved day by day, as if the daily DAG had been running), runs the anomaly checks, renders and sends the
weekly reports, and leaves in out/ what a person opens: HTML reports, the sent e-mails (.eml), a screenshot and the
collected data (Parquet). Nothing reaches real AWS.

The terminal shows the steps, progress and a summary table; everything Airflow prints (task logs, the warnings and
tracebacks of the account denied on purpose) goes to out/logs/<dag_id>.log, the rest to out/logs/demo.log.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.localenv import REPO, VENV_BIN, airflow_env, migrate_db  # noqa: E402

log = logging.getLogger("demo")


@dataclass
class Outcome:
    """One DAG's runs in the demo: states, seconds, files it wrote under out/."""

    dag_id: str
    states: list[str] = field(default_factory=list)
    seconds: float = 0.0
    produced: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return bool(self.states) and all(state == "success" for state in self.states)

    def outcome(self) -> str:
        """The state of a single run, else the count of runs per state (``16 success``)."""
        counts = Counter(self.states)
        if len(counts) == 1 and len(self.states) == 1:
            return self.states[0]
        return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def snapshot(out: Path) -> dict[str, int]:
    """Every file under ``out`` (but logs/) with its modification time, to tell what a run wrote."""
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*")
            if p.is_file() and p.relative_to(out).parts[0] != "logs"}


def written(before: dict[str, int], after: dict[str, int]) -> Counter:
    """Files new or changed between two snapshots, counted per folder (``store/inventory``, ``reports``, ...)."""
    counts: Counter = Counter()
    for path, mtime in after.items():
        if before.get(path) != mtime:
            parts = Path(path).parts
            counts["/".join(parts[:2]) if parts[0] == "store" and len(parts) > 2 else parts[0]] += 1
    return counts


def describe(produced: Counter, limit: int = 3) -> str:
    """``store/inventory 16, reports 5, ...``: the biggest folders a DAG wrote to, then how many more."""
    top = produced.most_common()
    text = ", ".join(f"{folder} {n}" for folder, n in top[:limit])
    return f"{text}, +{len(top) - limit} more" if len(top) > limit else (text or "nothing under out/")


class Terminal:
    """The demo's two outputs: a rich console on the real terminal, and log files that take everything else.

    Airflow's task logs are written by handlers and child processes straight to file descriptors 1 and 2, so those
    are pointed at a log file (``to()``) while the console keeps a duplicate of the original terminal.
    """

    def __init__(self, logs: Path) -> None:
        from rich.console import Console

        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        self._term = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
        # Not a terminal (piped, CI): wide enough that the summary table keeps one line per DAG.
        self.console = Console(file=self._term, highlight=False, width=None if self._term.isatty() else 140)
        self._log = None
        self.redirect(logs / "demo.log")

    def redirect(self, path: Path) -> None:
        """Send fd 1 and 2 (print, logging, child processes) to ``path`` (appended)."""
        sys.stdout.flush()
        sys.stderr.flush()
        log = open(path, "ab")  # noqa: SIM115 - kept open as fd 1 and 2 until the next redirect
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        if self._log is not None:
            self._log.close()
        self._log = log

    @contextlib.contextmanager
    def to(self, path: Path) -> Iterator[None]:
        """Everything printed inside goes to ``path``; then back to demo.log."""
        self.redirect(path)
        try:
            yield
        finally:
            self.redirect(self.logs / "demo.log")

    def restore(self) -> None:
        """Give fd 1 and 2 back to the terminal (at exit)."""
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._term.fileno(), 1)
        os.dup2(self._term.fileno(), 2)
        if self._log is not None:
            self._log.close()
            self._log = None


def run_dag(dag_id: str, conf: dict | None = None, logical_date: dt.datetime | None = None) -> str:
    """Run one DAG with dag.test() and return its final state (raises if the file does not parse)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"=== {dag_id}: {path} does not import:\n{error}", flush=True)
        last = next(iter(bag.import_errors.values())).strip().splitlines()[-1]
        raise SystemExit(f"{dag_id}: the DAG file does not import ({last[:200]})")
    started = time.perf_counter()
    print(f"=== {dag_id} {json.dumps(conf or {})}", flush=True)
    run = bag.get_dag(dag_id).test(run_conf=conf, logical_date=logical_date)
    state = str(run.state)
    print(f"=== {dag_id} -> {state} in {time.perf_counter() - started:.1f}s", flush=True)
    return state


def history_days(today: dt.date, weeks: int) -> list[dt.date]:
    """Days to collect: one per week for the previous weeks (for trends), then every day of the last week."""
    weekly = [today - dt.timedelta(days=7 * w) for w in range(weeks, 1, -1)]
    daily = [today - dt.timedelta(days=d) for d in range(7, -1, -1)]
    return weekly + daily


def new_account_in(sb, ou_name: str) -> str:
    """Create an account through the sandbox's Organizations (which emits CreateAccountResult) and move it into an
    OU (MoveAccount), as an account vending process would; returns its id."""
    org = sb.client("organizations")
    name = f"vended-{int(time.time())}"
    account = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]["AccountId"]
    root = org.list_roots()["Roots"][0]["Id"]
    ou = next(o["Id"] for o in org.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]
              if o["Name"] == ou_name)
    org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
    return account


def onboarding_request(account: str) -> str:
    """The account_onboarding run governance_events requested for ``account``: run id, state and conf (dag.test()
    runs no scheduler: the run waits, queued, as it would until the scheduler starts it)."""
    from airflow.models.dagrun import DagRun

    from include.awsgov.events.new_accounts import RUN_ID_PREFIX

    runs = DagRun.find(dag_id="account_onboarding", run_id=f"{RUN_ID_PREFIX}{account}")
    if not runs:
        return "none"
    return f"{runs[0].run_id} ({runs[0].state}) conf {json.dumps(runs[0].conf, sort_keys=True)}"


class Demo:
    """Runs the steps: each DAG's output to its log file, a line per step on the console, outcomes for the table."""

    def __init__(self, out: Path, term: Terminal) -> None:
        self.out = out
        self.term = term
        self.outcomes: dict[str, Outcome] = {}

    def run(self, dag_id: str, conf: dict | None = None) -> str:
        """One dag.test() run, its output in out/logs/<dag_id>.log, its time and files added to the DAG's outcome."""
        outcome = self.outcomes.setdefault(dag_id, Outcome(dag_id))
        before = snapshot(self.out)
        started = time.perf_counter()
        with self.term.to(self.term.logs / f"{dag_id}.log"):
            state = run_dag(dag_id, conf)
        outcome.seconds += time.perf_counter() - started
        outcome.states.append(state)
        outcome.produced += written(before, snapshot(self.out))
        return state

    def step(self, title: str, dag_id: str, conf: dict | None = None, note: str = "") -> str:
        """A step of one run, shown with a spinner, then a line with its outcome."""
        with self.term.console.status(f"{title} ..."):
            state = self.run(dag_id, conf)
        self.done(title, dag_id, note)
        return state

    def done(self, title: str, dag_id: str, note: str = "") -> None:
        outcome = self.outcomes[dag_id]
        mark = "[green]ok[/]" if outcome.ok else "[red]FAILED[/]"
        self.term.console.print(f"{mark} {title} [dim]({outcome.seconds:.0f} s){note}[/]")

    def table(self):
        """The summary: DAG, outcome, time, what it wrote, log file."""
        from rich.table import Table

        table = Table(title="make demo: summary", title_justify="left")
        for column in ("DAG", "outcome", "time", "produced (files under out/)"):
            table.add_column(column, overflow="fold")
        for outcome in self.outcomes.values():
            style = "green" if outcome.ok else "red"
            table.add_row(outcome.dag_id, f"[{style}]{outcome.outcome()}[/]", f"{outcome.seconds:.0f} s",
                          describe(outcome.produced))
        return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="output folder (replaced)")
    parser.add_argument("--accounts", type=int, default=12)
    parser.add_argument("--weeks", type=int, default=8, help="weeks of history to collect for the trends")
    parser.add_argument("--airflow-home", default=".airflow/demo", help="AIRFLOW_HOME for the runs (replaced)")
    args = parser.parse_args()

    out = (REPO / args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    term = Terminal(out / "logs")
    run = Demo(out, term)
    logging.basicConfig(level=logging.WARNING)
    try:
        return demo(out, (REPO / args.airflow_home).resolve(), args, run)
    except BaseException as exc:
        log.exception("the demo stopped")
        if run.outcomes:
            term.console.print(run.table())
        term.console.print(f"[red]the demo stopped: {type(exc).__name__}: {str(exc)[:300]}[/] "
                           f"(details in {term.logs}/)")
        return 1
    finally:
        term.restore()


def demo(out: Path, home: Path, args: argparse.Namespace, run: Demo) -> int:
    """The steps of the demo (see the module docstring), each DAG's outcome kept in ``run``; returns the exit code."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    term = run.term
    console = term.console
    shutil.rmtree(home, ignore_errors=True)

    from sandbox.runner import Sandbox

    today = dt.datetime.now(dt.UTC).date()
    console.print(f"make demo: the governance DAGs on a local AWS sandbox; full logs in {term.logs}/")
    with console.status("starting the sandbox and Airflow's metadata DB ..."):
        sb = Sandbox(accounts=args.accounts).start()
    try:
        info = sb.info
        console.print(f"sandbox: {info['endpoint']} management account {info['management_account_id']}, "
                      f"{len(info['member_account_ids'])} member accounts")
        env = airflow_env(info, home, str(out / "store"), {"mail": {"transport": "ses"},
                                                              "report": {"out_dir": str(out)}})  # may hold copies
        os.environ.update(env)
        migrate_db(env)

        dags = {p.stem for p in (REPO / "dags").glob("*.py")}

        if "account_onboarding" in dags:
            new = [a["id"] for a in info["accounts"] if not a["read_role"] and a["status"] == "ACTIVE"]
            conf = {
                "account_ids": new,
                "regions": ["us-east-1", "eu-west-1"],
                "owner_email": "new-team@example.com",
                "team": "Payments",
                "environment": "prod",
            }
            run.step(f"1. onboarding the {len(new)} new accounts (StackSets, verification, inventory)",
                     "account_onboarding", conf)

        if "governance_collection" in dags:
            days = history_days(today, args.weeks)
            members = [a["id"] for a in info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
            sb.set_faults(no_support_accounts=members[-1:], deny_assume_accounts=members[-2:-1])
            title = f"2. daily collection for {len(days)} days ({days[0]} .. {days[-1]})"
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True, disable=not console.is_terminal) as progress:
                task = progress.add_task(title, total=len(days))
                for day in days:
                    sb.set_date(day.isoformat())
                    run.run("governance_collection", {"date": day.isoformat()})
                    progress.advance(task)
            run.done(title, "governance_collection")
            console.print(f"   on purpose: {members[-2]} denies the read role (skipped with a warning; "
                          f"traceback in logs/governance_collection.log); {members[-1]} has no support plan")
            sb.clear_faults()
            sb.set_date(today.isoformat())

        if "metric_anomaly_checks" in dags:
            # Re-check last week's 168 hours, the week the report covers (the hourly schedule would have done it).
            week_start = today - dt.timedelta(days=today.weekday())
            end = dt.datetime.combine(week_start, dt.time(), dt.UTC)
            run.step("3. anomaly checks on CloudWatch metrics (static thresholds + learned detector), last week",
                     "metric_anomaly_checks", {"end": end.isoformat(), "hours": 168})

        if "governance_events" in dags and "account_onboarding" in dags:
            # Needs the central stack (bus -> SQS rule and queue) that onboarding deployed. dag.test() runs no
            # triggerer: the run drains the queue itself, as a manual run does (the AssetWatcher does it in Airflow).
            from scripts.events_demo import publish

            week_start = dt.datetime.combine(today - dt.timedelta(days=today.weekday() + 7), dt.time(), dt.UTC)
            with term.to(term.logs / "governance_events.log"):
                sent = publish(sb, week_start)
            run.step(f"3b. {sent} events put in member accounts; the bus forwards the alert candidates -> SQS: stored, "
                     "routed, alerts mailed",
                     "governance_events")
            account = new_account_in(sb, "Prod")
            run.step(f"3c. account {account} created in the organization and moved into OU Prod: Organizations' "
                     "events -> SQS -> governance_events asks for its onboarding", "governance_events")
            console.print(f"   account_onboarding run requested: {onboarding_request(account)}")

        if "weekly_compliance_report" in dags:
            run.step("4. weekly compliance reports, sent through SES, archived and written to out/",
                     "weekly_compliance_report", {"out_dir": str(out)})
            reports = sorted(out.glob("reports/*.html"))
            if reports:
                subprocess.run([str(VENV_BIN / "python"), str(REPO / "scripts" / "screenshot.py"),
                                str(reports[0]), str(out / "report.png")], check=False)

        if "package_search" in dags and "governance_collection" in dags:
            run.step("5. package search over the collected SSM inventory: log4j older than 2.17.1, answer mailed",
                     "package_search", {"pattern": "log4j*", "versions": "<2.17.1", "mail_to": "requester@example.com"})
    finally:
        sb.stop()

    console.print(run.table())
    console.print("Outputs:")
    for pattern, what in [("reports/*.html", "HTML reports"), ("emails/*.eml", "sent e-mails"),
                          ("report.png", "screenshot"), ("store/*", "history store tables"),
                          ("store/package_search/*/results.html", "package search answers"),
                          ("logs/*.log", "full logs")]:
        found = sorted(out.glob(pattern))
        if found:
            console.print(f"  {what}: {len(found)} under {found[0].parent}")
    console.print(f"  open: {out / 'reports'}")
    failed = {o.dag_id: o.outcome() for o in run.outcomes.values() if not o.ok}
    if failed:
        console.print(f"[red]FAILED: {failed}[/] (see {term.logs}/<dag_id>.log)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

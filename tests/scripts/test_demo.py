"""Tests of scripts/demo.py's terminal output: Airflow's task logs go to out/logs/, the console keeps a few lines."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from scripts.demo import Outcome, describe, snapshot, written

REPO = Path(__file__).resolve().parents[2]

# What a dag.test() run does to the terminal: print, logging (as Airflow's task logs), a child process, a traceback.
NOISY_RUN = textwrap.dedent("""
    import logging, subprocess, sys
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from scripts.demo import Terminal

    term = Terminal(Path({logs!r}))
    logging.basicConfig(level=logging.WARNING)
    with term.to(term.logs / "governance_collection.log"):
        print("TASK-LOG-LINE")
        try:
            raise PermissionError("AccessDenied on purpose")
        except PermissionError:
            logging.getLogger("airflow.task").exception("TRACEBACK-OF-DENIED-ACCOUNT")
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('CHILD-STDERR')"], check=True)
    print("BETWEEN-RUNS")
    term.console.print("ok 2. daily collection")
    term.restore()
""")


def test_task_logs_and_tracebacks_go_to_log_files_not_the_terminal(tmp_path):
    logs = tmp_path / "logs"
    result = subprocess.run([sys.executable, "-c", NOISY_RUN.format(repo=str(REPO), logs=str(logs))],
                            capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.splitlines() == ["ok 2. daily collection"]
    assert result.stderr == ""
    dag_log = (logs / "governance_collection.log").read_text()
    for text in ("TASK-LOG-LINE", "TRACEBACK-OF-DENIED-ACCOUNT", "Traceback (most recent call last)", "CHILD-STDERR"):
        assert text in dag_log
    assert "BETWEEN-RUNS" in (logs / "demo.log").read_text()


def test_written_counts_new_and_changed_files_per_store_table(tmp_path):
    (tmp_path / "store" / "inventory" / "dt=2026-12-01").mkdir(parents=True)
    (tmp_path / "reports").mkdir()
    old = tmp_path / "store" / "inventory" / "dt=2026-12-01" / "a.parquet"
    old.write_bytes(b"1")
    before = snapshot(tmp_path)
    (tmp_path / "store" / "inventory" / "dt=2026-12-01" / "b.parquet").write_bytes(b"2")
    (tmp_path / "reports" / "org.html").write_text("<html></html>")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "demo.log").write_text("not a product")
    assert written(before, snapshot(tmp_path)) == Counter({"store/inventory": 1, "reports": 1})


def test_describe_names_the_biggest_folders_first():
    produced = Counter({"reports": 5, "store/inventory": 16, "emails": 6, "store/coverage": 2, "report.png": 1})
    assert describe(produced) == "store/inventory 16, emails 6, reports 5, +2 more"
    assert describe(Counter()) == "nothing under out/"


def test_outcome_counts_runs_per_state():
    many = Outcome("governance_collection", states=["success"] * 15 + ["failed"])
    assert many.outcome() == "1 failed, 15 success" and not many.ok
    assert Outcome("package_search", states=["success"]).outcome() == "success"


STOPPING_RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    sys.argv = ["demo.py", "--out", {out!r}]
    import scripts.demo as demo_script

    def stops(out, home, args, run):
        run.outcomes["account_onboarding"] = demo_script.Outcome("account_onboarding", ["success"], 41.0)
        print("TASK-LOG-LINE")
        raise SystemExit("governance_events: the DAG file does not import (ImportError: x)")

    demo_script.demo = stops
    sys.exit(demo_script.main())
""")


def test_a_stopped_demo_still_prints_the_table_and_one_line_why(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", STOPPING_RUN.format(repo=str(REPO), out=str(out))],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "account_onboarding" in result.stdout and "success" in result.stdout  # the summary table
    assert "the demo stopped: SystemExit: governance_events: the DAG file does not import" in result.stdout
    assert "TASK-LOG-LINE" not in result.stdout and "Traceback" not in result.stdout
    assert "Traceback" in (out / "logs" / "demo.log").read_text()
    assert len(result.stdout.splitlines()) < 15

"""weekly_compliance_report end to end: the real Airflow (dag.test) over a store prepared by the test.

SMTP through an Airflow SMTP connection to a real aiosmtpd server on loopback (send, then a rerun that sends
nothing); SES through the aws_default connection to the session sandbox, messages read back from moto's
``/moto-api/data.json``. The store is the scenario of tests/fixtures/report_store.py (several weeks, hostile values).
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import urllib.request

import pytest
import yaml

from tests.conftest import run_dag, task_states
from tests.fixtures import report_store as rs
from tests.fixtures.smtp_sink import SmtpSink

pytestmark = pytest.mark.e2e
DAG_ID = "weekly_compliance_report"


def _settings(tmp_path, **extra) -> dict:
    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text(yaml.safe_dump(rs.EXCEPTIONS))
    rs.scenario_copy(tmp_path / "store")
    return {**rs.SETTINGS, "store_url": str(tmp_path / "store"), **extra,
            "report": {"send_retry_seconds": 0, "exceptions_file": str(exceptions), "out_dir": str(tmp_path)}}


@pytest.fixture
def smtp_env(airflow_db, tmp_path, monkeypatch):
    """Airflow's awsgov_settings Variable and smtp_default connection pointing at a loopback aiosmtpd."""
    with SmtpSink() as sink:
        settings = _settings(tmp_path)
        # No AWS connection here: the change lookup (the only AWS reader) is switched off, so nothing leaves the host.
        settings["report"]["change_history"] = {"max_items": 0}
        monkeypatch.setenv("AIRFLOW_VAR_AWSGOV_SETTINGS", json.dumps(settings))
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
            "conn_type": "smtp", "host": sink.host, "port": sink.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10}}))
        yield sink, tmp_path


def test_smtp_run_sends_one_mail_per_owner_and_a_rerun_sends_none(smtp_env):
    sink, tmp_path = smtp_env
    out = tmp_path / "out"
    run = run_dag(DAG_ID, {"week": rs.WEEK, "out_dir": str(out)})
    assert str(run.state) == "success", task_states(run)
    assert task_states(run) == {"lookup_changes": "success", "build_reports": "success",
                                "send_reports[0]": "success", "send_org_summary": "success",
                                "check_run_outcome": "skipped"}
    assert len(sink.messages) == 6 and sink.connections == 2
    parsed = {m["X-Awsgov-Report"]: m for m in sink.parsed()}
    alice = parsed["alice-example-com-ff8d9819"]
    assert alice["Subject"] == "Payments, <script>alert(1)</script>: 1 new critical, 1 fixed, 2 overdue — 2026-W48"
    assert alice.get_body(("plain",)) is not None
    html = alice.get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    csv_part = [a for a in alice.iter_attachments()][0]
    assert csv_part.get_filename() == "findings-2026-W48.csv"
    rows = list(csv.reader(io.StringIO(csv_part.get_payload(decode=True).decode("utf-8-sig"))))
    assert len(rows) == 1 + 6  # header + alice's open findings, the one under exception included
    assert len(list((out / "reports").glob("*.html"))) == 7 and len(list((out / "emails").glob("*.eml"))) == 6

    again = run_dag(DAG_ID, {"week": rs.WEEK})
    assert str(again.state) == "success", task_states(again)
    assert len(sink.messages) == 6  # the ledger: nobody is mailed twice for a week
    assert task_states(again)["send_org_summary"] == "success"


def test_param_form_refuses_a_malformed_week(smtp_env):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="week"):
        run_dag(DAG_ID, {"week": "2026-48"})
    assert smtp_env[0].messages == []


def test_ses_run_against_the_sandbox(airflow_sandbox_env, sandbox, tmp_path, monkeypatch):
    settings = {**airflow_sandbox_env["settings"], **_settings(tmp_path, mail={**rs.SETTINGS["mail"],
                                                                             "transport": "ses"})}
    monkeypatch.setenv("AIRFLOW_VAR_AWSGOV_SETTINGS", json.dumps(settings))

    def sent() -> list[dict]:
        with urllib.request.urlopen(f"{sandbox.endpoint}/moto-api/data.json", timeout=10) as resp:  # noqa: S310
            messages = json.load(resp)["ses"].get("RawMessage", [])
        return [m for m in messages if f"X-Awsgov-Week: {rs.WEEK}" in m["raw_data"]]

    before = len(sent())
    run = run_dag(DAG_ID, {"week": rs.WEEK})
    assert str(run.state) == "success", task_states(run)
    mine = sent()[before:]
    assert len(mine) == 6 and {m["source"] for m in mine} == {"governance@example.com"}
    parsed = [email.message_from_string(m["raw_data"], policy=email.policy.default) for m in mine]
    assert {p["X-Awsgov-Report"] for p in parsed} >= {"alice-example-com-ff8d9819", "org-summary"}
    assert all(p.get_content_type() == "multipart/mixed" for p in parsed)
    from include.awsgov.core import tables
    from include.awsgov.core.store import Store

    ledger = Store(settings["store_url"]).read("send_ledger", schema=tables.SEND_LEDGER)
    assert set(ledger["transport"]) == {"ses"} and sorted(ledger["status"]) == ["refused"] + ["sent"] * 6
    assert set(ledger.loc[ledger["status"] == "sent", "message_id"]) == {m["id"] for m in mine}


def _run_fast(conf: dict, retries: int | None = None):
    """run_dag, with the retries of the DAG's tasks due at once (and ``retries`` of them, when given)."""
    from datetime import timedelta

    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import REPO

    dag = DagBag(dag_folder=str(REPO / "dags" / f"{DAG_ID}.py")).get_dag(DAG_ID)
    for t in dag.tasks:
        t.retry_delay = timedelta(0)
        t.retry_exponential_backoff = 0
        if retries is not None:
            t.retries = retries
    return dag.test(run_conf=conf)


def _tries(run) -> dict[str, int]:
    return {ti.task_id: ti.try_number for ti in run.get_task_instances()}


def test_a_retried_send_task_mails_no_report_twice(smtp_env):
    # One flaky address makes the batch fail its first try; Airflow's retry must send that one report only.
    sink, _ = smtp_env
    sink.flaky["alice@example.com"] = 4  # 451 more often than the 3 attempts of one try
    run = _run_fast({"week": rs.WEEK})
    assert str(run.state) == "success", task_states(run)
    assert _tries(run)["send_reports"] == 2
    seen = [(m["X-Awsgov-Report"], rcpt) for m, (_, rcpts, _) in zip(sink.parsed(), sink.messages, strict=True)
            for rcpt in rcpts]
    sent_twice = len(seen) - len(set(seen))
    assert sent_twice == 0 and len(sink.messages) == 6  # 5 owners (alice on the retry) + the org summary


def test_a_run_whose_reports_were_not_built_is_failed_not_green(smtp_env):
    sink, tmp_path = smtp_env
    # A findings file that cannot be read: build_reports fails every try (before: the run ended green).
    day = next((tmp_path / "store" / "ta_findings").glob("dt=*"))
    (day / "part-broken.parquet").write_bytes(b"not parquet")
    run = _run_fast({"week": rs.WEEK}, retries=1)
    states = task_states(run)
    assert str(run.state) == "failed", states
    assert (states["build_reports"], states["send_org_summary"], states["check_run_outcome"]) == (
        "failed", "skipped", "failed")
    assert _tries(run)["build_reports"] == 2 and sink.messages == []


def test_a_week_without_data_fails_at_once_without_retries(airflow_db, tmp_path, monkeypatch):
    # A fresh install catching up a week before any collection: a clear failure, not 4.5 minutes of retries.
    settings = {**_settings(tmp_path), "store_url": str(tmp_path / "empty-store")}
    settings["report"]["change_history"] = {"max_items": 0}
    monkeypatch.setenv("AIRFLOW_VAR_AWSGOV_SETTINGS", json.dumps(settings))
    run = run_dag(DAG_ID, {"week": rs.WEEK})  # the DAG's own retries (2) and delays: none may be used
    states = task_states(run)
    assert str(run.state) == "failed", states
    assert states["build_reports"] == "failed" and _tries(run)["build_reports"] == 1
    assert states["check_run_outcome"] == "failed"


@pytest.mark.parametrize("where", ["/tmp/elsewhere", "../outside", "inside/../../outside"])
def test_an_out_dir_outside_the_configured_folder_is_refused_before_any_work(smtp_env, where):
    sink, tmp_path = smtp_env
    run = run_dag(DAG_ID, {"week": rs.WEEK, "out_dir": where})
    states = task_states(run)
    assert str(run.state) == "failed", states
    assert states["lookup_changes"] == "failed" and states["build_reports"] == "failed"
    assert _tries(run)["lookup_changes"] == 1 and sink.messages == []
    assert not (tmp_path / "store" / "reports").exists()  # nothing built

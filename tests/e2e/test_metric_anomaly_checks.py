"""metric_anomaly_checks end to end: the real Airflow (dag.test) against a sandbox over HTTP.

The sandbox seeds 14 days of 5-minute CloudWatch series per account and injects a few anomalies (its truth API
says which, where and when). This module runs its own sandbox on a fixed date, so the series, and therefore what
the detector finds, are the same on every run (the session sandbox follows the wall clock). One DAG run checks
the window that holds all injected anomalies (the hours before the metrics anchor), then the same run again: the
second must add no row and send no mail. Alerts go through SES in the sandbox (moto), read back from its
``/moto-api/data.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import urllib.request

import pandas as pd
import pytest

from tests.conftest import AIRFLOW_HOME, run_dag, task_states

pytestmark = pytest.mark.e2e
SANDBOX_DATE = "2026-11-23"
# How long after an injected anomaly's start its first alert may come (level shifts and dips build up).
DETECTION_DELAY = dt.timedelta(minutes=30)


def _ses_alerts(endpoint: str) -> list[dict]:
    """Anomaly alerts SES accepted so far (identified by their header, whatever else the sandbox sent)."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as resp:  # noqa: S310 - loopback
        raw = json.load(resp).get("ses", {}).get("RawMessage", [])
    return [m for m in raw if "X-Awsgov-Alert: metric-anomaly" in m.get("raw_data", "")]


def _anomalies(store_url: str) -> pd.DataFrame:
    from include.awsgov.core.store import Store
    from include.awsgov.core.tables import ANOMALIES

    frame = Store(store_url).read("anomalies", schema=ANOMALIES)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


@pytest.fixture(scope="module")
def sandbox_fixed():
    """A sandbox of 12 members whose metrics end on a fixed date (deterministic series).

    9 readable members (4 with one injected anomaly each: spike, dip, level shift, short spike), 1 suspended,
    2 without the read role (denied); with the management account, 12 accounts are checked per run.
    """
    from sandbox.runner import Sandbox

    sb = Sandbox(accounts=12, date=SANDBOX_DATE).start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture(scope="module")
def checked(airflow_db, sandbox_fixed, tmp_path_factory):
    """Run the DAG over the window of every injected anomaly, twice; keep what each run left behind."""
    from scripts.localenv import airflow_env

    sandbox = sandbox_fixed
    truth = sandbox.truth(sections=["accounts", "metrics"])
    anchor = dt.datetime.fromisoformat(truth["metrics"]["anchor"])
    injected = truth["metrics"]["anomalies"]
    oldest = min(dt.datetime.fromisoformat(a["start"]) for a in injected)
    hours = math.ceil((anchor - oldest).total_seconds() / 3600) + 1
    conf = {"end": anchor.isoformat(), "hours": hours}
    store_url = str(tmp_path_factory.mktemp("anomalies") / "store")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in airflow_env(sandbox.info, AIRFLOW_HOME, store_url).items():
            if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AWS_")):
                mp.setenv(key, value)
        mails_before = len(_ses_alerts(sandbox.endpoint))
        first = run_dag("metric_anomaly_checks", conf)
        first_states = task_states(first)  # now: the next dag.test of this DAG replaces this run in the DB
        after_first = _anomalies(store_url)
        mails_first = _ses_alerts(sandbox.endpoint)[mails_before:]
        second = run_dag("metric_anomaly_checks", conf)
        after_second = _anomalies(store_url)
        mails_second = _ses_alerts(sandbox.endpoint)[mails_before + len(mails_first):]
    yield {"sandbox": sandbox, "truth": truth, "injected": injected,
           "window": (anchor - dt.timedelta(hours=hours), anchor), "first": first, "second": second,
           "first_states": first_states,
           "after_first": after_first, "after_second": after_second, "mails_first": mails_first,
           "mails_second": mails_second, "store_url": store_url}


def _expected_recipient(owner: str) -> str:
    """The Owner tag when it is a usable address, else the settings' governance address."""
    from include.awsgov.core.mail import InvalidRecipient, validate_address
    from include.awsgov.core.settings import load_settings

    try:
        return validate_address(owner.strip())
    except InvalidRecipient:
        return load_settings()["mail"]["governance_address"]


def _matches(row, anomaly) -> bool:
    start = pd.Timestamp(anomaly["start"])
    return (row["account_id"] == anomaly["account"] and row["region"] == anomaly["region"]
            and row["namespace"] == anomaly["namespace"] and row["metric_name"] == anomaly["metric"]
            and json.loads(row["dimensions_json"]) == anomaly["dimensions"]
            and start <= row["timestamp"] <= start + DETECTION_DELAY)


def test_every_task_succeeds_and_unreadable_accounts_are_recorded(checked):
    from include.awsgov.anomaly.findings import COVERAGE_TABLE
    from include.awsgov.core.store import Store
    from include.awsgov.core.tables import COVERAGE

    states = dict(checked["first_states"])
    assert str(checked["first"].state) == "success", states
    assert states.pop("check_run_outcome") == "skipped"  # nothing failed: the watcher had nothing to report
    assert all(s == "success" for s in states.values()), states
    members = {a["id"]: a for a in checked["truth"]["accounts"]}
    management = checked["truth"]["management_account_id"]
    coverage = Store(checked["store_url"]).read(COVERAGE_TABLE, schema=COVERAGE)
    status = coverage.groupby("account_id")["status"].agg(set).to_dict()
    # the management account is read with the admin credentials; members through the read role
    assert status.pop(management) == {"ok"}
    for account_id, statuses in status.items():
        expected = "ok" if members[account_id]["assumable"] else "access_denied"
        assert statuses == {expected}, (account_id, statuses)
    assert set(status) == {a for a, info in members.items() if info["status"] == "ACTIVE"}
    assert {"ok", "access_denied"} <= {s for statuses in status.values() for s in statuses}


def test_every_injected_anomaly_is_found(checked):
    found = checked["after_first"]
    for anomaly in checked["injected"]:
        hits = [r for r in found.to_dict("records") if _matches(r, anomaly)]
        assert hits, f"not found: {anomaly}"
        assert hits[0]["kind"] == "dynamic"
        # Each stored anomaly says why it fired, in words (the alert mail and the report show it).
        assert "than at any time in the last 28 days" in hits[0]["reason"] or "range" in hits[0]["reason"], hits[0]


def test_no_high_severity_anomaly_that_was_not_injected(checked):
    high = checked["after_first"][checked["after_first"]["severity"] == "high"]
    assert len(high), "the injected spikes should be high"
    for row in high.to_dict("records"):
        assert any(_matches(row, a) for a in checked["injected"]), f"unexpected high anomaly: {row}"


def test_owner_gets_one_alert_per_account_with_new_high_anomalies(checked):
    from include.awsgov.anomaly.metrics import load_rules

    accounts = {a["id"]: a for a in checked["truth"]["accounts"]}
    # Only anomalies within alerts.max_age_hours of the window's end are mailed; older ones go to the report.
    recent = checked["window"][1] - dt.timedelta(hours=load_rules().alerts["max_age_hours"])
    found = checked["after_first"]
    high_accounts = set(found.loc[(found["severity"] == "high") & (found["timestamp"] >= recent), "account_id"])
    assert high_accounts, "the injected spike of the last hour should be mailed"
    mails = checked["mails_first"]
    assert len(mails) == len(high_accounts)
    for account_id in high_accounts:
        mail = next(m for m in mails if f"X-Awsgov-Account: {account_id}" in m["raw_data"])
        assert set(mail["destinations"]) == {_expected_recipient(accounts[account_id]["tags"].get("Owner", ""))}


def test_rerun_adds_no_rows_and_sends_no_mail(checked):
    assert str(checked["second"].state) == "success"
    first, second = checked["after_first"], checked["after_second"]
    assert len(second) == len(first) == second["anomaly_id"].nunique()
    assert set(second["anomaly_id"]) == set(first["anomaly_id"])
    assert checked["mails_second"] == []


def test_unknown_rule_is_refused_before_any_aws_call(checked, monkeypatch):
    from scripts.localenv import airflow_env

    sandbox = checked["sandbox"]
    sandbox.reset_calls()
    for key, value in airflow_env(sandbox.info, AIRFLOW_HOME, checked["store_url"]).items():
        if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AWS_")):
            monkeypatch.setenv(key, value)
    run = run_dag("metric_anomaly_checks", {"rules": ["no_such_rule"]})
    states = task_states(run)
    assert str(run.state) == "failed"
    assert states["validate_rules"] == "failed"
    assert states["list_accounts"] == "upstream_failed"
    assert sum(r["count"] for r in sandbox.calls()["calls"]) == 0


def test_a_run_with_an_account_that_failed_is_failed_though_alerts_went_out(checked, monkeypatch):
    # send_alerts runs after a partial failure (trigger rule all_done_min_one_success); before, such a run was green.
    from datetime import timedelta

    from airflow.dag_processing.dagbag import DagBag

    from include.awsgov.anomaly import findings
    from scripts.localenv import airflow_env
    from tests.conftest import REPO

    sandbox = checked["sandbox"]
    for key, value in airflow_env(sandbox.info, AIRFLOW_HOME, checked["store_url"]).items():
        if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AWS_")):
            monkeypatch.setenv(key, value)
    readable = sorted(a["id"] for a in checked["truth"]["accounts"] if a["status"] == "ACTIVE" and a["assumable"])
    broken, fine = readable[:2]
    real = findings.check_account

    def check_account(access, store, ruleset, account_id, *args, **kwargs):
        if account_id == broken:
            raise RuntimeError("this account's check fails on every try")
        return real(access, store, ruleset, account_id, *args, **kwargs)

    monkeypatch.setattr(findings, "check_account", check_account)  # dag.test runs the tasks in this process
    dag = DagBag(dag_folder=str(REPO / "dags" / "metric_anomaly_checks.py")).get_dag("metric_anomaly_checks")
    for t in dag.tasks:
        t.retries, t.retry_delay = 0, timedelta(0)
    run = dag.test(run_conf={"accounts": [broken, fine], "hours": 1, "end": checked["window"][1].isoformat()})
    states = task_states(run)
    assert str(run.state) == "failed", states
    assert sorted(v for k, v in states.items() if k.startswith("check_account")) == ["failed", "success"]
    assert (states["send_alerts"], states["check_run_outcome"]) == ("success", "failed")

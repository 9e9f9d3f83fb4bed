"""The Airflow glue (include/awsgov/airflow_conn.py): what every DAG shares, read from Airflow's own connections."""

from __future__ import annotations

import json

import pytest

from include.awsgov import airflow_conn

TEST_SMTP = {"conn_type": "smtp", "host": "127.0.0.1", "port": 2525, "login": "bot", "password": "pw",
             "extra": {"disable_ssl": True}}


def test_smtp_params_read_the_settings_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", json.dumps(TEST_SMTP))
    smtp = airflow_conn.smtp_params({"mail": {"transport": "smtp", "smtp_conn_id": "alerts_smtp"}})
    assert smtp == {"host": "127.0.0.1", "port": 2525, "login": "bot", "password": "pw", "ssl": False,
                    "starttls": True, "timeout": 30.0}


def test_smtp_params_are_none_when_mail_goes_by_ses(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", json.dumps(TEST_SMTP))
    assert airflow_conn.smtp_params({"mail": {"transport": "ses", "smtp_conn_id": "alerts_smtp"}}) is None


@pytest.mark.parametrize(("extra", "port"), [
    pytest.param({}, 465, id="implicit-tls-port"),
    pytest.param({"disable_ssl": True}, 25, id="plain-or-starttls-port"),
])
def test_smtp_port_defaults_follow_the_tls_mode(monkeypatch, extra, port):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", json.dumps({"conn_type": "smtp", "host": "mail.example.com",
                                                               "extra": extra}))
    smtp = airflow_conn.smtp_params({"mail": {"transport": "smtp", "smtp_conn_id": "alerts_smtp"}})
    assert smtp["port"] == port and smtp["ssl"] is (port == 465)


def test_fail_now_fails_without_retry():
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="bad input"):
        airflow_conn.fail_now(ValueError("bad input"))


def test_the_pool_comes_from_the_settings_file():
    from include.awsgov.core.settings import load_settings

    assert airflow_conn.AWS_POOL == load_settings()["aws_pool"]

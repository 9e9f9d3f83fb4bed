"""Tests of scripts/airflow_local.py and scripts/localenv.py: what `make airflow` hands to `airflow standalone`."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from scripts import airflow_local
from scripts.localenv import VENV_BIN, airflow_env, venv_path

TEST_INFO = {"endpoint": "http://127.0.0.1:5055", "external_id": "ext-123", "management_account_id": "111111111111"}
TEST_PASSWORD = "s3cr3t-generated"  # noqa: S105 - a test value


def test_airflow_env_puts_venv_bin_first_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = airflow_env(TEST_INFO, tmp_path, "file:///store")
    assert env["PATH"].split(os.pathsep) == [str(VENV_BIN), "/usr/bin", "/bin"]


def test_standalone_env_finds_the_bare_airflow_command(tmp_path, monkeypatch):
    # airflow standalone starts `airflow scheduler` etc. by bare name: it must resolve to this virtualenv's airflow.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = airflow_local.standalone_env(TEST_INFO, tmp_path)
    assert shutil.which("airflow", path=env["PATH"]) == str(VENV_BIN / "airflow")
    assert env["AIRFLOW_HOME"] == str(tmp_path)


@pytest.mark.parametrize("path", [
    pytest.param("", id="empty"),
    pytest.param(f"/bin{os.pathsep}{VENV_BIN}", id="already-there"),
])
def test_venv_path_lists_venv_bin_once(path):
    entries = venv_path(path).split(os.pathsep)
    assert entries[0] == str(VENV_BIN) and entries.count(str(VENV_BIN)) == 1


def test_login_hint_prints_the_generated_password_on_later_starts(tmp_path):
    (tmp_path / airflow_local.PASSWORDS_FILE).write_text(json.dumps({"admin": TEST_PASSWORD}))
    hint = airflow_local.login_hint(tmp_path)
    assert f"admin / {TEST_PASSWORD}" in hint
    assert str(tmp_path / airflow_local.PASSWORDS_FILE) in hint


def test_login_hint_on_first_start_says_where_the_password_will_be(tmp_path):
    hint = airflow_local.login_hint(tmp_path)
    assert "prints it below" in hint and str(tmp_path / airflow_local.PASSWORDS_FILE) in hint

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


def _collected(store):
    part = store / airflow_local.COLLECTED_TABLE / "dt=2026-11-29"
    part.mkdir(parents=True)
    (part / "part-all.parquet").write_bytes(b"PAR1")
    return store


@pytest.fixture
def stores(tmp_path, monkeypatch):
    monkeypatch.setattr(airflow_local, "DEMO_STORE", tmp_path / "out" / "store")
    monkeypatch.setattr(airflow_local, "OWN_STORE", tmp_path / "data" / "store")
    return tmp_path


def test_the_demos_store_is_used_when_the_demo_filled_one(stores):
    _collected(stores / "out" / "store")
    store, hint = airflow_local.choose_store({})
    assert store == str(stores / "out" / "store")
    assert "make demo" in hint and store in hint


def test_without_a_demo_the_own_store_says_how_to_fill_it(stores):
    (stores / "out" / "store").mkdir(parents=True)  # a demo that collected nothing
    store, hint = airflow_local.choose_store({})
    assert store == str(stores / "data" / "store")
    assert "empty until a collection runs: trigger governance_collection" in hint


def test_awsgov_store_url_picks_another_store(stores):
    _collected(stores / "out" / "store")
    store, hint = airflow_local.choose_store({"AWSGOV_STORE_URL": str(stores / "mine")})
    assert store == str(stores / "mine") and "AWSGOV_STORE_URL" in hint


def test_standalone_env_points_the_settings_at_the_chosen_store(tmp_path):
    env = airflow_local.standalone_env(TEST_INFO, tmp_path, tmp_path / "store")
    assert json.loads(env["AIRFLOW_VAR_AWSGOV_SETTINGS"])["store_url"] == str(tmp_path / "store")

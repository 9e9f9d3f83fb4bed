"""Tests of plugins/onboarding_form.py: the api-server middleware that words a refused trigger plainly."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RAW = "Invalid input for param account_ids: '1' does not match '^\\\\d{12}\\\\Z'\n\nFailed validating 'pattern'"
TEST_GOOD = {"account_ids": ["123456789012"], "owner_email": "team@example.com", "team": "Payments",
             "environment": "prod"}


def _load_plugin():
    spec = importlib.util.spec_from_file_location("onboarding_form", REPO / "plugins" / "onboarding_form.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def client():
    """A stand-in for the api-server's trigger route: refuses like Airflow (first jsonschema error, HTTP 400)."""
    plugin = _load_plugin()
    app = FastAPI()

    @app.post("/api/v2/dags/{dag_id}/dagRuns")
    def trigger(dag_id: str, body: dict) -> dict:
        if body.get("conf", {}).get("account_ids") != ["123456789012"]:
            raise HTTPException(400, RAW)
        return {"dag_id": dag_id, "conf": body["conf"]}

    for entry in plugin.OnboardingFormPlugin.fastapi_root_middlewares:
        app.add_middleware(entry["middleware"], *entry["args"], **entry["kwargs"])
    return TestClient(app)


def test_refused_trigger_lists_every_field_in_plain_words(client):
    conf = {**TEST_GOOD, "account_ids": ["1"], "owner_email": "nobody", "environment": "qa"}
    resp = client.post("/api/v2/dags/account_onboarding/dagRuns", json={"conf": conf})
    assert resp.status_code == 400
    detail = resp.json()["detail"]
    assert detail.startswith("3 fields need fixing:")
    assert "Account ids: '1' is not in the expected form" in detail
    assert "Owner e-mail: 'nobody' is not an e-mail address" in detail
    assert "Environment: 'qa' is not one of prod, dev, sandbox" in detail
    assert "Failed validating" not in detail
    assert int(resp.headers["content-length"]) == len(resp.content)


def test_accepted_trigger_passes_through(client):
    resp = client.post("/api/v2/dags/account_onboarding/dagRuns", json={"conf": TEST_GOOD})
    assert resp.status_code == 200 and resp.json()["conf"] == TEST_GOOD


def test_other_dags_keep_airflows_refusal(client):
    resp = client.post("/api/v2/dags/package_search/dagRuns", json={"conf": {"account_ids": ["1"]}})
    assert resp.status_code == 400 and resp.json()["detail"] == RAW


def test_refusal_of_something_else_is_left_as_it_was():
    plugin = _load_plugin()
    other = json.dumps({"detail": "Dag with dag_id: 'account_onboarding' has import errors"}).encode()
    assert plugin.rewrite(b'{"conf": {}}', other) == other
    assert plugin.rewrite(b"not json", json.dumps({"detail": RAW}).encode()) == json.dumps({"detail": RAW}).encode()


# -- the real trigger dialog in a browser ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def onboarding_server(tmp_path_factory, airflow_db):
    """A real api-server with this repo's plugins and the account_onboarding DAG (serialized), no scheduler."""
    pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed")
    tmp = tmp_path_factory.mktemp("onboarding-form")
    home, dags = tmp / "airflow", tmp / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(REPO / "dags" / "account_onboarding.py", dags)
    with sqlite3.connect(airflow_db / "airflow.db") as src, sqlite3.connect(home / "airflow.db") as dst:
        src.backup(dst)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin", "AIRFLOW__API__PORT": str(port),
                "PYTHONPATH": str(REPO)})
    subprocess.run([str(VENV_BIN / "airflow"), "dags", "reserialize"], env=env, check=True, capture_output=True,
                   timeout=300)
    log = open(tmp / "api-server.log", "wb")  # noqa: SIM115 - closed in the teardown below
    proc = subprocess.Popen([str(VENV_BIN / "airflow"), "api-server", "--port", str(port), "--host", "127.0.0.1",
                             "--workers", "1", "--apps", "core"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5):  # noqa: S310 - loopback
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"api-server did not start: {(tmp / 'api-server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        yield {"base": base, "password": password, "tmp": tmp}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # our own session: the api-server and its worker
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.mark.e2e
def test_browser_trigger_form_says_what_is_wrong_with_each_field(onboarding_server):
    from playwright.sync_api import sync_playwright

    base = onboarding_server["base"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{base}/auth/login")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", onboarding_server["password"])
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
            page.goto(f"{base}/dags/account_onboarding")
            page.get_by_role("button", name="Trigger").first.click()
            dialog = page.get_by_role("dialog")
            # Optional fields (with a default) carry no required star; required ones do.
            assert dialog.locator("#element_regions").get_attribute("required") is None
            assert dialog.locator("#element_account_ids").get_attribute("required") is not None
            # Three bad fields, two good ones.
            dialog.locator("#element_account_ids").fill("12345")
            dialog.locator("#element_regions").fill("moon-1")
            dialog.locator("#element_owner_email").fill("nobody")
            dialog.locator("#element_team").fill("Payments")
            dialog.locator("input[name=element_environment]").locator("xpath=..").click()
            page.get_by_role("option", name="prod", exact=True).click()
            dialog.get_by_role("button", name="Trigger").click()
            message = dialog.get_by_text("3 fields need fixing:")
            message.wait_for(timeout=30_000)
            message.scroll_into_view_if_needed()
            text = dialog.inner_text()
            page.screenshot(path=str(onboarding_server["tmp"] / "trigger-form-refused.png"), full_page=True)
        finally:
            browser.close()
    assert "Account ids: '12345' is not in the expected form" in text
    assert "Regions: 'moon-1' is not in the expected form" in text
    assert "Owner e-mail: 'nobody' is not an e-mail address" in text
    assert "Failed validating" not in text

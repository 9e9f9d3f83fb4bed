"""Tests of plugins/onboarding_form.py: the api-server middleware that words a refused trigger plainly."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from tests.fixtures.airflow_server import CHROMIUM, api_server, logged_in_page

REPO = Path(__file__).resolve().parents[2]
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


@pytest.fixture(scope="module")
def onboarding_server(tmp_path_factory, airflow_db):
    """A real api-server with this repo's plugins and the account_onboarding DAG (serialized), no scheduler."""
    pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed")
    tmp = tmp_path_factory.mktemp("onboarding-form")
    dags = tmp / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "account_onboarding.py", dags)
    with api_server(tmp, airflow_db, dags, reserialize=True, start_seconds=90) as server:
        yield server


@pytest.mark.e2e
def test_browser_trigger_form_says_what_is_wrong_with_each_field(onboarding_server):
    base = onboarding_server["base"]
    with logged_in_page(base, onboarding_server["password"], {"width": 1400, "height": 1100}) as page:
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
    assert "Account ids: '12345' is not in the expected form" in text
    assert "Regions: 'moon-1' is not in the expected form" in text
    assert "Owner e-mail: 'nobody' is not an e-mail address" in text
    assert "Failed validating" not in text

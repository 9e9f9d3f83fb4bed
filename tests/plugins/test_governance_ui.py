"""Tests of plugins/governance_ui.py: the templates render escaped views, and the real Airflow api-server mounts
the app under /governance behind Airflow's authentication.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from include.awsgov.core import owners
from include.awsgov.report import posture
from tests.awsgov.report.test_posture import TEST_ACCT_A, TEST_ACCT_B, TEST_EVIL, TEST_OWNER_A, TEST_RUN_ID, seed_store
from tests.fixtures.airflow_server import CHROMIUM, api_server, logged_in_page

REPO = Path(__file__).resolve().parents[2]
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _load_plugin():
    spec = importlib.util.spec_from_file_location("governance_ui", REPO / "plugins" / "governance_ui.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _Req:
    """The little of a Starlette request the page renderer reads."""

    scope = {"root_path": "/governance"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return seed_store(tmp_path_factory.mktemp("gov-store"))


@pytest.fixture(scope="module")
def plugin():
    return _load_plugin()


def _body(resp) -> str:
    return resp.body.decode("utf-8")


def test_posture_page_escapes_hostile_values(plugin, store):
    html = _body(plugin._page(_Req(), "posture.html.j2", v=posture.org_posture(store)))
    assert TEST_EVIL not in html and "<img src=x" not in html
    assert EVIL_ESCAPED in html
    assert "<script" not in html
    assert html.count("<svg") >= 6 + 2 * 3  # six cards, red/yellow per TA category
    run = urllib.parse.quote(TEST_RUN_ID, safe="")
    assert f'href="/dags/governance_collection/runs/{run}" target="_top"' in html
    assert f'href="/governance/accounts/{TEST_ACCT_A}"' in html
    assert f'href="/governance/reports/2026-W48/{posture.ORG_SLUG}.html"' in html


def test_account_page_links_reports_and_onboarding(plugin, store):
    html = _body(plugin._page(_Req(), "account.html.j2", v=posture.account_view(store, TEST_ACCT_A)))
    slug = owners.slug(TEST_OWNER_A)
    assert f'href="/governance/reports/2026-W48/{slug}.html"' in html
    assert f'href="/governance/owners/{slug}"' in html
    assert "1.2.0" in html and "MFA on root" in html
    assert EVIL_ESCAPED in html and TEST_EVIL not in html
    assert "<td>Average &gt; 80 in 3 of the last 3 periods of 5min</td>" in html  # why the anomaly fired


def test_owner_page_escapes_owner_and_failures(plugin, store):
    slug = owners.slug(owners.canonical("bob@example.com;<img src=x onerror=alert(2)>"))
    html = _body(plugin._page(_Req(), "owner.html.j2", v=posture.owner_posture(store, slug)))
    assert "&lt;img src=x onerror=alert(2)&gt;" in html and "<img" not in html
    assert "verify_failed" in html and "eu-west-1: trail_logging" in html
    assert f"us-east-1: {EVIL_ESCAPED}" in html


def test_plugin_registers_app_and_nav_entry(plugin):
    (entry,) = plugin.GovernanceUiPlugin.fastapi_apps
    assert entry["url_prefix"] == "/governance" and entry["app"] is plugin.app
    # A React app, rendered by the UI itself: an external view's iframe sandbox blocks links into Airflow.
    assert [v["destination"] for v in plugin.GovernanceUiPlugin.external_views] == ["dag_run"]
    (view,) = plugin.GovernanceUiPlugin.react_apps
    assert view["name"] == "Governance" and view["bundle_url"] == "/governance/static/governance.js"
    assert view["url_route"] == "governance" and view["destination"] == "nav"


# -- the real api-server --------------------------------------------------------------------------------------------



def _get(url: str, headers: dict | None = None):
    """(status, headers, body) without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as resp:  # noqa: S310 - http to loopback
            return resp.status, resp.headers, resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory, airflow_db):
    """A real ``airflow api-server`` with this repo's plugins folder, pointed at a seeded store by the Variable."""
    tmp = tmp_path_factory.mktemp("gov-api")
    store = seed_store(tmp / "store")
    # As `make airflow` does (scripts/localenv.py): the store URL comes from the Variable awsgov_settings.
    env = {"AIRFLOW_VAR_AWSGOV_SETTINGS": json.dumps({"store_url": store.url})}
    with api_server(tmp, airflow_db, tmp / "no-dags", env=env) as running:
        base = running["base"]
        req = urllib.request.Request(f"{base}/auth/token", method="POST",  # noqa: S310 - http to loopback
                                     data=json.dumps({"username": "admin", "password": running["password"]}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - http to loopback
            token = json.loads(resp.read())["access_token"]
        yield {**running, "token": token}


@pytest.mark.e2e
def test_server_refuses_unauthenticated_requests(server):
    status, _, body = _get(f"{server['base']}/governance/")
    assert status == 401 and "Not authenticated" in body
    status, _, _ = _get(f"{server['base']}/governance/reports/2026-W48/{posture.ORG_SLUG}.html")
    assert status == 401
    status, _, _ = _get(f"{server['base']}/governance/", {"Authorization": "Bearer not-a-jwt"})
    assert status == 403


@pytest.mark.e2e
def test_server_sends_browsers_without_session_to_login(server):
    status, headers, _ = _get(f"{server['base']}/governance/", {"Accept": "text/html"})
    assert status == 303 and "/auth/login" in headers["Location"]


@pytest.mark.e2e
def test_server_serves_posture_with_token_and_cookie(server):
    status, headers, html = _get(f"{server['base']}/governance/", {"Authorization": f"Bearer {server['token']}"})
    assert status == 200, html
    assert "script-src" not in headers["Content-Security-Policy"] and "default-src 'none'" in headers[
        "Content-Security-Policy"]
    assert "Governance posture" in html and EVIL_ESCAPED in html and TEST_EVIL not in html
    assert f'href="/governance/accounts/{TEST_ACCT_B}"' in html
    # The UI's iframe carries the session cookie, not a bearer header.
    status, _, _ = _get(f"{server['base']}/governance/", {"Cookie": f"_token={server['token']}"})
    assert status == 200
    (server["tmp"] / "posture.html").write_text(html)


@pytest.mark.e2e
def test_server_drill_downs_and_archived_report(server):
    auth = {"Authorization": f"Bearer {server['token']}"}
    status, _, html = _get(f"{server['base']}/governance/accounts/{TEST_ACCT_A}", auth)
    assert status == 200 and "MFA on root" in html
    slug = owners.slug(TEST_OWNER_A)
    status, _, html = _get(f"{server['base']}/governance/owners/{slug}", auth)
    assert status == 200 and TEST_ACCT_A in html
    status, headers, html = _get(f"{server['base']}/governance/reports/2026-W48/{slug}.html", auth)
    assert status == 200 and html == "<p>report of alice W48</p>"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert _get(f"{server['base']}/governance/accounts/999999999999", auth)[0] == 404
    assert _get(f"{server['base']}/governance/reports/..%2F..%2Fetc/{slug}.html", auth)[0] == 404


@pytest.mark.e2e
def test_server_lists_nav_entry(server):
    status, _, body = _get(f"{server['base']}/api/v2/plugins", {"Authorization": f"Bearer {server['token']}"})
    assert status == 200
    plugin = next(p for p in json.loads(body)["plugins"] if p["name"] == "governance_ui")
    assert [v["destination"] for v in plugin["external_views"]] == ["dag_run"]
    assert plugin["react_apps"][0]["bundle_url"] == "/governance/static/governance.js"
    assert plugin["react_apps"][0]["nav_top_level"] is True
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/governance"


@pytest.mark.e2e
def test_server_serves_the_react_bundle_to_users_only(server):
    assert _get(f"{server['base']}/governance/static/governance.js")[0] == 401
    status, headers, body = _get(f"{server['base']}/governance/static/governance.js",
                                 {"Cookie": f"_token={server['token']}"})
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert "globalThis.AirflowPlugin = Governance" in body




@pytest.fixture
def browser_page(server):
    """A Playwright page in Debian's chromium, logged in to the test api-server through Airflow's login form."""
    pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed")
    with logged_in_page(server["base"], server["password"], {"width": 1400, "height": 1000}) as page:
        yield page


@pytest.mark.e2e
def test_browser_governance_links_lead_into_airflow(server, browser_page):
    page = browser_page
    page.goto(f"{server['base']}/plugin/governance")
    view = page.get_by_test_id("governance-view")
    # Rendered by the UI itself (no iframe); the page's own links stay in the view.
    view.get_by_role("heading", name="Governance posture").wait_for(timeout=60_000)
    assert page.locator("iframe").count() == 0
    view.get_by_role("link", name=TEST_ACCT_A).first.click()
    page.wait_for_url(f"**/plugin/governance/accounts/{TEST_ACCT_A}", timeout=30_000)
    view.get_by_text("MFA on root").wait_for(timeout=30_000)
    # Back on the posture page, a collection run's link opens Airflow's run page in the same tab.
    page.go_back()
    view.get_by_role("link", name=TEST_RUN_ID).click()
    run = urllib.parse.quote(TEST_RUN_ID, safe="")
    page.wait_for_url(f"{server['base']}/dags/governance_collection/runs/{run}", timeout=30_000)
    page.get_by_test_id("governance-view").wait_for(state="detached", timeout=30_000)  # Airflow's page replaced it
    # And the DAGs link of the view's navigation bar leads to Airflow's DAG list.
    page.goto(f"{server['base']}/plugin/governance")
    page.get_by_test_id("governance-view").get_by_role("link", name="DAGs", exact=True).click()
    page.wait_for_url(f"{server['base']}/dags", timeout=30_000)
    page.screenshot(path=str(server["tmp"] / "governance-to-dags.png"))


@pytest.mark.e2e
def test_browser_governance_view_follows_the_ui_language(server, browser_page):
    page = browser_page
    page.goto(f"{server['base']}/plugin/governance")
    page.get_by_test_id("governance-view").get_by_role("heading", name="Governance posture").wait_for(timeout=60_000)
    page.evaluate("localStorage.setItem('i18nextLng', 'ja')")  # what the UI's language switcher keeps
    page.reload()
    view = page.get_by_test_id("governance-view")
    view.get_by_role("heading", name="ガバナンスの概況").wait_for(timeout=60_000)
    view.get_by_text("スキャン済みアカウント").first.wait_for(timeout=30_000)
    assert view.get_by_text(TEST_EVIL).count() >= 1  # the hostile name shown as text, not run
    page.screenshot(path=str(server["tmp"] / "governance-ja.png"))


@pytest.mark.e2e
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")
def test_posture_page_screenshot(server):
    status, _, html = _get(f"{server['base']}/governance/", {"Authorization": f"Bearer {server['token']}"})
    assert status == 200
    page = server["tmp"] / "posture-shot.html"
    page.write_text(html)
    png = server["tmp"] / "posture.png"
    profile = server["tmp"] / "chromium-profile"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={profile}", "--window-size=1400,1600", f"--screenshot={png}", page.as_uri()],
                   check=True, capture_output=True, timeout=60)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.parametrize(("values", "drawn"), [
    pytest.param([None] * 7 + [4], False, id="one-point"),
    pytest.param([None] * 8, False, id="no-data"),
    pytest.param([None] * 6 + [3, 4], True, id="two-points"),
])
def test_sparkline_needs_two_weeks_of_history(plugin, values, drawn):
    macro = plugin.ENV.from_string('{% import "_macros.html.j2" as m %}{{ m.sparkline(values, "Gaps", weeks) }}')
    html = macro.render(values=values, weeks=[f"2026-W{w}" for w in range(41, 49)])
    assert ("<svg" in html) is drawn
    assert ("not enough history yet" in html) is not drawn


TEST_SEARCH_ID = "manual__2026-12-06T10_00_00_00_00"
TEST_SEARCH_RUN = "manual__2026-12-06T10:00:00+00:00"


@pytest.fixture
def search_store(tmp_path):
    from include.awsgov.core.store import Store

    store = Store(str(tmp_path / "store"))
    base = f"package_search/{TEST_SEARCH_ID}"
    store.put_text(f"{base}/query.json", json.dumps({
        "query": {"pattern": f"log4j{TEST_EVIL}", "versions": "<2.17.1"},
        "summary": {"instances": 3, "accounts": 2, "day": "2026-12-05"}}))
    store.put_text(f"{base}/results.html", "<p>answer</p>")
    store.put_bytes(f"{base}/results.csv", b"account_id,instance_id\n111111111111,i-1\n")
    store.put_text(f"{base}/mail.json", json.dumps({"status": "sent", "to": "requester@example.com"}))
    return store


def test_searches_page_lists_past_answers_escaped(plugin, search_store, monkeypatch):
    monkeypatch.setattr(plugin, "_store", lambda: search_store)
    html = _body(plugin.searches_page(_Req()))
    assert "3 instance(s) in 2 account(s)" in html and "&lt;2.17.1" in html and "sent" in html
    assert f'href="/governance/searches/{TEST_SEARCH_ID}/results.html"' in html
    assert f'href="/governance/searches/{TEST_SEARCH_ID}/results.csv"' in html
    assert EVIL_ESCAPED in html and TEST_EVIL not in html


def test_run_page_shows_a_package_search_runs_answer(plugin, search_store, monkeypatch):
    monkeypatch.setattr(plugin, "_store", lambda: search_store)
    html = _body(plugin.run_page(_Req(), "package_search", TEST_SEARCH_RUN))
    assert "Package search answer" in html and "3 instance(s) in 2 account(s)" in html
    other = _body(plugin.run_page(_Req(), "governance_collection", "scheduled__x"))
    assert "holds nothing for runs of governance_collection" in other


def test_search_answer_serves_html_and_csv_and_refuses_other_paths(plugin, search_store, monkeypatch):
    from fastapi import HTTPException

    monkeypatch.setattr(plugin, "_store", lambda: search_store)
    answer = plugin.search_answer(TEST_SEARCH_ID, "html")
    assert answer.body == b"<p>answer</p>" and "default-src 'none'" in answer.headers["Content-Security-Policy"]
    assert plugin.search_answer(TEST_SEARCH_ID, "csv").media_type == "text/csv"
    for sid, kind in (("..", "html"), (TEST_SEARCH_ID, "json"), ("nope", "html")):
        with pytest.raises(HTTPException) as caught:
            plugin.search_answer(sid, kind)
        assert caught.value.status_code == 404


def test_views_are_cached_then_recomputed(plugin, monkeypatch):
    calls = []
    assert plugin._cached(("t", 1), lambda: calls.append(1) or len(calls)) == 1
    assert plugin._cached(("t", 1), lambda: calls.append(1) or len(calls)) == 1
    monkeypatch.setattr(plugin, "CACHE_SECONDS", 0)
    assert plugin._cached(("t", 1), lambda: calls.append(1) or len(calls)) == 2


class _JaReq(_Req):
    """A request from the Airflow UI set to Japanese (the React app sends its language)."""

    headers = {"accept-language": "ja"}


@pytest.mark.parametrize(("header", "lang"), [
    pytest.param("ja", "ja", id="ui-language"),
    pytest.param("ja-JP,ja;q=0.9,en;q=0.8", "ja", id="browser-japanese"),
    pytest.param("en-US,en;q=0.9,ja;q=0.8", "en", id="browser-english-first"),
    pytest.param("fr-FR,de;q=0.5", "en", id="unsupported"),
    pytest.param("ja<script>", "en", id="hostile"),
    pytest.param(None, "en", id="none"),
])
def test_page_language_from_accept_language(plugin, header, lang):
    assert plugin._language(header) == lang


def test_posture_page_in_japanese_keeps_values_escaped(plugin, store):
    resp = plugin._page(_JaReq(), "posture.html.j2", v=posture.org_posture(store))
    html = _body(resp)
    assert '<html lang="ja">' in html and resp.headers["content-language"] == "ja"
    for label in ("ガバナンスの概況", "スキャン済みアカウント", "収集できなかった範囲", "Config 準拠率", "所有者",
                  "オンボーディング"):
        assert label in html, label
    assert "Governance posture" not in html and "Accounts covered" not in html
    assert EVIL_ESCAPED in html and TEST_EVIL not in html and "<script" not in html


def test_account_page_in_japanese(plugin, store):
    html = _body(plugin._page(_JaReq(), "account.html.j2", v=posture.account_view(store, TEST_ACCT_A)))
    assert f"アカウント {TEST_ACCT_A}" in html and "非準拠の Config ルール" in html and "週次レポート" in html
    assert EVIL_ESCAPED in html and TEST_EVIL not in html

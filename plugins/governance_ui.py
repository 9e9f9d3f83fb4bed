"""Governance pages inside the Airflow UI: organization posture, per-account and per-owner drill-down, onboarding.

A FastAPI app mounted by the api-server under ``/governance`` (Airflow 3 plugin ``fastapi_apps``) and shown in the
UI's navigation as "Governance" (``react_apps``: governance_ui/static/governance.js, a small component rendered by the
UI itself). Pages are server-rendered from the history store (include/awsgov/report/posture.py computes the figures)
with Jinja autoescape on; the pages carry no JavaScript and no external assets. The React app shows them natively
(not in an ``external_views`` iframe, whose sandbox has no ``allow-top-navigation`` and so swallows every link into
Airflow) and routes their links: Governance pages stay in the view, DAG and run links go through the UI's router.
Airflow mounts plugin apps without any authentication, so every route here depends on :func:`require_user`, which
applies Airflow's own check (the JWT from the Authorization header or the UI's session
cookie, as the core API does) and asks the auth manager whether the user may view the website.

Pages come in the reader's language (English or Japanese; the same catalogue as the e-mail reports,
include/templates/locale): the React app asks for the Airflow UI's language, a browser opening the pages directly sends
its own (``Accept-Language``); anything else is English.

With ``make airflow``: the "Governance" entry of the UI's navigation (``http://localhost:8080/plugin/governance``),
or the bare pages at ``http://localhost:8080/governance/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

log = logging.getLogger(__name__)

URL_PREFIX = "/governance"
TEMPLATES_DIR = Path(__file__).resolve().parent / "governance_ui" / "templates"
# The React app's bundle: plain JavaScript on the UI's own React (no build step), served by the app below.
BUNDLE = Path(__file__).resolve().parent / "governance_ui" / "static" / "governance.js"
# DAGs whose runs produce what the pages show (links into the Airflow UI).
DAG_IDS = {"collection": "governance_collection", "onboarding": "account_onboarding",
           "anomalies": "metric_anomaly_checks", "report": "weekly_compliance_report", "search": "package_search"}
# Past package searches listed on the searches page, newest first.
SEARCHES_SHOWN = 200
# Views are recomputed at most once a minute (the collection writes once a day); at most this many are kept.
CACHE_SECONDS = 60
CACHE_ENTRIES = 64
# Served pages and archived reports: no script at all, styles inline, images only inline (data:) or none.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; base-uri 'none'"


async def require_user(request: Request) -> None:
    """Refuse the request unless Airflow authenticates the user and lets them view the website.

    Uses Airflow's core API dependency (``get_user``: bearer token first, then the UI's JWT cookie), imported
    here rather than at module level so that loading the plugin in schedulers and workers stays cheap.

    :param request: the incoming request.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials
    from fastapi.security.utils import get_authorization_scheme_param

    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    creds = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if scheme and token else None
    user = await get_user(request, None, creds)
    if not get_auth_manager().is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        raise HTTPException(status_code=403, detail="Forbidden")


def _settings() -> dict[str, Any]:
    """Settings with the Airflow Variable ``awsgov_settings`` applied (env AWSGOV_STORE_URL still wins)."""
    from include.awsgov.core.settings import load_settings

    overrides = None
    try:
        # The api-server has the metadata DB (and secrets backends) at hand; the SDK's Variable is for tasks.
        from airflow.models import Variable

        overrides = Variable.get("awsgov_settings", default_var=None, deserialize_json=True)  # noqa: AIR311
    except Exception as exc:  # noqa: BLE001 - no DB or a malformed Variable must not take the page down
        # The exception's type only: its message may quote the Variable's value.
        log.warning("governance_ui: Variable awsgov_settings unreadable (%s), using defaults", type(exc).__name__)
    return load_settings(overrides)


def _store():
    from include.awsgov.core.store import Store

    return Store(_settings()["store_url"])


_cache: dict[tuple, tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def _cached(key: tuple, compute: Callable[[], Any]) -> Any:
    """``compute()``, remembered for CACHE_SECONDS: a page reads one file per account, table and week.

    :param key: what identifies the view (its kind, the store URL and its argument).
    :param compute: builds the view.
    """
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    value = compute()
    with _cache_lock:
        _cache[key] = (now, value)
        for old in sorted(_cache, key=lambda k: _cache[k][0])[: max(len(_cache) - CACHE_ENTRIES, 0)]:
            del _cache[old]
    return value


def _spark(values: list[Any], kind: str = "n") -> dict[str, Any]:
    """Sparkline geometry on a scale from 0 (to 100 for percentages), so a flat series is not drawn as a low."""
    from include.awsgov.core.render import spark

    return spark(values, 120, 24, 0, 100 if kind == "pct" else None)


def _fmt(value: Any, kind: str = "n", missing: str = "n/a") -> str:
    """``n/a`` (``missing``) for missing values, ``87.5%`` for percentages, the number otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if kind == "pct":
        return f"{float(value):.1f}%".replace(".0%", "%")
    return str(value)


def _when(value: Any, lang: str = "en") -> str:
    from include.awsgov.core.render import timestamp

    return timestamp(value, lang)


def _date(value: Any, lang: str = "en") -> str:
    from include.awsgov.core.render import date

    return date(value, lang)


def _environment(lang: str = "en") -> jinja2.Environment:
    """The pages' environment in one language (English: the templates' own text, nothing to load)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             extensions=["jinja2.ext.i18n"])
    env.policies["ext.i18n.trimmed"] = True
    if lang == "en":
        env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
        missing = "n/a"
    else:
        from include.awsgov.core import i18n

        translations = i18n.translations(lang)
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
        missing = translations.gettext("n/a")
    env.filters.update({"spark": _spark, "fmt": functools.partial(_fmt, missing=missing),
                        "when": functools.partial(_when, lang=lang), "date": functools.partial(_date, lang=lang),
                        "q": lambda v: quote(str(v), safe="")})
    env.globals["lang"] = lang
    return env


ENV = _environment()
_envs = {"en": ENV}


def _language(header: str | None) -> str:
    """The first supported language an ``Accept-Language`` header names (order as sent; the React app sends the
    Airflow UI's language alone), else English. Only the supported codes are ever used (i18n.language).

    :param header: the header's value.
    """
    if not header:
        return "en"
    from include.awsgov.core import i18n

    for part in header.split(",")[:20]:
        lang = i18n.language(part.split(";")[0].strip())
        if lang:
            return lang
    return "en"


def _env_for(lang: str) -> jinja2.Environment:
    if lang not in _envs:
        _envs[lang] = _environment(lang)
    return _envs[lang]


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    base = request.scope.get("root_path", "").rstrip("/")
    airflow = base[: -len(URL_PREFIX)] if base.endswith(URL_PREFIX) else ""
    headers = getattr(request, "headers", None) or {}
    env = _env_for(_language(headers.get("accept-language")))
    html = env.get_template(template).render(base=base, airflow=airflow, dags=DAG_IDS,
                                             now=dt.datetime.now(dt.UTC), **context)
    return HTMLResponse(html, headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                       "Content-Language": env.globals["lang"], "Vary": "Accept-Language"})


app = FastAPI(title="Governance", dependencies=[Depends(require_user)], docs_url=None, redoc_url=None,
              openapi_url=None)


@app.exception_handler(HTTPException)
async def _http_error(request: Request, exc: HTTPException) -> Response:
    """Send browsers without a session to Airflow's login page; API clients get the status code."""
    if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


@app.get("/", response_class=HTMLResponse)
def posture_page(request: Request) -> HTMLResponse:
    """The organization's posture, its 8-week trends, accounts, owners, onboarding and recent runs."""
    from include.awsgov.report import posture

    store = _store()
    return _page(request, "posture.html.j2", v=_cached(("org", store.url), lambda: posture.org_posture(store)))


@app.get("/accounts/{account_id}", response_class=HTMLResponse)
def account_page(request: Request, account_id: str) -> HTMLResponse:
    """One account: figures and trends, open red/yellow checks, non-compliant rules, anomalies, onboarding."""
    from include.awsgov.report import posture

    store = _store()
    view = _cached(("account", store.url, account_id), lambda: posture.account_view(store, account_id))
    if view is None:
        raise HTTPException(status_code=404, detail="unknown account")
    return _page(request, "account.html.j2", v=view)


@app.get("/owners/{slug}", response_class=HTMLResponse)
def owner_page(request: Request, slug: str) -> HTMLResponse:
    """One owner: their accounts, figures and trends, and their archived weekly reports."""
    from include.awsgov.report import posture

    store = _store()
    view = _cached(("owner", store.url, slug), lambda: posture.owner_posture(store, slug))
    if view is None:
        raise HTTPException(status_code=404, detail="unknown owner")
    return _page(request, "owner.html.j2", v=view)


@app.get("/reports/{week}/{slug}.html", response_class=HTMLResponse)
def archived_report(week: str, slug: str) -> HTMLResponse:
    """An archived weekly report from the store, under a no-script Content-Security-Policy."""
    from include.awsgov.report import posture

    store = _store()
    path = posture.report_path(week, slug)
    if path is None or not store.exists(path):
        raise HTTPException(status_code=404, detail="no such report")
    return HTMLResponse(store.get_text(path), headers={"Content-Security-Policy": CSP,
                                                        "X-Content-Type-Options": "nosniff"})


def _searches(store) -> list[dict[str, Any]]:
    """Past package_search answers in the store (``package_search/<sid>/query.json``), newest first."""
    import json

    from include.awsgov.software.search import PREFIX

    found = []
    for path in store.fs.glob(store.path(PREFIX, "*", "query.json")):
        sid = path.rstrip("/").split("/")[-2]
        try:
            doc = json.loads(store.get_text(f"{PREFIX}/{sid}/query.json"))
            mtime = store.fs.info(path).get("mtime") or store.fs.info(path).get("LastModified")
        except (OSError, ValueError) as exc:
            log.warning("governance_ui: search %s unreadable (%s)", sid, type(exc).__name__)
            continue
        mailed = None
        if store.exists(f"{PREFIX}/{sid}/mail.json"):
            with contextlib.suppress(OSError, ValueError):
                mailed = json.loads(store.get_text(f"{PREFIX}/{sid}/mail.json"))
        found.append({"sid": sid, "query": doc.get("query", {}), "summary": doc.get("summary", {}),
                      "mailed": mailed, "when": _stamp(mtime)})
    found.sort(key=lambda s: (s["when"] is None, s["when"]), reverse=True)
    return found[:SEARCHES_SHOWN]


def _stamp(value: Any) -> dt.datetime | None:
    """A file's modification time (epoch seconds or datetime, as fsspec gives it) as an aware datetime."""
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return value if isinstance(value, dt.datetime) else None


@app.get("/searches", response_class=HTMLResponse)
def searches_page(request: Request) -> HTMLResponse:
    """Past package searches: query, answer summary, links to the answer, the CSV and the Airflow run."""
    store = _store()
    return _page(request, "searches.html.j2", searches=_cached(("searches", store.url), lambda: _searches(store)))


@app.get("/searches/{sid}/results.{kind}")
def search_answer(sid: str, kind: str) -> Response:
    """One search's answer as the DAG archived it: ``results.html`` (no-script CSP) or ``results.csv``."""
    from include.awsgov.software.search import PREFIX, check_search_id

    try:
        check_search_id(sid)
    except ValueError:
        raise HTTPException(status_code=404, detail="no such search") from None
    store = _store()
    path = f"{PREFIX}/{sid}/results.{kind}"
    if kind not in ("html", "csv") or not store.exists(path):
        raise HTTPException(status_code=404, detail="no such search")
    if kind == "csv":
        return Response(store.get_bytes(path), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="package-search-{sid}.csv"',
                                 "X-Content-Type-Options": "nosniff"})
    return HTMLResponse(store.get_text(path), headers={"Content-Security-Policy": CSP,
                                                       "X-Content-Type-Options": "nosniff"})


@app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, dag_id: str, run_id: str) -> HTMLResponse:
    """What the Governance view holds for one DAG run (the run page's "Governance" tab): a package search's answer."""
    from include.awsgov.software.search import PREFIX, search_id

    store = _store()
    sid = search_id(run_id) if dag_id == DAG_IDS["search"] else None
    found = sid is not None and store.exists(f"{PREFIX}/{sid}/query.json")
    search = next((s for s in _searches(store) if s["sid"] == sid), None) if found else None
    return _page(request, "run.html.j2", dag_id=dag_id, run_id=run_id, search=search)


@app.get("/static/governance.js")
def react_bundle() -> Response:
    """The React app's module (loaded by the Airflow UI with the user's session, like the pages)."""
    return Response(BUNDLE.read_text(encoding="utf-8"), media_type="text/javascript",
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})


class GovernanceUiPlugin(AirflowPlugin):
    """Registers the Governance app and its navigation entry."""

    name = "governance_ui"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Governance"}]
    # Top-level nav entry; the UI renders the component at /plugin/governance/<page path>.
    react_apps = [{"name": "Governance", "bundle_url": f"{URL_PREFIX}/static/governance.js", "destination": "nav",
                   "url_route": "governance", "nav_top_level": True}]
    # A tab on every DAG run's page: a package_search run's answer (other runs say there is nothing for them).
    # An iframe is enough there: the tab shows the answer; its links to Governance pages open in the tab.
    external_views = [{"name": "Governance", "href": f"{URL_PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}",
                       "destination": "dag_run", "url_route": "governance-run"}]

"""Rendering on store data: sections and counts present, every hostile value escaped, mail-client-safe HTML."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import markupsafe
import pytest

from include.awsgov.core import render
from include.awsgov.report import suppressions, week
from include.awsgov.report import views as views
from include.awsgov.report.catalog import load_catalog
from tests.fixtures import report_store as rs

TEST_OPTIONS = {"governance_address": rs.GOVERNANCE, "max_actions": 10, "max_resources_per_action": 3,
                "max_list_items": 20, "expiry_warning_days": 14, "exceptions_file": "exceptions.yaml"}
HOSTILE_VALUES = [rs.HOSTILE, "web-<script>alert(1)</script>", 'legacy "quoted" it\'s-dev', "<b>bold</b>"]
SECTIONS = ["Scope and freshness", "Score card per account", "Since last week", "Top actions", "Anomalies this week",
            "Exceptions", "Need an exception?"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    store = rs.scenario_copy(tmp_path_factory.mktemp("render") / "store")
    return week.build_week(store, week.Week.parse(rs.WEEK), catalog=load_catalog(),
                             exceptions=suppressions.parse(rs.EXCEPTIONS), ou_owners=rs.SETTINGS["ou_owners"],
                             fallback=rs.GOVERNANCE)


@pytest.fixture(scope="module")
def recs(data):
    return views.Records(data)


@pytest.fixture(scope="module")
def alice(recs):
    view = views.owner_view(recs, "alice@example.com", TEST_OPTIONS)
    return view, render.render("owner_report", "html", **view), render.render("owner_report", "txt", **view)


@pytest.fixture(scope="module")
def org(recs):
    view = views.org_view(recs, TEST_OPTIONS, [{"owner": "bad-owner\r\nbcc: evil@example.net", "status": "refused",
                                                "refused": ["bad-owner\r\nbcc: evil@example.net"], "error": ""}])
    return view, render.render("org_summary", "html", **view)


def test_owner_report_has_every_section_and_the_store_counts(alice):
    view, page, _ = alice
    for section in SECTIONS:
        assert section in page, section
    counts = view["counts"]
    for key, label in [("new", "new"), ("reopened", "reopened"), ("resolved", "fixed"), ("overdue", "overdue"),
                       ("open", "open")]:
        assert re.search(rf">{counts[key]}</div><div[^>]*>{label}</div>", page), label
    assert "1 new, 1 reopened, 1 fixed, 3 still open from last week." in page
    assert page.count("How to fix") >= counts["open"]  # every item and action carries its remediation link


def test_hostile_values_come_out_as_text(alice, org):
    for page in (alice[1], org[1]):
        assert "<script" not in page.lower()
        assert "<b>bold</b>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert str(markupsafe.escape("legacy \"quoted\" it's-dev")) in org[1]  # &quot; and &#39;
    assert "日本語-analytics-🚀" in org[1]
    assert "bad-owner bcc: evil@example.net" in org[1]  # the injected owner is shown, on one line


def test_html_is_mail_client_safe(alice, org):
    for page in (alice[1], org[1]):
        lowered = page.lower()
        assert "<script" not in lowered and "javascript:" not in lowered and " on" + "load=" not in lowered
        assert "<img" not in lowered and "<link" not in lowered and "<style" not in lowered
        assert "<svg" in lowered and "<polyline" in lowered  # inline sparklines
        assert not re.search(r"""src=["']?https?:""", lowered)
        assert all(h.startswith("https://") or h.startswith("mailto:") for h in re.findall(r'href="([^"]+)"', page))


def test_sparkline_has_one_point_per_week(alice):
    view, page, _ = alice
    geometry = render.spark(view["accounts"][0]["trend_open"])
    assert len(geometry["segments"]) == 1 and len(geometry["segments"][0].split()) == 9
    assert geometry["segments"][0] in page


def test_sparkline_breaks_at_weeks_without_data():
    geometry = render.spark([1, 2, None, 3, None, None, 4], 60, 20)
    assert [len(s.split()) for s in geometry["segments"]] == [2, 1, 1]
    assert render.spark([None, None])["segments"] == []


def test_plain_text_alternative(alice):
    view, _, text = alice
    assert "&lt;" not in text and "web-<script>alert(1)</script>" in text  # plain text, not HTML
    assert "WEEKLY COMPLIANCE REPORT 2026-W48" in text and "TOP ACTIONS" in text
    assert f"{view['counts']['new']} new ({view['counts']['new_critical']} critical)" in text


def test_subject_says_what_changed_on_one_line(recs):
    subject = render.subject("owner_report", **views.owner_view(recs, "alice@example.com", TEST_OPTIONS))
    assert subject == "Payments, <script>alert(1)</script>: 1 new critical, 1 fixed, 2 overdue — 2026-W48"
    ml = views.owner_view(recs, rs.SANDBOX_OWNERS, TEST_OPTIONS)
    ml["label"] = "ml-lab\nsandbox\r\nBcc: x@example.net"
    assert "\n" not in render.subject("owner_report", **ml) and "\r" not in render.subject("owner_report", **ml)


def test_org_summary_reports_delivery_and_unowned(org):
    view, page = org
    assert "Unowned resources" in page and view["unowned_count"] == 1
    assert "refused" in page and "Exceptions to review" in page and "EXC-UNUSED" in page
    assert "1 finding disappeared from accounts that could not be scanned" in page


def test_environment_escapes_html_but_not_plain_text():
    env = render.environment()
    assert env.from_string("{{ v }}").render(v="<i>") == "&lt;i&gt;"
    assert env.get_template("owner_report.html.j2").name == "owner_report.html.j2"  # compiles
    assert render.oneline("a\r\n b\tc", 4) == "a b…"


def test_screenshot_of_a_rendered_report(alice, tmp_path):
    sys.path.insert(0, str(rs.Path(__file__).resolve().parents[3]))
    from scripts import screenshot

    page = tmp_path / "report.html"
    page.write_text(alice[1], encoding="utf-8")
    if screenshot.find_chromium() is None:
        out = subprocess.run([sys.executable, "scripts/screenshot.py", str(page), str(tmp_path / "r.png")],
                             capture_output=True, text=True, check=True, cwd=rs.Path(__file__).resolve().parents[3])
        assert "screenshot skipped" in out.stdout
        pytest.skip("no Chromium installed (apt-get install -y chromium)")
    png = tmp_path / "report.png"
    assert screenshot.screenshot(page, png, width=820, height=1200)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_screenshot_script_skips_cleanly_without_chromium(tmp_path, monkeypatch):
    page = tmp_path / "r.html"
    page.write_text("<p>x</p>")
    env = {"PATH": str(tmp_path), "CHROMIUM": str(tmp_path / "no-such-browser")}
    out = subprocess.run([sys.executable, "scripts/screenshot.py", str(page), str(tmp_path / "r.png")], env=env,
                         capture_output=True, text=True, cwd=rs.Path(__file__).resolve().parents[3])
    assert out.returncode == 0 and "screenshot skipped" in out.stdout
    assert not (tmp_path / "r.png").exists()
    assert shutil.which("python3", path=str(tmp_path)) is None  # the child really had no browser on PATH


def _screenshot_module():
    sys.path.insert(0, str(rs.Path(__file__).resolve().parents[3]))
    from scripts import screenshot

    return screenshot


def test_screenshot_fails_plainly_without_a_font_for_japanese(tmp_path, monkeypatch, capsys):
    screenshot = _screenshot_module()
    monkeypatch.setattr(screenshot, "find_chromium", lambda: sys.executable)  # a browser "found"; never started
    monkeypatch.setattr(screenshot, "cjk_font", lambda: None)
    page = tmp_path / "r.html"
    page.write_text("<p>日本語</p>", encoding="utf-8")
    assert screenshot.screenshot(page, tmp_path / "r.png") is False
    assert "apt-get install -y fonts-noto-cjk" in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()


def test_screenshot_draws_japanese_glyphs_not_boxes(tmp_path):
    screenshot = _screenshot_module()
    if screenshot.find_chromium() is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium)")
    # Missing glyphs are all drawn as the same empty box: two different words of three kanji each then give the same
    # image. With a font for Japanese they differ.
    shots = []
    for word in ("日本語", "漢字表"):
        page = tmp_path / f"{word}.html"
        page.write_text(f'<html lang="ja"><meta charset="utf-8"><p style="font-size:64px;margin:8px;">{word}</p>',
                        encoding="utf-8")
        png = tmp_path / f"{word}.png"
        assert screenshot.screenshot(page, png, width=320, height=120), "no font for Japanese (fonts-noto-cjk)"
        shots.append(png.read_bytes())
    assert shots[0] != shots[1]


def test_a_busy_owners_report_stays_under_gmails_clipping_size(tmp_path):
    store = rs.build_scaled(tmp_path / "store", owners=1, per_account=300)
    data = week.build_week(store, week.Week.parse(rs.WEEK), catalog=load_catalog(),
                             exceptions=suppressions.Exceptions(()), ou_owners={}, fallback=rs.GOVERNANCE)
    options = {**TEST_OPTIONS, "max_actions": 10, "max_resources_per_action": 5, "max_list_items": 15}
    view = views.owner_view(views.Records(data), "owner0@example.com", options)
    assert view["counts"]["open"] == 300 and view["counts"]["new"] == 100
    page = render.render("owner_report", "html", **view)
    assert len(page.encode()) < 102_000  # Gmail clips longer messages ("[Message clipped]")
    assert "… and 85 more, listed in the attached CSV." in page

"""Report languages: every template string has a Japanese translation, a Japanese report renders translated with
Japanese dates and numbers, and translation never lets a hostile value through as markup."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import yaml
from babel.messages.checkers import python_format

from include.awsgov.core import i18n, render
from include.awsgov.core.settings import CONFIG_DIR
from include.awsgov.report import catalog as rules_catalog
from include.awsgov.report import suppressions, week
from include.awsgov.report import views as views
from include.awsgov.report.catalog import load_catalog
from tests.fixtures import report_store as rs

TEST_OPTIONS = {"governance_address": rs.GOVERNANCE, "max_actions": 10, "max_resources_per_action": 3,
                "max_list_items": 20, "expiry_warning_days": 14, "exceptions_file": "exceptions.yaml"}
# Section titles of the English owner report that a Japanese one must not show.
ENGLISH_SECTIONS = ["Scope and freshness", "Score card per account", "Since last week", "Top actions",
                    "Anomalies this week", "Events of the week", "Need an exception?"]
JAPANESE_SECTIONS = ["コンプライアンス週次レポート", "対象範囲とデータの鮮度", "アカウント別スコアカード",
                     "先週からの変化", "優先対応事項", "今週のメトリクス異常", "今週のイベント", "例外が必要ですか？"]

TRANSLATED = [lang for lang in i18n.LANGUAGES if lang != i18n.SOURCE_LANGUAGE]


@pytest.fixture(scope="module")
def template_messages():
    return i18n.extract_messages()


@pytest.fixture(scope="module")
def recs(tmp_path_factory):
    store = rs.scenario_copy(tmp_path_factory.mktemp("i18n") / "store")
    data = week.build_week(store, week.Week.parse(rs.WEEK), catalog=load_catalog(),
                           exceptions=suppressions.parse(rs.EXCEPTIONS), ou_owners=rs.SETTINGS["ou_owners"],
                           fallback=rs.GOVERNANCE)
    return views.Records(data)


@pytest.fixture(scope="module")
def alice_ja(recs):
    # As delivery renders a Japanese report: the view's rule wording in Japanese, then the templates.
    view = views.in_language(views.owner_view(recs, "alice@example.com", TEST_OPTIONS), "ja", load_catalog())
    return (view, render.render("owner_report", "html", "ja", **view),
            render.render("owner_report", "txt", "ja", **view), render.subject("owner_report", "ja", **view))


def test_the_templates_have_translatable_strings(template_messages):
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in template_messages if m.id}
    assert len(ids) > 200
    assert {"Scope and freshness", "Weekly compliance report — %(week)s", "n/a"} <= ids


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_template_string_has_a_translation(lang, template_messages):
    missing = i18n.untranslated(i18n.catalogue(lang), template_messages)
    assert missing == [], f"untranslated in {i18n.catalogue_path(lang)} (run scripts/i18n_messages.py): {missing}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_keep_every_placeholder(lang):
    errors = []
    for message in i18n.catalogue(lang):
        if message.id and message.string:
            try:
                python_format(i18n.catalogue(lang), message)
            except Exception as exc:  # noqa: BLE001 - babel raises TranslationError; collect them all
                errors.append(f"{message.id!r}: {exc}")
    assert errors == []


def test_an_untranslated_string_is_reported(template_messages):
    catalog = i18n.catalogue("ja")
    message = catalog.get("Scope and freshness")
    message.string = ""
    assert i18n.untranslated(catalog, template_messages) == ["Scope and freshness"]


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_rule_of_the_catalog_has_its_wording(lang):
    data = yaml.safe_load(rules_catalog.CATALOG_PATH.read_text(encoding="utf-8"))
    missing = rules_catalog.untranslated(data, lang)
    assert missing == [], f"no {lang} title/why in {rules_catalog.CATALOG_PATH}: {missing}"


def test_a_rule_without_its_wording_is_reported():
    data = yaml.safe_load(rules_catalog.CATALOG_PATH.read_text(encoding="utf-8"))
    del data["config_rules"]["restricted-ssh"]["ja"]
    del data["trusted_advisor"]["HCP4007jGY"]["ja"]["why"]
    del data["defaults"]["trusted_advisor"]["ja"]
    assert rules_catalog.untranslated(data, "ja") == [
        "config_rules.restricted-ssh.title", "config_rules.restricted-ssh.why", "trusted_advisor.HCP4007jGY.why",
        "defaults.trusted_advisor.why"]


def test_the_catalog_schema_words_rules_in_exactly_the_translated_languages():
    schema = json.loads(rules_catalog.SCHEMA_PATH.read_text())
    entry = set(schema["$defs"]["entry"]["properties"]) - {"title", "severity", "why", "remediation"}
    defaults = schema["properties"]["defaults"]["properties"]
    assert entry == set(TRANSLATED)
    for source in ("config", "trusted_advisor"):
        assert set(defaults[source]["properties"]) - {"severity", "severity_by_status", "why",
                                                      "remediation_by_category", "remediation"} == set(TRANSLATED)


def test_japanese_report_words_config_and_trusted_advisor_findings_in_japanese(alice_ja):
    _, page, text, _ = alice_ja
    # Config rule s3-bucket-public-read-prohibited: a new finding and the top action (title and why).
    assert "<strong>パブリック読み取りアクセスを許可している S3 バケット</strong>" in page
    assert "インターネット上の誰もが、バケット内のオブジェクトを一覧表示したり読み取ったりできます。" in page
    # Trusted Advisor check HCP4007jGY: fixed this week (the HTML lists its title, the text its why too).
    assert "<td>特定のポートをインターネットに公開しているセキュリティグループ</td>" in page
    assert ("- [高] 特定のポートをインターネットに公開しているセキュリティグループ" in text
            and "理由：0.0.0.0/0 に開放された既知のサービスポートは、絶えずスキャンされ攻撃されています。" in text)
    for english in ("S3 bucket allows public read access", "Anyone on the internet can list or read",
                    "Security group opens specific ports", "Well-known service ports"):
        assert english not in page and english not in text, english
    # The fix links stay AWS's English pages.
    assert "https://docs.aws.amazon.com/config/latest/developerguide/s3-bucket-public-read-prohibited.html" in page


def test_japanese_rule_wording_is_escaped_like_any_value(recs, tmp_path):
    doc = yaml.safe_load(rules_catalog.CATALOG_PATH.read_text(encoding="utf-8"))
    doc["config_rules"]["s3-bucket-public-read-prohibited"]["ja"] = {"title": 'S3 バケット "公開" & 読み取り',
                                                                      "why": "誰でも読める & 'だれでも'"}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    view = views.in_language(views.owner_view(recs, "alice@example.com", TEST_OPTIONS), "ja", load_catalog(path))
    page = render.render("owner_report", "html", "ja", **view)
    assert "S3 バケット &#34;公開&#34; &amp; 読み取り" in page and "誰でも読める &amp; &#39;だれでも&#39;" in page
    assert '"公開"' not in page
    # Plain text is not HTML: the same wording as it is.
    assert '- [重大] S3 バケット "公開" & 読み取り' in render.render("owner_report", "txt", "ja", **view)


def test_japanese_owner_report_is_translated(alice_ja):
    _, page, text, subject = alice_ja
    assert '<html lang="ja">' in page
    for title in JAPANESE_SECTIONS:
        assert title in page, title
    for title in ENGLISH_SECTIONS:
        assert title not in page, title
    assert "【対象範囲とデータの鮮度】" in text and "SCOPE AND FRESHNESS" not in text
    assert subject == "Payments, <script>alert(1)</script>：新規（重大）1 件、修正済み 1 件、期限超過 2 件 — 2026-W48"


def test_japanese_counts_and_severities(alice_ja):
    view, page, text, _ = alice_ja
    counts = view["counts"]
    for key, label in [("new", "新規"), ("reopened", "再発"), ("resolved", "修正済み"), ("overdue", "期限超過"),
                       ("open", "未対応")]:
        assert re.search(rf">{counts[key]}</div><div[^>]*>{label}</div>", page), label
    assert "- [重大] パブリック読み取りアクセスを許可している S3 バケット" in text
    assert ">重大</span>" in page  # the severity badge


def test_japanese_dates_and_numbers(alice_ja):
    _, page, text, _ = alice_ja
    assert "コンプライアンス週次レポート 2026-W48（2026年11月23日〜2026年11月29日）" in text
    assert "<strong>2026年11月29日</strong>時点のデータを 2026年11月22日 と比較しています。" in page
    assert "最後の収集は 2026年11月29日 2:00 UTC に完了しました。" in text
    assert "削減見込み $42/月" in text  # Trusted Advisor savings stay in USD
    assert "有効期限 2027年3月31日" in text
    assert "2026-11-29" not in page.replace("2026-11-29T", "")  # no ISO day left outside run ids


def test_hostile_values_stay_text_in_a_translated_report(alice_ja):
    _, page, _, _ = alice_ja
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # A value inside a {% trans %} block is escaped too: the recipients line and the account name.
    assert "宛先：alice@example.com" in page


def test_a_hostile_value_inside_a_trans_block_is_escaped():
    env = render.environment("ja")
    page = env.from_string("{% trans actor=a %}by {{ actor }}{% endtrans %}").render(a="<img src=x onerror=alert(1)>")
    assert page == "実行者：&lt;img src=x onerror=alert(1)&gt;"


def test_english_is_the_templates_own_text(recs):
    view = views.owner_view(recs, "alice@example.com", TEST_OPTIONS)
    page = render.render("owner_report", "html", **view)
    assert '<html lang="en">' in page and "Weekly compliance report — 2026-W48" in page
    assert render.render("owner_report", "html", "en", **view) == page
    # An English report's rule wording is the catalog's English, whatever the catalog's other languages hold.
    english = views.in_language(view, "en", load_catalog())
    assert english == view
    assert render.render("owner_report", "html", "en", **english) == page
    assert "<strong>S3 bucket allows public read access</strong>" in page
    assert "Anyone on the internet can list or read the bucket&#39;s objects." in page
    assert "パブリック読み取り" not in page


@pytest.mark.parametrize(("name", "args", "en", "ja"), [
    pytest.param("date", (dt.date(2026, 12, 6),), "2026-12-06", "2026年12月6日", id="date"),
    pytest.param("date", ("2026-12-06",), "2026-12-06", "2026年12月6日", id="date-from-json"),
    pytest.param("timestamp", (dt.datetime(2026, 11, 29, 6, 2, tzinfo=dt.UTC),), "2026-11-29 06:02 UTC",
                 "2026年11月29日 6:02 UTC", id="timestamp"),
    pytest.param("money", (1234.4,), "$1,234", "$1,234", id="money-usd"),
    pytest.param("num", (12345,), "12,345", "12,345", id="count"),
    pytest.param("pct", (87.5,), "87.5%", "87.5%", id="percent"),
    pytest.param("pct", (None,), "n/a", "不明", id="percent-unknown"),
    pytest.param("age", (12,), "12 d", "12 日", id="age"),
    pytest.param("age", (56, True), "≥ 56 d", "56 日以上", id="age-capped"),
])
def test_locale_filters(name, args, en, ja):
    assert render.environment("en").filters[name](*args) == en
    assert render.environment("ja").filters[name](*args) == ja


def test_an_unsupported_language_is_refused():
    with pytest.raises(ValueError, match="unsupported language 'fr'"):
        render.render("owner_report", "subject.txt", "fr")


def test_the_settings_schema_offers_exactly_the_supported_languages():
    schema = json.loads((CONFIG_DIR / "schema" / "settings.schema.json").read_text())
    props = schema["properties"]
    assert props["owners"]["additionalProperties"]["properties"]["language"]["enum"] == list(i18n.LANGUAGES)
    assert props["report"]["properties"]["language"]["enum"] == list(i18n.LANGUAGES)

"""Report languages through the weekly pipeline: per-owner language from the settings or the account's Language tag
(a hostile tag value means English), one message per recipient set and language, subjects translated."""

from __future__ import annotations

import json

import pytest
import yaml

from include.awsgov.core import mail, tables
from include.awsgov.core import owners as own
from include.awsgov.core.settings import load_settings
from include.awsgov.report import delivery as rd
from include.awsgov.report.week import Week
from tests.fixtures import report_store as rs
from tests.fixtures.smtp_sink import SmtpSink

WEEK = Week.parse(rs.WEEK)
SPLIT_OWNER = "kenji@example.com, zoe@example.com"  # two addresses reading different languages
TAGS = {  # account -> tags replacing the fixture's (the Owner tag kept)
    "333333333333": {"Language": "ja"},  # o'connor: Japanese from the account tag
    "111111111111": {"Language": "en"},  # alice: the owners' setting (ja) wins over this tag
    "666666666666": {"Language": "ja\r\n<script>alert(1)</script>"},  # hostile value: ignored, English
}


def _tag_accounts(store):
    frame = store.read("accounts", rs.AS_OF, rs.AS_OF, schema=tables.ACCOUNTS)[tables.ACCOUNTS.names]
    for i, row in frame.iterrows():
        tags = {**json.loads(row["tags_json"]), **TAGS.get(row["account_id"], {})}
        frame.at[i, "tags_json"] = json.dumps(tags)
        if row["account_id"] == "444444444444":
            frame.at[i, "owner"] = SPLIT_OWNER
    store.write("accounts", rs.AS_OF, frame, schema=tables.ACCOUNTS, sort_by=["account_id"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("languages")
    store = rs.scenario_copy(tmp_path / "store")
    _tag_accounts(store)
    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text(yaml.safe_dump(rs.EXCEPTIONS))
    cfg = load_settings({**rs.SETTINGS, "store_url": str(tmp_path / "store"),
                         "owners": {"alice@example.com": {"language": "ja"}, "kenji@example.com": {"language": "ja"}},
                         "report": {"send_retry_seconds": 0, "history_weeks": 2, "exceptions_file": str(exceptions)}})
    with SmtpSink() as sink:
        built = rd.build_reports(store, WEEK, cfg)
        factory = lambda: mail.mailer_from_settings(cfg, None, sink.params)  # noqa: E731
        sent = rd.send_reports(store, built["manifest"], cfg, factory)
        rd.send_org_summary(store, built["manifest"], cfg, factory)
        messages = sink.parsed()
    manifest = rd.load_manifest(store, built["manifest"])
    return {"store": store, "manifest": manifest, "sent": sent, "messages": messages}


def _message_to(run, address):
    return [m for m in run["messages"] if address in m["To"].split(", ")]


def _language(run, slug):
    return {e["slug"]: e["language"] for e in run["manifest"]["entries"]}[slug]


def test_the_owners_setting_makes_alices_report_japanese(run):
    (msg,) = _message_to(run, "alice@example.com")
    assert msg["Subject"].startswith("Payments, <script>alert(1)</script>：新規（重大）1 件")
    html = msg.get_body(("html",)).get_content()
    assert '<html lang="ja">' in html and "コンプライアンス週次レポート" in html
    assert "【対象範囲とデータの鮮度】" in msg.get_body(("plain",)).get_content()


def test_the_account_tag_makes_oconnors_report_japanese(run):
    (msg,) = _message_to(run, "o'connor@example.com")
    assert "新規" in msg["Subject"] and '<html lang="ja">' in msg.get_body(("html",)).get_content()


def test_a_hostile_language_tag_means_english(run):
    assert _language(run, own.slug(own.canonical(rs.BAD_OWNER))) == "en"


def test_owners_without_a_language_get_english(run):
    (msg,) = _message_to(run, "dave@example.com")
    assert msg["Subject"].startswith("dave@example.com: 0 new")
    assert '<html lang="en">' in msg.get_body(("html",)).get_content()


def test_one_message_per_recipient_set_and_language(run):
    slug = own.slug(SPLIT_OWNER)
    (ja,) = _message_to(run, "kenji@example.com")
    (en,) = _message_to(run, "zoe@example.com")
    assert (ja["To"], ja["X-Awsgov-Report"]) == ("kenji@example.com", f"{slug}-ja")
    assert (en["To"], en["X-Awsgov-Report"]) == ("zoe@example.com", f"{slug}-en")
    assert '<html lang="ja">' in ja.get_body(("html",)).get_content()
    assert '<html lang="en">' in en.get_body(("html",)).get_content()
    # Both halves are one owner in the org summary, delivered.
    delivery = {d["owner"]: d["status"] for d in rd.delivery_by_owner(run["store"], run["manifest"])}
    assert delivery[SPLIT_OWNER] == rd.SENT


def test_the_org_summary_uses_the_governance_addresss_language(run):
    (msg,) = [m for m in run["messages"] if m["X-Awsgov-Report"] == rd.ORG_SLUG]
    assert msg["Subject"].startswith("Organization: ")


def test_a_japanese_report_words_the_rules_in_japanese(run):
    (msg,) = _message_to(run, "alice@example.com")
    html, text = msg.get_body(("html",)).get_content(), msg.get_body(("plain",)).get_content()
    assert "パブリック読み取りアクセスを許可している S3 バケット" in html  # Config rule
    assert "特定のポートをインターネットに公開しているセキュリティグループ" in html  # Trusted Advisor check
    assert "S3 bucket allows public read access" not in html + text
    # o'connor (Japanese by the account tag): an unknown check keeps its name, the defaults' why is Japanese.
    (oconnor,) = _message_to(run, "o'connor@example.com")
    text = oconnor.get_body(("plain",)).get_content()
    assert "TA check zzUnknown1" in text
    assert "理由：Trusted Advisor が、このリソースは AWS のベストプラクティスに沿っていないと指摘しました。" in text


def test_an_english_report_keeps_the_english_rules(run):
    (zoe,) = _message_to(run, "zoe@example.com")  # the English half of the split owner
    text = zoe.get_body(("plain",)).get_content()
    assert "VPC without flow logs" in text and "フローログ" not in text
    (ja,) = _message_to(run, "kenji@example.com")  # the same findings, in Japanese
    assert "フローログが有効になっていない VPC" in ja.get_body(("plain",)).get_content()

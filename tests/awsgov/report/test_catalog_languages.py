"""The rules catalogue in the report's language: the schema holds a translation to the English's rules, a missing
translation reads English, and a view is reworded only where its text is the catalogue's own English."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from include.awsgov.core import render
from include.awsgov.report import catalog as rules_catalog
from include.awsgov.report import suppressions, views, week
from include.awsgov.report.catalog import CatalogError, load_catalog
from tests.fixtures import report_store as rs


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load(rules_catalog.CATALOG_PATH.read_text(encoding="utf-8"))


def _load(tmp_path, doc):
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return load_catalog(path)


@pytest.mark.parametrize(("where", "wording", "message"), [
    pytest.param("config_rules", {"title": "タイトルのみ"}, "'why' is a required property", id="why-missing"),
    pytest.param("config_rules", {"title": "<b>太字</b>", "why": "理由"}, "does not match", id="markup"),
    pytest.param("trusted_advisor", {"title": "一行目\n二行目", "why": "理由"}, "does not match", id="line-break"),
    pytest.param("trusted_advisor", {"title": "", "why": "理由"}, "should be non-empty", id="empty"),
    pytest.param("config_rules", {"title": "長" * 161, "why": "理由"}, "is too long", id="too-long"),
    pytest.param("config_rules", {"title": "題", "why": "理由", "remediation": "https://docs.aws.amazon.com/x"},
                 "Additional properties", id="unknown-key"),
])
def test_the_schema_holds_a_translation_to_the_rules_of_the_english(tmp_path, doc, where, wording, message):
    bad = copy.deepcopy(doc)
    key = next(iter(bad[where]))
    bad[where][key]["ja"] = wording
    with pytest.raises(CatalogError, match=rf"{where}\.{key}\.ja.*{message}"):
        _load(tmp_path, bad)


def test_the_schema_refuses_a_language_it_does_not_know(tmp_path, doc):
    bad = copy.deepcopy(doc)
    bad["config_rules"]["restricted-ssh"]["fr"] = {"title": "Groupe de sécurité", "why": "Port 22 ouvert"}
    bad["defaults"]["config"]["ja"] = {"why": "理由", "title": "題"}
    with pytest.raises(CatalogError) as raised:
        _load(tmp_path, bad)
    assert "config_rules.restricted-ssh: Additional properties are not allowed ('fr'" in str(raised.value)
    assert "defaults.config.ja: Additional properties are not allowed ('title'" in str(raised.value)


def test_a_rule_without_a_translation_reads_english(tmp_path, doc):
    partial = copy.deepcopy(doc)
    del partial["config_rules"]["restricted-ssh"]["ja"]
    del partial["defaults"]["config"]["ja"]
    catalog = _load(tmp_path, partial)
    english = catalog.info("config", "restricted-ssh")
    assert catalog.info("config", "restricted-ssh", lang="ja") == english
    assert english.title == "Security group opens SSH to the internet"
    assert catalog.info("config", "some-custom-rule", lang="ja").why == doc["defaults"]["config"]["why"]
    # The others keep their Japanese.
    assert catalog.info("config", "encrypted-volumes", lang="ja").title == "暗号化されていない EBS ボリューム"


def test_japanese_wording_of_known_and_unknown_rules():
    catalog = load_catalog()
    # A Config rule deployed under a conformance pack's name is the catalogue's rule, in Japanese too.
    ssh = catalog.info("config", "securityhub-restricted-ssh-1a2b", lang="ja")
    assert (ssh.title, ssh.severity) == ("SSH をインターネットに公開しているセキュリティグループ", "high")
    assert ssh.remediation == catalog.info("config", "restricted-ssh").remediation
    ta = catalog.info("trusted_advisor", "Qch7DwouX1", lang="ja")
    assert (ta.title, ta.why) == ("使用率の低い EC2 インスタンス",
                                  "ほとんど使われていないキャパシティに料金を支払っています。")
    # An unknown check keeps its own name; the why is the defaults', in Japanese.
    unknown = catalog.info("trusted_advisor", "zz", check_name="Some check", status="error", lang="ja")
    assert (unknown.title, unknown.severity, unknown.known) == ("Some check", "high", False)
    assert unknown.why == "Trusted Advisor が、このリソースは AWS のベストプラクティスに沿っていないと指摘しました。"
    with pytest.raises(ValueError, match="unsupported language 'fr'"):
        catalog.info("config", "restricted-ssh", lang="fr")


def test_wording_replaces_only_the_catalogues_own_english():
    catalog = load_catalog()
    en = catalog.info("config", "restricted-ssh")
    ja = catalog.info("config", "restricted-ssh", lang="ja")
    assert catalog.wording("config", "restricted-ssh", en.title, en.why, "ja") == (ja.title, ja.why)
    # Text the catalogue did not write (an older catalogue's, a finding's own) stays as it is, field by field.
    assert catalog.wording("config", "restricted-ssh", "Old title", en.why, "ja") == ("Old title", ja.why)
    assert catalog.wording("config", "restricted-ssh", en.title, "Old why", "ja") == (ja.title, "Old why")
    assert catalog.wording("guardduty", "restricted-ssh", en.title, en.why, "ja") == (en.title, en.why)
    assert catalog.wording("config", "restricted-ssh", en.title, en.why, "en") == (en.title, en.why)


def test_a_view_is_reworded_wherever_it_nests_a_rule_and_nowhere_else():
    catalog = load_catalog()
    en = catalog.info("trusted_advisor", "Z4AUBRNSmz")
    ja = catalog.info("trusted_advisor", "Z4AUBRNSmz", lang="ja")
    item = {"source": "trusted_advisor", "check": "Z4AUBRNSmz", "title": en.title, "why": en.why, "resource": "eip"}
    threat = {"source": "guardduty", "check": "Recon:EC2/PortProbeUnprotectedPort", "title": "Port probe",
              "why": "Someone is probing."}
    view = {"new": [item], "actions": [{**item, "count": 2, "resources": [item]}], "threats": {"items": [threat]},
            "label": en.title, "counts": {"open": 2}}
    worded = views.in_language(view, "ja", catalog)
    assert worded["new"][0] == {**item, "title": ja.title, "why": ja.why}
    assert (worded["actions"][0]["title"], worded["actions"][0]["resources"][0]["why"]) == (ja.title, ja.why)
    assert worded["threats"] == view["threats"] and worded["label"] == en.title and worded["counts"] == {"open": 2}
    assert view["new"][0]["title"] == en.title  # the English view is not changed: other languages render from it
    assert views.in_language(view, "en", catalog) == view


def test_the_org_summary_through_json_is_worded_in_japanese(tmp_path):
    # The org summary is rendered from the manifest's JSON copy of its view, after the owners' mails went out.
    store = rs.scenario_copy(tmp_path / "store")
    data = week.build_week(store, week.Week.parse(rs.WEEK), catalog=load_catalog(),
                           exceptions=suppressions.parse(rs.EXCEPTIONS), ou_owners=rs.SETTINGS["ou_owners"],
                           fallback=rs.GOVERNANCE)
    options = {"governance_address": rs.GOVERNANCE, "max_actions": 10, "max_resources_per_action": 3,
               "max_list_items": 20, "expiry_warning_days": 14, "exceptions_file": "exceptions.yaml"}
    view = json.loads(json.dumps(views.org_view(views.Records(data), options), default=str))
    text = render.render("org_summary", "txt", "ja", **views.in_language(view, "ja", load_catalog()))
    # A Trusted Advisor check's top action, then a Config rule's.
    assert "[重大] 誰にでも開放されている S3 バケットのアクセス許可：リソース 1 件（1 アカウント）" in text
    assert "[重大] パブリック読み取りアクセスを許可している S3 バケット：リソース 1 件（1 アカウント）" in text
    assert "[高] TA check zzUnknown1：" in text  # an unknown check keeps its own name
    assert "S3 bucket allows public read access" not in text and "S3 bucket permissions open" not in text
    assert "S3 bucket allows public read access" in render.render("org_summary", "txt", "en", **view)

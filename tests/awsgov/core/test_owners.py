"""Owner resolution: resource tag, then account owner, then inventory, then OU default, then the fallback."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.awsgov.core import owners as own
from include.awsgov.core import tables

TEST_FALLBACK = "governance-team@example.com"
TEST_OU_OWNERS = {"Sandbox": "sandbox-owners@example.com"}


def _accounts(rows):
    return pd.DataFrame([{**{c: "" for c in tables.ACCOUNTS.names}, **r} for r in rows])


def _inventory(rows):
    base = {c: None for c in tables.ONBOARDED_ACCOUNTS.names}
    return pd.DataFrame([{**base, "dt": "2026-09-01", **r} for r in rows])


@pytest.fixture
def resolver():
    accounts = _accounts([
        {"account_id": "111", "owner": "Alice@Example.com", "ou": "Prod"},
        {"account_id": "222", "owner": "", "ou": "Sandbox"},
        {"account_id": "333", "owner": "", "ou": "Dev"},
        {"account_id": "444", "owner": "", "ou": "Dev"},
    ])
    inventory = _inventory([{"account_id": "444", "owner_email": "old@example.com"},
                            {"account_id": "555", "owner_email": "inv@example.com"}])
    return own.OwnerResolver(accounts, inventory, TEST_OU_OWNERS, TEST_FALLBACK)


@pytest.mark.parametrize(("account_id", "owner", "layer"), [
    pytest.param("111", "alice@example.com", own.ACCOUNT, id="account-owner-lowercased"),
    pytest.param("222", "sandbox-owners@example.com", own.OU, id="ou-default"),
    pytest.param("333", TEST_FALLBACK, own.FALLBACK, id="fallback"),
    pytest.param("444", "old@example.com", own.INVENTORY, id="inventory-when-account-row-has-none"),
    pytest.param("555", "inv@example.com", own.INVENTORY, id="inventory-for-account-missing-from-accounts"),
    pytest.param("999", TEST_FALLBACK, own.FALLBACK, id="unknown-account"),
])
def test_account_owner_layers(resolver, account_id, owner, layer):
    assert resolver.account_owner(account_id) == (owner, layer)


def test_resolve_resource_tag_wins_over_account_owner(resolver):
    findings = pd.DataFrame([
        {"account_id": "111", "details_json": json.dumps({"Tags": {"Owner": "Dave@Example.com"}})},
        {"account_id": "111", "details_json": json.dumps({"Bucket Name": "b"})},
        {"account_id": "333", "details_json": json.dumps({"Tags": [{"Key": "owner", "Value": "erin@example.com"}]})},
        {"account_id": "222", "details_json": "not json {owner"},
    ])
    out = resolver.resolve(findings)
    assert out["owner"].tolist() == ["dave@example.com", "alice@example.com", "erin@example.com",
                                     "sandbox-owners@example.com"]
    assert out["owner_layer"].tolist() == [own.RESOURCE, own.ACCOUNT, own.RESOURCE, own.OU]


def test_resolve_reads_a_tags_json_column_when_present(resolver):
    out = resolver.resolve(pd.DataFrame([{"account_id": "333", "tags_json": json.dumps({"Owner": "f@example.com"}),
                                          "details_json": "{}"}]))
    assert out.loc[0, "owner"] == "f@example.com" and out.loc[0, "owner_layer"] == own.RESOURCE


@pytest.mark.parametrize(("raw", "expected"), [
    pytest.param("b@example.com; A@example.com,b@example.com", "a@example.com, b@example.com", id="set-sorted-dedup"),
    pytest.param("  ", "", id="blank"),
    pytest.param(None, "", id="none"),
    pytest.param("x\r\nBcc: evil@example.net", "x\r\nbcc: evil@example.net", id="injection-stays-one-value"),
])
def test_canonical_owner_key(raw, expected):
    assert own.canonical(raw) == expected


def test_injected_owner_never_becomes_a_separate_recipient():
    assert own.recipients(own.canonical("x\r\nBcc: evil@example.net")) == ["x\r\nbcc: evil@example.net"]


def test_slug_is_file_safe_and_distinguishes_similar_owners():
    a, b = own.slug("o'connor@example.com"), own.slug("o-connor@example.com")
    assert a != b
    for s in (a, b, own.slug("../../etc/passwd"), own.slug("<script>alert(1)</script>")):
        assert s and all(c.isalnum() or c == "-" for c in s) and len(s) <= 80


@pytest.mark.parametrize(("obj", "owner"), [
    pytest.param({"Owner": "a@x.io"}, "a@x.io", id="flat"),
    pytest.param({"tag:Owner": "a@x.io"}, "a@x.io", id="tag-prefix"),
    pytest.param({"ResourceTags": {"OWNER": "a@x.io"}}, "a@x.io", id="nested-dict"),
    pytest.param({"Tags": [{"Key": "Team", "Value": "t"}, {"Key": "Owner", "Value": "a@x.io"}]}, "a@x.io",
                 id="key-value-list"),
    pytest.param({"Owner": ""}, "", id="empty"),
    pytest.param({"Owners": "a@x.io"}, "", id="other-key"),
    pytest.param(["Owner", "a@x.io"], "", id="plain-list"),
])
def test_owner_from_tags(obj, owner):
    assert own.owner_from_tags(obj) == owner


# -- properties (Hypothesis, issue #19): tag values from member accounts -------------------------------------------

_JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
                     lambda inner: st.one_of(st.lists(inner, max_size=4),
                                             st.dictionaries(st.sampled_from(["Owner", "owner", "Tags", "tag:Owner",
                                                                              "Key", "Value", "x"]), inner,
                                                             max_size=4)),
                     max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.none(), st.text(max_size=80)))
def test_any_owner_tag_value_splits_only_on_commas_and_semicolons(value):
    key = own.canonical(value)
    parts = own.recipients(key)
    assert all("," not in p and ";" not in p and p == p.strip() and p for p in parts)
    assert own.canonical(key) == key  # canonical is a fixed point
    assert own.slug(key) == own.slug(own.canonical(value)) and len(own.slug(key)) <= 80


@settings(max_examples=300, deadline=None)
@given(obj=_JSON)
def test_any_tag_structure_gives_an_owner_string(obj):
    found = own.owner_from_tags(obj)
    assert isinstance(found, str)


# Report language: owners' settings, else the accounts' Language tag (only supported values), else the default.
TEST_LANGUAGE_SETTINGS = {"kenji@example.jp": {"language": "ja"},
                          "ops@example.com, sre@example.com": {"language": "ja"}}


@pytest.mark.parametrize(("tags", "language"), [
    pytest.param({"Language": "ja"}, "ja", id="ja"),
    pytest.param({"language": "JA-jp"}, "ja", id="case-and-region-ignored"),
    pytest.param({"Locale": "ja_JP"}, "ja", id="locale-key"),
    pytest.param({"Language": "en"}, "en", id="en"),
    pytest.param({"Language": "fr"}, "", id="unsupported-language"),
    pytest.param({"Language": "ja<script>alert(1)</script>"}, "", id="markup"),
    pytest.param({"Language": "ja-<script>"}, "", id="markup-after-a-valid-prefix"),
    pytest.param({"Language": " ja "}, "ja", id="surrounding-spaces"),
    pytest.param({"Language": "ja\r\nBcc: evil@example.net"}, "", id="header-injection"),
    pytest.param({"Language": "ja" + "-x" * 40}, "", id="too-long"),
    pytest.param({"Language": ["ja"]}, "", id="not-a-string"),
    pytest.param({"Owner": "a@example.com"}, "", id="no-language-tag"),
])
def test_tag_language_accepts_only_supported_languages(tags, language):
    assert own.tag_language(json.dumps(tags)) == language


def test_tag_language_of_unreadable_tags_is_none():
    assert own.tag_language("not json") == own.tag_language(None) == own.tag_language("[1, 2]") == ""


def test_language_from_the_owners_settings_wins_over_the_account_tag():
    languages = own.Languages(TEST_LANGUAGE_SETTINGS)
    assert languages.split("kenji@example.jp", ["en"]) == [("ja", "kenji@example.jp")]


def test_language_from_the_account_tag_when_the_settings_name_none():
    languages = own.Languages(TEST_LANGUAGE_SETTINGS)
    assert languages.split("alice@example.com", ["ja", "", "ja"]) == [("ja", "alice@example.com")]


@pytest.mark.parametrize("account_languages", [
    pytest.param(["ja<script>"], id="hostile-tag"),
    pytest.param(["ja", "en"], id="accounts-disagree"),
    pytest.param([], id="no-accounts"),
])
def test_language_falls_back_to_english(account_languages):
    assert own.Languages(TEST_LANGUAGE_SETTINGS).split("alice@example.com", account_languages) == [
        ("en", "alice@example.com")]


def test_default_language_from_the_report_settings():
    languages = own.Languages.from_settings({"owners": {}, "report": {"language": "ja"}})
    assert languages.split("alice@example.com") == [("ja", "alice@example.com")]


def test_recipients_reading_different_languages_get_one_group_each():
    groups = own.Languages(TEST_LANGUAGE_SETTINGS).split("alice@example.com, kenji@example.jp, zoe@example.com")
    assert groups == [("en", "alice@example.com, zoe@example.com"), ("ja", "kenji@example.jp")]


def test_a_whole_owner_key_in_the_settings_applies_to_each_address():
    groups = own.Languages(TEST_LANGUAGE_SETTINGS).split(own.canonical("SRE@example.com; ops@example.com"))
    assert groups == [("ja", "ops@example.com, sre@example.com")]


def test_the_org_summary_language_is_the_default_when_its_recipients_disagree():
    languages = own.Languages(TEST_LANGUAGE_SETTINGS)
    assert languages.of("kenji@example.jp") == "ja"
    assert languages.of("alice@example.com, kenji@example.jp") == "en"

"""Package search queries: what the pattern language accepts and refuses, how versions compare (PEP 440 and
distribution strings), and that a refused query names its field; no store or AWS needed."""

from __future__ import annotations

import pytest

from include.awsgov.software import search as ps


@pytest.mark.parametrize(("pattern", "name", "hit"), [
    pytest.param("log4j*", "log4j", True, id="star-empty"),
    pytest.param("LOG4J*", "log4j-core", True, id="case-insensitive"),
    pytest.param("openssl", "openssl-libs", False, id="whole-name"),
    pytest.param("*ssm*agent*", "Amazon SSM Agent", True, id="spaces"),
    pytest.param("python?", "python3", True, id="question-mark"),
    pytest.param("(a+)+x", "(a+)+x", True, id="parentheses-and-plus-are-literal"),
    pytest.param("(a+)+x", "aaaax", False, id="no-regex-semantics"),
    pytest.param("a.b", "axb", False, id="dot-is-literal"),
])
def test_glob_matches_whole_names_literally(pattern, name, hit):
    assert bool(ps.compile_pattern(pattern).fullmatch(name)) is hit


@pytest.mark.parametrize(("pattern", "message"), [
    pytest.param("log4j[0-9]", "not a safe glob", id="brackets"),
    pytest.param("a|b", "not a safe glob", id="alternation"),
    pytest.param("^log4j$", "not a safe glob", id="anchors"),
    pytest.param("log\\4j", "not a safe glob", id="backslash"),
    pytest.param("", "not a safe glob", id="empty"),
    pytest.param("x" * 129, "not a safe glob", id="too-long"),
    pytest.param("*", "too broad", id="star"),
    pytest.param("?* ", "too broad", id="wildcards-and-space"),
    pytest.param("a*b*c*d*e*f", "at most 4", id="five-stars"),
])
def test_unsafe_or_too_broad_patterns_are_refused_with_a_reason(pattern, message):
    with pytest.raises(ps.QueryError, match=message):
        ps.compile_pattern(pattern)


@pytest.mark.parametrize(("constraint", "version", "hit"), [
    pytest.param("<2.17.1", "2.14.1", True, id="below"),
    pytest.param("<2.17.1", "2.17.1", False, id="equal-is-not-below"),
    pytest.param(">=2.0,<3", "2.20.0", True, id="range"),
    pytest.param("2.16.0", "2.16.0", True, id="bare-version-is-equal"),
    pytest.param("==3.0.*", "3.0.2-0ubuntu1.10", True, id="distro-version-leading-part"),
    pytest.param("<5.2", "5.1-6ubuntu1", True, id="debian-revision"),
    pytest.param(">=0", "-1", False, id="no-numeric-part-never-matches"),
    pytest.param(None, "anything", True, id="no-constraint"),
])
def test_version_constraints(constraint, version, hit):
    assert ps.version_matches(ps.parse_constraint(constraint), version) is hit


@pytest.mark.parametrize("constraint", ["<<2", "latest", "2.17.1; rm -rf /", ">= 2 ||"])
def test_bad_constraints_are_refused(constraint):
    with pytest.raises(ps.QueryError, match="constraint"):
        ps.parse_constraint(constraint)


@pytest.mark.parametrize(("params", "field"), [
    pytest.param({"pattern": ["log4j"]}, "pattern", id="pattern-not-a-string"),
    pytest.param({"pattern": "log4j", "accounts": ["1234"]}, "accounts", id="short-account"),
    pytest.param({"pattern": "log4j", "ous": ["<b>Prod</b>"]}, "ous", id="ou-markup"),
    pytest.param({"pattern": "log4j", "day": "2026-13-01"}, "day", id="bad-day"),
])
def test_a_refused_query_names_its_field(params, field):
    with pytest.raises(ps.QueryError, match=field):
        ps.SearchQuery.from_params(params)


def test_csv_cells_that_spreadsheets_would_run_are_prefixed():
    rows = [{"account_id": "123456789012", "name": "=HYPERLINK(\"x\")", "publisher": "+cmd", "version": "-1"}]
    text = ps.to_csv(rows).decode("utf-8-sig").splitlines()
    assert text[1].count("'=HYPERLINK") == 1 and "'+cmd" in text[1] and ",'-1," in text[1]

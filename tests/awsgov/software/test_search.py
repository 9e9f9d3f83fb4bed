"""Package search queries: what the pattern language accepts and refuses, how versions compare (PEP 440 and
distribution strings), and that a refused query names its field; no store or AWS needed."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- hostile names (issue #19 item 6): matching work is bounded by len(name) x len(pattern) ---------------------------
class _CountingParts:
    """Reference primitives for glob_fullmatch that count every character comparison they make."""

    def __init__(self, pattern: str, name: str) -> None:
        self.parts, self.name, self.compared, self.searches = pattern.casefold().split("*"), name.casefold(), 0, 0

    def _here(self, i: int, pos: int) -> bool:
        for offset, char in enumerate(self.parts[i]):
            self.compared += 1
            if char != "?" and char != self.name[pos + offset]:
                return False
        return True

    def at(self, i: int, pos: int) -> bool:
        return pos + len(self.parts[i]) <= len(self.name) and self._here(i, pos)

    def find(self, i: int, start: int, stop: int) -> int:
        self.searches += 1
        for pos in range(start, stop - len(self.parts[i]) + 1):
            if self._here(i, pos):
                return pos
        return -1

    def run(self) -> bool:
        return ps.glob_fullmatch(self.parts, self.name, self.at, self.find)


HOSTILE = [
    pytest.param("*a*a*a*a", "a" * 399 + "b", id="four-stars-no-final-a"),
    pytest.param("a*a*a*a*ab", "a" * 400, id="four-stars-missing-suffix"),
    pytest.param("*aab*aab*aab*aac", "aab" * 133 + "a", id="repeated-near-miss"),
    pytest.param("*a?a*a?a*a?ab*", "a" * 400, id="question-marks"),
    pytest.param("*aaaaaaaaaaaaaaaaaaaab*", "a" * 400, id="long-part-near-miss"),
]


@pytest.mark.parametrize(("pattern", "name"), HOSTILE)
def test_hostile_names_cost_at_most_name_times_pattern_comparisons(pattern, name):
    counter = _CountingParts(pattern, name)
    assert counter.run() is False
    assert counter.compared <= (len(name) + 1) * (len(pattern) + 1)
    assert counter.searches <= pattern.count("*")  # each middle part is searched once: no backtracking


@pytest.mark.parametrize(("pattern", "name"), HOSTILE)
def test_doubling_a_hostile_name_at_most_doubles_the_work(pattern, name):
    short, long = _CountingParts(pattern, name), _CountingParts(pattern, name * 2)
    short.run(), long.run()
    assert long.compared <= 2 * short.compared + (len(pattern) + 1) ** 2  # linear: no n^2 or worse term


@pytest.mark.parametrize(("pattern", "name"), HOSTILE)
def test_the_product_matcher_answers_hostile_names_like_the_reference(pattern, name):
    # With the old backtracking regex the first case alone took 23 s (n^4); the matcher now is segment by segment.
    assert ps.compile_pattern(pattern).fullmatch(name) is _CountingParts(pattern, name).run() is False


def test_names_over_the_length_cap_never_match():
    glob = ps.compile_pattern("*ab*")
    assert glob.fullmatch("ab" * (ps.MAX_NAME_LENGTH // 2)) is True
    assert glob.fullmatch("ab" * (ps.MAX_NAME_LENGTH // 2) + "x") is False


# -- store paths and trailing newlines (issue #19 item 9) -------------------------------------------------------------
@pytest.mark.parametrize("run_id", ["..", ".", "...", "../..", "/..", "manual__..", ""])
def test_search_ids_are_one_safe_folder_name(run_id):
    sid = ps.search_id(run_id)
    assert ps.check_search_id(sid) == sid
    assert sid not in (".", "..") and "/" not in sid


@pytest.mark.parametrize("sid", ["..", ".", "a/b", "a\n", ""])
def test_archive_refuses_a_search_id_that_is_not_one_folder(sid):
    with pytest.raises(ValueError, match="not one store folder name"):
        ps.check_search_id(sid)


@pytest.mark.parametrize(("field", "value"), [
    pytest.param("pattern", "log4j*\n", id="pattern"),
    pytest.param("accounts", ["111111111111\n"], id="account"),
    pytest.param("ous", ["Prod\n"], id="ou"),
])
def test_a_trailing_newline_is_refused(field, value):
    # (A version constraint is stripped of surrounding blanks before it is checked, so it is not listed here.)
    params = {"pattern": "log4j*", field: value}
    with pytest.raises(ps.QueryError):
        ps.SearchQuery.from_params(params)


# -- properties (Hypothesis): outside input never crashes or hangs the parsers ---------------------------------------

_GLOB_CHARS = "ab.?*-"
_NAME_CHARS = "abAB.-\n"


def _reference_regex(pattern: str):
    # The old translation (a backtracking regex): the meaning the linear matcher must keep, on short inputs only.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL)


@settings(max_examples=400, deadline=None)
@given(pattern=st.text(_GLOB_CHARS, min_size=1, max_size=10), name=st.text(_NAME_CHARS, max_size=14))
def test_the_linear_matcher_means_what_the_regex_meant(pattern, name):
    try:
        glob = ps.compile_pattern(pattern)
    except ps.QueryError:
        return  # refused patterns never match anything
    assert glob.fullmatch(name) is bool(_reference_regex(pattern).fullmatch(name))


@settings(max_examples=200, deadline=None)
@given(pattern=st.text(max_size=140))
def test_any_pattern_text_is_compiled_or_refused_with_a_query_error(pattern):
    try:
        ps.compile_pattern(pattern)
    except ps.QueryError:
        pass


@settings(max_examples=200, deadline=None)
@given(constraint=st.one_of(st.none(), st.text(max_size=110)), version=st.one_of(st.none(), st.text(max_size=40)))
def test_any_constraint_and_version_text_is_parsed_or_refused(constraint, version):
    try:
        spec = ps.parse_constraint(constraint)
    except ps.QueryError:
        return
    assert ps.version_matches(spec, version) in (True, False)


@settings(max_examples=200, deadline=None)
@given(run_id=st.text(max_size=200))
def test_any_run_id_becomes_one_safe_folder_name(run_id):
    sid = ps.search_id(run_id)
    assert ps.check_search_id(sid) == sid

"""Settings load from the YAML defaults, merge overrides and reject what the schema does not know."""

from __future__ import annotations

import pytest

from include.awsgov.core.settings import SettingsError, load_settings


def test_defaults_load_and_validate():
    cfg = load_settings()
    assert cfg["aws_conn_id"] == "aws_default"
    assert cfg["read_role_name"] == "GovernanceReadRole"
    assert cfg["mail"]["transport"] in {"ses", "smtp"}


def test_overrides_merge_nested_keys():
    cfg = load_settings({"mail": {"transport": "smtp"}, "regions": ["eu-west-1"]})
    assert cfg["mail"]["transport"] == "smtp"
    assert cfg["mail"]["sender"] == "governance@example.com"
    assert cfg["regions"] == ["eu-west-1"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        pytest.param({"regionz": ["x"]}, "Additional properties are not allowed", id="unknown-key"),
        pytest.param({"regions": ["mars-1"]}, "regions.0", id="bad-region"),
        pytest.param({"mail": {"transport": "pigeon"}}, "mail.transport", id="bad-transport"),
    ],
)
def test_invalid_settings_are_refused_naming_the_key(override, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(override)


# -- JSON-schema patterns refuse a trailing newline (issue #19 item 9) ----------------------------------------------
# Python's jsonschema (what load_settings and Airflow's Params use) runs `pattern` with re.search, where `$` also
# matches before a final "\n"; every pattern therefore ends in \Z.
def _patterns(node, where=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield where, value
            elif key == "patternProperties" and isinstance(value, dict):
                yield from ((f"{where}/patternProperties", k) for k in value)
            yield from _patterns(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _patterns(item, f"{where}/{i}")


def _config_patterns():
    import json
    from pathlib import Path

    import yaml

    config = Path(__file__).resolve().parents[3] / "include" / "config"
    found = []
    for path in sorted((config / "schema").glob("*.json")):
        found += [(f"{path.name}{w}", p) for w, p in _patterns(json.loads(path.read_text()))]
    for path in sorted(config.glob("*.yaml")):
        found += [(f"{path.name}{w}", p) for w, p in _patterns(yaml.safe_load(path.read_text()))]
    # Patterns anchored at the end (prefix checks such as ^https:// are not, on purpose).
    return [pytest.param(p, id=w) for w, p in found if p.endswith(("$", "\\Z"))]


@pytest.mark.parametrize("pattern", _config_patterns())
def test_config_schema_patterns_refuse_a_trailing_newline(pattern):
    """What the validator accepts (re.search of an anchored pattern) is a whole-string match, also when a newline is
    appended to a valid value: with `$` the search accepts "value\\n" although the pattern does not match it whole."""
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=10, deadline=None)
    @given(st.from_regex(pattern))
    def check(value):
        for candidate in (value, value + "\n"):
            accepted = re.search(pattern, candidate) is not None
            assert accepted == (re.fullmatch(pattern, candidate) is not None), f"{pattern!r} on {candidate!r}"

    check()

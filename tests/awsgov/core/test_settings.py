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

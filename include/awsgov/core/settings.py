"""Settings: defaults from include/config/settings.yaml, overridden by a JSON/YAML mapping, schema-checked.

Airflow-free: DAG tasks pass the Airflow Variable ``awsgov_settings`` in as ``overrides`` (see airflow_conn.py);
scripts and tests use the ``AWSGOV_SETTINGS`` file or explicit overrides.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


class SettingsError(ValueError):
    """Settings that do not match the schema; the message names the key and the problem."""


@lru_cache(maxsize=1)
def _schema() -> dict:
    return json.loads((CONFIG_DIR / "schema" / "settings.schema.json").read_text())


def _merge(base: dict, extra: Mapping[str, Any]) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return validated settings: defaults, then the AWSGOV_SETTINGS file, then ``overrides``.

    :param overrides: a partial mapping (e.g. the Airflow Variable ``awsgov_settings``).
    """
    settings = yaml.safe_load((CONFIG_DIR / "settings.yaml").read_text())
    env_file = os.environ.get("AWSGOV_SETTINGS")
    if env_file:
        settings = _merge(settings, yaml.safe_load(Path(env_file).read_text()) or {})
    if overrides:
        settings = _merge(settings, overrides)
    if os.environ.get("AWSGOV_STORE_URL"):
        settings["store_url"] = os.environ["AWSGOV_STORE_URL"]
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(settings), key=lambda e: list(e.path))
    if errors:
        detail = "; ".join(f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors)
        raise SettingsError(f"invalid awsgov settings: {detail}")
    return settings

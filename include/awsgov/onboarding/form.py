"""The onboarding trigger form and its texts: include/config/onboarding.yaml, read at DAG parse time.

Light on purpose (YAML only): the account_onboarding DAG builds its Params from :func:`param_specs` when it is
parsed, and nothing that needs boto3 or pandas may load then.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["INCLUDE", "config", "param_specs"]

INCLUDE = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def config() -> dict[str, Any]:
    """include/config/onboarding.yaml: the trigger form, defaults and messages."""
    return yaml.safe_load((INCLUDE / "config" / "onboarding.yaml").read_text())


def param_specs() -> dict[str, dict[str, Any]]:
    """Keyword arguments of one Airflow ``Param`` per trigger field (``default`` plus JSON-schema keywords)."""
    return {name: dict(spec) for name, spec in config()["params"].items()}

"""Environment for running this repo's Airflow against the local sandbox (make demo, make airflow, tests).

Production sets the same things through real Airflow connections and Variables; nothing here is read by
product code except through those Airflow interfaces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

# Sandbox admin credentials: any key that moto does not know lands in the default (management) account.
SANDBOX_KEY_ID = "AKIASANDBOXADMIN0001"
SANDBOX_SECRET = "sandbox-admin-secret"  # noqa: S105 - a local emulator's key, not a secret


def venv_path(path: str) -> str:
    """``path`` (a PATH value) with this virtualenv's bin directory first, once.

    :param path: the current PATH.
    """
    rest = [entry for entry in path.split(os.pathsep) if entry and entry != str(VENV_BIN)]
    return os.pathsep.join([str(VENV_BIN), *rest])


def airflow_env(sandbox_info: dict, home: Path, store_url: str, extra_settings: dict | None = None) -> dict[str, str]:
    """Variables that point Airflow (connection aws_default, Variables) at a running sandbox.

    :param sandbox_info: the sandbox's sandbox.json content (endpoint, external_id, ...).
    :param home: AIRFLOW_HOME (metadata DB, logs).
    :param store_url: the history store's base URL.
    :param extra_settings: more keys for the ``awsgov_settings`` Variable.
    """
    endpoint = sandbox_info["endpoint"]
    conn = {
        "conn_type": "aws",
        "login": SANDBOX_KEY_ID,
        "password": SANDBOX_SECRET,
        "extra": {
            "region_name": "us-east-1",
            "endpoint_url": endpoint,
            "service_config": {"sts": {"endpoint_url": endpoint}},
            "config_kwargs": {"retries": {"mode": "adaptive", "max_attempts": 8}},
        },
    }
    settings = {"store_url": store_url, "regions": sandbox_info.get("regions", ["us-east-1"])}
    settings.update(extra_settings or {})
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        # `airflow standalone` starts its components (scheduler, api-server, ...) as the bare command `airflow`:
        # without the virtualenv's bin first on PATH they die with FileNotFoundError.
        "PATH": venv_path(os.environ.get("PATH", "")),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn),
        "AIRFLOW_VAR_AWSGOV_EXTERNAL_ID": sandbox_info["external_id"],
        "AIRFLOW_VAR_AWSGOV_SETTINGS": json.dumps(settings),
        # governance_events' AssetWatcher polls the central stack's queue (created by onboarding); read at parse.
        "AWSGOV_EVENTS_QUEUE_URL": f"https://sqs.us-east-1.amazonaws.com/{sandbox_info['management_account_id']}"
                                   "/governance-events",
        # Keep every AWS SDK call on the sandbox, even from code that ignores the connection.
        "AWS_ACCESS_KEY_ID": SANDBOX_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SANDBOX_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def migrate_db(env: dict[str, str]) -> None:
    """Create or upgrade the SQLite metadata DB under AIRFLOW_HOME (needed by dag.test())."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env={**os.environ, **env}, check=True,
                   stdout=subprocess.DEVNULL)

"""docker-compose.yaml has the official topology, mounts the repo on one import path and bakes in no secrets."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_compose_has_the_distributed_airflow_services():
    services = set(COMPOSE["services"])
    assert {"postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer", "airflow-worker", "airflow-init"} <= services


def test_airflow_services_use_celery_and_mount_the_repo():
    for name, svc in COMPOSE["services"].items():
        if not name.startswith("airflow-"):
            continue
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["PYTHONPATH"] == "/opt/airflow"
        mounts = {m.split(":")[1] for m in svc["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/include", "/opt/airflow/plugins"} <= mounts


def test_init_creates_the_pool_the_dags_use():
    command = " ".join(COMPOSE["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in command
    assert "airflow pools set aws_api" in command


def test_no_aws_secret_is_baked_into_the_file():
    env = COMPOSE["services"]["airflow-worker"]["environment"]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert re.fullmatch(r"\$\{[A-Z_]+:-\}", env[key]), f"{key} must come from the environment"


def test_image_is_built_from_the_pinned_airflow_version():
    dockerfile = (REPO / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M).group(1)
    assert f"FROM apache/airflow:{pinned}-" in dockerfile

"""docker-compose.yaml has the official topology, mounts the repo on one import path and bakes in no secrets."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from include.awsgov.core.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
AIRFLOW_SERVICES = {name: svc for name, svc in COMPOSE["services"].items() if name.startswith("airflow-")}
FROM_ENV = r"\$\{[A-Z_]+:-\}"  # optional, empty when unset
REQUIRED_FROM_ENV = r"\$\{[A-Z_]+:\?[^}]+\}"  # compose refuses to start without it


def test_compose_has_the_distributed_airflow_services():
    services = set(COMPOSE["services"])
    assert {"postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer", "airflow-worker", "airflow-init"} <= services


def test_airflow_services_use_celery_and_mount_the_repo():
    for name, svc in AIRFLOW_SERVICES.items():
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["PYTHONPATH"] == "/opt/airflow", name
        mounts = {m.split(":")[1] for m in svc["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/include", "/opt/airflow/plugins"} <= mounts, name


def test_every_airflow_service_sees_the_same_store_volume():
    # The default store_url is relative (data/store under the image's cwd /opt/airflow): workers and the UI must
    # share it, or each worker would write its own history.
    assert load_settings()["store_url"] == "data/store"
    for name, svc in AIRFLOW_SERVICES.items():
        assert "awsgov-data:/opt/airflow/data" in svc["volumes"], name
    assert "awsgov-data" in COMPOSE["volumes"]


def test_init_creates_the_pool_the_dags_use():
    command = " ".join(COMPOSE["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in command
    assert f"airflow pools set {load_settings()['aws_pool']} " in command
    assert command.index("airflow db migrate") < command.index("airflow pools set")


def test_workers_can_be_scaled():
    worker = COMPOSE["services"]["airflow-worker"]
    # A fixed name, hostname or host port would make `--scale airflow-worker=N` fail or merge the replicas.
    assert not {"container_name", "hostname", "ports"} & set(worker)
    assert worker["command"] == "celery worker"
    assert worker["environment"]["AIRFLOW__CELERY__WORKER_CONCURRENCY"]
    assert "inspect ping" in " ".join(worker["healthcheck"]["test"])


def test_no_aws_secret_is_baked_into_the_file():
    env = COMPOSE["services"]["airflow-worker"]["environment"]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWSGOV_EXTERNAL_ID"):
        assert re.fullmatch(FROM_ENV, env[key]), f"{key} must come from the environment"


def test_shared_airflow_secrets_are_required_from_the_environment():
    for name, svc in AIRFLOW_SERVICES.items():
        env = svc["environment"]
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
            assert re.fullmatch(REQUIRED_FROM_ENV, env[key]), f"{name} {key}"
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
            assert re.search(r"airflow:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres/", env[key]), f"{name} {key}"


def test_result_backend_names_the_installed_driver():
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which requirements.txt does not install.
    env = COMPOSE["services"]["airflow-worker"]["environment"]
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    requirements = (REPO / "requirements.txt").read_text()
    assert re.search(r"^psycopg2-binary==", requirements, re.M)
    assert re.search(r"^asyncpg==", requirements, re.M)  # Airflow's async engine maps postgresql to asyncpg
    assert re.search(r"^apache-airflow-providers-celery==", requirements, re.M)


def test_image_is_built_from_the_pinned_airflow_version_and_pins():
    dockerfile = (REPO / "Dockerfile").read_text()
    requirements = (REPO / "requirements.txt").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", requirements, re.M).group(1)
    assert f"FROM apache/airflow:{pinned}-" in dockerfile
    assert "-c /opt/awsgov/constraints.txt" in dockerfile
    packages = [line for line in requirements.splitlines() if line.strip() and not line.startswith("#")]
    assert all("==" in line for line in packages), "every requirement must be pinned"


# -- issue #19: broker, Flower and api-server access ---------------------------------------------------------------
def test_redis_asks_for_a_password_that_every_airflow_service_gives():
    redis = COMPOSE["services"]["redis"]
    assert re.fullmatch(REQUIRED_FROM_ENV, redis["environment"]["REDIS_PASSWORD"])
    assert "--requirepass" in " ".join(redis["command"]) and "$$REDIS_PASSWORD" in " ".join(redis["command"])
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])  # the health check authenticates too
    for name, svc in {**AIRFLOW_SERVICES, "flower": COMPOSE["services"]["flower"]}.items():
        broker = svc["environment"]["AIRFLOW__CELERY__BROKER_URL"]
        assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379/0", broker), (name, broker)


def test_flower_asks_for_a_login_and_listens_on_loopback_only():
    flower = COMPOSE["services"]["flower"]
    assert re.fullmatch(REQUIRED_FROM_ENV, flower["environment"]["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"])
    assert flower["ports"] == ["127.0.0.1:5555:5555"]


def test_api_server_listens_on_loopback_and_its_tls_and_auth_options_are_documented():
    assert COMPOSE["services"]["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080"]
    text = (REPO / "docker-compose.yaml").read_text()
    deploy = (REPO / "docs" / "deploy.md").read_text()
    for option in ("AIRFLOW__API__SSL_CERT", "AIRFLOW__API__SSL_KEY", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"):
        assert option in text and option in deploy, option

"""`make airflow`: Airflow standalone (api-server, scheduler, dag-processor, triggerer) with this repo's DAGs,
pointed at the local sandbox (started here if none is running), with the pools the DAGs use.

The UI is at http://localhost:8080; log in as `admin` with the password Airflow prints at start-up (also stored in
.airflow/local/simple_auth_manager_passwords.json.generated).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.localenv import REPO, VENV_BIN, airflow_env, migrate_db  # noqa: E402

POOLS = {"aws_api": (16, "Concurrent AWS API work across all governance DAGs (see README: sizing)")}


def main() -> None:
    from sandbox.runner import Sandbox

    state = REPO / ".sandbox" / "sandbox.json"
    if state.exists():
        info = json.loads(state.read_text())
        print(f"using the running sandbox at {info['endpoint']}")
    else:
        sb = Sandbox(accounts=12, port=5055, state_dir=REPO / ".sandbox").start(detach=True)
        info = sb.info
        print(f"started the sandbox at {info['endpoint']} (stop it with `make sandbox-stop`)")
    env = {**os.environ, **airflow_env(info, REPO / ".airflow" / "local", str(REPO / "data" / "store"))}
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin"
    migrate_db(env)
    for name, (slots, description) in POOLS.items():
        subprocess.run([str(VENV_BIN / "airflow"), "pools", "set", name, str(slots), description], env=env,
                       check=True, stdout=subprocess.DEVNULL)
    print("Airflow UI: http://localhost:8080  (user admin; password printed below by Airflow)")
    os.execve(str(VENV_BIN / "airflow"), [str(VENV_BIN / "airflow"), "standalone"], env)  # noqa: S606


if __name__ == "__main__":
    main()

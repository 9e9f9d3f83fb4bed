"""`make distributed`: the DAGs on a distributed Airflow (CeleryExecutor), the docker-compose topology on loopback.

Without Docker, from Debian packages (PostgreSQL, Redis; installed with apt-get when missing) and the venv's pip
packages (Airflow + the Celery provider), under one temporary directory and on free ports:

    sandbox (emulated AWS Organization)   PostgreSQL (metadata DB + Celery results)   redis-server (broker)
    airflow db migrate -> scheduler, dag-processor, triggerer, api-server, two Celery workers (queue `default`)

then, through the REST API (/api/v2, JWT from the simple auth manager): creates the `aws_api` pool, triggers
`account_onboarding` for the sandbox's new accounts and `governance_collection` for today, waits for both runs,
checks the store (inventory rows, the day's coverage and findings partitions) and that task instances ran on both
workers, prints the figures, and tears down exactly the processes it started (their process groups and
descendants; nothing is killed by name). Exit code 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKERS = ("awsgov-worker-1", "awsgov-worker-2")
ONBOARD_REGIONS = ["us-east-1", "eu-west-1"]
POOLS = {"aws_api": (16, "Concurrent AWS API work across all governance DAGs (docs/deploy.md: sizing)")}


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the Celery workers: both run on this host, so each reports its own name
    (the task instance ``hostname`` the API returns); other components keep the host's FQDN."""
    return os.environ.get("AWSGOV_WORKER_HOSTNAME") or socket.getfqdn()


# --- processes we own ----------------------------------------------------------------------------------------------
class Processes:
    """Processes started here, each in its own session (process group); stop() ends only those groups and the
    descendants recorded from them."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str], user: str | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(cmd, env=env, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    user=user, group=pwd.getpwnam(user).pw_gid if user else None,
                                    extra_groups=[] if user else None)
        finally:
            log.close()
        self.procs.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join((self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> list[str]:
        """Airflow first, then the services it needs (PostgreSQL, Redis): each main process is asked to stop
        (SIGTERM; SIGINT = fast shutdown for PostgreSQL) and stops its own children; after ``timeout`` seconds
        its whole process group, and every descendant recorded before, is killed."""
        services = {"postgres", "redis"}
        killed = self._stop([p for p in self.procs if p[0] not in services], timeout)
        killed += self._stop([p for p in self.procs if p[0] in services], timeout)
        self.procs.clear()
        return killed

    @staticmethod
    def _stop(procs: list[tuple[str, subprocess.Popen]], timeout: float) -> list[str]:
        import psutil

        owned: list[psutil.Process] = []
        for name, proc in procs:
            if proc.poll() is not None:
                continue
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(proc.pid)
                owned += [root, *root.children(recursive=True)]
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT if name == "postgres" else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        killed = []
        for name, proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(name)
        for _, proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group we created with start_new_session
            proc.wait()
        # Descendants that left the group (a setsid in a child) were recorded above; psutil compares the creation
        # time too, so a recycled pid is never hit.
        for p in [p for p in owned if not process_gone(p)]:
            with contextlib.suppress(psutil.Error):
                p.kill()
        deadline = time.monotonic() + 5
        while not all(process_gone(p) for p in owned) and time.monotonic() < deadline:
            time.sleep(0.05)
        return killed


def process_gone(proc) -> bool:
    """Exited (a zombie counts: it runs nothing, and only its parent can reap it)."""
    import psutil

    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, check, timeout: float, procs: Processes | None = None, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        if procs:
            procs.check_alive()
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --- Debian packages: PostgreSQL and Redis ------------------------------------------------------------------------
def pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(dirs[-1]).parent if dirs else None


def ensure_debian_packages() -> None:
    """Install PostgreSQL and redis-server with apt-get when missing (root, or through sudo)."""
    missing = [pkg for pkg, ok in [("postgresql", pg_bindir()), ("redis-server", shutil.which("redis-server"))]
               if not ok]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if not shutil.which("apt-get") or (sudo and not shutil.which("sudo")):
        raise SystemExit(f"missing {', '.join(missing)} and no apt-get (or sudo) to install them")
    print(f"installing Debian packages: {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def start_postgres(procs: Processes, root: Path) -> str:
    """A private cluster (initdb in root/pg, its own port, password auth, loopback only); returns the DSN."""
    bindir = pg_bindir()
    # PostgreSQL refuses to run as root: run it as the `postgres` system user (or nobody) in that case.
    user = None
    if os.geteuid() == 0:
        user = "postgres" if _user_exists("postgres") else "nobody"
    data, password = root / "pg", secrets.token_urlsafe(16)
    data.mkdir()
    pwfile = root / "pg.pw"
    pwfile.write_text(password)
    if user:
        entry = pwd.getpwnam(user)
        for path in (data, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    run_as = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}
    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "airflow", f"--pwfile={pwfile}",
                    "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, stdout=subprocess.DEVNULL, cwd=str(data), **run_as)
    pwfile.unlink()
    port = free_port()
    procs.start("postgres", [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
                             "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200",
                             "-c", "fsync=off", "-c", "synchronous_commit=off"],  # a throwaway cluster
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}, user=user)
    import psycopg2

    def connect():
        return psycopg2.connect(host="127.0.0.1", port=port, user="airflow", password=password, dbname="postgres")

    conn = wait_for("PostgreSQL", connect, 60, procs, 0.2)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE airflow")
    conn.close()
    return f"airflow:{password}@127.0.0.1:{port}/airflow"


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def start_redis(procs: Processes, root: Path) -> str:
    """A private redis-server (loopback, its own port, a password, no persistence); returns the broker URL."""
    port, password = free_port(), secrets.token_urlsafe(16)
    conf = root / "redis.conf"
    conf.write_text(f"bind 127.0.0.1\nport {port}\nrequirepass {password}\nsave \"\"\nappendonly no\n"
                    f"dir {root}\ndaemonize no\n")
    conf.chmod(0o600)
    procs.start("redis", [shutil.which("redis-server"), str(conf)], env={"PATH": os.environ.get("PATH", "")})

    def ping() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            while b"\r\n" not in reply.partition(b"\r\n")[2]:  # two replies: +OK, then +PONG
                reply += sock.recv(64) or b"\r\n\r\n"
            return b"+PONG" in reply

    wait_for("redis", ping, 30, procs, 0.2)
    return f"redis://:{password}@127.0.0.1:{port}/0"


# --- Airflow ------------------------------------------------------------------------------------------------------
def airflow_environment(sandbox_info: dict, home: Path, store_url: str, dsn: str, broker: str, api_port: int,
                        admin_password: str, concurrency: int) -> dict[str, str]:
    """One environment for every component (as the compose file's x-airflow-common), sandbox wiring included."""
    from cryptography.fernet import Fernet

    from scripts.localenv import airflow_env

    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": admin_password}))
    passwords.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
    env.update(airflow_env(sandbox_info, home, store_url))
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{dsn}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{dsn}",  # SQLAlchemy 2.1 defaults to psycopg 3
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        # Shared secrets: every component must agree on them (JWTs between workers and the api-server).
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        # Only the two DAGs we trigger run: the others stay paused, and no cron run competes with ours.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    })
    return env


def airflow(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "airflow"), *args]


class Api:
    """The public REST API with a JWT from the simple auth manager (POST /auth/token)."""

    def __init__(self, base: str, password: str) -> None:
        self.base = base
        self.password = password
        self.token: str | None = None

    def login(self) -> None:
        self.token = self.call("POST", "/auth/token", {"username": "admin", "password": self.password},
                               auth=False)["access_token"]

    def call(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: HTTP {exc.code} {exc.read().decode(errors='replace')[:500]}") \
                from None

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        out: list[dict] = []
        while True:
            page = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
                                    f"?limit=100&offset={len(out)}")
            out += page["task_instances"]
            if not page["task_instances"] or len(out) >= page["total_entries"]:
                return out


def _jwt_unverified_exp(token: str) -> int:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


def wait_run(api: Api, procs: Processes, dag_id: str, run_id: str, timeout: float) -> dict:
    def finished():
        if _jwt_unverified_exp(api.token) - time.time() < 60:
            api.login()
        run = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    return wait_for(f"{dag_id} run {run_id}", finished, timeout, procs, 2.0)


# --- the checks on the store --------------------------------------------------------------------------------------
def check_store(store_url: str, day: dt.date, onboarded: list[str], collected: list[str], run_id: str) -> list[str]:
    """What the two runs must have written; returns failures (empty when all is there)."""
    from include.awsgov.core import tables
    from include.awsgov.core.store import Store

    store, failures = Store(store_url), []
    inventory = store.read("inventory", schema=tables.ONBOARDED_ACCOUNTS)
    got = set(inventory.loc[inventory["status"] == "onboarded", "account_id"])
    if not set(onboarded) <= got:
        failures.append(f"inventory: onboarded rows missing for {sorted(set(onboarded) - got)}")
    print(f"  inventory: {len(inventory)} rows, onboarded {sorted(got & set(onboarded))}")
    for table in ("coverage", "ta_checks", "config_rules", "config_findings"):
        chunks = set(store.chunks(table, day))
        if not set(collected) <= chunks:
            failures.append(f"{table}/dt={day}: no chunk for {sorted(set(collected) - chunks)}")
    coverage = store.read("coverage", day, day, schema=tables.COVERAGE)
    findings = store.read("config_findings", day, day, columns=["account_id", "compliance"])
    ta = store.read("ta_findings", day, day, columns=["account_id"])
    statuses = ", ".join(f"{k} {v}" for k, v in coverage["status"].value_counts().items())
    print(f"  coverage dt={day}: {len(coverage)} rows over {coverage['account_id'].nunique()} accounts "
          f"({statuses}); config_findings {len(findings)} rows "
          f"({int((findings['compliance'] == 'NON_COMPLIANT').sum())} NON_COMPLIANT); ta_findings {len(ta)} rows")
    runs = store.read("collection_runs", day, day, columns=["run_id", "accounts", "api_calls"])
    if list(runs["run_id"]) != [run_id]:
        failures.append(f"collection_runs dt={day}: {list(runs['run_id'])}, expected [{run_id}]")
    else:
        print(f"  collection_runs dt={day}: {run_id}, {int(runs['accounts'][0])} accounts, "
              f"{int(runs['api_calls'][0])} AWS calls")
    if coverage.empty or not findings.shape[0]:
        failures.append(f"dt={day}: coverage or config_findings is empty")
    return failures


# --- the run ------------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=6, help="sandbox member accounts (the last 2 are new)")
    parser.add_argument("--concurrency", type=int, default=4, help="task slots per Celery worker")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for each DAG run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) after teardown")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file (for benchmarks)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    # Ctrl-C or a SIGTERM from CI still runs the teardown below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    t0 = time.perf_counter()
    ensure_debian_packages()
    root = Path(tempfile.mkdtemp(prefix="awsgov-distributed-"))
    root.chmod(0o755)  # PostgreSQL's user must reach root/pg
    (root / "logs").mkdir()
    procs = Processes(root / "logs")
    sandbox = None
    failures: list[str] = []
    figures: dict = {"runs": {}}
    try:
        from sandbox.runner import Sandbox

        sandbox = Sandbox(accounts=args.accounts, new_accounts=2, regions=ONBOARD_REGIONS, time_scale=0.5,
                          state_dir=root / "sandbox").start()
        info = sandbox.info
        dsn = start_postgres(procs, root)
        broker = start_redis(procs, root)
        print(f"state under {root}\nsandbox {info['endpoint']}, PostgreSQL 127.0.0.1:{dsn.split(':')[-1]}, "
              f"redis {broker.rsplit('@', 1)[1]}", flush=True)

        home, api_port, password = root / "airflow", free_port(), secrets.token_urlsafe(16)
        home.mkdir()
        env = airflow_environment(info, home, str(root / "store"), dsn, broker, api_port, password,
                                  args.concurrency)
        migrate = subprocess.run(airflow("db", "migrate"), env=env, capture_output=True, text=True)
        if migrate.returncode:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-2000:]}\n{migrate.stderr[-2000:]}")
        procs.start("api-server", airflow("api-server", "--port", str(api_port), "--host", "127.0.0.1",
                                          "--workers", "1"), env)
        for component in ("scheduler", "dag-processor", "triggerer"):
            procs.start(component, airflow(component), env)
        for name in WORKERS:
            procs.start(name, airflow("celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", "default",
                                      "--concurrency", str(args.concurrency), "--skip-serve-logs"),
                        {**env, "AWSGOV_WORKER_HOSTNAME": name,
                         "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.distributed.worker_hostname"})

        api = Api(f"http://127.0.0.1:{api_port}", password)
        wait_for("the api-server", lambda: api.login() or True, 180, procs, 1.0)
        health = wait_for("scheduler, dag-processor and triggerer heartbeats",
                          lambda: (h := api.call("GET", "/api/v2/monitor/health"))
                          and all(h[c]["status"] == "healthy" for c in ("scheduler", "triggerer", "dag_processor"))
                          and h, 180, procs, 1.0)
        for name in WORKERS:
            wait_for(f"{name} ready", lambda n=name: f"{n}@" in (log := procs.tail(n, 200)) and " ready." in log,
                     180, procs, 1.0)
        dag_ids = ("account_onboarding", "governance_collection")
        for dag_id in dag_ids:
            wait_for(f"{dag_id} parsed", lambda d=dag_id: api.call("GET", f"/api/v2/dags/{d}"), 180, procs, 1.0)
        for name, (slots, description) in POOLS.items():
            api.call("POST", "/api/v2/pools", {"name": name, "slots": slots, "description": description})
        for dag_id in dag_ids:
            api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        startup = figures["startup_s"] = round(time.perf_counter() - t0, 1)
        print(f"up in {startup:.1f}s: metadatabase {health['metadatabase']['status']}, scheduler, dag-processor, "
              f"triggerer healthy; 2 Celery workers ready; DAGs parsed; pool aws_api created", flush=True)

        # Onboarding first: the collection then sees the new accounts with their read role.
        new = [a["id"] for a in info["accounts"] if not a.get("read_role") and a["status"] == "ACTIVE"]
        day = dt.datetime.now(dt.UTC).date()
        plan = [("account_onboarding", {"account_ids": new, "regions": ONBOARD_REGIONS,
                                        "owner_email": "platform-lead@example.com", "team": "Platform",
                                        "environment": "prod"}),
                ("governance_collection", {"date": day.isoformat()})]
        runs, per_worker = {}, {}
        for dag_id, conf in plan:
            started = time.perf_counter()
            run = api.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
            final = wait_run(api, procs, dag_id, run["dag_run_id"], args.timeout)
            tis = api.task_instances(dag_id, run["dag_run_id"])
            ran = [ti for ti in tis if ti["state"] in ("success", "failed")]
            hosts = {}
            for ti in ran:
                hosts[ti["hostname"]] = hosts.get(ti["hostname"], 0) + 1
                per_worker[ti["hostname"]] = per_worker.get(ti["hostname"], 0) + 1
            runs[dag_id] = final
            figures["runs"][dag_id] = {"state": final["state"], "seconds": round(time.perf_counter() - started, 1),
                                       "task_instances": len(tis), "tasks_per_worker": hosts}
            print(f"{dag_id} {final['dag_run_id']}: {final['state']} in {time.perf_counter() - started:.1f}s "
                  f"(trigger to end; {len(tis)} task instances, {len(ran)} ran: "
                  + ", ".join(f"{h} {n}" for h, n in sorted(hosts.items())) + ")", flush=True)
            if final["state"] != "success":
                bad = [f"{ti['task_id']}[{ti['map_index']}]={ti['state']}" for ti in tis
                       if ti["state"] not in ("success", "skipped")]
                failures.append(f"{dag_id} run {final['state']}: {bad}")
                break

        print(f"tasks per worker: {json.dumps(per_worker, sort_keys=True)}")
        figures["tasks_per_worker"] = per_worker
        if set(per_worker) != set(WORKERS):
            failures.append(f"task instances ran on {sorted(per_worker)}, expected both of {list(WORKERS)}")
        if len(runs) == 2 and not failures:
            collected = [a["id"] for a in sandbox.refresh_info()["accounts"] if a["status"] == "ACTIVE"]
            print("store:")
            failures += check_store(str(root / "store"), day, new, collected,
                                    runs["governance_collection"]["dag_run_id"])
    except Exception as exc:  # noqa: BLE001 - reported with the logs, then torn down
        failures.append(f"{type(exc).__name__}: {exc}")
        for name, _ in procs.procs:
            print(f"--- {name} log (tail) ---\n{procs.tail(name, 15)}", file=sys.stderr)
    finally:
        t_down = time.perf_counter()
        killed = procs.stop()
        if sandbox is not None:
            sandbox.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        print(f"teardown {time.perf_counter() - t_down:.1f}s ("
              + (f"killed after the timeout: {', '.join(killed)}" if killed else "every process exited when asked")
              + f"); total wall time {time.perf_counter() - t0:.1f}s")
    figures.update(teardown_s=round(time.perf_counter() - t_down, 1), total_s=round(time.perf_counter() - t0, 1),
                   killed_after_timeout=killed, failures=failures, ok=not failures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True))
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("OK: both runs succeeded on two Celery workers and the store holds their outputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

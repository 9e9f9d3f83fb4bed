"""Start, find, drive and stop a sandbox server process (Python API for fixtures and scripts).

    from sandbox.runner import Sandbox
    with Sandbox(accounts=12).start() as sb:      # port 0: a free port
        sb.endpoint, sb.info["external_id"]
        sb.set_faults(throttle_rate=0.3); sb.clear_faults()
        sb.set_date("2026-11-23"); sb.truth()
        sb.calls(); sb.reset_calls()
        sb.client("config", account_id=sb.info["member_account_ids"][0], region="eu-west-1")
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = "sandbox.json"
QUOTA_SCALE_ENV = "SANDBOX_QUOTA_SCALE"
LOG_FILE = "sandbox.log"


class SandboxError(RuntimeError):
    """The sandbox could not be started, reached or stopped; the message says why."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class Sandbox:
    """A sandbox server process.

    :param accounts: member accounts to seed.
    :param port: port to bind; 0 picks a free one.
    :param state_dir: where sandbox.json and sandbox.log go (default: a new temporary directory, removed by stop()).
    :param seed: seed of all generated data.
    :param date: the sandbox's "today" (YYYY-MM-DD); None for the real UTC date.
    :param regions: regions with Config data.
    :param read_role_name: name of the cross-account read role.
    :param external_id: ExternalId of the read role (derived from the seed if None).
    :param seed_metrics_accounts: metrics for the first N accounts (None: all up to 50).
    :param host: address to bind.
    :param startup_timeout: seconds to wait for the server to be ready.
    :param new_accounts: how many of the last member accounts have no read role yet (to be onboarded).
    :param time_scale: multiplies timed transitions (TA refresh, StackSet operations); < 1 for fast tests.
    :param profile: ``default`` or ``realistic`` (see sandbox/settings.py and resources/realistic.json).
    :param quota_scale: multiplies the modelled request-rate quotas (docs/quotas.md); 1 = AWS's rates, 0 = off;
        None: the ``SANDBOX_QUOTA_SCALE`` environment variable, else 1 (e.g. ``SANDBOX_QUOTA_SCALE=0 make test`` to
        compare a whole run without quotas).
    """

    def __init__(
        self,
        accounts: int = 12,
        port: int = 0,
        state_dir: str | Path | None = None,
        seed: int = 7,
        date: str | dt.date | None = None,
        regions: list[str] | None = None,
        read_role_name: str | None = None,
        external_id: str | None = None,
        seed_metrics_accounts: int | None = None,
        new_accounts: int = 2,
        host: str = "127.0.0.1",
        startup_timeout: float = 120.0,
        time_scale: float = 1.0,
        quota_scale: float | None = None,
        profile: str = "default",
    ) -> None:
        self.accounts = accounts
        self.port = port
        self._own_state_dir = state_dir is None
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="sandbox-"))
        self.seed = seed
        self.date = str(date) if date else None
        self.regions = regions
        self.read_role_name = read_role_name
        self.external_id = external_id
        self.seed_metrics_accounts = seed_metrics_accounts
        self.new_accounts = new_accounts
        self.host = host
        self.startup_timeout = startup_timeout
        self.time_scale = time_scale
        if quota_scale is None:
            quota_scale = float(os.environ.get(QUOTA_SCALE_ENV) or 1.0)
        self.quota_scale = quota_scale
        self.profile = profile
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen | None = None
        self._atexit = False

    # --- lifecycle ----------------------------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def log_file(self) -> Path:
        return self.state_dir / LOG_FILE

    @property
    def endpoint(self) -> str:
        return self.info["endpoint"]

    @property
    def pid(self) -> int | None:
        return self.info.get("pid")

    def command(self) -> list[str]:
        """The ``python -m sandbox serve ...`` command line this object starts."""
        cmd = [sys.executable, "-m", "sandbox", "serve", "--accounts", str(self.accounts), "--port", str(self.port),
               "--host", self.host, "--state-dir", str(self.state_dir), "--seed", str(self.seed)]
        if self.date:
            cmd += ["--date", self.date]
        if self.regions:
            cmd += ["--regions", ",".join(self.regions)]
        if self.read_role_name:
            cmd += ["--read-role-name", self.read_role_name]
        if self.external_id:
            cmd += ["--external-id", self.external_id]
        if self.seed_metrics_accounts is not None:
            cmd += ["--seed-metrics-accounts", str(self.seed_metrics_accounts)]
        if self.time_scale != 1.0:
            cmd += ["--time-scale", str(self.time_scale)]
        if self.quota_scale != 1.0:
            cmd += ["--quota-scale", str(self.quota_scale)]
        if self.profile != "default":
            cmd += ["--profile", self.profile]
        if self.new_accounts != 2:
            cmd += ["--new-accounts", str(self.new_accounts)]
        return cmd

    def start(self, detach: bool = False) -> Sandbox:
        """Start the server process and wait until it is seeded and answering.

        :param detach: leave it running when this Python process exits (the CLI's ``start``); otherwise it is
            stopped at exit if ``stop()`` was not called.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        existing = self._read_state()
        if existing and _pid_alive(existing.get("pid", -1)):
            raise SandboxError(f"a sandbox is already running from {self.state_file} at {existing.get('endpoint')} "
                               f"(pid {existing.get('pid')}); stop it first")
        self.state_file.unlink(missing_ok=True)
        if self.port and port_open(self.host, self.port):
            raise SandboxError(f"port {self.port} on {self.host} is already in use")
        env = {k: v for k, v in os.environ.items() if k != "MOTO_ACCOUNT_ID"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO_ROOT), env.get("PYTHONPATH", "")] if p)
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        try:
            self._proc = subprocess.Popen(
                self.command(), cwd=str(REPO_ROOT), env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            state = self._read_state()
            if state and state.get("pid") == self._proc.pid:
                self.info = state
                break
            if self._proc.poll() is not None:
                raise SandboxError(f"sandbox exited with code {self._proc.returncode}:\n{self._log_tail()}")
            time.sleep(0.05)
        else:
            self._kill(self._proc.pid)
            raise SandboxError(f"sandbox not ready after {self.startup_timeout}s:\n{self._log_tail()}")
        self.health()
        if not detach and not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        return self

    @classmethod
    def attach(cls, state_dir: str | Path = ".sandbox") -> Sandbox:
        """A handle on a sandbox already running from ``state_dir`` (started by ``python -m sandbox start``).

        :param state_dir: the directory holding its sandbox.json.
        """
        sb = cls(state_dir=state_dir)
        state = sb._read_state()
        if not state:
            raise SandboxError(f"no running sandbox: {sb.state_file} does not exist")
        if not _pid_alive(state.get("pid", -1)):
            raise SandboxError(f"sandbox pid {state.get('pid')} from {sb.state_file} is not running")
        sb.info = state
        sb.accounts = len(state.get("member_account_ids", []))
        return sb

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; remove sandbox.json; wait for the port to free."""
        pid = self.info.get("pid") or (self._proc.pid if self._proc else None)
        if pid is None:
            return
        endpoint = self.info.get("endpoint", "")
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                self._kill(pid)
                self._wait_exit(pid, 5.0)
        state = self._read_state()
        if state and state.get("pid") == pid:
            self.state_file.unlink(missing_ok=True)
        if endpoint:
            parsed = urllib.parse.urlparse(endpoint)
            deadline = time.monotonic() + 5.0
            while parsed.port and port_open(parsed.hostname or self.host, parsed.port) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.info = {**self.info, "pid": None}
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)  # our temporary directory (log included)
        if self._atexit:
            atexit.unregister(self.stop)
            self._atexit = False

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.05)
        return not _pid_alive(pid)

    @staticmethod
    def _kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Sandbox:
        if not self.info.get("pid"):
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control endpoints --------------------------------------------------------------------------------------
    def _control(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
        url = f"{self.endpoint}/_sandbox/{path}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http only
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - local endpoint
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise SandboxError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from None

    def health(self) -> dict[str, Any]:
        return self._control("GET", "health")

    def refresh_info(self) -> dict[str, Any]:
        """Re-read the live info (account status and read roles change as onboarding runs)."""
        self.info = self._control("GET", "info")
        return self.info

    def set_faults(self, faults: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Replace the faults, e.g. ``set_faults(throttle_rate=0.3, latency_ms=20)`` (see sandbox.faults.Faults)."""
        return self._control("POST", "faults", {**(faults or {}), **kwargs})

    def update_faults(self, **kwargs: Any) -> dict[str, Any]:
        """Change some faults, keeping the others."""
        return self._control("PATCH", "faults", kwargs)

    def clear_faults(self) -> dict[str, Any]:
        return self._control("DELETE", "faults")

    def faults(self) -> dict[str, Any]:
        return self._control("GET", "faults")

    def set_date(self, date: str | dt.date | None) -> str:
        """Set the sandbox's "today" (None: back to the real UTC date); returns the date in force."""
        return self._control("POST", "date", {"date": str(date) if date else None})["date"]

    def today(self) -> str:
        return self._control("GET", "date")["date"]

    def calls(self) -> dict[str, Any]:
        """``{"total", "throttled", "calls": [{"account", "service", "action", "count", "throttled"}]}``."""
        return self._control("GET", "calls")

    def reset_calls(self) -> None:
        self._control("POST", "calls/reset")

    def quotas(self) -> dict[str, Any]:
        """The request-rate quota model in force (enabled, scale, per-service rates and their sources)."""
        return self._control("GET", "quotas")

    def set_quotas(self, scale: float | None = None, enabled: bool | None = None) -> dict[str, Any]:
        """Scale the quotas (0 = off) or switch them off/on; every bucket starts full again."""
        body = {k: v for k, v in (("scale", scale), ("enabled", enabled)) if v is not None}
        return self._control("POST", "quotas", body)

    def refill_quotas(self) -> None:
        """Refill every token bucket and zero its counts (a measurement starting from rest)."""
        self._control("DELETE", "quotas/buckets")

    def quota_buckets(self) -> dict[str, Any]:
        """Calls each token bucket admitted and refused since the buckets were last refilled: ``{"admitted",
        "throttled", "buckets": [{"account", "region", "service", "operation", "admitted", "throttled"}]}``."""
        return self._control("GET", "quotas/buckets")

    def deliver(self, date: str | dt.date | None = None) -> dict[str, Any]:
        """Deliver a day's Config snapshots, SSM inventory sync and CloudTrail files into the central bucket (default:
        the sandbox date; a day is delivered once); ``{date: {"objects": {kind: count}, "seconds"}}``."""
        return self._control("POST", "deliveries", {"date": str(date) if date else None})

    def deliveries(self) -> dict[str, Any]:
        """Every day delivered so far."""
        return self._control("GET", "deliveries")

    def truth(self, date: str | dt.date | None = None, sections: list[str] | None = None,
              accounts: list[str] | None = None) -> dict[str, Any]:
        """What the sandbox answers for ``date`` (default: the sandbox date); see sandbox/truth.py."""
        return self._control("GET", "truth", query={
            "date": str(date) if date else None,
            "sections": ",".join(sections) if sections else None,
            "account": ",".join(accounts) if accounts else None,
        })

    # --- boto3 helpers (tests and scripts; product code builds its own clients from an endpoint) --------------
    def session(self, account_id: str | None = None, role_name: str | None = None, external_id: str | None = None,
                region: str = "us-east-1") -> Any:
        """A boto3 Session: the management account's, or, with ``account_id``, one from AssumeRole into the read
        role (ExternalId from sandbox.json unless given)."""
        import boto3

        creds = self._credentials(account_id, role_name, external_id)
        return boto3.Session(region_name=region, **creds)

    def _admin_session(self) -> Any:
        import boto3

        if getattr(self, "_admin", None) is None:
            creds = self.info.get("credentials", {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
            self._admin = boto3.Session(region_name="us-east-1", **creds)
        return self._admin

    def _credentials(self, account_id: str | None, role_name: str | None = None,
                     external_id: str | None = None) -> dict[str, str]:
        admin = self._admin_session()
        if account_id is None or account_id == self.info.get("management_account_id"):
            c = admin.get_credentials()
            return {"aws_access_key_id": c.access_key, "aws_secret_access_key": c.secret_key}
        role = role_name or self.info["read_role_name"]
        sts = admin.client("sts", endpoint_url=self.endpoint)
        c = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{role}",
            RoleSessionName="sandbox",
            ExternalId=external_id or self.info["external_id"],
        )["Credentials"]
        return {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                "aws_session_token": c["SessionToken"]}

    def client(self, service: str, account_id: str | None = None, region: str = "us-east-1",
               retries: int | None = None, **kwargs: Any) -> Any:
        """A boto3 client on the sandbox endpoint: the management account's, or with ``account_id`` one holding
        AssumeRole credentials of the read role there; ``retries=0`` disables botocore retries."""
        import botocore.config

        config = kwargs.pop("config", None)
        if retries is not None:
            extra = botocore.config.Config(retries={"total_max_attempts": retries + 1, "mode": "standard"})
            config = config.merge(extra) if config else extra
        creds = self._credentials(account_id, kwargs.pop("role_name", None), kwargs.pop("external_id", None))
        return self._admin_session().client(
            service, endpoint_url=self.endpoint, region_name=region, config=config, **creds, **kwargs
        )

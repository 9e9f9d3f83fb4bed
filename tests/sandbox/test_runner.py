"""Start and stop: the process goes away, the port is freed, sandbox.json is written then removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse

import pytest

from sandbox.runner import REPO_ROOT, Sandbox, SandboxError, port_open

CLI = [sys.executable, "-m", "sandbox"]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == 0
    except ChildProcessError:
        return True


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=120)


def test_cli_start_then_stop_frees_port_and_removes_process(tmp_path):
    started = _cli("start", "--accounts", "3", "--port", "0", "--state-dir", str(tmp_path))
    assert started.returncode == 0, started.stderr
    assert "sandbox ready at http://127.0.0.1:" in started.stdout
    info = json.loads((tmp_path / "sandbox.json").read_text())
    port = urllib.parse.urlparse(info["endpoint"]).port
    assert _alive(info["pid"]) and port_open("127.0.0.1", port)
    assert Sandbox.attach(tmp_path).health()["pid"] == info["pid"]

    stopped = _cli("stop", "--state-dir", str(tmp_path))

    assert stopped.returncode == 0, stopped.stderr
    assert f"sandbox pid {info['pid']} stopped" in stopped.stdout
    assert not _alive(info["pid"])
    assert not port_open("127.0.0.1", port)
    assert not (tmp_path / "sandbox.json").exists()
    assert "nothing to stop" in _cli("stop", "--state-dir", str(tmp_path)).stdout


def test_sandbox_json_fields(sandbox):
    info = json.loads(sandbox.state_file.read_text())
    for key in ("endpoint", "regions", "management_account_id", "member_account_ids", "accounts", "read_role_name",
                "external_id", "central_bucket", "central_event_bus", "ses_sender", "pid", "config_aggregator"):
        assert key in info, key
    assert info["management_account_id"] == "123456789012"
    assert len(info["member_account_ids"]) == 12
    assert {"id", "name", "ou", "tags", "status", "read_role"} <= set(info["accounts"][0])


def test_second_start_on_same_state_dir_is_refused(sandbox):
    with pytest.raises(SandboxError, match="already running"):
        Sandbox(accounts=3, state_dir=sandbox.state_dir).start()

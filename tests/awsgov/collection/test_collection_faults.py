"""A collection killed mid-write (SIGKILL, a separate process) and run again writes exactly the store of an
uninterrupted run (issue #19, beyond the list).

The child process collects the whole organization and kills itself in the middle of writing one account's chunk:
the new file's bytes are written under the temporary name, the rename into place has not happened. The rerun (as
Airflow's retry or a cleared task would do) must leave every chunk file identical to a clean run's, and nothing a
reader sees may be half written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds

from tests.fixtures.store_files import store_files

REPO = Path(__file__).resolve().parents[3]
DAY = "2026-11-23"
KILL_AT = 5  # the 5th chunk file the run writes (several accounts' rows are already in place by then)

_COLLECT = """
import json, os, signal, sys
from include.awsgov.collection import runner
from include.awsgov.core.aws import AwsAccess
from include.awsgov.core.settings import load_settings
from include.awsgov.core.store import Store
endpoint, external_id, store_url, day, kill_at = json.loads(sys.argv[1])
if kill_at:
    real_replace, written = os.replace, [0]
    def replace_then_die(src, dst):
        if str(dst).endswith(".parquet") and "/_" not in str(dst):
            written[0] += 1
            if written[0] == kill_at:  # the temporary is complete, the rename never happens
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)
    os.replace = replace_then_die
access = AwsAccess.from_args(endpoint_url=endpoint, aws_access_key_id="AKIATESTCOLLFAULT001",
                             aws_secret_access_key="test", external_id=external_id, session_name="test-faults",
                             retry_mode="standard")
opts = runner.Options.from_settings(load_settings(), regions=["us-east-1", "eu-west-1"])
runner.collect_org(access, Store(store_url), day, opts, run_id="fault-test")
"""


def _collect(sandbox, store_url: str, kill_at: int = 0) -> subprocess.CompletedProcess:
    args = json.dumps([sandbox.endpoint, sandbox.info["external_id"], store_url, DAY, kill_at])
    return subprocess.run([sys.executable, "-c", _COLLECT, args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)


def test_a_collection_killed_mid_write_and_rerun_writes_the_clean_runs_store(clean_sandbox, tmp_path):
    clean_sandbox.set_date(DAY)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    first = _collect(clean_sandbox, str(killed), kill_at=KILL_AT)
    assert first.returncode == -9, first.stderr[-2000:]  # died of SIGKILL, mid-write
    temporaries = [p for p in killed.rglob(".*.tmp-*")]
    assert temporaries, "the kill should leave the half-done write's temporary behind"

    rerun = _collect(clean_sandbox, str(killed))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    reference = _collect(clean_sandbox, str(clean))
    assert reference.returncode == 0, reference.stderr[-2000:]

    # Every chunk file byte for byte as the uninterrupted run wrote it (run timing and the accounts snapshot's
    # collection time aside), and readers see whole tables.
    skip = ("collection_runs",)
    assert store_files(killed, skip=skip) == store_files(clean, skip=skip)
    for table in ("config_findings", "ta_findings", "coverage"):
        assert ds.dataset(str(killed / table), format="parquet", partitioning="hive").count_rows() == \
            ds.dataset(str(clean / table), format="parquet", partitioning="hive").count_rows()

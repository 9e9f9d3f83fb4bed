"""scripts/distributed.py (make distributed) ends exactly the processes it started, and nothing else.

The script itself is the end-to-end proof of the distributed topology (it exits non-zero when a check fails);
this covers its teardown, the part that must never touch another process on a shared machine.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from scripts.distributed import Processes, process_gone


def _wait_children(pid: int, count: int, groups: int) -> list[psutil.Process]:
    """The children of ``pid`` once there are ``count`` of them in ``groups`` process groups (setsid done)."""
    deadline = time.monotonic() + 300  # a bound for a hang, not a speed requirement
    while time.monotonic() < deadline:
        children = psutil.Process(pid).children(recursive=True)
        with contextlib.suppress(ProcessLookupError):
            if len(children) >= count and len({os.getpgid(c.pid) for c in children}) == groups:
                return children
        time.sleep(0.05)
    raise AssertionError(f"{pid} did not start {count} children in {groups} groups")


@pytest.fixture
def procs(tmp_path):
    """A Processes whose leftovers are stopped even when the test fails before its own stop()."""
    owned = Processes(tmp_path)
    yield owned
    owned.stop(timeout=1)


def test_stop_ends_the_started_group_and_descendants_that_left_it_but_not_a_bystander(procs):
    # One child stays in the group; one escapes it with setsid (as a daemonizing child would).
    tree = procs.start("tree", ["sh", "-c", "sleep 300 & setsid sleep 301 & wait"], env=dict(os.environ))
    children = _wait_children(tree.pid, 2, groups=2)
    bystander = subprocess.Popen(["sleep", "302"])  # not started through Processes
    try:
        procs.stop(timeout=2)
        assert tree.poll() is not None
        assert all(process_gone(c) for c in children)
        assert bystander.poll() is None
        assert procs.procs == []
    finally:
        bystander.kill()
        bystander.wait()


def test_stop_stops_the_database_after_the_programs_that_use_it(procs, tmp_path):
    # By cause, not by clock (a busy machine may take any time for any step): when "postgres" gets its SIGINT
    # (PostgreSQL's fast shutdown) it records whether "scheduler" (SIGTERM; it lingers 0.3 s before exiting, so a
    # stop that signalled both at once would find it alive) still exists and whether it had finished its shutdown.
    scheduler_done = tmp_path / "scheduler-done"
    db = tmp_path / "db-stopped"
    scheduler = procs.start("scheduler", ["sh", "-c", f"trap 'sleep 0.3; touch {scheduler_done}; exit 0' TERM; "
                                          f"touch {scheduler_done}.ready; while :; do sleep 0.05; done"],
                            env=dict(os.environ))
    procs.start("postgres", ["sh", "-c", f"trap 'if kill -0 {scheduler.pid} 2>/dev/null; then s=alive; "
                             f"else s=gone; fi; [ -e {scheduler_done} ] && d=done || d=unfinished; "
                             f"echo $s $d > {db}; exit 0' INT; touch {db}.ready; while :; do sleep 0.05; done"],
                env=dict(os.environ))
    deadline = time.monotonic() + 300  # only a start that hangs outright ends here, never a slow one
    while not all(Path(f"{f}.ready").exists() for f in (db, scheduler_done)):
        assert time.monotonic() < deadline, "the two programs never set their traps"
        time.sleep(0.02)  # the traps are set
    procs.stop(timeout=600)  # a bound for a hung program only: the order is what is asserted, not the time
    assert db.read_text().split() == ["gone", "done"]

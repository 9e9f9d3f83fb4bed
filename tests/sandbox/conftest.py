"""Fixtures for the sandbox's own tests: one running sandbox per test session (and per xdist worker).

``sandbox`` is deliberately the same as the shared fixture in tests/conftest.py (importable: ``start_sandbox``),
started with a fixed date so results are reproducible.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sandbox.runner import Sandbox  # noqa: E402

TEST_DATE = "2026-11-23"  # a Monday
TEST_ACCOUNTS = 12


def start_sandbox(accounts: int = TEST_ACCOUNTS, date: str | None = TEST_DATE, **kwargs) -> Sandbox:
    """Start a sandbox on a free port (the caller stops it)."""
    return Sandbox(accounts=accounts, port=0, date=date, **kwargs).start()


@pytest.fixture(scope="session")
def sandbox():
    """A running 12-account sandbox for the whole session, stopped at the end."""
    sb = start_sandbox()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def sb(sandbox):
    """The session sandbox with faults cleared, calls reset and the test date restored around each test."""
    sandbox.clear_faults()
    sandbox.reset_calls()
    sandbox.set_date(TEST_DATE)
    yield sandbox
    sandbox.clear_faults()
    sandbox.set_date(TEST_DATE)


@pytest.fixture(scope="session")
def members(sandbox) -> dict[str, list[str]]:
    """Member account ids by kind: all, onboarded (read role, active), new (no read role), suspended."""
    accounts = sandbox.info["accounts"]
    return {
        "all": [a["id"] for a in accounts],
        "onboarded": [a["id"] for a in accounts if a["read_role"] and a["status"] == "ACTIVE"],
        "new": [a["id"] for a in accounts if not a["read_role"]],
        "suspended": [a["id"] for a in accounts if a["status"] == "SUSPENDED"],
    }

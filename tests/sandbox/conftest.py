"""Fixtures for the sandbox's own tests, on the session's one sandbox (tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def sb(clean_sandbox):
    """Short name of ``clean_sandbox`` in the sandbox's own tests."""
    return clean_sandbox


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

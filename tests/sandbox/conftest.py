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


# Tests that measure something other than request rates and call faster than AWS allows: the sandbox's quotas
# (sandbox/quotas.py, on by default) would throttle them. Each is listed with its reason and runs with the quota
# model off (sb.set_quotas(enabled=False)) for its duration only; the owners of these tests can move the switch into
# the test itself and drop the entry.
QUOTAS_OFF = {
    "tests/sandbox/test_faults.py::test_throttle_rate_is_roughly_as_set": (
        "sandbox", "80 sts:GetCallerIdentity in a tight loop without retries to measure the random throttle fault; "
                   "the STS quota (10/s, burst 20, an assumption) refuses about 60 of them"),
    "tests/sandbox/test_stacksets.py::test_one_operation_at_a_time": (
        "ss_sandbox", "polls cloudformation:DescribeStackSetOperation every 50 ms (20/s) with retries=0; the "
                      "CloudFormation quota (10/s, burst 20, an assumption) throttles the poll"),
}


@pytest.fixture(autouse=True)
def quotas_off_where_listed(request):
    """Switch the quota model off around the tests of QUOTAS_OFF (and only those)."""
    listed = QUOTAS_OFF.get(request.node.nodeid.split("[")[0])
    if listed is None:
        yield
        return
    sandbox = request.getfixturevalue(listed[0])
    sandbox.set_quotas(enabled=False)
    try:
        yield
    finally:
        sandbox.set_quotas(enabled=True)

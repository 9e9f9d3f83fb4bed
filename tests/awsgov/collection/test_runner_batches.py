"""The DAG's mapping over accounts: batches sized to the pool and the workers, and reruns of some accounts."""

from __future__ import annotations

import pytest

from include.awsgov.collection import runner


def _accounts(n: int) -> list[dict[str, str]]:
    return [{"account_id": f"{i:012d}", "name": f"a{i}"} for i in range(n)]


@pytest.mark.parametrize("n,col,sizes", [
    pytest.param(200, {"max_mapped_tasks": 16, "max_workers": 8}, [13] * 15 + [5], id="200-accounts-16-slots"),
    pytest.param(12, {"max_mapped_tasks": 16, "max_workers": 8}, [8, 4], id="few-accounts-keep-threads-busy"),
    pytest.param(1000, {"max_mapped_tasks": 16, "max_workers": 8}, [63] * 15 + [55], id="never-above-the-tasks"),
    pytest.param(5, {"max_mapped_tasks": 16, "max_workers": 8, "accounts_per_task": 1}, [1] * 5, id="one-each"),
    pytest.param(10, {"max_mapped_tasks": 2, "max_workers": 8, "accounts_per_task": 1}, [5, 5], id="fixed-capped"),
])
def test_batches_are_sized_to_the_pool_and_the_workers(n, col, sizes):
    accounts = _accounts(n)
    batches = runner.account_batches(accounts, col)
    assert [len(b) for b in batches] == sizes
    assert [a for b in batches for a in b] == accounts  # every account once, in order


def test_no_accounts_no_batches():
    assert runner.account_batches([], {"max_mapped_tasks": 16, "max_workers": 8}) == []


def test_rerun_of_some_accounts_keeps_order_and_refuses_unknown_ids():
    accounts = _accounts(4)
    assert runner.rerun_targets(accounts, None) == accounts
    assert runner.rerun_targets(accounts, []) == accounts
    assert runner.rerun_targets(accounts, ["000000000002", "000000000000"]) == [accounts[0], accounts[2]]
    with pytest.raises(ValueError, match="999999999999"):
        runner.rerun_targets(accounts, ["000000000001", "999999999999"])

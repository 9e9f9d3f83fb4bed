"""Per-account work in batches: sizes, labels shown in the grid, and one failing item not stopping its batch."""

from __future__ import annotations

import logging

import pytest

from include.awsgov.core.batches import batch_label, batches, each


def _accounts(n: int) -> list[dict[str, str]]:
    return [{"account_id": f"{i:012d}", "name": f"a{i}"} for i in range(n)]


@pytest.mark.parametrize("n,max_batches,min_size,sizes", [
    pytest.param(200, 16, 1, [13] * 15 + [5], id="200-accounts-16-slots"),
    pytest.param(3, 16, 1, [1, 1, 1], id="few-accounts-one-each"),
    pytest.param(12, 16, 8, [8, 4], id="min-size"),
    pytest.param(1000, 16, 8, [63] * 15 + [55], id="never-above-max-batches"),
    pytest.param(7, 0, 1, [7], id="max-zero-is-one-batch"),
])
def test_batches_are_at_most_max_and_keep_every_item_once_in_order(n, max_batches, min_size, sizes):
    accounts = _accounts(n)
    cut = batches(accounts, max_batches, min_size)
    assert [len(b) for b in cut] == sizes
    assert [a for b in cut for a in b] == accounts


def test_no_items_no_batches():
    assert batches([], 16) == []


def test_label_names_one_account_or_the_range():
    one = [{"account_id": "111111111111", "name": "prod\npayments " + "x" * 80}]
    assert batch_label(one) == "111111111111 prod payments " + "x" * 46  # one line, name cut to 60 characters
    assert batch_label(_accounts(3)) == "000000000000..000000000002 (3 accounts)"
    assert batch_label([{"account_id": "222222222222", "name": None}]) == "222222222222"


def test_each_goes_on_after_a_failure_and_names_it(caplog):
    def work(n: int) -> int:
        if n == 2:
            raise RuntimeError("boom")
        return n * 10

    with caplog.at_level(logging.ERROR):
        results, failures = each([1, 2, 3], work, lambda n: f"item {n}")
    assert results == [10, 30]
    assert failures == ["item 2: RuntimeError: boom"]
    assert "item 2 failed" in caplog.text

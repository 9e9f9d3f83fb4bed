"""bench/store_equal.py's comparison: equal stores pass whatever their staging layout, and any difference in a
chunk, a compact file or an account's staged slice is named."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from bench.store_equal import DAY, compare_stores
from include.awsgov.core import tables
from include.awsgov.core.store import Store

ACCOUNTS = ("111111111111", "222222222222")


def _coverage(account: str, status: str = "ok") -> pd.DataFrame:
    return pd.DataFrame([{"account_id": account, "region": r, "source": "config", "status": status, "error": "",
                          "api_calls": 1} for r in ("eu-west-1", "us-east-1")])


def _store(root, staged_per_account: bool, status_of_second: str = "ok", staged_error: str = "") -> Store:
    store = Store(root)
    for account in ACCOUNTS:
        store.write("coverage", DAY, _coverage(account, status_of_second if account == ACCOUNTS[1] else "ok"),
                    chunk=account, schema=tables.COVERAGE)
    store.compact("coverage", DAY)
    rows = {a: [{"account_id": a, "region": "us-east-1", "source": "config", "status": "FAILED",
                 "error": staged_error if a == ACCOUNTS[1] else "", "api_calls": 0}] for a in ACCOUNTS}
    if staged_per_account:  # the layout before: one file per account
        for account, staged in rows.items():
            store.write("_staging/config_sources", DAY, pa.Table.from_pylist(staged, schema=tables.COVERAGE),
                        chunk=account, schema=tables.COVERAGE)
    else:  # one file per run, every account's rows
        store.write("_staging/config_sources", DAY, pa.Table.from_pylist([r for a in ACCOUNTS for r in rows[a]],
                                                                         schema=tables.COVERAGE),
                    chunk="all", schema=tables.COVERAGE)
    return store


def test_equal_stores_pass_whatever_the_staging_layout(tmp_path):
    old, new = _store(tmp_path / "old", True), _store(tmp_path / "new", False)
    report = compare_stores(tmp_path / "old", tmp_path / "new")
    assert report["problems"] == []
    assert report["tables"]["coverage"] == {"files": 2, "bytes_equal": 2, "rows_equal": 2, "rows": 4,
                                            "store_read_equal": True, "compact_rows_equal": True}
    assert report["staged"]["config_sources"] == {"accounts": 2, "rows": 2, "slices_differ": 0}
    assert old.root != new.root


def test_a_changed_chunk_and_a_changed_slice_are_named(tmp_path):
    _store(tmp_path / "old", True)
    _store(tmp_path / "new", False, status_of_second="error", staged_error="NoAvailableConfigurationRecorder")
    problems = compare_stores(tmp_path / "old", tmp_path / "new")["problems"]
    assert f"coverage/dt={DAY}/part-{ACCOUNTS[1]}.parquet: rows differ" in problems
    assert any(p.startswith("coverage: store.read differs") for p in problems)
    assert "coverage: compact files' rows differ" in problems
    assert f"_staging/config_sources: slices of 1 accounts differ, e.g. ['{ACCOUNTS[1]}']" in problems
    assert not any(ACCOUNTS[0] in p for p in problems)

"""The store's contract: one chunk file per writer and day, replaced atomically; reruns never duplicate rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from include.awsgov import tables
from include.awsgov.store import Store

TEST_DAY = dt.date(2026, 11, 23)


def _coverage(account_id: str, regions: list[str], status: str = "ok") -> pd.DataFrame:
    return pd.DataFrame([{"account_id": account_id, "region": r, "source": "config", "status": status, "error": "",
                          "api_calls": 3} for r in regions])


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")


def test_rewriting_a_chunk_replaces_it_without_duplicates(store):
    store.write("coverage", TEST_DAY, _coverage("111111111111", ["us-east-1", "eu-west-1"]), chunk="111111111111",
                schema=tables.COVERAGE)
    store.write("coverage", TEST_DAY, _coverage("222222222222", ["us-east-1"]), chunk="222222222222",
                schema=tables.COVERAGE)
    store.write("coverage", TEST_DAY, _coverage("111111111111", ["us-east-1"], "throttled_out"),
                chunk="111111111111", schema=tables.COVERAGE)
    frame = store.read("coverage", TEST_DAY, TEST_DAY, schema=tables.COVERAGE)
    assert sorted(zip(frame["account_id"], frame["status"], strict=True)) == [
        ("111111111111", "throttled_out"), ("222222222222", "ok")]
    assert set(frame["dt"]) == {TEST_DAY.isoformat()}


def test_sorted_rewrite_of_shuffled_rows_is_byte_identical(store):
    rows = _coverage("111111111111", ["us-east-1", "eu-west-1", "ap-northeast-1"])
    path = Path(store.write("coverage", TEST_DAY, rows, chunk="a", schema=tables.COVERAGE, sort_by=["region"]))
    first = path.read_bytes()
    store.write("coverage", TEST_DAY, rows.iloc[::-1], chunk="a", schema=tables.COVERAGE, sort_by=["region"])
    assert path.read_bytes() == first


def test_failed_write_leaves_previous_version_and_no_visible_temp(store, monkeypatch):
    store.write("coverage", TEST_DAY, _coverage("111111111111", ["us-east-1"]), chunk="a", schema=tables.COVERAGE)

    def crash(self, target):
        raise OSError("disk gone mid-rename")

    monkeypatch.setattr(Path, "replace", crash)
    with pytest.raises(OSError, match="mid-rename"):
        store.write("coverage", TEST_DAY, _coverage("111111111111", ["eu-west-1"]), chunk="a",
                    schema=tables.COVERAGE)
    monkeypatch.undo()
    folder = Path(store.partition_path("coverage", TEST_DAY))
    assert any(p.name.startswith(".") for p in folder.iterdir()), "the temp file is where the crash left it"
    assert store.chunks("coverage", TEST_DAY) == ["a"]
    assert list(store.read("coverage", TEST_DAY, TEST_DAY)["region"]) == ["us-east-1"]


def test_rows_that_do_not_fit_the_schema_are_refused_before_anything_is_written(store):
    bad = pd.DataFrame([{"account_id": "1", "region": "x", "source": "config", "status": "ok", "error": "",
                         "api_calls": "many"}])
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        store.write("coverage", TEST_DAY, bad, chunk="a", schema=tables.COVERAGE)
    assert store.chunks("coverage", TEST_DAY) == []


def test_empty_chunk_records_nothing_found_and_reads_with_columns(store):
    store.write("ta_findings", TEST_DAY, pd.DataFrame(columns=tables.TA_FINDINGS.names), chunk="a",
                schema=tables.TA_FINDINGS)
    assert store.chunks("ta_findings", TEST_DAY) == ["a"]
    frame = store.read("ta_findings", TEST_DAY, TEST_DAY, schema=tables.TA_FINDINGS)
    assert frame.empty and set(tables.TA_FINDINGS.names) <= set(frame.columns)


def test_prune_drops_only_chunks_not_kept(store):
    for chunk in ("a", "b", "c"):
        store.write("coverage", TEST_DAY, _coverage(chunk, ["us-east-1"]), chunk=chunk, schema=tables.COVERAGE)
    assert store.prune("coverage", TEST_DAY, keep={"a", "c"}) == ["b"]
    assert store.chunks("coverage", TEST_DAY) == ["a", "c"]


def test_read_range_is_inclusive_and_days_are_sorted(store):
    for day in ("2026-11-24", "2026-11-22", "2026-11-23"):
        store.write("coverage", day, _coverage("a", ["us-east-1"]), chunk="a", schema=tables.COVERAGE)
    assert store.days("coverage") == [dt.date(2026, 11, 22), dt.date(2026, 11, 23), dt.date(2026, 11, 24)]
    assert sorted(store.read("coverage", "2026-11-23", "2026-11-24")["dt"]) == ["2026-11-23", "2026-11-24"]


@pytest.mark.parametrize("chunk", [pytest.param("../escape", id="path"), pytest.param("", id="empty"),
                                   pytest.param("a b", id="space")])
def test_chunk_names_that_could_escape_the_partition_are_refused(store, chunk):
    with pytest.raises(ValueError, match="invalid chunk name"):
        store.write("coverage", TEST_DAY, _coverage("a", ["us-east-1"]), chunk=chunk, schema=tables.COVERAGE)

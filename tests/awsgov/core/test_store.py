"""The store's contract: one chunk file per writer and day, replaced atomically; reruns never duplicate rows."""

from __future__ import annotations

import datetime as dt
import os
import stat
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from include.awsgov.core import store as store_module
from include.awsgov.core import tables
from include.awsgov.core.store import STALE_TEMP_SECONDS, Store

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


def test_failed_write_leaves_previous_version_and_no_temp(store, monkeypatch):
    store.write("coverage", TEST_DAY, _coverage("111111111111", ["us-east-1"]), chunk="a", schema=tables.COVERAGE)

    def crash(src, dst):
        raise OSError("disk gone mid-rename")

    monkeypatch.setattr(store_module.os, "replace", crash)
    with pytest.raises(OSError, match="mid-rename"):
        store.write("coverage", TEST_DAY, _coverage("111111111111", ["eu-west-1"]), chunk="a",
                    schema=tables.COVERAGE)
    monkeypatch.undo()
    folder = Path(store.partition_path("coverage", TEST_DAY))
    assert [p.name for p in folder.iterdir()] == ["part-a.parquet"], "the failed write removed its temporary"
    assert store.chunks("coverage", TEST_DAY) == ["a"]
    assert list(store.read("coverage", TEST_DAY, TEST_DAY)["region"]) == ["us-east-1"]


def test_local_write_syncs_the_file_before_the_rename_and_the_folder_after(store, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"))
        real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(store_module.os, "fsync", fsync)
    monkeypatch.setattr(store_module.os, "replace", replace)
    store.write("coverage", TEST_DAY, _coverage("111111111111", ["us-east-1"]), chunk="a", schema=tables.COVERAGE)
    assert calls == [("fsync", "file"), ("replace", "part-a.parquet"), ("fsync", "dir")]


def test_stale_temporaries_of_killed_writers_are_removed_by_the_next_write_and_nothing_else(store):
    store.write("coverage", TEST_DAY, _coverage("111111111111", ["us-east-1"]), chunk="a", schema=tables.COVERAGE)
    folder = Path(store.partition_path("coverage", TEST_DAY))
    stale = folder / f".part-a.parquet.tmp-{'a' * 32}"
    young = folder / f".part-b.parquet.tmp-{'b' * 32}"  # a writer that may still be at work
    other = folder / ".keep-me"  # not ours
    for path in (stale, young, other):
        path.write_bytes(b"half a file")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    store.write("coverage", TEST_DAY, _coverage("111111111111", ["eu-west-1"]), chunk="a", schema=tables.COVERAGE)
    assert not stale.exists() and young.exists() and other.exists()
    assert list(store.read("coverage", TEST_DAY, TEST_DAY)["region"]) == ["eu-west-1"]


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
                                   pytest.param("a b", id="space"), pytest.param("a\n", id="trailing-newline")])
def test_chunk_names_that_could_escape_the_partition_are_refused(store, chunk):
    with pytest.raises(ValueError, match="invalid chunk name"):
        store.write("coverage", TEST_DAY, _coverage("a", ["us-east-1"]), chunk=chunk, schema=tables.COVERAGE)


# -- compaction (a read cache of a day's chunks) ------------------------------------------------------------------
def _three_accounts(store: Store, day: dt.date = TEST_DAY) -> None:
    for account, regions in (("111111111111", ["us-east-1", "eu-west-1"]), ("222222222222", ["us-east-1"]),
                             ("333333333333", ["eu-west-1"])):
        store.write("coverage", day, _coverage(account, regions), chunk=account, schema=tables.COVERAGE)


def _rows(store: Store, **kw) -> list[tuple]:
    frame = store.read("coverage", TEST_DAY, TEST_DAY, **kw)
    return list(zip(frame["account_id"], frame["region"], frame["status"], frame["dt"], strict=True))


@pytest.mark.parametrize("schema", [tables.COVERAGE, None], ids=["schema", "no-schema"])
def test_compacted_day_reads_exactly_as_its_chunks_from_one_file(store, schema, monkeypatch):
    _three_accounts(store)
    before = _rows(store, schema=schema)
    assert store.compact("coverage", TEST_DAY) == 3
    assert (Path(store.partition_path("coverage", TEST_DAY)) / "_compact.parquet").exists()
    opened = []
    read_files = store._read_files
    monkeypatch.setattr(store, "_read_files", lambda paths, *a, **k: opened.extend(paths) or read_files(paths, *a, **k))
    assert _rows(store, schema=schema) == before
    assert [Path(p).name for p in opened] == ["_compact.parquet"]
    cols = store.read("coverage", TEST_DAY, TEST_DAY, columns=["account_id"], schema=schema)
    assert list(cols.columns) == ["account_id", "dt"] and len(cols) == 4


def test_compaction_never_hides_a_chunk_rewritten_added_or_pruned_after_it(store):
    _three_accounts(store)
    store.compact("coverage", TEST_DAY)
    # A mapped task rerun after the compaction rewrites its chunk; a late account adds one; a third one leaves.
    store.write("coverage", TEST_DAY, _coverage("111111111111", ["us-east-1"], "throttled_out"),
                chunk="111111111111", schema=tables.COVERAGE)
    store.write("coverage", TEST_DAY, _coverage("000000000000", ["us-east-1"]), chunk="000000000000",
                schema=tables.COVERAGE)
    store.prune("coverage", TEST_DAY, ["000000000000", "111111111111", "222222222222"])
    expected = [("000000000000", "us-east-1", "ok"), ("111111111111", "us-east-1", "throttled_out"),
                ("222222222222", "us-east-1", "ok")]
    for schema in (tables.COVERAGE, None):
        assert [r[:3] for r in _rows(store, schema=schema)] == expected  # by chunk, as without compaction
    store.compact("coverage", TEST_DAY)
    assert [r[:3] for r in _rows(store, schema=tables.COVERAGE)] == expected


def _big_chunk(account: str, n: int, with_api_calls: bool = True) -> pa.Table:
    columns = {"account_id": [account] * n, "region": [f"r-{i:06d}" for i in range(n)], "source": ["config"] * n,
               "status": ["ok" if i % 3 else "error" for i in range(n)], "error": [""] * n}
    if with_api_calls:
        columns["api_calls"] = list(range(n))
    return pa.table(columns)


def test_compaction_of_many_row_groups_keeps_every_row_in_chunk_order(store):
    """More rows than one row group (the compaction reads and writes in groups of about 64k rows, on two threads),
    with a chunk written by older code without a column: the cache holds every chunk's rows in chunk order."""
    import pyarrow.parquet as pq

    sizes = {"111111111111": 70_000, "222222222222": 3, "333333333333": 70_000}
    for account, n in sizes.items():  # the middle chunk is of an older schema: no api_calls column
        table = _big_chunk(account, n, with_api_calls=account != "222222222222")
        store.write("coverage", TEST_DAY, table, chunk=account, schema=None if account == "222222222222" else
                    tables.COVERAGE)
    assert store.compact("coverage", TEST_DAY) == 3
    cache = pq.ParquetFile(Path(store.partition_path("coverage", TEST_DAY)) / "_compact.parquet")
    assert cache.metadata.num_row_groups > 1
    got = cache.read()
    assert got["__chunk"].to_pylist() == [a for a, n in sizes.items() for _ in range(n)]
    assert got["region"].to_pylist() == [f"r-{i:06d}" for n in sizes.values() for i in range(n)]
    assert got["api_calls"].to_pylist() == [*range(70_000), None, None, None, *range(70_000)]
    frame = store.read("coverage", TEST_DAY, TEST_DAY, schema=tables.COVERAGE)
    assert len(frame) == sum(sizes.values()) and list(frame["account_id"].drop_duplicates()) == list(sizes)


def test_a_compaction_that_cannot_read_a_chunk_raises_and_writes_no_cache(store):
    import pyarrow as pa

    _three_accounts(store)
    for account in ("444444444444", "555555555555"):
        store.write("coverage", TEST_DAY, _big_chunk(account, 40_000), chunk=account, schema=tables.COVERAGE)
    part = Path(store.partition_path("coverage", TEST_DAY))
    (part / "part-555555555555.parquet").write_bytes(b"PAR1 not a parquet file PAR1")
    with pytest.raises(pa.ArrowInvalid):
        store.compact("coverage", TEST_DAY)
    assert not (part / "_compact.parquet").exists()

def test_other_readers_ignore_the_compact_file(store):
    import pyarrow.dataset as ds

    _three_accounts(store)
    store.compact("coverage", TEST_DAY)
    hive = ds.dataset(store.path("coverage"), format="parquet", partitioning="hive").to_table()
    assert hive.num_rows == 4 and "__chunk" not in hive.column_names  # Athena, DuckDB and pyarrow skip `_` files


def test_a_day_of_one_chunk_is_not_compacted(store):
    store.write("coverage", TEST_DAY, _coverage("111111111111", ["us-east-1"]), chunk="111111111111",
                schema=tables.COVERAGE)
    assert store.compact("coverage", TEST_DAY) == 0
    assert not (Path(store.partition_path("coverage", TEST_DAY)) / "_compact.parquet").exists()


def test_a_scan_with_where_is_the_scan_filtered_with_or_without_compaction(store):
    import pyarrow.compute as pc

    _three_accounts(store)
    store.write("coverage", TEST_DAY, _coverage("444444444444", ["us-east-1", "eu-west-1"], "throttled_out"),
                chunk="444444444444", schema=tables.COVERAGE)
    where = pc.field("status") == "ok"
    for compact in (False, True):
        if compact:
            store.compact("coverage", TEST_DAY)
            store.write("coverage", TEST_DAY, _coverage("000000000000", ["us-east-1"]), chunk="000000000000",
                        schema=tables.COVERAGE)  # a chunk after the compaction: read from its own file
        for schema in (tables.COVERAGE, None):
            whole = store.scan("coverage", TEST_DAY, TEST_DAY, schema=schema)
            kept = store.scan("coverage", TEST_DAY, TEST_DAY, schema=schema, where=where)
            assert kept.equals(whole.filter(where)) and 0 < kept.num_rows < whole.num_rows


def test_a_writer_puts_the_file_in_place_only_when_its_block_ends_well(store):
    with store.writer("exports/dt=2026-11-23/a.json") as fh:
        fh.write(b"[1,")
        fh.write(b"2]")
    assert store.get_text("exports/dt=2026-11-23/a.json") == "[1,2]"
    with pytest.raises(RuntimeError), store.writer("exports/dt=2026-11-23/a.json") as fh:
        fh.write(b"[3")
        raise RuntimeError("the export failed half way")
    assert store.get_text("exports/dt=2026-11-23/a.json") == "[1,2]"  # the old file stays whole
    assert sorted(os.listdir(Path(store.path("exports/dt=2026-11-23")))) == ["a.json"]  # no temporary left

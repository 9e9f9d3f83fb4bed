"""Tests of scripts/duckdb_store.py on a small store written by the store's own writer."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from include.awsgov.core import tables
from include.awsgov.core.store import Store
from scripts import duckdb_store

duckdb = pytest.importorskip("duckdb")

TEST_ACCT_A, TEST_ACCT_B = "111111111111", "222222222222"
TEST_DAYS = [dt.date(2026, 11, 30), dt.date(2026, 12, 1)]


def _coverage(account: str, gaps: int) -> pd.DataFrame:
    rows = [{"account_id": account, "region": "us-east-1", "source": "config", "status": "ok", "error": ""}]
    rows += [{"account_id": account, "region": "eu-west-1", "source": "config", "status": "access_denied",
              "error": "AccessDenied"}] * gaps
    frame = pd.DataFrame(rows)
    for field in tables.COVERAGE:
        if field.name not in frame:
            frame[field.name] = None
    return frame[[f.name for f in tables.COVERAGE]]


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "store"))
    for n, day in enumerate(TEST_DAYS):
        store.write("coverage", day, _coverage(TEST_ACCT_A, 0), chunk=TEST_ACCT_A, schema=tables.COVERAGE)
        store.write("coverage", day, _coverage(TEST_ACCT_B, n + 1), chunk=TEST_ACCT_B, schema=tables.COVERAGE)
    (tmp_path / "store" / "reports").mkdir()  # not a table: ignored
    return store


def test_every_table_is_a_view_with_dt(store):
    con, files = duckdb_store.open_store(store.url)
    assert set(files) == set(tables.SCHEMAS)
    assert files["coverage"] == 4 and files["ta_findings"] == 0
    rows = con.sql("SELECT dt, count(*) FROM coverage GROUP BY dt ORDER BY dt").fetchall()
    assert rows == [(TEST_DAYS[0], 3), (TEST_DAYS[1], 4)]
    gaps = con.sql("SELECT account_id, count(*) FROM coverage WHERE status = 'access_denied' GROUP BY 1").fetchall()
    assert gaps == [(TEST_ACCT_B, 3)]


def test_a_table_without_files_is_an_empty_view_with_its_columns(store):
    con, _ = duckdb_store.open_store(store.url)
    names = [row[0] for row in con.sql("DESCRIBE ta_findings").fetchall()]
    assert names == [f.name for f in tables.TA_FINDINGS] + ["dt"]
    assert con.execute("SELECT count(*) FROM ta_findings").fetchone() == (0,)


def test_views_can_be_saved_for_the_duckdb_cli(store, tmp_path, capsys):
    saved = tmp_path / "store.duckdb"
    assert duckdb_store.main([store.url, "--save", str(saved)]) == 0
    assert "coverage                    4 files" in capsys.readouterr().out
    with duckdb.connect(str(saved)) as con:
        assert con.execute("SELECT count(*) FROM coverage").fetchone() == (7,)


@pytest.mark.parametrize("arrow", [pytest.param(f.type, id=f"{name}.{f.name}")
                                   for name, schema in tables.SCHEMAS.items() for f in schema])
def test_every_column_type_has_a_duckdb_type(arrow):
    assert duckdb_store.duckdb_type(arrow)

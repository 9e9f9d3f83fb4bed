"""collection.sorted_rows: the order rows are written in (a rerun must write identical bytes)."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from include.awsgov.collection.runner import arrow_order, arrow_rows, sorted_rows
from include.awsgov.collection.units import Columns


def _reference(rows, sort_by):
    # The order as first written: by the key columns, then by every other column, a finding_id kept once.
    def key(row):
        rest = sorted((k, str(v)) for k, v in row.items() if k not in sort_by)
        return tuple(str(row.get(k) if row.get(k) is not None else "") for k in sort_by), rest

    out, seen = [], set()
    for row in sorted(rows, key=key):
        fid = row.get("finding_id")
        if fid is not None:
            if fid in seen:
                continue
            seen.add(fid)
        out.append(row)
    return out


@pytest.mark.parametrize("seed", range(20))
def test_sorted_rows_keeps_the_reference_order(seed):
    rnd = random.Random(seed)
    values = [None, "", "a", "b", "B", 0, 1, 10, 2.5, True, "10"]
    rows = []
    for i in range(rnd.randrange(0, 60)):
        row = {"region": rnd.choice(["us-east-1", "eu-west-1", None]), "rule_name": rnd.choice(["r1", "r2", 3]),
               "status": rnd.choice(values), "note": rnd.choice(values), "n": i % 3}
        if rnd.random() < 0.5:
            row["finding_id"] = rnd.choice(["f1", "f2", "f3", None, f"u{i}"])
        if rnd.random() < 0.2:
            del row["note"]  # rows of one table need not all have the same columns
        rows.append(row)
    for sort_by in (["region", "rule_name"], ["region"], ["missing"], []):
        got = sorted_rows(list(rows), sort_by)
        want = _reference(list(rows), sort_by)
        assert [id(r) for r in got] == [id(r) for r in want]


def test_a_source_failed_everywhere_is_named_and_partial_failures_are_gaps():
    """The first demo after the collection rework had every Config read denied (403) and a green run: a source with
    no ok row and failing rows is named, so the DAG fails the run; one failing account among ok ones is a gap."""
    import pandas as pd

    from include.awsgov.collection.runner import failed_sources

    coverage = pd.DataFrame([
        {"account_id": "111111111111", "region": "us-east-1", "source": "config", "status": "error",
         "error": "An error occurred (403) when calling the GetObject operation: Forbidden"},
        {"account_id": "222222222222", "region": "us-east-1", "source": "config", "status": "not_delivered",
         "error": ""},
        {"account_id": "111111111111", "region": "us-east-1", "source": "trusted_advisor", "status": "ok", "error": ""},
        {"account_id": "222222222222", "region": "us-east-1", "source": "trusted_advisor", "status": "access_denied",
         "error": "AccessDenied"},
        {"account_id": "111111111111", "region": "us-east-1", "source": "macie", "status": "not_enabled", "error": ""},
    ])
    failed = failed_sources(coverage)
    assert list(failed) == ["config"]  # TA has an ok row (a gap); Macie is off, not failing
    assert failed["config"].startswith("1 of 2 account x regions failed, e.g. 111111111111 us-east-1: error")


SCHEMA = pa.schema([("finding_id", pa.string()), ("region", pa.string()), ("rule_name", pa.string()),
                    ("status", pa.string()), ("n", pa.int64())])


@pytest.mark.parametrize("seed", range(30))
def test_arrow_rows_of_dicts_and_column_blocks_is_the_table_of_sorted_rows(seed):
    """The writer's table from dict rows and units.Columns blocks is the one from the same rows as dicts: the same
    order (ties broken by the other columns, extra fields too), the first row of each finding_id."""
    rnd = random.Random(seed)

    def row(i):
        return {"finding_id": rnd.choice(["f1", "f2", None, f"u{i}"]), "region": rnd.choice(["us-east-1", None]),
                "rule_name": rnd.choice(["r1", "r2", "R"]), "status": rnd.choice([None, "", "a", "B"]), "n": i % 3,
                "extra": rnd.choice([None, 1, "x", 2.5])}  # not in the schema: still breaks ties, as in sorted_rows

    mixed = []
    for _ in range(rnd.randrange(0, 5)):
        rows = [row(rnd.randrange(100)) for _ in range(rnd.randrange(0, 15))]
        mixed.append(Columns({k: [r[k] for r in rows] for k in (rows[0] if rows else {})}))
    for i in range(rnd.randrange(0, 15)):
        r = row(i)
        if rnd.random() < 0.3:
            del r["status"]
        mixed.append(r)
    rnd.shuffle(mixed)
    # arrow_rows reads the dict rows first, then each block in turn (the order ties among equal rows keep)
    as_dicts = [r for r in mixed if not isinstance(r, Columns)] + [
        b.row(i) for b in mixed if isinstance(b, Columns) for i in range(b.length)]
    for sort_by in (["region", "rule_name"], ["rule_name", "status", "missing"], []):
        want = pa.Table.from_pylist(sorted_rows(as_dicts, sort_by), schema=SCHEMA)
        got = arrow_rows(mixed, SCHEMA, sort_by)
        assert got.equals(want), (sort_by, got.to_pylist(), want.to_pylist())


def test_columns_refuse_columns_of_different_lengths():
    with pytest.raises(ValueError, match="different lengths"):
        Columns({"a": [1, 2], "b": [1]})


@pytest.mark.parametrize("seed", range(40))
def test_arrow_rows_sorted_by_arrow_is_the_order_of_sorted_rows(seed):
    """With distinct keys (a Config snapshot's rows), Arrow sorts: the same order as sorted_rows, for any text
    (non-ASCII, "" beside None) and blocks beside dict rows."""
    rnd = random.Random(seed)
    alphabet = ["a", "B", "z", "é", "Ω", "日", "😀", "\x00", "-", "/"]

    def text():
        return None if rnd.random() < 0.1 else "".join(rnd.choices(alphabet, k=rnd.randrange(0, 4)))

    rows = [{"finding_id": f"id{i}", "region": text(), "rule_name": text(), "status": text(), "n": i}
            for i in range(rnd.randrange(2, 60))]
    blocks = [Columns({k: [r[k] for r in rows[i:i + 7]] for k in rows[0]}) for i in range(0, len(rows), 7)]
    mixed = blocks[1:] + [b.row(i) for i in range(blocks[0].length) for b in blocks[:1]]
    as_dicts = [r for r in mixed if not isinstance(r, Columns)] + [
        b.row(i) for b in mixed if isinstance(b, Columns) for i in range(b.length)]
    sort_by = ["region", "rule_name", "status"]
    want = pa.Table.from_pylist(sorted_rows(as_dicts, sort_by), schema=SCHEMA)
    assert arrow_rows(mixed, SCHEMA, sort_by).equals(want)


def test_arrow_sorts_distinct_keys_and_leaves_ties_and_repeated_ids_to_python():
    table = pa.Table.from_pylist([{"finding_id": "b", "region": "é"}, {"finding_id": "a", "region": None},
                                  {"finding_id": "c", "region": "z"}], schema=SCHEMA)
    assert arrow_order(table, ["region"]).to_pylist() == [1, 2, 0]  # None as "", then by code point
    tied = pa.Table.from_pylist([{"finding_id": "b", "region": "x"}, {"finding_id": "a", "region": "x"}],
                                schema=SCHEMA)
    assert arrow_order(tied, ["region"]) is None
    repeated = pa.Table.from_pylist([{"finding_id": "a", "region": "x"}, {"finding_id": "a", "region": "y"}],
                                    schema=SCHEMA)
    assert arrow_order(repeated, ["region"]) is None
    assert arrow_order(table, ["n"]) is None  # not text: str(v) order is not the column's order


def test_a_block_of_shared_capture_times_converts_as_its_rows():
    # arrow_rows converts a timestamp column through its distinct objects: the same values as row by row.
    import datetime as dt

    schema = pa.schema([("finding_id", pa.string()), ("rule_name", pa.string()),
                        ("recorded_at", pa.timestamp("us", tz="UTC"))])
    times = [dt.datetime(2026, 11, 23, h, tzinfo=dt.UTC) for h in range(3)] + [None]
    rows = [{"finding_id": f"f{i}", "rule_name": f"r{i:03d}", "recorded_at": times[i % 4]} for i in range(200)]
    rows.append({"finding_id": "g", "rule_name": "zz", "recorded_at": dt.datetime(2026, 11, 23, 1, tzinfo=dt.UTC)})
    block = Columns({k: [r[k] for r in rows] for k in rows[0]})
    want = pa.Table.from_pylist(sorted_rows(rows, ["rule_name"]), schema=schema)
    assert arrow_rows([block], schema, ["rule_name"]).equals(want)

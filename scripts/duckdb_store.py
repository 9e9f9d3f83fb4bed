"""Open the whole history store in DuckDB: one view per table of include/awsgov/core/tables.py, ``dt`` included.

    python scripts/duckdb_store.py out/store -c "SELECT dt, count(*) FROM ta_findings GROUP BY dt ORDER BY dt"
    python scripts/duckdb_store.py out/store --save store.duckdb     # then: duckdb store.duckdb (the CLI)
    python scripts/duckdb_store.py s3://bucket/governance -c "..."   # S3: DuckDB's httpfs, AWS credential chain

Each view reads ``<store>/<table>/dt=*/part-*.parquet`` with Hive partitioning (``dt`` becomes a DATE column) and
``union_by_name`` (files written before a column was added read it as NULL). A table without files yet is an empty
view with the table's columns, so queries work on a young store. The views show every stored row: tables whose
readers keep the latest row per key (the onboarding ``inventory``) keep all of them here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402

from include.awsgov.core.tables import SCHEMAS  # noqa: E402


def duckdb_type(arrow: pa.DataType) -> str:
    """The DuckDB type of an Arrow type used by the store's schemas (for the empty views).

    :param arrow: a column's Arrow type.
    """
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return f"{duckdb_type(arrow.value_type)}[]"
    simple = {pa.string(): "VARCHAR", pa.large_string(): "VARCHAR", pa.bool_(): "BOOLEAN", pa.int64(): "BIGINT",
              pa.int32(): "INTEGER", pa.float64(): "DOUBLE", pa.float32(): "FLOAT", pa.date32(): "DATE"}
    if arrow in simple:
        return simple[arrow]
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMPTZ" if arrow.tz else "TIMESTAMP"
    raise ValueError(f"no DuckDB type for Arrow type {arrow}")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def open_store(store_url: str, con: Any = None) -> tuple[Any, dict[str, int]]:
    """A DuckDB connection with a view per store table; returns it and the number of files behind each view.

    :param store_url: a local folder or an ``s3://bucket/prefix`` URL.
    :param con: an open DuckDB connection to add the views to (default: a new in-memory one).
    """
    import duckdb
    import fsspec

    con = con if con is not None else duckdb.connect()
    remote = "://" in store_url and not store_url.startswith("file://")
    if remote:
        con.execute("INSTALL httpfs; LOAD httpfs; CREATE OR REPLACE SECRET awsgov_store (TYPE s3, "
                    "PROVIDER credential_chain)")
    fs, root = fsspec.core.url_to_fs(store_url)
    base = f"{store_url.split('://', 1)[0]}://{root}" if remote else root
    files: dict[str, int] = {}
    for table, schema in SCHEMAS.items():
        found = fs.glob(f"{root}/{table}/dt=*/part-*.parquet")
        files[table] = len(found)
        if found:
            source = (f"read_parquet({_quote(f'{base}/{table}/dt=*/part-*.parquet')}, hive_partitioning = true, "
                      "union_by_name = true)")
            con.execute(f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM {source}')  # noqa: S608 - registry names
        else:
            columns = ", ".join(f'CAST(NULL AS {duckdb_type(f.type)}) AS "{f.name}"' for f in schema)
            con.execute(f'CREATE OR REPLACE VIEW "{table}" AS SELECT {columns}, CAST(NULL AS DATE) AS dt '
                        "WHERE false")
    return con, files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="the store: a folder (out/store) or s3://bucket/prefix")
    parser.add_argument("-c", "--command", action="append", default=[], help="SQL to run (repeatable)")
    parser.add_argument("--save", type=Path, help="a DuckDB database file to write the views to")
    args = parser.parse_args(argv)
    import duckdb

    if "://" not in args.store and not Path(args.store).is_dir():
        parser.error(f"no such store folder: {args.store}")
    con = duckdb.connect(str(args.save)) if args.save else None
    con, files = open_store(args.store, con)
    if not args.command:
        for table, count in files.items():
            print(f"{table:22} {count:6} files")
        print(f"views over {args.store}" + (f", saved in {args.save}" if args.save else ""))
    for sql in args.command:
        con.sql(sql).show(max_rows=100, max_width=200)
    con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

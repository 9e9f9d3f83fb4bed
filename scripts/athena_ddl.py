"""Athena / Glue table definitions for the history store, generated from the schemas in include/awsgov/core/tables.py.

    python scripts/athena_ddl.py s3://my-governance-store/history > store.sql         # CREATE EXTERNAL TABLE ...
    python scripts/athena_ddl.py s3://my-governance-store/history --format glue > tables.json  # Glue TableInput

Every table is ``<store>/<table>/dt=YYYY-MM-DD/part-<chunk>.parquet``: the DDL declares ``dt`` as the partition
column with partition projection (type date, one partition a day), so Athena finds new days without
``MSCK REPAIR TABLE`` or a crawler. The Glue form is the ``TableInput`` of ``glue:CreateTable`` (boto3
``create_table(DatabaseName=..., TableInput=...)``, or a CloudFormation ``AWS::Glue::Table``'s ``TableInput``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402

from include.awsgov.core.tables import SCHEMAS  # noqa: E402

# First day a store can hold (projection range start); NOW is Athena's "today".
PROJECTION_START = "2024-01-01"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


def hive_type(arrow: pa.DataType) -> str:
    """The Athena (Hive DDL) type of an Arrow type used by the store's schemas.

    :param arrow: a column's Arrow type.
    :raises ValueError: for a type the store does not use yet (add it here when a schema does).
    """
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "string"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_int64(arrow):
        return "bigint"
    if pa.types.is_int32(arrow):
        return "int"
    if pa.types.is_float64(arrow):
        return "double"
    if pa.types.is_float32(arrow):
        return "float"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_date32(arrow):
        return "date"
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return f"array<{hive_type(arrow.value_type)}>"
    if pa.types.is_struct(arrow):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.type)}" for f in arrow) + ">"
    raise ValueError(f"no Athena type for Arrow type {arrow}")


def location(store_url: str, table: str) -> str:
    """The S3 prefix of one table (with a trailing slash, as Athena wants).

    :param store_url: the store's base URL (s3://bucket/prefix).
    :param table: the table's stored name.
    """
    return f"{store_url.rstrip('/')}/{table}/"


def projection(store_url: str, table: str) -> dict[str, str]:
    """Table properties for partition projection on ``dt`` (one partition a day since PROJECTION_START)."""
    return {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": f"{PROJECTION_START},NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "storage.location.template": f"{location(store_url, table)}dt=${{dt}}/",
        "classification": "parquet",
    }


def create_table(store_url: str, table: str, schema: pa.Schema, database: str) -> str:
    """``CREATE EXTERNAL TABLE`` of one store table.

    :param store_url: the store's base URL (s3://bucket/prefix).
    :param table: the table's stored name.
    :param schema: its Arrow schema (``dt`` is not in the files: it is the partition column).
    :param database: the Glue database.
    """
    columns = ",\n".join(f"  `{f.name}` {hive_type(f.type)}" for f in schema if f.name != "dt")
    props = ",\n".join(f"  '{k}' = '{v}'" for k, v in projection(store_url, table).items())
    return (f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (\n{columns}\n)\n"
            f"PARTITIONED BY (`dt` string)\nSTORED AS PARQUET\nLOCATION '{location(store_url, table)}'\n"
            f"TBLPROPERTIES (\n{props}\n);\n")


def table_input(store_url: str, table: str, schema: pa.Schema) -> dict[str, Any]:
    """Glue ``TableInput`` of one store table (same columns, partition and projection as :func:`create_table`)."""
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", **projection(store_url, table)},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {
            "Columns": [{"Name": f.name, "Type": hive_type(f.type)} for f in schema if f.name != "dt"],
            "Location": location(store_url, table),
            "InputFormat": PARQUET_INPUT,
            "OutputFormat": PARQUET_OUTPUT,
            "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store_url", help="the store's S3 base URL, e.g. s3://bucket/governance")
    parser.add_argument("--database", default="awsgov", help="Glue database (default awsgov)")
    parser.add_argument("--format", choices=("sql", "glue"), default="sql")
    args = parser.parse_args(argv)
    if not args.store_url.startswith("s3://"):
        parser.error("Athena reads S3: give the store's s3:// URL")
    if args.format == "sql":
        sys.stdout.write(f"CREATE DATABASE IF NOT EXISTS `{args.database}`;\n\n")
        sys.stdout.write("\n".join(create_table(args.store_url, name, schema, args.database)
                                   for name, schema in SCHEMAS.items()))
    else:
        tables = [table_input(args.store_url, name, schema) for name, schema in SCHEMAS.items()]
        sys.stdout.write(json.dumps({"DatabaseName": args.database, "TableInputs": tables}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

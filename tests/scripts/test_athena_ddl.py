"""Tests of scripts/athena_ddl.py: Athena DDL and Glue TableInputs from the store's schemas."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pytest

from include.awsgov.core import tables
from scripts import athena_ddl

TEST_STORE = "s3://governance-store/history"


@pytest.mark.parametrize(("arrow", "hive"), [
    pytest.param(pa.string(), "string", id="string"),
    pytest.param(pa.bool_(), "boolean", id="bool"),
    pytest.param(pa.int64(), "bigint", id="int64"),
    pytest.param(pa.float64(), "double", id="double"),
    pytest.param(pa.timestamp("us", tz="UTC"), "timestamp", id="timestamp"),
    pytest.param(pa.list_(pa.string()), "array<string>", id="list"),
])
def test_hive_types(arrow, hive):
    assert athena_ddl.hive_type(arrow) == hive


def test_unknown_type_is_refused():
    with pytest.raises(ValueError, match="no Athena type"):
        athena_ddl.hive_type(pa.decimal128(10, 2))


def test_ddl_has_every_table_with_its_columns_and_projection_on_dt(capsys):
    assert athena_ddl.main([TEST_STORE]) == 0
    sql = capsys.readouterr().out
    statements = re.findall(r"CREATE EXTERNAL TABLE IF NOT EXISTS `awsgov`\.`(\w+)` \((.*?)\)\nPARTITIONED BY",
                            sql, re.S)
    assert [name for name, _ in statements] == list(tables.SCHEMAS)
    for name, columns in statements:
        assert re.findall(r"`(\w+)` ", columns) == [f.name for f in tables.SCHEMAS[name]]
    assert sql.count("PARTITIONED BY (`dt` string)") == len(tables.SCHEMAS)
    assert "'storage.location.template' = 's3://governance-store/history/coverage/dt=${dt}/'" in sql
    assert sql.count("'projection.dt.type' = 'date'") == len(tables.SCHEMAS)


def test_glue_table_inputs_match_the_schemas(capsys):
    assert athena_ddl.main([TEST_STORE, "--format", "glue", "--database", "gov"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["DatabaseName"] == "gov"
    by_name = {t["Name"]: t for t in doc["TableInputs"]}
    assert set(by_name) == set(tables.SCHEMAS)
    inventory = by_name[tables.ONBOARDED_ACCOUNTS_TABLE]
    assert {"Name": "regions", "Type": "array<string>"} in inventory["StorageDescriptor"]["Columns"]
    assert inventory["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert inventory["StorageDescriptor"]["Location"] == f"{TEST_STORE}/inventory/"
    assert inventory["Parameters"]["projection.enabled"] == "true"


def test_a_local_store_is_refused():
    with pytest.raises(SystemExit):
        athena_ddl.main(["out/store"])

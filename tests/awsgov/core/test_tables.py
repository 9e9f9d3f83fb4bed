"""The table registry (core/tables.py SCHEMAS): every table name the product reads or writes is registered."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from include.awsgov.core import tables

PRODUCT = Path(__file__).resolve().parents[3] / "include" / "awsgov"
# store.<method>("name" ...) and module constants naming a table (FOO_TABLE = "name", TABLE = "name").
STORE_CALL = re.compile(r"store\.(?:read|write|scan|days|chunks|read_chunk|compact|prune)\(\s*\"([a-z_]+)\"")
TABLE_CONSTANT = re.compile(r"^\w*TABLE\s*=\s*\"([a-z_]+)\"", re.M)


def _names_in_code() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in PRODUCT.rglob("*.py"):
        text = path.read_text()
        for name in STORE_CALL.findall(text) + TABLE_CONSTANT.findall(text):
            found.setdefault(name, []).append(str(path.relative_to(PRODUCT)))
    return found


def test_every_table_named_in_the_code_is_registered():
    names = _names_in_code()
    assert len(names) >= 10, names  # the scan itself works
    unknown = {name: where for name, where in names.items() if name not in tables.SCHEMAS}
    assert not unknown, f"table names not in tables.SCHEMAS: {unknown}"


def test_registry_holds_schemas_with_distinct_names():
    assert all(isinstance(schema, pa.Schema) for schema in tables.SCHEMAS.values())
    assert tables.SCHEMAS[tables.ONBOARDED_ACCOUNTS_TABLE] is tables.ONBOARDED_ACCOUNTS
    assert "dt" not in {f for schema in tables.SCHEMAS.values() for f in schema.names}  # the partition lives in paths


def test_finding_ids_of_one_account_and_region_are_finding_id():
    from include.awsgov.core.tables import finding_id, finding_ids

    for source, account, region in (("config", "111111111111", "us-east-1"), ("macie", "222222222222", "")):
        one = finding_ids(source, account, region)
        for check, resource in (("s3-encrypted", "AWS::S3::Bucket/b"), ("r", ""), ("", "x\x1fy"),
                                ("é", "AWS::::Account/1")):
            assert one(check, resource) == finding_id(source, account, region, check, resource)

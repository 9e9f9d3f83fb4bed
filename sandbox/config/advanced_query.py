"""SelectAggregateResourceConfig: the aggregator's advanced query, for the subset of SQL the sandbox can answer.

Supported: ``SELECT <fields> WHERE resourceType = '<type>' [AND accountId = '<id>'] [AND awsRegion = '<region>']``
with fields among resourceId, resourceType, accountId, awsRegion, configurationItemCaptureTime, configuration
(anything else is refused with InvalidExpressionException, never silently ignored). Resource types served:
``AWS::SSM::ManagedInstanceInventory`` (from the SSM inventory model).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from ..errors import AwsError
from ..paging import checked_limit, page

FIELDS = ("resourceId", "resourceType", "accountId", "awsRegion", "configurationItemCaptureTime", "configuration")
_QUERY = re.compile(r"^\s*SELECT\s+(?P<fields>.+?)\s+WHERE\s+(?P<where>.+?)\s*$", re.IGNORECASE | re.DOTALL)
_CONDITION = re.compile(r"^\s*(resourceType|accountId|awsRegion)\s*=\s*'([^']*)'\s*$")


class InvalidExpressionException(AwsError):
    code = "InvalidExpressionException"


def parse(expression: str) -> tuple[list[str], dict[str, str]]:
    """(selected fields, {field: value} equality conditions) of an expression."""
    match = _QUERY.match(expression or "")
    if not match:
        raise InvalidExpressionException(f"The sandbox cannot answer this expression: {expression!r}")
    fields = [f.strip() for f in match.group("fields").split(",")]
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise InvalidExpressionException(f"Unsupported fields in the sandbox: {unknown}")
    conditions = {}
    for part in re.split(r"\s+AND\s+", match.group("where"), flags=re.IGNORECASE):
        cond = _CONDITION.match(part)
        if not cond:
            raise InvalidExpressionException(f"Unsupported condition in the sandbox: {part!r}")
        conditions[cond.group(1)] = cond.group(2)
    if "resourceType" not in conditions:
        raise InvalidExpressionException("The sandbox needs a resourceType condition")
    return fields, conditions


def select_aggregate(world: Any, account_id: str, region: str, date: dt.date, name: str, expression: str,
                     limit: Any, next_token: str | None) -> dict[str, Any]:
    """SelectAggregateResourceConfig over the accounts and regions the aggregator covers."""
    accounts, regions = world.compliance._aggregator_scope(account_id, region, name)
    fields, where = parse(expression)
    size = checked_limit(limit, 100, 100)
    rows: list[str] = []
    if where["resourceType"] == "AWS::SSM::ManagedInstanceInventory":
        for acct in sorted(accounts):
            if where.get("accountId") not in (None, acct):
                continue
            for reg in regions:
                if where.get("awsRegion") not in (None, reg):
                    continue
                for item in world.inventory.config_items(acct, reg, date):
                    rows.append(json.dumps({f: item[f] for f in fields}, ensure_ascii=False))
    items, token = page(rows, next_token, size, ["select", account_id, region, name, expression])
    return {"Results": items, "QueryInfo": {"SelectFields": [{"Name": f} for f in fields]},
            **({"NextToken": token} if token else {})}

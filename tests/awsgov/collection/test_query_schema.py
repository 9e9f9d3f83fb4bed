"""Every AWS Config advanced query the product can send names only properties AWS lists for its resource type
(../shared/reference/aws-config-resource-schema/, AWS's published schema): a query naming anything else fails on
real AWS, even where an emulator answers it. The queries are found in the source (every string literal that starts
with SELECT), so a new one is checked without being registered here."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCHEMA = REPO.parent / "shared" / "reference" / "aws-config-resource-schema" / "config" / "properties"
SOURCES = [REPO / "include", REPO / "dags", REPO / "plugins"]
_KEYWORDS = {"select", "where", "and", "or", "not", "in", "like", "between", "is", "null", "order", "by", "group",
             "asc", "desc", "as", "count", "sum", "min", "max", "avg", "true", "false", "limit"}
_STRING = re.compile(r"'(?:[^']|'')*'")
_IDENT = re.compile(r"[A-Za-z_][\w]*(?:\.[\w]+)*")

pytestmark = pytest.mark.skipif(not SCHEMA.is_dir(), reason="AWS's schema reference is not checked out beside the repo")


def properties(resource_type: str) -> set[str]:
    """AWS's queryable properties of a resource type (common ones included)."""
    path = SCHEMA / "resource-types" / f"{resource_type}.properties.json"
    if not path.exists():
        raise AssertionError(f"{resource_type} is not a resource type AWS Config's advanced query knows")
    return set(json.loads(path.read_text(encoding="utf-8")))


def problems(expression: str) -> list[str]:
    """What in ``expression`` AWS's schema does not list; [] for a query that can work on real AWS."""
    types = re.findall(r"resourceType\s*=\s*'([^']+)'", expression)
    if not types:
        return ["no resourceType = '<type>' condition: the properties cannot be checked"]
    known = set.intersection(*(properties(t) for t in types))
    out = []
    for name in _IDENT.findall(_STRING.sub(" ", expression)):
        if name.lower() in _KEYWORDS:
            continue
        # A property, or a parent of listed properties (SELECT configuration.configRuleList).
        if name not in known and not any(p.startswith(name + ".") for p in known):
            out.append(f"{name} is not a queryable property of {', '.join(types)}")
    return out


def product_queries() -> list[tuple[str, str]]:
    """(where, query) of every string literal starting with SELECT in the product's Python files; f-strings are
    checked with their placeholders as written."""
    found = []
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                text = None
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = node.value
                elif isinstance(node, ast.JoinedStr):
                    text = "".join(v.value if isinstance(v, ast.Constant) else "'placeholder'" for v in node.values)
                if text and re.match(r"\s*SELECT\s", text):
                    found.append((f"{path.relative_to(REPO)}:{node.lineno}", text))
    return found


def test_the_check_refuses_the_former_inventory_query():
    # SSM inventory has no queryable configuration.* property: this query returned nothing useful on real AWS.
    query = ("SELECT resourceId, accountId, awsRegion, configuration "
             "WHERE resourceType = 'AWS::SSM::ManagedInstanceInventory'")
    assert problems(query) == ["configuration is not a queryable property of AWS::SSM::ManagedInstanceInventory"]


def test_the_check_accepts_a_resource_compliance_query():
    query = ("SELECT accountId, awsRegion, configuration.targetResourceType, configuration.targetResourceId, "
             "configuration.configRuleList WHERE resourceType = 'AWS::Config::ResourceCompliance' "
             "AND configuration.complianceType = 'NON_COMPLIANT'")
    assert problems(query) == []


def test_every_query_the_product_can_send_uses_only_listed_properties():
    bad = {where: problems(query) for where, query in product_queries() if problems(query)}
    assert bad == {}

"""The sandbox's fast paths (issue #18) against the straightforward implementations they replaced, kept here as
references: det.Prefix against joining and hashing every part, the packed Config evaluations against building each
evaluation's dict with datetimes, the snapshot's hand-written JSON against ``json.dumps`` of the documented
structure, the truth's timestamp table against ``datetime.isoformat()``. In-process, no server and no moto state."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox import det
from sandbox.config import snapshot
from sandbox.config.models import ComplianceModel, day_stamps
from sandbox.settings import SandboxSettings

ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("us-east-1", "ap-southeast-1")
DATES = (dt.date(2026, 3, 18), dt.date(2026, 3, 21), dt.date(2026, 11, 23))


# --- references: the code before issue #18 ------------------------------------------------------------------------
def ref_digest(*parts: object) -> int:
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def ref_hexid(length: int, *parts: object) -> str:
    out, salt = "", 0
    while len(out) < length:
        out += hashlib.blake2b("\x1f".join(str(p) for p in (*parts, salt)).encode(), digest_size=16).hexdigest()
        salt += 1
    return out[:length]


def ref_resource_id(model: ComplianceModel, account_id: str, region: str, spec: dict[str, Any], j: int) -> str:
    seed = model.world.settings.seed
    key = (seed, account_id, region, spec.get("id_scope", spec["name"]), j)
    kind = spec["id_kind"]
    if kind == "account":
        return account_id
    if ref_digest(*key, "hostile") / 2**64 < model.data["hostile_rate"]:
        values = model.data["hostile_values"]
        return values[ref_digest(*key, "hv") % len(values)]
    if kind == "bucket":
        purposes = model.data["bucket_purposes"]
        return f"{purposes[ref_digest(*key, 'p') % len(purposes)]}-{account_id}-{region}-{ref_hexid(4, *key)}"
    if kind == "db":
        return "db-" + ref_hexid(26, *key).upper()
    prefix = {"volume": "vol", "security_group": "sg", "instance": "i"}[kind]
    return f"{prefix}-{ref_hexid(17, *key)}"


def ref_evaluations(model: ComplianceModel, account_id: str, region: str, rule_name: str, spec: dict[str, Any],
                    date: dt.date) -> list[dict[str, Any]]:
    def unit(*parts: object) -> float:
        return ref_digest(*parts) / 2**64

    def integer(lo: int, hi: int, *parts: object) -> int:
        return lo + ref_digest(*parts) % (hi - lo + 1)

    seed = model.world.settings.seed
    day = (date - dt.date(1970, 1, 1)).days
    n = integer(spec["resources"][0], spec["resources"][1], seed, "n", account_id, region, spec["name"])
    midnight = dt.datetime.combine(date, dt.time(0, 0), tzinfo=dt.UTC)
    out = []
    for j in range(n):
        key = (seed, account_id, region, spec["name"], j)
        annotation = None
        if unit(*key, "na") < spec["not_applicable_rate"]:
            compliance = "NOT_APPLICABLE"
        else:
            length = integer(2, 6, *key, "len")
            offset = integer(0, length - 1, *key, "off")
            open_ = unit(*key, "open", (day + offset) // length) < spec["noncompliant_rate"]
            compliance = "NON_COMPLIANT" if open_ else "COMPLIANT"
            if open_:
                annotation = spec["annotation"]
                if unit(*key, "hostile-annotation") < model.data["hostile_rate"] * 3:
                    values = model.data["hostile_values"]
                    annotation = f"{annotation} {values[ref_digest(*key, 'ha') % len(values)]}"
        ordering = midnight + dt.timedelta(seconds=integer(0, 5 * 3600, *key, "t", day))
        result: dict[str, Any] = {
            "EvaluationResultIdentifier": {
                "EvaluationResultQualifier": {
                    "ConfigRuleName": rule_name, "ResourceType": spec["resource_type"],
                    "ResourceId": ref_resource_id(model, account_id, region, spec, j), "EvaluationMode": "DETECTIVE",
                },
                "OrderingTimestamp": ordering,
            },
            "ComplianceType": compliance,
            "ResultRecordedTime": ordering + dt.timedelta(seconds=60),
            "ConfigRuleInvokedTime": ordering + dt.timedelta(seconds=30),
        }
        if annotation:
            result["Annotation"] = annotation
        out.append(result)
    return out


def ref_item(account_id: str, region: str, resource_type: str, resource_id: str, captured: dt.datetime,
             configuration: dict[str, Any], *, arn: str | None = None) -> dict[str, Any]:
    body = json.dumps(configuration, sort_keys=True)
    return {
        "relatedEvents": [], "relationships": [], "configuration": configuration, "supplementaryConfiguration": {},
        "tags": {}, "configurationItemVersion": "1.3",
        "configurationItemCaptureTime": captured.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "configurationStateId": 1, "awsAccountId": account_id, "configurationItemStatus": "OK",
        "resourceType": resource_type, "resourceId": resource_id, "resourceName": resource_id,
        "ARN": arn or snapshot._arn(resource_type, resource_id, account_id, region), "awsRegion": region,
        "availabilityZone": "Not Applicable",
        "configurationStateMd5Hash": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
    }


def ref_body(account_id: str, region: str, day: dt.date, snapshot_id: str, evaluated: list[tuple],
             inventory: list[dict[str, Any]]) -> str:
    midnight = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)
    per_resource: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rule_name, arn, rule_id, rtype, rows in evaluated:
        for rid, compliance, _, _ in rows:
            per_resource.setdefault((rtype, rid), []).append({
                "configRuleName": rule_name, "configRuleArn": arn, "configRuleId": rule_id,
                "complianceType": compliance})
    order = ("NON_COMPLIANT", "COMPLIANT", "NOT_APPLICABLE", "INSUFFICIENT_DATA")
    items = []
    for (rtype, rid), results in sorted(per_resource.items()):
        if not rtype.startswith("AWS::::"):
            items.append(ref_item(account_id, region, rtype, rid, midnight, {}))
        overall = min((r["complianceType"] for r in results), key=order.index)
        compliance_id = f"{rtype}/{rid}"
        items.append(ref_item(account_id, region, "AWS::Config::ResourceCompliance", compliance_id,
                              midnight + dt.timedelta(hours=5),
                              {"configRuleList": results, "complianceType": overall, "resourceId": rid,
                               "resourceType": rtype},
                              arn=f"arn:aws:config:{region}:{account_id}:resource-compliance/{compliance_id}"))
    for inv in inventory:
        captured = dt.datetime.strptime(inv["configurationItemCaptureTime"], "%Y-%m-%dT%H:%M:%SZ")
        items.append(ref_item(account_id, region, inv["resourceType"], inv["resourceId"], captured,
                              inv["configuration"],
                              arn=f"arn:aws:ssm:{region}:{account_id}:managed-instance-inventory/{inv['resourceId']}"))
    body = {"fileVersion": "1.0", "configSnapshotId": snapshot_id, "configurationItems": items}
    return json.dumps(body, separators=(",", ":"))


# --- fixtures -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model() -> ComplianceModel:
    """The realistic profile's model (catalogue and pool rules), with hostile ids and annotations made frequent so
    that every code path of the packed rows is taken."""
    world = SimpleNamespace(settings=SandboxSettings(accounts=3, seed=11, profile="realistic"))
    m = ComplianceModel(world)
    m.data = {**m.data, "hostile_rate": 0.2}
    return m


def _specs(m: ComplianceModel) -> list[dict[str, Any]]:
    """Every catalogue rule and a sample of the pool covering each resource type (pool rules share id scopes)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for spec in m.pool:
        by_type.setdefault(spec["resource_type"], []).append(spec)
    return [*m.data["rules"], *(spec for specs in by_type.values() for spec in specs[:3])]


# --- tests ----------------------------------------------------------------------------------------------------------
def test_prefix_and_digest_equal_joining_every_part():
    rng = random.Random(5)
    values = [0, 7, 123456789012, -3, 2.5, None, "", "a", "\x1f", "日本語-🚀", "line\nbreak", dt.date(2026, 3, 18)]
    for _ in range(3000):
        parts = [rng.choice(values) for _ in range(rng.randint(1, 6))]
        k = rng.randint(1, len(parts))
        head, more = parts[:k], parts[k:]
        want = ref_digest(*parts)
        assert det.digest(*parts) == want
        assert det.hexid(40, *parts) == ref_hexid(40, *parts)
        p = det.Prefix(*head)
        assert p.digest(*more) == want
        assert p.hexid(33, *more) == ref_hexid(33, *parts)
        if more:
            assert p.text("\x1f".join(map(str, more))) == want
            assert p.integer(3, 9, *more) == 3 + want % 7
            assert p.unit(*more) == want / 2**64


def test_packed_evaluations_equal_the_reference(model):
    seen_codes = set()
    for account in ACCOUNTS:
        for region in REGIONS:
            for date in DATES:
                for spec in _specs(model):
                    want = ref_evaluations(model, account, region, spec["name"], spec, date)
                    assert model._evaluations(account, region, spec["name"], spec, date) == want
                    rows = model.rows(account, region, spec["name"], spec, date)
                    assert rows == [(e["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceId"],
                                     e["ComplianceType"], e.get("Annotation"),
                                     int((e["EvaluationResultIdentifier"]["OrderingTimestamp"]
                                          - dt.datetime.combine(date, dt.time(0), tzinfo=dt.UTC)).total_seconds()))
                                    for e in want]
                    seen_codes.update(model._cache[(account, region, spec["name"], spec["name"], date)][0])
    # Not applicable, compliant, non-compliant, and non-compliant with each hostile annotation all occurred.
    assert seen_codes == set(range(3 + len(model.data["hostile_values"])))


def test_ids_of_a_shared_scope_do_not_depend_on_which_rule_asked_first(model):
    fresh = ComplianceModel(model.world)
    fresh.data = model.data
    pool = [s for s in _specs(model) if "id_scope" in s]
    for spec in reversed(pool):  # another order than the test above
        for j in range(spec["resources"][1]):
            assert fresh._resource_id(ACCOUNTS[0], REGIONS[0], spec, j) == ref_resource_id(
                fresh, ACCOUNTS[0], REGIONS[0], spec, j)


def test_truth_timestamps_equal_isoformat():
    for date in DATES:
        midnight = dt.datetime.combine(date, dt.time(0, 0), tzinfo=dt.UTC)
        stamps = day_stamps(date)
        assert len(stamps) == 5 * 3600 + 1
        assert stamps == [(midnight + dt.timedelta(seconds=s)).isoformat() for s in range(5 * 3600 + 1)]


def test_snapshot_body_equals_json_dumps_of_the_documented_structure(model):
    account, region, date = ACCOUNTS[1], REGIONS[0], DATES[0]
    evaluated = [(spec["name"], f"arn:aws:config:{region}:{account}:config-rule/config-rule-{i:06d}",
                  f"config-rule-{i:06d}" if i % 5 else "", spec["resource_type"],
                  model.rows(account, region, spec["name"], spec, date))
                 for i, spec in enumerate(sorted(_specs(model), key=lambda s: s["name"]))]
    inventory = [{"resourceId": "mi-0123456789abcdef0", "resourceType": "AWS::SSM::ManagedInstanceInventory",
                  "configurationItemCaptureTime": "2026-03-18T04:05:06Z",
                  "configuration": {"AWS:Application": {"Content": {"Ünïcode \"app\"": {"Version": "1.0"},
                                                                    "a": {"Version": 2, "Size": 1.5}}}}}]
    snapshot_id = "97bbf070-1548-4287-a840-0b64d24aa06d"
    got = snapshot.body(account, region, date, snapshot_id, evaluated, inventory)
    assert got == ref_body(account, region, date, snapshot_id, evaluated, inventory)
    items = json.loads(got)["configurationItems"]
    assert any(ord(c) > 127 for i in items for c in i["resourceId"])  # hostile ids went through the encoder


def test_config_truth_equals_the_reference(model):
    specs = {s["name"]: s for s in _specs(model)}
    world = SimpleNamespace(
        settings=SimpleNamespace(seed=model.world.settings.seed, management_account_id=ACCOUNTS[0],
                                 regions=list(REGIONS)),
        member_ids=lambda: [ACCOUNTS[1], "999999999999"],
    )
    model.world, saved = world, model.world
    model.active_rules = lambda account, region: {} if account == "999999999999" else specs
    try:
        want: dict[str, Any] = {}
        for account in ACCOUNTS:
            for region in REGIONS:
                for name, spec in sorted(specs.items()):
                    want.setdefault(account, {}).setdefault(region, {})[name] = [{  # the former _plain()
                        "resource_type": e["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceType"],
                        "resource_id": e["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceId"],
                        "compliance": e["ComplianceType"], "annotation": e.get("Annotation"),
                        "ordering_timestamp": e["EvaluationResultIdentifier"]["OrderingTimestamp"].isoformat(),
                    } for e in ref_evaluations(model, account, region, name, spec, DATES[1])]
        assert model.truth(DATES[1]) == want
        assert model.truth(DATES[1], [ACCOUNTS[1]]) == {ACCOUNTS[1]: want[ACCOUNTS[1]]}
        assert model.truth(DATES[1], ["999999999999"]) == {}
    finally:
        model.world = saved
        del model.active_rules

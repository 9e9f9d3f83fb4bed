"""SSM inventory in the daily collection, against the sandbox over HTTP: through the aggregator's advanced query and
per account through the read role, under throttling and a refused read role, compared with the sandbox's truth;
prohibited packages become findings with stable ids."""

from __future__ import annotations

import fnmatch
import logging

import pytest
from packaging.version import Version

from include.awsgov import inventory, tables
from include.awsgov.aws import AwsAccess
from include.awsgov.settings import load_settings

TEST_RULES = [
    {"id": "log4j-old", "name": "log4j*", "versions": "<2.17.1", "severity": "critical", "title": "Old log4j"},
    {"id": "telnet", "name": "TELNET-server*", "severity": "high"},
]


def _access(sandbox) -> AwsAccess:
    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTINVENTORY001",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-inventory", retry_mode="standard")


@pytest.fixture(scope="module")
def runs(sandbox, tmp_path_factory):
    """One collection of the inventory only, through the aggregator and then per account, with 20 % throttling and
    one member whose read role refuses AssumeRole; and the truth."""
    from include.awsgov import collection
    from include.awsgov.store import Store

    logging.getLogger("botocore.credentials").setLevel(logging.CRITICAL)
    members = [a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    truth = sandbox.truth(sections=["inventory"])["inventory"]
    denied = next(a for a in members if a in truth)  # an account that has instances
    day = sandbox.today()
    section = {"collect": True, "prohibited_packages": TEST_RULES}
    out = {"day": day, "denied": denied, "truth": truth, "mgmt": sandbox.info["management_account_id"]}
    sandbox.set_faults(throttle_rate=0.2, deny_assume_accounts=[denied], seed=11)
    try:
        for via, use_aggregator in (("aggregator", True), ("account", False)):
            opts = collection.Options(regions=tuple(sandbox.info["regions"]), sources=(), inventory=section,
                                      use_aggregator=use_aggregator)
            store = Store(tmp_path_factory.mktemp(via) / "store")
            result = collection.collect_org(_access(sandbox), store, day, opts, run_id=f"test-{via}")
            out[via] = {"store": store, "result": result}
    finally:
        sandbox.clear_faults()
    return out


def _truth_rows(truth, skip=()):
    return sorted((acct, region, i["instance_id"], i["platform_name"], a["name"], a["version"], a["publisher"])
                  for acct, regions in truth.items() if acct not in skip
                  for region, instances in regions.items() for i in instances for a in i["applications"])


def _stored_rows(store, day):
    frame = store.read("software_inventory", day, day, schema=tables.SOFTWARE_INVENTORY)
    return sorted(zip(frame["account_id"], frame["region"], frame["instance_id"], frame["platform_name"],
                      frame["name"], frame["version"], frame["publisher"], strict=True)), frame


def test_aggregator_serves_every_account_even_with_its_read_role_refused(runs):
    rows, frame = _stored_rows(runs["aggregator"]["store"], runs["day"])
    assert rows == _truth_rows(runs["truth"]) and rows
    assert set(frame["via"]) == {"aggregator"}
    assert runs["denied"] in set(frame["account_id"])
    assert runs["aggregator"]["result"]["aggregate"]["inventory"]["status"] == "ok"
    cov = runs["aggregator"]["store"].read("coverage", runs["day"], runs["day"], schema=tables.COVERAGE)
    cov = cov[cov["source"] == inventory.SOURCE]
    assert set(cov["status"]) == {"ok"}
    assert len(cov) == len(set(cov["account_id"])) * 3


def test_per_account_reads_equal_the_truth_and_a_refused_role_is_a_coverage_gap(runs):
    rows, frame = _stored_rows(runs["account"]["store"], runs["day"])
    assert rows == _truth_rows(runs["truth"], skip={runs["denied"]}) and rows
    assert set(frame["via"]) == {"account"}
    cov = runs["account"]["store"].read("coverage", runs["day"], runs["day"], schema=tables.COVERAGE)
    cov = cov[cov["source"] == inventory.SOURCE]
    gaps = cov[cov["status"] != "ok"]
    assert set(gaps["status"]) >= {"access_denied"}
    assert set(gaps.loc[gaps["status"] == "access_denied", "account_id"]) >= {runs["denied"]}
    assert set(cov.loc[cov["account_id"] == runs["denied"], "status"]) == {"access_denied"}
    ok = cov[(cov["status"] == "ok") & cov["account_id"].isin(list(runs["truth"]))]
    assert (ok["api_calls"] > 0).all()  # GetInventory at least, counted for the account and region


def test_item_ids_are_stable_and_identical_whichever_way_the_data_came(runs):
    _, agg = _stored_rows(runs["aggregator"]["store"], runs["day"])
    _, acc = _stored_rows(runs["account"]["store"], runs["day"])
    agg = agg[agg["account_id"] != runs["denied"]]
    assert sorted(agg["item_id"]) == sorted(acc["item_id"])
    assert agg["item_id"].is_unique


def test_prohibited_packages_become_findings_matching_the_truth(runs):
    expected = set()
    for acct, regions in runs["truth"].items():
        for region, instances in regions.items():
            for inst in instances:
                for app in inst["applications"]:
                    name = app["name"].lower()
                    if fnmatch.fnmatch(name, "log4j*") and Version(app["version"]) < Version("2.17.1"):
                        expected.add((acct, region, "log4j-old", inst["instance_id"], app["name"], app["version"]))
                    if fnmatch.fnmatch(name, "telnet-server*"):
                        expected.add((acct, region, "telnet", inst["instance_id"], app["name"], app["version"]))
    store = runs["aggregator"]["store"]
    found = store.read("package_findings", runs["day"], runs["day"], schema=tables.PACKAGE_FINDINGS)
    assert expected and set(zip(found["account_id"], found["region"], found["rule_id"], found["instance_id"],
                                found["name"], found["version"], strict=True)) == expected
    row = found.iloc[0]
    assert row["finding_id"] == tables.finding_id("inventory", row["account_id"], row["region"], row["rule_id"],
                                                  f"{row['instance_id']}/{row['name']}")
    assert set(found.loc[found["rule_id"] == "log4j-old", "severity"]) == {"critical"}
    assert set(found.loc[found["rule_id"] == "telnet", "title"]) == {"Prohibited package TELNET-server*"}


def test_inventory_is_off_unless_the_settings_ask():
    from include.awsgov import collection

    assert not inventory.enabled(collection.Options(regions=("us-east-1",)))
    assert inventory.enabled(collection.Options.from_settings(load_settings()))


def test_settings_refuse_an_unsafe_prohibited_pattern():
    from include.awsgov.settings import SettingsError

    with pytest.raises(SettingsError, match="prohibited_packages"):
        load_settings({"inventory": {"prohibited_packages": [{"id": "x", "name": "a[0-9]|b", "severity": "high"}]}})


def test_prohibited_packages_flow_into_the_weekly_report_with_owners_and_exceptions(runs):
    import datetime as dt

    from include.awsgov.report import Week, build_week
    from include.awsgov.rules_catalog import load_catalog
    from include.awsgov.suppressions import parse

    store, day = runs["aggregator"]["store"], runs["day"]
    found = store.read("package_findings", day, day, schema=tables.PACKAGE_FINDINGS)
    telnet = found[found["rule_id"] == "telnet"].iloc[0]
    exceptions = parse({"version": 1, "exceptions": [{
        "id": "EXC-TELNET", "match": {"check": "telnet", "account_id": telnet["account_id"],
                                      "resource": f"{telnet['instance_id']}/*"},
        "reason": "Lab host", "approver": "sec@example.com", "ticket": "SEC-1",
        "expires": (dt.date.fromisoformat(str(day)) + dt.timedelta(days=60)).isoformat()}]})
    data = build_week(store, Week.of(dt.date.fromisoformat(str(day))), catalog=load_catalog(), exceptions=exceptions,
                      ou_owners={}, fallback="governance-team@example.com")
    mine = data.findings[data.findings["source"] == inventory.FINDING_SOURCE]
    assert set(mine["finding_id"]) == set(found["finding_id"])
    log4j = mine[mine["check"] == "log4j-old"]
    assert set(log4j["severity"]) == {"critical"} and set(log4j["title"]) == {"Old log4j"}
    assert set(mine["resource"]) == {f"{i}/{n}" for i, n in zip(found["instance_id"], found["name"], strict=True)}
    assert (mine["owner"] != "").all() and set(mine["delta"]) == {"new"}
    suppressed = mine[~mine["counted"]]
    assert set(suppressed["exception_id"]) == {"EXC-TELNET"}
    assert set(suppressed["account_id"]) == {telnet["account_id"]}
    assert set(mine.loc[mine["check"] == "telnet", "why"]) == {inventory.DEFAULT_REASON}  # no reason given
    assert all(url.startswith("https://") and "systems-manager" in url for url in mine["console_url"])

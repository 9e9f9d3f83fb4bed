"""SSM inventory in the daily collection, against the sandbox over HTTP: from the Config snapshots and the SSM
resource data sync in the central bucket, under throttling and a refused read role (which the bucket does not need),
compared with the sandbox's truth; prohibited packages become findings with stable ids."""

from __future__ import annotations

import fnmatch
import logging

import pytest
from botocore.exceptions import ClientError
from packaging.version import Version

from include.awsgov.collection import ssm_inventory
from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess
from include.awsgov.core.settings import load_settings
from include.awsgov.software import findings as package_findings
from tests.fixtures.store_files import store_files

TEST_RULES = [
    {"id": "log4j-old", "name": "log4j*", "versions": "<2.17.1", "severity": "critical", "title": "Old log4j"},
    {"id": "telnet", "name": "TELNET-server*", "severity": "high"},
    {"id": "log4j-any", "name": "log4j", "severity": "low", "title": "log4j present"},  # every version installed
]


def _access(sandbox) -> AwsAccess:
    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTINVENTORY001",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-inventory", retry_mode="standard")


@pytest.fixture(scope="module")
def runs(sandbox, tmp_path_factory):
    """One collection of the inventory only, from the data sync, with 20 % throttling and one member whose read role
    refuses AssumeRole, then a rerun of the day into the same store; and the truth."""
    from include.awsgov.collection import runner
    from include.awsgov.core.store import Store

    logging.getLogger("botocore.credentials").setLevel(logging.CRITICAL)
    members = [a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    truth = sandbox.truth(sections=["inventory"])["inventory"]
    denied = next(a for a in members if a in truth)  # an account that has instances
    day = sandbox.today()
    section = {"collect": True, "prohibited_packages": TEST_RULES}
    out = {"day": day, "denied": denied, "truth": truth, "mgmt": sandbox.info["management_account_id"]}
    sandbox.set_faults(throttle_rate=0.2, deny_assume_accounts=[denied], seed=11)
    sandbox.reset_calls()
    try:
        opts = runner.Options(regions=tuple(sandbox.info["regions"]), sources=(), inventory=section)
        store = Store(tmp_path_factory.mktemp("sync") / "store")
        result = runner.collect_org(_access(sandbox), store, day, opts, run_id="test-sync")
        out["sync"] = {"store": store, "result": result, "calls": sandbox.calls()["calls"]}
        before = _files(store)
        runner.collect_org(_access(sandbox), store, day, opts, run_id="test-sync")
        out["rerun"] = (before, _files(store))
        with_config = runner.Options(regions=tuple(sandbox.info["regions"]), sources=("config",), inventory=section)
        store = Store(tmp_path_factory.mktemp("snapshot") / "store")
        sandbox.reset_calls()
        runner.collect_org(_access(sandbox), store, day, with_config, run_id="test-snapshot")
        out["snapshot"] = {"store": store, "calls": sandbox.calls()["calls"]}
    finally:
        sandbox.clear_faults()
    return out


def _files(store) -> dict:
    return store_files(store.root, skip={"collection_runs"})  # it holds wall-clock times: the rest must not change


def _truth_rows(truth, skip=()):
    return sorted((acct, region, i["instance_id"], i["platform_name"], a["name"], a["version"], a["publisher"])
                  for acct, regions in truth.items() if acct not in skip
                  for region, instances in regions.items() for i in instances for a in i["applications"])


def _stored_rows(store, day):
    frame = store.read("software_inventory", day, day, schema=tables.SOFTWARE_INVENTORY)
    return sorted(zip(frame["account_id"], frame["region"], frame["instance_id"], frame["platform_name"],
                      frame["name"], frame["version"], frame["publisher"], strict=True)), frame


def test_data_sync_serves_every_account_even_with_its_read_role_refused(runs):
    rows, frame = _stored_rows(runs["sync"]["store"], runs["day"])
    assert rows == _truth_rows(runs["truth"]) and rows
    assert set(frame["via"]) == {"data_sync"}
    assert runs["denied"] in set(frame["account_id"])
    assert frame["item_id"].is_unique
    cov = runs["sync"]["store"].read("coverage", runs["day"], runs["day"], schema=tables.COVERAGE)
    cov = cov[cov["source"] == ssm_inventory.SOURCE]
    assert set(cov["status"]) == {"ok"}
    assert len(cov) == len(set(cov["account_id"])) * 3


def test_config_snapshots_serve_the_inventory_and_the_sync_only_where_none_was_delivered(runs):
    store, day = runs["snapshot"]["store"], runs["day"]
    rows, frame = _stored_rows(store, day)
    assert rows == _truth_rows(runs["truth"]) and rows
    cov = store.read("coverage", day, day, schema=tables.COVERAGE)
    no_snapshot = {(a, r) for a, r, s, st in zip(cov["account_id"], cov["region"], cov["source"], cov["status"],
                                                 strict=True) if s == "config" and st == "not_delivered"}
    via = dict(zip(zip(frame["account_id"], frame["region"], strict=True), frame["via"], strict=True))
    assert "config_snapshot" in set(via.values())
    assert {k for k, v in via.items() if v == "data_sync"} <= no_snapshot
    assert {k for k, v in via.items() if v == "config_snapshot"}.isdisjoint(no_snapshot)
    inventory = cov[cov["source"] == ssm_inventory.SOURCE]
    assert set(inventory["status"]) == {"ok"} and len(inventory) == len(cov[cov["source"] == "config"])
    got, _ = _found_findings(store, day)
    assert got == _expected_findings(runs["truth"])
    sync_reads = [c for c in runs["snapshot"]["calls"] if c["service"] == "s3" and c["action"] == "GetObject"]
    sync_only = [c for c in runs["sync"]["calls"] if c["service"] == "s3" and c["action"] == "GetObject"]
    # Config snapshots (one per account and region) replace most per-instance sync objects.
    assert sum(c["count"] for c in sync_reads) < sum(c["count"] for c in sync_only)


def test_inventory_reads_only_the_central_bucket_never_ssm_or_the_aggregator(runs):
    calls = runs["sync"]["calls"]
    assert not [c for c in calls if c["service"] == "ssm" or c["action"] == "SelectAggregateResourceConfig"]
    reads = {c["account"] for c in calls if c["service"] == "s3"}
    assert reads == {runs["mgmt"]}  # the admin account's own credentials


def test_a_failed_listing_is_a_gap_in_every_region_of_the_account():
    from include.awsgov.collection import units

    class Refusing:
        def get_paginator(self, operation):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectsV2")

    job = units.Job("111122223333", [], [])
    opts = type("Opts", (), {"inventory": {"collect": True}, "regions": ("us-east-1", "eu-west-1"),
                             "inventory_sync_prefix": "inventory"})()
    ssm_inventory.add_units(job, Refusing, "central", "111122223333", opts)
    (unit,) = job.units
    out, exc, _ = units.run_counted(unit.fn)
    assert out is None and isinstance(exc, ClientError)
    job.record(unit.region, unit.source, "access_denied", units.error_text(exc))
    assert unit.then("access_denied", exc) == []
    assert {(r["region"], r["status"]) for r in job.coverage_rows()} == {("us-east-1", "access_denied"),
                                                                         ("eu-west-1", "access_denied")}


def _expected_findings(truth, skip=()):
    """{(account, region, rule, instance, name): matched versions, oldest first} from the truth."""
    expected: dict[tuple, list[str]] = {}
    for acct, regions in truth.items():
        if acct in skip:
            continue
        for region, instances in regions.items():
            for inst in instances:
                for app in inst["applications"]:
                    name = app["name"].lower()
                    log4j = fnmatch.fnmatch(name, "log4j*")
                    rules = {"log4j-old": log4j and Version(app["version"]) < Version("2.17.1"),
                             "telnet": fnmatch.fnmatch(name, "telnet-server*"), "log4j-any": name == "log4j"}
                    for rule in (r for r, hit in rules.items() if hit):
                        expected.setdefault((acct, region, rule, inst["instance_id"], app["name"]), []).append(
                            app["version"])
    return {k: ", ".join(sorted(v, key=Version)) for k, v in expected.items()}


def _found_findings(store, day):
    found = store.read("package_findings", day, day, schema=tables.PACKAGE_FINDINGS)
    keys = zip(found["account_id"], found["region"], found["rule_id"], found["instance_id"], found["name"], strict=True)
    return dict(zip(keys, found["version"], strict=True)), found


def test_prohibited_packages_become_findings_matching_the_truth(runs):
    expected = _expected_findings(runs["truth"])
    store = runs["sync"]["store"]
    got, found = _found_findings(store, runs["day"])
    assert expected and got == expected and len(found) == len(expected)
    row = found.iloc[0]
    assert row["finding_id"] == tables.finding_id("inventory", row["account_id"], row["region"], row["rule_id"],
                                                  f"{row['instance_id']}/{row['name']}")
    assert set(found.loc[found["rule_id"] == "log4j-old", "severity"]) == {"critical"}
    assert set(found.loc[found["rule_id"] == "telnet", "title"]) == {"Prohibited package TELNET-server*"}


def test_two_versions_of_a_prohibited_package_are_one_finding_listing_both(runs):
    expected = _expected_findings(runs["truth"])
    doubled = {k: v for k, v in expected.items() if ", " in v}
    assert doubled, "the sandbox seeds instances with two log4j versions side by side"
    for via, skip in (("sync", set()),):
        got, found = _found_findings(runs[via]["store"], runs["day"])
        assert found["finding_id"].is_unique, via
        assert got == _expected_findings(runs["truth"], skip), via
        key = next(k for k in doubled if k[0] not in skip)
        row = found[(found["instance_id"] == key[3]) & (found["rule_id"] == key[2])].iloc[0]
        # The id does not carry the version: the same finding whichever prohibited versions are installed.
        assert row["finding_id"] == tables.finding_id("inventory", key[0], key[1], key[2], f"{key[3]}/{key[4]}")
        assert row["version"] == doubled[key]


def test_rerun_of_the_day_under_throttling_writes_identical_files(runs):
    first, again = runs["rerun"]
    assert first and first == again


def test_search_answers_from_the_last_day_with_an_inventory(runs, sandbox, tmp_path):
    import datetime as dt
    import shutil

    from include.awsgov.collection import runner
    from include.awsgov.core.store import Store
    from include.awsgov.software import search as ps

    day = dt.date.fromisoformat(str(runs["day"]))
    shutil.copytree(runs["sync"]["store"].root, tmp_path / "store")
    store = Store(str(tmp_path / "store"))
    off = runner.Options(regions=tuple(sandbox.info["regions"]), sources=())  # inventory not collected
    runner.collect_org(_access(sandbox), store, day + dt.timedelta(days=1), off, run_id="test-off")
    assert store.days("accounts")[-1] == day + dt.timedelta(days=1)
    assert store.days("software_inventory") == [day]  # nothing written for a day without the inventory
    assert all(d == day for t in ("package_findings", "guardduty_findings", "macie_findings") for d in store.days(t))
    query = ps.SearchQuery(pattern="log4j*")
    result = ps.search(store, query)
    truth = {(a, r, i["instance_id"], x["version"]) for a, regions in runs["truth"].items()
             for r, insts in regions.items() for i in insts for x in i["applications"] if x["name"] == "log4j"}
    assert result["day"] == day.isoformat() and result["summary"]["matches"] == len(truth) > 0
    # A rerun of the inventory's day with the inventory off replaces the day: no inventory left to answer from.
    runner.collect_org(_access(sandbox), store, day, off, run_id="test-off-rerun")
    assert store.chunks("software_inventory", day) == [] and store.chunks("package_findings", day) == []
    with pytest.raises(ps.NoInventoryError):
        ps.search(store, query)


def test_inventory_is_off_unless_the_settings_ask():
    from include.awsgov.collection import runner

    assert not ssm_inventory.enabled(runner.Options(regions=("us-east-1",)))
    assert ssm_inventory.enabled(runner.Options.from_settings(load_settings()))


def test_settings_refuse_an_unsafe_prohibited_pattern():
    from include.awsgov.core.settings import SettingsError

    with pytest.raises(SettingsError, match="prohibited_packages"):
        load_settings({"inventory": {"prohibited_packages": [{"id": "x", "name": "a[0-9]|b", "severity": "high"}]}})


def test_prohibited_packages_flow_into_the_weekly_report_with_owners_and_exceptions(runs):
    import datetime as dt

    from include.awsgov.report.catalog import load_catalog
    from include.awsgov.report.suppressions import parse
    from include.awsgov.report.week import Week, build_week

    store, day = runs["sync"]["store"], runs["day"]
    found = store.read("package_findings", day, day, schema=tables.PACKAGE_FINDINGS)
    telnet = found[found["rule_id"] == "telnet"].iloc[0]
    exceptions = parse({"version": 1, "exceptions": [{
        "id": "EXC-TELNET", "match": {"check": "telnet", "account_id": telnet["account_id"],
                                      "resource": f"{telnet['instance_id']}/*"},
        "reason": "Lab host", "approver": "sec@example.com", "ticket": "SEC-1",
        "expires": (dt.date.fromisoformat(str(day)) + dt.timedelta(days=60)).isoformat()}]})
    data = build_week(store, Week.of(dt.date.fromisoformat(str(day))), catalog=load_catalog(), exceptions=exceptions,
                      ou_owners={}, fallback="governance-team@example.com")
    mine = data.findings[data.findings["source"] == package_findings.FINDING_SOURCE]
    assert set(mine["finding_id"]) == set(found["finding_id"])
    log4j = mine[mine["check"] == "log4j-old"]
    assert set(log4j["severity"]) == {"critical"} and set(log4j["title"]) == {"Old log4j"}
    assert set(mine["resource"]) == {f"{i}/{n}" for i, n in zip(found["instance_id"], found["name"], strict=True)}
    assert (mine["owner"] != "").all() and set(mine["delta"]) == {"new"}
    suppressed = mine[~mine["counted"]]
    assert set(suppressed["exception_id"]) == {"EXC-TELNET"}
    assert set(suppressed["account_id"]) == {telnet["account_id"]}
    assert set(mine.loc[mine["check"] == "telnet", "why"]) == {package_findings.DEFAULT_REASON}  # no reason given
    assert all(url.startswith("https://") and "systems-manager" in url for url in mine["console_url"])

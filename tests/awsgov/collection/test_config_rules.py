"""Config compliance: aggregator discovery and source status, the snapshot layout and its ResourceCompliance items
(botocore Stubber checks requests and responses against the service models), then the collection's Config part
against the sandbox's central bucket under faults, compared with the sandbox's truth."""

from __future__ import annotations

import datetime as dt
import json
import logging

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from include.awsgov.collection import config_rules as cfgc
from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess

TEST_ACCOUNT = "210987654321"
TEST_OTHER = "310987654321"
TEST_TIME = dt.datetime(2026, 11, 23, 4, 30, tzinfo=dt.UTC)


@pytest.fixture
def access():
    """An access layer whose admin Config client in us-east-1 is stubbed."""
    acc = AwsAccess(session=boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                          region_name="us-east-1"))
    client = acc.client("config", "us-east-1")
    with Stubber(client) as stub:
        yield acc, stub
        stub.assert_no_pending_responses()


def test_find_aggregator_prefers_configured_name(access):
    acc, stub = access
    stub.add_response("describe_configuration_aggregators", {"ConfigurationAggregators": [
        {"ConfigurationAggregatorName": "org-wide",
         "OrganizationAggregationSource": {"RoleArn": "arn:aws:iam::123456789012:role/r", "AllAwsRegions": True}},
        {"ConfigurationAggregatorName": "two-accounts", "AccountAggregationSources": [
            {"AccountIds": [TEST_ACCOUNT, TEST_OTHER], "AwsRegions": ["eu-west-1"]}]},
    ]})
    agg = cfgc.find_aggregator(acc, "us-east-1", preferred="two-accounts")
    assert agg.name == "two-accounts" and not agg.org_wide
    assert agg.covers(TEST_ACCOUNT, "eu-west-1")
    assert not agg.covers(TEST_ACCOUNT, "us-east-1")
    assert not agg.covers("999999999999", "eu-west-1")
    assert cfgc.Aggregator.from_dict(agg.to_dict()) == agg


def test_find_aggregator_falls_back_to_org_wide_then_none(access):
    acc, stub = access
    stub.add_response("describe_configuration_aggregators", {"ConfigurationAggregators": [
        {"ConfigurationAggregatorName": "some-accounts", "AccountAggregationSources": [
            {"AccountIds": [TEST_ACCOUNT], "AllAwsRegions": True}]},
        {"ConfigurationAggregatorName": "org-wide", "OrganizationAggregationSource": {
            "RoleArn": "arn:aws:iam::123456789012:role/r", "AwsRegions": ["us-east-1", "eu-west-1"]}},
    ]})
    stub.add_response("describe_configuration_aggregators", {"ConfigurationAggregators": []})
    agg = cfgc.find_aggregator(acc, "us-east-1", preferred="not-there")
    assert agg.name == "org-wide" and agg.regions == {"us-east-1", "eu-west-1"}
    assert agg.covers("999999999999", "eu-west-1") and not agg.covers("999999999999", "ap-northeast-1")
    assert cfgc.find_aggregator(acc, "us-east-1") is None


def test_source_status_pages_and_explains_failed_sources(access):
    acc, stub = access
    agg = cfgc.Aggregator("org", "us-east-1", True, frozenset(), None)
    ok = {"SourceId": TEST_ACCOUNT, "SourceType": "ACCOUNT", "AwsRegion": "us-east-1", "LastUpdateStatus": "SUCCEEDED"}
    failed = {"SourceId": TEST_ACCOUNT, "SourceType": "ACCOUNT", "AwsRegion": "ca-central-1",
              "LastUpdateStatus": "FAILED", "LastErrorCode": "NoAvailableConfigurationRecorder",
              "LastErrorMessage": "Config is not recording"}
    stub.add_response("describe_configuration_aggregator_sources_status",
                      {"AggregatedSourceStatusList": [ok], "NextToken": "t1"},
                      expected_params={"ConfigurationAggregatorName": "org", "Limit": 100})
    stub.add_response("describe_configuration_aggregator_sources_status",
                      {"AggregatedSourceStatusList": [failed]},
                      expected_params={"ConfigurationAggregatorName": "org", "Limit": 100, "NextToken": "t1"})
    found = cfgc.source_statuses(acc, agg)
    assert set(found) == {(TEST_ACCOUNT, "us-east-1"), (TEST_ACCOUNT, "ca-central-1")}
    assert cfgc.source_problem(found[(TEST_ACCOUNT, "us-east-1")]) == ""
    assert cfgc.source_problem(found[(TEST_ACCOUNT, "ca-central-1")]) == (
        "aggregator source FAILED (NoAvailableConfigurationRecorder: Config is not recording)")


def test_snapshot_folder_follows_aws_layout_without_zero_padding():
    folder = cfgc.snapshot_folder("config/{account_id}", TEST_ACCOUNT, "eu-west-1", dt.date(2026, 3, 7))
    assert folder == f"config/{TEST_ACCOUNT}/AWSLogs/{TEST_ACCOUNT}/Config/eu-west-1/2026/3/7/ConfigSnapshot/"
    assert cfgc.snapshot_folder("", TEST_ACCOUNT, "eu-west-1", dt.date(2026, 11, 23)).startswith("AWSLogs/")


def test_find_snapshot_takes_the_latest_snapshot_file_of_the_folder():
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    folder = cfgc.snapshot_folder("", TEST_ACCOUNT, "us-east-1", dt.date(2026, 11, 23))
    name = f"{TEST_ACCOUNT}_Config_us-east-1_ConfigSnapshot_"
    keys = [f"{folder}{name}20261123T061247Z_a.json.gz", f"{folder}{name}20261123T181247Z_b.json.gz",
            f"{folder}ConfigWritabilityCheckFile"]
    with Stubber(s3) as stub:
        stub.add_response("list_objects_v2", {"Contents": [{"Key": k} for k in keys]},
                          expected_params={"Bucket": "central", "Prefix": folder})
        stub.add_response("list_objects_v2", {"KeyCount": 0}, expected_params={"Bucket": "central", "Prefix": folder})
        assert cfgc.find_snapshot(s3, "central", folder) == keys[1]
        assert cfgc.find_snapshot(s3, "central", folder) is None


def _compliance_item(rtype, rid, results, target_keys=False):
    conf = {"configRuleList": [{"configRuleName": r, "complianceType": c} for r, c in results]}
    conf.update({"targetResourceType": rtype, "targetResourceId": rid} if target_keys
                else {"resourceType": rtype, "resourceId": rid})
    return {"resourceType": "AWS::Config::ResourceCompliance", "resourceId": f"{rtype}/{rid}",
            "configurationItemCaptureTime": "2026-11-23T05:00:00.000Z", "configuration": conf}


def test_compliance_rows_from_resource_compliance_items():
    items = [
        {"resourceType": "AWS::S3::Bucket", "resourceId": "logs", "configuration": {}},  # not a compliance item
        _compliance_item("AWS::S3::Bucket", "logs", [("s3-public", "NON_COMPLIANT"), ("s3-encrypted", "COMPLIANT")]),
        _compliance_item("AWS::S3::Bucket", "web/site", [("s3-public", "COMPLIANT")], target_keys=True),
        _compliance_item("AWS::EC2::Volume", "vol-1", [("ebs-encrypted", "NOT_APPLICABLE")]),
    ]
    rules, found = cfgc.compliance_rows(TEST_ACCOUNT, "us-east-1", items)
    assert [(r["rule_name"], r["compliance"], r["noncompliant_resources"]) for r in rules] == [
        ("ebs-encrypted", "INSUFFICIENT_DATA", 0), ("s3-encrypted", "COMPLIANT", 0), ("s3-public", "NON_COMPLIANT", 1)]
    assert sorted((f["rule_name"], f["resource_id"], f["compliance"]) for f in found) == [
        ("ebs-encrypted", "vol-1", "NOT_APPLICABLE"), ("s3-encrypted", "logs", "COMPLIANT"),
        ("s3-public", "logs", "NON_COMPLIANT"), ("s3-public", "web/site", "COMPLIANT")]
    first = next(f for f in found if f["rule_name"] == "s3-public" and f["resource_id"] == "logs")
    assert first == {
        "finding_id": tables.finding_id("config", TEST_ACCOUNT, "us-east-1", "s3-public", "AWS::S3::Bucket/logs"),
        "account_id": TEST_ACCOUNT, "region": "us-east-1", "rule_name": "s3-public",
        "resource_type": "AWS::S3::Bucket", "resource_id": "logs", "compliance": "NON_COMPLIANT",
        "annotation": "", "recorded_at": dt.datetime(2026, 11, 23, 5, tzinfo=dt.UTC), "via": "snapshot"}


# -- against the sandbox: the collection's Config part under faults ---------------------------------------------------
def _sandbox_access(sandbox):
    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTCONFIGCOMP01",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-config", retry_mode="standard")


@pytest.fixture(scope="module")
def faulted(sandbox, tmp_path_factory):
    """Config of the organization from the central bucket's snapshots, under throttling, latency and two accounts
    whose read role refuses AssumeRole (the snapshots need none); and the truth of the day."""
    from include.awsgov.collection import runner
    from include.awsgov.core.store import Store

    logging.getLogger("botocore.credentials").setLevel(logging.CRITICAL)  # tracebacks of refused AssumeRole
    members = [a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    active = [a["id"] for a in sandbox.info["accounts"] if a["status"] == "ACTIVE"]
    targets = sorted([sandbox.info["management_account_id"], *active])
    day = sandbox.today()
    regions = tuple(sandbox.info["regions"])
    opts = runner.Options(sources=("config",), regions=regions)
    store = Store(tmp_path_factory.mktemp("config") / "store")
    sandbox.set_faults(throttle_rate=0.3, latency_ms=10, deny_assume_accounts=members[:2], seed=9)
    sandbox.reset_calls()
    try:
        aggregate = runner.collect_aggregate(_sandbox_access(sandbox), store, day, targets, opts)
        result = runner.collect_accounts(_sandbox_access(sandbox), store, day, targets, opts)
    finally:
        sandbox.clear_faults()
    truth = sandbox.truth(date=day, sections=["config"])["config"]
    return {"store": store, "day": day, "targets": targets, "regions": regions, "aggregate": aggregate,
            "result": result, "calls": sandbox.calls()["calls"], "mgmt": sandbox.info["management_account_id"],
            "denied": members[:2], "truth": truth}


def _frames(faulted):
    day = faulted["day"]
    return [faulted["store"].read(t, day, day, schema=getattr(tables, t.upper()))
            for t in ("config_rules", "config_findings", "coverage")]


def test_every_evaluation_of_the_day_is_stored_once_nothing_lost(faulted):
    rules, findings, _ = _frames(faulted)
    want_rules, want_found = set(), set()
    for account, regions in faulted["truth"].items():
        for region, per_rule in regions.items():
            for rule, evaluations in per_rule.items():
                kinds = {e["compliance"] for e in evaluations}
                if evaluations:  # a rule that evaluated nothing is in no snapshot item (docstring of config_rules)
                    want_rules.add((account, region, rule, "NON_COMPLIANT" if "NON_COMPLIANT" in kinds else
                                    "COMPLIANT" if "COMPLIANT" in kinds else "INSUFFICIENT_DATA"))
                want_found |= {(account, region, rule, e["resource_type"], e["resource_id"], e["compliance"])
                               for e in evaluations}
    assert want_found, "the sandbox seeds evaluations"
    assert set(zip(rules["account_id"], rules["region"], rules["rule_name"], rules["compliance"],
                   strict=True)) == want_rules
    assert set(zip(findings["account_id"], findings["region"], findings["rule_name"], findings["resource_type"],
                   findings["resource_id"], findings["compliance"], strict=True)) == want_found
    assert len(findings) == len(want_found) and not findings["finding_id"].duplicated().any()
    assert set(rules["via"]) == set(findings["via"]) == {"snapshot"}


def test_refused_read_roles_do_not_matter_and_only_missing_snapshots_are_gaps(faulted):
    _, _, coverage = _frames(faulted)
    assert len(coverage) == len(faulted["targets"]) * len(faulted["regions"])
    delivered = set(faulted["truth"])  # accounts whose Config records rules: the ones with a delivery channel
    assert set(faulted["denied"]) <= delivered
    for row in coverage.itertuples():
        if row.account_id in delivered:
            assert (row.status, row.error) == ("ok", ""), row
        else:
            assert row.status == "not_delivered", row
            assert f"no Config snapshot for {faulted['day']} or the day before" in row.error, row
            assert f"/AWSLogs/{row.account_id}/Config/{row.region}/" in row.error


def test_no_call_per_rule_two_bucket_reads_per_account_and_region(faulted):
    calls = faulted["calls"]
    config = {c["action"] for c in calls if c["service"] == "config"}
    assert config == {"DescribeConfigurationAggregators", "DescribeConfigurationAggregatorSourcesStatus"}
    assert {c["account"] for c in calls if c["service"] in ("config", "s3")} == {faulted["mgmt"]}
    served = sum(c["count"] - c["throttled"] for c in calls if c["action"] in ("ListObjectsV2", "GetObject"))
    pairs = len(faulted["targets"]) * len(faulted["regions"])
    delivered = sum(len(regions) for regions in faulted["truth"].values())
    # One listing per account and region, a second one (the day before) where the day has none, one read per snapshot.
    listings, reads = pairs + (pairs - delivered), delivered
    assert served == listings + reads


def test_a_run_before_the_days_delivery_reads_the_snapshot_of_the_day_before(faulted, sandbox, tmp_path):
    from include.awsgov.collection import runner
    from include.awsgov.core.store import Store

    day = dt.date.fromisoformat(faulted["day"])
    early = day + dt.timedelta(days=1)  # the daily run at midnight: that day's snapshots are not delivered yet
    store = Store(tmp_path / "store")
    opts = runner.Options(sources=("config",), regions=faulted["regions"])
    runner.collect_accounts(_sandbox_access(sandbox), store, early, faulted["targets"], opts)
    then = faulted["store"].read("config_findings", day, day, schema=tables.CONFIG_FINDINGS)
    now = store.read("config_findings", early, early, schema=tables.CONFIG_FINDINGS)
    assert len(now) == len(then) > 0
    assert set(now["finding_id"]) == set(then["finding_id"])
    cov = store.read("coverage", early, early, schema=tables.COVERAGE)
    assert set(cov.loc[cov["account_id"].isin(list(faulted["truth"])), "status"]) == {"ok"}


def test_finish_run_prunes_accounts_that_left_and_records_the_run(faulted, tmp_path):
    import shutil

    from include.awsgov.collection import runner
    from include.awsgov.core.store import Store

    shutil.copytree(faulted["store"].root, tmp_path / "store")
    store = Store(tmp_path / "store")
    stayed = faulted["targets"][:3]
    row = runner.finish_run(store, faulted["day"], stayed, run_id="r1", started_at=TEST_TIME,
                                regions=list(faulted["regions"]), api_calls=7)
    for table in ("config_rules", "config_findings", "coverage", "ta_checks", "ta_findings"):
        assert set(store.chunks(table, faulted["day"])) <= set(stayed), table
    assert set(store.chunks("coverage", faulted["day"])) == set(stayed)
    runs = store.read("collection_runs", schema=tables.COLLECTION_RUNS)
    assert (len(runs), row["accounts"], row["api_calls"]) == (1, 3, 7)
    assert row["gaps"] == int((store.read("coverage", schema=tables.COVERAGE)["status"] != "ok").sum())


# -- properties (Hypothesis, issue #19): any snapshot content is parsed into consistent rows or skipped -------------

_TEXT = st.text(max_size=30)
_RESULT = st.fixed_dictionaries({}, optional={"configRuleName": _TEXT, "complianceType": st.one_of(
    st.sampled_from(["COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE", "INSUFFICIENT_DATA"]), _TEXT)})
_ITEM = st.fixed_dictionaries(
    {"resourceType": st.sampled_from([cfgc.RESOURCE_COMPLIANCE, "AWS::S3::Bucket", ""])},
    optional={"resourceId": _TEXT,
              "configurationItemCaptureTime": st.one_of(st.none(), st.datetimes(timezones=st.just(dt.UTC)).map(
                  lambda d: d.isoformat().replace("+00:00", "Z"))),
              "configuration": st.fixed_dictionaries({}, optional={
                  "targetResourceType": _TEXT, "targetResourceId": _TEXT, "resourceType": _TEXT, "resourceId": _TEXT,
                  "configRuleList": st.lists(_RESULT, max_size=4)})})


@settings(max_examples=300, deadline=None)
@given(items=st.lists(_ITEM, max_size=8))
def test_any_snapshot_items_give_rules_that_count_their_findings(items):
    rules, findings = cfgc.compliance_rows("111111111111", "us-east-1", items)
    assert len({f["finding_id"] for f in findings}) == len(findings)
    for rule in rules:
        mine = [f for f in findings if f["rule_name"] == rule["rule_name"]]
        assert rule["noncompliant_resources"] == sum(f["compliance"] == "NON_COMPLIANT" for f in mine)
        assert (rule["compliance"] == "NON_COMPLIANT") == (rule["noncompliant_resources"] > 0)
    assert {f["rule_name"] for f in findings} == {r["rule_name"] for r in rules}


@settings(max_examples=200, deadline=None)
@given(items=st.lists(_ITEM, max_size=8))
def test_compliance_columns_are_compliance_rows_as_one_block(items):
    rules, findings = cfgc.compliance_rows("111111111111", "us-east-1", items)
    block_rules, block = cfgc.compliance_columns("111111111111", "us-east-1", cfgc.compliance_of(items))
    assert block_rules == rules
    assert block.length == len(findings) and [block.row(i) for i in range(block.length)] == findings
    assert list(block.columns) == list(tables.CONFIG_FINDINGS.names)


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | _TEXT,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                     max_leaves=6)
# Any JSON where the reader looks, also values that are not text (json.loads gives them as they are).
_ODD_RESULT = st.fixed_dictionaries({}, optional={"configRuleName": _JSON, "complianceType": _JSON,
                                                  "extra": _JSON})
_ODD_ITEM = st.fixed_dictionaries(
    {"resourceType": st.sampled_from([cfgc.RESOURCE_COMPLIANCE, "AWS::SSM::ManagedInstanceInventory",
                                      "AWS::S3::Bucket"])},
    optional={"resourceId": st.one_of(_TEXT, st.none(), st.integers()), "configurationItemCaptureTime": st.one_of(
        st.none(), st.datetimes(timezones=st.just(dt.UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z"))),
        "configuration": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
            "targetResourceType": _JSON, "targetResourceId": _JSON, "resourceType": _JSON, "resourceId": _JSON,
            "configRuleList": st.one_of(st.none(), st.lists(_ODD_RESULT, max_size=4)), "Other": _JSON})),
        "tags": _JSON})


@settings(max_examples=300, deadline=None)
@given(items=st.lists(st.one_of(_ITEM, _ODD_ITEM), max_size=8))
def test_the_snapshot_decoder_reads_what_json_loads_reads(items):
    # read_snapshot decodes only the fields it reads (msgspec); the rows must be those of the whole json.loads.
    data = json.dumps({"fileVersion": "1.0", "configurationItems": items}).encode()
    keep = ["AWS::SSM::ManagedInstanceInventory"]
    snap = cfgc.parse_snapshot(data, keep)
    whole = json.loads(data)["configurationItems"]
    assert snap.compliance == cfgc.compliance_of(whole)
    assert snap.items == [{k: i.get(k) for k in ("resourceType", "resourceId", "configurationItemCaptureTime",
                                                 "configuration")} for i in whole if i["resourceType"] in keep]

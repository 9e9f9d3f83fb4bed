"""Config compliance: aggregator discovery and coverage, and parsing of real response shapes (botocore Stubber checks
requests and responses against the Config service model; moto implements none of the compliance APIs), then the
collection's Config part against the sandbox under faults, through the aggregator and per account, compared with
the sandbox's truth."""

from __future__ import annotations

import datetime as dt
import logging

import boto3
import pytest
from botocore.stub import Stubber

from include.awsgov.collection import config_rules as cfgc
from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess

TEST_ACCOUNT = "210987654321"
TEST_OTHER = "310987654321"
TEST_TIME = dt.datetime(2026, 11, 23, 4, 30, tzinfo=dt.UTC)


def _evaluation(rule: str, rtype: str, rid: str, compliance: str, annotation: str | None = None) -> dict:
    out = {"EvaluationResultIdentifier": {"EvaluationResultQualifier": {
        "ConfigRuleName": rule, "ResourceType": rtype, "ResourceId": rid}, "OrderingTimestamp": TEST_TIME},
        "ComplianceType": compliance, "ResultRecordedTime": TEST_TIME, "ConfigRuleInvokedTime": TEST_TIME}
    if annotation:
        out["Annotation"] = annotation
    return out


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


def test_aggregate_items_group_by_covered_account_and_region(access):
    acc, stub = access
    agg = cfgc.Aggregator("org", "us-east-1", True, frozenset(), frozenset({"us-east-1", "eu-west-1"}))
    items = [
        {"ConfigRuleName": "s3-public", "AccountId": TEST_ACCOUNT, "AwsRegion": "us-east-1",
         "Compliance": {"ComplianceType": "NON_COMPLIANT",
                        "ComplianceContributorCount": {"CappedCount": 3, "CapExceeded": False}}},
        {"ConfigRuleName": "ebs-encrypted", "AccountId": TEST_ACCOUNT, "AwsRegion": "us-east-1",
         "Compliance": {"ComplianceType": "COMPLIANT"}},
        {"ConfigRuleName": "s3-public", "AccountId": "999999999999", "AwsRegion": "us-east-1",
         "Compliance": {"ComplianceType": "COMPLIANT"}},
    ]
    stub.add_response("describe_aggregate_compliance_by_config_rules",
                      {"AggregateComplianceByConfigRules": items[:2], "NextToken": "t1"},
                      expected_params={"ConfigurationAggregatorName": "org"})
    stub.add_response("describe_aggregate_compliance_by_config_rules",
                      {"AggregateComplianceByConfigRules": items[2:]},
                      expected_params={"ConfigurationAggregatorName": "org", "NextToken": "t1"})
    listed = list(cfgc.aggregate_rule_compliance(acc, agg))
    grouped = cfgc.group_by_account(listed, agg, [TEST_ACCOUNT, TEST_OTHER], ["us-east-1", "eu-west-1",
                                                                           "ap-northeast-1"])
    assert set(grouped) == {TEST_ACCOUNT, TEST_OTHER}  # the account not collected this run is left out
    assert [i["ConfigRuleName"] for i in grouped[TEST_ACCOUNT]["us-east-1"]] == ["ebs-encrypted", "s3-public"]
    assert grouped[TEST_ACCOUNT]["eu-west-1"] == []  # covered, nothing there: recorded as such
    assert "ap-northeast-1" not in grouped[TEST_ACCOUNT]  # not covered: read in the account instead
    rows = [cfgc.rule_row(TEST_ACCOUNT, "us-east-1", i, cfgc.VIA_AGGREGATOR)
            for i in grouped[TEST_ACCOUNT]["us-east-1"]]
    assert [(r["rule_name"], r["compliance"], r["noncompliant_resources"]) for r in rows] == [
        ("ebs-encrypted", "COMPLIANT", 0), ("s3-public", "NON_COMPLIANT", 3)]


def test_aggregate_details_of_one_rule_account_region(access):
    acc, stub = access
    agg = cfgc.Aggregator("org", "us-east-1", True, frozenset(), None)
    result = {**_evaluation("s3-public", "AWS::S3::Bucket", "logs", "NON_COMPLIANT", "Bucket policy allows *"),
              "AccountId": TEST_ACCOUNT, "AwsRegion": "eu-west-1"}
    stub.add_response("get_aggregate_compliance_details_by_config_rule", {"AggregateEvaluationResults": [result]},
                      expected_params={"ConfigurationAggregatorName": "org", "ConfigRuleName": "s3-public",
                                       "AccountId": TEST_ACCOUNT, "AwsRegion": "eu-west-1", "Limit": 100})
    found = list(cfgc.aggregate_rule_details(acc, agg, "s3-public", TEST_ACCOUNT, "eu-west-1"))
    row = cfgc.finding_row(TEST_ACCOUNT, "eu-west-1", found[0], cfgc.VIA_AGGREGATOR)
    assert row == {
        "finding_id": tables.finding_id("config", TEST_ACCOUNT, "eu-west-1", "s3-public", "AWS::S3::Bucket/logs"),
        "account_id": TEST_ACCOUNT, "region": "eu-west-1", "rule_name": "s3-public",
        "resource_type": "AWS::S3::Bucket", "resource_id": "logs", "compliance": "NON_COMPLIANT",
        "annotation": "Bucket policy allows *", "recorded_at": TEST_TIME, "via": "aggregator"}


def test_account_details_ask_for_every_evaluated_compliance_type_and_follow_pages():
    client = boto3.client("config", region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stub:
        base = {"ConfigRuleName": "ebs-encrypted", "ComplianceTypes": list(cfgc.DETAIL_COMPLIANCE_TYPES),
                "Limit": 100}
        stub.add_response("get_compliance_details_by_config_rule", {
            "EvaluationResults": [_evaluation("ebs-encrypted", "AWS::EC2::Volume", "vol-1", "COMPLIANT")],
            "NextToken": "n"}, expected_params=base)
        stub.add_response("get_compliance_details_by_config_rule", {
            "EvaluationResults": [_evaluation("ebs-encrypted", "AWS::EC2::Volume", "vol-2", "NOT_APPLICABLE")]},
            expected_params={**base, "NextToken": "n"})
        rows = [cfgc.finding_row(TEST_ACCOUNT, "eu-west-1", r, cfgc.VIA_ACCOUNT)
                for r in cfgc.account_rule_details(client, "ebs-encrypted")]
    assert [(r["resource_id"], r["compliance"], r["annotation"]) for r in rows] == [
        ("vol-1", "COMPLIANT", ""), ("vol-2", "NOT_APPLICABLE", "")]


def test_rule_without_evaluations_is_insufficient_data():
    row = cfgc.rule_row(TEST_ACCOUNT, "us-east-1", {"ConfigRuleName": "new-rule", "Compliance": {}}, "account")
    assert (row["compliance"], row["noncompliant_resources"]) == ("INSUFFICIENT_DATA", 0)


# -- against the sandbox: the collection's Config part under faults ---------------------------------------------------
def _sandbox_access(sandbox):
    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTCONFIGCOMP01",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-config", retry_mode="standard")


def _config_run(sandbox, store, day, account_ids, **options) -> dict:
    from include.awsgov.collection import runner

    opts = runner.Options(sources=("config",), **{"regions": tuple(sandbox.info["regions"]), **options})
    sandbox.reset_calls()
    aggregate = runner.collect_aggregate(_sandbox_access(sandbox), store, day, account_ids, opts)
    result = runner.collect_accounts(_sandbox_access(sandbox), store, day, account_ids, opts)
    return {"aggregate": aggregate, "result": result, "calls": sandbox.calls()["calls"], "regions": opts.regions}


@pytest.fixture(scope="module")
def faulted(sandbox, tmp_path_factory):
    """Config of the organization through the aggregator, then per account (two regions), under throttling,
    latency and two accounts whose read role refuses AssumeRole; and the truth of the day."""
    from include.awsgov.core.store import Store

    logging.getLogger("botocore.credentials").setLevel(logging.CRITICAL)  # tracebacks of refused AssumeRole
    members = [a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    active = [a["id"] for a in sandbox.info["accounts"] if a["status"] == "ACTIVE"]
    targets = sorted([sandbox.info["management_account_id"], *active])
    denied = members[:2] + [a["id"] for a in sandbox.info["accounts"] if not a["read_role"] and a["id"] in active]
    day = sandbox.today()
    sandbox.set_faults(throttle_rate=0.3, latency_ms=10, deny_assume_accounts=members[:2], seed=9)
    runs = {}
    try:
        for key, options in (("aggregator", {}),
                             ("account", {"use_aggregator": False, "regions": ("us-east-1", "eu-west-1")})):
            store = Store(tmp_path_factory.mktemp(key) / "store")
            runs[key] = {**_config_run(sandbox, store, day, targets, **options), "store": store}
    finally:
        sandbox.clear_faults()
    return {"runs": runs, "day": day, "targets": targets, "denied": denied,
            "mgmt": sandbox.info["management_account_id"],
            "truth": sandbox.truth(date=day, sections=["config"])["config"]}


def _frames(faulted, via):
    run = faulted["runs"][via]
    day = faulted["day"]
    return [run["store"].read(t, day, day, schema=getattr(tables, t.upper()))
            for t in ("config_rules", "config_findings", "coverage")]


def _expected(truth, accounts, regions, with_not_applicable):
    rules, found = set(), set()
    for account in accounts:
        for region in regions:
            for rule, evaluations in truth.get(account, {}).get(region, {}).items():
                kinds = {e["compliance"] for e in evaluations}
                compliance = ("NON_COMPLIANT" if "NON_COMPLIANT" in kinds else "COMPLIANT" if "COMPLIANT" in kinds
                              else "INSUFFICIENT_DATA")
                rules.add((account, region, rule, compliance))
                found |= {(account, region, rule, e["resource_type"], e["resource_id"], e["compliance"],
                           e["annotation"] or "") for e in evaluations
                          if with_not_applicable or e["compliance"] != "NOT_APPLICABLE"}
    return rules, found


@pytest.mark.parametrize("via", [pytest.param("aggregator", id="aggregator"), pytest.param("account", id="account")])
def test_reachable_accounts_equal_the_truth_nothing_lost_nothing_duplicated(faulted, via):
    run = faulted["runs"][via]
    rules, findings, coverage = _frames(faulted, via)
    ok = coverage[coverage["status"] == "ok"]
    reachable = [a for a in faulted["targets"] if len(ok[ok["account_id"] == a]) == len(run["regions"])]
    # The aggregate API returns COMPLIANT and NON_COMPLIANT evaluations only, as AWS documents.
    want_rules, want_found = _expected(faulted["truth"], reachable, run["regions"], via == "account")
    assert want_found, "the sandbox seeds evaluations in reachable accounts"
    assert set(zip(rules["account_id"], rules["region"], rules["rule_name"], rules["compliance"],
                   strict=True)) == want_rules
    assert set(zip(findings["account_id"], findings["region"], findings["rule_name"], findings["resource_type"],
                   findings["resource_id"], findings["compliance"], findings["annotation"],
                   strict=True)) == want_found
    assert len(findings) == len(want_found) and not findings["finding_id"].duplicated().any()
    assert set(rules["via"]) == set(findings["via"]) == {via}


def test_aggregator_serves_every_account_even_where_the_read_role_is_refused(faulted):
    _, _, coverage = _frames(faulted, "aggregator")
    assert len(coverage) == len(faulted["targets"]) * len(faulted["runs"]["aggregator"]["regions"])
    assert set(coverage["status"]) == {"ok"} and set(coverage["source"]) == {"config"}
    assert faulted["runs"]["aggregator"]["aggregate"]["accounts"] == len(faulted["targets"])


def test_aggregator_is_read_once_per_run_in_the_admin_account_only(faulted):
    calls = [c for c in faulted["runs"]["aggregator"]["calls"] if c["service"] == "config"]
    assert {c["account"] for c in calls} == {faulted["mgmt"]}  # no per-account Config reads
    described = [c for c in calls if c["action"] == "DescribeConfigurationAggregators"]
    assert sum(c["count"] - c["throttled"] for c in described) == 1


def test_per_account_reads_record_refused_roles_per_region(faulted):
    _, _, coverage = _frames(faulted, "account")
    status = {(r.account_id, r.region): (r.status, r.error) for r in coverage.itertuples()}
    assert len(status) == len(faulted["targets"]) * 2
    for (account, region), (state, error) in status.items():
        if account in faulted["denied"]:
            assert state == "access_denied" and "AssumeRole" in error, (account, region)
        else:
            assert (state, error) == ("ok", ""), (account, region, error)


def test_finish_run_prunes_accounts_that_left_and_records_the_run(faulted, tmp_path):
    import shutil

    from include.awsgov.collection import runner
    from include.awsgov.core.store import Store

    shutil.copytree(faulted["runs"]["account"]["store"].root, tmp_path / "store")
    store = Store(tmp_path / "store")
    stayed = faulted["targets"][:3]
    row = runner.finish_run(store, faulted["day"], stayed, run_id="r1", started_at=TEST_TIME,
                                regions=["us-east-1", "eu-west-1"], api_calls=7)
    for table in ("config_rules", "config_findings", "coverage", "ta_checks", "ta_findings"):
        assert set(store.chunks(table, faulted["day"])) <= set(stayed), table
    assert set(store.chunks("coverage", faulted["day"])) == set(stayed)
    runs = store.read("collection_runs", schema=tables.COLLECTION_RUNS)
    assert (len(runs), row["accounts"], row["api_calls"]) == (1, 3, 7)
    assert row["gaps"] == int((store.read("coverage", schema=tables.COVERAGE)["status"] != "ok").sum())

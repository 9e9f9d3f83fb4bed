"""StackSet operations: timed lifecycle, per-instance results, injected failures and reruns, real deployment of the
stacks in the target accounts (verified through the read role the stack creates)."""

from __future__ import annotations

import time
from pathlib import Path

import botocore.exceptions
import pytest

from tests.fixtures.sandbox import start_sandbox

TEMPLATE = (Path(__file__).parent / "data" / "baseline.yaml").read_text()
SIMPLE = (Path(__file__).parent / "data" / "simple.yaml").read_text()
REGIONS = ["us-east-1", "eu-west-1"]


@pytest.fixture(scope="module")
def ss_sandbox():
    """A small sandbox of its own: onboarding changes the organization (new accounts get the read role)."""
    sb = start_sandbox(accounts=6, time_scale=0.5)
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def ssb(ss_sandbox):
    ss_sandbox.clear_faults()
    yield ss_sandbox
    ss_sandbox.clear_faults()


def _new_accounts(sb):
    return [a["id"] for a in sb.info["accounts"] if not a["read_role"]]


def _create_stackset(sb, name, template=SIMPLE, **kwargs):
    info = sb.info
    params = {"Name": name}
    if template is TEMPLATE:
        params = {"ManagementAccountId": info["management_account_id"], "ExternalId": info["external_id"],
                  "CentralBucket": info["central_bucket"], "CentralEventBusArn": info["central_event_bus_arn"]}
    sb.client("cloudformation").create_stack_set(
        StackSetName=name, TemplateBody=template, Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()], **kwargs)


def _wait(cf, name, operation_id, timeout=15.0):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cf.describe_stack_set_operation(StackSetName=name, OperationId=operation_id)["StackSetOperation"][
            "Status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"operation {operation_id} still {seen[-1]} after {timeout}s")


def _instances(cf, name):
    return {(i["Account"], i["Region"]): i for i in cf.list_stack_instances(StackSetName=name)["Summaries"]}


def test_onboarding_lifecycle_deploys_and_is_verifiable(ssb):
    cf = ssb.client("cloudformation")
    new = _new_accounts(ssb)
    _create_stackset(ssb, "baseline-a", template=TEMPLATE)

    op = cf.create_stack_instances(StackSetName="baseline-a", Accounts=new, Regions=REGIONS,
                                   OperationPreferences={"MaxConcurrentCount": 2})["OperationId"]
    pending = _instances(cf, "baseline-a")
    seen = _wait(cf, "baseline-a", op)

    assert {i["Status"] for i in pending.values()} == {"OUTDATED"}
    assert seen[0] in ("QUEUED", "RUNNING") and seen[-1] == "SUCCEEDED"
    assert seen == [s for s in ("QUEUED", "RUNNING", "SUCCEEDED") if s in seen]  # in order, never backwards
    described = cf.describe_stack_set_operation(StackSetName="baseline-a", OperationId=op)["StackSetOperation"]
    assert described["Action"] == "CREATE" and described["EndTimestamp"] > described["CreationTimestamp"]
    results = cf.list_stack_set_operation_results(StackSetName="baseline-a", OperationId=op)["Summaries"]
    assert {(r["Account"], r["Region"], r["Status"]) for r in results} == {
        (a, r, "SUCCEEDED") for a in new for r in REGIONS}
    instances = _instances(cf, "baseline-a")
    assert {(i["Status"], i["StackInstanceStatus"]["DetailedStatus"]) for i in instances.values()} == {
        ("CURRENT", "SUCCEEDED")}

    # The stack created the read role: the new account is now reachable with the ExternalId, and what moto's
    # CloudFormation skips (trail, Config recorder/channel, aggregation authorization) exists too.
    account = new[0]
    stacks = ssb.client("cloudformation", account_id=account).list_stacks()["StackSummaries"]
    assert [s["StackName"].startswith("StackSet-baseline-a-") for s in stacks] == [True]
    assert ssb.client("cloudtrail", account_id=account).get_trail_status(Name="governance-trail")["IsLogging"]
    for region in REGIONS:
        config = ssb.client("config", account_id=account, region=region)
        assert config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"][0]["recording"]
        auths = config.describe_aggregation_authorizations()["AggregationAuthorizations"]
        assert [a["AuthorizedAccountId"] for a in auths] == [ssb.info["management_account_id"]]
    rules = ssb.client("events", account_id=account).list_rules()["Rules"]
    assert [r["Name"] for r in rules] == ["governance-forward-to-central"]
    assert ssb.refresh_info() and all(a["read_role"] for a in ssb.info["accounts"] if a["id"] in new)


def test_failing_instance_then_rerun_after_clearing(ssb):
    cf = ssb.client("cloudformation")
    accounts = [a["id"] for a in ssb.info["accounts"] if a["status"] == "ACTIVE"][:2]
    bad = accounts[1]
    _create_stackset(ssb, "baseline-b")
    ssb.set_faults(stackset_fail_instances=[[bad, "eu-west-1"]], stackset_failure_reason="Injected: {account}")

    op = cf.create_stack_instances(StackSetName="baseline-b", Accounts=accounts, Regions=REGIONS,
                                   OperationPreferences={"FailureToleranceCount": 1, "MaxConcurrentCount": 2})[
        "OperationId"]
    assert _wait(cf, "baseline-b", op)[-1] == "SUCCEEDED"  # one failure, within tolerance

    failed = cf.list_stack_set_operation_results(StackSetName="baseline-b", OperationId=op,
                                                 Filters=[{"Name": "OPERATION_RESULT_STATUS", "Values": "FAILED"}])
    assert [(r["Account"], r["Region"], r["StatusReason"]) for r in failed["Summaries"]] == [
        (bad, "eu-west-1", f"Injected: {bad}")]
    instance = cf.describe_stack_instance(StackSetName="baseline-b", StackInstanceAccount=bad,
                                          StackInstanceRegion="eu-west-1")["StackInstance"]
    assert (instance["Status"], instance["StackInstanceStatus"]["DetailedStatus"]) == ("OUTDATED", "FAILED")
    assert instance["StatusReason"] == f"Injected: {bad}"

    ssb.clear_faults()
    rerun = cf.update_stack_instances(StackSetName="baseline-b", Accounts=[bad], Regions=["eu-west-1"])["OperationId"]
    assert _wait(cf, "baseline-b", rerun)[-1] == "SUCCEEDED"
    assert {i["Status"] for i in _instances(cf, "baseline-b").values()} == {"CURRENT"}


def test_failures_beyond_tolerance_fail_the_operation_and_cancel_the_rest(ssb):
    cf = ssb.client("cloudformation")
    accounts = [a["id"] for a in ssb.info["accounts"] if a["status"] == "ACTIVE"][:3]
    _create_stackset(ssb, "baseline-c")
    ssb.set_faults(stackset_fail_instances=[accounts[0]])

    op = cf.create_stack_instances(StackSetName="baseline-c", Accounts=accounts, Regions=REGIONS)["OperationId"]
    assert _wait(cf, "baseline-c", op)[-1] == "FAILED"

    results = {(r["Account"], r["Region"]): r["Status"] for r in
               cf.list_stack_set_operation_results(StackSetName="baseline-c", OperationId=op)["Summaries"]}
    assert results[(accounts[0], "us-east-1")] == "FAILED"
    assert set(results.values()) == {"FAILED", "CANCELLED"}  # sequential, tolerance 0: stops at the first failure
    # A rerun after clearing the fault (create again) finishes.
    ssb.clear_faults()
    again = cf.create_stack_instances(StackSetName="baseline-c", Accounts=accounts, Regions=REGIONS,
                                      OperationPreferences={"MaxConcurrentPercentage": 100})["OperationId"]
    assert _wait(cf, "baseline-c", again)[-1] == "SUCCEEDED"
    assert {i["Status"] for i in _instances(cf, "baseline-c").values()} == {"CURRENT"}


def test_one_operation_at_a_time(ssb):
    cf = ssb.client("cloudformation", retries=0)
    account = ssb.info["accounts"][0]["id"]
    _create_stackset(ssb, "baseline-d")
    op = cf.create_stack_instances(StackSetName="baseline-d", Accounts=[account], Regions=REGIONS)["OperationId"]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        cf.create_stack_instances(StackSetName="baseline-d", Accounts=[account], Regions=["ap-northeast-1"])
    assert err.value.response["Error"]["Code"] == "OperationInProgressException"
    _wait(cf, "baseline-d", op)
    ops = cf.list_stack_set_operations(StackSetName="baseline-d")["Summaries"]
    assert [(o["OperationId"], o["Status"]) for o in ops] == [(op, "SUCCEEDED")]


def test_update_stack_set_redeploys_and_delete_cleans_up(ssb):
    cf = ssb.client("cloudformation")
    account = ssb.info["accounts"][0]["id"]
    _create_stackset(ssb, "baseline-e")
    op = cf.create_stack_instances(StackSetName="baseline-e", Accounts=[account], Regions=["us-east-1"])[
        "OperationId"]
    _wait(cf, "baseline-e", op)

    updated = SIMPLE.replace("${Name}-alerts", "${Name}-alerts-v2")
    op = cf.update_stack_set(StackSetName="baseline-e", TemplateBody=updated,
                             Parameters=[{"ParameterKey": "Name", "UsePreviousValue": True}])["OperationId"]
    assert _instances(cf, "baseline-e")[(account, "us-east-1")]["Status"] == "OUTDATED"
    assert _wait(cf, "baseline-e", op)[-1] == "SUCCEEDED"
    topics = [t["TopicArn"] for t in ssb.client("sns", account_id=account).list_topics()["Topics"]]
    assert any(t.endswith(":baseline-e-alerts-v2") for t in topics)

    with pytest.raises(botocore.exceptions.ClientError) as err:
        cf.delete_stack_set(StackSetName="baseline-e")
    assert err.value.response["Error"]["Code"] == "StackSetNotEmptyException"
    op = cf.delete_stack_instances(StackSetName="baseline-e", Accounts=[account], Regions=["us-east-1"],
                                   RetainStacks=False)["OperationId"]
    assert _wait(cf, "baseline-e", op)[-1] == "SUCCEEDED"
    assert _instances(cf, "baseline-e") == {}
    cf.delete_stack_set(StackSetName="baseline-e")


def test_service_managed_targets_an_ou(ssb):
    cf = ssb.client("cloudformation")
    info = ssb.info
    ou = info["ou_ids"]["Dev"]
    expected = {a["id"] for a in info["accounts"] if a["ou"] == "Dev"}
    _create_stackset(ssb, "baseline-f", PermissionModel="SERVICE_MANAGED", AutoDeployment={"Enabled": False})
    op = cf.create_stack_instances(StackSetName="baseline-f", DeploymentTargets={"OrganizationalUnitIds": [ou]},
                                   Regions=["ap-northeast-1"], OperationPreferences={"MaxConcurrentPercentage": 100})[
        "OperationId"]
    _wait(cf, "baseline-f", op)
    instances = _instances(cf, "baseline-f")
    assert {a for a, _ in instances} == expected
    assert {i["OrganizationalUnitId"] for i in instances.values()} == {ou}


PLAIN = """
Resources:
  Aggregator:
    Type: AWS::Config::ConfigurationAggregator
    Properties:
      ConfigurationAggregatorName: plain-aggregator
      AccountAggregationSources:
        - AccountIds: [!Ref "AWS::AccountId"]
          AllAwsRegions: true
  Trail:
    Type: AWS::CloudTrail::Trail
    Properties:
      TrailName: plain-trail
      S3BucketName: {bucket}
      IsLogging: true
"""


def test_plain_stacks_get_the_types_moto_skips(ssb):
    cf = ssb.client("cloudformation")
    cf.create_stack(StackName="plain", TemplateBody=PLAIN.replace("{bucket}", ssb.info["central_bucket"]))
    names = [a["ConfigurationAggregatorName"] for a in
             ssb.client("config").describe_configuration_aggregators()["ConfigurationAggregators"]]
    assert "plain-aggregator" in names
    assert ssb.client("cloudtrail").get_trail_status(Name="plain-trail")["IsLogging"]

    cf.delete_stack(StackName="plain")
    names = [a["ConfigurationAggregatorName"] for a in
             ssb.client("config").describe_configuration_aggregators()["ConfigurationAggregators"]]
    assert "plain-aggregator" not in names


# -- A delegated administrator account (issue #18) ----------------------------------------------------------------
STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"
MUST_BE_ADMIN = ("You must be the management account or delegated admin account of an organization before operating "
                 "a SERVICE_MANAGED stack set")
VERSIONED = """
Parameters:
  BaselineVersion: {Type: String}
  Name: {Type: String}
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "${Name}-baseline"
"""


def _refusal(call) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call()
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def test_delegated_admin_is_refused_without_call_as_and_served_with_it(ssb):
    from include.awsgov.onboarding import stacksets

    info = ssb.info
    ou = info["ou_ids"]["Dev"]
    targets = sorted(a["id"] for a in info["accounts"] if a["ou"] == "Dev" and a["status"] == "ACTIVE")
    admin = next(a["id"] for a in info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"
                 and a["ou"] != "Dev")
    cf = ssb.client("cloudformation", account_id=admin, retries=0)
    create = {"StackSetName": "delegated-a", "TemplateBody": VERSIONED, "PermissionModel": "SERVICE_MANAGED",
              "AutoDeployment": {"Enabled": False},
              "Parameters": [{"ParameterKey": "Name", "ParameterValue": "d"},
                             {"ParameterKey": "BaselineVersion", "ParameterValue": "1"}]}

    # Not registered: refused with and without CallAs, as AWS does.
    assert _refusal(lambda: cf.create_stack_set(**create)) == ("ValidationError", MUST_BE_ADMIN)
    assert _refusal(lambda: cf.create_stack_set(**create, CallAs="DELEGATED_ADMIN")) == (
        "ValidationError", "Account used is not a delegated administrator")
    ssb.client("organizations").register_delegated_administrator(AccountId=admin,
                                                                 ServicePrincipal=STACKSETS_PRINCIPAL)
    # Registered, but CallAs defaults to SELF: still refused; the management account cannot claim DELEGATED_ADMIN.
    assert _refusal(lambda: cf.create_stack_set(**create)) == ("ValidationError", MUST_BE_ADMIN)
    assert _refusal(lambda: ssb.client("cloudformation").list_stack_sets(CallAs="DELEGATED_ADMIN")) == (
        "ValidationError", "Account used is not a delegated administrator")

    # The product with call_as=DELEGATED_ADMIN: every call passes, the OU's accounts get the stack.
    ensured = stacksets.ensure_stack_set(cf, "delegated-a", template_body=VERSIONED, version="1.0.0",
                                         values={"Name": "d"}, permission_model="SERVICE_MANAGED",
                                         call_as=stacksets.DELEGATED_ADMIN)
    assert ensured["action"] == "created"
    steps = [{"action": "create", "op_id": "delegated-a-create-0", "accounts": targets, "regions": ["us-east-1"],
              "preferences": {"MaxConcurrentPercentage": 100, "FailureTolerancePercentage": 100},
              "ou_ids": [ou]}]
    deadline = time.monotonic() + 15
    while not stacksets.drive_operations(cf, "delegated-a", steps, call_as=stacksets.DELEGATED_ADMIN).done:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    instances = stacksets.list_stack_instances(cf, "delegated-a", call_as=stacksets.DELEGATED_ADMIN)
    assert sorted(i["Account"] for i in instances) == targets
    assert {i["Status"] for i in instances} == {"CURRENT"}
    # The same StackSet read without CallAs from the delegated administrator: refused.
    assert _refusal(lambda: cf.list_stack_instances(StackSetName="delegated-a")) == ("ValidationError",
                                                                                     MUST_BE_ADMIN)


@pytest.mark.parametrize(
    ("prefs", "batch_sizes"),
    [
        pytest.param({"FailureToleranceCount": 0, "MaxConcurrentCount": 4}, [1, 1, 1, 1], id="strict-by-default"),
        pytest.param({"FailureToleranceCount": 1, "MaxConcurrentCount": 4,
                      "ConcurrencyMode": "STRICT_FAILURE_TOLERANCE"}, [2, 2], id="strict-tolerance-1"),
        pytest.param({"FailureToleranceCount": 0, "MaxConcurrentCount": 4,
                      "ConcurrencyMode": "SOFT_FAILURE_TOLERANCE"}, [4], id="soft"),
        pytest.param({"FailureTolerancePercentage": 25, "MaxConcurrentPercentage": 100}, [2, 2], id="percentages"),
    ],
)
def test_strict_failure_tolerance_caps_the_batches_at_tolerance_plus_one(prefs, batch_sizes):
    from sandbox.cloudformation.operations import Target, plan, preferences

    targets = [Target(f"{i:012d}", "us-east-1") for i in range(4)]
    batches, _ = plan(targets, preferences(prefs))
    assert [len(b) for b in batches] == batch_sizes

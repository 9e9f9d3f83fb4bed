"""StackSet service functions on in-process moto (create/update/idempotency, instances, operations) and, for the
operation states moto never produces (QUEUED, RUNNING, FAILED instances), a botocore Stubber."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from include.awsgov.onboarding import stacksets, workflow

# moto's CloudFormation skips the types it lacks (Trail, Config, policies) with a warning: expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")

TEST_NAME = "governance-baseline"
TEST_ADMIN = "123456789012"
TEST_EXTERNAL_ID = "ext-id-for-tests"
TEST_PREFS = {"RegionConcurrencyType": "SEQUENTIAL", "FailureTolerancePercentage": 10,
              "MaxConcurrentPercentage": 25}


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        org = boto3.client("organizations", region_name="us-east-1")
        org.create_organization(FeatureSet="ALL")
        members = [org.create_account(AccountName=f"m{i}", Email=f"m{i}@example.com")["CreateAccountStatus"]
                   ["AccountId"] for i in range(2)]
        yield {"cf": boto3.client("cloudformation", region_name="us-east-1"), "members": members}


def _values() -> dict[str, str]:
    return {"AdminAccountId": TEST_ADMIN, "ExternalId": TEST_EXTERNAL_ID, "GlobalRegion": "us-east-1",
            "LogBucketName": "governance-logs-123456789012",
            "TrailKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "CentralEventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/governance-central"}


def _ensure(cf, version: str = "1.0.0", **kw):
    body, _ = workflow.load_template("baseline")
    return stacksets.ensure_stack_set(cf, TEST_NAME, template_body=body, version=version, values=_values(),
                                      preferences=TEST_PREFS, **kw)


def test_ensure_stack_set_creates_then_leaves_it_unchanged(aws):
    cf = aws["cf"]
    assert _ensure(cf)["action"] == "created"
    again = _ensure(cf)
    assert again == {"action": "unchanged", "operation_id": None, "version": "1.0.0"}
    stack_set = stacksets.describe_stack_set(cf, TEST_NAME)
    assert stacksets.recorded_version(stack_set) == "1.0.0"
    assert "v1.0.0" in stack_set["Description"]


def test_ensure_stack_set_updates_to_a_newer_version_with_one_operation(aws):
    cf = aws["cf"]
    _ensure(cf)
    updated = _ensure(cf, version="1.1.0", op_id="run-1-update")
    assert updated["action"] == "updated" and updated["operation_id"]
    assert stacksets.recorded_version(stacksets.describe_stack_set(cf, TEST_NAME)) == "1.1.0"
    assert stacksets.describe_operation(cf, TEST_NAME, updated["operation_id"])["Action"] == "UPDATE"


def test_describe_stack_set_is_none_when_missing(aws):
    assert stacksets.describe_stack_set(aws["cf"], "no-such-stackset") is None


def test_create_stack_instances_is_one_operation_for_all_accounts_and_regions(aws):
    cf, members = aws["cf"], aws["members"]
    _ensure(cf)
    op_id = stacksets.create_stack_instances(cf, TEST_NAME, members, ["us-east-1", "eu-west-1"], TEST_PREFS,
                                             op_id="run-1-create-0")
    instances = stacksets.list_stack_instances(cf, TEST_NAME)
    assert {(i["Account"], i["Region"]) for i in instances} == {(a, r) for a in members
                                                                for r in ("us-east-1", "eu-west-1")}
    assert all(i["Status"] == "CURRENT" for i in instances)
    progress = stacksets.poke_operations(cf, TEST_NAME, [op_id])
    assert progress.done and progress.counts() == {"SUCCEEDED": 4}
    assert progress.statuses == {op_id: "SUCCEEDED"}


def test_baseline_instance_deploys_the_read_role_with_the_external_id(aws):
    cf, member = aws["cf"], aws["members"][0]
    _ensure(cf)
    stacksets.create_stack_instances(cf, TEST_NAME, [member], ["us-east-1", "eu-west-1"], TEST_PREFS)
    sts = boto3.client("sts", region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{member}:role/GovernanceReadRole", RoleSessionName="test",
                            ExternalId=TEST_EXTERNAL_ID)["Credentials"]
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"])
    trust = session.client("iam").get_role(RoleName="GovernanceReadRole")["Role"]["AssumeRolePolicyDocument"]
    statement = trust["Statement"][0]
    assert statement["Principal"]["AWS"] == f"arn:aws:iam::{TEST_ADMIN}:root"
    assert statement["Condition"]["StringEquals"]["sts:ExternalId"] == TEST_EXTERNAL_ID
    for region in ("us-east-1", "eu-west-1"):
        rules = session.client("events", region_name=region).list_rules()["Rules"]
        assert [r["Name"] for r in rules] == ["governance-forward-to-central"]


def test_ensure_stack_creates_central_stack_once(aws):
    cf = aws["cf"]
    body, version = workflow.load_template("central")
    values = {"OrganizationId": "o-abcdefghij", "LogBucketName": "governance-logs-123456789012",
              "CreateLogBucket": "true", "CreateEventBus": "true", "CreateAggregator": "true"}
    first = stacksets.ensure_stack(cf, "governance-central", template_body=body, version=version, values=values)
    assert first["action"] == "create"
    assert first["outputs"]["LogBucketName"] == "governance-logs-123456789012"
    assert first["outputs"]["CentralEventBusArn"].endswith(":event-bus/governance-central")
    assert first["outputs"]["TrailKmsKeyArn"].startswith("arn:aws:kms:us-east-1:")
    second = stacksets.ensure_stack(cf, "governance-central", template_body=body, version=version, values=values)
    assert second == {"action": "none", "outputs": first["outputs"]}
    assert "governance-logs-123456789012" in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]


def test_operation_id_is_deterministic_and_valid():
    first = stacksets.operation_id("account_onboarding", "manual__2026-11-29T06:18:26.8+00:00", "create", "0")
    assert first == stacksets.operation_id("account_onboarding", "manual__2026-11-29T06:18:26.8+00:00", "create",
                                           "0")
    assert first != stacksets.operation_id("account_onboarding", "manual__2026-11-29T06:18:26.8+00:00", "update",
                                           "0")
    assert len(first) <= 128 and all(c.isalnum() or c == "-" for c in first)


@pytest.mark.parametrize(
    ("status", "state"),
    [pytest.param("SUCCEEDED", "success", id="succeeded"), pytest.param("FAILED", "failure", id="failed"),
     pytest.param("STOPPED", "failure", id="stopped"), pytest.param("RUNNING", "retry", id="running"),
     pytest.param("QUEUED", "retry", id="queued")],
)
def test_operation_state_follows_the_waiter_acceptors(status, state):
    assert stacksets.operation_state({"StackSetOperation": {"Status": status}}) == state


def _stubbed(op_status: str, results: list[dict]):
    cf = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cf)
    stub.add_response("describe_stack_set_operation", {"StackSetOperation": {
        "OperationId": "op-1", "Status": op_status, "Action": "CREATE",
        "CreationTimestamp": dt.datetime(2026, 11, 29, tzinfo=dt.UTC)}})
    stub.add_response("list_stack_set_operation_results", {"Summaries": results})
    stub.activate()
    return cf


def test_poke_operations_not_done_while_running():
    cf = _stubbed("RUNNING", [{"Account": "111111111111", "Region": "us-east-1", "Status": "SUCCEEDED"},
                              {"Account": "111111111111", "Region": "eu-west-1", "Status": "RUNNING"}])
    progress = stacksets.poke_operations(cf, TEST_NAME, ["op-1"])
    assert not progress.done
    assert progress.counts() == {"SUCCEEDED": 1, "RUNNING": 1}


def test_poke_operations_failure_names_account_region_and_reason():
    cf = _stubbed("SUCCEEDED", [
        {"Account": "111111111111", "Region": "us-east-1", "Status": "SUCCEEDED"},
        {"Account": "222222222222", "Region": "eu-west-1", "Status": "FAILED",
         "StatusReason": "ResourceLogicalId:Trail, ResourceType:AWS::CloudTrail::Trail, ResourceStatusReason:denied"},
    ])
    with pytest.raises(stacksets.StackSetOperationFailed) as caught:
        stacksets.poke_operations(cf, TEST_NAME, ["op-1"])
    message = str(caught.value)
    assert "account 222222222222 region eu-west-1: FAILED - ResourceLogicalId:Trail" in message
    assert "111111111111" not in message
    assert caught.value.failures == [("222222222222", "eu-west-1", "FAILED", "ResourceLogicalId:Trail, "
                                      "ResourceType:AWS::CloudTrail::Trail, ResourceStatusReason:denied")]


def test_poke_operations_failed_operation_without_instance_results_still_fails():
    cf = _stubbed("FAILED", [])
    with pytest.raises(stacksets.StackSetOperationFailed, match="op-1 FAILED"):
        stacksets.poke_operations(cf, TEST_NAME, ["op-1"])


# -- ExternalId rotation (issue #19 item 11) ------------------------------------------------------------------------
TEST_ROTATED_ID = "rotated-ext-id-2"


def _described(secret_tag: str | None) -> dict:
    # What DescribeStackSet returns on AWS: the NoEcho ExternalId masked, the other parameters as given.
    params = [{"ParameterKey": k, "ParameterValue": "****" if k == "ExternalId" else v}
              for k, v in {**_values(), "BaselineVersion": "1.0.0"}.items()]
    tags = [{"Key": stacksets.VERSION_TAG, "Value": "1.0.0"}]
    if secret_tag is not None:
        tags.append({"Key": stacksets.SECRETS_TAG, "Value": secret_tag})
    return {"StackSetName": TEST_NAME, "Status": "ACTIVE", "Parameters": params, "Tags": tags}


def test_the_baseline_external_id_is_its_only_noecho_parameter():
    body, _ = workflow.load_template("baseline")
    assert stacksets.noecho_parameters(body) == {"ExternalId"}


@pytest.mark.parametrize(("external_id", "action"), [
    pytest.param(TEST_EXTERNAL_ID, "none", id="same-id"),
    pytest.param(TEST_ROTATED_ID, "update", id="rotated-id"),
])
def test_a_rotated_external_id_updates_the_stack_set_although_aws_masks_it(external_id, action):
    recorded = stacksets.secrets_digest({"ExternalId": TEST_EXTERNAL_ID})
    values = {**_values(), "ExternalId": external_id, "BaselineVersion": "1.0.0"}
    assert stacksets.stack_set_action(_described(recorded), "1.0.0", values, {"ExternalId"}) == action


def test_a_stack_set_without_a_recorded_digest_is_updated_once_to_record_it():
    values = {**_values(), "BaselineVersion": "1.0.0"}
    assert stacksets.stack_set_action(_described(None), "1.0.0", values, {"ExternalId"}) == "update"
    assert stacksets.stack_set_action(_described("sha256:abc"), "1.0.0", values, {"ExternalId"}) == "update"


def test_the_digest_is_salted_and_never_holds_the_secret():
    one, two = (stacksets.secrets_digest({"ExternalId": TEST_EXTERNAL_ID}) for _ in range(2))
    assert one != two  # a fresh salt each time: equal ExternalIds do not show as equal tags
    assert stacksets.secrets_match(one, {"ExternalId": TEST_EXTERNAL_ID})
    assert stacksets.secrets_match(two, {"ExternalId": TEST_EXTERNAL_ID})
    assert not stacksets.secrets_match(one, {"ExternalId": TEST_ROTATED_ID})
    assert TEST_EXTERNAL_ID not in one and len(one) <= 256  # a tag value holds at most 256 characters
    assert set(one) <= set("abcdefghijklmnopqrstuvwxyz0123456789-:")  # characters a tag value may hold


def test_ensure_stack_set_records_the_digest_and_deploys_a_rotation(aws):
    cf = aws["cf"]
    body, _ = workflow.load_template("baseline")
    ensure = lambda external_id: stacksets.ensure_stack_set(  # noqa: E731
        cf, TEST_NAME, template_body=body, version="1.0.0", values={**_values(), "ExternalId": external_id},
        preferences=TEST_PREFS)
    assert ensure(TEST_EXTERNAL_ID)["action"] == "created"
    tags = {t["Key"]: t["Value"] for t in stacksets.describe_stack_set(cf, TEST_NAME)["Tags"]}
    assert stacksets.secrets_match(tags[stacksets.SECRETS_TAG], {"ExternalId": TEST_EXTERNAL_ID})
    assert ensure(TEST_EXTERNAL_ID)["action"] == "unchanged"
    assert ensure(TEST_ROTATED_ID)["action"] == "updated"
    tags = {t["Key"]: t["Value"] for t in stacksets.describe_stack_set(cf, TEST_NAME)["Tags"]}
    assert stacksets.secrets_match(tags[stacksets.SECRETS_TAG], {"ExternalId": TEST_ROTATED_ID})


# -- From a delegated administrator account (issue #18): CallAs on every call that takes it -----------------------
def _record_calls(cf) -> list[tuple[str, dict]]:
    """Every call the client makes, as (operation, parameters), recorded before they are serialized."""
    calls: list[tuple[str, dict]] = []

    def record(params, model, **_):
        calls.append((model.name, dict(params)))

    cf.meta.events.register("provide-client-params.cloudformation.*", record)
    return calls


def test_every_stack_set_call_says_call_as_delegated_admin(aws):
    cf, members = aws["cf"], aws["members"]
    org = boto3.client("organizations", region_name="us-east-1")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="Workloads")["OrganizationalUnit"]["Id"]
    for member in members:
        org.move_account(AccountId=member, SourceParentId=root, DestinationParentId=ou)
    calls = _record_calls(cf)
    delegated = {"permission_model": "SERVICE_MANAGED", "call_as": stacksets.DELEGATED_ADMIN}

    _ensure(cf, **delegated)
    step = {"action": "create", "op_id": "run-1-create-0", "accounts": members, "regions": ["us-east-1"],
            "preferences": TEST_PREFS, "ou_ids": [ou]}
    # In-process moto answers an unknown operation id with ValidationError, not OperationNotFoundException: start the
    # step directly, then drive (it finds the operation started and pokes it).
    started = stacksets.start_step(cf, TEST_NAME, step, call_as=stacksets.DELEGATED_ADMIN)
    assert stacksets.drive_operations(cf, TEST_NAME, [{**step, "op_id": started}],
                                      call_as=stacksets.DELEGATED_ADMIN).done
    _ensure(cf, version="1.1.0", op_id="run-2-update", **delegated)
    stacksets.update_stack_instances(cf, TEST_NAME, members, ["us-east-1"], TEST_PREFS, ou_ids=[ou],
                                     op_id="run-2-update-0", call_as=stacksets.DELEGATED_ADMIN)
    stacksets.list_stack_instances(cf, TEST_NAME, call_as=stacksets.DELEGATED_ADMIN)

    model = cf.meta.service_model
    takes = {name for name in model.operation_names if "CallAs" in model.operation_model(name).input_shape.members}
    made = {name for name, _ in calls}
    assert {"DescribeStackSet", "CreateStackSet", "UpdateStackSet", "CreateStackInstances", "UpdateStackInstances",
            "DescribeStackSetOperation", "ListStackSetOperationResults", "ListStackInstances"} <= made
    assert made <= takes, "the StackSet functions make no call without a CallAs member"
    assert [(name, p.get("CallAs")) for name, p in calls if p.get("CallAs") != "DELEGATED_ADMIN"] == []


def test_self_sends_no_call_as_and_an_unknown_value_is_refused(aws):
    calls = _record_calls(aws["cf"])
    _ensure(aws["cf"])
    assert calls and all("CallAs" not in params for _, params in calls)
    with pytest.raises(ValueError, match="CallAs 'ADMIN' is not one of SELF, DELEGATED_ADMIN"):
        stacksets.call_as_args("ADMIN")


@pytest.mark.parametrize(
    ("accounts", "prefs", "expected"),
    [
        pytest.param(10, {"FailureTolerancePercentage": 10, "MaxConcurrentPercentage": 25}, 2, id="strict-default"),
        pytest.param(10, {"FailureTolerancePercentage": 0, "MaxConcurrentPercentage": 100}, 1, id="zero-tolerance"),
        pytest.param(10, {"FailureTolerancePercentage": 0, "MaxConcurrentPercentage": 100,
                          "ConcurrencyMode": "SOFT_FAILURE_TOLERANCE"}, 10, id="soft"),
        pytest.param(40, {"FailureTolerancePercentage": 10, "MaxConcurrentPercentage": 25,
                          "ConcurrencyMode": "STRICT_FAILURE_TOLERANCE"}, 5, id="strict-40"),
        pytest.param(3, {"FailureTolerancePercentage": 50, "MaxConcurrentPercentage": 10}, 1, id="rounds-up-to-1"),
        pytest.param(5, {"FailureToleranceCount": 3, "MaxConcurrentCount": 9}, 4, id="counts"),
        pytest.param(0, {"MaxConcurrentPercentage": 100}, 0, id="no-accounts"),
    ],
)
def test_actual_concurrency_is_capped_by_failure_tolerance_plus_one_unless_soft(accounts, prefs, expected):
    assert stacksets.actual_concurrency(accounts, prefs) == expected

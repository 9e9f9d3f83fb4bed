"""Onboarding logic: refusal of bad input (and its cost in AWS calls), planning, verification, inventory rows."""

from __future__ import annotations

import datetime as dt
import json
import warnings

import boto3
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from include.awsgov.core import accounts, tables
from include.awsgov.core.aws import AwsAccess
from include.awsgov.onboarding import form, stacksets
from include.awsgov.onboarding import workflow as onboarding

TEST_GLOBAL = "us-east-1"
TEST_REGIONS = ["us-east-1", "eu-west-1"]
TEST_SETTINGS = {"regions": TEST_REGIONS, "home_region": TEST_GLOBAL, "read_role_name": "GovernanceReadRole",
                 "central": {"log_bucket": "governance-logs-{admin_account_id}", "event_bus": "governance-central",
                             "config_aggregator": "governance-org-aggregator"}}
TEST_EXTERNAL_ID = "ext-id-for-tests"
TEST_BUS = "arn:aws:events:us-east-1:123456789012:event-bus/governance-central"
GOOD = {"account_ids": ["111111111111", "222222222222"], "owner_email": "Owner@Example.com", "team": "Payments",
        "environment": "prod"}


def _static(**changes):
    params = {**GOOD, **changes}
    return onboarding.validate_static(params, default_regions=TEST_REGIONS, global_region=TEST_GLOBAL)


def test_fields_cleared_in_the_form_mean_their_defaults():
    """Optional fields accept null in the form (no red star): a cleared field arrives as None and means the default."""
    cleared = _static(permission_model=None, failure_tolerance_percent=None, max_concurrency_percent=None,
                      dry_run=None, force=None, enable_guardduty=None)
    assert cleared == _static()


def test_valid_request_is_normalized_with_defaults():
    request = _static()
    assert request["regions"] == TEST_REGIONS
    assert request["owner_email"] == "Owner@example.com"  # domain lower-cased by email-validator
    assert request["permission_model"] == "SELF_MANAGED" and request["ou_ids"] == []
    assert (request["failure_tolerance_percent"], request["max_concurrency_percent"]) == (10, 25)
    assert request["dry_run"] is False and request["force"] is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"account_ids": ["12345"]}, "account_ids: '12345' is not a 12-digit AWS account id", id="short"),
        pytest.param({"account_ids": ["11111111111a"]}, "account_ids: '11111111111a' is not a 12-digit", id="alpha"),
        pytest.param({"account_ids": ["111111111111", "111111111111"]},
                     "account_ids: '111111111111' is listed more than once", id="duplicate"),
        pytest.param({"account_ids": []}, "account_ids: a value is required", id="no-accounts"),
        pytest.param({"account_ids": "111111111111"}, "account_ids: expected a list", id="not-a-list"),
        pytest.param({"regions": ["us-east-1", "mars-east-1"]}, "regions: 'mars-east-1' is not an AWS region",
                     id="unknown-region"),
        pytest.param({"regions": ["us-east-1", "us-east-1"]}, "regions: 'us-east-1' is listed more than once",
                     id="duplicate-region"),
        pytest.param({"regions": ["eu-west-1"]}, "must include the global region 'us-east-1'", id="no-global"),
        pytest.param({"owner_email": "not-an-email"}, "owner_email: 'not-an-email' is not a valid e-mail",
                     id="email-no-at"),
        pytest.param({"owner_email": "a@b@example.com"}, "owner_email: 'a@b@example.com' is not a valid",
                     id="email-two-at"),
        pytest.param({"owner_email": ""}, "owner_email: a value is required", id="email-missing"),
        pytest.param({"team": ""}, "team: '' must be 1-64 characters", id="team-empty"),
        pytest.param({"team": "<script>"}, "team: '<script>' must be", id="team-markup"),
        pytest.param({"environment": "staging"}, "environment: 'staging' is not one of prod, dev, sandbox",
                     id="environment"),
        pytest.param({"permission_model": "ROOT"}, "permission_model: 'ROOT' is not one of", id="permission-model"),
        pytest.param({"permission_model": "SERVICE_MANAGED"}, "ou_ids: SERVICE_MANAGED needs at least one",
                     id="service-managed-no-ou"),
        pytest.param({"ou_ids": ["ou-ab12-abcdefgh"]}, "ou_ids: ['ou-ab12-abcdefgh'] is only allowed with",
                     id="self-managed-with-ou"),
        pytest.param({"permission_model": "SERVICE_MANAGED", "ou_ids": ["r-root"]},
                     "ou_ids: 'r-root' is not an organizational unit id", id="bad-ou"),
        pytest.param({"failure_tolerance_percent": 101}, "failure_tolerance_percent: 101 must be an integer from 0",
                     id="tolerance"),
        pytest.param({"max_concurrency_percent": 0}, "max_concurrency_percent: 0 must be an integer from 1",
                     id="concurrency"),
        pytest.param({"max_concurrency_percent": True}, "max_concurrency_percent: True must be", id="bool-percent"),
        pytest.param({"dry_run": "yes"}, "dry_run: 'yes' must be true or false", id="dry-run"),
        pytest.param({"acount_ids": ["111111111111"]}, "acount_ids: unknown parameter", id="unknown-param"),
    ],
)
def test_bad_input_is_refused_naming_field_and_value(changes, message):
    with pytest.raises(onboarding.InvalidRequest) as caught:
        _static(**changes)
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(onboarding.InvalidRequest) as caught:
        _static(account_ids=["1", "2"], owner_email="x", environment="qa")
    assert len(caught.value.errors) == 4


def test_param_specs_match_the_validator_fields():
    specs = form.param_specs()
    assert set(specs) == {"account_ids", "regions", "owner_email", "team", "environment", "permission_model",
                          "ou_ids", "failure_tolerance_percent", "max_concurrency_percent", "concurrency_mode",
                          "dry_run", "force", "enable_guardduty", "enable_macie", "findings_import_role",
                          "delegated_admin"}
    assert specs["account_ids"]["items"]["pattern"] == r"^\d{12}\Z"
    assert specs["environment"]["enum"] == list(onboarding.ENVIRONMENTS)
    assert specs["concurrency_mode"]["enum"] == list(onboarding.CONCURRENCY_MODES)


# -- inventory and organization stages ---------------------------------------------------------------------------

def _inventory(account: str, version: str = "1.0.0", status: str = "onboarded") -> pd.DataFrame:
    when = pd.Timestamp("2026-11-20T10:00:00Z")
    return pd.DataFrame([{"account_id": account, "baseline_version": version, "status": status,
                          "onboarded_at": when, "verified_at": when, "dt": "2026-11-20"}])


def test_account_onboarded_at_same_version_is_refused_unless_forced():
    inventory = accounts.latest_onboarding(_inventory("111111111111"))
    with pytest.raises(onboarding.InvalidRequest, match="account_ids: '111111111111' is already onboarded at "
                       "baseline version 1.0.0 \\(on 2026-11-20\\)"):
        onboarding.check_inventory(_static(), inventory, "1.0.0")
    onboarding.check_inventory(_static(force=True), inventory, "1.0.0")


@pytest.mark.parametrize(("version", "status"), [pytest.param("0.9.0", "onboarded", id="older-version"),
                                                 pytest.param("1.0.0", "verify_failed", id="not-verified")])
def test_account_onboarded_otherwise_is_accepted(version, status):
    inventory = accounts.latest_onboarding(_inventory("111111111111", version, status))
    onboarding.check_inventory(_static(), inventory, "1.0.0")


@pytest.fixture
def org(monkeypatch):
    """An in-process moto organization: members[0..2] ACTIVE, members[3] SUSPENDED; an access layer counting calls."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = boto3.client("organizations", region_name="us-east-1")
        client.create_organization(FeatureSet="ALL")
        members = [client.create_account(AccountName=f"m{i}", Email=f"m{i}@example.com")["CreateAccountStatus"]
                   ["AccountId"] for i in range(4)]
        client.close_account(AccountId=members[3])
        access = AwsAccess.from_args(region="us-east-1", external_id=TEST_EXTERNAL_ID, session_name="awsgov-test")
        yield {"access": access, "members": members}


def _validate(org, **changes):
    params = {**GOOD, "account_ids": org["members"][:2], **changes}
    return onboarding.validate_request(params, TEST_SETTINGS, access=org["access"], inventory=None, version="1.0.0")


def test_valid_request_costs_a_few_calls_and_names_the_organization(org):
    request = _validate(org)
    assert request["admin_account_id"] == "123456789012"
    assert request["organization_id"].startswith("o-")
    assert org["access"].total_calls() == 3  # DescribeOrganization, ListAccounts, GetCallerIdentity


def test_delegated_admin_call_as_is_recorded_in_the_request(org):
    cfg = {**TEST_SETTINGS, "stackset": {"name": "governance-baseline", "call_as": "DELEGATED_ADMIN"}}
    params = {**GOOD, "account_ids": org["members"][:2], "permission_model": "SERVICE_MANAGED",
              "ou_ids": ["ou-ab12-abcdefgh"]}
    request = onboarding.validate_request(params, cfg, access=org["access"], inventory=None, version="1.0.0")
    assert request["call_as"] == "DELEGATED_ADMIN"
    assert _validate(org)["call_as"] == "SELF"  # no stackset.call_as setting: the management account's SELF


def test_delegated_admin_refuses_self_managed_before_any_aws_call(org):
    cfg = {**TEST_SETTINGS, "stackset": {"name": "governance-baseline", "call_as": "DELEGATED_ADMIN"}}
    with pytest.raises(onboarding.InvalidRequest) as caught:
        onboarding.validate_request({**GOOD, "account_ids": org["members"][:1]}, cfg, access=org["access"],
                                    inventory=None, version="1.0.0")
    assert caught.value.errors == ["permission_model: 'SELF_MANAGED' cannot be run from a delegated administrator "
                                   "account (settings stackset.call_as DELEGATED_ADMIN); use SERVICE_MANAGED"]
    assert org["access"].total_calls() == 0


def test_static_invalid_input_makes_no_aws_call(org):
    with pytest.raises(onboarding.InvalidRequest, match="'12345' is not a 12-digit"):
        _validate(org, account_ids=["12345"])
    assert org["access"].total_calls() == 0


def test_already_onboarded_input_makes_no_aws_call(org):
    params = {**GOOD, "account_ids": org["members"][:1]}
    with pytest.raises(onboarding.InvalidRequest, match="already onboarded"):
        onboarding.validate_request(params, TEST_SETTINGS, access=org["access"],
                                    inventory=_inventory(org["members"][0]), version="1.0.0")
    assert org["access"].total_calls() == 0


@pytest.mark.parametrize(
    ("pick", "message"),
    [
        pytest.param(lambda m: "999999999999", "account_ids: '999999999999' is not an account of the organization",
                     id="not-in-org"),
        pytest.param(lambda m: m[3], "is SUSPENDED in the organization, not ACTIVE", id="suspended"),
        pytest.param(lambda m: "123456789012", "account_ids: '123456789012' is the admin (management) account",
                     id="management"),
    ],
)
def test_organization_refusals(org, pick, message):
    with pytest.raises(onboarding.InvalidRequest, match=message.replace("(", "\\(").replace(")", "\\)")):
        _validate(org, account_ids=[org["members"][0], pick(org["members"])])


# -- planning ------------------------------------------------------------------------------------------------------

def _instance(account, region, status="CURRENT"):
    return {"Account": account, "Region": region, "Status": status}


STACK_SET_V1 = {"PermissionModel": "SELF_MANAGED", "Tags": [{"Key": stacksets.VERSION_TAG, "Value": "1.0.0"}]}
CENTRAL_V1 = {"StackStatus": "CREATE_COMPLETE", "Tags": [{"Key": stacksets.VERSION_TAG, "Value": "1.0.0"}]}


def test_plan_for_a_new_stack_set_creates_everything_in_one_operation():
    plan = onboarding.plan_deployment(_static(regions=["eu-west-1", "us-east-1"]), version="1.0.0",
                                      central_stack=None, stack_set=None, instances=[])
    assert (plan["central"], plan["stackset"]) == ("create", "create")
    assert plan["create"] == [{"accounts": ["111111111111", "222222222222"], "regions": ["us-east-1", "eu-west-1"]}]
    assert plan["update"] == [] and plan["current"] == []


def test_plan_skips_current_instances_and_updates_outdated_ones():
    instances = [_instance("111111111111", "us-east-1"), _instance("111111111111", "eu-west-1", "OUTDATED"),
                 _instance("222222222222", "us-east-1")]
    plan = onboarding.plan_deployment(_static(), version="1.0.0", central_stack=CENTRAL_V1, stack_set=STACK_SET_V1,
                                      instances=instances)
    assert (plan["central"], plan["stackset"]) == ("none", "none")
    assert plan["create"] == [{"accounts": ["222222222222"], "regions": ["eu-west-1"]}]
    assert plan["update"] == [{"accounts": ["111111111111"], "regions": ["eu-west-1"]}]
    assert plan["current"] == ["111111111111/us-east-1", "222222222222/us-east-1"]


def test_plan_with_everything_current_does_nothing():
    instances = [_instance(a, r) for a in GOOD["account_ids"] for r in TEST_REGIONS]
    plan = onboarding.plan_deployment(_static(), version="1.0.0", central_stack=CENTRAL_V1, stack_set=STACK_SET_V1,
                                      instances=instances)
    assert plan["create"] == [] and plan["update"] == [] and len(plan["current"]) == 4
    assert plan["stackset"] == "none"


def test_plan_for_a_newer_version_updates_the_stack_set_which_redeploys_every_instance():
    instances = [_instance("111111111111", r, "OUTDATED") for r in TEST_REGIONS]
    plan = onboarding.plan_deployment(_static(), version="1.1.0", central_stack=CENTRAL_V1, stack_set=STACK_SET_V1,
                                      instances=instances)
    assert (plan["central"], plan["stackset"], plan["stackset_version"]) == ("update", "update", "1.0.0")
    assert plan["update"] == []
    assert plan["create"] == [{"accounts": ["222222222222"], "regions": TEST_REGIONS}]


@pytest.mark.parametrize(
    ("stack_set", "instances", "message"),
    [
        pytest.param({**STACK_SET_V1, "PermissionModel": "SERVICE_MANAGED"}, [], "permission_model", id="model"),
        pytest.param(STACK_SET_V1, [_instance("111111111111", "us-east-1", "INOPERABLE")], "INOPERABLE",
                     id="inoperable"),
    ],
)
def test_plan_refuses_states_it_cannot_fix(stack_set, instances, message):
    with pytest.raises(ValueError, match=message):
        onboarding.plan_deployment(_static(), version="1.0.0", central_stack=CENTRAL_V1, stack_set=stack_set,
                                   instances=instances)


def test_hundred_new_accounts_are_one_group_with_the_global_region_first():
    accounts = [f"{i:012d}" for i in range(100)]
    pairs = [(a, r) for a in accounts for r in ("eu-west-1", "ap-northeast-1", "us-east-1")]
    (group,) = stacksets.group_targets(pairs, TEST_GLOBAL)
    assert group["accounts"] == accounts and group["regions"][0] == "us-east-1"


def test_operation_preferences_carry_the_form_values():
    prefs = onboarding.operation_preferences(_static(failure_tolerance_percent=0, max_concurrency_percent=100),
                                             ["eu-west-1", "us-east-1"])
    assert prefs == {"RegionConcurrencyType": "SEQUENTIAL", "RegionOrder": ["us-east-1", "eu-west-1"],
                     "FailureTolerancePercentage": 0, "MaxConcurrentPercentage": 100,
                     "ConcurrencyMode": "STRICT_FAILURE_TOLERANCE"}


def test_describe_plan_says_what_would_change():
    plan = onboarding.plan_deployment(_static(), version="1.0.0", central_stack=None, stack_set=None, instances=[])
    lines = onboarding.describe_plan(plan, "governance-baseline")
    assert lines[0].startswith("baseline version 1.0.0: central stack create, StackSet governance-baseline create")
    assert "would create 2 account(s) x 2 region(s) in one operation" in lines[1]


@pytest.mark.parametrize(
    ("changes", "note"),
    [
        pytest.param({}, "2 account(s) at a time per region (STRICT_FAILURE_TOLERANCE: min(max concurrency 25% = 2, "
                         "failure tolerance 10% = 1 + 1)), fewer after failures", id="strict-defaults"),
        pytest.param({"failure_tolerance_percent": 0, "max_concurrency_percent": 100},
                     "1 account(s) at a time per region (STRICT_FAILURE_TOLERANCE: min(max concurrency 100% = 10, "
                     "failure tolerance 0% = 0 + 1)), fewer after failures", id="zero-tolerance-is-one-at-a-time"),
        pytest.param({"failure_tolerance_percent": 0, "max_concurrency_percent": 100,
                      "concurrency_mode": "SOFT_FAILURE_TOLERANCE"},
                     "10 account(s) at a time per region (SOFT_FAILURE_TOLERANCE: max concurrency 100% = 10), a "
                     "region stops after 1 failure(s)", id="soft"),
    ],
)
def test_the_plan_says_what_the_concurrency_really_becomes(changes, note):
    accounts = [f"{i:012d}" for i in range(100, 110)]
    request = {**_static(account_ids=accounts, **changes), "call_as": "DELEGATED_ADMIN"}
    plan = onboarding.plan_deployment(request, version="1.0.0", central_stack=None, stack_set=None, instances=[])
    lines = onboarding.describe_plan(plan, "governance-baseline", request)
    assert lines[0].endswith(", called as DELEGATED_ADMIN")
    assert lines[1].endswith(f"; {note}")
    prefs = onboarding.operation_preferences(request)
    assert note.startswith(f"{stacksets.actual_concurrency(10, prefs)} account(s)")


# -- verification and inventory ------------------------------------------------------------------------------------

def _deploy_baseline(member: str) -> None:
    """The StackSet deploys the role and rule (moto's CloudFormation lacks Trail and Config types: made by hand)."""
    cf = boto3.client("cloudformation", region_name="us-east-1")
    body, version = onboarding.load_template("baseline")
    values = {"AdminAccountId": "123456789012", "ExternalId": TEST_EXTERNAL_ID, "GlobalRegion": TEST_GLOBAL,
              "LogBucketName": "governance-logs-123456789012", "CentralEventBusArn": TEST_BUS,
              "TrailKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # moto: "not supported by moto's CloudFormation"
        stacksets.ensure_stack_set(cf, "governance-baseline", template_body=body, version=version, values=values)
        stacksets.create_stack_instances(cf, "governance-baseline", [member], TEST_REGIONS, {})


def _member_session(member: str) -> boto3.Session:
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole", RoleSessionName="seed")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"])


def _add_trail_and_config(member: str, regions=TEST_REGIONS) -> None:
    session = _member_session(member)
    session.client("s3", region_name="us-east-1").create_bucket(Bucket=f"trail-{member}")
    trail = session.client("cloudtrail", region_name="us-east-1")
    trail.create_trail(Name="governance-trail", S3BucketName=f"trail-{member}", IsMultiRegionTrail=True)
    trail.start_logging(Name="governance-trail")
    for region in regions:
        config = session.client("config", region_name=region)
        config.put_configuration_recorder(ConfigurationRecorder={
            "name": "governance-recorder", "roleARN": f"arn:aws:iam::{member}:role/governance-config-recorder"})
        config.put_delivery_channel(DeliveryChannel={"name": "governance-delivery", "s3BucketName": f"trail-{member}"})
        config.start_configuration_recorder(ConfigurationRecorderName="governance-recorder")
        config.put_aggregation_authorization(AuthorizedAccountId="123456789012", AuthorizedAwsRegion=TEST_GLOBAL)


def _verify(org, member):
    return onboarding.verify_account(org["access"], member, TEST_REGIONS, global_region=TEST_GLOBAL,
                                     admin_account_id="123456789012", central_bus_arn=TEST_BUS)


def test_verify_account_passes_when_the_baseline_works(org):
    member = org["members"][0]
    _deploy_baseline(member)
    _add_trail_and_config(member)
    result = _verify(org, member)
    assert result["ok"], result
    assert result["regions"]["eu-west-1"] == {"trail_logging": True, "recorder_recording": True,
                                              "aggregation_authorized": True, "forward_rule": True}


def test_verify_account_names_the_failing_check(org):
    member = org["members"][0]
    _deploy_baseline(member)
    _add_trail_and_config(member, regions=["us-east-1"])
    result = _verify(org, member)
    assert not result["ok"]
    assert result["regions"]["us-east-1"]["recorder_recording"] is True
    assert result["regions"]["eu-west-1"] == {"trail_logging": True, "recorder_recording": False,
                                              "aggregation_authorized": False, "forward_rule": True}


def test_inventory_rows_keep_the_first_onboarding_time_on_rerun():
    request = _static()
    checks = [{"account_id": a, "ok": a == "111111111111", "regions": {"us-east-1": {"trail_logging": True}},
               "error": ""} for a in request["account_ids"]]
    first_at = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
    previous = {"111111111111": {"baseline_version": "1.0.0", "onboarded_at": first_at, "operation_id": "op-0"}}
    now = dt.datetime(2026, 11, 29, 9, tzinfo=dt.UTC)
    rows = onboarding.inventory_rows(request, checks, version="1.0.0", stack_set_name="governance-baseline",
                                     operation_ids=[], previous=previous, now=now)
    assert [r["status"] for r in rows] == ["onboarded", "verify_failed"]
    assert rows[0]["onboarded_at"] == first_at and rows[0]["operation_id"] == "op-0"
    assert rows[1]["onboarded_at"] == now and rows[1]["verified_at"] == now
    assert json.loads(rows[0]["verification_json"]) == {"us-east-1": {"trail_logging": True}}
    assert rows[0]["owner_email"] == "Owner@example.com" and rows[0]["regions"] == TEST_REGIONS


def test_write_inventory_replaces_the_accounts_chunk(tmp_path):
    from include.awsgov.core.store import Store
    from include.awsgov.core.tables import ONBOARDED_ACCOUNTS

    store = Store(str(tmp_path))
    request = _static()
    checks = [{"account_id": a, "ok": True, "regions": {}, "error": ""} for a in request["account_ids"]]
    day = dt.date(2026, 11, 29)
    for _ in range(2):
        rows = onboarding.inventory_rows(request, checks, version="1.0.0", stack_set_name="governance-baseline",
                                         operation_ids=["op-1"], previous={}, now=dt.datetime.now(dt.UTC))
        onboarding.write_inventory(store, day, rows)
    frame = store.read(tables.ONBOARDED_ACCOUNTS_TABLE, schema=ONBOARDED_ACCOUNTS)
    assert sorted(frame["account_id"]) == request["account_ids"]
    assert store.chunks(tables.ONBOARDED_ACCOUNTS_TABLE, day) == request["account_ids"]


# -- trailing newlines and arbitrary input (issue #19 item 9, Hypothesis) ---------------------------------------------
@pytest.mark.parametrize("changes", [
    pytest.param({"account_ids": ["111111111111\n"]}, id="account"),
    pytest.param({"team": "Payments\n"}, id="team"),
    pytest.param({"permission_model": "SERVICE_MANAGED", "ou_ids": ["ou-abcd-12345678\n"]}, id="ou"),
])
def test_a_trailing_newline_is_refused(changes):
    with pytest.raises(onboarding.InvalidRequest):
        _static(**changes)


_PARAM_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.text(max_size=70),
                          st.lists(st.text(max_size=20), max_size=4))


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(["account_ids", "regions", "owner_email", "team", "environment",
                                                "permission_model", "ou_ids", "failure_tolerance_percent",
                                                "max_concurrency_percent", "dry_run", "force", "bogus"]),
                               _PARAM_VALUES, max_size=5))
def test_any_form_input_is_normalized_or_refused_in_plain_words(changes):
    try:
        request = _static(**changes)
    except onboarding.InvalidRequest as exc:
        assert str(exc).strip()
        return
    assert all(len(a) == 12 and a.isdigit() for a in request["account_ids"])
    assert "\n" not in request["team"] and "\n" not in request["owner_email"]


@pytest.mark.parametrize(("setting", "value"), [
    pytest.param(None, "", id="unset-any-admin-principal"),
    pytest.param("arn:aws:iam::123456789012:role/airflow-worker", "arn:aws:iam::123456789012:role/airflow-worker",
                 id="airflow-role"),
])
def test_the_read_role_trusts_the_configured_reader(setting, value):
    cfg = {**TEST_SETTINGS, "read_role_trusted_principal": setting}
    outputs = {"LogBucketName": "b", "TrailKmsKeyArn": "k", "CentralEventBusArn": "e"}
    values = onboarding.stack_set_values(cfg, admin_account_id="123456789012", central_outputs=outputs,
                                         external_id=TEST_EXTERNAL_ID)
    assert values["ReaderPrincipalArn"] == value

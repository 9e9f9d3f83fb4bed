"""The CloudFormation templates: cfn-lint clean, versioned, least privilege, global resources in one region only,
and never named after the stack (StackSet instances have generated stack names)."""

from __future__ import annotations

import json

import pytest
import yaml

from include.awsgov.onboarding import workflow

TEMPLATES = ["baseline", "central"]
# Verbs that only read; support:RefreshTrustedAdvisorCheck (re-runs a check, changes no resource) is the one extra.
READ_VERBS = ("Describe", "Get", "List", "BatchGet", "Select", "Lookup")
ALLOWED_EXTRA_ACTIONS = {"support:RefreshTrustedAdvisorCheck"}


class _Loader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags as {"Fn::X": value} / {"Ref": value}."""


def _tag(loader, suffix, node):
    value = (loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
             else loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode)
             else loader.construct_mapping(node, deep=True))
    return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _tag)


def _template(kind: str) -> dict:
    body, _ = workflow.load_template(kind)
    return yaml.load(body, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _resources(kind: str, rtype: str) -> dict[str, dict]:
    return {k: v for k, v in _template(kind)["Resources"].items() if v["Type"] == rtype}


@pytest.mark.parametrize("kind", TEMPLATES)
def test_template_passes_cfn_lint(kind):
    from cfnlint.api import ManualArgs, lint_file

    path = workflow.INCLUDE / "templates" / workflow.config()["templates"][kind]
    # Every region the baseline may be deployed to is checked (resource availability differs by region).
    matches = lint_file(path, ManualArgs(regions=["us-east-1", "eu-west-1", "ap-northeast-1"]))
    assert [str(m) for m in matches] == []


@pytest.mark.parametrize("kind", TEMPLATES)
def test_template_version_matches_its_parameter_default(kind):
    template = _template(kind)
    _, version = workflow.load_template(kind)
    assert template["Parameters"]["BaselineVersion"]["Default"] == version
    assert template["Metadata"]["awsgov"]["baseline_version"] == version  # the Metadata, read directly
    assert version == workflow.load_template("baseline")[1], "baseline and central versions move together"


@pytest.mark.parametrize("kind", TEMPLATES)
def test_template_never_uses_the_stack_name(kind):
    text = json.dumps(_template(kind))  # parsed, so comments explaining the rule do not count
    assert "AWS::StackName" not in text and "AWS::StackId" not in text


def test_external_id_is_a_no_echo_parameter():
    param = _template("baseline")["Parameters"]["ExternalId"]
    assert param["NoEcho"] is True and param["MinLength"] >= 2


def test_read_role_is_trusted_only_by_the_admin_account_with_external_id():
    role = _resources("baseline", "AWS::IAM::Role")["ReadRole"]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AdminAccountId}:root"}}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {
        "StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}},
        "ArnLike": {"Fn::If": ["RestrictReader", {"aws:PrincipalArn": {"Ref": "ReaderPrincipalArn"}},
                               {"Ref": "AWS::NoValue"}]}}
    assert role["RoleName"] == {"Ref": "ReadRoleName"}


def test_read_role_allows_no_write_action():
    role = _resources("baseline", "AWS::IAM::Role")["ReadRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/SecurityAudit"}]
    actions = [a for policy in role["Policies"] for st in policy["PolicyDocument"]["Statement"]
               for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])]
    assert {"support:Describe*", "support:RefreshTrustedAdvisorCheck", "config:Describe*",
            "cloudwatch:GetMetricData", "organizations:Describe*"} <= set(actions)
    writes = [a for a in actions if a not in ALLOWED_EXTRA_ACTIONS and not a.split(":")[1].startswith(READ_VERBS)]
    assert writes == []


def test_every_policy_statement_is_allow_or_deny_with_explicit_actions():
    for kind in TEMPLATES:
        text = json.dumps(_template(kind))
        assert '"Action": "*"' not in text and '"Action": ["*"]' not in text


def test_global_resources_exist_only_in_the_global_region():
    resources = _template("baseline")["Resources"]
    conditions = _template("baseline")["Conditions"]
    for name, resource in resources.items():
        if resource["Type"] in ("AWS::IAM::Role", "AWS::CloudTrail::Trail"):
            condition = resource.get("Condition")
            # IsGlobalRegion itself, or an optional resource's condition that requires it (Fn::And).
            assert condition == "IsGlobalRegion" or {"Fn::Condition": "IsGlobalRegion"} in conditions[condition].get(
                "Fn::And", []), name
    recorder = resources["ConfigRecorder"]["Properties"]["RecordingGroup"]
    assert recorder["AllSupported"] is True
    assert recorder["IncludeGlobalResourceTypes"] == {"Fn::If": ["IsGlobalRegion", True, False]}
    assert _template("baseline")["Conditions"]["IsGlobalRegion"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "GlobalRegion"}]}


def test_trail_is_multi_region_validated_encrypted_to_the_central_bucket():
    trail = _resources("baseline", "AWS::CloudTrail::Trail")["Trail"]["Properties"]
    assert trail["IsMultiRegionTrail"] is True and trail["EnableLogFileValidation"] is True
    assert trail["IsLogging"] is True
    assert trail["KMSKeyId"] == {"Ref": "TrailKmsKeyArn"} and trail["S3BucketName"] == {"Ref": "LogBucketName"}


def test_config_delivers_snapshots_to_the_central_bucket_and_authorizes_the_aggregator():
    resources = _template("baseline")["Resources"]
    channel = resources["ConfigDeliveryChannel"]["Properties"]
    assert channel["S3BucketName"] == {"Ref": "LogBucketName"}
    assert channel["SnsTopicARN"] == {"Ref": "ConfigTopic"}
    assert channel["ConfigSnapshotDeliveryProperties"]["DeliveryFrequency"] == "TwentyFour_Hours"
    auth = resources["AggregationAuthorization"]["Properties"]
    assert auth == {"AuthorizedAccountId": {"Ref": "AdminAccountId"}, "AuthorizedAwsRegion": {"Ref": "GlobalRegion"}}


def test_forward_rule_sends_the_four_event_kinds_to_the_central_bus():
    rule = _resources("baseline", "AWS::Events::Rule")["ForwardRule"]["Properties"]
    # The pattern is the alert rules compiled (tests/awsgov/events/test_patterns.py checks it is exactly that).
    alternatives = rule["EventPattern"]["$or"]
    sources = {s for a in alternatives for s in a["source"]}
    assert sources >= {"aws.config", "aws.trustedadvisor", "aws.guardduty", "aws.signin", "aws.iam", "aws.cloudtrail"}
    assert any("AWS API Call via CloudTrail" in a["detail-type"] for a in alternatives)
    assert rule["Targets"][0]["Arn"] == {"Ref": "CentralEventBusArn"}


def test_central_bucket_admits_only_the_organizations_trails_recorders_and_inventory_syncs():
    statements = _resources("central", "AWS::S3::BucketPolicy")["LogBucketPolicy"]["Properties"][
        "PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows and all(s["Condition"]["StringEquals"]["aws:SourceOrgID"] == {"Ref": "OrganizationId"}
                          for s in allows)
    assert {s["Principal"]["Service"] for s in allows} == {"cloudtrail.amazonaws.com", "config.amazonaws.com",
                                                          "ssm.amazonaws.com"}
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": False}}


def test_central_bus_policy_admits_only_the_organizations_forwarding_role():
    policy = _resources("central", "AWS::Events::EventBusPolicy")["CentralEventBusPolicy"]["Properties"]
    assert policy["Statement"]["Action"] == "events:PutEvents"
    assert policy["Statement"]["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}},
        "ArnLike": {"aws:PrincipalArn": {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/governance-events-forward"}}}
    forward = _resources("baseline", "AWS::IAM::Role")["ForwardRole"]["Properties"]
    assert forward["RoleName"] == "governance-events-forward"  # the role the condition names


def test_central_has_the_organization_config_aggregator():
    aggregator = _resources("central", "AWS::Config::ConfigurationAggregator")["ConfigAggregator"]["Properties"]
    assert aggregator["OrganizationAggregationSource"]["AllAwsRegions"] is True


def test_findings_import_role_may_only_import_into_its_own_default_product():
    role = _resources("baseline", "AWS::IAM::Role")["FindingsImportRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    (statement,) = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statement["Action"] == "securityhub:BatchImportFindings"
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:securityhub:*:${AWS::AccountId}:product/${AWS::AccountId}/default"}


def test_threat_detection_resources_exist_only_when_the_form_asks():
    template = _template("baseline")
    resources, conditions = template["Resources"], template["Conditions"]
    for name, param in (("GuardDutyDetector", "EnableGuardDuty"), ("MacieSession", "EnableMacie")):
        condition = resources[name]["Condition"]
        assert conditions[condition] == {"Fn::Equals": [{"Ref": param}, "true"]}
        assert template["Parameters"][param]["Default"] == "false"


def test_threat_detection_resources_outlive_the_stack_instance():
    # Deleting or replacing an instance must not switch GuardDuty/Macie off and delete their findings.
    resources = _template("baseline")["Resources"]
    for name in ("GuardDutyDetector", "MacieSession"):
        assert (resources[name]["DeletionPolicy"], resources[name]["UpdateReplacePolicy"]) == ("Retain", "Retain")


# -- issue #19 (templates and deployment) ---------------------------------------------------------------------------
def test_read_role_trusts_only_the_configured_reader_when_one_is_set():
    template = _template("baseline")
    restrict = {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReaderPrincipalArn"}, ""]}]}
    assert template["Conditions"]["RestrictReader"] == restrict
    assert template["Parameters"]["ReaderPrincipalArn"]["Default"] == ""


def test_log_bucket_is_object_locked_in_governance_mode_and_access_logged():
    bucket = _resources("central", "AWS::S3::Bucket")["LogBucket"]["Properties"]
    assert bucket["ObjectLockEnabled"] is True and bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    lock = bucket["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": {"Ref": "LogObjectLockDays"}}
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "LogAccessLogBucket"}


def test_access_log_bucket_admits_only_s3_logging_for_the_log_bucket():
    policy = _resources("central", "AWS::S3::BucketPolicy")["LogAccessLogBucketPolicy"]["Properties"]
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allows] == [{"Service": "logging.s3.amazonaws.com"}]
    assert allows[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    log_bucket = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${LogBucketName}"}
    assert allows[0]["Condition"]["ArnLike"] == {"aws:SourceArn": log_bucket}


@pytest.mark.parametrize("kind", TEMPLATES)
def test_every_scanner_exception_is_justified_in_the_template(kind):
    """Checks an IaC scanner (checkov, make lint) is told to skip carry the reason in the template."""
    for name, resource in _template(kind)["Resources"].items():
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip") or []:
            assert skip["id"].startswith("CKV_") and len(skip.get("comment", "")) > 20, (name, skip)


@pytest.mark.parametrize("kind", TEMPLATES)
def test_queues_are_encrypted_at_rest(kind):
    for name, queue in _resources(kind, "AWS::SQS::Queue").items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), name


def test_baseline_syncs_ssm_inventory_to_the_central_bucket_where_collection_reads_it():
    from include.awsgov.collection.ssm_inventory import sync_folder

    template = _template("baseline")
    sync = _resources("baseline", "AWS::SSM::ResourceDataSync")["InventoryDataSync"]
    assert "Condition" not in sync, "every region syncs its own inventory"
    props = sync["Properties"]
    assert props["SyncType"] == "SyncToDestination" and props["SyncName"] == {"Ref": "InventorySyncName"}
    dest = props["S3Destination"]
    assert dest["BucketName"] == {"Ref": "LogBucketName"} and dest["BucketRegion"] == {"Ref": "GlobalRegion"}
    assert dest["SyncFormat"] == "JsonSerDe"  # one JSON record a line: what ssm_inventory.read_records parses
    assert dest["BucketPrefix"] == {"Fn::If": ["HasInventorySyncPrefix", {"Ref": "InventorySyncPrefix"},
                                               {"Ref": "AWS::NoValue"}]}
    # The prefix the onboarding passes is the one the collection reads, in both templates.
    cfg = {"home_region": "us-east-1", "read_role_name": "GovernanceReadRole",
           "collection": {"inventory_sync_prefix": "inv/data/"}}
    values = workflow.stack_set_values(cfg, admin_account_id="123456789012", external_id="x" * 8, central_outputs={
        "LogBucketName": "b", "TrailKmsKeyArn": "k", "CentralEventBusArn": "e"})
    central = workflow.central_values(cfg, admin_account_id="123456789012", organization_id="o-abcdefghij")
    assert values["InventorySyncPrefix"] == central["InventorySyncPrefix"] == "inv/data"
    assert sync_folder("inv/data/", "AWS:Application", "1").startswith(values["InventorySyncPrefix"] + "/")
    assert values["InventorySyncName"] == central["InventorySyncName"]
    assert set(values) <= set(template["Parameters"])
    assert set(central) <= set(_template("central")["Parameters"])


def test_central_bucket_admits_inventory_syncs_only_under_their_prefix_with_owner_control():
    statements = {s.get("Sid"): s for s in _resources("central", "AWS::S3::BucketPolicy")["LogBucketPolicy"][
        "Properties"]["PolicyDocument"]["Statement"]}
    write = statements["OrganizationInventorySyncWrite"]
    assert write["Principal"] == {"Service": "ssm.amazonaws.com"} and write["Action"] == "s3:PutObject"
    assert write["Condition"]["StringEquals"] == {"aws:SourceOrgID": {"Ref": "OrganizationId"},
                                                  "s3:x-amz-acl": "bucket-owner-full-control"}
    assert write["Condition"]["ArnLike"] == {"aws:SourceArn": {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:*:*:resource-data-sync/${InventorySyncName}"}}
    condition, with_prefix, without = write["Resource"]["Fn::If"]
    assert condition == "HasInventorySyncPrefix"
    assert with_prefix == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${LogBucketName}/${InventorySyncPrefix}/*/accountid=*/*"}
    assert without == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${LogBucketName}/*/accountid=*/*"}
    acl = statements["OrganizationInventorySyncAclCheck"]
    assert acl["Action"] == "s3:GetBucketAcl" and acl["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${LogBucketName}"}

"""Resources moto's CloudFormation does not create (it skips their types), created by the extension in the target
account when a StackSet instance deploys, so verification through the read role sees them.

moto creates: AWS::IAM::Role/Policy/ManagedPolicy/InstanceProfile, AWS::S3::Bucket, AWS::SNS::Topic,
AWS::Events::Rule/EventBus, AWS::KMS::Key/Alias, AWS::Logs::LogGroup, AWS::Lambda::Function (and ~90 more).
Supplemented here: AWS::CloudTrail::Trail (+ StartLogging), AWS::Config::ConfigurationRecorder (started once a
delivery channel exists, as CloudFormation does), AWS::Config::DeliveryChannel, AWS::Config::AggregationAuthorization,
AWS::Config::ConfigRule, AWS::Config::ConfigurationAggregator, AWS::S3::BucketPolicy, AWS::Events::EventBusPolicy and
AWS::SQS::QueuePolicy (both enforced by sandbox/events on delivery). Still skipped (no effect on reads):
AWS::SNS::TopicPolicy and any other type moto lacks.
Applied to StackSet instances and to plain stacks (CreateStack / UpdateStack / DeleteStack).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Order matters: a delivery channel needs its recorder.
ORDER = [
    "AWS::CloudTrail::Trail",
    "AWS::Config::ConfigurationRecorder",
    "AWS::Config::DeliveryChannel",
    "AWS::Config::AggregationAuthorization",
    "AWS::Config::ConfigRule",
    "AWS::Config::ConfigurationAggregator",
    "AWS::S3::BucketPolicy",
    "AWS::Events::EventBusPolicy",
    "AWS::SQS::QueuePolicy",
]


def _bool(value: Any) -> bool:
    return str(value).lower() == "true"


def _trail(account: str, region: str, logical_id: str, props: dict[str, Any], stack_name: str) -> Callable[[], None]:
    from moto.cloudtrail.models import cloudtrail_backends

    backend = cloudtrail_backends[account][region]
    name = props.get("TrailName") or f"{stack_name}-{logical_id}"
    trail = backend.create_trail(
        name=name,
        bucket_name=props["S3BucketName"],
        s3_key_prefix=props.get("S3KeyPrefix"),
        sns_topic_name=props.get("SnsTopicName"),
        is_global=_bool(props.get("IncludeGlobalServiceEvents", True)),
        is_multi_region=_bool(props.get("IsMultiRegionTrail", False)),
        log_validation=_bool(props.get("EnableLogFileValidation", False)),
        is_org_trail=_bool(props.get("IsOrganizationTrail", False)),
        cw_log_group_arn=props.get("CloudWatchLogsLogGroupArn"),
        cw_role_arn=props.get("CloudWatchLogsRoleArn"),
        kms_key_id=props.get("KMSKeyId"),
        tags_list=props.get("Tags", []),
    )
    if _bool(props.get("IsLogging", False)):
        trail.start_logging()
    return lambda: backend.trails.pop(name, None)


def _recorder(account: str, region: str, logical_id: str, props: dict[str, Any], stack_name: str) -> Callable[[], None]:
    from moto.config.models import config_backends

    backend = config_backends[account][region]
    group = props.get("RecordingGroup", {})
    name = props.get("Name", "default")
    recorder: dict[str, Any] = {"name": name, "roleARN": props["RoleARN"]}
    if group:
        recorder["recordingGroup"] = {
            "allSupported": _bool(group.get("AllSupported", not group.get("ResourceTypes"))),
            "includeGlobalResourceTypes": _bool(group.get("IncludeGlobalResourceTypes", False)),
            **({"resourceTypes": group["ResourceTypes"]} if group.get("ResourceTypes") else {}),
        }
    backend.put_configuration_recorder(recorder)
    if backend.delivery_channels:
        backend.start_configuration_recorder(name)
    return lambda: backend.recorders.pop(name, None)


def _delivery_channel(account: str, region: str, logical_id: str, props: dict[str, Any],
                      stack_name: str) -> Callable[[], None]:
    from moto.config.models import config_backends

    backend = config_backends[account][region]
    name = props.get("Name", "default")
    channel: dict[str, Any] = {"name": name, "s3BucketName": props["S3BucketName"]}
    if props.get("S3KeyPrefix"):
        channel["s3KeyPrefix"] = props["S3KeyPrefix"]
    if props.get("SnsTopicARN"):
        channel["snsTopicARN"] = props["SnsTopicARN"]
    frequency = props.get("ConfigSnapshotDeliveryProperties", {}).get("DeliveryFrequency")
    if frequency:
        channel["configSnapshotDeliveryProperties"] = {"deliveryFrequency": frequency}
    backend.put_delivery_channel(channel)
    for recorder in list(backend.recorders):
        backend.start_configuration_recorder(recorder)
    return lambda: backend.delivery_channels.pop(name, None)


def _aggregation_authorization(account: str, region: str, logical_id: str, props: dict[str, Any],
                               stack_name: str) -> Callable[[], None]:
    from moto.config.models import config_backends

    backend = config_backends[account][region]
    key_account, key_region = props["AuthorizedAccountId"], props["AuthorizedAwsRegion"]
    backend.put_aggregation_authorization(key_account, key_region, props.get("Tags", []))
    return lambda: backend.aggregation_authorizations.pop(f"{key_account}/{key_region}", None)


def _config_rule(account: str, region: str, logical_id: str, props: dict[str, Any],
                 stack_name: str) -> Callable[[], None]:
    from moto.config.models import config_backends

    backend = config_backends[account][region]
    rule = {k: v for k, v in props.items() if k in ("ConfigRuleName", "Description", "Scope", "Source",
                                                    "MaximumExecutionFrequency", "InputParameters")}
    rule.setdefault("ConfigRuleName", f"{stack_name}-{logical_id}"[:128])
    if isinstance(rule.get("InputParameters"), dict):
        rule["InputParameters"] = json.dumps(rule["InputParameters"])
    backend.put_config_rule(rule, props.get("Tags", []))
    return lambda: backend.config_rules.pop(rule["ConfigRuleName"], None)


def _aggregator(account: str, region: str, logical_id: str, props: dict[str, Any],
                stack_name: str) -> Callable[[], None]:
    from moto.config.models import config_backends

    backend = config_backends[account][region]
    name = props.get("ConfigurationAggregatorName") or f"{stack_name}-{logical_id}"
    aggregator: dict[str, Any] = {"ConfigurationAggregatorName": name}
    for key in ("AccountAggregationSources", "OrganizationAggregationSource"):
        if props.get(key):
            value = props[key]
            if key == "OrganizationAggregationSource":
                value = {**value, "AllAwsRegions": _bool(value.get("AllAwsRegions", False))}
            aggregator[key] = value
    backend.put_configuration_aggregator(aggregator)
    return lambda: backend.config_aggregators.pop(name, None)


def _bucket_policy(account: str, region: str, logical_id: str, props: dict[str, Any],
                   stack_name: str) -> Callable[[], None]:
    from moto.s3.models import s3_backends

    backend = s3_backends[account]["aws"]
    document = props["PolicyDocument"]
    backend.put_bucket_policy(props["Bucket"], json.dumps(document).encode() if isinstance(document, dict)
                              else str(document).encode())
    return lambda: backend.delete_bucket_policy(props["Bucket"])


def _event_bus_policy(account: str, region: str, logical_id: str, props: dict[str, Any],
                      stack_name: str) -> Callable[[], None]:
    from moto.events.models import events_backends

    backend = events_backends[account][region]
    bus = props.get("EventBusName") or "default"
    sid = props["StatementId"]
    statement = {**props["Statement"], "Sid": sid} if props.get("Statement") else None
    if statement is None:  # the older Action/Principal/Condition form
        statement = {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": props["Principal"]},
                     "Action": props["Action"], "Resource": f"arn:aws:events:{region}:{account}:event-bus/{bus}"}
        if props.get("Condition"):
            cond = props["Condition"]
            statement["Condition"] = {cond["Type"]: {cond["Key"]: cond["Value"]}}
    backend.put_permission(bus, "", "", "", {}, json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    return lambda: backend.event_buses[bus].remove_statement(sid)


def _queue_policy(account: str, region: str, logical_id: str, props: dict[str, Any],
                  stack_name: str) -> Callable[[], None]:
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[account][region]
    document = props["PolicyDocument"]
    text = json.dumps(document) if isinstance(document, dict) else str(document)
    names = [str(url).rstrip("/").rsplit("/", 1)[-1] for url in props.get("Queues", [])]
    for name in names:
        backend.get_queue(name).policy = text

    def undo() -> None:
        for name in names:
            backend.get_queue(name).policy = None

    return undo


CREATORS: dict[str, Callable[..., Callable[[], None]]] = {
    "AWS::CloudTrail::Trail": _trail,
    "AWS::Config::ConfigurationRecorder": _recorder,
    "AWS::Config::DeliveryChannel": _delivery_channel,
    "AWS::Config::AggregationAuthorization": _aggregation_authorization,
    "AWS::Config::ConfigRule": _config_rule,
    "AWS::Config::ConfigurationAggregator": _aggregator,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::Events::EventBusPolicy": _event_bus_policy,
    "AWS::SQS::QueuePolicy": _queue_policy,
}


def apply(stack: Any) -> list[tuple[str, str, Callable[[], None]]]:
    """Create the template's resources that moto skipped; return (logical id, type, undo) for each.

    :param stack: the moto Stack just created in the target account.
    """
    from moto.cloudformation.parsing import clean_json

    resources = stack.template_dict.get("Resources", {}) or {}
    created = []
    for rtype in ORDER:
        for logical_id, spec in resources.items():
            if spec.get("Type") != rtype:
                continue
            condition = spec.get("Condition")
            if condition and not stack.resource_map.lazy_condition_map[condition]:
                continue
            props = clean_json(spec.get("Properties", {}) or {}, stack.resource_map)
            undo = CREATORS[rtype](stack.account_id, stack.region_name, logical_id, props, stack.name)
            created.append((logical_id, rtype, undo))
    return created


def undo(created: list[tuple[str, str, Callable[[], None]]]) -> None:
    """Remove supplemented resources (reverse order); errors are logged, not raised."""
    for logical_id, rtype, remove in reversed(created):
        try:
            remove()
        except Exception as exc:  # a resource already gone is fine
            log.debug("undo %s %s: %s", rtype, logical_id, exc)


def supported_by_moto(resource_type: str) -> bool:
    """Whether moto's CloudFormation creates resources of this type."""
    from moto.cloudformation.parsing import get_model_map

    return resource_type in get_model_map()

"""EventBridge delivery with AWS's envelope and resource policies, on top of moto's buses, rules and queues.

moto 5.2.5 routes PutEvents through rules, but an event forwarded to another account's bus is re-put there as a new
event (new id, the receiving account and region, no resources, a new time), nothing checks the receiving bus's
policy, and an SQS target gets the event whatever the queue's policy says. Here, as on AWS:

- an event keeps its envelope (version, id, detail-type, source, account, time, region, resources, detail) along
  every hop;
- a bus in another account accepts it only when its policy allows ``events:PutEvents`` for the sender (account
  principal, or ``"*"`` with ``aws:PrincipalOrgID`` / ``aws:PrincipalAccount`` conditions);
- an SQS queue receives it only when its policy allows ``sqs:SendMessage`` to ``events.amazonaws.com`` (with an
  ``aws:SourceArn`` condition naming the rule, if any);
- a delivery refused by a policy is dropped silently, as EventBridge does (it only shows in FailedInvocations),
  and counted in :data:`DROPPED` for tests;
- an SQS target's ``Input``, ``InputPath`` or ``InputTransformer`` decides the message body (:func:`target_input`;
  moto sends the whole event whatever the target says).

Other target types (log groups, archives, API destinations) are left to moto.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
import re
import threading
import uuid
from collections import Counter
from typing import Any

log = logging.getLogger(__name__)

MAX_HOPS = 3  # bus-to-bus forwarding depth; AWS stops loops too
DROPPED: Counter[str] = Counter()  # reason -> deliveries refused by a policy or to a missing target
_LOCK = threading.Lock()


def _iso(value: Any) -> str:
    if value in (None, ""):
        when = dt.datetime.now(dt.UTC)
    elif isinstance(value, int | float):
        when = dt.datetime.fromtimestamp(float(value), dt.UTC)
    else:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _drop(reason: str, detail: str) -> None:
    with _LOCK:
        DROPPED[reason] += 1
    log.info("events: delivery dropped (%s): %s", reason, detail)


def envelope(account: str, region: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge delivers it, built from one PutEvents entry of ``account`` in ``region``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": account,
        "time": _iso(entry.get("Time")),
        "region": region,
        "resources": list(entry.get("Resources") or []),
        "detail": json.loads(entry["Detail"]),
    }


def _entry_error(entry: dict[str, Any]) -> dict[str, str] | None:
    # Same checks and messages as moto's put_events.
    for key in ("Source", "DetailType", "Detail"):
        if not entry.get(key):
            return {"ErrorCode": "InvalidArgument",
                    "ErrorMessage": f"Parameter {key} is not valid. Reason: {key} is a required argument."}
    try:
        json.loads(entry["Detail"])
    except ValueError:
        return {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    return None


def _bus_target(account: str, region: str, name_or_arn: str | None) -> tuple[str, str, str]:
    """(account, region, name) of the bus a PutEvents entry names (a name, an ARN, or nothing = default)."""
    value = name_or_arn or "default"
    if value.startswith("arn:"):
        parts = value.split(":", 5)
        return parts[4], parts[3], parts[5].split("/", 1)[1]
    return account, region, value


def put_events(account: str, region: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PutEvents of ``account`` in ``region``: one result per entry (EventId, or ErrorCode and ErrorMessage)."""
    results = []
    for entry in entries:
        error = _entry_error(entry)
        if error:
            results.append(error)
            continue
        event = envelope(account, region, entry)
        results.append({"EventId": event["id"]})
        bus_account, bus_region, bus_name = _bus_target(account, region, entry.get("EventBusName"))
        deliver_to_bus(event, sender=account, bus_account=bus_account, bus_region=bus_region, bus_name=bus_name)
    return results


def deliver_to_bus(event: dict[str, Any], *, sender: str, bus_account: str, bus_region: str, bus_name: str,
                   hops: int = 0, principal_arn: str | None = None) -> None:
    """Match ``event`` against the rules of a bus and deliver it to their targets.

    :param sender: the account putting the event on the bus (the forwarding rule's account on a hop).
    :param principal_arn: the IAM role the forwarding rule's target puts events with (its ``RoleArn``): the principal
        the receiving bus's policy sees (``aws:PrincipalArn``); None for a direct PutEvents.
    """
    from moto.events.models import events_backends

    bus = events_backends[bus_account][bus_region].event_buses.get(bus_name)
    if bus is None:
        _drop("no_such_bus", f"{bus_account}/{bus_region}/{bus_name}")
        return
    if sender != bus_account and not bus_policy_allows(bus.policy, sender, bus.arn, principal_arn):
        _drop("bus_policy", f"{sender} -> {bus.arn}")
        return
    for rule in list(bus.rules.values()):
        if rule.state != "ENABLED" or rule.event_pattern.dump() is None:
            continue  # disabled and scheduled rules do not match events
        if not rule.event_pattern.matches_event(event):
            continue
        for target in list(rule.targets):
            _deliver_to_target(event, rule, target, hops)


def _deliver_to_target(event: dict[str, Any], rule: Any, target: dict[str, Any], hops: int) -> None:
    arn = target["Arn"]
    parts = arn.split(":", 5)
    service, region, account, resource = parts[2], parts[3], parts[4], parts[5]
    if service == "events" and resource.startswith("event-bus/"):
        if hops >= MAX_HOPS:
            _drop("too_many_hops", arn)
            return
        deliver_to_bus(dict(event), sender=rule.account_id, bus_account=account, bus_region=region,
                       bus_name=resource.split("/", 1)[1], hops=hops + 1, principal_arn=target.get("RoleArn"))
    elif service == "sqs":
        _deliver_to_queue(event, rule, target, account, region, resource)
    else:
        legacy = dict(event)
        legacy["time"] = dt.datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
        rule.send_to_targets(legacy)


def _deliver_to_queue(event: dict[str, Any], rule: Any, target: dict[str, Any], account: str, region: str,
                      name: str) -> None:
    from moto.sqs.models import sqs_backends

    try:
        queue = sqs_backends[account][region].get_queue(name)
    except Exception:  # moto raises QueueDoesNotExist
        _drop("no_such_queue", f"{account}/{region}/{name}")
        return
    if not queue_policy_allows(queue.policy, rule.arn, queue.queue_arn):
        _drop("queue_policy", f"{rule.arn} -> {queue.queue_arn}")
        return
    group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
    sqs_backends[account][region].send_message(queue_name=name, message_body=target_input(event, rule, target),
                                               group_id=group_id)


# --- target input ---------------------------------------------------------------------------------------------------
# "Amazon EventBridge input transformation" (EventBridge User Guide, eb-transform-target-input.html) and the API
# Reference's InputTransformer and Target types:
# - Input: "Valid JSON text passed to the target. In this case, nothing from the event itself is passed";
# - InputPath: "The value of the JSONPath that is used for extracting part of the matched event when passing it to
#   the target";
# - InputTransformer: InputPathsMap names JSON paths (dot notation, array indices) of the event; "<name>" in the
#   InputTemplate is replaced by the value. In a JSON template a placeholder outside quotes takes the value as JSON
#   (a string keeps its quotes: {"instance": <instance>} -> {"instance": "i-0123456789"}), inside a JSON string its
#   text; in a plain-text template its text. "If you specify a variable to match a JSON path that doesn't exist in
#   the event, that variable isn't created and doesn't appear in the output" (the input transformer tutorial).
#   Predefined variables: aws.events.rule-arn, aws.events.rule-name, aws.events.event.ingestion-time,
#   aws.events.event (the event without its detail), aws.events.event.json (the whole event).
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()


def json_path(event: Any, path: str) -> Any:
    """The value at ``path`` ("$", "$.detail.a", "$.resources[0]") of ``event``, or a sentinel when absent."""
    if not path.startswith("$"):
        return _MISSING
    value = event
    for name, index in _PATH_STEP.findall(path[1:]):
        if name and isinstance(value, dict) and name in value:
            value = value[name]
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return _MISSING
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def transform_input(event: dict[str, Any], transformer: dict[str, Any], rule: Any) -> str:
    """The text an InputTransformer makes of ``event`` for one target of ``rule``."""
    values = {name: json_path(event, path) for name, path in (transformer.get("InputPathsMap") or {}).items()}
    values.update({
        "aws.events.rule-arn": rule.arn, "aws.events.rule-name": rule.name,
        "aws.events.event.ingestion-time": event.get("time"),
        "aws.events.event": {k: v for k, v in event.items() if k != "detail"}, "aws.events.event.json": event,
    })
    template = transformer["InputTemplate"]
    is_json = template.lstrip().startswith(("{", "["))
    out, in_string, i = [], False, 0
    while i < len(template):
        ch = template[i]
        match = _PLACEHOLDER.match(template, i) if ch == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if value is _MISSING:
                pass  # the variable is not created: the placeholder disappears
            elif is_json and in_string:
                out.append(json.dumps(_text(value))[1:-1])
            elif is_json:
                out.append(json.dumps(value))
            else:
                out.append(_text(value))
            i = match.end()
            continue
        if ch == "\\" and in_string:
            out.append(template[i:i + 2])
            i += 2
            continue
        if ch == '"':
            in_string = not in_string
        out.append(ch)
        i += 1
    return "".join(out)


def target_input(event: dict[str, Any], rule: Any, target: dict[str, Any]) -> str:
    """What one target of ``rule`` receives for ``event``: the event, or what Input, InputPath or
    InputTransformer make of it."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        value = json_path(event, target["InputPath"])
        return "" if value is _MISSING else json.dumps(value)
    if target.get("InputTransformer"):
        return transform_input(event, target["InputTransformer"], rule)
    return json.dumps(event)


# --- resource policies ----------------------------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _action_allows(statement: dict[str, Any], action: str) -> bool:
    service = action.split(":", 1)[0]
    return any(a in (action, f"{service}:*", "*") for a in _as_list(statement.get("Action")))


def _resource_matches(statement: dict[str, Any], arn: str) -> bool:
    resources = _as_list(statement.get("Resource")) or ["*"]
    return any(fnmatch.fnmatchcase(arn, pattern) for pattern in resources)


def _conditions_hold(condition: dict[str, Any], context: dict[str, str]) -> bool:
    """Every condition operator and key must hold; an unknown key never holds (deny rather than guess)."""
    for operator, checks in (condition or {}).items():
        for key, expected in checks.items():
            actual = context.get(key)
            if actual is None:
                return False
            values = [str(v) for v in _as_list(expected)]
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual in values
            elif operator in ("StringLike", "ArnLike"):
                ok = any(fnmatch.fnmatchcase(actual, v) for v in values)
            else:
                return False
            if not ok:
                return False
    return True


def _org_of(account: str) -> str | None:
    from ..core import world

    try:
        w = world()
    except RuntimeError:
        return None
    if account == w.settings.management_account_id or w.account_status(account) is not None:
        return w.plan.organization_id
    return None


def bus_policy_allows(policy: str | None, sender: str, bus_arn: str, principal_arn: str | None = None) -> bool:
    """Whether a bus policy lets account ``sender`` (acting as ``principal_arn`` when known) put events on the bus.

    A rule whose target is another account's bus puts the events with the target's IAM role ("Sending and receiving
    events between AWS accounts in Amazon EventBridge"): that role is the principal, ``aws:PrincipalArn``.
    """
    if not policy:
        return False
    context = {"aws:PrincipalAccount": sender}
    if principal_arn:
        context["aws:PrincipalArn"] = principal_arn
    org = _org_of(sender)
    if org:
        context["aws:PrincipalOrgID"] = org
    for statement in json.loads(policy).get("Statement", []):
        if statement.get("Effect") != "Allow" or not _action_allows(statement, "events:PutEvents"):
            continue
        if not _resource_matches(statement, bus_arn):
            continue
        principal = statement.get("Principal")
        if principal != "*":
            accounts = _as_list((principal or {}).get("AWS"))
            if not any(p in (sender, f"arn:aws:iam::{sender}:root", principal_arn) for p in accounts):
                continue
        if _conditions_hold(statement.get("Condition") or {}, context):
            return True
    return False


def queue_policy_allows(policy: str | None, rule_arn: str, queue_arn: str) -> bool:
    """Whether a queue policy lets EventBridge send the events of rule ``rule_arn`` to the queue."""
    if not policy:
        return False
    document = json.loads(policy) if isinstance(policy, str) else policy
    context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": rule_arn.split(":")[4]}
    for statement in _as_list(document.get("Statement")):
        if statement.get("Effect") != "Allow" or not _action_allows(statement, "sqs:SendMessage"):
            continue
        if not _resource_matches(statement, queue_arn):
            continue
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if principal != "*" and "events.amazonaws.com" not in services:
            continue
        if _conditions_hold(statement.get("Condition") or {}, context):
            return True
    return False

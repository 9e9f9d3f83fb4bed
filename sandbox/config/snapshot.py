"""AWS Config configuration snapshots as the delivery channel writes them to its S3 bucket, once a day
(``deliveryFrequency`` TwentyFour_Hours).

Object key (AWS Config Developer Guide, "Example Configuration Snapshot Delivery Notification",
https://docs.aws.amazon.com/config/latest/developerguide/example-configuration-snapshot-notification.html, whose
``s3ObjectKey`` is ``AWSLogs/123456789012/Config/us-east-2/2016/9/27/ConfigSnapshot/123456789012_Config_us-east-2_
ConfigSnapshot_20160927T183939Z_16da64e4-cb65-4846-b061-e6c3ba43cb96.json.gz``)::

    [<s3KeyPrefix>/]AWSLogs/<account>/Config/<region>/<YYYY>/<M>/<D>/ConfigSnapshot/
        <account>_Config_<region>_ConfigSnapshot_<YYYYMMDDTHHMMSSZ>_<snapshot id>.json.gz

Month and day are not zero-padded. The file is gzip'd JSON ``{"fileVersion": "1.0", "configSnapshotId": ...,
"configurationItems": [...]}``, one configuration item (version 1.3) per recorded resource, including one
``AWS::Config::ResourceCompliance`` item per evaluated resource (its rules and their compliance on that day) and the
``AWS::SSM::ManagedInstanceInventory`` items of the account's managed instances.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from typing import Any

from .. import det

ITEM_VERSION = "1.3"
RESOURCE_COMPLIANCE = "AWS::Config::ResourceCompliance"
# Overall compliance of a resource from its rules' results, worst first.
_ORDER = ("NON_COMPLIANT", "COMPLIANT", "NOT_APPLICABLE", "INSUFFICIENT_DATA")


def object_key(prefix: str, account_id: str, region: str, delivered: dt.datetime, snapshot_id: str) -> str:
    """The S3 key of one snapshot.

    :param prefix: the delivery channel's s3KeyPrefix ('' for none).
    :param delivered: delivery time (UTC).
    :param snapshot_id: the configSnapshotId (a UUID).
    """
    parts = [prefix.strip("/")] if prefix and prefix.strip("/") else []
    parts += ["AWSLogs", account_id, "Config", region, str(delivered.year), str(delivered.month), str(delivered.day),
              "ConfigSnapshot",
              f"{account_id}_Config_{region}_ConfigSnapshot_{delivered:%Y%m%dT%H%M%SZ}_{snapshot_id}.json.gz"]
    return "/".join(parts)


def _uuid(*parts: object) -> str:
    h = det.hexid(32, *parts)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _arn(resource_type: str, resource_id: str, account_id: str, region: str) -> str:
    service = resource_type.split("::")[1].lower() if resource_type.count("::") == 2 else "config"
    if service == "s3":
        return f"arn:aws:s3:::{resource_id}"
    return f"arn:aws:{service}:{region}:{account_id}:{resource_type.rsplit('::', 1)[-1].lower()}/{resource_id}"


def _item(account_id: str, region: str, resource_type: str, resource_id: str, captured: str,
          configuration: tuple[str, str], *, name: str | None = None, arn: str | None = None,
          state_id: int = 1) -> str:
    """One configuration item as the JSON text ``json.dumps(item, separators=(",", ":"))`` gives, written directly
    (a realistic day has ~700 per account and region, each also hashed in its sorted form).

    :param captured: configurationItemCaptureTime, e.g. ``2016-09-27T18:39:39.000Z``.
    :param configuration: (compact JSON, MD5 of its ``json.dumps(..., sort_keys=True)`` form).
    """
    body, md5 = configuration
    return "".join((
        '{"relatedEvents":[],"relationships":[],"configuration":', body,
        ',"supplementaryConfiguration":{},"tags":{},"configurationItemVersion":"', ITEM_VERSION,
        '","configurationItemCaptureTime":"', captured, '","configurationStateId":', str(int(state_id)),
        ',"awsAccountId":', _s(account_id), ',"configurationItemStatus":"OK","resourceType":', _s(resource_type),
        ',"resourceId":', _s(resource_id), ',"resourceName":', _s(name or resource_id),
        ',"ARN":', _s(arn or _arn(resource_type, resource_id, account_id, region)), ',"awsRegion":', _s(region),
        ',"availabilityZone":"Not Applicable","configurationStateMd5Hash":"', md5, '"}',
    ))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _configuration(configuration: dict[str, Any]) -> tuple[str, str]:
    """(compact JSON, configurationStateMd5Hash) of any configuration (the inventory's)."""
    return json.dumps(configuration, separators=(",", ":")), _md5(json.dumps(configuration, sort_keys=True))


# The snapshot's JSON is json.dumps' (ensure_ascii): strings are encoded by its own function.
_s = json.encoder.encode_basestring_ascii
_EMPTY = _configuration({})


def snapshot(world: Any, account_id: str, region: str, day: dt.date, prefix: str) -> tuple[str, bytes] | None:
    """(key, gzip'd body) of the account's and region's snapshot for ``day``; None if Config records nothing.

    :param world: the running world (compliance and inventory models).
    :param prefix: the delivery channel's s3KeyPrefix.
    """
    from moto.config.models import config_backends

    compliance = world.compliance
    rules = compliance.active_rules(account_id, region)
    if not rules:
        return None
    seed = world.settings.seed
    moto_rules = config_backends[account_id][region].config_rules
    midnight = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)
    # Delivered once a day, after the day's evaluations (which all fall in the first five hours).
    delivered = midnight + dt.timedelta(hours=6, seconds=det.integer(0, 3 * 3600, seed, "snap", account_id, region))
    evaluated = []
    for rule_name, spec in sorted(rules.items()):
        rule = moto_rules.get(rule_name)
        evaluated.append((rule_name, getattr(rule, "config_rule_arn", ""), getattr(rule, "config_rule_id", ""),
                          spec["resource_type"], compliance.rows(account_id, region, rule_name, spec, day)))
    snapshot_id = _uuid(seed, "config-snapshot", account_id, region, day.isoformat())
    data = body(account_id, region, day, snapshot_id, evaluated, world.inventory.config_items(account_id, region, day))
    # zlib's default level (6) rather than gzip.compress's 9: a third faster, ~5% larger; still gzip'd JSON.
    return (object_key(prefix, account_id, region, delivered, snapshot_id),
            gzip.compress(data.encode("utf-8"), compresslevel=6, mtime=0))


def body(account_id: str, region: str, day: dt.date, snapshot_id: str,
         evaluated: list[tuple[str, str, str, str, list[tuple]]], inventory: list[dict[str, Any]]) -> str:
    """The snapshot's JSON text, as ``json.dumps(snapshot, separators=(",", ":"))`` of the documented structure.

    :param evaluated: (rule name, rule ARN, rule id, resource type, evaluation rows as ComplianceModel.rows), by
        rule name.
    :param inventory: the account's and region's ``AWS::SSM::ManagedInstanceInventory`` items (ssm/models.py).
    """
    # Per rule, the JSON of its configRuleList entry around the compliance type: in the item's key order (compact,
    # as the snapshot body) and sorted (json.dumps(sort_keys=True), hashed for configurationStateMd5Hash).
    per_resource: dict[tuple[str, str], list[tuple[str, tuple[str, str]]]] = {}
    for rule_name, arn, rule_id, rtype, rows in evaluated:
        entry = (f'{{"configRuleName":{json.dumps(rule_name)},"configRuleArn":{json.dumps(arn)},'
                 f'"configRuleId":{json.dumps(rule_id)},"complianceType":',
                 f', "configRuleArn": {json.dumps(arn)}, "configRuleId": {json.dumps(rule_id)}, '
                 f'"configRuleName": {json.dumps(rule_name)}}}')
        for rid, compliance_type, _, _ in rows:
            per_resource.setdefault((rtype, rid), []).append((compliance_type, entry))
    items = []
    compliance_captured = f"{day.isoformat()}T05:00:00.000Z"  # midnight + 5 h: after the day's evaluations
    resource_captured = f"{day.isoformat()}T00:00:00.000Z"
    for (rtype, rid), results in sorted(per_resource.items()):
        if not rtype.startswith("AWS::::"):
            items.append(_item(account_id, region, rtype, rid, resource_captured, _EMPTY))
        overall = min((r[0] for r in results), key=_ORDER.index)
        compliance_id = f"{rtype}/{rid}"
        # {"configRuleList": [...], "complianceType", "resourceId", "resourceType"} and its sorted form.
        rule_list = ",".join(f'{entry[0]}"{ctype}"}}' for ctype, entry in results)
        sorted_list = ", ".join(f'{{"complianceType": "{ctype}"{entry[1]}' for ctype, entry in results)
        tail_id, tail_type = _s(rid), _s(rtype)
        configuration = (
            f'{{"configRuleList":[{rule_list}],"complianceType":"{overall}","resourceId":{tail_id},'
            f'"resourceType":{tail_type}}}',
            _md5(f'{{"complianceType": "{overall}", "configRuleList": [{sorted_list}], "resourceId": {tail_id}, '
                 f'"resourceType": {tail_type}}}'),
        )
        items.append(_item(account_id, region, RESOURCE_COMPLIANCE, compliance_id, compliance_captured, configuration,
                           arn=f"arn:aws:config:{region}:{account_id}:resource-compliance/{compliance_id}"))
    for inv in inventory:
        # Config's capture time format (milliseconds) from the inventory's (seconds): 2026-03-18T04:05:06Z.
        captured = dt.datetime.strptime(inv["configurationItemCaptureTime"], "%Y-%m-%dT%H:%M:%SZ")
        items.append(_item(account_id, region, inv["resourceType"], inv["resourceId"],
                           captured.strftime("%Y-%m-%dT%H:%M:%S.000Z"), _configuration(inv["configuration"]),
                           arn=f"arn:aws:ssm:{region}:{account_id}:managed-instance-inventory/{inv['resourceId']}"))
    return f'{{"fileVersion":"1.0","configSnapshotId":{_s(snapshot_id)},"configurationItems":[{",".join(items)}]}}'

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


def _item(account_id: str, region: str, resource_type: str, resource_id: str, captured: dt.datetime,
          configuration: dict[str, Any], *, name: str | None = None, arn: str | None = None,
          state_id: int = 1) -> dict[str, Any]:
    body = json.dumps(configuration, sort_keys=True)
    return {
        "relatedEvents": [], "relationships": [], "configuration": configuration, "supplementaryConfiguration": {},
        "tags": {}, "configurationItemVersion": ITEM_VERSION,
        "configurationItemCaptureTime": captured.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "configurationStateId": state_id, "awsAccountId": account_id, "configurationItemStatus": "OK",
        "resourceType": resource_type, "resourceId": resource_id, "resourceName": name or resource_id,
        "ARN": arn or _arn(resource_type, resource_id, account_id, region), "awsRegion": region,
        "availabilityZone": "Not Applicable",
        "configurationStateMd5Hash": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
    }


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
    per_resource: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rule_name, spec in sorted(rules.items()):
        rule = moto_rules.get(rule_name)
        arn, rule_id = getattr(rule, "config_rule_arn", ""), getattr(rule, "config_rule_id", "")
        rtype = spec["resource_type"]
        for rid, compliance_type, _, _ in compliance.rows(account_id, region, rule_name, spec, day):
            per_resource.setdefault((rtype, rid), []).append({
                "configRuleName": rule_name, "configRuleArn": arn, "configRuleId": rule_id,
                "complianceType": compliance_type,
            })
    items = []
    for (rtype, rid), results in sorted(per_resource.items()):
        if not rtype.startswith("AWS::::"):
            items.append(_item(account_id, region, rtype, rid, midnight, {}))
        overall = min((r["complianceType"] for r in results), key=_ORDER.index)
        compliance_id = f"{rtype}/{rid}"
        items.append(_item(account_id, region, RESOURCE_COMPLIANCE, compliance_id, midnight + dt.timedelta(hours=5),
                           {"configRuleList": results, "complianceType": overall, "resourceId": rid,
                            "resourceType": rtype},
                           arn=f"arn:aws:config:{region}:{account_id}:resource-compliance/{compliance_id}"))
    for inv in world.inventory.config_items(account_id, region, day):
        captured = dt.datetime.strptime(inv["configurationItemCaptureTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=dt.UTC)
        items.append(_item(account_id, region, inv["resourceType"], inv["resourceId"], captured,
                           inv["configuration"],
                           arn=f"arn:aws:ssm:{region}:{account_id}:managed-instance-inventory/{inv['resourceId']}"))
    snapshot_id = _uuid(seed, "config-snapshot", account_id, region, day.isoformat())
    body = {"fileVersion": "1.0", "configSnapshotId": snapshot_id, "configurationItems": items}
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    return object_key(prefix, account_id, region, delivered, snapshot_id), gzip.compress(data, mtime=0)

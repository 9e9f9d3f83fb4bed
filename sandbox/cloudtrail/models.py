"""Who changed what, and when: the configuration changes behind AWS Config's compliance stretches.

A Config-evaluated resource (config/models.py) keeps its compliance for a stretch of days; every stretch starts
with a configuration change (the evening before), so a NON_COMPLIANT resource's last change is the start of its
current stretch. Each change is one configuration item in the resource's history (GetResourceConfigHistory) and one
write event in CloudTrail (LookupEvents) by a principal, from a source IP, a few minutes earlier, followed by a
read-only event of the governance read role (noise a caller must skip). All of it is a pure function of
(seed, account, region, rule, resource index, day). Account-level resources (``AWS::::Account``) have no history,
as in AWS Config.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from .. import det
from ..paging import checked_limit, page
from .exceptions import (
    InvalidLookupAttributesException,
    InvalidMaxResultsException,
    InvalidTimeRangeException,
    ResourceNotDiscoveredException,
)

RESOURCES = Path(__file__).resolve().parent / "resources"
LOOKUP_KEYS = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource",
               "AccessKeyId")
EPOCH = dt.date(1970, 1, 1)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)


def _aware(value: Any) -> dt.datetime | None:
    """A request timestamp (datetime, epoch seconds or ISO string) as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    try:
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    except (TypeError, ValueError):
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class ChangeModel:
    """Configuration changes of Config-evaluated resources, as history items and CloudTrail events.

    :param world: the running world.
    """

    def __init__(self, world: Any) -> None:
        self.world = world
        self.data = json.loads((RESOURCES / "events.json").read_text(encoding="utf-8"))

    # --- resources and their changes ------------------------------------------------------------------------------
    def resources(self, account_id: str, region: str) -> dict[tuple[str, str], tuple]:
        """{(resource type, resource id): stretch key} of the account's evaluated resources with a history."""
        compliance = self.world.compliance
        seed = self.world.settings.seed
        out: dict[tuple[str, str], tuple] = {}
        for _, spec in sorted(compliance.active_rules(account_id, region).items()):
            if spec["resource_type"] not in self.data["write_events"]:
                continue
            n = det.integer(spec["resources"][0], spec["resources"][1], seed, "n", account_id, region, spec["name"])
            for j, rid in enumerate(compliance._resource_ids(account_id, region, spec, n)[:n]):
                out.setdefault((spec["resource_type"], rid), (seed, account_id, region, spec["name"], j))
        return out

    def change_days(self, key: tuple, first: dt.date, last: dt.date) -> list[dt.date]:
        """Days in first..last on which a new compliance stretch of the resource starts (same rule as config)."""
        length = det.integer(2, 6, *key, "len")
        offset = det.integer(0, length - 1, *key, "off")
        out, day = [], first
        while day <= last:
            if ((day - EPOCH).days + offset) % length == 0:
                out.append(day)
            day += dt.timedelta(days=1)
        return out

    def change(self, key: tuple, resource_type: str, resource_id: str, day: dt.date) -> dict[str, Any]:
        """The change that starts the stretch of ``day``: capture time, principal, event, source IP."""
        account_id, region = key[1], key[2]
        captured = _midnight(day) - dt.timedelta(seconds=det.integer(600, 6 * 3600, *key, "chg", day))
        event_time = captured - dt.timedelta(seconds=det.integer(5, 300, *key, "lag", day))
        principal = det.pick(self.data["principals"], *key, "who", day)
        spec = self.data["write_events"][resource_type]
        return {
            "account_id": account_id, "region": region, "resource_type": resource_type, "resource_id": resource_id,
            "captured_at": captured, "event_time": event_time,
            "event_id": _uuid(det.hexid(32, *key, "event", day)),
            "event_name": det.pick(spec["names"], *key, "what", day), "event_source": spec["source"],
            "request_key": spec.get("request_key", "resourceId"),
            "user_name": principal["user_name"], "principal_arn": principal["arn"].format(account=account_id),
            "principal_type": principal["type"], "access_key": principal["access_key"],
            "source_ip": det.pick(principal["ips"], *key, "ip", day),
            "state_id": str(det.integer(10**12, 10**13 - 1, *key, "state", day)),
        }

    def _reader_event(self, change: dict[str, Any], key: tuple, day: dt.date) -> dict[str, Any]:
        reader = self.data["reader"]
        spec = self.data["write_events"][change["resource_type"]]
        return {
            **change, "event_time": change["captured_at"] + dt.timedelta(seconds=det.integer(30, 600, *key, "r", day)),
            "event_id": _uuid(det.hexid(32, *key, "read", day)), "event_name": spec["read"], "read_only": True,
            "user_name": reader["user_name"], "principal_arn": reader["arn"].format(account=change["account_id"]),
            "principal_type": reader["type"], "access_key": reader["access_key"], "source_ip": reader["ips"][0],
        }

    def _window(self, today: dt.date) -> tuple[dt.date, dt.date]:
        return today - dt.timedelta(days=int(self.data["lookback_days"])), today

    # --- AWS Config: GetResourceConfigHistory -----------------------------------------------------------------------
    def config_history(self, account_id: str, region: str, today: dt.date, resource_type: str, resource_id: str,
                       later: Any, earlier: Any, chronological: str | None, limit: Any,
                       next_token: str | None) -> dict[str, Any]:
        """GetResourceConfigHistory: one configuration item per change, newest first unless Forward."""
        key = self.resources(account_id, region).get((resource_type, resource_id))
        if key is None:
            raise ResourceNotDiscoveredException(resource_type, resource_id)
        size = checked_limit(limit, int(self.data["history_page_default"]), 100)
        later_t, earlier_t = _aware(later), _aware(earlier)
        first, last = self._window(today)
        changes = [self.change(key, resource_type, resource_id, d) for d in self.change_days(key, first, last)]
        changes = [c for c in changes if (later_t is None or c["captured_at"] <= later_t)
                   and (earlier_t is None or c["captured_at"] >= earlier_t)]
        changes.sort(key=lambda c: c["captured_at"], reverse=chronological != "Forward")
        items = [_configuration_item(c) for c in changes]
        query = ["history", account_id, region, resource_type, resource_id, str(later_t), str(earlier_t),
                 chronological]
        found, token = page(items, next_token, size, query)
        return {"configurationItems": found, **({"nextToken": token} if token else {})}

    # --- CloudTrail: LookupEvents -----------------------------------------------------------------------------------
    def lookup_events(self, account_id: str, region: str, today: dt.date, attributes: list[dict] | None,
                      start: Any, end: Any, max_results: Any, next_token: str | None) -> dict[str, Any]:
        """LookupEvents: the account's and region's change events (and their read-only followers), newest first."""
        attributes = attributes or []
        if len(attributes) > 1:
            raise InvalidLookupAttributesException("You can only specify one lookup attribute.")
        for attr in attributes:
            if attr.get("AttributeKey") not in LOOKUP_KEYS:
                raise InvalidLookupAttributesException(f"Invalid attribute key: {attr.get('AttributeKey')}")
        start_t, end_t = _aware(start), _aware(end)
        if start_t and end_t and start_t > end_t:
            raise InvalidTimeRangeException()
        try:
            size = checked_limit(max_results, int(self.data["lookup_page_default"]), 50, InvalidMaxResultsException)
        except (TypeError, ValueError):
            raise InvalidMaxResultsException("MaxResults must be a number between 1 and 50.") from None
        first, last = self._window(today)
        # Changes land the evening before their stretch day: look one day beyond the window asked for.
        if start_t:
            first = max(first, start_t.date())
        if end_t:
            last = min(last, end_t.date() + dt.timedelta(days=1))
        wanted = attributes[0] if attributes else None
        events = []
        for (rtype, rid), key in self.resources(account_id, region).items():
            if wanted and wanted["AttributeKey"] == "ResourceName" and wanted.get("AttributeValue") != rid:
                continue
            for day in self.change_days(key, first, last):
                change = {**self.change(key, rtype, rid, day), "read_only": False}
                for event in (change, self._reader_event(change, key, day)):
                    if (start_t and event["event_time"] < start_t) or (end_t and event["event_time"] > end_t):
                        continue
                    if wanted and not _matches(event, wanted):
                        continue
                    events.append(event)
        events.sort(key=lambda e: (e["event_time"], e["event_id"]), reverse=True)
        rendered = [_event(e) for e in events]
        query = ["lookup", account_id, region, attributes, str(start_t), str(end_t)]
        found, token = page(rendered, next_token, size, query)
        return {"Events": found, **({"NextToken": token} if token else {})}

    def events_on(self, account_id: str, region: str, day: dt.date) -> list[dict[str, Any]]:
        """Every change event (and its read-only follower) of the account and region whose time falls on ``day``,
        oldest first: what the trail delivers for that day."""
        events = []
        for (rtype, rid), key in self.resources(account_id, region).items():
            # A change of day D happens the evening before: look at D and D+1.
            for change_day in self.change_days(key, day, day + dt.timedelta(days=1)):
                change = {**self.change(key, rtype, rid, change_day), "read_only": False}
                for event in (change, self._reader_event(change, key, change_day)):
                    if event["event_time"].date() == day:
                        events.append(event)
        events.sort(key=lambda e: (e["event_time"], e["event_id"]))
        return events

    # --- truth ------------------------------------------------------------------------------------------------------
    def truth(self, date: dt.date, accounts: list[str] | None = None) -> dict[str, Any]:
        """{account: {region: {"<type>/<id>": last change}}} of every NON_COMPLIANT resource with a history on
        ``date``: what the product should show next to the report's items."""
        out: dict[str, Any] = {}
        compliance = self.world.compliance
        candidates = [self.world.settings.management_account_id, *self.world.member_ids()]
        for acct in candidates:
            if accounts is not None and acct not in accounts:
                continue
            for region in self.world.settings.regions:
                index = self.resources(acct, region)
                for rule_name, spec in sorted(compliance.active_rules(acct, region).items()):
                    rtype = spec["resource_type"]
                    for rid, compliance_type, _, _ in compliance.rows(acct, region, rule_name, spec, date):
                        key = index.get((rtype, rid))
                        if compliance_type != "NON_COMPLIANT" or key is None:
                            continue
                        days = self.change_days(key, date - dt.timedelta(days=7), date)
                        change = self.change(key, rtype, rid, days[-1])
                        out.setdefault(acct, {}).setdefault(region, {})[f"{rtype}/{rid}"] = {
                            k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in change.items()}
        return out


def _uuid(hexstr: str) -> str:
    return f"{hexstr[:8]}-{hexstr[8:12]}-{hexstr[12:16]}-{hexstr[16:20]}-{hexstr[20:32]}"


def _matches(event: dict[str, Any], attr: dict[str, Any]) -> bool:
    value = attr.get("AttributeValue")
    field = {"EventId": event["event_id"], "EventName": event["event_name"],
             "ReadOnly": "true" if event["read_only"] else "false", "Username": event["user_name"],
             "ResourceType": event["resource_type"], "ResourceName": event["resource_id"],
             "EventSource": event["event_source"], "AccessKeyId": event["access_key"]}[attr["AttributeKey"]]
    return field == value


def record(e: dict[str, Any]) -> dict[str, Any]:
    """The CloudTrail record of one change event (as in LookupEvents' CloudTrailEvent and in the log files)."""
    identity: dict[str, Any] = {"type": e["principal_type"], "arn": e["principal_arn"], "accountId": e["account_id"],
                                "accessKeyId": e["access_key"], "principalId": f"AIDA{det.hexid(12, e['user_name'])}"}
    if e["principal_type"] == "IAMUser":
        identity["userName"] = e["user_name"]
    else:
        role_arn = e["principal_arn"].replace(":sts::", ":iam::").replace(":assumed-role/", ":role/").rsplit("/", 1)[0]
        identity["sessionContext"] = {"sessionIssuer": {"type": "Role", "arn": role_arn}}
    return {
        "eventVersion": "1.09", "userIdentity": identity, "eventTime": e["event_time"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": e["event_source"], "eventName": e["event_name"], "awsRegion": e["region"],
        "sourceIPAddress": e["source_ip"], "userAgent": "aws-cli/2.15.0", "readOnly": e["read_only"],
        "eventID": e["event_id"], "eventType": "AwsApiCall", "recipientAccountId": e["account_id"],
        # The member naming the resource differs per API, as in AWS (bucketName, groupId, instanceId...): a reader
        # must match the resource by value, not by one key.
        "requestParameters": {e.get("request_key") or "resourceId": e["resource_id"]},
    }


def _event(e: dict[str, Any]) -> dict[str, Any]:
    """One LookupEvents item, with the CloudTrail record as a JSON string (as AWS returns it)."""
    return {
        "EventId": e["event_id"], "EventName": e["event_name"], "ReadOnly": "true" if e["read_only"] else "false",
        "AccessKeyId": e["access_key"], "EventTime": e["event_time"], "EventSource": e["event_source"],
        "Username": e["user_name"],
        "Resources": [{"ResourceType": e["resource_type"], "ResourceName": e["resource_id"]}],
        "CloudTrailEvent": json.dumps(record(e)),
    }


def _configuration_item(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1.3", "accountId": c["account_id"], "configurationItemCaptureTime": c["captured_at"],
        "configurationItemStatus": "OK", "configurationStateId": c["state_id"],
        "configurationItemMD5Hash": "", "resourceType": c["resource_type"], "resourceId": c["resource_id"],
        "resourceName": c["resource_id"], "awsRegion": c["region"], "availabilityZone": "Not Applicable",
        "tags": {}, "relatedEvents": [c["event_id"]], "relationships": [],
        "configuration": json.dumps({"changedBy": c["event_name"]}), "supplementaryConfiguration": {},
    }

"""When a non-compliant resource last changed, and who changed it: shown next to the weekly report's Config items.

For the report's best-ranked open Config findings (``report.change_history.max_items``, in the report's own order):

1. **when**: AWS Config's resource history in the account and region (``GetResourceConfigHistory`` through the read
   role, one call): the newest configuration item recorded before the evaluation the report shows
   (``config_findings.recorded_at``), i.e. the change the rule judged.
2. **who**: the CloudTrail records of the same account and region from ``window_minutes`` before that change was
   recorded to 5 minutes after: the write event (``readOnly`` false, no ``errorCode``) closest before it gives the
   principal (``userIdentity.arn``), the event name and the source IP. Read-only events (scanners, this tool's own
   reads) are skipped. The records come first from the trail's log files in the central bucket
   (events/trail_files.py: the admin account's own S3 reads, only the delivery days of the window, bounded; no
   per-account rate limit, unlike ``LookupEvents``' two calls a second), matched by the names and ids CloudTrail
   records for the resource (:func:`mentions`: Config's resourceId, resourceName and ARN found in
   ``requestParameters``, ``responseElements`` or ``resources[].ARN``; an IAM role by its roleName, its AROA... id
   or its ARN). Where the trail delivered no file for the account and region on those days (trail stopped, not yet
   onboarded), CloudTrail's event history answers instead (``LookupEvents`` by resource name, through the read
   role). The row's ``source`` says which (``trail_files`` | ``lookup_events``). IAM's events are read in us-east-1,
   where CloudTrail records them.

Calls are bounded: only the top items are looked up, a rerun for the same report day reuses the day's rows, and a
resource whose last change was already attributed on an earlier day is not looked up in CloudTrail again (the cache
is the ``change_history`` table itself, keyed by finding and change time). AWS errors (a read role refused, a
resource Config does not record) and answers of an unexpected shape (a configuration item without its capture time, a
CloudTrail event that is not JSON: status ``error``) become the row's status; they never fail the report.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess, classify_error, error_code
from include.awsgov.core.store import Store
from include.awsgov.events.trail_files import (
    TrailLocation,
    event_time,
    trail_region,
    window_keys,
    window_records,
)
from include.awsgov.report.views import items, records
from include.awsgov.report.week import NoDataError, report_options, week_for_settings

log = logging.getLogger(__name__)

TABLE = "change_history"
OK, NO_EVENT, NO_HISTORY = "ok", "no_event", "no_history"
UNREADABLE = "error"  # an AWS answer of an unexpected shape
FINAL = (OK, NO_EVENT, NO_HISTORY)  # statuses worth keeping; errors are looked up again next time
AFTER = dt.timedelta(minutes=5)  # CloudTrail delivers the event before Config records the item; allow clock skew
MAX_EVENT_PAGES = 3
SHOWN = ("status", "changed_at", "principal", "user_name", "event_name", "event_time", "source_ip", "source")
TRAIL_FILES, LOOKUP_EVENTS = "trail_files", "lookup_events"  # the row's source
ATTRIBUTION = ("status", "principal", "user_name", "event_name", "event_time", "source_ip", "event_id", "source")
_ARN_RESOURCE_SPLIT = re.compile(r"[/:]")
# Types whose resourceName is not unique in an account and region (a security group's name is unique per VPC only,
# and every VPC has one named "default"): matched by id and ARN only.
NAME_NOT_UNIQUE = frozenset({"AWS::EC2::SecurityGroup"})


def candidates(findings: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The report's top open, counted Config findings, in the report's order (rank, severity, id).

    :param findings: ``WeekData.findings``.
    :param limit: at most this many.
    """
    config = findings[(findings["source"] == "config") & findings["counted"]]
    top = [r["finding_id"] for r in items(records(config), limit)]
    return config.set_index("finding_id").loc[top].reset_index()


def _write_event(events: list[dict[str, Any]], changed_at: dt.datetime) -> dict[str, Any] | None:
    """The write event closest before the change (or just after it, within the skew allowance)."""
    writes = [e for e in events if str(e.get("ReadOnly", "")).lower() != "true"]
    before = [e for e in writes if e["EventTime"] <= changed_at + AFTER]
    pool = before or writes
    if not pool:
        return None
    return min(pool, key=lambda e: (abs((changed_at - e["EventTime"]).total_seconds()), e.get("EventId", "")))


def identifiers(item: Mapping[str, Any], resource_id: str) -> frozenset[str]:
    """The names and ids CloudTrail may record for a resource, from its configuration item: resourceId, resourceName
    and ARN (an IAM role: AROA... id, role name, role ARN; an RDS instance: db-... id, its identifier, ARN); a
    security group by id and ARN only (:data:`NAME_NOT_UNIQUE`).

    :param item: the configuration item (``GetResourceConfigHistory``).
    :param resource_id: the finding's resource id.
    """
    name = None if item.get("resourceType") in NAME_NOT_UNIQUE else item.get("resourceName")
    values = (resource_id, item.get("resourceId"), name, item.get("arn"))
    return frozenset(str(v) for v in values if v)


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > 12:  # request parameters nest a few levels; a deeper structure is not a resource reference
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v, depth + 1)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v, depth + 1)


def mentions(record: Mapping[str, Any], names: frozenset[str], resource_type: str) -> bool:
    """Whether a CloudTrail record names the resource: a value of its ``requestParameters`` or ``responseElements``,
    or an ``resources[].ARN``, equal to one of ``names``, or an ARN of the resource's service ending with one (an IAM
    role's ``arn:aws:iam::<account>:role/<path>/<name>``). The principal (``userIdentity``) is never looked at.

    :param names: :func:`identifiers`.
    :param resource_type: e.g. ``AWS::IAM::Role`` (its service, ``iam``, qualifies the ARNs that match by name).
    """
    service = resource_type.split("::")[1].lower() if resource_type.count("::") >= 2 else ""
    arns = [r.get("ARN") for r in record.get("resources") or [] if isinstance(r, Mapping)]
    for value in _strings([record.get("requestParameters"), record.get("responseElements"), arns]):
        if value in names:
            return True
        parts = value.split(":", 5)
        if len(parts) == 6 and parts[0] == "arn" and parts[2] == service and \
                _ARN_RESOURCE_SPLIT.split(parts[5])[-1] in names:
            return True
    return False


def _as_event(record: Mapping[str, Any]) -> dict[str, Any]:
    """A log-file record in the shape of a ``LookupEvents`` item (what :func:`_write_event` and the row read)."""
    identity = record.get("userIdentity") or {}
    arn = str(identity.get("arn") or "")
    return {"ReadOnly": str(record.get("readOnly", "")).lower(), "EventTime": event_time(record),
            "EventId": str(record.get("eventID") or ""), "EventName": str(record.get("eventName") or ""),
            "Username": str(identity.get("userName") or arn.rsplit("/", 1)[-1]), "CloudTrailEvent": record}


def _from_trail_files(trail: TrailLocation, account_id: str, region: str, resource_type: str,
                      names: frozenset[str], start: dt.datetime, end: dt.datetime,
                      row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The write events naming the resource in the window, from the log files; None when the trail delivered no file
    for the account and region on the window's days (the caller asks LookupEvents instead)."""
    keys, delivered, calls = window_keys(trail, account_id, region, start, end)
    row["api_calls"] += calls + len(keys)
    if not delivered:
        return None
    records = window_records(trail, keys, start, end)
    return [_as_event(r) for r in records if not r.get("errorCode") and mentions(r, names, resource_type)]


def lookup(access: AwsAccess, account_id: str, region: str, resource_type: str, resource_id: str,
           evaluated_at: dt.datetime | None, window: dt.timedelta,
           cached: Mapping[tuple[str, Any], Mapping[str, Any]] | None = None,
           finding_id: str = "", trail: TrailLocation | None = None) -> dict[str, Any]:
    """Last change before ``evaluated_at`` and who made it, as a ``change_history`` row (without finding_id).

    :param access: the admin account's access layer (member accounts through the read role).
    :param account_id: the resource's account.
    :param region: its region.
    :param resource_type: e.g. ``AWS::EC2::SecurityGroup``.
    :param resource_id: the resource id.
    :param evaluated_at: when Config recorded the evaluation (None: now).
    :param window: how far before the change to look for its CloudTrail event.
    :param cached: earlier rows by (finding id, changed_at): their attribution is reused.
    :param finding_id: the finding (cache key).
    :param trail: where the trails' log files are (None: LookupEvents only).
    """
    row: dict[str, Any] = {"account_id": account_id, "region": region, "resource_type": resource_type,
                           "resource_id": resource_id, "evaluated_at": evaluated_at, "status": NO_HISTORY,
                           "error": "", "api_calls": 0, "source": ""}
    try:
        account = None if account_id == access.admin_id() else account_id
        config = access.client("config", region, account_id=account)
        if resource_type not in config.meta.service_model.shape_for("ResourceType").enum:
            # Config keeps no configuration history for what its ResourceType enum does not list (account-level
            # evaluations are "AWS::::Account"): GetResourceConfigHistory would refuse the call.
            return row
        kwargs: dict[str, Any] = {"resourceType": resource_type, "resourceId": resource_id, "limit": 1}
        if evaluated_at is not None:
            kwargs["laterTime"] = evaluated_at
        row["api_calls"] += 1
        try:
            found = config.get_resource_config_history(**kwargs).get("configurationItems") or []
        except ClientError as exc:
            if error_code(exc) != "ResourceNotDiscoveredException":
                raise
            found = []
        if not found:
            return row
        item = found[0]
        changed_at = item["configurationItemCaptureTime"].astimezone(dt.UTC)
        row.update(changed_at=changed_at, status=NO_EVENT)
        hit = (cached or {}).get((finding_id, pd.Timestamp(changed_at)))
        if hit is not None and hit.get("status") in (OK, NO_EVENT):
            row.update({k: hit.get(k) for k in ATTRIBUTION})
            return row
        where = trail_region(resource_type, region)
        start, end = changed_at - window, changed_at + AFTER
        events = None
        if trail is not None:
            events = _from_trail_files(trail, account_id, where, resource_type, identifiers(item, resource_id),
                                       start, end, row)
            row["source"] = TRAIL_FILES
        if events is None:
            row["source"] = LOOKUP_EVENTS
            # LookupEvents' ResourceName is the name CloudTrail lists in the event's resources: an IAM resource's
            # name (Config's resourceId is its AROA.../AIDA... id), elsewhere the id (sg-..., i-..., the bucket).
            name = str(item.get("resourceName") or resource_id) if resource_type.startswith("AWS::IAM::") \
                else resource_id
            events = _lookup_events(access.client("cloudtrail", where, account_id=account), name, start, end, row)
        event = _write_event(events, changed_at)
        if event is None:
            return row
        raw = event.get("CloudTrailEvent")
        record = raw if isinstance(raw, Mapping) else json.loads(raw or "{}")
        identity = record.get("userIdentity") or {}
        row.update(status=OK, principal=str(identity.get("arn") or event.get("Username") or ""),
                   user_name=str(event.get("Username") or identity.get("userName") or ""),
                   event_name=str(event.get("EventName") or ""), event_time=event["EventTime"].astimezone(dt.UTC),
                   source_ip=str(record.get("sourceIPAddress") or ""), event_id=str(event.get("EventId") or ""))
    except (ClientError, BotoCoreError) as exc:
        row.update(status=classify_error(exc), error=str(exc).strip().splitlines()[0][:300] if str(exc) else "")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # A configuration item or event of an unexpected shape (a field missing, CloudTrailEvent not JSON): this
        # item's status, never a failed lookup task; not FINAL, so the next report looks it up again.
        row.update(status=UNREADABLE, error=f"unreadable {type(exc).__name__}: {exc}".splitlines()[0][:300])
    return row


def _lookup_events(client: Any, name: str, start: dt.datetime, end: dt.datetime,
                   row: dict[str, Any]) -> list[dict[str, Any]]:
    """``LookupEvents`` by resource name in ``start..end`` (at most MAX_EVENT_PAGES pages), counted in the row."""
    events, token = [], None
    for _ in range(MAX_EVENT_PAGES):
        row["api_calls"] += 1
        page = client.lookup_events(
            LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": name}],
            StartTime=start, EndTime=end, MaxResults=50, **({"NextToken": token} if token else {}))
        events += page.get("Events") or []
        token = page.get("NextToken")
        if not token:
            break
    return events


def lookup_week(access: AwsAccess, store: Store, data: Any, *, max_items: int = 25,
                window_minutes: int = 30, trail: TrailLocation | None = None) -> dict[str, Any]:
    """Look up the top items of a week's report and write them to ``change_history`` (dt = the report's as_of).

    :param access: the admin account's access layer.
    :param store: the history store.
    :param data: the week (``report.build_week``).
    :param max_items: items looked up.
    :param window_minutes: CloudTrail search window before each change.
    :param trail: where the trails' log files are (None: LookupEvents only).
    :returns: counts by status and the AWS calls made.
    """
    day = data.as_of
    top = candidates(data.findings, max_items)
    earlier = store.read(TABLE, None, day, schema=tables.CHANGE_HISTORY)
    today = {r["finding_id"]: r for r in earlier[earlier["dt"] == day.isoformat()].to_dict("records")
             if r["status"] in FINAL}
    cached = {(r["finding_id"], pd.Timestamp(r["changed_at"])): r for r in earlier.to_dict("records")
              if r["status"] in (OK, NO_EVENT) and pd.notna(r["changed_at"])}
    evaluated = store.read("config_findings", day, day, columns=["finding_id", "recorded_at"],
                           schema=tables.CONFIG_FINDINGS)
    recorded = dict(zip(evaluated["finding_id"], evaluated["recorded_at"], strict=True))
    rows, calls, reused = [], 0, 0
    window = dt.timedelta(minutes=window_minutes)
    for item in top.to_dict("records"):
        fid = item["finding_id"]
        if fid in today:
            rows.append({k: today[fid].get(k) for k in tables.CHANGE_HISTORY.names})
            reused += 1
            continue
        at = recorded.get(fid)
        at = None if at is None or pd.isna(at) else pd.Timestamp(at).to_pydatetime()
        row = lookup(access, item["account_id"], item["region"], item["resource_type"], item["resource_id"], at,
                     window, cached, fid, trail)
        calls += row["api_calls"]
        rows.append({"finding_id": fid, **row})
    frame = pd.DataFrame([{c: r.get(c) for c in tables.CHANGE_HISTORY.names} for r in rows],
                         columns=tables.CHANGE_HISTORY.names)
    store.write(TABLE, day, frame, schema=tables.CHANGE_HISTORY, sort_by=["finding_id"])
    statuses = frame["status"].value_counts().to_dict()
    sources = frame.loc[frame["source"].fillna("") != "", "source"].value_counts().to_dict()
    log.info("change history of %s: %d items (%d reused from this day), %d AWS calls, %s, answered by %s", day,
             len(frame), reused, calls, statuses, sources)
    return {"as_of": day.isoformat(), "items": len(frame), "reused": reused, "api_calls": calls,
            "statuses": {str(k): int(v) for k, v in statuses.items()},
            "sources": {str(k): int(v) for k, v in sources.items()}}


def attach(store: Store, data: Any) -> None:
    """Put each finding's looked-up change (or None) in ``data.findings["change"]`` for the report's items.

    :param store: the history store.
    :param data: the week (``report.build_week``), changed in place.
    """
    day = data.as_of
    frame = store.read(TABLE, day, day, schema=tables.CHANGE_HISTORY)
    shown = {}
    for r in frame.to_dict("records"):
        shown[r["finding_id"]] = {k: _plain(r.get(k)) for k in SHOWN}
    data.findings["change"] = [shown.get(fid) for fid in data.findings["finding_id"]]


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")
    return value


def lookup_for_report(access: AwsAccess, store: Store, week: Any, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Build the week as the report does (report_delivery.build_reports) and look up its top items.

    :param access: the admin account's access layer.
    :param store: the history store.
    :param week: ``report.Week``.
    :param cfg: settings (``report``, ``mail``, ``ou_owners``).
    :returns: :func:`lookup_week`'s summary, or ``{"skipped": reason}`` when the week has no data.
    """
    opts = report_options(cfg)
    settings = opts.get("change_history") or {}
    if int(settings.get("max_items", 25)) <= 0:
        return {"skipped": "report.change_history.max_items is 0"}
    try:
        data, _, _ = week_for_settings(store, week, cfg)
    except NoDataError as exc:
        return {"skipped": str(exc)}
    trail = trail_location(access, cfg) if settings.get("trail_files", True) else None
    return lookup_week(access, store, data, max_items=int(settings.get("max_items", 25)),
                       window_minutes=int(settings.get("window_minutes", 30)), trail=trail)


def trail_location(access: AwsAccess, cfg: Mapping[str, Any]) -> TrailLocation:
    """Where the organization's trails deliver: settings ``central.log_bucket``, and events.yaml ``activity``'s
    ``trail_prefix`` and ``organization_trail`` (the organization id then read with ``DescribeOrganization``).

    :param access: the admin account's access layer (owner of the bucket).
    :param cfg: settings.
    """
    from include.awsgov.events.ingest import events_config

    activity = events_config().get("activity") or {}
    bucket = (cfg.get("central") or {}).get("log_bucket", "governance-logs-{admin_account_id}")
    org_id = (access.client("organizations").describe_organization()["Organization"]["Id"]
              if activity.get("organization_trail") else None)
    return TrailLocation(s3=access.client("s3"), bucket=bucket.format(admin_account_id=access.admin_id()),
                         trail_prefix=str(activity.get("trail_prefix") or ""), org_id=org_id)

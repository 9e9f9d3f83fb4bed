"""Event-based monitoring: SQS messages from the central bus -> normalised events, routed, stored once.

Member accounts forward events to the admin account's central bus; its rule delivers each event to two SQS queues
(include/templates/cloudformation/central.yaml): the **events queue** ``queue_name``, which only the DAG reads, and
the **wake queue** ``<queue_name>-wake``, which the governance_events DAG's AssetWatcher watches. A wake message
carries no event (on AWS its body is ``{"wake": "<event id>"}``); the watcher's trigger deletes it and starts a run.
Every run (woken, scheduled sweep, or manual) drains the events queue until it is empty (:func:`drain_and_ingest`):
receive a chunk, store it, then delete it, so nothing leaves SQS before it is stored, and a message whose run fails
comes back and, after ``maxReceiveCount`` receives, goes to the dead-letter queue by the queue's redrive policy.
Each message body is one EventBridge event. Here it is:

- **checked** (:func:`parse_message`): a body larger than ``max_message_bytes``, not a JSON object with the
  EventBridge envelope (id, source, detail-type, account, time, region, detail), or from a source not in
  ``sources`` is *poison*: it is sent to the dead-letter queue with its reason and counted in ``event_rejects``,
  never raised;
- **normalised** (:func:`normalise`): id, source, account, region, time, type, resource, actor, severity, plus a
  few source-specific attributes that the alert rules read;
- **routed** (:func:`route`): the rules of include/config/events.yaml pick what goes to the owner at once
  (events_alerts.py); everything else waits for the weekly report's "events of the week";
- **stored once** (:func:`store_events`): ``events`` is partitioned by the event's day, one new chunk per batch
  and day (nothing stored is rewritten; days compacted every ``COMPACT_EVERY_CHUNKS`` chunks); a redelivered
  message (same event id) is not stored or routed again.

Airflow-free; the DAG only calls :func:`drain_and_ingest`.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from include.awsgov.events import new_accounts

log = logging.getLogger(__name__)

CONFIG_PATH = Path(__file__).resolve().parents[2] / "config" / "events.yaml"
QUEUE_URL_ENV = "AWSGOV_EVENTS_QUEUE_URL"
EVENTS_TABLE = "events"
REJECTS_TABLE = "event_rejects"
CHUNK = "all"
# A day of ``events`` is compacted (store.compact: one read cache) each time its chunk count crosses a multiple of
# this: a run adds one small chunk per day it touched, so the compaction's cost is spread over this many runs.
COMPACT_EVERY_CHUNKS = 48
API_CALL = "AWS API Call via CloudTrail"
SEVERITIES = ("low", "medium", "high")
REASONS = ("oversized", "malformed", "unknown_source")
_ENVELOPE = ("id", "source", "detail-type", "account", "time", "region", "detail")
_ACCOUNT_RE = re.compile(r"\d{12}")  # fullmatch only: "$" would accept a trailing newline
# Everything json.loads may raise on a hostile body: ValueError (bad JSON), RecursionError (deep nesting: the
# C scanner recurses per level), MemoryError, TypeError.
_PARSE_ERRORS = (ValueError, RecursionError, MemoryError, TypeError)
# SQS's own limit for what we forward to the dead-letter queue.
_SQS_MAX_BYTES = 262_144


@lru_cache(maxsize=1)
def events_config() -> dict[str, Any]:
    """include/config/events.yaml."""
    return yaml.safe_load(CONFIG_PATH.read_text())


def watcher_queue_url(cfg: Mapping[str, Any] | None = None) -> str | None:
    """The URL of the wake queue the DAG's AssetWatcher polls, or None (no watcher).

    The events queue's URL comes from env ``AWSGOV_EVENTS_QUEUE_URL``, else ``queue_url``; its wake queue is the same
    URL with ``wake_queue_suffix`` (the central stack names it so).
    """
    cfg = cfg or events_config()
    url = os.environ.get(QUEUE_URL_ENV) or cfg.get("queue_url") or None
    return f"{url}{cfg['wake_queue_suffix']}" if url else None


# --- messages ------------------------------------------------------------------------------------------------------
def wake_count(extras: Iterable[Mapping[str, Any] | None]) -> int:
    """How many wake messages the asset events of a run carry (for the log; nothing else of them is used).

    :param extras: the ``extra`` of each triggering asset event.
    """
    return sum(len(((extra or {}).get("payload") or {}).get("message_batch") or []) for extra in extras)


def drain(sqs: Any, queue_url: str, limit: int, wait_seconds: int = 1,
          visibility_timeout: int = 300, until: float | None = None) -> tuple[list[dict[str, str]], list[dict]]:
    """Receive up to ``limit`` messages (``ReceiveMessage``), without deleting them.

    Receiving stops at the first empty answer (``wait_seconds`` > 0 is long polling, which asks every SQS server, so
    an empty answer means an empty queue, unlike short polling), or after a third of ``visibility_timeout``, so the
    receipt handles are still valid when the caller has stored the messages and deletes them, or at ``until``
    (a ``time.monotonic()`` value).

    :returns: (messages, delete entries for :func:`delete` once they are stored).
    """
    messages: list[dict[str, str]] = []
    handles: list[dict[str, str]] = []
    seen: set[str] = set()
    deadline = time.monotonic() + visibility_timeout / 3
    if until is not None:
        deadline = min(deadline, until)
    while len(messages) < limit and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=min(10, limit - len(messages)),
                                  WaitTimeSeconds=wait_seconds,
                                  VisibilityTimeout=visibility_timeout).get("Messages", [])
        if not got:
            break
        for m in got:
            handles.append({"Id": str(len(handles)), "ReceiptHandle": m["ReceiptHandle"]})
            if m["MessageId"] not in seen:
                seen.add(m["MessageId"])
                messages.append({"MessageId": m["MessageId"], "Body": m.get("Body") or ""})
    return messages, handles


def drain_chunks(sqs: Any, queue_url: str, limit: int, chunk: int, visibility_timeout: int = 300,
                 wait_seconds: int = 1, max_seconds: float | None = None,
                 ) -> Iterator[tuple[list[dict[str, str]], list[dict]]]:
    """:func:`drain` the queue chunk by chunk until it is empty, up to ``limit`` messages in all, receiving for at
    most ``max_seconds`` (None: no bound).

    The caller stores and deletes each chunk before asking for the next, so no receipt handle of a long drain
    expires before its message is deleted.
    """
    left = limit
    until = None if max_seconds is None else time.monotonic() + float(max_seconds)
    while left > 0 and (until is None or time.monotonic() < until):
        messages, handles = drain(sqs, queue_url, min(chunk, left), wait_seconds=wait_seconds,
                                  visibility_timeout=visibility_timeout, until=until)
        if not handles:
            return
        left -= len(messages)
        yield messages, handles


def delete(sqs: Any, queue_url: str, handles: Sequence[Mapping[str, str]]) -> int:
    """Delete received messages (``DeleteMessageBatch``, 10 at a time).

    An entry SQS refuses (an expired receipt handle...) is logged and counted, not raised: its message comes back
    once visible again and is stored once, by its event id.

    :returns: how many entries SQS did not delete.
    """
    failed = 0
    for i in range(0, len(handles), 10):
        response = sqs.delete_message_batch(QueueUrl=queue_url, Entries=list(handles[i:i + 10]))
        for entry in response.get("Failed") or []:
            failed += 1
            log.warning("events: message not deleted (entry %s): %s %s", entry.get("Id"), entry.get("Code"),
                        entry.get("Message", ""))
    return failed


def account_environments(access: Any, account_ids: Iterable[str], workers: int = 8) -> dict[str, str]:
    """Each account's Environment tag ("" when untagged or when its tags cannot be read).

    An account whose tags cannot be read (it left the organization, throttled out, denied) loses only its
    environment, with a warning, never the batch.

    :param access: the admin account's access layer (Organizations).
    :param account_ids: accounts named by the batch.
    """
    from concurrent.futures import ThreadPoolExecutor

    from botocore.exceptions import BotoCoreError, ClientError

    from include.awsgov.core.accounts import ENVIRONMENT_KEYS, account_tags
    from include.awsgov.core.aws import error_code

    def one(account_id: str) -> tuple[str, str]:
        try:
            tags = account_tags(access, [account_id], workers=1).get(account_id, {})
        except (ClientError, BotoCoreError) as exc:
            log.warning("events: cannot read the tags of %s (%s); routed without an environment", account_id,
                        error_code(exc) or exc)
            return account_id, ""
        return account_id, next((v for k, v in sorted(tags.items()) if k.casefold() in ENVIRONMENT_KEYS), "")

    ids = sorted(set(account_ids))
    if not ids:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(ids)))) as pool:
        return dict(pool.map(one, ids))


def decode_body(body: str, max_bytes: int) -> tuple[Any, str | None]:
    """The JSON value of a message body, or why it cannot be had: ("oversized"|"malformed", detail) as the error.

    The size is checked before parsing, and every failure of the parser is caught (a deeply nested body raises
    RecursionError, not ValueError), so no body can crash a batch.

    :param body: the SQS message body.
    :param max_bytes: the largest body (UTF-8 bytes) that is parsed at all.
    :returns: (value, None) or (None, "<reason>: <detail>").
    """
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        return None, f"oversized: {size} bytes > {max_bytes}"
    try:
        return json.loads(body), None
    except _PARSE_ERRORS as exc:
        return None, f"malformed: not JSON: {type(exc).__name__}: {exc}"


def accounts_in(messages: Iterable[Mapping[str, str]], max_bytes: int = 262_144) -> set[str]:
    """Accounts named by the readable messages of a batch (whose tags the routing needs)."""
    out = set()
    for message in messages:
        event, error = decode_body(message.get("Body") or "", max_bytes)
        account = event.get("account") if error is None and isinstance(event, dict) else None
        if isinstance(account, str) and _ACCOUNT_RE.fullmatch(account):
            out.add(account)
    return out


# --- poison ----------------------------------------------------------------------------------------------------------
@dataclass
class Reject:
    """A poison message: why, and enough to find it in the dead-letter queue."""

    message_id: str
    reason: str  # oversized | malformed | unknown_source
    detail: str
    size_bytes: int
    body_sha256: str
    source: str = ""
    body: str = field(default="", repr=False)


def parse_message(message: Mapping[str, str], cfg: Mapping[str, Any]) -> tuple[dict[str, Any] | None, Reject | None]:
    """The EventBridge event in one SQS message, or why it is poison.

    :param message: ``MessageId`` and ``Body``.
    :param cfg: events.yaml.
    """
    body = message.get("Body") or ""
    raw = body.encode("utf-8", "surrogatepass")

    def reject(reason: str, detail: str, source: str = "") -> tuple[None, Reject]:
        return None, Reject(str(message.get("MessageId", "")), reason, detail[:300], len(raw),
                            hashlib.sha256(raw).hexdigest(), source[:256], body)

    event, error = decode_body(body, int(cfg["max_message_bytes"]))
    if error is not None:
        reason, detail = error.split(": ", 1)
        return reject(reason, detail)
    if not isinstance(event, dict):
        return reject("malformed", f"a JSON {type(event).__name__}, not an object")
    missing = [k for k in _ENVELOPE if k not in event]
    source = event.get("source")
    if missing:
        return reject("malformed", "missing " + ", ".join(missing), str(source)[:256])
    if not isinstance(source, str) or not isinstance(event["detail-type"], str):
        return reject("malformed", "source or detail-type is not a string", str(source)[:256])
    if not isinstance(event["id"], str) or not 0 < len(event["id"]) <= 128:
        return reject("malformed", "id is not a string of 1-128 characters", source)
    if not isinstance(event["detail"], dict) or not isinstance(event["account"], str) \
            or not _ACCOUNT_RE.fullmatch(event["account"]):
        return reject("malformed", "detail is not an object or account is not 12 digits", source)
    try:
        _time(event["time"])
    except (TypeError, ValueError, OverflowError):
        return reject("malformed", f"bad time {str(event['time'])[:40]!r}", source)
    if source not in cfg["sources"]:
        return reject("unknown_source", f"source {source[:100]!r} is not known", source)
    return event, None


def _time(value: Any) -> dt.datetime:
    when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError("no time zone")
    return when.astimezone(dt.UTC)


# --- normalisation ------------------------------------------------------------------------------------------------
def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _text(value: Any, limit: int = 512) -> str:
    return "" if value is None else " ".join(str(value).split())[:limit]


def _api_call(d: Mapping[str, Any]) -> dict[str, Any]:
    service = str(d.get("eventSource") or "unknown").split(".", 1)[0]
    params = d.get("requestParameters") or {}
    resource = next((params.get(k) for k in ("userName", "name", "trailName", "groupId", "bucketName", "keyId",
                                               "roleName", "instanceId") if isinstance(params, dict) and params.get(k)),
                     None)
    if resource is None and isinstance(d.get("resources"), list) and d["resources"]:
        resource = _get(d["resources"][0], "ARN")
    return {"type": f"{service}:{d.get('eventName') or 'unknown'}", "resource": resource,
            "actor": _get(d, "userIdentity", "arn") or _get(d, "userIdentity", "principalId"),
            "actor_type": _get(d, "userIdentity", "type"), "severity": "low",
            "attributes": {"error_code": d.get("errorCode") or ""}}


def _signin(d: Mapping[str, Any]) -> dict[str, Any]:
    actor_type = _get(d, "userIdentity", "type") or ""
    mfa = _get(d, "additionalEventData", "MFAUsed") or ""
    result = _get(d, "responseElements", "ConsoleLogin") or ""
    severity = "high" if actor_type == "Root" or (mfa == "No" and result == "Success") else (
        "medium" if result == "Failure" else "low")
    return {"type": f"signin:{d.get('eventName') or 'ConsoleLogin'}", "resource": "console",
            "actor": _get(d, "userIdentity", "arn") or actor_type, "actor_type": actor_type, "severity": severity,
            "attributes": {"mfa_used": mfa, "login_result": result}}


def _guardduty(d: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    try:
        score = float(d.get("severity") or 0)
    except (TypeError, ValueError):
        score = 0.0
    severity = "high" if score >= cfg["guardduty_high"] else "medium" if score >= cfg["guardduty_medium"] else "low"
    res = d.get("resource") if isinstance(d.get("resource"), Mapping) else {}
    buckets = res.get("s3BucketDetails") if isinstance(res.get("s3BucketDetails"), list) else []
    resource = (_get(res, "instanceDetails", "instanceId") or _get(res, "accessKeyDetails", "userName")
                or (_get(buckets[0], "name") if buckets else None) or res.get("resourceType"))
    return {"type": f"guardduty:{d.get('type') or 'Finding'}", "resource": resource, "actor": "",
            "actor_type": "", "severity": severity,
            "attributes": {"finding_id": d.get("id") or "", "guardduty_severity": score, "title": d.get("title")}}


def _config(d: Mapping[str, Any]) -> dict[str, Any]:
    new = _get(d, "newEvaluationResult", "complianceType") or ""
    old = _get(d, "oldEvaluationResult", "complianceType") or ""
    return {"type": "config:ComplianceChange", "resource": f"{d.get('resourceType', '')}/{d.get('resourceId', '')}",
            "actor": "", "actor_type": "", "severity": "medium" if new == "NON_COMPLIANT" else "low",
            "attributes": {"rule": d.get("configRuleName") or "", "new_compliance": new, "old_compliance": old}}


def _trusted_advisor(d: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    name = d.get("check-name") or ""
    status = d.get("status") or ""
    security = name in set(cfg["trusted_advisor_security_checks"])
    severity = ("high" if security else "medium") if status == "ERROR" else "medium" if status == "WARN" else "low"
    return {"type": "trustedadvisor:CheckItemRefresh", "resource": d.get("resource_id") or name, "actor": "",
            "actor_type": "", "severity": severity,
            "attributes": {"check": name, "ta_status": status, "ta_security": security}}


def normalise(event: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """One ``events`` row (before routing) from a checked EventBridge event.

    :param event: the event (see :func:`parse_message`).
    :param cfg: events.yaml.
    """
    d = event["detail"]
    detail_type = str(event["detail-type"])
    source = event["source"]
    if source == "aws.organizations":  # account creations and moves (new_accounts.py): API calls and service events
        parts = new_accounts.normalise_detail(detail_type, d)
    elif detail_type == API_CALL:
        parts = _api_call(d)
    elif source == "aws.signin":
        parts = _signin(d)
    elif source == "aws.guardduty":
        parts = _guardduty(d, cfg)
    elif source == "aws.config":
        parts = _config(d)
    elif source == "aws.trustedadvisor":
        parts = _trusted_advisor(d, cfg)
    else:  # a known source with an event kind we do not interpret: kept, typed by its detail-type
        parts = {"type": f"{source.removeprefix('aws.')}:{detail_type}", "resource": None, "actor": "",
                 "actor_type": "", "severity": "low", "attributes": {}}
    resource = parts["resource"] or (event.get("resources") or [None])[0]
    return {
        "event_id": _text(event["id"], 128),
        "source": source,
        "detail_type": _text(detail_type, 128),
        "type": _text(parts["type"], 256),
        "account_id": str(event["account"]),
        "region": _text(event["region"], 32),
        "time": _time(event["time"]),
        "resource": _text(resource),
        "actor": _text(parts["actor"]),
        "actor_type": _text(parts["actor_type"], 64),
        "severity": parts["severity"],
        "attributes": parts["attributes"],
    }


# --- routing ------------------------------------------------------------------------------------------------------
def _matches(expected: Any, actual: Any) -> bool:
    options = expected if isinstance(expected, list) else [expected]
    for option in options:
        if isinstance(option, bool) or isinstance(actual, bool):
            if option == actual:
                return True
        elif isinstance(option, str) and any(c in option for c in "*?["):
            if fnmatch.fnmatchcase(str(actual), option):
                return True
        elif str(option) == str(actual):
            return True
    return False


def route(record: Mapping[str, Any], *, admin_account_id: str, environment: str,
          rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The alert rules an event matches (empty: it goes to the weekly report).

    :param record: a :func:`normalise` row.
    :param admin_account_id: the admin account (IAM users are allowed there only).
    :param environment: the account's Environment tag ("" if unknown).
    :param rules: events.yaml ``alerts.rules``.
    """
    fields = {**record["attributes"], **{k: v for k, v in record.items() if k != "attributes"},
              "is_admin_account": record["account_id"] == admin_account_id, "environment": environment}
    matched = []
    for rule in rules:
        ok = True
        for key, expected in rule["match"].items():
            negate = key.endswith("_not")
            actual = fields.get(key[:-4] if negate else key, "")
            if _matches(expected, actual) == negate:
                ok = False
                break
        if ok:
            matched.append(rule)
    return matched


def process(messages: Sequence[Mapping[str, str]], *, admin_account_id: str, environments: Mapping[str, str],
            cfg: Mapping[str, Any], received_at: dt.datetime) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Check, normalise and route a batch: (``events`` rows, poison messages).

    :param messages: SQS messages (MessageId, Body).
    :param admin_account_id: the admin account.
    :param environments: account id -> Environment tag.
    :param cfg: events.yaml.
    :param received_at: when the run received them.
    """
    rows: dict[str, dict[str, Any]] = {}
    rejects: list[Reject] = []
    rules = cfg["alerts"]["rules"]
    for message in messages:
        event, reject = parse_message(message, cfg)
        if reject is not None:
            rejects.append(reject)
            continue
        try:
            record = normalise(event, cfg)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError, OverflowError) as exc:
            # A known source whose detail is not shaped as documented: poison too, never a crashed run.
            raw = (message.get("Body") or "").encode("utf-8", "surrogatepass")
            rejects.append(Reject(str(message.get("MessageId", "")), "malformed",
                                  f"cannot normalise: {type(exc).__name__}: {exc}"[:300], len(raw),
                                  hashlib.sha256(raw).hexdigest(), str(event["source"])[:256],
                                  message.get("Body") or ""))
            continue
        if record["event_id"] in rows:
            continue  # the same event twice in one batch
        matched = route(record, admin_account_id=admin_account_id,
                        environment=environments.get(record["account_id"], ""), rules=rules)
        severity = max([record["severity"], *(r["severity"] for r in matched)], key=SEVERITIES.index)
        attributes = record.pop("attributes")
        record.update({
            "severity": severity,
            "route": "alert" if matched else "report",
            "alert_rules": ",".join(r["id"] for r in matched),
            "attributes_json": json.dumps(attributes, sort_keys=True, default=str),
            "message_id": str(message.get("MessageId", "")),
            "received_at": received_at,
        })
        rows[record["event_id"]] = record
    return list(rows.values()), rejects


# --- store ----------------------------------------------------------------------------------------------------------
def batch_chunk(received_at: dt.datetime, keys: Iterable[str]) -> str:
    """Chunk name of one batch's rows: when it was received and a hash of what it holds (sorts by time)."""
    digest = hashlib.sha256("\x1f".join(sorted(keys)).encode("utf-8")).hexdigest()[:12]
    return f"b{received_at.astimezone(dt.UTC):%Y%m%dT%H%M%S%f}-{digest}"


def store_events(store: Any, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Add a batch's new rows to ``events`` as one chunk per day (partition = the event's UTC day); return them.

    Nothing stored before is rewritten: the day's event ids are read (one column) to drop redelivered events, and
    the rest is written as a new chunk named by :func:`batch_chunk`. A day is compacted when its chunk count crosses
    a multiple of :data:`COMPACT_EVERY_CHUNKS`.

    :param store: the history store.
    :param rows: :func:`process` rows.
    """
    import pandas as pd

    from include.awsgov.core import tables

    fresh: list[dict[str, Any]] = []
    by_day: dict[dt.date, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_day.setdefault(row["time"].date(), []).append(row)
    for day, part in sorted(by_day.items()):
        known = set(store.read(EVENTS_TABLE, day, day, columns=["event_id"], schema=tables.EVENTS)["event_id"])
        new = [dict(r) for r in part if r["event_id"] not in known]
        if not new:
            continue
        frame = pd.DataFrame(new, columns=tables.EVENTS.names)
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True)
        before = len(store.chunks(EVENTS_TABLE, day))
        store.write(EVENTS_TABLE, day, frame, chunk=batch_chunk(new[0]["received_at"], (r["event_id"] for r in new)),
                    schema=tables.EVENTS, sort_by=["time", "event_id"])
        if (before + 1) // COMPACT_EVERY_CHUNKS > before // COMPACT_EVERY_CHUNKS:
            store.compact(EVENTS_TABLE, day)
        fresh.extend(new)
    return fresh


def store_rejects(store: Any, rejects: Sequence[Reject], received_at: dt.datetime) -> int:
    """Count poison messages in ``event_rejects`` (partition = the day received, one row per message id), as one
    new chunk per batch (nothing stored before is rewritten).

    :returns: how many were not recorded before.
    """
    import pandas as pd

    from include.awsgov.core import tables

    if not rejects:
        return 0
    day = received_at.date()
    known = set(store.read(REJECTS_TABLE, day, day, columns=["message_id"], schema=tables.EVENT_REJECTS)["message_id"])
    new = [{"message_id": r.message_id, "reason": r.reason, "detail": r.detail, "size_bytes": r.size_bytes,
            "body_sha256": r.body_sha256, "source": r.source, "received_at": received_at}
           for r in rejects if r.message_id not in known]
    if new:
        frame = pd.DataFrame(new)
        frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True)
        store.write(REJECTS_TABLE, day, frame, chunk=batch_chunk(received_at, (r["message_id"] for r in new)),
                    schema=tables.EVENT_REJECTS, sort_by=["received_at", "message_id"])
    return len(new)


def dead_letter(sqs: Any, dlq_url: str, rejects: Sequence[Reject]) -> int:
    """Send poison messages to the dead-letter queue (``SendMessage``) with their reason as message attributes.

    A body over SQS's limit is cut (attribute ``truncated``); the full size and hash are in ``event_rejects``.
    """
    for r in rejects:
        body = r.body.encode("utf-8", "surrogatepass")[: _SQS_MAX_BYTES - 4096].decode("utf-8", "ignore") or "-"
        attributes = {
            "reason": {"DataType": "String", "StringValue": r.reason},
            "original_message_id": {"DataType": "String", "StringValue": r.message_id or "-"},
            "truncated": {"DataType": "String", "StringValue": str(len(body.encode()) < r.size_bytes).lower()},
        }
        sqs.send_message(QueueUrl=dlq_url, MessageBody=body, MessageAttributes=attributes)
    return len(rejects)


def summarise(rows: Sequence[Mapping[str, Any]], fresh: Sequence[Mapping[str, Any]], rejects: Sequence[Reject],
              received: int) -> dict[str, Any]:
    """XCom-sized summary of a batch: counts, alert event ids, the days and hours touched."""
    return {
        "received": received,
        "stored": len(fresh),
        "duplicates": len(rows) - len(fresh),
        "rejected": {reason: sum(1 for r in rejects if r.reason == reason) for reason in REASONS},
        "alert_event_ids": sorted(r["event_id"] for r in fresh if r["route"] == "alert"),
        "days": sorted({r["time"].date().isoformat() for r in fresh}),
        "hours": sorted({r["time"].replace(minute=0, second=0, microsecond=0).isoformat() for r in fresh
                         if r["detail_type"] == API_CALL}),
    }


# --- a run's batch --------------------------------------------------------------------------------------------------
def ingest(access: Any, store: Any, messages: Sequence[Mapping[str, str]], cfg: Mapping[str, Any],
           received_at: dt.datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Reject]]:
    """Route and store a batch: poison to the dead-letter queue and ``event_rejects``, the rest to ``events``.

    IAM users are allowed only in the admin account, the account whose credentials the run holds (the management
    account or a delegated administrator), as collection and onboarding define it.

    :param access: the admin account's access layer (STS, Organizations tags, SQS).
    :param store: the history store.
    :param messages: SQS messages (MessageId, Body).
    :param cfg: events.yaml.
    :param received_at: when the run received them.
    :returns: (rows of the batch, rows not stored before, poison messages).
    """
    environments = account_environments(access, accounts_in(messages, int(cfg["max_message_bytes"])))
    rows, rejects = process(messages, admin_account_id=access.admin_id(), environments=environments, cfg=cfg,
                            received_at=received_at)
    if rejects:
        sqs = access.client("sqs")
        dead_letter(sqs, sqs.get_queue_url(QueueName=f"{cfg['queue_name']}-dlq")["QueueUrl"], rejects)
        store_rejects(store, rejects, received_at)
    return rows, store_events(store, rows), rejects


class QueueMissing(LookupError):
    """The events queue does not exist (yet): the central stack, deployed by the first onboarding, creates it."""


# GetQueueUrl's answer for a queue that does not exist: the query-protocol code (AWS SQS API Reference,
# GetQueueUrl, Errors: QueueDoesNotExist, "AWS.SimpleQueueService.NonExistentQueue") and botocore's JSON-protocol name.
MISSING_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def events_queue_url(sqs: Any, cfg: Mapping[str, Any]) -> str:
    """The events queue's URL; :class:`QueueMissing`, in plain words, when there is none yet.

    :param sqs: the admin account's SQS client.
    :param cfg: events.yaml.
    """
    try:
        return sqs.get_queue_url(QueueName=cfg["queue_name"])["QueueUrl"]
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code not in MISSING_QUEUE_CODES:
            raise
        raise QueueMissing(
            f"the events queue {cfg['queue_name']!r} does not exist yet in the admin account: run the "
            "account_onboarding DAG first (it deploys the central stack that creates the queue); until then there "
            "are no events to store") from exc


def drain_and_ingest(access: Any, store: Any, cfg: Mapping[str, Any], limit: int,
                     received_at: dt.datetime) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]], list[Reject]]:
    """Every run: drain the events queue until it is empty (up to ``limit`` messages, receiving for at most
    ``drain_max_seconds``), chunk by chunk (``drain_chunk_messages``); each chunk is stored before it is deleted.

    The time bound keeps a steady stream of events from holding the run in this task: without it the queue is never
    seen empty while events keep coming, and no alert of the run is mailed until the stream stops
    (bench/events.py: 300 alert candidates at 1 a second were mailed 203 s (p50) and 340 s (p95) after their put).
    What is left has its own wake messages (they start the next run) and the sweep schedule.

    A chunk whose storing raises is not deleted: the exception fails the run, and its messages come back after the
    visibility timeout (to the dead-letter queue after the redrive policy's ``maxReceiveCount``).

    :returns: (messages received, rows, rows not stored before, poison messages).
    :raises QueueMissing: no events queue yet (before the first onboarding).
    """
    sqs = access.client("sqs")
    queue_url = events_queue_url(sqs, cfg)
    received, rows, fresh, rejects = 0, [], [], []
    for messages, handles in drain_chunks(sqs, queue_url, limit, int(cfg["drain_chunk_messages"]),
                                          int(cfg["drain_visibility_seconds"]), int(cfg["drain_wait_seconds"]),
                                          float(cfg["drain_max_seconds"])):
        chunk_rows, chunk_fresh, chunk_rejects = ingest(access, store, messages, cfg, received_at)
        not_deleted = delete(sqs, queue_url, handles)
        received += len(messages)
        rows += chunk_rows
        fresh += chunk_fresh
        rejects += chunk_rejects
        log.info("events: drained %d messages (%d not deleted)", len(messages), not_deleted)
    return received, rows, fresh, rejects

"""Schemas of the history store's tables: one source of truth for writers, readers and the README.

Every table is ``<store>/<table>/dt=YYYY-MM-DD/part-<chunk>.parquet`` (see store.py); ``dt`` is the partition
column and is not repeated inside the files. Timestamps are UTC. ``*_json`` columns hold a JSON object as text
so that Athena, DuckDB and pandas read them without our code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

TS = pa.timestamp("us", tz="UTC")

# Accounts as seen on the day: Organizations + tags, merged with the onboarding inventory. chunk = "all".
ACCOUNTS = pa.schema(
    [
        ("account_id", pa.string()),
        ("name", pa.string()),
        ("email", pa.string()),
        ("status", pa.string()),  # ACTIVE | SUSPENDED | ...
        ("ou", pa.string()),  # name of the parent OU ("Root" at the top)
        ("owner", pa.string()),  # Owner tag, else the inventory's owner_email
        ("team", pa.string()),
        ("environment", pa.string()),  # prod | dev | sandbox | ""
        ("tags_json", pa.string()),
        ("is_management", pa.bool_()),
        ("onboarded", pa.bool_()),
        ("baseline_version", pa.string()),
    ]
)

# Accounts brought under governance by onboarding. dt = onboarding day, chunk = account id; latest row wins.
# Stored under the name "inventory" (its name before "inventory" also came to mean SSM software inventory): kept so
# that existing stores, Athena tables and DuckDB queries keep working.
ONBOARDED_ACCOUNTS_TABLE = "inventory"
ONBOARDED_ACCOUNTS = pa.schema(
    [
        ("account_id", pa.string()),
        ("owner_email", pa.string()),
        ("team", pa.string()),
        ("environment", pa.string()),
        ("regions", pa.list_(pa.string())),
        ("baseline_version", pa.string()),
        ("stackset_name", pa.string()),
        ("operation_id", pa.string()),
        ("onboarded_at", TS),
        ("verified_at", TS),
        ("verification_json", pa.string()),  # {"<region>": {"trail_logging": true, ...}}
        ("status", pa.string()),  # onboarded | verify_failed
    ]
)

# What could and could not be scanned: one row per account x region x source. chunk = account id.
COVERAGE = pa.schema(
    [
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("source", pa.string()),  # trusted_advisor | config | cloudwatch | guardduty | macie
        # ok | access_denied | no_support_plan | not_enabled | not_delivered | not_covered | stale | throttled_out
        # | error
        ("status", pa.string()),
        ("error", pa.string()),
        ("api_calls", pa.int64()),
    ]
)

# Trusted Advisor: one row per account x check. chunk = account id.
TA_CHECKS = pa.schema(
    [
        ("account_id", pa.string()),
        ("check_id", pa.string()),
        ("check_name", pa.string()),
        ("category", pa.string()),  # cost_optimizing | security | fault_tolerance | performance | service_limits
        ("status", pa.string()),  # ok | warning | error | not_available
        ("resources_processed", pa.int64()),
        ("resources_flagged", pa.int64()),
        ("resources_suppressed", pa.int64()),
        ("estimated_monthly_savings", pa.float64()),
        ("checked_at", pa.string()),  # the check's own timestamp, as AWS returns it
    ]
)

# Trusted Advisor flagged resources. chunk = account id.
TA_FINDINGS = pa.schema(
    [
        ("finding_id", pa.string()),
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("check_id", pa.string()),
        ("check_name", pa.string()),
        ("category", pa.string()),
        ("status", pa.string()),  # warning | error | ok
        ("resource_id", pa.string()),
        ("is_suppressed", pa.bool_()),
        ("details_json", pa.string()),  # the check's metadata columns by name
        ("estimated_monthly_savings", pa.float64()),
    ]
)

# AWS Config: compliance per account x region x rule. chunk = account id.
CONFIG_RULES = pa.schema(
    [
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("rule_name", pa.string()),
        ("compliance", pa.string()),  # COMPLIANT | NON_COMPLIANT | NOT_APPLICABLE | INSUFFICIENT_DATA
        ("noncompliant_resources", pa.int64()),
        ("via", pa.string()),  # aggregator | account
    ]
)

# AWS Config: evaluation per account x region x rule x resource. chunk = account id.
CONFIG_FINDINGS = pa.schema(
    [
        ("finding_id", pa.string()),
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("rule_name", pa.string()),
        ("resource_type", pa.string()),
        ("resource_id", pa.string()),
        ("compliance", pa.string()),  # COMPLIANT | NON_COMPLIANT | NOT_APPLICABLE
        ("annotation", pa.string()),
        ("recorded_at", TS),
        ("via", pa.string()),
    ]
)

# One row per collection run of a day (replaced by a rerun). chunk = "all".
COLLECTION_RUNS = pa.schema(
    [
        ("run_id", pa.string()),
        ("started_at", TS),
        ("finished_at", TS),
        ("accounts", pa.int64()),
        ("regions", pa.list_(pa.string())),
        ("gaps", pa.int64()),
        ("api_calls", pa.int64()),
    ]
)

# Metric anomalies, static and dynamic. dt = day of the anomaly's timestamp; de-duplicated by anomaly_id.
ANOMALIES = pa.schema(
    [
        ("anomaly_id", pa.string()),
        ("rule_id", pa.string()),
        ("kind", pa.string()),  # static | dynamic
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("namespace", pa.string()),
        ("metric_name", pa.string()),
        ("dimensions_json", pa.string()),
        ("statistic", pa.string()),
        ("timestamp", TS),
        ("value", pa.float64()),
        ("expected", pa.float64()),
        ("lower", pa.float64()),
        ("upper", pa.float64()),
        ("score", pa.float64()),
        ("severity", pa.string()),  # low | medium | high
        ("reason", pa.string()),  # why it fired, in an owner's words (findings.static_reason / dynamic_reason)
    ]
)

# Weekly report deliveries: a rerun skips recipients already sent for the week. dt = the week's Monday.
SEND_LEDGER = pa.schema(
    [
        ("week", pa.string()),  # ISO week, e.g. 2026-W48
        ("recipient", pa.string()),
        ("subject", pa.string()),
        ("message_id", pa.string()),
        ("transport", pa.string()),  # ses | smtp
        ("status", pa.string()),  # sent | failed | refused
        ("error", pa.string()),
        ("sent_at", TS),
    ]
)


# Immediate alerts, metric anomalies and events (core/alert_ledger.py): one row per alert, channel and recipient,
# sent, refused or failed; a rerun or an overlapping run skips what is sent or refused and retries what failed.
# dt = the alert's day, chunk = "all". ``anomaly_id`` is the key's name before issue #20 (files written then have
# it and no alert_id/channel; alert_ledger.read() takes it as the alert id of an e-mail row); new rows leave it null.
ALERT_LEDGER = pa.schema(
    [
        ("alert_id", pa.string()),
        ("channel", pa.string()),  # email | sns:<topic arn> | slack:<conn id>:<channel>
        ("account_id", pa.string()),
        ("rule_id", pa.string()),
        ("severity", pa.string()),
        ("recipient", pa.string()),  # one address for email rows; the target for the others
        ("subject", pa.string()),
        ("message_id", pa.string()),
        ("transport", pa.string()),  # ses | smtp | sns | slack
        ("status", pa.string()),  # sent | failed | refused
        ("error", pa.string()),
        ("sent_at", TS),
        ("anomaly_id", pa.string()),  # legacy key, read only
    ]
)


# SSM inventory: one row per account x region x managed instance x installed application. chunk = account id.
SOFTWARE_INVENTORY = pa.schema(
    [
        ("item_id", pa.string()),  # stable id: hash of account, region, instance, name, version
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("instance_id", pa.string()),
        ("computer_name", pa.string()),
        ("platform_name", pa.string()),
        ("platform_type", pa.string()),  # Linux | Windows | MacOS
        ("platform_version", pa.string()),
        ("name", pa.string()),
        ("version", pa.string()),
        ("publisher", pa.string()),
        ("captured_at", pa.string()),  # the inventory's CaptureTime, as SSM returns it
        ("via", pa.string()),  # aggregator | account
    ]
)

# Installed applications matching the settings' prohibited_packages. chunk = account id.
PACKAGE_FINDINGS = pa.schema(
    [
        ("finding_id", pa.string()),  # finding_id("inventory", account, region, rule id, instance/name)
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("rule_id", pa.string()),
        ("title", pa.string()),
        ("severity", pa.string()),
        ("reason", pa.string()),
        ("instance_id", pa.string()),
        ("platform_name", pa.string()),
        ("name", pa.string()),
        ("version", pa.string()),  # every matched version of the name on the instance, oldest first, ", "-joined
        ("publisher", pa.string()),
    ]
)

# When a non-compliant resource of the weekly report last changed, and who changed it (change_history.py).
# dt = the report's data day (as_of), chunk = "all"; looked-up rows are reused per resource (cache).
CHANGE_HISTORY = pa.schema(
    [
        ("finding_id", pa.string()),
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("resource_type", pa.string()),
        ("resource_id", pa.string()),
        ("evaluated_at", TS),  # the evaluation explained: changes after it are not looked at
        ("status", pa.string()),  # ok | no_event | no_history | access_denied | throttled_out | error
        ("changed_at", TS),  # configurationItemCaptureTime of the last change before evaluated_at
        ("principal", pa.string()),  # userIdentity.arn of the write event
        ("user_name", pa.string()),
        ("event_name", pa.string()),
        ("event_time", TS),
        ("source_ip", pa.string()),
        ("event_id", pa.string()),
        ("error", pa.string()),
        ("api_calls", pa.int64()),
        # which answered "who": trail_files (the central bucket's CloudTrail log files) | lookup_events; appended
        # last so that days written before it read back with it null
        ("source", pa.string()),
    ]
)

# GuardDuty findings (not archived) per account x region. chunk = account id. See docs/threats.md.
GUARDDUTY_FINDINGS = pa.schema(
    [
        ("finding_id", pa.string()),  # finding_id("guardduty", account, region, type, GuardDuty's finding id)
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("guardduty_id", pa.string()),  # GuardDuty's own finding id
        ("type", pa.string()),  # e.g. UnauthorizedAccess:EC2/SSHBruteForce
        ("title", pa.string()),
        ("severity", pa.float64()),  # GuardDuty's score, 1.0-10.0
        ("severity_label", pa.string()),  # critical | high | medium | low
        ("resource_type", pa.string()),  # Instance | AccessKey | S3Bucket | ...
        ("resource_id", pa.string()),
        ("resource_name", pa.string()),  # Name tag, user name or bucket name
        ("first_seen", TS),
        ("last_seen", TS),
        ("count", pa.int64()),
        ("via", pa.string()),  # admin (delegated administrator) | account
    ]
)

# Macie findings (not archived) per account x region. chunk = account id. See docs/threats.md.
MACIE_FINDINGS = pa.schema(
    [
        ("finding_id", pa.string()),  # finding_id("macie", account, region, type, Macie's finding id)
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("macie_id", pa.string()),
        ("type", pa.string()),  # e.g. SensitiveData:S3Object/Personal, Policy:IAMUser/S3BucketPublic
        ("category", pa.string()),  # CLASSIFICATION | POLICY
        ("sensitive_data", pa.list_(pa.string())),  # PERSONAL_INFORMATION, CREDENTIALS, FINANCIAL_INFORMATION, ...
        ("detections", pa.int64()),  # occurrences of sensitive data found (0 for policy findings)
        ("severity", pa.string()),  # high | medium | low
        ("bucket", pa.string()),
        ("object_key", pa.string()),
        ("first_seen", TS),
        ("last_seen", TS),
        ("count", pa.int64()),
        ("via", pa.string()),  # admin | account
    ]
)

# What our findings' Security Hub state is after a day's import (interop.import_day). chunk = "all"; one row per
# ASFF Id ACTIVE in Security Hub afterwards, or archived that day. See docs/threats.md.
SECURITYHUB_IMPORTS = pa.schema(
    [
        ("account_id", pa.string()),  # AwsAccountId
        ("region", pa.string()),  # the ASFF Region (Trusted Advisor's "global" becomes the home region)
        ("source", pa.string()),  # trusted_advisor | config | anomaly | guardduty | macie
        ("finding_region", pa.string()),  # the finding's own region, as in coverage
        ("asff_id", pa.string()),  # awsgov/<source>/<finding_id>
        ("record_state", pa.string()),  # ACTIVE | ARCHIVED (archived that day)
        ("asff_json", pa.string()),  # the ASFF document last sent (archiving re-sends it)
        ("updated_at", TS),  # its UpdatedAt
    ]
)

# Events from the central bus (governance_events, events/ingest.py). dt = the event's UTC day, chunk = "all";
# one row per event id (a redelivered message is not stored twice).
EVENTS = pa.schema(
    [
        ("event_id", pa.string()),  # EventBridge's id, kept along the forwarding
        ("source", pa.string()),  # aws.guardduty, aws.signin, aws.iam ...
        ("detail_type", pa.string()),
        ("type", pa.string()),  # <service>:<action>, e.g. iam:CreateUser, signin:ConsoleLogin, guardduty:<finding>
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("time", TS),
        ("resource", pa.string()),
        ("actor", pa.string()),  # principal ARN when the event names one
        ("actor_type", pa.string()),  # Root | IAMUser | AssumedRole | ...
        ("severity", pa.string()),  # low | medium | high (the highest of the event's and its alert rules')
        ("route", pa.string()),  # alert (mailed at once) | report (weekly "events of the week")
        ("alert_rules", pa.string()),  # comma-separated ids from include/config/events.yaml
        ("attributes_json", pa.string()),  # source-specific: mfa_used, new_compliance, ta_status ...
        ("message_id", pa.string()),  # SQS message id
        ("received_at", TS),
    ]
)

# Poison messages of the events queue (sent to its dead-letter queue). dt = day received, chunk = "all".
EVENT_REJECTS = pa.schema(
    [
        ("message_id", pa.string()),
        ("reason", pa.string()),  # oversized | malformed | unknown_source
        ("detail", pa.string()),
        ("size_bytes", pa.int64()),
        ("body_sha256", pa.string()),
        ("source", pa.string()),  # when the body could be read
        ("received_at", TS),
    ]
)

# Hourly API activity (CloudTrail API calls forwarded to the central bus), recomputed from `events` for each day a
# run touches. dt = the hour's UTC day, chunk = "all".
ACCOUNT_ACTIVITY = pa.schema(
    [
        ("hour", TS),
        ("account_id", pa.string()),
        ("event_type", pa.string()),  # iam:CreateUser, ec2:AuthorizeSecurityGroupIngress ...
        ("count", pa.int64()),
        # userIdentity.type: Root, IAMUser, AssumedRole, AWSService, FederatedUser, ...; appended last so that files
        # written before it read back with it null (Store.read with this schema).
        ("principal_type", pa.string()),
    ]
)


def open_ta_findings() -> pc.Expression:
    """The rows of ``ta_findings`` that are open findings: flagged red or yellow and not suppressed in Trusted
    Advisor (a Store.scan/read ``where``: filtered while reading)."""
    return pc.field("status").isin(["error", "warning"]) & pc.invert(
        pc.coalesce(pc.field("is_suppressed"), pa.scalar(False)))


def open_config_findings() -> pc.Expression:
    """The rows of ``config_findings`` that are open findings: NON_COMPLIANT."""
    return pc.field("compliance") == "NON_COMPLIANT"


def finding_id(source: str, account_id: str, region: str, check: str, resource: str) -> str:
    """Stable id of a finding across days, so deltas (new, resolved, reopened) and age can be computed.

    :param source: trusted_advisor | config | ...
    :param check: Trusted Advisor check id or Config rule name.
    :param resource: resource id (or type/id).
    """
    key = "\x1f".join((source, account_id, region or "", check, resource or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def finding_ids(source: str, account_id: str, region: str) -> Callable[[str, str], str]:
    """:func:`finding_id` of one source, account and region, for many checks and resources (the same ids; the
    common part of the key joined once: a Config snapshot holds thousands of results)."""
    head = "\x1f".join((source, account_id, region or "", ""))

    def one(check: str, resource: str) -> str:
        return hashlib.sha256(f"{head}{check}\x1f{resource or ''}".encode()).hexdigest()[:24]

    return one


# The registry: every table of the store by its stored name. Writers and readers name tables by these keys; a test
# (tests/awsgov/core/test_tables.py) fails on a table name in the code that is not here.
SCHEMAS: dict[str, pa.Schema] = {
    "accounts": ACCOUNTS,
    ONBOARDED_ACCOUNTS_TABLE: ONBOARDED_ACCOUNTS,
    "coverage": COVERAGE,
    "metric_coverage": COVERAGE,  # CloudWatch checks (anomaly/findings.py), same columns as the collection's
    "ta_checks": TA_CHECKS,
    "ta_findings": TA_FINDINGS,
    "config_rules": CONFIG_RULES,
    "config_findings": CONFIG_FINDINGS,
    "collection_runs": COLLECTION_RUNS,
    "anomalies": ANOMALIES,
    "send_ledger": SEND_LEDGER,
    "alert_ledger": ALERT_LEDGER,
    "software_inventory": SOFTWARE_INVENTORY,
    "package_findings": PACKAGE_FINDINGS,
    "change_history": CHANGE_HISTORY,
    "guardduty_findings": GUARDDUTY_FINDINGS,
    "macie_findings": MACIE_FINDINGS,
    "securityhub_imports": SECURITYHUB_IMPORTS,
    "events": EVENTS,
    "event_rejects": EVENT_REJECTS,
    "account_activity": ACCOUNT_ACTIVITY,
}

"""Interop: a day's open findings as OCSF Detection Findings and as AWS Security Finding Format (ASFF), and the
import of ASFF into Security Hub.

Open findings of every source, read from the store for one day: Trusted Advisor (red and yellow, not suppressed in
Trusted Advisor), Config (NON_COMPLIANT), metric anomalies (of that day), GuardDuty and Macie (not archived). Each
keeps its stable ``finding_id`` (tables.finding_id), so a re-export updates rather than duplicates.

- OCSF: schema 1.3.0, class Detection Finding (``class_uid`` 2004, category Findings), activity Create; one JSON
  object per finding (https://schema.ocsf.io/1.3.0/classes/detection_finding).
- ASFF: SchemaVersion 2018-10-08, the default (custom) product of the account that owns the finding
  (``arn:aws:securityhub:<region>:<account>:product/<account>/default``): with that product Security Hub accepts a
  finding only from its own account (docs of BatchImportFindings), so :func:`import_asff` calls BatchImportFindings
  in each finding's account and region, 100 findings a call (the API limit), through the access layer it is given
  (the DAG builds it for the import role of the baseline, which may call nothing else).

The JSON schemas of both outputs (the fields emitted, with the formats' constraints) are
include/config/schema/ocsf_detection_finding.schema.json and asff_finding.schema.json.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.awsgov.core import tables
from include.awsgov.core.store import Store
from include.awsgov.report.catalog import load_catalog

log = logging.getLogger(__name__)

OCSF_VERSION = "1.3.0"
ASFF_VERSION = "2018-10-08"
PRODUCT = "awsgov"
IMPORT_BATCH = 100  # BatchImportFindings accepts at most 100 findings a call
IMPORTS_TABLE = "securityhub_imports"
# An open finding whose document is unchanged since it was last imported is sent again only after this long: Security
# Hub deletes active findings that are not updated for 90 days (Security Hub User Guide, "OCSF findings in Security
# Hub": "Active findings are automatically deleted if they aren't updated in 90 days"); every import is also a billed
# finding ingestion event, so an unchanged finding is not re-sent every day.
RESEND_UNCHANGED_AFTER = dt.timedelta(days=30)
# A source's coverage rows (``coverage.source``) where it differs from the finding's source.
COVERAGE_SOURCE = {"anomaly": "cloudwatch"}
EXPORT_PATH = "exports/dt={day}/findings.{kind}.json"
# Rows turned into Python records at a time by iter_open_findings (bounded memory, pandas' per-call cost amortized).
RECORDS_PER_SLICE = 10_000
# Our severity scale -> OCSF severity_id / ASFF Severity.Label.
OCSF_SEVERITY = {"informational": (1, "Informational"), "low": (2, "Low"), "medium": (3, "Medium"),
                 "high": (4, "High"), "critical": (5, "Critical")}
ASFF_SEVERITY = {"informational": "INFORMATIONAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH",
                 "critical": "CRITICAL"}
# Severity of a source's finding when no catalog decides: Trusted Advisor red/yellow, Config non-compliant.
DEFAULT_SEVERITY = {("trusted_advisor", "error"): "high", ("trusted_advisor", "warning"): "medium",
                    ("config", "NON_COMPLIANT"): "medium"}
# ASFF Types (namespace/category/classifier) per source; Macie classification findings by sensitive-data category.
CONFIG_CHECKS_TYPE = "Software and Configuration Checks/AWS Security Best Practices"
MACIE_TYPES = {"PERSONAL_INFORMATION": "Sensitive Data Identifications/PII",
               "CREDENTIALS": "Sensitive Data Identifications/Passwords",
               "FINANCIAL_INFORMATION": "Sensitive Data Identifications/Financial",
               "CUSTOM_IDENTIFIER": "Sensitive Data Identifications/Business"}
# GuardDuty threat purposes (the type's prefix) -> ASFF namespace/category.
GUARDDUTY_TYPES = {"Recon": "TTPs/Discovery", "UnauthorizedAccess": "TTPs/Initial Access",
                   "Backdoor": "TTPs/Command and Control", "CryptoCurrency": "Effects/Resource Consumption",
                   "Exfiltration": "Effects/Data Exfiltration", "Impact": "Effects/Data Destruction",
                   "PenTest": "TTPs/Discovery", "Policy": CONFIG_CHECKS_TYPE, "Stealth": "TTPs/Defense Evasion",
                   "Trojan": "TTPs/Execution", "AttackSequence": "Effects/Data Exposure"}
MAX_TITLE, MAX_DESCRIPTION, MAX_FIELD = 256, 1024, 1024


@dataclass
class OpenFinding:
    """One open finding of any source, in one shape."""

    source: str
    finding_id: str
    account_id: str
    region: str
    check: str  # Trusted Advisor check id, Config rule, anomaly rule, GuardDuty / Macie finding type
    title: str
    description: str
    severity: str  # informational | low | medium | high | critical
    resource_type: str
    resource_id: str
    resource_name: str = ""
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    count: int = 1
    asff_types: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)


def _ts(value: Any) -> dt.datetime | None:
    if type(value) is dt.datetime:  # what Arrow gives for the stores' timestamp columns (UTC)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if value is None or (not isinstance(value, (str, dt.datetime)) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def open_findings(store: Store, day: Any, severity_of: Any = None) -> list[OpenFinding]:
    """Every source's open findings of ``day`` from the store, ordered by source and finding id (a list of
    :func:`iter_open_findings`).

    :param store: the history store.
    :param day: the collected day.
    :param severity_of: ``(source, check, check_name, category, status) -> severity`` for Trusted Advisor and
        Config (e.g. the rules catalog, as the report words them); None: :data:`DEFAULT_SEVERITY`.
    """
    return list(iter_open_findings(store, day, severity_of))


def _records(store: Store, table: str, schema: Any, day: dt.date, key: str,
             where: Any = None) -> Iterator[dict[str, Any]]:
    # One table's rows of the day that ``where`` keeps, by ``key`` (Arrow's sort is stable, as sorted() was), as
    # Python records a slice at a time: the same values as reading the day whole, in bounded memory. Missing
    # numbers are NaN, as pandas gave them before (Arrow's records are three times cheaper than DataFrame.to_dict).
    t = store.scan(table, day, day, schema=schema, where=where)
    if t is None or t.num_rows == 0:
        return
    t = t.take(pc.sort_indices(t, sort_keys=[(key, "ascending")]))
    for i, f in enumerate(t.schema):
        if pa.types.is_floating(f.type) and t.column(i).null_count:
            t = t.set_column(i, f, pc.fill_null(t.column(i), float("nan")))
    for start in range(0, t.num_rows, RECORDS_PER_SLICE):
        yield from t.slice(start, RECORDS_PER_SLICE).to_pylist()


def iter_open_findings(store: Store, day: Any, severity_of: Any = None) -> Iterator[OpenFinding]:
    """:func:`open_findings` one at a time: each source is read with its filter applied while reading and sorted
    in Arrow, so memory holds one source's open findings as Arrow columns, not every finding of the day as Python
    objects (at 1,000 accounts on the realistic profile, millions of Config findings).
    """
    day = dt.date.fromisoformat(str(day)[:10])
    when = _day_start(day)

    def sev(source: str, check: str, name: str, category: str, status: str) -> str:
        if severity_of is not None:
            return severity_of(source, check, name, category, status)
        return DEFAULT_SEVERITY[(source, status)]

    # Sources in the order of their names, as the sort by (source, finding id) puts them.
    for r in _records(store, "anomalies", tables.ANOMALIES, day, "anomaly_id"):
        sev_an = r["severity"] if r["severity"] in OCSF_SEVERITY else "medium"
        yield OpenFinding(
            "anomaly", r["anomaly_id"], r["account_id"], r["region"], r["rule_id"],
            f"{r['kind']} anomaly of {r['namespace']} {r['metric_name']}",
            f"{r['statistic']} {r['value']:.6g} outside the expected {r['lower']:.6g}..{r['upper']:.6g}"
            if pd.notna(r["lower"]) and pd.notna(r["upper"]) else f"{r['statistic']} {r['value']:.6g}",
            sev_an, "Other", f"{r['namespace']}/{r['metric_name']}", first_seen=_ts(r["timestamp"]),
            last_seen=_ts(r["timestamp"]), asff_types=["Unusual Behaviors/Application"],
            details={"rule_id": r["rule_id"], "kind": r["kind"], "dimensions_json": r["dimensions_json"] or ""})
    for r in _records(store, "config_findings", tables.CONFIG_FINDINGS, day, "finding_id",
                      tables.open_config_findings()):
        yield OpenFinding(
            "config", r["finding_id"], r["account_id"], r["region"], r["rule_name"],
            f"AWS Config rule {r['rule_name']} is not met", r["annotation"] or f"Non-compliant with {r['rule_name']}.",
            sev("config", r["rule_name"], r["rule_name"], "config", "NON_COMPLIANT"),
            _asff_resource_type(r["resource_type"]), r["resource_id"] or r["rule_name"],
            last_seen=_ts(r["recorded_at"]) or when, asff_types=[CONFIG_CHECKS_TYPE],
            details={"rule_name": r["rule_name"], "config_resource_type": r["resource_type"] or ""})
    for r in _records(store, "guardduty_findings", tables.GUARDDUTY_FINDINGS, day, "finding_id"):
        # Types are namespace/category/classifier: GuardDuty's own "/" becomes "-", as GuardDuty does itself.
        category = GUARDDUTY_TYPES.get(r["type"].split(":", 1)[0], "TTPs")
        yield OpenFinding(
            "guardduty", r["finding_id"], r["account_id"], r["region"], r["type"], r["title"] or r["type"],
            f"GuardDuty {r['type']} on {r['resource_type']} {r['resource_name'] or r['resource_id']}",
            r["severity_label"], _asff_resource_type(r["resource_type"]), r["resource_id"] or r["type"],
            r["resource_name"], _ts(r["first_seen"]), _ts(r["last_seen"]), int(r["count"] or 1),
            [f"{category}/{r['type'].replace('/', '-')}"[:MAX_FIELD]],
            {"guardduty_id": r["guardduty_id"], "guardduty_severity": f"{r['severity']:.1f}"})
    for r in _records(store, "macie_findings", tables.MACIE_FINDINGS, day, "finding_id"):
        kinds = list(r["sensitive_data"] if r["sensitive_data"] is not None else [])
        types = sorted({MACIE_TYPES.get(k, "Sensitive Data Identifications/Security") for k in kinds}) or [
            CONFIG_CHECKS_TYPE]
        where = r["bucket"] + (f"/{r['object_key']}" if r["object_key"] else "")
        yield OpenFinding(
            "macie", r["finding_id"], r["account_id"], r["region"], r["type"], f"Macie {r['type']} in {r['bucket']}",
            f"Macie {r['type']} ({', '.join(kinds) or r['category']}) in s3://{where}",
            r["severity"] if r["severity"] in OCSF_SEVERITY else "medium", "AwsS3Bucket", r["bucket"],
            r["bucket"], _ts(r["first_seen"]), _ts(r["last_seen"]), int(r["count"] or 1), types,
            {"macie_id": r["macie_id"], "category": r["category"], "sensitive_data": ",".join(kinds),
             "detections": str(int(r["detections"] or 0))})
    for r in _records(store, "ta_findings", tables.TA_FINDINGS, day, "finding_id", tables.open_ta_findings()):
        yield OpenFinding(
            "trusted_advisor", r["finding_id"], r["account_id"], r["region"], r["check_id"], r["check_name"],
            f"Trusted Advisor check '{r['check_name']}' ({r['category']}) flags this resource {r['status']}.",
            sev("trusted_advisor", r["check_id"], r["check_name"], r["category"], r["status"]), "Other",
            r["resource_id"] or r["check_id"], last_seen=when, asff_types=[CONFIG_CHECKS_TYPE],
            details={"check_id": r["check_id"], "category": r["category"], "status": r["status"]})


def _asff_resource_type(resource_type: str) -> str:
    """An ASFF resource type (AwsEc2Instance...) from a Config (AWS::EC2::Instance) or GuardDuty (Instance) one."""
    known = {"Instance": "AwsEc2Instance", "AccessKey": "AwsIamAccessKey", "S3Bucket": "AwsS3Bucket"}
    if resource_type in known:
        return known[resource_type]
    if resource_type.startswith("AWS::"):
        return "".join(p for p in resource_type.split("::"))[:MAX_FIELD]
    return "Other"


def _ms(when: dt.datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def to_ocsf(f: OpenFinding, *, product_version: str = "1") -> dict[str, Any]:
    """One OCSF 1.3.0 Detection Finding (class_uid 2004, activity Create).

    :param f: the finding.
    :param product_version: our product's version, in ``metadata.product.version``.
    """
    severity_id, severity = OCSF_SEVERITY[f.severity]
    info: dict[str, Any] = {"uid": f.finding_id, "title": f.title[:MAX_TITLE], "desc": f.description,
                            "types": [f.check], "analytic": {"uid": f.check, "name": f.check, "type_id": 1,
                                                             "type": "Rule"},
                            "product_uid": f.source}
    if f.first_seen:
        info["first_seen_time"] = _ms(f.first_seen)
    if f.last_seen:
        info["last_seen_time"] = _ms(f.last_seen)
    resource = {"uid": f.resource_id, "type": f.resource_type, "region": f.region, "cloud_partition": "aws",
                "owner": {"account": {"uid": f.account_id, "type_id": 10, "type": "AWS Account"}}}
    if f.resource_name:
        resource["name"] = f.resource_name
    return {
        "activity_id": 1, "activity_name": "Create",
        "category_uid": 2, "category_name": "Findings",
        "class_uid": 2004, "class_name": "Detection Finding",
        "type_uid": 200401, "type_name": "Detection Finding: Create",
        "severity_id": severity_id, "severity": severity,
        "status_id": 1, "status": "New",
        "time": _ms(f.last_seen or f.first_seen) or 0,
        "count": int(f.count),
        "message": f.title[:MAX_TITLE],
        "finding_info": info,
        "metadata": {"version": OCSF_VERSION, "product": {"name": PRODUCT, "vendor_name": PRODUCT,
                                                          "version": product_version,
                                                          "feature": {"name": f.source}},
                     "uid": f.finding_id},
        "cloud": {"provider": "AWS", "region": f.region,
                  "account": {"uid": f.account_id, "type_id": 10, "type": "AWS Account"}},
        "resources": [resource],
        "unmapped": dict(f.details),
    }


# Security Hub's strings are NonEmptyString (botocore model: pattern ``.*\S.*``, matched whole, ``.`` stopping at a line
# terminator): one line holding something. Names and titles come from member accounts and may carry line breaks.
_LINE_BREAKS = re.compile(r"[\r\n\x85\u2028\u2029]+")


def _one_line(value: Any, limit: int) -> str:
    return _LINE_BREAKS.sub(" ", str(value)).strip()[:limit]


def _asff_region(region: str, fallback: str) -> str:
    return region if region and region != "global" else fallback


def to_asff(f: OpenFinding, *, home_region: str = "us-east-1", partition: str = "aws",
            updated_at: dt.datetime | None = None) -> dict[str, Any]:
    """One ASFF finding for the default product of the finding's account.

    :param f: the finding.
    :param home_region: region of account-level findings (Trusted Advisor's ``global``).
    :param partition: aws, aws-cn, aws-us-gov.
    :param updated_at: ``UpdatedAt`` (the import's time: Security Hub ignores an update that is not newer than what
        it holds); None: the finding's last-seen time (reproducible export files).
    """
    region = _asff_region(f.region, home_region)
    # ASFF requires both times; a finding known without any (none from open_findings) is stamped now.
    created = f.first_seen or f.last_seen or dt.datetime.now(dt.UTC)
    updated = updated_at or f.last_seen or created
    out: dict[str, Any] = {
        "SchemaVersion": ASFF_VERSION,
        "Id": f"{PRODUCT}/{f.source}/{f.finding_id}",
        "ProductArn": f"arn:{partition}:securityhub:{region}:{f.account_id}:product/{f.account_id}/default",
        "ProductName": PRODUCT,
        "CompanyName": PRODUCT,
        "GeneratorId": f"{PRODUCT}/{f.source}/{f.check}"[:512],
        "AwsAccountId": f.account_id,
        "Region": region,
        "Types": [t[:MAX_FIELD] for t in f.asff_types][:50] or [CONFIG_CHECKS_TYPE],
        "CreatedAt": _iso(created),
        "UpdatedAt": _iso(updated),
        "Severity": {"Label": ASFF_SEVERITY[f.severity], "Original": f.severity},
        "Title": _one_line(f.title, MAX_TITLE) or f.check,
        "Description": _one_line(f.description or f.title, MAX_DESCRIPTION) or f.check,
        "Resources": [{"Type": f.resource_type, "Id": _one_line(f.resource_id, MAX_FIELD) or f.account_id,
                       "Partition": partition, "Region": region}],
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
        "ProductFields": {"awsgov/source": f.source, "awsgov/finding_id": f.finding_id,
                          **{f"awsgov/{k}": text for k, v in f.details.items() if (text := _one_line(v, MAX_FIELD))}},
    }
    if f.first_seen:
        out["FirstObservedAt"] = _iso(f.first_seen)
    if f.last_seen:
        out["LastObservedAt"] = _iso(f.last_seen)
    if f.source == "config":
        out["Compliance"] = {"Status": "FAILED"}
    if _one_line(f.resource_name, MAX_FIELD):
        out["Resources"][0]["Details"] = {"Other": {"Name": _one_line(f.resource_name, MAX_FIELD)}}
    return out


def write_exports(store: Store, day: Any, findings: Iterable[OpenFinding], *, home_region: str = "us-east-1",
                  product_version: str = "1") -> dict[str, Any]:
    """Write ``exports/dt=<day>/findings.ocsf.json`` and ``findings.asff.json`` (JSON arrays; a rerun replaces).

    Written as streams, a finding at a time, with the bytes ``json.dumps(all, ensure_ascii=False, sort_keys=True,
    indent=1)`` would give: memory holds one finding, not the day's (gigabytes at 1,000 realistic accounts).

    :param store: the history store.
    :param day: the collected day.
    :param findings: from :func:`iter_open_findings` (or :func:`open_findings`).
    :returns: paths and count.
    """
    day = str(day)[:10]
    paths = {kind: EXPORT_PATH.format(day=day, kind=kind) for kind in ("ocsf", "asff")}
    count = 0
    with store.writer(paths["ocsf"]) as ocsf, store.writer(paths["asff"]) as asff:
        for f in findings:
            ocsf.write(_array_item(to_ocsf(f, product_version=product_version), first=count == 0))
            asff.write(_array_item(to_asff(f, home_region=home_region), first=count == 0))
            count += 1
        for fh in (ocsf, asff):
            fh.write(b"\n]" if count else b"[]")
    return {"findings": count, "paths": paths}


def _array_item(doc: Mapping[str, Any], *, first: bool) -> bytes:
    # One element of a JSON array as json.dumps(array, ensure_ascii=False, sort_keys=True, indent=1) writes it: the
    # element indented one space deeper (a JSON string holds no raw newline, so every newline is the layout's).
    # msgspec writes the same bytes (tested against json.dumps, any text and nesting) where json.dumps with an indent
    # falls back to its pure-Python encoder (70 % of the export's time). Only floats would differ (1e+16 / 1e16):
    # to_ocsf and to_asff write integers and text only.
    text = msgspec.json.format(msgspec.json.encode(doc, order="sorted"), indent=1).replace(b"\n", b"\n ")
    return (b"[\n " if first else b",\n ") + text


@dataclass
class ImportResult:
    """What BatchImportFindings said, summed over the calls."""

    success: int = 0
    failed: int = 0
    calls: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)  # first few FailedFindings, for the log
    errors: dict[str, str] = field(default_factory=dict)  # "account/region" -> error of a refused batch
    archived: int = 0  # findings no longer open sent ARCHIVED and accepted (import_day)
    kept_unread: int = 0  # no longer open but left ACTIVE: source not read OK that day, or archive refused
    unchanged: int = 0  # open, and what Security Hub holds is the same document sent recently: not sent (import_day)
    failed_ids: set[str] = field(default_factory=set, repr=False)  # every finding not accepted (not in to_dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "failed_ids"}


def import_asff(access: Any, findings: Iterable[Mapping[str, Any]], *, batch_size: int = IMPORT_BATCH,
                max_failures_kept: int = 20) -> ImportResult:
    """Send ASFF findings to Security Hub (``securityhub:BatchImportFindings``), 100 a call, each finding in its own
    account and region. A refused account (no import role, Security Hub off) is recorded and the others go on.

    :param access: access layer whose member-account role may call BatchImportFindings (the import role).
    :param findings: ASFF findings (:func:`to_asff`).
    :param batch_size: findings per call (at most 100).
    :param max_failures_kept: FailedFindings entries kept in the result.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    batch_size = max(1, min(int(batch_size), IMPORT_BATCH))
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for finding in findings:
        groups[(finding["AwsAccountId"], finding["Region"])].append(finding)
    result = ImportResult()
    access.admin_id()  # the admin account's own findings go with its own credentials, not through a role
    for (account_id, region), items in sorted(groups.items()):
        sent = 0
        try:
            client = access.client("securityhub", region, account_id=account_id)
            for start in range(0, len(items), batch_size):
                answer = client.batch_import_findings(Findings=list(items[start:start + batch_size]))
                sent = start + batch_size
                result.calls += 1
                result.success += int(answer.get("SuccessCount", 0))
                result.failed += int(answer.get("FailedCount", 0))
                result.failed_ids |= {str(f.get("Id")) for f in answer.get("FailedFindings", [])}
                room = max_failures_kept - len(result.failures)
                result.failures += [{k: str(v) for k, v in f.items()} for f in answer.get("FailedFindings", [])][
                    :max(room, 0)]
        except (ClientError, BotoCoreError) as exc:
            # One refusing account never stops the others; its findings count as failed.
            result.failed_ids |= {str(f["Id"]) for f in items[sent:]}
            text = str(exc).splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            result.errors[f"{account_id}/{region}"] = text
            log.warning("Security Hub import refused in %s/%s: %s", account_id, region, text)
    counted = result.success + result.failed
    total = sum(len(v) for v in groups.values())
    result.failed += total - counted  # the findings of refused groups
    return result


def _covered(store: Store, day: dt.date) -> set[tuple[str, str, str]]:
    """(source, account, region) read OK on ``day`` (``coverage`` status ok)."""
    cov = store.read("coverage", day, day, schema=tables.COVERAGE)
    ok = cov[cov["status"] == "ok"]
    return set(zip(ok["source"], ok["account_id"], ok["region"], strict=True))


def previous_imports(store: Store, day: dt.date) -> pd.DataFrame:
    """The findings Security Hub holds ACTIVE from us before ``day``: the ACTIVE rows of the latest earlier
    ``securityhub_imports`` partition (a rerun of ``day`` reads the same rows)."""
    days = [d for d in store.days(IMPORTS_TABLE) if d < day]
    if not days:
        return store.read(IMPORTS_TABLE, dt.date.min, dt.date.min, schema=tables.SECURITYHUB_IMPORTS)
    prev = store.read(IMPORTS_TABLE, max(days), max(days), schema=tables.SECURITYHUB_IMPORTS)
    return prev[prev["record_state"] == "ACTIVE"]


def import_day(store: Store, day: Any, findings: Iterable[OpenFinding], importer: Any, *,
               home_region: str = "us-east-1", batch_size: int = IMPORT_BATCH,
               now: dt.datetime | None = None) -> ImportResult:
    """Import the day's open findings ACTIVE and archive (``RecordState`` ARCHIVED) those imported before that are
    no longer open, but only where their source was read OK that day (``coverage``): elsewhere a missing finding
    may just be unread, so it stays ACTIVE. An open finding Security Hub already holds with the same document (all
    but ``UpdatedAt``) is not sent again unless it was last sent :data:`RESEND_UNCHANGED_AFTER` ago or more: only
    new and changed findings are imported each day. ``UpdatedAt`` is ``now`` on every finding sent, so Security Hub
    takes the update. The day's ``securityhub_imports`` partition records what is ACTIVE afterwards (and what was
    archived), each finding's last ASFF document included: archiving re-sends it.

    :param store: the history store.
    :param day: the collected day.
    :param findings: the day's open findings (:func:`open_findings`).
    :param importer: access layer whose member-account role may call BatchImportFindings.
    :param now: the export time (default: now).
    """
    day = dt.date.fromisoformat(str(day)[:10])
    now = now or dt.datetime.now(dt.UTC)
    stamp = _iso(now)
    rows: dict[str, dict[str, Any]] = {}
    send: list[dict[str, Any]] = []
    active: set[str] = set()  # the day's open findings
    # What Security Hub holds ACTIVE from an earlier import, as recorded rows (without the partition's dt).
    earlier = {r["asff_id"]: {k: r[k] for k in tables.SECURITYHUB_IMPORTS.names}
               for r in previous_imports(store, day).to_dict("records")}
    unchanged = 0
    for f in findings:
        doc = to_asff(f, home_region=home_region, updated_at=now)
        active.add(doc["Id"])
        before = earlier.get(doc["Id"])
        if before is not None and now - before["updated_at"] < RESEND_UNCHANGED_AFTER and _same_document(
                before["asff_json"], doc):
            rows[doc["Id"]] = dict(before)  # held as it was sent
            unchanged += 1
            continue
        send.append(doc)
        rows[doc["Id"]] = {"account_id": doc["AwsAccountId"], "region": doc["Region"], "source": f.source,
                           "finding_region": f.region, "asff_id": doc["Id"], "record_state": "ACTIVE",
                           "asff_json": json.dumps(doc, sort_keys=True), "updated_at": now}
    covered = _covered(store, day)
    archive: dict[str, dict[str, Any]] = {}
    for prev in earlier.values():
        if prev["asff_id"] in rows:
            continue
        rows[prev["asff_id"]] = dict(prev)
        if (COVERAGE_SOURCE.get(prev["source"], prev["source"]), prev["account_id"], prev["finding_region"]) in covered:
            doc = {**json.loads(prev["asff_json"]), "RecordState": "ARCHIVED", "UpdatedAt": stamp}
            archive[prev["asff_id"]] = doc
            send.append(doc)
    result = import_asff(importer, send, batch_size=batch_size)
    for asff_id in result.failed_ids - set(archive):
        if asff_id in earlier:  # the update was refused: Security Hub still holds the earlier document, sent again
            rows[asff_id] = dict(earlier[asff_id])  # the next time
        else:
            rows.pop(asff_id, None)  # refused and never imported: nothing to archive later
    for asff_id, doc in archive.items():
        if asff_id not in result.failed_ids:  # a refused archive stays ACTIVE: tried again next time
            rows[asff_id].update(record_state="ARCHIVED", asff_json=json.dumps(doc, sort_keys=True), updated_at=now)
    frame = pd.DataFrame(list(rows.values()), columns=tables.SECURITYHUB_IMPORTS.names)
    store.write(IMPORTS_TABLE, day, frame, schema=tables.SECURITYHUB_IMPORTS, sort_by=["asff_id"])
    result.archived = len(set(archive) - result.failed_ids)
    result.unchanged = unchanged
    result.kept_unread = sum(1 for k, r in rows.items() if r["record_state"] == "ACTIVE" and k not in active)
    log.info("Security Hub: %d open findings, %d sent, %d unchanged not sent again, %d archived (%d refused), "
             "%d no longer open kept ACTIVE", len(active), len(active) - unchanged, unchanged, result.archived,
             len(archive) - result.archived, result.kept_unread)
    return result


def _same_document(held_json: str, doc: Mapping[str, Any]) -> bool:
    """Whether an imported ASFF document (as recorded) and a new one differ only in ``UpdatedAt``."""
    held = json.loads(held_json)
    return {k: v for k, v in held.items() if k != "UpdatedAt"} == {k: v for k, v in doc.items() if k != "UpdatedAt"}


def export_day(store: Store, day: Any, cfg: Mapping[str, Any], access: Any = None) -> dict[str, Any]:
    """The collection's export step: write the day's OCSF and ASFF files (settings ``interop.export``) and, when
    ``interop.securityhub_import`` is on, import the ASFF findings into Security Hub through the import role.

    :param store: the history store.
    :param day: the collected day.
    :param cfg: settings.
    :param access: the admin account's access layer (needed only for the import).
    """
    import dataclasses

    opts = cfg.get("interop") or {}
    if not opts.get("export", True) and not opts.get("securityhub_import", False):
        return {"exported": False}
    catalog = load_catalog()

    def severity_of(source: str, check: str, name: str, category: str, status: str) -> str:
        return catalog.info(source, check, check_name=name, category=category, status=status).severity

    out: dict[str, Any] = {}
    if opts.get("export", True):  # streamed: the day's findings are never all in memory
        out.update(write_exports(store, day, iter_open_findings(store, day, severity_of),
                                 home_region=cfg.get("home_region", "us-east-1")))
    if opts.get("securityhub_import", False):
        if access is None:
            raise ValueError("interop.securityhub_import needs an access layer")
        findings = open_findings(store, day, severity_of)  # import_day keeps each one's ASFF for the archive
        out["findings"] = len(findings)
        importer = dataclasses.replace(access, read_role_name=opts.get("import_role_name",
                                                                        "GovernanceFindingsImportRole"))
        out["import"] = import_day(store, day, findings, importer, home_region=cfg.get("home_region", "us-east-1"),
                                   batch_size=int(opts.get("batch_size", IMPORT_BATCH))).to_dict()
        out["import"]["failures"] = out["import"]["failures"][:5]
    return out

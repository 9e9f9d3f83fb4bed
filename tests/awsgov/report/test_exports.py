"""Interop (report/exports.py): a day collected from the sandbox (Trusted Advisor, Config, GuardDuty, Macie, a
metric anomaly) exported as OCSF and ASFF, both validated against their JSON schemas; ASFF imported into the
sandbox's Security Hub (moto) in each finding's account and region, in batches of at most 100, a refused account
recorded while the others go on."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from collections import Counter

import jsonschema
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess
from include.awsgov.core.settings import CONFIG_DIR, load_settings
from include.awsgov.report import exports

SCHEMAS = CONFIG_DIR / "schema"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _access(sandbox, **kwargs):
    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTINTEROP00001",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-interop", retry_mode="standard", **kwargs)


@pytest.fixture(scope="module")
def day_store(sandbox, tmp_path_factory):
    """One region of four accounts collected with every source, plus one metric anomaly of the day."""
    from include.awsgov.collection import runner
    from include.awsgov.core.store import Store

    store = Store(tmp_path_factory.mktemp("interop") / "store")
    members = [a["id"] for a in sandbox.info["accounts"] if a["read_role"] and a["status"] == "ACTIVE"]
    targets = [sandbox.info["management_account_id"], *members[:3]]
    day = dt.date.fromisoformat(sandbox.today())
    opts = runner.Options(regions=("us-east-1",), sources=("trusted_advisor", "config", "guardduty", "macie"),
                              refresh=False)
    runner.collect_accounts(_access(sandbox), store, day, targets, opts)
    anomaly = {"anomaly_id": "a" * 24, "rule_id": "lambda_errors", "kind": "dynamic", "account_id": members[0],
               "region": "us-east-1", "namespace": "AWS/Lambda", "metric_name": "Errors",
               "dimensions_json": json.dumps({"FunctionName": "<script>x</script>"}), "statistic": "Sum",
               "timestamp": dt.datetime.combine(day, dt.time(3), tzinfo=dt.UTC), "value": 42.0, "expected": 2.0,
               "lower": 0.0, "upper": 6.0, "score": 9.5, "severity": "high",
               "reason": "the 1h mean further above the expected value than at any time in the last 28 days"}
    store.write("anomalies", day, pd.DataFrame([anomaly]), schema=tables.ANOMALIES)
    return {"store": store, "day": day, "targets": targets}


def test_open_findings_cover_every_source_with_stable_ids(day_store):
    found = exports.open_findings(day_store["store"], day_store["day"])
    by_source = Counter(f.source for f in found)
    assert set(by_source) == {"trusted_advisor", "config", "anomaly", "guardduty", "macie"}, by_source
    assert len({(f.source, f.finding_id) for f in found}) == len(found)
    gd = day_store["store"].read("guardduty_findings", schema=tables.GUARDDUTY_FINDINGS)
    assert by_source["guardduty"] == len(gd)


def test_ocsf_export_validates_against_the_detection_finding_schema(day_store):
    validator = _validator("ocsf_detection_finding.schema.json")
    found = exports.open_findings(day_store["store"], day_store["day"])
    events = [exports.to_ocsf(f) for f in found]
    for event in events:
        errors = sorted(validator.iter_errors(event), key=str)
        assert not errors, (event["finding_info"]["uid"], [e.message for e in errors][:3])
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
    high = [e for e, f in zip(events, found, strict=True) if f.severity == "high"]
    assert high and all((e["severity_id"], e["severity"]) == (4, "High") for e in high)


def test_asff_export_validates_against_the_asff_schema(day_store):
    validator = _validator("asff_finding.schema.json")
    found = exports.open_findings(day_store["store"], day_store["day"])
    for finding in (exports.to_asff(f) for f in found):
        errors = sorted(validator.iter_errors(finding), key=str)
        assert not errors, (finding["Id"], [e.message for e in errors][:3])
        assert finding["ProductArn"].endswith(f":{finding['AwsAccountId']}:product/{finding['AwsAccountId']}/default")


def test_schemas_refuse_what_security_hub_would_refuse():
    asff = _validator("asff_finding.schema.json")
    good = exports.to_asff(exports.OpenFinding("guardduty", "f" * 24, "123456789012", "us-east-1", "t", "title", "d",
                                               "critical", "AwsEc2Instance", "i-1"))
    assert not list(asff.iter_errors(good))
    for bad in ({**good, "Types": ["TTPs/a/b/c"]}, {**good, "Severity": {"Label": "SEVERE"}},
                {**good, "Title": "x" * 257}, {**good, "Resources": []}, {**good, "AwsAccountId": "12"}):
        assert list(asff.iter_errors(bad))
    ocsf = _validator("ocsf_detection_finding.schema.json")
    event = exports.to_ocsf(exports.OpenFinding("macie", "f" * 24, "123456789012", "us-east-1", "t", "title", "d",
                                                "low", "AwsS3Bucket", "b"))
    assert not list(ocsf.iter_errors(event))
    assert list(ocsf.iter_errors({**event, "class_uid": 2001})) and list(ocsf.iter_errors({**event, "time": "now"}))


def test_export_day_writes_both_files_and_rerun_replaces_them(day_store):
    store, day = day_store["store"], day_store["day"]
    cfg = load_settings()
    first = exports.export_day(store, day, cfg)
    texts = {k: store.get_text(p) for k, p in first["paths"].items()}
    second = exports.export_day(store, day, cfg)
    assert {k: store.get_text(p) for k, p in second["paths"].items()} == texts
    assert len(json.loads(texts["ocsf"])) == len(json.loads(texts["asff"])) == first["findings"] > 0
    assert "<script>x</script>" in texts["ocsf"]  # hostile values are data in JSON, kept as they are


def test_import_sends_each_finding_in_its_account_and_region_in_batches(day_store, clean_sandbox):
    sandbox = clean_sandbox
    found = exports.open_findings(day_store["store"], day_store["day"])
    asff = [exports.to_asff(f) for f in found]
    groups = Counter((f["AwsAccountId"], f["Region"]) for f in asff)
    result = exports.import_asff(_access(sandbox), asff, batch_size=7)
    assert (result.success, result.failed, result.errors) == (len(asff), 0, {})
    assert result.calls == sum(math.ceil(n / 7) for n in groups.values())
    calls = [c for c in sandbox.calls()["calls"] if c["action"] == "BatchImportFindings"]
    assert {c["account"] for c in calls} == {a for a, _ in groups}  # each finding from its own account
    for account, region in groups:
        session = sandbox.session(None if account == sandbox.info["management_account_id"] else account)
        hub = session.client("securityhub", region_name=region, endpoint_url=sandbox.endpoint)
        ids = {f["Id"] for page in hub.get_paginator("get_findings").paginate() for f in page["Findings"]}
        assert {f["Id"] for f in asff if (f["AwsAccountId"], f["Region"]) == (account, region)} <= ids
    again = exports.import_asff(_access(sandbox), asff, batch_size=500)  # clamped to the API limit
    assert again.calls == sum(math.ceil(n / 100) for n in groups.values())


def test_import_records_a_refused_account_and_goes_on(day_store, clean_sandbox):
    sandbox = clean_sandbox
    logging.getLogger("botocore.credentials").setLevel(logging.CRITICAL)
    asff = [exports.to_asff(f) for f in exports.open_findings(day_store["store"], day_store["day"])]
    refused = day_store["targets"][1]
    sandbox.set_faults(deny_assume_accounts=[refused])
    result = exports.import_asff(_access(sandbox), asff)
    mine = sum(f["AwsAccountId"] == refused for f in asff)
    assert mine and result.failed == mine and result.success == len(asff) - mine
    assert {key.split("/")[0] for key in result.errors} == {refused}
    assert {key.split("/")[1] for key in result.errors} == {f["Region"] for f in asff if f["AwsAccountId"] == refused}
    assert all("AssumeRole" in error for error in result.errors.values())


def _hub_state(sandbox, asff_id: str, account: str, region: str) -> dict:
    session = sandbox.session(None if account == sandbox.info["management_account_id"] else account)
    hub = session.client("securityhub", region_name=region, endpoint_url=sandbox.endpoint)
    found = [f for page in hub.get_paginator("get_findings").paginate() for f in page["Findings"]
             if f["Id"] == asff_id]
    assert len(found) == 1, asff_id
    return found[0]


def test_import_archives_fixed_findings_only_where_their_source_was_read(day_store, clean_sandbox, tmp_path):
    """Day 1 imports everything ACTIVE. Day 2: one finding gone where its source was read OK -> ARCHIVED (UpdatedAt
    = the export time); one gone where the source was not read -> stays ACTIVE. Day 3 reads that source: archived."""
    from include.awsgov.core.store import Store

    sandbox, store = clean_sandbox, Store(tmp_path / "store")
    found = exports.open_findings(day_store["store"], day_store["day"])
    by_key: dict[tuple, list] = {}
    for f in found:
        by_key.setdefault((exports.COVERAGE_SOURCE.get(f.source, f.source), f.account_id, f.region), []).append(f)
    (read_key, read), (unread_key, unread) = [(k, v[0]) for k, v in sorted(by_key.items()) if k[0] != "cloudwatch"][:2]
    days = [day_store["day"] + dt.timedelta(days=i) for i in range(3)]
    stamps = [dt.datetime.combine(d, dt.time(6), tzinfo=dt.UTC) for d in days]

    def coverage(day, unread_status):
        rows = [{"account_id": k[1], "region": k[2], "source": k[0], "status": status, "error": "", "api_calls": 1}
                for k, status in ((read_key, "ok"), (unread_key, unread_status))]
        store.write("coverage", day, pd.DataFrame(rows), schema=tables.COVERAGE)

    first = exports.import_day(store, days[0], found, _access(sandbox), now=stamps[0])
    assert (first.success, first.failed, first.archived) == (len(found), 0, 0)
    coverage(days[1], "access_denied")
    still_open = [f for f in found if f not in (read, unread)]
    second = exports.import_day(store, days[1], still_open, _access(sandbox), now=stamps[1])
    assert (second.archived, second.kept_unread, second.failed) == (1, 1, 0)
    read_id, unread_id = (f"awsgov/{f.source}/{f.finding_id}" for f in (read, unread))
    docs = {f"awsgov/{f.source}/{f.finding_id}": exports.to_asff(f) for f in (read, unread)}
    hub = _hub_state(sandbox, read_id, docs[read_id]["AwsAccountId"], docs[read_id]["Region"])
    assert (hub["RecordState"], hub["UpdatedAt"]) == ("ARCHIVED", f"{days[1]}T06:00:00.000Z")
    hub = _hub_state(sandbox, unread_id, docs[unread_id]["AwsAccountId"], docs[unread_id]["Region"])
    assert hub["RecordState"] == "ACTIVE"
    kept = store.read(exports.IMPORTS_TABLE, days[1], days[1], schema=tables.SECURITYHUB_IMPORTS)
    states = dict(zip(kept["asff_id"], kept["record_state"], strict=True))
    assert (states[read_id], states[unread_id]) == ("ARCHIVED", "ACTIVE")
    assert sum(s == "ACTIVE" for s in states.values()) == len(still_open) + 1
    again = exports.import_day(store, days[1], still_open, _access(sandbox), now=stamps[1])  # rerun: same outcome
    assert (again.archived, again.kept_unread) == (1, 1)

    coverage(days[2], "ok")
    third = exports.import_day(store, days[2], still_open, _access(sandbox), now=stamps[2])
    assert (third.archived, third.kept_unread) == (1, 0)  # only the one read today; the other is not re-archived
    hub = _hub_state(sandbox, unread_id, docs[unread_id]["AwsAccountId"], docs[unread_id]["Region"])
    assert (hub["RecordState"], hub["UpdatedAt"]) == ("ARCHIVED", f"{days[2]}T06:00:00.000Z")
    active = _hub_state(sandbox, f"awsgov/{still_open[0].source}/{still_open[0].finding_id}",
                        still_open[0].account_id, exports.to_asff(still_open[0])["Region"])
    # Still open and unchanged since day 1: not sent again (Security Hub holds it as day 1 sent it).
    assert (active["RecordState"], active["UpdatedAt"]) == ("ACTIVE", f"{days[0]}T06:00:00.000Z")
    assert (second.unchanged, third.unchanged, third.success) == (len(still_open), len(still_open), 1)


def test_import_sends_only_new_and_changed_findings_and_refreshes_unchanged_ones(day_store, clean_sandbox,
                                                                                 tmp_path):
    """An open finding Security Hub holds unchanged is not re-sent (each import is a billed ingestion event);
    a changed one is; an unchanged one is re-sent once RESEND_UNCHANGED_AFTER has passed (Security Hub deletes
    active findings not updated for 90 days); a refused update is tried again the next day."""
    import dataclasses

    from include.awsgov.core.store import Store

    sandbox, store = clean_sandbox, Store(tmp_path / "store")
    admin = sandbox.info["management_account_id"]
    found = [f for f in exports.open_findings(day_store["store"], day_store["day"]) if f.account_id == admin][:3]
    assert len(found) == 3
    day0 = day_store["day"]
    at = lambda d: dt.datetime.combine(d, dt.time(6), tzinfo=dt.UTC)  # noqa: E731
    first = exports.import_day(store, day0, found, _access(sandbox), now=at(day0))
    assert (first.success, first.unchanged) == (3, 0)

    changed = [dataclasses.replace(found[0], title=found[0].title + " (changed)"), *found[1:]]
    day1 = day0 + dt.timedelta(days=1)
    second = exports.import_day(store, day1, changed, _access(sandbox), now=at(day1))
    assert (second.success, second.unchanged, second.calls) == (1, 2, 1)
    hub = _hub_state(sandbox, f"awsgov/{found[0].source}/{found[0].finding_id}", admin,
                     exports.to_asff(found[0])["Region"])
    assert (hub["Title"], hub["UpdatedAt"]) == (changed[0].title, f"{day1}T06:00:00.000Z")

    later = day0 + exports.RESEND_UNCHANGED_AFTER
    third = exports.import_day(store, later, changed, _access(sandbox), now=at(later))
    assert (third.success, third.unchanged) == (2, 1)  # the two last sent on day 0 are refreshed, not the third

    # A refused update keeps what Security Hub holds on record, so the next day sends it again.
    moved = [dataclasses.replace(changed[1], title="moved again"), changed[0], changed[2]]
    day4 = later + dt.timedelta(days=1)
    denied = exports.import_day(store, day4, moved, _RefusingAccess(_access(sandbox)), now=at(day4))
    # Sent and refused: the changed one, and the one last sent on day 1, now due for its refresh.
    assert (denied.success, denied.unchanged, denied.failed) == (0, 1, 2)
    kept = store.read(exports.IMPORTS_TABLE, day4, day4, schema=tables.SECURITYHUB_IMPORTS)
    held = json.loads(kept.set_index("asff_id").loc[f"awsgov/{changed[1].source}/{changed[1].finding_id}",
                                                     "asff_json"])
    assert held["Title"] == changed[1].title  # not the refused "moved again"
    day5 = day4 + dt.timedelta(days=1)
    retried = exports.import_day(store, day5, moved, _access(sandbox), now=at(day5))
    assert (retried.success, retried.unchanged) == (2, 1)  # both refused ones again, the third still unchanged


class _RefusingAccess:
    """An access layer whose Security Hub refuses every import (as a missing import role would)."""

    def __init__(self, access):
        self._access = access

    def __getattr__(self, name):
        return getattr(self._access, name)

    def client(self, service, region=None, account_id=None):
        from botocore.exceptions import ClientError

        class Refusing:
            def batch_import_findings(self, **_):
                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "refused"}},
                                  "BatchImportFindings")

        return Refusing() if service == "securityhub" else self._access.client(service, region,
                                                                                account_id=account_id)


def test_export_day_imports_through_the_import_role_and_records_the_state(day_store, clean_sandbox):
    store, day = day_store["store"], day_store["day"]
    logging.getLogger("botocore.credentials").setLevel(logging.CRITICAL)
    cfg = {**load_settings(), "interop": {"export": False, "securityhub_import": True, "batch_size": 100}}
    out = exports.export_day(store, day, cfg, _access(clean_sandbox))
    found = exports.open_findings(store, day)
    admin = clean_sandbox.info["management_account_id"]
    mine = sum(f.account_id == admin for f in found)
    # The admin account's own findings go with its credentials; members' need the import role, which the sandbox's
    # members do not have (the baseline creates it only with the onboarding option findings_import_role).
    assert (out["import"]["success"], out["import"]["failed"]) == (mine, len(found) - mine)
    assert out["import"]["errors"] and all("AssumeRole" in e for e in out["import"]["errors"].values())
    assert (out["import"]["archived"], out["import"]["kept_unread"]) == (0, 0) and "failed_ids" not in out["import"]
    state = store.read(exports.IMPORTS_TABLE, day, day, schema=tables.SECURITYHUB_IMPORTS)
    # Only what Security Hub took is recorded: a refused account's findings are not archived later.
    assert sorted(state["asff_id"]) == sorted(f"awsgov/{f.source}/{f.finding_id}" for f in found
                                              if f.account_id == admin)
    assert set(state["record_state"]) == {"ACTIVE"}


def test_asff_strings_are_one_non_empty_line_as_security_hub_requires():
    """Security Hub's strings are NonEmptyString (pattern .*\\S.*, whole value, '.' stops at line breaks): a name from a
    member account with line breaks, or an empty detail, would make BatchImportFindings refuse the finding."""
    from include.awsgov.report.exports import OpenFinding, to_asff

    finding = OpenFinding(source="macie", finding_id="f1", account_id="123456789012", region="us-east-1",
                          check="SensitiveData:S3Object/Personal", title="in line one\nline two\r\n",
                          description="", severity="high", resource_type="AwsS3Bucket",
                          resource_id="line one\u2028line two", resource_name="evil\nname",
                          details={"sensitive_data": "", "bucket": "b\nc"})
    doc = to_asff(finding)
    one_line = re.compile(r".*\S.*")
    resource = doc["Resources"][0]
    strings = [doc["Title"], doc["Description"], resource["Id"], resource["Details"]["Other"]["Name"],
               *doc["ProductFields"].values()]
    assert all(one_line.fullmatch(s) for s in strings), strings
    assert doc["Title"] == "in line one line two" and "awsgov/sensitive_data" not in doc["ProductFields"]
    assert doc["ProductFields"]["awsgov/bucket"] == "b c"


def test_streamed_exports_are_the_bytes_of_one_json_dumps(day_store):
    # write_exports writes a finding at a time; the files are what json.dumps of the whole list gave before.
    store, day = day_store["store"], day_store["day"]
    found = exports.open_findings(store, day)
    assert found
    for findings in (found, found[:1], []):
        out = exports.write_exports(store, day, iter(findings))
        assert out["findings"] == len(findings)
        for kind, convert in (("ocsf", exports.to_ocsf), ("asff", exports.to_asff)):
            want = json.dumps([convert(f) for f in findings], ensure_ascii=False, sort_keys=True, indent=1)
            assert store.get_text(out["paths"][kind]) == want
    assert list(exports.iter_open_findings(store, day)) == found


# Any JSON text the exports can hold: strings of any code point but lone surrogates (Parquet text is UTF-8), control
# characters, quotes and backslashes included, in dicts and lists nested as the OCSF and ASFF documents are.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | _TEXT,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(docs=st.lists(st.dictionaries(_TEXT, _JSON, max_size=6), max_size=3))
def test_array_items_are_the_bytes_of_json_dumps(docs):
    # _array_item encodes with msgspec for speed; the files must stay byte for byte what json.dumps wrote.
    got = b"".join(exports._array_item(d, first=i == 0) for i, d in enumerate(docs)) + (b"\n]" if docs else b"[]")
    assert got.decode("utf-8") == json.dumps(docs, ensure_ascii=False, sort_keys=True, indent=1)

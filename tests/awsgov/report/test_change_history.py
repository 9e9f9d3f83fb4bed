"""When and who for the weekly report's non-compliant Config resources, against the sandbox over HTTP: the change
and the principal shown equal the seeded CloudTrail event, calls are bounded and cached, a refused read role is a
status (never a failed report), and the report renders it escaped next to the item."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from include.awsgov.core import tables
from include.awsgov.core.aws import AwsAccess
from include.awsgov.core.settings import load_settings
from include.awsgov.report import change_history as ch
from include.awsgov.report.week import Week

MAX_ITEMS = 12


def _access(sandbox) -> AwsAccess:
    return AwsAccess.from_args(endpoint_url=sandbox.endpoint, aws_access_key_id="AKIATESTCHANGEHIST01",
                               aws_secret_access_key="test", external_id=sandbox.info["external_id"],
                               session_name="test-change-history", retry_mode="standard")


@pytest.fixture(scope="module")
def week(sandbox, tmp_path_factory):
    """A store with the sandbox day's Config findings (through the aggregator), its settings and the truth."""
    from include.awsgov.collection import runner
    from include.awsgov.core.store import Store

    root = tmp_path_factory.mktemp("changes")
    report = {"change_history": {"max_items": MAX_ITEMS}, "exceptions_file": str(root / "none.yaml")}
    cfg = load_settings({"store_url": str(root / "store"), "regions": sandbox.info["regions"], "report": report})
    (root / "none.yaml").write_text("version: 1\nexceptions: []\n")
    store = Store(cfg["store_url"])
    day = dt.date.fromisoformat(sandbox.today())
    opts = runner.Options(regions=tuple(cfg["regions"]), sources=("config",))
    runner.collect_org(_access(sandbox), store, day, opts)
    return {"store": store, "cfg": cfg, "day": day, "week": Week.of(day),
            "truth": sandbox.truth(date=day.isoformat(), sections=["changes"])["changes"]}


@pytest.fixture(scope="module")
def looked_up(week, sandbox):
    sandbox.reset_calls()
    summary = ch.lookup_for_report(_access(sandbox), week["store"], week["week"], week["cfg"])
    calls = sandbox.calls()
    rows = week["store"].read("change_history", week["day"], week["day"], schema=tables.CHANGE_HISTORY)
    return {"summary": summary, "calls": calls, "rows": rows}


def test_who_and_when_equal_the_seeded_event(looked_up, week):
    rows = looked_up["rows"]
    assert len(rows) == MAX_ITEMS
    checked = 0
    for row in rows.to_dict("records"):
        seeded = week["truth"].get(row["account_id"], {}).get(row["region"], {}).get(
            f"{row['resource_type']}/{row['resource_id']}")
        if seeded is None:  # account-level resources have no configuration history in AWS Config
            assert row["resource_type"] == "AWS::::Account" and row["status"] == ch.NO_HISTORY
            continue
        assert row["status"] == ch.OK, row
        assert row["changed_at"].isoformat() == seeded["captured_at"]
        assert (row["principal"], row["event_name"], row["source_ip"], row["event_id"]) == (
            seeded["principal_arn"], seeded["event_name"], seeded["source_ip"], seeded["event_id"])
        assert row["event_time"].isoformat() == seeded["event_time"]
        assert "GovernanceReadRole" not in row["principal"]  # the read-only event right after is skipped
        checked += 1
    assert checked >= MAX_ITEMS // 2


def test_the_trail_files_answer_where_the_trail_delivered_and_lookup_events_elsewhere(looked_up, week, sandbox):
    """The sandbox's trails delivered the day before the sandbox date (member accounts only): changes of that day are
    read from the files, older ones (and the management account's) from LookupEvents; both give the seeded event."""
    from include.awsgov.events import trail_files

    s3, bucket = sandbox.client("s3"), sandbox.info["central_bucket"]
    rows = [r for r in looked_up["rows"].to_dict("records") if r["status"] == ch.OK]
    assert {r["source"] for r in rows} == {ch.TRAIL_FILES, ch.LOOKUP_EVENTS}
    assert looked_up["summary"]["sources"] == {k: sum(r["source"] == k for r in rows)
                                               for k in (ch.TRAIL_FILES, ch.LOOKUP_EVENTS)}
    for row in rows:
        changed = row["changed_at"].to_pydatetime()
        days = {(changed - dt.timedelta(minutes=30)).date(), (changed + dt.timedelta(minutes=25)).date()}
        delivered = sum(s3.list_objects_v2(Bucket=bucket, Prefix=trail_files.day_prefix(
            "", None, row["account_id"], row["region"], d)).get("KeyCount", 0) for d in days)
        assert (row["source"] == ch.TRAIL_FILES) == (delivered > 0), row


def test_lookups_are_bounded_and_a_rerun_of_the_day_calls_nothing(looked_up, week, sandbox):
    calls = looked_up["calls"]["calls"]
    aws: dict[str, int] = {}
    for c in calls:  # counted per account, service and action; calls a quota refused were retried, not asked twice
        if c["service"] in ("config", "cloudtrail"):
            aws[c["action"]] = aws.get(c["action"], 0) + c["count"] - c.get("quota_throttled", 0)
    assert aws.get("GetResourceConfigHistory") == MAX_ITEMS
    assert aws.get("LookupEvents", 0) <= MAX_ITEMS
    assert looked_up["summary"]["items"] == MAX_ITEMS
    sandbox.reset_calls()
    again = ch.lookup_for_report(_access(sandbox), week["store"], week["week"], week["cfg"])
    assert again["reused"] == MAX_ITEMS and again["api_calls"] == 0
    assert not [c for c in sandbox.calls()["calls"] if c["service"] in ("config", "cloudtrail")]


def test_a_known_change_is_not_looked_up_in_cloudtrail_again(looked_up, week, sandbox):
    row = next(r for r in looked_up["rows"].to_dict("records") if r["status"] == ch.OK)
    cached = {(row["finding_id"], row["changed_at"]): row}
    sandbox.reset_calls()
    again = ch.lookup(_access(sandbox), row["account_id"], row["region"], row["resource_type"], row["resource_id"],
                      row["evaluated_at"].to_pydatetime(), dt.timedelta(minutes=30), cached, row["finding_id"])
    assert (again["status"], again["principal"], again["api_calls"]) == (ch.OK, row["principal"], 1)
    assert not [c for c in sandbox.calls()["calls"] if c["action"] == "LookupEvents"]


def test_a_refused_read_role_is_a_status_not_a_failure(looked_up, sandbox):
    logging.getLogger("botocore.credentials").setLevel(logging.CRITICAL)
    row = next(r for r in looked_up["rows"].to_dict("records")
               if r["status"] == ch.OK and r["account_id"] != sandbox.info["management_account_id"])
    sandbox.set_faults(deny_assume_accounts=[row["account_id"]])
    try:
        out = ch.lookup(_access(sandbox), row["account_id"], row["region"], row["resource_type"], row["resource_id"],
                        None, dt.timedelta(minutes=30))
    finally:
        sandbox.clear_faults()
    assert out["status"] == "access_denied" and "AssumeRole" in out["error"]


def test_the_report_shows_who_next_to_the_item_escaped(looked_up, week):
    from include.awsgov.report.delivery import build_reports, prefix

    summary = build_reports(week["store"], week["week"], week["cfg"], dry_run=True)
    assert summary["rendered"] >= 1
    base = prefix(week["week"], dry_run=True)
    html = "".join(week["store"].get_text(f"{base}/{name}") for name in
                   [p.rsplit("/", 1)[-1] for p in week["store"].fs.ls(week["store"].path(base)) if p.endswith(".html")])
    shown = [r for r in looked_up["rows"].to_dict("records") if r["status"] == ch.OK]
    assert any(f"by <b>{r['principal']}</b>: {r['event_name']} from {r['source_ip']}" in html
               for r in shown if "<" not in r["principal"] and '"' not in r["source_ip"])
    assert "<script>alert('who')" not in html and "<b>x</b>" not in html
    # Which CloudTrail source answered "who" is said next to it.
    words = {ch.TRAIL_FILES: "from the CloudTrail log files", ch.LOOKUP_EVENTS: "from CloudTrail event history"}
    assert all(words[r["source"]] in html for r in shown)
    text = "".join(week["store"].get_text(p[len(week["store"].path("")):].lstrip("/"))
                   for p in week["store"].fs.ls(week["store"].path(base)) if p.endswith(".txt"))
    assert any(f"  Changed {r['changed_at']:%Y-%m-%d %H:%M} UTC by {r['principal']}: {r['event_name']}" in text
               for r in shown)
    if any("<script>" in r["principal"] for r in shown):  # the seeded hostile principal, when it is among them
        assert "by <b>arn:aws:iam::" in html and "&lt;script&gt;alert(&#39;who&#39;)&lt;/script&gt;" in html


def _no_capture_time(parsed, **_):
    for item in parsed.get("configurationItems") or []:
        item.pop("configurationItemCaptureTime", None)


def _event_not_json(parsed, **_):
    for event in parsed.get("Events") or []:
        event["CloudTrailEvent"] = '{"userIdentity": '


CORRUPTIONS = {"config": ("GetResourceConfigHistory", _no_capture_time, "KeyError"),
               "cloudtrail": ("LookupEvents", _event_not_json, "JSONDecodeError")}


def _corrupted_access(sandbox, rows, service):
    """An access layer whose clients of the rows' accounts and regions get answers of an unexpected shape from the
    sandbox (the parsed response altered after the call, as if AWS had changed it)."""
    operation, corrupt, _ = CORRUPTIONS[service]
    access = _access(sandbox)
    admin = access.admin_id()
    for account_id, region in {(r["account_id"], r["region"]) for r in rows}:
        client = access.client(service, region, account_id=None if account_id == admin else account_id)
        client.meta.events.register(f"after-call.{service}.{operation}", corrupt, unique_id="test-corrupt")
    return access


@pytest.mark.parametrize("service", sorted(CORRUPTIONS))
def test_an_answer_of_an_unexpected_shape_is_the_items_status_and_the_report_still_builds(looked_up, week, sandbox,
                                                                                         tmp_path, service):
    import shutil

    from include.awsgov.core.store import Store
    from include.awsgov.report.delivery import build_reports, prefix

    rows = looked_up["rows"].to_dict("records")
    access = _corrupted_access(sandbox, rows, service)
    row = next(r for r in rows if r["status"] == ch.OK)
    out = ch.lookup(access, row["account_id"], row["region"], row["resource_type"], row["resource_id"],
                    row["evaluated_at"].to_pydatetime(), dt.timedelta(minutes=30))
    assert out["status"] == "error" and CORRUPTIONS[service][2] in out["error"], out
    # The whole lookup of the week over a copy of the store (without the day's rows, so every item is looked up).
    shutil.copytree(week["store"].root, tmp_path / "store")
    shutil.rmtree(tmp_path / "store" / ch.TABLE)
    store = Store(str(tmp_path / "store"))
    # LookupEvents' answers are the ones altered: the trail files must not answer in their place.
    settings = {**week["cfg"]["report"]["change_history"], "trail_files": service != "cloudtrail"}
    cfg = {**week["cfg"], "report": {**week["cfg"]["report"], "change_history": settings}}
    summary = ch.lookup_for_report(access, store, week["week"], cfg)
    assert summary["items"] == MAX_ITEMS and summary["statuses"].get("error", 0) >= 1, summary
    assert "ok" not in summary["statuses"]
    built = build_reports(store, week["week"], week["cfg"], dry_run=True)
    assert built["rendered"] >= 1
    base = prefix(week["week"], dry_run=True)
    html = "".join(store.get_text(f"{base}/{p.rsplit('/', 1)[-1]}") for p in store.fs.ls(store.path(base))
                   if p.endswith(".html"))
    assert "Change history not readable (error)" in html
    again = ch.lookup_for_report(_access(sandbox), store, week["week"], week["cfg"])  # not cached: looked up again
    assert again["statuses"].get("error", 0) == 0 and again["api_calls"] > 0


def test_the_report_is_built_whatever_became_of_the_change_lookup():
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import REPO

    # .dags, not get_dag(): get_dag reads the metadata DB, which a fresh test worker may not have migrated yet
    dag = DagBag(dag_folder=str(REPO / "dags" / "weekly_compliance_report.py")).dags["weekly_compliance_report"]
    build = dag.get_task("build_reports")
    assert build.upstream_task_ids == {"lookup_changes"}
    assert str(build.trigger_rule) in ("all_done", "TriggerRule.ALL_DONE")


def test_account_level_findings_have_no_history_and_cost_no_call():
    """Config evaluates some rules on the account itself (resource type AWS::::Account); GetResourceConfigHistory's
    ResourceType enum does not list it, so AWS would refuse the lookup: no call, status no_history."""
    from moto import mock_aws

    from include.awsgov.report import change_history

    with mock_aws():
        access = AwsAccess.from_args(aws_access_key_id="testing", aws_secret_access_key="testing",
                                     session_name="test-change-history")
        row = change_history.lookup(access, access.admin_id(), "us-east-1", "AWS::::Account", "123456789012", None,
                                    dt.timedelta(minutes=30))
    assert (row["status"], row["api_calls"]) == (change_history.NO_HISTORY, 0)

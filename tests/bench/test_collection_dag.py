"""bench/collection_dag.py's arithmetic: the DAG run's wall and hand-offs from task instances, CPU per component."""

from __future__ import annotations

import pytest

from bench.collection_dag import collection_settings, component, cpu_delta, quota_figures, summarize
from sandbox.quotas import QuotaModel

MODEL = QuotaModel().describe()  # the sandbox's table at AWS's rates


def _counts(*buckets: tuple[str, str, int, int]) -> dict:
    rows = [{"account": "111111111111", "region": "us-east-1", "service": service, "operation": operation,
             "admitted": admitted, "throttled": throttled} for service, operation, admitted, throttled in buckets]
    return {"admitted": sum(r["admitted"] for r in rows), "throttled": sum(r["throttled"] for r in rows),
            "buckets": rows}


def _ti(task_id: str, start: str, end: str, map_index: int = -1, queued: str | None = None) -> dict:
    day = "2026-11-23T10:00:"
    return {"task_id": task_id, "map_index": map_index, "state": "success",
            "queued_when": day + (queued or start) + "Z", "start_date": day + start + "Z", "end_date": day + end + "Z",
            "duration": float(end) - float(start)}


def test_summary_takes_the_run_wall_from_its_dates_and_the_gaps_between_stages():
    run = {"dag_run_id": "manual__1", "state": "success", "queued_at": "2026-11-23T09:59:59Z",
           "start_date": "2026-11-23T10:00:00Z", "end_date": "2026-11-23T10:00:40Z"}
    tis = [_ti("list_accounts", "01", "08", queued="00.5"),
           _ti("collect_account", "10", "30", 0), _ti("collect_account", "09", "31", 1),
           _ti("finish_run", "32", "35"), _ti("export_findings", "36", "39")]
    counts = _counts(("organizations", "ListTagsForResource", 210, 7))  # 10/s burst 20: (210 - 20) / 10 = 19 s
    out = summarize({"run": run, "tis": tis, "sandbox_calls": 10, "sandbox_cpu_s": 1.0, "airflow_cpu_s": {},
                     "quota_counts": counts, "quota_model": MODEL})
    assert out["wall_s"] == 40.0 and out["queued_to_start_s"] == 1.0
    assert (out["quota_bound_s"], out["quota_ratio"], out["quota_admitted"], out["quota_throttled"]) == (
        19.0, round(40 / 19, 2), 210, 7)
    # run start -> list 1 s, list end -> first collect 1 s (the earliest batch), last collect -> finish 1 s,
    # finish -> export 1 s, export -> run end 1 s
    assert out["gaps_s"] == {"-> list_accounts": 1.0, "-> collect_account": 1.0, "-> finish_run": 1.0,
                             "-> export_findings": 1.0, "-> run end": 1.0}
    assert out["handoffs_s"] == 5.0
    batches = out["tasks"]["collect_account"]
    assert batches["n"] == 2 and batches["duration_s"] == [20.0, 21.0, 22.0, 42.0]
    assert out["tasks"]["list_accounts"]["queue_to_start_s"] == [0.5, 0.5]


def test_cpu_delta_counts_new_processes_whole_and_old_ones_by_difference():
    before = {(1, 0.0): ("scheduler", 10.0), (2, 0.0): ("task processes", 5.0)}
    after = {(1, 0.0): ("scheduler", 12.5), (2, 0.0): ("task processes", 25.0), (3, 1.0): ("task processes", 4.0)}
    assert cpu_delta(before, after) == {"scheduler": 2.5, "task processes": 24.0}


def test_component_names_airflow_processes_by_their_titles():
    assert component(["airflow worker -- LocalExecutor: <idle>"]) == "task processes"
    assert component(["airflow", "scheduler"]) == "scheduler"
    assert component(["airflow api_server -- host:127.0.0.1 port:8790"]) == "api-server"
    assert component(["python", "-c", "from multiprocessing.forkserver import main"]) == "other"


def test_quota_figures_take_the_slowest_bucket_and_none_without_a_bound():
    counts = _counts(("cloudtrail", "LookupEvents", 12, 30), ("config", "DescribeConfigRules", 40, 0))
    out = quota_figures(counts, MODEL, 6.0)  # LookupEvents 2/s burst 2: 5 s; DescribeConfigRules 2 s
    assert out["quota_bound_s"] == 5.0 and out["quota_ratio"] == 1.2
    assert out["quota_slowest"].startswith("cloudtrail.LookupEvents 111111111111 us-east-1: 12 calls")
    # every bucket within its burst, or quotas off: no bound to divide by
    assert quota_figures(_counts(("config", "DescribeConfigRules", 20, 0)), MODEL, 6.0)["quota_ratio"] is None
    assert quota_figures(counts, {**MODEL, "active": False}, 6.0)["quota_ratio"] is None


@pytest.mark.parametrize(("admins", "collection"), [
    pytest.param({}, None, id="off"),
    pytest.param({"guardduty": "222222222222", "macie": "222222222222"},
                 {"guardduty": {"delegated_admin": "222222222222"}, "macie": {"delegated_admin": "222222222222"}},
                 id="on"),
])
def test_both_runs_get_the_regions_and_the_delegated_administrators(admins, collection):
    out = collection_settings(["us-east-1", "eu-west-1"], admins)
    assert out["regions"] == ["us-east-1", "eu-west-1"] and out.get("collection") == collection
    assert "interop" not in out  # the deployed default: the export step runs


def test_export_off_is_a_setting_the_product_accepts_and_skips():
    from include.awsgov.core.settings import load_settings
    from include.awsgov.report import exports

    cfg = load_settings(collection_settings(["us-east-1"], {}, export=False))
    assert cfg["interop"]["export"] is False
    assert exports.export_day(None, None, cfg) == {"exported": False}  # nothing read: no store needed

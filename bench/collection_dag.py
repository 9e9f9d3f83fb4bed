"""Benchmark of what users see: a real `governance_collection` DAG run in Airflow against the library's own run.

One sandbox (N accounts, default 200) and one real Airflow (``airflow standalone``: LocalExecutor, SQLite; the
environment of ``scripts/localenv.py``, processes and REST client of ``scripts/distributed.py``; the scheduler
settings of SCHEDULER_ENV unless ``--airflow-defaults``). With Airflow up and idle, on the same sandbox state and
settings, in this order:

0. a warm-up DAG run of one account (the ``accounts`` param; not timed), so that the scheduler has started its
   executor's workers as a long-running scheduler has;
1. the library: ``runner.collect_org`` (accounts, organization-level reads, every account, run row) into a
   temporary store, timed in this process (imports already done);
2. the DAG: ``governance_collection`` triggered through the REST API for the same day; its wall time is the DAG
   run's ``end_date - start_date`` from the API;
3. the library again (``--library-runs 2``, the default), so that the ratio is bracketed by two library figures.

Prints the library walls (with their phases, the same steps as the DAG's tasks, and the export step the DAG adds),
the DAG-run wall, their ratio (DAG run / mean library wall; target <= 1.3), the tasks with their durations and
queue delays, where the run's time went between tasks (the scheduler's hand-offs), and the CPU the Airflow
components and the task processes used against the library's own CPU, beside the calls each run made to the
sandbox. Quotas are refilled, their bucket counts and the call counters reset before each run; after it, each run's
quota bound -- the least time the modelled quotas allow for the calls the sandbox's buckets admitted (whichever
process made them: the DAG's task processes cannot be counted client-side), bench/collection.py's
``sandbox_quota_bound`` -- and its wall / quota bound (issue #18: <= 1.3) are printed beside the other figures.
``--profile realistic`` runs the sandbox's realistic profile, ``--admins on`` configures GuardDuty and Macie
delegated administrators as bench/collection.py does (for the library and the DAG alike). `make bench` runs it at 50
accounts.

    .venv/bin/python bench/collection_dag.py [--accounts 200] [--profile default|realistic] [--admins off|on]
        [--export on|off] [--regions 4] [--latency-ms 20] [--quota-scale 1] [--api-port 8790] [--sandbox-port 5790]
        [--library-runs 2] [--airflow-defaults] [--keep] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The library bench's day, regions, delivery (waits out the realistic profile's long one) and quota bound.
from bench.collection import DAY, REGIONS, deliver, sandbox_quota_bound  # noqa: E402
from scripts.distributed import POOLS, Api, Processes, airflow, wait_for, wait_run  # noqa: E402
from scripts.localenv import SANDBOX_KEY_ID, SANDBOX_SECRET, airflow_env  # noqa: E402

DAG_ID = "governance_collection"
TARGET_RATIO = 1.3

# Libraries every governance task imports (0.69-0.76 CPU-s in each task process: pandas with pyarrow and numpy,
# boto3/botocore, the Amazon hook) and what Airflow's task runner imports to parse the DAG (0.4 CPU-s: the DagBag):
# imported once by the LocalExecutor's forkserver, so that its workers, and the task processes they fork, inherit
# them instead of importing them again. Third-party and Airflow modules only: the package's own code is imported by
# each task, so a deployment of include/ takes effect at once.
PRELOAD = ("airflow.sdk.execution_time.task_runner", "airflow.sdk.execution_time.supervisor",
           "airflow.sdk.execution_time.task_mapping", "airflow.sdk.definitions.mappedoperator", "airflow.sdk.serde",
           "airflow.sdk.plugins_manager", "airflow.dag_processing.dagbag",
           "airflow.providers.amazon.aws.hooks.base_aws", "boto3", "botocore.client", "pandas", "pyarrow.parquet",
           "pyarrow.dataset", "fsspec", "jsonschema", "yaml")
# Airflow settings of the local run (docs/deploy.md, "Task start-up"):
# - the scheduler idles 1 s per loop with nothing to do by default: on a run of five sequential stages, seconds of
#   nobody working;
# - the dag-processor re-parses every file every 30 s (CPU taken from the tasks on a 2-core machine) although
#   nothing changes during a bench;
# - LocalExecutor workers come from a forkserver that preloaded PRELOAD (Airflow 3.3 `mp_start_method`,
#   `mp_forkserver_preload`), instead of being forked from the scheduler, which has none of those libraries.
SCHEDULER_ENV = {
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__CORE__MP_FORKSERVER_PRELOAD": ",".join(PRELOAD),
}


def parse_ts(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def seconds(a: dt.datetime | None, b: dt.datetime | None) -> float | None:
    return round((b - a).total_seconds(), 2) if a and b else None


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Phases:
    """Wall seconds of the library's phases inside one ``collect_org`` (the same steps as the DAG's tasks)."""

    def __init__(self) -> None:
        from include.awsgov.collection import runner
        from include.awsgov.core import accounts

        self.seconds: dict[str, float] = {}
        self._patched = [(accounts, "snapshot_accounts", "list_accounts"),
                         (runner, "collect_aggregate", "collect_aggregate"),
                         (runner, "collect_accounts", "collect_account"), (runner, "finish_run", "finish_run")]
        self._real = [getattr(module, name) for module, name, _ in self._patched]

    def __enter__(self) -> Phases:
        for (module, name, label), real in zip(self._patched, self._real, strict=True):
            setattr(module, name, self._timed(real, label))
        return self

    def __exit__(self, *exc: object) -> None:
        for (module, name, _), real in zip(self._patched, self._real, strict=True):
            setattr(module, name, real)

    def _timed(self, real: Any, label: str) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.seconds[label] = round(time.perf_counter() - started, 2)

        return timed


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def quota_figures(counts: dict[str, Any], model: dict[str, Any], wall: float | None) -> dict[str, Any]:
    """A run's quota bound from the sandbox's bucket counts, and its wall / quota bound (None with quotas off).

    :param counts: ``GET /_sandbox/quotas/buckets`` read right after the run (refilled right before it).
    :param model: ``GET /_sandbox/quotas``.
    :param wall: the run's wall seconds.
    """
    bound, slowest = sandbox_quota_bound(counts, model)
    return {"quota_bound_s": round(bound, 2), "quota_slowest": slowest,
            "quota_ratio": round(wall / bound, 2) if bound and wall else None,
            "quota_admitted": counts["admitted"], "quota_throttled": counts["throttled"]}


def threat_admins(sb: Any, on: bool) -> dict[str, str]:
    """GuardDuty and Macie delegated administrators of the sandbox's organization (as bench/collection.py sets
    them), or none."""
    if not on:
        return {}
    truth = sb.truth(date=DAY, sections=["guardduty", "macie"], accounts=[sb.info["management_account_id"]])
    return {"guardduty": truth["guardduty"]["admin"], "macie": truth["macie"]["admin"]}


def collection_settings(regions: list[str], admins: dict[str, str], export: bool = True) -> dict[str, Any]:
    """The ``awsgov_settings`` both runs use: the regions, the delegated administrators if any, and, with
    ``export=False``, ``interop.export`` off (the DAG's export_findings task then writes nothing, and the library's
    export step does nothing either)."""
    out: dict[str, Any] = {"regions": regions}
    if admins:
        out["collection"] = {source: {"delegated_admin": account} for source, account in admins.items()}
    if not export:
        out["interop"] = {"export": False}
    return out


def library_run(sb: Any, settings: dict[str, Any], store_dir: Path, run_id: str) -> dict:
    """One ``runner.collect_org`` into ``store_dir`` (wall, phases, API calls, sandbox CPU), then the DAG's export
    step on its output (``exports.export_day``, timed apart: the DAG does it, ``collect_org`` does not)."""
    from include.awsgov.collection import runner
    from include.awsgov.core.aws import AwsAccess
    from include.awsgov.core.settings import load_settings
    from include.awsgov.core.store import Store
    from include.awsgov.report import exports

    cfg = load_settings(settings)
    access = AwsAccess.from_args(endpoint_url=sb.endpoint, aws_access_key_id=SANDBOX_KEY_ID,
                                 aws_secret_access_key=SANDBOX_SECRET, external_id=sb.info["external_id"],
                                 session_name="bench-collection-dag", retry_mode=cfg["collection"]["retry_mode"])
    sb.reset_calls()
    sb.refill_quotas()
    store = Store(store_dir)
    cpu0, own0, started = cpu_seconds(sb.pid), own_cpu(), time.perf_counter()
    with Phases() as phases:
        run = runner.collect_org(access, store, DAY, runner.Options.from_settings(cfg), run_id=run_id)
    wall = time.perf_counter() - started
    sandbox_cpu, own, calls = cpu_seconds(sb.pid) - cpu0, own_cpu() - own0, sb.calls()["total"]
    quota = quota_figures(sb.quota_buckets(), sb.quotas(), wall)
    started = time.perf_counter()
    exports.export_day(store, dt.date.fromisoformat(DAY), cfg)
    export_s = time.perf_counter() - started
    return {"wall_s": round(wall, 2), "export_s": round(export_s, 2), "phases_s": phases.seconds,
            "api_calls": access.total_calls(), "sandbox_calls": calls, "collected": run["collected"],
            "sandbox_cpu_s": round(sandbox_cpu, 2), "cpu_s": round(own, 2),
            "workers": runner.Options.from_settings(cfg).workers, **quota}


def start_airflow(procs: Processes, info: dict, home: Path, store: Path, settings: dict[str, Any], port: int,
                  password: str, slots: int, tuned: bool = True) -> tuple[Api, dict[str, str]]:
    """``airflow standalone`` on ``port`` with the sandbox's connection and Variables and the ``aws_api`` pool of
    ``slots`` slots, the collection's batches sized to it; returns the logged-in API."""
    home.mkdir(parents=True)
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    passwords.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
    collection = {**settings.get("collection", {}), "max_mapped_tasks": slots}
    env.update(airflow_env(info, home, str(store), {**settings, "collection": collection}))
    if tuned:
        env.update(SCHEDULER_ENV)
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        # Only the DAG we trigger runs: the others stay paused, and no scheduled run competes with ours.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    })
    migrate = subprocess.run(airflow("db", "migrate"), env=env, capture_output=True, text=True)
    if migrate.returncode:
        raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-2000:]}\n{migrate.stderr[-2000:]}")
    procs.start("standalone", airflow("standalone"), env)
    api = Api(f"http://127.0.0.1:{port}", password)
    wait_for("the api-server", lambda: api.login() or True, 240, procs, 1.0)
    wait_for("scheduler, dag-processor and triggerer heartbeats",
             lambda: (h := api.call("GET", "/api/v2/monitor/health"))
             and all(h[c]["status"] == "healthy" for c in ("scheduler", "triggerer", "dag_processor")), 240, procs, 1.0)
    wait_for(f"{DAG_ID} parsed", lambda: api.call("GET", f"/api/v2/dags/{DAG_ID}"), 240, procs, 1.0)
    for name, (_, description) in POOLS.items():
        api.call("POST", "/api/v2/pools", {"name": name, "slots": slots, "description": description})
    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    return api, env


def component(cmdline: list[str]) -> str:
    """Which part of Airflow a process is, from its command line (LocalExecutor workers run the tasks)."""
    text = " ".join(cmdline)
    for name in ("worker", "scheduler", "api-server", "api_server", "dag-processor", "triggerer"):
        if name in text:
            return {"worker": "task processes", "api_server": "api-server"}.get(name, name)
    return "other"


def airflow_cpu(root_pid: int) -> dict[tuple[int, float], tuple[str, float]]:
    """CPU seconds of every live process of the Airflow tree, children reaped by it included (a LocalExecutor
    worker waits for each task process it forks, so the tasks' CPU is in its children's times)."""
    import psutil

    out = {}
    root = psutil.Process(root_pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            out[(proc.pid, proc.create_time())] = (component(proc.cmdline()),
                                                   t.user + t.system + t.children_user + t.children_system)
        except psutil.Error:
            continue
    return out


def cpu_delta(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per component between two :func:`airflow_cpu` snapshots."""
    delta: dict[str, float] = defaultdict(float)
    for key, (name, seconds_) in after.items():
        delta[name] += seconds_ - before.get(key, (name, 0.0))[1]
    return {k: round(v, 1) for k, v in sorted(delta.items())}


def dag_run(api: Api, procs: Processes, sb: Any, timeout: float, conf: dict | None = None) -> dict:
    """Trigger the DAG for the bench's day, wait for it, and read its task instances and the CPU it took."""
    sb.reset_calls()
    sb.refill_quotas()
    root = dict(procs.procs)["standalone"].pid
    cpu0, tree0 = cpu_seconds(sb.pid), airflow_cpu(root)
    run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns",
                   {"logical_date": None, "conf": {"date": DAY, **(conf or {})}})
    final = wait_run(api, procs, DAG_ID, run["dag_run_id"], timeout)
    sandbox_cpu, cpu = cpu_seconds(sb.pid) - cpu0, cpu_delta(tree0, airflow_cpu(root))
    counts, model = sb.quota_buckets(), sb.quotas()  # before anything else calls the sandbox
    tis = api.task_instances(DAG_ID, run["dag_run_id"])
    return {"run": final, "tis": tis, "sandbox_calls": sb.calls()["total"], "sandbox_cpu_s": round(sandbox_cpu, 2),
            "airflow_cpu_s": cpu, "quota_counts": counts, "quota_model": model}


def summarize(result: dict) -> dict:
    """DAG-run wall, per task figures and the hand-offs between the stages."""
    run, tis = result["run"], result["tis"]
    start, end = parse_ts(run["start_date"]), parse_ts(run["end_date"])
    by_task: dict[str, list[dict]] = defaultdict(list)
    for ti in tis:
        by_task[ti["task_id"]].append(ti)
    tasks = {}
    for task_id, items in by_task.items():
        durations = [ti["duration"] for ti in items if ti.get("duration") is not None]
        queued = [seconds(parse_ts(ti.get("queued_when")), parse_ts(ti.get("start_date"))) for ti in items]
        queued = [q for q in queued if q is not None]
        tasks[task_id] = {
            "n": len(items),
            "states": dict(sorted({s: sum(1 for ti in items if ti["state"] == s)
                                   for s in {ti["state"] for ti in items}}.items())),
            "first_start": min((parse_ts(ti["start_date"]) for ti in items if ti.get("start_date")), default=None),
            "last_end": max((parse_ts(ti["end_date"]) for ti in items if ti.get("end_date")), default=None),
            "duration_s": [round(min(durations), 2), round(statistics.median(durations), 2),
                           round(max(durations), 2), round(sum(durations), 2)] if durations else None,
            "queue_to_start_s": [round(min(queued), 2), round(max(queued), 2)] if queued else None,
        }
    # The stages run one after the other (collect_account's tasks in parallel; list_accounts also stages the
    # organization-level reads, the library's collect_aggregate): the gap before each stage is the
    # scheduler's hand-off (upstream done -> task queued -> its process started), nobody working on the run.
    order = ["list_accounts", "collect_account", "finish_run", "export_findings"]
    gaps, previous = {}, start
    for task_id in order:
        if task_id in tasks:
            gaps[f"-> {task_id}"] = seconds(previous, tasks[task_id]["first_start"])
            previous = tasks[task_id]["last_end"]
    gaps["-> run end"] = seconds(previous, end)
    api_calls = None
    for ti in by_task.get("finish_run", []):
        api_calls = ti.get("api_calls")
    for t in tasks.values():
        t["first_start"] = t["first_start"].isoformat() if t["first_start"] else None
        t["last_end"] = t["last_end"].isoformat() if t["last_end"] else None
    wall = seconds(start, end)
    quota = quota_figures(result["quota_counts"], result["quota_model"], wall)
    return {"state": run["state"], "run_id": run["dag_run_id"], "wall_s": wall, **quota,
            "queued_to_start_s": seconds(parse_ts(run.get("queued_at")), start), "tasks": tasks,
            "gaps_s": gaps, "handoffs_s": round(sum(v for v in gaps.values() if v), 2),
            "sandbox_calls": result["sandbox_calls"], "sandbox_cpu_s": result["sandbox_cpu_s"], "api_calls": api_calls,
            "airflow_cpu_s": result["airflow_cpu_s"]}


def report(args: argparse.Namespace, libs: list[dict], dag: dict) -> dict:
    walls = [lib["wall_s"] for lib in libs]
    mean = statistics.mean(walls)
    ratio = round(dag["wall_s"] / mean, 2) if dag["wall_s"] else None
    same_work = statistics.mean(lib["wall_s"] + lib["export_s"] for lib in libs)
    admins = "delegated admins" if args.admins == "on" else "no delegated admins"
    admins += "" if args.export == "on" else ", interop.export off"
    print(f"\n== governance_collection: {args.accounts} accounts x {args.regions} regions, {args.profile} profile, "
          f"{admins}, {args.latency_ms:.0f} ms "
          f"latency, quota scale {args.quota_scale:g}, pool aws_api {args.pool_slots} slots = batches, scheduler "
          f"{'defaults' if args.airflow_defaults else 'SCHEDULER_ENV'}; {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}")
    for i, lib in enumerate(libs, 1):
        print(f"library run {i}        {lib['wall_s']} s wall ({lib['collected']} accounts collected, "
              f"{lib['workers']} threads, {lib['sandbox_calls']} sandbox calls, sandbox CPU {lib['sandbox_cpu_s']} s, "
              f"library CPU {lib['cpu_s']} s); "
              + ", ".join(f"{k} {lib['phases_s'].get(k)}" for k in ("list_accounts", "collect_aggregate",
                                                                     "collect_account", "finish_run"))
              + f"; then export_findings {lib['export_s']}")
    print(f"DAG run              {dag['wall_s']} s wall, {dag['state']} (start_date -> end_date; queued -> start "
          f"{dag['queued_to_start_s']} s; {dag['sandbox_calls']} sandbox calls, sandbox CPU {dag['sandbox_cpu_s']} s)")
    verdict = "ok" if ratio is not None and ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"ratio                DAG run / library = {dag['wall_s']} / {mean:.2f} = {ratio} "
          f"(target <= {TARGET_RATIO}: {verdict}; against each library run: "
          + ", ".join(f"{dag['wall_s'] / w:.2f}" for w in walls) + ")")
    print(f"same work            DAG run / (library + its export step) = {dag['wall_s']} / {same_work:.2f} = "
          f"{dag['wall_s'] / same_work:.2f}")
    # The quota bound of each run, from the calls the sandbox's buckets admitted during it (issue #18: <= 1.3).
    for name, fig in [*((f"library run {i}", lib) for i, lib in enumerate(libs, 1)), ("DAG run", dag)]:
        print(f"quota bound, {name:<13} {fig['quota_bound_s']} s ({fig['quota_slowest']}); wall {fig['wall_s']} s / "
              f"quota bound = {fig['quota_ratio']} (target <= {TARGET_RATIO}); {fig['quota_admitted']} calls "
              f"admitted, {fig['quota_throttled']} refused by a quota")
    tasks = sum(t["n"] for t in dag["tasks"].values())
    cpu = dag["airflow_cpu_s"]
    print("Airflow CPU          " + ", ".join(f"{k} {v} s" for k, v in cpu.items())
          + f"; task processes {cpu.get('task processes', 0) / max(1, tasks):.2f} CPU-s per task instance ({tasks})")
    print(f"hand-offs            {dag['handoffs_s']} s between stages: "
          + ", ".join(f"{k} {v}" for k, v in dag["gaps_s"].items()))
    print(f"{'task':<26} {'n':>4}  {'states':<16} {'duration min/median/max/sum s':<32} queued->start s")
    for task_id, t in dag["tasks"].items():
        states = ",".join(f"{s} {n}" for s, n in t["states"].items())
        dur = "/".join(str(x) for x in t["duration_s"]) if t["duration_s"] else "-"
        queued = "/".join(str(x) for x in t["queue_to_start_s"]) if t["queue_to_start_s"] else "-"
        print(f"{task_id:<26} {t['n']:>4}  {states:<16} {dur:<32} {queued}")
    return {"accounts": args.accounts, "regions": args.regions, "latency_ms": args.latency_ms,
            "pool_slots": args.pool_slots, "airflow_defaults": args.airflow_defaults,
            "quota_scale": args.quota_scale, "profile": args.profile, "admins": args.admins == "on",
            "export": args.export == "on",
            "library": libs, "dag": dag, "ratio": ratio, "quota_ratio_dag": dag["quota_ratio"],
            "quota_ratio_library": [lib["quota_ratio"] for lib in libs],
            "ratio_same_work": round(dag["wall_s"] / same_work, 2),
            "target": TARGET_RATIO, "ok": verdict == "ok"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200, help="sandbox member accounts")
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added latency per sandbox call")
    parser.add_argument("--quota-scale", type=float, default=1.0, help="sandbox quotas: 1 = AWS's rates, 0 = off")
    parser.add_argument("--profile", default="default", choices=("default", "realistic"), help="the sandbox's profile")
    parser.add_argument("--admins", default="off", choices=("off", "on"),
                        help="GuardDuty/Macie delegated administrators configured (as bench/collection.py does)")
    parser.add_argument("--export", default="on", choices=("on", "off"),
                        help="settings interop.export for both runs; off: the export step writes nothing (the "
                             "export is most of a realistic run's time, docs/quotas.md)")
    parser.add_argument("--api-port", type=int, default=8790, help="Airflow api-server port")
    parser.add_argument("--sandbox-port", type=int, default=5790)
    parser.add_argument("--library-runs", type=int, default=2, choices=(1, 2),
                        help="library runs: before the DAG run, and (2) after it too")
    parser.add_argument("--pool-slots", type=int, default=2 * (os.cpu_count() or 1),
                        help="aws_api pool slots, and collection.max_mapped_tasks (batches = slots); default: two "
                             "per core of this machine, which runs every task (the deployments' 16-32: docs/deploy.md)")
    parser.add_argument("--airflow-defaults", action="store_true",
                        help="leave the scheduler and dag-processor settings at Airflow's defaults (not SCHEDULER_ENV)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the DAG run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) after teardown")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # teardown below still runs
    import logging

    logging.basicConfig(level=logging.ERROR)

    from sandbox.runner import Sandbox

    t0 = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="colldag-"))
    (root / "logs").mkdir()
    procs = Processes(root / "logs")
    regions = REGIONS[:args.regions]
    sb = None
    rc = 1
    try:
        sb = Sandbox(accounts=args.accounts, port=args.sandbox_port, state_dir=root / "sandbox", date=DAY,
                     regions=regions, seed_metrics_accounts=0, quota_scale=args.quota_scale,
                     profile=args.profile).start()
        deliver(sb)  # the day's deliveries exist before the runs, as on AWS (not timed)
        sb.set_faults(latency_ms=args.latency_ms)
        settings = collection_settings(regions, threat_admins(sb, args.admins == "on"), args.export == "on")
        api, _ = start_airflow(procs, sb.info, root / "airflow", root / "store-dag", settings, args.api_port,
                               secrets.token_urlsafe(16), args.pool_slots, tuned=not args.airflow_defaults)
        print(f"sandbox {sb.endpoint} ({args.accounts} accounts), Airflow standalone at "
              f"http://127.0.0.1:{args.api_port} up in {time.perf_counter() - t0:.0f} s; state under {root}",
              flush=True)
        # Warm-up (not timed): a rerun of one account, so that the scheduler has started its executor's workers
        # (with a forkserver: imported PRELOAD) as a long-running scheduler has; it also exercises the rerun path.
        one = next(a["id"] for a in sb.info["accounts"] if a["status"] == "ACTIVE" and a["read_role"])
        warm = dag_run(api, procs, sb, args.timeout, {"accounts": [one]})
        print(f"warm-up (one account): {warm['run']['state']}", flush=True)
        libs = [library_run(sb, settings, root / "store-lib-1", "bench-lib-1")]
        print(f"library run 1: {libs[0]['wall_s']} s", flush=True)
        dag = summarize(dag_run(api, procs, sb, args.timeout))
        print(f"DAG run: {dag['wall_s']} s, {dag['state']}", flush=True)
        if args.library_runs == 2:
            libs.append(library_run(sb, settings, root / "store-lib-2", "bench-lib-2"))
        figures = report(args, libs, dag)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=1, default=str))
        rc = 0 if dag["state"] == "success" else 1
    except Exception as exc:  # noqa: BLE001 - reported with the logs, then torn down
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        for name, _ in procs.procs:
            print(f"--- {name} log (tail) ---\n{procs.tail(name, 30)}", file=sys.stderr)
    finally:
        killed = procs.stop()
        if sb is not None:
            sb.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        print(f"teardown: {'killed after the timeout: ' + ', '.join(killed) if killed else 'every process exited'}"
              f"; total {time.perf_counter() - t0:.0f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
